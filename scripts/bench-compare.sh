#!/usr/bin/env bash
# gss (tract) vs onnxruntime in one run: a new package (default models/gss-edge-street8-dense)
# against the reference (the bundled models/gss-edge-street8), same frames and thread counts,
# alternating rounds.
# Arguments go to scripts/bench-compare.py (e.g. --threads 1,2 --rounds 5 --frames 30).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup-python.sh >/dev/null
cargo build --release --quiet --bin gss
exec convert/.venv/bin/python scripts/bench-compare.py "$@"
