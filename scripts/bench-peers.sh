#!/usr/bin/env bash
# Peer benchmark (see scripts/bench_peers.py): builds mobilenet-cli in release mode, makes a
# virtualenv with ONNX Runtime and PyTorch from PyPI (torch's wheel pulls about 3 GB of CUDA
# libraries; only the CPU is used), checks each peer against the reference probabilities and times
# ours against them in interleaved rounds on MobileNet v1 1.0/224, v1 0.25/128 and MobileNetV2
# 1.0/224 (the shipped weights).
# Usage: scripts/bench-peers.sh [--models 1.0_224,0.25_128,v2_1.0_224] [--threads 1,2]
#        [--rounds 7] [--runs 30] [--reference-engine] [other bench_peers.py options, see --help]
# VENV=path reuses a virtualenv; CARGO_TARGET_DIR is honoured (the binary is taken from there).
#
# int8 (issue 13): scripts/bench-peers.sh --int8 [--models 1.0_224,v2_1.0_224] [--threads 1,2]
#        [--rounds 7] [--runs 30] [--tflite-dir ../shared/int8/tflite] (see scripts/bench_peers_int8.py)
# times our exact int8 engine (examples/int8_speed.rs) against TFLite+XNNPACK (ai-edge-litert),
# ONNX Runtime int8 (QLinearConv, s8 weights) and OpenVINO where it installs, in a virtualenv
# without torch.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
if [ "${1:-}" = "--int8" ]; then
  shift
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
  fi
  "$VENV/bin/python" -m pip install --quiet numpy safetensors onnx onnxruntime ai-edge-litert
  "$VENV/bin/python" -m pip install --quiet openvino || echo "openvino did not install: skipped"
  cargo build --release --quiet --example int8_speed
  exec "$VENV/bin/python" scripts/bench_peers_int8.py "$@"
fi
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet numpy safetensors onnx onnxruntime torch
fi
cargo build --release --quiet
exec "$VENV/bin/python" scripts/bench_peers.py "$@"
