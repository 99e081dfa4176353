"""Primitive rasterisers: analytic planes and boxes, depth-tested sprites and bars.

Every primitive writes through the frame's depth buffer, so occlusion is right whatever the drawing
order; a surface's colour comes from a :class:`Shader` called with its visible pixels only.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from .camera import NEAR_CLIP, SCENE_DEPTH, Frame, covered_columns, covered_rows

# (colours [N, 3], keep [N] or None): a shader may cut pixels out of its surface (irregular hedge tops)
Shaded = tuple[np.ndarray, "np.ndarray | None"]


class Shader(Protocol):
    def __call__(
        self,
        face: str,
        x: np.ndarray,
        y: np.ndarray,
        z_world: np.ndarray,
        depth: np.ndarray,
        focal_px: float,
    ) -> Shaded:
        """Colours of visible surface points.  ``face`` is the plane's normal axis ("x", "y" or "z"),
        (x, y, z_world) the points, ``depth`` their distance ahead of the camera; ``focal_px`` turns a
        depth into metres per pixel, which picks the texture's mip level."""
        ...


def _write(frame: Frame, rows, cols, depth, shaded: Shaded, label: int, band: bool) -> None:
    colours, keep = shaded
    if keep is not None:
        if not keep.any():
            return
        rows, cols, colours = rows[keep], cols[keep], colours[keep]
        if np.ndim(depth):
            depth = depth[keep]
    frame.image[rows, cols] = colours
    frame.labels[rows, cols] = label
    frame.depth[rows, cols] = depth
    if band:
        frame.band_mask[rows, cols] = True


def face_z(
    frame: Frame,
    z_world: float,
    x0: float,
    x1: float,
    y0: float,
    y1: float,
    shader: Shader,
    label: int,
    band: bool = False,
) -> None:
    """Fronto-parallel rectangle at world depth ``z_world``."""
    cam = frame.camera
    depth = z_world - cam.z
    if depth < NEAR_CLIP:
        return
    px_per_m = cam.focal_px / depth
    c0, c1 = covered_columns(
        cam, cam.principal_u + (x0 - cam.x) * px_per_m, cam.principal_u + (x1 - cam.x) * px_per_m
    )
    r0, r1 = covered_rows(
        cam, cam.horizon_v + (cam.y - y1) * px_per_m, cam.horizon_v + (cam.y - y0) * px_per_m
    )
    if c0 >= c1 or r0 >= r1:
        return
    rr, cc = np.nonzero(frame.depth[r0:r1, c0:c1] > depth)
    if rr.size == 0:
        return
    rows, cols = rr + r0, cc + c0
    x = cam.x + frame.ray_x[cols] * depth
    y = cam.y - frame.ray_drop[rows] * depth
    pixel_depth = np.full(rows.shape, depth, np.float32)
    _write(
        frame,
        rows,
        cols,
        depth,
        shader("z", x, y, pixel_depth + cam.z, pixel_depth, cam.focal_px),
        label,
        band,
    )


def face_x(
    frame: Frame,
    x_world: float,
    z0: float,
    z1: float,
    y0: float,
    y1: float,
    shader: Shader,
    label: int,
    band: bool = False,
) -> None:
    """Rectangle in the plane x = x_world (parallel to the street), z in [z0, z1], y in [y0, y1]."""
    cam = frame.camera
    dx = x_world - cam.x
    if abs(dx) < 1e-3:
        return
    near, far = max(z0 - cam.z, NEAR_CLIP), z1 - cam.z
    if far <= near:
        return
    f = cam.focal_px
    c0, c1 = covered_columns(cam, cam.principal_u + dx * f / near, cam.principal_u + dx * f / far)
    if c0 >= c1:
        return
    ray_x = frame.ray_x[c0:c1]
    with np.errstate(divide="ignore", invalid="ignore"):
        column_depth = dx / ray_x  # where each column's rays meet the plane
    hits = (ray_x * dx > 0) & (column_depth >= near) & (column_depth <= far)
    if not hits.any():
        return
    corner_rows = [cam.horizon_v + (cam.y - y) * f / z for y in (y0, y1) for z in (near, far)]
    r0, r1 = covered_rows(cam, min(corner_rows), max(corner_rows))
    if r0 >= r1:
        return
    column_depth = np.where(hits, column_depth, np.inf).astype(np.float32)
    y = cam.y - frame.ray_drop[r0:r1, None] * column_depth[None, :]
    inside = (y >= y0) & (y < y1) & (frame.depth[r0:r1, c0:c1] > column_depth[None, :])
    rr, cc = np.nonzero(inside)
    if rr.size == 0:
        return
    depth = column_depth[cc]
    rows, cols = rr + r0, cc + c0
    x = np.full(rows.shape, x_world, np.float32)
    _write(
        frame,
        rows,
        cols,
        depth,
        shader("x", x, y[rr, cc], depth + cam.z, depth, cam.focal_px),
        label,
        band,
    )


