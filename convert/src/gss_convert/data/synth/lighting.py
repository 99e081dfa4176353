"""Scene lighting: ambient + one directional sun, drawn per world; dusk and fog change it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .domains import Domain, ShiftDraw


def sun_direction(elevation: float, azimuth: float) -> np.ndarray:
    """Unit vector towards the sun (radians; azimuth 0 looks down the street)."""
    return np.array(
        [
            math.cos(elevation) * math.sin(azimuth),
            math.sin(elevation),
            math.cos(elevation) * math.cos(azimuth),
        ]
    )


@dataclass
class Light:
    sunny: bool  # direct sun: hard shadows and sunlit faces
    sun: np.ndarray
    ambient: float
    diffuse: float
    shadow: float  # darkening inside a ground shadow
    # night-time extras (street8: no glow, 7 % of windows lit); the dusk shift raises them
    glow: float = 0.0
    lit_window_threshold: float = 0.93

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Light:
        sunny = rng.random() < 0.6
        elevation = math.radians(rng.uniform(18, 60))
        azimuth = rng.uniform(0, 2 * math.pi)
        if sunny:
            ambient, diffuse = rng.uniform(0.45, 0.65), rng.uniform(0.5, 0.8)
            shadow = rng.uniform(0.35, 0.6)
        else:
            ambient, diffuse = rng.uniform(0.75, 0.95), rng.uniform(0.05, 0.2)
            shadow = rng.uniform(0.0, 0.12)
        return cls(sunny, sun_direction(elevation, azimuth), ambient, diffuse, shadow)

    def face(self, nx: float, ny: float, nz: float) -> float:
        """Brightness of a surface with normal (nx, ny, nz)."""
        d = nx * self.sun[0] + ny * self.sun[1] + nz * self.sun[2]
        return float(self.ambient + self.diffuse * max(0.0, d))

    def shadow_offset(self, height: float) -> tuple[float, float]:
        """Ground displacement (dx, dz) of the shadow of a point at ``height``."""
        sun_y = max(self.sun[1], 0.25)  # a low sun would throw shadows across the whole street
        return -height * self.sun[0] / sun_y, -height * self.sun[2] / sun_y

    def apply_shift(self, shift: ShiftDraw, domain: Domain, rng: np.random.Generator) -> None:
        """Dusk and fog light.  Runs before any object is built: shaders keep their face brightness."""
        if shift.dusk:
            elevation = math.radians(rng.uniform(*domain.dusk_sun_elevation))
            azimuth = math.atan2(self.sun[0], self.sun[2])  # street8's azimuth, the sun only sinks
            self.sun = sun_direction(elevation, azimuth)
            self.ambient, self.diffuse = (
                rng.uniform(*domain.dusk_ambient),
                rng.uniform(*domain.dusk_diffuse),
            )
            self.shadow = rng.uniform(0.15, 0.35) if self.sunny else rng.uniform(0.0, 0.08)
            self.lit_window_threshold = 1.0 - rng.uniform(*domain.dusk_lit_windows)
            self.glow = rng.uniform(*domain.dusk_glow)
        if shift.fog_distance > 0:
            # fog scatters the sunlight: no direct light, hardly any shadow
            self.sunny = False
            self.diffuse = rng.uniform(0.03, 0.12)
            self.shadow = rng.uniform(0.0, 0.08)
            if not shift.dusk:
                self.ambient = rng.uniform(0.8, 0.95)
