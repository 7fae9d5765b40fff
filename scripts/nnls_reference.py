#!/usr/bin/env python3
"""Reference optima of separable least-squares problems with bounded linear coefficients.

For each problem the unconstrained least-squares fit puts a linear coefficient outside its
bounds. The reference optimum is found independently of sepfit: the reduced loss

    L(b) = min_{l <= a <= u} || y - phi0(b) - Phi(b) a ||^2

is evaluated with scipy.optimize.nnls (bounds l = 0, u = inf) or scipy.optimize.lsq_linear
(general bounds) inside a brute-force outer search over the nonlinear parameters b: a dense
grid over the given ranges, then scipy.optimize.minimize(method="Nelder-Mead") polish of L
from the best grid points (restarted until it stops improving). The linear coefficients at
the optimum come from the inner bounded solve there.

Writes data/reference/nnls/<name>.csv (the data) and data/reference/nnls/reference.json
(formula, bounds, starts for the Rust test, reference a, b, RSS, and which coefficients are
on a bound), so that crates/sepfit/tests/linear_bounds.rs runs without Python.

usage: python3 scripts/nnls_reference.py   (numpy, scipy; see scripts/requirements.txt)
"""
import itertools
import json
import os

import numpy as np
from scipy.optimize import lsq_linear, minimize, nnls

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "reference", "nnls")


def gauss(x, m, s):
    return np.exp(-((x - m) ** 2) / (2 * s**2))


# Each problem: basis(x, b) -> (n x p) matrix, linear names, nonlinear names, bounds of the
# linear coefficients, grid ranges of b, data generator, sepfit formula.
PROBLEMS = [
    {
        "name": "biexp_const",
        "formula": "y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + c",
        "x": "t",
        "linear": ["a1", "a2", "c"],
        "nonlinear": ["tau1", "tau2"],
        "lower": [0.0, 0.0, 0.0],
        "upper": [np.inf, np.inf, np.inf],
        "bounds": ["a1>=0", "a2>=0", "c>=0"],
        "basis": lambda t, b: np.column_stack([np.exp(-t / b[0]), np.exp(-t / b[1]), np.ones_like(t)]),
        "grid": [np.linspace(0.2, 1.5, 60), np.linspace(2.0, 8.0, 60)],
        "start": [0.5, 3.0],
        # Decays on a background that drifts below zero: the least-squares c is negative.
        "data": lambda rng: (
            lambda t: (t, 6.0 * np.exp(-t / 0.6) + 2.0 * np.exp(-t / 3.5) - 0.25 + 0.02 * rng.standard_normal(t.size))
        )(np.linspace(0.0, 12.0, 121)),
    },
    {
        "name": "two_gaussians",
        "formula": "y ~ a1*exp(-(x-m1)^2/(2*s1^2)) + a2*exp(-(x-m2)^2/(2*s2^2)) + c",
        "x": "x",
        "linear": ["a1", "a2", "c"],
        "nonlinear": ["m1", "s1", "m2", "s2"],
        "lower": [0.0, 0.0, 0.0],
        "upper": [2.0, np.inf, np.inf],
        "bounds": ["0<=a1<=2", "a2>=0", "c>=0"],
        "basis": lambda x, b: np.column_stack([gauss(x, b[0], b[1]), gauss(x, b[2], b[3]), np.ones_like(x)]),
        "grid": [np.linspace(2.0, 4.0, 11), np.linspace(0.4, 1.5, 10), np.linspace(5.0, 8.0, 11), np.linspace(0.4, 1.5, 10)],
        "start": [3.0, 0.8, 6.5, 0.9],
        # The first peak is taller than its upper bound 2 and the baseline is negative.
        "data": lambda rng: (
            lambda x: (x, 2.6 * gauss(x, 3.0, 0.7) + 1.5 * gauss(x, 6.5, 1.0) - 0.1 + 0.03 * rng.standard_normal(x.size))
        )(np.linspace(0.0, 10.0, 101)),
    },
    {
        "name": "exp_drift",
        "formula": "y ~ a*exp(-k*t) + c + d*t",
        "x": "t",
        "linear": ["a", "c", "d"],
        "nonlinear": ["k"],
        "lower": [0.0, 0.0, 0.0],
        "upper": [np.inf, np.inf, np.inf],
        "bounds": ["a>=0", "c>=0", "d>=0"],
        "basis": lambda t, b: np.column_stack([np.exp(-b[0] * t), np.ones_like(t), t]),
        "grid": [np.linspace(0.05, 3.0, 400)],
        "start": [0.5],
        # A decay on a baseline that drifts down: the least-squares drift d is negative.
        "data": lambda rng: (
            lambda t: (t, 3.0 * np.exp(-0.8 * t) + 0.5 - 0.04 * t + 0.02 * rng.standard_normal(t.size))
        )(np.linspace(0.0, 10.0, 80)),
    },
]


