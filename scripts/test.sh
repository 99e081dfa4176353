#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what is missing, then the Python tests.
# (The Rust crate's tests join here once it lands: see README.md.)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/setup-python.sh

if [[ -f Cargo.toml ]]; then
    cargo test --all-features
fi

convert/.venv/bin/python -m pytest convert/tests -q
