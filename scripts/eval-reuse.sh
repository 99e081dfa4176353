#!/usr/bin/env bash
# Token reuse (`gss stream --reuse`): decoder time per frame with every frame decoded in full
# (off) and with only the tiles near changed tokens decoded again (auto), on the sample clip
# (camera moving 1.02 m per frame) and on a parked camera (data/street8-static: the same street
# generator, camera speed 0, people walking; generated when missing), unpaced (every frame, in
# order) and real time at 15 fps (frames drop when the stream falls behind), with the token
# stabiliser off and on for priors that end with token logits. Unpaced runs publish the same
# frames with reuse off and auto, and their masks must match byte for byte ("identical").
# "halo reach" is the share of the grid within the decoder's halo of a changed token: the least
# that any exact reuse must decode again. Off and auto alternate REPEAT times (default 3) and
# the median decoder time of each is shown, as the machine is shared.
# Usage: scripts/eval-reuse.sh [PACKAGE_DIR...]   (default: both bundled packages)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/datasets.sh
if [[ ! -f data/street8-static/classes.json ]]; then
    "$convert" data synth --out data/street8-static --sequence 120 --format jpg --seed 2026 --speed 0
fi
threads="${THREADS:-2}"
repeat="${REPEAT:-3}"
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $threads threads"
echo
echo "| package | sequence | stabiliser | pacing | tokens changed % | halo reach % | decoded per frame (auto) | decoder ms off | decoder ms auto | auto / off | masks |"
echo "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|"
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
                runs=()
                for _ in $(seq "$repeat"); do
                    runs+=("$(run "$p" "$m" "${pacing#*:}" off | tr -d '\n')" "$(run "$p" "$m" "${pacing#*:}" auto | tr -d '\n')")
                done
                convert/.venv/bin/python - "$(basename "$p")" "${seq%%:*}" "$m" "${pacing%%:*}" "${runs[@]}" <<'PY'
import json, statistics, sys
name, seq, margin, pacing = sys.argv[1:5]
runs = [json.loads(r) for r in sys.argv[5:]]
off, auto = runs[0::2], runs[1::2]
if pacing == "unpaced":
    same = all(r["masks_digest"] == off[0]["masks_digest"] for r in runs)
    masks = "identical" if same else "DIFFER"
else:
    masks = "(frames drop)"
t_off = statistics.median(r["decoder_ms"] for r in off)
t_auto = statistics.median(r["decoder_ms"] for r in auto)
reach = auto[0].get("halo_reach_pct")
print("| %s | %s | %s | %s | %.1f | %s | %.1f %% | %.2f | %.2f | %.2f | %s |" % (
    name, seq, margin if margin != "0" else "off", pacing, auto[0]["token_change_pct"] or 0.0,
    "%.1f" % reach if reach is not None else "n/a", statistics.mean(r["decoded_pct"] for r in auto),
    t_off, t_auto, t_auto / t_off, masks))
PY
            done
        done
    done
done
