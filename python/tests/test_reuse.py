"""A reused Model: compiled once, and bit-identical to a fresh one; predictions without the
response; weighted global fits; the tolerance keyword."""

import re

import numpy as np
import pytest

import sepfit
from sepfit import _sepfit
from conftest import FLIM_MODEL, FLIM_START, flim, read_nist
from test_fit import NIST, SEED_MODEL, SEED_START


def _same(a, b):
    """Every number of two results identical (NaN equal to NaN), and the same report text."""
    for attr in ("values", "stderr", "covar", "correl", "residual", "best_fit"):
        assert np.array_equal(getattr(a, attr), getattr(b, attr), equal_nan=True), attr
    for attr in ("rss", "dof", "aic", "bic", "r_squared", "iterations", "status", "termination", "warnings", "notes"):
        assert getattr(a, attr) == getattr(b, attr), attr
    # The report is the same but for the time the solve took.
    strip = lambda s: re.sub(r"evaluations\), [0-9.]+ ms", "evaluations)", s)
    assert strip(a.summary()) == strip(b.summary())


def test_reused_model_equals_a_fresh_one(seed000):
    """One Model fitted to different data sets in turn gives, each time, exactly what a fresh
    Model (parsed and compiled anew) gives."""
    cases = [(SEED_MODEL, {"y": seed000["y"], "t1": seed000["t1"], "t2": seed000["t2"]}, SEED_START)]
    for name in ("Misra1a", "MGH09", "Thurber"):
        p = read_nist(name)
        model = sepfit.Model(NIST[name])
        start = {k: v[0] for k, v in p["params"].items() if k in model.nonlinear}
        cases.append((NIST[name], {"y": p["y"], "x": p["x"]}, start))
    for formula, data, start in cases:
        m = sepfit.Model(formula)
        rng = np.random.default_rng(0)
        noisy = dict(data, y=data["y"] * (1 + 1e-3 * rng.standard_normal(data["y"].size)))
        for d in (data, noisy, data, noisy):
            _same(m.fit(d, start=start), sepfit.Model(formula).fit(d, start=start))
        assert len(m._prepared) == 1


def test_reuse_with_options(seed000):
    m = sepfit.Model(SEED_MODEL)
    sig = 0.01 + 0.001 * np.arange(10)
    kws = [
        {"sigma": sig},
        {"sigma": sig, "absolute_sigma": True},
        {"bounds": {"b2": (0, 1.0)}},
        {"fix": {"b2": 1.0}, "start": {"b1": 0.4}},
        {"method": "kaufman"},
        {"tol": 1e-8},
    ]
    for kw in kws * 2:
        kw = dict({"start": SEED_START}, **kw)
        r, fresh = m.fit(seed000, **kw), sepfit.Model(SEED_MODEL).fit(seed000, **kw)
        _same(r, fresh)
        assert r.absolute_sigma == fresh.absolute_sigma
    # One prepared problem per set of options (absolute_sigma is one: the library applies it).
    assert len(m._prepared) == len(kws)


def test_no_recompilation_when_a_model_is_reused(seed000, monkeypatch):
    """The second fit with the same column names and options does not resolve or compile
    again (`_sepfit.prepare` is where parsing and compilation happen)."""
    calls = []
    real = _sepfit.prepare

    def counting(*a, **k):
        calls.append(a[0])
        return real(*a, **k)

    monkeypatch.setattr(_sepfit, "prepare", counting)
    m = sepfit.Model(SEED_MODEL)
    for _ in range(3):
        m.fit(seed000, start=SEED_START)
    assert len(calls) == 1
    m.fit(seed000, start={"b1": 0.41, "b2": 0.6})  # other options: prepared once more
    assert len(calls) == 2
    # curve_fit with a formula string reuses one Model (and its compiled formula) per formula.
    formula = "y ~ p*exp(q*t1) + r*exp(s*t2)"
    x = {"t1": seed000["t1"], "t2": seed000["t2"]}
    a, _ = sepfit.curve_fit(formula, x, seed000["y"], p0={"q": 0.4, "s": 0.6})
    b, _ = sepfit.curve_fit(formula, x, seed000["y"], p0={"q": 0.4, "s": 0.6})
    assert len(calls) == 3 and np.array_equal(a, b)


