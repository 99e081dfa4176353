"""The ground plane: bands of materials across the street (road, kerbs, sidewalks, grass, paving),
crossings, lane markings and zebras, and the shadows objects cast onto it.

The ground is rendered after the opaque objects and shades only the pixels that still show it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from PIL import Image, ImageDraw

from .camera import NEAR_CLIP, Frame
from .colours import grey, road_colour, sidewalk_colour, vegetation_colour
from .lighting import Light
from .objects import SceneObject
from .raster import clip_polygon_near
from .textures import sample_texture

Rng = np.random.Generator


class Surface(IntEnum):
    ROAD = 0
    KERB = 1
    WALK = 2  # the sidewalk proper
    GRASS = 3
    PAVED = 4  # front yards, forecourts, the ground beyond the buildings


class GroundMaterial:
    """Colour and texture of one band of ground, and the label it carries."""

    def __init__(self, rng: Rng, surface: Surface, label: int):
        self.surface, self.label = surface, label
        if surface == Surface.ROAD:
            self.colour, self.texture = road_colour(rng), "gravel"
            self.texels_per_m, self.amplitude = rng.uniform(250, 450), rng.uniform(0.08, 0.25)
        elif surface == Surface.KERB:
            self.colour, self.texture = grey(rng, rng.uniform(0.5, 0.85)), "moon"
            self.texels_per_m, self.amplitude = 100.0, 0.12
        elif surface == Surface.GRASS:
            self.colour, self.texture = vegetation_colour(rng), "grass"
            self.texels_per_m, self.amplitude = rng.uniform(60, 140), rng.uniform(0.25, 0.45)
        else:
            self.colour = sidewalk_colour(rng)
            self.texture = ["brick", "gravel", "moon", "fine"][rng.integers(4)]
            self.texels_per_m = (
                rng.uniform(80, 300) if self.texture != "brick" else rng.uniform(120, 260)
            )
            self.amplitude = rng.uniform(0.08, 0.3)
        # paving slabs of this size (m) with grout joints; 0: none
        self.tile = (
            rng.uniform(0.3, 0.8)
            if (
                surface in (Surface.WALK, Surface.PAVED)
                and self.texture != "brick"
                and rng.random() < 0.7
            )
            else 0
        )
        self.grout = rng.uniform(0.6, 0.85)  # brightness of the joints
        self.patchiness = rng.uniform(0.0, 0.25)
        self.seed = rng.uniform(0, 1000)


@dataclass(frozen=True)
class LaneMarking:
    x: float  # centre line of the marking (m)
    width: float
    solid: bool
    dash: float  # length of a dash (m), of each period
    period: float
    phase: float
    colour: np.ndarray


@dataclass
class Street:
    """The ground's layout: which material lies at each lateral position, crossings, markings."""

    materials: list[GroundMaterial]  # materials[0] is the road
    band_starts: np.ndarray  # x where each band after the first begins (float32, ascending)
    band_materials: np.ndarray  # index into materials per band (int32, one more than band_starts)
    crossings: list[tuple[float, float]]  # z spans where the road runs across the whole street
    zebras: list[tuple[float, float]]  # z spans of zebra stripes before some crossings
    markings: list[LaneMarking]
    marking_colour: np.ndarray  # of the zebras
    marking_wear: float
    road_edge: dict[int, float]  # |x| of the kerb line per side (-1 left, 1 right)


