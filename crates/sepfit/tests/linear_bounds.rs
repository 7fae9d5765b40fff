//! Bounded linear coefficients inside variable projection (issue 15, item 4): the optimum
//! against an independent reference (scipy's nnls / bvls inside a brute-force outer search,
//! `scripts/nnls_reference.py`, stored under `data/reference/nnls/`), the Jacobian of the
//! reduced problem against central differences, variable projection against the full
//! problem, and unchanged results where the bounds are inactive.

use sepfit::named::Bound;
use sepfit::{Dataset, FitOptions, FitWarning, JacobianKind, Method, NamedOptions, PointModel, VarProProblem, fit, fit_formula};
use serde_json::Value;

mod support;
use support::reference::{read_dataset, reference_dir, rel};

fn problems() -> Vec<Value> {
    support::reference::problems("nnls")
}

fn read_csv(name: &str) -> Dataset {
    read_dataset(&reference_dir("nnls").join(name))
}

fn named_options(p: &Value, method: Method) -> NamedOptions {
    let bound = |v: &Value, inf: f64| v.as_f64().unwrap_or(inf);
    NamedOptions {
        start: p["start"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_f64().unwrap())).collect(),
        bounds: p["linear_bounds"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), bound(&v[0], f64::NEG_INFINITY), bound(&v[1], f64::INFINITY)))
            .collect(),
        method,
        ..Default::default()
    }
}

/// Every reference problem: the same optimum as the brute-force reference. The reference's
/// Nelder–Mead polish stops at about 1e-13 in `b` (its `xatol`), so 1e-6 relative is far
/// above the reference's own error; a coefficient on its bound must be exactly on it.
#[test]
fn optimum_matches_bruteforce_reference() {
    let probs = problems();
    assert!(probs.len() >= 3);
    for p in &probs {
        let name = p["name"].as_str().unwrap();
        let data = read_csv(p["data"].as_str().unwrap());
        let r = fit_formula(p["formula"].as_str().unwrap(), &data, &named_options(p, Method::VarPro)).unwrap();
        assert!(r.fit.termination.is_converged(), "{name}: {:?}", r.fit.termination);
        let rss_ref = p["rss"].as_f64().unwrap();
        assert!(r.fit.rss <= rss_ref * (1.0 + 1e-9), "{name}: rss {} > reference {rss_ref}", r.fit.rss);
        // The unconstrained solution at the reference b is infeasible (so the bound matters).
        let unconstrained = p["linear_unconstrained_at_reference_b"].as_object().unwrap();
        let lb = p["linear_bounds"].as_object().unwrap();
        assert!(unconstrained.iter().any(|(k, v)| {
            let v = v.as_f64().unwrap();
            lb[k][0].as_f64().is_some_and(|l| v < l) || lb[k][1].as_f64().is_some_and(|u| v > u)
        }));
        for (k, v) in p["nonlinear"].as_object().unwrap() {
            let got = r.param(k).unwrap().value;
            let want = v.as_f64().unwrap();
            assert!(rel(got, want) < 1e-6, "{name}: {k} = {got}, reference {want}");
        }
        for (k, v) in p["linear"].as_object().unwrap() {
            let est = r.param(k).unwrap();
            let want = v.as_f64().unwrap();
            let at = p["linear_at"][k].as_str().unwrap();
            match at {
                "lower" => {
                    assert_eq!(est.bound, Bound::Lower, "{name}: {k}");
                    assert_eq!(est.value, want, "{name}: {k} on its bound");
                }
                "upper" => {
                    assert_eq!(est.bound, Bound::Upper, "{name}: {k}");
                    assert_eq!(est.value, want, "{name}: {k} on its bound");
                }
                _ => {
                    assert_eq!(est.bound, Bound::Free, "{name}: {k}");
                    assert!(rel(est.value, want) < 1e-6, "{name}: {k} = {}, reference {want}", est.value);
                }
            }
            assert!(est.bounds.is_some(), "{name}: {k} reports its bounds");
            // Standard errors as for bounded nonlinear parameters: computed, ignoring the bound.
            assert!(est.std_error.is_finite() && est.std_error > 0.0, "{name}: {k} se {}", est.std_error);
        }
        // A warning names each coefficient on a bound.
        let msgs = r.warning_messages();
        for (k, v) in p["linear_at"].as_object().unwrap() {
            let on = v.as_str().unwrap() != "free";
            assert_eq!(msgs.iter().any(|m| m.starts_with(&format!("`{k}` ended at its"))), on, "{name}: {k}: {msgs:?}");
        }
    }
}

