"""Bias of the lifetime estimate: Poisson maximum likelihood next to least squares (docs/estimators.md).

Simulates photon-count decays  y_i ~ Poisson(mu_i),  mu_i = a*exp(-t_i/tau) + c,  on 64 bins
t_i = 10*i/64 (i = 0..63, so t in [0, 10)), with true tau = 2.0 and a constant background
c = 0.01*a (1% of the peak, so about 4.6% of all counts, at every count level). The amplitude a
is scaled so that the expected total count per curve, sum_i mu_i, is 10, 30, 100, 300, 1000,
3000 or 10000. For each level it draws --curves curves (seeded by --seed), writes them as one
long CSV (columns curve,t,y,s) and fits every curve with sepfit three ways, all from tau=1.5 and
with the same --bounds (default "c>=0"; with --fix-c, c is held at its true value instead):

  ls       unweighted least squares                       sepfit batch
  neyman   least squares with sigma_i = sqrt(max(y_i, 1))  sepfit batch --sigma s
  poisson  Poisson maximum likelihood (the deviance)      sepfit batch --loss poisson when
           `sepfit batch --help` lists --loss, else one `sepfit fit --loss poisson --format json`
           per curve (run in parallel)

Only converged fits count. Per level and method it reports the converged count, the mean and
median of tau, the relative bias mean/tau - 1 with its Monte-Carlo standard error
sd/sqrt(n)/tau, and the relative RMSE sqrt(mean((tau_hat - tau)^2))/tau, as a Markdown table
(printed; also written to --out).

Run: python3 scripts/poisson_bias.py [--curves 500] [--seed 1] [--sepfit PATH] [--out FILE]
     [--bounds "c>=0" | --bounds none] [--fix-c] [--keep DIR]   (numpy only)
"""
import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FORMULA = "y ~ a*exp(-t/tau) + c"
TAU = 2.0
BACKGROUND = 0.01  # c as a fraction of the peak a
T = 10.0 * np.arange(64) / 64
LEVELS = [10, 30, 100, 300, 1000, 3000, 10000]
START = "tau=1.5"
METHODS = ["ls", "neyman", "poisson"]


def default_sepfit():
    built = os.path.join(ROOT, "target", "release", "sepfit")
    if os.path.isfile(built) and os.access(built, os.X_OK):
        return built
    return shutil.which("sepfit") or built


def truth(total):
    """True (a, c) for an expected total count `total` per curve."""
    a = total / (np.exp(-T / TAU) + BACKGROUND).sum()
    return a, BACKGROUND * a


def mean_curve(total):
    """Expected counts per bin (they sum to `total`)."""
    a, c = truth(total)
    return a * np.exp(-T / TAU) + c


def simulate(rng, total, curves):
    """Poisson counts, one row per curve."""
    return rng.poisson(mean_curve(total), size=(curves, T.size))


def write_long(path, counts):
    with open(path, "w") as fh:
        fh.write("curve,t,y,s\n")
        for k, y in enumerate(counts):
            s = np.sqrt(np.maximum(y, 1))
            for t, yi, si in zip(T, y, s):
                fh.write(f"{k},{float(t)!r},{int(yi)},{float(si)!r}\n")


def write_single(path, y):
    with open(path, "w") as fh:
        fh.write("t,y\n")
        for t, yi in zip(T, y):
            fh.write(f"{float(t)!r},{int(yi)}\n")


def batch_has_loss(sepfit):
    out = subprocess.run([sepfit, "batch", "--help"], capture_output=True, text=True, check=True).stdout
    return "--loss" in out


def common_args(bounds, fix_c, total):
    """Options passed to every fit: the bounds, or (--fix-c) c held at its true value."""
    if fix_c:
        return ["--fix", f"c={float(truth(total)[1])!r}"]
    return [] if bounds is None else ["--bounds", bounds]


def reason(text):
    """A failure message with its numbers blanked, so that alike failures count together."""
    return re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "#", text).strip()


