"""Maskige: the K-class mask as an RGB image (X) and back (X⁻¹).

Each class gets a palette colour chosen to be as far as possible from every other colour and from
the ignore colour, so the VQ-VAE's reconstruction errors rarely push a pixel over to another class.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from .data.classes import IGNORE_INDEX


@dataclass(frozen=True)
class Palette:
    colors: np.ndarray  # uint8 [K, 3], one colour per class
    ignore_color: tuple[int, int, int]

    @property
    def num_classes(self) -> int:
        return int(self.colors.shape[0])

    def min_distance(self) -> float:
        """Smallest RGB distance between any two palette colours, the ignore colour included."""
        pts = np.concatenate([self.colors, np.array([self.ignore_color], np.uint8)]).astype(
            np.float64
        )
        d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
        return float(d[np.triu_indices(len(pts), 1)].min())

    def to_dict(self) -> dict:
        return {"colors": self.colors.tolist(), "ignore_color": list(self.ignore_color)}

    @staticmethod
    def from_dict(d: dict) -> Palette:
        return Palette(np.array(d["colors"], np.uint8), tuple(int(v) for v in d["ignore_color"]))


def max_distance_palette(
    num_classes: int,
    ignore_color: tuple[int, int, int] = (0, 0, 0),
    levels: int = 5,
    restarts: int = 64,
    seed: int = 0,
) -> Palette:
    """Picks `num_classes` colours from a levels³ RGB grid maximising the minimum pairwise distance.

    Greedy farthest-point sampling from several starts, then single-swap refinement; the best
    max-min configuration wins. Deterministic for a given seed.

    More classes than the grid holds besides the ignore colour (ADE20K's 150 > 124 at 5 levels)
    take the coarsest grid that holds them, from one start: on a grid that barely holds K colours
    every start ends at one grid step apart (150 of 6³ points cannot avoid neighbours), and each
    start's refinement costs seconds there. Class counts the requested grid holds are unaffected.
    """
    if num_classes < 1:
        raise ValueError(f"{num_classes} classes: a palette needs at least one")
    while levels**3 - 1 < num_classes:
        levels, restarts = levels + 1, 0
    grid = np.array(list(itertools.product(np.linspace(0, 255, levels), repeat=3)))
    grid = np.rint(grid)
    ign = np.array(ignore_color, np.float64)
    cand = grid[np.linalg.norm(grid - ign, axis=1) > 0]
    if num_classes > len(cand):  # an ignore colour off the grid leaves all levels³ points
        raise ValueError(f"{num_classes} classes need a finer colour grid than levels={levels}")
    dist = np.sqrt(((cand[:, None] - cand[None]) ** 2).sum(-1))
    d_ign = np.linalg.norm(cand - ign, axis=1)
    rng = np.random.default_rng(seed)

    def score(idx: list[int]) -> float:
        sub = dist[np.ix_(idx, idx)]
        pair = sub[np.triu_indices(len(idx), 1)].min() if len(idx) > 1 else np.inf
        return float(min(pair, d_ign[idx].min()))

    best, best_score = None, -1.0
    starts = [int(np.argmax(d_ign))] + list(rng.integers(0, len(cand), restarts))
    for start in starts:
        chosen = [int(start)]
        nearest = np.minimum(dist[start], d_ign)
        while len(chosen) < num_classes:
            nxt = int(np.argmax(nearest))
            chosen.append(nxt)
            nearest = np.minimum(nearest, dist[nxt])
        improved = True
        while improved:  # swap any member for any candidate that raises the minimum
            improved = False
            cur = score(chosen)
            for i in range(num_classes):
                for c in range(len(cand)):
                    if c in chosen:
                        continue
                    trial = chosen[:i] + [c] + chosen[i + 1 :]
                    if score(trial) > cur + 1e-9:
                        chosen, cur, improved = trial, score(trial), True
        s = score(chosen)
        if s > best_score:
            best, best_score = sorted(chosen), s
    return Palette(cand[best].astype(np.uint8), tuple(int(v) for v in ignore_color))


def mask_to_maskige(label: np.ndarray, palette: Palette) -> np.ndarray:
    """X: uint8 label [H, W] → uint8 maskige [H, W, 3]; ignore pixels get the ignore colour."""
    lut = np.zeros((256, 3), np.uint8)
    lut[:] = palette.ignore_color
    lut[: palette.num_classes] = palette.colors
    return lut[label]


# X⁻¹, the nearest palette colour (GSS-FF). |x − p_k|² = |x|² − (2 p_k·x − |p_k|²) and |x|² is the
# same for every class, so the nearest colour is the highest score of the linear classifier with the
# planes w_k = 2 p_k, b_k = −|p_k|² (`nearest_planes`): every torch and ONNX form of X⁻¹ here is that
# classifier (a 1×1 conv + argmax in a graph). The numpy form (`maskige_to_mask`) is the Python
# reference runtime's (`runtime.OnnxSegmenter`) and keeps the distances themselves, as the Rust
# runtime's loop does (`Palette::nearest_into`); in exact arithmetic the two forms pick the same
# class, the first of equal ones (tests/test_maskige.py checks both on integer colours). A linear
# inverse (GSS-FT without hidden layers, `linear_to_mask`) is the same classifier, trained planes.


def maskige_to_mask(maskige: np.ndarray, palette: Palette) -> np.ndarray:
    """X⁻¹ (nearest colour, GSS-FF): maskige [H, W, 3] (uint8 or float in 0..255) → class ids [H, W]."""
    m = maskige.astype(np.float32)
    cols = palette.colors.astype(np.float32)
    d = ((m[..., None, :] - cols) ** 2).sum(-1)
    return d.argmin(-1).astype(np.uint8)


def linear_to_mask(maskige: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """A linear X⁻¹ (weight [K, 3], bias [K]) on a maskige [3, H, W] → uint8 class ids [H, W];
    the first of equal scores wins, as in the runtime's `LinearInverse`."""
    scores = np.einsum("kc,chw->khw", weight, maskige.astype(np.float32)) + bias[:, None, None]
    return scores.argmax(0).astype(np.uint8)


def nearest_planes(colors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The nearest-colour rule for palette `colors` [K, 3] as linear planes: (weight [K, 3] = 2 p_k,
    bias [K] = −|p_k|²), in whatever range the colours are given (the maskige's)."""
    return 2 * colors, -(colors**2).sum(1)


def nearest_scores(maskige: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
    """Nearest-colour class scores of a maskige batch [N, 3, H, W] against `colors` [K, 3] in the
    maskige's range → [N, K, H, W]; the argmax over K is the nearest colour."""
    weight, bias = nearest_planes(colors)
    return torch.einsum("nchw,kc->nkhw", maskige, weight) + bias[None, :, None, None]


def palette_in_range(manifest: dict) -> torch.Tensor:
    """A package's maskige palette [K, 3] in its decoder's output range (what X⁻¹ compares against)."""
    lo, hi = manifest["decoder"]["output_range"]
    return (
        torch.tensor(manifest["maskige"]["palette"], dtype=torch.float32) * ((hi - lo) / 255.0) + lo
    )


def labels_to_maskige_tensor(labels: torch.Tensor, palette: Palette) -> torch.Tensor:
    """X on a batch: long labels [N, H, W] (ignore allowed) → float maskige [N, 3, H, W] in [0, 1]."""
    lut = torch.empty(256, 3)
    lut[:] = torch.tensor(palette.ignore_color, dtype=torch.float32) / 255
    lut[: palette.num_classes] = torch.from_numpy(palette.colors.astype(np.float32) / 255)
    return lut.to(labels.device)[labels.clamp(0, 255)].permute(0, 3, 1, 2).contiguous()


def maskige_tensor_to_labels(maskige: torch.Tensor, palette: Palette) -> torch.Tensor:
    """X⁻¹ on a batch: float maskige [N, 3, H, W] in [0, 1] → long class ids [N, H, W]."""
    cols = torch.from_numpy(palette.colors.astype(np.float32) / 255).to(maskige.device)
    return nearest_scores(maskige, cols).argmax(1)


def fill_ignore_nearest(label: np.ndarray, ignore: int = IGNORE_INDEX) -> np.ndarray:
    """Replaces ignore pixels with the class of the nearest labelled pixel (for stage-1 maskiges)."""
    from scipy import ndimage

    mask = label == ignore
    if not mask.any() or mask.all():
        return label
    _, (iy, ix) = ndimage.distance_transform_edt(mask, return_indices=True)
    return label[iy, ix]
