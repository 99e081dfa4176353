"""Parity of an exported package with PyTorch: the same images through both, agreement and mIoU.

Also writes the reference outputs the Rust tests check against (`--fixtures`): for a few images,
the token grid and class map onnxruntime computes, so `cargo test` checks parity without Python.
Both run the package through the Python reference runtime, `runtime.OnnxSegmenter`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from .data.datasets import open_dataset
from .metrics import ConfusionMatrix
from .runtime import OnnxSegmenter


def verify(
    package: Path,
    run: Path,
    data: Path,
    split: str = "test",
    max_images: int | None = None,
    variant: str | None = None,
) -> dict:
    """Token and class-map agreement of onnxruntime with PyTorch, and the mIoU of each."""
    from .evaluate import Predictors

    seg = OnnxSegmenter.load(package, variant)
    pred = Predictors.from_run(run, torch.device("cpu"))
    ds = open_dataset(data, split)
    n = len(ds) if max_images is None else min(max_images, len(ds))
    k = len(seg.manifest["classes"])
    cm_torch, cm_onnx = ConfusionMatrix(k), ConfusionMatrix(k)
    tok_same = tok_all = cls_same = cls_all = 0
    for i in tqdm(range(n), desc=f"verify {split}"):
        s = ds[i]
        tok_o, cls_o = seg.segment(s.image)
        img = torch.tensor(s.image).permute(2, 0, 1)[None].float()
        with torch.no_grad():
            tok_t = pred.prior(pred._to_input(img), with_aux=False).argmax(1)[0].numpy()
            if not seg.trained_inverse:
                cls_t = pred.gss(img)[0].numpy().astype(np.uint8)
            else:  # the package's trained X⁻¹ on PyTorch's maskige: both sides use the same X⁻¹
                maskige = pred.vqvae.decode(torch.from_numpy(tok_t)[None]).numpy()
                ids = seg.classes_of(maskige).astype(np.int64)
                cls_t = (
                    pred._to_label_size(torch.from_numpy(ids[None]), img.shape[-2:])[0]
                    .numpy()
                    .astype(np.uint8)
                )
        tok_same += int((tok_o == tok_t).sum())
        tok_all += tok_t.size
        cls_same += int((cls_o == cls_t).sum())
        cls_all += cls_t.size
        cm_torch.update(cls_t, s.label)
        cm_onnx.update(cls_o, s.label)
    return {
        "images": n,
        "variant": variant or "fp32",
        "token_agreement": 100.0 * tok_same / max(1, tok_all),
        "class_agreement": 100.0 * cls_same / max(1, cls_all),
        "mIoU_pytorch": cm_torch.miou(),
        "mIoU_onnxruntime": cm_onnx.miou(),
    }


def write_fixtures(package: Path, images: list[Path], out: Path) -> list[dict]:
    """Reference outputs for the Rust tests: tokens as raw little-endian u16 (row-major h×w), class maps as PNG."""
    seg = OnnxSegmenter.load(package, threads=1)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for path in images:
        image = np.asarray(Image.open(path).convert("RGB"))
        tok, classes = seg.segment(image)
        stem = Path(path).stem
        Image.fromarray(image).save(out / f"{stem}.png")
        tokens_file = out / f"{stem}.tokens.u16"
        tok.astype("<u2").tofile(tokens_file)
        Image.fromarray(classes).save(out / f"{stem}.classes.png")
        entries.append(
            {
                "image": f"{stem}.png",
                "tokens": tokens_file.name,
                "grid": list(tok.shape),
                "classes": f"{stem}.classes.png",
            }
        )
    (out / "reference.json").write_text(
        json.dumps({"package": str(package), "cases": entries}, indent=1) + "\n"
    )
    return entries
