"""Optics: what blur is. The blur definitions and PSFs, layered defocus synthesis, the sensor and ISP model and the
lens profile, so training, evaluation, the samples, the simulated camera and calibration agree on one physics.

May import: the top-level basics only (config, errors, frames, atomic, log_limit, image_io).
"""
