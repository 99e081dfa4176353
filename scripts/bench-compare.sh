#!/usr/bin/env bash
# gss (tract) vs onnxruntime on the bundled model, same files and threads, in one run.
# Arguments go to scripts/bench-compare.py (e.g. --threads 1,2 --variants fp32,int8 --rounds 5).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup-python.sh >/dev/null
cargo build --release --quiet --bin gss
exec convert/.venv/bin/python scripts/bench-compare.py "$@"
