"""Lens steering: set the lens as configured (LensPosition held, autofocus, or left alone) and, with a lens profile
and a known scene plane, steer the router by the blur the profile expects there."""

from __future__ import annotations

import logging

from deblurd.capture.camera import FrameSource
from deblurd.config import LensConfig
from deblurd.optics.lens_profile import LensCalibration
from deblurd.restore.manifest import Manifest
from deblurd.restore.router import FrameRouter

log = logging.getLogger(__name__)


class LensSteering:
    """Where the lens is (the LensPosition the camera reports) and the blur radius expected on the scene plane there
    (px at the pack's working width; None when unknown: the map alone decides)."""

    def __init__(self, cfg: LensConfig, profile: LensCalibration | None, manifest: Manifest) -> None:
        self.cfg, self.profile, self.manifest = cfg, profile, manifest
        self.position: float | None = None
        self.expected_radius: float | None = None

    def apply(self, source: FrameSource, router: FrameRouter) -> None:
        """Set the lens as configured, then steer `router` by the blur expected at the position it reached."""
        if self.cfg.mode == "manual":
            self.position = source.set_lens_position(self.cfg.position_dioptres)
        elif self.cfg.mode == "auto":
            self.position = source.autofocus()
        self.expected_radius = self._expected_radius()
        router.expect(self.expected_radius)

    def _expected_radius(self) -> float | None:
        """The lens profile's blur on the configured scene plane at the current LensPosition; None under autofocus
        (it puts the subject in focus), without a profile, a plane or a reported position."""
        lens = self.cfg
        if (self.profile is None or lens.mode == "auto" or lens.subject_dioptres is None or self.position is None
                or self.manifest.working_width is None):
            return None
        radius = self.profile.expected_radius(self.position, lens.subject_dioptres, self.manifest.working_width)
        log.info("lens profile %s: %.2f px of blur expected at LensPosition %g on the plane at %g dioptres (%s)",
                 self.profile.lens_id, radius, self.position, lens.subject_dioptres, self.manifest.blur.label(radius))
        return radius
