#!/usr/bin/env bash
# Builds the wheel of the gss Python package (python/) with maturin, in the project's own target
# directory, and prints its path.
#
#   scripts/python-wheel.sh dev OUT_DIR       the test build's profile: dependencies optimised
#                                             and shared with `cargo test`'s build
#   scripts/python-wheel.sh release OUT_DIR   what `pip install ./python` builds
#
# Further arguments go to `maturin build` (e.g. --features wgpu). maturin itself is in
# convert/.venv (its `dev` extra), which scripts/setup-python.sh makes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ $# -lt 2 || ( "$1" != dev && "$1" != release ) ]]; then
    echo "usage: $0 dev|release OUT_DIR [maturin build arguments...]" >&2
    exit 2
fi
profile="$1"
out="$2"
shift 2
bash "$root/scripts/setup-python.sh" >&2
mkdir -p "$out"
rm -f "$out"/gss-*.whl
if [[ "$profile" == release ]]; then
    args=(--release)
else
    args=(--profile dev)
fi
"$root/convert/.venv/bin/maturin" build --manifest-path "$root/python/Cargo.toml" \
    --interpreter "$root/convert/.venv/bin/python" --out "$out" "${args[@]}" "$@" >&2
wheel=$(ls "$out"/gss-*.whl)
echo "$wheel"
