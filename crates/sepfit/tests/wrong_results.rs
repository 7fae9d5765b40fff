//! Regression tests for results that used to be wrong but reported as success, and for
//! problems sepfit used to refuse: each test reproduces a defect found by external test suites
//! or by trying sepfit as a new user would.

use sepfit::{Bound, Dataset, FitError, NamedFit, NamedOptions, Outcome, ProblemError, fit_formula};

fn dataset(cols: &[(&str, Vec<f64>)]) -> Dataset {
    Dataset::new(cols.iter().map(|(n, _)| n.to_string()).collect(), cols.iter().map(|(_, c)| c.clone()).collect()).unwrap()
}

fn opts(start: &[(&str, f64)]) -> NamedOptions {
    NamedOptions::with_start(start)
}

/// Deterministic noise in [-1, 1].
fn noise(i: usize) -> f64 {
    ((i as f64 * 12.9898).sin() * 43_758.545_3).fract() * 2.0 - 1.0
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs())
}

/// A decay measured in seconds (τ ≈ 2.5 ps) and the same data in picoseconds: the standard
/// errors are the same after the unit conversion, and neither fit warns. Standard errors
/// used to vanish ("Jacobian is singular") in seconds, and τ ≈ 2.5 ns warned "ill-conditioned".
#[test]
fn standard_errors_do_not_depend_on_the_time_unit() {
    let n = 60;
    let t_ps: Vec<f64> = (0..n).map(|i| i as f64 * 0.25).collect();
    let y: Vec<f64> = (0..n).map(|i| 3.0 * (-t_ps[i] / 2.5).exp() + 0.2 + 0.01 * noise(i)).collect();
    let fit_in = |unit: f64, tau0: f64| {
        let t: Vec<f64> = t_ps.iter().map(|t| t * unit).collect();
        fit_formula("y ~ a*exp(-t/tau) + c", &dataset(&[("t", t), ("y", y.clone())]), &opts(&[("tau", tau0)])).unwrap()
    };
    let ps = fit_in(1.0, 1.0);
    for unit in [1e-12, 1e-9, 1e-3, 1e6] {
        let other = fit_in(unit, unit);
        assert_eq!(other.fit.outcome, Outcome::Converged, "unit {unit}: {:?}", other.warning_messages());
        assert!(other.fit.warnings.is_empty(), "unit {unit}: {:?}", other.warning_messages());
        let (a, b) = (ps.param("tau").unwrap(), other.param("tau").unwrap());
        assert!(rel(a.value * unit, b.value) < 1e-10, "unit {unit}: {} vs {}", a.value * unit, b.value);
        assert!(rel(a.std_error * unit, b.std_error) < 1e-8, "unit {unit}: SE {} vs {}", a.std_error * unit, b.std_error);
        for name in ["a", "c"] {
            assert!(rel(ps.param(name).unwrap().std_error, other.param(name).unwrap().std_error) < 1e-8, "unit {unit}: SE({name})");
        }
    }
    assert!(ps.fit.warnings.is_empty(), "{:?}", ps.warning_messages());
}

