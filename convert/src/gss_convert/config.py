"""Training configuration: dataclasses, loaded from and saved to YAML, stored inside every checkpoint."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .models.prior import PriorConfig
from .models.vqvae import VQVAEConfig

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass
class StageConfig:
    iters: int = 3000
    batch_size: int = 8
    crop: tuple[int, int] = (256, 256)  # (h, w) random crop after scaling
    scale: tuple[float, float] = (0.75, 1.5)
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_iters: int = 100
    poly_power: float = 0.9
    log_every: int = 50
    ckpt_every: int = 500
    color_jitter: float = 0.3  # brightness/contrast/saturation strength; 0 disables


@dataclass
class DistillConfig:
    """Stage 2 can also learn from a trained prior (the teacher, an exported package run by
    onnxruntime): KL between the student's and the teacher's token distributions at
    `temperature`, weighted by `weight`, beside the cross-entropy against the posterior's tokens."""

    package: str = ""  # model package folder of the teacher; empty: no distillation
    weight: float = 1.0
    temperature: float = 2.0


@dataclass
class Config:
    name: str = "gss-edge"
    seed: int = 0
    input_size: tuple[int, int] = (256, 512)  # (h, w) the exported model takes
    vqvae: VQVAEConfig = field(default_factory=VQVAEConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)
    stage1: StageConfig = field(
        default_factory=lambda: StageConfig(
            iters=4000, batch_size=16, crop=(128, 128), scale=(0.75, 1.5), lr=2e-3, color_jitter=0.0
        )
    )
    stage2: StageConfig = field(default_factory=StageConfig)
    baseline: StageConfig = field(default_factory=StageConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    # stage 2 starts from this prior checkpoint's weights (same architecture), e.g. to continue
    # a run with distillation; empty: from scratch or ImageNet
    stage2_init: str = ""
    # parameter name prefixes not taken from `stage2_init` (e.g. "token_logits." when the posterior,
    # and so the meaning of each token, differs from the one that prior was trained on)
    stage2_init_skip: list[str] = field(default_factory=list)
    aux_weight: float = 0.4  # weight of the prior's auxiliary per-pixel loss
    class_weight_power: float = 0.5  # stage-1 pixel weight = frequency^-power (0: unweighted)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _build(cls, data: dict[str, Any] | None):
    """Dataclass from a (partial) dict: unknown keys are errors, nested dataclasses recurse."""
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    kwargs = {}
    defaults = cls()
    for key, value in data.items():
        current = getattr(defaults, key)
        if dataclasses.is_dataclass(current):
            kwargs[key] = _build(type(current), value)
        elif isinstance(current, tuple):
            kwargs[key] = tuple(value)
        else:
            kwargs[key] = value
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> Config:
    return _build(Config, data)


def load_config(path_or_name: str | Path) -> Config:
    """A YAML file, or the name of a bundled config (`default`, `tiny`)."""
    path = Path(path_or_name)
    if not path.exists():
        bundled = CONFIG_DIR / f"{path_or_name}.yaml"
        if not bundled.exists():
            names = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
            raise FileNotFoundError(
                f"config {path_or_name}: no such file, and no bundled config of "
                f"that name (bundled: {names})"
            )
        path = bundled
    data = yaml.safe_load(path.read_text()) or {}
    try:
        return config_from_dict(data)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: {e}") from None


def save_config(cfg: Config, path: Path) -> None:
    path.write_text(yaml.safe_dump(_plain(cfg.to_dict()), sort_keys=False))


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x
