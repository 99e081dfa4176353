"""street8: a procedural street-scene generator (images + dense labels) for training and testing.

Every frame is rendered from a small 3-D world laid out along a straight street (x lateral, y up,
z forward) and a pinhole camera at height ``ch`` looking down +z.  Surfaces are rendered analytically
per pixel (ground plane, axis-aligned boxes for buildings, hedges, vehicles and clutter) or as
depth-tested sprites (people, tree crowns, poles, sign plates), all through one z-buffer, so
perspective scaling and occlusion are correct by construction and the label of a pixel is the class
of the surface visible there.  Moving the camera along z gives coherent video sequences.

Textures come from photos that scikit-image ships inside its wheel (gravel, grass, brick, moon,
...), loaded without network access, mip-mapped once per process.

A *domain* (:class:`Domain`, presets in :data:`DOMAINS`) says how far a frame departs from the
street8 look the models are trained on: ``street8`` is the training distribution itself, ``shift``
draws per image a mix of fog, dusk, out-of-range camera heights / pitch / field of view and held-out
textures and colours, for evaluation off the training domain.  Every shift is drawn from its own
random stream, after the street8 draws, so a shifted frame shows the same scene as the street8 frame
of the same seed, and the street8 output is unchanged by the existence of domains.

Public API: :func:`render_scene`, :func:`render_sequence`, :func:`generate_dataset`, :class:`Domain`,
:data:`DOMAINS`.
"""

from __future__ import annotations

import colorsys
import io
import json
import math
import multiprocessing as mp
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .classes import IGNORE_INDEX, STREET8, write_classes_json

ROAD, SIDEWALK, BUILDING, VEGETATION, SKY, PERSON, VEHICLE, POLE = range(8)
IGN = IGNORE_INDEX

NEAR = 0.35  # near clipping plane (m)
ZFAR = 260.0  # objects are placed up to this depth ahead of the camera (m)

__all__ = ["render_scene", "render_sequence", "generate_dataset", "available_textures", "Domain", "DOMAINS",
           "get_domain"]

# ----------------------------------------------------------------------------------------------
# textures
# ----------------------------------------------------------------------------------------------

_TEX_S = 512  # tile size (power of two: wrap with a bit mask)
_TEX_LEVELS = 6
_TEX: dict[str, np.ndarray] | None = None
_POSTERS: list[np.ndarray] | None = None

# skimage.data loaders that read files shipped in the wheel (no pooch download); each is tried and
# skipped if it fails, with a procedural fallback so the generator never needs the network.
_TEX_SOURCES = {
    "gravel": ("gravel", False),  # asphalt, gravel paths
    "grass": ("grass", False),  # lawns, hedges, tree crowns
    "brick": ("brick", True),  # brick facades, brick paving (rotated: courses horizontal)
    "moon": ("moon", False),  # plaster, concrete, stains
}
_POSTER_SOURCES = ("coffee", "chelsea", "astronaut", "rocket")


def _fbm(seed: int, s: int, beta: float) -> np.ndarray:
    """Tileable fractal noise (power spectrum ~ 1/f^beta), zero mean, unit std."""
    g = np.random.default_rng(seed)
    spec = np.fft.fft2(g.standard_normal((s, s)))
    fy = np.fft.fftfreq(s)[:, None]
    fx = np.fft.fftfreq(s)[None, :]
    r = np.sqrt(fx * fx + fy * fy)
    r[0, 0] = 1.0
    spec *= r ** (-beta / 2)
    spec[0, 0] = 0
    n = np.real(np.fft.ifft2(spec))
    return (n - n.mean()) / (n.std() + 1e-9)


def _cells(seed: int, s: int, n: int) -> np.ndarray:
    """Tileable stone-block pattern (jittered-grid Voronoi cells, dark joints, one tone per stone),
    zero mean, unit std.  Only the shift domain uses it: street8 never shows cobbles or stone blocks,
    so it is a texture held out from training."""
    g = np.random.default_rng(seed)
    jit = g.uniform(0.15, 0.85, (n, n, 2))
    tone = g.standard_normal((n, n))
    c = np.arange(s, dtype=np.float64) * (n / s)  # texel -> cell units
    yy, xx = np.meshgrid(c, c, indexing="ij")
    iy, ix = np.floor(yy).astype(np.int64), np.floor(xx).astype(np.int64)
    f1 = np.full((s, s), np.inf)
    f2 = np.full((s, s), np.inf)
    t1 = np.zeros((s, s))
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            cy, cx = (iy + dy) % n, (ix + dx) % n  # wrap: the tile repeats seamlessly
            d = np.hypot(xx - (ix + dx + jit[cy, cx, 0]), yy - (iy + dy + jit[cy, cx, 1]))
            closer = d < f1
            f2 = np.where(closer, f1, np.minimum(f2, d))
            t1 = np.where(closer, tone[cy, cx], t1)
            f1 = np.where(closer, d, f1)
    joint = np.clip((f2 - f1) / 0.18, 0, 1)  # 0 on the border between two stones
    a = 1.6 * joint + 0.45 * t1 + 0.25 * _fbm(seed + 1, s, 1.2)
    return (a - a.mean()) / (a.std() + 1e-9)


def _stripes(seed: int, s: int, period: int) -> np.ndarray:
    """Tileable horizontal boards (siding, decking): a tone per board, a dark groove between boards and
    a grain along them.  Held out from street8 like :func:`_cells`."""
    g = np.random.default_rng(seed)
    t = np.arange(s)
    tone = g.standard_normal(s // period)[t // period]
    groove = np.where(t % period < max(1, period // 8), -2.5, 0.0)
    grain = _fbm(seed + 1, s, 1.6)
    grain = 0.5 * (grain + np.roll(grain, 1, 1) + np.roll(grain, 2, 1)) / 1.5  # smear along the boards
    a = (tone + groove)[:, None] * 0.8 + 0.35 * grain
    return (a - a.mean()) / (a.std() + 1e-9)


def _load_skimage(name: str) -> np.ndarray | None:
    try:
        import skimage.data as skd

        a = getattr(skd, name)()
        return np.asarray(a)
    except Exception:  # missing loader, needs a download, no pooch, ... -> skip
        return None


def _to_tile(gray: np.ndarray) -> np.ndarray:
    """Grey photo -> seamless zero-mean unit-std float tile of size _TEX_S (mirror-tiled)."""
    half = _TEX_S // 2
    im = Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8)).resize((half, half), Image.BILINEAR)
    a = np.asarray(im, np.float32)
    # remove slow illumination gradients, keep the texture
    low = np.asarray(Image.fromarray(a.astype(np.uint8)).filter(ImageFilter.GaussianBlur(24)), np.float32)
    a = a - low
    a = np.concatenate([a, a[:, ::-1]], 1)
    a = np.concatenate([a, a[::-1, :]], 0)
    return (a - a.mean()) / (a.std() + 1e-6)


def _mip(tile: np.ndarray) -> np.ndarray:
    """(L, S, S) uint8 stack, level l blurred for a footprint of 2**l texels; value = 128 + 40 n."""
    s = tile.shape[0]
    levels = []
    for lvl in range(_TEX_LEVELS):
        if lvl == 0:
            b = tile
        else:
            sig = 0.6 * 2 ** lvl
            k = np.fft.fftfreq(s)
            g = np.exp(-2 * (math.pi * sig) ** 2 * (k[:, None] ** 2 + k[None, :] ** 2))
            b = np.real(np.fft.ifft2(np.fft.fft2(tile) * g))  # periodic blur keeps it tileable
        levels.append(np.clip(128 + 40 * b, 0, 255).astype(np.uint8))
    return np.stack(levels)


def _textures() -> dict[str, np.ndarray]:
    global _TEX, _POSTERS
    if _TEX is None:
        tex: dict[str, np.ndarray] = {}
        for key, (name, rot) in _TEX_SOURCES.items():
            a = _load_skimage(name)
            if a is None:
                tile = _fbm(zlib.crc32(key.encode()), _TEX_S, 0.6)  # procedural fallback
            else:
                if a.ndim == 3:
                    a = a[..., :3].mean(-1)
                if rot:
                    a = np.rot90(a)
                tile = _to_tile(a)
            tex[key] = _mip(tile)
        tex["noise"] = _mip(_fbm(1234, _TEX_S, 2.6))  # smooth, large-scale variation / clouds
        tex["fine"] = _mip(_fbm(4321, _TEX_S, 1.0))
        # held-out textures of the shift domain (street8 never samples them; see _restyle)
        tex["cells"] = _mip(_cells(2468, _TEX_S, 16))  # 16 stones per tile side
        tex["stripes"] = _mip(_stripes(1357, _TEX_S, 16))  # 32 boards per tile
        posters = []
        for name in _POSTER_SOURCES:
            a = _load_skimage(name)
            if a is not None and a.ndim == 3:
                im = Image.fromarray(a[..., :3].astype(np.uint8)).resize((64, 64), Image.BILINEAR)
                posters.append(np.asarray(im, np.float32) / 255.0)
        if not posters:
            posters.append(np.full((64, 64, 3), 0.5, np.float32))
        _TEX, _POSTERS = tex, posters
    return _TEX


def available_textures() -> dict[str, bool]:
    """Which skimage photos loaded offline (True) or were replaced by procedural noise (False)."""
    out = {}
    for _key, (name, _rot) in _TEX_SOURCES.items():
        out[name] = _load_skimage(name) is not None
    for name in _POSTER_SOURCES:
        out[name] = _load_skimage(name) is not None
    return out


_LVL_EDGES = np.array([2.0 ** i for i in range(1, _TEX_LEVELS)], np.float32)


def _tex(name: str, s, t, fp) -> np.ndarray:
    """Sample texture ``name`` at texel coords (s, t) with per-pixel texel footprint ``fp``.
    Returns float32 values ~ N(0, 1)."""
    stack = _textures()[name]
    S = _TEX_S
    if np.ndim(fp) == 0:
        lvl = int(min(max(math.log2(max(float(fp), 1.0)), 0), _TEX_LEVELS - 1))
    else:
        lvl = np.searchsorted(_LVL_EDGES, fp).astype(np.int32)
    si = (np.asarray(s) + 65536.0).astype(np.int32) & (S - 1)
    ti = (np.asarray(t) + 65536.0).astype(np.int32) & (S - 1)
    v = stack.reshape(-1)[(lvl * S + ti) * S + si]
    return (v.astype(np.float32) - 128.0) * (1.0 / 40.0)


def _poster(i: int, u, v) -> np.ndarray:
    """Colour of poster ``i`` (a skimage colour photo) at (u, v) in [0, 1)."""
    _textures()
    p = _POSTERS[i % len(_POSTERS)]
    n = p.shape[0]
    return p[np.clip((v * n).astype(np.int32), 0, n - 1), np.clip((u * n).astype(np.int32), 0, n - 1)]


def _hash(i, j, k: float = 0.0) -> np.ndarray:
    v = np.sin(i * 12.9898 + j * 78.233 + k) * 43758.5453
    return (v - np.floor(v)).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# colours
# ----------------------------------------------------------------------------------------------


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0), 1), min(max(v, 0), 1)), np.float32)


def _grey(g, v, tint=0.06):
    return _hsv(g.random(), g.uniform(0, tint), v)


def _col_building(g) -> np.ndarray:
    k = g.random()
    if k < 0.32:
        return _grey(g, g.uniform(0.3, 0.85))
    if k < 0.52:
        return _hsv(g.uniform(0.06, 0.14), g.uniform(0.12, 0.4), g.uniform(0.55, 0.9))  # beige / cream
    if k < 0.70:
        return _hsv(g.uniform(-0.02, 0.07), g.uniform(0.35, 0.7), g.uniform(0.3, 0.65))  # brick red / brown
    if k < 0.88:
        return _hsv(g.random(), g.uniform(0.1, 0.4), g.uniform(0.55, 0.92))  # pastel, any hue (incl. green)
    return _hsv(g.random(), g.uniform(0, 0.3), g.uniform(0.15, 0.35))  # dark


def _col_road(g) -> np.ndarray:
    k = g.random()
    if k < 0.6:
        return _grey(g, g.uniform(0.18, 0.45), 0.08)
    if k < 0.8:
        return _grey(g, g.uniform(0.45, 0.68), 0.06)  # concrete / faded asphalt, like grey walls
    return _hsv(g.uniform(0.0, 0.12), g.uniform(0.1, 0.35), g.uniform(0.25, 0.55))  # brownish / reddish


def _col_sidewalk(g) -> np.ndarray:
    k = g.random()
    if k < 0.5:
        return _grey(g, g.uniform(0.35, 0.75), 0.08)
    if k < 0.8:
        return _hsv(g.uniform(-0.03, 0.1), g.uniform(0.2, 0.5), g.uniform(0.35, 0.7))  # red / brown paving
    return _hsv(g.random(), g.uniform(0.05, 0.25), g.uniform(0.3, 0.7))


def _col_veg(g) -> np.ndarray:
    k = g.random()
    if k < 0.62:
        return _hsv(g.uniform(0.2, 0.36), g.uniform(0.3, 0.75), g.uniform(0.2, 0.6))  # green
    if k < 0.78:
        return _hsv(g.uniform(0.04, 0.16), g.uniform(0.35, 0.75), g.uniform(0.3, 0.65))  # autumn / dry
    if k < 0.9:
        return _hsv(g.uniform(0.15, 0.45), g.uniform(0.08, 0.3), g.uniform(0.25, 0.55))  # grey-green
    return _hsv(g.uniform(0.2, 0.4), g.uniform(0.2, 0.6), g.uniform(0.08, 0.22))  # very dark


def _col_vehicle(g) -> np.ndarray:
    k = g.random()
    if k < 0.2:
        return _grey(g, g.uniform(0.75, 0.95), 0.04)  # white
    if k < 0.4:
        return _grey(g, g.uniform(0.05, 0.2), 0.05)  # black
    if k < 0.62:
        return _grey(g, g.uniform(0.3, 0.7), 0.06)  # grey / silver
    if k < 0.75:
        return _hsv(g.uniform(0.2, 0.45), g.uniform(0.3, 0.8), g.uniform(0.2, 0.6))  # greens
    return _hsv(g.random(), g.uniform(0.3, 0.9), g.uniform(0.25, 0.9))


def _col_any(g) -> np.ndarray:
    return _hsv(g.random(), g.uniform(0, 0.9), g.uniform(0.08, 0.95))


def _col_pole(g) -> np.ndarray:
    k = g.random()
    if k < 0.45:
        return _grey(g, g.uniform(0.3, 0.75), 0.05)
    if k < 0.65:
        return _grey(g, g.uniform(0.05, 0.2), 0.05)
    if k < 0.8:
        return _hsv(g.uniform(0.25, 0.45), g.uniform(0.3, 0.6), g.uniform(0.15, 0.4))  # dark green
    if k < 0.9:
        return _hsv(g.uniform(0.03, 0.1), g.uniform(0.4, 0.7), g.uniform(0.25, 0.5))  # rust / brown
    return _grey(g, g.uniform(0.8, 0.95), 0.05)


def _col_skin(g) -> np.ndarray:
    return _hsv(g.uniform(0.03, 0.09), g.uniform(0.25, 0.6), g.uniform(0.3, 0.95))


