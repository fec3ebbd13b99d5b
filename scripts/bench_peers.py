#!/usr/bin/env python3
"""Peer benchmark: mobilenet-cli's engine against ONNX Runtime, PyTorch eager and TorchScript.

Models: MobileNet v1 (`1.0_224`, `0.25_128`, any shipped `A_R`) and MobileNetV2 1.0/224
(`v2_1.0_224`). Every peer runs the same network with the same weights: the shipped safetensors
files in presets/weights (uint8 dequantized to f32 as scale * (q - zero_point), BatchNorm already
folded into the biases), TensorFlow SAME padding (asymmetric, 0 before and 1 after, on
even-sized stride-2 layers), ReLU6, 1001 classes. v1 is conv_0 and 13 depthwise/pointwise
pairs; v2 is conv_0, 17 inverted residual blocks (block_0 without the 1x1 expansion; linear
projections; the block input added to the projection's output on the stride-1 blocks whose width
does not change), conv_last (1280) and the classifier. Both are built from one layer list with
the same primitives: an ONNX graph (onnx.helper) run by ONNX Runtime, and a torch.nn.Module run
eagerly and as a frozen TorchScript trace. Ours is `mobilenet-cli bench --model NAME` (the
fast engine unless --reference-engine adds the candle-ops one), run as a subprocess.

Each peer is first checked against the reference probabilities in tests/fixtures (three
images; it must agree to 1e-4, otherwise it is not the same network and the script stops), and
the peers' mult-adds (counted from the layers) must equal the ones ours reports. Then all are
timed in interleaved rounds: every round runs every peer in turn (in a rotating order), so
machine noise hits all of them alike; within a round each peer does --warmup untimed and --runs
timed forward passes on one fixed random input, batch 1, fp32. Reported per model and thread
count: the median over rounds of each round's median latency, the ratio ours / peer (below 1:
ours is faster), and the share of the FMA peak (2 x mult-adds / latency over peak x threads;
mult-adds under the paper convention: convolutions and the classifier only, so residual adds,
ReLU6 and pooling count zero). JSON goes to scripts/results/peers.json.

Usage: scripts/bench-peers.sh [--models 1.0_224,0.25_128,v2_1.0_224] [--threads 1,2]
       [--rounds 7] [--runs 30] [--warmup 5] [--peers onnxruntime,torch,torchscript]
       [--reference-engine] [--output FILE]
       (VENV=path reuses a virtualenv; the binary is $CARGO_TARGET_DIR/release/mobilenet-cli,
       default target/release)
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import safe_open

ROOT = Path(__file__).resolve().parent.parent
V1_DW_STRIDES = [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]
# Depthwise stride of each of v2's 17 blocks (paper Table 2: the first block of each stage strides).
V2_DW_STRIDES = [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1]
MAX_PROB_ERROR = 1e-4


@dataclass(frozen=True)
class Model:
    """A shipped model: NAME as mobilenet-cli's --model takes it (1.0_224, v2_1.0_224)."""

    name: str
    family: str
    res: int

    @property
    def stem(self):
        return self.name if self.family == "v2" else f"v1_{self.name}"

    @property
    def weights(self):
        return ROOT / "presets" / "weights" / f"mobilenet_{self.stem}.safetensors"

    @property
    def fixture(self):
        return ROOT / "tests" / "fixtures" / f"reference_mobilenet_{self.stem}.safetensors"


def parse_model(name):
    family, rest = ("v2", name[3:]) if name.startswith("v2_") else ("v1", name)
    model = Model(name, family, int(rest.split("_")[-1]))
    if not model.weights.exists():
        shipped = sorted(p.stem.removeprefix("mobilenet_").removeprefix("v1_")
                         for p in (ROOT / "presets" / "weights").glob("mobilenet_*.safetensors"))
        sys.exit(f"--models: no shipped weights for {name!r} (shipped: {', '.join(shipped)})")
    return model


@dataclass
class Layer:
    """One convolution or the classifier, with BatchNorm folded into its bias.

    kind: conv (dense, any kernel), dw (depthwise: groups = channels) or fc (global average
    pool, then weight [classes, C]). residual_from: index of the layer whose input is added to
    this layer's output (after the activation, which v2's projections do not have).
    """

    name: str
    kind: str
    weight: np.ndarray
    bias: np.ndarray
    stride: int = 1
    relu6: bool = True
    residual_from: int | None = None