def inner(prob, x, y, b):
    """The bounded linear least squares at b: (a, rss)."""
    phi = prob["basis"](x, b)
    lo, hi = np.array(prob["lower"]), np.array(prob["upper"])
    if np.all(lo == 0) and np.all(np.isinf(hi)):
        a, rnorm = nnls(phi, y, maxiter=1000)
        return a, rnorm**2
    res = lsq_linear(phi, y, bounds=(lo, hi), method="bvls", tol=1e-15, lsmr_tol=None, max_iter=1000)
    return res.x, float(np.sum((y - phi @ res.x) ** 2))


def unconstrained(prob, x, y, b):
    phi = prob["basis"](x, b)
    a, *_ = np.linalg.lstsq(phi, y, rcond=None)
    return a


def reference(prob, x, y):
    loss = lambda b: inner(prob, x, y, b)[1] if np.all(np.isfinite(b)) else np.inf
    grid = list(itertools.product(*prob["grid"]))
    scored = sorted((loss(np.array(g)), g) for g in grid)
    best_b, best_l = None, np.inf
    for _, g in scored[:3]:
        b = np.array(g, dtype=float)
        last = np.inf
        for _ in range(6):
            r = minimize(loss, b, method="Nelder-Mead", options={"xatol": 1e-13, "fatol": 1e-18, "maxiter": 20000, "maxfev": 40000})
            b = r.x
            if not r.fun < last * (1 - 1e-15):
                break
            last = r.fun
        if r.fun < best_l:
            best_b, best_l = b, r.fun
    a, rss = inner(prob, x, y, best_b)
    return best_b, a, rss


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(15)
    out = []
    for prob in PROBLEMS:
        x, y = prob["data"](rng)
        b, a, rss = reference(prob, x, y)
        a_free = unconstrained(prob, x, y, b)
        lo, hi = np.array(prob["lower"]), np.array(prob["upper"])
        assert np.any((a_free < lo) | (a_free > hi)), f"{prob['name']}: the unconstrained solution is feasible"
        at = ["lower" if a[j] <= lo[j] else "upper" if a[j] >= hi[j] else "free" for j in range(len(a))]
        path = os.path.join(OUT, prob["name"] + ".csv")
        with open(path, "w") as f:
            f.write(f"{prob['x']},y\n")
            for xi, yi in zip(x, y):
                f.write(f"{float(xi)!r},{float(yi)!r}\n")
        out.append(
            {
                "name": prob["name"],
                "data": prob["name"] + ".csv",
                "formula": prob["formula"],
                "bounds": prob["bounds"],
                "linear_bounds": {
                    n: [None if np.isinf(l) else float(l), None if np.isinf(h) else float(h)]
                    for n, l, h in zip(prob["linear"], prob["lower"], prob["upper"])
                },
                "linear": dict(zip(prob["linear"], map(float, a))),
                "linear_at": dict(zip(prob["linear"], at)),
                "linear_unconstrained_at_reference_b": dict(zip(prob["linear"], map(float, a_free))),
                "nonlinear": dict(zip(prob["nonlinear"], map(float, b))),
                "start": dict(zip(prob["nonlinear"], prob["start"])),
                "rss": float(rss),
            }
        )
        print(prob["name"], "b =", b, "a =", a, "rss =", rss, "at =", at)
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump({"generator": "scripts/nnls_reference.py", "problems": out}, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
