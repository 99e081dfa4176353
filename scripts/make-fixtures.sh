#!/usr/bin/env bash
# Regenerates tests/fixtures/: a tiny street8 split, the tiny model package trained on it (fp32 and
# int8 variants, ArgMax inside the prior), the same weights exported with token logits and the
# argmax left to the runtime (gss-tiny-logits), and onnxruntime's reference tokens and class maps
# for the Rust parity tests.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup-python.sh
gss=convert/.venv/bin/gss-convert
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$gss" data synth --out "$work/data" --size 64x128 --split train=300,test=6 --seed 11
"$gss" train all --config fixture --data "$work/data" --out "$work/run" --device cpu
"$gss" eval --run "$work/run" --data "$work/data" --split test --out "$work/eval" --panels 0 > /dev/null
rm -rf tests/fixtures/gss-tiny tests/fixtures/gss-tiny-logits tests/fixtures/reference
"$gss" export "$work/run" --out tests/fixtures/gss-tiny --name gss-tiny --metrics "$work/eval/metrics.json" --argmax graph
"$gss" export "$work/run" --out tests/fixtures/gss-tiny-logits --name gss-tiny-logits --metrics "$work/eval/metrics.json" --argmax runtime
"$gss" quantize tests/fixtures/gss-tiny --calib "$work/data" --split train --images 16 --format qdq
"$gss" verify tests/fixtures/gss-tiny --run "$work/run" --data "$work/data" --split test \
    --fixtures tests/fixtures/reference --fixture-images 6
mkdir -p tests/fixtures/inverse
"$gss" inverse tests/fixtures/gss-tiny --out tests/fixtures/inverse/inverse.onnx
"$gss" data synth --out "$work/frame" --size 480x640 --split test=1 --seed 3; "$gss" reference tests/fixtures/gss-tiny --image "$work/frame/images/test/street8_test_000000.png" --out tests/fixtures/frame-640x480
mkdir -p tests/fixtures/street8-tiny
rm -rf tests/fixtures/street8-tiny/*
cp -r "$work/data/classes.json" "$work/data/images" "$work/data/labels" tests/fixtures/street8-tiny/
rm -rf tests/fixtures/street8-tiny/images/train tests/fixtures/street8-tiny/labels/train
du -sh tests/fixtures/*
