"""The installed package: where it comes from, the bundled model, the API's surface."""

from __future__ import annotations

import json
from pathlib import Path

import gss
from conftest import MODEL


def test_the_tests_run_against_the_installed_package() -> None:
    installed = Path(gss.__file__).resolve()
    assert "site-packages" in installed.parts, installed


def test_the_bundled_model_is_inside_the_wheel(segmenter: gss.Segmenter) -> None:
    package_dir = Path(gss.__file__).resolve().parent
    assert Path(segmenter.model).resolve().is_relative_to(package_dir), segmenter.model
    for name in json.loads((MODEL / "model.json").read_text())["files"]:
        assert (Path(segmenter.model) / name).is_file(), name


def test_classes_come_from_the_manifest(segmenter: gss.Segmenter) -> None:
    manifest = json.loads((MODEL / "model.json").read_text())
    want = [(c["id"], c["name"], tuple(c["color"])) for c in manifest["classes"]]
    assert [(c.id, c.name, c.color) for c in segmenter.classes] == want
    assert [(c.id, c.name, c.color) for c in gss.classes()] == want
    assert segmenter.colors == [w[2] for w in want]
    assert segmenter.grid == tuple(manifest["prior"]["grid"])
    assert segmenter.input_size == (manifest["input"]["width"], manifest["input"]["height"])
    assert segmenter.backend.startswith("cpu"), segmenter.backend
