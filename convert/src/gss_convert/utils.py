"""Run plumbing shared by training and evaluation: seeds, device choice, logging to a file."""

from __future__ import annotations

import contextlib
import logging
import random
import sys
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("gss_convert")


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "--device cuda: no CUDA GPU is visible to PyTorch; use --device cpu or auto"
        )
    if name not in ("cpu", "cuda"):
        raise ValueError(f"--device {name}: expected auto, cpu or cuda")
    return torch.device(name)


def autocast(device: torch.device):
    """Mixed precision on CUDA (bf16 where supported, else fp16); full fp32 on the CPU."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def grad_scaler(device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling for fp16 autocast; disabled (a pass-through) for bf16 and on the CPU."""
    fp16 = device.type == "cuda" and not torch.cuda.is_bf16_supported()
    return torch.amp.GradScaler("cuda", enabled=fp16)


def setup_logging(log_file: Path | None = None, verbose: bool = False, rank: int = 0) -> None:
    """Logs to stderr and, when given, to a file (appending, so a resumed run keeps its history).

    `rank` > 0 is a training process other than rank 0 (torchrun): it logs only warnings and errors,
    marked with its rank, so the progress is told once; give it no log file (rank 0 writes that)."""
    root = logging.getLogger("gss_convert")
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for h in list(root.handlers):
        root.removeHandler(h)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    if rank:
        root.setLevel(logging.WARNING)
        fmt = logging.Formatter(f"%(asctime)s %(levelname)s [rank {rank}] %(message)s", "%H:%M:%S")
    stream = _TqdmHandler()
    stream.setFormatter(fmt)
    root.addHandler(stream)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file)
        fh.setFormatter(fmt)
        root.addHandler(fh)
    root.propagate = False


class _TqdmHandler(logging.Handler):
    """Writes log lines above any live progress bar instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:
            self.handleError(record)


def set_threads(n: int | None) -> None:
    if n:
        torch.set_num_threads(n)
