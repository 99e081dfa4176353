"""Stage 2, the prior p(z|x), and the discriminative baseline that shares its backbone and head.

Backbones: ImageNet MobileNetV2 (torchvision layout), or `dense`, a plain stack of 3×3 convs
shaped for tract (docs/tract.md): a 4×4/4 patch stem, then channels spent at strides
8-32 in dense convs, no depthwise anywhere (tract's x86 depthwise kernel is its slowest path).
Dense blocks train as RepVGG-style branches (3×3, 1×1 and identity, each with BN) and are folded
into one 3×3 conv for export (`reparameterize`), so the extra branches cost nothing at run time.
Head: features at strides 8, 16 and 32 are projected, upsampled to stride 8 and summed (a light
FPN), then refined (depthwise-separable for MobileNetV2, one dense 3×3 for `dense`).
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
    frozen_blocks: int = 4  # MobileNetV2 features[:n] kept frozen (stem and stride-4 blocks)
    width_mult: float = 1.0  # < 1 only without pretrained weights (tiny test models)
    output_stride: int = 8  # must equal the VQ-VAE's downsample
    backbone: str = "mobilenet_v2"  # or "dense" (trained from scratch; `pretrained` must be false)
    dense_channels: tuple[int, int, int, int] = (32, 64, 128, 256)  # at strides 4, 8, 16, 32
    dense_blocks: tuple[int, int, int, int] = (0, 2, 3, 1)  # stride-1 blocks per stage
    # head upsampling: "bilinear", "nearest", or "d2s" (top-down 1×1 conv to 4× channels + pixel
    # shuffle, stride 32 → 16 → 8: tract runs Resize at 1 ms a node here, DepthToSpace at 0.05)
    upsample: str = "bilinear"


# MobileNetV2 feature indices whose outputs are at strides 8, 16 and 32
_TAPS = {8: 6, 16: 13, 32: 17}


class Backbone(nn.Module):
    def __init__(self, pretrained: bool, frozen_blocks: int, width_mult: float = 1.0):
        super().__init__()
        if pretrained and width_mult != 1.0:
            raise ValueError(
                "ImageNet weights exist for width_mult 1.0 only; set pretrained: false"
            )
        net = torchvision.models.mobilenet_v2(weights=None, width_mult=width_mult)
        if pretrained:
            state = torch.load(mobilenet_v2_path(), map_location="cpu", weights_only=True)
            net.load_state_dict(state)
        self.features = net.features[:18]  # drop the final 1×1 conv to 1280 channels
        self.frozen_blocks = frozen_blocks
        for p in self.features[:frozen_blocks].parameters():
            p.requires_grad_(False)
        self.tap_channels = {s: self.features[i].out_channels for s, i in _TAPS.items()}

    def train(self, mode: bool = True) -> Backbone:
        super().train(mode)
        # Small CPU batches make batch statistics noisy: keep ImageNet BN statistics throughout.
        # (_BatchNorm: also the SyncBatchNorm that multi-GPU training converts BatchNorm2d into.)
        for m in self.features.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
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


class RepConv(nn.Module):
    """3×3 conv + BN, plus a 1×1 conv + BN and (same shape) an identity BN, summed, then ReLU.
    `fused()` gives the one conv that computes the same function in eval mode."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.cin, self.cout, self.stride = cin, cout, stride
        self.conv3 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.conv1 = nn.Conv2d(cin, cout, 1, stride, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.bn_id = nn.BatchNorm2d(cout) if cin == cout and stride == 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn3(self.conv3(x)) + self.bn1(self.conv1(x))
        if self.bn_id is not None:
            y = y + self.bn_id(x)
        return F.relu(y)

    @staticmethod
    def _fold(kernel: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        return kernel * scale[:, None, None, None], bn.bias - bn.running_mean * scale

    @torch.no_grad()
    def fused(self) -> nn.Sequential:
        k3, b3 = self._fold(self.conv3.weight, self.bn3)
        k1, b1 = self._fold(F.pad(self.conv1.weight, [1, 1, 1, 1]), self.bn1)
        kernel, bias = k3 + k1, b3 + b1
        if self.bn_id is not None:
            ident = torch.zeros_like(self.conv3.weight)
            ident[torch.arange(self.cout), torch.arange(self.cin), 1, 1] = 1.0
            ki, bi = self._fold(ident, self.bn_id)
            kernel, bias = kernel + ki, bias + bi
        conv = nn.Conv2d(self.cin, self.cout, 3, self.stride, 1, bias=True)
        conv.weight.copy_(kernel)
        conv.bias.copy_(bias)
        return nn.Sequential(conv, nn.ReLU(inplace=True))


def reparameterize(module: nn.Module) -> nn.Module:
    """Replaces every RepConv in `module` (in place) by its fused conv; for export, in eval mode."""
    for name, child in module.named_children():
        if isinstance(child, RepConv):
            setattr(module, name, child.fused())
        else:
            reparameterize(child)
    return module


class DenseBackbone(nn.Module):
    """Patch stem (4×4, stride 4) then RepConv stages at strides 8, 16, 32; no depthwise convs."""

    def __init__(self, channels: tuple[int, ...], blocks: tuple[int, ...]):
        super().__init__()
        if len(channels) != 4 or len(blocks) != 4:
            raise ValueError(
                f"dense backbone: channels and blocks need 4 entries (strides 4-32), got "
                f"{list(channels)} and {list(blocks)}"
            )
        c4 = channels[0]
        self.stem = nn.Sequential(
            nn.Conv2d(3, c4, 4, 4, bias=False), nn.BatchNorm2d(c4), nn.ReLU(inplace=True)
        )
        stages = [nn.Sequential(*[RepConv(c4, c4) for _ in range(blocks[0])])]
        for cin, cout, n in zip(channels[:-1], channels[1:], blocks[1:]):
            stages.append(
                nn.Sequential(RepConv(cin, cout, 2), *[RepConv(cout, cout) for _ in range(n)])
            )
        self.stages = nn.ModuleList(stages)
        self.tap_channels = {8: channels[1], 16: channels[2], 32: channels[3]}

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        x = self.stem(x)
        outs: dict[int, torch.Tensor] = {}
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i:
                outs[4 << i] = x
        return outs


def make_backbone(cfg: PriorConfig) -> nn.Module:
    if cfg.backbone == "mobilenet_v2":
        return Backbone(cfg.pretrained, cfg.frozen_blocks, cfg.width_mult)
    if cfg.backbone == "dense":
        if cfg.pretrained:
            raise ValueError(
                "the dense backbone has no pretrained weights; set prior.pretrained: false"
            )
        return DenseBackbone(tuple(cfg.dense_channels), tuple(cfg.dense_blocks))
    raise ValueError(f"prior.backbone {cfg.backbone!r}: expected 'mobilenet_v2' or 'dense'")


def _conv_bn_relu(cin: int, cout: int, k: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class MultiScaleHead(nn.Module):
    """Strides 8/16/32 → one stride-8 feature map with `ch` channels."""

    def __init__(
        self, tap_channels: dict[int, int], ch: int, dense: bool = False, upsample: str = "bilinear"
    ):
        super().__init__()
        if upsample not in ("bilinear", "nearest", "d2s"):
            raise ValueError(
                f"prior.upsample {upsample!r}: expected 'bilinear', 'nearest' or 'd2s'"
            )
        self.upsample = upsample
        self.proj = nn.ModuleDict({str(s): _conv_bn_relu(c, ch) for s, c in tap_channels.items()})
        if upsample == "d2s":
            self.up = nn.ModuleDict({str(s): nn.Conv2d(ch, ch * 4, 1) for s in (16, 32)})
        if dense:
            self.refine = _conv_bn_relu(ch, ch, 3)
        else:
            self.refine = nn.Sequential(_conv_bn_relu(ch, ch, 3, groups=ch), _conv_bn_relu(ch, ch))

    def forward(self, feats: dict[int, torch.Tensor]) -> torch.Tensor:
        if self.upsample == "d2s":
            top = self.proj["32"](feats[32])
            for s in (16, 8):
                top = self.proj[str(s)](feats[s]) + F.pixel_shuffle(self.up[str(2 * s)](top), 2)
            return self.refine(top)
        base = self.proj["8"](feats[8])
        size = base.shape[-2:]
        for s in (16, 32):
            up = self.proj[str(s)](feats[s])
            if self.upsample == "nearest":
                base = base + F.interpolate(up, size=size, mode="nearest")
            else:
                base = base + F.interpolate(up, size=size, mode="bilinear", align_corners=False)
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
        self.backbone = make_backbone(cfg)
        self.head = MultiScaleHead(
            self.backbone.tap_channels, cfg.head_channels, cfg.backbone == "dense", cfg.upsample
        )
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
        self.backbone = make_backbone(cfg)
        self.head = MultiScaleHead(
            self.backbone.tap_channels, cfg.head_channels, cfg.backbone == "dense", cfg.upsample
        )
        self.classifier = nn.Conv2d(cfg.head_channels, num_classes, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(self.head(self.backbone(self.normalize(image))))
        return F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=False)
