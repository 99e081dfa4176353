"""onnxruntime speed of each variant of a package: prior, decoder and the whole frame, same threads."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import numpy as np

from .runtime import OnnxSegmenter


def _time(fn, runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def bench_package(package: Path, threads: int = 1, runs: int = 20, warmup: int = 3) -> list[dict]:
    import json

    manifest = json.loads((Path(package) / "model.json").read_text())
    rows = []
    rng = np.random.default_rng(0)
    h, w = manifest["input"]["height"], manifest["input"]["width"]
    image = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    for variant in [None] + sorted(manifest.get("variants", {})):
        seg = OnnxSegmenter.load(package, variant, threads=threads)
        x = seg.preprocess(image)
        tokens = seg.prior.run(None, {manifest["prior"]["input"]: x})[0]
        prior_ms = _time(
            partial(seg.prior.run, None, {manifest["prior"]["input"]: x}), runs, warmup
        )
        dec_ms = _time(
            partial(seg.decoder.run, None, {manifest["decoder"]["input"]: tokens}), runs, warmup
        )
        total_ms = _time(partial(seg.segment, image), runs, warmup)
        name = variant or "fp32"
        files = (
            manifest["variants"][variant]
            if variant
            else {"prior": manifest["prior"]["file"], "decoder": manifest["decoder"]["file"]}
        )
        size = sum(manifest["files"][files[p]]["bytes"] for p in ("prior", "decoder"))
        rows.append(
            {
                "variant": name,
                "threads": threads,
                "prior_ms": float(np.median(prior_ms)),
                "decoder_ms": float(np.median(dec_ms)),
                "frame_ms": float(np.median(total_ms)),
                "size_mb": size / 1e6,
            }
        )
    return rows


def format_rows(rows: list[dict]) -> str:
    base = rows[0]["frame_ms"]
    lines = [
        "| variant | threads | prior ms | decoder ms | frame ms (incl. pre/post) | vs fp32 | size MB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['threads']} | {r['prior_ms']:.1f} | {r['decoder_ms']:.1f} | "
            f"{r['frame_ms']:.1f} | {r['frame_ms'] / base:.2f}x | {r['size_mb']:.2f} |"
        )
    return "\n".join(lines)