/// Data of order 1e-300 or 1e300, and σ = 1e-300: the same estimates as the data of order one
/// (the linear parameters scaled), where they used to come out wrong when sums of squares
/// underflowed or overflowed.
#[test]
fn extreme_data_scales_give_the_same_estimates() {
    let n = 25;
    let t: Vec<f64> = (0..n).map(|i| i as f64 * 0.4).collect();
    let y: Vec<f64> = (0..n).map(|i| 2.0 * (-0.5 * t[i]).exp() + 0.1 + 0.01 * noise(i)).collect();
    let fit_scaled = |s: f64, sigma: Option<f64>| {
        let ys: Vec<f64> = y.iter().map(|v| v * s).collect();
        let mut cols = vec![("t", t.clone()), ("y", ys)];
        let mut o = opts(&[("k", 1.0)]);
        if let Some(sig) = sigma {
            cols.push(("s", vec![sig; n]));
            o.sigma = Some("s".into());
        }
        fit_formula("y ~ a*exp(-k*t) + c", &dataset(&cols), &o).unwrap()
    };
    let base = fit_scaled(1.0, None);
    for (s, sigma) in [(1e-300, None), (1e300, None), (1.0, Some(1e-300)), (1e-200, Some(1e-200)), (1e250, Some(3.0))] {
        let f = fit_scaled(s, sigma);
        assert_eq!(f.fit.outcome, Outcome::Converged, "scale {s:e} sigma {sigma:?}: {:?}", f.warning_messages());
        let k = (base.param("k").unwrap(), f.param("k").unwrap());
        assert!(rel(k.0.value, k.1.value) < 1e-10, "scale {s:e}: k {} vs {}", k.0.value, k.1.value);
        assert!(rel(k.0.std_error, k.1.std_error) < 1e-8, "scale {s:e}: SE(k) {} vs {}", k.0.std_error, k.1.std_error);
        let a = (base.param("a").unwrap(), f.param("a").unwrap());
        assert!(rel(a.0.value * s, a.1.value) < 1e-10, "scale {s:e}: a {} vs {}", a.0.value * s, a.1.value);
        assert!(rel(a.0.std_error * s, a.1.std_error) < 1e-8, "scale {s:e}: SE(a)");
        assert!(f.fit.residual_std_error.is_finite() && f.fit.residual_std_error > 0.0, "scale {s:e}: {}", f.fit.residual_std_error);
    }
}

/// Two basis functions that are the same function: a degenerate point, not "converged".
#[test]
fn a_linearly_dependent_basis_is_not_converged() {
    let t: Vec<f64> = (0..30).map(|i| i as f64 * 0.2).collect();
    let y: Vec<f64> = t.iter().enumerate().map(|(i, t)| 2.0 * (-0.7 * t).exp() + 0.01 * noise(i)).collect();
    let r = fit_formula("y ~ a*exp(b*t) + c*exp(b*t)", &dataset(&[("t", t), ("y", y)]), &opts(&[("b", -1.0)])).unwrap();
    assert_eq!(r.fit.outcome, Outcome::Degenerate);
    assert!(!r.fit.converged);
    assert!(r.warning_messages().iter().any(|w| w.contains("linearly dependent")), "{:?}", r.warning_messages());
}

/// Names in `fixed` are checked against the model (`K` for `k` used to be accepted, leaving `k`
/// free); bounds on a fixed parameter are an error (they used to move to another parameter,
/// and with no nonlinear parameter left the fit panicked).
#[test]
fn option_names_are_checked() {
    let t: Vec<f64> = (0..20).map(|i| i as f64 * 0.3).collect();
    let y: Vec<f64> = t.iter().map(|t| 1.5 * (-0.4 * t).exp() + 0.3 * (-2.0 * t).exp()).collect();
    let data = dataset(&[("t", t), ("y", y)]);
    let mut o = opts(&[("k1", 1.0)]);
    o.fixed = vec![("K2".into(), 0.3)];
    match fit_formula("y ~ a1*exp(-k1*t) + a2*exp(-k2*t)", &data, &o) {
        Err(ProblemError::UnknownParameter { name, option: "fixed", suggestion: Some(s), .. }) => assert_eq!((name.as_str(), s.as_str()), ("K2", "k2")),
        other => panic!("{other:?}"),
    }
    let mut o = opts(&[("k1", 0.4)]);
    o.fixed = vec![("k2".into(), 0.3)];
    o.bounds = vec![("k2".into(), 0.35, 0.45)];
    assert!(matches!(fit_formula("y ~ a1*exp(-k1*t) + a2*exp(-k2*t)", &data, &o), Err(ProblemError::BoundOnFixed { .. })));
    let o = NamedOptions { fixed: vec![("k1".into(), 0.5)], bounds: vec![("k1".into(), 0.0, 10.0)], ..Default::default() };
    assert!(matches!(fit_formula("y ~ a1*exp(-k1*t)", &data, &o), Err(ProblemError::BoundOnFixed { .. })));
    // With the bound on the free parameter the fit is fine and the bound is where it belongs.
    let mut o = opts(&[("k1", 0.4)]);
    o.fixed = vec![("k2".into(), 2.0)];
    o.bounds = vec![("k1".into(), 0.1, 0.45)];
    let r = fit_formula("y ~ a1*exp(-k1*t) + a2*exp(-k2*t)", &data, &o).unwrap();
    assert_eq!(r.param("k1").unwrap().bounds, Some((0.1, 0.45)));
    assert_eq!(r.param("k1").unwrap().bound, Bound::Free);
}

