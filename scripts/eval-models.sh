#!/usr/bin/env bash
# Quality of each bundled package on the three sets the issue-10 target names, measured by the
# Rust runtime (`gss eval`, the same code path as `gss stream`): street8 test (the training
# domain), the sample clip (another seed, a moving camera), and street8-shift (fog, dusk, other
# camera heights, held-out textures; scripts/make-crossdomain.sh). Generates what is missing.
# Usage: scripts/eval-models.sh [PACKAGE_DIR...]   (default: models/gss-edge-street8 and -dense)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/datasets.sh
ensure_set street8
ensure_set street8-shift
sets=("street8 test:data/street8:test" "sample clip:assets/street8-clip:seq" "street8-shift:data/street8-shift:test")
miou() { RUST_LOG=warn "$gss" --model "$1" --backend cpu eval --data "$2" --split "$3" --json \
    | convert/.venv/bin/python -c 'import json,sys; r=json.load(sys.stdin); print("%.2f / %.2f" % (r["mIoU"], r["mAcc"]))'; }
header="| package |"
rule="|---|"
for s in "${sets[@]}"; do
    header+=" ${s%%:*} mIoU / mAcc |"
    rule+="---:|"
done
echo "$header"
echo "$rule"
for p in "${packages[@]}"; do
    row="| $(basename "$p") |"
    for s in "${sets[@]}"; do
        IFS=: read -r _ dir split <<< "$s"
        row+=" $(miou "$p" "$dir" "$split") |"
    done
    echo "$row"
done
