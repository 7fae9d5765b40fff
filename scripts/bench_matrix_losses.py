#!/usr/bin/env python3
"""The three seed losses with their gradients at n = 100,000: sepfit's matrix evaluator (and a
hand-written Rust loop) against JAX (jit, float64) and hand-written numpy, as ratios from one run.

Runs `cargo bench -p sepfit-expr --bench matrix_losses` with MATRIX_LOSSES_EXPORT, which writes
the inputs (.npy), sepfit's outputs and the medians of 21 interleaved repetitions; then times
JAX and numpy on the same inputs (median of 21, after warm-up and compilation), checks that all
give the same numbers to 1e-9 relative, and prints the table.

    python3 scripts/bench_matrix_losses.py            # needs numpy and jax (pip install jax)
    python3 scripts/bench_matrix_losses.py --no-build DIR   # reuse an export in DIR
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("JAX_ENABLE_X64", "1")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

jax.config.update("jax_enable_x64", True)


def median_time(f, reps=21):
    f()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return sorted(ts)[reps // 2]


def jax_call(vg, *args):
    """`vg(*args)` as a function returning its outputs flat, waiting until they are computed."""
    args = [jnp.asarray(a) for a in args]
    return lambda: jax.tree_util.tree_leaves(jax.block_until_ready(vg(*args)))


def load(d, case, names):
    return [np.ascontiguousarray(np.load(os.path.join(d, f"{case}_{n}.npy"))) for n in names]


def least_squares(d):
    X, w, y = load(d, "least_squares", ["X", "w", "y"])
    w, y = w[:, 0], y[:, 0]

    def np_f():
        r = X @ w - y
        return r @ r, 2.0 * (X.T @ r)

    def loss(w, X, y):
        r = X @ w - y
        return jnp.sum(r * r)

    return np_f, jax_call(jax.jit(jax.value_and_grad(loss)), w, X, y)


def logistic(d):
    x, y, a, b = load(d, "logistic", ["x", "y", "a", "b"])
    x, y, a, b = x[:, 0], y[:, 0], a[:, 0], b[:, 0]

    def np_f():
        q = np.exp(-((x[:, None] - b[None, :]) ** 2) / 2)
        z = q @ a
        J = np.sum(np.log1p(np.exp(z)) - y * z)
        p = 1.0 / (1.0 + np.exp(-z)) - y
        ga = q.T @ p
        gb = a * ((q * (x[:, None] - b[None, :])).T @ p)
        return J, ga, gb

    def loss(a, b, x, y):
        z = jnp.exp(-((x[:, None] - b[None, :]) ** 2) / 2) @ a
        return jnp.sum(jnp.log(1 + jnp.exp(z)) - y * z)

    return np_f, jax_call(jax.jit(jax.value_and_grad(loss, argnums=(0, 1))), a, b, x, y)


def quadratic_form(d):
    X, P, y = load(d, "quadratic_form", ["X", "P", "y"])
    y = y[:, 0]

    def np_f():
        z = np.sum((X @ P) * X, axis=1)
        J = np.sum(z / y - np.log(z))
        g = 1 / y - 1 / z
        return J, X.T @ (g[:, None] * X)

    def loss(P, X, y):
        z = jnp.sum((X @ P) * X, axis=1)
        return jnp.sum(z / y - jnp.log(z))

    return np_f, jax_call(jax.jit(jax.value_and_grad(loss)), P, X, y)


CASES = {"least_squares": least_squares, "logistic": logistic, "quadratic_form": quadratic_form}


def flat(outs):
    return [np.ravel(np.asarray(o, dtype=float), order="F") for o in outs]


def main():
    args = sys.argv[1:]
    if args[:1] == ["--no-build"]:
        d = args[1]
    else:
        d = tempfile.mkdtemp(prefix="matrix-losses-")
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ, MATRIX_LOSSES_EXPORT=d)
        subprocess.run(["cargo", "bench", "-q", "-p", "sepfit-expr", "--bench", "matrix_losses"], cwd=root, env=env, check=True)
    ref = json.load(open(os.path.join(d, "sepfit.json")))
    print(f"jax {jax.__version__} (jit, float64, {jax.devices()[0].platform}), numpy {np.__version__}, {os.cpu_count()} cores")
    print(f"{'loss':16} {'sepfit':>9} {'hand Rust':>10} {'JAX':>9} {'numpy':>9}   sepfit/JAX  sepfit/numpy  sepfit/hand")
    for name, make in CASES.items():
        np_f, jax_f = make(d)
        want = [np.asarray(v, dtype=float) for v in ref[name]["outputs"]]
        for who, f in (("numpy", np_f), ("JAX", jax_f)):
            for k, (got, w) in enumerate(zip(flat(f()), want)):
                scale = max(np.max(np.abs(w)), 1e-300)
                err = np.max(np.abs(got - w)) / scale
                assert err < 1e-9, f"{name}: {who} output {k} differs from sepfit's by {err:.2e} (relative)"
        t_np, t_jax = median_time(np_f), median_time(jax_f)
        ts, th = ref[name]["sepfit_s"], ref[name]["hand_s"]
        print(f"{name:16} {ts*1e3:7.2f}ms {th*1e3:8.2f}ms {t_jax*1e3:7.2f}ms {t_np*1e3:7.2f}ms   {ts/t_jax:10.2f}  {ts/t_np:12.2f}  {ts/th:11.2f}")
    print("(ratios < 1: sepfit faster; sepfit and hand Rust: one thread; numpy's BLAS and JAX may use all cores)")


if __name__ == "__main__":
    main()
