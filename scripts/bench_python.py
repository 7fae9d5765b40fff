#!/usr/bin/env python3
"""Per-fit time of sepfit.curve_fit against scipy's curve_fit (analytic Jacobian) and lmfit (if
installed) on the 1,024-point biexponential, and fit_batch throughput on FLIM curves, as ratios
from one run.

usage: python scripts/bench_python.py [--curves 100000] [--repeats 200]
"""

import argparse
import csv
import os
import pathlib
import sys
import time

import numpy as np

import sepfit

ROOT = pathlib.Path(__file__).resolve().parents[1]
FORMULA = "y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + c"
START = {"tau1": 0.5, "tau2": 3.0}


def per_fit(fn, repeats):
    fn()  # warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


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
    a = ap.parse_args()
    with open(ROOT / "data" / "problems" / "double_exp_1024.csv") as f:
        rows = list(csv.DictReader(f))
    t = np.array([float(r["t"]) for r in rows])
    y = np.array([float(r["y"]) for r in rows])

    res = {}
    popt, _ = sepfit.curve_fit(FORMULA, t, y, p0=START)
    res["sepfit.curve_fit"] = per_fit(lambda: sepfit.curve_fit(FORMULA, t, y, p0=START), a.repeats)
    model = sepfit.Model(FORMULA)
    res["sepfit Model.fit"] = per_fit(lambda: model.fit(y, t=t, start=START), a.repeats)

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
        res["scipy curve_fit (analytic jac)"] = per_fit(lambda: curve_fit(f, t, y, p0=p0, jac=jac), a.repeats)
    try:
        import lmfit
    except ImportError:
        lmfit = None
    if lmfit is not None:
        lm = lmfit.Model(lambda t, a1, a2, c, tau1, tau2: a1 * np.exp(-t / tau1) + a2 * np.exp(-t / tau2) + c)
        pars = lm.make_params(a1=1.0, a2=1.0, c=0.0, tau1=START["tau1"], tau2=START["tau2"])
        res["lmfit"] = per_fit(lambda: lm.fit(y, pars, t=t), max(20, a.repeats // 10))
    else:
        print("lmfit not installed: skipped")

    print(f"\nper-fit time, 1,024-point biexponential ({a.repeats} repeats, median):")
    base = res["sepfit.curve_fit"]
    for k, v in res.items():
        print(f"  {k:<32} {v * 1e3:9.3f} ms   {v / base:7.2f}x sepfit.curve_fit")

    tt, ys = flim(a.curves)
    tf = "y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + bg"
    sepfit.fit_batch(tf, ys[:1000], start=START, t=tt)
    t0 = time.perf_counter()
    r = sepfit.fit_batch(tf, ys, start=START, t=tt)
    dt = time.perf_counter() - t0
    ok = r.converged.mean()
    print(f"\nfit_batch: {a.curves} FLIM curves x 256 points in {dt:.2f} s = {a.curves / dt:,.0f} curves/s "
          f"on {os.cpu_count()} cores ({ok:.1%} converged)")
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
