"""Benchmarks that print figures (models, pipeline, stills, gallery, soak, synthesis); `python -m tools.bench` runs
the model benchmark. Never timed assertions.

May import: tools.data, tools.train and deblurd.
"""
