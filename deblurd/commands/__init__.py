"""Commands: one module per CLI subcommand (deblur, status, doctor, collect, calibrate) and what the working
commands load first; `deblurd.cli` registers them.

May import: every other package of deblurd.
"""
