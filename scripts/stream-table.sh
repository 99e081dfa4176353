#!/usr/bin/env bash
# The sample clip streamed by `gss stream` (the main command's path) on both bundled packages, at
# 15 and 30 fps in real time (the oldest frame is dropped when the stages are busy) and unpaced
# with --lossless: fps, latency and dropped frames. Markdown on stdout:
#   scripts/stream-table.sh > docs/stream.md
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cargo build --release --quiet --bin gss
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "# Streaming the sample clip (\`scripts/stream-table.sh\`)"
echo
echo "Generated on $cpu ($(nproc) cores), $(date -u +%Y-%m-%d): \`gss stream --save none --json\` with"
echo "every core and the CPU backend's default kernels (\`--kernels auto\`), 120 frames of 512×256."
echo
echo "| package | source | fps | latency p50 / p95 ms | dropped |"
echo "|---|---|---:|---:|---:|"
row() {
    local pkg="$1" label="$2"
    shift 2
    RUST_LOG=warn target/release/gss --model "models/$pkg" stream --save none --json "$@" \
        | python3 -c '
import json, sys
r = json.load(sys.stdin)
lat = "(queued)" if "--lossless" in sys.argv[3:] else "%.0f / %.0f" % (r["latency_p50_ms"], r["latency_p95_ms"])
print("| %s | %s | %.1f | %s | %d of %d |" % (sys.argv[1], sys.argv[2], r["fps"], lat, r["dropped"], r["captured"]))
' "$pkg" "$label" "$@"
}
for pkg in gss-edge-street8 gss-edge-street8-dense; do
    main=""
    [[ "$pkg" == gss-edge-street8 ]] && main=" (the main command)"
    row "$pkg" "clip at 15 fps, real-time$main" --fps 15
    row "$pkg" "clip at 30 fps, real-time" --fps 30
    row "$pkg" "unpaced, --lossless" --fps 0 --lossless
done
