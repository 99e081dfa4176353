"""The DALL-E dVAE decoder (openai/DALL-E `dall_e/decoder.py`), written from its published structure
with the same parameter names, so `decoder.pkl`'s state dict (or the copy GSS checkpoints carry
under `decode_head.d_vae.decoder.`) loads into it unchanged.

Structure (defaults of the released decoder: n_init 128, n_hid 256, 2 blocks per group, vocab 8192):
`blocks.input` a 1x1 conv from the 8192-way one-hot to 128 channels; four groups of two residual
blocks at 8, 4, 2, 1 × n_hid channels with a nearest 2x upsample after each of the first three;
`blocks.output` ReLU + 1x1 conv to 6 channels (3 logit-Laplace means, 3 log-scales). Each block is
`id_path(x) + res_path(x) / n_layers²` (n_layers = 8), res_path = ReLU-conv 1x1, 3x3, 3x3, 3x3
at n_out/4 hidden channels; id_path a 1x1 conv where the width changes. The convs are DALL-E's own
`Conv2d` with parameters `w` and `b` (padding (k−1)/2).

GSS decodes a token grid as: one-hot → decoder → sigmoid of channels 0..2 → `unmap_pixels`
(x − ε)/(1 − 2ε) clamped to [0, 1], ε = 0.1 → ×255 → nearest palette colour, at 8x the token grid.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

from .specs import VOCAB_SIZE

LOGIT_LAPLACE_EPS = 0.1


class DalleConv2d(nn.Module):
    """DALL-E's conv: parameters `w` [out, in, k, k] and `b` [out], 'same' padding, stride 1."""

    def __init__(self, n_in: int, n_out: int, kw: int) -> None:
        super().__init__()
        self.kw = kw
        self.w = nn.Parameter(
            torch.empty(n_out, n_in, kw, kw).normal_(std=(n_in * kw * kw) ** -0.5)
        )
        self.b = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.w, self.b, padding=(self.kw - 1) // 2)


