#!/usr/bin/env bash
# How each fit policy does on frames of another aspect ratio than the model's: street8 and
# street8-shift test frames rendered at 640×480 (4:3, a camera's shape; `gss stream --camera`
# defaults to it), with their labels, through `gss eval --fit F` (the runtime's own path) for each
# package, next to the same renderer's 512×256 (1:2) frames. Prints mIoU / mAcc and ms per frame;
# `native` only for packages whose graphs run at other sizes (model.json input.size_multiple).
# Generates the sets it lacks (data/street8-43, data/street8-shift-43, data/street8,
# data/street8-shift).
# Usage: scripts/eval-fit.sh [PACKAGE_DIR...]   (default: models/gss-edge-street8 and -dense)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/datasets.sh
for set in street8 street8-shift street8-43 street8-shift-43; do
    ensure_set "$set"
done
score() { RUST_LOG=warn "$gss" --model "$1" --backend cpu --fit "$2" eval --data "$3" --split test --json \
    | convert/.venv/bin/python -c 'import json,sys; r=json.load(sys.stdin); print("%.2f / %.2f | %.1f" % (r["mIoU"], r["mAcc"], r["ms_per_image"]))'; }
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) threads"
echo "| package | set | frames | fit | mIoU / mAcc | ms per frame |"
echo "|---|---|---|---|---:|---:|"
for p in "${packages[@]}"; do
    name=$(basename "$p")
    for set in street8 street8-shift; do
        echo "| $name | $set | 512×256 (1:2) | (none needed) | $(score "$p" stretch "data/$set") |"
        for fit in stretch crop letterbox native; do
            if [[ $fit == native ]] && ! grep -q '"size_multiple"' "$p/model.json"; then
                echo "| $name | $set | 640×480 (4:3) | native | graphs fixed at the exported size | |"
                continue
            fi
            echo "| $name | $set | 640×480 (4:3) | $fit | $(score "$p" "$fit" "data/$set-43") |"
        done
    done
done
