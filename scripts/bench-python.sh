#!/usr/bin/env bash
# The Python call's overhead against `gss bench`, in one run: builds the release binary and the
# release wheel (what `pip install ./python` builds), installs the wheel into python/.venv-bench
# and runs scripts/bench-python.py. Markdown on stdout:
#   scripts/bench-python.sh --threads 1,2 --rounds 5 > docs/python-bench.md
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
# With gss-python in the feature resolution the binary and the wheel share every dependency
# (scripts/test.sh does the same for the debug build).
PYO3_BUILD_EXTENSION_MODULE=1 cargo build --release --quiet --bin gss -p gss -p gss-python
wheel=$(bash scripts/python-wheel.sh release "$target/wheels-release")
venv=python/.venv-bench
if [[ ! -x "$venv/bin/python" ]]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet numpy pillow >&2
"$venv/bin/python" -m pip install --quiet --force-reinstall --no-deps "$wheel" >&2
exec "$venv/bin/python" scripts/bench-python.py --gss "$target/release/gss" "$@"
