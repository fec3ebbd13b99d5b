#!/usr/bin/env python3
"""Adds the activation quantization of TFLite's graph to a shipped weights file.

Usage: add_activation_quantization.py WEIGHTS PARAMS OUT

WEIGHTS is a shipped file (presets/weights/mobilenet_*.safetensors), PARAMS the project's
shared `int8/params_mobilenet_*.safetensors` of the same model. OUT gets, after WEIGHTS' own
tensors, every `NAME.{input,output,input1,input2}_{scale,zero_point}` tensor of PARAMS as
F32 [1] (scales copied byte for byte, the I32 zero points converted exactly), named as
`mobilenet_cli::nn::names` names them. The existing tensors' bytes are kept as a prefix of
the new data section, unchanged, and the metadata is kept with one key added,
`activation_quantization`, naming PARAMS and its sha256. Standard library only.
"""

import hashlib
import json
import re
import struct
import sys

ACTIVATION = re.compile(r"^(.+)\.(input|output|input1|input2)_(scale|zero_point)$")


def read(path):
    data = open(path, "rb").read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    return header, data[8 + length :], data


def main(weights_path, params_path, out_path):
    header, body, _ = read(weights_path)
    params, params_body, params_bytes = read(params_path)
    names = sorted(k for k in params if ACTIVATION.match(k))
    if not names:
        sys.exit(f"{params_path}: no activation quantization tensors")
    present = [n for n in names if n in header]
    if present:
        sys.exit(f"{weights_path}: already has {present[0]}")
    added = bytearray()
    offset = len(body)
    for name in names:
        entry = params[name]
        start, end = entry["data_offsets"]
        raw = params_body[start:end]
        if entry["shape"] != [1]:
            sys.exit(f"{params_path}: {name} has shape {entry['shape']}, expected [1]")
        if entry["dtype"] == "I32":
            (value,) = struct.unpack("<i", raw)
            raw = struct.pack("<f", float(value))
            if struct.unpack("<f", raw)[0] != value:
                sys.exit(f"{name}: {value} is not exact in f32")
        elif entry["dtype"] != "F32":
            sys.exit(f"{params_path}: {name} has dtype {entry['dtype']}")
        header[name] = {"dtype": "F32", "shape": [1], "data_offsets": [offset, offset + 4]}
        added += raw
        offset += 4
    source = params_path.rsplit("/", 1)[-1]
    digest = hashlib.sha256(params_bytes).hexdigest()
    header.setdefault("__metadata__", {})["activation_quantization"] = (
        f"input/output scale and zero point of every convolution (and of v2's residual ADDs) in "
        f"TFLite's uint8 graph, from the project's shared int8/{source} (sha256 {digest})"
    )
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(out_path, "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text + body + bytes(added))
    print(f"{out_path}: {len(names)} tensors added")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
