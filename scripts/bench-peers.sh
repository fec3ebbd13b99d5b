#!/usr/bin/env bash
# Peer benchmark (see scripts/bench_peers.py): builds mobilenet-cli in release mode, makes a
# virtualenv with ONNX Runtime and PyTorch from PyPI (torch's wheel pulls about 3 GB of CUDA
# libraries; only the CPU is used), checks each peer against the reference probabilities and times
# ours against them in interleaved rounds on MobileNet v1 1.0/224, v1 0.25/128 and MobileNetV2
# 1.0/224 (the shipped weights).
# Usage: scripts/bench-peers.sh [--models 1.0_224,0.25_128,v2_1.0_224] [--threads 1,2]
#        [--rounds 7] [--runs 30] [--reference-engine] [other bench_peers.py options, see --help]
# VENV=path reuses a virtualenv; CARGO_TARGET_DIR is honoured (the binary is taken from there).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet numpy safetensors onnx onnxruntime torch
fi
cargo build --release --quiet
exec "$VENV/bin/python" scripts/bench_peers.py "$@"
