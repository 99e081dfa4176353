"""ResNetV1c as mmsegmentation 0.x builds it, with the same parameter names, so an mmseg checkpoint's
`backbone.*` tensors load into it unchanged.

V1c is ResNet-v1b (stride in the 3x3 conv) with a deep stem: three 3x3 convs (32, 32, 64 channels)
instead of one 7x7. GSS's R101 runs stages 3 and 4 at stride 8 with dilations 2 and 4, and with
`contract_dilation` the first block of a dilated stage uses half the dilation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

DEPTHS: dict[int, tuple[int, int, int, int]] = {
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}


class Bottleneck(nn.Module):
    """1x1 → 3x3 (stride, dilation) → 1x1 ×4, BN after each; mmseg names: conv1..3, bn1..3, downsample.0/1."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(
            planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False
        )
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        # mmseg's ResLayer adds the projection shortcut only where the shape changes.
        self.downsample = (
            nn.Sequential(
                nn.Conv2d(inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)
            )
            if stride != 1 or inplanes != out
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNetV1c(nn.Module):
    """Returns the four stage outputs (256, 512, 1024, 2048 channels for depth ≥ 50)."""

    def __init__(
        self,
        depth: int = 101,
        strides: Sequence[int] = (1, 2, 1, 1),
        dilations: Sequence[int] = (1, 1, 2, 4),
        contract_dilation: bool = True,
        stem_channels: int = 64,
        base_channels: int = 64,
    ) -> None:
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(
                f"ResNetV1c depth {depth}: only {sorted(DEPTHS)} (bottleneck variants) are built here"
            )
        half = stem_channels // 2
        # Indices 0..8 as in mmseg's nn.Sequential: conv, bn, relu three times.
        self.stem = nn.Sequential(
            nn.Conv2d(3, half, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(half),
            nn.ReLU(inplace=True),
            nn.Conv2d(half, half, 3, padding=1, bias=False),
            nn.BatchNorm2d(half),
            nn.ReLU(inplace=True),
            nn.Conv2d(half, stem_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(stem_channels),
            nn.ReLU(inplace=True),
        )
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = stem_channels
        for i, (blocks, stride, dilation) in enumerate(zip(DEPTHS[depth], strides, dilations)):
            planes = base_channels * 2**i
            first = dilation // 2 if contract_dilation and dilation > 1 else dilation
            layer = [Bottleneck(inplanes, planes, stride, first)]
            inplanes = planes * Bottleneck.expansion
            layer += [Bottleneck(inplanes, planes, 1, dilation) for _ in range(1, blocks)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*layer))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.stem(x))
        outs = []
        for i in range(4):
            x = getattr(self, f"layer{i + 1}")(x)
            outs.append(x)
        return outs


__all__ = ["ResNetV1c", "Bottleneck"]
