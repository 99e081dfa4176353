"""Stream mode: files and folders through the pipeline as an iterator."""

from __future__ import annotations

import shutil
from pathlib import Path

import gss
import numpy as np
import pytest
from conftest import load_rgb


@pytest.fixture(scope="module")
def folder(clip_frames: list, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("folder")
    for path in clip_frames:
        shutil.copy(path, out / path.name)
    (out / "broken.png").write_bytes(b"\x89PNG not a png")
    return out


def test_a_folder_streams_every_frame_in_order(segmenter: gss.Segmenter, folder: Path) -> None:
    files = sorted(folder.glob("*.png"))
    readable = [p for p in files if p.name != "broken.png"]
    results = list(gss.stream(str(folder / "*.png"), threads=1, frames=True))
    assert [Path(r.path).name for r in results] == [p.name for p in readable]
    assert [r.index for r in results] == [files.index(p) for p in readable]
    for result, path in zip(results, readable):
        frame = load_rgb(path)
        assert np.array_equal(result.frame, frame)
        assert np.array_equal(result.classes, segmenter.segment(frame).classes), path.name
        assert result.confidence is not None and result.timestamp_ns is None


def test_stream_counts_and_closes(folder: Path) -> None:
    with gss.stream(str(folder), threads=1) as stream:
        first = next(stream)
        assert first.path is not None and first.frame is None
    assert stream.stats["captured"] >= 1
    assert list(stream) == [], "a closed stream yields nothing more"
    done = gss.stream(str(folder), threads=1)
    assert len(list(done)) == 3
    assert done.stats["published"] == 3 and done.stats["corrupt"] == 1


def test_a_missing_folder_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no-frames"):
        gss.stream(str(tmp_path / "no-frames"))
    with pytest.raises(FileNotFoundError, match="matches nothing"):
        gss.stream(str(tmp_path / "*.jpg"))
