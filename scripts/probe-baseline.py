#!/usr/bin/env python3
"""A scikit-learn baseline for `retrain`: logistic regression on the same feature vectors and the
same split, read from the file `mobilenet-cli retrain --features-out FILE` writes.

    mobilenet-cli retrain train/ --test val/ -o mine.safetensors --features-out feats.safetensors
    python3 scripts/probe-baseline.py feats.safetensors [--train-on train|train+validation]

Needs numpy, safetensors and scikit-learn. It fits sklearn's LogisticRegression (L2, C=1, lbfgs:
the usual "linear probe") on the training rows (split 0; with --train-on train+validation also the
validation rows, as a probe without early stopping would) and prints its accuracy on the test
rows (split 2) with the Wilson 95% interval, the same interval `retrain` reports (Wilson 1927).
"""
import argparse
import json
import math

import numpy as np
from safetensors.numpy import load_file
from safetensors import safe_open
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def wilson(k, n, z=1.959963984540054):
    p = k / n
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return centre - half, centre + half


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("features", help="the file retrain --features-out wrote")
    ap.add_argument("--train-on", choices=["train", "train+validation"], default="train")
    ap.add_argument("--C", type=float, default=1.0, help="inverse L2 strength (sklearn's C)")
    ap.add_argument("--standardise", action="store_true", help="scale each feature to unit variance first")
    args = ap.parse_args()

    t = load_file(args.features)
    with safe_open(args.features, "np") as f:
        meta = f.metadata()
    X, y, split = t["features"], t["labels"], t["split"]
    classes = json.loads(meta["classes"])
    train = split == 0 if args.train_on == "train" else split <= 1
    test = split == 2
    if not test.any():
        raise SystemExit(f"{args.features}: no test rows (split 2)")
    probe = LogisticRegression(C=args.C, max_iter=10000)
    if args.standardise:
        probe = make_pipeline(StandardScaler(), probe)
    probe.fit(X[train], y[train])
    predicted = probe.predict(X[test])
    k, n = int((predicted == y[test]).sum()), int(test.sum())
    lo, hi = wilson(k, n)
    print(f"{meta['base_model']} {json.loads(meta['feature'])['layer']} x{X.shape[1]}, classes {classes}")
    print(f"logistic regression (C={args.C}{', standardised' if args.standardise else ''}) "
          f"trained on {int(train.sum())} ({args.train_on}), "
          f"test accuracy {100 * k / n:.2f}% ({k} of {n}), 95% interval {100 * lo:.2f}% to {100 * hi:.2f}%")


if __name__ == "__main__":
    main()
