"""The one definition of resizing between a frame and the model input; the Rust runtime implements
exactly the same arithmetic (``src/frame_path/geometry.rs``), so a frame of any size gets the same
model input and the same class map on both sides.

**Fit policy.**  A frame of W×H pixels is shown to a model input of w×h pixels under one of three
policies.  Per axis there is a scale s (model pixels per frame pixel) and an offset o (model pixels):

- ``stretch``: s_x = w/W, s_y = h/H (the aspect ratio changes);
- ``crop``: s_x = s_y = max(w/W, h/H) (the centre of the frame fills the input);
- ``letterbox``: s_x = s_y = min(w/W, h/H) (the whole frame fits, with padding bars).

In all three o_x = (w − W·s_x)/2 and o_y = (h − H·s_y)/2, computed with exactly these float64
operations (so the stretch offset is 0 up to rounding, not special-cased), negative for crop and
≥ 0 for letterbox.

**Image → model input** (bilinear, no antialiasing, torch's ``align_corners=False``): model pixel i
(centre i + 0.5) maps to the frame coordinate u = ((i + 0.5) − o) / s.  If u < 0 or u ≥ W (only with
letterbox) the model pixel is padding: it gets the normalised value 0, i.e. the raw value is the
manifest's mean.  Otherwise it samples at f = max(u − 0.5, 0): i0 = min(⌊f⌋, W − 1),
i1 = min(i0 + 1, W − 1), weight of i1 = f − i0.  Rows are the same with H, h; the two axes are
separable (columns first, then rows).  For stretch this is ``F.interpolate(mode="bilinear",
align_corners=False, antialias=False)``.

**Class map → frame** (nearest): frame pixel X maps to the model coordinate m = o + (X + 0.5)·s.  If
m < 0 or m ≥ w (only with crop: the model never saw that pixel) the frame pixel gets 255 (unknown);
otherwise it takes model column min(⌊m⌋, w − 1).  Rows the same.  For stretch this is torch's
``"nearest-exact"``.

With stretch the same two functions resize any image or class map to any size (training's random
scale uses them that way).  Coordinates are float64 everywhere; numpy interpolates in float64 and
returns float32, torch interpolates in the tensor's dtype.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

FitPolicy = Literal["stretch", "crop", "letterbox"]
FIT_POLICIES: tuple[FitPolicy, ...] = ("stretch", "crop", "letterbox")
UNKNOWN_CLASS = 255  # frame pixels the model never saw (crop); the data sets' ignore index


@dataclass(frozen=True)
class AxisFit:
    """One axis of a fit: model coordinate = offset + frame coordinate · scale."""

    scale: float
    offset: float


@dataclass(frozen=True)
class Fit:
    """A fit policy applied to one frame size and one model input size, (height, width) each."""

    policy: FitPolicy
    frame_size: tuple[int, int]
    model_size: tuple[int, int]
    rows: AxisFit
    cols: AxisFit

    @staticmethod
    def of(policy: str, frame_size: tuple[int, int], model_size: tuple[int, int]) -> Fit:
        if policy not in FIT_POLICIES:
            raise ValueError(f"unknown fit {policy!r}; expected one of {', '.join(FIT_POLICIES)}")
        frame_h, frame_w = (int(v) for v in frame_size)
        model_h, model_w = (int(v) for v in model_size)
        if min(frame_h, frame_w, model_h, model_w) < 1:
            raise ValueError(
                f"fit {policy}: sizes must be positive, got frame {frame_size}, model {model_size}"
            )
        scale_x, scale_y = model_w / frame_w, model_h / frame_h
        if policy == "crop":
            scale_x = scale_y = max(scale_x, scale_y)
        elif policy == "letterbox":
            scale_x = scale_y = min(scale_x, scale_y)
        return Fit(
            policy,
            (frame_h, frame_w),
            (model_h, model_w),  # type: ignore[arg-type]
            AxisFit(scale_y, (model_h - frame_h * scale_y) / 2),
            AxisFit(scale_x, (model_w - frame_w * scale_x) / 2),
        )


@dataclass(frozen=True)
class BilinearAxis:
    """Where each model index samples one frame axis: two neighbours, the second's weight, and
    whether it samples the frame at all (False: letterbox padding)."""

    first: np.ndarray  # int64 [model_len]
    second: np.ndarray
    weight: np.ndarray  # float64, of ``second``
    inside: np.ndarray  # bool

    @staticmethod
    def of(axis: AxisFit, frame_len: int, model_len: int) -> BilinearAxis:
        u = ((np.arange(model_len, dtype=np.float64) + 0.5) - axis.offset) / axis.scale
        inside = (u >= 0.0) & (u < frame_len)
        f = np.maximum(u - 0.5, 0.0)
        first = np.minimum(np.floor(f), frame_len - 1).astype(np.int64)
        second = np.minimum(first + 1, frame_len - 1)
        return BilinearAxis(first, second, f - first, inside)


def nearest_axis(axis: AxisFit, model_len: int, frame_len: int) -> tuple[np.ndarray, np.ndarray]:
    """For each frame index of one axis: the model index its class comes from, and whether the
    model saw it at all (False: crop cut it off)."""
    m = axis.offset + (np.arange(frame_len, dtype=np.float64) + 0.5) * axis.scale
    inside = (m >= 0.0) & (m < model_len)
    index = np.minimum(np.floor(np.where(inside, m, 0.0)), model_len - 1).astype(np.int64)
    return index, inside


def resize_image(
    image: np.ndarray,
    size: tuple[int, int],
    fit: str = "stretch",
    pad_value: float | Sequence[float] = 0.0,
) -> np.ndarray:
    """A frame (H×W or H×W×C, any numeric dtype) → the model input of ``size`` (h, w) under ``fit``,
    float32 in the image's own units; padding pixels get ``pad_value`` (per channel, e.g. the
    manifest's mean, so they normalise to 0).  See the module docstring for the formula."""
    h, w = size
    geometry = Fit.of(fit, image.shape[:2], (h, w))
    if geometry.frame_size == geometry.model_size:  # every policy is the identity at equal sizes
        return image.astype(np.float32)
    cols = BilinearAxis.of(geometry.cols, geometry.frame_size[1], w)
    rows = BilinearAxis.of(geometry.rows, geometry.frame_size[0], h)
    src = image.astype(np.float64)
    extra = (None,) * (src.ndim - 2)  # broadcast the weights over channels
    cw = cols.weight[(None, slice(None)) + extra]
    across = src[:, cols.first] * (1 - cw) + src[:, cols.second] * cw
    rw = rows.weight[(slice(None), None) + extra]
    out = across[rows.first] * (1 - rw) + across[rows.second] * rw
    padding = ~(rows.inside[:, None] & cols.inside[None, :])
    if padding.any():
        out[padding] = np.asarray(pad_value, np.float64)
    return out.astype(np.float32)


