"""Single fits: the same numbers as the Rust library (via the CLI's JSON), NIST certified
values, scipy's curve_fit, and the result object's pieces."""

import json

import numpy as np
import pytest

import sepfit
from conftest import HERE, read_nist

SEED_MODEL = "y ~ a1*exp(b1*t1) + a2*exp(b2*t2)"
SEED_START = {"b1": 0.4, "b2": 0.6}


def test_model_structure():
    m = sepfit.Model(SEED_MODEL)
    assert m.param_names == ["a1", "a2", "b1", "b2"]
    assert m.linear == ["a1", "a2"] and m.nonlinear == ["b1", "b2"]
    assert m.derivatives["b1"] == "a1*t1*exp(b1*t1)"
    assert "e^{b_{1}" in m.latex()
    # Columns decide: with `c` as data, it is no longer a parameter.
    assert sepfit.Model("y ~ a*exp(-k*t) + c").param_names == ["a", "c", "k"]
    assert list(sepfit.Model("y ~ a*exp(-k*t) + c").info(["t", "y", "c"]).param_names) == ["a", "k"]


def test_seed000_matches_the_library(seed000):
    """The bundled example gives the numbers `sepfit fit --format json` prints."""
    ref = json.loads((HERE / "data" / "seed000_cli.json").read_text())
    r = sepfit.Model(SEED_MODEL).fit(seed000, start=SEED_START)
    assert r.converged and r.status == "converged"
    d = r.to_dict()
    for p_ref, p in zip(ref["parameters"], d["parameters"]):
        assert p["name"] == p_ref["name"]
        assert p["value"] == pytest.approx(p_ref["value"], rel=1e-10)
        assert p["std_error"] == pytest.approx(p_ref["std_error"], rel=1e-8)
        assert r.params[p["name"]].value == p["value"]
        assert r.params[p["name"]].linear == p_ref["linear"]
    for key in ("rss", "dof", "aic", "bic", "r_squared"):
        assert d[key] == pytest.approx(ref[key], rel=1e-9), key
    assert r.rss == d["rss"] and r.dof == 6 and r.aic == d["aic"] and r.bic == d["bic"]
    assert np.allclose(r.values, [p["value"] for p in ref["parameters"]], rtol=1e-10, atol=0)
    # README numbers.
    assert round(r.params["b1"].value, 7) == 0.4346321 and round(r.params["b2"].stderr, 7) == 0.7626665
    s = r.summary()
    assert s == r.fit_report()
    assert "Residual standard error: 0.0133486 on 6 degrees of freedom" in s
    assert "linear      a1, a2 (eliminated by variable projection)" in s
    assert "converged" in repr(r) and "b1=0.434632" in repr(r)
    assert "<table>" in r._repr_html_()


def test_result_arrays(seed000):
    r = sepfit.Model(SEED_MODEL).fit(seed000["y"], t1=seed000["t1"], t2=seed000["t2"], start=SEED_START)
    assert np.allclose(r.best_fit + r.residual, seed000["y"], rtol=0, atol=1e-15)
    assert np.array_equal(r.predict(t1=seed000["t1"], t2=seed000["t2"]), r.best_fit)
    assert np.allclose(np.sqrt(np.diag(r.covar)), r.stderr, rtol=1e-12)
    c = r.correl
    assert np.allclose(np.diag(c), 1.0) and c.shape == (4, 4)
    assert r.covar[0, 1] == pytest.approx(r.correl[0, 1] * r.stderr[0] * r.stderr[1], rel=1e-10)
    assert r.termination and r.iterations > 0 and r.ndata == 10
    # the response by name, and a DataFrame
    r2 = sepfit.Model(SEED_MODEL).fit("y", data=seed000, start=SEED_START)
    assert np.array_equal(r2.values, r.values)
    pd = pytest.importorskip("pandas")
    r3 = sepfit.Model(SEED_MODEL).fit(pd.DataFrame(seed000), start=SEED_START)
    assert np.array_equal(r3.values, r.values)


