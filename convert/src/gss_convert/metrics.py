"""Segmentation metrics: an accumulating confusion matrix, IoU / accuracy, and JSON / markdown reports.

Conventions: `iou()` and `acc()` return per-class fractions (0..1, NaN where undefined); the
summary numbers `miou()`, `macc()`, `pixel_acc()` and everything in `to_dict` / markdown are in
percent, as segmentation papers report them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .data.classes import IGNORE_INDEX


def _nan_to_none(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _nanmean(a: np.ndarray) -> float:
    # np.nanmean warns on all-NaN input; an empty evaluation should just be NaN
    valid = a[~np.isnan(a)]
    return float(valid.mean()) if valid.size else float("nan")


def _fmt(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.2f}"


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|")


class ConfusionMatrix:
    """Accumulates a [K, K] ground-truth x prediction pixel count matrix over many images."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.mat: np.ndarray = np.zeros((num_classes, num_classes), dtype=np.int64)
        # Predictions outside 0..K-1 (e.g. 255 from a decoder that gave up) have no column, but they
        # are still pixels of their gt class that were got wrong, so they are counted per gt row.
        self.pred_out_of_range: np.ndarray = np.zeros(num_classes, dtype=np.int64)

    def reset(self) -> None:
        self.mat[:] = 0
        self.pred_out_of_range[:] = 0

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Add one prediction / ground-truth pair (any shape, same shape, integer ids)."""
        pred = np.asarray(pred)
        gt = np.asarray(gt)
        if pred.shape != gt.shape:
            raise ValueError(f"prediction shape {pred.shape} != ground-truth shape {gt.shape}")
        for what, a in (("prediction", pred), ("ground truth", gt)):
            if not (np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
                raise ValueError(f"{what} must hold integer class ids, got dtype {a.dtype}")
        k = self.num_classes
        # int64 first: uint8 arithmetic would overflow in gt * k + pred
        pred = pred.reshape(-1).astype(np.int64, copy=False)
        gt = gt.reshape(-1).astype(np.int64, copy=False)
        keep = gt != self.ignore_index
        pred, gt = pred[keep], gt[keep]
        bad_gt = (gt < 0) | (gt >= k)
        if bad_gt.any():
            # silently skipping these would hide a wrong class list or label mapping
            raise ValueError(
                f"ground truth contains ids {np.unique(gt[bad_gt]).tolist()[:20]} outside "
                f"0..{k - 1} (ignore index is {self.ignore_index})"
            )
        valid = (pred >= 0) & (pred < k)
        self.mat += np.bincount(gt[valid] * k + pred[valid], minlength=k * k).reshape(k, k)
        self.pred_out_of_range += np.bincount(gt[~valid], minlength=k)

    def merge(self, other: ConfusionMatrix) -> None:
        if other.num_classes != self.num_classes or other.ignore_index != self.ignore_index:
            raise ValueError(
                f"cannot merge a {other.num_classes}-class matrix (ignore {other.ignore_index}) "
                f"into a {self.num_classes}-class one (ignore {self.ignore_index})"
            )
        self.mat += other.mat
        self.pred_out_of_range += other.pred_out_of_range

    def _gt_totals(self) -> np.ndarray:
        return self.mat.sum(axis=1) + self.pred_out_of_range

    def iou(self) -> np.ndarray:
        """Per-class IoU as a fraction; NaN where the class is in neither gt nor prediction."""
        tp = np.diag(self.mat).astype(np.float64)
        union = self._gt_totals() + self.mat.sum(axis=0) - tp
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(union > 0, tp / union, np.nan)

    def acc(self) -> np.ndarray:
        """Per-class recall as a fraction; NaN where the class is absent from gt."""
        tp = np.diag(self.mat).astype(np.float64)
        total = self._gt_totals()
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(total > 0, tp / total, np.nan)

    def miou(self) -> float:
        return 100.0 * _nanmean(self.iou())

    def macc(self) -> float:
        return 100.0 * _nanmean(self.acc())

    def pixel_acc(self) -> float:
        total = int(self._gt_totals().sum())
        return 100.0 * float(np.trace(self.mat)) / total if total else float("nan")

    def _check_names(self, class_names: list[str]) -> None:
        if len(class_names) != self.num_classes:
            raise ValueError(
                f"{len(class_names)} class names for a {self.num_classes}-class confusion matrix"
            )

    def to_dict(self, class_names: list[str]) -> dict[str, Any]:
        """JSON-ready summary (percentages; NaN -> None)."""
        self._check_names(class_names)
        iou, acc = self.iou(), self.acc()
        return {
            "mIoU": _nan_to_none(self.miou()),
            "mAcc": _nan_to_none(self.macc()),
            "aAcc": _nan_to_none(self.pixel_acc()),
            "per_class": {
                name: {"IoU": _nan_to_none(100.0 * iou[i]), "Acc": _nan_to_none(100.0 * acc[i])}
                for i, name in enumerate(class_names)
            },
            "confusion": self.mat.tolist(),
            "pred_out_of_range": self.pred_out_of_range.tolist(),
            "class_names": list(class_names),
        }

    def to_markdown(self, class_names: list[str], title: str | None = None) -> str:
        """Markdown table `class | IoU | Acc` (percent, 2 decimals, '-' = undefined) plus summary rows."""
        self._check_names(class_names)
        iou, acc = 100.0 * self.iou(), 100.0 * self.acc()
        lines = [f"### {title}", ""] if title else []
        lines += ["| class | IoU | Acc |", "|---|---:|---:|"]
        lines += [
            f"| {_md_cell(n)} | {_fmt(iou[i])} | {_fmt(acc[i])} |"
            for i, n in enumerate(class_names)
        ]
        lines += [
            f"| **mIoU** | {_fmt(self.miou())} | |",
            f"| **mAcc** | | {_fmt(self.macc())} |",
            f"| **aAcc** | | {_fmt(self.pixel_acc())} |",
        ]
        return "\n".join(lines) + "\n"


def markdown_comparison(results: dict[str, ConfusionMatrix], class_names: list[str]) -> str:
    """One table, a column per method: per-class IoU rows, then mIoU and mAcc (percent, best in bold)."""
    if not results:
        raise ValueError("markdown_comparison needs at least one result")
    for name, cm in results.items():
        if cm.num_classes != len(class_names):
            raise ValueError(
                f"result {name!r} has {cm.num_classes} classes but {len(class_names)} names were given"
            )
    methods = list(results)
    ious = {m: 100.0 * results[m].iou() for m in methods}

    def row(label: str, values: list[float]) -> str:
        finite = [v for v in values if not math.isnan(v)]
        # bolding the best only means something when there is a comparison to make
        best = max(finite) if len(methods) > 1 and finite else None
        cells = [f"**{_fmt(v)}**" if best is not None and v == best else _fmt(v) for v in values]
        return f"| {label} | " + " | ".join(cells) + " |"

    lines = [
        "| class | " + " | ".join(_md_cell(m) for m in methods) + " |",
        "|---|" + "---:|" * len(methods),
    ]
    lines += [
        row(_md_cell(n), [float(ious[m][i]) for m in methods]) for i, n in enumerate(class_names)
    ]
    lines.append(row("**mIoU**", [results[m].miou() for m in methods]))
    lines.append(row("**mAcc**", [results[m].macc() for m in methods]))
    return "\n".join(lines) + "\n"


__all__ = ["ConfusionMatrix", "markdown_comparison"]
