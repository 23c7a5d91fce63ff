"""Training data: the packaged photo and digit sources (`make data`) and the synthesis of blurred/sharp pairs.

Imports deblurd, never the reverse.
"""
