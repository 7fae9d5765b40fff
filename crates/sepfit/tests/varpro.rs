//! Variable projection: exact Jacobian vs central differences, synthetic fits,
//! agreement between VarPro, Kaufman and the full joint fit, error handling.

use sepfit::solvers::lm::LeastSquaresProblem;
use sepfit::{FitError, FitOptions, JacobianKind, Method, PointModel, SeparableModel, VarProProblem, fit};

/// Deterministic pseudo-random numbers (xorshift) mapped to roughly N(0,1).
fn noise(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            let mut acc = 0.0;
            for _ in 0..12 {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                acc += (s >> 11) as f64 / (1u64 << 53) as f64;
            }
            acc - 6.0
        })
        .collect()
}

fn grid(n: usize, h: f64) -> Vec<Vec<f64>> {
    (0..n).map(|i| vec![i as f64 * h]).collect()
}

/// y = a0 exp(−b0 x) + a1 exp(−b1 x) + a2
fn two_exp(x: Vec<Vec<f64>>) -> PointModel {
    PointModel::new(
        x,
        3,
        2,
        false,
        vec![(0, 0), (1, 1)],
        vec![],
        Box::new(|x, b, phi, d, _, _| {
            phi[0] = (-b[0] * x[0]).exp();
            phi[1] = (-b[1] * x[0]).exp();
            phi[2] = 1.0;
            d[0] = -x[0] * phi[0];
            d[1] = -x[0] * phi[1];
        }),
    )
}

/// y = a0 exp(−(x−b0)²/(2 b1²)) + a1 + φ0,  φ0 = b2 x²  (offset depends on b)
fn gauss_offset(x: Vec<Vec<f64>>) -> PointModel {
    PointModel::new(
        x,
        2,
        3,
        true,
        vec![(0, 0), (0, 1)],
        vec![2],
        Box::new(|x, b, phi, d, phi0, d0| {
            let u = (x[0] - b[0]) / b[1];
            let g = (-0.5 * u * u).exp();
            phi[0] = g;
            phi[1] = 1.0;
            d[0] = g * u / b[1];
            d[1] = g * u * u / b[1];
            *phi0 = b[2] * x[0] * x[0];
            d0[0] = x[0] * x[0];
        }),
    )
}

/// p = 0: y = exp(−b0 x) / (b1 + b2 x)
fn rational_exp(x: Vec<Vec<f64>>) -> PointModel {
    PointModel::new(
        x,
        0,
        3,
        true,
        vec![],
        vec![0, 1, 2],
        Box::new(|x, b, _, _, phi0, d0| {
            let den = b[1] + b[2] * x[0];
            let f = (-b[0] * x[0]).exp() / den;
            *phi0 = f;
            d0[0] = -x[0] * f;
            d0[1] = -f / den;
            d0[2] = -x[0] * f / den;
        }),
    )
}

fn check_jacobian(model: &mut dyn SeparableModel, y: &[f64], b: &[f64], sigma: Option<&[f64]>) {
    let n = y.len();
    let q = b.len();
    let mut prob = VarProProblem::new(model, y, sigma, JacobianKind::GolubPereyra).unwrap();
    let mut r0 = vec![0.0; n];
    prob.residuals(b, &mut r0).unwrap();
    let mut jac = vec![0.0; n * q];
    prob.jacobian(b, &mut jac).unwrap();
    for k in 0..q {
        let h = 1e-5 * b[k].abs().max(1e-3);
        let (mut bp, mut bm) = (b.to_vec(), b.to_vec());
        bp[k] += h;
        bm[k] -= h;
        let (mut rp, mut rm) = (vec![0.0; n], vec![0.0; n]);
        prob.residuals(&bp, &mut rp).unwrap();
        prob.residuals(&bm, &mut rm).unwrap();
        let scale = (0..n).map(|i| jac[i + k * n].abs()).fold(0.0, f64::max);
        for i in 0..n {
            let fd = (rp[i] - rm[i]) / (2.0 * h);
            let err = (fd - jac[i + k * n]).abs();
            assert!(err <= 1e-6 * scale.max(1e-8), "k={k} i={i}: analytic {} fd {fd}", jac[i + k * n]);
        }
    }
    // Kaufman differs from Golub–Pereyra (nonzero residual) but only in the second term.
    let mut prob = VarProProblem::new(model, y, sigma, JacobianKind::Kaufman).unwrap();
    let mut jk = vec![0.0; n * q];
    prob.residuals(b, &mut r0).unwrap();
    prob.jacobian(b, &mut jk).unwrap();
    assert!(jk.iter().all(|v| v.is_finite()));
}

