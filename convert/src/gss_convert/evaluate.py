"""Evaluation: the posterior upper bound, the GSS prior and the discriminative baseline on one split.

Writes `metrics.json` (per-class IoU/Acc, mIoU, mAcc, confusion matrices), `metrics.md` (a table a
person reads) and PNG panels (image | ground truth | GSS | baseline) under the output directory.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from .config import config_from_dict
from .data.classes import ClassInfo
from .data.datasets import open_dataset
from .maskige import (
    Palette,
    fill_ignore_nearest,
    labels_to_maskige_tensor,
    maskige_tensor_to_labels,
)
from .metrics import ConfusionMatrix, markdown_comparison
from .resize import resize_classes_torch, resize_image_torch
from .train import CKPT_NAMES, build_baseline, build_prior, build_vqvae, load_checkpoint
from .utils import log


@dataclass
class Predictors:
    """The trained parts of one run, ready for inference on a device."""

    input_size: tuple[int, int]
    palette: Palette
    classes: list[ClassInfo]
    vqvae: torch.nn.Module | None
    prior: torch.nn.Module | None
    baseline: torch.nn.Module | None

    @staticmethod
    def from_run(run: Path, device: torch.device) -> Predictors:
        run = Path(run)
        paths = {k: run / v for k, v in CKPT_NAMES.items()}
        if not any(p.is_file() for p in paths.values()):
            raise FileNotFoundError(
                f"{run}: no checkpoints ({', '.join(CKPT_NAMES.values())}); "
                "run `gss-convert train` first"
            )
        vq_ckpt = load_checkpoint(paths["stage1"]) if paths["stage1"].is_file() else None
        prior_ckpt = load_checkpoint(paths["stage2"]) if paths["stage2"].is_file() else None
        base_ckpt = load_checkpoint(paths["baseline"]) if paths["baseline"].is_file() else None
        ref = vq_ckpt or prior_ckpt or base_ckpt
        cfg = config_from_dict(ref["config"])
        palette_src = prior_ckpt or vq_ckpt
        palette = Palette.from_dict(palette_src["palette"]) if palette_src else None
        # the prior checkpoint carries the VQ-VAE it was trained against: use that one with it
        vqvae = (
            build_vqvae(prior_ckpt) if prior_ckpt else (build_vqvae(vq_ckpt) if vq_ckpt else None)
        )
        classes = [ClassInfo(c["id"], c["name"], tuple(c["color"])) for c in ref["classes"]]

        def to(m):
            return m.to(device).eval() if m is not None else None

        return Predictors(
            tuple(cfg.input_size),
            palette,
            classes,
            to(vqvae),
            to(build_prior(prior_ckpt) if prior_ckpt else None),
            to(build_baseline(base_ckpt) if base_ckpt else None),
        )

    @torch.no_grad()
    def reconstruct(self, labels: torch.Tensor) -> torch.Tensor:
        """Upper bound: label → maskige → tokens → maskige → X⁻¹, at the label's own size."""
        x = labels_to_maskige_tensor(labels, self.palette)
        return maskige_tensor_to_labels(self.vqvae.decode(self.vqvae.encode(x)), self.palette)

    def _to_input(self, images: torch.Tensor) -> torch.Tensor:
        # the manifest's resize: stretch (no padding, so no pad value is needed)
        return resize_image_torch(images, self.input_size, "stretch")

    @staticmethod
    def _to_label_size(classes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return resize_classes_torch(classes, size, "stretch")

    @torch.no_grad()
    def gss(self, images: torch.Tensor) -> torch.Tensor:
        """Image (0..255 floats, N×3×H×W) → prior tokens (argmax) → decoder → X⁻¹ → classes at H×W."""
        tokens = self.prior(self._to_input(images), with_aux=False).argmax(1)
        classes = maskige_tensor_to_labels(self.vqvae.decode(tokens), self.palette)
        return self._to_label_size(classes, images.shape[-2:])

    @torch.no_grad()
    def discriminative(self, images: torch.Tensor) -> torch.Tensor:
        return self._to_label_size(
            self.baseline(self._to_input(images)).argmax(1), images.shape[-2:]
        )


def colorize(label: np.ndarray, classes: list[ClassInfo]) -> np.ndarray:
    lut = np.zeros((256, 3), np.uint8)
    for c in classes:
        lut[c.id] = c.color
    return lut[label]


def _panel(image: np.ndarray, columns: list[np.ndarray]) -> np.ndarray:
    gap = np.full((image.shape[0], 4, 3), 255, np.uint8)
    parts = [image]
    for c in columns:
        parts += [gap, c]
    return np.concatenate(parts, axis=1)


def evaluate(
    run: Path,
    data: Path,
    split: str,
    out: Path,
    device: torch.device,
    batch_size: int = 8,
    panels: int = 6,
    max_images: int | None = None,
    layout: str = "auto",
) -> dict:
    pred = Predictors.from_run(run, device)
    ds = open_dataset(data, split, layout)
    names = [c.name for c in pred.classes]
    if [c.name for c in ds.classes] != names:
        raise ValueError(
            f"{data}: classes {[c.name for c in ds.classes]} differ from the model's {names}"
        )
    k = len(names)
    methods = {}
    if pred.vqvae is not None and pred.palette is not None:
        methods["reconstruction"] = ConfusionMatrix(k)
    if pred.prior is not None:
        methods["GSS prior"] = ConfusionMatrix(k)
    if pred.baseline is not None:
        methods["discriminative"] = ConfusionMatrix(k)
    out.mkdir(parents=True, exist_ok=True)
    (out / "panels").mkdir(exist_ok=True)
    n = len(ds) if max_images is None else min(len(ds), max_images)
    seconds = {m: 0.0 for m in methods}
    panel_every = max(1, n // max(1, panels))
    for start in tqdm(range(0, n, batch_size), desc=f"eval {split}", dynamic_ncols=True):
        batch = [(i, ds[i]) for i in range(start, min(n, start + batch_size))]
        shapes = {s.image.shape for _, s in batch}
        groups = [batch] if len(shapes) == 1 else [[b] for b in batch]  # mixed sizes: one at a time
        for group in groups:
            images = (
                torch.from_numpy(np.stack([s.image for _, s in group]))
                .permute(0, 3, 1, 2)
                .float()
                .to(device)
            )
            labels = np.stack([s.label for _, s in group])
            results: dict[str, np.ndarray] = {}
            for method in methods:
                t0 = time.perf_counter()
                if method == "reconstruction":
                    filled = np.stack([fill_ignore_nearest(lab) for lab in labels])
                    r = pred.reconstruct(torch.from_numpy(filled).long().to(device))
                elif method == "GSS prior":
                    r = pred.gss(images)
                else:
                    r = pred.discriminative(images)
                seconds[method] += time.perf_counter() - t0
                results[method] = r.cpu().numpy().astype(np.uint8)
                methods[method].update(results[method], labels)
            for j, (idx, s) in enumerate(group):
                if idx % panel_every == 0 and idx // panel_every < panels:
                    cols = [colorize(labels[j], pred.classes)] + [
                        colorize(results[m][j], pred.classes)
                        for m in methods
                        if m != "reconstruction"
                    ]
                    Image.fromarray(_panel(s.image, cols)).save(out / "panels" / f"{s.name}.png")
    report = {
        "run": str(run),
        "data": str(data),
        "split": split,
        "images": n,
        "columns_in_panels": ["image", "ground truth"]
        + [m for m in methods if m != "reconstruction"],
        "seconds_per_image": {m: seconds[m] / max(1, n) for m in methods},
        "methods": {m: cm.to_dict(names) for m, cm in methods.items()},
    }
    if "GSS prior" in methods and "discriminative" in methods:
        report["gap_gss_minus_discriminative_mIoU"] = (
            methods["GSS prior"].miou() - methods["discriminative"].miou()
        )
    (out / "metrics.json").write_text(json.dumps(report, indent=1) + "\n")
    md = [f"# {split} split of {data} ({n} images)", "", markdown_comparison(methods, names), ""]
    for m, cm in methods.items():
        md += [cm.to_markdown(names, title=f"{m}"), ""]
    (out / "metrics.md").write_text("\n".join(md))
    for m, cm in methods.items():
        log.info("%s: mIoU %.2f mAcc %.2f", m, cm.miou(), cm.macc())
    return report


__all__ = ["Predictors", "evaluate", "colorize"]