def test_model_reuse_caches_the_parse(seed000):
    m = sepfit.Model(SEED_MODEL)
    r1 = m.fit(seed000, start=SEED_START)
    r2 = m.fit(seed000, start=SEED_START)
    assert np.array_equal(r1.values, r2.values)
    m.info(["t1", "t2", "y"])
    m.info(["y", "t2", "t1"])
    assert len(m._cache) == 1


NIST = {
    "Misra1a": "y ~ b1*(1-exp(-b2*x))",
    "Chwirut2": "y ~ exp(-b1*x)/(b2+b3*x)",
    "MGH09": "y ~ b1*(x^2+x*b2) / (x^2+x*b3+b4)",
    "Thurber": "y ~ (b1 + b2*x + b3*x^2 + b4*x^3)/(1 + b5*x + b6*x^2 + b7*x^3)",
    "Eckerle4": "y ~ (b1/b2)*exp(-0.5*((x-b3)/b2)^2)",
    "BoxBOD": "y ~ b1*(1-exp(-b2*x))",
    "DanWood": "y ~ b1*x^b2",
}


@pytest.mark.parametrize("name", sorted(NIST))
@pytest.mark.parametrize("which", [0, 1])
def test_nist_certified(name, which):
    p = read_nist(name)
    model = sepfit.Model(NIST[name])
    start = {k: v[which] for k, v in p["params"].items() if k in model.nonlinear}
    r = model.fit(p["y"], x=p["x"], start=start)
    assert r.converged, r.summary()
    for k, (_s1, _s2, value, sd) in p["params"].items():
        assert r.params[k].value == pytest.approx(value, rel=1e-7), (k, r.summary())
        assert r.params[k].stderr == pytest.approx(sd, rel=1e-5), k
    assert r.rss == pytest.approx(p["rss"], rel=1e-8)


def test_curve_fit_agrees_with_scipy():
    so = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(3)
    t = np.linspace(0, 8, 200)
    sigma = 0.002 + 0.001 * rng.random(t.size)
    y = 2.5 * np.exp(-t / 0.7) + 1.2 * np.exp(-t / 3.1) + 0.3 + sigma * rng.standard_normal(t.size)
    formula = "y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + c"

    def f(t, a1, a2, c, tau1, tau2):
        return a1 * np.exp(-t / tau1) + a2 * np.exp(-t / tau2) + c

    def jac(t, a1, a2, c, tau1, tau2):
        e1, e2 = np.exp(-t / tau1), np.exp(-t / tau2)
        return np.column_stack([e1, e2, np.ones_like(t), a1 * t / tau1**2 * e1, a2 * t / tau2**2 * e2])

    p0 = {"tau1": 0.5, "tau2": 2.0}
    for kw in ({}, {"sigma": sigma}, {"sigma": sigma, "absolute_sigma": True}):
        popt, pcov = sepfit.curve_fit(formula, t, y, p0=p0, **kw)
        assert sepfit.Model(formula).param_names == ["a1", "a2", "c", "tau1", "tau2"]
        sp, sc = so.curve_fit(f, t, y, p0=[1, 1, 0, 0.5, 2.0], jac=jac, xtol=1e-15, ftol=1e-15, gtol=1e-15, maxfev=100000, **kw)
        np.testing.assert_allclose(popt, sp, rtol=1e-8)
        np.testing.assert_allclose(pcov, sc, rtol=1e-6, atol=1e-6 * np.abs(sc).max())