#[test]
fn golub_pereyra_jacobian_matches_central_differences() {
    let x = grid(40, 0.1);
    let e = noise(40, 1);
    let y: Vec<f64> = x.iter().zip(&e).map(|(x, e)| 2.0 * (-1.3 * x[0]).exp() - (-0.4 * x[0]).exp() + 0.3 + 0.05 * e).collect();
    check_jacobian(&mut two_exp(x.clone()), &y, &[0.9, 0.2], None);
    let sigma: Vec<f64> = (0..40).map(|i| 0.5 + 0.02 * i as f64).collect();
    check_jacobian(&mut two_exp(x.clone()), &y, &[1.7, 0.5], Some(&sigma));

    let y2: Vec<f64> = x.iter().zip(&e).map(|(x, e)| 3.0 * (-(x[0] - 2.0f64).powi(2) / 0.5).exp() + 1.0 + 0.1 * x[0] * x[0] + 0.1 * e).collect();
    check_jacobian(&mut gauss_offset(x.clone()), &y2, &[1.8, 0.6, 0.05], None);

    let y3: Vec<f64> = x.iter().zip(&e).map(|(x, e)| (-0.2 * x[0]).exp() / (1.0 + 0.5 * x[0]) + 0.01 * e).collect();
    check_jacobian(&mut rational_exp(x), &y3, &[0.3, 0.9, 0.4], None);
}

/// The compact problem (what `fit` runs) against the expanded one (checked against central
/// differences above): same `‖r‖`, `Jᵀr` and `JᵀJ`, for both Jacobians, with and without
/// weights, with and without linear parameters, and with a rank-deficient basis.
fn check_compact(model: &mut dyn SeparableModel, y: &[f64], b: &[f64], sigma: Option<&[f64]>) {
    let n = y.len();
    let q = b.len();
    for kind in [JacobianKind::GolubPereyra, JacobianKind::Kaufman] {
        let mut full = VarProProblem::new(&mut *model, y, sigma, kind).unwrap();
        let mut r = vec![0.0; n];
        full.residuals(b, &mut r).unwrap();
        let mut j = vec![0.0; n * q];
        full.jacobian(b, &mut j).unwrap();
        let mut compact = VarProProblem::compact(&mut *model, y, sigma, kind).unwrap();
        let nr = compact.n_residuals();
        assert!(nr < n, "compact form has {nr} rows for n = {n}");
        let mut rc = vec![0.0; nr];
        compact.residuals(b, &mut rc).unwrap();
        let mut jc = vec![0.0; nr * q];
        compact.jacobian(b, &mut jc).unwrap();
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let (rn, rcn) = (norm(&r), norm(&rc));
        assert!((rn - rcn).abs() <= 1e-12 * rn, "{kind:?}: ‖r‖ {rn} vs compact {rcn}");
        let jn = norm(&j);
        for k in 0..q {
            let g: f64 = (0..n).map(|i| j[k * n + i] * r[i]).sum();
            let gc: f64 = (0..nr).map(|i| jc[k * nr + i] * rc[i]).sum();
            assert!((g - gc).abs() <= 1e-11 * jn * rn, "{kind:?}: (Jᵀr)_{k} {g} vs compact {gc}");
            for l in 0..q {
                let h: f64 = (0..n).map(|i| j[k * n + i] * j[l * n + i]).sum();
                let hc: f64 = (0..nr).map(|i| jc[k * nr + i] * jc[l * nr + i]).sum();
                assert!((h - hc).abs() <= 1e-11 * jn * jn, "{kind:?}: (JᵀJ)_{k}{l} {h} vs compact {hc}");
            }
        }
    }
}

