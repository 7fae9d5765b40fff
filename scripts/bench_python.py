#!/usr/bin/env python3
"""Per-fit time of sepfit.curve_fit against scipy's curve_fit (analytic Jacobian) and lmfit (if
installed) on the 1,024-point biexponential, and fit_batch throughput on FLIM curves against
the Rust library's in-memory batch (`BatchFitter::fit_all` on owned curves, what
`benches/batch_vs_varpro.rs` times) on the same arrays, as ratios from one run.

sepfit is timed at its default (full precision: tolerances 1e-15 and Gauss-Newton polishing)
and at scipy's default tolerance (`tol=1.49e-8`, where scipy's curve_fit stops). The per-fit
times are medians over interleaved rounds of 10 calls each (every library warm); the batch times are medians of `--batch-reps`
alternating runs of fit_batch and the in-memory batch.

usage: python scripts/bench_python.py [--curves 100000] [--repeats 200] [--batch-reps 3]
"""

import argparse
import csv
import os
import pathlib
import sys
import time

import numpy as np

import sepfit
from sepfit import _sepfit

ROOT = pathlib.Path(__file__).resolve().parents[1]
FORMULA = "y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + c"
START = {"tau1": 0.5, "tau2": 3.0}
#: scipy's curve_fit default (method 'lm': ftol = xtol = 1.49012e-8).
SCIPY_TOL = 1.49012e-8


def per_fit(fns, repeats, block=10):
    """Median time per call of each of `fns` (a dict): `repeats` rounds, each timing `block`
    calls of every function in turn (in a rotating order), so that the load of a shared
    machine falls on all of them alike, and every function runs warm (a single call timed
    right after another library's runs with that library's data in the caches, which is not
    how a loop of fits runs)."""
    for fn in fns.values():
        fn()  # warm up
    times = {k: [] for k in fns}
    keys = list(fns)
    for r in range(repeats):
        # The order turns each round, so that no function always runs right after another
        # library's (whose BLAS threads may still be spinning on the other core).
        for k in keys[r % len(keys):] + keys[: r % len(keys)]:
            fn = fns[k]
            t0 = time.perf_counter()
            for _ in range(block):
                fn()
            times[k].append((time.perf_counter() - t0) / block)
    return {k: float(np.median(v)) for k, v in times.items()}


