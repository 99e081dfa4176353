"""gss (tract) against onnxruntime, on a new package and on the reference (bundled) package.

One run, alternating rounds so that noise from a shared machine lands on every side: gss on the
new package, onnxruntime on the new package, onnxruntime on the reference package (and gss on the
reference, the "before"). Each round is one process (gss) or one session (onnxruntime) timing
`--frames` frames; the tables report medians over rounds of each side's per-stage p50.

- target: gss(new) / onnxruntime(reference), the issue-10 goal (<= 1.0, aim <= 0.67);
- same model: gss / onnxruntime on each package;
- share of peak: the package's MACs per frame (model.json `cost`) / model time / the CPU's peak
  fp32 FMA rate (cores x FMA units x SIMD lanes x clock, printed with its inputs).

"frame" is decoded RGB in → class map out: gss's own preprocess, prior, argmax, decoder and X⁻¹;
onnxruntime's is the Python reference pipeline (numpy pre/post-processing around the sessions),
so "model" (prior + decoder, no pre/post on either side) is reported beside it.
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


def cpu_info() -> dict:
    """Model name, clock and SIMD width as /proc/cpuinfo reports them (first core)."""
    info = {"name": platform.processor() or platform.machine(), "mhz": None, "lanes": 4, "isa": "sse"}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name" and info["name"] == (platform.processor() or platform.machine()):
            info["name"] = value
        elif key == "cpu MHz" and info["mhz"] is None:
            info["mhz"] = float(value)
        elif key == "flags":
            flags = set(value.split())
            if "avx512f" in flags:
                info["lanes"], info["isa"] = 16, "AVX-512"
            elif "avx2" in flags and "fma" in flags:
                info["lanes"], info["isa"] = 8, "AVX2+FMA"
            break
    return info


def gss_round(binary: Path, model: Path, threads: int, frames: int, image: Path) -> dict:
    cmd = [str(binary), "--model", str(model), "--threads", str(threads), "--backend", "cpu", "bench", "--json",
           "--frames", str(frames), "--warmup", "3", "--image", str(image)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "RUST_LOG": "warn"})
    report = json.loads(out.stdout)
    r = {stage: report["stages"][stage]["p50_ms"] for stage in ("prior", "decoder", "frame")}
    return r | {"model": r["prior"] + r["decoder"], "rss_mb": report["peak_rss_mb"], "cold_ms": report["cold_start_ms"]}


def ort_round(seg: OnnxSegmenter, image: np.ndarray, frames: int) -> dict:
    prior_in, dec_in = seg.manifest["prior"]["input"], seg.manifest["decoder"]["input"]
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
    r = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
    return r | {"model": r["prior"] + r["decoder"]}


def median_rounds(rounds: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}


def metrics_of(manifest: dict) -> str:
    m = manifest.get("metrics", {})
    parts = [f"{label} {m[key]:.2f}" for key, label in
             (("mIoU", "street8 test"), ("clip_mIoU", "clip"), ("shift_mIoU", "street8-shift")) if key in m]
    return ", ".join(parts) or "not recorded"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "models/gss-edge-street8-dense",
                    help="the new package (default: the dense, tract-shaped one)")
    ap.add_argument("--reference", type=Path, default=ROOT / "models/gss-edge-street8",
                    help="the package to beat (default: the bundled MobileNetV2 model)")
    ap.add_argument("--binary", type=Path, default=ROOT / "target/release/gss")
    ap.add_argument("--threads", default=f"1,{os.cpu_count() or 1}", help="comma-separated thread counts")
    ap.add_argument("--frames", type=int, default=30, help="timed frames per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-gss-reference", action="store_true", help="skip gss on the reference package")
    ap.add_argument("--fma-units", type=int, default=2, help="FMA pipes per core, for the peak (2 on Zen 4/5 and Ice Lake server)")
    ap.add_argument("--ghz", type=float, default=None, help="clock for the peak (default: /proc/cpuinfo's cpu MHz)")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()

    packages = {"new": args.model, "reference": args.reference}
    manifests = {k: json.loads((p / "model.json").read_text()) for k, p in packages.items()}
    image_path = ROOT / "assets/street8-clip/images/seq/frame_000000.jpg"
    image = np.asarray(Image.open(image_path).convert("RGB"))
    threads = sorted({int(t) for t in args.threads.split(",")})
    sides = [("gss", "new"), ("ort", "new"), ("ort", "reference")] + ([] if args.no_gss_reference else [("gss", "reference")])
    results: dict[tuple[str, str, int], dict] = {}
    for n in threads:
        sessions = {k: OnnxSegmenter.load(p, None, threads=n) for k, p in packages.items()}
        rounds: dict[tuple[str, str], list[dict]] = {s: [] for s in sides}
        for _ in range(args.rounds):
            for runtime, pkg in sides:
                if runtime == "gss":
                    rounds[(runtime, pkg)].append(gss_round(args.binary, packages[pkg], n, args.frames, image_path))
                else:
                    rounds[(runtime, pkg)].append(ort_round(sessions[pkg], image, args.frames))
        for (runtime, pkg), rs in rounds.items():
            results[(runtime, pkg, n)] = median_rounds(rs)

    cpu = cpu_info()
    ghz = args.ghz or (cpu["mhz"] or 0) / 1000
    peak_core = args.fma_units * cpu["lanes"] * ghz  # GMAC/s of one core
    print(f"CPU: {cpu['name']} ({cpu['isa']}), {os.cpu_count()} cores visible; median of {args.rounds} alternating "
          f"rounds of {args.frames} frames; ratio = time / time, lower is better")
    print(f"new: {manifests['new']['name']} ({packages['new']}), reference: {manifests['reference']['name']} "
          f"({packages['reference']})\n")

    print("Target: gss on the new package against onnxruntime on the reference package")
    print("| threads | gss new frame ms | ort reference frame ms | **frame ratio** | gss new model ms | ort reference model ms | model ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for n in threads:
        g, o = results[("gss", "new", n)], results[("ort", "reference", n)]
        print(f"| {n} | {g['frame']:.1f} | {o['frame']:.1f} | **{g['frame'] / o['frame']:.2f}x** | {g['model']:.1f} | "
              f"{o['model']:.1f} | {g['model'] / o['model']:.2f}x |")
        rows.append({"threads": n, "target_frame_ratio": g["frame"] / o["frame"], "target_model_ratio": g["model"] / o["model"]})

    print("\nSame model: gss / onnxruntime on each package (prior, decoder, frame)")
    print("| package | threads | prior gss / ort ms | ratio | decoder gss / ort ms | ratio | frame gss / ort ms | ratio | gss fps | gss peak RSS MB | mIoU (model.json) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for pkg in ("new", "reference"):
        for n in threads:
            if ("gss", pkg, n) not in results:
                continue
            g, o = results[("gss", pkg, n)], results[("ort", pkg, n)]
            cells = " | ".join(f"{g[s]:.1f} / {o[s]:.1f} | {g[s] / o[s]:.2f}x" for s in ("prior", "decoder", "frame"))
            print(f"| {manifests[pkg]['name']} | {n} | {cells} | {1e3 / g['frame']:.1f} | {g['rss_mb']:.0f} | "
                  f"{metrics_of(manifests[pkg])} |")

    print(f"\nShare of peak fp32 FMA throughput: peak per core = {args.fma_units} FMA units x {cpu['lanes']} lanes "
          f"({cpu['isa']}) x {ghz:.2f} GHz = {peak_core:.1f} GMAC/s (the clock is /proc/cpuinfo's, not the boost "
          "clock, so shares may read high)")
    print("| package | runtime | threads | GMAC per frame | model ms | GMAC/s | share of peak (threads x per-core peak) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for (runtime, pkg, n), r in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
        cost = manifests[pkg].get("cost")
        if not cost:
            continue
        gmac = cost["prior_gmac"] + cost["decoder_gmac"]
        rate = gmac / (r["model"] / 1e3)
        share = f"{100 * rate / (peak_core * n):.0f} %" if peak_core else "n/a"
        print(f"| {manifests[pkg]['name']} | {'gss (tract)' if runtime == 'gss' else 'onnxruntime'} | {n} | {gmac:.3f} | "
              f"{r['model']:.1f} | {rate:.1f} | {share} |")
    if args.json:
        out = {"cpu": cpu, "peak_gmacs_per_core": peak_core, "rows": rows,
               "results": [{"runtime": k[0], "package": k[1], "threads": k[2], **v} for k, v in results.items()]}
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