def render_ground(
    frame: Frame, street: Street, light: Light, objects: Sequence[SceneObject], t: float
) -> None:
    cam = frame.camera
    first_row = max(0, int(math.floor(cam.horizon_v + 0.5)))
    while (
        first_row < cam.height_px and frame.ray_drop[first_row] <= 1e-4
    ):  # rows at or above the horizon
        first_row += 1
    if first_row >= cam.height_px:
        return
    row_depth = (cam.y / frame.ray_drop[first_row:]).astype(np.float32)
    x = cam.x + frame.ray_x[None, :] * row_depth[:, None]  # (rows, W)
    z_world = np.broadcast_to((row_depth + cam.z)[:, None], x.shape)
    depth = np.broadcast_to(row_depth[:, None], x.shape)
    visible = frame.depth[first_row:] > depth
    material = street.band_materials[np.searchsorted(street.band_starts, x, side="right")]
    # crossings: everything outside the road becomes road inside a crossing
    for z_a, z_b in street.crossings:
        if z_b - cam.z < NEAR_CLIP:
            continue
        rows = (row_depth + cam.z >= z_a) & (row_depth + cam.z < z_b)
        if rows.any():
            material[rows] = 0
    colour = np.zeros(x.shape + (3,), np.float32)
    labels = np.zeros(x.shape, np.uint8)
    f = cam.focal_px
    m_per_px_x = (row_depth / f)[:, None]  # metres per pixel (lateral)
    m_per_px_z = (row_depth * row_depth / (f * cam.y))[:, None]  # metres per pixel (along z)
    m_per_px = np.sqrt(m_per_px_x * m_per_px_z)
    material[~visible] = -1
    for index in np.flatnonzero(np.bincount(material.ravel() + 1)[1:]):
        m = street.materials[index]
        sel = material == index
        xs, zs, px_size = x[sel], z_world[sel], np.broadcast_to(m_per_px, x.shape)[sel]
        k = m.texels_per_m
        n = sample_texture(m.texture, xs * k, zs * k, k * px_size)
        n_large = sample_texture("noise", xs * 3 + m.seed, zs * 1.0 + m.seed, px_size * 3)
        shade = 1 + m.amplitude * n + (0.08 + m.patchiness) * n_large * 0.5
        if m.tile:
            px_x = np.broadcast_to(m_per_px_x, x.shape)[sel]
            px_z = np.broadcast_to(m_per_px_z, x.shape)[sel]
            joint_x = np.abs((xs / m.tile) - np.round(xs / m.tile)) * m.tile
            joint_z = np.abs((zs / m.tile) - np.round(zs / m.tile)) * m.tile
            # share of the pixel covered by a 3 cm joint, per direction
            joint_cover = np.clip((0.015 - joint_x) / np.maximum(px_x, 1e-3) + 0.5, 0, 1) + np.clip(
                (0.015 - joint_z) / np.maximum(px_z, 1e-3) + 0.5, 0, 1
            )
            shade *= 1 - (1 - m.grout) * np.clip(joint_cover, 0, 1)
        if m.surface == Surface.ROAD:  # dark gutter along the kerbs
            to_kerb = np.minimum(xs + street.road_edge[-1], street.road_edge[1] - xs)
            shade *= 1 - 0.3 * np.clip(
                (0.3 - to_kerb) / np.maximum(np.broadcast_to(m_per_px_x, x.shape)[sel], 1e-3) + 0.5,
                0,
                1,
            )
        c = m.colour[None, :] * shade[:, None]
        if m.surface == Surface.ROAD:
            c = _paint_markings(
                street,
                c,
                xs,
                zs,
                np.broadcast_to(m_per_px_x, x.shape)[sel],
                np.broadcast_to(m_per_px_z, x.shape)[sel],
            )
        colour[sel] = c
        labels[sel] = m.label
    colour *= light.face(0, 1, 0)
    shadow = _shadow_mask(frame, first_row, light, objects, t)
    if shadow is not None:
        colour *= (1 - shadow)[..., None]
    frame.image[first_row:] = np.where(visible[..., None], colour, frame.image[first_row:])
    frame.labels[first_row:] = np.where(visible, labels, frame.labels[first_row:])
    frame.depth[first_row:] = np.where(visible, depth, frame.depth[first_row:])


def _paint_markings(
    street: Street,
    colour: np.ndarray,
    x: np.ndarray,
    z: np.ndarray,
    m_per_px_x: np.ndarray,
    m_per_px_z: np.ndarray,
) -> np.ndarray:
    """Lane lines and zebras over road pixels, anti-aliased by their coverage of each pixel."""
    if not street.markings and not street.zebras:
        return colour
    coverage = np.zeros(x.shape, np.float32)
    paint = np.zeros(colour.shape, np.float32)
    for mark in street.markings:
        d = np.abs(x - mark.x)
        near = d < mark.width + 2 * m_per_px_x
        if not near.any():
            continue
        cover = np.clip((mark.width / 2 - d[near]) / np.maximum(m_per_px_x[near], 1e-4) + 0.5, 0, 1)
        if not mark.solid:
            in_period = np.mod(z[near] - mark.phase, mark.period)
            px_z = m_per_px_z[near]
            cover_z = np.clip(
                np.minimum(in_period, mark.dash - in_period) / np.maximum(px_z, 1e-4) + 0.5, 0, 1
            )
            # far away a pixel spans several dashes: it sees their mean coverage
            cover_z = np.where(px_z > mark.period * 0.5, mark.dash / mark.period, cover_z)
            cover = cover * cover_z
        coverage[near] = np.maximum(coverage[near], cover)
        paint[near] = mark.colour
    for z_a, z_b in street.zebras:
        inside = (z > z_a) & (z < z_b)
        if not inside.any():
            continue
        in_stripe = np.mod(x[inside], 1.0)  # 0.5 m stripes, 0.5 m gaps
        cover = np.clip(
            np.minimum(in_stripe, 0.5 - in_stripe) / np.maximum(m_per_px_x[inside], 1e-4) + 0.5,
            0,
            1,
        )
        px_z = m_per_px_z[inside]
        cover_ends = np.clip(
            np.minimum(z[inside] - z_a, z_b - z[inside]) / np.maximum(px_z, 1e-4) + 0.5, 0, 1
        )
        cover = cover * cover_ends
        coverage[inside] = np.maximum(coverage[inside], cover)
        paint[inside] = street.marking_colour
    painted = coverage > 0
    if not painted.any():
        return colour
    wear = np.clip(
        1 - street.marking_wear * (1 + sample_texture("noise", x[painted] * 4, z[painted] * 2, 1)),
        0,
        1,
    )
    a = (coverage[painted] * wear)[:, None]
    colour[painted] = colour[painted] * (1 - a) + paint[painted] * a
    return colour


def _shadow_mask(
    frame: Frame, first_row: int, light: Light, objects: Sequence[SceneObject], t: float
) -> np.ndarray | None:
    """Darkening (0..1) of the ground rows from ``first_row`` down: each object's ground polygon,
    clipped at the near plane and projected; overlapping shadows take the strongest."""
    cam = frame.camera
    f = cam.focal_px
    polygons = []
    for o in objects:
        z0, z1 = o.z_range(t)
        if z1 - cam.z < -30 or z0 - cam.z > o.shadow_reach:
            continue
        corners = o.ground_shadow(light, t)
        if corners is None:
            continue
        strength = o.shadow_strength(light)
        if strength <= 0.01:
            continue
        clipped = clip_polygon_near([(px, pz - cam.z) for px, pz in corners], NEAR_CLIP)
        if len(clipped) >= 3:
            polygons.append(
                (
                    strength,
                    [
                        (
                            cam.principal_u + f * (px - cam.x) / pz,
                            cam.horizon_v + f * cam.y / pz - first_row,
                        )
                        for px, pz in clipped
                    ],
                )
            )
    if not polygons:
        return None
    mask = Image.new("L", (cam.width_px, cam.height_px - first_row), 0)
    pen = ImageDraw.Draw(mask)
    for strength, corners in sorted(
        polygons, key=lambda p: p[0]
    ):  # overwrite in increasing strength = max
        pen.polygon(corners, fill=int(strength * 255))
    return np.asarray(mask, np.float32) * np.float32(1 / 255)
