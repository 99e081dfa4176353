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
