"""The runtime's pipeline in Python, on onnxruntime: the reference that parity checks, fixtures,
scores, calibration and benchmarks run a model package through (`OnnxSegmenter`).

Preprocess (resize.py under the fit policy, the manifest's mean/std) → prior.onnx (plus an ArgMax
for packages whose runtime takes it) → decoder.onnx → X⁻¹ (maskige.py's nearest colour, the
manifest's linear classifier, or the package's ONNX inverse) → class map at the frame's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .manifest import check_package
from .maskige import Palette, linear_to_mask, maskige_to_mask
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
    g.output.append(
        helper.make_tensor_value_info("tokens", onnx.TensorProto.INT64, [shape[0]] + shape[2:])
    )
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
            return linear_to_mask(maskige[0], *self._linear)
        if inv["kind"] == "onnx":
            assert self.inverse is not None
            classes = self.inverse.run(None, {inv["input"]: maskige})[0]
            return classes.reshape(maskige.shape[-2:]).astype(np.uint8)
        lo, hi = self.manifest["decoder"].get("output_range", [0.0, 1.0])
        return maskige_to_mask(
            (maskige[0].transpose(1, 2, 0) - lo) * (255.0 / (hi - lo)), self.palette
        )

    @staticmethod
    def load(package: Path, variant: str | None = None, threads: int = 0) -> OnnxSegmenter:
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
        return OnnxSegmenter(
            manifest,
            ort.InferenceSession(prior_model, opts, providers=prov),
            ort.InferenceSession(str(Path(package) / decoder_file), opts, providers=prov),
            Palette(
                np.array(manifest["maskige"]["palette"], np.uint8),
                tuple(manifest["maskige"]["ignore_color"]),
            ),
            inverse,
        )

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
        return self.prior.run(None, {self.manifest["prior"]["input"]: self.preprocess(image, fit)})[
            0
        ]

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        return self.classes_of(
            self.decoder.run(None, {self.manifest["decoder"]["input"]: tokens})[0]
        )

    def segment(self, image: np.ndarray, fit: str = "stretch") -> tuple[np.ndarray, np.ndarray]:
        """(tokens [h, w], class map at the image's own size under the fit policy; 255 where the
        model did not see the frame)."""
        tok = self.tokens(image, fit)
        classes = resize_classes(self.decode(tok), image.shape[:2], fit)
        return tok[0], classes