def face_y(
    frame: Frame,
    y_world: float,
    x0: float,
    x1: float,
    z0: float,
    z1: float,
    shader: Shader,
    label: int,
    band: bool = False,
) -> None:
    """Horizontal rectangle at height ``y_world`` (tops of cars, kerbs, hedges)."""
    cam = frame.camera
    dy = cam.y - y_world
    if abs(dy) < 1e-3:
        return
    near, far = max(z0 - cam.z, NEAR_CLIP), z1 - cam.z
    if far <= near:
        return
    f = cam.focal_px
    r0, r1 = covered_rows(cam, cam.horizon_v + dy * f / near, cam.horizon_v + dy * f / far)
    if r0 >= r1:
        return
    ray_drop = frame.ray_drop[r0:r1]
    with np.errstate(divide="ignore", invalid="ignore"):
        row_depth = dy / ray_drop  # where each row's rays meet the plane
    hits = (ray_drop * dy > 0) & (row_depth >= near) & (row_depth <= far)
    if not hits.any():
        return
    corner_cols = [cam.principal_u + (x - cam.x) * f / z for x in (x0, x1) for z in (near, far)]
    c0, c1 = covered_columns(cam, min(corner_cols), max(corner_cols))
    if c0 >= c1:
        return
    row_depth = np.where(hits, row_depth, np.inf).astype(np.float32)
    x = cam.x + frame.ray_x[None, c0:c1] * row_depth[:, None]
    inside = (x >= x0) & (x < x1) & (frame.depth[r0:r1, c0:c1] > row_depth[:, None])
    rr, cc = np.nonzero(inside)
    if rr.size == 0:
        return
    depth = row_depth[rr]
    rows, cols = rr + r0, cc + c0
    y = np.full(rows.shape, y_world, np.float32)
    _write(
        frame,
        rows,
        cols,
        depth,
        shader("y", x[rr, cc], y, depth + cam.z, depth, cam.focal_px),
        label,
        band,
    )


def box(
    frame: Frame,
    x0: float,
    x1: float,
    y0: float,
    y1: float,
    z0: float,
    z1: float,
    shader: Shader,
    label: int,
    band: bool = False,
) -> None:
    """Axis-aligned box: only the faces that can face the camera (near end, street side, top)."""
    cam = frame.camera
    if z1 - cam.z < NEAR_CLIP or z0 - cam.z > SCENE_DEPTH * 1.6:
        return
    if z0 - cam.z > NEAR_CLIP:
        face_z(frame, z0, x0, x1, y0, y1, shader, label, band)
    if cam.x < x0:
        face_x(frame, x0, z0, z1, y0, y1, shader, label, band)
    elif cam.x > x1:
        face_x(frame, x1, z0, z1, y0, y1, shader, label, band)
    if cam.y > y1:
        face_y(frame, y1, x0, x1, z0, z1, shader, label, band)


def clip_sprite_box(
    frame: Frame, left: float, top: float, width: float, height: float
) -> tuple[int, int, int, int] | None:
    """Integer sprite box (left, top, width, height) clipped to the image, or None when off-screen."""
    cam = frame.camera
    l0, t0 = int(math.floor(left)), int(math.floor(top))
    l1, t1 = int(math.ceil(left + width)), int(math.ceil(top + height))
    l0, t0, l1, t1 = max(l0, 0), max(t0, 0), min(l1, cam.width_px), min(t1, cam.height_px)
    if l1 <= l0 or t1 <= t0:
        return None
    return l0, t0, l1 - l0, t1 - t0


def clip_polygon_near(polygon: list[tuple[float, float]], near: float) -> list[tuple[float, float]]:
    """Clip a polygon [(x, depth), ...] to depth >= near (Sutherland-Hodgman against one plane)."""
    out = []
    n = len(polygon)
    for i in range(n):
        (xa, za), (xb, zb) = polygon[i], polygon[(i + 1) % n]
        if za >= near:
            out.append((xa, za))
        if (za >= near) != (zb >= near):
            k = (near - za) / (zb - za)
            out.append((xa + k * (xb - xa), near))
    return out


