"""Pick and open the configured frame source: the camera when one is attached, else replay (or the simulated camera).

It lives apart from both sources so that the replay module never imports the camera adapter (and the adapter
never imports replay): the package has no import cycle.
"""

from __future__ import annotations

import logging

from deblurd.capture import picamera_source
from deblurd.capture.camera import SAMPLES_DIR, FrameSource, ReplaySource
from deblurd.config import CameraConfig

log = logging.getLogger(__name__)


def open_source(cfg: CameraConfig) -> FrameSource:
    """Build and open the configured source; 'auto' means the camera when one is attached, else replay."""
    size = (cfg.width, cfg.height)
    if cfg.source == "sim":
        from deblurd.capture.sim_camera import SimCamera

        source: FrameSource = SimCamera(size, cfg.fps, cfg.sim_scene, cfg.sim_layout, cfg.sim_subject_dioptres,
                                        cfg.sim_seed, cfg.sim_still_width, cfg.max_image_pixels)
    elif cfg.source == "picamera2" or (cfg.source == "auto" and picamera_source.camera_present()):
        source = picamera_source.PicameraSource(cfg)
    else:
        path = cfg.replay_path or SAMPLES_DIR
        if cfg.source == "auto":
            log.info("no camera found: replaying %s", "bundled sample frames" if cfg.replay_path is None else path)
        source = ReplaySource(path, cfg.fps, size, max_pixels=cfg.max_image_pixels)
    source.open()
    return source
