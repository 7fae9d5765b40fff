//! Gallery: every derivative of seeds 001, 002 (§12.1–12.9) and 003, with the printed gradient
//! asserted and the numeric gradient checked against central differences (relative error ≤ 1e-7
//! at random points). Where the printed form is not literally the seed's, the doc comment of the
//! test says which equivalent compact form is printed.

use sepfit_expr::matrix::{LossFormula, Mat, Values};

/// Deterministic pseudo-random numbers in [lo, hi).
struct Rng(u64);
impl Rng {
    fn next(&mut self, lo: f64, hi: f64) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        lo + (hi - lo) * ((self.0 >> 11) as f64 / (1u64 << 53) as f64)
    }
    fn mat(&mut self, r: usize, c: usize, lo: f64, hi: f64) -> Mat {
        Mat { rows: r, cols: c, data: (0..r * c).map(|_| self.next(lo, hi)).collect() }
    }
}

/// Derives the gradient of `src` in `wrt`, asserts its ASCII form, and checks it numerically at
/// three random points built by `values`.
fn check(src: &str, decls: &str, wrt: &str, expect: &str, values: impl Fn(&mut Rng) -> Values) -> LossFormula {
    let mut f = LossFormula::new(src, decls, None).unwrap_or_else(|e| panic!("{src}: {e}"));
    let g = f.gradient(wrt).unwrap();
    let printed = f.ascii(g);
    assert_eq!(printed, expect, "gradient of {src} in {wrt}: unicode {}", f.unicode(g));
    for seed in 1..4u64 {
        let mut rng = Rng(seed * 7919 + 17);
        let v = values(&mut rng);
        let err = f.check_gradient(&[wrt], &[g], &v, 6, seed).unwrap();
        assert!(err <= 1e-7, "{src} in {wrt}: relative error {err:e}");
    }
    f
}

fn vals(pairs: Vec<(&str, Mat)>) -> Values {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}


fn pos(r: &mut Rng, n: usize) -> Mat {
    r.mat(n, 1, 0.5, 2.0)
}

/// Seed 002 §12.1: ∂‖x − a‖₂/∂x = (x − a)/‖x − a‖₂, literally.
#[test]
fn s12_1_norm2() {
    let f = check("norm2(x - a)", "x: n, a: n", "x", "(x - a)/norm2(x - a)", |r| vals(vec![("x", r.mat(5, 1, -1.0, 1.0)), ("a", r.mat(5, 1, -1.0, 1.0))]));
    let mut f = f;
    let g = f.gradient("x").unwrap();
    assert_eq!(f.unicode(g), "(x − a)/‖x − a‖₂");
    assert_eq!(f.latex(g), "\\frac{x - a}{\\left\\|x - a\\right\\|_2}");
}

/// Seed 002 §12.3: ∂‖x‖₂²/∂x = 2x.
#[test]
fn s12_3_squared_norm2() {
    check("norm2(x)^2", "x: n", "x", "2*x", |r| vals(vec![("x", r.mat(4, 1, -1.0, 1.0))]));
}

/// Seed 002 §12.4: ∂‖X‖_F²/∂X = 2X.
#[test]
fn s12_4_squared_frobenius() {
    check("normF(X)^2", "X: m x n", "X", "2*X", |r| vals(vec![("X", r.mat(3, 4, -1.0, 1.0))]));
}

/// Seed 002 §12.5: ∂‖X‖_F/∂X = X/‖X‖_F.
#[test]
fn s12_5_frobenius() {
    let mut f = check("normF(X)", "X: m x n", "X", "X/normF(X)", |r| vals(vec![("X", r.mat(3, 2, -1.0, 1.0))]));
    let g = f.gradient("X").unwrap();
    assert_eq!(f.unicode(g), "X/‖X‖_F");
}

/// Seed 002 §12.6: ∂‖X − A‖_F²/∂X = 2(X − A).
#[test]
fn s12_6_frobenius_difference() {
    check("normF(X - A)^2", "X: m x n, A: m x n", "X", "2*(X - A)", |r| {
        vals(vec![("X", r.mat(3, 2, -1.0, 1.0)), ("A", r.mat(3, 2, -1.0, 1.0))])
    });
}

