#!/usr/bin/env python3
"""Speed comparison on one problem: scipy / lmfit per-fit times vs sepfit's solve time.

    python3 scripts/bench_scipy.py                  # writes data/problems/double_exp_1024.csv,
                                                    # data/reference/scipy_timing.json
    SEPFIT=path/to/sepfit python3 scripts/bench_scipy.py
    python3 scripts/bench_scipy.py --no-sepfit

Problem: y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + c on t = linspace(0, 10, 1024),
truth a1=2, tau1=0.5, a2=1, tau2=3, c=0.1, Gaussian noise sd 0.01 from
numpy.random.default_rng(42).  Start tau1=1, tau2=5; scipy/lmfit start the linear
parameters (a1, a2, c) at 1.0; sepfit needs no linear starts.

Timed (each the median over repeated single fits with timeit; data already in memory):
  least_squares(method='lm') with the analytic Jacobian and with jac='2-point',
  least_squares(method='trf') with the analytic Jacobian (extra),
  curve_fit (defaults: lm, finite differences),
  lmfit.minimize (default leastsq) and lmfit.Model.fit.
sepfit: `sepfit fit ... --format json --repeat 200`: the median timing.solve_s of 200 solves in
one process (warm, like the timeit medians of the Python peers; a solve covers formula
parsing, symbolic derivatives, compilation, the fit and its statistics, data already in
memory); also the cold solve of a fresh process (median of 20 runs) and the median
wall-clock time of the whole process, for comparison.
"""
import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import timeit
import warnings

import numpy as np
import scipy
import lmfit
from scipy.optimize import least_squares, curve_fit

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FORMULA = "y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + c"
TRUTH = dict(a1=2.0, tau1=0.5, a2=1.0, tau2=3.0, c=0.1)
NAMES = ["a1", "tau1", "a2", "tau2", "c"]
P0 = np.array([1.0, 1.0, 1.0, 5.0, 1.0])   # linear ones at 1.0; tau1=1, tau2=5


def make_data():
    t = np.linspace(0.0, 10.0, 1024)
    rng = np.random.default_rng(42)
    y = (TRUTH["a1"] * np.exp(-t / TRUTH["tau1"]) + TRUTH["a2"] * np.exp(-t / TRUTH["tau2"]) + TRUTH["c"]
         + rng.normal(0.0, 0.01, t.size))
    return t, y


def model(t, a1, tau1, a2, tau2, c):
    return a1 * np.exp(-t / tau1) + a2 * np.exp(-t / tau2) + c


def model_jac(t, a1, tau1, a2, tau2, c):
    e1, e2 = np.exp(-t / tau1), np.exp(-t / tau2)
    return np.column_stack([e1, a1 * t / tau1 ** 2 * e1, e2, a2 * t / tau2 ** 2 * e2, np.ones_like(t)])


def timed(fn, min_total=2.0, min_reps=20, max_reps=2000):
    """Median seconds per call of fn() (each timing = one call), and the last result."""
    res = fn()                      # warm-up, and the result to report
    one = timeit.timeit(fn, number=1)
    reps = int(min(max_reps, max(min_reps, min_total / max(one, 1e-9))))
    times = timeit.repeat(fn, number=1, repeat=reps)
    return statistics.median(times), reps, res


def binary_info(binary):
    info = {"path": binary}
    try:
        info["version"] = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
        info["mtime_utc"] = datetime.datetime.fromtimestamp(os.path.getmtime(binary), datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M:%S UTC")
        info["repo_head"] = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                           capture_output=True, text=True).stdout.strip()
        info["crates_dirty"] = bool(subprocess.run(
            ["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no", "crates"],
            capture_output=True, text=True).stdout.strip())
    except OSError as e:
        info["error"] = str(e)
    return info


def scaling(binary, runs=7):
    import tempfile
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for n in (256, 1024, 4096, 16384):
            t = np.linspace(0.0, 10.0, n)
            rng = np.random.default_rng(42)
            y = model(t, TRUTH["a1"], TRUTH["tau1"], TRUTH["a2"], TRUTH["tau2"], TRUTH["c"]) + rng.normal(0, 0.01, n)
            path = os.path.join(d, f"de_{n}.csv")
            with open(path, "w") as fh:
                fh.write("t,y\n" + "".join(f"{a:.17g},{b:.17g}\n" for a, b in zip(t, y)))
            dd = np.genfromtxt(path, delimiter=",", names=True)
            tt, yy = dd["t"], dd["y"]
            sc, reps, _ = timed(lambda: least_squares(lambda p: model(tt, *p) - yy, P0,
                                                      jac=lambda p: model_jac(tt, *p), method="lm"), min_total=1.0)
            solve, iters = [], None
            for _ in range(runs):
                cp = subprocess.run([binary, "fit", path, "--model", FORMULA, "--start", "tau1=1, tau2=5",
                                     "--format", "json", "--repeat", "50"], capture_output=True, text=True)
                if cp.returncode != 0:
                    return dict(error=cp.stderr.strip())
                o = json.loads(cp.stdout)
                solve.append(float(o["timing"]["solve_s"]))
                iters = o.get("iterations")
            med = statistics.median(solve)
            rows.append(dict(n=n, sepfit_median_solve_s=med, sepfit_iterations=iters,
                             sepfit_ns_per_point_per_iteration=med / max(iters or 1, 1) / n * 1e9,
                             scipy_lm_analytic_median_s=sc, ratio_scipy_over_sepfit=sc / med))
            print(f"scaling n={n:6d}: sepfit {med*1e3:8.3f} ms ({iters} it), scipy lm analytic {sc*1e3:8.3f} ms",
                  file=sys.stderr)
    return dict(runs=runs, rows=rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-sepfit", action="store_true")
    ap.add_argument("--sepfit-runs", type=int, default=20)
    ap.add_argument("--scaling", action="store_true",
                    help="also time sepfit (timing.solve_s, varpro) and least_squares lm (analytic jac) on "
                         "n = 256, 1024, 4096, 16384 points of the same model (same truth, noise and start)")
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "problems", "double_exp_1024.csv"))
    ap.add_argument("--out", default=os.path.join(ROOT, "data", "reference", "scipy_timing.json"))
    args = ap.parse_args()

    t, y = make_data()
    os.makedirs(os.path.dirname(args.data), exist_ok=True)
    with open(args.data, "w") as fh:
        fh.write("t,y\n")
        for a, b in zip(t, y):
            fh.write(f"{a:.17g},{b:.17g}\n")
    # read it back so every tool sees exactly the file's numbers
    d = np.genfromtxt(args.data, delimiter=",", names=True)
    t, y = d["t"], d["y"]
    assert t.size == 1024

    def resid(p):
        return model(t, *p) - y

    def jac(p):
        return model_jac(t, *p)

    def rss_of(p):
        r = resid(np.asarray(p, float))
        return float(r @ r)

    lm_params = lmfit.Parameters()
    for k, v in zip(NAMES, P0):
        lm_params.add(k, value=float(v))
    lmodel = lmfit.Model(model, independent_vars=["t"])
    lmodel_params = lmodel.make_params(**{k: float(v) for k, v in zip(NAMES, P0)})

    def lmfit_resid(p):
        v = p.valuesdict()
        return model(t, v["a1"], v["tau1"], v["a2"], v["tau2"], v["c"]) - y

    cases = [
        ("least_squares lm, analytic jac",
         lambda: least_squares(resid, P0, jac=jac, method="lm"),
         lambda r: (r.x, r.nfev, r.njev)),
        ("least_squares lm, 2-point",
         lambda: least_squares(resid, P0, jac="2-point", method="lm"),
         lambda r: (r.x, r.nfev, r.njev)),
        ("least_squares trf, analytic jac",
         lambda: least_squares(resid, P0, jac=jac, method="trf"),
         lambda r: (r.x, r.nfev, r.njev)),
        ("curve_fit (defaults: lm, 2-point)",
         lambda: curve_fit(model, t, y, p0=P0, full_output=True),
         lambda r: (r[0], r[2]["nfev"], None)),
        ("lmfit.minimize (leastsq)",
         lambda: lmfit.minimize(lmfit_resid, lm_params),
         lambda r: (np.array([r.params[k].value for k in NAMES]), r.nfev, None)),
        ("lmfit.Model.fit (leastsq)",
         lambda: lmodel.fit(y, lmodel_params, t=t),
         lambda r: (np.array([r.params[k].value for k in NAMES]), r.nfev, None)),
    ]
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for label, fn, unpack in cases:
            med, reps, res = timed(fn)
            x, nfev, njev = unpack(res)
            results.append(dict(method=label, median_s=med, repeats=reps, nfev=int(nfev),
                                njev=(int(njev) if njev is not None else None),
                                rss=rss_of(x), estimate=dict(zip(NAMES, map(float, x)))))
            print(f"{label:36s} {med*1e3:9.3f} ms  ({reps} reps, nfev {nfev})  RSS {rss_of(x):.12g}",
                  file=sys.stderr)

    best_rss = min(r["rss"] for r in results)

    # ---- sepfit ----
    sep = None
    binary = os.environ.get("SEPFIT") or os.path.join(ROOT, "target", "release", "sepfit")
    sep_cmd = [binary, "fit", os.path.relpath(args.data, ROOT), "--model", FORMULA,
               "--start", "tau1=1, tau2=5", "--format", "json"]
    if not args.no_sepfit:
        if not os.path.exists(binary):
            sep = dict(error=f"{binary} not found")
        else:
            solve, wall, last, err = [], [], None, None
            for _ in range(args.sepfit_runs):
                t0 = time.perf_counter()
                cp = subprocess.run(sep_cmd, capture_output=True, text=True, cwd=ROOT)
                w = time.perf_counter() - t0
                if cp.returncode != 0:
                    err = cp.stderr.strip()
                    break
                try:
                    last = json.loads(cp.stdout)
                    solve.append(float(last["timing"]["solve_s"]))
                except Exception as e:  # noqa: BLE001
                    err = f"unparsable output ({type(e).__name__}: {e}): {cp.stdout[:300]}"
                    break
                wall.append(w)
            if err:
                sep = dict(error=err)
            else:
                vals = {q["name"]: float(q["value"]) for q in last["parameters"]}
                x = [vals[k] for k in NAMES]
                cp = subprocess.run(sep_cmd + ["--repeat", "200"], capture_output=True, text=True, cwd=ROOT)
                warm = float(json.loads(cp.stdout)["timing"]["solve_s"]) if cp.returncode == 0 else float("nan")
                sep = dict(runs=len(solve), warm_median_solve_s=warm, cold_median_solve_s=statistics.median(solve),
                           cold_min_solve_s=min(solve),
                           median_process_wall_s=statistics.median(wall), iterations=last.get("iterations"),
                           converged=last.get("converged"), termination=last.get("termination"),
                           rss_reported=last.get("rss"), rss=rss_of(x), estimate=dict(zip(NAMES, x)))
                best_rss = min(best_rss, sep["rss"])
        if sep and "error" in sep:
            print(f"sepfit: {sep['error']}", file=sys.stderr)

    for r in results:
        r["rss_rel_to_best"] = r["rss"] / best_rss - 1.0
        if sep and "warm_median_solve_s" in sep:
            r["ratio_to_sepfit_warm_solve"] = r["median_s"] / sep["warm_median_solve_s"]
            r["ratio_to_sepfit_cold_solve"] = r["median_s"] / sep["cold_median_solve_s"]
            r["ratio_to_sepfit_process"] = r["median_s"] / sep["median_process_wall_s"]
    if sep and "rss" in sep:
        sep["rss_rel_to_best"] = sep["rss"] / best_rss - 1.0
    scal = scaling(binary) if (args.scaling and sep and "rss" in sep) else None

    try:
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    except OSError:
        cpu = "?"
    out = dict(
        generated=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        command="python3 scripts/bench_scipy.py " + " ".join(sys.argv[1:]),
        problem=dict(formula=FORMULA, data=os.path.relpath(args.data, ROOT), n=int(t.size), truth=TRUTH,
                     noise="normal sd 0.01, numpy default_rng(42)", start=dict(zip(NAMES, map(float, P0)))),
        environment=dict(python=platform.python_version(), numpy=np.__version__, scipy=scipy.__version__,
                         lmfit=lmfit.__version__, cpu=cpu, note="2 shared CPU cores; other builds may run concurrently"),
        scipy_lmfit=results,
        sepfit=dict(command=" ".join(f"'{c}'" if " " in c else c for c in ["sepfit"] + sep_cmd[1:]),
                    binary=binary_info(binary), **(sep or {"skipped": True})),
        scaling=scal,
        best_rss=best_rss,
    )
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=2)
        fh.write("\n")

    # ---- table ----
    have_sep = sep is not None and "warm_median_solve_s" in sep
    print(f"\n{FORMULA}, n = {t.size}, start tau1=1, tau2=5\n")
    hdr = "| method | median per fit | nfev | RSS - best (rel) |" + (
        " time / sepfit warm solve | time / sepfit cold solve | time / sepfit process |" if have_sep else "")
    print(hdr)
    print("|---|---|---|---|" + ("---|---|---|" if have_sep else ""))
    for r in results:
        row = f"| {r['method']} | {r['median_s']*1e3:.3f} ms | {r['nfev']} | {r['rss_rel_to_best']:.1e} |"
        if have_sep:
            row += (f" {r['ratio_to_sepfit_warm_solve']:.1f}x | {r['ratio_to_sepfit_cold_solve']:.1f}x |"
                    f" {r['ratio_to_sepfit_process']:.2f}x |")
        print(row)
    if have_sep:
        print(f"| sepfit fit, warm solve (median of 200 in one process) | {sep['warm_median_solve_s']*1e3:.3f} ms | "
              f"{sep['iterations']} iter | {sep['rss_rel_to_best']:.1e} | 1 | | |")
        print(f"| sepfit fit, cold solve (fresh process) | {sep['cold_median_solve_s']*1e3:.3f} ms | | | | 1 | |")
        print(f"| sepfit fit (whole process, wall) | {sep['median_process_wall_s']*1e3:.3f} ms | | | | | 1 |")
    elif sep:
        print(f"\nsepfit not timed: {sep.get('error')}")
    if scal and "rows" in scal:
        print("\nScaling (same model; medians; sepfit = warm timing.solve_s, --repeat 50):\n")
        print("| n | sepfit solve | iterations | ns / point / iteration | scipy lm analytic | scipy / sepfit |")
        print("|---|---|---|---|---|---|")
        for r in scal["rows"]:
            print(f"| {r['n']} | {r['sepfit_median_solve_s']*1e3:.3f} ms | {r['sepfit_iterations']} | "
                  f"{r['sepfit_ns_per_point_per_iteration']:.0f} | {r['scipy_lm_analytic_median_s']*1e3:.3f} ms | "
                  f"{r['ratio_scipy_over_sepfit']:.2f}x |")
    print(f"\nwrote {os.path.relpath(args.out, ROOT)} and {os.path.relpath(args.data, ROOT)}")


if __name__ == "__main__":
    main()
