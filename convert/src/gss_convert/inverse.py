"""GSS-FT: a trained maskige inverse X⁻¹ (maskige → class logits), fitted after stage 2.

The paper's GSS-FF maps each decoded pixel to the nearest palette colour; GSS-FT learns X⁻¹ from
the maskiges the model actually decodes. Here the training data are exactly what the runtime sees:
a package's own `prior.onnx` and `decoder.onnx`, run by onnxruntime over a dataset split
(`decode_split`), paired with the ground-truth labels (255 ignored).

The network (`TrainedInverse`) stays per-pixel-ish and cheap, because the runtime runs it on one
CPU thread every frame at full resolution: a 1×1 "palette" conv that starts as the nearest-colour
scores (2 p_k·x − |p_k|², times a temperature), plus optionally a residual branch (a k×k conv to a
few channels, ReLU, optional 1×1 layers, a 1×1 conv to the class logits) whose last layer starts
at zero, so training starts exactly at GSS-FF. Cross-entropy fits pixel accuracy, so after it
`calibrate_biases` moves each class's logit by the offset that maximises mIoU on training pixels
(coordinate ascent; the offsets fold into the conv's bias). On street8 the palette conv alone
(24 MAC per pixel) did best; a 3×3 branch of 16 channels (0.077 GMAC) or 5×5 + 1×1 (0.21) did no
better (docs/crossdomain.md), so the default has none. The exported graph ends with the argmax: maskige
f32 [1, 3, H, W] in the decoder's output range → int64 class ids [1, H, W], the contract of
`"inverse": {"kind": "onnx"}` (docs/ARCHITECTURE.md); a graph that is the palette conv alone is
installed as `"inverse": {"kind": "linear"}` instead, its weights in model.json, which the runtime
runs at the cost of nearest colour. The argmax is an element-wise chain by
default (`InverseClasses`), which tract runs several times faster than an ArgMax node.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .data.classes import IGNORE_INDEX
from .flops import count_macs
from .maskige import nearest_planes, nearest_scores, palette_in_range
from .metrics import ConfusionMatrix
from .utils import log


@dataclass
class InverseConfig:
    hidden: int = 0  # channels of the residual branch (0, the default: the palette conv alone)
    kernel: int = 3  # its first conv's kernel (1: purely per pixel)
    layers: int = 0  # extra 1×1 hidden→hidden layers
    temperature: float = 8.0  # the palette conv starts as temperature × nearest-colour scores
    iters: int = 3000
    batch_size: int = 16
    crop: int = 96  # square training crops (the full maskige is used when smaller)
    lr: float = 5e-3
    weight_decay: float = 1e-4
    warmup_iters: int = 100
    seed: int = 0
    log_every: int = 250
    argmax: str = "chain"  # how the exported graph takes the argmax (InverseClasses)
    class_weight_power: float = 0.0  # cross-entropy weight frequency^-power (0: unweighted)
    calibrate: bool = True  # then per-class logit offsets that maximise train mIoU


class TrainedInverse(nn.Module):
    """Maskige [N, 3, H, W] → class logits [N, K, H, W]; see the module docstring."""

    def __init__(self, palette: torch.Tensor, cfg: InverseConfig) -> None:
        super().__init__()
        k = palette.shape[0]
        self.palette = nn.Conv2d(3, k, 1)
        weight, bias = nearest_planes(palette)
        with torch.no_grad():
            self.palette.weight.copy_(cfg.temperature * weight[:, :, None, None])
            self.palette.bias.copy_(cfg.temperature * bias)
        self.branch = None
        if cfg.hidden > 0:
            layers: list[nn.Module] = [
                nn.Conv2d(3, cfg.hidden, cfg.kernel, padding=cfg.kernel // 2),
                nn.ReLU(),
            ]
            for _ in range(cfg.layers):
                layers += [nn.Conv2d(cfg.hidden, cfg.hidden, 1), nn.ReLU()]
            last = nn.Conv2d(cfg.hidden, k, 1)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            self.branch = nn.Sequential(*layers, last)

    def forward(self, maskige: torch.Tensor) -> torch.Tensor:
        logits = self.palette(maskige)
        return logits if self.branch is None else logits + self.branch(maskige)


ARGMAX_FORMS = ("chain", "node")


class InverseClasses(nn.Module):
    """The exported graph: logits → argmax over the classes, int64 class ids [N, H, W].

    `argmax="node"` is one ONNX ArgMax over the channel axis. `"chain"` (the default) computes the
    same ids with K − 1 element-wise steps (Greater, Max, Where: the running best logit and its
    class; a strict `>` keeps the first of equal logits, as ArgMax does): tract runs an ArgMax over
    the 8 channels of a 512×256 map in 19 ms, 1.7× the bundled decoder's time, the chain in
    1.9 ms (`gss bench --threads 1`, docs/crossdomain.md)."""

    def __init__(self, inverse: nn.Module, argmax: str = "chain") -> None:
        super().__init__()
        if argmax not in ARGMAX_FORMS:
            raise ValueError(f"argmax {argmax!r}: expected one of {', '.join(ARGMAX_FORMS)}")
        self.inverse, self.argmax = inverse, argmax

    def forward(self, maskige: torch.Tensor) -> torch.Tensor:
        logits = self.inverse(maskige)
        if self.argmax == "node":
            return torch.argmax(logits, dim=1)
        parts = torch.split(logits, 1, dim=1)
        best, ids = parts[0], torch.tensor(0, dtype=torch.int64)  # scalars broadcast: no shape ops
        for k in range(1, len(parts)):
            better = parts[k] > best
            if k + 1 < len(parts):
                best = torch.maximum(best, parts[k])
            ids = torch.where(better, torch.tensor(k, dtype=torch.int64), ids)
        return ids.squeeze(1)


# ------------------------------------------------------------------------------------------- data


def _fingerprint(package: Path, data: Path, split: str, max_images: int | None) -> dict:
    manifest = json.loads((Path(package) / "model.json").read_text())
    files = manifest["files"]
    return {
        "prior": files[manifest["prior"]["file"]]["sha256"],
        "decoder": files[manifest["decoder"]["file"]]["sha256"],
        "data": str(Path(data).resolve()),
        "split": split,
        "max_images": max_images,
    }


def decode_split(
    package: Path,
    data: Path,
    split: str = "train",
    max_images: int | None = None,
    threads: int = 0,
    cache: Path | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The package's decoded maskiges over a split, as the runtime computes them (onnxruntime on its
    prior and decoder, the runtime's stretch-bilinear preprocessing), and the labels at the model's
    size: (float16 [N, 3, h, w] in the decoder's output range, uint8 [N, h, w] with 255 = ignore).

    With `cache` (an .npz path) the arrays are stored there and reused while the package's graphs,
    the data and the split are the same."""
    from tqdm import tqdm

    from .data.datasets import open_dataset
    from .resize import resize_classes
    from .runtime import OnnxSegmenter

    key = _fingerprint(package, data, split, max_images)
    if cache is not None and Path(cache).is_file():
        with np.load(cache, allow_pickle=False) as z:
            if json.loads(str(z["key"])) == key:
                log.info("decoded maskiges of %s [%s] from %s", data, split, cache)
                return z["maskiges"], z["labels"]
    seg = OnnxSegmenter.load(package, threads=threads)
    h, w = seg.input_size
    ds = open_dataset(data, split)
    n = len(ds) if max_images is None else min(len(ds), max_images)
    maskiges = np.empty((n, 3, h, w), np.float16)
    labels = np.empty((n, h, w), np.uint8)
    dec = seg.manifest["decoder"]
    for i in tqdm(range(n), desc=f"decode {split}", dynamic_ncols=True, disable=None):
        s = ds[i]
        tokens = seg.tokens(s.image, "stretch")
        maskiges[i] = seg.decoder.run(None, {dec["input"]: tokens})[0][0]
        lab = s.label if s.label.shape == (h, w) else resize_classes(s.label, (h, w), "stretch")
        labels[i] = lab
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(cache).with_suffix(".tmp.npz")
        np.savez(tmp, maskiges=maskiges, labels=labels, key=json.dumps(key))
        tmp.replace(cache)
    return maskiges, labels


