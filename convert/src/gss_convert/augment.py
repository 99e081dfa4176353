"""Training batches: random scale, crop, flip and colour jitter on in-memory samples."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .config import StageConfig
from .data.classes import IGNORE_INDEX
from .resize import resize_classes_torch, resize_image_torch


@dataclass(frozen=True)
class _Draw:
    """Every random number one augmented sample takes, drawn before any pixel is touched."""

    index: int  # which training sample
    size: tuple[int, int]  # (h, w) after the random scale
    offset: tuple[int, int]  # (y, x) of the crop in the scaled (padded) sample
    flip: bool
    jitter: tuple[float, float, float] | None  # brightness, contrast, saturation factors


class RandomBatcher:
    """Draws augmented batches from (image uint8 HxWx3, label uint8 HxW) pairs.

    Its only randomness is a numpy Generator, whose state goes into checkpoints so a resumed
    run sees the same batches it would have seen.

    With several training processes, `cfg.batch_size` is the global batch. Every rank holds the
    same Generator (same seed) and draws the whole global batch's random numbers, which are cheap,
    but augments only its own contiguous slice, `rank * b .. (rank + 1) * b` with
    b = batch_size / world_size, which is the costly part. The slices are disjoint and together are
    exactly the batch one process draws from the same seed, so DDP over W ranks sees the same data
    as one process, and a resumed run (same Generator state on every rank) the same batches.
    """

    def __init__(
        self,
        images: list[np.ndarray] | None,
        labels: list[np.ndarray],
        cfg: StageConfig,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ):
        if any(c % 8 for c in cfg.crop):
            raise ValueError(
                f"crop {cfg.crop}: both sides must be multiples of 8 (the token stride)"
            )
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} of {world_size} processes: not a rank")
        if cfg.batch_size % world_size:
            raise ValueError(
                f"batch_size {cfg.batch_size} is the global batch and must split evenly over "
                f"{world_size} training processes"
            )
        self.images, self.labels, self.cfg = images, labels, cfg
        self.rng = np.random.default_rng(seed)
        self.local_batch = cfg.batch_size // world_size
        self.shard = slice(rank * self.local_batch, (rank + 1) * self.local_batch)

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    def _draw(self, i: int) -> _Draw:
        """The random numbers of sample `i`, in the order this batcher has always drawn them."""
        ch, cw = self.cfg.crop
        h, w = self.labels[i].shape[:2]
        s = float(self.rng.uniform(*self.cfg.scale))
        nh, nw = max(1, round(h * s)), max(1, round(w * s))
        # a scaled sample smaller than the crop is padded up to it (see _make)
        y = int(self.rng.integers(0, max(nh, ch) - ch + 1))
        x = int(self.rng.integers(0, max(nw, cw) - cw + 1))
        flip = bool(self.rng.random() < 0.5)
        jitter = None
        if self.images is not None and self.cfg.color_jitter > 0:
            j = self.cfg.color_jitter
            b, c, sat = (float(self.rng.uniform(1 - j, 1 + j)) for _ in range(3))
            jitter = (b, c, sat)
        return _Draw(i, (nh, nw), (y, x), flip, jitter)

    def _make(self, d: _Draw) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Sample `d.index` scaled, padded, cropped, flipped and jittered as `d` says."""
        ch, cw = self.cfg.crop
        lab = torch.tensor(self.labels[d.index])[None, None].float()
        img = (
            None
            if self.images is None
            else torch.tensor(self.images[d.index]).permute(2, 0, 1)[None].float()
        )
        nh, nw = d.size
        # the runtime's resize (stretch), so training sees rescaled frames as inference makes them
        lab = resize_classes_torch(lab[:, 0], (nh, nw), "stretch")[:, None]
        if img is not None:
            img = resize_image_torch(img, (nh, nw), "stretch")
        ph, pw = max(0, ch - nh), max(0, cw - nw)
        if ph or pw:  # pad small scales: unlabeled border, so it never counts as a class
            lab = F.pad(lab, (0, pw, 0, ph), value=IGNORE_INDEX)
            if img is not None:
                img = F.pad(img, (0, pw, 0, ph), value=0.0)
        y, x = d.offset
        lab = lab[..., y : y + ch, x : x + cw]
        if img is not None:
            img = img[..., y : y + ch, x : x + cw]
        if d.flip:
            lab = lab.flip(-1)
            if img is not None:
                img = img.flip(-1)
        if img is not None and d.jitter is not None:
            img = self._jitter(img, d.jitter)
        return (None if img is None else img[0]), lab[0, 0].long()

    @staticmethod
    def _jitter(img: torch.Tensor, factors: tuple[float, float, float]) -> torch.Tensor:
        b, c, s = factors
        img = img * b
        mean = img.mean()
        img = (img - mean) * c + mean
        grey = img.mean(1, keepdim=True)
        img = (img - grey) * s + grey
        return img.clamp(0, 255)

    def next(self) -> tuple[torch.Tensor | None, torch.Tensor]:
        """This rank's slice of the next global batch (all of it in one process)."""
        idx = self.rng.integers(0, len(self.labels), self.cfg.batch_size)
        draws = [self._draw(int(i)) for i in idx]  # the global batch's: every rank draws alike
        pairs = [self._make(d) for d in draws[self.shard]]
        labels = torch.stack([p[1] for p in pairs])
        images = None if self.images is None else torch.stack([p[0] for p in pairs])
        return images, labels