def _col_hair(g) -> np.ndarray:
    if g.random() < 0.15:
        return _grey(g, g.uniform(0.5, 0.85))
    return _hsv(g.uniform(0.02, 0.12), g.uniform(0.2, 0.7), g.uniform(0.05, 0.6))


# ----------------------------------------------------------------------------------------------
# camera, frame buffers and primitive rasterisers
# ----------------------------------------------------------------------------------------------


class _Cam:
    __slots__ = ("H", "W", "f", "u0", "vh", "cx", "ch", "cz")

    def __init__(self, H, W, f, u0, vh, cx, ch, cz):
        self.H, self.W, self.f, self.u0, self.vh, self.cx, self.ch, self.cz = H, W, f, u0, vh, cx, ch, cz

    def proj(self, X, Y, Zw):
        Z = Zw - self.cz
        return self.u0 + self.f * (X - self.cx) / Z, self.vh + self.f * (self.ch - Y) / Z


class _Frame:
    def __init__(self, cam: _Cam):
        H, W = cam.H, cam.W
        self.cam = cam
        self.img = np.zeros((H, W, 3), np.float32)
        self.lab = np.full((H, W), SKY, np.uint8)
        self.zb = np.full((H, W), np.inf, np.float32)
        self.ac = ((np.arange(W, dtype=np.float32) + 0.5) - cam.u0) / cam.f
        self.br = ((np.arange(H, dtype=np.float32) + 0.5) - cam.vh) / cam.f
        self.ign_ids = np.zeros((H, W), np.bool_)  # pixels belonging to objects that get an ignore band
        self.band_p = 0.0


def _rng_cols(fr, ua, ub):
    c0 = max(0, int(math.ceil(min(ua, ub) - 0.5)))
    c1 = min(fr.cam.W, int(math.ceil(max(ua, ub) - 0.5)))
    return c0, c1


def _rng_rows(fr, va, vb):
    r0 = max(0, int(math.ceil(min(va, vb) - 0.5)))
    r1 = min(fr.cam.H, int(math.ceil(max(va, vb) - 0.5)))
    return r0, r1


def _write(fr, R, C, Zd, res, label, band):
    col, keep = res
    if keep is not None:
        if not keep.any():
            return
        R, C, col = R[keep], C[keep], col[keep]
        if np.ndim(Zd):
            Zd = Zd[keep]
    fr.img[R, C] = col
    fr.lab[R, C] = label
    fr.zb[R, C] = Zd
    if band:
        fr.ign_ids[R, C] = True


def _face_z(fr, Zw, x0, x1, y0, y1, shader, label, band=False):
    """Fronto-parallel rectangle at world depth Zw."""
    cam = fr.cam
    Z = Zw - cam.cz
    if Z < NEAR:
        return
    s = cam.f / Z
    c0, c1 = _rng_cols(fr, cam.u0 + (x0 - cam.cx) * s, cam.u0 + (x1 - cam.cx) * s)
    r0, r1 = _rng_rows(fr, cam.vh + (cam.ch - y1) * s, cam.vh + (cam.ch - y0) * s)
    if c0 >= c1 or r0 >= r1:
        return
    rr, cc = np.nonzero(fr.zb[r0:r1, c0:c1] > Z)
    if rr.size == 0:
        return
    R, C = rr + r0, cc + c0
    X = cam.cx + fr.ac[C] * Z
    Y = cam.ch - fr.br[R] * Z
    Zd = np.full(R.shape, Z, np.float32)
    _write(fr, R, C, Z, shader("z", X, Y, Zd + cam.cz, Zd), label, band)


def _face_x(fr, Xw, z0, z1, y0, y1, shader, label, band=False):
    """Rectangle in the plane X = Xw (parallel to the street), z in [z0, z1], y in [y0, y1]."""
    cam = fr.cam
    dx = Xw - cam.cx
    if abs(dx) < 1e-3:
        return
    Zn, Zf = max(z0 - cam.cz, NEAR), z1 - cam.cz
    if Zf <= Zn:
        return
    f = cam.f
    c0, c1 = _rng_cols(fr, cam.u0 + dx * f / Zn, cam.u0 + dx * f / Zf)
    if c0 >= c1:
        return
    a = fr.ac[c0:c1]
    with np.errstate(divide="ignore", invalid="ignore"):
        Zc = dx / a
    okc = (a * dx > 0) & (Zc >= Zn) & (Zc <= Zf)
    if not okc.any():
        return
    vs = [cam.vh + (cam.ch - y) * f / z for y in (y0, y1) for z in (Zn, Zf)]
    r0, r1 = _rng_rows(fr, min(vs), max(vs))
    if r0 >= r1:
        return
    Zc = np.where(okc, Zc, np.inf).astype(np.float32)
    Y = cam.ch - fr.br[r0:r1, None] * Zc[None, :]
    m = (Y >= y0) & (Y < y1) & (fr.zb[r0:r1, c0:c1] > Zc[None, :])
    rr, cc = np.nonzero(m)
    if rr.size == 0:
        return
    Zd = Zc[cc]
    R, C = rr + r0, cc + c0
    X = np.full(R.shape, Xw, np.float32)
    _write(fr, R, C, Zd, shader("x", X, Y[rr, cc], Zd + cam.cz, Zd), label, band)


def _face_y(fr, Yw, x0, x1, z0, z1, shader, label, band=False):
    """Horizontal rectangle at height Yw (tops of cars, kerbs, hedges)."""
    cam = fr.cam
    dy = cam.ch - Yw
    if abs(dy) < 1e-3:
        return
    Zn, Zf = max(z0 - cam.cz, NEAR), z1 - cam.cz
    if Zf <= Zn:
        return
    f = cam.f
    r0, r1 = _rng_rows(fr, cam.vh + dy * f / Zn, cam.vh + dy * f / Zf)
    if r0 >= r1:
        return
    b = fr.br[r0:r1]
    with np.errstate(divide="ignore", invalid="ignore"):
        Zr = dy / b
    okr = (b * dy > 0) & (Zr >= Zn) & (Zr <= Zf)
    if not okr.any():
        return
    us = [cam.u0 + (x - cam.cx) * f / z for x in (x0, x1) for z in (Zn, Zf)]
    c0, c1 = _rng_cols(fr, min(us), max(us))
    if c0 >= c1:
        return
    Zr = np.where(okr, Zr, np.inf).astype(np.float32)
    X = cam.cx + fr.ac[None, c0:c1] * Zr[:, None]
    m = (X >= x0) & (X < x1) & (fr.zb[r0:r1, c0:c1] > Zr[:, None])
    rr, cc = np.nonzero(m)
    if rr.size == 0:
        return
    Zd = Zr[rr]
    R, C = rr + r0, cc + c0
    Y = np.full(R.shape, Yw, np.float32)
    _write(fr, R, C, Zd, shader("y", X[rr, cc], Y, Zd + cam.cz, Zd), label, band)


def _box(fr, x0, x1, y0, y1, z0, z1, shader, label, band=False):
    cam = fr.cam
    if z1 - cam.cz < NEAR or z0 - cam.cz > ZFAR * 1.6:
        return
    if z0 - cam.cz > NEAR:
        _face_z(fr, z0, x0, x1, y0, y1, shader, label, band)
    if cam.cx < x0:
        _face_x(fr, x0, z0, z1, y0, y1, shader, label, band)
    elif cam.cx > x1:
        _face_x(fr, x1, z0, z1, y0, y1, shader, label, band)
    if cam.ch > y1:
        _face_y(fr, y1, x0, x1, z0, z1, shader, label, band)


def _clip_box(cam, left, top, w, h):
    """Integer sprite box (left, top, w, h) clipped to the image, or None when off-screen."""
    l0, t0 = int(math.floor(left)), int(math.floor(top))
    l1, t1 = int(math.ceil(left + w)), int(math.ceil(top + h))
    l0, t0, l1, t1 = max(l0, 0), max(t0, 0), min(l1, cam.W), min(t1, cam.H)
    if l1 <= l0 or t1 <= t0:
        return None
    return l0, t0, l1 - l0, t1 - t0


def _clip_near(poly, znear):
    """Clip a polygon [(x, z), ...] (z = depth) to z >= znear (Sutherland-Hodgman, one plane)."""
    out = []
    n = len(poly)
    for i in range(n):
        (xa, za), (xb, zb) = poly[i], poly[(i + 1) % n]
        if za >= znear:
            out.append((xa, za))
        if (za >= znear) != (zb >= znear):
            k = (znear - za) / (zb - za)
            out.append((xa + k * (xb - xa), znear))
    return out


def _sprite(fr, left, top, alpha, col, Z, label, thr=0.5, band=False):
    """Composite a fronto-parallel sprite (alpha h x w, col h x w x 3) at image offset (left, top)."""
    H, W = fr.cam.H, fr.cam.W
    h, w = alpha.shape
    a0, b0 = max(0, -top), max(0, -left)
    a1, b1 = min(h, H - top), min(w, W - left)
    if a0 >= a1 or b0 >= b1:
        return
    al = alpha[a0:a1, b0:b1]
    cl = col[a0:a1, b0:b1]
    sl = (slice(top + a0, top + a1), slice(left + b0, left + b1))
    vis = fr.zb[sl] > Z
    draw = vis & (al > 0.02)
    if not draw.any():
        return
    img = fr.img[sl]
    al3 = al[..., None]
    img[draw] = (img * (1 - al3) + cl * al3)[draw]
    own = vis & (al >= thr)
    fr.lab[sl][own] = label
    fr.zb[sl][own] = Z
    if band:
        fr.ign_ids[sl][own] = True


def _vbar(fr, X, Zw, y0, y1, width, col, label, shade=0.25, min_px=1.0, band=False):
    """Thin vertical cylinder (pole, trunk): at least ``min_px`` wide, sub-pixel width -> alpha."""
    cam = fr.cam
    Z = Zw - cam.cz
    if Z < NEAR:
        return
    s = cam.f / Z
    uc = cam.u0 + (X - cam.cx) * s
    wpx = width * s
    wd = max(wpx, min_px)
    ua, ub = uc - wd / 2, uc + wd / 2
    c0, c1 = int(math.floor(ua + 0.5)), int(math.floor(ub + 0.5))
    if c1 <= c0:
        c1 = c0 + 1
    vt, vb = cam.vh + (cam.ch - y1) * s, cam.vh + (cam.ch - y0) * s
    r0, r1 = int(math.floor(vt + 0.5)), int(math.floor(vb + 0.5))
    if r1 <= r0:
        r1 = r0 + 1
    n = c1 - c0
    x = (np.arange(n, dtype=np.float32) + 0.5) / n - 0.5
    prof = (1 + shade * x * 2)[None, :, None] * col[None, None, :]
    h = r1 - r0
    g = np.linspace(1.05, 0.9, h, dtype=np.float32)[:, None, None]
    alpha = np.full((h, n), min(1.0, max(wpx / wd, 0.6)), np.float32)
    _sprite(fr, c0, r0, alpha, np.broadcast_to(prof * g, (h, n, 3)), Z, label, thr=0.3, band=band)


def _hbar(fr, xa, xb, Zw, y0, y1, col, label, min_px=1.0):
    """Horizontal bar at constant depth (lamp arms, sign bars)."""
    cam = fr.cam
    Z = Zw - cam.cz
    if Z < NEAR:
        return
    s = cam.f / Z
    ua, ub = cam.u0 + (xa - cam.cx) * s, cam.u0 + (xb - cam.cx) * s
    c0, c1 = int(math.floor(min(ua, ub) + 0.5)), int(math.floor(max(ua, ub) + 0.5))
    vt, vb = cam.vh + (cam.ch - y1) * s, cam.vh + (cam.ch - y0) * s
    if vb - vt < min_px:
        m = (vt + vb) / 2
        vt, vb = m - min_px / 2, m + min_px / 2
    r0, r1 = int(math.floor(vt + 0.5)), int(math.floor(vb + 0.5))
    r1 = max(r1, r0 + 1)
    c1 = max(c1, c0 + 1)
    h, w = r1 - r0, c1 - c0
    _sprite(fr, c0, r0, np.ones((h, w), np.float32), np.broadcast_to(col, (h, w, 3)), Z, label, thr=0.3)


# ----------------------------------------------------------------------------------------------
# domains: how a frame departs from the street8 training look
# ----------------------------------------------------------------------------------------------

Range = tuple[float, float]


@dataclass(frozen=True)
class Domain:
    """A look for the generator.  Each ``p_*`` is the chance that one image gets that shift; the ranges
    lie outside what street8 draws (its ranges are given in the comments), so a model trained on street8
    never saw them.  The scene itself (layout, objects, their classes) is the street8 scene of the same
    seed; fog, dusk and the restyle change only the image, the camera changes the view (labels are
    rendered with it, so they stay exact)."""

    name: str
    p_fog: float = 0.0
    p_dusk: float = 0.0
    p_camera: float = 0.0
    p_texture: float = 0.0
    # fog: e-folding distance of a depth-dependent blend towards a fog colour (street8 only has an
    # aerial haze with 120-900 m); the sky (no depth) takes this share of the fog colour
    fog_distance: Range = (15.0, 60.0)
    fog_sky: Range = (0.85, 1.0)
    # dusk: sun elevation in degrees (street8: 18-60), ambient and diffuse light (street8: 0.45-0.95
    # and 0.05-0.8), share of lit windows (street8: 7 %), glow of windows and lamps (street8: none)
    dusk_sun_elevation: Range = (2.0, 12.0)
    dusk_ambient: Range = (0.2, 0.35)
    dusk_diffuse: Range = (0.15, 0.35)
    dusk_lit_windows: Range = (0.25, 0.55)
    dusk_glow: Range = (1.0, 1.6)
    dusk_noise: Range = (5.0, 10.0)  # sensor noise std in grey levels (street8: 0.5-6)
    # camera: height in metres (street8: 1.2-2.3, low or high with even odds), horizon row as a share
    # of the image height (street8: 0.35-0.55; the renderer's pitch, a shift of the principal point),
    # horizontal field of view in degrees (street8: 50-75)
    camera_height_low: Range = (0.45, 0.9)
    camera_height_high: Range = (3.0, 4.5)
    p_horizon: float = 0.7
    # at 256x512 the horizon rows mean a pitch of about 6-15 degrees down / 3-10 up (street8: 7 down to 2 up)
    horizon_high: Range = (0.15, 0.28)
    horizon_low: Range = (0.62, 0.72)
    p_wide: float = 0.3
    wide_hfov: Range = (80.0, 95.0)
    # textures / colours: each of the four groups is restyled with this chance (at least one is)
    p_texture_group: float = 0.6

    def __post_init__(self) -> None:
        for k, v in asdict(self).items():
            if k.startswith("p_") and not 0.0 <= v <= 1.0:
                raise ValueError(f"domain {self.name!r}: {k} = {v} is not a probability")
            if isinstance(v, tuple) and not v[0] <= v[1]:
                raise ValueError(f"domain {self.name!r}: {k} = {v} is not a (low, high) range")

    @property
    def is_street8(self) -> bool:
        """True when no shift can be drawn: the output is street8's, bit for bit."""
        return max(self.p_fog, self.p_dusk, self.p_camera, self.p_texture) <= 0.0