def sprite(
    frame: Frame,
    left: int,
    top: int,
    alpha: np.ndarray,
    colour: np.ndarray,
    depth: float,
    label: int,
    label_threshold: float = 0.5,
    band: bool = False,
) -> None:
    """Composite a fronto-parallel sprite (alpha h×w, colour h×w×3) at image offset (left, top); pixels
    with at least ``label_threshold`` coverage take its label and depth."""
    height, width = frame.camera.height_px, frame.camera.width_px
    h, w = alpha.shape
    a0, b0 = max(0, -top), max(0, -left)
    a1, b1 = min(h, height - top), min(w, width - left)
    if a0 >= a1 or b0 >= b1:
        return
    alpha = alpha[a0:a1, b0:b1]
    colour = colour[a0:a1, b0:b1]
    window = (slice(top + a0, top + a1), slice(left + b0, left + b1))
    visible = frame.depth[window] > depth
    drawn = visible & (alpha > 0.02)
    if not drawn.any():
        return
    image = frame.image[window]
    alpha3 = alpha[..., None]
    image[drawn] = (image * (1 - alpha3) + colour * alpha3)[drawn]
    owned = visible & (alpha >= label_threshold)
    frame.labels[window][owned] = label
    frame.depth[window][owned] = depth
    if band:
        frame.band_mask[window][owned] = True


def vertical_bar(
    frame: Frame,
    x: float,
    z_world: float,
    y0: float,
    y1: float,
    width: float,
    colour: np.ndarray,
    label: int,
    shade: float = 0.25,
    min_px: float = 1.0,
    band: bool = False,
) -> None:
    """Thin vertical cylinder (pole, trunk): at least ``min_px`` wide; a sub-pixel width becomes alpha."""
    cam = frame.camera
    depth = z_world - cam.z
    if depth < NEAR_CLIP:
        return
    px_per_m = cam.focal_px / depth
    u_centre = cam.principal_u + (x - cam.x) * px_per_m
    width_px = width * px_per_m
    drawn_px = max(width_px, min_px)
    u_a, u_b = u_centre - drawn_px / 2, u_centre + drawn_px / 2
    c0, c1 = int(math.floor(u_a + 0.5)), int(math.floor(u_b + 0.5))
    if c1 <= c0:
        c1 = c0 + 1
    v_top, v_bottom = (
        cam.horizon_v + (cam.y - y1) * px_per_m,
        cam.horizon_v + (cam.y - y0) * px_per_m,
    )
    r0, r1 = int(math.floor(v_top + 0.5)), int(math.floor(v_bottom + 0.5))
    if r1 <= r0:
        r1 = r0 + 1
    n = c1 - c0
    across = (np.arange(n, dtype=np.float32) + 0.5) / n - 0.5
    profile = (1 + shade * across * 2)[None, :, None] * colour[None, None, :]  # lit from one side
    h = r1 - r0
    darker_at_foot = np.linspace(1.05, 0.9, h, dtype=np.float32)[:, None, None]
    alpha = np.full((h, n), min(1.0, max(width_px / drawn_px, 0.6)), np.float32)
    sprite(
        frame,
        c0,
        r0,
        alpha,
        np.broadcast_to(profile * darker_at_foot, (h, n, 3)),
        depth,
        label,
        label_threshold=0.3,
        band=band,
    )


def horizontal_bar(
    frame: Frame,
    x_a: float,
    x_b: float,
    z_world: float,
    y0: float,
    y1: float,
    colour: np.ndarray,
    label: int,
    min_px: float = 1.0,
) -> None:
    """Horizontal bar at constant depth (lamp arms, sign bars), at least ``min_px`` high."""
    cam = frame.camera
    depth = z_world - cam.z
    if depth < NEAR_CLIP:
        return
    px_per_m = cam.focal_px / depth
    u_a, u_b = (
        cam.principal_u + (x_a - cam.x) * px_per_m,
        cam.principal_u + (x_b - cam.x) * px_per_m,
    )
    c0, c1 = int(math.floor(min(u_a, u_b) + 0.5)), int(math.floor(max(u_a, u_b) + 0.5))
    v_top, v_bottom = (
        cam.horizon_v + (cam.y - y1) * px_per_m,
        cam.horizon_v + (cam.y - y0) * px_per_m,
    )
    if v_bottom - v_top < min_px:
        middle = (v_top + v_bottom) / 2
        v_top, v_bottom = middle - min_px / 2, middle + min_px / 2
    r0, r1 = int(math.floor(v_top + 0.5)), int(math.floor(v_bottom + 0.5))
    r1 = max(r1, r0 + 1)
    c1 = max(c1, c0 + 1)
    h, w = r1 - r0, c1 - c0
    sprite(
        frame,
        c0,
        r0,
        np.ones((h, w), np.float32),
        np.broadcast_to(colour, (h, w, 3)),
        depth,
        label,
        label_threshold=0.3,
    )
