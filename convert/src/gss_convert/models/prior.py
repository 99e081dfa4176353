"""Stage 2, the prior p(z|x), and the discriminative baseline that shares its backbone and head.

Backbone: ImageNet MobileNetV2 (torchvision layout). Head: features at strides 8, 16 and 32 are
projected, upsampled to stride 8 and summed (a light FPN), then refined by a depthwise-separable conv.
The prior predicts token logits on the decoder's grid and, as in the paper, an auxiliary per-pixel
class map whose predictions fill unlabeled pixels before their maskige is encoded into targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from ..weights import mobilenet_v2_path

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class PriorConfig:
    head_channels: int = 128
    pretrained: bool = True
    frozen_blocks: int = 4   # MobileNetV2 features[:n] kept frozen (stem and stride-4 blocks)
    width_mult: float = 1.0  # < 1 only without pretrained weights (tiny test models)
    output_stride: int = 8   # must equal the VQ-VAE's downsample


# MobileNetV2 feature indices whose outputs are at strides 8, 16 and 32
_TAPS = {8: 6, 16: 13, 32: 17}


class Backbone(nn.Module):
    def __init__(self, pretrained: bool, frozen_blocks: int, width_mult: float = 1.0):
        super().__init__()
        if pretrained and width_mult != 1.0:
            raise ValueError("ImageNet weights exist for width_mult 1.0 only; set pretrained: false")
        net = torchvision.models.mobilenet_v2(weights=None, width_mult=width_mult)
        if pretrained:
            state = torch.load(mobilenet_v2_path(), map_location="cpu", weights_only=True)
            net.load_state_dict(state)
        self.features = net.features[:18]  # drop the final 1×1 conv to 1280 channels
        self.frozen_blocks = frozen_blocks
        for p in self.features[:frozen_blocks].parameters():
            p.requires_grad_(False)
        self.tap_channels = {s: self.features[i].out_channels for s, i in _TAPS.items()}

    def train(self, mode: bool = True) -> "Backbone":
        super().train(mode)
        # Small CPU batches make batch statistics noisy: keep ImageNet BN statistics throughout.
        for m in self.features.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        outs: dict[int, torch.Tensor] = {}
        tap_at = {idx: stride for stride, idx in _TAPS.items()}
        for i, block in enumerate(self.features):
            if i == self.frozen_blocks and self.frozen_blocks > 0 and torch.is_grad_enabled():
                x = x.detach()
            x = block(x)
            if i in tap_at:
                outs[tap_at[i]] = x
        return outs


def _conv_bn_relu(cin: int, cout: int, k: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class MultiScaleHead(nn.Module):
    """Strides 8/16/32 → one stride-8 feature map with `ch` channels."""

    def __init__(self, tap_channels: dict[int, int], ch: int):
        super().__init__()
        self.proj = nn.ModuleDict({str(s): _conv_bn_relu(c, ch) for s, c in tap_channels.items()})
        self.refine = nn.Sequential(_conv_bn_relu(ch, ch, 3, groups=ch), _conv_bn_relu(ch, ch))

    def forward(self, feats: dict[int, torch.Tensor]) -> torch.Tensor:
        base = self.proj["8"](feats[8])
        size = base.shape[-2:]
        for s in (16, 32):
            base = base + F.interpolate(self.proj[str(s)](feats[s]), size=size, mode="bilinear",
                                        align_corners=False)
        return self.refine(base)


class Normalize(nn.Module):
    """uint8-range RGB [N, 3, H, W] → ImageNet-normalised input; part of the exported graph."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Prior(nn.Module):
    """Image (0..255 floats) → token logits [N, codebook, H/8, W/8] and aux class logits at stride 8."""

    def __init__(self, cfg: PriorConfig, codebook_size: int, num_classes: int):
        super().__init__()
        if cfg.output_stride != 8:
            raise ValueError("the MobileNetV2 prior predicts tokens at stride 8; set downsample: 8")
        self.cfg = cfg
        self.normalize = Normalize()
        self.backbone = Backbone(cfg.pretrained, cfg.frozen_blocks, cfg.width_mult)
        self.head = MultiScaleHead(self.backbone.tap_channels, cfg.head_channels)
        self.token_logits = nn.Conv2d(cfg.head_channels, codebook_size, 1)
        self.aux_logits = nn.Conv2d(cfg.head_channels, num_classes, 1)

    def forward(self, image: torch.Tensor, with_aux: bool = True):
        f = self.head(self.backbone(self.normalize(image)))
        tokens = self.token_logits(f)
        return (tokens, self.aux_logits(f)) if with_aux else tokens


class PixelBaseline(nn.Module):
    """The discriminative baseline: same backbone and head, per-pixel class logits (stride 8, upsampled)."""

    def __init__(self, cfg: PriorConfig, num_classes: int):
        super().__init__()
        self.cfg = cfg
        self.normalize = Normalize()
        self.backbone = Backbone(cfg.pretrained, cfg.frozen_blocks, cfg.width_mult)
        self.head = MultiScaleHead(self.backbone.tap_channels, cfg.head_channels)
        self.classifier = nn.Conv2d(cfg.head_channels, num_classes, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(self.head(self.backbone(self.normalize(image))))
        return F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=False)
