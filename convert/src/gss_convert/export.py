"""Export of a trained run to the model package the Rust runtime loads (`models/<name>/`).

`prior.onnx`: float image [1, 3, H, W] (RGB, 0..255, normalised by the runtime with the manifest's
mean/std) → int64 tokens [1, H/8, W/8], the argmax inside the graph. `decoder.onnx`: tokens →
maskige [1, 3, H, W] in [0, 1], the codebook as an embedding gather. Static shapes throughout,
because tract plans concrete shapes far better than symbolic ones (docs/tract.md).
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn as nn

from . import __version__
from .evaluate import Predictors
from .flops import count_macs
from .manifest import FORMAT, file_entry, validate_manifest
from .maskige import nearest_planes, palette_in_range
from .models.prior import IMAGENET_MEAN, IMAGENET_STD, reparameterize
from .models.vqvae import TokenDecoder
from .receptive import halo_entry

OPSET = 17
BACKBONE_STRIDE = 32
# How the runtime fits frames of another aspect ratio (`gss_convert.resize`), chosen on 4:3
# street8 and street8-shift frames with `scripts/eval-fit.sh` (docs/fit.md): running the graphs at
# the frame's aspect ratio wins where they are fully convolutional, stretching where they are not
# (letterbox loses 4-5 mIoU, a centre crop a third of the frame).
FIT_FULLY_CONVOLUTIONAL = "native"
FIT_FIXED_SIZE = "stretch"


def _with_input_size(model: onnx.ModelProto, shape: list[int]) -> onnx.ModelProto:
    """The graph with its (single) input declared as `shape` and every inferred shape dropped."""
    model = copy.deepcopy(model)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim, value in zip(dims, shape):
        dim.ClearField("dim_param")
        dim.dim_value = value
    del model.graph.value_info[:]
    for output in model.graph.output:
        output.type.tensor_type.ClearField("shape")
    return model


def _runs_at_other_sizes(package: Path, h: int, w: int, s: int, multiple: int) -> bool:
    """Whether both exported graphs are fully convolutional: they run at another size,
    (h + multiple) × (w + 2·multiple), with onnxruntime and give outputs of the matching size.
    The runtime then offers `--fit native` (`input.size_multiple`); a graph with a size baked in
    (an upsample to a constant size, a Reshape to constants) does not."""
    import numpy as np
    import onnxruntime as ort

    hh, ww = h + multiple, w + 2 * multiple
    try:
        prior = _with_input_size(onnx.load(package / "prior.onnx"), [1, 3, hh, ww])
        decoder = _with_input_size(onnx.load(package / "decoder.onnx"), [1, hh // s, ww // s])

        def run(m: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
            session = ort.InferenceSession(
                m.SerializeToString(), providers=["CPUExecutionProvider"]
            )
            return session.run(None, {m.graph.input[0].name: x})[0]

        logits = run(prior, np.zeros((1, 3, hh, ww), np.float32))
        maskige = run(decoder, np.zeros((1, hh // s, ww // s), np.int64))
    except Exception:  # noqa: BLE001 - any failure means "not at other sizes"
        return False
    return tuple(logits.shape[-2:]) == (hh // s, ww // s) and tuple(maskige.shape) == (1, 3, hh, ww)


class PriorTokens(nn.Module):
    """Normalised image → token ids (or, with `argmax=False`, token logits [1, codes, h, w]);
    ImageNet normalisation is the runtime's preprocessing step."""

    def __init__(self, prior: nn.Module, argmax: bool = True):
        super().__init__()
        # RepConv branches fold into one conv each: the graph tract runs has no training-only branches.
        prior = reparameterize(copy.deepcopy(prior).eval())
        self.backbone, self.head, self.token_logits = prior.backbone, prior.head, prior.token_logits
        self.argmax = argmax

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.token_logits(self.head(self.backbone(image)))
        return logits.argmax(1) if self.argmax else logits


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def export_onnx(
    module: nn.Module,
    example: torch.Tensor,
    path: Path,
    input_name: str,
    output_name: str,
    spatial_axes: tuple[int, int] | None = None,
    input_shape: list[int] | None = None,
    output_shape: list[int] | None = None,
    quiet_tracer: bool = False,
) -> None:
    """Exports `module`, traced on `example`, to `path` with the TorchScript exporter: it gives
    plain, static graphs (Conv, Gather, DepthToSpace, ArgMax) that both tract and onnxruntime load;
    dynamo's graphs add ops tract lacks. Every export of the package goes through here.

    Without `spatial_axes` the file declares `example`'s shape. With them (the input's height and
    width axes) the trace keeps those axes symbolic, so sizes computed from tensor shapes (the
    FPN's upsampling targets) stay Shape ops instead of constants and the graph runs at other
    sizes; the file still declares static shapes, which tract plans best: `input_shape` (default
    `example`'s) and `output_shape` (default the module's output on `example`, one more forward).
    Giving both lets a small `example` stand in for a large size (the official dVAE decoder, whose
    forward at the real size costs TMACs). `quiet_tracer` hides the tracer's warnings."""
    module.eval()
    dynamic_axes = None
    if spatial_axes is not None:
        dynamic_axes = {input_name: {spatial_axes[0]: "height", spatial_axes[1]: "width"}}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        if quiet_tracer:
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=[input_name],
            output_names=[output_name],
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
            dynamic_axes=dynamic_axes,
        )
        if spatial_axes is not None and output_shape is None:
            output_shape = list(module(example).shape)
    model = onnx.load(str(path))
    if spatial_axes is not None:
        model = _with_input_size(
            model, list(example.shape) if input_shape is None else list(input_shape)
        )
        dims = model.graph.output[0].type.tensor_type.shape.dim
        for value in output_shape:
            dims.add().dim_value = value
    # Shape inference output is not needed by either runtime and symbolic entries trip tract.
    del model.graph.value_info[:]
    model.producer_name, model.producer_version = "gss_convert", __version__
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def export_run(
    run: Path,
    out: Path,
    name: str | None = None,
    metrics: Path | None = None,
    dataset: str = "street8",
    argmax_in_graph: bool = False,
) -> dict:
    """Writes prior.onnx, decoder.onnx and model.json for a trained run; returns the manifest.

    By default the prior ends with its token logits and the runtime takes the argmax: tract runs
    an ArgMax node over 512 channels as a strided scalar loop (2 ms, a third of a dense prior),
    the runtime's own loop takes about 0.1 ms. `argmax_in_graph=True` keeps it in the graph."""
    pred = Predictors.from_run(run, torch.device("cpu"))
    if pred.prior is None or pred.vqvae is None:
        raise FileNotFoundError(f"{run}: export needs prior.pt (stage 2, which carries its VQ-VAE)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    h, w = pred.input_size
    s = pred.vqvae.cfg.downsample
    # The backbones downsample 32×; the decoder's grid stride divides that.
    multiple = math.lcm(s, BACKBONE_STRIDE)
    prior_out = "tokens" if argmax_in_graph else "logits"
    prior_graph = PriorTokens(pred.prior, argmax=argmax_in_graph)
    decoder_graph = TokenDecoder(pred.vqvae)
    image, tokens = torch.zeros(1, 3, h, w), torch.zeros(1, h // s, w // s, dtype=torch.long)
    export_onnx(prior_graph, image, out / "prior.onnx", "image", prior_out, spatial_axes=(2, 3))
    export_onnx(
        decoder_graph, tokens, out / "decoder.onnx", "tokens", "maskige", spatial_axes=(1, 2)
    )
    any_size = _runs_at_other_sizes(out, h, w, s, multiple)
    cost = {
        "prior_gmac": round(count_macs(prior_graph, image) / 1e9, 4),
        "decoder_gmac": round(count_macs(decoder_graph, tokens) / 1e9, 4),
    }
    manifest = {
        "format": FORMAT,
        "name": name or out.name,
        "producer": {"name": "gss_convert", "version": __version__, "git_commit": _git_commit()},
        "dataset": {"name": dataset},
        "metrics": _metrics_summary(metrics) if metrics else {},
        "classes": [{"id": c.id, "name": c.name, "color": list(c.color)} for c in pred.classes],
        "maskige": {
            **{k: v for k, v in pred.palette.to_dict().items() if k != "colors"},
            "palette": pred.palette.colors.tolist(),
            "inverse": {"kind": "nearest"},
        },
        "input": {
            "height": h,
            "width": w,
            "channel_order": "RGB",
            "layout": "NCHW",
            "value_range": [0, 255],
            "mean": [round(m * 255, 4) for m in IMAGENET_MEAN],
            "std": [round(v * 255, 4) for v in IMAGENET_STD],
            "resize": "bilinear",
            **(
                {"fit": FIT_FULLY_CONVOLUTIONAL, "size_multiple": multiple}
                if any_size
                else {"fit": FIT_FIXED_SIZE}
            ),
        },
        "prior": {
            "file": "prior.onnx",
            "input": "image",
            "output": prior_out,
            "output_dtype": "int64" if argmax_in_graph else "float32",
            "grid": [h // s, w // s],
            "codebook_size": pred.vqvae.cfg.codebook_size,
            "argmax_in_graph": argmax_in_graph,
        },
        "decoder": {
            "file": "decoder.onnx",
            "input": "tokens",
            "output": "maskige",
            "upsample": s,
            "output_range": [0.0, 1.0],
            **halo_entry(out / "decoder.onnx"),
        },
        "cost": cost,
        "variants": {},
        "files": {f: file_entry(out / f) for f in ("prior.onnx", "decoder.onnx")},
    }
    validate_manifest(manifest)
    (out / "model.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


class PaletteInverse(nn.Module):
    """X⁻¹ as a graph: the nearest palette colour is argmax_k (2 p_k·x − |p_k|²)
    (`maskige.nearest_planes`), a 1×1 conv plus ArgMax, so it gives exactly the runtime's nearest-colour classes. A trained inverse (GSS-FT)
    would be exported the same way, maskige in and int64 class ids out."""

    def __init__(self, palette: torch.Tensor) -> None:
        super().__init__()
        weight, bias = nearest_planes(palette)
        self.scores = nn.Conv2d(3, palette.shape[0], 1)
        with torch.no_grad():
            self.scores.weight.copy_(weight[:, :, None, None])
            self.scores.bias.copy_(bias)

    def forward(self, maskige: torch.Tensor) -> torch.Tensor:
        return torch.argmax(self.scores(maskige), dim=1)


def export_palette_inverse(package: Path, out: Path | None = None, install: bool = False) -> dict:
    """Writes the package's nearest-colour inverse as ONNX (maskige [1,3,H,W] → classes [1,H,W]).

    `out` defaults to `package/inverse.onnx`; with `install` the package's model.json switches to
    it (`"inverse": {"kind": "onnx", ...}`) and records its hash. Returns the inverse entry."""
    package = Path(package)
    manifest = json.loads((package / "model.json").read_text())
    palette = palette_in_range(manifest)
    h, w = manifest["input"]["height"], manifest["input"]["width"]
    out = Path(out) if out else package / "inverse.onnx"
    export_onnx(PaletteInverse(palette), torch.zeros(1, 3, h, w), out, "maskige", "classes")
    entry = {"kind": "onnx", "file": out.name, "input": "maskige", "output": "classes"}
    if install:
        if out.parent.resolve() != package.resolve():
            raise ValueError(f"{out}: an installed inverse must live in the package ({package})")
        install_inverse(package, out, entry)
    return entry


# Ops an exported per-pixel linear inverse may hold beside its one 1×1 Conv: the argmax (a node or
# the Greater/Max/Where chain of InverseClasses) and the shape plumbing around it.
_LINEAR_ARGMAX_OPS = {
    "ArgMax",
    "Split",
    "Greater",
    "Max",
    "Where",
    "Squeeze",
    "Unsqueeze",
    "Constant",
    "Identity",
    "Cast",
    "Slice",
    "Gather",
}


def linear_entry_from_onnx(graph: Path) -> dict | None:
    """`{"kind": "linear", "weight", "bias"}` when the ONNX inverse `graph` is one 1×1 convolution
    of the maskige (3 → K channels) followed by an argmax, which the runtime runs in its own
    vectorised loop at the cost of nearest colour; None for any other graph (run as ONNX)."""
    from onnx import numpy_helper

    model = onnx.load(str(graph))
    g = model.graph
    convs = [n for n in g.node if n.op_type == "Conv"]
    others = {n.op_type for n in g.node if n.op_type != "Conv"}
    if len(convs) != 1 or not others <= _LINEAR_ARGMAX_OPS or len(g.input) != 1:
        return None
    conv = convs[0]
    if conv.input[0] != g.input[0].name or len(conv.input) != 3:
        return None
    init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    if conv.input[1] not in init or conv.input[2] not in init:
        return None
    w, b = init[conv.input[1]].astype(np.float32), init[conv.input[2]].astype(np.float32)
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in conv.attribute}
    if (
        w.ndim != 4
        or w.shape[1:] != (3, 1, 1)
        or b.shape != (w.shape[0],)
        or attrs.get("group", 1) != 1
        or any(v != 1 for v in attrs.get("strides", [1, 1]))
        or any(v != 0 for v in attrs.get("pads", [0] * 4))
    ):
        return None
    return {"kind": "linear", "weight": w[:, :, 0, 0].tolist(), "bias": b.tolist()}


def inverse_entry(graph: Path, kind: str = "auto", name: str | None = None) -> dict:
    """The model.json inverse entry for the ONNX inverse `graph`: `linear` (its weights, when it is
    a 1×1 conv + argmax), `onnx` (the graph as the package file `name`, default its own name), or
    `auto`: linear when it can be."""
    if kind in ("auto", "linear"):
        linear = linear_entry_from_onnx(graph)
        if linear is not None:
            return linear
        if kind == "linear":
            raise ValueError(
                f"{graph}: not one 1x1 convolution followed by an argmax, so it cannot be a linear "
                "inverse; install it with --kind onnx"
            )
    import onnx

    g = onnx.load(str(graph)).graph
    return {
        "kind": "onnx",
        "file": name or Path(graph).name,
        "input": g.input[0].name,
        "output": g.output[0].name,
    }


def install_inverse(
    package: Path, graph: Path | None, entry: dict, gmac: float | None = None
) -> dict:
    """Switches `package`'s model.json to the inverse `entry`. An ONNX entry (kind, file, input,
    output) copies `graph` into the package as `entry["file"]` when it lives elsewhere and records
    its sha256 under `files`; a linear entry (kind, weight, bias) lives in model.json alone. When
    given, the MACs per frame go to `cost.inverse_gmac`. A previous ONNX inverse's `files` entry is
    dropped (its file is left on disk). Returns the manifest."""
    import shutil

    package = Path(package)
    manifest = json.loads((package / "model.json").read_text())
    if entry["kind"] == "onnx":
        if graph is None or Path(entry["file"]).name != entry["file"]:
            raise ValueError(
                f"inverse file {entry.get('file')!r}: must be a file name inside the package"
            )
        graph, target = Path(graph), package / entry["file"]
        if graph.resolve() != target.resolve():
            shutil.copyfile(graph, target)
    elif entry["kind"] != "linear":
        raise ValueError(f"inverse kind {entry['kind']!r}: install takes onnx or linear")
    if len(entry.get("weight", manifest["classes"])) != len(manifest["classes"]):
        raise ValueError(
            f"a linear inverse of {len(entry['weight'])} classes for a package of {len(manifest['classes'])}"
        )
    old = manifest["maskige"].get("inverse", {})
    if old.get("kind") == "onnx" and old.get("file") != entry.get("file"):
        manifest["files"].pop(old["file"], None)
    manifest["maskige"]["inverse"] = entry
    if entry["kind"] == "onnx":
        manifest["files"][entry["file"]] = file_entry(package / entry["file"])
    if gmac is not None and "cost" in manifest:
        manifest["cost"]["inverse_gmac"] = round(float(gmac), 4)
    validate_manifest(manifest)
    (package / "model.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


class BaselineClasses(nn.Module):
    """The discriminative baseline as a class-map graph: image (0..255 floats, NCHW; the ImageNet
    normalisation inside) → per-pixel logits upsampled to the input size → ArgMax, int64 [N, H, W]."""

    def __init__(self, baseline: nn.Module) -> None:
        super().__init__()
        self.baseline = reparameterize(copy.deepcopy(baseline).eval())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.argmax(self.baseline(image), dim=1)


def export_baseline(run: Path, out: Path) -> dict:
    """Writes a run's discriminative baseline (baseline.pt) as one ONNX graph, image in (the prior's
    input contract, but normalised inside the graph) and class ids out, plus `out`.json describing
    it (input, output, size, GMAC, classes, the checkpoint's sha256). Returns that description.
    `gss-convert eval-onnx` scores it on a dataset split with onnxruntime."""
    from .manifest import sha256_file
    from .train import CKPT_NAMES, build_baseline, load_checkpoint

    run, out = Path(run), Path(out)
    ckpt_path = run / CKPT_NAMES["baseline"]
    ckpt = load_checkpoint(ckpt_path)
    if ckpt["stage"] != "baseline":
        raise ValueError(f"{ckpt_path}: a {ckpt['stage']} checkpoint, not the baseline")
    from .config import config_from_dict

    h, w = config_from_dict(ckpt["config"]).input_size
    graph = BaselineClasses(build_baseline(ckpt))
    image = torch.zeros(1, 3, h, w)
    out.parent.mkdir(parents=True, exist_ok=True)
    export_onnx(graph, image, out, "image", "classes", spatial_axes=(2, 3))
    info = {
        "kind": "class-map",
        "file": out.name,
        "input": "image",
        "output": "classes",
        "input_size": [h, w],
        "value_range": [0, 255],
        "layout": "NCHW",
        "channel_order": "RGB",
        "normalisation": "in the graph (ImageNet mean/std)",
        "output_dtype": "int64",
        "gmac": round(count_macs(graph, image) / 1e9, 4),
        "iterations": ckpt.get("iter"),
        "train_seconds": round(float(ckpt.get("train_seconds", 0.0)), 1),
        "classes": [c["name"] for c in ckpt["classes"]],
        "checkpoint": {"path": str(ckpt_path), "sha256": sha256_file(ckpt_path)},
        "onnx": file_entry(out),
    }
    out.with_suffix(".json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def _metrics_summary(path: Path) -> dict:
    report = json.loads(Path(path).read_text())
    methods = report["methods"]
    names = {
        "GSS prior": "mIoU",
        "reconstruction": "reconstruction_mIoU",
        "discriminative": "discriminative_mIoU",
    }
    out = {"split": report.get("split"), "images": report.get("images")}
    for method, key in names.items():
        if method in methods:
            out[key] = round(methods[method]["mIoU"], 2)
    if "GSS prior" in methods:
        out["per_class_IoU"] = {
            k: (None if v["IoU"] is None else round(v["IoU"], 2))
            for k, v in methods["GSS prior"]["per_class"].items()
        }
    return out


__all__ = [
    "export_run",
    "PriorTokens",
    "export_palette_inverse",
    "install_inverse",
    "export_baseline",
]


def logits_prior(package: Path) -> dict:
    """Rewrites a package whose prior ends with its ArgMax so that it ends with the token logits
    the ArgMax read (exactly that tensor: no retraining), in every variant, and re-stamps
    model.json (the prior's output, its dtype, `argmax_in_graph` and the files' sha256). The runtime
    then takes the argmax itself and can give the prior's confidence and the temporal stabiliser.
    Checks with onnxruntime that the argmax of the new output is the old graph's token grid."""
    import onnxruntime as ort

    package = Path(package)
    path = package / "model.json"
    manifest = json.loads(path.read_text())
    prior = manifest["prior"]
    if not prior.get("argmax_in_graph", False):
        raise ValueError(
            f"{path}: the prior already ends with its token logits ({prior['output']!r})"
        )
    files = [prior["file"]] + [v["prior"] for v in manifest.get("variants", {}).values()]
    codes, grid = prior["codebook_size"], prior["grid"]
    rng = np.random.default_rng(0)
    image = rng.uniform(
        -2.0, 2.0, (1, 3, manifest["input"]["height"], manifest["input"]["width"])
    ).astype(np.float32)
    for name in files:
        model = onnx.load(str(package / name))
        g = model.graph
        nodes = [n for n in g.node if prior["output"] in n.output]
        if len(nodes) != 1 or nodes[0].op_type != "ArgMax":
            raise ValueError(
                f"{package / name}: output {prior['output']!r} is not made by one ArgMax node"
            )
        argmax = nodes[0]
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in argmax.attribute}
        if (
            attrs.get("axis", 0) != 1
            or attrs.get("keepdims", 1) != 0
            or attrs.get("select_last_index", 0) != 0
        ):
            raise ValueError(
                f"{package / name}: the ArgMax is not over channels (axis 1, keepdims 0): {attrs}"
            )
        before = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        tokens = before.run(None, {prior["input"]: image})[0]
        source = argmax.input[0]
        g.node.remove(argmax)
        for n in g.node:
            n.output[:] = ["logits" if o == source else o for o in n.output]
            n.input[:] = ["logits" if i == source else i for i in n.input]
        out = next(o for o in g.output if o.name == prior["output"])
        g.output.remove(out)
        g.output.append(
            onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [1, codes, *grid])
        )
        onnx.checker.check_model(model)
        after = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        logits = after.run(None, {prior["input"]: image})[0]
        if logits.shape != (1, codes, *grid) or not np.array_equal(logits.argmax(1), tokens):
            raise ValueError(
                f"{package / name}: the logits' argmax differs from the ArgMax node's tokens"
            )
        onnx.save(model, str(package / name))
        manifest["files"][name] = file_entry(package / name)
    manifest["prior"] = {
        **prior,
        "output": "logits",
        "output_dtype": "float32",
        "argmax_in_graph": False,
    }
    validate_manifest(manifest, str(path))
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest
