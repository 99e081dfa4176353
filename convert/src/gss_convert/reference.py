"""Python reference outputs for a frame whose size differs from the model input's.

For each fit policy the exported package runs with onnxruntime on the frame: resize.py maps the
frame to the model input (letterbox padding at the mean colour), the prior gives the token grid,
the decoder the maskige, the nearest palette colour the classes (X⁻¹), and resize.py maps them back
to the frame's size (255 where crop cut the frame).  The Rust runtime's tests compare against these.

``DIR/reference.json``::

    {"package": ..., "image": "frame.png", "size": [W, H],
     "cases": [{"fit": "stretch", "classes": "stretch.classes.png", "tokens": "stretch.tokens.u16",
                "grid": [gh, gw]}, ...]}

Class maps are 8-bit grey PNGs at the frame's size; token grids are row-major little-endian u16.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from .resize import FIT_POLICIES
from .runtime import OnnxSegmenter

FRAME_NAME = "frame.png"


def parse_fits(text: str) -> list[str]:
    """``stretch,crop`` → ["stretch", "crop"], checking each name."""
    fits = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in fits if f not in FIT_POLICIES]
    if unknown or not fits:
        raise ValueError(
            f"--fit {text!r}: expected a comma-separated list of {', '.join(FIT_POLICIES)}"
        )
    return fits


def write_frame_reference(
    package: Path,
    image_path: Path,
    out: Path,
    fits: Sequence[str] = FIT_POLICIES,
    variant: str | None = None,
) -> dict:
    """Writes the reference outputs of one frame under every fit in ``fits`` into ``out``; returns
    the reference.json content.  The frame itself goes to ``out/frame.png`` (the file's bytes when
    it is a PNG, so nothing is re-encoded)."""
    image_path, out = Path(image_path), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frame_path = out / FRAME_NAME
    with Image.open(image_path) as im:
        image = np.asarray(im.convert("RGB"))
        is_png = im.format == "PNG"
    if not frame_path.exists() or not frame_path.samefile(image_path):
        if is_png:
            shutil.copyfile(image_path, frame_path)
        else:
            Image.fromarray(image).save(frame_path)
    # one thread: the same operator order on every machine, as the Rust tests' own references
    seg = OnnxSegmenter.load(package, variant, threads=1)
    cases = []
    for fit in fits:
        tokens, classes = seg.segment(image, fit)
        tokens_file, classes_file = f"{fit}.tokens.u16", f"{fit}.classes.png"
        tokens.astype("<u2").tofile(out / tokens_file)
        Image.fromarray(classes.astype(np.uint8)).save(out / classes_file)  # 2-D uint8: 8-bit grey
        cases.append(
            {"fit": fit, "classes": classes_file, "tokens": tokens_file, "grid": list(tokens.shape)}
        )
    reference = {
        "package": str(package),
        "image": FRAME_NAME,
        "size": [image.shape[1], image.shape[0]],
        "cases": cases,
    }
    if variant:
        reference["variant"] = variant
    (out / "reference.json").write_text(json.dumps(reference, indent=1) + "\n")
    return reference


__all__ = ["parse_fits", "write_frame_reference"]
