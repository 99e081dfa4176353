"""`gss-convert import-official`: official GSS-FF checkpoints (fudan-zvg/GSS) → model packages.

No official weights reach the test machine, so the checkpoints here are random tensors laid out
exactly as the official ones. Their key names and shapes are written out below from the sources
(mmseg 0.x ResNetV1c / SwinTransformer / ConvModule / mmcv FFN, GSS's GenerativeSegHeadFF and
Dalle_VAE, openai/DALL-E's Decoder, Encoder and Conv2d with `w`/`b`), independently of the modules
in gss_convert.official, and the two are compared. Files are written in mmcv's container format
({'meta': ..., 'state_dict': ...}). Tensors whose values do not matter (the dVAE encoder, the
checkpoints of the refusal tests) are a 0-d zero expanded to the shape: right shape, one element
on disk.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gss_convert.official import CheckpointError, import_official, load_official
from gss_convert.official.dalle import DalleDecoder, OfficialTokenDecoder, official_classes
from gss_convert.official.importer import build_prior, cost_gmac, expected_keys
from gss_convert.official.specs import DATASETS
from gss_convert.runtime import OnnxSegmenter

REPO = Path(__file__).resolve().parents[2]
Shapes = dict[str, tuple[int, ...]]

# --- official layouts, from the sources -------------------------------------------------------------


def _bn(p: str, c: int) -> Shapes:
    return {
        f"{p}.weight": (c,),
        f"{p}.bias": (c,),
        f"{p}.running_mean": (c,),
        f"{p}.running_var": (c,),
        f"{p}.num_batches_tracked": (),
    }


def _ln(p: str, c: int) -> Shapes:
    return {f"{p}.weight": (c,), f"{p}.bias": (c,)}


def _linear(p: str, cin: int, cout: int, bias: bool = True) -> Shapes:
    return {f"{p}.weight": (cout, cin), **({f"{p}.bias": (cout,)} if bias else {})}


def _conv_module(
    p: str, cin: int, cout: int
) -> Shapes:  # mmcv ConvModule(norm_cfg=SyncBN): conv without bias
    return {f"{p}.conv.weight": (cout, cin, 1, 1), **_bn(f"{p}.bn", cout)}


def official_r101() -> Shapes:
    """mmseg ResNetV1c(depth=101): deep stem nn.Sequential (conv, bn, relu) x 3, then layer1..4 of
    Bottlenecks (conv1/bn1, conv2/bn2, conv3/bn3, downsample.0/1 on the first block)."""
    s: Shapes = {
        "stem.0.weight": (32, 3, 3, 3),
        **_bn("stem.1", 32),
        "stem.3.weight": (32, 32, 3, 3),
        **_bn("stem.4", 32),
        "stem.6.weight": (64, 32, 3, 3),
        **_bn("stem.7", 64),
    }
    inplanes = 64
    for i, blocks in enumerate((3, 4, 23, 3)):
        planes = 64 * 2**i
        for j in range(blocks):
            p, cin = f"layer{i + 1}.{j}", inplanes if j == 0 else planes * 4
            s.update(
                {
                    f"{p}.conv1.weight": (planes, cin, 1, 1),
                    **_bn(f"{p}.bn1", planes),
                    f"{p}.conv2.weight": (planes, planes, 3, 3),
                    **_bn(f"{p}.bn2", planes),
                    f"{p}.conv3.weight": (planes * 4, planes, 1, 1),
                    **_bn(f"{p}.bn3", planes * 4),
                }
            )
            if j == 0:
                s.update(
                    {
                        f"{p}.downsample.0.weight": (planes * 4, cin, 1, 1),
                        **_bn(f"{p}.downsample.1", planes * 4),
                    }
                )
        inplanes = planes * 4
    return s


def _swin_block(p: str, c: int, heads: int, window: int, hidden: int) -> Shapes:
    return {
        **_ln(f"{p}.norm1", c),
        f"{p}.attn.w_msa.relative_position_bias_table": ((2 * window - 1) ** 2, heads),
        f"{p}.attn.w_msa.relative_position_index": (window * window, window * window),
        **_linear(f"{p}.attn.w_msa.qkv", c, 3 * c),
        **_linear(f"{p}.attn.w_msa.proj", c, c),
        **_ln(f"{p}.norm2", c),
        **_linear(f"{p}.ffn.layers.0.0", c, hidden),
        **_linear(f"{p}.ffn.layers.1", hidden, c),
    }


def official_swin_l() -> Shapes:
    """mmseg SwinTransformer(embed_dims=192, depths=[2, 2, 18, 2], num_heads=[6, 12, 24, 48], window_size=12,
    out_indices=(0, 1, 2, 3)): patch_embed.projection/norm, stages.N.blocks.M, stages.N.downsample
    (PatchMerging: norm over 4C, reduction 4C → 2C without bias), norm0..3."""
    s: Shapes = {
        "patch_embed.projection.weight": (192, 3, 4, 4),
        "patch_embed.projection.bias": (192,),
        **_ln("patch_embed.norm", 192),
    }
    for i, (depth, heads) in enumerate(zip((2, 2, 18, 2), (6, 12, 24, 48))):
        c = 192 * 2**i
        for j in range(depth):
            s.update(_swin_block(f"stages.{i}.blocks.{j}", c, heads, 12, 4 * c))
        if i < 3:
            s.update(
                {
                    **_ln(f"stages.{i}.downsample.norm", 4 * c),
                    **_linear(f"stages.{i}.downsample.reduction", 4 * c, 2 * c, bias=False),
                }
            )
        s.update(_ln(f"norm{i}", c))
    return s


def official_head(in_channels: tuple[int, ...], swin_depth: int, num_classes: int) -> Shapes:
    """GenerativeSegHeadFF(channels=384, indice_seg_channel=512, indice_cls_channel=2048, swin_num_head=16,
    swin_window_size=7): convs / convs_pixel, fusion_conv(_pixel), transformer_block (SwinBlockSequence,
    feedforward 2 x 512), swin_ln, conv_before_seg, conv_seg (→ 8192), conv_seg_pixel (→ classes)."""
    s: Shapes = {}
    for i, c in enumerate(in_channels):
        s.update({**_conv_module(f"convs.{i}", c, 384), **_conv_module(f"convs_pixel.{i}", c, 384)})
    s.update(
        {
            **_conv_module("fusion_conv", 384 * 4, 512),
            **_conv_module("fusion_conv_pixel", 384 * 4, 384),
        }
    )
    for j in range(swin_depth):
        s.update(_swin_block(f"transformer_block.blocks.{j}", 512, 16, 7, 1024))
    s.update(
        {
            **_ln("swin_ln", 512),
            **_conv_module("conv_before_seg", 512, 2048),
            "conv_seg.weight": (8192, 2048, 1, 1),
            "conv_seg.bias": (8192,),
            "conv_seg_pixel.weight": (num_classes, 384, 1, 1),
            "conv_seg_pixel.bias": (num_classes,),
        }
    )
    return s


def _dalle_conv(p: str, cin: int, cout: int, k: int) -> Shapes:  # dall_e.utils.Conv2d: w, b
    return {f"{p}.w": (cout, cin, k, k), f"{p}.b": (cout,)}


def official_dalle_decoder() -> Shapes:
    """dall_e.decoder.Decoder(n_init=128, n_hid=256, n_blk_per_group=2, output_channels=3, vocab_size=8192)."""
    s = _dalle_conv("blocks.input", 8192, 128, 1)
    n_in = 128
    for g, width in enumerate((2048, 1024, 512, 256), start=1):
        for i in (1, 2):
            p, cin, hid = f"blocks.group_{g}.block_{i}", n_in if i == 1 else width, width // 4
            if cin != width:
                s.update(_dalle_conv(f"{p}.id_path", cin, width, 1))
            s.update(
                {
                    **_dalle_conv(f"{p}.res_path.conv_1", cin, hid, 1),
                    **_dalle_conv(f"{p}.res_path.conv_2", hid, hid, 3),
                    **_dalle_conv(f"{p}.res_path.conv_3", hid, hid, 3),
                    **_dalle_conv(f"{p}.res_path.conv_4", hid, width, 3),
                }
            )
        n_in = width
    s.update(_dalle_conv("blocks.output.conv", 256, 6, 1))
    return s


def official_dalle_encoder() -> Shapes:
    """dall_e.encoder.Encoder(n_hid=256, n_blk_per_group=2): only stored in GSS checkpoints, never used here."""
    s = _dalle_conv("blocks.input", 3, 256, 7)
    n_in = 256
    for g, width in enumerate((256, 512, 1024, 2048), start=1):
        for i in (1, 2):
            p, cin, hid = f"blocks.group_{g}.block_{i}", n_in if i == 1 else width, width // 4
            if cin != width:
                s.update(_dalle_conv(f"{p}.id_path", cin, width, 1))
            s.update(
                {
                    **_dalle_conv(f"{p}.res_path.conv_1", cin, hid, 3),
                    **_dalle_conv(f"{p}.res_path.conv_2", hid, hid, 3),
                    **_dalle_conv(f"{p}.res_path.conv_3", hid, hid, 3),
                    **_dalle_conv(f"{p}.res_path.conv_4", hid, width, 1),
                }
            )
        n_in = width
    s.update(_dalle_conv("blocks.output.conv", 2048, 8192, 1))
    return s


ARCH_LAYOUT = {
    "r101": (official_r101, (512, 256, 1024, 2048), 6),
    "swin-l": (official_swin_l, (384, 192, 768, 1536), 2),
}


def official_checkpoint_layout(arch: str, num_classes: int, with_dvae: bool = True) -> Shapes:
    backbone, in_channels, depth = ARCH_LAYOUT[arch]
    s = {f"backbone.{k}": v for k, v in backbone().items()}
    s.update(
        {f"decode_head.{k}": v for k, v in official_head(in_channels, depth, num_classes).items()}
    )
    if with_dvae:
        s.update({f"decode_head.d_vae.decoder.{k}": v for k, v in official_dalle_decoder().items()})
        s.update({f"decode_head.d_vae.encoder.{k}": v for k, v in official_dalle_encoder().items()})
    return s


# --- random weights in that layout ------------------------------------------------------------------


def mmseg_relative_position_index(window: int) -> torch.Tensor:
    """mmseg WindowMSA's buffer, computed its way (double_step_seq, then flip)."""
    seq1 = torch.arange(0, (2 * window - 1) * window, 2 * window - 1)
    seq2 = torch.arange(0, window, 1)
    coords = (seq1[:, None] + seq2[None, :]).reshape(1, -1)
    return (coords + coords.T).flip(1).contiguous()


def _placeholder(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.zeros(()).expand(shape)


def random_tensor(key: str, shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    """Values that keep activations in a sane range through 100 layers (so tokens vary across the
    grid and the parity checks mean something): He-scaled convs, BN near identity with the residual
    branch's last BN damped, LayerNorms near identity, 1/sqrt(fan-in) linears."""

    def randn(*s: int) -> torch.Tensor:
        return torch.randn(*s, generator=g)

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(shape, generator=g)

    if key.endswith("num_batches_tracked"):
        return torch.tensor(1000)
    if key.endswith("relative_position_index"):
        return mmseg_relative_position_index(int(round(shape[0] ** 0.5)))
    if key.endswith("relative_position_bias_table"):
        return randn(*shape) * 0.02
    if key.endswith("running_mean"):
        return randn(*shape) * 0.1
    if key.endswith("running_var"):
        return uniform(0.5, 1.5)
    is_bn = any(
        f"{n}.weight" in key
        for n in ("bn1", "bn2", "bn3", "bn", "downsample.1", "stem.1", "stem.4", "stem.7")
    )
    if key.endswith(".weight") and len(shape) == 1:  # BN or LayerNorm scale
        return (
            uniform(0.1, 0.3)
            if is_bn and (".bn3." in key or "downsample.1" in key)
            else uniform(0.8, 1.2)
        )
    if key.endswith(".bias") and len(shape) == 1:
        return randn(*shape) * 0.05
    if key.endswith(".b"):  # DALL-E conv bias
        return randn(*shape) * 0.05
    fan_in = int(np.prod(shape[1:]))
    if (
        key.endswith("decoder.blocks.input.w") or key == "blocks.input.w"
    ):  # token embeddings that differ
        return randn(*shape)
    if key.endswith(
        "blocks.output.conv.w"
    ):  # logits of std ~2: the sigmoid spreads over many colours
        return randn(*shape) / fan_in**0.5
    if len(shape) == 4:
        return randn(*shape) * (2.0 / fan_in) ** 0.5
    return randn(*shape) / fan_in**0.5  # linear


def make_checkpoint(
    path: Path,
    arch: str,
    dataset: str,
    seed: int = 0,
    with_dvae: bool = True,
    placeholders: bool = False,
    edit=None,
) -> dict[str, torch.Tensor]:
    """An mmcv-format checkpoint of random tensors in the official layout. `placeholders` makes every
    tensor a one-element placeholder (for the key checks); the dVAE encoder always is one."""
    ds = DATASETS[dataset]
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in official_checkpoint_layout(arch, ds.num_classes, with_dvae).items():
        if placeholders or key.startswith("decode_head.d_vae.encoder."):
            state[key] = (
                mmseg_relative_position_index(int(round(shape[0] ** 0.5)))
                if key.endswith("relative_position_index")
                else _placeholder(shape)
            )
        else:
            state[key] = random_tensor(key, shape, g)
    if edit is not None:
        edit(state)
    meta = {
        "mmseg_version": "0.29.1",
        "CLASSES": list(ds.class_names),
        "PALETTE": [list(c) for c in ds.display_colors],
        "config": f"_base_ = '{ds.configs.get(arch)}'",
        "iter": 80000,
    }
    torch.save({"meta": meta, "state_dict": state}, path)
    return state


# --- layout tests (cheap: modules built on the meta device) --------------------------------------------


def _shapes(state: dict[str, torch.Tensor]) -> Shapes:
    return {k: tuple(v.shape) for k, v in state.items()}


def _diff(ours: Shapes, official: Shapes) -> str:
    missing = sorted(set(official) - set(ours))[:5]
    extra = sorted(set(ours) - set(official))[:5]
    wrong = [k for k in sorted(set(ours) & set(official)) if ours[k] != official[k]][:5]
    return f"missing {missing}, extra {extra}, wrong shapes {wrong}"


def test_dalle_decoder_state_dict_equals_the_official_layout():
    with torch.device("meta"):
        ours = _shapes(DalleDecoder().state_dict())
    official = official_dalle_decoder()
    assert ours == official, _diff(ours, official)
    # 1 input conv, 4 groups x 2 blocks x 4 convs, 4 id_path convs, 1 output conv; w and b each
    assert len(official) == 2 * (1 + 32 + 4 + 1)


@pytest.mark.parametrize(
    "arch, dataset", [("r101", "cityscapes"), ("swin-l", "cityscapes"), ("swin-l", "ade20k")]
)
def test_backbone_and_head_keys_equal_the_official_layout(arch, dataset):
    k = DATASETS[dataset].num_classes
    ours = _shapes(expected_keys(arch, k))
    official = official_checkpoint_layout(arch, k, with_dvae=False)
    assert ours == official, _diff(ours, official)


def test_swin_pieces_match_mmseg():
    from gss_convert.official.swin import PatchMerging, _shift_mask, relative_position_index

    for w in (7, 12):
        assert torch.equal(relative_position_index(w), mmseg_relative_position_index(w))
    # PatchMerging's reshape is mmseg's nn.Unfold(2, stride=2) channel order
    torch.manual_seed(0)
    merge = PatchMerging(8, 16)
    x = torch.randn(2, 6 * 10, 8)
    unfolded = F.unfold(x.reshape(2, 6, 10, 8).permute(0, 3, 1, 2), 2, stride=2).transpose(1, 2)
    ref = merge.reduction(merge.norm(unfolded))
    out, hw = merge(x, (6, 10))
    assert hw == (3, 5) and torch.allclose(out, ref, atol=1e-6)
    # the shifted-window mask, built as mmseg builds it
    hp, wp, ws, shift = 14, 21, 7, 3
    img = torch.zeros(1, hp, wp, 1)
    cnt = 0
    for h in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
        for w in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
            img[:, h, w, :] = cnt
            cnt += 1
    win = img.view(1, hp // ws, ws, wp // ws, ws, 1).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws)
    diff = win.unsqueeze(1) - win.unsqueeze(2)
    ref = diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)
    assert torch.equal(torch.from_numpy(_shift_mask(hp, wp, ws, shift)), ref)


def test_token_gather_equals_the_one_hot_conv():
    """conv1x1(one_hot(t)) = W[:, t] + b: the Gather replacing the decoder's input layer is exact."""
    g = torch.Generator().manual_seed(1)
    dec = DalleDecoder().eval()
    with torch.no_grad():
        for k, v in dec.state_dict().items():
            v.copy_(random_tensor(k, tuple(v.shape), g))
        tokens = torch.randint(0, 8192, (1, 3, 4), generator=g)
        one_hot = F.one_hot(tokens, 8192).permute(0, 3, 1, 2).float()  # what Dalle_VAE.decode feeds
        ref, ours = dec(one_hot), dec.decode_tokens(tokens)
        emb_ref = dec.blocks.input(one_hot)
        assert (dec.embed(tokens) - emb_ref).abs().max() < 1e-5
    assert ours.shape == (1, 6, 24, 32)
    assert (ours - ref).abs().max() < 1e-4 * ref.abs().max()


def _conv_linear_macs(model: torch.nn.Module, x: torch.Tensor) -> int:
    """The MACs of the Conv2d and Linear modules alone, by forward hooks: an independent count
    that leaves out the attention matmuls."""
    total = 0

    def hook(m, _inp, out):
        nonlocal total
        per_output = m.in_features if isinstance(m, torch.nn.Linear) else m.weight[0].numel()
        total += out.numel() * per_output

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return total


def test_cost_counts_convolutions_linears_and_attention():
    cost = cost_gmac("r101", "cityscapes", (64, 64))
    conv_linear = _conv_linear_macs(build_prior("r101").eval(), torch.zeros(1, 3, 64, 64)) / 1e9
    # 6 head Swin blocks at 16x16 (padded to 21x21: 9 windows of 49) x 2 matmuls x 512 channels
    attention = 6 * 2 * 9 * 49 * 49 * 512 / 1e9
    assert abs(cost["prior_gmac"] - (conv_linear + attention)) < 0.01 + 1e-3 * conv_linear
    assert cost["decoder_gmac"] > 30  # the dVAE decoder at 16x16 tokens is ~38 GMAC


# --- the import itself (R101 at 64x64: a 0.5 GB checkpoint and a 0.5 GB package in tmp, deleted after) ---

SIZE = (64, 64)
TOKEN_AGREEMENT = (
    0.98  # random weights: a cell flips only where two of 8192 logits tie within fp32 noise
)
CLASS_AGREEMENT = 0.98


@pytest.fixture(scope="module")
def r101_import(tmp_path_factory):
    root = tmp_path_factory.mktemp("official")
    ckpt = root / "gss-ff_r101_768x768_80k_cityscapes_iter_80000.pth"
    make_checkpoint(ckpt, "r101", "cityscapes", seed=0)
    t0 = time.perf_counter()
    manifest = import_official(ckpt, "r101", "cityscapes", root / "pkg", input_size=SIZE)
    yield types.SimpleNamespace(
        ckpt=ckpt, pkg=root / "pkg", manifest=manifest, seconds=time.perf_counter() - t0
    )
    shutil.rmtree(
        root, ignore_errors=True
    )  # ~1 GB; pytest would keep it with the last runs' tmp dirs


def _image(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # smooth blobs rather than noise, so neighbouring cells see similar inputs, as in a photo
    small = rng.random((4, 4, 3))
    return (np.kron(small, np.ones((16, 16, 1))) * 255).astype(np.uint8)


def _normalise(img: np.ndarray, manifest: dict) -> np.ndarray:
    mean = np.array(manifest["input"]["mean"], np.float32)
    std = np.array(manifest["input"]["std"], np.float32)
    return ((img.astype(np.float32) - mean) / std).transpose(2, 0, 1)[None].copy()


def test_import_writes_a_valid_reference_package(r101_import):
    from gss_convert.manifest import check_package

    m = check_package(r101_import.pkg)
    assert m["prior"]["grid"] == [16, 16] and m["decoder"]["upsample"] == 4
    assert m["prior"]["argmax_in_graph"] is True and m["prior"]["output_dtype"] == "int64"
    assert m["prior"]["codebook_size"] == 8192
    assert m["input"]["mean"] == [123.675, 116.28, 103.53] and m["input"]["std"] == [
        58.395,
        57.12,
        57.375,
    ]
    assert len(m["classes"]) == 19 and m["classes"][13]["name"] == "car"
    assert m["maskige"]["ignore_color"] == [0, 0, 0] and m["maskige"]["palette"][0] == [
        128,
        64,
        128,
    ]
    assert m["purpose"] == "reference" and "not an edge model" in m["description"].lower()
    assert m["cost"]["prior_gmac"] > 10 and m["cost"]["decoder_gmac"] > 30
    import onnx

    def dims(value) -> list[int]:
        return [
            d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim
        ]

    # static shapes throughout (the decoder is traced on a smaller grid and declared at this size)
    prior, decoder = (
        onnx.load(str(r101_import.pkg / f), load_external_data=False)
        for f in ("prior.onnx", "decoder.onnx")
    )
    assert dims(prior.graph.input[0]) == [1, 3, 64, 64] and dims(prior.graph.output[0]) == [
        1,
        16,
        16,
    ]
    assert dims(decoder.graph.input[0]) == [1, 16, 16] and dims(decoder.graph.output[0]) == [
        1,
        3,
        64,
        64,
    ]
    assert prior.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert "ArgMax" in {n.op_type for n in prior.graph.node} and "Gather" in {
        n.op_type for n in decoder.graph.node
    }
    readme = (r101_import.pkg / "README.md").read_text()
    assert "reference model, not an edge model" in readme
    assert m["source"]["checkpoint_sha256"] and m["source"]["dvae_decoder"].endswith(
        "d_vae.decoder.*"
    )


def test_onnxruntime_matches_pytorch_and_the_official_decode(r101_import):
    import onnxruntime as ort

    m = r101_import.manifest
    model = load_official(r101_import.ckpt, "r101", "cityscapes")
    x = _normalise(_image(), m)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    prior = ort.InferenceSession(
        str(r101_import.pkg / "prior.onnx"), opts, providers=["CPUExecutionProvider"]
    )
    decoder = ort.InferenceSession(
        str(r101_import.pkg / "decoder.onnx"), opts, providers=["CPUExecutionProvider"]
    )
    tok_ort = prior.run(None, {"image": x})[0]
    with torch.no_grad():
        tok_pt = model.prior(torch.from_numpy(x)).numpy()
    assert tok_ort.dtype == np.int64 and tok_ort.shape == (1, 16, 16)
    agreement = float((tok_ort == tok_pt).mean())
    assert len(np.unique(tok_pt)) > 8, (
        "random weights gave a degenerate token grid; the check would be empty"
    )
    assert agreement >= TOKEN_AGREEMENT, agreement

    palette = torch.tensor(m["maskige"]["palette"], dtype=torch.float32) / 255
    graph = OfficialTokenDecoder(model.decoder, palette).eval()
    tokens = torch.from_numpy(tok_pt)
    maskige_ort = decoder.run(None, {"tokens": tok_pt})[0]
    with torch.no_grad():
        maskige_pt = graph(tokens).numpy()
        # the official path: one-hot tokens into the decoder, sigmoid, unmap, nearest colour at 8x,
        # bilinear one-hot resize to the input size, argmax
        one_hot = F.one_hot(tokens, 8192).permute(0, 3, 1, 2).float()
        rgb = torch.clamp((torch.sigmoid(model.decoder(one_hot)[:, :3]) - 0.1) / 0.8, 0, 1)
        official = official_classes(rgb, palette, SIZE)[0].numpy()
        rgb_gather = graph.rgb(tokens)
    assert maskige_ort.shape == (1, 3, 64, 64)
    maskige_diff = float(np.abs(maskige_ort - maskige_pt).max())
    rgb_diff = float((rgb_gather - rgb).abs().max())
    # classes from the ORT maskige by the runtime's rule (nearest palette colour)
    pal = palette.numpy()
    d = ((maskige_ort[0].transpose(1, 2, 0)[:, :, None, :] - pal[None, None]) ** 2).sum(-1)
    classes_ort = d.argmin(-1)
    class_agreement = float((classes_ort == official).mean())
    print(
        f"\nR101 import at 64x64 in {r101_import.seconds:.1f} s; tokens ORT=PyTorch {agreement:.4f} "
        f"({len(np.unique(tok_pt))} distinct); dVAE RGB gather vs one-hot max |diff| {rgb_diff:.2e}; "
        f"maskige ORT vs PyTorch max |diff| {maskige_diff:.2e}; classes ORT vs official decode {class_agreement:.4f} "
        f"({len(np.unique(official))} classes present)"
    )
    assert rgb_diff < 1e-4
    assert len(np.unique(official)) > 3, "degenerate maskige"
    assert class_agreement >= CLASS_AGREEMENT and maskige_diff <= 1.0
    assert (
        float((maskige_ort == maskige_pt).mean()) >= CLASS_AGREEMENT
    )  # palette colours: equal or a flipped cell


def _gss_binary() -> Path | None:
    env = os.environ.get("GSS_BIN")
    candidates = [Path(env)] if env else []
    candidates += [REPO / "target" / "release" / "gss", REPO / "target" / "debug" / "gss"]
    found = shutil.which("gss")
    candidates += [Path(found)] if found else []
    return next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


def test_gss_runtime_loads_and_runs_the_package(r101_import, tmp_path):
    from PIL import Image

    gss = _gss_binary()
    if gss is None:
        pytest.skip(
            "no gss binary (target/release/gss, target/debug/gss, GSS_BIN or PATH); cargo build --release"
        )
    info = subprocess.run(
        [str(gss), "--model", str(r101_import.pkg), "info"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert info.returncode == 0, info.stderr
    assert "8192" in info.stdout and "16" in info.stdout
    Image.fromarray(_image()).save(tmp_path / "frame.png")
    seg = subprocess.run(
        [
            str(gss),
            "--model",
            str(r101_import.pkg),
            "--threads",
            "2",
            "segment",
            str(tmp_path / "frame.png"),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert seg.returncode == 0, seg.stderr
    pngs = [p for p in (tmp_path / "out").glob("*.png") if "overlay" not in p.name]
    assert pngs, list((tmp_path / "out").iterdir())
    classes = np.array(Image.open(pngs[0]))
    assert classes.shape == (64, 64) and classes.max() < 19
    # tract (the runtime) against onnxruntime through the same pipeline (runtime.OnnxSegmenter)
    _, reference = OnnxSegmenter.load(r101_import.pkg, threads=2).segment(_image())
    agreement = float((classes == reference).mean())
    print(f"\ngss segment (tract) vs onnxruntime class maps: {agreement:.4f}")
    assert agreement >= CLASS_AGREEMENT


# --- refusals -----------------------------------------------------------------------------------------


def _pop(key: str):
    return lambda s: s.pop(key)


@pytest.mark.parametrize(
    "edit, arch, dataset, expect",
    [
        (
            _pop("backbone.layer3.7.conv2.weight"),
            "r101",
            "cityscapes",
            "missing key(s): backbone.layer3.7.conv2.weight",
        ),
        (
            lambda s: s.update({"decode_head.extra_head.weight": _placeholder((3, 3))}),
            "r101",
            "cityscapes",
            "unexpected key(s): decode_head.extra_head.weight",
        ),
        (
            lambda s: s.update({"backbone.stem.0.weight": _placeholder((64, 3, 7, 7))}),
            "r101",
            "cityscapes",
            "backbone.stem.0.weight: [64, 3, 7, 7] in the file, [32, 3, 3, 3] expected",
        ),
        (None, "swin-l", "cityscapes", "pass --arch r101"),
        (None, "r101", "ade20k", "ade20k has 150"),
        (
            lambda s: [
                s.pop(k) for k in [k for k in s if k.startswith("decode_head.d_vae.decoder.")]
            ],
            "r101",
            "cityscapes",
            "--dvae-decoder",
        ),
        (
            _pop("decode_head.d_vae.decoder.blocks.group_2.block_1.id_path.w"),
            "r101",
            "cityscapes",
            "missing key(s): blocks.group_2.block_1.id_path.w",
        ),
    ],
)
def test_refuses_checkpoints_it_does_not_understand_naming_the_keys(
    tmp_path, edit, arch, dataset, expect
):
    ckpt = tmp_path / "ckpt.pth"
    make_checkpoint(ckpt, "r101", "cityscapes", placeholders=True, edit=edit)
    with pytest.raises(CheckpointError) as err:
        load_official(ckpt, arch, dataset)
    assert expect in str(err.value), str(err.value)


def test_cli_reports_a_bad_checkpoint_and_an_unsupported_size(tmp_path, capsys):
    from gss_convert.cli import main

    ckpt = tmp_path / "ckpt.pth"
    make_checkpoint(
        ckpt, "r101", "cityscapes", placeholders=True, edit=_pop("decode_head.conv_seg.bias")
    )
    assert (
        main(
            [
                "import-official",
                str(ckpt),
                "--arch",
                "r101",
                "--dataset",
                "cityscapes",
                "--out",
                str(tmp_path / "p"),
            ]
        )
        == 2
    )
    assert "decode_head.conv_seg.bias" in capsys.readouterr().err
    assert (
        main(
            [
                "import-official",
                str(ckpt),
                "--arch",
                "r101",
                "--dataset",
                "cityscapes",
                "--out",
                str(tmp_path / "p"),
                "--input-size",
                "100x200",
            ]
        )
        == 2
    )
    assert "multiples of 32" in capsys.readouterr().err
    assert not (tmp_path / "p" / "model.json").exists()


# --- the dVAE decoder from its own file ----------------------------------------------------------------


def _fake_dall_e_modules() -> dict[str, types.ModuleType]:
    """A stand-in `dall_e` package whose classes have the official names, so torch.save pickles a
    whole decoder the way decoder.pkl is pickled (dall_e.decoder.Decoder, dall_e.utils.Conv2d, ...)."""
    from gss_convert.official import dalle

    pkg, dec_mod, utils_mod = (
        types.ModuleType(n) for n in ("dall_e", "dall_e.decoder", "dall_e.utils")
    )
    for mod, name, base in (
        (dec_mod, "Decoder", dalle.DalleDecoder),
        (dec_mod, "DecoderBlock", dalle.DecoderBlock),
        (utils_mod, "Conv2d", dalle.DalleConv2d),
    ):
        setattr(mod, name, type(name, (base,), {"__module__": mod.__name__, "__qualname__": name}))
    pkg.decoder, pkg.utils = dec_mod, utils_mod
    return {"dall_e": pkg, "dall_e.decoder": dec_mod, "dall_e.utils": utils_mod}


def _as_fake_official(module: torch.nn.Module, fakes: dict[str, types.ModuleType]) -> None:
    from gss_convert.official import dalle

    mapping = {
        dalle.DalleDecoder: fakes["dall_e.decoder"].Decoder,
        dalle.DecoderBlock: fakes["dall_e.decoder"].DecoderBlock,
        dalle.DalleConv2d: fakes["dall_e.utils"].Conv2d,
    }
    for m in module.modules():
        if type(m) in mapping:
            m.__class__ = mapping[type(m)]


@pytest.mark.parametrize("form", ["pickled-module", "state-dict", "prefixed-state-dict"])
def test_dvae_decoder_from_a_separate_file(tmp_path, monkeypatch, form):
    ckpt = tmp_path / "ckpt.pth"
    make_checkpoint(ckpt, "r101", "cityscapes", placeholders=True, with_dvae=False)
    g = torch.Generator().manual_seed(5)
    with torch.device("meta"):
        layout = DalleDecoder().state_dict()
    weights = {k: _placeholder(tuple(v.shape)) for k, v in layout.items()}
    weights["blocks.input.w"] = torch.randn(
        128, 8192, 1, 1, generator=g
    )  # a real tensor to follow through
    weights["blocks.output.conv.b"] = torch.randn(6, generator=g)
    path = tmp_path / "decoder.pkl"
    if form == "pickled-module":
        fakes = _fake_dall_e_modules()
        for name, mod in fakes.items():
            monkeypatch.setitem(sys.modules, name, mod)
        dec = DalleDecoder()
        dec.load_state_dict(
            weights, assign=True
        )  # keeps the one-element placeholders: a small file
        _as_fake_official(dec, fakes)
        torch.save(dec, path)
        for name in fakes:  # the converter must not need the dall_e package
            monkeypatch.delitem(sys.modules, name)
    elif form == "state-dict":
        torch.save(weights, path)
    else:
        torch.save({"state_dict": {f"decoder.{k}": v for k, v in weights.items()}}, path)
    model = load_official(ckpt, "r101", "cityscapes", dvae_decoder=path)
    assert torch.equal(model.decoder.blocks.input.w, weights["blocks.input.w"])
    assert torch.equal(model.decoder.blocks.output.conv.b, weights["blocks.output.conv.b"])
    assert model.decoder_source == "decoder.pkl"


def test_unpickler_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pkl"
    torch.save({"state_dict": Evil()}, path)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_official(path, "r101", "cityscapes")


# --- Swin-L end to end (the largest import: a 1 GB checkpoint and a 0.9 GB prior, deleted after) ------


def test_swin_l_ade20k_import_matches_pytorch_and_runs(tmp_path):
    import onnxruntime as ort
    from PIL import Image

    try:
        ckpt = tmp_path / "gss-ff_swin-l_512x512_160k_ade20k.pth"
        make_checkpoint(ckpt, "swin-l", "ade20k", seed=1)
        pkg = tmp_path / "pkg"
        m = import_official(ckpt, "swin-l", "ade20k", pkg, input_size=SIZE)
        assert (
            m["prior"]["grid"] == [16, 16]
            and len(m["maskige"]["palette"]) == 150
            and len(m["classes"]) == 150
        )
        assert m["maskige"]["ignore_color"] == [215, 216, 196] and m["classes"][0]["name"] == "wall"
        assert m["source"]["config"] == "configs/gss/ade20k/gss-ff_swin-l_512x512_160k_ade20k.py"
        model = load_official(ckpt, "swin-l", "ade20k")
        x = _normalise(_image(), m)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        tok_ort = ort.InferenceSession(
            str(pkg / "prior.onnx"), opts, providers=["CPUExecutionProvider"]
        ).run(None, {"image": x})[0]
        with torch.no_grad():
            tok_pt = model.prior(torch.from_numpy(x)).numpy()
        del model
        agreement = float((tok_ort == tok_pt).mean())
        print(f"\nSwin-L tokens ORT=PyTorch {agreement:.4f} ({len(np.unique(tok_pt))} distinct)")
        assert len(np.unique(tok_pt)) > 8 and agreement >= TOKEN_AGREEMENT
        gss = _gss_binary()
        if gss is not None:
            Image.fromarray(_image()).save(tmp_path / "frame.png")
            seg = subprocess.run(
                [
                    str(gss),
                    "--model",
                    str(pkg),
                    "--threads",
                    "2",
                    "segment",
                    str(tmp_path / "frame.png"),
                    "--out",
                    str(tmp_path / "out"),
                ],
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert seg.returncode == 0, seg.stderr
            classes = np.array(Image.open(tmp_path / "out" / "frame.png"))
            _, reference = OnnxSegmenter.load(pkg, threads=2).segment(_image())
            print(
                f"Swin-L gss segment (tract) vs onnxruntime class maps: {float((classes == reference).mean()):.4f}"
            )
            assert float((classes == reference).mean()) >= CLASS_AGREEMENT
    finally:  # pytest keeps the last runs' tmp dirs; 2 GB each is too much to leave behind
        shutil.rmtree(tmp_path, ignore_errors=True)