def run_batch(sepfit, data, out, extra, common):
    """Fits every curve of `data` with `sepfit batch`; returns tau, converged (arrays in curve order)
    and why each curve that did not converge failed."""
    cmd = [sepfit, "batch", data, "--model", FORMULA, "--by", "curve", "--start", START, "--out", out]
    cmd += common + extra
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode not in (0, 1):  # 1: ran to the end, some curves did not converge
        sys.exit(f"sepfit batch failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows.sort(key=lambda row: int(row["curve"]))
    tau = np.array([float(row["tau"]) for row in rows])
    ok = np.array([row["status"] == "converged" for row in rows])
    why = ["; ".join(x for x in (row["status"], row["termination"], row["warnings"], row["error"]) if x)
           for row, good in zip(rows, ok) if not good]
    return tau, ok, why


def fit_one_poisson(sepfit, path, common):
    cmd = [sepfit, "fit", path, "--model", FORMULA, "--start", START, "--loss", "poisson", "--format", "json"]
    r = subprocess.run(cmd + common, capture_output=True, text=True)
    try:
        rep = json.loads(r.stdout)
    except json.JSONDecodeError:
        return np.nan, False, r.stderr.strip()
    tau = next(p["value"] for p in rep["parameters"] if p["name"] == "tau")
    ok = bool(rep["converged"]) and rep["status"] == "converged"
    return tau, ok, "; ".join([rep["status"], rep["termination"]] + rep.get("warnings", []))


def run_poisson_per_curve(sepfit, counts, workdir, common):
    """Poisson fits with one `sepfit fit` per curve (for binaries whose batch has no --loss)."""
    paths = []
    for k, y in enumerate(counts):
        p = os.path.join(workdir, f"curve{k}.csv")
        write_single(p, y)
        paths.append(p)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        res = list(pool.map(lambda p: fit_one_poisson(sepfit, p, common), paths))
    for p in paths:
        os.remove(p)
    tau = np.array([r[0] for r in res])
    ok = np.array([r[1] for r in res])
    why = [r[2] for r, good in zip(res, ok) if not good]
    return tau, ok, why


def summarise(tau, ok):
    est = tau[ok & np.isfinite(tau)]
    n = est.size
    if n == 0:
        return dict(n=0)
    rel = est / TAU - 1
    return dict(n=n, mean=est.mean(), median=np.median(est), bias=rel.mean(),
                bias_se=rel.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan,
                rmse=np.sqrt(np.mean(rel ** 2)))


def table(rows, curves):
    lines = ["| counts | method | converged | mean τ | median τ | rel. bias (± MC s.e.) | rel. RMSE |",
             "|---:|:---|---:|---:|---:|---:|---:|"]
    for total, observed, method, s in rows:
        if s["n"] == 0:
            lines.append(f"| {total} ({observed:.0f}) | {method} | 0/{curves} | – | – | – | – |")
            continue
        lines.append(f"| {total} ({observed:.0f}) | {method} | {s['n']}/{curves} | {s['mean']:.4f} | "
                     f"{s['median']:.4f} | {s['bias']:+.4f} ± {s['bias_se']:.4f} | {s['rmse']:.4f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--curves", type=int, default=500, help="curves per count level (default 500)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sepfit", default=default_sepfit(), help="sepfit binary")
    ap.add_argument("--bounds", default="c>=0", help='bounds for every method (default "c>=0"; "none": no bounds)')
    ap.add_argument("--fix-c", action="store_true", help="hold c at its true value in every fit (no --bounds)")
    ap.add_argument("--out", help="also write the Markdown table here")
    ap.add_argument("--keep", help="keep the simulated CSVs and batch outputs in this directory")
    args = ap.parse_args()
    bounds = None if args.bounds.lower() == "none" else args.bounds
    if shutil.which(args.sepfit) is None:
        sys.exit(f"no sepfit binary at {args.sepfit}: build it (cargo build --release) or pass --sepfit PATH")

    t0 = time.time()
    rng = np.random.default_rng(args.seed)
    batch_loss = batch_has_loss(args.sepfit)
    workdir = args.keep or tempfile.mkdtemp(prefix="poisson_bias_")
    os.makedirs(workdir, exist_ok=True)
    rows, notes = [], {}
    try:
        for total in LEVELS:
            counts = simulate(rng, total, args.curves)
            data = os.path.join(workdir, f"counts{total}.csv")
            write_long(data, counts)
            observed = counts.sum(axis=1).mean()
            common = common_args(bounds, args.fix_c, total)
            fits = {
                "ls": run_batch(args.sepfit, data, os.path.join(workdir, f"ls{total}.csv"), [], common),
                "neyman": run_batch(args.sepfit, data, os.path.join(workdir, f"neyman{total}.csv"),
                                    ["--sigma", "s"], common),
            }
            if batch_loss:
                fits["poisson"] = run_batch(args.sepfit, data, os.path.join(workdir, f"poisson{total}.csv"),
                                            ["--loss", "poisson"], common)
            else:
                fits["poisson"] = run_poisson_per_curve(args.sepfit, counts, workdir, common)
            for m in METHODS:
                tau, ok, why = fits[m]
                rows.append((total, observed, m, summarise(tau, ok)))
                if why:
                    notes[(total, m)] = Counter(reason(w) for w in why)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    text = table(rows, args.curves)
    bnd = "c fixed at its true value" if args.fix_c else (f'--bounds "{bounds}"' if bounds else "no bounds")
    poisson_how = "sepfit batch --loss poisson" if batch_loss else "sepfit fit --loss poisson per curve"
    footer = (f"\ntrue τ = {TAU}; c = {BACKGROUND:g}·a; {args.curves} curves per level, seed {args.seed}; "
              f"{bnd}; start {START}; Poisson by {poisson_how}. "
              f"counts: expected total per curve (mean observed in parentheses).")
    failures = [f"- {total} counts, {m}: {n}× {why}" for (total, m), c in notes.items() for why, n in c.most_common()]
    if failures:
        footer += "\n\nnot converged (# stands for a number):\n" + "\n".join(failures)
    print(text + "\n" + footer)
    print(f"\nruntime {time.time() - t0:.1f} s", file=sys.stderr)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n" + footer + "\n")


if __name__ == "__main__":
    main()
