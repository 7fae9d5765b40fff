"""Reference values for sepfit's prediction bands and weights (crates/sepfit/tests/predict.rs).

    /tmp/venv/bin/python scripts/predict_reference.py     # numpy, scipy, lmfit (see requirements.txt)

Problems (fitted to full precision: xtol = ftol = gtol = 1e-15): Puromycin (treated), DNase run 1 and the biexponential of 1000 points, from the data R
wrote (data/reference/intervals/). For each, lmfit fits the model and
  * `eval_uncertainty(sigma=0.95, dscale=1e-5)` gives the half-width of the 95% confidence band
    (`dely`) and of the prediction band (`dely_predicted`) on a grid; lmfit differentiates by
    central differences with step dscale*stderr, 1e-5 keeps their error near 1e-10;
  * a hand delta method in numpy with the analytic gradient g: Cov = redchi (J^T J)^-1 from the
    analytic Jacobian J at lmfit's optimum, se_fit^2 = g Cov g^T, half-widths t_{dof,0.975} *
    se_fit and t * sqrt(se_fit^2 + redchi);
  * lmfit's covariance comes from MINPACK's finite-difference Jacobian and differs from the
    exact one by up to ~1e-5 relative: `lmfit_*` are eval_uncertainty with that covariance
    replaced by the exact one (its band formula and differences tested), `lmfit_own_covar_*`
    with lmfit's own.
Weights: scipy curve_fit on Puromycin with sigma = 1/sqrt(w) (w = 1/sqrt(conc)), pcov with
absolute_sigma=False and True.
Writes data/reference/predict/<problem>.json.
"""
import json
import pathlib

import lmfit
import numpy as np
import scipy
from scipy.optimize import curve_fit
from scipy.stats import t as student_t

root = pathlib.Path(__file__).resolve().parent.parent
src = root / "data/reference/intervals"
out = root / "data/reference/predict"
out.mkdir(parents=True, exist_ok=True)
LEVEL = 0.95


def load(name):
    with open(src / f"{name}.csv") as f:
        header = [h.strip('"') for h in f.readline().strip().split(",")]
    d = np.loadtxt(src / f"{name}.csv", delimiter=",", skiprows=1, ndmin=2)
    return {h: d[:, i] for i, h in enumerate(header)}


def puro(conc, Vm, K):
    return Vm * conc / (K + conc)


def puro_grad(conc, Vm, K):
    return np.array([conc / (K + conc), -Vm * conc / (K + conc) ** 2])


def dnase(conc, Asym, xmid, scal):
    return Asym / (1 + np.exp((xmid - np.log(conc)) / scal))


def dnase_grad(conc, Asym, xmid, scal):
    e = np.exp((xmid - np.log(conc)) / scal)
    return np.array([1 / (1 + e), -Asym * e / scal / (1 + e) ** 2, Asym * e * (xmid - np.log(conc)) / scal**2 / (1 + e) ** 2])


def dexp(t, a1, a2, tau1, tau2, c):
    return a1 * np.exp(-t / tau1) + a2 * np.exp(-t / tau2) + c


def dexp_grad(t, a1, a2, tau1, tau2, c):
    e1, e2 = np.exp(-t / tau1), np.exp(-t / tau2)
    return np.array([e1, e2, a1 * e1 * t / tau1**2, a2 * e2 * t / tau2**2, np.ones_like(t)])


PROBLEMS = [
    ("puromycin", puro, puro_grad, "conc", "rate", dict(Vm=200, K=0.05), np.linspace(0.01, 1.5, 9)),
    ("dnase1", dnase, dnase_grad, "conc", "density", dict(Asym=3, xmid=0, scal=1), np.geomspace(0.03, 15, 9)),
    ("dexp1000", dexp, dexp_grad, "t", "y", dict(a1=1, a2=2, tau1=0.5, tau2=3, c=0.1), np.linspace(0, 12, 9)),
]

for name, f, grad, x, y, start, grid in PROBLEMS:
    d = load(name)
    model = lmfit.Model(f, independent_vars=[x])
    res = model.fit(d[y], **{x: d[x]}, **start, fit_kws=dict(xtol=1e-15, ftol=1e-15, gtol=1e-15))
    assert res.success, name
    names = list(res.var_names)
    vals = [res.params[n].value for n in names]
    dely_own = res.eval_uncertainty(**{x: grid}, sigma=LEVEL, dscale=1e-5)
    dely_pred_own = res.dely_predicted
    jac = grad(d[x], *vals).T
    cov = res.redchi * np.linalg.inv(jac.T @ jac)
    res.covar = cov
    dely = res.eval_uncertainty(**{x: grid}, sigma=LEVEL, dscale=1e-5)
    dely_pred = res.dely_predicted
    dof = res.nfree
    q = student_t.ppf(0.5 + LEVEL / 2, dof)
    g = grad(grid, *vals)
    se_fit = np.sqrt(np.einsum("in,ij,jn->n", g, cov, g))
    record = {
        "problem": name, "x": x, "level": LEVEL, "dof": int(dof), "quantile": q,
        "parameters": dict(zip(names, vals)), "grid": grid.tolist(),
        "fit": res.eval(**{x: grid}).tolist(),
        "lmfit_dely": dely.tolist(), "lmfit_dely_predicted": dely_pred.tolist(),
        "lmfit_own_covar_dely": dely_own.tolist(), "lmfit_own_covar_dely_predicted": dely_pred_own.tolist(),
        "numpy_se_fit": se_fit.tolist(), "numpy_dely": (q * se_fit).tolist(),
        "numpy_dely_predicted": (q * np.sqrt(se_fit**2 + res.redchi)).tolist(),
        "versions": {"lmfit": lmfit.__version__, "numpy": np.__version__, "scipy": scipy.__version__},
    }
    (out / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    print(name, "max |lmfit - numpy| / numpy:", np.max(np.abs(dely - q * se_fit) / (q * se_fit)),
          "with lmfit's own covariance:", np.max(np.abs(dely_own - q * se_fit) / (q * se_fit)))

# Weights: sigma = 1/sqrt(w), relative and absolute.
d = load("puromycin_weighted")
sigma = 1 / np.sqrt(d["w"])
rel = {}
for absolute in (False, True):
    popt, pcov = curve_fit(puro, d["conc"], d["rate"], p0=[200, 0.05], sigma=sigma, absolute_sigma=absolute, xtol=1e-15, ftol=1e-15, gtol=1e-15)
    rel["absolute" if absolute else "relative"] = {"popt": popt.tolist(), "pcov": pcov.tolist()}
rel["parameters"] = ["Vm", "K"]
rel["versions"] = {"scipy": scipy.__version__}
(out / "puromycin_weighted_curve_fit.json").write_text(json.dumps(rel, indent=1) + "\n")
print("weighted Puromycin:", rel["absolute"]["popt"])
