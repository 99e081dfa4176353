"""`gss-convert reference`: per fit policy, the onnxruntime outputs for a frame of another size, and
the committed 640×480 fixture the Rust tests read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gss_convert.cli import main
from gss_convert.data.synth import render_scene
from gss_convert.resize import UNKNOWN_CLASS
from gss_convert.runtime import OnnxSegmenter

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"
PACKAGE = FIXTURES / "gss-tiny"  # model input 64×128 (h×w), ArgMax in the graph
LOGITS_PACKAGE = FIXTURES / "gss-tiny-logits"  # the same weights, argmax left to the runtime

pytestmark = pytest.mark.skipif(
    not PACKAGE.is_dir(), reason="tests/fixtures/gss-tiny missing (make-fixtures.sh)"
)


def _read(out: Path, case: dict, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    with Image.open(out / case["classes"]) as im:
        assert im.mode == "L" and im.size == size
        classes = np.asarray(im)
    tokens = np.fromfile(out / case["tokens"], "<u2")
    assert tokens.size == case["grid"][0] * case["grid"][1]
    return classes, tokens.reshape(case["grid"])


@pytest.mark.parametrize("package", [PACKAGE, LOGITS_PACKAGE], ids=["argmax-graph", "logits"])
def test_reference_command_on_a_small_frame(tmp_path, package):
    image, _ = render_scene(4, (60, 80))  # 4:3 against the model's 1:2
    frame = tmp_path / "small.png"
    Image.fromarray(image).save(frame)
    out = tmp_path / "ref"
    assert (
        main(
            [
                "reference",
                str(package),
                "--image",
                str(frame),
                "--out",
                str(out),
                "--fit",
                "stretch,crop,letterbox",
            ]
        )
        == 0
    )
    reference = json.loads((out / "reference.json").read_text())
    assert reference["package"] == str(package) and reference["image"] == "frame.png"
    assert reference["size"] == [80, 60]
    assert [c["fit"] for c in reference["cases"]] == ["stretch", "crop", "letterbox"]
    assert (out / "frame.png").read_bytes() == frame.read_bytes()
    seg = OnnxSegmenter.load(PACKAGE)
    for case in reference["cases"]:
        assert case["grid"] == [8, 16]
        classes, tokens = _read(out, case, (80, 60))
        assert set(np.unique(classes).tolist()) <= set(range(8)) | {UNKNOWN_CLASS}
        # crop: s = max(128/80, 64/60) = 1.6, the 60 rows fill 96 model rows of which 64 are kept, so
        # 10 frame rows at the top and 10 at the bottom are never seen
        unknown_rows = (classes == UNKNOWN_CLASS).all(1)
        if case["fit"] == "crop":
            assert unknown_rows.sum() == 20 and unknown_rows[:10].all() and unknown_rows[-10:].all()
            assert (classes[10:50] != UNKNOWN_CLASS).all()
        else:
            assert not (classes == UNKNOWN_CLASS).any()
        # the same as running the pipeline directly (and the same for logits packages: argmax appended)
        want_tokens, want_classes = seg.segment(image, case["fit"])
        assert np.array_equal(tokens, want_tokens) and np.array_equal(classes, want_classes)
    stretch, crop, letterbox = (_read(out, c, (80, 60))[1] for c in reference["cases"])
    assert (
        len({stretch.tobytes(), crop.tobytes(), letterbox.tobytes()}) > 1
    )  # the fits see different inputs


def test_reference_command_refuses_unknown_fits(tmp_path, capsys):
    frame = tmp_path / "f.png"
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(frame)
    assert (
        main(
            [
                "reference",
                str(PACKAGE),
                "--image",
                str(frame),
                "--out",
                str(tmp_path / "o"),
                "--fit",
                "stretch,zoom",
            ]
        )
        == 2
    )
    assert "zoom" in capsys.readouterr().err


def test_committed_640x480_fixture_is_reproduced(tmp_path):
    """tests/fixtures/frame-640x480 is what the command writes today; a change to resize.py or the
    pipeline that moves these outputs has to regenerate it (scripts/make-fixtures.sh)."""
    committed = FIXTURES / "frame-640x480"
    reference = json.loads((committed / "reference.json").read_text())
    assert reference["size"] == [640, 480] and {c["fit"] for c in reference["cases"]} == {
        "stretch",
        "crop",
        "letterbox",
    }
    out = tmp_path / "again"
    assert (
        main(
            ["reference", str(PACKAGE), "--image", str(committed / "frame.png"), "--out", str(out)]
        )
        == 0
    )
    for case in reference["cases"]:
        classes, tokens = _read(out, case, (640, 480))
        want_classes, want_tokens = _read(committed, case, (640, 480))
        # onnxruntime on another CPU may round a near-tie differently; anything more is a real change
        assert (tokens == want_tokens).mean() >= 0.98, case["fit"]
        assert (classes == want_classes).mean() >= 0.98, case["fit"]
