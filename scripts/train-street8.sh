#!/usr/bin/env bash
# The main job of convert/: generate street8, train GSS-edge (stage 1, stage 2) and the
# discriminative baseline with the default config, then evaluate all three on the test split.
# Usage: scripts/train-street8.sh [DATA_DIR] [RUN_DIR] [extra `gss-convert train` flags, e.g. --device cuda]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="${1:-$root/data/street8}"
run="${2:-$root/runs/gss-edge-street8}"
shift $(( $# > 2 ? 2 : $# )) || true

bash "$root/scripts/setup-python.sh"
gss="$root/convert/.venv/bin/gss-convert"

if [[ ! -f "$data/classes.json" ]]; then
    "$gss" data synth --out "$data" --size 256x512 --split train=1600,val=100,test=200 --seed 0
fi
"$gss" macs --config default
"$gss" train all --config default --data "$data" --out "$run" --resume "$@"
"$gss" eval --run "$run" --data "$data" --split test
