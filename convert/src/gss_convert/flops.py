"""Counts multiply-accumulates and parameters of the parts that run at inference, by forward hooks.

Counted: convolutions, transposed convolutions and linear layers (the arithmetic that dominates);
element-wise ops, pooling, resizes, pixel shuffles and the codebook gather are left out and said so.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def count_macs(model: nn.Module, *inputs: torch.Tensor) -> int:
    total = 0

    def conv_hook(m: nn.Conv2d, _inp, out):
        nonlocal total
        kh, kw = m.kernel_size
        total += out.numel() * (m.in_channels // m.groups) * kh * kw

    def tconv_hook(m: nn.ConvTranspose2d, inp, _out):
        nonlocal total
        kh, kw = m.kernel_size
        total += inp[0].numel() * (m.out_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, _inp, out):
        nonlocal total
        total += out.numel() * m.in_features

    handles = []
    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            handles.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, nn.ConvTranspose2d):
            handles.append(mod.register_forward_hook(tconv_hook))
        elif isinstance(mod, nn.Linear):
            handles.append(mod.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            model.eval()
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return total


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters()) + sum(
        b.numel() for name, b in model.named_buffers() if name.endswith("embed"))


def inference_budget(cfg) -> list[dict]:
    """MACs and parameters per inference part for a config, on a batch of one at its input size."""
    from .models import VQVAE, PixelBaseline, Prior
    from .models.prior import reparameterize
    from .models.vqvae import TokenDecoder

    h, w = cfg.input_size
    s = cfg.vqvae.downsample
    prior_cfg = type(cfg.prior)(**{**cfg.prior.__dict__, "pretrained": False})
    num_classes = 8
    vq = VQVAE(cfg.vqvae)
    # Counted as exported: RepConv training branches folded into one conv each.
    prior = reparameterize(Prior(prior_cfg, cfg.vqvae.codebook_size, num_classes).eval())
    decoder = TokenDecoder(vq)
    image = torch.zeros(1, 3, h, w)
    tokens = torch.zeros(1, h // s, w // s, dtype=torch.long)

    class PriorTokensOnly(nn.Module):  # the aux head is training-only and not exported
        def __init__(self, p):
            super().__init__()
            self.p = p

        def forward(self, x):
            return self.p(x, with_aux=False)

    rows = []
    for name, model, args, params in [
        ("prior", PriorTokensOnly(prior), (image,),
         count_params(prior) - sum(p.numel() for p in prior.aux_logits.parameters())),
        ("decoder", decoder, (tokens,), count_params(decoder)),
        ("vqvae encoder (training only)", vq.encoder, (torch.zeros(1, 3, h, w),), count_params(vq.encoder)),
        ("discriminative baseline", reparameterize(PixelBaseline(prior_cfg, num_classes).eval()), (image,), None),
    ]:
        macs = count_macs(model, *args)
        rows.append({"part": name, "macs": macs, "params": params if params is not None else count_params(model)})
    return rows


def format_budget(rows: list[dict], input_size: tuple[int, int]) -> str:
    lines = [f"| part (input {input_size[0]}x{input_size[1]}) | GMAC | params (M) |", "|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['part']} | {r['macs'] / 1e9:.3f} | {r['params'] / 1e6:.3f} |")
    runtime = sum(r["macs"] for r in rows if r["part"] in ("prior", "decoder"))
    lines.append(f"| **prior + decoder (runtime)** | **{runtime / 1e9:.3f}** | |")
    return "\n".join(lines)
