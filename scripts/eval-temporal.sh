#!/usr/bin/env bash
# Frame-to-frame figures of the stream (`gss stream --fps 0 --lossless`, every frame in order):
# mIoU, flicker (pixels whose class changed where the label did not) and the share of the token
# grid that changes, on the sample clip and on a three times faster camera through the same scene
# (data/street8-fast, generated when missing), with the token stabiliser at several margins
# (`--stabilise M`; priors that end with token logits only: a package with its ArgMax in the graph runs at 0).
# Usage: scripts/eval-temporal.sh [PACKAGE_DIR...]   (default: both bundled packages)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/datasets.sh
if [[ ! -f data/street8-fast/classes.json ]]; then
    "$convert" data synth --out data/street8-fast --sequence 120 --format jpg --seed 2026 --speed 3.0
fi
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) threads"
echo "| package | sequence | stabiliser margin | mIoU | flicker % | tokens changed % |"
echo "|---|---|---:|---:|---:|---:|"
for p in "${packages[@]}"; do
    margins=(0)
    if grep -q '"argmax_in_graph": false' "$p/model.json"; then
        margins=(0 0.5 1 2 4)
    fi
    for seq in "sample clip:assets/street8-clip/images/seq" "3x faster:data/street8-fast/images/seq"; do
        for m in "${margins[@]}"; do
            RUST_LOG=warn "$gss" --model "$p" --backend cpu stream --dir "${seq#*:}" --fps 0 --lossless --save none \
                --stabilise "$m" --json | convert/.venv/bin/python -c '
import json, sys
r = json.load(sys.stdin)
print("| %s | %s | %s | %.2f | %.2f | %.1f |" % (sys.argv[1], sys.argv[2], sys.argv[3], r["mIoU"], r["flicker_pct"], r["token_change_pct"]))
' "$(basename "$p")" "${seq%%:*}" "$m"
        done
    done
done
