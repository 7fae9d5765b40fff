"""Gradient.emit("numpy"): the generated Python function computes the same loss and gradient
as sepfit's own evaluation of the formula, on random inputs, to 1e-10 relative."""

import zlib

import numpy as np
import pytest

import sepfit


def _spd(rng, n):
    a = rng.standard_normal((n, n))
    return a @ a.T + n * np.eye(n)


def _probs(rng, k):
    p = rng.random(k) + 0.1
    return p / p.sum()


# (loss, wrt, declarations, values from a generator)
CASES = [
    ("norm2(X*w - y)^2", "w", "X: n x d, w: d, y: n",
     lambda r: dict(X=r.standard_normal((7, 3)), w=r.standard_normal(3), y=r.standard_normal(7))),
    ("sum(softplus(X*w) - y.*(X*w))", "w", "X: n x d, w: d, y: n",
     lambda r: dict(X=r.standard_normal((9, 4)), w=r.standard_normal(4), y=(r.random(9) < 0.5).astype(float))),
    ("x'*A*x", "x", "A: n x n, x: n",
     lambda r: dict(A=r.standard_normal((5, 5)), x=r.standard_normal(5))),
    ("x'*A*x", "A", "A: n x n, x: n",
     lambda r: dict(A=r.standard_normal((5, 5)), x=r.standard_normal(5))),
    ("logdet(S)", "S", "S: n x n",
     lambda r: dict(S=_spd(r, 4))),
    ("log(det(S)) - tr(S*B)", "S", "S: n x n, B: n x n",
     lambda r: dict(S=_spd(r, 4), B=r.standard_normal((4, 4)))),
    ("tr(A*X*B*X')", "X", "A: n x n, X: n x m, B: m x m",
     lambda r: dict(A=r.standard_normal((4, 4)), X=r.standard_normal((4, 3)), B=r.standard_normal((3, 3)))),
    ("normF(A - U*V')^2", "U", "A: n x m, U: n x k, V: m x k",
     lambda r: dict(A=r.standard_normal((6, 5)), U=r.standard_normal((6, 2)), V=r.standard_normal((5, 2)))),
    ("norm2(x - a)", "x", "x: n, a: n",
     lambda r: dict(x=r.standard_normal(6), a=r.standard_normal(6))),
    ("logsumexp(W*x) - y'*(W*x)", "W", "W: k x d, x: d, y: k",
     lambda r: dict(W=r.standard_normal((4, 3)), x=r.standard_normal(3), y=_probs(r, 4))),
    ("-y'*log(softmax(W*x))", "W", "W: k x d, x: d, y: k",
     lambda r: dict(W=r.standard_normal((4, 3)), x=r.standard_normal(3), y=_probs(r, 4))),
    ("sum(logsumexp(X*W, 2)) - sum(sum(Y.*(X*W)))", "W", "X: n x d, W: d x k, Y: n x k",
     lambda r: dict(X=r.standard_normal((6, 3)), W=r.standard_normal((3, 4)), Y=np.array([_probs(r, 4) for _ in range(6)]))),
    ("-sum(sum(Y.*log(softmax(X*W, 2))))", "W", "X: n x d, W: d x k, Y: n x k",
     lambda r: dict(X=r.standard_normal((6, 3)), W=r.standard_normal((3, 4)), Y=r.random((6, 4)))),
    ("sum(logsumexp(A, 1).^2) + sum(sum(softmax(A, 1).*B))", "A", "A: n x k, B: n x k",
     lambda r: dict(A=r.standard_normal((5, 3)), B=r.standard_normal((5, 3)))),
    ("z = sum((X*P).*X, 2); J = sum(z./y - log(z))", "P", "X: n x m, P: m x m, y: n",
     lambda r: dict(X=r.standard_normal((8, 3)), P=_spd(r, 3), y=r.random(8) + 0.5)),
    ("y'*inv(A)*y", "A", "A: n x n, y: n",
     lambda r: dict(A=_spd(r, 4), y=r.standard_normal(4))),
    ("sum(exp(-(x - b').^2))", "x", "x: n, b: m",
     lambda r: dict(x=r.standard_normal(5), b=r.standard_normal(3))),
    ("norm2(X*w - y)^2 + lam*w'*w", "w", "X: n x d, w: d, y: n, lam",
     lambda r: dict(X=r.standard_normal((7, 3)), w=r.standard_normal(3), y=r.standard_normal(7), lam=0.3)),
    ("norm2(X*w - y)^2 + lam*w'*w", "lam", "X: n x d, w: d, y: n, lam",
     lambda r: dict(X=r.standard_normal((7, 3)), w=r.standard_normal(3), y=r.standard_normal(7), lam=0.3)),
    ("sum(sum(X, 1).^2) + sum(tanh(sum(X, 2)))", "X", "X: n x m",
     lambda r: dict(X=r.standard_normal((5, 4)))),
    ("p = sigmoid(X*w); -sum(y.*log(p) + (1 - y).*log(1 - p))", "w", "X: n x d, w: d, y: n",
     lambda r: dict(X=r.standard_normal((9, 3)), w=r.standard_normal(3), y=(r.random(9) < 0.5).astype(float))),
    ("sum(xlogy(y, sqrt(abs(X*w) + 1))) + sum(max(X*w, 0.5*y))", "w", "X: n x d, w: d, y: n",
     lambda r: dict(X=r.standard_normal((6, 3)), w=r.standard_normal(3), y=r.random(6))),
    ("sum(atan2(x, 2 + y.^2)) + sum(relu(x).^3) + normF(diag(diag(x*y')))", "x", "x: n, y: n",
     lambda r: dict(x=r.standard_normal(5), y=r.standard_normal(5))),
    ("tr(A*X^3) + normF(X^-2)^2", "X", "X: n x n, A: n x n",
     lambda r: dict(X=r.standard_normal((4, 4)) + 3 * np.eye(4), A=r.standard_normal((4, 4)))),
    ("norm2(pinv(X)*y)^2", "X", "X: m x n, y: m",
     lambda r: dict(X=r.standard_normal((6, 3)), y=r.standard_normal(6))),
    ("tr(A*pinv(X))", "X", "X: m x n, A: m x n",
     lambda r: dict(X=r.standard_normal((5, 2)), A=r.standard_normal((5, 2)))),
    ("sum(log(kron(A, B)))", "A", "A: n x p, B: m x q",
     lambda r: dict(A=r.random((2, 3)) + 0.5, B=r.random((3, 2)) + 0.5)),
    ("tr(kron(A, B)*C)", "B", "A: 2 x 3, B: 3 x 2, C: 6 x 6",
     lambda r: dict(A=r.standard_normal((2, 3)), B=r.standard_normal((3, 2)), C=r.standard_normal((6, 6)))),
    ("sum(exp(x'*kron(a, b)))", "a", "a: 2, b: 3, x: 6",
     lambda r: dict(a=r.standard_normal(2), b=r.standard_normal(3), x=r.standard_normal(6))),
]


