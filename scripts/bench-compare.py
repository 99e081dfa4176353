"""gss against onnxruntime on the same ONNX files, frames and thread counts: the bundled package
first, then the dense one.

One run, alternating rounds so that noise from a shared machine lands on every side: for each
package, gss with its own kernels, gss with tract's (`--kernels tract`, the engine gss had before
its kernels), and onnxruntime. Each gss round is one process timing `--frames` frames; each
onnxruntime round one session; the tables report medians over rounds of each side's per-stage
p50, and ratios (time / time, lower is better).

- same model: gss / onnxruntime per stage (prior, decoder, model = prior + decoder, frame);
- share of peak: the package's MACs per frame (model.json `cost`) / model time / the CPU's peak
  fp32 FMA rate, which counts what the cores execute per cycle, not the register width: Zen 4
  runs AVX-512 on 256-bit units (16 fp32 FMA per cycle per core), Zen 5 and Intel's AVX-512
  server cores on two 512-bit units (32), AVX2 cores on two 256-bit units (16).

"frame" is decoded RGB in → class map out: gss's own preprocess, prior, argmax, decoder and X⁻¹;
onnxruntime's is the Python reference pipeline (numpy pre/post-processing around the sessions),
so "model" (prior + decoder, no pre/post on either side) is the fair comparison.
Run through scripts/bench-compare.sh (it builds the release binary and the Python venv first);
its output is Markdown (docs/bench-compare.md is one run of it).
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
from gss_convert.runtime import OnnxSegmenter
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def cpu_info() -> dict:
    """Model name, clock, vendor, family and SIMD level as /proc/cpuinfo reports them (first core),
    and the fp32 FMA lanes one core completes per cycle."""
    info = {
        "name": platform.processor() or platform.machine(),
        "mhz": None,
        "isa": "sse",
        "vendor": "",
        "family": 0,
        "fma_per_cycle": 8,
        "why": "SSE: no FMA, 4-lane multiply and add on two pipes",
    }
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name" and info["name"] == (platform.processor() or platform.machine()):
            info["name"] = value
        elif key == "cpu MHz" and info["mhz"] is None:
            info["mhz"] = float(value)
        elif key == "vendor_id" and not info["vendor"]:
            info["vendor"] = value
        elif key == "cpu family" and not info["family"]:
            info["family"] = int(value)
        elif key == "flags":
            flags = set(value.split())
            break
    if "avx512f" in flags:
        info["isa"] = "AVX-512"
        if info["vendor"] == "AuthenticAMD" and info["family"] == 25:
            info["fma_per_cycle"], info["why"] = 16, "Zen 4: AVX-512 on two 256-bit FMA units"
        else:
            info["fma_per_cycle"], info["why"] = (
                32,
                "two 512-bit FMA units (Zen 5, Intel AVX-512 server cores)",
            )
    elif "avx2" in flags and "fma" in flags:
        info["isa"], info["fma_per_cycle"], info["why"] = "AVX2+FMA", 16, "two 256-bit FMA units"
    return info


def gss_round(
    binary: Path, model: Path, threads: int, frames: int, image: Path, kernels: str
) -> dict:
    cmd = [
        str(binary),
        "--model",
        str(model),
        "--threads",
        str(threads),
        "--backend",
        "cpu",
        "--kernels",
        kernels,
        "bench",
        "--json",
        "--frames",
        str(frames),
        "--warmup",
        "3",
        "--image",
        str(image),
    ]
    env = {k: v for k, v in os.environ.items() if k != "GSS_KERNELS"} | {"RUST_LOG": "warn"}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    report = json.loads(out.stdout)
    r = {stage: report["stages"][stage]["p50_ms"] for stage in ("prior", "decoder", "frame")}
    return r | {
        "model": r["prior"] + r["decoder"],
        "rss_mb": report["peak_rss_mb"],
        "cold_ms": report["cold_start_ms"],
    }


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


def ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def median_rounds(rounds: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}


def metrics_of(manifest: dict) -> str:
    m = manifest.get("metrics", {})
    parts = [
        f"{label} {m[key]:.2f}"
        for key, label in (
            ("mIoU", "street8 test"),
            ("clip_mIoU", "clip"),
            ("shift_mIoU", "street8-shift"),
        )
        if key in m
    ]
    return ", ".join(parts) or "not recorded"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--packages",
        type=Path,
        nargs="+",
        default=[ROOT / "models/gss-edge-street8", ROOT / "models/gss-edge-street8-dense"],
        help="packages to compare, the first one first (default: the bundled, then the dense one)",
    )
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    ap.add_argument("--binary", type=Path, default=target / "release/gss")
    ap.add_argument(
        "--threads", default=f"1,{os.cpu_count() or 1}", help="comma-separated thread counts"
    )
    ap.add_argument("--frames", type=int, default=30, help="timed frames per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-tract", action="store_true", help="skip gss with tract's kernels")
    ap.add_argument(
        "--fma-per-cycle",
        type=int,
        default=None,
        help="fp32 FMA lanes per cycle per core for the peak (default: from the CPU, see above)",
    )
    ap.add_argument(
        "--ghz",
        type=float,
        default=None,
        help="clock for the peak (default: /proc/cpuinfo's cpu MHz)",
    )
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    manifests = {p: json.loads((p / "model.json").read_text()) for p in args.packages}
    image_path = ROOT / "assets/street8-clip/images/seq/frame_000000.jpg"
    image = np.asarray(Image.open(image_path).convert("RGB"))
    threads = sorted({int(t) for t in args.threads.split(",")})
    engines = ["gss"] + ([] if args.no_tract else ["tract"])
    results: dict[tuple[str, Path, int], dict] = {}
    for n in threads:
        sessions = {p: OnnxSegmenter.load(p, None, threads=n) for p in args.packages}
        rounds: dict[tuple[str, Path], list[dict]] = {
            (e, p): [] for p in args.packages for e in engines + ["ort"]
        }
        for _ in range(args.rounds):
            for (engine, pkg), rs in rounds.items():
                if engine == "ort":
                    rs.append(ort_round(sessions[pkg], image, args.frames))
                else:
                    rs.append(gss_round(args.binary, pkg, n, args.frames, image_path, engine))
        for (engine, pkg), rs in rounds.items():
            results[(engine, pkg, n)] = median_rounds(rs)

    cpu = cpu_info()
    ghz = args.ghz or (cpu["mhz"] or 0) / 1000
    fma = args.fma_per_cycle or cpu["fma_per_cycle"]
    peak_core = fma * ghz  # GMAC/s of one core
    label = {"gss": "gss (its kernels)", "tract": "gss (tract's kernels)", "ort": "onnxruntime"}
    print("# gss against onnxruntime (`scripts/bench-compare.sh`)\n")
    print(
        f"Generated on {time.strftime('%Y-%m-%d', time.gmtime())} with `scripts/bench-compare.sh "
        f"--threads {args.threads} --rounds {args.rounds} --frames {args.frames}`, onnxruntime "
        f"{ort_version()}.\n"
    )
    print(
        f"CPU: {cpu['name']} ({cpu['isa']}), {os.cpu_count()} cores visible; median of {args.rounds} alternating "
        f"rounds of {args.frames} frames; ratio = time / time, lower is better\n"
    )
    for pkg in args.packages:
        m = manifests[pkg]
        print(
            f"## {m['name']} ({pkg.relative_to(ROOT) if pkg.is_relative_to(ROOT) else pkg}; {metrics_of(m)})\n"
        )
        print("Same ONNX files, same frames, same threads: gss / onnxruntime per stage")
        print(
            "| engine | threads | prior ms | ratio | decoder ms | ratio | **model** ms | **ratio** | frame ms | ratio | fps | peak RSS MB |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n in threads:
            o = results[("ort", pkg, n)]
            for engine in engines:
                g = results[(engine, pkg, n)]
                cells = " | ".join(f"{g[s]:.1f} | {g[s] / o[s]:.2f}x" for s in ("prior", "decoder"))
                print(
                    f"| {label[engine]} | {n} | {cells} | {g['model']:.1f} | **{g['model'] / o['model']:.2f}x** | "
                    f"{g['frame']:.1f} | {g['frame'] / o['frame']:.2f}x | {1e3 / g['frame']:.1f} | {g['rss_mb']:.0f} |"
                )
            print(
                f"| onnxruntime | {n} | {o['prior']:.1f} | | {o['decoder']:.1f} | | {o['model']:.1f} | | "
                f"{o['frame']:.1f} | | {1e3 / o['frame']:.1f} | |"
            )
        print()

    print(
        f"## Share of peak\n\nPeak fp32 FMA rate per core = {fma} lanes per cycle ({cpu['why']}"
        f"{', set by --fma-per-cycle' if args.fma_per_cycle else ''}) x {ghz:.2f} GHz = {peak_core:.1f} GMAC/s "
        "(the clock is /proc/cpuinfo's, not the boost clock, so shares may read high)\n"
    )
    print(
        "| package | engine | threads | GMAC per frame | model ms | GMAC/s | share of peak (threads x per-core peak) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for (engine, pkg, n), r in results.items():
        cost = manifests[pkg].get("cost")
        if not cost:
            continue
        gmac = cost["prior_gmac"] + cost["decoder_gmac"]
        rate = gmac / (r["model"] / 1e3)
        share = f"{100 * rate / (peak_core * n):.0f} %" if peak_core else "n/a"
        print(
            f"| {manifests[pkg]['name']} | {label[engine]} | {n} | {gmac:.3f} | {r['model']:.1f} | {rate:.1f} | {share} |"
        )
    if args.json:
        out = {
            "cpu": cpu,
            "peak_gmacs_per_core": peak_core,
            "results": [
                {"engine": k[0], "package": str(k[1]), "threads": k[2], **v}
                for k, v in results.items()
            ],
        }
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