def test_predict_needs_no_response(seed000):
    r = sepfit.Model(SEED_MODEL).fit(seed000, start=SEED_START)
    t1 = np.linspace(-1, 1, 7)
    t2 = np.linspace(0, 2, 7)
    v = r.best_values
    expected = v["a1"] * np.exp(v["b1"] * t1) + v["a2"] * np.exp(v["b2"] * t2)
    np.testing.assert_allclose(r.predict(t1=t1, t2=t2), expected, rtol=1e-14)
    # a response that is an expression of a column the right-hand side does not use
    t = np.linspace(0.1, 3, 40)
    y = 2.0 * np.exp(-0.7 * t)
    rl = sepfit.Model("log(y) ~ c + k*t").fit(y, t=t)
    np.testing.assert_allclose(rl.predict(t=np.array([0.0, 1.0])), [np.log(2.0), np.log(2.0) - 0.7], rtol=1e-12)
    # strided (non-contiguous) input is read correctly
    wide = np.repeat(t1, 2)[::2]
    assert not wide.flags.c_contiguous
    np.testing.assert_array_equal(r.predict(t1=wide, t2=t2), r.predict(t1=t1, t2=t2))
    with pytest.raises(sepfit.DataError, match="needs the column `t2`"):
        r.predict(t1=t1)


def test_fit_global_with_sigma():
    """Weights 1/σ in a global fit: one curve equals the single weighted fit, a constant σ
    changes nothing but the χ² scale, and a strided response gives the same numbers."""
    rng = np.random.default_rng(4)
    t = np.linspace(0, 6, 90)
    sig = 0.002 + 0.004 * rng.random(t.size)
    amps = rng.uniform(0.5, 2.0, (5, 2))
    y = amps[:, :1] * np.exp(-2.0 * t) + amps[:, 1:] * np.exp(-0.3 * t) + sig * rng.standard_normal((5, t.size))
    formula = "y ~ a1*exp(-k1*t) + a2*exp(-k2*t)"
    start = {"k1": 1.5, "k2": 0.2}
    one = sepfit.fit_global(formula, y[:1], start=start, t=t, sigma=sig)
    single = sepfit.Model(formula).fit(y[0], t=t, start=start, sigma=sig)
    # The single fit polishes to full precision, the global fit stops at LM's xtol: the same
    # optimum (the RSS to 1e-12), the rates to 1e-7 (as crates/sepfit/tests/batch.rs checks).
    for k in ("k1", "k2"):
        assert one.shared[k] == pytest.approx(single.params[k].value, rel=1e-7)
        assert one.shared_stderr[k] == pytest.approx(single.params[k].stderr, rel=1e-6)
    assert one.total_rss == pytest.approx(single.rss, rel=1e-12)
    g = sepfit.fit_global(formula, y, start=start, t=t, sigma=sig)
    u = sepfit.fit_global(formula, y, start=start, t=t)
    assert g.converged and g.shared != u.shared
    c = sepfit.fit_global(formula, y, start=start, t=t, sigma=0.5)
    for k in ("k1", "k2"):
        assert c.shared[k] == pytest.approx(u.shared[k], rel=1e-10)
        assert c.shared_stderr[k] == pytest.approx(u.shared_stderr[k], rel=1e-8)
    assert c.total_rss == pytest.approx(u.total_rss / 0.25, rel=1e-10)
    gt = sepfit.fit_global(formula, np.asfortranarray(y), start=start, t=t, sigma=sig)
    assert gt.shared == g.shared and np.array_equal(gt.values, g.values)
    with pytest.raises(sepfit.FitError, match="sigma"):
        sepfit.fit_global(formula, y, start=start, t=t, sigma=np.where(np.arange(t.size) == 3, -1.0, sig))


def test_tol_stops_where_scipy_does():
    """`tol=1.49e-8` is scipy's curve_fit default; the estimates then agree with the full-
    precision ones to about the square root of the tolerance relative to their errors."""
    t, y = flim(1, seed=9)
    full = sepfit.Model(FLIM_MODEL).fit(y[0], t=t, start=FLIM_START)
    loose = sepfit.Model(FLIM_MODEL).fit(y[0], t=t, start=FLIM_START, tol=1.49e-8)
    assert loose.converged and loose.iterations <= full.iterations
    assert np.all(np.abs(loose.values - full.values) <= 1e-3 * full.stderr)
    popt, _ = sepfit.curve_fit(FLIM_MODEL, t, y[0], p0=FLIM_START, tol=1.49e-8)
    assert np.array_equal(popt, loose.values)
    with pytest.raises(sepfit.ParameterError, match="tol"):
        sepfit.Model(FLIM_MODEL).fit(y[0], t=t, start=FLIM_START, tol=-1.0)
