"""Stage 1, the posterior q(z|c): a small VQ-VAE that turns maskiges into a grid of discrete tokens.

The decoder is shaped for the edge runtime (see docs/tract.md): channels are spent at the
token resolution, and every upsampling step is a conv at low resolution followed by pixel shuffle,
including the RGB head (12 channels at half resolution, then DepthToSpace).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import distributed


@dataclass
class VQVAEConfig:
    codebook_size: int = 512
    embed_dim: int = 64
    downsample: int = 8  # token grid = maskige size / downsample; power of two
    enc_channels: list[int] = field(default_factory=lambda: [16, 32, 64])
    dec_channels: int = 64  # at the token resolution
    dec_res_blocks: int = 1
    dec_up_channels: list[int] = field(
        default_factory=lambda: [32, 16]
    )  # after each ×2 but the last
    # Kernel size of the conv before each ×2 pixel shuffle, the RGB head last. 1×1 at the fine
    # levels keeps the decoder's MACs at the token resolution, where tract's matmuls run near peak.
    dec_up_kernels: list[int] = field(default_factory=lambda: [3, 3, 3])
    ema_decay: float = 0.99
    commitment: float = 0.25
    dead_code_threshold: float = 0.03  # a code used less than this (EMA count) is restarted


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


def _float32(x: torch.Tensor) -> torch.autocast:
    """Autocast off for `x`'s device (a no-op where none is on, e.g. training on the CPU)."""
    return torch.autocast(x.device.type, enabled=False)


class VectorQuantizerEMA(nn.Module):
    """Codebook with EMA updates and restarts of dead codes from current encoder outputs."""

    def __init__(self, num_codes: int, dim: int, decay: float, dead_threshold: float):
        super().__init__()
        self.num_codes, self.dim, self.decay, self.dead_threshold = (
            num_codes,
            dim,
            decay,
            dead_threshold,
        )
        embed = torch.randn(num_codes, dim) * 0.1
        self.register_buffer("embed", embed)
        self.register_buffer("cluster_size", torch.ones(num_codes))
        self.register_buffer("embed_sum", embed.clone())
        self.register_buffer(
            "usage", torch.zeros(num_codes)
        )  # EMA of per-batch code use, for reports
        self.frozen = False  # a codebook taken from an exported decoder is never updated

    def codes(self, z: torch.Tensor) -> torch.Tensor:
        """Nearest code index per cell: z [N, D, h, w] → long [N, h, w]."""
        with _float32(z):  # the distances in float32 also under CUDA autocast, as at evaluation
            flat = z.float().permute(0, 2, 3, 1).reshape(-1, self.dim)
            d = (
                flat.pow(2).sum(1, keepdim=True)
                - 2 * flat @ self.embed.t()
                + self.embed.pow(2).sum(1)[None]
            )
            return d.argmin(1).view(z.shape[0], z.shape[2], z.shape[3])

    def lookup(self, idx: torch.Tensor) -> torch.Tensor:
        """Token grid long [N, h, w] → embeddings [N, D, h, w]."""
        return F.embedding(idx, self.embed).permute(0, 3, 1, 2)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # Float32 also under CUDA autocast: a bf16 matmul in the EMA sums would round the codebook's
        # running statistics (and the sums that the ranks all-reduce) to 8 mantissa bits.
        with _float32(z):
            z = z.float()
            idx = self.codes(z)
            zq = self.lookup(idx)
            if self.training and not self.frozen:
                self._ema_update(z.detach(), idx)
            commit = F.mse_loss(z, zq.detach())
            zq = z + (zq - z).detach()  # straight-through
        return zq, idx, commit

    @torch.no_grad()
    def _ema_update(self, z: torch.Tensor, idx: torch.Tensor) -> None:
        flat = z.permute(0, 2, 3, 1).reshape(-1, self.dim).float()
        onehot = F.one_hot(idx.reshape(-1), self.num_codes).float()
        counts = onehot.sum(0)
        sums = onehot.t() @ flat
        cells = flat.shape[0]
        ranks = distributed.current()
        if ranks.enabled:
            # Under DDP each rank sees only its share of the global batch. The codebook is a buffer,
            # not a parameter, so DDP's gradient all-reduce never touches it: updating it from local
            # statistics would let the ranks' codebooks drift apart. Summing the counts and sums over
            # ranks (one all-reduce) gives every rank the single-process update of the global batch.
            stats = ranks.all_reduce_sum(torch.cat([counts[:, None], sums], 1))
            counts, sums = stats[:, 0], stats[:, 1:]
            cells *= ranks.world_size  # every rank has the same number of cells
        self.usage.mul_(self.decay).add_(
            counts / max(1, cells) * self.num_codes, alpha=1 - self.decay
        )
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        size = (self.cluster_size + 1e-5) / (n + self.num_codes * 1e-5) * n
        self.embed.copy_(self.embed_sum / size[:, None])
        # Restart codes nobody picks: move them onto random encoder outputs so the whole codebook works.
        dead = self.usage < self.dead_threshold
        n_dead = int(dead.sum())  # the same on every rank, as `usage` is
        if n_dead:
            if ranks.enabled:
                pick = self._global_pick(flat, n_dead, ranks)
            else:
                pick = flat[torch.randint(0, flat.shape[0], (n_dead,), device=flat.device)]
                pick = pick + torch.randn_like(pick) * 1e-3
            self.embed[dead] = pick
            self.embed_sum[dead] = pick
            self.cluster_size[dead] = 1.0
            self.usage[dead] = 1.0

    @staticmethod
    def _global_pick(flat: torch.Tensor, n_dead: int, ranks: distributed.DistEnv) -> torch.Tensor:
        """The restart draw of one process over the whole global batch, made under DDP.

        Rank 0 draws the rows (indices into the global batch, whose order is rank order) and the
        noise with the same random calls as one process. Each rank puts the rows it holds into a
        zero matrix, rank 0 adds the noise, and a sum over ranks assembles row + noise on every rank:
        the other terms are exact zeros, so the sum is the one process's row + noise to the bit, for
        n_dead x dim numbers sent instead of the whole batch's encoder outputs."""
        local = flat.shape[0]
        idx = torch.zeros(n_dead, dtype=torch.long, device=flat.device)
        noise = torch.zeros(n_dead, flat.shape[1], device=flat.device)
        if ranks.is_main:
            idx = torch.randint(0, local * ranks.world_size, (n_dead,), device=flat.device)
            noise = torch.randn_like(noise) * 1e-3
        ranks.broadcast_(idx)
        pick = noise
        mine = idx // local == ranks.rank
        pick[mine] = pick[mine] + flat[idx[mine] % local]
        return ranks.all_reduce_sum(pick)


