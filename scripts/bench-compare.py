"""gss (tract) against onnxruntime on the same model files and thread counts, side by side.

Rounds alternate between the two so that noise from a shared machine lands on both; the table
reports medians over rounds of each side's per-stage p50 and the tract / onnxruntime ratio.
Run through scripts/bench-compare.sh (it builds the release binary and the Python venv first).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
from PIL import Image

from gss_convert.verify import OnnxSegmenter

ROOT = Path(__file__).resolve().parent.parent


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gss_round(binary: Path, model: Path, variant: str | None, threads: int, frames: int, image: Path) -> dict:
    cmd = [str(binary), "--model", str(model), "--threads", str(threads), "bench", "--json",
           "--frames", str(frames), "--warmup", "3", "--image", str(image)]
    if variant:
        cmd[1:1] = ["--variant", variant]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "RUST_LOG": "warn"})
    report = json.loads(out.stdout)
    return {stage: report["stages"][stage]["p50_ms"] for stage in ("prior", "decoder", "frame")} | {
        "rss_mb": report["peak_rss_mb"], "cold_ms": report["cold_start_ms"]}


def ort_round(seg: OnnxSegmenter, manifest: dict, image: np.ndarray, frames: int) -> dict:
    prior_in, dec_in = manifest["prior"]["input"], manifest["decoder"]["input"]
    x = seg.preprocess(image)
    tokens = seg.prior.run(None, {prior_in: x})[0]
    for _ in range(3):
        seg.segment(image)
    times: dict[str, list[float]] = {"prior": [], "decoder": [], "frame": []}
    for _ in range(frames):
        t0 = time.perf_counter()
        seg.prior.run(None, {prior_in: x})
        t1 = time.perf_counter()
        seg.decoder.run(None, {dec_in: tokens})
        t2 = time.perf_counter()
        seg.segment(image)
        t3 = time.perf_counter()
        times["prior"].append(t1 - t0)
        times["decoder"].append(t2 - t1)
        times["frame"].append(t3 - t2)
    return {k: 1e3 * float(np.median(v)) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "models/gss-edge-street8")
    ap.add_argument("--binary", type=Path, default=ROOT / "target/release/gss")
    ap.add_argument("--threads", default=f"1,{os.cpu_count() or 1}", help="comma-separated thread counts")
    ap.add_argument("--variants", default="fp32", help="comma-separated: fp32 and/or variants in model.json")
    ap.add_argument("--frames", type=int, default=30, help="timed frames per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()

    manifest = json.loads((args.model / "model.json").read_text())
    image_path = ROOT / "assets/street8-clip/images/seq/frame_000000.jpg"
    image = np.asarray(Image.open(image_path).convert("RGB"))
    threads = sorted({int(t) for t in args.threads.split(",")})
    rows = []
    for variant in args.variants.split(","):
        v = None if variant == "fp32" else variant
        for n in threads:
            seg = OnnxSegmenter.load(args.model, v, threads=n)
            g_rounds, o_rounds = [], []
            for _ in range(args.rounds):
                g_rounds.append(gss_round(args.binary, args.model, v, n, args.frames, image_path))
                o_rounds.append(ort_round(seg, manifest, image, args.frames))
            row = {"variant": variant, "threads": n}
            for stage in ("prior", "decoder", "frame"):
                g = statistics.median(r[stage] for r in g_rounds)
                o = statistics.median(r[stage] for r in o_rounds)
                row |= {f"gss_{stage}_ms": g, f"ort_{stage}_ms": o, f"{stage}_ratio": g / o}
            row["gss_peak_rss_mb"] = statistics.median(r["rss_mb"] for r in g_rounds)
            row["gss_cold_start_ms"] = statistics.median(r["cold_ms"] for r in g_rounds)
            rows.append(row)

    print(f"{manifest['name']} on {cpu_name()}, {os.cpu_count()} cores; median of {args.rounds} alternating "
          f"rounds of {args.frames} frames; ratio = gss (tract) / onnxruntime time, lower is better")
    print("| variant | threads | prior gss / ort ms | ratio | decoder gss / ort ms | ratio | frame gss / ort ms | ratio | gss fps | gss peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['variant']} | {r['threads']} | {r['gss_prior_ms']:.1f} / {r['ort_prior_ms']:.1f} | {r['prior_ratio']:.2f}x "
              f"| {r['gss_decoder_ms']:.1f} / {r['ort_decoder_ms']:.1f} | {r['decoder_ratio']:.2f}x "
              f"| {r['gss_frame_ms']:.1f} / {r['ort_frame_ms']:.1f} | {r['frame_ratio']:.2f}x "
              f"| {1e3 / r['gss_frame_ms']:.1f} | {r['gss_peak_rss_mb']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_name(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