def read_weights(path):
    """(tensors, metadata) of a safetensors file as NumPy arrays."""
    with safe_open(str(path), "np") as f:
        return {key: f.get_tensor(key) for key in f.keys()}, f.metadata() or {}


def dequantized(tensors, name, kind, stride=1, relu6=True):
    """Layer NAME: f32 weight (uint8 -> scale * (q - zero_point), float weights as they are) and bias."""
    q = tensors[f"{name}.weight"]
    if q.dtype == np.uint8:
        scale = tensors[f"{name}.weight_scale"].astype(np.float32)[0]
        zero = tensors[f"{name}.weight_zero_point"].astype(np.float32)[0]
        weight = (scale * (q.astype(np.float32) - zero)).astype(np.float32)
    else:
        weight = q.astype(np.float32)
    return Layer(name, kind, weight, tensors[f"{name}.bias"].astype(np.float32), stride, relu6)


def check_strides(metadata, expected, path):
    if "dw_strides" in metadata and json.loads(metadata["dw_strides"]) != expected:
        sys.exit(f"{path}: depthwise strides {metadata['dw_strides']} are not the expected {expected}")


def v1_layers(tensors, metadata, path):
    """conv_0 (stride 2), dw_k / pw_k for k = 1..13, logits."""
    check_strides(metadata, V1_DW_STRIDES, path)
    layers = [dequantized(tensors, "conv_0", "conv", stride=2)]
    for k, stride in enumerate(V1_DW_STRIDES, start=1):
        layers.append(dequantized(tensors, f"dw_{k}", "dw", stride))
        layers.append(dequantized(tensors, f"pw_{k}", "conv"))
    layers.append(dequantized(tensors, "logits", "fc", relu6=False))
    return layers


def v2_layers(tensors, metadata, path):
    """conv_0 (stride 2); block_k.{expand,dw,project} (block_0 has no expand); conv_last; logits.

    A block adds its input to its linear projection's output when its depthwise layer has stride
    1 and the projection keeps the block's input width.
    """
    check_strides(metadata, V2_DW_STRIDES, path)
    layers = [dequantized(tensors, "conv_0", "conv", stride=2)]
    for k, stride in enumerate(V2_DW_STRIDES):
        first = len(layers)
        width = layers[-1].weight.shape[0]
        if f"block_{k}.expand.weight" in tensors:
            layers.append(dequantized(tensors, f"block_{k}.expand", "conv"))
        layers.append(dequantized(tensors, f"block_{k}.dw", "dw", stride))
        project = dequantized(tensors, f"block_{k}.project", "conv", relu6=False)
        if stride == 1 and project.weight.shape[0] == width:
            project.residual_from = first
        layers.append(project)
    layers.append(dequantized(tensors, "conv_last", "conv"))
    layers.append(dequantized(tensors, "logits", "fc", relu6=False))
    return layers


def load_layers(model):
    """The model's layers in execution order, from its shipped safetensors file."""
    tensors, metadata = read_weights(model.weights)
    build = v2_layers if model.family == "v2" else v1_layers
    return build(tensors, metadata, model.weights)