def _rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = np.max(np.abs(b)) if b.size else 0.0
    return np.max(np.abs(a - b)) / scale if scale > 0 else np.max(np.abs(a - b))


@pytest.mark.parametrize("loss,wrt,var,make", CASES, ids=[f"{c[0]}|{c[1]}" for c in CASES])
def test_emitted_numpy_matches_sepfit(loss, wrt, var, make):
    g = sepfit.grad(loss, wrt=wrt, var=var)
    src = g.emit("numpy")
    assert src.startswith("import numpy as np\n")
    assert f"grad_{wrt} = " in src and "def loss_and_grad(" in src
    ns = {}
    exec(compile(src, "<emitted>", "exec"), ns)
    rng = np.random.default_rng(zlib.crc32((loss + wrt).encode()))
    values = make(rng)
    v_ref, g_ref = g(**values)
    v, gr = ns["loss_and_grad"](**values)
    assert isinstance(v, float)
    if np.ndim(values[wrt]) == 0:
        # a scalar variable: a float (sepfit's own call gives a 1-element array)
        assert isinstance(gr, float) and np.size(g_ref) == 1
        gr = np.reshape(gr, np.shape(g_ref))
    assert np.shape(gr) == np.shape(g_ref), src
    assert abs(v - v_ref) <= 1e-10 * abs(v_ref), (v, v_ref, src)
    assert _rel(gr, g_ref) <= 1e-10, (gr, g_ref, src)


def test_emit_names_shared_subexpressions():
    g = sepfit.grad("norm2(X*w - y)^2", wrt="w", var="X: n x d, w: d, y: n")
    src = g.emit()
    # X*w - y is computed once, as a local used by the value and the gradient
    assert "    t_0 = X @ w - y\n" in src
    assert "grad_w = 2 * (X.T @ t_0)" in src


def test_emit_errors():
    g = sepfit.grad("sum(erf(X*w))", wrt="w", var="X: n x d, w: d")
    with pytest.raises(sepfit.FormulaError, match="erf"):
        g.emit("numpy")
    with pytest.raises(sepfit.ParameterError, match="unknown language"):
        sepfit.grad("norm2(x)^2", wrt="x", var="x: n").emit("fortran")
