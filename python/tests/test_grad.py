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


def test_jacobians_against_closed_forms():
    rng = np.random.default_rng(7)
    W = rng.standard_normal((2, 3))
    x = rng.standard_normal(3)
    b = rng.standard_normal(2)
    # a layer in its weights: ∂f_i/∂vec(W)_(k, l) = (1 − f_i²)·x_l·[i = k], columns of vec(W)
    j = sepfit.jacobian("tanh(W*x + b)", "W", var="W: m x n, x: n, b: m")
    assert j.kind == "jacobian" and j.formula == "(xᵀ ⊗ I).*(1 − tanh(W·x + b).^2)"
    value, jac = j(W=W, x=x, b=b)
    f = np.tanh(W @ x + b)
    np.testing.assert_allclose(value, f, rtol=1e-14)
    want = np.kron(x[None, :], np.eye(2)) * (1 - f**2)[:, None]
    assert jac.shape == (2, 6)
    np.testing.assert_allclose(jac, want, rtol=1e-13, atol=1e-15)
    assert j.check(W=W, x=x, b=b) <= 1e-8
    # a matrix intermediate read through a product: ∂((x·xᵀ)·v)/∂x = (xᵀv)·I + x·vᵀ
    v = rng.standard_normal(3)
    j = sepfit.jacobian("(x*x')*v", "x", var="x: n, v: n")
    assert j.formula == "xᵀ·v·I + x·vᵀ"
    _, jac = j(x=x, v=v)
    np.testing.assert_allclose(jac, (x @ v) * np.eye(3) + np.outer(x, v), rtol=1e-13)
    # ∂(X⁻¹·b)/∂vec(X) = −(X⁻¹b)ᵀ ⊗ X⁻¹
    X = rng.standard_normal((3, 3)) + 3 * np.eye(3)
    c = rng.standard_normal(3)
    j = sepfit.jacobian("inv(X)*c", "X", var="X: n x n, c: n")
    _, jac = j(X=X, c=c)
    Xi = np.linalg.inv(X)
    np.testing.assert_allclose(jac, -np.kron((Xi @ c)[None, :], Xi), rtol=1e-12, atol=1e-14)
    # shapes from the values when nothing is declared
    value, jac = sepfit.jacobian("exp(A*x)", "x")(A=W, x=x)
    np.testing.assert_allclose(jac, np.exp(W @ x)[:, None] * W, rtol=1e-13)
    # an unsupported matrix intermediate is a FormulaError naming it
    with pytest.raises(sepfit.FormulaError, match=r"`exp\(x\*x'\)` depends on `x`"):
        sepfit.jacobian("exp(x*x')*v", "x", var="x: n, v: n")


def test_hessians_against_closed_forms():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((30, 3))
    y = (rng.random(30) < 0.5).astype(float)
    w = rng.standard_normal(3)
    h = sepfit.hessian("sum(log(1 + exp(X*w)) - y.*(X*w))", "w", var="X: n x d, w: d, y: n")
    assert h.kind == "hessian" and h.gradient_formula and h.formula
    loss, g, H = h(X=X, w=w, y=y)
    p = 1 / (1 + np.exp(-(X @ w)))
    assert loss == pytest.approx(np.sum(np.log1p(np.exp(X @ w)) - y * (X @ w)), rel=1e-12)
    np.testing.assert_allclose(g, X.T @ (p - y), rtol=1e-11)
    np.testing.assert_allclose(H, X.T @ (X * (p * (1 - p))[:, None]), rtol=1e-11)
    assert h.check(X=X, w=w, y=y) <= 1e-8
    # through a matrix intermediate: ∇²_x log det(A + x·xᵀ), against numpy's gradient differences
    A = rng.standard_normal((3, 3))
    A = A @ A.T + 3 * np.eye(3)
    x = rng.standard_normal(3)
    h = sepfit.hessian("logdet(A + x*x')", "x", var="A: n x n, x: n")
    _, g, H = h(A=A, x=x)

    def grad(x):
        return 2 * np.linalg.solve(A + np.outer(x, x), x)

    np.testing.assert_allclose(g, grad(x), rtol=1e-12)
    e = 1e-6
    fd = np.column_stack([(grad(x + e * u) - grad(x - e * u)) / (2 * e) for u in np.eye(3)])
    np.testing.assert_allclose(H, fd, rtol=1e-6, atol=1e-9)
    with pytest.raises(sepfit.DataError):
        sepfit.hessian("sum(X*w)", "X", var="X: n x d, w: d")
