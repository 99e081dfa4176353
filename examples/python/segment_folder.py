"""Segment every image of a folder (or glob) with gss from Python and write class maps and
overlays as PNGs, as `gss segment --overlay` does.

    python examples/python/segment_folder.py assets/street8-clip/images/seq out/
    python examples/python/segment_folder.py "shots/*.jpg" out/ --model path/to/package

Uses `gss.stream` (lossless: every frame comes out, in name order, on gss's threads).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gss
import numpy as np
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a folder of .png/.jpg images, a glob, or one file")
    parser.add_argument("out", type=Path, help="folder for <name>.png and <name>.overlay.png")
    parser.add_argument("--model", help="model package directory (default: the bundled one)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: every core)")
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    frames = gss.stream(args.source, args.model, frames=True, threads=args.threads)
    total_ms = []
    for result in frames:
        stem = Path(result.path).stem
        Image.fromarray(result.classes).save(args.out / f"{stem}.png")
        picture = gss.overlay(result.frame, result.classes, frames.colors)
        Image.fromarray(picture).save(args.out / f"{stem}.overlay.png")
        total_ms.append(result.timings.total_ms)
    stats = frames.stats
    print(
        f"segmented {stats['published']} images into {args.out} "
        f"({stats['corrupt']} unreadable skipped); median frame time "
        f"{np.median(total_ms) if total_ms else float('nan'):.1f} ms"
    )


if __name__ == "__main__":
    main()
