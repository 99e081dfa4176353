"""`gss-convert import-official`: an official GSS-FF checkpoint (fudan-zvg/GSS, mmseg 0.x) → a model
package the runtime loads (`prior.onnx`, `decoder.onnx`, `model.json`, `README.md`).

prior.onnx: normalised image [1, 3, H, W] → backbone → GSS-FF head → 8192 token logits at H/4 x W/4
→ ArgMax in the graph → int64 tokens [1, H/4, W/4]. decoder.onnx: tokens → the DALL-E decoder (its
one-hot input and first 1x1 conv as a Gather) → sigmoid, unmap → the official class decision at the
input size, as palette colours [1, 3, H, W] in [0, 1] (see `dalle.OfficialTokenDecoder`).

Both graphs are exported at one static size, like every package (tract plans concrete shapes best);
the Swin windows' padding and masks depend on it, so another size is another import (`--input-size`).
These are reference models of a few TMAC per frame, for comparing the edge models against the
published ones, not for running on small machines.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from tqdm import tqdm

from .. import __version__
from ..export import _git_commit, export_onnx
from ..flops import count_macs
from ..manifest import FORMAT, file_entry, sha256_file, validate_manifest
from ..utils import log
from .checkpoint import (
    DVAE_DECODER_PREFIX,
    DVAE_ENCODER_PREFIX,
    CheckpointError,
    check_keys,
    decoder_state_dict,
    guess_arch,
    load_file,
    model_state_dict,
)
from .dalle import DalleDecoder, OfficialTokenDecoder
from .head import GenerativeSegHeadFF, PixelBranch
from .resnet import ResNetV1c
from .specs import ARCHS, DATASETS, MEAN, STD, TOKEN_STRIDE, VOCAB_SIZE, ArchSpec, DatasetSpec
from .swin import SwinTransformer, relative_position_index

GSS_REPO = "fudan-zvg/GSS"
DALLE_REPO = "openai/DALL-E"
# Static shapes need sizes that every level divides: stride 32 for Swin-L's last stage (R101 stops
# at 8, but one rule for both keeps the CLI simple).
SIZE_MULTIPLE = 32


class OfficialPrior(nn.Module):
    """Image (normalised) → token ids [B, h, w] int64, or the 8192 logits with `argmax=False`."""

    def __init__(self, backbone: nn.Module, head: GenerativeSegHeadFF, argmax: bool = True) -> None:
        super().__init__()
        self.backbone, self.head, self.argmax = backbone, head, argmax

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.backbone(image))
        return logits.argmax(1) if self.argmax else logits


def build_backbone(arch: str) -> nn.Module:
    if arch == "r101":
        return ResNetV1c(
            depth=101, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), contract_dilation=True
        )
    if arch == "swin-l":
        return SwinTransformer(
            embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48), window=12
        )
    raise ValueError(f"unknown arch {arch!r}; use one of {', '.join(ARCHS)}")


def build_prior(arch: str, argmax: bool = True) -> OfficialPrior:
    spec = _arch(arch)
    return OfficialPrior(
        build_backbone(arch),
        GenerativeSegHeadFF(spec.head_in_channels, spec.head_swin_depth),
        argmax,
    )


def expected_keys(arch: str, num_classes: int) -> dict[str, torch.Tensor]:
    """Every tensor an official GSS-FF checkpoint of `arch` holds outside the dVAE, as meta tensors
    (names and shapes only): backbone.*, the head and its training-only pixel branch."""
    with torch.device("meta"):
        prior = build_prior(arch)
        pixel = PixelBranch(_arch(arch).head_in_channels, num_classes)
    out = {f"backbone.{k}": v for k, v in prior.backbone.state_dict().items()}
    out.update({f"decode_head.{k}": v for k, v in prior.head.state_dict().items()})
    out.update({f"decode_head.{k}": v for k, v in pixel.state_dict().items()})
    return out


def _arch(arch: str) -> ArchSpec:
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; use one of {', '.join(ARCHS)}")
    return ARCHS[arch]


def _dataset(dataset: str) -> DatasetSpec:
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; use one of {', '.join(DATASETS)}")
    return DATASETS[dataset]


@dataclass
class LoadedModel:
    prior: OfficialPrior
    decoder: DalleDecoder
    dataset: DatasetSpec
    arch: ArchSpec
    decoder_source: str
    meta: dict


def _check_meta(meta: dict, ds: DatasetSpec, path: Path) -> None:
    """mmcv stores the dataset's CLASSES in the checkpoint meta: a different count is the wrong --dataset."""
    classes = meta.get("CLASSES") if isinstance(meta, dict) else None
    if classes is None:
        return
    if len(classes) != ds.num_classes:
        raise CheckpointError(
            f"{path}: its meta lists {len(classes)} classes, --dataset {ds.name} has "
            f"{ds.num_classes}; pass the dataset it was trained on"
        )
    names = [str(c).strip().lower() for c in classes]
    if names != [n.lower() for n in ds.class_names]:
        log.warning(
            "%s: class names in its meta differ from %s's (%s…); using %s's",
            path,
            ds.name,
            ", ".join(names[:4]),
            ds.name,
        )


def load_official(
    checkpoint: Path, arch: str, dataset: str, dvae_decoder: Path | None = None
) -> LoadedModel:
    """Reads and checks a GSS-FF checkpoint (and the dVAE decoder) into our modules, in eval mode."""
    spec, ds = _arch(arch), _dataset(dataset)
    checkpoint = Path(checkpoint)
    raw = load_file(checkpoint)
    state = model_state_dict(raw, checkpoint)
    meta = raw.get("meta", {}) if isinstance(raw, dict) else {}
    _check_meta(meta if isinstance(meta, dict) else {}, ds, checkpoint)

    pixel_key = "decode_head.conv_seg_pixel.weight"
    if pixel_key in state and state[pixel_key].shape[0] != ds.num_classes:
        raise CheckpointError(
            f"{checkpoint}: {pixel_key} has {state[pixel_key].shape[0]} classes, --dataset "
            f"{ds.name} has {ds.num_classes}; pass the dataset the checkpoint was trained on"
        )
    guessed = guess_arch(state)
    hint = (
        f"The keys look like a {guessed} checkpoint: pass --arch {guessed}."
        if guessed and guessed != arch
        else f"Expected the layout of {GSS_REPO} {ds.configs.get(arch, f'gss-ff_{arch}')} (GenerativeSegHeadFF)."
    )
    check_keys(
        f"{checkpoint} is not a GSS-FF {arch} checkpoint",
        state,
        expected_keys(arch, ds.num_classes),
        ignored_prefixes=(DVAE_DECODER_PREFIX, DVAE_ENCODER_PREFIX),
        hint=hint,
    )

    prior = build_prior(arch)
    backbone = {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
    head_keys = set(prior.head.state_dict())
    head = {
        k[len("decode_head.") :]: v
        for k, v in state.items()
        if k.startswith("decode_head.") and k[len("decode_head.") :] in head_keys
    }
    _check_position_indices(
        checkpoint,
        {
            **{f"backbone.{k}": v for k, v in backbone.items()},
            **{f"decode_head.{k}": v for k, v in head.items()},
        },
    )
    prior.backbone.load_state_dict(backbone, strict=True)
    prior.head.load_state_dict(head, strict=True)

    decoder = DalleDecoder()
    if dvae_decoder is not None:
        dec_state = decoder_state_dict(load_file(Path(dvae_decoder)), Path(dvae_decoder))
        source = Path(dvae_decoder).name
        where = f"{dvae_decoder} (DALL-E decoder)"
    else:
        dec_state = {
            k[len(DVAE_DECODER_PREFIX) :]: v
            for k, v in state.items()
            if k.startswith(DVAE_DECODER_PREFIX)
        }
        if not dec_state:
            raise CheckpointError(
                f"{checkpoint} has no DALL-E decoder ({DVAE_DECODER_PREFIX}* keys); pass "
                f"--dvae-decoder decoder.pkl (the file GSS loads from ckp/, {DALLE_REPO})"
            )
        source = f"{checkpoint.name}:{DVAE_DECODER_PREFIX}*"
        where = f"{checkpoint} ({DVAE_DECODER_PREFIX}*)"
    check_keys(
        f"{where} is not the DALL-E dVAE decoder",
        dec_state,
        decoder.state_dict(),
        hint=f"Expected {DALLE_REPO} dall_e/decoder.py with n_init 128, n_hid 256, 2 blocks per group, "
        f"vocab {VOCAB_SIZE}.",
    )
    decoder.load_state_dict({k: v.float() for k, v in dec_state.items()}, strict=True)
    prior, decoder = prior.float().eval(), decoder.float().eval()
    return LoadedModel(prior, decoder, ds, spec, source, meta if isinstance(meta, dict) else {})


def _check_position_indices(path: Path, state: dict[str, torch.Tensor]) -> None:
    """The relative-position index buffers are derived from the window size; one that differs means a
    Swin variant this code does not reproduce (and silently wrong attention if loaded)."""
    for key, value in state.items():
        if key.endswith("relative_position_index"):
            window = int(round(value.shape[0] ** 0.5))
            if not torch.equal(value.long(), relative_position_index(window)):
                raise CheckpointError(
                    f"{path}: {key} is not the mmseg relative position index of a "
                    f"{window}x{window} window; this Swin variant is not supported"
                )


def cost_gmac(arch: str, dataset: str, size: tuple[int, int]) -> dict[str, float]:
    """GMAC per frame of both graphs at `size` (convolutions, linear layers and the attention
    matmuls), from modules built on the meta device: no weights, no arithmetic."""
    ds = _dataset(dataset)
    h, w = size
    with torch.device("meta"):
        prior = build_prior(arch)
        decoder = OfficialTokenDecoder(DalleDecoder(), torch.zeros(ds.num_classes, 3))
    image = torch.zeros(1, 3, h, w, device="meta")
    tokens = torch.zeros(1, h // TOKEN_STRIDE, w // TOKEN_STRIDE, dtype=torch.long, device="meta")
    return {
        "prior_gmac": round(count_macs(prior, image) / 1e9, 2),
        "decoder_gmac": round(count_macs(decoder, tokens) / 1e9, 2),
    }


def check_input_size(size: tuple[int, int]) -> None:
    h, w = size
    if h < SIZE_MULTIPLE or w < SIZE_MULTIPLE or h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
        raise ValueError(
            f"--input-size {h}x{w}: both sides must be multiples of {SIZE_MULTIPLE} "
            f"(the backbones' coarsest stride), e.g. 512x1024"
        )


def import_official(
    checkpoint: Path,
    arch: str,
    dataset: str,
    out: Path,
    input_size: tuple[int, int] | None = None,
    dvae_decoder: Path | None = None,
    name: str | None = None,
) -> dict:
    """Writes the package to `out` and returns its manifest."""
    ds, spec = _dataset(dataset), _arch(arch)
    size = tuple(input_size) if input_size else ds.input_size
    check_input_size(size)
    h, w = size
    out = Path(out)
    steps = tqdm(total=5, desc=f"import {arch} {dataset}", unit="step", leave=False)
    try:
        t0 = time.perf_counter()
        steps.set_postfix_str("reading the checkpoint")
        model = load_official(checkpoint, arch, dataset, dvae_decoder)
        steps.update()
        log.info(
            "%s: %s + GSS-FF head, %d M parameters; dVAE decoder from %s (%.1f s)",
            checkpoint,
            spec.description,
            sum(p.numel() for p in model.prior.parameters()) // 10**6,
            model.decoder_source,
            time.perf_counter() - t0,
        )

        out.mkdir(parents=True, exist_ok=True)
        # A model.json from an earlier import must not vouch for half-written graphs if this one fails.
        (out / "model.json").unlink(missing_ok=True)
        palette = torch.tensor(ds.maskige_palette, dtype=torch.float32) / 255.0
        decoder_graph = OfficialTokenDecoder(model.decoder, palette).eval()
        image = torch.zeros(1, 3, h, w)
        grid = [h // TOKEN_STRIDE, w // TOKEN_STRIDE]
        steps.set_postfix_str(f"exporting prior.onnx at {h}x{w}")
        # Traced at the real size: the Swin windows bake their padding and masks into the graph.
        export_onnx(model.prior, image, out / "prior.onnx", "image", "tokens", quiet_tracer=True)
        steps.update()
        steps.set_postfix_str("exporting decoder.onnx")
        # Traced on an 8x8 token grid and declared at `grid`: the decoder is fully convolutional, and a
        # trace at the real size would run its TMACs and hold GBs of activations.
        export_onnx(
            decoder_graph,
            torch.zeros(1, 8, 8, dtype=torch.long),
            out / "decoder.onnx",
            "tokens",
            "maskige",
            spatial_axes=(1, 2),
            input_shape=[1, *grid],
            output_shape=[1, 3, h, w],
            quiet_tracer=True,
        )
        steps.update()
        steps.set_postfix_str("counting MACs")
        cost = cost_gmac(arch, dataset, size)
        steps.update()
        steps.set_postfix_str("hashing")
        ckpt_sha = sha256_file(Path(checkpoint))
        name = name or out.name
        description = (
            f"Reference model: the official GSS-FF {arch} {dataset} checkpoint ({GSS_REPO}) imported "
            f"unchanged; {cost['prior_gmac'] + cost['decoder_gmac']:.0f} GMAC per {h}x{w} frame. "
            f"Not an edge model: for comparing the gss-edge models against the published one."
        )
        manifest = {
            "format": FORMAT,
            "name": name,
            "description": description,
            "purpose": "reference",
            "producer": {
                "name": "gss_convert",
                "version": __version__,
                "git_commit": _git_commit(),
            },
            "source": {
                "repository": GSS_REPO,
                "config": ds.configs.get(arch),
                "method": "GSS-FF",
                "backbone": spec.description,
                "checkpoint": Path(checkpoint).name,
                "checkpoint_sha256": ckpt_sha,
                "dvae_decoder": model.decoder_source,
                "dvae_repository": DALLE_REPO,
            },
            "dataset": {"name": ds.name},
            "metrics": {},
            "classes": [
                {"id": i, "name": n, "color": list(c)}
                for i, (n, c) in enumerate(zip(ds.class_names, ds.display_colors))
            ],
            "maskige": {
                "palette": [list(c) for c in ds.maskige_palette],
                "ignore_color": list(ds.ignore_color),
                "inverse": {"kind": "nearest"},
            },
            "input": {
                "height": h,
                "width": w,
                "channel_order": "RGB",
                "layout": "NCHW",
                "value_range": [0, 255],
                "mean": list(MEAN),
                "std": list(STD),
                "resize": "bilinear",
                "fit": "stretch",
            },
            "prior": {
                "file": "prior.onnx",
                "input": "image",
                "output": "tokens",
                "output_dtype": "int64",
                "grid": [h // TOKEN_STRIDE, w // TOKEN_STRIDE],
                "codebook_size": VOCAB_SIZE,
                "argmax_in_graph": True,
            },
            "decoder": {
                "file": "decoder.onnx",
                "input": "tokens",
                "output": "maskige",
                "upsample": TOKEN_STRIDE,
                "output_range": [0.0, 1.0],
            },
            "cost": cost,
            "variants": {},
            "files": {f: file_entry(out / f) for f in ("prior.onnx", "decoder.onnx")},
        }
        validate_manifest(manifest)
        (out / "model.json").write_text(json.dumps(manifest, indent=1) + "\n")
        (out / "README.md").write_text(package_readme(manifest, arch, ds))
        steps.update()
    finally:
        steps.close()
    log.info(
        "wrote %s in %.0f s: prior %.1f GMAC, decoder %.1f GMAC per frame",
        out,
        time.perf_counter() - t0,
        cost["prior_gmac"],
        cost["decoder_gmac"],
    )
    return manifest


def package_readme(manifest: dict, arch: str, ds: DatasetSpec) -> str:
    h, w = manifest["input"]["height"], manifest["input"]["width"]
    cost = manifest["cost"]
    src = manifest["source"]
    total = cost["prior_gmac"] + cost["decoder_gmac"]
    return f"""# {manifest["name"]}: official GSS-FF {arch}, {ds.name} (reference model)

**This is a reference model, not an edge model.** It is the published GSS-FF checkpoint of
[{GSS_REPO}](https://github.com/{GSS_REPO}) converted unchanged, so the gss runtime can run the
paper's model beside the gss-edge models on the same frames. It costs about **{total:.0f} GMAC per
{h}x{w} frame** (prior {cost["prior_gmac"]:.1f}, decoder {cost["decoder_gmac"]:.1f}); the bundled edge model
gss-edge-street8 needs 1.5 GMAC per 256x512 frame. Its graphs hold several hundred MB of weights, and the dVAE's
last stage holds 256-channel maps at twice the input size ({4096 * h * w / 1e9:.1f} GB each here):
expect tens of seconds to minutes per frame on a CPU and budget well over 10 GB of memory at
512x1024 (gss, tract, 2 threads: 87 s and 14 GB peak for one 512x1024 frame of the R101 model).

| | |
|---|---|
| config | `{src["config"]}` |
| backbone | {src["backbone"]} |
| checkpoint | `{src["checkpoint"]}` (sha256 `{src["checkpoint_sha256"][:16]}…`) |
| dVAE decoder | `{src["dvae_decoder"]}` ([{DALLE_REPO}](https://github.com/{DALLE_REPO})) |
| input | {h}x{w} RGB, mean {list(MEAN)}, std {list(STD)} (the config's `img_norm_cfg`) |
| tokens | {h // 4}x{w // 4} of 8192 (the head works at stride 4) |
| classes | {ds.num_classes} ({ds.name}); maskige colours are the config's `decode_head.palette`, ignore colour {list(ds.ignore_color)} |

## What the graphs do

- `prior.onnx`: backbone → GSS-FF head (1x1 conv per level, fusion at stride 4, Swin blocks,
  LayerNorm, 1x1 convs to 8192 token logits) → ArgMax: int64 tokens. The head's pixel branch (an
  auxiliary training loss) and the dVAE encoder (training targets) are not exported.
- `decoder.onnx`: the DALL-E dVAE decoder with its one-hot input and first 1x1 conv as a Gather of
  that conv's weight columns (the same numbers), sigmoid of the first three channels and
  `unmap_pixels`, as in GSS. The dVAE decodes at twice the input size; GSS then takes the nearest
  palette colour per pixel and mmseg resizes the one-hot classes to the input size (a 2x2 vote),
  and the graph does exactly that and outputs the winning class's palette colour, so the runtime's
  nearest-colour inverse returns the official class map at {h}x{w}.

## Differences from the official evaluation

- One {h}x{w} pass per frame (frames are resized to it); GSS evaluates Cityscapes by sliding
  768x768 windows over the 1024x2048 frame and ADE20K at its own resize, so the paper's mIoU is
  not expected exactly. Re-import with `--input-size` for another size.
- float32 throughout; GSS runs the dVAE decoder's convs in float16 on CUDA.
- No accuracy was measured at conversion (`metrics` is empty).
"""


__all__ = [
    "import_official",
    "load_official",
    "build_prior",
    "build_backbone",
    "expected_keys",
    "cost_gmac",
    "OfficialPrior",
    "LoadedModel",
]
