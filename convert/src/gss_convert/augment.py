"""Training batches: random scale, crop, flip and colour jitter on in-memory samples."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .config import StageConfig
from .data.classes import IGNORE_INDEX
from .resize import resize_classes_torch, resize_image_torch


class RandomBatcher:
    """Draws augmented batches from (image uint8 HxWx3, label uint8 HxW) pairs.

    Its only randomness is a numpy Generator, whose state goes into checkpoints so a resumed
    run sees the same batches it would have seen.
    """

    def __init__(self, images: list[np.ndarray] | None, labels: list[np.ndarray], cfg: StageConfig,
                 seed: int):
        if any(c % 8 for c in cfg.crop):
            raise ValueError(f"crop {cfg.crop}: both sides must be multiples of 8 (the token stride)")
        self.images, self.labels, self.cfg = images, labels, cfg
        self.rng = np.random.default_rng(seed)

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    def _one(self, i: int) -> tuple[torch.Tensor | None, torch.Tensor]:
        ch, cw = self.cfg.crop
        lab = torch.tensor(self.labels[i])[None, None].float()
        img = None if self.images is None else torch.tensor(self.images[i]).permute(2, 0, 1)[None].float()
        s = float(self.rng.uniform(*self.cfg.scale))
        h, w = lab.shape[-2:]
        nh, nw = max(1, round(h * s)), max(1, round(w * s))
        # the runtime's resize (stretch), so training sees rescaled frames as inference makes them
        lab = resize_classes_torch(lab[:, 0], (nh, nw), "stretch")[:, None]
        if img is not None:
            img = resize_image_torch(img, (nh, nw), "stretch")
        ph, pw = max(0, ch - nh), max(0, cw - nw)
        if ph or pw:  # pad small scales: unlabeled border, so it never counts as a class
            lab = F.pad(lab, (0, pw, 0, ph), value=IGNORE_INDEX)
            if img is not None:
                img = F.pad(img, (0, pw, 0, ph), value=0.0)
        y = int(self.rng.integers(0, lab.shape[-2] - ch + 1))
        x = int(self.rng.integers(0, lab.shape[-1] - cw + 1))
        lab = lab[..., y:y + ch, x:x + cw]
        if img is not None:
            img = img[..., y:y + ch, x:x + cw]
        if self.rng.random() < 0.5:
            lab = lab.flip(-1)
            if img is not None:
                img = img.flip(-1)
        if img is not None and self.cfg.color_jitter > 0:
            img = self._jitter(img)
        return (None if img is None else img[0]), lab[0, 0].long()

    def _jitter(self, img: torch.Tensor) -> torch.Tensor:
        j = self.cfg.color_jitter
        b, c, s = (float(self.rng.uniform(1 - j, 1 + j)) for _ in range(3))
        img = img * b
        mean = img.mean()
        img = (img - mean) * c + mean
        grey = img.mean(1, keepdim=True)
        img = (img - grey) * s + grey
        return img.clamp(0, 255)

    def next(self) -> tuple[torch.Tensor | None, torch.Tensor]:
        idx = self.rng.integers(0, len(self.labels), self.cfg.batch_size)
        pairs = [self._one(int(i)) for i in idx]
        labels = torch.stack([p[1] for p in pairs])
        images = None if self.images is None else torch.stack([p[0] for p in pairs])
        return images, labels
