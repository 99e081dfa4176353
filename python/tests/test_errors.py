"""Bad input becomes a Python exception that says what was expected."""

from __future__ import annotations

from pathlib import Path

import gss
import numpy as np
import pytest
from conftest import FIXTURES, copy_package


@pytest.fixture(scope="module")
def tiny() -> gss.Segmenter:
    return gss.Segmenter(str(FIXTURES / "gss-tiny"))


FRAME = np.zeros((48, 64, 3), np.uint8)


@pytest.mark.parametrize(
    "frame, error, words",
    [
        (FRAME.astype(np.float32), TypeError, ["uint8", "float32"]),
        (FRAME.tolist(), TypeError, ["numpy.ndarray", "list"]),
        (np.zeros((48, 64, 4), np.uint8), ValueError, ["(H, W, 3)", "frame[..., :3]"]),
        (np.zeros((48, 64), np.uint8), ValueError, ["(H, W, 3)", "grey"]),
        (np.zeros((0, 64, 3), np.uint8), ValueError, ["no pixels"]),
        (np.zeros((48, 128, 3), np.uint8)[:, ::2], ValueError, ["ascontiguousarray"]),
        (np.asfortranarray(FRAME), ValueError, ["ascontiguousarray"]),
        (FRAME[..., ::-1], ValueError, ['channel_order="BGR"']),
        (FRAME[::-1], ValueError, ["ascontiguousarray"]),
    ],
)
def test_bad_frames_are_refused_with_what_was_expected(
    tiny: gss.Segmenter, frame: object, error: type, words: list
) -> None:
    with pytest.raises(error) as caught:
        tiny.segment(frame)
    message = str(caught.value)
    assert message.startswith("frame:"), message
    for word in words:
        assert word in message, message


def test_bad_options_are_refused(tiny: gss.Segmenter) -> None:
    with pytest.raises(ValueError, match="channel_order"):
        tiny.segment(FRAME, channel_order="RGBA")
    for kwargs, word in [
        ({"backend": "tpu"}, "backend"),
        ({"fit": "zoom"}, "fit"),
        ({"kernels": "fast"}, "kernels"),
        ({"threads": 0}, "threads"),
    ]:
        with pytest.raises(ValueError, match=word):
            gss.Segmenter(str(FIXTURES / "gss-tiny"), **kwargs)
    with pytest.raises(ValueError, match="token logits|logits"):
        gss.Segmenter(str(FIXTURES / "gss-tiny"), confidence=True)
    if not gss.WGPU:
        with pytest.raises(ValueError, match="--features wgpu"):
            gss.Segmenter(str(FIXTURES / "gss-tiny"), backend="wgpu")


def test_a_missing_package_is_file_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-package"
    with pytest.raises(FileNotFoundError, match="no-such-package"):
        gss.Segmenter(str(missing))


def test_a_package_with_a_bad_hash_is_a_model_error(tmp_path: Path) -> None:
    package = copy_package(FIXTURES / "gss-tiny", tmp_path / "tampered")
    graph = package / "decoder.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    with pytest.raises(gss.ModelError) as caught:
        gss.Segmenter(str(package))
    message = str(caught.value)
    assert "decoder.onnx" in message and "sha256" in message, message
    assert isinstance(caught.value, gss.GssError)


def test_an_unknown_variant_is_a_model_error() -> None:
    with pytest.raises(gss.ModelError, match="int3"):
        gss.Segmenter(variant="int3")


def test_a_missing_file_listed_in_the_manifest_is_file_not_found(tmp_path: Path) -> None:
    package = copy_package(FIXTURES / "gss-tiny", tmp_path / "incomplete")
    (package / "prior.onnx").unlink()
    with pytest.raises(FileNotFoundError, match="prior.onnx"):
        gss.Segmenter(str(package))


def test_overlay_refuses_a_class_map_of_another_size() -> None:
    with pytest.raises(ValueError, match="does not match"):
        gss.overlay(FRAME, np.zeros((10, 10), np.uint8))
    with pytest.raises(TypeError, match="classes"):
        gss.overlay(FRAME, np.zeros((48, 64), np.int64))
