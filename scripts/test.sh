#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what is missing (Debian packages the
# optional features need, the Python venv), then the Rust tests with every feature (examples
# included) and the Python tests.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# A fresh build of every feature needs about 4 GB under target/ plus the venv: say so plainly
# rather than fail deep inside the linker.
free_kb=$(df -Pk "$root" | awk 'NR == 2 { print $4 }')
if (( free_kb < 6 * 1024 * 1024 )); then
    echo "warning: only $((free_kb / 1024)) MB free on $(df -P "$root" | awk 'NR == 2 { print $6 }'); the tests need about 6 GB (target/ and convert/.venv)" >&2
fi

bash scripts/setup-system.sh
bash scripts/setup-python.sh

# Mesa's Vulkan loader (the wgpu tests run on lavapipe) wants a runtime directory.
if [[ -z "${XDG_RUNTIME_DIR:-}" ]]; then
    export XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/gss-xdg-$(id -u)"
    mkdir -p -m 700 "$XDG_RUNTIME_DIR"
fi

if [[ -f Cargo.toml ]]; then
    cargo test --all-features
    # The library alone (`gss = { default-features = false }`) builds and carries none of the
    # command line's dependencies.
    cargo build --lib --no-default-features
    if cargo tree --no-default-features -e normal --depth 1 | grep -E '^[├└]── (clap|indicatif|ctrlc|env_logger|anyhow) '; then
        echo "the library without default features depends on the CLI's crates (above)" >&2
        exit 1
    fi
    # The pytests that talk to a real gss (test_rerun.py reads back its recording, test_zenoh.py
    # subscribes to its stream) use the binary `cargo test --all-features` built above.
    export GSS_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/gss"
fi

convert/.venv/bin/python -m pytest convert/tests -q
