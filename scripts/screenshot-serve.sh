#!/usr/bin/env bash
# Takes a screenshot of the live view (`gss stream --serve`) with headless Chromium and checks
# that its overlay is not blank: the bundled clip, looped, through the bundled model (or
# GSS_MODEL), served on 127.0.0.1, then the page shot once frames flow.
#
#   scripts/screenshot-serve.sh [OUT.png]       default: docs/serve.png
#
# GSS_BIN: a gss built with `--features serve` (default: builds target/debug/gss that way).
# PYTHON: a Python with Pillow for the check (default: convert/.venv/bin/python).
# Installs the Debian package `chromium` when no Chromium is found (CI's tests do not need it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${1:-docs/serve.png}"
python="${PYTHON:-$root/convert/.venv/bin/python}"

chromium=""
for c in chromium chromium-browser google-chrome; do
    if command -v "$c" >/dev/null; then chromium="$c"; break; fi
done
if [[ -z "$chromium" ]]; then
    command -v apt-get >/dev/null || { echo "screenshot-serve: no Chromium and no apt-get to install it" >&2; exit 1; }
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
    echo "screenshot-serve: installing chromium"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
    chromium=chromium
fi

if [[ -z "${GSS_BIN:-}" ]]; then
    cargo build --features serve --bin gss
    GSS_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/gss"
fi

work="$(mktemp -d)"
gss_pid=""
cleanup() {
    if [[ -n "$gss_pid" ]]; then kill -INT "$gss_pid" 2>/dev/null || true; wait "$gss_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

"$GSS_BIN" stream --serve 127.0.0.1:0 --loop --save none 2>"$work/stderr" >/dev/null &
gss_pid=$!
addr=""
for _ in $(seq 1 600); do
    addr="$(sed -n 's|.*live view at http://\([^/]*\)/.*|\1|p' "$work/stderr" | head -n 1)"
    [[ -n "$addr" ]] && break
    kill -0 "$gss_pid" 2>/dev/null || { cat "$work/stderr" >&2; echo "screenshot-serve: gss stopped" >&2; exit 1; }
    sleep 0.1
done
[[ -n "$addr" ]] || { cat "$work/stderr" >&2; echo "screenshot-serve: no live view address after a minute" >&2; exit 1; }

# Wait until frames flow (so the figures on the page are filled in), at most a minute.
"$python" - "$addr" <<'EOF'
import json, sys, time, urllib.request
for _ in range(120):
    try:
        stats = json.load(urllib.request.urlopen(f"http://{sys.argv[1]}/stats.json", timeout=5))
        if stats["frames"] >= 5 and stats["fps"]:
            break
    except OSError:
        pass
    time.sleep(0.5)
else:
    sys.exit("screenshot-serve: no frames from the live view")
EOF

# The MJPEG image never finishes loading: --timeout ends the load so the page is shot.
"$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=720,360 \
    --timeout=3000 --screenshot="$work/shot.png" "http://$addr/" >/dev/null 2>&1

# Not blank: the overlay region has many distinct saturated colours (text and the legend's
# swatches give only a few dozen). Then shrunk to an indexed PNG for the docs.
"$python" - "$work/shot.png" "$out" <<'EOF'
import sys
from PIL import Image
shot = Image.open(sys.argv[1]).convert("RGB")
pixels = shot.get_flattened_data() if hasattr(shot, "get_flattened_data") else shot.getdata()
colourful = {p for p in pixels if max(p) - min(p) > 30}
if len(colourful) < 500:
    sys.exit(f"screenshot-serve: the page looks blank ({len(colourful)} saturated colours)")
shot.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(sys.argv[2], optimize=True)
print(f"{sys.argv[2]}: {shot.size[0]}x{shot.size[1]}, {len(colourful)} saturated colours in the shot")
EOF
