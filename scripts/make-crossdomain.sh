#!/usr/bin/env bash
# The cross-domain test set: 200 street8 scenes seen off the training domain (fog, dusk, other camera
# heights / pitch / field of view, held-out textures and colours; a random mix per image, listed in
# OUT_DIR/domain.json).  Seed 7, so none of its scenes is one of street8's seed-0 training scenes.
# Usage: scripts/make-crossdomain.sh [OUT_DIR] [extra `gss-convert data synth` flags, e.g. --workers 1]
# Then: gss-convert eval --run RUN --data OUT_DIR --split test --out RUN/eval-shift
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/data/street8-shift}"
shift $(( $# > 1 ? 1 : $# )) || true

bash "$root/scripts/setup-python.sh"
gss="$root/convert/.venv/bin/gss-convert"

"$gss" data synth --out "$out" --size 256x512 --split test=200 --seed 7 --domain shift "$@"