DOMAINS: dict[str, Domain] = {
    "street8": Domain("street8"),
    # the cross-domain test set: a random mix, so it holds each case alone and in combinations
    "shift": Domain("shift", p_fog=0.4, p_dusk=0.4, p_camera=0.4, p_texture=0.45),
    # one shift each, every image: to tell which change costs a model how much
    "fog": Domain("fog", p_fog=1.0),
    "dusk": Domain("dusk", p_dusk=1.0),
    "camera": Domain("camera", p_camera=1.0),
    "texture": Domain("texture", p_texture=1.0),
}


def get_domain(domain: str | Domain | None) -> Domain:
    if domain is None:
        return DOMAINS["street8"]
    if isinstance(domain, Domain):
        return domain
    try:
        return DOMAINS[domain]
    except KeyError:
        raise ValueError(f"unknown domain {domain!r}; choose one of {', '.join(DOMAINS)}") from None


TEXTURE_GROUPS = ("building", "road", "sidewalk", "vegetation")


@dataclass
class ShiftDraw:
    """The shifts one world (image or sequence) got; written per image into ``domain.json``."""

    fog_distance: float = 0.0  # 0: no fog
    dusk: bool = False
    camera_height: float | None = None  # None: street8's draw kept
    horizon: float | None = None
    hfov: float | None = None
    textures: tuple[str, ...] = ()  # restyled groups, a subset of TEXTURE_GROUPS

    @property
    def cases(self) -> list[str]:
        out = []
        if self.fog_distance > 0:
            out.append("fog")
        if self.dusk:
            out.append("dusk")
        if self.camera_height is not None:
            out.append("camera")
        if self.textures:
            out.append("texture")
        return out

    def record(self) -> dict:
        d = {"cases": self.cases}
        d.update({k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()
                  if v not in (None, 0.0, False, ())})
        return d


def _shift_rng(seed: int, part: int) -> np.random.Generator:
    # its own stream per part, so street8's draws (generator ``g``) are never consumed or reordered
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5817F7, part])


def _draw_shift(domain: Domain, seed: int) -> tuple[ShiftDraw, np.random.Generator | None]:
    """Which shifts this world gets, and the generator for their details (None for street8)."""
    if domain.is_street8:
        return ShiftDraw(), None
    g = _shift_rng(seed, 0)
    ps = np.array([domain.p_fog, domain.p_dusk, domain.p_camera, domain.p_texture])
    on = g.random(4) < ps
    if not on.any():  # every image of a shifted domain is off the training domain in some way
        on[g.choice(4, p=ps / ps.sum())] = True
    d = ShiftDraw()
    if on[0]:
        d.fog_distance = float(g.uniform(*domain.fog_distance))
    d.dusk = bool(on[1])
    if on[2]:
        d.camera_height = float(g.uniform(*(domain.camera_height_low if g.random() < 0.5
                                              else domain.camera_height_high)))
        if g.random() < domain.p_horizon:
            d.horizon = float(g.uniform(*(domain.horizon_high if g.random() < 0.5 else domain.horizon_low)))
        if g.random() < domain.p_wide:
            d.hfov = float(g.uniform(*domain.wide_hfov))
    if on[3]:
        pick = g.random(len(TEXTURE_GROUPS)) < domain.p_texture_group
        if not pick.any():
            pick[g.integers(len(TEXTURE_GROUPS))] = True
        d.textures = tuple(n for n, k in zip(TEXTURE_GROUPS, pick) if k)
    return d, _shift_rng(seed, 1)


# ----------------------------------------------------------------------------------------------
# lighting
# ----------------------------------------------------------------------------------------------


class _Light:
    def __init__(self, g):
        # night-time extras (street8 values: no glow, 7 % of windows lit); the dusk shift raises them
        self.glow = 0.0
        self.win_thr = 0.93
        self.sunny = g.random() < 0.6
        el = math.radians(g.uniform(18, 60))
        az = g.uniform(0, 2 * math.pi)
        self.sun = np.array([math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)])
        if self.sunny:
            self.amb, self.dif = g.uniform(0.45, 0.65), g.uniform(0.5, 0.8)
            self.shadow = g.uniform(0.35, 0.6)
        else:
            self.amb, self.dif = g.uniform(0.75, 0.95), g.uniform(0.05, 0.2)
            self.shadow = g.uniform(0.0, 0.12)

    def face(self, nx, ny, nz) -> float:
        d = nx * self.sun[0] + ny * self.sun[1] + nz * self.sun[2]
        return float(self.amb + self.dif * max(0.0, d))

    def shadow_offset(self, h):
        """Ground displacement (dx, dz) of the shadow of a point at height h."""
        sy = max(self.sun[1], 0.25)
        return -h * self.sun[0] / sy, -h * self.sun[2] / sy


# ----------------------------------------------------------------------------------------------
# shaders (called with 1-D arrays of the visible pixels: face, X, Y, Zw, depth)
# ----------------------------------------------------------------------------------------------


class _Facade:
    def __init__(self, g, light, side, xf, z0, h, simple=False):
        self.side, self.xf, self.z0, self.h = side, xf, z0, h
        self.base = _col_building(g)
        self.tex = ["brick", "moon", "gravel", "fine", "noise"][g.choice(5, p=[0.3, 0.25, 0.15, 0.2, 0.1])]
        if self.tex == "brick":
            self.k, self.amp = g.uniform(90, 140), g.uniform(0.12, 0.3)
            if g.random() < 0.6:
                self.base = _hsv(g.uniform(-0.02, 0.08), g.uniform(0.3, 0.7), g.uniform(0.3, 0.7))
        else:
            self.k, self.amp = g.uniform(30, 160), g.uniform(0.05, 0.22)
        self.fh = g.uniform(2.8, 3.8)
        self.gh = self.fh * g.uniform(1.0, 1.4)
        self.bw = g.uniform(1.8, 4.0)
        self.ww = self.bw * g.uniform(0.3, 0.7)
        self.wh = self.fh * g.uniform(0.35, 0.65)
        self.sill = (self.fh - self.wh) * g.uniform(0.3, 0.65)
        self.style = ["grid", "grid", "grid", "ribbon", "none"][g.integers(5)] if not simple else "grid"
        self.win = _hsv(g.uniform(0.45, 0.7), g.uniform(0, 0.4), g.uniform(0.06, 0.35))
        self.win_var = g.uniform(0.1, 0.5)
        self.frame = self.base * g.uniform(0.6, 1.4) if g.random() < 0.7 else _grey(g, g.uniform(0.6, 0.95))
        self.fw = g.uniform(0.05, 0.15)
        self.shop = g.random() < 0.45
        self.posters = g.random() < 0.5
        self.door_sp = g.uniform(6, 20)
        self.door_off = g.uniform(0, self.door_sp - 2)
        self.door_w = g.uniform(0.9, 1.8)
        self.door_col = _col_any(g) * 0.6 if g.random() < 0.6 else self.win * 0.8
        self.cornice = g.uniform(0.2, 0.8) if g.random() < 0.6 else 0.0
        self.cornice_col = self.base * g.uniform(0.6, 1.3)
        self.end_windows = g.random() < 0.4
        self.seed = g.uniform(0, 100)
        nx = 1.0 if side < 0 else -1.0
        self.lit_x = light.face(nx, 0, 0)
        self.lit_z = light.face(0, 0, -1)
        self.lit_y = light.face(0, 1, 0)
        self.win_thr, self.glow = light.win_thr, light.glow

    def __call__(self, face, X, Y, Zw, Z):
        f_px = _F_HINT[0]
        if face == "x":
            s, lit, obl = Zw - self.z0, self.lit_x, 2.5
        elif face == "z":
            s, lit, obl = np.abs(X - self.xf), self.lit_z, 1.0
        else:
            return np.broadcast_to(self.base * self.lit_y * 0.8, (X.size, 3)).copy(), None
        t = Y
        fp = self.k * Z / f_px * obl
        n = _tex(self.tex, s * self.k, t * self.k, fp)
        n2 = _tex("noise", s * 6 + self.seed * 50, t * 6, Z / f_px * 6)
        shade = 1 + self.amp * n + 0.06 * n2
        col = self.base[None, :] * shade[:, None]
        glow = None  # lit windows that shine (dusk): set after the light is applied
        if self.style != "none" and (face == "x" or self.end_windows):
            bi = np.floor(s / self.bw)
            sb = s - bi * self.bw - (self.bw - self.ww) / 2
            up = t - self.gh
            fi = np.floor(up / self.fh)
            tb = up - fi * self.fh - self.sill
            upper = (up > 0) & (t < self.h - self.cornice - 0.4)
            if self.style == "ribbon":
                inw = upper & (tb > 0) & (tb < self.wh)
                frm = upper & (tb > -self.fw) & (tb < self.wh + self.fw) & ~inw
            else:
                inw = upper & (sb > 0) & (sb < self.ww) & (tb > 0) & (tb < self.wh)
                frm = (upper & (sb > -self.fw) & (sb < self.ww + self.fw) & (tb > -self.fw)
                       & (tb < self.wh + self.fw) & ~inw)
            shop = None
            if self.shop:
                sbay = np.floor(s / 6.0)
                shop = (t > 0.4) & (t < self.gh - 0.5) & ((s - sbay * 6.0) > 0.5)
                inw = inw | shop
            if inw.any():
                hv = _hash(bi[inw], fi[inw], self.seed)
                refl = np.clip(tb[inw] / self.wh, 0, 1) if self.style != "none" else 0.5
                wc = self.win[None, :] * (1 + self.win_var * (hv[:, None] * 2 - 1)) * (0.7 + 0.6 * refl)[:, None]
                lit_w = hv > self.win_thr
                wc[lit_w] = np.array([0.9, 0.8, 0.55], np.float32)
                col[inw] = wc
                if self.glow > 0:
                    glow = np.zeros(X.size, np.bool_)
                    glow[np.flatnonzero(inw)[lit_w]] = True
            if shop is not None and self.posters and shop.any():
                # posters / displays behind some shop windows (skimage colour photos)
                ph = _hash(sbay[shop], 7.0, self.seed)
                pm = ph < 0.5
                if pm.any():
                    u = ((s[shop] - sbay[shop] * 6.0 - 0.5) / 5.5)[pm]
                    v = (1 - (t[shop] - 0.4) / max(self.gh - 0.9, 0.1))[pm]
                    pc = _poster(int(ph[pm][0] * 1000), u, v)
                    idx = np.flatnonzero(shop)[pm]
                    col[idx] = 0.65 * pc + 0.35 * col[idx]
            if frm.any():
                col[frm] = self.frame * (1 + 0.1 * n[frm, None])
            if face == "x" and not self.shop:  # doors on the ground floor
                ds = s - np.floor(s / self.door_sp) * self.door_sp - self.door_off
                door = (ds > 0) & (ds < self.door_w) & (t < 2.2)
                if door.any():
                    col[door] = self.door_col * (1 + 0.15 * n[door, None]) * (0.8 + 0.2 * (t[door, None] > 1.9))
        if self.cornice > 0:
            cm = t > self.h - self.cornice
            col[cm] = self.cornice_col * (1 + 0.1 * n[cm, None])
            if glow is not None:
                glow &= ~cm
        # dirt near the ground
        col *= (lit * (0.85 + 0.15 * np.clip(t * 1.25, 0, 1)))[:, None]
        if glow is not None and glow.any():  # emitted light: not dimmed by the dusk illumination
            col[glow] = np.array([1.0, 0.82, 0.5], np.float32) * self.glow * (0.75 + 0.25 * n[glow, None])
        return col, None


_F_HINT = [400.0]  # focal length of the frame being rendered (shaders need it for mip selection)


class _Flat:
    """Uniformly coloured, textured box shader (clutter, tyres, lamp heads, cabinets)."""

    def __init__(self, col, light, tex="fine", k=60.0, amp=0.12, poster=-1, h=1.0):
        self.col, self.tex, self.k, self.amp, self.poster, self.h = col, tex, k, amp, poster, h
        self.lit = {"x": light.face(1, 0, 0) * 0.5 + light.face(-1, 0, 0) * 0.5,
                    "z": light.face(0, 0, -1), "y": light.face(0, 1, 0)}

    def __call__(self, face, X, Y, Zw, Z):
        s = Zw if face == "x" else X
        t = Y if face != "y" else Zw
        n = _tex(self.tex, s * self.k, t * self.k, self.k * Z / _F_HINT[0])
        col = self.col[None, :] * (1 + self.amp * n)[:, None]
        if self.poster >= 0 and face != "y":
            pm = (t > 0.3 * self.h) & (t < 0.9 * self.h)
            if pm.any():
                col[pm] = _poster(self.poster, np.mod(s[pm], 1.0), (0.9 * self.h - t[pm]) / (0.6 * self.h))
        return col * self.lit[face], None


class _VegBox:
    """Hedges and tree lines: grass texture, irregular top."""

    def __init__(self, g, light, col, h):
        self.col, self.h = col, h
        self.k = g.uniform(40, 90)
        self.rough = g.uniform(0.1, 0.35) * min(h, 3.0)
        self.seed = g.uniform(0, 300)
        self.lit = {"x": 0.5 * (light.face(1, 0, 0) + light.face(-1, 0, 0)), "z": light.face(0, 0, -1),
                    "y": light.face(0, 1, 0)}

    def __call__(self, face, X, Y, Zw, Z):
        s = Zw if face == "x" else X
        t = Y if face != "y" else Zw
        fp = self.k * Z / _F_HINT[0] * (2.5 if face == "x" else 1)
        n = _tex("grass", s * self.k, t * self.k, fp)
        nn = _tex("noise", s * 8 + self.seed, t * 8 + self.seed, Z / _F_HINT[0] * 8)
        col = self.col[None, :] * ((1 + 0.35 * n + 0.15 * nn) * self.lit[face])[:, None]
        if face == "y":
            return col, None
        top = self.h - self.rough * (0.5 + 0.5 * _tex("noise", s * 25 + self.seed, self.seed * 3, 1))
        return col, Y < top


