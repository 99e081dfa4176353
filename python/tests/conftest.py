"""Fixtures for the tests of the installed ``gss`` package (scripts/test.sh builds the wheel,
installs it into a fresh virtual environment and runs these tests from the repository root,
so ``import gss`` is the installed package, never python/gss/)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import gss
import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "assets" / "street8-clip" / "images" / "seq"
MODEL = ROOT / "models" / "gss-edge-street8"
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session")
def gss_bin() -> Path:
    """The ``gss`` binary of the same checkout (GSS_BIN, else target/debug/gss)."""
    path = Path(os.environ.get("GSS_BIN", ROOT / "target" / "debug" / "gss"))
    if not path.is_file():
        pytest.fail(f"{path}: no gss binary; build it (cargo build) or set GSS_BIN")
    return path


@pytest.fixture(scope="session")
def segmenter() -> gss.Segmenter:
    """The bundled model, as a user gets it with no arguments."""
    return gss.Segmenter()


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="session")
def clip_frames(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three frames of the sample clip as PNGs: JPEG decoders differ in the last bit (PIL's
    libjpeg against the image crate's), PNG is exact, so both sides see the same pixels."""
    frames = sorted(CLIP.glob("*.jpg"))
    assert len(frames) >= 6, f"{CLIP}: the sample clip is missing"
    out = tmp_path_factory.mktemp("clip")
    pngs = []
    for path in frames[:: max(1, len(frames) // 3)][:3]:
        pngs.append(out / f"{path.stem}.png")
        with Image.open(path) as image:
            image.convert("RGB").save(pngs[-1])
    return pngs


@pytest.fixture(scope="session")
def frame_640(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 640×480 frame (another shape than the model's 512×256), as a lossless PNG."""
    path = tmp_path_factory.mktemp("frames") / "wide_640x480.png"
    with Image.open(sorted(CLIP.glob("*.jpg"))[7]) as image:
        image.convert("RGB").resize((640, 480), Image.BILINEAR).save(path)
    return path


def run_gss(gss_bin: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([str(gss_bin), *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"gss {' '.join(args)} failed:\n{done.stderr}"
    return done


def copy_package(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=False)
    return dst
