"""`gss stream --rerun FILE.rrd` read back with the Rerun SDK of the version the runtime links
(rerun 0.36): entity paths, one class map per frame at the frame's size, and the manifest's
classes in the annotation context.

Needs a `gss` binary built with the `rerun` feature: `GSS_BIN` (scripts/test.sh sets it after
`cargo test --all-features` built one); without it the test looks in target/debug and skips
when it finds no binary there or one built without the feature.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FRAMES = 4


def _gss_binary() -> Path:
    explicit = os.environ.get("GSS_BIN")
    if explicit:
        return Path(explicit)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    binary = target / "debug" / "gss"
    if not binary.is_file():
        pytest.skip(
            f"no gss binary at {binary}; build it with `cargo build --features rerun` or set GSS_BIN"
        )
    return binary


def _record(tmp_path: Path) -> tuple[Path, dict]:
    binary = _gss_binary()
    frames = tmp_path / "frames"
    frames.mkdir()
    clip = sorted((REPO / "assets/street8-clip/images/seq").glob("*.jpg"))[:FRAMES]
    assert len(clip) == FRAMES
    for f in clip:
        shutil.copy(f, frames / f.name)
    rrd = tmp_path / "stream.rrd"
    cmd = [
        str(binary),
        "--model",
        str(REPO / "tests/fixtures/gss-tiny"),
        "--threads",
        "1",
        "stream",
        "--dir",
        str(frames),
        "--fps",
        "0",
        "--lossless",
        "--save",
        "none",
        "--json",
        "--rerun",
        str(rrd),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 and "--features rerun" in done.stderr and not os.environ.get("GSS_BIN"):
        pytest.skip(f"{binary} was built without the rerun feature")
    assert done.returncode == 0, done.stderr
    return rrd, json.loads(done.stdout)


def test_stream_recording_reads_back_with_the_rerun_sdk(tmp_path):
    rr = pytest.importorskip("rerun")
    assert rr.__version__.startswith("0.36."), rr.__version__
    from rerun.experimental import RrdReader

    rrd, summary = _record(tmp_path)
    # The real-time logger's queue holds 8 frames, more than the stream has: none can be lost.
    assert summary["rerun"]["logged"] == FRAMES, summary["rerun"]

    rows: dict[str, int] = {}
    static: dict[str, list] = {}
    class_maps = []
    for chunk in RrdReader(rrd).stream().to_chunks():
        batch = chunk.to_record_batch()
        if chunk.is_static:
            static[chunk.entity_path] = batch
            continue
        assert "frame" in chunk.timeline_names and "capture_time" in chunk.timeline_names, (
            chunk.timeline_names
        )
        rows[chunk.entity_path] = rows.get(chunk.entity_path, 0) + chunk.num_rows
        if chunk.entity_path == "/camera/classes":
            formats = batch.column("SegmentationImage:format").to_pylist()
            buffers = batch.column("SegmentationImage:buffer").to_pylist()
            class_maps += [(f[0], len(b[0])) for f, b in zip(formats, buffers)]

    stages = ["preprocess", "prior", "decoder", "inverse", "resize", "latency"]
    expected = ["/camera/image", "/camera/classes"] + [f"/timings/{s}" for s in stages]
    assert {p: rows.get(p) for p in expected} == {p: FRAMES for p in expected}, rows

    # The fixture model's output size, one u8 class id per pixel.
    assert len(class_maps) == FRAMES
    for fmt, size in class_maps:
        assert (fmt["width"], fmt["height"]) == (512, 256), fmt
        assert size == 512 * 256

    manifest = json.loads((REPO / "tests/fixtures/gss-tiny/model.json").read_text())
    context = static["/camera"].column("AnnotationContext:context").to_pylist()[0][0]
    labels = {entry["class_id"]: entry["class_description"]["info"]["label"] for entry in context}
    colors = {entry["class_id"]: entry["class_description"]["info"]["color"] for entry in context}
    for c in manifest["classes"]:
        assert labels[c["id"]] == c["name"]
        r, g, b = c["color"]
        assert colors[c["id"]] == (r << 24) | (g << 16) | (b << 8) | 0xFF
    assert labels[255] == "unseen"
