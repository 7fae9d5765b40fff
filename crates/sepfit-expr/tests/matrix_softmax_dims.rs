//! `logsumexp(A, d)` and `softmax(A, d)`: values against the definition (no overflow where
//! `exp` alone overflows), shapes, the reductions over a single entry or a vector, and the
//! errors for another dimension.

use sepfit_expr::matrix::{LossFormula, Mat, Values};

fn a_matrix() -> Mat {
    // 3×2, column-major; the second column is huge (exp overflows) and equal entries
    Mat { rows: 3, cols: 2, data: vec![0.5, -1.0, 2.0, 1000.0, 1000.0, 999.0] }
}

fn eval(src: &str, decls: &str, a: Mat) -> Mat {
    let f = LossFormula::new(src, decls, None).unwrap();
    let mut v = Values::new();
    v.insert("A".into(), a);
    f.eval(&[f.root()], &v).unwrap().remove(0)
}

/// log Σ exp, the plain way, in a shifted form that is exact enough for these values.
fn lse(x: &[f64]) -> f64 {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

#[test]
fn along_columns_and_rows() {
    let a = a_matrix();
    let col = eval("logsumexp(A, 1)", "A: n x m", a.clone());
    assert_eq!((col.rows, col.cols), (1, 2));
    assert!((col.data[0] - lse(&[0.5, -1.0, 2.0])).abs() < 1e-14);
    assert!((col.data[1] - lse(&[1000.0, 1000.0, 999.0])).abs() < 1e-12, "{}", col.data[1]);
    let row = eval("logsumexp(A, 2)", "A: n x m", a.clone());
    assert_eq!((row.rows, row.cols), (3, 1));
    for i in 0..3 {
        let want = lse(&[a.data[i], a.data[3 + i]]);
        assert!((row.data[i] - want).abs() < 1e-12, "row {i}: {} vs {want}", row.data[i]);
    }
    let s = eval("softmax(A, 2)", "A: n x m", a.clone());
    for i in 0..3 {
        let total = s.data[i] + s.data[3 + i];
        assert!((total - 1.0).abs() < 1e-15 && s.data[i].is_finite());
        assert!((s.data[3 + i] - (a.data[3 + i] - row.data[i]).exp()).abs() < 1e-12);
    }
    let s = eval("softmax(A, 1)", "A: n x m", a);
    for j in 0..2 {
        assert!((s.data[3 * j..3 * j + 3].iter().sum::<f64>() - 1.0).abs() < 1e-15);
    }
}

#[test]
fn over_vectors_and_single_entries() {
    let x = Mat { rows: 3, cols: 1, data: vec![1.0, 2.0, 3.0] };
    // down a column: the whole vector's; along each row of a column: the entries themselves
    assert!((eval("logsumexp(A, 1)", "A: n", x.clone()).data[0] - lse(&x.data)).abs() < 1e-15);
    assert_eq!(eval("logsumexp(A, 2)", "A: n", x.clone()).data, x.data);
    assert_eq!(eval("softmax(A, 2)", "A: n", x.clone()).data, vec![1.0; 3]);
    let f = LossFormula::new("softmax(A, 2)", "A: n", None).unwrap();
    assert_eq!(f.ascii(f.root()), "ones(n)");
}

#[test]
fn another_dimension_is_an_error() {
    for src in ["logsumexp(A, 3)", "softmax(A, 0)", "softmax(A, 1.5)"] {
        let e = match LossFormula::new(src, "A: n x m", None) {
            Err(sepfit_expr::matrix::LossError::Formula(d)) => d.render(src),
            Err(other) => panic!("{src}: {other:?}"),
            Ok(_) => panic!("{src} was accepted"),
        };
        assert!(e.contains("is the dimension to take it along: 1 or 2"), "{src}: {e}");
    }
}

/// The gradient of a row-wise cross-entropy is the textbook one and agrees with differences.
#[test]
fn gradient_of_a_row_softmax_cross_entropy() {
    let src = "sum(logsumexp(X*W, 2)) - sum(sum(Y.*(X*W)))";
    let mut f = LossFormula::new(src, "X: n x d, W: d x k, Y: n x k", None).unwrap();
    let g = f.gradient("W").unwrap();
    assert_eq!(f.ascii(g), "X'*(softmax(X*W, 2) - Y)");
    let mut v = Values::new();
    v.insert("X".into(), Mat { rows: 4, cols: 2, data: vec![0.3, -1.2, 2.0, 0.7, 1.1, 0.4, -0.5, 1.5] });
    v.insert("W".into(), Mat { rows: 2, cols: 3, data: vec![0.2, -0.4, 1.0, 0.3, -0.7, 0.9] });
    v.insert("Y".into(), Mat { rows: 4, cols: 3, data: vec![1.0, 0.0, 0.0, 0.5, 0.0, 1.0, 0.0, 0.25, 0.0, 0.0, 1.0, 0.25] });
    let gv = f.eval(&[g], &v).unwrap().remove(0);
    let at = |w: &Mat| {
        let mut u = v.clone();
        u.insert("W".into(), w.clone());
        f.eval(&[f.root()], &u).unwrap()[0].data[0]
    };
    for k in 0..6 {
        let h = 1e-5;
        let (mut p, mut m) = (v["W"].clone(), v["W"].clone());
        p.data[k] += h;
        m.data[k] -= h;
        let fd = (at(&p) - at(&m)) / (2.0 * h);
        assert!((fd - gv.data[k]).abs() < 1e-8, "entry {k}: {} vs {fd}", gv.data[k]);
    }
}
