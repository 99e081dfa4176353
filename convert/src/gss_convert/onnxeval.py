"""Scoring a segmenter with onnxruntime on a dataset split, the way the runtime scores a package.

Two kinds of model:
- a class-map ONNX graph (e.g. `gss-convert export-baseline`): image f32 [1, 3, h, w] with values
  0..255 (RGB, NCHW, any normalisation inside the graph) → class ids [1, h, w] or [h, w] (int64,
  int32 or uint8);
- a model package directory: `runtime.OnnxSegmenter`, i.e. the runtime's pipeline (normalise, prior,
  decoder, the package's inverse: nearest colour or its ONNX inverse).

Frames meet the model through `gss_convert.resize` (the runtime's `frame_path/geometry.rs`): bilinear
into the model input under the fit policy, nearest back to the frame; the metrics are `metrics.ConfusionMatrix`'s, the
same definitions as `gss eval`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .metrics import ConfusionMatrix
from .models.prior import IMAGENET_MEAN
from .resize import FIT_POLICIES, resize_classes, resize_image


class ClassMapOnnx:
    """A class-map graph in onnxruntime, with the runtime's resize on both sides."""

    def __init__(self, path: Path, threads: int = 0, pad_value=None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        shape = inp.shape
        if len(shape) != 4 or shape[1] != 3 or not all(isinstance(d, int) for d in shape[2:]):
            raise ValueError(
                f"{path}: input {inp.name} has shape {shape}; a class-map graph takes "
                "[1, 3, h, w] with a static h and w"
            )
        self.input = inp.name
        self.size = (int(shape[2]), int(shape[3]))
        # letterbox bars: the raw mean colour, which a graph with ImageNet normalisation maps to 0
        self.pad_value = (
            np.array(IMAGENET_MEAN, np.float32) * 255 if pad_value is None else pad_value
        )

    def segment(self, image: np.ndarray, fit: str = "stretch") -> np.ndarray:
        x = resize_image(image, self.size, fit, pad_value=self.pad_value)
        out = self.session.run(None, {self.input: x.transpose(2, 0, 1)[None].copy()})[0]
        classes = np.asarray(out).reshape(self.size)
        if classes.min() < 0 or classes.max() > 255:
            raise ValueError(f"class ids outside 0..255 ({classes.min()}..{classes.max()})")
        return resize_classes(classes.astype(np.uint8), image.shape[:2], fit)


class PackageOnnx:
    """A model package through `OnnxSegmenter` (its own inverse included)."""

    def __init__(self, package: Path, threads: int = 0) -> None:
        from .runtime import OnnxSegmenter

        self.seg = OnnxSegmenter.load(package, threads=threads)
        self.size = self.seg.input_size
        self.fit = self.seg.manifest["input"].get("fit", "stretch")

    def segment(self, image: np.ndarray, fit: str = "stretch") -> np.ndarray:
        return self.seg.segment(image, fit)[1]


def load_segmenter(model: Path, threads: int = 0):
    model = Path(model)
    if model.is_dir():
        return PackageOnnx(model, threads)
    if not model.is_file():
        raise FileNotFoundError(
            f"{model}: neither a class-map .onnx file nor a model package directory"
        )
    return ClassMapOnnx(model, threads)


def eval_onnx(
    model: Path,
    data: Path,
    split: str = "test",
    fit: str | None = None,
    max_images: int | None = None,
    threads: int = 0,
    layout: str = "auto",
    progress: bool = True,
) -> dict:
    """Per-class IoU / Acc, mIoU, mAcc, aAcc of `model` on a split, as `gss eval --json` reports
    them (plus `ms_per_image`: onnxruntime inference and the numpy resizes)."""
    from tqdm import tqdm

    from .data.datasets import open_dataset

    seg = load_segmenter(model, threads)
    ds = open_dataset(data, split, layout)
    # a package's recommendation; `native` equals stretch at the exported aspect ratio (other
    # frames need the graphs at another size, which only the runtime does)
    requested = fit or getattr(seg, "fit", "stretch")
    native = requested == "native"
    fit = "stretch" if native else requested
    if fit not in FIT_POLICIES:
        raise ValueError(f"fit {fit!r}: expected one of {', '.join(FIT_POLICIES)}")
    names = ds.class_names
    cm = ConfusionMatrix(len(names))
    n = len(ds) if max_images is None else min(len(ds), max_images)
    seconds = 0.0
    for i in tqdm(range(n), desc=f"eval-onnx {split}", dynamic_ncols=True, disable=not progress):
        s = ds[i]
        if native and s.image.shape[:2] != tuple(seg.size):
            raise ValueError(
                f"{s.name}: {s.image.shape[1]}x{s.image.shape[0]} frame; the package's native fit "
                f"runs its graphs at another size, which eval-onnx does not: pass --fit stretch"
            )
        t0 = time.perf_counter()
        classes = seg.segment(s.image, fit)
        seconds += time.perf_counter() - t0
        cm.update(classes, s.label)
    return {
        "model": str(model),
        "data": str(data),
        "split": split,
        "images": n,
        "fit": fit,
        "ms_per_image": 1e3 * seconds / max(1, n),
        **cm.to_dict(names),
    }


__all__ = ["ClassMapOnnx", "PackageOnnx", "load_segmenter", "eval_onnx"]