class _VehicleShader:
    def __init__(self, g, light, part, v):
        self.part, self.v = part, v
        self.lit = {"x": 0.5 * (light.face(1, 0, 0) + light.face(-1, 0, 0)), "z": light.face(0, 0, -1),
                    "y": light.face(0, 1, 0) * 1.05}
        self.glow = light.glow

    def __call__(self, face, X, Y, Zw, Z):
        v = self.v
        N = X.size
        body = v.col
        col = np.empty((N, 3), np.float32)
        col[:] = body
        n = _tex("fine", (Zw if face == "x" else X) * 80, Y * 80, 80 * Z / _F_HINT[0])
        if self.part == "tyre":
            col[:] = 0.06 + 0.02 * n[:, None]
            return col, None
        if face == "y":
            g = 1.15 if self.part == "body" else 1.1
            col *= g
            if v.kind == "bus" or v.kind == "van":
                col *= 0.95
            return col * (self.lit["y"] * (1 + 0.04 * n))[:, None], None
        if self.part == "body":
            y0, y1 = v.yb0, v.yb1
            ly = (Y - y0) / (y1 - y0)
            lamps = None
            if face == "z":
                lx = (X - v.x0) / (v.x1 - v.x0)
                bumper = ly < 0.22
                col[bumper] = body * 0.55 if v.dark_bumper else body * 0.85
                lamps = (ly > 0.55) & (ly < 0.85) & ((lx < 0.16) | (lx > 0.84))
                col[lamps] = v.lamp
                xm = (v.x0 + v.x1) / 2
                plate = (np.abs(X - xm) < 0.26) & (Y > y0 + 0.12) & (Y < y0 + 0.25)
                col[plate] = v.plate
                if v.kind == "bus":
                    win = (ly > 0.55) & (lx > 0.08) & (lx < 0.92)
                    col[win] = v.glass * (0.8 + 0.4 * ly[win, None])
            else:
                s = Zw - v.z0
                for wz in v.wheels:
                    d2 = (s - wz) ** 2 + (Y - v.r) ** 2
                    arch = d2 < (v.r * 1.12) ** 2
                    col[arch] = 0.05
                    hub = d2 < (v.r * 0.5) ** 2
                    col[hub] = v.hub
                door = np.abs(s - v.door) < 0.025
                col[door & (ly > 0.15)] *= 0.6
                col[ly < 0.12] *= 0.7
                if v.kind == "bus":
                    win = (ly > 0.55) & (ly < 0.92) & ((s % 1.6) > 0.15)
                    col[win] = v.glass * (0.8 + 0.4 * ly[win, None])
            col *= (self.lit[face] * (1 + 0.04 * n) * (0.9 + 0.2 * np.clip(ly, 0, 1)))[:, None]
            if self.glow > 0 and lamps is not None:  # head and tail lights are on at dusk
                col[lamps] = v.lamp * (0.5 + self.glow)
            return col, None
        # cabin: windows
        y0, y1 = v.yc0, v.yc1
        ly = (Y - y0) / (y1 - y0)
        if face == "z":
            lx = (X - v.cx0) / (v.cx1 - v.cx0)
            win = (lx > 0.07) & (lx < 0.93) & (ly > 0.08) & (ly < 0.88)
        else:
            s = (Zw - v.cz0) / (v.cz1 - v.cz0)
            win = (ly > 0.1) & (ly < 0.85) & (s > 0.05) & (s < 0.95) & (np.abs(s - v.pillar) > 0.04)
        gl = v.glass[None, :] * (0.7 + 0.6 * ly[win, None]) * (1 + 0.05 * n[win, None])
        col *= (self.lit[face] * (1 + 0.04 * n))[:, None]
        col[win] = gl
        return col, None


# ----------------------------------------------------------------------------------------------
# world objects
# ----------------------------------------------------------------------------------------------


class _Building:
    opaque = True

    def __init__(self, g, light, side, xf, depth, z0, z1, h, simple=False):
        self.side, self.xf, self.depth, self.z0, self.z1, self.h = side, xf, depth, z0, z1, h
        self.shader = _Facade(g, light, side, xf, z0, h, simple)

    def zrange(self, t):
        return self.z0, self.z1

    def draw(self, fr, t):
        x0, x1 = (self.xf - self.depth, self.xf) if self.side < 0 else (self.xf, self.xf + self.depth)
        _box(fr, x0, x1, 0.0, self.h, self.z0, self.z1, self.shader, BUILDING)

    def shadow(self, light, t):
        dx, dz = light.shadow_offset(self.h)
        if dx * self.side > 0:  # shadow falls away from the street
            return None
        return [(self.xf, self.z0), (self.xf, self.z1), (self.xf + dx, self.z1 + dz), (self.xf + dx, self.z0 + dz)]


class _Hedge:
    opaque = True

    def __init__(self, g, light, x0, x1, z0, z1, h, col=None):
        self.x0, self.x1, self.z0, self.z1, self.h = x0, x1, z0, z1, h
        self.shader = _VegBox(g, light, col if col is not None else _col_veg(g), h)

    def zrange(self, t):
        return self.z0, self.z1

    def draw(self, fr, t):
        _box(fr, self.x0, self.x1, 0.0, self.h + 0.01, self.z0, self.z1, self.shader, VEGETATION)

    def shadow(self, light, t):
        return None


class _Tree:
    opaque = False

    def __init__(self, g, light, x, z, scale=1.0):
        self.x, self.z = x, z
        self.trunk_h = g.uniform(1.8, 4.0) * scale
        self.r = g.uniform(1.3, 3.8) * scale
        self.trunk_w = g.uniform(0.15, 0.45) * scale
        self.trunk_col = _hsv(g.uniform(0.05, 0.12), g.uniform(0.1, 0.5), g.uniform(0.12, 0.4))
        self.col = _col_veg(g)
        n = int(g.integers(7, 16))
        ang = g.uniform(0, 2 * math.pi, n)
        rad = np.sqrt(g.uniform(0, 1, n)) * 0.6
        self.circ = np.stack([np.cos(ang) * rad * g.uniform(0.9, 1.4), np.sin(ang) * rad * g.uniform(0.7, 1.2),
                              g.uniform(0.3, 0.6, n)], 1)  # (dx, dy, r) in crown radii
        self.cy = self.trunk_h + self.r * g.uniform(0.7, 1.0)
        self.k = g.uniform(50, 110)
        self.seed = g.uniform(0, 500)
        self.lit = light.face(0, 0, -1)
        self.sun_x = float(light.sun[0]) if light.sunny else 0.0

    def zrange(self, t):
        return self.z - 0.5, self.z + 0.5

    def draw(self, fr, t):
        cam = fr.cam
        Z = self.z - cam.cz
        if Z < NEAR * 4:
            return
        _vbar(fr, self.x, self.z + 0.01, 0.0, self.trunk_h + self.r * 0.3, self.trunk_w, self.trunk_col, VEGETATION)
        s = cam.f / Z
        R = self.r * s
        if R < 0.8:
            return
        uc, vc = cam.proj(self.x, self.cy, self.z)
        bb = _clip_box(cam, uc - 1.5 * R, vc - 1.3 * R, 3 * R + 2, 2.6 * R + 2)
        if bb is None:
            return
        left, top, w, h = bb
        ss = 2 if R < 12 else 1
        m = Image.new("L", (w * ss, h * ss), 0)
        d = ImageDraw.Draw(m)
        cxp, cyp = (uc - left) * ss, (vc - top) * ss
        for dx, dy, r in self.circ:
            px, py, pr = cxp + dx * R * ss, cyp - dy * R * ss, r * R * ss * 1.25
            d.ellipse([px - pr, py - pr, px + pr, py + pr], fill=255)
        a = np.asarray(m, np.float32) * (1 / 255)
        if ss > 1:
            a = a.reshape(h, ss, w, ss).mean((1, 3))
        # leaf texture on the crown plane
        cols = (np.arange(w, dtype=np.float32) + left + 0.5 - cam.u0) / cam.f * Z + cam.cx
        rows = cam.ch - (np.arange(h, dtype=np.float32) + top + 0.5 - cam.vh) / cam.f * Z
        rr, cc = np.nonzero((a > 0.02) & (fr.zb[top:top + h, left:left + w] > Z))
        if rr.size == 0:
            return
        X, Y = cols[cc], rows[rr]
        k = self.k
        n1 = _tex("gravel", X * k + self.seed, Y * k, k * Z / cam.f)  # clumps of leaves
        n2 = _tex("grass", X * k * 2.5, Y * k * 2.5 + self.seed, 2.5 * k * Z / cam.f)
        nn = _tex("noise", X * 4 + self.seed, Y * 4, Z / cam.f * 4)
        ly = np.clip((Y - self.cy) / self.r, -1, 1)
        lx = np.clip((X - self.x) / self.r, -1, 1)
        sh = (1 + 0.28 * n1 + 0.12 * n2 + 0.22 * nn) * (0.85 + 0.2 * ly + 0.15 * lx * self.sun_x) * self.lit
        av = a[rr, cc]
        av = np.where((nn < -1.1) & (av < 0.99), av * 0.2, av)  # see-through gaps at the crown's edge
        a = np.zeros_like(a)
        a[rr, cc] = av
        col = np.zeros((h, w, 3), np.float32)
        col[rr, cc] = self.col[None, :] * np.maximum(sh, 0.05)[:, None]
        _sprite(fr, left, top, a, col, Z, VEGETATION)

    def shadow(self, light, t):
        if not light.sunny:
            return None
        dx, dz = light.shadow_offset(self.cy)
        cxs, czs = self.x + dx, self.z + dz
        r = self.r * 0.9
        return [(cxs + r * math.cos(a), czs + r * 1.3 * math.sin(a)) for a in np.linspace(0, 2 * math.pi, 17)[:-1]]


class _Pole:
    opaque = False

    def __init__(self, g, light, x, z, kind, side):
        self.x, self.z, self.kind, self.side = x, z, kind, side
        self.col = _col_pole(g)
        self.lit = light.face(0, 0, -1)
        self.glow = light.glow
        if kind == "lamp":
            self.h = g.uniform(5.0, 10.0)
            self.w = g.uniform(0.08, 0.2)
            self.arm = g.uniform(0.4, 2.2) * (-side)
            self.head_col = _grey(g, g.uniform(0.2, 0.9))
            self.double = g.random() < 0.25
        elif kind == "sign":
            self.h = g.uniform(2.3, 3.6)
            self.w = g.uniform(0.06, 0.12)
            self.plates = []
            y = self.h
            for _ in range(int(g.integers(1, 3))):
                size = g.uniform(0.45, 0.8)
                shape = ["circle", "triangle", "rect", "diamond", "octagon"][g.integers(5)]
                fcol = [_hsv(0.0, 0.85, 0.8), _hsv(0.6, 0.8, 0.6), _grey(g, 0.92), _hsv(0.14, 0.9, 0.9),
                        _hsv(0.35, 0.7, 0.45)][g.integers(5)]
                back = g.random() < 0.3
                self.plates.append((y - size / 2, size, shape, fcol if not back else _grey(g, 0.6), back))
                y -= size + 0.1
        else:  # traffic light
            self.h = g.uniform(2.8, 4.5)
            self.w = g.uniform(0.1, 0.2)
            self.arm = g.uniform(2.5, 6.0) * (-side) if g.random() < 0.4 else 0.0
            self.state = int(g.integers(3))
        self.band_u = g.random()

    def zrange(self, t):
        return self.z - 0.2, self.z + 0.2

    def draw(self, fr, t):
        cam = fr.cam
        Z = self.z - cam.cz
        if Z < NEAR * 3:
            return
        col = self.col * self.lit
        _vbar(fr, self.x, self.z, 0.0, self.h, self.w, col, POLE, band=self.band_u < fr.band_p * 0.5)
        s = cam.f / Z
        if self.kind == "lamp":
            for d in ((1, -1) if self.double else (1,)):
                xa = self.x + d * self.arm
                _hbar(fr, self.x, xa, self.z - 0.02, self.h - 0.08, self.h, col, POLE)
                sg = d * (1.0 if self.arm >= 0 else -1.0)
                head = (self.head_col * self.lit if self.glow <= 0  # a lamp that is on at dusk
                        else np.array([1.0, 0.88, 0.6], np.float32) * self.glow * 1.2)
                _hbar(fr, xa - 0.3 * sg, xa + 0.25 * sg, self.z - 0.04, self.h - 0.22, self.h + 0.02, head, POLE)
        elif self.kind == "sign":
            for yc, size, shape, fcol, back in self.plates:
                px = size * s
                if px < 1.5:
                    _hbar(fr, self.x - size / 2, self.x + size / 2, self.z - 0.03, yc - size / 2, yc + size / 2,
                          fcol * self.lit, POLE)
                    continue
                self._plate(fr, yc, size, shape, fcol, back, Z, s)
        else:
            box_w, box_h = 0.35, 0.95
            xa = self.x + self.arm
            if self.arm:
                _hbar(fr, self.x, xa, self.z - 0.02, self.h - 0.1, self.h, col, POLE)
            for xb in ((self.x, xa) if self.arm else (self.x,)):
                _hbar(fr, xb - box_w / 2, xb + box_w / 2, self.z - 0.05, self.h - box_h, self.h,
                      np.array([0.06, 0.06, 0.06], np.float32), POLE)
                if box_h * s > 6:
                    yl = self.h - box_h * (0.2 + 0.3 * self.state)
                    lc = [np.array([1, 0.2, 0.1]), np.array([1, 0.75, 0.1]), np.array([0.2, 1, 0.4])][self.state]
                    _hbar(fr, xb - 0.08, xb + 0.08, self.z - 0.07, yl - 0.08, yl + 0.08, lc.astype(np.float32), POLE)

    def _plate(self, fr, yc, size, shape, fcol, back, Z, s):
        cam = fr.cam
        uc, vc = cam.proj(self.x, yc, self.z)
        R = size * s / 2
        bb = _clip_box(cam, uc - R - 1, vc - R - 1, 2 * R + 3, 2 * R + 3)
        if bb is None:
            return
        left, top, w, h = bb
        ss = 3
        m = Image.new("L", (w * ss, h * ss), 0)
        c = Image.new("L", (w * ss, h * ss), 0)
        d, dc = ImageDraw.Draw(m), ImageDraw.Draw(c)
        ox, oy, r = (uc - left) * ss, (vc - top) * ss, R * ss
        if shape == "circle":
            pts = None
            d.ellipse([ox - r, oy - r, ox + r, oy + r], fill=255)
            dc.ellipse([ox - r * 0.75, oy - r * 0.75, ox + r * 0.75, oy + r * 0.75], fill=255)
        else:
            if shape == "triangle":
                pts = [(0, -1), (0.95, 0.75), (-0.95, 0.75)]
            elif shape == "rect":
                pts = [(-1, -0.75), (1, -0.75), (1, 0.75), (-1, 0.75)]
            elif shape == "diamond":
                pts = [(0, -1), (1, 0), (0, 1), (-1, 0)]
            else:
                pts = [(math.cos(a) * 1.0, math.sin(a) * 1.0) for a in np.arange(8) * math.pi / 4 + math.pi / 8]
            d.polygon([(ox + x * r, oy + y * r) for x, y in pts], fill=255)
            dc.polygon([(ox + x * r * 0.75, oy + y * r * 0.75) for x, y in pts], fill=255)
        a = np.asarray(m, np.float32).reshape(h, ss, w, ss).mean((1, 3)) / 255
        inner = np.asarray(c, np.float32).reshape(h, ss, w, ss).mean((1, 3)) / 255
        rim = np.array([0.95, 0.95, 0.93], np.float32) if not back else fcol
        col = (rim[None, None, :] * (1 - inner[..., None]) + fcol[None, None, :] * inner[..., None]) * self.lit
        _sprite(fr, left, top, a, col, Z - 0.03, POLE)

    def shadow(self, light, t):
        if not light.sunny:
            return None
        dx, dz = light.shadow_offset(self.h)
        w = 0.08
        return [(self.x - w, self.z), (self.x + w, self.z), (self.x + dx + w, self.z + dz), (self.x + dx - w, self.z + dz)]


