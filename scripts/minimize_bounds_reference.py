#!/usr/bin/env python3
"""Reference solutions for `sepfit minimize --bounds` (tests in crates/sepfit-cli/tests/minimize_bounds.rs).

Writes data/reference/minimize_bounds/<name>.json: the values (--at input, starting point
included) and the reference minimiser computed with SciPy, independently of sepfit:

* nnls: min ||X w - y||^2 over w >= 0, X 40x6 Gaussian, y with negative true coefficients:
  scipy.optimize.nnls (Lawson-Hanson, exact active set).
* box_logistic: logistic loss sum(log(1 + exp(-y .* (X w)))) + 0.01 ||w||^2 over
  -0.5 <= w <= 0.5, some true weights outside: scipy.optimize.minimize(method="L-BFGS-B"),
  gtol 1e-12, ftol 1e-15.
* box_quadratic: 0.5 x' A x - b' x over 0 <= x <= 1, A SPD 8x8 (ill-conditioned, cond 1e4):
  L-BFGS-B as above.

Needs numpy and scipy: python3 scripts/minimize_bounds_reference.py
"""
import json, pathlib
import numpy as np
from scipy.optimize import nnls, minimize

out = pathlib.Path(__file__).resolve().parent.parent / "data/reference/minimize_bounds"
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(20261202)

def save(name, loss, var, wrt, bounds, values, solution, how):
    doc = {"loss": loss, "var": var, "wrt": wrt, "bounds": bounds, "values": values,
           "solution": solution, "reference": how}
    (out / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")

# nnls
X = rng.standard_normal((40, 6))
w_true = np.array([1.5, -0.8, 0.0, 2.0, -0.3, 0.7])
y = X @ w_true + 0.05 * rng.standard_normal(40)
w, _ = nnls(X, y, maxiter=1000)
save("nnls", "norm2(X*w - y)^2", "X: n x d, w: d, y: n", "w", "w>=0",
     {"X": X.tolist(), "y": y.tolist(), "w": [0.5] * 6}, {"w": w.tolist()}, "scipy.optimize.nnls")

# box logistic
X = rng.standard_normal((200, 4))
w_true = np.array([2.0, -1.0, 0.3, -0.1])
p = 1 / (1 + np.exp(-X @ w_true))
yl = np.where(rng.uniform(size=200) < p, 1.0, -1.0)
def flog(w):
    z = yl * (X @ w)
    f = np.sum(np.logaddexp(0, -z)) + 0.01 * w @ w
    g = -X.T @ (yl / (1 + np.exp(z))) + 0.02 * w
    return f, g
r = minimize(flog, np.zeros(4), jac=True, method="L-BFGS-B", bounds=[(-0.5, 0.5)] * 4,
             options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10000})
save("box_logistic", "sum(log(1 + exp(-y.*(X*w)))) + 0.01*norm2(w)^2", "X: n x d, w: d, y: n", "w", "-0.5<=w<=0.5",
     {"X": X.tolist(), "y": yl.tolist(), "w": [0.0] * 4}, {"w": r.x.tolist()}, "scipy L-BFGS-B")

# box quadratic
Q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
A = Q @ np.diag(np.logspace(0, 4, 8)) @ Q.T
A = 0.5 * (A + A.T)
b = A @ rng.uniform(-0.5, 1.5, 8)
r = minimize(lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b), np.full(8, 0.5), jac=True, method="L-BFGS-B",
             bounds=[(0, 1)] * 8, options={"gtol": 1e-12, "ftol": 1e-16, "maxiter": 100000})
save("box_quadratic", "0.5*x'*A*x - b'*x", "A: n x n, x: n, b: n", "x", "0<=x<=1",
     {"A": A.tolist(), "b": b.tolist(), "x": [0.5] * 8}, {"x": r.x.tolist()}, "scipy L-BFGS-B")
print("wrote", sorted(p.name for p in out.iterdir()))
