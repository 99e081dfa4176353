"""examples/python/: every example imports without its camera library (OpenCV, picamera2),
and segment_folder.py runs end to end."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import gss
import numpy as np
import pytest
from conftest import ROOT, load_rgb

EXAMPLES = ROOT / "examples" / "python"


@pytest.mark.parametrize("name", ["opencv_video", "picamera2_live", "segment_folder"])
def test_examples_import_without_their_camera_libraries(name: str) -> None:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(module.main)


def test_segment_folder_writes_what_the_segmenter_gives(
    segmenter: gss.Segmenter, clip_frames: list, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for path in clip_frames:
        shutil.copy(path, folder / path.name)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "segment_folder.py"), str(folder), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert f"segmented {len(clip_frames)} images" in done.stdout
    for path in clip_frames:
        frame = load_rgb(path)
        classes = np.asarray(load_rgb(out / f"{path.stem}.png"))[..., 0]
        assert np.array_equal(classes, segmenter.segment(frame).classes), path.name
        assert (out / f"{path.stem}.overlay.png").is_file()


def test_the_readme_example_runs(tmp_path: Path, clip_frames: list) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Python\n", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    code = code.replace('"photo.jpg"', repr(str(clip_frames[0])))
    code = code.replace('"assets/', f'"{ROOT / "assets"}/')
    script = tmp_path / "readme_example.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "overlay.png").is_file()
    assert done.stdout.count("seq/frame_") >= 100, "the stream printed every clip frame"