/// Seed 002 §12.7: ∂‖AX − B‖_F²/∂X = 2Aᵀ(AX − B).
#[test]
fn s12_7_left_multiplication() {
    let mut f = check("normF(A*X - B)^2", "A: m x n, X: n x p, B: m x p", "X", "2*A'*(A*X - B)", |r| {
        vals(vec![("A", r.mat(4, 3, -1.0, 1.0)), ("X", r.mat(3, 2, -1.0, 1.0)), ("B", r.mat(4, 2, -1.0, 1.0))])
    });
    let g = f.gradient("X").unwrap();
    assert_eq!(f.unicode(g), "2·Aᵀ·(A·X − B)");
}

/// Seed 002 §12.8: ∂‖XA − B‖_F²/∂X = 2(XA − B)Aᵀ.
#[test]
fn s12_8_right_multiplication() {
    check("normF(X*A - B)^2", "X: m x n, A: n x p, B: m x p", "X", "2*(X*A - B)*A'", |r| {
        vals(vec![("X", r.mat(4, 3, -1.0, 1.0)), ("A", r.mat(3, 2, -1.0, 1.0)), ("B", r.mat(4, 2, -1.0, 1.0))])
    });
}

/// Seed 002 §12.9 and seed 003: ∂‖Xw − y‖₂²/∂w = 2Xᵀ(Xw − y), literally.
#[test]
fn s12_9_and_seed003_regression() {
    let mut f = check("norm2(X*w - y)^2", "X: n x d, w: d, y: n", "w", "2*X'*(X*w - y)", |r| {
        vals(vec![("X", r.mat(6, 3, -1.0, 1.0)), ("w", r.mat(3, 1, -1.0, 1.0)), ("y", r.mat(6, 1, -1.0, 1.0))])
    });
    let g = f.gradient("w").unwrap();
    assert_eq!(f.unicode(g), "2·Xᵀ·(X·w − y)");
    assert_eq!(f.latex(g), "2\\,{X}^\\top\\,\\left(X\\,w - y\\right)");
    // seed 003 with θ spelled out, and the (Xθ − y)ᵀ(Xθ − y) form
    check("(X*t - y)'*(X*t - y)", "X: m x n, t: n, y: m", "t", "2*X'*(X*t - y)", |r| {
        vals(vec![("X", r.mat(5, 2, -1.0, 1.0)), ("t", r.mat(2, 1, -1.0, 1.0)), ("y", r.mat(5, 1, -1.0, 1.0))])
    });
}

/// Seed 001 problem 1, with the intermediate z: the printed gradient uses the definitions
/// (`J = z1·exp(z1·z2)`), ∂J/∂w1 = J·z1·a2 + (exp(z1z2) + J·z2)·w2·a1, which is the seed's
/// (e^{z1z2} + z1z2e^{z1z2})·a1w2 + z1²e^{z1z2}·a2.
#[test]
fn p1_intermediate_z() {
    let src = "z1 = a1*w1*w2; z2 = a2*w1 + a3*w2^2; J = z1*exp(z1*z2)";
    let d = "a1, a2, a3, w1, w2";
    let v = |r: &mut Rng| {
        vals(["a1", "a2", "a3", "w1", "w2"].iter().map(|n| (*n, Mat::scalar(r.next(-0.8, 0.8)))).collect())
    };
    let mut f = check(src, d, "w1", "J*z1*a2 + (exp(z1*z2) + J*z2)*w2*a1", v);
    let g = f.gradient("w2").unwrap();
    assert_eq!(f.ascii(g), "2*J*z1*a3*w2 + (exp(z1*z2) + J*z2)*a1*w1");
    let defs: Vec<String> = f.definitions_used(g).into_iter().map(|(n, _)| n).collect();
    assert_eq!(defs, ["z1", "z2", "J"]);
    check(src, d, "w2", "2*J*z1*a3*w2 + (exp(z1*z2) + J*z2)*a1*w1", v);
}

/// Seed 001 problem 2 (log-domain MSE): ∇_w J = −2Xᵀ((log y − log ŷ)./ŷ) and
/// ∂J/∂b = −2·sum((log y − log ŷ)./ŷ), the seed's Xᵀq and Σq with q = 2(log ŷ − log y)/ŷ.
#[test]
fn p2_log_mse() {
    let src = "sum((log(y) - log(X*w + b)).^2)";
    let d = "X: n x p, w: p, y: n, b: scalar";
    let v = |r: &mut Rng| {
        vals(vec![("X", r.mat(6, 3, 0.1, 1.0)), ("w", r.mat(3, 1, 0.1, 1.0)), ("y", pos(r, 6)), ("b", Mat::scalar(r.next(0.5, 1.0)))])
    };
    check(src, d, "w", "-2*X'*((log(y) - log(X*w + b))./(X*w + b))", v);
    check(src, d, "b", "-2*sum((log(y) - log(X*w + b))./(X*w + b))", v);
}

