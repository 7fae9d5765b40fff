//! Matrix products large enough to run in pieces on several threads (row blocks, column
//! blocks, partial sums over the inner dimension) agree with a naive triple loop, and small
//! ones too; `0·∞` is NaN in a product, as in BLAS.

use sepfit_expr::matrix::{LossFormula, Mat, Values};

fn random(rows: usize, cols: usize, seed: u64) -> Mat {
    let mut s = seed;
    let data = (0..rows * cols)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect();
    Mat { rows, cols, data }
}

/// `A·B` by the definition, with `A` given transposed or not.
fn naive(a: &Mat, at: bool, b: &Mat, bt: bool) -> Mat {
    let get = |m: &Mat, t: bool, i: usize, j: usize| if t { m.get(j, i) } else { m.get(i, j) };
    let (r, k) = if at { (a.cols, a.rows) } else { (a.rows, a.cols) };
    let c = if bt { b.rows } else { b.cols };
    let mut out = Mat::zeros(r, c);
    for j in 0..c {
        for i in 0..r {
            out.data[j * r + i] = (0..k).map(|l| get(a, at, i, l) * get(b, bt, l, j)).sum();
        }
    }
    out
}

fn check(expr: &str, decls: &str, a: (&str, Mat, bool), b: (&str, Mat, bool)) {
    let f = LossFormula::new(expr, decls, None).unwrap();
    let mut v = Values::new();
    v.insert(a.0.into(), a.1.clone());
    v.insert(b.0.into(), b.1.clone());
    let got = &f.eval(&[f.root()], &v).unwrap()[0];
    let want = naive(&a.1, a.2, &b.1, b.2);
    assert_eq!((got.rows, got.cols), (want.rows, want.cols), "{expr}");
    let scale = want.data.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for (i, (g, w)) in got.data.iter().zip(&want.data).enumerate() {
        assert!((g - w).abs() <= 1e-12 * scale.max(1.0), "{expr}: entry {i}: {g} vs {w}");
    }
    // The same numbers on a second evaluation (the pieces do not depend on timing).
    let again = &f.eval(&[f.root()], &v).unwrap()[0];
    assert_eq!(got.data, again.data, "{expr}: not reproducible");
}

#[test]
fn many_rows_are_cut_into_row_blocks() {
    check("X*W", "X: n x d, W: d x k", ("X", random(40_000, 20, 1), false), ("W", random(20, 8, 2), false));
}

#[test]
fn a_long_inner_dimension_is_summed_in_pieces() {
    check("X'*Y", "X: n x d, Y: n x k", ("X", random(40_000, 10, 3), true), ("Y", random(40_000, 12, 4), false));
}

#[test]
fn many_columns_are_cut_into_column_blocks() {
    check("W'*X'", "X: n x d, W: d x k", ("W", random(20, 8, 5), true), ("X", random(40_000, 20, 6), true));
}

#[test]
fn small_products_are_exact_enough() {
    check("A*B", "A: n x m, B: m x k", ("A", random(3, 4, 7), false), ("B", random(4, 2, 8), false));
}

#[test]
fn zero_times_infinity_in_a_product_is_nan() {
    // An infinite value is refused as input, so make one: exp(800) overflows.
    let f = LossFormula::new("exp(800*A)*B", "A: 2 x 2, B: 2 x 1", None).unwrap();
    let mut v = Values::new();
    v.insert("A".into(), Mat { rows: 2, cols: 2, data: vec![1.0, 0.0, 0.0, 0.0] });
    v.insert("B".into(), Mat { rows: 2, cols: 1, data: vec![0.0, 1.0] });
    let got = &f.eval(&[f.root()], &v).unwrap()[0];
    assert!(got.data[0].is_nan(), "∞·0 + 1·1 should be NaN, got {}", got.data[0]);
    assert_eq!(got.data[1], 1.0);
}

#[test]
fn a_fill_read_by_elementwise_loops_broadcasts() {
    // `ones(n, m)./z.*X` (the gradient of sum(log(sum((X*P).*X, 2)))) reads the fill as a
    // scalar inside the fused loop; the plain evaluator stores it: both agree.
    let mut f = LossFormula::new("z = sum((X*P).*X, 2); J = sum(log(z))", "X: n x m, P: m x m", None).unwrap();
    let g = f.gradient("P").unwrap();
    assert!(f.ascii(g).contains("ones("), "the gradient is printed as {}", f.ascii(g));
    let mut v = Values::new();
    let x = random(500, 3, 9);
    v.insert("X".into(), x);
    v.insert("P".into(), Mat { rows: 3, cols: 3, data: vec![2.0, 0.1, 0.0, 0.1, 1.5, 0.2, 0.0, 0.2, 1.0] });
    let fused = &f.eval(&[g], &v).unwrap()[0];
    let plain = &f.graph.eval_unfused(&[g], &v).unwrap()[0];
    for (a, b) in fused.data.iter().zip(&plain.data) {
        assert!((a - b).abs() <= 1e-12 * a.abs().max(1.0), "{a} vs {b}");
    }
}
