//! The functions of issue 14 — `sigmoid`/`logistic`, `softplus`, `log1p`, `expm1`, `erf`,
//! `erfc`, `relu` (elementwise, in model and loss formulas) and `softmax`, `logsumexp` (loss
//! formulas) — each with its printed derivative, its value at reference points, stability at
//! extreme arguments, and its derivative against Richardson central differences.

use sepfit_expr::matrix::{LossFormula, Mat, Values};
use sepfit_expr::{Func, ModelFormula};

fn vals(pairs: &[(&str, Mat)]) -> Values {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// The printed gradient of `sum(f(x))` in `x`, and a check against differences at `x`.
fn gradient_of(src: &str, x: &[f64]) -> String {
    let mut f = LossFormula::new(src, "x: n", None).unwrap_or_else(|e| panic!("{src}: {e}"));
    let g = f.gradient("x").unwrap();
    let v = vals(&[("x", Mat::vector(x.to_vec()))]);
    let err = f.check_gradient(&["x"], &[g], &v, 6, 7).unwrap();
    assert!(err <= 1e-8, "{src}: gradient {} off by {err:e}", f.ascii(g));
    f.ascii(g)
}

#[test]
fn printed_derivatives_and_difference_checks() {
    let x = [-1.3, -0.2, 0.4, 2.1];
    assert_eq!(gradient_of("sum(sigmoid(x))", &x), "sigmoid(x).*(1 - sigmoid(x))");
    assert_eq!(gradient_of("sum(logistic(x))", &x), "sigmoid(x).*(1 - sigmoid(x))");
    assert_eq!(gradient_of("sum(softplus(x))", &x), "sigmoid(x)");
    assert_eq!(gradient_of("sum(log1p(x.^2))", &x), "2*x./(1 + x.^2)");
    assert_eq!(gradient_of("sum(expm1(x))", &x), "exp(x)");
    assert_eq!(gradient_of("sum(erf(x))", &x), "1.1283791670955126*exp(-x.^2)");
    assert_eq!(gradient_of("sum(erfc(x))", &x), "-1.1283791670955126*exp(-x.^2)");
    assert_eq!(gradient_of("sum(relu(x))", &x), "step(x)");
    assert_eq!(gradient_of("logsumexp(x)", &x), "softmax(x)");
    // softmax: a vector function; its Jacobian diag(s) − s·sᵀ, checked entry by entry
    let mut f = LossFormula::new("softmax(x)", "x: n", None).unwrap();
    let j = f.jacobian("x").unwrap();
    assert_eq!(f.ascii(j), "diag(softmax(x)) - softmax(x)*softmax(x)'");
    let v = vals(&[("x", Mat::vector(x.to_vec()))]);
    assert!(f.check_jacobian("x", j, &v, 6, 3).unwrap() <= 1e-8);
    // and through a loss: cross-entropy with one-hot y gives softmax(z) − y for z = W·x
    let mut f = LossFormula::new("z = W*x; logsumexp(z) - y'*z", "W: k x n, x: n, y: k", None).unwrap();
    let g = f.gradient("W").unwrap();
    assert_eq!(f.ascii(g), "(softmax(z) - y)*x'");
}

#[test]
fn reference_values_and_extreme_arguments() {
    let ap = |f: Func, x: f64| f.apply(x);
    assert!((ap(Func::Erf, 0.5) - 0.520_499_877_813_046_5).abs() < 1e-16);
    assert!((ap(Func::Erfc, 3.0) - 2.209_049_699_858_544e-5).abs() < 1e-20);
    assert_eq!(ap(Func::Erfc, 30.0), 0.0f64.max(ap(Func::Erfc, 30.0))); // tiny, not negative
    assert_eq!(ap(Func::Sigmoid, 800.0), 1.0);
    assert!(ap(Func::Sigmoid, -800.0) >= 0.0 && ap(Func::Sigmoid, -800.0) < 1e-300);
    assert!((ap(Func::Sigmoid, 0.3) - 1.0 / (1.0 + (-0.3f64).exp())).abs() < 1e-16);
    assert_eq!(ap(Func::Softplus, 1000.0), 1000.0);
    assert!((ap(Func::Softplus, 0.0) - std::f64::consts::LN_2).abs() < 1e-16);
    assert_eq!(ap(Func::Softplus, -1000.0), 0.0);
    assert_eq!(ap(Func::Log1p, 1e-20), 1e-20);
    assert_eq!(ap(Func::Expm1, 1e-20), 1e-20);
    assert_eq!((ap(Func::Relu, -2.0), ap(Func::Relu, 0.0), ap(Func::Relu, 3.0)), (0.0, 0.0, 3.0));
    assert_eq!((ap(Func::Step, -2.0), ap(Func::Step, 0.0), ap(Func::Step, 3.0)), (0.0, 0.0, 1.0));
    assert!(ap(Func::Relu, f64::NAN).is_nan() && ap(Func::Step, f64::NAN).is_nan());
    // logsumexp and softmax do not overflow
    let f = LossFormula::new("logsumexp(x)", "x: n", None).unwrap();
    let v = vals(&[("x", Mat::vector(vec![1000.0, 1000.0, -1e300]))]);
    let l = f.eval(&[f.root()], &v).unwrap()[0].data[0];
    assert!((l - (1000.0 + std::f64::consts::LN_2)).abs() < 1e-12, "{l}");
    let f = LossFormula::new("softmax(x)", "x: n", None).unwrap();
    let s = f.eval(&[f.root()], &v).unwrap().remove(0).data;
    assert!((s[0] - 0.5).abs() < 1e-15 && (s[1] - 0.5).abs() < 1e-15 && s[2] == 0.0, "{s:?}");
}

/// Elementwise functions work in model formulas, with their derivatives (forward mode) equal to
/// central differences, in the fit's compiled evaluator as well.
#[test]
fn functions_in_model_formulas() {
    for (body, col_k) in [
        ("a*sigmoid(k*t)", 0.7),
        ("a*softplus(k*t - 1)", 0.7),
        ("a*log1p(k*t^2)", 0.7),
        ("a*expm1(-k*t)", 0.7),
        ("a*erf(k*t)", 0.7),
        ("a*erfc(k*t)", 0.7),
        ("a*relu(k*t - 1)", 0.7),
        ("a*logistic(k*t)", 0.7),
    ] {
        let src = format!("y ~ {body}");
        let m = ModelFormula::parse(&src, &["t", "y"]).unwrap_or_else(|e| panic!("{}", e.render(&src)));
        let pool = m.pool();
        let t = pool.find_symbol("t").unwrap();
        let k = pool.find_symbol("k").unwrap();
        let kp = m.params().iter().position(|p| p.name == "k").unwrap();
        let d = m.gradient()[kp];
        for tv in [0.3, 1.1, 2.9] {
            let at = |kv: f64, id| pool.eval(id, &|s| if s == t { tv } else if s == k { kv } else { 1.0 });
            let h = 1e-4;
            let fd = (8.0 * (at(col_k + h, m.rhs()) - at(col_k - h, m.rhs())) - (at(col_k + 2.0 * h, m.rhs()) - at(col_k - 2.0 * h, m.rhs()))) / (12.0 * h);
            let dv = at(col_k, d);
            assert!((dv - fd).abs() <= 1e-8 * dv.abs().max(1.0), "{src} at t = {tv}: ∂f/∂k = {dv} ({}) vs differences {fd}", m.print(d));
        }
    }
}

/// The gradient of a scalar loss in `x` and `y`, printed, with a check against differences.
fn gradients_xy(src: &str, x: &[f64], y: &[f64]) -> (String, String) {
    let mut f = LossFormula::new(src, "x: n, y: n", None).unwrap_or_else(|e| panic!("{src}: {e}"));
    let gx = f.gradient("x").unwrap();
    let gy = f.gradient("y").unwrap();
    let v = vals(&[("x", Mat::vector(x.to_vec())), ("y", Mat::vector(y.to_vec()))]);
    let err = f.check_gradient(&["x", "y"], &[gx, gy], &v, 6, 7).unwrap();
    assert!(err <= 1e-8, "{src}: gradients {} and {} off by {err:e}", f.ascii(gx), f.ascii(gy));
    (f.ascii(gx), f.ascii(gy))
}

/// `atan2`, `max`, `min` (two arguments, elementwise): printed derivatives, differences away
/// from ties, the subgradient at a tie (the second argument's), every quadrant of `atan2`, and
/// the forms parsing back.
#[test]
fn functions_of_two_arguments() {
    // points in all four quadrants, none on a branch cut or a tie
    let x = [-1.3, -0.2, 0.4, 2.1];
    let y = [0.7, -1.1, 0.9, -0.3];
    let (gx, gy) = gradients_xy("sum(atan2(y, x))", &x, &y);
    assert_eq!(gx, "-y./(y.^2 + x.^2)");
    assert_eq!(gy, "x./(y.^2 + x.^2)");
    let (gx, gy) = gradients_xy("sum(max(x, y))", &x, &y);
    assert_eq!((gx.as_str(), gy.as_str()), ("step(x - y)", "1 - step(x - y)"));
    let (gx, gy) = gradients_xy("sum(min(x, y))", &x, &y);
    assert_eq!((gx.as_str(), gy.as_str()), ("step(y - x)", "1 - step(y - x)"));
    let (gx, _) = gradients_xy("sum(max(x, y).^2) + sum(min(2*x, 1 - y))", &x, &y);
    assert!(gx.contains("max(x, y)"), "{gx}");
    // values: atan2's quadrants, max/min of signed numbers and NaN
    use sepfit_expr::Func2;
    let pi = std::f64::consts::PI;
    assert_eq!(Func2::Atan2.apply(1.0, 1.0), pi / 4.0);
    assert_eq!(Func2::Atan2.apply(1.0, -1.0), 3.0 * pi / 4.0);
    assert_eq!(Func2::Atan2.apply(-1.0, -1.0), -3.0 * pi / 4.0);
    assert_eq!(Func2::Atan2.apply(0.0, -1.0), pi);
    assert_eq!((Func2::Max.apply(-2.0, 3.0), Func2::Min.apply(-2.0, 3.0)), (3.0, -2.0));
    for f in [Func2::Max, Func2::Min] {
        assert!(f.apply(f64::NAN, 1.0).is_nan() && f.apply(1.0, f64::NAN).is_nan(), "{f:?}");
    }
    // at a tie the derivative is the second argument's: d max(x, c)/dx = 0 at x = c, as relu
    let mut f = LossFormula::new("sum(max(x, y)) + sum(min(x, y))", "x: n, y: n", None).unwrap();
    let (gx, gy) = (f.gradient("x").unwrap(), f.gradient("y").unwrap());
    let v = vals(&[("x", Mat::vector(vec![1.5, -2.0])), ("y", Mat::vector(vec![1.5, -2.0]))]);
    let out = f.eval(&[gx, gy], &v).unwrap();
    assert_eq!((out[0].data.clone(), out[1].data.clone()), (vec![0.0, 0.0], vec![2.0, 2.0]));
    let mut f = LossFormula::new("sum(max(x, 0))", "x: n", None).unwrap();
    let g = f.gradient("x").unwrap();
    let mut r = LossFormula::new("sum(relu(x))", "x: n", None).unwrap();
    let gr = r.gradient("x").unwrap();
    let v = vals(&[("x", Mat::vector(vec![-1.0, 0.0, 2.0]))]);
    assert_eq!(f.eval(&[g], &v).unwrap()[0].data, r.eval(&[gr], &v).unwrap()[0].data);
    // Hessians through atan2 (and max, piecewise linear) against differences of the gradient
    for src in ["sum(atan2(x, 1 + x.^2)) + sum(atan2(2, x))", "sum(max(x, 0.5).^3) + sum(min(x.^2, 1).*x)"] {
        let mut f = LossFormula::new(src, "x: n", None).unwrap();
        let (g, h) = f.hessian("x").unwrap();
        let v = vals(&[("x", Mat::vector(vec![-1.3, 0.2, 0.9, 2.1]))]);
        let err = f.check_hessian("x", g, h, &v, 6, 11).unwrap();
        assert!(err <= 1e-7, "{src}: Hessian {} off by {err:e}", f.ascii(h));
    }
    // wrong arity and mismatched shapes are diagnostics, not panics
    for (src, decls) in [("sum(max(x))", "x: n"), ("sum(atan2(x, y, x))", "x: n, y: n"), ("sum(min(x, y))", "x: n, y: m")] {
        assert!(LossFormula::new(src, decls, None).is_err(), "{src}");
    }
}

/// `atan2`, `max`, `min` in model formulas: derivatives in each argument against differences
/// (forward mode), and the printed model parses back to the same values.
#[test]
fn functions_of_two_arguments_in_model_formulas() {
    for body in ["a*atan2(k*t, 1 - t)", "a*max(k*t, 1)", "a*min(k*t, t^2)", "atan2(a, k)*t", "max(a*t, k*t - 1)"] {
        let src = format!("y ~ {body}");
        let m = ModelFormula::parse(&src, &["t", "y"]).unwrap_or_else(|e| panic!("{}", e.render(&src)));
        let pool = m.pool();
        let t = pool.find_symbol("t").unwrap();
        let k = pool.find_symbol("k").unwrap();
        let kp = m.params().iter().position(|p| p.name == "k").unwrap();
        let d = m.gradient()[kp];
        let kv = 0.7;
        for tv in [0.3, 1.1, 2.9] {
            let at = |kv: f64, id| pool.eval(id, &|s| if s == t { tv } else if s == k { kv } else { 1.3 });
            let h = 1e-4;
            let fd = (8.0 * (at(kv + h, m.rhs()) - at(kv - h, m.rhs())) - (at(kv + 2.0 * h, m.rhs()) - at(kv - 2.0 * h, m.rhs()))) / (12.0 * h);
            let dv = at(kv, d);
            assert!((dv - fd).abs() <= 1e-8 * dv.abs().max(1.0), "{src} at t = {tv}: ∂f/∂k = {dv} ({}) vs differences {fd}", m.print(d));
        }
        let printed = format!("y ~ {}", m.print(m.rhs()));
        let again = ModelFormula::parse(&printed, &["t", "y"]).unwrap_or_else(|e| panic!("{printed}: {}", e.render(&printed)));
        let (p2, t2, k2) = (again.pool(), again.pool().find_symbol("t").unwrap(), again.pool().find_symbol("k").unwrap());
        for tv in [0.3, 1.1, 2.9] {
            let a = pool.eval(m.rhs(), &|s| if s == t { tv } else if s == k { kv } else { 1.3 });
            let b = p2.eval(again.rhs(), &|s| if s == t2 { tv } else if s == k2 { kv } else { 1.3 });
            assert_eq!(a.to_bits(), b.to_bits(), "{src} printed as {printed}");
        }
    }
    let bad = "y ~ a*max(t)";
    assert!(ModelFormula::parse(bad, &["t", "y"]).is_err());
}