def flim(n, seed=1):
    rng = np.random.default_rng(seed)
    t = np.arange(256) * 0.05
    tau1 = rng.uniform(0.3, 0.8, n)[:, None]
    tau2 = rng.uniform(2.0, 4.0, n)[:, None]
    a1 = rng.uniform(200, 800, n)[:, None]
    a2 = rng.uniform(100, 400, n)[:, None]
    bg = rng.uniform(2, 10, n)[:, None]
    return t, rng.poisson(a1 * np.exp(-t / tau1) + a2 * np.exp(-t / tau2) + bg).astype(np.float64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--curves", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--batch-reps", type=int, default=3)
    a = ap.parse_args()
    with open(ROOT / "data" / "problems" / "double_exp_1024.csv") as f:
        rows = list(csv.DictReader(f))
    t = np.array([float(r["t"]) for r in rows])
    y = np.array([float(r["y"]) for r in rows])

    fns = {}
    popt, _ = sepfit.curve_fit(FORMULA, t, y, p0=START)
    fns["sepfit.curve_fit"] = lambda: sepfit.curve_fit(FORMULA, t, y, p0=START)
    model = sepfit.Model(FORMULA)
    fns["sepfit Model.fit"] = lambda: model.fit(y, t=t, start=START)
    fns["sepfit.curve_fit tol=1.49e-8"] = lambda: sepfit.curve_fit(FORMULA, t, y, p0=START, tol=SCIPY_TOL)
    fns["sepfit Model.fit tol=1.49e-8"] = lambda: model.fit(y, t=t, start=START, tol=SCIPY_TOL)
    fns["sepfit fresh Model each fit"] = lambda: sepfit.Model(FORMULA).fit(y, t=t, start=START)
    full = model.fit(y, t=t, start=START)
    loose = model.fit(y, t=t, start=START, tol=SCIPY_TOL)
    print(f"sepfit at tol=1.49e-8 vs full precision: max |difference| / stderr = "
          f"{np.max(np.abs(loose.values - full.values) / full.stderr):.1e}; iterations {loose.iterations} vs {full.iterations}")

    try:
        from scipy.optimize import curve_fit
    except ImportError:
        curve_fit = None
    if curve_fit is not None:
        def f(t, a1, a2, c, tau1, tau2):
            return a1 * np.exp(-t / tau1) + a2 * np.exp(-t / tau2) + c

        def jac(t, a1, a2, c, tau1, tau2):
            e1, e2 = np.exp(-t / tau1), np.exp(-t / tau2)
            return np.column_stack([e1, e2, np.ones_like(t), a1 * t / tau1**2 * e1, a2 * t / tau2**2 * e2])

        p0 = [1.0, 1.0, 0.0, START["tau1"], START["tau2"]]
        sp, _ = curve_fit(f, t, y, p0=p0, jac=jac)
        print(f"max relative difference sepfit vs scipy popt: {np.max(np.abs(sp - popt) / np.abs(popt)):.2e}")
        fns["scipy curve_fit (analytic jac)"] = lambda: curve_fit(f, t, y, p0=p0, jac=jac)
    res = per_fit(fns, a.repeats)
    try:
        import lmfit
    except ImportError:
        lmfit = None
    if lmfit is not None:
        lm = lmfit.Model(lambda t, a1, a2, c, tau1, tau2: a1 * np.exp(-t / tau1) + a2 * np.exp(-t / tau2) + c)
        pars = lm.make_params(a1=1.0, a2=1.0, c=0.0, tau1=START["tau1"], tau2=START["tau2"])
        res.update(per_fit({"lmfit": lambda: lm.fit(y, pars, t=t)}, max(20, a.repeats // 10)))
    else:
        print("lmfit not installed: skipped")

    print(f"\nper-fit time, 1,024-point biexponential (median of {a.repeats} rounds of 10 calls):")
    base = res["sepfit.curve_fit"]
    for k, v in res.items():
        print(f"  {k:<32} {v * 1e3:9.3f} ms   {v / base:7.2f}x sepfit.curve_fit")
    if "scipy curve_fit (analytic jac)" in res:
        sc = res["scipy curve_fit (analytic jac)"]
        print(f"  scipy / sepfit.curve_fit: {sc / res['sepfit.curve_fit']:.2f}x at sepfit's default (full precision), "
              f"{sc / res['sepfit.curve_fit tol=1.49e-8']:.2f}x at scipy's tolerance")

    tt, ys = flim(a.curves)
    tf = "y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + bg"
    sepfit.fit_batch(tf, ys[:1000], start=START, t=tt)
    # The library's in-memory batch on the same curves (copied into owned curves before its
    # clock starts), alternating with fit_batch.
    names = ["y", "t"]
    pairs = list(START.items())
    _sepfit._bench_batch(tf, names, ys[:1000], [tt], start=pairs)
    py_times, rust_times = [], []
    for _ in range(a.batch_reps):
        t0 = time.perf_counter()
        r = sepfit.fit_batch(tf, ys, start=START, t=tt)
        py_times.append(time.perf_counter() - t0)
        rust_s, rust_values = _sepfit._bench_batch(tf, names, ys, [tt], start=pairs)
        rust_times.append(rust_s)
    dt, dr = float(np.median(py_times)), float(np.median(rust_times))
    ok = r.converged.mean()
    same = np.array_equal(r.values.reshape(-1), rust_values, equal_nan=True)
    print(f"\nfit_batch: {a.curves} FLIM curves x 256 points in {dt:.2f} s = {a.curves / dt:,.0f} curves/s "
          f"on {os.cpu_count()} cores ({ok:.1%} converged; medians of {a.batch_reps})")
    print(f"Rust in-memory batch (BatchFitter::fit_all, same curves): {dr:.2f} s = {a.curves / dr:,.0f} curves/s; "
          f"fit_batch / Rust in-memory = {dr / dt:.1%}; estimates bit-identical: {same}")
    t0 = time.perf_counter()
    sepfit.fit_batch(tf, ys[: a.curves // 10], start=START, t=tt, threads=1)
    d1 = time.perf_counter() - t0
    print(f"fit_batch threads=1: {a.curves // 10 / d1:,.0f} curves/s; all cores / one = {(a.curves / dt) / (a.curves // 10 / d1):.2f}")
    if curve_fit is not None:
        n = 200
        def fl(t, a1, a2, bg, tau1, tau2):
            return a1 * np.exp(-t / tau1) + a2 * np.exp(-t / tau2) + bg
        def jl(t, a1, a2, bg, tau1, tau2):
            e1, e2 = np.exp(-t / tau1), np.exp(-t / tau2)
            return np.column_stack([e1, e2, np.ones_like(t), a1 * t / tau1**2 * e1, a2 * t / tau2**2 * e2])
        t0 = time.perf_counter()
        for i in range(n):
            curve_fit(fl, tt, ys[i], p0=[300, 200, 5, 0.5, 3.0], jac=jl)
        ds = (time.perf_counter() - t0) / n
        print(f"scipy curve_fit loop: {1 / ds:,.0f} curves/s (one core); fit_batch / scipy loop = {(a.curves / dt) * ds:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