/// `--method full` (the solver's bounds on all parameters) and Kaufman's Jacobian reach the
/// same optimum as variable projection.
#[test]
fn varpro_full_and_kaufman_agree() {
    for p in &problems() {
        let name = p["name"].as_str().unwrap();
        let data = read_csv(p["data"].as_str().unwrap());
        let formula = p["formula"].as_str().unwrap();
        let vp = fit_formula(formula, &data, &named_options(p, Method::VarPro)).unwrap();
        for method in [Method::Full, Method::Kaufman] {
            let other = fit_formula(formula, &data, &named_options(p, method)).unwrap();
            assert!(other.fit.termination.is_converged(), "{name} {method:?}");
            assert!(rel(other.fit.rss, vp.fit.rss) < 1e-9, "{name} {method:?}: rss {} vs {}", other.fit.rss, vp.fit.rss);
            for est in &vp.params {
                let o = other.param(&est.name).unwrap();
                assert_eq!(o.bound, est.bound, "{name} {method:?}: {}", est.name);
                let tol = if est.bound == Bound::Free { 1e-5 * est.std_error.max(1e-12) } else { 0.0 };
                assert!((o.value - est.value).abs() <= tol, "{name} {method:?}: {} = {} vs {}", est.name, o.value, est.value);
            }
        }
    }
}

/// `y = a₀ e^{−b₀ t} + a₁ e^{−b₁ t} + a₂` with `dφ/db`: a PointModel for the Jacobian check.
fn biexp_model(t: &[f64]) -> PointModel {
    PointModel::builder(t.iter().map(|&v| vec![v]).collect(), 3, 2)
        .derivative(0, 0)
        .derivative(1, 1)
        .eval(|x, b, phi, dphi, _, _| {
            let (e0, e1) = ((-b[0] * x[0]).exp(), (-b[1] * x[0]).exp());
            (phi[0], phi[1], phi[2]) = (e0, e1, 1.0);
            (dphi[0], dphi[1]) = (-x[0] * e0, -x[0] * e1);
        })
        .build()
        .unwrap()
}

/// The Jacobian of the reduced residual with coefficients on a bound (lower bound 0 for the
/// constant, and a nonzero upper bound for the first amplitude, so that the bound column
/// enters the offset) against central differences, where the active set does not change.
#[test]
fn jacobian_matches_central_differences_on_the_active_set() {
    let t: Vec<f64> = (0..60).map(|i| i as f64 * 0.1).collect();
    let y: Vec<f64> = t.iter().enumerate().map(|(i, t)| 3.0 * (-1.3 * t).exp() + 1.0 * (-0.3 * t).exp() - 0.2 + 0.01 * ((i * 7 % 11) as f64 - 5.0)).collect();
    let sigma: Vec<f64> = (0..t.len()).map(|i| 0.5 + 0.01 * i as f64).collect();
    let lower = [0.0, 0.0, 0.0];
    let upper = [2.5, f64::INFINITY, f64::INFINITY];
    for kind in [JacobianKind::GolubPereyra, JacobianKind::Kaufman] {
        let mut model = biexp_model(&t);
        let mut prob = VarProProblem::new(&mut model, &y, Some(&sigma), kind).unwrap();
        prob.set_linear_bounds(&lower, &upper).unwrap();
        let b = [1.1, 0.35];
        use sepfit::LeastSquaresProblem;
        let n = t.len();
        let mut r0 = vec![0.0; n];
        prob.residuals(&b, &mut r0).unwrap();
        let state = prob.linear_state().to_vec();
        let a = prob.linear_params().to_vec();
        // Both bounds active: a₀ at 2.5, a₂ at 0.
        assert_eq!(a[0], 2.5, "{a:?}");
        assert_eq!(a[2], 0.0, "{a:?}");
        assert!(a[1] > 0.0 && a[1] < f64::INFINITY);
        let mut jac = vec![0.0; n * 2];
        prob.jacobian(&b, &mut jac).unwrap();
        let mut rp = vec![0.0; n];
        let mut rm = vec![0.0; n];
        for k in 0..2 {
            let h = 1e-6 * b[k];
            let mut bp = b;
            bp[k] += h;
            prob.residuals(&bp, &mut rp).unwrap();
            assert_eq!(prob.linear_state(), &state[..], "active set changed");
            let mut bm = b;
            bm[k] -= h;
            prob.residuals(&bm, &mut rm).unwrap();
            assert_eq!(prob.linear_state(), &state[..], "active set changed");
            let scale = jac[k * n..(k + 1) * n].iter().map(|v| v.abs()).fold(0.0, f64::max);
            let mut max_err = 0.0f64;
            let mut max_fd_kaufman_diff = 0.0f64;
            for i in 0..n {
                let fd = (rp[i] - rm[i]) / (2.0 * h);
                max_err = max_err.max((fd - jac[k * n + i]).abs());
                max_fd_kaufman_diff = max_fd_kaufman_diff.max(fd.abs());
            }
            match kind {
                JacobianKind::GolubPereyra => assert!(max_err < 1e-7 * scale, "k={k}: {max_err} vs scale {scale}"),
                // Kaufman drops a term: an approximation, not the derivative.
                JacobianKind::Kaufman => assert!(max_err < scale, "k={k}: {max_err} vs scale {scale}"),
            }
        }
        // The residual is the one of the bounded coefficients: W(y − Φa).
        prob.residuals(&b, &mut r0).unwrap();
        let a = prob.linear_params().to_vec();
        for i in 0..n {
            let f = a[0] * (-b[0] * t[i]).exp() + a[1] * (-b[1] * t[i]).exp() + a[2];
            assert!((r0[i] - (y[i] - f) / sigma[i]).abs() < 1e-12, "row {i}");
        }
    }
}

