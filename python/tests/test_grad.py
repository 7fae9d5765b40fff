"""grad / minimize on a least-squares loss, against numpy and scipy; landscape."""

import numpy as np
import pytest

import sepfit


def test_grad_of_least_squares():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20, 3))
    y = rng.standard_normal(20)
    w = rng.standard_normal(3)
    g = sepfit.grad("sum((X*w - y).^2)", wrt="w", var="X: n x d, w: d, y: n")
    assert g.formula and g.latex
    value, grad = g(X=X, w=w, y=y)
    assert value == pytest.approx(np.sum((X @ w - y) ** 2), rel=1e-12)
    np.testing.assert_allclose(grad, 2 * X.T @ (X @ w - y), rtol=1e-12)
    so = pytest.importorskip("scipy.optimize")
    res = so.minimize(g.scipy(X=X, y=y), np.zeros(3), jac=True, method="BFGS")
    np.testing.assert_allclose(res.x, np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-6)
    m = sepfit.minimize("sum((X*w - y).^2)", "w", x0=np.zeros(3), var="X: n x d, w: d, y: n", X=X, y=y)
    assert m["converged"]
    np.testing.assert_allclose(m["x"], np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-6)
    with pytest.raises(sepfit.FormulaError):
        sepfit.grad("sum((X*w - y).^2", wrt="w", var="X: n x d, w: d, y: n")


def test_landscape(seed000):
    land = sepfit.landscape("y ~ a1*exp(b1*t1) + a2*exp(b2*t2)", seed000, params=("b1", "b2"), start={"b1": 0.4, "b2": 0.6}, grid=21)
    z = land["z"]
    assert z.shape == (21, 21) and np.isfinite(z).mean() > 0.9
    assert np.nanmin(z) >= land["fit"].rss * (1 - 1e-9)
