"""Reference for Poisson maximum likelihood (crates/sepfit/tests/poisson_mle.rs).

Three count problems (counts from about 10 to about 10,000). The reference minimises the
Poisson negative log-likelihood  L(θ) = Σ [μᵢ(θ) − yᵢ ln μᵢ(θ)]  with scipy.optimize.minimize
(BFGS, analytic gradient ∇L = Σ (1 − yᵢ/μᵢ) ∂μᵢ/∂θ), then polishes with Newton steps on the
analytic gradient (Hessian by central differences of it) until the step is below 1e-13
relative. Standard errors: √diag((JᵀWJ)⁻¹), J = ∂μ/∂θ, W = diag(1/μ) (Fisher information,
not rescaled). Deviance D = 2 Σ [y ln(y/μ) − (y − μ)]. Stored under data/reference/poisson/.

Run: python3 scripts/poisson_reference.py   (numpy + scipy)
"""
import json
import os

import numpy as np
from scipy.optimize import minimize

OUT = os.path.join(os.path.dirname(__file__), "..", "data", "reference", "poisson")


def decay(t, th):
    k, a, c = th
    e = np.exp(-k * t)
    return a * e + c, np.stack([-a * t * e, e, np.ones_like(t)], axis=1)


def gauss(x, th):
    m, s, a, c = th
    g = np.exp(-((x - m) ** 2) / (2 * s ** 2))
    return a * g + c, np.stack([a * g * (x - m) / s ** 2, a * g * (x - m) ** 2 / s ** 3, g, np.ones_like(x)], axis=1)


def biexp(t, th):
    k1, k2, a1, a2 = th
    e1, e2 = np.exp(-k1 * t), np.exp(-k2 * t)
    return a1 * e1 + a2 * e2, np.stack([-a1 * t * e1, -a2 * t * e2, e1, e2], axis=1)


def decay_fixed_background(t, th):
    tau, a = th
    e = np.exp(-t / tau)
    return a * e + SPARSE_BACKGROUND, np.stack([a * t / tau ** 2 * e, e], axis=1)


# Ten photons in 64 bins over [0, 10) with a known background of 0.0072 per bin (one curve of
# the simulation in scripts/poisson_bias.py). Reweighted least squares (weights 1/μ of the
# previous iterate) runs off to τ → −∞ here, where the tail's tiny means get huge weights.
SPARSE_BACKGROUND = 0.0072
SPARSE_COUNTS = [1, 0, 0, 2, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0]


def problems():
    rng = np.random.default_rng(7)
    t = np.linspace(0, 6, 50)
    x = np.linspace(-3, 5, 70)
    t3 = np.linspace(0, 10, 60)
    return [
        dict(name="decay", formula="y ~ a*exp(-k*t) + c", x="t", xv=t, model=decay, names=["k", "a", "c"],
             truth=[0.9, 10000.0, 10.0], p0=[0.7, 8000.0, 15.0], start={"k": 0.7}),
        dict(name="gauss", formula="y ~ a*exp(-(x - m)^2/(2*s^2)) + c", x="x", xv=x, model=gauss,
             names=["m", "s", "a", "c"], truth=[1.0, 0.8, 8000.0, 12.0], p0=[0.8, 1.0, 6000.0, 10.0],
             start={"m": 0.8, "s": 1.0}),
        dict(name="biexp", formula="y ~ a1*exp(-k1*t) + a2*exp(-k2*t)", x="t", xv=t3, model=biexp,
             names=["k1", "k2", "a1", "a2"], truth=[1.5, 0.3, 8000.0, 2000.0], p0=[1.2, 0.25, 7000.0, 2500.0],
             start={"k1": 1.2, "k2": 0.25}),
        dict(name="sparse", formula=f"y ~ a*exp(-t/tau) + {SPARSE_BACKGROUND}", x="t", xv=np.arange(64) * (10 / 64),
             model=decay_fixed_background, names=["tau", "a"], counts=SPARSE_COUNTS, p0=[1.5, 0.7],
             p0s=[[0.5, 1.0], [1.5, 0.7], [4.0, 0.4], [20.0, 0.2]], start={"tau": 1.5}),
    ], rng


def nll(th, p, y):
    mu, _ = p["model"](p["xv"], th)
    if np.any(mu <= 0):
        return np.inf
    return float(np.sum(mu - y * np.log(mu)))


def grad(th, p, y):
    mu, J = p["model"](p["xv"], th)
    return J.T @ (1 - y / mu)


def main():
    os.makedirs(OUT, exist_ok=True)
    probs, rng = problems()
    ref = {"generator": "scripts/poisson_reference.py", "problems": []}
    for p in probs:
        if "counts" in p:
            y = np.array(p["counts"], dtype=float)
        else:
            mu0, _ = p["model"](p["xv"], np.array(p["truth"]))
            y = rng.poisson(mu0).astype(float)
        data = f"{p['name']}.csv"
        with open(os.path.join(OUT, data), "w") as fh:
            fh.write(f"{p['x']},y\n")
            for a, b in zip(p["xv"], y):
                fh.write(f"{float(a)!r},{int(b)}\n")
        # minimise in scaled variables (amplitudes ~1e4, rates ~1), from each start; the lowest end
        best = None
        for p0 in p.get("p0s", [p["p0"]]):
            scale = np.abs(np.array(p0))
            res = minimize(lambda u: nll(u * scale, p, y), np.ones(len(scale)), jac=lambda u: grad(u * scale, p, y) * scale,
                           method="BFGS", options={"gtol": 1e-10, "maxiter": 10000})
            if best is None or res.fun < best[0].fun:
                best = (res, scale)
        res, scale = best
        th = res.x * scale
        for _ in range(50):
            g = grad(th, p, y)
            H = np.empty((len(th), len(th)))
            for j in range(len(th)):
                h = 1e-5 * max(abs(th[j]), 1e-3)
                e = np.zeros(len(th)); e[j] = h
                H[:, j] = (grad(th + e, p, y) - grad(th - e, p, y)) / (2 * h)
            H = 0.5 * (H + H.T)
            step = np.linalg.solve(H, g)
            th = th - step
            if np.all(np.abs(step) <= 1e-14 * np.abs(th)):
                break
        mu, J = p["model"](p["xv"], th)
        cov = np.linalg.inv(J.T @ (J / mu[:, None]))
        dev = 2 * np.sum(np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / mu), 0.0) - (y - mu))
        print(p["name"], th, "max rel step", np.max(np.abs(step) / np.abs(th)), "deviance", dev,
              "counts", y.min(), y.max())
        ref["problems"].append({
            "name": p["name"], "formula": p["formula"], "data": data, "start": p["start"], "n": int(len(y)),
            "estimates": dict(zip(p["names"], map(float, th))),
            "std_errors": dict(zip(p["names"], map(float, np.sqrt(np.diag(cov))))),
            "deviance": float(dev),
            "minimize_message": str(res.message),
        })
    with open(os.path.join(OUT, "reference.json"), "w") as fh:
        json.dump(ref, fh, indent=1)


if __name__ == "__main__":
    main()
