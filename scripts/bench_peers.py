#!/usr/bin/env python3
"""Peer benchmark: mobilenet-cli's engine against ONNX Runtime, PyTorch eager and TorchScript.

Every peer runs the same network with the same weights: the shipped MobileNet v1 safetensors
files (uint8 dequantized to f32, BatchNorm already folded), TensorFlow SAME padding (asymmetric
on even-sized stride-2 layers), ReLU6, 1001 classes. Each peer is first checked against the
reference probabilities in tests/fixtures, then timed in interleaved rounds: every round runs
every peer in turn (in a rotating order), so machine noise hits all of them alike. Reported:
the median over rounds of each round's median latency, the ratio ours / peer, and the share of
the FMA peak (2 x mult-adds / latency over peak x threads).

Usage: scripts/bench-peers.sh [--models 1.0_224,0.25_128] [--threads 1,2] [--rounds 7] ...
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from safetensors import safe_open

ROOT = Path(__file__).resolve().parent.parent
DW_STRIDES = [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]


def load_layers(model):
    """[(kind, weight f32 OIHW, bias f32, stride)] for conv_0, dw/pw 1..13, logits."""
    path = ROOT / "presets" / "weights" / f"mobilenet_v1_{model}.safetensors"
    tensors = {}
    with safe_open(str(path), "np") as f:
        for key in f.keys():
            tensors[key] = f.get_tensor(key)

    def weight(name):
        q = tensors[f"{name}.weight"]
        if q.dtype == np.uint8:
            scale = tensors[f"{name}.weight_scale"].astype(np.float32)[0]
            zero = tensors[f"{name}.weight_zero_point"].astype(np.float32)[0]
            return (scale * (q.astype(np.float32) - zero)).astype(np.float32)
        return q.astype(np.float32)

    layers = [("conv", weight("conv_0"), tensors["conv_0.bias"].astype(np.float32), 2)]
    for k in range(1, 14):
        layers.append(("dw", weight(f"dw_{k}"), tensors[f"dw_{k}.bias"].astype(np.float32), DW_STRIDES[k - 1]))
        layers.append(("pw", weight(f"pw_{k}"), tensors[f"pw_{k}.bias"].astype(np.float32), 1))
    layers.append(("fc", weight("logits"), tensors["logits.bias"].astype(np.float32), 1))
    return layers


def same_pads(size, kernel, stride):
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def mult_adds(layers, res):
    total, h = 0, res
    for kind, w, _, stride in layers:
        if kind == "fc":
            total += w.shape[0] * w.shape[1]
            continue
        h, _, _ = same_pads(h, w.shape[2], stride)
        if kind == "dw":
            total += w.shape[0] * 9 * h * h
        else:
            total += w.shape[0] * w.shape[1] * w.shape[2] * w.shape[3] * h * h
    return total


def onnx_session(layers, res, threads):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    inits.append(numpy_helper.from_array(np.array(0.0, np.float32), "zero"))
    inits.append(numpy_helper.from_array(np.array(6.0, np.float32), "six"))
    x, h = "x", res
    for i, (kind, w, b, stride) in enumerate(layers):
        if kind == "fc":
            nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool"]))
            nodes.append(helper.make_node("Flatten", ["pool"], ["flat"]))
            inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
            nodes.append(helper.make_node("Gemm", ["flat", f"w{i}", f"b{i}"], ["logits"], transB=1))
            break
        k = w.shape[2]
        h, top, bottom = same_pads(h, k, stride)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        group = w.shape[0] if kind == "dw" else 1
        nodes.append(
            helper.make_node(
                "Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], kernel_shape=[k, k], strides=[stride, stride],
                pads=[top, top, bottom, bottom], group=group,
            )
        )
        nodes.append(helper.make_node("Clip", [f"c{i}", "zero", "six"], [f"r{i}"]))
        x = f"r{i}"
    graph = helper.make_graph(
        nodes, "mobilenet_v1",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, res, res])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, layers[-1][1].shape[0]])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return lambda inp: session.run(["logits"], {"x": inp})[0]


def torch_module(layers, res):
    import torch
    import torch.nn.functional as F

    class MobileNetV1(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weights = torch.nn.ParameterList()
            self.biases = torch.nn.ParameterList()
            self.meta = []
            h = res
            for kind, w, b, stride in layers:
                self.weights.append(torch.nn.Parameter(torch.from_numpy(w.copy()), requires_grad=False))
                self.biases.append(torch.nn.Parameter(torch.from_numpy(b.copy()), requires_grad=False))
                if kind == "fc":
                    self.meta.append((kind, 1, 0, 0, 1))
                    continue
                h, top, bottom = same_pads(h, w.shape[2], stride)
                self.meta.append((kind, stride, top, bottom, w.shape[0] if kind == "dw" else 1))

        def forward(self, x):
            for i, (kind, stride, top, bottom, groups) in enumerate(self.meta):
                w, b = self.weights[i], self.biases[i]
                if kind == "fc":
                    x = x.mean(dim=(2, 3))
                    return F.linear(x, w, b)
                if top or bottom:
                    x = F.pad(x, (top, bottom, top, bottom))
                x = F.relu6(F.conv2d(x, w, b, stride=stride, groups=groups))
            return x

    return MobileNetV1().eval()


def peers(layers, res, threads, which):
    out = {}
    if "onnxruntime" in which:
        out["onnxruntime"] = onnx_session(layers, res, threads)
    if "torch" in which or "torchscript" in which:
        import torch

        torch.set_num_threads(threads)
        module = torch_module(layers, res)
        example = torch.zeros(1, 3, res, res)

        def run_with(m):
            def run(inp):
                with torch.inference_mode():
                    return m(torch.from_numpy(inp)).numpy()
            return run

        if "torch" in which:
            out["torch-eager"] = run_with(module)
        if "torchscript" in which:
            with torch.inference_mode():
                frozen = torch.jit.freeze(torch.jit.trace(module, example))
                frozen = torch.jit.optimize_for_inference(frozen)
            out["torchscript-frozen"] = run_with(frozen)
    return out


def check(fn, model):
    """Max |probabilities - reference| over the reference images (the peer is the same network)."""
    path = ROOT / "tests" / "fixtures" / f"reference_mobilenet_v1_{model}.safetensors"
    worst = 0.0
    with safe_open(str(path), "np") as f:
        for image in ["grace_hopper", "chelsea", "bike"]:
            logits = fn(f.get_tensor(f"{image}.input").astype(np.float32)).astype(np.float64)
            probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
            worst = max(worst, float(np.abs(probs - f.get_tensor(f"{image}.probs")).max()))
    return worst


def time_python(fn, inp, warmup, runs):
    for _ in range(warmup):
        fn(inp)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(inp)
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def time_ours(binary, model, threads, warmup, runs, engine):
    out = subprocess.run(
        [binary, "bench", "--model", model, "--threads", str(threads), "--warmup", str(warmup),
         "--runs", str(runs), "--engine", engine, "--format", "json"],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)["latency_ms"]["median"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "mobilenet-cli"))
    parser.add_argument("--models", default="1.0_224,0.25_128")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--peers", default="onnxruntime,torch,torchscript")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--runs", type=int, default=30, help="timed runs per peer per round")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--reference-engine", action="store_true", help="also time --engine reference")
    parser.add_argument("--peak-gflops-per-core", type=float, default=256.0,
                        help="FMA peak per core; 256 is what a register-only FMA loop measures on this "
                             "2-core AMD EPYC (two 512-bit FMAs per cycle: 245-276 GFLOP/s with boost)")
    parser.add_argument("--output", default=str(ROOT / "scripts" / "results" / "peers.json"))
    args = parser.parse_args()

    which = set(args.peers.split(","))
    results = []
    for model in args.models.split(","):
        layers = load_layers(model)
        res = int(model.split("_")[1])
        work = mult_adds(layers, res)
        inp = np.random.default_rng(0).uniform(-1, 1, (1, 3, res, res)).astype(np.float32)
        for threads in [int(t) for t in args.threads.split(",")]:
            runners = peers(layers, res, threads, which)
            errors = {name: check(fn, model) for name, fn in runners.items()}
            for name, err in errors.items():
                if err > 1e-4:
                    sys.exit(f"{name} disagrees with the reference probabilities by {err}: not the same network")
            ours = ["ours"] + (["ours-reference"] if args.reference_engine else [])
            names = ours + list(runners)
            rounds = {name: [] for name in names}
            for r in range(args.rounds):
                order = names[r % len(names):] + names[:r % len(names)]
                for name in order:
                    if name == "ours":
                        t = time_ours(args.binary, model, threads, args.warmup, args.runs, "fast")
                    elif name == "ours-reference":
                        t = time_ours(args.binary, model, threads, args.warmup, args.runs, "reference")
                    else:
                        import torch
                        torch.set_num_threads(threads)
                        t = time_python(runners[name], inp, args.warmup, args.runs)
                    rounds[name].append(t)
            medians = {name: statistics.median(v) for name, v in rounds.items()}
            peak = args.peak_gflops_per_core * threads
            for name in names:
                ms = medians[name]
                results.append({
                    "model": model, "threads": threads, "peer": name, "median_ms": ms,
                    "rounds_ms": rounds[name], "ratio_ours_over_peer": medians["ours"] / ms,
                    "percent_of_peak": 100.0 * 2 * work / (ms * 1e-3) / 1e9 / peak,
                    "max_abs_prob_error": errors.get(name),
                })
            print(f"\n{model}, {threads} thread(s), {args.rounds} interleaved rounds x {args.runs} runs "
                  f"({work / 1e6:.1f} M mult-adds; floor {2 * work / (peak * 1e9) * 1e3:.2f} ms at "
                  f"{peak:.0f} GFLOP/s)")
            print(f"  {'peer':<20} {'median ms':>10} {'ours/peer':>10} {'% peak':>8}")
            for name in names:
                row = next(r for r in results if r["model"] == model and r["threads"] == threads and r["peer"] == name)
                print(f"  {name:<20} {row['median_ms']:>10.3f} {row['ratio_ours_over_peer']:>10.2f} "
                      f"{row['percent_of_peak']:>7.1f}%")

    import onnxruntime
    env = {
        "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown"),
        "cores": os.cpu_count(), "python": platform.python_version(), "onnxruntime": onnxruntime.__version__,
    }
    try:
        import torch
        env["torch"] = torch.__version__
    except ImportError:
        pass
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"environment": env, "peak_gflops_per_core": args.peak_gflops_per_core,
                   "rounds": args.rounds, "runs": args.runs, "results": results}, f, indent=2)
    os.replace(tmp, args.output)
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
