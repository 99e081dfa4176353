"""Parity of an exported package with PyTorch: the same images through both, agreement and mIoU.

Also writes the reference outputs the Rust tests check against (`--fixtures`): for a few images,
the token grid and class map onnxruntime computes, so `cargo test` checks parity without Python.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image
from tqdm import tqdm

from .data.datasets import open_dataset
from .maskige import Palette, maskige_to_mask
from .manifest import check_package
from .metrics import ConfusionMatrix
from .resize import resize_classes, resize_image


def with_argmax(path: Path, logits: str) -> bytes:
    """The prior graph with an ArgMax over its token logits appended (for packages whose runtime
    takes the argmax out of the graph): onnxruntime's own ArgMax is fast, so this is the fairest
    way to run such a package on it, and its output is the token grid again."""
    import onnx
    from onnx import helper

    model = onnx.load(str(path))
    g = model.graph
    out = next((o for o in g.output if o.name == logits), None)
    if out is None:
        raise ValueError(f"{path}: no output named {logits!r}")
    g.node.append(helper.make_node("ArgMax", [logits], ["tokens"], axis=1, keepdims=0))
    shape = [d.dim_value for d in out.type.tensor_type.shape.dim]
    g.output.remove(out)
    g.output.append(helper.make_tensor_value_info("tokens", onnx.TensorProto.INT64, [shape[0]] + shape[2:]))
    return model.SerializeToString()


@dataclass
class OnnxSegmenter:
    """The runtime's pipeline in Python: preprocess → prior.onnx → decoder.onnx → X⁻¹ (the nearest
    colour, the manifest's linear classifier, or the package's ONNX inverse)."""
    manifest: dict
    prior: ort.InferenceSession
    decoder: ort.InferenceSession
    palette: Palette
    inverse: ort.InferenceSession | None = None

    @property
    def trained_inverse(self) -> bool:
        """Whether X⁻¹ is something other than the nearest colour (so both sides of a parity
        check must run the package's own X⁻¹ rather than their own nearest colour)."""
        return self.manifest["maskige"]["inverse"]["kind"] != "nearest"

    @cached_property
    def _linear(self) -> tuple[np.ndarray, np.ndarray]:
        """A linear inverse's weights [K, 3] and biases [K], read from the manifest once."""
        inv = self.manifest["maskige"]["inverse"]
        return np.asarray(inv["weight"], np.float32), np.asarray(inv["bias"], np.float32)

    def classes_of(self, maskige: np.ndarray) -> np.ndarray:
        """The package's X⁻¹ on a maskige [1, 3, H, W] in the decoder's output range → uint8 [H, W]."""
        inv = self.manifest["maskige"]["inverse"]
        if inv["kind"] == "linear":
            w, b = self._linear
            scores = np.einsum("kc,chw->khw", w, maskige[0].astype(np.float32)) + b[:, None, None]
            return scores.argmax(0).astype(np.uint8)  # the first of equal scores, as the runtime
        if inv["kind"] == "onnx":
            assert self.inverse is not None
            classes = self.inverse.run(None, {inv["input"]: maskige})[0]
            return classes.reshape(maskige.shape[-2:]).astype(np.uint8)
        lo, hi = self.manifest["decoder"].get("output_range", [0.0, 1.0])
        return maskige_to_mask((maskige[0].transpose(1, 2, 0) - lo) * (255.0 / (hi - lo)), self.palette)

    @staticmethod
    def load(package: Path, variant: str | None = None, threads: int = 0) -> "OnnxSegmenter":
        manifest = check_package(package)
        files = manifest["variants"][variant] if variant else manifest
        prior_file = files["prior"] if variant else manifest["prior"]["file"]
        decoder_file = files["decoder"] if variant else manifest["decoder"]["file"]
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        # Spinning pool threads would steal the cores from the numpy pre/post-processing between runs.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        prov = ["CPUExecutionProvider"]
        prior_model: str | bytes = str(Path(package) / prior_file)
        if not manifest["prior"].get("argmax_in_graph", True):
            prior_model = with_argmax(Path(prior_model), manifest["prior"]["output"])
        inv = manifest["maskige"].get("inverse", {"kind": "nearest"})
        inverse = None
        if inv["kind"] == "onnx":
            inverse = ort.InferenceSession(str(Path(package) / inv["file"]), opts, providers=prov)
        return OnnxSegmenter(manifest,
                             ort.InferenceSession(prior_model, opts, providers=prov),
                             ort.InferenceSession(str(Path(package) / decoder_file), opts, providers=prov),
                             Palette(np.array(manifest["maskige"]["palette"], np.uint8),
                                     tuple(manifest["maskige"]["ignore_color"])), inverse)

    @property
    def input_size(self) -> tuple[int, int]:
        return self.manifest["input"]["height"], self.manifest["input"]["width"]

    def preprocess(self, image: np.ndarray, fit: str = "stretch") -> np.ndarray:
        """uint8 H×W×3 frame → normalised [1, 3, h, w] input under the fit policy (resize.py);
        letterbox padding normalises to 0."""
        inp = self.manifest["input"]
        mean = np.array(inp["mean"], np.float32)
        x = resize_image(image, self.input_size, fit, pad_value=mean)
        x = (x - mean) / np.array(inp["std"], np.float32)
        return x.transpose(2, 0, 1)[None].copy()

    def tokens(self, image: np.ndarray, fit: str = "stretch") -> np.ndarray:
        return self.prior.run(None, {self.manifest["prior"]["input"]: self.preprocess(image, fit)})[0]

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        return self.classes_of(self.decoder.run(None, {self.manifest["decoder"]["input"]: tokens})[0])

    def segment(self, image: np.ndarray, fit: str = "stretch") -> tuple[np.ndarray, np.ndarray]:
        """(tokens [h, w], class map at the image's own size under the fit policy; 255 where the
        model did not see the frame)."""
        tok = self.tokens(image, fit)
        classes = resize_classes(self.decode(tok), image.shape[:2], fit)
        return tok[0], classes


def verify(package: Path, run: Path, data: Path, split: str = "test", max_images: int | None = None,
           variant: str | None = None) -> dict:
    """Token and class-map agreement of onnxruntime with PyTorch, and the mIoU of each."""
    from .evaluate import Predictors

    seg = OnnxSegmenter.load(package, variant)
    pred = Predictors.from_run(run, torch.device("cpu"))
    ds = open_dataset(data, split)
    n = len(ds) if max_images is None else min(max_images, len(ds))
    k = len(seg.manifest["classes"])
    cm_torch, cm_onnx = ConfusionMatrix(k), ConfusionMatrix(k)
    tok_same = tok_all = cls_same = cls_all = 0
    for i in tqdm(range(n), desc=f"verify {split}"):
        s = ds[i]
        tok_o, cls_o = seg.segment(s.image)
        img = torch.tensor(s.image).permute(2, 0, 1)[None].float()
        with torch.no_grad():
            tok_t = pred.prior(pred._to_input(img), with_aux=False).argmax(1)[0].numpy()
            if not seg.trained_inverse:
                cls_t = pred.gss(img)[0].numpy().astype(np.uint8)
            else:  # the package's trained X⁻¹ on PyTorch's maskige: both sides use the same X⁻¹
                maskige = pred.vqvae.decode(torch.from_numpy(tok_t)[None]).numpy()
                ids = seg.classes_of(maskige).astype(np.int64)
                cls_t = pred._to_label_size(torch.from_numpy(ids[None]), img.shape[-2:])[0].numpy().astype(np.uint8)
        tok_same += int((tok_o == tok_t).sum())
        tok_all += tok_t.size
        cls_same += int((cls_o == cls_t).sum())
        cls_all += cls_t.size
        cm_torch.update(cls_t, s.label)
        cm_onnx.update(cls_o, s.label)
    return {"images": n, "variant": variant or "fp32",
            "token_agreement": 100.0 * tok_same / max(1, tok_all),
            "class_agreement": 100.0 * cls_same / max(1, cls_all),
            "mIoU_pytorch": cm_torch.miou(), "mIoU_onnxruntime": cm_onnx.miou()}


def write_fixtures(package: Path, images: list[Path], out: Path) -> list[dict]:
    """Reference outputs for the Rust tests: tokens as raw little-endian u16 (row-major h×w), class maps as PNG."""
    seg = OnnxSegmenter.load(package, threads=1)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for path in images:
        image = np.asarray(Image.open(path).convert("RGB"))
        tok, classes = seg.segment(image)
        stem = Path(path).stem
        Image.fromarray(image).save(out / f"{stem}.png")
        tokens_file = out / f"{stem}.tokens.u16"
        tok.astype("<u2").tofile(tokens_file)
        Image.fromarray(classes).save(out / f"{stem}.classes.png")
        entries.append({"image": f"{stem}.png", "tokens": tokens_file.name, "grid": list(tok.shape),
                        "classes": f"{stem}.classes.png"})
    (out / "reference.json").write_text(json.dumps({"package": str(package), "cases": entries}, indent=1) + "\n")
    return entries
