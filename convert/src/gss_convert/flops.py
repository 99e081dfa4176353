"""Counts multiply-accumulates and parameters of the parts that run at inference.

`count_macs` is torch's FlopCounterMode over one forward (its flops / 2): convolutions (transposed
and functional ones included), linear layers and matrix products (attention); element-wise ops,
pooling, resizes, pixel shuffles and gathers (the codebook) are left out. It is the one counter
here: the edge models' numbers (`macs`, `cost` in model.json) and the official imports' (built on
the meta device, so their TMAC graphs cost nothing to count).
"""

from __future__ import annotations

import torch
import torch.nn as nn


def count_macs(model: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-accumulates of one forward of `model` (in eval mode; each submodule's mode is restored after) on
    `inputs`, on whatever device they are: a model and inputs on the meta device run no arithmetic."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad(), counter:
            model(*inputs)
    finally:
        for m, training in modes:
            m.training = training
    return int(counter.get_total_flops() // 2)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters()) + sum(
        b.numel() for name, b in model.named_buffers() if name.endswith("embed")
    )


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
        (
            "prior",
            PriorTokensOnly(prior),
            (image,),
            count_params(prior) - sum(p.numel() for p in prior.aux_logits.parameters()),
        ),
        ("decoder", decoder, (tokens,), count_params(decoder)),
        (
            "vqvae encoder (training only)",
            vq.encoder,
            (torch.zeros(1, 3, h, w),),
            count_params(vq.encoder),
        ),
        (
            "discriminative baseline",
            reparameterize(PixelBaseline(prior_cfg, num_classes).eval()),
            (image,),
            None,
        ),
    ]:
        macs = count_macs(model, *args)
        rows.append(
            {
                "part": name,
                "macs": macs,
                "params": params if params is not None else count_params(model),
            }
        )
    return rows


def format_budget(rows: list[dict], input_size: tuple[int, int]) -> str:
    lines = [
        f"| part (input {input_size[0]}x{input_size[1]}) | GMAC | params (M) |",
        "|---|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['part']} | {r['macs'] / 1e9:.3f} | {r['params'] / 1e6:.3f} |")
    runtime = sum(r["macs"] for r in rows if r["part"] in ("prior", "decoder"))
    lines.append(f"| **prior + decoder (runtime)** | **{runtime / 1e9:.3f}** | |")
    return "\n".join(lines)