/// The bounded coefficients are optimal at fixed `b`: no feasible perturbation of `a` lowers
/// the RSS (KKT), checked on a grid of directions.
#[test]
fn bounded_coefficients_are_optimal_at_fixed_b() {
    let t: Vec<f64> = (0..40).map(|i| i as f64 * 0.15).collect();
    let y: Vec<f64> = t.iter().map(|t| 2.0 * (-0.9 * t).exp() - 0.5 * (-0.2 * t).exp() + 0.1).collect();
    let mut model = biexp_model(&t);
    let mut prob = VarProProblem::new(&mut model, &y, None, JacobianKind::GolubPereyra).unwrap();
    prob.set_linear_bounds(&[0.0; 3], &[f64::INFINITY; 3]).unwrap();
    let b = [0.9, 0.2];
    prob.project(&b).unwrap();
    let a = prob.linear_params().to_vec();
    assert_eq!(a[1], 0.0, "the negative amplitude is on its bound: {a:?}");
    let rss = |a: &[f64]| -> f64 {
        t.iter().zip(&y).map(|(t, y)| (y - a[0] * (-b[0] * t).exp() - a[1] * (-b[1] * t).exp() - a[2]).powi(2)).sum()
    };
    assert!((prob.rss() - rss(&a)).abs() < 1e-12 * rss(&a).max(1e-30));
    for d in [[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [0.3, 1.0, -0.2]] {
        let moved: Vec<f64> = a.iter().zip(&d).map(|(a, d)| a + 1e-4 * d).collect();
        if moved.iter().all(|v| *v >= 0.0) {
            assert!(rss(&moved) >= prob.rss() - 1e-14, "direction {d:?}");
        }
    }
}

/// Bounds that are never active change nothing, bit for bit; infinite bounds are no bounds.
/// Bounds active only at some trial points of the iteration lead to the same optimum.
#[test]
fn inactive_bounds_give_identical_results() {
    let t: Vec<f64> = (0..50).map(|i| i as f64 * 0.1).collect();
    let y: Vec<f64> = t.iter().enumerate().map(|(i, t)| 3.0 * (-1.5 * t).exp() + 1.0 * (-0.4 * t).exp() + 0.2 + 1e-3 * ((i % 5) as f64 - 2.0)).collect();
    let base = FitOptions::with_start(&[1.0, 0.3]);
    let plain = fit(&mut biexp_model(&t), &y, &base).unwrap();
    let nonneg = fit(&mut biexp_model(&t), &y, &base.clone().with_linear_bounds(vec![0.0; 3], vec![f64::INFINITY; 3])).unwrap();
    assert!(nonneg.converged && (nonneg.rss - plain.rss).abs() <= 1e-12 * plain.rss);
    for (u, v) in nonneg.estimates.iter().zip(&plain.estimates) {
        assert!((u - v).abs() <= 1e-8 * v.abs(), "{u} vs {v}");
    }
    for (lo, hi) in [(vec![f64::NEG_INFINITY; 3], vec![f64::INFINITY; 3]), (vec![-100.0; 3], vec![100.0; 3])] {
        let b = fit(&mut biexp_model(&t), &y, &base.clone().with_linear_bounds(lo, hi)).unwrap();
        assert_eq!(b.estimates.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), plain.estimates.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        assert_eq!(b.rss.to_bits(), plain.rss.to_bits());
        assert_eq!(b.stats.std_errors.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), plain.stats.std_errors.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        assert_eq!(b.iterations, plain.iterations);
        assert!(!b.linear_at_lower.iter().chain(&b.linear_at_upper).any(|v| *v));
        assert!(!b.warnings.iter().any(|w| matches!(w, FitWarning::LinearAtBound { .. })));
    }
}

/// Bounds of the wrong length or empty are errors naming the option.
#[test]
fn bad_linear_bounds_are_errors() {
    let t: Vec<f64> = (0..20).map(|i| i as f64 * 0.1).collect();
    let y: Vec<f64> = t.iter().map(|t| (-t).exp()).collect();
    let e = fit(&mut biexp_model(&t), &y, &FitOptions::with_start(&[1.0, 0.3]).with_linear_bounds(vec![0.0; 2], vec![1.0; 2])).unwrap_err();
    assert!(e.to_string().contains("linear_lower"), "{e}");
    let e = fit(&mut biexp_model(&t), &y, &FitOptions::with_start(&[1.0, 0.3]).with_linear_bounds(vec![0.0, 2.0, 0.0], vec![1.0; 3])).unwrap_err();
    assert!(e.to_string().contains("linear parameter 1"), "{e}");
}

/// A workspace reused after a bounded fit carries no bound state into an unbounded one.
#[test]
fn reused_workspace_forgets_bounds() {
    let t: Vec<f64> = (0..40).map(|i| i as f64 * 0.15).collect();
    let y: Vec<f64> = t.iter().map(|t| 2.0 * (-0.9 * t).exp() + 0.7 * (-0.2 * t).exp() - 0.3).collect();
    let mut ws = sepfit::FitWorkspace::default();
    let base = FitOptions::with_start(&[1.0, 0.3]).with_detail(sepfit::Detail::Lean);
    let bounded = base.clone().with_linear_bounds(vec![0.0; 3], vec![f64::INFINITY; 3]);
    let f = sepfit::fit_with(&mut biexp_model(&t), &y, &bounded, &mut ws).unwrap();
    assert!(f.linear_at_lower[2] && f.linear[2] == 0.0, "{:?}", f.linear);
    let g = sepfit::fit_with(&mut biexp_model(&t), &y, &base, &mut ws).unwrap();
    assert!(g.linear[2] < 0.0 && !g.linear_at_lower.iter().any(|v| *v), "{:?}", g.linear);
    let fresh = fit(&mut biexp_model(&t), &y, &base).unwrap();
    assert_eq!(g.linear, fresh.linear);
}

/// `BatchFitter` with a bound on a linear parameter: every curve as the single fit, the
/// warning names the coefficient on its bound.
#[test]
fn batch_fits_bounded_linear_parameters() {
    let p = problems().into_iter().find(|p| p["name"] == "exp_drift").unwrap();
    let data = read_csv(p["data"].as_str().unwrap());
    let formula = p["formula"].as_str().unwrap();
    let opts = named_options(&p, Method::VarPro);
    let single = fit_formula(formula, &data, &opts).unwrap();
    let fitter = sepfit::batch::BatchFitter::new(formula, data.names(), &opts).unwrap();
    let curves = vec![data.columns().to_vec(); 3];
    let results = fitter.fit_all(&curves);
    let names = fitter.param_names().to_vec();
    for r in &results {
        assert!(r.converged, "{:?}", r.error);
        for (name, v) in names.iter().zip(&r.values) {
            let want = single.param(name).unwrap().value;
            assert!((v - want).abs() <= 1e-6 * want.abs().max(1e-3), "{name}: {v} vs {want}");
        }
        assert_eq!(r.values[names.iter().position(|n| n == "d").unwrap()], 0.0);
        assert!(fitter.warning_messages(r).contains("`d` ended at its lower bound"), "{}", fitter.warning_messages(r));
    }
}
