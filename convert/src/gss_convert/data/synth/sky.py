"""The sky: a vertical gradient with procedural clouds, and the haze colour far surfaces fade to."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .camera import Frame
from .colours import grey, hsv
from .textures import sample_texture

Rng = np.random.Generator


@dataclass(frozen=True)
class Sky:
    zenith: np.ndarray  # colour at the top of the image
    horizon: np.ndarray  # colour at the horizon row
    cloud_cover: float  # 0: clear
    cloud_scale: float
    cloud_offset: np.ndarray  # (2,) texel offset of the cloud texture
    cloud_colour: np.ndarray
    haze_colour: np.ndarray  # aerial perspective: far surfaces fade towards it
    haze_distance: float  # m, e-folding distance of the haze

    @classmethod
    def draw(cls, rng: Rng) -> Sky:
        kind = rng.random()
        if kind < 0.45:  # clear blue
            zenith = hsv(rng.uniform(0.55, 0.64), rng.uniform(0.4, 0.8), rng.uniform(0.55, 0.9))
            horizon = hsv(rng.uniform(0.5, 0.62), rng.uniform(0.05, 0.3), rng.uniform(0.8, 1.0))
        elif kind < 0.8:  # overcast
            v = rng.uniform(0.55, 0.95)
            zenith = grey(rng, v, 0.06)
            horizon = grey(rng, min(1, v * rng.uniform(1.0, 1.15)), 0.05)
        elif kind < 0.92:  # sunset / hazy warm
            zenith = hsv(rng.uniform(0.55, 0.7), rng.uniform(0.2, 0.6), rng.uniform(0.4, 0.8))
            horizon = hsv(rng.uniform(0.02, 0.12), rng.uniform(0.3, 0.7), rng.uniform(0.8, 1.0))
        else:  # pale / odd
            zenith = hsv(rng.random(), rng.uniform(0, 0.2), rng.uniform(0.6, 1.0))
            horizon = hsv(rng.random(), rng.uniform(0, 0.15), rng.uniform(0.7, 1.0))
        cloud_cover = rng.uniform(0, 1) if rng.random() < 0.7 else 0.0
        cloud_scale = rng.uniform(0.5, 2.0)
        cloud_offset = rng.uniform(0, 512, 2)
        cloud_colour = grey(rng, rng.uniform(0.75, 1.0), 0.05)
        haze_colour = (horizon * 0.7 + 0.3 * grey(rng, 0.8)).astype(np.float32)
        haze_distance = rng.uniform(120, 900)
        return cls(
            zenith,
            horizon,
            cloud_cover,
            cloud_scale,
            cloud_offset,
            cloud_colour,
            haze_colour,
            haze_distance,
        )

    def at_dusk(self, rng: Rng) -> Sky:
        """Deep blue zenith over an orange / pink afterglow, dim clouds (street8's skies are day skies)."""
        zenith = hsv(rng.uniform(0.6, 0.72), rng.uniform(0.45, 0.8), rng.uniform(0.1, 0.28))
        horizon = hsv(rng.uniform(-0.06, 0.09), rng.uniform(0.35, 0.75), rng.uniform(0.45, 0.75))
        cloud_colour = hsv(rng.uniform(0.75, 0.98), rng.uniform(0.1, 0.35), rng.uniform(0.2, 0.4))
        return replace(
            self,
            zenith=zenith,
            horizon=horizon,
            cloud_colour=cloud_colour,
            haze_colour=(0.5 * horizon + 0.5 * zenith).astype(np.float32),
        )

    def render(self, frame: Frame) -> None:
        """Fills the pixels above the horizon that no object covers."""
        cam = frame.camera
        rows = min(cam.height_px, max(0, int(math.ceil(cam.horizon_v + 1))))
        if rows <= 0:
            return
        v = np.arange(rows, dtype=np.float32) + 0.5
        towards_horizon = np.clip(v / max(cam.horizon_v, 1.0), 0, 1) ** 1.3
        blend = towards_horizon[:, None]
        gradient = self.zenith[None, :] * (1 - blend) + self.horizon[None, :] * blend
        sky = np.broadcast_to(gradient[:, None, :], (rows, cam.width_px, 3)).copy()
        if self.cloud_cover > 0:
            # clouds keep their size in pixels across image widths, and drift as the camera moves
            texels_per_px = 512.0 / cam.width_px * self.cloud_scale * 0.5
            columns = np.arange(cam.width_px, dtype=np.float32)[None, :]
            uu = columns * texels_per_px + self.cloud_offset[0] + 20 * cam.z
            vv = v[:, None] * texels_per_px * 2.5 + self.cloud_offset[1]
            n = sample_texture("noise", uu, vv, 2.0) + 0.25 * sample_texture(
                "fine", uu * 2, vv * 2, 8.0
            )
            cover = np.clip((n - (1.2 - 1.6 * self.cloud_cover)) * 0.8, 0, 1) * (
                1 - 0.6 * towards_horizon[:, None]
            )
            shade = (1 - 0.25 * np.clip(n - 0.5, 0, 2))[..., None]
            sky = sky * (1 - cover[..., None]) + (self.cloud_colour * shade) * cover[..., None]
        free = frame.depth[:rows] == np.inf
        frame.image[:rows][free] = sky[free]