class _Vehicle:
    opaque = True

    def __init__(self, g, light, x, z, vz, kind, facing):
        self.x, self.zc0, self.vz, self.kind, self.facing = x, z, vz, kind, facing
        if kind == "car":
            L, Wd, Hh = g.uniform(3.7, 4.9), g.uniform(1.6, 1.9), g.uniform(1.35, 1.6)
        elif kind == "van":
            L, Wd, Hh = g.uniform(4.8, 6.0), g.uniform(1.85, 2.1), g.uniform(1.9, 2.6)
        else:
            L, Wd, Hh = g.uniform(8.0, 12.0), g.uniform(2.4, 2.55), g.uniform(2.9, 3.4)
        self.L, self.Wd, self.Hh = L, Wd, Hh
        self.r = g.uniform(0.28, 0.36) if kind == "car" else g.uniform(0.34, 0.5)
        self.col = _col_vehicle(g)
        self.glass = _hsv(g.uniform(0.5, 0.65), g.uniform(0, 0.3), g.uniform(0.05, 0.3))
        self.hub = _grey(g, g.uniform(0.3, 0.8))
        self.dark_bumper = g.random() < 0.5
        self.plate = _grey(g, 0.9) if g.random() < 0.7 else _hsv(0.15, 0.8, 0.9)
        # near end is the rear if the vehicle drives away from the camera
        self.lamp = (_hsv(0.0, 0.85, g.uniform(0.5, 0.9)) if facing > 0 else _hsv(0.12, 0.15, 0.95))
        self.yb0 = self.r * 0.55
        if kind == "car":
            self.yb1 = g.uniform(0.85, 1.0)
        elif kind == "van":
            self.yb1 = g.uniform(1.0, 1.2)
        else:
            self.yb1 = Hh
        self.yc0, self.yc1 = self.yb1, Hh
        self.ci = g.uniform(0.1, 0.2)
        if kind == "car":
            a, b = g.uniform(0.18, 0.3), g.uniform(0.22, 0.32)
            if facing < 0:
                a, b = b, a
            self.cab = (a, b)  # fraction of length before/after the cabin (near end, far end)
        else:
            self.cab = (0.0, 0.0) if kind == "van" else None
        self.pillar = g.uniform(0.4, 0.6)
        self.shaders = {p: _VehicleShader(g, light, p, self) for p in ("body", "cabin", "tyre")}
        self.wheels: list[float] = []
        self.band_u = g.random()

    def zrange(self, t):
        z = self.zc0 + self.vz * t
        return z - self.L / 2, z + self.L / 2

    def draw(self, fr, t):
        z0, z1 = self.zrange(t)
        x0, x1 = self.x - self.Wd / 2, self.x + self.Wd / 2
        self.x0, self.x1, self.z0, self.z1 = x0, x1, z0, z1
        L, r = self.L, self.r
        self.wheels = [0.75 + r, L - 0.75 - r] if self.kind != "bus" else [1.8, L - 2.5]
        self.door = L * 0.5
        sh = self.shaders
        band = self.band_u < fr.band_p
        for wz in self.wheels:
            _box(fr, x0 + 0.04, x1 - 0.04, 0.0, 0.62 * r + 0.2, z0 + wz - r, z0 + wz + r, sh["tyre"], VEHICLE, band)
        _box(fr, x0, x1, self.yb0, self.yb1, z0, z1, sh["body"], VEHICLE, band)
        if self.cab is not None:
            a, b = self.cab
            self.cx0, self.cx1 = x0 + self.ci, x1 - self.ci
            self.cz0, self.cz1 = z0 + a * L, z1 - b * L
            if self.kind == "van":
                self.cx0, self.cx1 = x0 + 0.03, x1 - 0.03
            _box(fr, self.cx0, self.cx1, self.yc0, self.yc1, self.cz0, self.cz1, sh["cabin"], VEHICLE, band)

    def shadow(self, light, t):
        z0, z1 = self.zrange(t)
        e = 0.25
        return [(self.x - self.Wd / 2 - e, z0 - e), (self.x + self.Wd / 2 + e, z0 - e),
                (self.x + self.Wd / 2 + e, z1 + e), (self.x - self.Wd / 2 - e, z1 + e)]


class _Person:
    opaque = False

    def __init__(self, g, light, x, z, vz, view):
        self.x, self.z0, self.vz, self.view = x, z, vz, view
        child = g.random() < 0.1
        self.h = g.uniform(1.0, 1.35) if child else g.uniform(1.55, 1.95)
        self.bw = g.uniform(0.85, 1.25)
        self.skin, self.hair = _col_skin(g), _col_hair(g)
        self.top, self.bottom = _col_any(g), (_hsv(0.6, 0.5, 0.35) if g.random() < 0.35 else _col_any(g))
        self.shoe = _grey(g, g.uniform(0.05, 0.6))
        self.coat = g.random() < 0.25
        self.skirt = (not self.coat) and g.random() < 0.12
        self.bag = g.random() < 0.25
        self.bag_col = _col_any(g)
        self.hat = g.random() < 0.12
        self.walk = abs(vz) > 0 or g.random() < 0.3
        self.phase = g.uniform(0, 2 * math.pi)
        self.lit = light.face(0, 0, -1)
        self.band_u = g.random() * 0.8

    def zrange(self, t):
        z = self.z0 + self.vz * t
        return z - 0.2, z + 0.2

    def draw(self, fr, t):
        cam = fr.cam
        zw = self.z0 + self.vz * t
        xw = self.x
        Z = zw - cam.cz
        if Z < 1.0:
            return
        s = cam.f / Z
        hp = self.h * s
        if hp < 3.0:
            return
        uc, vb = cam.proj(xw, 0.0, zw)
        bb = _clip_box(cam, uc - 0.45 * hp, vb - 1.04 * hp, 0.9 * hp + 3, 1.06 * hp + 3)
        if bb is None:
            return
        left, top, w, h = bb
        ss = 4 if hp < 40 else 2
        rgb = Image.new("RGB", (w * ss, h * ss), (0, 0, 0))
        m = Image.new("L", (w * ss, h * ss), 0)
        dr, dm = ImageDraw.Draw(rgb), ImageDraw.Draw(m)
        ox, oy, k = (uc - left) * ss, (vb - top) * ss, hp * ss

        def P(x, y):
            return (ox + x * k, oy - y * k)

        def poly(pts, c):
            q = [P(x, y) for x, y in pts]
            cc = tuple(int(v * 255) for v in np.clip(c * self.lit, 0, 1))
            dr.polygon(q, fill=cc)
            dm.polygon(q, fill=255)

        def ell(x, y, rx, ry, c):
            a, b = P(x - rx, y + ry), P(x + rx, y - ry)
            cc = tuple(int(v * 255) for v in np.clip(c * self.lit, 0, 1))
            dr.ellipse([a, b], fill=cc)
            dm.ellipse([a, b], fill=255)

        bw = self.bw
        ph = self.phase + (zw * 2.2 if self.walk else 0.0)
        side = self.view == "side"
        sw = math.sin(ph) if self.walk else 0.0
        tw = (0.07 if side else 0.125) * bw  # half shoulder width
        hw = (0.06 if side else 0.095) * bw  # half hip width
        lw = 0.045 * bw
        # legs
        if side:
            stride = 0.16 * sw
            for sgn, c in ((-1, self.bottom * 0.8), (1, self.bottom)):
                fx = sgn * stride
                poly([(-lw, 0.48), (lw, 0.48), (fx + lw * 0.8, 0.03), (fx - lw * 0.8, 0.03)], c)
                poly([(fx - lw, 0.0), (fx + lw * 2.0, 0.0), (fx + lw * 2.0, 0.035), (fx - lw, 0.035)], self.shoe)
        else:
            for sgn in (-1, 1):
                lift = 0.025 * max(0.0, sgn * sw)
                xa, xb = sgn * (hw - lw), sgn * (hw - lw * 0.9) * 0.85
                poly([(xa - lw, 0.48), (xa + lw, 0.48), (xb + lw * 0.85, 0.03 + lift), (xb - lw * 0.85, 0.03 + lift)],
                     self.bottom)
                poly([(xb - lw, lift), (xb + lw, lift), (xb + lw, 0.035 + lift), (xb - lw, 0.035 + lift)], self.shoe)
        if self.skirt:
            poly([(-hw * 0.9, 0.5), (hw * 0.9, 0.5), (hw * 1.6, 0.3), (-hw * 1.6, 0.3)], self.bottom)
        # back arm (side view)
        arm_w = 0.032 * bw
        if side:
            ax = -0.12 * sw
            poly([(-arm_w, 0.8), (arm_w, 0.8), (ax + arm_w, 0.47), (ax - arm_w, 0.47)], self.top * 0.75)
        # torso
        bot = 0.3 if self.coat else 0.46
        hb = hw * (1.25 if self.coat else 1.0)
        poly([(-tw, 0.815), (tw, 0.815), (hb, bot), (-hb, bot)], self.top)
        ell(-tw * 0.8, 0.79, tw * 0.3, 0.025, self.top)
        ell(tw * 0.8, 0.79, tw * 0.3, 0.025, self.top)
        if self.bag:
            if side:
                poly([(-tw - 0.07, 0.78), (-tw + 0.01, 0.78), (-tw + 0.01, 0.55), (-tw - 0.07, 0.55)], self.bag_col)
            else:
                poly([(tw, 0.58), (tw + 0.07, 0.58), (tw + 0.07, 0.45), (tw, 0.45)], self.bag_col)
        # front arms
        if side:
            ax = 0.12 * sw
            poly([(-arm_w, 0.8), (arm_w, 0.8), (ax + arm_w, 0.47), (ax - arm_w, 0.47)], self.top * 0.9)
            ell(ax, 0.455, arm_w * 1.1, arm_w * 1.2, self.skin)
        else:
            for sgn in (-1, 1):
                ax = sgn * (tw + arm_w * 0.6)
                poly([(ax - arm_w, 0.8), (ax + arm_w, 0.8), (ax + sgn * 0.02 + arm_w, 0.48),
                      (ax + sgn * 0.02 - arm_w, 0.48)], self.top * 0.9)
                ell(ax + sgn * 0.02, 0.465, arm_w * 1.1, arm_w * 1.2, self.skin)
        # neck + head + hair
        poly([(-0.022, 0.86), (0.022, 0.86), (0.022, 0.8), (-0.022, 0.8)], self.skin)
        hx = 0.01 if side else 0.0
        back = self.view == "back"
        ell(hx, 0.925, 0.052, 0.066, self.hair if back else self.skin)
        ell(hx - (0.01 if side else 0), 0.955, 0.054, 0.04, self.hair)
        if self.hat:
            ell(hx, 0.975, 0.06, 0.03, self.bag_col)
        a = np.asarray(m, np.float32).reshape(h, ss, w, ss).mean((1, 3)) * (1 / 255)
        c = np.asarray(rgb, np.float32).reshape(h, ss, w, ss, 3).mean((1, 3)) * (1 / 255)
        c = c / np.maximum(a, 1e-3)[..., None]
        _sprite(fr, left, top, a, c, Z, PERSON, band=self.band_u < fr.band_p)

    def shadow(self, light, t):
        zw = self.z0 + self.vz * t
        if not light.sunny:
            r = 0.3
            return [(self.x - r, zw - r), (self.x + r, zw - r), (self.x + r, zw + r), (self.x - r, zw + r)]
        dx, dz = light.shadow_offset(self.h)
        w = 0.18
        return [(self.x - w, zw), (self.x + w, zw), (self.x + dx + w, zw + dz), (self.x + dx - w, zw + dz)]


class _Clutter:
    """Unlabelled street furniture: bins, cabinets, benches, bollards, boxes, ad pillars (label 255)."""

    opaque = True

    def __init__(self, g, light, x, z):
        self.x, self.z = x, z
        kind = ["bin", "cabinet", "bench", "bollard", "box", "pillar", "planter"][
            g.choice(7, p=[0.25, 0.15, 0.15, 0.15, 0.12, 0.06, 0.12])]
        dims = {"bin": (0.6, 1.0, 0.6), "cabinet": (0.8, 1.3, 0.4), "bench": (1.8, 0.8, 0.6),
                "bollard": (0.15, 0.9, 0.15), "box": (1.0, 0.8, 0.8), "pillar": (1.0, 2.6, 1.0),
                "planter": (1.2, 0.9, 1.2)}[kind]
        sc = g.uniform(0.8, 1.2)
        self.w, self.h, self.d = dims[0] * sc, dims[1] * sc, dims[2] * sc
        if kind == "bench":
            self.w, self.d = self.d, self.w  # benches run along the street
        self.kind = kind
        col = _col_any(g)
        poster = int(g.integers(1000)) if kind in ("pillar", "cabinet") and g.random() < 0.6 else -1
        self.shader = _Flat(col, light, ["fine", "moon", "gravel"][g.integers(3)], g.uniform(30, 120),
                            g.uniform(0.05, 0.3), poster, self.h)

    def zrange(self, t):
        return self.z - self.d / 2, self.z + self.d / 2

    def draw(self, fr, t):
        _box(fr, self.x - self.w / 2, self.x + self.w / 2, 0.0, self.h, self.z - self.d / 2, self.z + self.d / 2,
             self.shader, IGN)

    def shadow(self, light, t):
        e = 0.1
        return [(self.x - self.w / 2 - e, self.z - self.d / 2 - e), (self.x + self.w / 2 + e, self.z - self.d / 2 - e),
                (self.x + self.w / 2 + e, self.z + self.d / 2 + e), (self.x - self.w / 2 - e, self.z + self.d / 2 + e)]


class _Backdrop:
    """Far skyline / tree line at a fixed world depth, with an irregular top."""

    opaque = True

    def __init__(self, g, light, z, kind):
        self.z, self.kind = z, kind
        self.label = BUILDING if kind == "city" else VEGETATION
        self.col = _col_building(g) * 0.9 if kind == "city" else _col_veg(g)
        self.hmax = g.uniform(10, 45) if kind == "city" else g.uniform(8, 25)
        self.seed = g.uniform(0, 1000)
        self.seg = g.uniform(8, 30)
        self.lit = light.face(0, 0, -1)

    def zrange(self, t):
        return self.z, self.z + 1

    def __call__(self, face, X, Y, Zw, Z):
        if self.kind == "city":
            idx = np.floor(X / self.seg)
            top = self.hmax * (0.25 + 0.75 * _hash(idx, 3.0, self.seed))
            n = _tex("fine", X * 20, Y * 20, 20 * Z / _F_HINT[0])
        else:
            top = self.hmax * (0.5 + 0.35 * _tex("noise", X * 2 + self.seed, self.seed, 1)
                               + 0.1 * _tex("fine", X * 30, self.seed, 1))
            n = _tex("grass", X * 40, Y * 40, 40 * Z / _F_HINT[0])
        col = self.col[None, :] * ((1 + 0.15 * n) * self.lit)[:, None]
        return col, Y < top

    def draw(self, fr, t):
        _face_z(fr, self.z, -2000, 2000, 0.0, self.hmax * 1.6, self, self.label)

    def shadow(self, light, t):
        return None


# ----------------------------------------------------------------------------------------------
# the street (ground) and the world
# ----------------------------------------------------------------------------------------------

# ground materials
M_ROAD, M_KERB, M_WALK, M_GRASS, M_PAVED = range(5)


