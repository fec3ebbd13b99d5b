#!/usr/bin/env bash
# Peer benchmark (see scripts/bench_peers.py): builds mobilenet-cli in release mode, makes a
# virtualenv with ONNX Runtime and PyTorch from PyPI (torch's wheel pulls about 3 GB of CUDA
# libraries; only the CPU is used), and times ours against them in interleaved rounds.
# Usage: scripts/bench-peers.sh [bench_peers.py options]; VENV=path to reuse a virtualenv.
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