def same_pads(size, kernel, stride):
    """TensorFlow SAME: (output size, pad before, pad after); the odd pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def conv_geometry(layers, res):
    """[(output size, pad before, pad after)] per convolution layer (None for the classifier)."""
    out, h = [], res
    for layer in layers:
        if layer.kind == "fc":
            out.append(None)
            continue
        h, before, after = same_pads(h, layer.weight.shape[2], layer.stride)
        out.append((h, before, after))
    return out


def mult_adds(layers, res):
    """Paper convention: per output pixel one mult-add per weight (depthwise [C,1,k,k] included)."""
    total = 0
    for layer, geometry in zip(layers, conv_geometry(layers, res)):
        pixels = 1 if geometry is None else geometry[0] ** 2
        total += layer.weight.size * pixels
    return total


def groups(layer):
    return layer.weight.shape[0] if layer.kind == "dw" else 1


def residual_sources(layers):
    return {layer.residual_from for layer in layers if layer.residual_from is not None}


def onnx_session(layers, res, threads):
    """The network as an ONNX graph (Conv with explicit SAME pads, Clip for ReLU6, Add for
    residuals, GlobalAveragePool + Gemm), in an ONNX Runtime CPU session with `threads` threads."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    nodes = []
    inits = [numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
             numpy_helper.from_array(np.array(6.0, np.float32), "six")]
    inputs = []  # name of each layer's input tensor
    x = "x"
    for i, (layer, geometry) in enumerate(zip(layers, conv_geometry(layers, res))):
        inputs.append(x)
        inits += [numpy_helper.from_array(layer.weight, f"w{i}"), numpy_helper.from_array(layer.bias, f"b{i}")]
        if layer.kind == "fc":
            nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool"]))
            nodes.append(helper.make_node("Flatten", ["pool"], ["flat"]))
            nodes.append(helper.make_node("Gemm", ["flat", f"w{i}", f"b{i}"], ["logits"], transB=1))
            break
        _, before, after = geometry
        k = layer.weight.shape[2]
        nodes.append(helper.make_node(
            "Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], kernel_shape=[k, k], strides=[layer.stride] * 2,
            pads=[before, before, after, after], group=groups(layer),
        ))
        x = f"c{i}"
        if layer.relu6:
            nodes.append(helper.make_node("Clip", [x, "zero", "six"], [f"r{i}"]))
            x = f"r{i}"
        if layer.residual_from is not None:
            nodes.append(helper.make_node("Add", [x, inputs[layer.residual_from]], [f"a{i}"]))
            x = f"a{i}"
    graph = helper.make_graph(
        nodes, "mobilenet",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, res, res])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, layers[-1].weight.shape[0]])],
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
    """The network as a torch.nn.Module: F.conv2d (symmetric SAME pads passed to it, asymmetric
    ones by F.pad first), F.relu6, residual adds, mean over H and W, F.linear."""
    import torch
    import torch.nn.functional as F

    class MobileNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weights = torch.nn.ParameterList()
            self.biases = torch.nn.ParameterList()
            self.meta = []
            sources = residual_sources(layers)
            for i, (layer, geometry) in enumerate(zip(layers, conv_geometry(layers, res))):
                self.weights.append(torch.nn.Parameter(torch.from_numpy(layer.weight.copy()), requires_grad=False))
                self.biases.append(torch.nn.Parameter(torch.from_numpy(layer.bias.copy()), requires_grad=False))
                _, before, after = geometry or (0, 0, 0)
                extra = None if before == after else (before, after, before, after)
                self.meta.append((layer.kind, layer.stride, before if extra is None else 0, extra, groups(layer),
                                  layer.relu6, i in sources, layer.residual_from))

        def forward(self, x):
            saved = {}
            for i, (kind, stride, padding, extra, groups_, relu6, save, residual_from) in enumerate(self.meta):
                w, b = self.weights[i], self.biases[i]
                if kind == "fc":
                    return F.linear(x.mean(dim=(2, 3)), w, b)
                if save:
                    saved[i] = x
                if extra is not None:
                    x = F.pad(x, extra)
                x = F.conv2d(x, w, b, stride=stride, padding=padding, groups=groups_)
                if relu6:
                    x = F.relu6(x)
                if residual_from is not None:
                    x = x + saved.pop(residual_from)
            return x

    return MobileNet().eval()


def peers(layers, res, threads, which):
    """{peer name: function from a NumPy input [1, 3, R, R] to NumPy logits} for the chosen peers."""
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
    """Max |softmax(logits) - reference probabilities| over the three reference images."""
    worst = 0.0
    with safe_open(str(model.fixture), "np") as f:
        for image in ["grace_hopper", "chelsea", "bike"]:
            logits = fn(f.get_tensor(f"{image}.input").astype(np.float32)).astype(np.float64)
            probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
            worst = max(worst, float(np.abs(probs - f.get_tensor(f"{image}.probs")).max()))
    return worst