#[test]
fn compact_problem_has_the_same_normal_quantities_as_the_expanded_one() {
    let x = grid(40, 0.1);
    let e = noise(40, 3);
    let y: Vec<f64> = x.iter().zip(&e).map(|(x, e)| 2.0 * (-1.3 * x[0]).exp() - (-0.4 * x[0]).exp() + 0.3 + 0.05 * e).collect();
    check_compact(&mut two_exp(x.clone()), &y, &[0.9, 0.2], None);
    let sigma: Vec<f64> = (0..40).map(|i| 0.5 + 0.02 * i as f64).collect();
    check_compact(&mut two_exp(x.clone()), &y, &[1.7, 0.5], Some(&sigma));
    // Equal rates: the basis has rank 2 of 3.
    check_compact(&mut two_exp(x.clone()), &y, &[0.7, 0.7], None);
    let y2: Vec<f64> = x.iter().zip(&e).map(|(x, e)| 3.0 * (-(x[0] - 2.0f64).powi(2) / 0.5).exp() + 1.0 + 0.1 * x[0] * x[0] + 0.1 * e).collect();
    check_compact(&mut gauss_offset(x.clone()), &y2, &[1.8, 0.6, 0.05], Some(&sigma));
    let y3: Vec<f64> = x.iter().zip(&e).map(|(x, e)| (-0.2 * x[0]).exp() / (1.0 + 0.5 * x[0]) + 0.01 * e).collect();
    check_compact(&mut rational_exp(x), &y3, &[0.3, 0.9, 0.4], None);
}

#[test]
fn noise_free_data_recovered_exactly() {
    let x = grid(50, 0.1);
    let y: Vec<f64> = x.iter().map(|x| 2.0 * (-1.3 * x[0]).exp() - (-0.4 * x[0]).exp() + 0.3).collect();
    for method in [Method::VarPro, Method::Kaufman] {
        let opts = FitOptions::with_start(&[2.0, 0.1]).with_method(method);
        let f = fit(&mut two_exp(x.clone()), &y, &opts).unwrap();
        assert!(f.converged, "{:?}", f.termination);
        let truth_b = [1.3, 0.4];
        let truth_a = [2.0, -1.0, 0.3];
        for (b, t) in f.nonlinear.iter().zip(truth_b) {
            assert!((b - t).abs() < 1e-10, "{method:?} {:?}", f.nonlinear);
        }
        for (a, t) in f.linear.iter().zip(truth_a) {
            assert!((a - t).abs() < 1e-10, "{method:?} {:?}", f.linear);
        }
        assert!(f.rss < 1e-25);
    }
    // Gaussian + offset and p = 0 model.
    let y2: Vec<f64> = x.iter().map(|x| 3.0 * (-(x[0] - 2.0f64).powi(2) / 0.5).exp() + 1.0 + 0.1 * x[0] * x[0]).collect();
    let f = fit(&mut gauss_offset(x.clone()), &y2, &FitOptions::with_start(&[2.3, 0.7, 0.0])).unwrap();
    assert!((f.nonlinear[0] - 2.0).abs() < 1e-10 && (f.nonlinear[1] - 0.5).abs() < 1e-10 && (f.nonlinear[2] - 0.1).abs() < 1e-10, "{:?}", f.nonlinear);
    assert!((f.linear[0] - 3.0).abs() < 1e-10 && (f.linear[1] - 1.0).abs() < 1e-10);
    let y3: Vec<f64> = x.iter().map(|x| (-0.2 * x[0]).exp() / (1.0 + 0.5 * x[0])).collect();
    let f = fit(&mut rational_exp(x), &y3, &FitOptions::with_start(&[0.5, 2.0, 1.0])).unwrap();
    for (v, t) in f.nonlinear.iter().zip([0.2, 1.0, 0.5]) {
        assert!((v - t).abs() < 1e-10, "{:?}", f.nonlinear);
    }
}