/// Seed 001 problem 3 (inverse model, z = Xw + w0): ∇_w J = 2Xᵀ((y − 1./z)./z./z), the seed's
/// Xᵀq with q = −2(1/z − y)/z²; ∂J/∂w0 = 2·sum((y − 1./z)./z./z) = Σq.
#[test]
fn p3_inverse() {
    let src = "z = X*w + w0; J = sum((y - 1./z).^2)";
    let d = "X: n x d, w: d, w0: scalar, y: n";
    let v = |r: &mut Rng| {
        vals(vec![("X", r.mat(5, 2, 0.1, 1.0)), ("w", r.mat(2, 1, 0.1, 1.0)), ("y", pos(r, 5)), ("w0", Mat::scalar(r.next(0.5, 1.0)))])
    };
    check(src, d, "w", "2*X'*((y - 1./z)./z.^2)", v);
    check(src, d, "w0", "2*sum((y - 1./z)./z.^2)", v);
}

/// Seed 001 problem 4 (cross-entropy with Gaussian features, broadcasting `x - b'`):
/// ∇_a J = Qᵀp with Q = exp(−(x − bᵀ).^2/2), p = e^z/(1 + e^z) − y, as in the seed;
/// ∇_b J = sum((p·aᵀ).*Q.*(x − bᵀ), 1)ᵀ, the seed's Σ_i p_i a_j (x_i − b_j) Q_ij with the sign of
/// (x − b) (the seed's own code `-sum(a*Q*D)` has D = x − b, the same).
#[test]
fn p4_logistic_gaussian_features() {
    let src = "z = exp(-(x - b').^2/2)*a; J = sum(log(1 + exp(z)) - y.*z)";
    let d = "x: n, b: m, a: m, y: n";
    let v = |r: &mut Rng| {
        let y = Mat::vector((0..7).map(|_| if r.next(0.0, 1.0) < 0.5 { 0.0 } else { 1.0 }).collect());
        vals(vec![("x", r.mat(7, 1, -2.0, 2.0)), ("b", r.mat(3, 1, -2.0, 2.0)), ("a", r.mat(3, 1, -1.0, 1.0)), ("y", y)])
    };
    check(src, d, "a", "exp(-(x - b').^2/2)'*(1./(1 + exp(-z)) - y)", v);
    check(src, d, "b", "sum(((1./(1 + exp(-z)) - y)*a').*exp(-(x - b').^2/2).*(x - b'), 1)'", v);
}

/// Seed 001 problem 5: f'(x) = x/2 + 2π sin(2πx) (the seed's solution wrongly has sin(x)).
/// Printed as `2*pi*sin(2*pi*x) + 0.5*x`.
#[test]
fn p5_corrected_derivative() {
    let mut f = check("x^2/4 + 1 - cos(2*pi*x)", "x", "x", "2*pi*sin(2*pi*x) + 0.5*x", |r| vals(vec![("x", Mat::scalar(r.next(-2.0, 2.0)))]));
    let g = f.gradient("x").unwrap();
    assert_eq!(f.unicode(g), "2π·sin(2π·x) + 0.5·x");
    // and it is not the seed's x/2 + 2π sin(x):
    let mut v = Values::new();
    v.insert("x".into(), Mat::scalar(0.3));
    let got = f.eval(&[g], &v).unwrap()[0].data[0];
    let seed_wrong = 0.15 + 2.0 * std::f64::consts::PI * 0.3f64.sin();
    let truth = 0.15 + 2.0 * std::f64::consts::PI * (2.0 * std::f64::consts::PI * 0.3).sin();
    assert!((got - truth).abs() < 1e-12 && (got - seed_wrong).abs() > 1.0);
}