def time_python(fn, inp, warmup, runs):
    """Median latency in ms of `runs` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn(inp)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(inp)
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def time_ours(binary, model, threads, warmup, runs, engine):
    """(median latency in ms, mult-adds) from `mobilenet-cli bench --model NAME --format json`."""
    out = subprocess.run(
        [binary, "bench", "--model", model.name, "--threads", str(threads), "--warmup", str(warmup),
         "--runs", str(runs), "--engine", engine, "--format", "json"],
        check=True, capture_output=True, text=True,
    )
    report = json.loads(out.stdout)
    return report["latency_ms"]["median"], report["mult_adds"]


def interleaved_rounds(names, runners, args, model, threads, inp):
    """{peer: [median ms of each round]}; round r starts at peer r (mod the number of peers)."""
    rounds = {name: [] for name in names}
    engines = {"ours": "fast", "ours-reference": "reference"}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            if name in engines:
                t, _ = time_ours(args.binary, model, threads, args.warmup, args.runs, engines[name])
            else:
                if name.startswith("torch"):
                    import torch
                    torch.set_num_threads(threads)
                t = time_python(runners[name], inp, args.warmup, args.runs)
            rounds[name].append(t)
    return rounds


def print_table(model, threads, args, work, peak, rows, errors):
    print(f"\n{model.name}, {threads} thread(s), {args.rounds} interleaved rounds x {args.runs} runs "
          f"({work / 1e6:.1f} M mult-adds; floor {2 * work / (peak * 1e9) * 1e3:.3f} ms at "
          f"{peak:.0f} GFLOP/s)")
    print(f"  {'peer':<20} {'median ms':>10} {'ours/peer':>10} {'% peak':>8}")
    for row in rows:
        print(f"  {row['peer']:<20} {row['median_ms']:>10.3f} {row['ratio_ours_over_peer']:>10.2f} "
              f"{row['percent_of_peak']:>7.1f}%")
    if errors:
        print("  max |probs - reference|: " + ", ".join(f"{name} {err:.1e}" for name, err in errors.items()))


def environment():
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
    return env


def main():
    target = Path(ROOT, os.environ.get("CARGO_TARGET_DIR", "target"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(target / "release" / "mobilenet-cli"))
    parser.add_argument("--models", default="1.0_224,0.25_128,v2_1.0_224",
                        help="shipped models, as mobilenet-cli bench --model takes them")
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
    for model in [parse_model(name) for name in args.models.split(",")]:
        layers = load_layers(model)
        work = mult_adds(layers, model.res)
        _, ours_work = time_ours(args.binary, model, 1, 0, 1, "fast")
        if ours_work != work:
            sys.exit(f"{model.name}: the peers' network has {work} mult-adds, mobilenet-cli reports {ours_work}")
        inp = np.random.default_rng(0).uniform(-1, 1, (1, 3, model.res, model.res)).astype(np.float32)
        for threads in [int(t) for t in args.threads.split(",")]:
            runners = peers(layers, model.res, threads, which)
            errors = {name: check(fn, model) for name, fn in runners.items()}
            for name, err in errors.items():
                if err > MAX_PROB_ERROR:
                    sys.exit(f"{model.name}: {name} disagrees with the reference probabilities by {err}: "
                             "not the same network")
            names = ["ours"] + (["ours-reference"] if args.reference_engine else []) + list(runners)
            rounds = interleaved_rounds(names, runners, args, model, threads, inp)
            medians = {name: statistics.median(v) for name, v in rounds.items()}
            peak = args.peak_gflops_per_core * threads
            rows = [{
                "model": model.name, "family": model.family, "threads": threads, "peer": name,
                "median_ms": medians[name], "rounds_ms": rounds[name],
                "ratio_ours_over_peer": medians["ours"] / medians[name], "mult_adds": work,
                "percent_of_peak": 100.0 * 2 * work / (medians[name] * 1e-3) / 1e9 / peak,
                "max_abs_prob_error": errors.get(name),
            } for name in names]
            results += rows
            print_table(model, threads, args, work, peak, rows, errors)

    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"environment": environment(), "peak_gflops_per_core": args.peak_gflops_per_core,
                   "rounds": args.rounds, "runs": args.runs, "results": results}, f, indent=2)
    os.replace(tmp, args.output)
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
