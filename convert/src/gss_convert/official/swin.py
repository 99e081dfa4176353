"""Swin Transformer as mmsegmentation 0.x builds it (`mmseg/models/backbones/swin.py`), with the same
parameter names, for the GSS Swin-L backbone and for the Swin blocks inside the GSS-FF head.

The behaviour follows mmseg rather than the original Swin code where they differ, because that is
what the checkpoints were trained with:
- windows never shrink on small maps: a map is zero-padded at the bottom/right to a multiple of
  the window (after norm1) and the padded cells take part in the attention unmasked;
- patch merging is mmseg's `nn.Unfold` (2x2 patches, channel-major: c·4 + 2·dy + dx), not the
  original concatenation of the four sub-grids;
- patch embedding and merging pad odd sizes at the bottom/right ("corner" adaptive padding).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def relative_position_index(window: int) -> torch.Tensor:
    """[w², w²] index into the (2w−1)² bias table: (Δrow + w−1)·(2w−1) + (Δcol + w−1) between every
    pair of cells of a window. mmseg stores this buffer in its checkpoints; the loader checks that
    the stored one equals this."""
    rows, cols = np.divmod(np.arange(window * window), window)
    d_row = rows[:, None] - rows[None, :] + window - 1
    d_col = cols[:, None] - cols[None, :] + window - 1
    return torch.from_numpy(d_row * (2 * window - 1) + d_col).long()


@lru_cache(maxsize=32)
def _shift_mask(h_pad: int, w_pad: int, window: int, shift: int) -> np.ndarray:
    """Additive attention mask [nW, w², w²] of the shifted windows: −100 between cells that came from
    different regions of the rolled map, 0 elsewhere (mmseg's values). A constant for a given padded
    size, so it is built in numpy and becomes an initializer of the exported graph."""
    region = np.zeros((h_pad, w_pad), np.float32)
    bounds = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    label = 0
    for hs in bounds:
        for ws in bounds:
            region[hs, ws] = label
            label += 1
    cells = region.reshape(h_pad // window, window, w_pad // window, window).transpose(0, 2, 1, 3)
    cells = cells.reshape(-1, window * window)
    return np.where(cells[:, None, :] != cells[:, :, None], np.float32(-100.0), np.float32(0.0))


class WindowMSA(nn.Module):
    """Multi-head self-attention inside one window with the learned relative position bias."""

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        self.num_heads, self.window = num_heads, window
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window - 1) ** 2, num_heads)
        )
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, n, c = x.shape
        qkv = (
            self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        )
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = q @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        attn = attn + bias.reshape(n, n, -1).permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            windows = mask.shape[0]
            attn = attn.reshape(b // windows, windows, self.num_heads, n, n) + mask[None, :, None]
            attn = attn.reshape(-1, self.num_heads, n, n)
        return self.proj((attn.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c))


class ShiftWindowMSA(nn.Module):
    """(Shifted-)window attention over a [B, H·W, C] token sequence; mmseg key prefix `attn.w_msa`."""

    def __init__(self, dim: int, num_heads: int, window: int, shift: int) -> None:
        super().__init__()
        self.window, self.shift = window, shift
        self.w_msa = WindowMSA(dim, num_heads, window)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        b, _, c = x.shape
        h, w = hw
        ws = self.window
        x = x.reshape(b, h, w, c)
        pad_b, pad_r = (-h) % ws, (-w) % ws
        if pad_b or pad_r:
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        hp, wp = h + pad_b, w + pad_r
        mask = None
        if self.shift:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
            mask = torch.from_numpy(_shift_mask(hp, wp, ws, self.shift)).to(
                device=x.device, dtype=x.dtype
            )
        windows = (
            x.reshape(b, hp // ws, ws, wp // ws, ws, c)
            .permute(0, 1, 3, 2, 4, 5)
            .reshape(-1, ws * ws, c)
        )
        windows = self.w_msa(windows, mask)
        x = (
            windows.reshape(b, hp // ws, wp // ws, ws, ws, c)
            .permute(0, 1, 3, 2, 4, 5)
            .reshape(b, hp, wp, c)
        )
        if self.shift:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        if pad_b or pad_r:
            x = x[:, :h, :w, :]
        return x.reshape(b, h * w, c)


class FFN(nn.Module):
    """mmcv's FFN with two layers: `layers.0.0` (Linear + GELU), `layers.1` (Linear)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(0.0)),
            nn.Linear(hidden, dim),
            nn.Dropout(0.0),
        )

    def forward(self, x: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        return identity + self.layers(x)


class SwinBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, hidden: int, window: int, shift: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ShiftWindowMSA(dim, num_heads, window, window // 2 if shift else 0)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = FFN(dim, hidden)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), hw)
        return self.ffn(self.norm2(x), identity=x)


class PatchMerging(nn.Module):
    """2x2 neighbourhoods → LayerNorm(4C) → Linear(4C → 2C, no bias), in mmseg's Unfold channel order."""

    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, out_dim, bias=False)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
        b, _, c = x.shape
        h, w = hw
        x = x.reshape(b, h, w, c).permute(0, 3, 1, 2)
        if h % 2 or w % 2:
            x = F.pad(x, (0, w % 2, 0, h % 2))
            h, w = h + h % 2, w + w % 2
        # nn.Unfold(2, stride=2) as a reshape (no im2col op in the graph): [B, C, 2, 2, H/2, W/2].
        x = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
        x = x.reshape(b, c * 4, (h // 2) * (w // 2)).transpose(1, 2)
        return self.reduction(self.norm(x)), (h // 2, w // 2)


class SwinBlockSequence(nn.Module):
    """One stage: blocks alternate plain and shifted windows; optional patch merging after it.
    Returns (x for the next stage, its hw, this stage's output, its hw) as mmseg does."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        hidden: int,
        depth: int,
        window: int,
        downsample: PatchMerging | None = None,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(dim, num_heads, hidden, window, shift=i % 2 == 1) for i in range(depth)
        )
        self.downsample = downsample

    def forward(self, x: torch.Tensor, hw: tuple[int, int]):
        for block in self.blocks:
            x = block(x, hw)
        if self.downsample is None:
            return x, hw, x, hw
        down, down_hw = self.downsample(x, hw)
        return down, down_hw, x, hw


class PatchEmbed(nn.Module):
    def __init__(self, embed_dim: int, patch: int) -> None:
        super().__init__()
        self.patch = patch
        self.projection = nn.Conv2d(3, embed_dim, patch, stride=patch)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        h, w = x.shape[-2:]
        pad_b, pad_r = (-h) % self.patch, (-w) % self.patch
        if pad_b or pad_r:
            x = F.pad(x, (0, pad_r, 0, pad_b))
        x = self.projection(x)
        hw = (x.shape[2], x.shape[3])
        return self.norm(x.flatten(2).transpose(1, 2)), hw


class SwinTransformer(nn.Module):
    """Returns the four stage outputs as NCHW maps (C, 2C, 4C, 8C channels at strides 4..32)."""

    def __init__(
        self,
        embed_dim: int = 192,
        depths: Sequence[int] = (2, 2, 18, 2),
        num_heads: Sequence[int] = (6, 12, 24, 48),
        window: int = 12,
        mlp_ratio: float = 4.0,
        patch: int = 4,
    ) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(embed_dim, patch)
        self.num_features = [embed_dim * 2**i for i in range(len(depths))]
        stages = []
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            dim = self.num_features[i]
            merge = PatchMerging(dim, 2 * dim) if i < len(depths) - 1 else None
            stages.append(SwinBlockSequence(dim, heads, int(mlp_ratio * dim), depth, window, merge))
        self.stages = nn.ModuleList(stages)
        for i, dim in enumerate(self.num_features):  # GSS uses out_indices (0, 1, 2, 3)
            self.add_module(f"norm{i}", nn.LayerNorm(dim))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x, hw = self.patch_embed(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x, hw, out, out_hw = stage(x, hw)
            out = getattr(self, f"norm{i}")(out)
            outs.append(
                out.reshape(-1, out_hw[0], out_hw[1], self.num_features[i])
                .permute(0, 3, 1, 2)
                .contiguous()
            )
        return outs


__all__ = ["SwinTransformer", "SwinBlockSequence", "relative_position_index"]