/// Seed 001 problem 6: ∇J = (b1 w1, b2 w2); as a vector loss with b = (b1, b2), `b.*w`.
#[test]
fn p6_quadratic() {
    check("0.5*b1*w1^2 + 0.5*b2*w2^2", "b1, b2, w1, w2", "w1", "b1*w1", |r| {
        vals(["b1", "b2", "w1", "w2"].iter().map(|n| (*n, Mat::scalar(r.next(0.5, 2.0)))).collect())
    });
    check("0.5*sum(b.*w.^2)", "b: 2, w: 2", "w", "b.*w", |r| vals(vec![("b", pos(r, 2)), ("w", r.mat(2, 1, -1.0, 1.0))]));
}

/// Seed 001 problem 7, gradient in the matrix P with z_i = x_iᵀPx_i written `sum((X*P).*X, 2)`:
/// Xᵀ((1./y − 1./z).*X), the compact form of Xᵀ·diag(1./y − 1./z)·X = Σ_i (1/y_i − 1/z_i) x_i x_iᵀ.
#[test]
fn p7_matrix_p() {
    let src = "z = sum((X*P).*X, 2); J = sum(z./y - log(z))";
    let d = "X: n x m, P: m x m, y: n";
    let v = |r: &mut Rng| {
        // P positive definite-ish so z > 0
        let mut p = r.mat(3, 3, -0.1, 0.1);
        for k in 0..3 {
            p.data[k * 3 + k] += 1.0;
        }
        vals(vec![("X", r.mat(6, 3, -1.0, 1.0)), ("P", p), ("y", pos(r, 6))])
    };
    let mut f = check(src, d, "P", "X'*diag(1./y - 1./z)*X", v);
    let g = f.gradient("P").unwrap();
    assert_eq!(f.unicode(g), "Xᵀ·diag(1./y − 1./z)·X");
    // the same loss with the seed's diag form is also derived and agrees numerically
    check("z = diag(X*P*X'); J = sum(z./y - log(z))", d, "P", "X'*diag(1./y - 1./z)*X", v);
}

/// Seed 001 problem 8: J(a, b) = ‖y − exp(−x aᵀ) b‖²; ∇_a J = 2·((E.*(r bᵀ))ᵀ x) with
/// E = exp(−x aᵀ), r = y − E b, the seed's 2Σ_i (y_i − ŷ_i) b_j x_i e^{−a_j x_i}.
#[test]
fn p8_nested() {
    let src = "sum((y - exp(-x*a')*b).^2)";
    let d = "x: n, a: k, b: k, y: n";
    let v = |r: &mut Rng| vals(vec![("x", r.mat(6, 1, 0.0, 2.0)), ("a", r.mat(2, 1, 0.1, 1.0)), ("b", r.mat(2, 1, -1.0, 1.0)), ("y", r.mat(6, 1, -1.0, 1.0))]);
    check(src, d, "a", "2*(((y - exp(-x*a')*b)*b').*exp(-x*a'))'*x", v);
}

/// Matrix functions: quadratic form, log-determinant, determinant, trace of an inverse.
#[test]
fn matrix_functions() {
    let sq = |r: &mut Rng| {
        let mut a = r.mat(3, 3, -0.3, 0.3);
        for k in 0..3 {
            a.data[k * 3 + k] += 2.0;
        }
        a
    };
    check("x'*A*x", "x: n, A: n x n", "x", "(A + A')*x", move |r| vals(vec![("x", r.mat(3, 1, -1.0, 1.0)), ("A", sq(r))]));
    check("logdet(X)", "X: n x n", "X", "inv(X)'", move |r| vals(vec![("X", sq(r))]));
    check("det(X)", "X: n x n", "X", "det(X)*inv(X)'", move |r| vals(vec![("X", sq(r))]));
    check("tr(inv(X)*A)", "X: n x n, A: n x n", "X", "-inv(X)'*A'*inv(X)'", move |r| vals(vec![("X", sq(r)), ("A", sq(r))]));
    check("sum(diag(X)) + tr(X)", "X: n x n", "X", "2*eye(n)", move |r| vals(vec![("X", sq(r))]));
}

