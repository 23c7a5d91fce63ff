"""Capture: where frames and stills come from (the FrameSource protocol, the picamera2 adapter, replay of a folder,
the simulated Camera Module 3), the lens control that drives them, the preview display and the one frame pacer.

May import: optics and the top-level basics (config, errors, frames, atomic, log_limit, image_io).
"""
