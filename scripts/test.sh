#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what is missing (Debian packages the
# optional features need, the Python venv), checks the style (rustfmt, ruff), runs the Rust tests
# with every feature under clippy (examples and benches built too), the Python tests (gss_convert,
# and the gss Python package from its wheel), and the builds without optional features.
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

# Style first: it takes seconds, and a red CI should say so before a 40-minute build.
if command -v rustup >/dev/null; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
cargo fmt --all --check
convert/.venv/bin/ruff check convert examples scripts python
convert/.venv/bin/ruff format --check convert examples scripts python

# Clippy lints every target of the workspace (library, binaries, tests, examples, benches) inside
# the test build itself: clippy-driver compiles the workspace's own crates as rustc would and
# adds the lints, so `cargo clippy` (a separate check build of every dependency, minutes more)
# is not needed. These are the arguments `cargo clippy -- -D warnings` hands the driver.
RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver)"
export RUSTC_WORKSPACE_WRAPPER
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"

cargo test --all-features --all-targets --no-run
cargo test --all-features
# The pytests that talk to a real gss (test_rerun.py reads back its recording, test_zenoh.py
# subscribes to its stream) use the binary `cargo test --all-features` built above.
GSS_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/gss" convert/.venv/bin/python -m pytest convert/tests -q

# The Python package (python/): maturin builds its wheel in the same target directory and dev
# profile as the tests above (the clippy wrapper lints its crate too), the wheel is installed into
# a fresh virtual environment, and its tests run from the repository root, so `import gss` is the
# installed package, never the python/gss/ sources. They compare with the same `gss` binary.
wheel=$(bash scripts/python-wheel.sh dev "${CARGO_TARGET_DIR:-$root/target}/wheels")
rm -rf python/.venv-test
"${PYTHON:-python3}" -m venv python/.venv-test
python/.venv-test/bin/python -m pip install --quiet "$wheel[test]"
GSS_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/gss" python/.venv-test/bin/python -m pytest python/tests -q -p no:cacheprovider

# Without optional features each optional part is its `disabled.rs` twin: the library's tests
# run in that build too (each twin's test checks that it names the feature to enable), and the
# default binary (the command line alone) builds and says how to get a camera. Both use the
# default features, so they share one build of the dependencies; the library without `cli` is
# the same code (tests/repository.rs checks that it names none of the CLI's crates). Naming
# gss-python (which has no test target) puts the Python extension's dependencies into the feature
# resolution, so these builds reuse the wheel's dependencies instead of compiling them again
# (cargo still builds its library: as maturin does, PYO3_BUILD_EXTENSION_MODULE keeps pyo3 from
# linking libpython, which an extension module must not).
export PYO3_BUILD_EXTENSION_MODULE=1
cargo test --lib -p gss -p gss-python
cargo build --bin gss -p gss -p gss-python
said=$("${CARGO_TARGET_DIR:-$root/target}/debug/gss" stream --camera 0 --max-frames 1 2>&1 || true)
if ! grep -q -- "--features v4l" <<<"$said"; then
    echo "the default gss does not say how to get camera support; it said: $said" >&2
    exit 1
fi
# The library alone (`gss = { default-features = false }`) carries none of the command line's
# dependencies.
if cargo tree --no-default-features -e normal --depth 1 | grep -E '^[├└]── (clap|indicatif|ctrlc|env_logger|anyhow) '; then
    echo "the library without default features depends on the CLI's crates (above)" >&2
    exit 1
fi
