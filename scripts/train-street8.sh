#!/usr/bin/env bash
# The main job of convert/: generate street8, train GSS-edge and evaluate it on the test split.
# GSS_CONFIG=default (the default): the bundled models/gss-edge-street8 (MobileNetV2 prior, stage 1,
# stage 2 and the discriminative baseline). GSS_CONFIG=dense: models/gss-edge-street8-dense (the
# dense prior and decoder shaped for tract, stage 1 and 2). Resumable: a finished stage is skipped.
# Usage: scripts/train-street8.sh [DATA_DIR] [RUN_DIR] [extra `gss-convert train` flags, e.g. --device cuda]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
config="${GSS_CONFIG:-default}"
data="${1:-$root/data/street8}"
suffix=$([[ "$config" == "default" ]] && echo "" || echo "-$config")
run="${2:-$root/runs/gss-edge-street8$suffix}"
shift $(( $# > 2 ? 2 : $# )) || true

bash "$root/scripts/setup-python.sh"
gss="$root/convert/.venv/bin/gss-convert"

if [[ ! -f "$data/classes.json" ]]; then
    "$gss" data synth --out "$data" --size 256x512 --split train=1600,val=100,test=200 --seed 0
fi
"$gss" macs --config "$config"
if [[ "$config" == "default" ]]; then
    "$gss" train all --config default --data "$data" --out "$run" --resume "$@"
else
    "$gss" train stage1 --config "$config" --data "$data" --out "$run" --resume "$@"
    "$gss" train stage2 --config "$config" --data "$data" --out "$run" --resume "$@"
fi
"$gss" eval --run "$run" --data "$data" --split test