/// Prints the gallery as Markdown (`cargo test --test matrix_gallery -- --ignored --nocapture`).
#[test]
#[ignore]
fn print_all() {
    let cases: &[(&str, &str, &str)] = &[
        ("norm2(x - a)", "x: n, a: n", "x"),
        ("norm2(x)^2", "x: n", "x"),
        ("normF(X)^2", "X: m x n", "X"),
        ("normF(X)", "X: m x n", "X"),
        ("normF(X - A)^2", "X: m x n, A: m x n", "X"),
        ("normF(A*X - B)^2", "A: m x n, X: n x p, B: m x p", "X"),
        ("normF(X*A - B)^2", "X: m x n, A: n x p, B: m x p", "X"),
        ("norm2(X*w - y)^2", "X: n x d, w: d, y: n", "w"),
        ("z = sum((X*P).*X, 2); J = sum(z./y - log(z))", "X: n x m, P: m x m, y: n", "P"),
        ("z = exp(-(x - b').^2/2)*a; J = sum(log(1 + exp(z)) - y.*z)", "x: n, b: m, a: m, y: n", "a"),
        ("z = exp(-(x - b').^2/2)*a; J = sum(log(1 + exp(z)) - y.*z)", "x: n, b: m, a: m, y: n", "b"),
        ("z1 = a1*w1*w2; z2 = a2*w1 + a3*w2^2; J = z1*exp(z1*z2)", "a1, a2, a3, w1, w2", "w1"),
        ("sum((log(y) - log(X*w + b)).^2)", "X: n x p, w: p, y: n, b: scalar", "w"),
        ("sum((log(y) - log(X*w + b)).^2)", "X: n x p, w: p, y: n, b: scalar", "b"),
        ("z = X*w + w0; J = sum((y - 1./z).^2)", "X: n x d, w: d, w0: scalar, y: n", "w"),
        ("x^2/4 + 1 - cos(2*pi*x)", "x: scalar", "x"),
        ("0.5*sum(b.*w.^2)", "b: 2, w: 2", "w"),
        ("sum((y - exp(-x*a')*b).^2)", "x: n, a: d, b: d, y: n", "a"),
        ("x'*A*x", "x: n, A: n x n", "x"),
        ("logdet(X)", "X: n x n", "X"),
        ("det(X)", "X: n x n", "X"),
        ("tr(inv(X)*A)", "X: n x n, A: n x n", "X"),
        ("sum(diag(X))", "X: n x n", "X"),
    ];
    println!("| seed | loss | declarations | wrt | gradient (printed) | where |");
    println!("|---|---|---|---|---|---|");
    for (src, d, w) in cases {
        let mut f = LossFormula::new(src, d, None).unwrap_or_else(|e| panic!("{src}: {e}"));
        let g = f.gradient(w).unwrap();
        let defs: Vec<String> = f.definitions_used(g).iter().map(|(n, id)| format!("`{n} = {}`", f.unicode(*id))).collect();
        println!("| | `{src}` | `{d}` | `{w}` | `{}` | {} |", f.unicode(g), defs.join(", "));
    }
}

/// Seed 002 §12.2, the Jacobian ∂/∂x (x − a)/‖x − a‖₂ = I/‖x − a‖ − (x − a)(x − a)ᵀ/‖x − a‖³,
/// printed as the equivalent `(I − (x − a)·(x − a)ᵀ/‖x − a‖₂²)/‖x − a‖₂` (the common factor
/// 1/‖x − a‖ taken out); checked against central differences and against the seed's form.
#[test]
fn s12_2_jacobian() {
    let mut f = LossFormula::new("(x - a)/norm2(x - a)", "x: n, a: n", None).unwrap();
    let j = f.jacobian("x").unwrap();
    assert_eq!(f.ascii(j), "(eye(n) - (x - a)*(x - a)'/norm2(x - a)^2)/norm2(x - a)");
    assert_eq!(f.unicode(j), "(I − (x − a)·(x − a)ᵀ/‖x − a‖₂²)/‖x − a‖₂");
    for seed in 1..4u64 {
        let mut rng = Rng(seed * 7919 + 17);
        let v = vals(vec![("x", rng.mat(5, 1, -1.0, 1.0)), ("a", rng.mat(5, 1, -1.0, 1.0))]);
        let err = f.check_jacobian("x", j, &v, 6, seed).unwrap();
        assert!(err <= 1e-7, "relative error {err:e}");
        // the seed's form, entry by entry
        let jm = f.eval(&[j], &v).unwrap().remove(0);
        let u: Vec<f64> = (0..5).map(|i| v["x"].data[i] - v["a"].data[i]).collect();
        let nu = u.iter().map(|t| t * t).sum::<f64>().sqrt();
        for r in 0..5 {
            for c in 0..5 {
                let want = if r == c { 1.0 / nu } else { 0.0 } - u[r] * u[c] / nu.powi(3);
                assert!((jm.get(r, c) - want).abs() <= 1e-12 * (1.0 + want.abs()), "J[{r},{c}] = {} vs {want}", jm.get(r, c));
            }
        }
    }
}

