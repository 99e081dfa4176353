"""scripts/screenshot-serve.sh: the live view (gss stream --serve) shot in headless Chromium is not
blank. Runs only where Chromium and a gss built with the `serve` feature are there (CI's test
command installs neither Chromium nor needs this picture)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _chromium() -> str | None:
    return next(
        (c for c in ("chromium", "chromium-browser", "google-chrome") if shutil.which(c)), None
    )


def _gss_binary() -> Path | None:
    env = os.environ.get("GSS_BIN")
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    candidates = [Path(env)] if env else []
    candidates += [target / "debug" / "gss", target / "release" / "gss"]
    return next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


def test_the_live_view_screenshot_shows_the_overlay(tmp_path):
    if _chromium() is None:
        pytest.skip(
            "no Chromium (Debian package chromium; scripts/screenshot-serve.sh installs it)"
        )
    gss = _gss_binary()
    if gss is None:
        pytest.skip(
            "no gss binary (GSS_BIN, target/debug/gss or target/release/gss); cargo build --features serve"
        )
    frame = REPO / "assets" / "street8-clip" / "images" / "seq" / "frame_000000.jpg"
    probe = subprocess.run(
        [
            str(gss),
            "--model",
            str(REPO / "tests" / "fixtures" / "gss-tiny"),
            "stream",
            "--serve",
            "127.0.0.1:0",
            "--fps",
            "0",
            "--save",
            "none",
            "--dir",
            str(frame),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if "--features serve" in probe.stderr:
        pytest.skip(f"{gss} was built without the serve feature")
    out = tmp_path / "serve.png"
    env = dict(os.environ, GSS_BIN=str(gss), PYTHON=sys.executable)
    run = subprocess.run(
        ["bash", str(REPO / "scripts" / "screenshot-serve.sh"), str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    from PIL import Image

    shot = Image.open(out)
    assert shot.size[0] > 300 and shot.size[1] > 200
