"""Image mode against the ``gss`` binary: the same class maps, pixel for pixel."""

from __future__ import annotations

import json
from pathlib import Path

import gss
import numpy as np
import pytest
from conftest import FIXTURES, MODEL, load_rgb, run_gss


@pytest.fixture(scope="module")
def cli_outputs(gss_bin: Path, clip_frames: list, frame_640: Path, tmp_path_factory) -> Path:
    """``gss segment`` on the clip frames and the 640×480 frame: classes, overlays, confidence."""
    out = tmp_path_factory.mktemp("cli")  # the class PNGs keep the frames' names
    frames = [str(p) for p in [*clip_frames, frame_640]]
    run_gss(gss_bin, "--model", str(MODEL), "segment", "--out", str(out),
            "--overlay", "--confidence", *frames)  # fmt: skip
    return out


def frames_of(clip_frames: list, frame_640: Path) -> list:
    return [*clip_frames, frame_640]


def test_class_maps_equal_gss_segment(
    segmenter: gss.Segmenter, cli_outputs: Path, clip_frames: list, frame_640: Path
) -> None:
    for path in frames_of(clip_frames, frame_640):
        frame = load_rgb(path)
        result = segmenter.segment(frame)
        want = load_rgb(cli_outputs / f"{path.stem}.png")[..., 0]
        assert result.classes.dtype == np.uint8
        assert result.classes.shape == frame.shape[:2], path.name
        diff = np.count_nonzero(result.classes != want)
        assert diff == 0, f"{path.name}: {diff} pixels differ from gss segment"


def test_overlay_and_confidence_equal_gss_segment(
    segmenter: gss.Segmenter, cli_outputs: Path, clip_frames: list, frame_640: Path
) -> None:
    for path in frames_of(clip_frames, frame_640):
        frame = load_rgb(path)
        result = segmenter.segment(frame)
        picture = gss.overlay(frame, result.classes, segmenter.colors)
        assert np.array_equal(picture, load_rgb(cli_outputs / f"{path.stem}.overlay.png"))
        assert np.array_equal(gss.overlay(frame, result.classes), picture), "bundled colours"
        grey = np.round(np.clip(result.confidence, 0, 1) * 255).astype(np.uint8)
        want = load_rgb(cli_outputs / f"{path.stem}.confidence.png")[..., 0]
        assert np.array_equal(grey, want), path.name


def test_bgr_input_equals_rgb_input_reversed(
    segmenter: gss.Segmenter, clip_frames: list, frame_640: Path
) -> None:
    for path in [clip_frames[0], frame_640]:
        rgb = load_rgb(path)
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        want = segmenter.segment(rgb).classes
        got = segmenter.segment(bgr, channel_order="BGR").classes
        assert np.array_equal(got, want), path.name
        overlay_bgr = gss.overlay(bgr, want, segmenter.colors, channel_order="BGR")
        assert np.array_equal(overlay_bgr[..., ::-1], gss.overlay(rgb, want, segmenter.colors))


def test_a_crop_of_a_larger_array_is_read_in_place(
    segmenter: gss.Segmenter, frame_640: Path
) -> None:
    big = load_rgb(frame_640)
    crop = big[40:300, 64:576]  # rows 1920 bytes apart: not contiguous
    assert not crop.flags["C_CONTIGUOUS"]
    want = segmenter.segment(np.ascontiguousarray(crop)).classes
    assert np.array_equal(segmenter.segment(crop).classes, want)
    readonly = np.ascontiguousarray(crop)
    readonly.flags.writeable = False
    assert np.array_equal(segmenter.segment(readonly).classes, want)


def test_confidence_for_a_logits_package_and_none_otherwise(segmenter: gss.Segmenter) -> None:
    frame = np.zeros((64, 96, 3), np.uint8)
    confidence = segmenter.segment(frame).confidence
    assert confidence is not None and confidence.dtype == np.float32
    assert confidence.shape == segmenter.grid
    assert float(confidence.min()) > 0.0 and float(confidence.max()) <= 1.0
    assert gss.Segmenter(confidence=False).segment(frame).confidence is None

    argmax = FIXTURES / "gss-tiny"
    assert json.loads((argmax / "model.json").read_text())["prior"]["argmax_in_graph"]
    assert gss.Segmenter(str(argmax)).segment(frame).confidence is None
    logits = gss.Segmenter(str(FIXTURES / "gss-tiny-logits")).segment(frame)
    assert logits.confidence is not None


def test_timings_cover_every_stage(segmenter: gss.Segmenter) -> None:
    t = segmenter.segment(np.full((256, 512, 3), 90, np.uint8)).timings
    stages = [t.preprocess_ms, t.prior_ms, t.decoder_ms, t.inverse_ms, t.resize_ms]
    assert all(s >= 0 for s in stages) and t.prior_ms > 0
    assert t.total_ms == pytest.approx(sum(stages), rel=1e-6)


def test_fit_native_and_letterbox_give_unseen_or_full_maps(frame_640: Path) -> None:
    frame = load_rgb(frame_640)
    letterbox = gss.Segmenter(fit="letterbox").segment(frame).classes
    assert letterbox.shape == frame.shape[:2]
    crop = gss.Segmenter(fit="crop").segment(frame).classes
    assert (crop == gss.UNSEEN).any(), "crop cuts the frame's sides off"
    dense = gss.Segmenter(str(MODEL.parent / "gss-edge-street8-dense"), fit="native")
    assert dense.backend is None, "planned at the first frame"
    assert dense.segment(frame).classes.shape == frame.shape[:2]
    assert dense.backend is not None