#[test]
fn varpro_kaufman_and_full_agree_on_noisy_data() {
    let x = grid(60, 0.1);
    let e = noise(60, 7);
    let sigma: Vec<f64> = (0..60).map(|i| 0.02 + 0.001 * i as f64).collect();
    let y: Vec<f64> =
        x.iter().zip(&e).zip(&sigma).map(|((x, e), s)| 2.0 * (-1.3 * x[0]).exp() - (-0.4 * x[0]).exp() + 0.3 + s * e).collect();
    let base = FitOptions::with_start(&[2.0, 0.1]).with_sigma(sigma);
    let gp = fit(&mut two_exp(x.clone()), &y, &base).unwrap();
    let ka = fit(&mut two_exp(x.clone()), &y, &base.clone().with_method(Method::Kaufman)).unwrap();
    let full = fit(
        &mut two_exp(x.clone()),
        &y,
        &base.clone().with_method(Method::Full).with_linear_start(vec![1.0, -0.5, 0.0]),
    )
    .unwrap();
    for f in [&gp, &ka, &full] {
        assert!(f.converged, "{:?} {:?}", f.method, f.termination);
        assert_eq!(f.dof, 55);
    }
    for (u, v) in gp.estimates.iter().zip(&full.estimates) {
        // The joint fit stops ~5e-9 (relative) short of the VarPro optimum (its ftol test fires first).
        assert!((u - v).abs() <= 1e-7 * u.abs().max(1.0), "{:?} vs {:?}", gp.estimates, full.estimates);
    }
    for (u, v) in gp.estimates.iter().zip(&ka.estimates) {
        assert!((u - v).abs() <= 1e-8 * u.abs().max(1.0));
    }
    for (u, v) in gp.stats.std_errors.iter().zip(&full.stats.std_errors) {
        assert!((u - v).abs() <= 1e-6 * u.abs(), "{u} {v}");
    }
    assert!((gp.rss - full.rss).abs() <= 1e-12 * gp.rss);
    // Statistics are self-consistent.
    assert!((gp.residual_std_error - (gp.rss / 55.0).sqrt()).abs() < 1e-15);
    assert!(gp.r_squared > 0.9 && gp.r_squared < 1.0);
    let corr = gp.stats.correlation.as_ref().unwrap();
    for i in 0..5 {
        assert!((corr[(i, i)] - 1.0).abs() < 1e-12);
    }
    assert!(gp.stats.p_values.iter().all(|p| (0.0..=1.0).contains(p)));
    // VarPro needs fewer iterations than the joint fit from a poor linear start.
    assert!(gp.log.len() == gp.path.len());
}

#[test]
fn linear_problem_needs_no_iterations() {
    // q = 0: y = a0 + a1 x
    let x = grid(10, 1.0);
    let y: Vec<f64> = x.iter().map(|x| 1.0 + 2.0 * x[0] + if (x[0] as usize).is_multiple_of(2) { 0.1 } else { -0.1 }).collect();
    let mut m = PointModel::new(x, 2, 0, false, vec![], vec![], Box::new(|x, _, phi, _, _, _| {
        phi[0] = 1.0;
        phi[1] = x[0];
    }));
    let f = fit(&mut m, &y, &FitOptions::default()).unwrap();
    assert_eq!(f.iterations, 0);
    assert!(f.converged);
    assert!((f.linear[1] - 2.0).abs() < 0.05);
    assert!(f.stats.std_errors.iter().all(|s| s.is_finite() && *s > 0.0));
}