class _Mat:
    def __init__(self, g, kind, label, col=None):
        self.kind, self.label = kind, label
        if kind == M_ROAD:
            self.col, self.tex, self.k, self.amp = _col_road(g), "gravel", g.uniform(250, 450), g.uniform(0.08, 0.25)
        elif kind == M_KERB:
            self.col, self.tex, self.k, self.amp = _grey(g, g.uniform(0.5, 0.85)), "moon", 100.0, 0.12
        elif kind == M_GRASS:
            self.col, self.tex, self.k, self.amp = _col_veg(g), "grass", g.uniform(60, 140), g.uniform(0.25, 0.45)
        else:
            self.col = _col_sidewalk(g)
            self.tex = ["brick", "gravel", "moon", "fine"][g.integers(4)]
            self.k = g.uniform(80, 300) if self.tex != "brick" else g.uniform(120, 260)
            self.amp = g.uniform(0.08, 0.3)
        if col is not None:
            self.col = col
        self.tile = g.uniform(0.3, 0.8) if (kind in (M_WALK, M_PAVED) and self.tex != "brick" and g.random() < 0.7) else 0
        self.grout = g.uniform(0.6, 0.85)
        self.patch = g.uniform(0.0, 0.25)
        self.seed = g.uniform(0, 1000)


