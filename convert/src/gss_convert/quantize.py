"""int8 variants of a package, calibrated on real frames, listed under `variants` in model.json.

QDQ (QuantizeLinear/DequantizeLinear pairs around float ops) or QOperator (QLinearConv etc.).
Weights per channel, activations per tensor; the prior's input convolution and the decoder's
codebook gather stay as onnxruntime places them (the gather has no arithmetic to quantize).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process
from tqdm import tqdm

from .data.datasets import open_dataset
from .manifest import check_package, file_entry, validate_manifest
from .verify import OnnxSegmenter

FORMATS = {"qdq": QuantFormat.QDQ, "qoperator": QuantFormat.QOperator}


class _Feed(CalibrationDataReader):
    def __init__(self, name: str, arrays: list[np.ndarray]):
        self.name, self.arrays, self.i = name, arrays, 0

    def get_next(self):
        if self.i >= len(self.arrays):
            return None
        self.i += 1
        return {self.name: self.arrays[self.i - 1]}

    def rewind(self) -> None:
        self.i = 0


def _quantize(src: Path, dst: Path, feed: _Feed, fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(dst), feed, quant_format=FORMATS[fmt], per_channel=True,
                        activation_type=QuantType.QUInt8 if fmt == "qoperator" else QuantType.QInt8,
                        weight_type=QuantType.QInt8,
                        extra_options={"ActivationSymmetric": fmt == "qdq"})


def quantize_package(package: Path, calib: Path, fmt: str = "qdq", split: str = "train",
                     images: int = 64, seed: int = 0) -> dict:
    """Adds prior/decoder int8 files and a `variants` entry; returns the updated manifest."""
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt}: expected one of {sorted(FORMATS)}")
    package = Path(package)
    manifest = check_package(package)
    seg = OnnxSegmenter.load(package)
    ds = open_dataset(calib, split)
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(ds), size=min(images, len(ds)), replace=False).tolist())
    inputs, tokens = [], []
    for i in tqdm(pick, desc="calibration frames"):
        x = seg.preprocess(ds[i].image)
        inputs.append(x)
        tokens.append(seg.prior.run(None, {manifest["prior"]["input"]: x})[0])
    variant = "int8" if fmt == "qdq" else "int8-qoperator"
    suffix = ".int8.onnx" if fmt == "qdq" else ".int8-qop.onnx"
    files = {}
    for part, feed in (("prior", _Feed(manifest["prior"]["input"], inputs)),
                       ("decoder", _Feed(manifest["decoder"]["input"], tokens))):
        src = package / manifest[part]["file"]
        dst = package / (Path(manifest[part]["file"]).stem + suffix)
        _quantize(src, dst, feed, fmt)
        files[part] = dst.name
        manifest["files"][dst.name] = file_entry(dst)
    manifest.setdefault("variants", {})[variant] = {**files, "format": fmt,
                                                    "calibration": {"data": str(calib), "split": split,
                                                                    "images": len(pick)}}
    validate_manifest(manifest, str(package / "model.json"))
    (package / "model.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest
