"""The GSS-FF head (`GenerativeSegHeadFF`, fudan-zvg/GSS mmseg/models/decode_heads/
generative_segmentation_head_ff.py), inference path only, with the checkpoint's parameter names.

At test time the head: reorders the backbone levels (`in_index`), maps each to 384 channels (1x1
conv + BN + ReLU), resizes all to the stride-4 level (bilinear, align_corners=False), fuses them to
512 channels, runs a Swin block sequence (16 heads, window 7) and a LayerNorm over the fused map,
then 1x1 conv + BN + ReLU to 2048 channels and a 1x1 conv to the 8192 dVAE token logits. The argmax
of those logits is the token grid, H/4 x W/4.

The pixel branch (`convs_pixel`, `fusion_conv_pixel`, `conv_seg_pixel`) only gives an auxiliary loss
in training: `PixelBranch` exists so that a checkpoint's keys for it are checked, and is not exported.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .specs import (
    HEAD_CHANNELS,
    HEAD_CLS_CHANNELS,
    HEAD_IN_INDEX,
    HEAD_SEG_CHANNELS,
    HEAD_SWIN_HEADS,
    HEAD_SWIN_WINDOW,
    VOCAB_SIZE,
)
from .swin import SwinBlockSequence


class ConvModule(nn.Module):
    """mmcv ConvModule with a norm: conv (no bias) → BN → ReLU; keys `conv.weight`, `bn.*`."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _resize_to(x: torch.Tensor, size: torch.Size) -> torch.Tensor:
    # Bilinear to the same size is the identity; skipping it keeps a no-op Resize out of the graph.
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class GenerativeSegHeadFF(nn.Module):
    def __init__(
        self,
        in_channels: Sequence[int],
        swin_depth: int,
        in_index: Sequence[int] = HEAD_IN_INDEX,
        channels: int = HEAD_CHANNELS,
        seg_channels: int = HEAD_SEG_CHANNELS,
        cls_channels: int = HEAD_CLS_CHANNELS,
        swin_heads: int = HEAD_SWIN_HEADS,
        swin_window: int = HEAD_SWIN_WINDOW,
        vocab_size: int = VOCAB_SIZE,
        target_index: int = 1,
    ) -> None:
        super().__init__()
        self.in_index = tuple(in_index)
        self.target_index = (
            target_index  # `indice_channel_index`: the level whose size the fusion takes
        )
        self.convs = nn.ModuleList(ConvModule(c, channels) for c in in_channels)
        self.fusion_conv = ConvModule(channels * len(in_channels), seg_channels)
        self.transformer_block = SwinBlockSequence(
            seg_channels, swin_heads, seg_channels * 2, swin_depth, swin_window
        )
        self.swin_ln = nn.LayerNorm(seg_channels)
        self.conv_before_seg = ConvModule(seg_channels, cls_channels)
        self.conv_seg = nn.Conv2d(cls_channels, vocab_size, 1)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Backbone levels → token logits [B, 8192, h, w] at the stride-4 level's size."""
        inputs = [features[i] for i in self.in_index]
        size = inputs[self.target_index].shape[2:]
        x = self.fusion_conv(
            torch.cat([_resize_to(conv(f), size) for conv, f in zip(self.convs, inputs)], dim=1)
        )
        b, c, h, w = x.shape
        x, *_ = self.transformer_block(x.flatten(2).transpose(1, 2), (h, w))
        x = self.swin_ln(x).transpose(1, 2).reshape(b, c, h, w)
        return self.conv_seg(self.conv_before_seg(x))  # dropout before conv_seg is off at inference


class PixelBranch(nn.Module):
    """The training-only auxiliary branch; built only to check its keys and shapes."""

    def __init__(
        self, in_channels: Sequence[int], num_classes: int, channels: int = HEAD_CHANNELS
    ) -> None:
        super().__init__()
        self.convs_pixel = nn.ModuleList(ConvModule(c, channels) for c in in_channels)
        self.fusion_conv_pixel = ConvModule(channels * len(in_channels), channels)
        self.conv_seg_pixel = nn.Conv2d(channels, num_classes, 1)


__all__ = ["GenerativeSegHeadFF", "PixelBranch", "ConvModule"]