# --------------------------------------------------------------------------------------- training


def _crops(
    rng: np.random.Generator, maskiges: np.ndarray, labels: np.ndarray, n: int, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    _, _, h, w = maskiges.shape
    ch, cw = min(size, h), min(size, w)
    idx = rng.integers(0, len(maskiges), n)
    ys, xs = rng.integers(0, h - ch + 1, n), rng.integers(0, w - cw + 1, n)
    x = np.stack(
        [maskiges[i, :, y : y + ch, x0 : x0 + cw] for i, y, x0 in zip(idx, ys, xs)]
    ).astype(np.float32)
    t = np.stack([labels[i, y : y + ch, x0 : x0 + cw] for i, y, x0 in zip(idx, ys, xs)]).astype(
        np.int64
    )
    return torch.from_numpy(x), torch.from_numpy(t)


def fit_inverse(
    maskiges: np.ndarray,
    labels: np.ndarray,
    palette: torch.Tensor,
    cfg: InverseConfig,
    progress: bool = True,
) -> tuple[TrainedInverse, list[float]]:
    """Cross-entropy of TrainedInverse against the labels (255 ignored) on random crops; AdamW,
    linear warmup and cosine decay. Returns the model (eval mode) and the loss per iteration."""
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = TrainedInverse(palette, cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def factor(it: int) -> float:
        if it < cfg.warmup_iters:
            return (it + 1) / cfg.warmup_iters
        p = (it - cfg.warmup_iters) / max(1, cfg.iters - cfg.warmup_iters)
        return 0.5 * (1 + np.cos(np.pi * min(1.0, p)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    weight = None
    if cfg.class_weight_power:
        k = palette.shape[0]
        counts = np.bincount(labels[::4].reshape(-1), minlength=256)[:k].astype(np.float64)
        wk = np.maximum(counts / max(1.0, counts.sum()), 1e-4) ** -cfg.class_weight_power
        weight = torch.tensor(wk / wk.mean(), dtype=torch.float32)
    model.train()
    losses: list[float] = []
    running = None
    for it in tqdm(
        range(cfg.iters), desc="inverse", dynamic_ncols=True, disable=None if progress else True
    ):
        x, t = _crops(rng, maskiges, labels, cfg.batch_size, cfg.crop)
        if not (t != IGNORE_INDEX).any():
            continue
        loss = F.cross_entropy(model(x), t, weight=weight, ignore_index=IGNORE_INDEX)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        running = losses[-1] if running is None else 0.9 * running + 0.1 * losses[-1]
        if (it + 1) % cfg.log_every == 0 or it + 1 == cfg.iters:
            log.info(
                "inverse it %d/%d lr %.2e ce=%.4f",
                it + 1,
                cfg.iters,
                sched.get_last_lr()[0],
                running,
            )
    model.eval()
    if cfg.calibrate:
        every = max(1, len(maskiges) // 400)  # 400 images give the pixels plenty of variety
        offsets, before, after = calibrate_biases(
            model, maskiges[::every], labels[::every], palette.shape[0], seed=cfg.seed
        )
        with torch.no_grad():
            model.palette.bias += offsets
        log.info(
            "inverse: per-class logit offsets %s: mIoU on sampled train pixels %.2f -> %.2f",
            [round(float(v), 2) for v in offsets],
            before,
            after,
        )
    return model, losses


@torch.no_grad()
def score(
    inverse: nn.Module, maskiges: np.ndarray, labels: np.ndarray, num_classes: int, batch: int = 8
) -> ConfusionMatrix:
    """Confusion matrix of an inverse (logits module) over decoded maskiges at the model's size."""
    cm = ConfusionMatrix(num_classes)
    for i in range(0, len(maskiges), batch):
        x = torch.from_numpy(maskiges[i : i + batch].astype(np.float32))
        cm.update(inverse(x).argmax(1).numpy().astype(np.uint8), labels[i : i + batch])
    return cm


def _miou_from(pred: torch.Tensor, target: torch.Tensor, k: int) -> float:
    cm = torch.bincount(target * k + pred, minlength=k * k).reshape(k, k).double()
    tp = cm.diag()
    union = cm.sum(0) + cm.sum(1) - tp
    present = union > 0
    return float((tp[present] / union[present]).mean()) * 100


@torch.no_grad()
def calibrate_biases(
    inverse: nn.Module,
    maskiges: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    pixels: int = 2_000_000,
    steps: tuple[float, ...] = (1.0, 0.5, 0.25, 0.1),
    seed: int = 0,
    batch: int = 8,
) -> tuple[torch.Tensor, float, float]:
    """Per-class offsets added to the logits that maximise mIoU (not the pixel accuracy that
    cross-entropy optimises) on `pixels` labelled pixels drawn at random: coordinate ascent, each
    class's offset moved by ± step while mIoU rises, steps shrinking. Returns (offsets [K], mIoU
    before, mIoU after) on those pixels. The offsets fold into a conv bias, so they cost nothing."""
    rng = np.random.default_rng(seed)
    n, _, h, w = maskiges.shape
    per_image = max(1, pixels // n)
    logits, targets = [], []
    for i in range(0, n, batch):
        lg = inverse(torch.from_numpy(maskiges[i : i + batch].astype(np.float32)))
        lg = lg.permute(0, 2, 3, 1).reshape(-1, num_classes)
        lab = torch.from_numpy(labels[i : i + batch].astype(np.int64)).reshape(-1)
        keep = torch.nonzero(lab != IGNORE_INDEX)[:, 0].numpy()
        if keep.size == 0:
            continue
        pick = torch.from_numpy(
            rng.choice(keep, min(keep.size, per_image * len(lab) // (h * w)), replace=False)
        )
        logits.append(lg[pick])
        targets.append(lab[pick])
    logits, targets = torch.cat(logits), torch.cat(targets)
    offsets = torch.zeros(num_classes)

    def score_of(b: torch.Tensor) -> float:
        return _miou_from((logits + b).argmax(1), targets, num_classes)

    before = best = score_of(offsets)
    for step in steps:
        improved = True
        while improved:
            improved = False
            for c in range(num_classes):
                for sign in (1.0, -1.0):
                    trial = offsets.clone()
                    trial[c] += sign * step
                    value = score_of(trial)
                    if value > best + 1e-6:
                        offsets, best, improved = trial, value, True
                        break
    return offsets, before, best


class NearestInverse(nn.Module):
    """GSS-FF (the nearest palette colour) as a logits module, for side-by-side scores."""

    def __init__(self, palette: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("p", palette)

    def forward(self, maskige: torch.Tensor) -> torch.Tensor:
        return nearest_scores(maskige, self.p)


def inverse_gmac(inverse: nn.Module, height: int, width: int) -> float:
    """Multiply-accumulates of the inverse's convolutions per height × width frame, in GMAC."""
    return count_macs(inverse, torch.zeros(1, 3, height, width)) / 1e9


def train_inverse(
    package: Path,
    data: Path,
    out: Path,
    split: str = "train",
    val_split: str | None = "val",
    cfg: InverseConfig | None = None,
    install: bool = False,
    max_images: int | None = None,
    cache_dir: Path | None = None,
    threads: int = 0,
) -> dict:
    """Decodes `split` with the package, fits a TrainedInverse, exports it to `out` (ONNX, ArgMax
    inside; beside it, unless `out` is in the package, `.pt` with the weights and `.json` with the
    report) and, with `install`, switches the package's model.json to it (copying the graph into
    the package). Returns a report: the config, GMAC per frame, seconds, and nearest-colour vs
    trained mIoU on `split` and `val_split` (decoded maskiges at the model's size)."""
    from .export import export_onnx, install_inverse, inverse_entry

    cfg = cfg or InverseConfig()
    package, out = Path(package), Path(out)
    manifest = json.loads((package / "model.json").read_text())
    palette = palette_in_range(manifest)
    k = len(manifest["classes"])
    h, w = manifest["input"]["height"], manifest["input"]["width"]
    cache = (lambda s: Path(cache_dir) / f"maskiges-{s}.npz") if cache_dir else (lambda s: None)
    t0 = time.perf_counter()
    maskiges, labels = decode_split(package, data, split, max_images, threads, cache(split))
    t_decode = time.perf_counter() - t0
    log.info("decoded %d %s maskiges in %.1f s", len(maskiges), split, t_decode)
    t1 = time.perf_counter()
    model, losses = fit_inverse(maskiges, labels, palette, cfg)
    t_fit = time.perf_counter() - t1
    report: dict = {
        "package": str(package),
        "data": str(data),
        "split": split,
        "images": len(maskiges),
        "train_scored_every": max(1, len(maskiges) // 400),
        "config": asdict(cfg),
        "gmac": round(inverse_gmac(model, h, w), 4),
        "decode_seconds": round(t_decode, 1),
        "train_seconds": round(t_fit, 1),
        "final_loss": float(np.mean(losses[-50:])) if losses else None,
        "mIoU": {},
    }
    ff = NearestInverse(palette)
    every = max(1, len(maskiges) // 400)  # the training split's score on at most ~400 of its images
    sets = {split: (maskiges[::every], labels[::every])}
    if val_split:
        sets[val_split] = decode_split(package, data, val_split, None, threads, cache(val_split))
    for name, (m, lab) in sets.items():
        report["mIoU"][name] = {
            "nearest": round(score(ff, m, lab, k).miou(), 2),
            "trained": round(score(model, m, lab, k).miou(), 2),
        }
        log.info(
            "%s: mIoU nearest colour %.2f, trained inverse %.2f",
            name,
            *report["mIoU"][name].values(),
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    export_onnx(
        InverseClasses(model, cfg.argmax),
        torch.zeros(1, 3, h, w),
        out,
        "maskige",
        "classes",
        spatial_axes=(2, 3),
    )
    if out.parent.resolve() != package.resolve():  # the package holds the graph alone
        torch.save(
            {
                "state_dict": model.state_dict(),
                "config": asdict(cfg),
                "palette": palette,
                "report": report,
            },
            out.with_suffix(".pt"),
        )
        out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    # The default network (the palette conv alone) installs as a linear inverse the runtime runs in
    # its own loop; a network with a branch installs as the graph (copied into the package).
    report["entry"] = inverse_entry(out)
    if install:
        install_inverse(package, out, report["entry"], gmac=report["gmac"])
    return report


__all__ = [
    "InverseConfig",
    "TrainedInverse",
    "calibrate_biases",
    "InverseClasses",
    "ARGMAX_FORMS",
    "NearestInverse",
    "decode_split",
    "fit_inverse",
    "score",
    "inverse_gmac",
    "train_inverse",
    "palette_in_range",
]
