#!/usr/bin/env python3
"""Writes data/wells.csv: 8 wells (curves) of a bi-exponential decay sharing the rates
k1 = 2, k2 = 0.3, each with its own amplitudes, on a common time axis of 40 points, with
Gaussian noise of sd 0.01 (Python's own random module, seed 2026: no numpy needed).

    python3 scripts/make_wells.py [OUT]
"""
import math
import random
import sys

out = sys.argv[1] if len(sys.argv) > 1 else "data/wells.csv"
rng = random.Random(2026)
with open(out, "w") as f:
    f.write("well,t,y\n")
    for w in range(8):
        a1 = 1.0 + 0.25 * w
        a2 = 0.8 - 0.05 * w
        for i in range(40):
            t = i * 0.15
            y = a1 * math.exp(-2.0 * t) + a2 * math.exp(-0.3 * t) + rng.gauss(0.0, 0.01)
            f.write(f"w{w + 1},{t:.2f},{y:.6f}\n")