def resize_classes(
    classes: np.ndarray, size: tuple[int, int], fit: str = "stretch", unknown: int = UNKNOWN_CLASS
) -> np.ndarray:
    """A class map at the model input's size (h×w) → the frame of ``size`` (H, W) under ``fit``;
    frame pixels the model never saw (crop) get ``unknown``.  Keeps the dtype."""
    geometry = Fit.of(fit, size, classes.shape[:2])
    if geometry.frame_size == geometry.model_size:
        return classes.copy()
    row_index, row_inside = nearest_axis(
        geometry.rows, geometry.model_size[0], geometry.frame_size[0]
    )
    col_index, col_inside = nearest_axis(
        geometry.cols, geometry.model_size[1], geometry.frame_size[1]
    )
    out = classes[np.ix_(row_index, col_index)]
    out[~(row_inside[:, None] & col_inside[None, :])] = unknown
    return out


def resize_image_torch(
    images: torch.Tensor,
    size: tuple[int, int],
    fit: str = "stretch",
    pad_value: float | Sequence[float] = 0.0,
) -> torch.Tensor:
    """:func:`resize_image` on a batch [N, C, H, W] (float, on any device, differentiable in the
    values): [N, C, h, w] in the same dtype."""
    h, w = (int(v) for v in size)
    geometry = Fit.of(fit, tuple(images.shape[-2:]), (h, w))
    if geometry.frame_size == geometry.model_size:
        return images
    cols = BilinearAxis.of(geometry.cols, geometry.frame_size[1], w)
    rows = BilinearAxis.of(geometry.rows, geometry.frame_size[0], h)
    dev, dtype = images.device, images.dtype

    def index(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(dev)

    cw = torch.from_numpy(cols.weight).to(dev, dtype)
    across = (
        images.index_select(-1, index(cols.first)) * (1 - cw)
        + images.index_select(-1, index(cols.second)) * cw
    )
    rw = torch.from_numpy(rows.weight).to(dev, dtype)[:, None]
    out = (
        across.index_select(-2, index(rows.first)) * (1 - rw)
        + across.index_select(-2, index(rows.second)) * rw
    )
    inside = rows.inside[:, None] & cols.inside[None, :]
    if not inside.all():
        fill = torch.as_tensor(pad_value, dtype=dtype, device=dev).reshape(-1, 1, 1)
        out = torch.where(index(inside), out, fill.expand(out.shape[-3], h, w))
    return out


def resize_classes_torch(
    classes: torch.Tensor, size: tuple[int, int], fit: str = "stretch", unknown: int = UNKNOWN_CLASS
) -> torch.Tensor:
    """:func:`resize_classes` on a batch [N, h, w] (any integer dtype, any device): [N, H, W]."""
    height, width = (int(v) for v in size)
    geometry = Fit.of(fit, (height, width), tuple(classes.shape[-2:]))
    if geometry.frame_size == geometry.model_size:
        return classes
    row_index, row_inside = nearest_axis(geometry.rows, geometry.model_size[0], height)
    col_index, col_inside = nearest_axis(geometry.cols, geometry.model_size[1], width)
    dev = classes.device
    out = classes.index_select(-2, torch.from_numpy(row_index).to(dev))
    out = out.index_select(-1, torch.from_numpy(col_index).to(dev))
    inside = row_inside[:, None] & col_inside[None, :]
    if not inside.all():
        out = out.masked_fill(torch.from_numpy(~inside).to(dev), unknown)
    return out


__all__ = [
    "FitPolicy",
    "FIT_POLICIES",
    "UNKNOWN_CLASS",
    "AxisFit",
    "Fit",
    "BilinearAxis",
    "nearest_axis",
    "resize_image",
    "resize_classes",
    "resize_image_torch",
    "resize_classes_torch",
]
