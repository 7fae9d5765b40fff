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
    // `2*ones(n, m)./z + X` reads the fill as a scalar inside the fused loop, broadcast
    // against the column z; the plain evaluator stores it: both agree, for the loss and its
    // gradient.
    let mut f = LossFormula::new("z = sum((X*P).*X, 2); J = sum(sum(2*ones(n, m)./z + X))", "X: n x m, P: m x m", None).unwrap();
    let inner = match f.graph.node(f.root()) {
        sepfit_expr::matrix::MNode::Sum(a) => a,
        other => panic!("the loss is {other:?}"),
    };
    assert!(f.ascii(inner).contains("ones("), "the summed array is printed as {}", f.ascii(inner));
    let g = f.gradient("P").unwrap();
    let mut v = Values::new();
    let x = random(500, 3, 9);
    v.insert("X".into(), x);
    v.insert("P".into(), Mat { rows: 3, cols: 3, data: vec![2.0, 0.1, 0.0, 0.1, 1.5, 0.2, 0.0, 0.2, 1.0] });
    let fused = f.eval(&[inner, g], &v).unwrap();
    let plain = f.graph.eval_unfused(&[inner, g], &v).unwrap();
    for (p, q) in fused.iter().zip(&plain) {
        assert_eq!((p.rows, p.cols), (q.rows, q.cols));
        for (a, b) in p.data.iter().zip(&q.data) {
            assert!((a - b).abs() <= 1e-12 * a.abs().max(1.0), "{a} vs {b}");
        }
    }
}

/// A long elementwise loop runs in pieces on all cores: stored values (one column and several,
/// with a broadcast row), row sums, column sums and the total agree with the plain evaluator
/// (stored values and row sums bit for bit: one piece writes each), and are the same on a
/// second evaluation. 100,003 rows: seven pieces, the last one short and not a whole block.
#[test]
fn long_elementwise_loops_run_in_pieces() {
    let n = 100_003;
    let mut v = Values::new();
    v.insert("X".into(), random(n, 3, 10));
    v.insert("x".into(), random(n, 1, 11));
    v.insert("b".into(), random(3, 1, 12));
    let cases = [
        ("exp(x).*x + 1", true),
        ("X.^2 - exp(X)", true),
        ("exp(-(x - b').^2/2).*X", true),
        ("sum(exp(-(x - b').^2/2).*X, 2)", true),
        ("sum(exp(-(x - b').^2/2).*X, 1)", false),
        ("sum(exp(x).*x)", false),
        ("sum(X.*X, 1)", false),
    ];
    for (expr, exact) in cases {
        let f = LossFormula::new(expr, "X: n x 3, x: n, b: 3", None).unwrap();
        let fused = f.eval(&[f.root()], &v).unwrap().remove(0);
        let plain = f.graph.eval_unfused(&[f.root()], &v).unwrap().remove(0);
        assert_eq!((fused.rows, fused.cols), (plain.rows, plain.cols), "{expr}");
        if exact {
            assert_eq!(fused.data, plain.data, "{expr}");
        } else {
            for (a, b) in fused.data.iter().zip(&plain.data) {
                assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{expr}: {a} vs {b}");
            }
        }
        let again = f.eval(&[f.root()], &v).unwrap().remove(0);
        assert_eq!(fused.data, again.data, "{expr}: not reproducible");
    }
}

/// A product with a small right factor consumed by an elementwise loop or a sum is computed
/// inside that loop, block by block, not stored: `sum((X*P).*X, 2)` (square `P`), a
/// rectangular `W`, a vector `p`, a sum of the product itself, and the quadratic-form loss's
/// gradient; long (in pieces on all cores) and short. All agree with the plain evaluator (which
/// stores the product) and are reproducible.
#[test]
fn small_right_factors_are_multiplied_inside_fused_loops() {
    for n in [100_003, 37] {
        let mut v = Values::new();
        v.insert("X".into(), random(n, 4, 13));
        v.insert("Y".into(), random(n, 3, 14));
        v.insert("P".into(), random(4, 4, 15));
        v.insert("W".into(), random(4, 3, 16));
        v.insert("p".into(), random(4, 1, 17));
        v.insert("y".into(), Mat { rows: n, cols: 1, data: (0..n).map(|i| 1.0 + (i % 7) as f64).collect() });
        let decls = "X: n x 4, Y: n x 3, P: 4 x 4, W: 4 x 3, p: 4, y: n";
        for expr in [
            "sum((X*P).*X, 2)",
            "(X*W).*Y + 1",
            "sum(exp(X*W) - Y, 1)",
            "exp(X*p).*y",
            "sum(X*W)",
            "sum(sum((X*P).*X, 2)./y)",
        ] {
            let f = LossFormula::new(expr, decls, None).unwrap();
            let fused = f.eval(&[f.root()], &v).unwrap().remove(0);
            let plain = f.graph.eval_unfused(&[f.root()], &v).unwrap().remove(0);
            assert_eq!((fused.rows, fused.cols), (plain.rows, plain.cols), "{expr}");
            let scale = plain.data.iter().fold(1.0f64, |m, x| m.max(x.abs()));
            for (i, (a, b)) in fused.data.iter().zip(&plain.data).enumerate() {
                assert!((a - b).abs() <= 1e-12 * scale, "{expr} (n = {n}): entry {i}: {a} vs {b}");
            }
            assert_eq!(fused.data, f.eval(&[f.root()], &v).unwrap().remove(0).data, "{expr}: not reproducible");
        }
        let mut f = LossFormula::new("z = sum((X*P).*X, 2); J = sum(z./y - log(abs(z)))", decls, None).unwrap();
        let g = f.gradient("P").unwrap();
        let fused = f.eval(&[f.root(), g], &v).unwrap();
        let plain = f.graph.eval_unfused(&[f.root(), g], &v).unwrap();
        for (a, b) in fused.iter().zip(&plain) {
            let scale = b.data.iter().fold(1.0f64, |m, x| m.max(x.abs()));
            for (x, y) in a.data.iter().zip(&b.data) {
                assert!((x - y).abs() <= 1e-10 * scale, "quadratic form (n = {n}): {x} vs {y}");
            }
        }
    }
}