/// A start given for a linear parameter is not silently dropped: the fit says so.
#[test]
fn a_start_for_a_linear_parameter_gets_a_note() {
    let t: Vec<f64> = (0..20).map(|i| i as f64 * 0.3).collect();
    let y: Vec<f64> = t.iter().map(|t| 1.5 * (-0.4 * t).exp()).collect();
    let r = fit_formula("y ~ a*exp(-k*t)", &dataset(&[("t", t), ("y", y)]), &opts(&[("k", 1.0), ("a", 2.0)])).unwrap();
    assert!(r.notes.iter().any(|n| n.contains("`a` enters linearly")), "{:?}", r.notes);
}

/// `log(t)` with `t = 0` in the data: the error names the row, not the starting values.
#[test]
fn a_model_not_finite_on_the_data_names_the_row() {
    let t: Vec<f64> = (0..10).map(|i| i as f64).collect();
    let y: Vec<f64> = t.iter().map(|t| 2.0 * (-0.5 * t).exp() + 0.1).collect();
    match fit_formula("y ~ a*exp(-k*t) + c*log(t)", &dataset(&[("t", t), ("y", y)]), &opts(&[("k", 1.0)])) {
        Err(ProblemError::Fit(FitError::ModelNotFiniteAtRow { row: 0, value, .. })) => assert_eq!(value, f64::NEG_INFINITY),
        other => panic!("{other:?}"),
    }
}

/// A square system written as a formula: residual `i` is `y_i − f_i(x)` with indicator columns
/// `e1 … en` selecting the component, every `y_i` the constant part. Fitted from the standard
/// start of Moré, Garbow and Hillstrom (1981).
fn square(formula: &str, targets: &[f64], start: &[(&str, f64)]) -> NamedFit {
    let n = targets.len();
    let mut cols: Vec<(String, Vec<f64>)> =
        (0..n).map(|i| (format!("e{}", i + 1), (0..n).map(|r| f64::from(u8::from(r == i))).collect())).collect();
    cols.push(("y".into(), targets.to_vec()));
    let data = Dataset::new(cols.iter().map(|c| c.0.clone()).collect(), cols.into_iter().map(|c| c.1).collect()).unwrap();
    fit_formula(formula, &data, &opts(start)).unwrap()
}

fn value(r: &NamedFit, name: &str) -> f64 {
    r.param(name).unwrap().value
}

