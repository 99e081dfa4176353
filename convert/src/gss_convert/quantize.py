"""int8 variants of a package, calibrated on real frames, listed under `variants` in model.json.

QDQ (QuantizeLinear/DequantizeLinear pairs around float ops) or QOperator (QLinearConv etc.).
Weights per channel, activations per tensor; `float_nodes` lists what stays in float and why.
The decoder's codebook gather has no arithmetic to quantize and stays float.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from tqdm import tqdm

from .data.datasets import open_dataset
from .manifest import check_package, file_entry, validate_manifest
from .runtime import OnnxSegmenter

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


def float_nodes(model: onnx.ModelProto) -> list[str]:
    """Nodes to keep in float.

    - A Relu whose input also feeds another node (a pre-activation residual block: x + f(relu(x))):
      onnxruntime folds the Relu into its producer's output range, which clips the negative values
      the other consumer needs. Its producer stays float.
    - The last node before the graph's outputs (the token logits before ArgMax, the decoder's RGB
      head): their small differences decide the argmax and the nearest colour.
    """
    consumers: dict[str, int] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers[i] = consumers.get(i, 0) + 1
    producer = {o: n for n in model.graph.node for o in n.output}
    keep: list[str] = []
    for n in model.graph.node:
        if n.op_type == "Relu" and consumers.get(n.input[0], 0) > 1 and n.input[0] in producer:
            keep.append(producer[n.input[0]].name)
    last_conv = [n for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")][-1:]
    keep += [n.name for n in last_conv]
    return sorted(set(keep))


def _quantize(src: Path, dst: Path, feed: _Feed, fmt: str) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        keep = float_nodes(onnx.load(str(pre)))
        quantize_static(
            str(pre),
            str(dst),
            feed,
            quant_format=FORMATS[fmt],
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=keep,
            # tract 0.23 has no QLinearAdd/QLinearConcat (onnxruntime contrib ops):
            # in QOperator form only the standard QLinearConv/QLinearMatMul are emitted
            op_types_to_quantize=["Conv", "MatMul", "Gemm", "Relu", "Clip"]
            if fmt == "qoperator"
            else None,
            extra_options={"ActivationSymmetric": False},
        )
    return keep


def quantize_package(
    package: Path,
    calib: Path,
    fmt: str = "qdq",
    split: str = "train",
    images: int = 64,
    seed: int = 0,
) -> dict:
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
    files, kept = {}, {}
    for part, feed in (
        ("prior", _Feed(manifest["prior"]["input"], inputs)),
        ("decoder", _Feed(manifest["decoder"]["input"], tokens)),
    ):
        src = package / manifest[part]["file"]
        dst = package / (Path(manifest[part]["file"]).stem + suffix)
        kept[part] = _quantize(src, dst, feed, fmt)
        files[part] = dst.name
        manifest["files"][dst.name] = file_entry(dst)
    manifest.setdefault("variants", {})[variant] = {
        **files,
        "format": fmt,
        "float_nodes": kept,
        "calibration": {"data": str(calib), "split": split, "images": len(pick)},
    }
    validate_manifest(manifest, str(package / "model.json"))
    (package / "model.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest
