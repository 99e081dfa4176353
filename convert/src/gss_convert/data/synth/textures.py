"""Texture tiles: photos that scikit-image ships inside its wheel (gravel, grass, brick, moon, ...),
procedural noise, and the held-out patterns only the shift domain uses, all mip-mapped.

The tiles are built once per process by :func:`texture_bank` (memoised: the bank depends on nothing
but the installed scikit-image, so no caller can tell the cache is there).  A parent process builds
it before forking its workers, which then share it.
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from PIL import Image, ImageFilter

TILE_SIZE = 512  # a power of two, so texel coordinates wrap with a bit mask
MIP_LEVELS = 6
POSTER_SIZE = 64

# key -> (skimage.data loader, rotate by 90°).  The loaders read files shipped in the wheel (no pooch
# download); each one that fails is replaced by procedural noise, so rendering never needs a network.
PHOTO_TEXTURES: Mapping[str, tuple[str, bool]] = MappingProxyType(
    {
        "gravel": ("gravel", False),  # asphalt, gravel paths
        "grass": ("grass", False),  # lawns, hedges, tree crowns
        "brick": ("brick", True),  # brick facades and paving (rotated: courses horizontal)
        "moon": ("moon", False),  # plaster, concrete, stains
    }
)
POSTER_PHOTOS = ("coffee", "chelsea", "astronaut", "rocket")

# footprints (texels per pixel) at which the next coarser mip level takes over
_MIP_EDGES = np.array([2.0**i for i in range(1, MIP_LEVELS)], np.float32)
_MIP_EDGES.flags.writeable = False


def fractal_noise(seed: int, size: int, beta: float) -> np.ndarray:
    """Tileable fractal noise (power spectrum ~ 1/f^beta), zero mean, unit std."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.fft2(rng.standard_normal((size, size)))
    freq_y = np.fft.fftfreq(size)[:, None]
    freq_x = np.fft.fftfreq(size)[None, :]
    radius = np.sqrt(freq_x * freq_x + freq_y * freq_y)
    radius[0, 0] = 1.0
    spectrum *= radius ** (-beta / 2)
    spectrum[0, 0] = 0
    noise = np.real(np.fft.ifft2(spectrum))
    return (noise - noise.mean()) / (noise.std() + 1e-9)


def stone_cells(seed: int, size: int, cells: int) -> np.ndarray:
    """Tileable stone-block pattern (jittered-grid Voronoi cells, dark joints, one tone per stone),
    zero mean, unit std.  Only the shift domain uses it: street8 never shows cobbles or stone blocks,
    so it is a texture held out from training."""
    rng = np.random.default_rng(seed)
    jitter = rng.uniform(0.15, 0.85, (cells, cells, 2))
    tone = rng.standard_normal((cells, cells))
    coord = np.arange(size, dtype=np.float64) * (cells / size)  # texel -> cell units
    yy, xx = np.meshgrid(coord, coord, indexing="ij")
    iy, ix = np.floor(yy).astype(np.int64), np.floor(xx).astype(np.int64)
    nearest = np.full((size, size), np.inf)
    second = np.full((size, size), np.inf)
    nearest_tone = np.zeros((size, size))
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            cy, cx = (iy + dy) % cells, (ix + dx) % cells  # wrap: the tile repeats seamlessly
            d = np.hypot(xx - (ix + dx + jitter[cy, cx, 0]), yy - (iy + dy + jitter[cy, cx, 1]))
            closer = d < nearest
            second = np.where(closer, nearest, np.minimum(second, d))
            nearest_tone = np.where(closer, tone[cy, cx], nearest_tone)
            nearest = np.where(closer, d, nearest)
    joint = np.clip((second - nearest) / 0.18, 0, 1)  # 0 on the border between two stones
    a = 1.6 * joint + 0.45 * nearest_tone + 0.25 * fractal_noise(seed + 1, size, 1.2)
    return (a - a.mean()) / (a.std() + 1e-9)


def board_stripes(seed: int, size: int, period: int) -> np.ndarray:
    """Tileable horizontal boards (siding, decking): a tone per board, a dark groove between boards and
    a grain along them.  Held out from street8 like :func:`stone_cells`."""
    rng = np.random.default_rng(seed)
    row = np.arange(size)
    tone = rng.standard_normal(size // period)[row // period]
    groove = np.where(row % period < max(1, period // 8), -2.5, 0.0)
    grain = fractal_noise(seed + 1, size, 1.6)
    grain = (
        0.5 * (grain + np.roll(grain, 1, 1) + np.roll(grain, 2, 1)) / 1.5
    )  # smear along the boards
    a = (tone + groove)[:, None] * 0.8 + 0.35 * grain
    return (a - a.mean()) / (a.std() + 1e-9)


def _load_skimage(name: str) -> np.ndarray | None:
    try:
        import skimage.data as skd

        return np.asarray(getattr(skd, name)())
    except Exception:  # missing loader, needs a download, no pooch, ... -> skip
        return None


def _photo_to_tile(gray: np.ndarray) -> np.ndarray:
    """Grey photo -> seamless zero-mean unit-std float tile of TILE_SIZE (mirror-tiled)."""
    half = TILE_SIZE // 2
    im = Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8)).resize(
        (half, half), Image.BILINEAR
    )
    a = np.asarray(im, np.float32)
    # remove slow illumination gradients, keep the texture
    low = np.asarray(
        Image.fromarray(a.astype(np.uint8)).filter(ImageFilter.GaussianBlur(24)), np.float32
    )
    a = a - low
    a = np.concatenate([a, a[:, ::-1]], 1)
    a = np.concatenate([a, a[::-1, :]], 0)
    return (a - a.mean()) / (a.std() + 1e-6)


def _mip_stack(tile: np.ndarray) -> np.ndarray:
    """(levels, S, S) uint8 stack, level l blurred for a footprint of 2**l texels; value = 128 + 40 n."""
    size = tile.shape[0]
    levels = []
    for level in range(MIP_LEVELS):
        if level == 0:
            blurred = tile
        else:
            sigma = 0.6 * 2**level
            k = np.fft.fftfreq(size)
            gauss = np.exp(-2 * (math.pi * sigma) ** 2 * (k[:, None] ** 2 + k[None, :] ** 2))
            blurred = np.real(
                np.fft.ifft2(np.fft.fft2(tile) * gauss)
            )  # periodic blur keeps it tileable
        levels.append(np.clip(128 + 40 * blurred, 0, 255).astype(np.uint8))
    return np.stack(levels)


@dataclass(frozen=True)
class TextureBank:
    """Every texture the renderer samples (mip stacks by name) and the colour posters."""

    mip_stacks: Mapping[str, np.ndarray]  # name -> (MIP_LEVELS, TILE_SIZE, TILE_SIZE) uint8
    posters: tuple[np.ndarray, ...]  # (POSTER_SIZE, POSTER_SIZE, 3) float32 in [0, 1]

    def sample(self, name: str, s, t, footprint) -> np.ndarray:
        """Texture ``name`` at texel coordinates (s, t), from the mip level for a per-pixel footprint of
        ``footprint`` texels (a scalar or one per pixel).  Values ~ N(0, 1), float32."""
        stack = self.mip_stacks[name]
        size = TILE_SIZE
        if np.ndim(footprint) == 0:
            level = int(min(max(math.log2(max(float(footprint), 1.0)), 0), MIP_LEVELS - 1))
        else:
            level = np.searchsorted(_MIP_EDGES, footprint).astype(np.int32)
        # the offset keeps negative coordinates positive before the wrap
        si = (np.asarray(s) + 65536.0).astype(np.int32) & (size - 1)
        ti = (np.asarray(t) + 65536.0).astype(np.int32) & (size - 1)
        v = stack.reshape(-1)[(level * size + ti) * size + si]
        return (v.astype(np.float32) - 128.0) * (1.0 / 40.0)

    def poster(self, index: int, u, v) -> np.ndarray:
        """Colour of poster ``index`` (wrapping over the posters) at (u, v) in [0, 1)."""
        p = self.posters[index % len(self.posters)]
        n = p.shape[0]
        return p[
            np.clip((v * n).astype(np.int32), 0, n - 1), np.clip((u * n).astype(np.int32), 0, n - 1)
        ]


@functools.cache
def texture_bank() -> TextureBank:
    stacks: dict[str, np.ndarray] = {}
    for key, (loader, rotate) in PHOTO_TEXTURES.items():
        photo = _load_skimage(loader)
        if photo is None:
            tile = fractal_noise(zlib.crc32(key.encode()), TILE_SIZE, 0.6)  # procedural fallback
        else:
            if photo.ndim == 3:
                photo = photo[..., :3].mean(-1)
            if rotate:
                photo = np.rot90(photo)
            tile = _photo_to_tile(photo)
        stacks[key] = _mip_stack(tile)
    stacks["noise"] = _mip_stack(
        fractal_noise(1234, TILE_SIZE, 2.6)
    )  # smooth, large-scale variation / clouds
    stacks["fine"] = _mip_stack(fractal_noise(4321, TILE_SIZE, 1.0))
    # held-out textures of the shift domain (street8 never samples them; see restyle.py)
    stacks["cells"] = _mip_stack(stone_cells(2468, TILE_SIZE, 16))  # 16 stones per tile side
    stacks["stripes"] = _mip_stack(board_stripes(1357, TILE_SIZE, 16))  # 32 boards per tile
    posters = []
    for name in POSTER_PHOTOS:
        photo = _load_skimage(name)
        if photo is not None and photo.ndim == 3:
            im = Image.fromarray(photo[..., :3].astype(np.uint8)).resize(
                (POSTER_SIZE, POSTER_SIZE), Image.BILINEAR
            )
            posters.append(np.asarray(im, np.float32) / 255.0)
    if not posters:
        posters.append(np.full((POSTER_SIZE, POSTER_SIZE, 3), 0.5, np.float32))
    return TextureBank(MappingProxyType(stacks), tuple(posters))


def sample_texture(name: str, s, t, footprint) -> np.ndarray:
    """:meth:`TextureBank.sample` on the process's texture bank."""
    return texture_bank().sample(name, s, t, footprint)


def poster_colour(index: int, u, v) -> np.ndarray:
    """:meth:`TextureBank.poster` on the process's texture bank."""
    return texture_bank().poster(index, u, v)


def cell_hash(i, j, k: float = 0.0) -> np.ndarray:
    """A repeatable pseudo-random value in [0, 1) per integer cell (i, j) and salt k, e.g. per window."""
    v = np.sin(i * 12.9898 + j * 78.233 + k) * 43758.5453
    return (v - np.floor(v)).astype(np.float32)


def available_textures() -> dict[str, bool]:
    """Which skimage photos loaded offline (True) or were replaced by procedural noise (False)."""
    out = {}
    for loader, _rotate in PHOTO_TEXTURES.values():
        out[loader] = _load_skimage(loader) is not None
    for name in POSTER_PHOTOS:
        out[name] = _load_skimage(name) is not None
    return out
