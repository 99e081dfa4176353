"""ConfusionMatrix on hand-computed cases, plus the JSON and markdown reports."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gss_convert.metrics import ConfusionMatrix, markdown_comparison

NAMES = ["road", "sky", "car"]


def test_perfect_prediction() -> None:
    gt = np.array([[0, 0, 1], [1, 2, 2]], np.uint8)
    cm = ConfusionMatrix(3)
    cm.update(gt.copy(), gt)
    assert cm.miou() == 100.0 and cm.macc() == 100.0 and cm.pixel_acc() == 100.0
    np.testing.assert_array_equal(cm.mat, np.diag([2, 2, 2]))


def test_one_class_fully_wrong() -> None:
    gt = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 0, 1, 1, 1, 1])  # every "car" pixel predicted "sky"
    cm = ConfusionMatrix(3)
    cm.update(pred, gt)
    # road 2/2; sky tp 2, union 2+4-2 = 4 -> 0.5; car 0
    np.testing.assert_allclose(cm.iou(), [1.0, 0.5, 0.0])
    np.testing.assert_allclose(cm.acc(), [1.0, 1.0, 0.0])
    assert cm.miou() == pytest.approx(50.0)
    assert cm.macc() == pytest.approx(200 / 3)
    assert cm.pixel_acc() == pytest.approx(400 / 6)
    assert cm.mat[2, 1] == 2  # rows gt, cols pred


def test_ignore_pixels_skipped() -> None:
    gt = np.array([0, 1, 255, 255])
    pred = np.array([0, 1, 1, 0])
    cm = ConfusionMatrix(2)
    cm.update(pred, gt)
    assert cm.mat.sum() == 2 and cm.miou() == 100.0
    cm2 = ConfusionMatrix(2, ignore_index=0)
    cm2.update(np.array([1, 0, 1]), np.array([0, 1, 1]))
    np.testing.assert_array_equal(cm2.mat, [[0, 0], [1, 1]])


def test_absent_class_is_nan_and_excluded() -> None:
    gt = np.array([0, 0, 1, 1])
    pred = np.array([0, 1, 1, 1])
    cm = ConfusionMatrix(3)
    cm.update(pred, gt)
    iou = cm.iou()
    # road 1/2, sky 2/3, car never seen anywhere -> NaN
    assert iou[0] == pytest.approx(0.5) and iou[1] == pytest.approx(2 / 3) and math.isnan(iou[2])
    assert math.isnan(cm.acc()[2])
    assert cm.miou() == pytest.approx(100 * (0.5 + 2 / 3) / 2)
    # predicted but absent from gt: IoU 0 (counts), Acc NaN (no gt pixels)
    cm.update(np.array([2]), np.array([0]))
    assert cm.iou()[2] == 0.0 and math.isnan(cm.acc()[2])


def test_empty_matrix_is_nan_without_warnings() -> None:
    cm = ConfusionMatrix(2)
    with np.errstate(all="raise"):
        assert math.isnan(cm.miou()) and math.isnan(cm.macc()) and math.isnan(cm.pixel_acc())


def test_out_of_range_prediction_counts_as_error() -> None:
    gt = np.array([0, 0, 0, 0, 1, 1], np.uint8)
    pred = np.array([0, 0, 255, 7, 1, 1], np.uint8)
    cm = ConfusionMatrix(2)
    cm.update(pred, gt)
    assert cm.mat.sum() == 4 and cm.pred_out_of_range.tolist() == [2, 0]
    np.testing.assert_allclose(cm.iou(), [0.5, 1.0])  # road: tp 2, gt 4, pred 2 -> 2/4
    np.testing.assert_allclose(cm.acc(), [0.5, 1.0])
    assert cm.pixel_acc() == pytest.approx(400 / 6)
    # negative ids (signed input) are out of range too
    cm2 = ConfusionMatrix(2)
    cm2.update(np.array([-1, 1]), np.array([1, 1]))
    assert cm2.acc()[1] == 0.5


def test_shape_mismatch_and_bad_input_raise() -> None:
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="shape"):
        cm.update(np.zeros((2, 3), int), np.zeros((3, 2), int))
    with pytest.raises(ValueError, match="outside"):
        cm.update(np.zeros(2, int), np.array([0, 5]))
    with pytest.raises(ValueError, match="integer"):
        cm.update(np.zeros(2, float), np.zeros(2, int))


def test_merge_equals_single_update() -> None:
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 3, (2, 50))
    pred = rng.integers(0, 4, (2, 50))  # 3 is out of range
    a, b, both = ConfusionMatrix(3), ConfusionMatrix(3), ConfusionMatrix(3)
    a.update(pred[0], gt[0])
    b.update(pred[1], gt[1])
    both.update(pred, gt)
    a.merge(b)
    np.testing.assert_array_equal(a.mat, both.mat)
    np.testing.assert_array_equal(a.pred_out_of_range, both.pred_out_of_range)
    with pytest.raises(ValueError):
        a.merge(ConfusionMatrix(4))


def test_to_dict_json_serialisable() -> None:
    cm = ConfusionMatrix(3)
    cm.update(np.array([0, 1, 1]), np.array([0, 1, 0]))
    d = cm.to_dict(NAMES)
    json.loads(json.dumps(d, allow_nan=False))
    assert d["per_class"]["car"] == {"IoU": None, "Acc": None}
    assert d["per_class"]["road"]["IoU"] == pytest.approx(50.0)
    assert d["mIoU"] == pytest.approx(50.0) and d["aAcc"] == pytest.approx(200 / 3)
    assert d["confusion"] == [[1, 1, 0], [0, 1, 0], [0, 0, 0]] and d["class_names"] == NAMES
    with pytest.raises(ValueError):
        cm.to_dict(NAMES[:2])


def test_markdown() -> None:
    cm = ConfusionMatrix(3)
    cm.update(np.array([0, 1, 1]), np.array([0, 1, 0]))
    md = cm.to_markdown(NAMES, title="val")
    for name in NAMES:
        assert f"| {name} |" in md
    assert "### val" in md and "| road | 50.00 | 50.00 |" in md and "| car | - | - |" in md
    assert "mIoU" in md and "mAcc" in md and "aAcc" in md

    perfect = ConfusionMatrix(3)
    perfect.update(np.array([0, 1, 0]), np.array([0, 1, 0]))
    cmp = markdown_comparison({"reconstruction": perfect, "GSS prior": cm}, NAMES)
    lines = cmp.splitlines()
    assert lines[0] == "| class | reconstruction | GSS prior |"
    assert [ln.split(" | ")[0].lstrip("| ") for ln in lines[2:]] == NAMES + ["**mIoU**", "**mAcc**"]
    assert "| road | **100.00** | 50.00 |" in cmp