#[test]
fn rank_deficient_basis_is_reported_not_fatal() {
    // Two identical basis functions: a0 exp(−b x) + a1 exp(−b x)
    let x = grid(20, 0.2);
    let y: Vec<f64> = x.iter().map(|x| 2.0 * (-0.5 * x[0]).exp()).collect();
    let mut m = PointModel::new(x, 2, 1, false, vec![(0, 0), (1, 0)], vec![], Box::new(|x, b, phi, d, _, _| {
        let e = (-b[0] * x[0]).exp();
        phi[0] = e;
        phi[1] = e;
        d[0] = -x[0] * e;
        d[1] = -x[0] * e;
    }));
    let f = fit(&mut m, &y, &FitOptions::with_start(&[1.0])).unwrap();
    assert!((f.nonlinear[0] - 0.5).abs() < 1e-10);
    assert!((f.linear[0] + f.linear[1] - 2.0).abs() < 1e-10);
    assert_eq!(f.basis_rank, 1);
    assert!(f.warnings.iter().any(|w| matches!(w, sepfit::FitWarning::RankDeficientBasis { .. })));
    assert!(f.stats.std_errors.iter().all(|s| s.is_nan()));
}

#[test]
fn bounds_are_respected_and_reported() {
    let x = grid(50, 0.1);
    let y: Vec<f64> = x.iter().map(|x| 2.0 * (-1.3 * x[0]).exp() - (-0.4 * x[0]).exp() + 0.3).collect();
    let opts = FitOptions::with_start(&[0.8, 0.1]).with_bounds(vec![0.0, 0.0], vec![1.0, f64::INFINITY]);
    let f = fit(&mut two_exp(x), &y, &opts).unwrap();
    assert!(f.nonlinear[0] <= 1.0);
    assert!(f.at_upper[0], "{:?}", f.nonlinear);
    assert!(f.converged, "{:?}", f.termination);
    assert!(f.path.iter().all(|b| b[0] <= 1.0 && b[0] >= 0.0 && b[1] >= 0.0));
}

#[test]
fn bad_input_gives_actionable_errors() {
    let x = grid(10, 0.1);
    let y: Vec<f64> = x.iter().map(|x| (-x[0]).exp()).collect();
    let mk = || two_exp(x.clone());
    let mut bad = y.clone();
    bad[3] = f64::NAN;
    assert!(matches!(fit(&mut mk(), &bad, &FitOptions::with_start(&[1.0, 2.0])), Err(FitError::NonFiniteData { index: 3, .. })));
    assert!(matches!(fit(&mut mk(), &y[..5], &FitOptions::with_start(&[1.0, 2.0])), Err(FitError::DataLength { .. })));
    assert!(matches!(fit(&mut mk(), &y, &FitOptions::with_start(&[1.0])), Err(FitError::Options(_))));
    assert!(matches!(fit(&mut mk(), &y, &FitOptions::with_start(&[1.0, f64::INFINITY])), Err(FitError::Options(_))));
    let s = FitOptions::with_start(&[1.0, 2.0]).with_sigma(vec![0.0; 10]);
    assert!(matches!(fit(&mut mk(), &y, &s), Err(FitError::BadSigma { index: 0, .. })));
    // Fewer observations than parameters cannot be fitted; as many is a square system (solved,
    // with no degrees of freedom left for standard errors).
    let small = grid(4, 0.1);
    assert!(matches!(fit(&mut two_exp(small), &y[..4], &FitOptions::with_start(&[1.0, 2.0])), Err(FitError::TooFewObservations { n: 4, params: 5 })));
    // Model that is non-finite at the start → Err; non-finite away from start → step rejected.
    let mut m = PointModel::new(x.clone(), 1, 1, false, vec![(0, 0)], vec![], Box::new(|x, b, phi, d, _, _| {
        phi[0] = (x[0] + b[0]).ln();
        d[0] = 1.0 / (x[0] + b[0]);
    }));
    let y2: Vec<f64> = x.iter().map(|x| 2.0 * (x[0] + 0.05).ln()).collect();
    // ln(x − 1) is NaN on the first rows: the error names the first one.
    assert!(matches!(fit(&mut m, &y2, &FitOptions::with_start(&[-1.0])), Err(FitError::ModelNotFiniteAtRow { row: 0, .. })));
    let f = fit(&mut m, &y2, &FitOptions::with_start(&[0.3])).unwrap();
    assert!((f.nonlinear[0] - 0.05).abs() < 1e-8, "{:?} {:?}", f.nonlinear, f.termination);
}