class _World:
    def __init__(self, seed: int, size: tuple[int, int], n_frames: int, domain: str | Domain | None = None):
        g = np.random.default_rng(seed)
        self.seed = seed
        H, W = int(size[0]), int(size[1])
        self.H, self.W = H, W
        self.light = _Light(g)
        # the domain's shifts come from their own generator ``gs`` and overwrite street8's draws right
        # after them (before anything caches them: shaders keep light.face(), materials their colours)
        self.domain = get_domain(domain)
        self.shift, gs = _draw_shift(self.domain, seed)
        if gs is not None:
            self._shift_light(gs)
        L = self.light
        # camera
        hfov = math.radians(g.uniform(50, 75))
        self.f = (W / 2) / math.tan(hfov / 2)
        self.vh = H * g.uniform(0.35, 0.55)
        self.u0 = W * (0.5 + g.uniform(-0.12, 0.12))
        self.ch = g.uniform(1.2, 2.3)
        if self.shift.camera_height is not None:
            self._shift_camera()
        self.speed = g.uniform(0.35, 1.1)  # m per frame
        self.n = n_frames
        z_end = self.speed * (n_frames - 1) + ZFAR
        z_small = self.speed * (n_frames - 1) + 110.0  # people and clutter are too small to see beyond
        z_beg = -15.0
        # road
        nl = int(g.choice([2, 2, 2, 3, 4, 4]))
        wl = g.uniform(2.8, 3.7)
        rw = nl * wl / 2
        self.rw = rw
        lane_c = [-rw + wl * (i + 0.5) for i in range(nl)]
        drive = 1 if g.random() < 0.7 else -1  # right-hand (1) or left-hand (-1) traffic
        own = [c for c in lane_c if c * drive > 0] or lane_c
        self.cx = float(g.choice(own)) + g.uniform(-0.4, 0.4)
        self.mats: list[_Mat] = [_Mat(g, M_ROAD, ROAD)]
        self.markings = []
        mcol = _grey(g, g.uniform(0.75, 0.95), 0.03)
        self.mark_col = mcol
        self.mark_wear = g.uniform(0.0, 0.5)
        if g.random() < 0.88:
            ycol = _hsv(g.uniform(0.1, 0.15), g.uniform(0.6, 0.9), 0.85) if g.random() < 0.25 else mcol
            wm = g.uniform(0.1, 0.16)
            dash, period = g.uniform(2.0, 4.0), g.uniform(6.0, 12.0)
            for i in range(1, nl):
                xm = -rw + wl * i
                centre = abs(xm) < 1e-6
                solid = centre and g.random() < 0.35
                self.markings.append((xm, wm, solid, dash, period, g.uniform(0, period), ycol if centre else mcol))
            if g.random() < 0.75:
                for s in (-1, 1):
                    self.markings.append((s * (rw - 0.3), wm, g.random() < 0.85, dash, period, 0.0, mcol))
        # sides
        self.objects: list = []
        sw_pattern = g.choice(3, p=[0.7, 0.12, 0.18])  # both, only left, only right
        crossings = []
        zc = g.uniform(12, 160)
        while zc < z_end:
            cw = g.uniform(7, 14)
            crossings.append((zc, zc + cw))
            zc += cw + g.uniform(60, 220)
        self.crossings = crossings
        self.zebra = [(a - g.uniform(3.0, 5.0), a - 0.6) for a, b in crossings if g.random() < 0.6]

        def in_cross(z0, z1, pad=0.0):
            return any(z0 < b + pad and z1 > a - pad for a, b in crossings)

        left_bands, right_bands = [], []
        # parking strips outside the lanes (the road widens there)
        park = {sd: g.random() < 0.5 for sd in (-1, 1)}
        self.road_edge = {sd: rw + (g.uniform(2.0, 2.6) if park[sd] else 0.0) for sd in (-1, 1)}
        for side in (-1, 1):
            rws = self.road_edge[side]
            style = g.choice(["urban", "suburban", "park", "industrial"], p=[0.45, 0.3, 0.1, 0.15])
            has_walk = sw_pattern == 0 or (sw_pattern == 1 and side < 0) or (sw_pattern == 2 and side > 0)
            prof = []
            if has_walk:
                prof.append((g.uniform(0.15, 0.3), len(self.mats)))
                self.mats.append(_Mat(g, M_KERB, SIDEWALK))
                if g.random() < 0.3:
                    prof.append((g.uniform(0.6, 2.5), len(self.mats)))
                    self.mats.append(_Mat(g, M_GRASS, VEGETATION))
                prof.append((g.uniform(1.5, 5.0), len(self.mats)))
                self.mats.append(_Mat(g, M_WALK, SIDEWALK))
            else:
                prof.append((g.uniform(1.0, 4.0), len(self.mats)))
                self.mats.append(_Mat(g, M_GRASS, VEGETATION))
            walk_in = rws + sum(w for w, _ in prof[:-1]) if has_walk else None
            walk_out = rws + sum(w for w, _ in prof)
            if style == "urban":
                front = g.uniform(0, 1.0) if g.random() < 0.4 else 0.0
                fm = M_PAVED
            elif style == "suburban":
                front, fm = g.uniform(2.0, 8.0), (M_GRASS if g.random() < 0.7 else M_PAVED)
            elif style == "industrial":
                front, fm = g.uniform(1.0, 8.0), (M_PAVED if g.random() < 0.6 else M_GRASS)
            else:
                front, fm = g.uniform(5, 30), M_GRASS
            if front > 0:
                prof.append((front, len(self.mats)))
                self.mats.append(_Mat(g, fm, VEGETATION if fm == M_GRASS else SIDEWALK))
            xb = rws + sum(w for w, _ in prof)
            beyond = M_GRASS if g.random() < 0.5 else M_PAVED
            prof.append((1e5, len(self.mats)))
            self.mats.append(_Mat(g, beyond, VEGETATION if beyond == M_GRASS else SIDEWALK))
            x = rws
            for w, mi in prof:
                (left_bands if side < 0 else right_bands).append((x, mi))
                x += w

            # buildings
            xs = side
            if style != "park":
                z = z_beg - g.uniform(0, 20)
                base_h = {"urban": g.uniform(10, 28), "suburban": g.uniform(5, 9), "industrial": g.uniform(5, 12)}[style]
                while z < z_end:
                    if style == "urban":
                        ln, gap = g.uniform(8, 30), (g.uniform(2, 8) if g.random() < 0.12 else 0.0)
                    elif style == "suburban":
                        ln, gap = g.uniform(7, 14), g.uniform(3, 14)
                    else:
                        ln, gap = g.uniform(15, 60), g.uniform(2, 25)
                    z0, z1 = z, z + ln
                    z = z1 + gap
                    if in_cross(z0, z1, 2.0):
                        # cut the building at the crossing
                        for a, b in crossings:
                            if z0 < b + 2 and z1 > a - 2:
                                if z0 < a - 2:
                                    z1 = a - 2
                                else:
                                    z0 = b + 2
                                    z = max(z, z0 + 1)
                        if z1 - z0 < 4:
                            continue
                    h = max(3.5, base_h * g.uniform(0.6, 1.5))
                    setback = g.uniform(0, 1.2) if g.random() < 0.3 else 0.0
                    self.objects.append(_Building(g, L, side, xs * (xb + setback), g.uniform(10, 20), z0, z1, h))
                    if style == "suburban" and gap > 4 and g.random() < 0.7:
                        self.objects.append(_Tree(g, L, xs * (xb + g.uniform(1, 6)), z1 + gap / 2, 1.2))
            # back row (seen through gaps and over low buildings)
            xback = xb + g.uniform(12, 35)
            z = z_beg - 20
            while z < z_end + 30:
                ln = g.uniform(15, 50)
                if g.random() < (0.75 if style in ("urban", "industrial") else 0.35):
                    self.objects.append(_Building(g, L, side, xs * xback, 20, z, z + ln, g.uniform(8, 40), simple=True))
                else:
                    hh = g.uniform(6, 16)
                    self.objects.append(_Hedge(g, L, *sorted((xs * xback, xs * (xback + 10))), z, z + ln, hh))
                z += ln + (g.uniform(2, 15) if g.random() < 0.3 else 0)
            # hedges along the building line / front gardens
            if style in ("suburban", "park", "industrial") or g.random() < 0.2:
                hx = walk_out + (0.3 if has_walk else 0.0)
                z = z_beg
                hcol = _col_veg(g)
                while z < z_end:
                    ln = g.uniform(5, 40)
                    if g.random() < 0.55 and not in_cross(z, z + ln, 1.0):
                        hh = g.uniform(0.6, 2.0)
                        d = g.uniform(0.5, 1.5)
                        self.objects.append(_Hedge(g, L, *sorted((xs * hx, xs * (hx + d))), z, z + ln, hh, hcol))
                    z += ln + g.uniform(1, 15)
            # trees
            avenue = g.random() < {"urban": 0.35, "suburban": 0.55, "park": 0.9, "industrial": 0.3}[style]
            if avenue:
                tx = (walk_in + 0.9) if has_walk else rws + 1.0
                spacing = g.uniform(6, 16)
                z = z_beg + g.uniform(0, spacing)
                while z < z_end:
                    if not in_cross(z, z, 2.0) and g.random() < 0.85:
                        self.objects.append(_Tree(g, L, xs * (tx + g.uniform(-0.3, 0.3)), z))
                    z += spacing * g.uniform(0.8, 1.2)
            if style == "park":
                z = z_beg
                while z < z_end:
                    if not in_cross(z, z, 3.0):
                        self.objects.append(_Tree(g, L, xs * (xb - front * g.uniform(0.1, 0.9)), z, g.uniform(1, 1.6)))
                    z += g.uniform(3, 12)
            # poles
            pole_x = rws + g.uniform(0.35, 0.7)
            if g.random() < 0.8:
                spacing = g.uniform(18, 40)
                z = z_beg + g.uniform(0, spacing)
                while z < z_end:
                    if not in_cross(z, z, 1.0):
                        self.objects.append(_Pole(g, L, xs * pole_x, z, "lamp", side))
                    z += spacing
            z = z_beg + g.uniform(0, 30)
            while z < z_end:
                if not in_cross(z, z, 1.0):
                    self.objects.append(_Pole(g, L, xs * (pole_x + g.uniform(-0.1, 0.6)), z, "sign", side))
                z += g.uniform(15, 60)
            for a, b in crossings:
                if g.random() < 0.5:
                    self.objects.append(_Pole(g, L, xs * pole_x, a - 1.0, "light", side))
            # people
            if has_walk:
                dens = g.uniform(0.04, 0.22)
                z = z_beg
                while z < z_small:
                    z += g.exponential(1 / dens)
                    nn = 1 if g.random() < 0.7 else int(g.integers(2, 4))
                    for _ in range(nn):
                        px = xs * g.uniform(walk_in + 0.4, walk_out - 0.3)
                        pz = z + g.uniform(-0.8, 0.8)
                        walking = g.random() < 0.7
                        vz = g.choice([-1, 1]) * g.uniform(0.04, 0.07) if walking else 0.0
                        view = ("back" if vz > 0 else "front") if walking else ["front", "back", "side"][g.integers(3)]
                        if g.random() < 0.15:
                            view = "side"
                        self.objects.append(_Person(g, L, px, pz, vz, view))
            elif style != "industrial" and g.random() < 0.5:
                for _ in range(int(g.integers(1, 4))):
                    self.objects.append(_Person(g, L, xs * g.uniform(rws + 0.3, walk_out), g.uniform(5, 80), 0.0,
                                                ["front", "back", "side"][g.integers(3)]))
            # clutter on the sidewalk
            if has_walk:
                z = z_beg + g.exponential(20)
                while z < z_small:
                    cx = xs * g.uniform(walk_in + 0.3, walk_out - 0.3)
                    if not in_cross(z, z, 1.0):
                        self.objects.append(_Clutter(g, L, cx, z))
                    z += g.exponential(g.uniform(8, 25))
            # parked cars
            if park[side]:
                z = z_beg + g.uniform(0, 10)
                while z < z_end:
                    kind = "car" if g.random() < 0.82 else "van"
                    v = _Vehicle(g, L, 0.0, 0.0, 0.0, kind, 1 if g.random() < 0.6 else -1)
                    v.x = xs * (rws - 0.25 - v.Wd / 2 - g.uniform(0, 0.25))
                    v.zc0 = z + v.L / 2
                    if not in_cross(z, z + v.L, 1.0) and g.random() < 0.7:
                        self.objects.append(v)
                    z += v.L + g.uniform(0.6, 4.0) + (g.uniform(5, 20) if g.random() < 0.15 else 0)
        # crossing pedestrians
        for (a, b) in self.zebra:
            if g.random() < 0.6:
                for _ in range(int(g.integers(1, 4))):
                    self.objects.append(_Person(g, L, g.uniform(-rw, rw), g.uniform(a, b), 0.0, "side"))
        # moving traffic
        for c in lane_c:
            same = c * drive > 0 or nl == 1
            ego_lane = abs(c - self.cx) < wl / 2
            z = g.uniform(9, 45) if ego_lane else g.uniform(-10, 40)
            while z < z_end:
                kind = ["car", "van", "bus"][g.choice(3, p=[0.75, 0.17, 0.08])]
                if kind == "bus" and z < 25:
                    kind = "car"
                if ego_lane:  # never slower than the camera: it must not drive through them
                    vz = self.speed * g.uniform(1.0, 1.3)
                else:
                    vz = self.speed * g.uniform(0.6, 1.2) * (1 if same else -1)
                v = _Vehicle(g, L, c + g.uniform(-0.3, 0.3), z, vz, kind, 1 if same else -1)
                self.objects.append(v)
                z += v.L + g.uniform(8, 70) * (1 if g.random() < 0.7 else 3)
        # backdrop
        kb = g.random()
        zb = z_end + g.uniform(30, 200)
        if kb < 0.45:
            self.objects.append(_Backdrop(g, L, zb, "city"))
        if 0.3 < kb < 0.85:
            self.objects.append(_Backdrop(g, L, zb - 10, "trees"))
        # ground bands over the whole x axis, as (x_start, material): left bands mirrored, road, right bands
        edges = []
        lx = [x for x, _ in left_bands] + [1e6]
        for i in range(len(left_bands) - 1, -1, -1):
            edges.append((-lx[i + 1], left_bands[i][1]))
        edges.append((-self.road_edge[-1], 0))
        for x, mi in right_bands:
            edges.append((x, mi))
        self.break_x = np.array([e[0] for e in edges[1:]], np.float32)
        self.break_m = np.array([e[1] for e in edges], np.int32)
        # sky
        k = g.random()
        if k < 0.45:  # clear blue
            self.sky_top = _hsv(g.uniform(0.55, 0.64), g.uniform(0.4, 0.8), g.uniform(0.55, 0.9))
            self.sky_hor = _hsv(g.uniform(0.5, 0.62), g.uniform(0.05, 0.3), g.uniform(0.8, 1.0))
        elif k < 0.8:  # overcast
            v = g.uniform(0.55, 0.95)
            self.sky_top = _grey(g, v, 0.06)
            self.sky_hor = _grey(g, min(1, v * g.uniform(1.0, 1.15)), 0.05)
        elif k < 0.92:  # sunset / hazy warm
            self.sky_top = _hsv(g.uniform(0.55, 0.7), g.uniform(0.2, 0.6), g.uniform(0.4, 0.8))
            self.sky_hor = _hsv(g.uniform(0.02, 0.12), g.uniform(0.3, 0.7), g.uniform(0.8, 1.0))
        else:  # pale / odd
            self.sky_top = _hsv(g.random(), g.uniform(0, 0.2), g.uniform(0.6, 1.0))
            self.sky_hor = _hsv(g.random(), g.uniform(0, 0.15), g.uniform(0.7, 1.0))
        self.clouds = g.uniform(0, 1) if g.random() < 0.7 else 0.0
        self.cloud_scale = g.uniform(0.5, 2.0)
        self.cloud_off = g.uniform(0, 512, 2)
        self.cloud_col = _grey(g, g.uniform(0.75, 1.0), 0.05)
        self.haze_col = (self.sky_hor * 0.7 + 0.3 * _grey(g, 0.8)).astype(np.float32)
        self.haze_d = g.uniform(120, 900)
        # photometric
        self.gain = g.uniform(0.75, 1.3)
        self.cast = (1 + g.uniform(-0.12, 0.12, 3)).astype(np.float32)
        self.gamma = g.uniform(0.8, 1.25)
        self.sat = g.uniform(0.6, 1.3)
        self.vgrad = g.uniform(-0.25, 0.25)
        self.vignette = g.uniform(0, 0.35)
        bk = g.random()
        self.blur = 0.0 if bk < 0.3 else (g.uniform(0.35, 0.8) if bk < 0.85 else g.uniform(0.9, 1.8))
        self.noise = g.uniform(0.5, 6.0)
        self.chroma_noise = g.uniform(0, 0.5)
        self.jpeg = int(g.integers(30, 96)) if g.random() < 0.6 else 0
        if gs is not None:
            self._shift_look(gs)
        # unlabeled extras
        self.hood = g.uniform(0.04, 0.1) if g.random() < 0.15 else 0.0
        self.hood_col = _col_vehicle(g) * 0.6
        # share of people / vehicles / poles that get a one-pixel unlabelled band around them
        self.band_p = g.uniform(0.3, 1.0)
        if self.shift.textures:
            self._restyle(gs)

    # ------------------------------------------------------------------------------------------
    # domain shifts (see Domain); each runs only for a shifted domain and only draws from ``gs``
    def _shift_light(self, gs: np.random.Generator) -> None:
        L, sh, d = self.light, self.shift, self.domain
        if sh.dusk:
            el = math.radians(gs.uniform(*d.dusk_sun_elevation))
            az = math.atan2(L.sun[0], L.sun[2])  # street8's azimuth, the sun only sinks
            L.sun = np.array([math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)])
            L.amb, L.dif = gs.uniform(*d.dusk_ambient), gs.uniform(*d.dusk_diffuse)
            L.shadow = gs.uniform(0.15, 0.35) if L.sunny else gs.uniform(0.0, 0.08)
            L.win_thr = 1.0 - gs.uniform(*d.dusk_lit_windows)
            L.glow = gs.uniform(*d.dusk_glow)
        if sh.fog_distance > 0:
            # fog scatters the sunlight: no direct light, hardly any shadow
            L.sunny = False
            L.dif = gs.uniform(0.03, 0.12)
            L.shadow = gs.uniform(0.0, 0.08)
            if not sh.dusk:
                L.amb = gs.uniform(0.8, 0.95)

    def _shift_camera(self) -> None:
        sh = self.shift
        self.ch = sh.camera_height
        if sh.horizon is not None:
            self.vh = self.H * sh.horizon
        if sh.hfov is not None:
            self.f = (self.W / 2) / math.tan(math.radians(sh.hfov) / 2)

    def _shift_look(self, gs: np.random.Generator) -> None:
        sh, d = self.shift, self.domain
        if sh.dusk:
            # deep blue zenith over an orange / pink afterglow, dim clouds (street8's skies are day skies)
            self.sky_top = _hsv(gs.uniform(0.6, 0.72), gs.uniform(0.45, 0.8), gs.uniform(0.1, 0.28))
            self.sky_hor = _hsv(gs.uniform(-0.06, 0.09), gs.uniform(0.35, 0.75), gs.uniform(0.45, 0.75))
            self.cloud_col = _hsv(gs.uniform(0.75, 0.98), gs.uniform(0.1, 0.35), gs.uniform(0.2, 0.4))
            self.haze_col = (0.5 * self.sky_hor + 0.5 * self.sky_top).astype(np.float32)
            self.noise = gs.uniform(*d.dusk_noise)  # low light: a noisier sensor
            # blue evening light or warm sodium lamps, beyond street8's +-12 % colour cast
            if gs.random() < 0.6:
                tint = (gs.uniform(0.75, 0.88), gs.uniform(0.88, 0.97), gs.uniform(1.1, 1.25))
            else:
                tint = (gs.uniform(1.15, 1.3), gs.uniform(0.95, 1.02), gs.uniform(0.68, 0.8))
            self.cast = (self.cast * np.array(tint)).astype(np.float32)
        if sh.fog_distance > 0:
            if sh.dusk:
                self.fog_col = _hsv(gs.uniform(0.55, 0.68), gs.uniform(0.1, 0.3), gs.uniform(0.18, 0.32))
            else:
                self.fog_col = _grey(gs, gs.uniform(0.62, 0.88), 0.05)
            self.fog_sky = gs.uniform(*d.fog_sky)

    def _restyle(self, gs: np.random.Generator) -> None:
        """Held-out textures and colours: per restyled group, hue / saturation ranges that street8 never
        draws for that class and the procedural textures (cells, stripes) it never uses."""
        groups = set(self.shift.textures)

        def building() -> np.ndarray:  # vivid (street8: pastel s <= 0.4, or brick hues)
            return _hsv(gs.uniform(0.15, 0.92), gs.uniform(0.55, 0.9), gs.uniform(0.45, 0.9))

        def veg() -> np.ndarray:  # purple to crimson foliage (street8: hues 0.04-0.45)
            return _hsv(gs.uniform(0.7, 0.98), gs.uniform(0.35, 0.7), gs.uniform(0.2, 0.55))

        for o in self.objects:
            if "building" in groups and isinstance(o, _Building):
                f = o.shader
                f.base = building()
                f.tex = "cells" if gs.random() < 0.5 else "stripes"  # stone blocks / siding boards
                f.k = gs.uniform(55, 105)  # blocks of 0.3-0.6 m, boards of 0.15-0.3 m
                f.amp = gs.uniform(0.25, 0.4)  # strong enough that joints show at street distances
                f.frame = f.base * gs.uniform(0.45, 0.75)
                f.cornice_col = f.base * gs.uniform(0.6, 1.3)
            elif isinstance(o, _Backdrop):
                if o.kind == "city" and "building" in groups:
                    o.col = building() * 0.9
                elif o.kind == "trees" and "vegetation" in groups:
                    o.col = veg()
            elif "vegetation" in groups and isinstance(o, _Hedge):
                o.shader.col = veg()
            elif "vegetation" in groups and isinstance(o, _Tree):
                o.col = veg()
        for m in self.mats:
            if m.kind == M_ROAD and "road" in groups:
                # coloured asphalt (street8: grey, or brownish with s <= 0.35), cobbles half the time
                m.col = _hsv(gs.uniform(0.2, 0.95), gs.uniform(0.3, 0.6), gs.uniform(0.25, 0.5))
                if gs.random() < 0.5:
                    m.tex, m.k, m.amp = "cells", gs.uniform(150, 260), gs.uniform(0.2, 0.35)  # 0.12-0.2 m
            elif m.kind in (M_WALK, M_PAVED) and "sidewalk" in groups:
                # blue to pink paving (street8: grey, red / brown, or any hue with s <= 0.25); not green,
                # which would make it a texture question only against the grass beside it
                m.col = _hsv(gs.uniform(0.45, 0.92), gs.uniform(0.3, 0.6), gs.uniform(0.35, 0.7))
                if gs.random() < 0.5:
                    m.tex, m.k = "cells", gs.uniform(65, 110)  # flagstones of 0.3-0.5 m
                else:
                    m.tex, m.k = "stripes", gs.uniform(80, 130)  # decking boards
                m.amp, m.tile = gs.uniform(0.2, 0.35), 0  # the textures draw their own joints
            elif m.kind == M_GRASS and "vegetation" in groups:
                m.col = veg()

    # ------------------------------------------------------------------------------------------
    def camera(self, i: int) -> _Cam:
        return _Cam(self.H, self.W, self.f, self.u0, self.vh, self.cx, self.ch, self.speed * i)

    def render(self, i: int, return_depth: bool = False) -> tuple[np.ndarray, ...]:
        """(image, label) of frame ``i``; with ``return_depth`` also the z-buffer (metres, inf = sky)."""
        cam = self.camera(i)
        _F_HINT[0] = cam.f
        fr = _Frame(cam)
        fr.band_p = self.band_p
        t = float(i)
        opaque, sprites = [], []
        for o in self.objects:
            z0, z1 = o.zrange(t)
            if z1 - cam.cz < NEAR or z0 - cam.cz > ZFAR * 1.5 and not isinstance(o, _Backdrop):
                continue
            (opaque if o.opaque else sprites).append((max(z0 - cam.cz, 0.0), o))
        # opaque boxes near to far: the z-test rejects hidden pixels before they are shaded;
        # then anti-aliased sprites far to near, so their edges blend over what is behind them
        opaque.sort(key=lambda p: p[0])
        sprites.sort(key=lambda p: -p[0])
        for _, o in opaque:
            o.draw(fr, t)
        self._sky(fr)
        self._ground(fr, t)
        for _, o in sprites:
            o.draw(fr, t)
        lab = fr.lab
        if self.band_p > 0:
            m = fr.ign_ids
            # one-pixel ignore band just outside the marked objects
            dil = m.copy()
            dil[1:] |= m[:-1]
            dil[:-1] |= m[1:]
            dil[:, 1:] |= m[:, :-1]
            dil[:, :-1] |= m[:, 1:]
            lab[dil & ~m] = IGN
        if self.hood > 0:
            H, W = cam.H, cam.W
            u = (np.arange(W, dtype=np.float32) + 0.5) / W * 2 - 1
            top = H * (1 - self.hood * (1 - 0.5 * u * u))
            rows = np.arange(H, dtype=np.float32)[:, None] + 0.5
            hm = rows > top[None, :]
            if hm.any():
                rr, cc = np.nonzero(hm)
                mirror = np.clip((2 * top[cc] - rr).astype(np.int32), 0, H - 1)
                fr.img[rr, cc] = self.hood_col * 0.7 + 0.3 * fr.img[mirror, cc]
                lab[hm] = IGN
        img = self._photometric(fr, i)
        if return_depth:
            return img, lab, fr.zb
        return img, lab

    # ------------------------------------------------------------------------------------------
    def _sky(self, fr):
        cam = fr.cam
        rs = min(cam.H, max(0, int(math.ceil(cam.vh + 1))))
        if rs <= 0:
            return
        v = (np.arange(rs, dtype=np.float32) + 0.5)
        a = np.clip(v / max(cam.vh, 1.0), 0, 1) ** 1.3
        grad = self.sky_top[None, :] * (1 - a[:, None]) + self.sky_hor[None, :] * a[:, None]
        sky = np.broadcast_to(grad[:, None, :], (rs, cam.W, 3)).copy()
        if self.clouds > 0:
            sc = 512.0 / cam.W * self.cloud_scale * 0.5
            uu = (np.arange(cam.W, dtype=np.float32)[None, :] * sc + self.cloud_off[0] + 20 * cam.cz)
            vv = (v[:, None] * sc * 2.5 + self.cloud_off[1])
            n = _tex("noise", uu, vv, 2.0) + 0.25 * _tex("fine", uu * 2, vv * 2, 8.0)
            c = np.clip((n - (1.2 - 1.6 * self.clouds)) * 0.8, 0, 1) * (1 - 0.6 * a[:, None])
            shade = (1 - 0.25 * np.clip(n - 0.5, 0, 2))[..., None]
            sky = sky * (1 - c[..., None]) + (self.cloud_col * shade) * c[..., None]
        free = fr.zb[:rs] == np.inf
        fr.img[:rs][free] = sky[free]

    def _ground(self, fr, t):
        cam = fr.cam
        rs = max(0, int(math.floor(cam.vh + 0.5)))
        while rs < cam.H and fr.br[rs] <= 1e-4:
            rs += 1
        if rs >= cam.H:
            return
        b = fr.br[rs:]
        Zr = (cam.ch / b).astype(np.float32)  # depth per row
        X = cam.cx + fr.ac[None, :] * Zr[:, None]  # (h, W)
        Zw = np.broadcast_to((Zr + cam.cz)[:, None], X.shape)
        Zd = np.broadcast_to(Zr[:, None], X.shape)
        vis = fr.zb[rs:] > Zd  # ground is drawn after the opaque objects: shade only what shows
        mat = self.break_m[np.searchsorted(self.break_x, X, side="right")]
        # crossings: everything outside the road becomes road inside a crossing
        for a, bb in self.crossings:
            if bb - cam.cz < NEAR:
                continue
            rows = (Zr + cam.cz >= a) & (Zr + cam.cz < bb)
            if rows.any():
                mat[rows] = 0
        col = np.zeros(X.shape + (3,), np.float32)
        lab = np.zeros(X.shape, np.uint8)
        f = cam.f
        fpx = (Zr / f)[:, None]  # metres per pixel (lateral)
        fpz = (Zr * Zr / (f * cam.ch))[:, None]  # metres per pixel (along z)
        fpm = np.sqrt(fpx * fpz)
        mat[~vis] = -1
        for mi in np.flatnonzero(np.bincount(mat.ravel() + 1)[1:]):
            m = self.mats[mi]
            sel = mat == mi
            x, z, zd = X[sel], Zw[sel], np.broadcast_to(fpm, X.shape)[sel]
            fp = m.k * zd
            n = _tex(m.tex, x * m.k, z * m.k, fp)
            nn = _tex("noise", x * 3 + m.seed, z * 1.0 + m.seed, zd * 3)
            sh = 1 + m.amp * n + (0.08 + m.patch) * nn * 0.5
            if m.tile:
                fx = np.broadcast_to(fpx, X.shape)[sel]
                fz = np.broadcast_to(fpz, X.shape)[sel]
                gx = np.abs((x / m.tile) - np.round(x / m.tile)) * m.tile
                gz = np.abs((z / m.tile) - np.round(z / m.tile)) * m.tile
                cov = np.clip((0.015 - gx) / np.maximum(fx, 1e-3) + 0.5, 0, 1) + np.clip(
                    (0.015 - gz) / np.maximum(fz, 1e-3) + 0.5, 0, 1)
                sh *= 1 - (1 - m.grout) * np.clip(cov, 0, 1)
            if m.kind == M_ROAD:  # dark gutter along the kerbs
                d = np.minimum(x + self.road_edge[-1], self.road_edge[1] - x)
                sh *= 1 - 0.3 * np.clip((0.3 - d) / np.maximum(np.broadcast_to(fpx, X.shape)[sel], 1e-3) + 0.5, 0, 1)
            c = m.col[None, :] * sh[:, None]
            if m.kind == M_ROAD:
                c = self._markings(c, x, z, np.broadcast_to(fpx, X.shape)[sel], np.broadcast_to(fpz, X.shape)[sel],
                                   z - cam.cz, cam)
            col[sel] = c
            lab[sel] = m.label
        lit = self.light.face(0, 1, 0)
        col *= lit
        # ground shadows: polygons on the ground plane, clipped at the near plane, projected and filled
        L = self.light
        polys = []
        for o in self.objects:
            z0, z1 = o.zrange(t)
            if z1 - cam.cz < -30 or z0 - cam.cz > (60 if isinstance(o, (_Person, _Pole)) else 130):
                continue
            poly = o.shadow(L, t)
            if poly is None:
                continue
            strength = L.shadow if not isinstance(o, (_Vehicle, _Clutter)) else max(L.shadow, 0.45)
            if isinstance(o, _Tree):
                strength *= 0.75  # light comes through the crown
            if isinstance(o, _Person) and not L.sunny:
                strength = 0.3
            if strength <= 0.01:
                continue
            q = _clip_near([(px, pz - cam.cz) for px, pz in poly], NEAR)
            if len(q) >= 3:
                polys.append((strength, [(cam.u0 + f * (px - cam.cx) / pz, cam.vh + f * cam.ch / pz - rs) for px, pz in q]))
        if polys:
            shm = Image.new("L", (cam.W, cam.H - rs), 0)
            d = ImageDraw.Draw(shm)
            for strength, q in sorted(polys, key=lambda p: p[0]):  # overwrite in increasing strength = max
                d.polygon(q, fill=int(strength * 255))
            sh = np.asarray(shm, np.float32) * np.float32(1 / 255)
            col *= (1 - sh)[..., None]
        fr.img[rs:] = np.where(vis[..., None], col, fr.img[rs:])
        fr.lab[rs:] = np.where(vis, lab, fr.lab[rs:])
        fr.zb[rs:] = np.where(vis, Zd, fr.zb[rs:])

    def _markings(self, c, x, z, fx, fz, zd, cam):
        if not self.markings and not self.zebra:
            return c
        a_tot = np.zeros(x.shape, np.float32)
        mcol = np.zeros(c.shape, np.float32)
        for xm, wm, solid, dash, period, phase, mc in self.markings:
            d = np.abs(x - xm)
            near = d < wm + 2 * fx
            if not near.any():
                continue
            cov = np.clip((wm / 2 - d[near]) / np.maximum(fx[near], 1e-4) + 0.5, 0, 1)
            if not solid:
                ph = np.mod(z[near] - phase, period)
                dz = fz[near]
                cz = np.clip(np.minimum(ph, dash - ph) / np.maximum(dz, 1e-4) + 0.5, 0, 1)
                cz = np.where(dz > period * 0.5, dash / period, cz)
                cov = cov * cz
            a_tot[near] = np.maximum(a_tot[near], cov)
            mcol[near] = mc
        for za, zb in self.zebra:
            inz = (z > za) & (z < zb)
            if not inz.any():
                continue
            ph = np.mod(x[inz], 1.0)
            cov = np.clip(np.minimum(ph, 0.5 - ph) / np.maximum(fx[inz], 1e-4) + 0.5, 0, 1)
            dz = fz[inz]
            ez = np.clip(np.minimum(z[inz] - za, zb - z[inz]) / np.maximum(dz, 1e-4) + 0.5, 0, 1)
            cov = cov * ez
            a_tot[inz] = np.maximum(a_tot[inz], cov)
            mcol[inz] = self.mark_col
        on = a_tot > 0
        if not on.any():
            return c
        wear = np.clip(1 - self.mark_wear * (1 + _tex("noise", x[on] * 4, z[on] * 2, 1)), 0, 1)
        a = (a_tot[on] * wear)[:, None]
        c[on] = c[on] * (1 - a) + mcol[on] * a
        return c

    def _photometric(self, fr, i: int) -> np.ndarray:
        cam = fr.cam
        img = fr.img
        zb = fr.zb
        # aerial perspective: far surfaces fade towards the haze colour (not the sky itself)
        hz = 1 - np.exp(np.minimum(zb, 1e5) * np.float32(-1.0 / self.haze_d))
        hz[zb == np.inf] = 0
        img += (self.haze_col[None, None, :] - img) * hz[..., None]
        if self.shift.fog_distance > 0:
            # fog: the same law, tens of metres instead of hundreds, and it also covers the sky
            fz = 1 - np.exp(np.minimum(zb, 1e5) * np.float32(-1.0 / self.shift.fog_distance))
            fz[zb == np.inf] = self.fog_sky
            img += (self.fog_col[None, None, :] - img) * fz[..., None]
        # saturation, exposure, colour cast, vertical gradient and vignette, gamma (via a LUT)
        grey = ((img[..., 0] + img[..., 1] + img[..., 2]) * np.float32(1 / 3))[..., None]
        img -= grey
        img *= np.float32(self.sat)
        img += grey
        v = (np.arange(cam.H, dtype=np.float32) + 0.5) / cam.H - 0.5
        u = (np.arange(cam.W, dtype=np.float32) + 0.5) / cam.W - 0.5
        gm = (self.gain * (1 + self.vgrad * v))[:, None] * (1 - 2 * self.vignette * (u[None, :] ** 2 + v[:, None] ** 2))
        img *= (gm[..., None] * (self.cast * 1023.0)[None, None, :]).astype(np.float32)
        np.clip(img, 0, 1023, out=img)
        lut = np.clip((np.arange(1024) / 1023.0) ** self.gamma * 255.0 + 0.5, 0, 255).astype(np.uint8)
        out = lut[img.astype(np.int32)]
        if self.blur > 0:
            out = np.asarray(Image.fromarray(out).filter(ImageFilter.GaussianBlur(self.blur)))
        g = np.random.default_rng([self.seed & 0xFFFFFFFF, i, 77])
        H, W = cam.H, cam.W
        o = out.astype(np.float32)
        o += g.standard_normal((H, W, 1), dtype=np.float32) * np.float32(self.noise)
        if self.chroma_noise > 0:  # colour noise is blotchy (demosaicing): half resolution
            h2, w2 = H // 2, W // 2
            cn = g.standard_normal((h2, 1, w2, 1, 3), dtype=np.float32) * np.float32(self.noise * self.chroma_noise)
            if H % 2 == 0 and W % 2 == 0:
                o.reshape(h2, 2, w2, 2, 3)[...] += cn  # a view: o is contiguous
            else:
                o[:2 * h2, :2 * w2] += np.repeat(np.repeat(cn[:, 0, :, 0], 2, 0), 2, 1)
        o += 0.5
        np.clip(o, 0, 255, out=o)
        out = o.astype(np.uint8)
        if self.jpeg:
            buf = io.BytesIO()
            Image.fromarray(out).save(buf, format="JPEG", quality=self.jpeg)
            out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        return np.ascontiguousarray(out)