def test_curve_fit_is_model_fit():
    """curve_fit asks the library for estimates and covariance only (no fitted values,
    residuals or tests): the same estimates as Model.fit bit for bit, the covariance to
    rounding (its RSS is the projection's), with every keyword passed on."""
    rng = np.random.default_rng(5)
    t = np.linspace(0, 8, 120)
    sigma = 0.01 + 0.01 * rng.random(t.size)
    y = 2.5 * np.exp(-t / 0.7) + 1.2 * np.exp(-t / 3.1) + 0.3 + sigma * rng.standard_normal(t.size)
    formula = "y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + c"
    m = sepfit.Model(formula)
    p0 = {"tau1": 0.5, "tau2": 2.0}
    cases = [{}, {"sigma": sigma}, {"sigma": sigma, "absolute_sigma": True}, {"tol": 1e-8}, {"fix": {"tau2": 3.0}}, {"loss": "soft_l1", "f_scale": 0.02}]
    for kw in cases:
        popt, pcov = sepfit.curve_fit(formula, t, y, p0=p0 if "fix" not in kw else {"tau1": 0.5}, **kw)
        fkw = {("start" if k == "p0" else k): v for k, v in kw.items()}
        r = m.fit(y, t=t, start=p0 if "fix" not in kw else {"tau1": 0.5}, **fkw)
        assert np.array_equal(popt, r.values), kw
        np.testing.assert_allclose(pcov, r.covar, rtol=1e-12, atol=1e-15 * np.abs(r.covar).max(), err_msg=str(kw))
    # a fit stopped by the iteration limit raises, as scipy's does
    with pytest.raises(sepfit.ConvergenceError):
        sepfit.curve_fit(formula, t, y, p0=p0, max_iterations=1)


def test_curve_fit_scipy_misra1a():
    so = pytest.importorskip("scipy.optimize")
    p = read_nist("Misra1a")
    popt, pcov = sepfit.curve_fit("y ~ b1*(1-exp(-b2*x))", p["x"], p["y"], p0={"b2": 5e-4})
    def jac(x, b1, b2):
        return np.column_stack([1 - np.exp(-b2 * x), b1 * x * np.exp(-b2 * x)])

    sp, sc = so.curve_fit(lambda x, b1, b2: b1 * (1 - np.exp(-b2 * x)), p["x"], p["y"], p0=[250, 5e-4], jac=jac, xtol=1e-15, ftol=1e-15, gtol=1e-15)
    np.testing.assert_allclose(popt, sp, rtol=1e-8)
    np.testing.assert_allclose(pcov, sc, rtol=1e-6)


def test_curve_fit_forms_of_xdata_bounds_nan(seed000):
    x = {"t1": seed000["t1"], "t2": seed000["t2"]}
    a, _ = sepfit.curve_fit(SEED_MODEL, x, seed000["y"], p0=SEED_START)
    b, _ = sepfit.curve_fit(SEED_MODEL, (seed000["t1"], seed000["t2"]), seed000["y"], p0=SEED_START)
    assert np.array_equal(a, b)
    c, _ = sepfit.curve_fit(SEED_MODEL, x, seed000["y"], p0=SEED_START, bounds={"b2": (0, 1.0)})
    assert c[3] == pytest.approx(1.0)
    r = sepfit.Model(SEED_MODEL).fit(seed000, start=SEED_START, bounds={"b2": (0, 1.0)})
    assert r.params["b2"].at_bound == "upper"
    # nan_policy
    y = seed000["y"].copy()
    y[4] = np.nan
    with pytest.raises(sepfit.DataError, match="row 5"):
        sepfit.curve_fit(SEED_MODEL, x, y, p0=SEED_START)
    d, _ = sepfit.curve_fit(SEED_MODEL, x, y, p0=SEED_START, nan_policy="omit")
    keep = np.arange(10) != 4
    e, _ = sepfit.curve_fit(SEED_MODEL, {k: v[keep] for k, v in x.items()}, seed000["y"][keep], p0=SEED_START)
    assert np.array_equal(d, e)


def test_fix(seed000):
    r = sepfit.Model(SEED_MODEL).fit(seed000, start={"b1": 0.4}, fix={"b2": 1.0})
    assert r.params["b2"].fixed and r.params["b2"].value == 1.0 and r.params["b2"].stderr == 0
    assert r.param_names == ["a1", "a2", "b1", "b2"]
    assert r.covar[3].tolist() == [0, 0, 0, 0]
