"""Robust losses and Poisson maximum likelihood from Python: ``loss=`` and ``f_scale=`` on
``Model.fit``, ``curve_fit`` and ``fit_batch``, against the stored references that
``scripts/robust_reference.py`` (scipy ``least_squares(loss=…)`` / ``curve_fit``) and
``scripts/poisson_reference.py`` (scipy ``minimize`` on the Poisson negative log-likelihood)
wrote under ``data/reference/``."""

import json

import numpy as np
import pytest

import sepfit
from conftest import DATA, read_csv

ROBUST = DATA / "reference" / "robust"
POISSON = DATA / "reference" / "poisson"


def _problems(folder):
    return json.loads((folder / "reference.json").read_text())["problems"]


def _check(r, ref, est_rtol=1e-6, se_rtol=1e-4):
    for name, want in ref["estimates"].items():
        got = r.params[name].value
        assert abs(got - want) <= est_rtol * max(abs(want), 1e-12), f"{name}: {got} vs {want}"
    for name, want in ref["std_errors"].items():
        got = r.params[name].stderr
        assert abs(got - want) <= se_rtol * abs(want), f"{name} SE: {got} vs {want}"


@pytest.mark.parametrize("problem", _problems(ROBUST), ids=lambda p: p["name"])
def test_robust_losses_equal_scipy(problem):
    d = read_csv(ROBUST / problem["data"])
    m = sepfit.Model(problem["formula"])
    for loss, ref in problem["fits"].items():
        r = m.fit(d, start=problem["start"], loss=loss, f_scale=problem["f_scale"])
        assert r.converged, (loss, r.termination)
        assert r.loss == loss
        _check(r, ref)
        # scipy's cost ½F²Σρ is the library's loss_cost.
        assert abs(r.loss_cost - ref["cost"]) <= 1e-8 * ref["cost"], (loss, r.loss_cost, ref["cost"])


def test_curve_fit_takes_scipy_loss_keywords():
    problem = _problems(ROBUST)[0]
    d = read_csv(ROBUST / problem["data"])
    x = {k: v for k, v in d.items() if k != "y"}
    ref = problem["fits"]["huber"]
    popt, pcov = sepfit.curve_fit(problem["formula"], x, d["y"], p0=problem["start"], loss="huber", f_scale=problem["f_scale"])
    names = sepfit.Model(problem["formula"]).param_names
    for i, n in enumerate(names):
        assert abs(popt[i] - ref["estimates"][n]) <= 1e-6 * abs(ref["estimates"][n])
        assert abs(np.sqrt(pcov[i, i]) - ref["std_errors"][n]) <= 1e-4 * ref["std_errors"][n]


@pytest.mark.parametrize("problem", _problems(POISSON), ids=lambda p: p["name"])
def test_poisson_equals_likelihood_reference(problem):
    d = read_csv(POISSON / problem["data"])
    r = sepfit.Model(problem["formula"]).fit(d, start=problem["start"], loss="poisson")
    assert r.converged and r.loss == "poisson"
    _check(r, problem)
    assert abs(r.loss_cost - problem["deviance"]) <= 1e-8 * problem["deviance"]
    # The Fisher information is absolute: no rescaling by a residual variance.
    assert "deviance" in r.summary()


def test_batch_poisson_equals_single_fits():
    """Each curve of a Poisson batch is the single Poisson fit of that curve (to the batch's
    default tolerance), with the deviance in ``loss_cost``."""
    problem = next(p for p in _problems(POISSON) if p["name"] == "decay")
    d = read_csv(POISSON / problem["data"])
    t, y = d["t"], d["y"]
    rng = np.random.default_rng(3)
    mu = np.array(sepfit.Model(problem["formula"]).fit(d, start=problem["start"], loss="poisson").best_fit)
    curves = np.stack([y] + [rng.poisson(mu).astype(float) for _ in range(5)])
    b = sepfit.fit_batch(problem["formula"], curves, t=t, start=problem["start"], loss="poisson")
    assert b.loss == "poisson"
    m = sepfit.Model(problem["formula"])
    for c in range(curves.shape[0]):
        r = m.fit(curves[c], t=t, start=problem["start"], loss="poisson")
        assert b.converged[c] == r.converged
        for i, name in enumerate(b.param_names):
            np.testing.assert_allclose(b.values[c, i], r.params[name].value, rtol=1e-5)
            np.testing.assert_allclose(b.stderr[c, i], r.params[name].stderr, rtol=1e-4)
        np.testing.assert_allclose(b.loss_cost[c], r.loss_cost, rtol=1e-9)
    plain = sepfit.fit_batch(problem["formula"], curves, t=t, start=problem["start"])
    assert plain.loss == "linear" and np.isnan(plain.loss_cost).all()


def test_robust_absolute_sigma_is_scaled_by_the_robust_cost():
    """absolute_sigma with a robust loss undoes the factor 2C/dof the covariance carries (not
    the least-squares χ²/dof), as scipy's curve_fit(absolute_sigma=True, loss=…) does."""
    problem = _problems(ROBUST)[0]
    d = read_csv(ROBUST / problem["data"])
    sigma = np.full(len(d["y"]), 0.05)
    m = sepfit.Model(problem["formula"])
    kw = dict(start=problem["start"], loss="cauchy", f_scale=problem["f_scale"], sigma=sigma)
    rel, ab = m.fit(d, **kw), m.fit(d, absolute_sigma=True, **kw)
    assert ab.absolute_sigma and not rel.absolute_sigma
    factor = 2 * rel.loss_cost / rel.dof
    np.testing.assert_allclose(ab.covar, rel.covar / factor, rtol=1e-10, atol=1e-300)
    assert "z value" in ab.summary()


def test_bad_loss_keywords_name_the_keyword():
    d = read_csv(ROBUST / _problems(ROBUST)[0]["data"])
    m = sepfit.Model("y ~ a*exp(-k*t) + c")
    with pytest.raises(sepfit.ParameterError, match="loss"):
        m.fit(d, start={"k": 1.0}, loss="l2")
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(sepfit.ParameterError, match="f_scale"):
            m.fit(d, start={"k": 1.0}, loss="huber", f_scale=bad)
    with pytest.raises(sepfit.ParameterError, match="f_scale"):
        m.fit(d, start={"k": 1.0}, loss="poisson", f_scale=2.0)
    with pytest.raises(sepfit.ParameterError, match="f_scale"):
        sepfit.fit_batch("y ~ a*exp(-k*t) + c", np.ones((2, 5)), t=np.arange(5.0), start={"k": 1.0}, loss="huber", f_scale=-1.0)


def test_negative_counts_are_an_error_not_a_fit():
    t = np.arange(10.0)
    y = np.array([5, 4, 3, 3, 2, -1, 1, 1, 0, 1], dtype=float)
    with pytest.raises(sepfit.FitError, match="row 6"):
        sepfit.Model("y ~ a*exp(-k*t) + c").fit(y, t=t, start={"k": 0.3}, loss="poisson")
    b = sepfit.fit_batch("y ~ a*exp(-k*t) + c", np.stack([y, np.abs(y)]), t=t, start={"k": 0.3}, loss="poisson")
    assert b.status[0] == 3 and b.status[1] != 3
