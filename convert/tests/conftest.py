"""Shared fixtures: a tiny dataset in the shared folder format, made by the street8 generator."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_street8(tmp_path_factory) -> Path:
    from gss_convert.data.synth import generate_dataset

    root = tmp_path_factory.mktemp("street8")
    generate_dataset(root, (64, 128), {"train": 12, "val": 2, "test": 3}, seed=7, workers=1)
    return root


@pytest.fixture(scope="session")
def tiny_run(tiny_street8, tmp_path_factory) -> Path:
    """All three stages of the tiny config, trained briefly on the tiny dataset."""
    import torch

    from gss_convert.config import load_config
    from gss_convert.train import Trainer

    run = tmp_path_factory.mktemp("tiny-run")
    torch.manual_seed(0)
    trainer = Trainer(load_config("tiny"), tiny_street8, run, torch.device("cpu"))
    for stage in ("stage1", "stage2", "baseline"):
        trainer.run(stage)
    return run


@pytest.fixture(scope="session")
def tiny_package(tiny_run, tmp_path_factory) -> Path:
    from gss_convert.export import export_run

    out = tmp_path_factory.mktemp("pkg") / "gss-tiny"
    export_run(tiny_run, out)
    return out
