"""The pinhole camera and the buffers one frame is drawn into.

World coordinates: x lateral (right positive), y up, z forward along the street.  The camera looks
down +z with no roll; its pitch is expressed as a shifted principal point (``horizon_v``), so image
rows stay parallel to the ground plane's lines of constant depth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .labels import SKY

NEAR_CLIP = 0.35  # near clipping plane (m)
SCENE_DEPTH = 260.0  # objects are placed up to this depth ahead of the camera (m)


@dataclass(frozen=True, slots=True)
class Camera:
    height_px: int
    width_px: int
    focal_px: float
    principal_u: float  # column of the optical axis
    horizon_v: float  # row of the horizon
    x: float  # position (m); y is the height above the ground
    y: float
    z: float

    def project(self, x, y, z_world):
        """Image (column, row) of a world point."""
        depth = z_world - self.z
        return (
            self.principal_u + self.focal_px * (x - self.x) / depth,
            self.horizon_v + self.focal_px * (self.y - y) / depth,
        )


class Frame:
    """Colour, label and depth buffers of one frame, plus the ray slopes every rasteriser needs."""

    def __init__(self, camera: Camera, band_share: float):
        height, width = camera.height_px, camera.width_px
        self.camera = camera
        self.image = np.zeros((height, width, 3), np.float32)
        self.labels = np.full((height, width), SKY, np.uint8)
        self.depth = np.full(
            (height, width), np.inf, np.float32
        )  # metres ahead of the camera; inf = sky
        # a pixel's ray moves ray_x[column] metres right and ray_drop[row] metres down per metre of depth
        self.ray_x = (
            (np.arange(width, dtype=np.float32) + 0.5) - camera.principal_u
        ) / camera.focal_px
        self.ray_drop = (
            (np.arange(height, dtype=np.float32) + 0.5) - camera.horizon_v
        ) / camera.focal_px
        self.band_mask = np.zeros(
            (height, width), np.bool_
        )  # pixels of objects that get an ignore band
        # objects whose own draw is below this share get the band (people, vehicles, poles)
        self.band_share = band_share


def covered_columns(camera: Camera, u_a: float, u_b: float) -> tuple[int, int]:
    """[first, end) of the columns whose centres lie between u_a and u_b, clipped to the image."""
    first = max(0, int(math.ceil(min(u_a, u_b) - 0.5)))
    end = min(camera.width_px, int(math.ceil(max(u_a, u_b) - 0.5)))
    return first, end


def covered_rows(camera: Camera, v_a: float, v_b: float) -> tuple[int, int]:
    """[first, end) of the rows whose centres lie between v_a and v_b, clipped to the image."""
    first = max(0, int(math.ceil(min(v_a, v_b) - 0.5)))
    end = min(camera.height_px, int(math.ceil(max(v_a, v_b) - 0.5)))
    return first, end
