#!/usr/bin/env python3
"""FLIM-like test data for `sepfit batch`: y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + bg.

256 time points per curve (t = 0..12.75 ns in 0.05 ns steps), Poisson counts; per curve
tau1 ~ U(0.3, 0.8) ns, tau2 ~ U(2, 4) ns, a1 ~ U(200, 800), a2 ~ U(100, 400), bg ~ U(2, 10).
Long CSV (`curve,t,y`, rows of a curve contiguous) or wide CSV (`t,c0,c1,...`).

usage: make_flim.py N OUT.csv [--wide] [--seed S]
"""
import sys

import numpy as np


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n, out = int(args[0]), args[1]
    wide = "--wide" in sys.argv
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 1
    rng = np.random.default_rng(seed)
    t = np.arange(256) * 0.05
    ts = [f"{v:.2f}" for v in t]
    with open(out, "w") as f:
        if wide:
            f.write("t," + ",".join(f"c{i}" for i in range(n)) + "\n")
            ys = []
        else:
            f.write("curve,t,y\n")
        for start in range(0, n, 10000):
            m = min(10000, n - start)
            tau1 = rng.uniform(0.3, 0.8, m)[:, None]
            tau2 = rng.uniform(2.0, 4.0, m)[:, None]
            a1 = rng.uniform(200, 800, m)[:, None]
            a2 = rng.uniform(100, 400, m)[:, None]
            bg = rng.uniform(2, 10, m)[:, None]
            lam = a1 * np.exp(-t / tau1) + a2 * np.exp(-t / tau2) + bg
            y = rng.poisson(lam)
            if wide:
                ys.append(y)
                continue
            lines = []
            for i in range(m):
                cid = start + i
                yi = y[i]
                lines.append("".join(f"{cid},{ts[k]},{yi[k]}\n" for k in range(256)))
            f.write("".join(lines))
        if wide:
            y = np.vstack(ys)
            for k in range(256):
                f.write(ts[k] + "," + ",".join(map(str, y[:, k])) + "\n")


if __name__ == "__main__":
    main()
