//! `kron(A, B)`, the matrix power `X^k` and `pinv(X)`: gradients against Richardson central
//! differences, values against direct computations, print forms (the ASCII form parses back
//! to the same numbers), and errors.

use sepfit_expr::matrix::{LossFormula, Mat, MId, Values};

fn rand_mat(rows: usize, cols: usize, seed: u64, diag: f64) -> Mat {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let mut m = Mat { rows, cols, data: (0..rows * cols).map(|_| next()).collect() };
    for k in 0..rows.min(cols) {
        m.data[k * rows + k] += diag;
    }
    m
}

/// Builds the loss, differentiates it in each of `wrt`, checks the gradients against central
/// differences and the ASCII forms parse back to the same values; returns the formula and the
/// gradients.
fn checked(src: &str, decls: &str, wrt: &[&str], v: &Values) -> (LossFormula, Vec<MId>) {
    let mut f = LossFormula::new(src, decls, None).unwrap_or_else(|e| panic!("{src}: {e}"));
    let gs = f.gradients(wrt).unwrap();
    let err = f.check_gradient(wrt, &gs, v, 8, 3).unwrap();
    assert!(err <= 1e-7, "{src}: gradient off by {err:e} ({})", gs.iter().map(|g| f.unicode(*g)).collect::<Vec<_>>().join("; "));
    for g in &gs {
        let prog = f.ascii_program(*g);
        let back = LossFormula::new(&prog, decls, None).unwrap_or_else(|e| panic!("{src}: `{prog}` does not parse back: {e}"));
        let (a, b) = (f.eval(&[*g], v).unwrap().remove(0), back.eval(&[back.root()], v).unwrap().remove(0));
        assert_eq!((a.rows, a.cols), (b.rows, b.cols));
        for (x, y) in a.data.iter().zip(&b.data) {
            assert!((x - y).abs() <= 1e-10 * x.abs().max(1.0), "{src}: `{prog}` gives {y}, not {x}");
        }
    }
    (f, gs)
}

fn vals(pairs: &[(&str, Mat)]) -> Values {
    pairs.iter().map(|(k, m)| (k.to_string(), m.clone())).collect()
}

fn matmul(a: &Mat, b: &Mat) -> Mat {
    let mut c = Mat::zeros(a.rows, b.cols);
    for i in 0..a.rows {
        for j in 0..b.cols {
            c.data[j * a.rows + i] = (0..a.cols).map(|k| a.get(i, k) * b.get(k, j)).sum();
        }
    }
    c
}

#[test]
fn matrix_power_values_gradients_and_prints() {
    let x = rand_mat(4, 4, 1, 1.0);
    let a = rand_mat(4, 4, 2, 0.0);
    let v = vals(&[("X", x.clone()), ("A", a.clone())]);
    let (f, gs) = checked("tr(X^3)", "X: n x n", &["X"], &v);
    assert_eq!(f.unicode(gs[0]), "3·(X²)ᵀ");
    assert_eq!(f.unicode(f.root()), "tr(X³)");
    assert_eq!(f.ascii(f.root()), "tr(X^3)");
    assert_eq!(f.latex(f.root()), "\\operatorname{tr}\\left({X}^{3}\\right)");
    // the value is the trace of X·X·X
    let x3 = matmul(&matmul(&x, &x), &x);
    let t: f64 = (0..4).map(|k| x3.get(k, k)).sum();
    assert!((f.eval(&[f.root()], &v).unwrap()[0].data[0] - t).abs() < 1e-12 * t.abs().max(1.0));
    checked("tr(A*X^3)", "X: n x n, A: n x n", &["X", "A"], &v);
    checked("normF(X^4 - A)^2", "X: n x n, A: n x n", &["X"], &v);
    checked("normF((X*A)^2)^2", "X: n x n, A: n x n", &["X", "A"], &v);
    // negative powers go through the inverse; X^1 is X, X^0 is I
    let (f, _) = checked("tr(A*X^-2)", "X: n x n, A: n x n", &["X"], &v);
    assert_eq!(f.ascii(f.root()), "tr(A*inv(X)^2)");
    let f = LossFormula::new("tr(X^1) + tr(X^0)", "X: n x n", None).unwrap();
    assert_eq!(f.ascii(f.root()), "tr(X) + tr(eye(n))");
}

#[test]
fn matrix_power_errors() {
    for (src, decls, want) in [
        ("sum(X^2)", "X: n x m", "square"),
        ("tr(X^1.5)", "X: n x n", "whole-number"),
        ("tr(X^s)", "X: n x n, s", "whole-number"),
    ] {
        let e = LossFormula::new(src, decls, None).unwrap_err().to_string();
        assert!(e.contains(want), "{src}: {e}");
    }
}