class Encoder(nn.Module):
    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        steps = int(math.log2(cfg.downsample))
        chans = (cfg.enc_channels + [cfg.enc_channels[-1]] * steps)[:steps]
        layers: list[nn.Module] = []
        cin = 3
        for c in chans:
            layers += [nn.Conv2d(cin, c, 4, stride=2, padding=1), nn.ReLU(inplace=True)]
            cin = c
        layers += [
            nn.Conv2d(cin, cin, 3, padding=1),
            ResBlock(cin),
            nn.ReLU(inplace=True),
            nn.Conv2d(cin, cfg.embed_dim, 1),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    """Token embeddings [N, D, h, w] → maskige [N, 3, h·s, w·s] in [0, 1]."""

    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        steps = int(math.log2(cfg.downsample))
        layers: list[nn.Module] = [nn.Conv2d(cfg.embed_dim, cfg.dec_channels, 3, padding=1)]
        layers += [ResBlock(cfg.dec_channels) for _ in range(cfg.dec_res_blocks)]
        layers += [nn.ReLU(inplace=True)]
        cin = cfg.dec_channels
        ups = (cfg.dec_up_channels + [cfg.dec_up_channels[-1]] * steps)[: steps - 1]
        kernels = (list(cfg.dec_up_kernels) + [cfg.dec_up_kernels[-1]] * steps)[:steps]
        if any(k not in (1, 3) for k in kernels):
            raise ValueError(
                f"vqvae.dec_up_kernels {cfg.dec_up_kernels}: kernel sizes must be 1 or 3"
            )
        for c, k in zip(ups, kernels):
            layers += [
                nn.Conv2d(cin, c * 4, k, padding=k // 2),
                nn.PixelShuffle(2),
                nn.ReLU(inplace=True),
            ]
            cin = c
        layers += [nn.Conv2d(cin, 3 * 4, kernels[-1], padding=kernels[-1] // 2), nn.PixelShuffle(2)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # clamp, not sigmoid: the palette sits on the RGB cube's corners and centre, which clamp reaches
        return self.net(z).clamp(0.0, 1.0)


class VQVAE(nn.Module):
    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.quantizer = VectorQuantizerEMA(
            cfg.codebook_size, cfg.embed_dim, cfg.ema_decay, cfg.dead_code_threshold
        )
        self.decoder = Decoder(cfg)

    def forward(self, maskige: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z = self.encoder(maskige * 2 - 1)
        zq, idx, commit = self.quantizer(z)
        return self.decoder(zq), idx, commit

    @torch.no_grad()
    def encode(self, maskige: torch.Tensor) -> torch.Tensor:
        return self.quantizer.codes(self.encoder(maskige * 2 - 1))

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantizer.lookup(tokens))


class TokenDecoder(nn.Module):
    """What the runtime runs: tokens in, maskige out, the codebook as an embedding gather."""

    def __init__(self, vqvae: VQVAE):
        super().__init__()
        self.embed = nn.Parameter(vqvae.quantizer.embed.clone(), requires_grad=False)
        self.decoder = vqvae.decoder

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.decoder(F.embedding(tokens, self.embed).permute(0, 3, 1, 2))
