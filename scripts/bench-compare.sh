#!/usr/bin/env bash
# gss (its own kernels, and tract's) vs onnxruntime in one run on the same ONNX files, frames and
# thread counts, alternating rounds: the bundled package first, then the dense one. Markdown on
# stdout: scripts/bench-compare.sh --threads 1,2 --rounds 5 > docs/bench-compare.md
# Arguments go to scripts/bench-compare.py (e.g. --threads 1,2 --rounds 5 --frames 30).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup-python.sh >/dev/null
# The same build as scripts/bench-python.sh's (gss-python in the feature resolution), so one
# release build serves both.
PYO3_BUILD_EXTENSION_MODULE=1 cargo build --release --quiet --bin gss -p gss -p gss-python
exec convert/.venv/bin/python scripts/bench-compare.py "$@"
