"""Figures and samples for the README and docs, made from the real code paths.

May import: every other tools package and deblurd.
"""