/// MGH problems with as many residuals as unknowns, which sepfit used to refuse ("need
/// n > p + q"): each reaches its published minimum; statistics that need degrees of freedom
/// are reported as unavailable.
#[test]
fn square_systems_reach_their_published_minima() {
    // Rosenbrock: f = (10(x2 − x1²), 1 − x1) from (−1.2, 1); minimum 0 at (1, 1).
    let r = square("y ~ e1*10*(x1^2 - x2) + e2*x1", &[0.0, 1.0], &[("x1", -1.2), ("x2", 1.0)]);
    assert!(r.fit.rss < 1e-20, "Rosenbrock RSS {}", r.fit.rss);
    assert!((value(&r, "x1") - 1.0).abs() < 1e-8 && (value(&r, "x2") - 1.0).abs() < 1e-8);
    assert_eq!(r.fit.dof, 0);
    assert!(r.param("x1").unwrap().std_error.is_nan());
    assert!(r.warning_messages().iter().any(|w| w.contains("no residual degrees of freedom")), "{:?}", r.warning_messages());
    // Freudenstein–Roth from (0.5, −2): MGH list the minima 0 at (5, 4) and 48.9842... at
    // (11.41..., −0.8968...).
    let r = square(
        "y ~ e1*(x1 + ((5 - x2)*x2 - 2)*x2) + e2*(x1 + ((x2 + 1)*x2 - 14)*x2)",
        &[13.0, 29.0],
        &[("x1", 0.5), ("x2", -2.0)],
    );
    let at_global = r.fit.rss < 1e-18 && (value(&r, "x1") - 5.0).abs() < 1e-8 && (value(&r, "x2") - 4.0).abs() < 1e-8;
    let at_local = (r.fit.rss - 48.984_253_679_24).abs() < 1e-8 && (value(&r, "x2") + 0.896_805_253_658).abs() < 1e-7;
    assert!(at_global || at_local, "Freudenstein–Roth: RSS {} at ({}, {})", r.fit.rss, value(&r, "x1"), value(&r, "x2"));
    // Powell badly scaled from (0, 1): minimum 0 at (1.098e-5, 9.106).
    let r = square("y ~ e1*1e4*x1*x2 + e2*(exp(-x1) + exp(-x2))", &[1.0, 1.0001], &[("x1", 0.0), ("x2", 1.0)]);
    assert!(r.fit.rss < 1e-20, "Powell badly scaled RSS {}", r.fit.rss);
    assert!(rel(value(&r, "x1"), 1.098_159_329_699_76e-5) < 1e-6 && rel(value(&r, "x2"), 9.106_146_739_867_25) < 1e-6);
    // Helical valley from (−1, 0, 0): minimum 0 at (1, 0, 0). θ = atan(x2/x1)/(2π), + ½ for x1 < 0.
    let r = square(
        "y ~ e1*10*(x3 - 10*(atan(x2/x1)/(2*pi) + 0.25*(1 - sign(x1)))) + e2*10*(sqrt(x1^2 + x2^2) - 1) + e3*x3",
        &[0.0, 0.0, 0.0],
        &[("x1", -1.0), ("x2", 0.0), ("x3", 0.0)],
    );
    assert!(r.fit.rss < 1e-20, "helical valley RSS {}", r.fit.rss);
    assert!((value(&r, "x1") - 1.0).abs() < 1e-8 && value(&r, "x2").abs() < 1e-8 && value(&r, "x3").abs() < 1e-8);
    // Powell singular from (3, −1, 0, 1): minimum 0 at the origin, where the Jacobian is
    // singular (convergence is linear there, so the point is approached, not hit).
    let r = square(
        "y ~ e1*(x1 + 10*x2) + e2*sqrt(5)*(x3 - x4) + e3*(x2 - 2*x3)^2 + e4*sqrt(10)*(x1 - x4)^2",
        &[0.0; 4],
        &[("x1", 3.0), ("x2", -1.0), ("x3", 0.0), ("x4", 1.0)],
    );
    assert!(r.fit.rss < 1e-20, "Powell singular RSS {}", r.fit.rss);
    for x in ["x1", "x2", "x3", "x4"] {
        assert!(value(&r, x).abs() < 1e-4, "Powell singular {x} = {}", value(&r, x));
    }
}

/// MGH Beale from its standard start (1, 1), where the basis of the linear `x1` vanishes
/// identically: the fit used to stop there ("converged", never moving). It restarts from a
/// perturbed start, says so, and reaches the minimum 0 at (3, 0.5).
#[test]
fn a_degenerate_start_is_left() {
    let r = square(
        "y ~ e1*x1*(1 - x2) + e2*x1*(1 - x2^2) + e3*x1*(1 - x2^3)",
        &[1.5, 2.25, 2.625],
        &[("x2", 1.0)],
    );
    assert_eq!(r.fit.outcome, Outcome::Converged, "{:?}", r.warning_messages());
    assert!(r.fit.rss < 1e-20, "Beale RSS {}", r.fit.rss);
    assert!((value(&r, "x1") - 3.0).abs() < 1e-8 && (value(&r, "x2") - 0.5).abs() < 1e-8, "({}, {})", value(&r, "x1"), value(&r, "x2"));
    assert!(r.notes.iter().any(|n| n.contains("degenerate point")), "{:?}", r.notes);
}