#[test]
fn pinv_values_gradients_and_prints() {
    let x = rand_mat(5, 3, 4, 1.0);
    let y = rand_mat(5, 1, 5, 0.0);
    let a = rand_mat(5, 3, 6, 0.0);
    let v = vals(&[("X", x.clone()), ("y", y.clone()), ("A", a.clone())]);
    let (f, _) = checked("norm2(pinv(X)*y)^2", "X: m x n, y: m", &["X", "y"], &v);
    assert_eq!(f.unicode(f.root()), "‖X⁺·y‖₂²");
    assert_eq!(f.latex(f.root()), "{\\left\\|{X}^{+}\\,y\\right\\|_2}^{2}");
    checked("tr(pinv(X)*A)", "X: m x n, A: m x n", &["X", "A"], &v);
    checked("normF(X*pinv(X) - A*pinv(A))^2", "X: m x n, A: m x n", &["X"], &v);
    // pinv(X) = inv(X'X) X' for full column rank, and pinv(X)·X = I
    let f = LossFormula::new("p = pinv(X); normF(p - inv(X'*X)*X')^2 + normF(p*X - eye(n))^2", "X: m x n", None).unwrap();
    let r = f.eval(&[f.root()], &v).unwrap()[0].data[0];
    assert!(r < 1e-24, "{r:e}");
    // a square invertible matrix: pinv is the inverse
    let s = rand_mat(4, 4, 7, 2.0);
    let f = LossFormula::new("normF(pinv(S) - inv(S))", "S: n x n", None).unwrap();
    assert!(f.eval(&[f.root()], &vals(&[("S", s)])).unwrap()[0].data[0] < 1e-12);
    // wide or rank-deficient: an error, not a panic
    let f = LossFormula::new("sum(pinv(X))", "X: m x n", None).unwrap();
    let e = f.eval(&[f.root()], &vals(&[("X", rand_mat(2, 3, 8, 0.0))])).unwrap_err().to_string();
    assert!(e.contains("full column rank"), "{e}");
    let rank1 = Mat::from_rows(&[vec![1.0, 2.0], vec![2.0, 4.0], vec![3.0, 6.0]]).unwrap();
    let e = f.eval(&[f.root()], &vals(&[("X", rank1)])).unwrap_err().to_string();
    assert!(e.contains("full column rank"), "{e}");
}

#[test]
fn kron_values_gradients_and_prints() {
    let a = rand_mat(2, 3, 9, 0.0);
    let b = rand_mat(3, 2, 10, 0.0);
    let c = rand_mat(6, 6, 11, 0.0);
    let x = rand_mat(6, 1, 12, 0.0);
    let v = vals(&[("A", a.clone()), ("B", b.clone()), ("C", c.clone()), ("x", x.clone())]);
    let f = LossFormula::new("kron(A, B)", "A: 2 x 3, B: 3 x 2", None).unwrap();
    let k = f.eval(&[f.root()], &v).unwrap().remove(0);
    assert_eq!((k.rows, k.cols), (6, 6));
    for i in 0..2 {
        for j in 0..3 {
            for p in 0..3 {
                for q in 0..2 {
                    assert_eq!(k.get(i * 3 + p, j * 2 + q), a.get(i, j) * b.get(p, q));
                }
            }
        }
    }
    assert_eq!(f.unicode(f.root()), "A ⊗ B");
    assert_eq!(f.latex(f.root()), "A \\otimes B");
    assert_eq!(f.ascii(f.root()), "kron(A, B)");
    let (f, gs) = checked("tr(kron(A, B)*C)", "A: 2 x 3, B: 3 x 2, C: 6 x 6", &["A", "B", "C"], &v);
    assert_eq!(f.ascii(gs[0]), "kronsum(C', B, 1)");
    assert_eq!(f.ascii(gs[1]), "kronsum(A, C', 2)");
    checked("x'*kron(A, B)'*kron(A, B)*x", "A: 2 x 3, B: 3 x 2, x: 6", &["A", "B", "x"], &v);
    checked("sum(exp(kron(A, B)/4).*C)", "A: 2 x 3, B: 3 x 2, C: 6 x 6", &["A", "B"], &v);
    // symbolic dimensions: the product n*m is a dimension of its own
    let s = rand_mat(3, 3, 13, 1.0);
    let t = rand_mat(2, 2, 14, 1.0);
    let v = vals(&[("S", s.clone()), ("T", t.clone())]);
    let (f, gs) = checked("tr(kron(S, T))", "S: n x n, T: m x m", &["S", "T"], &v);
    assert_eq!(f.unicode(gs[0]), "tr(T)·I");
    assert!(f.graph.dims.iter().any(|d| d == "n*m"), "{:?}", f.graph.dims);
    let (f, gs) = checked("normF(kron(S, T))^2", "S: n x n, T: m x m", &["S"], &v);
    assert_eq!(f.unicode(gs[0]), "2·sum(T.^2)·S");
    checked("logdet(kron(S, T))", "S: n x n, T: m x m", &["S", "T"], &v);
}

#[test]
fn kron_and_pinv_errors() {
    let e = LossFormula::new("sum(kron(A))", "A: n x n", None).unwrap_err().to_string();
    assert!(e.contains("takes 2 arguments"), "{e}");
    let e = LossFormula::new("sum(kronsum(A, B, 1))", "A: n x n, B: m x p", None).unwrap_err().to_string();
    assert!(e.contains("not a Kronecker product"), "{e}");
    let e = LossFormula::new("sum(kronsum(A, B, 3))", "A: n x n, B: m x p", None).unwrap_err().to_string();
    assert!(e.contains("third argument of `kronsum` is 1"), "{e}");
}