class DecoderBlock(nn.Module):
    def __init__(self, n_in: int, n_out: int, n_layers: int) -> None:
        super().__init__()
        n_hid = n_out // 4
        self.post_gain = 1.0 / n_layers**2
        self.id_path = DalleConv2d(n_in, n_out, 1) if n_in != n_out else nn.Identity()
        self.res_path = nn.Sequential(
            OrderedDict(
                [
                    ("relu_1", nn.ReLU()),
                    ("conv_1", DalleConv2d(n_in, n_hid, 1)),
                    ("relu_2", nn.ReLU()),
                    ("conv_2", DalleConv2d(n_hid, n_hid, 3)),
                    ("relu_3", nn.ReLU()),
                    ("conv_3", DalleConv2d(n_hid, n_hid, 3)),
                    ("relu_4", nn.ReLU()),
                    ("conv_4", DalleConv2d(n_hid, n_out, 3)),
                ]
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.id_path(x) + self.post_gain * self.res_path(x)


class DalleDecoder(nn.Module):
    """`forward(one_hot)` is the official decoder (6 channels at 8x); `decode_tokens(tokens)` is the
    same with the first 1x1 conv as a lookup of its weight columns."""

    group_count = 4

    def __init__(
        self,
        n_init: int = 128,
        n_hid: int = 256,
        n_blk_per_group: int = 2,
        output_channels: int = 3,
        vocab_size: int = VOCAB_SIZE,
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        n_layers = self.group_count * n_blk_per_group
        widths = [8 * n_hid, 4 * n_hid, 2 * n_hid, 1 * n_hid]
        groups: list[tuple[str, nn.Module]] = [("input", DalleConv2d(vocab_size, n_init, 1))]
        n_in = n_init
        for g, width in enumerate(widths, start=1):
            layers: list[tuple[str, nn.Module]] = []
            for i in range(n_blk_per_group):
                layers.append(
                    (f"block_{i + 1}", DecoderBlock(n_in if i == 0 else width, width, n_layers))
                )
            if g < self.group_count:
                layers.append(("upsample", nn.Upsample(scale_factor=2, mode="nearest")))
            groups.append((f"group_{g}", nn.Sequential(OrderedDict(layers))))
            n_in = width
        groups.append(
            (
                "output",
                nn.Sequential(
                    OrderedDict(
                        [("relu", nn.ReLU()), ("conv", DalleConv2d(n_hid, 2 * output_channels, 1))]
                    )
                ),
            )
        )
        self.blocks = nn.Sequential(OrderedDict(groups))

    def forward(self, one_hot: torch.Tensor) -> torch.Tensor:
        return self.blocks(one_hot)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """conv1x1(one_hot(t)) = W[:, t] + b: a row gather of the [vocab, n_init] weight, exactly the
        same numbers without the 8192-channel one-hot (an ONNX Gather)."""
        conv = self.blocks.input
        table = conv.w[:, :, 0, 0].t()  # [vocab, n_init]
        return F.embedding(tokens, table).permute(0, 3, 1, 2) + conv.b[None, :, None, None]

    def decode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        for name, module in self.blocks.named_children():
            if name != "input":
                x = module(x)
        return x


def unmap_pixels(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp((x - LOGIT_LAPLACE_EPS) / (1 - 2 * LOGIT_LAPLACE_EPS), 0, 1)


def official_classes(
    rgb: torch.Tensor, palette: torch.Tensor, out_size: tuple[int, int]
) -> torch.Tensor:
    """GSS's test path from the dVAE's RGB (in [0, 1], at 8x the token grid) to class ids at `out_size`:
    the nearest palette colour (squared distance, ×255 units) as a one-hot, bilinearly resized the
    way mmseg's `encode_decode` resizes the head's output to the input size, then the argmax.
    A reference for tests; the exported decoder does the same with a constant 2x2 vote."""
    p = palette.to(rgb.dtype) * 255.0
    d = ((rgb[:, None] * 255.0 - p[None, :, :, None, None]) ** 2).sum(2)  # [B, K, H8, W8]
    one_hot = F.one_hot(d.argmin(1), palette.shape[0]).permute(0, 3, 1, 2).to(rgb.dtype)
    return F.interpolate(one_hot, size=out_size, mode="bilinear", align_corners=False).argmax(1)


class OfficialTokenDecoder(nn.Module):
    """Export graph: tokens [1, h, w] int64 → maskige [1, 3, 4h, 4w] in [0, 1].

    The dVAE gives its RGB at 8x the token grid, twice the input size of the GSS head (tokens at
    stride 4). GSS then takes the nearest palette colour per pixel and mmseg resizes the one-hot
    classes bilinearly to the input size: for exactly 2x, a mean over each 2x2 block, i.e. a vote
    with ties to the lower class id. This graph does the same (a 1x1 conv scoring 2p·x − |p|², its
    ArgMax, a one-hot, a 2x2 average pool, an ArgMax) and outputs the winning class's palette colour,
    so the runtime's nearest-colour X⁻¹ gives exactly the official class at the input size. Averaging
    the RGB instead could land between two colours on a third class, which ADE20K's 150 close
    colours make likely at boundaries.
    """

    def __init__(self, decoder: DalleDecoder, palette: torch.Tensor) -> None:
        super().__init__()
        self.decoder = decoder
        k = palette.shape[0]
        self.register_buffer("palette", palette.float())  # [K, 3] in [0, 1]
        self.register_buffer("class_ids", torch.arange(k).reshape(1, k, 1, 1))
        self.scores = nn.Conv2d(3, k, 1)
        with torch.no_grad():
            self.scores.weight.copy_(2 * self.palette[:, :, None, None])
            self.scores.bias.copy_(-(self.palette**2).sum(1))
        self.scores.requires_grad_(False)

    def rgb(self, tokens: torch.Tensor) -> torch.Tensor:
        """The official decoded maskige, [B, 3, 8h, 8w] in [0, 1]."""
        return unmap_pixels(torch.sigmoid(self.decoder.decode_tokens(tokens)[:, :3]))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        fine = self.scores(self.rgb(tokens)).argmax(1, keepdim=True)  # [B, 1, 8h, 8w]
        votes = F.avg_pool2d((fine == self.class_ids).float(), 2)  # [B, K, 4h, 4w]
        classes = votes.argmax(1)  # ties: lowest id, as torch/mmseg
        return F.embedding(classes, self.palette).permute(0, 3, 1, 2)


__all__ = [
    "DalleDecoder",
    "OfficialTokenDecoder",
    "official_classes",
    "unmap_pixels",
    "LOGIT_LAPLACE_EPS",
]