# ----------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------


def _check_size(size) -> tuple[int, int]:
    H, W = int(size[0]), int(size[1])
    if H < 8 or W < 8:
        raise ValueError(f"size must be at least 8x8, got {size}")
    return H, W


def render_scene(seed: int, size: tuple[int, int] = (256, 512),
                 domain: str | Domain = "street8") -> tuple[np.ndarray, np.ndarray]:
    """One random street frame: (image uint8 HxWx3 RGB, label uint8 HxW with values in 0..7 or 255).
    Deterministic per (seed, domain); a shifted domain shows the same scene as street8 for that seed."""
    H, W = _check_size(size)
    return _World(int(seed), (H, W), 1, domain).render(0)


def render_sequence(seed: int, n: int, size=(256, 512),
                    domain: str | Domain = "street8") -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """n consecutive frames of a camera moving forward through ONE scene (same layout, objects approach
    and pass).  With a shifted domain the whole sequence gets the same shifts."""
    H, W = _check_size(size)
    world = _World(int(seed), (H, W), int(n), domain)
    for i in range(int(n)):
        yield world.render(i)


_SEQ_CACHE: dict[tuple, _World] = {}


def _sequence_world(seed: int, n: int, size: tuple[int, int], domain: Domain) -> _World:
    key = (seed, n, size, domain)
    w = _SEQ_CACHE.get(key)
    if w is None:
        _SEQ_CACHE.clear()
        w = _SEQ_CACHE[key] = _World(seed, size, n, domain)
    return w


def _derive_seed(seed: int, split: str, index: int) -> int:
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, zlib.crc32(split.encode()), int(index)])
    return int(ss.generate_state(1, np.uint32)[0])


def _save_pair(out: Path, split: str, stem: str, img: np.ndarray, lab: np.ndarray, image_format: str) -> None:
    ip = out / "images" / split / f"{stem}.{image_format}"
    lp = out / "labels" / split / f"{stem}.png"
    if image_format == "jpg":
        Image.fromarray(img).save(ip, format="JPEG", quality=90)
    else:
        Image.fromarray(img).save(ip, format="PNG", compress_level=1)
    Image.fromarray(lab, mode="L").save(lp, format="PNG", compress_level=6)


def _job(args) -> tuple[str, dict]:
    """Render and save one image; returns its ``split/stem`` and the shifts it got."""
    out, split, idx, size, image_format, kind, seed, n, domain = args
    if kind == "seq":
        world = _sequence_world(seed, n, size, domain)
        stem = f"frame_{idx:06d}"
    else:
        world = _World(_derive_seed(seed, split, idx), size, 1, domain)
        stem = f"street8_{split}_{idx:06d}"
    img, lab = world.render(idx if kind == "seq" else 0)
    _save_pair(Path(out), split, stem, img, lab, image_format)
    return f"{split}/{stem}", world.shift.record()


def generate_dataset(out: Path, size: tuple[int, int], splits: dict[str, int], seed: int,
                     sequence: int | None = None, workers: int = 2, image_format: str = "png",
                     domain: str | Domain = "street8") -> dict[str, int]:
    """Write a street8 data set in the folder layout.

    ``<out>/images/<split>/<stem>.<png|jpg>``, ``<out>/labels/<split>/<stem>.png`` (8-bit L, pixel = class
    id, 255 unlabeled) and ``<out>/classes.json``.  Stems are ``street8_<split>_<index:06d>``; with
    ``sequence=N`` one split (``seq``, or the single split named in ``splits``) of N consecutive frames
    ``frame_000000``.. from :func:`render_sequence`.  Every image's seed derives from (seed, split,
    index), so the output does not depend on ``workers``.  Re-running overwrites (files of an earlier
    run that the new one would not write are removed).

    ``domain`` (a name from :data:`DOMAINS` or a :class:`Domain`): anything but street8 also writes
    ``<out>/domain.json`` (the preset, and per image the shifts it got, e.g. ``"cases": ["fog",
    "camera"]``); street8 writes exactly what it always did.  Returns how many images got each case.
    """
    from tqdm import tqdm

    out = Path(out)
    dom = get_domain(domain)
    H, W = _check_size(size)
    fmt = image_format.lower().lstrip(".")
    if fmt == "jpeg":
        fmt = "jpg"
    if fmt not in ("png", "jpg"):
        raise ValueError(f"image_format must be 'png' or 'jpg', got {image_format!r}")
    jobs = []
    if sequence is not None:
        if len(splits) > 1:
            raise ValueError("sequence mode writes a single split; give at most one split name")
        name = next(iter(splits)) if splits else "seq"
        n = int(sequence)
        if n < 1:
            raise ValueError("sequence must be >= 1")
        sseed = _derive_seed(seed, name, 0)
        plan = {name: n}
        jobs = [(str(out), name, i, (H, W), fmt, "seq", sseed, n, dom) for i in range(n)]
        prefix = {name: "frame_"}
    else:
        plan = {k: int(v) for k, v in splits.items()}
        for name, count in plan.items():
            if count < 0:
                raise ValueError(f"split {name!r}: negative count")
            jobs += [(str(out), name, i, (H, W), fmt, "img", seed, 0, dom) for i in range(count)]
        prefix = {name: f"street8_{name}_" for name in plan}
    out.mkdir(parents=True, exist_ok=True)
    for name, count in plan.items():
        idir, ldir = out / "images" / name, out / "labels" / name
        idir.mkdir(parents=True, exist_ok=True)
        ldir.mkdir(parents=True, exist_ok=True)
        keep = {f"{prefix[name]}{i:06d}" for i in range(count)}
        for d, exts in ((idir, (".png", ".jpg")), (ldir, (".png",))):
            for p in d.iterdir():
                if p.name.startswith(prefix[name]) and p.suffix in exts and (
                        p.stem not in keep or (d is idir and p.suffix != "." + fmt)):
                    p.unlink()
    write_classes_json(out / "classes.json", STREET8)
    meta = out / "domain.json"
    meta.unlink(missing_ok=True)  # a stale one from a shifted run would mislabel this set
    _textures()  # load once in the parent: forked workers share it
    workers = max(1, int(workers))
    records: dict[str, dict] = {}
    desc = f"street8{'' if dom.is_street8 else '/' + dom.name} -> {out}"
    bar = tqdm(total=len(jobs), desc=desc, unit="img", disable=len(jobs) == 0)
    try:
        if workers == 1 or len(jobs) <= 1:
            for j in jobs:
                key, rec = _job(j)
                records[key] = rec
                bar.update()
        else:
            # sequence frames: contiguous chunks so each worker builds the world once per chunk
            chunk = max(1, len(jobs) // (workers * 4)) if sequence is not None else 4
            with mp.get_context().Pool(workers) as pool:
                for key, rec in pool.imap_unordered(_job, jobs, chunksize=chunk):
                    records[key] = rec
                    bar.update()
    finally:
        bar.close()
    counts: dict[str, int] = {}
    for rec in records.values():
        for c in rec["cases"]:
            counts[c] = counts.get(c, 0) + 1
    if not dom.is_street8:
        meta.write_text(json.dumps({
            "domain": dom.name, "seed": int(seed), "size": [H, W], "preset": asdict(dom), "cases": counts,
            "images": {k: records[k] for k in sorted(records)}}, indent=1) + "\n")
    return counts
