"""gss: Generative Semantic Segmentation on small machines, from Python.

The runtime is the Rust ``gss`` crate, in process: frames go in as numpy arrays (read in
place, no copy) and class maps come out as numpy arrays.

- ``Segmenter``: image mode, one frame per call (``segment(frame)``).
- ``LiveSegmenter``: live mode for camera callbacks (``push(frame, timestamp_ns)`` never
  blocks; results reach a callback from gss's own thread).
- ``stream``: files and folders as an iterator of results.
- ``overlay``: a frame blended with its class colours.

With no model named, the package bundled in this wheel is used (``$GSS_MODEL`` overrides it).
"""

from __future__ import annotations

import atexit
from collections.abc import Sequence

import numpy as np

from gss._gss import (
    UNSEEN,
    WGPU,
    ClassInfo,
    GssError,
    LiveSegmenter,
    ModelError,
    ModelInfo,
    Segmenter,
    SegmentResult,
    Stream,
    Timings,
    _close_all,
    classes,
    configure,
    stream,
)
from gss._gss import overlay as _overlay

__all__ = [
    "UNSEEN",
    "WGPU",
    "ClassInfo",
    "GssError",
    "LiveSegmenter",
    "ModelError",
    "ModelInfo",
    "Segmenter",
    "SegmentResult",
    "Stream",
    "Timings",
    "classes",
    "configure",
    "overlay",
    "stream",
]

# Live segmenters still open when the interpreter exits are closed first, so their callback
# thread never waits for a finalising interpreter.
atexit.register(_close_all)

_bundled_colors: list[tuple[int, int, int]] | None = None


def _default_colors() -> list[tuple[int, int, int]]:
    global _bundled_colors
    if _bundled_colors is None:
        _bundled_colors = [c.color for c in classes()]
    return _bundled_colors


def overlay(
    frame: np.ndarray,
    classes: np.ndarray,
    colors: Sequence[tuple[int, int, int]] | None = None,
    channel_order: str = "RGB",
) -> np.ndarray:
    """``frame`` blended half-and-half with each pixel's class colour.

    ``classes`` is a result's ``classes`` (H×W uint8, the frame's size); ``colors`` the
    (R, G, B) of each class id (a segmenter's ``colors``; None: the bundled model's). Unseen
    pixels keep the frame's colour. The picture comes back in the frame's channel order.
    """
    palette = list(colors) if colors is not None else _default_colors()
    return _overlay(frame, classes, palette, channel_order)
