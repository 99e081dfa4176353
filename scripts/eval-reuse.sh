#!/usr/bin/env bash
# Token reuse (`gss stream --reuse`): decoder time per frame with every frame decoded in full
# (off) and with only the tiles near changed tokens decoded again (auto), on the sample clip
# (camera moving 1.02 m per frame) and on a parked camera (data/street8-static: the same street
# generator, camera speed 0, people walking; generated when missing), unpaced (every frame, in
# order) and real time at 15 fps (frames drop when the stream falls behind), with the token
# stabiliser off and on for priors that end with token logits. Unpaced runs publish the same
# frames with reuse off and auto, and their masks must match byte for byte ("identical").
# Usage: scripts/eval-reuse.sh [PACKAGE_DIR...]   (default: both bundled packages)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/datasets.sh
if [[ ! -f data/street8-static/classes.json ]]; then
    "$convert" data synth --out data/street8-static --sequence 120 --format jpg --seed 2026 --speed 0
fi
threads="${THREADS:-2}"
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $threads threads"
echo
echo "| package | sequence | stabiliser | pacing | tokens changed % | decoded per frame (auto) | decoder ms off | decoder ms auto | auto / off | masks |"
echo "|---|---|---:|---|---:|---:|---:|---:|---:|---|"
run() {  # package dir, margin, pacing flags, reuse → JSON summary
    local dir="$1" margin="$2" pacing="$3" reuse="$4"
    # shellcheck disable=SC2086
    RUST_LOG=warn "$gss" --model "$dir" --backend cpu --threads "$threads" stream --dir "$seq_dir" $pacing \
        --save none --stabilise "$margin" --reuse "$reuse" --json
}
for p in "${packages[@]}"; do
    margins=(0)
    if grep -q '"argmax_in_graph": false' "$p/model.json"; then
        margins=(0 1 2)
    fi
    for seq in "sample clip:assets/street8-clip/images/seq" "parked camera:data/street8-static/images/seq"; do
        seq_dir="${seq#*:}"
        for m in "${margins[@]}"; do
            for pacing in "unpaced:--fps 0 --lossless" "15 fps:--fps 15"; do
                off="$(run "$p" "$m" "${pacing#*:}" off)"
                auto="$(run "$p" "$m" "${pacing#*:}" auto)"
                convert/.venv/bin/python - "$(basename "$p")" "${seq%%:*}" "$m" "${pacing%%:*}" "$off" "$auto" <<'PY'
import json, sys
name, seq, margin, pacing = sys.argv[1:5]
off, auto = json.loads(sys.argv[5]), json.loads(sys.argv[6])
if pacing == "unpaced":
    masks = "identical" if off["masks_digest"] == auto["masks_digest"] else "DIFFER"
else:
    masks = "(frames drop)"
print("| %s | %s | %s | %s | %.1f | %.1f %% | %.2f | %.2f | %.2f | %s |" % (
    name, seq, margin if margin != "0" else "off", pacing, auto["token_change_pct"] or 0.0, auto["decoded_pct"],
    off["decoder_ms"], auto["decoder_ms"], auto["decoder_ms"] / off["decoder_ms"], masks))
PY
            done
        done
    done
done