/// More Jacobians: of an affine map, of an elementwise function, of a composition, with a
/// scalar variable, and of `x·‖x‖²`; each checked against central differences.
#[test]
fn jacobians_more() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("A*x + b", "A: m x n, x: n, b: m", "x", "A"),
        ("exp(x)", "x: n", "x", "diag(exp(x))"),
        ("A*x*s + b.*s", "A: m x n, x: n, b: m, s: scalar", "s", "A*x + b"),
        ("log(1 + exp(A*x))", "A: m x n, x: n", "x", "A.*exp(A*x)./(1 + exp(A*x))"),
        ("x*(x'*x)", "x: n", "x", "2*x*x' + x'*x*eye(n)"),
    ];
    for (src, d, w, expect) in cases {
        let mut f = LossFormula::new(src, d, None).unwrap_or_else(|e| panic!("{src}: {e}"));
        let j = f.jacobian(w).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert_eq!(f.ascii(j), *expect, "{src}");
        for seed in 1..4u64 {
            let mut rng = Rng(seed * 31 + 5);
            let all = vals(vec![
                ("A", rng.mat(4, 3, -1.0, 1.0)),
                ("x", rng.mat(3, 1, -1.0, 1.0)),
                ("b", rng.mat(4, 1, -1.0, 1.0)),
                ("s", Mat::scalar(rng.next(-1.0, 1.0))),
            ]);
            let v: Values = f.variables().into_iter().map(|n| (n.clone(), all[&n].clone())).collect();
            let err = f.check_jacobian(w, j, &v, 6, seed).unwrap();
            assert!(err <= 1e-7, "{src}: relative error {err:e}");
        }
    }
    // a matrix intermediate read through a product with a vector is differentiated (the
    // gallery checks these against differences); one inside an elementwise function, an
    // elementwise product of two matrices or a trace is reported, naming it
    let mut f = LossFormula::new("(x*x')*y", "x: n, y: n", None).unwrap();
    let j = f.jacobian("x").unwrap();
    assert_eq!(f.ascii(j), "x'*y*eye(n) + x*y'");
    for (src, d, w, message) in [
        ("exp(x*x')*y", "x: n, y: n", "x", "`exp(x*x')` depends on `x` and is a n×n matrix"),
        ("(A.*W)*y", "A: m x n, W: m x n, y: n", "W", "`A.*W` depends on `W` and is a m×n matrix"),
        ("trace(x*x')*y", "x: n, y: n", "x", "`x*x'` depends on `x` and is a n×n matrix"),
        ("trace(W)*y", "W: n x n, y: n", "W", "`W` is a n×n matrix and is used other than through a product with a vector"),
    ] {
        let mut f = LossFormula::new(src, d, None).unwrap_or_else(|e| panic!("{src}: {e}"));
        let e = f.jacobian(w).unwrap_err().to_string();
        assert!(e.contains(message), "{src}: {e}");
    }
    // products of a matrix by itself nested deeply (a Jacobian exponential in the depth) are
    // refused quickly instead of formed; a shallow chain is formed and correct
    let chain = |depth: usize| {
        let mut src = "z1 = X*(X + A)".to_string();
        for i in 2..=depth {
            src += &format!("; z{i} = z{}*(z{} + A)", i - 1, i - 1);
        }
        src + &format!("; J = z{depth}*b")
    };
    let mut f = LossFormula::new(&chain(30), "X: n x n, A: n x n, b: n", None).unwrap();
    let e = f.jacobian("X").unwrap_err().to_string();
    assert!(e.contains("too large to form"), "{e}");
    let mut f = LossFormula::new(&chain(3), "X: n x n, A: n x n, b: n", None).unwrap();
    let j = f.jacobian("X").unwrap();
    let mut rng = Rng(17);
    let v = vals(vec![("X", rng.mat(3, 3, -0.5, 0.5)), ("A", rng.mat(3, 3, -0.5, 0.5)), ("b", rng.mat(3, 1, -1.0, 1.0))]);
    let err = f.check_jacobian("X", j, &v, 6, 3).unwrap();
    assert!(err <= 1e-7, "depth 3: relative error {err:e}");
}

