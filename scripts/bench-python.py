"""What the Python call adds to gss's frame time: `gss bench` and `gss.Segmenter.segment` on the
same package, image and thread counts, in one run, alternating rounds so that noise from a shared
machine lands on both sides.

For each thread count and round: one `gss bench` process timing `--frames` frames (its "frame"
p50: preprocess + prior + decoder + X⁻¹ + resize), then the same number of `segment(frame)`
calls from Python, timed around the call (array checks, GIL release, the class map handed back
as a numpy array included), and the library's own stage times of those calls. The table reports
medians over rounds and the overhead both ways: Python call / `gss bench`, and call − stages
(what the binding itself adds, measured in the same process). A second row per thread count
asks for the confidence grid, which costs a softmax over the token logits.

Run through scripts/bench-python.sh (it builds the release wheel and binary first); its output is
Markdown (docs/python-bench.md is one run of it).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import time
from pathlib import Path

import gss
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def cpu_name() -> str:
    """The CPU's model name and widest SIMD level, as /proc/cpuinfo reports them."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE"
    return f"{name} ({isa})"


def bench_round(gss_bin: Path, model: Path, image: Path, threads: int, frames: int) -> float:
    """`gss bench`'s frame p50 in ms, from one process."""
    done = subprocess.run(
        [str(gss_bin), "--model", str(model), "--threads", str(threads), "bench",
         "--frames", str(frames), "--image", str(image), "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)["stages"]["frame"]["p50_ms"]


def python_round(segmenter: gss.Segmenter, frame: np.ndarray, frames: int) -> tuple[float, float]:
    """p50 of the Python call and of the library's stage times, in ms."""
    calls, stages = [], []
    for _ in range(frames):
        start = time.perf_counter()
        result = segmenter.segment(frame)
        calls.append((time.perf_counter() - start) * 1e3)
        stages.append(result.timings.total_ms)
    return statistics.median(calls), statistics.median(stages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gss", type=Path, default=ROOT / "target" / "release" / "gss")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "gss-edge-street8")
    parser.add_argument(
        "--image",
        type=Path,
        default=ROOT / "assets" / "street8-clip" / "images" / "seq" / "frame_000000.jpg",
    )
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--frames", type=int, default=50, help="timed frames per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()

    gss.configure()  # what the gss command applies first thing, so both sides run alike
    with Image.open(args.image) as opened:
        frame = np.asarray(opened.convert("RGB"))
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        plain = gss.Segmenter(str(args.model), threads=threads, confidence=False)
        graded = gss.Segmenter(str(args.model), threads=threads, confidence=True)
        for segmenter in (plain, graded):
            python_round(segmenter, frame, args.warmup)
        bench, call, stage, call_conf, stage_conf = [], [], [], [], []
        for _ in range(args.rounds):
            bench.append(bench_round(args.gss, args.model, args.image, threads, args.frames))
            c, s = python_round(plain, frame, args.frames)
            call.append(c)
            stage.append(s)
            c, s = python_round(graded, frame, args.frames)
            call_conf.append(c)
            stage_conf.append(s)
        med = statistics.median
        b = med(bench)
        for label, c, s in [
            ("confidence off", call, stage),
            ("confidence on", call_conf, stage_conf),
        ]:
            rows.append((threads, label, b, med(c), med(s), med(c) / b, med(x - y for x, y in zip(c, s))))  # fmt: skip

    height, width = frame.shape[:2]
    print("# The Python call against `gss bench` (`scripts/bench-python.sh`)\n")
    print(
        f"Generated on {time.strftime('%Y-%m-%d')} with `scripts/bench-python.sh "
        f"--threads {args.threads} --rounds {args.rounds} --frames {args.frames}`, "
        f"Python {platform.python_version()}, the gss package's release wheel."
    )
    print(
        f"\nCPU: {cpu_name()}; model {args.model.name}; a {width}×{height} frame "
        f"({args.image.name}); median of {args.rounds} alternating rounds of {args.frames} frames "
        "(each side's p50 per round).\n"
    )
    print(
        "| threads | Python segmenter | `gss bench` frame ms | Python call ms | its stages ms "
        "| call / `gss bench` | call − stages ms |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|")
    for threads, label, b, c, s, ratio, gap in rows:
        print(f"| {threads} | {label} | {b:.2f} | {c:.2f} | {s:.2f} | {ratio:.3f}x | {gap:.3f} |")
    print(
        '\n`gss bench` never asks for the confidence grid, so the "confidence off" rows are the '
        'like-for-like comparison; "confidence on" (the default for a package whose prior gives '
        "token logits) adds the softmax over the logits."
    )


if __name__ == "__main__":
    main()
