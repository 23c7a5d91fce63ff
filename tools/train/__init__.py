"""Training: Keras architectures, the CPU and GPU trainers, fine-tuning on lens pairs, the map tuner, and export of
runs into model packs. `python -m tools.train` runs the CPU trainer.

May import: tools.data and deblurd.
"""