/// Least squares `min_b ‖y − E·b‖₂` by Householder QR (no normal equations); `e` column-major n×k.
fn least_squares(e: &Mat, y: &[f64]) -> Vec<f64> {
    let (n, k) = (e.rows, e.cols);
    let mut a = e.data.clone();
    let mut r = y.to_vec();
    for j in 0..k {
        let col = |a: &[f64], i: usize| a[j * n + i];
        let norm = (j..n).map(|i| col(&a, i).powi(2)).sum::<f64>().sqrt();
        let alpha = if col(&a, j) > 0.0 { -norm } else { norm };
        let mut v: Vec<f64> = (j..n).map(|i| col(&a, i)).collect();
        v[0] -= alpha;
        let vv: f64 = v.iter().map(|t| t * t).sum();
        if vv == 0.0 {
            continue;
        }
        let reflect = |x: &mut [f64]| {
            let d: f64 = v.iter().zip(x.iter()).map(|(p, q)| p * q).sum::<f64>() * 2.0 / vv;
            for (xi, vi) in x.iter_mut().zip(&v) {
                *xi -= d * vi;
            }
        };
        for c in j..k {
            reflect(&mut a[c * n + j..c * n + n]);
        }
        reflect(&mut r[j..]);
    }
    let mut b = vec![0.0; k];
    for j in (0..k).rev() {
        let s: f64 = (j + 1..k).map(|c| a[c * n + j] * b[c]).sum();
        b[j] = (r[j] - s) / a[j * n + j];
    }
    b
}

/// Seed 001 problem 8, nested: J₁(a) = min_b J(a, b) with J(a, b) = ‖y − exp(−x·aᵀ)·b‖²; by the
/// envelope theorem ∇J₁(a) = ∇_a J(a, b̂(a)), b̂(a) the linear least-squares solution. The
/// derived ∇_a J (printed above in `p8_nested`) evaluated at (a, b̂(a)) agrees with
/// Richardson central differences of J₁, which re-solve for b̂ at every step; ∇_b J vanishes there.
#[test]
fn p8_nested_gradient_at_optimal_b() {
    let src = "sum((y - exp(-x*a')*b).^2)";
    let mut f = LossFormula::new(src, "x: n, a: k, b: k, y: n", None).unwrap();
    let [ga, gb]: [_; 2] = f.gradients(&["a", "b"]).unwrap().try_into().unwrap();
    assert_eq!(f.ascii(ga), "2*(((y - exp(-x*a')*b)*b').*exp(-x*a'))'*x");
    for seed in 1..4u64 {
        let mut rng = Rng(seed * 104_729 + 3);
        let n = 15;
        let x = Mat::vector((0..n).map(|i| 0.15 * i as f64).collect());
        // data from a two-exponential with noise, so the residual at b̂ is not zero
        let y = Mat::vector(x.data.iter().map(|t| 1.5 * (-0.4 * t).exp() - 0.7 * (-2.5 * t).exp() + 0.02 * rng.next(-1.0, 1.0)).collect());
        let a = Mat::vector(vec![rng.next(0.2, 0.8), rng.next(1.5, 3.0)]);
        let bhat = |a: &Mat| {
            let e = Mat { rows: n, cols: 2, data: (0..2).flat_map(|j| x.data.iter().map(move |t| (-t * a.data[j]).exp())).collect() };
            least_squares(&e, &y.data)
        };
        let values = |a: &Mat| vals(vec![("x", x.clone()), ("y", y.clone()), ("a", a.clone()), ("b", Mat::vector(bhat(a)))]);
        let j1 = |a: &Mat| f.eval(&[f.root()], &values(a)).unwrap()[0].data[0];
        let v = values(&a);
        let [g_a, g_b]: [Mat; 2] = f.eval(&[ga, gb], &v).unwrap().try_into().unwrap();
        // b̂ is stationary in b
        let gnorm = g_a.data.iter().map(|t| t.abs()).fold(0.0, f64::max);
        assert!(g_b.data.iter().all(|t| t.abs() <= 1e-10 * gnorm.max(1.0)), "∇_b J at b̂: {:?}", g_b.data);
        for i in 0..2 {
            let h = 1e-3;
            let at = |t: f64| {
                let mut a2 = a.clone();
                a2.data[i] += t;
                j1(&a2)
            };
            let d1 = (at(h) - at(-h)) / (2.0 * h);
            let d2 = (at(h / 2.0) - at(-h / 2.0)) / h;
            let fd = (4.0 * d2 - d1) / 3.0;
            let err = (g_a.data[i] - fd).abs() / g_a.data[i].abs().max(fd.abs());
            assert!(err <= 1e-7, "∂J₁/∂a{i}: derived {} vs differences {fd} (error {err:e})", g_a.data[i]);
        }
    }
}

/// Jacobians through matrix intermediates that depend on the variable, read through products
/// with vectors (rows and columns, sums, scalings by scalars and vectors, inverses, powers,
/// transposes, diag, matrix variables): each against central differences at three random
/// points, and its ASCII form parsed back to the same numbers.
#[test]
fn jacobians_through_matrix_intermediates() {
    let decls = "x: n, v: n, u: n, A: n x n, B: n x n, X: n x n, s, W: n x n";
    let cases: &[(&str, &str)] = &[
        ("u'*(x*x')", "x"),
        ("(u'*(A + x*x'))'", "x"),
        ("sum(x*x', 1)'", "x"),
        ("sum(x*x', 2)", "x"),
        ("sum(sum(x*x'))*v", "x"),
        ("((x*x')/(x'*x))*v", "x"),
        ("((x'*x)*A)*v", "x"),
        ("(A.*x')*v", "x"),
        ("(x.*A)'*v", "x"),
        ("(A*x*x'*B)'*u", "x"),
        ("inv(A + x*x')'*v", "x"),
        ("(A + x*x')^2*v", "x"),
        ("((A + x*x')^3)'*v", "x"),
        ("diag(x)*A*v", "x"),
        ("(A*diag(x))'*v", "x"),
        ("(s*X)*v", "X"),
        ("(X/s)'*v", "X"),
        ("(X/(x'*x))*v", "x"),
        ("u'*inv(X)*v*x", "X"),
        ("X*X'*v", "X"),
        ("(X*A*X')'*v", "X"),
        ("inv(X')*v", "X"),
        ("(X + X')*v", "X"),
        ("(-X)*v + X'*u", "X"),
        ("tanh((W*X)*v)", "X"),
        ("(x'*A*x)*(X*v)", "x"),
        ("exp(x)'*(A + x*x')", "x"),
        ("(x*v' + v*x')*u", "x"),
        ("((x - v)*(x - v)')*u/norm2(x - v)", "x"),
    ];
    for (src, w) in cases {
        let mut f = LossFormula::new(src, decls, None).unwrap_or_else(|e| panic!("{src}: {e}"));
        let j = f.jacobian(w).unwrap_or_else(|e| panic!("{src}: {e}"));
        let prog = f.ascii_program(j);
        let back = LossFormula::new(&prog, decls, None).unwrap_or_else(|e| panic!("{src}: printed {prog}: {e}"));
        for seed in 1..4u64 {
            let mut rng = Rng(seed * 97 + 11);
            let square = |rng: &mut Rng| {
                let mut m = rng.mat(3, 3, -1.0, 1.0);
                for k in 0..3 {
                    m.data[k * 3 + k] += 3.0;
                }
                m
            };
            let (a, b, x, w2) = (square(&mut rng), square(&mut rng), square(&mut rng), square(&mut rng));
            let v = vals(vec![
                ("x", rng.mat(3, 1, -1.0, 1.0)),
                ("v", rng.mat(3, 1, -1.0, 1.0)),
                ("u", rng.mat(3, 1, -1.0, 1.0)),
                ("A", a),
                ("B", b),
                ("X", x),
                ("W", w2),
                ("s", Mat::scalar(rng.next(0.5, 1.5))),
            ]);
            let v: Values = f.variables().into_iter().map(|n| (n.clone(), v[&n].clone())).collect();
            let err = f.check_jacobian(w, j, &v, 6, seed).unwrap();
            assert!(err <= 1e-7, "{src} in {w}: {} off by {err:e}", f.ascii(j));
            let (p, q) = (f.eval(&[j], &v).unwrap().remove(0), back.eval(&[back.root()], &v).unwrap().remove(0));
            for (a, b) in p.data.iter().zip(&q.data) {
                assert!((a - b).abs() <= 1e-10 * a.abs().max(1.0), "{src}: printed `{prog}` gives {b}, not {a}");
            }
        }
    }
}
