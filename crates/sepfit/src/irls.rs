//! Robust losses and Poisson maximum likelihood by iteratively reweighted least squares
//! around the weighted fit ([`crate::fit_with`], variable projection kept).
//!
//! **Robust** ([`Loss::SoftL1`], [`Loss::Huber`], [`Loss::Cauchy`], [`Loss::Arctan`]): with
//! the user's σᵢ (1 without), `rᵢ = (yᵢ − fᵢ)/σᵢ` and `zᵢ = (rᵢ/F)²`, every iteration fits by
//! weighted least squares with `σᵢ,eff = σᵢ/√ρ′(zᵢ)`, `zᵢ` from the previous iterate (the
//! first iterate is the least-squares fit). At the fixed point `Σ ρ′(zᵢ) rᵢ ∂rᵢ/∂θ = 0`, the
//! stationarity equations of `C = ½F²Σρ(zᵢ)`, so the optimum is scipy's
//! `least_squares(loss=…, f_scale=F)`'s. The covariance is what scipy's `curve_fit` reports
//! for that loss: with the Triggs-scaled Jacobian `J_s = diag(√max(ρ′ + 2ρ″z, ε)) J`
//! (`J = ∂r/∂θ`, scipy's `scale_for_robust_loss_function`),
//! `Cov = (J_sᵀJ_s)⁻¹ · 2C/(n − k)`.
//!
//! **Poisson** ([`Loss::Poisson`]): counts `yᵢ ≥ 0`, mean `μᵢ = fᵢ`. Reweighting with
//! `σᵢ² = μᵢ` of the previous iterate has the maximum-likelihood equations
//! `Σ (yᵢ − μᵢ)/μᵢ ∂μᵢ/∂θ = 0` as its fixed point but need not reach it: on sparse counts the
//! tiny means of an empty tail get huge weights and the iterates can run off (to a rate of 0
//! with a worse deviance, reported as converged by a plain fixed-point test). So the optimum
//! is found by damped Fisher scoring on the deviance ([`crate::poisson`]), which only descends,
//! from two starts — the least-squares fit with `σᵢ² = max(yᵢ, 1)`, and the start given with
//! its weighted projection — keeping the lower converged end; one weighted fit with `σᵢ² = μᵢ`
//! there then gives the fit's pieces and must land on the same deviance. The covariance is the
//! inverse Fisher information `(JᵀWJ)⁻¹`, `J = ∂μ/∂θ`, `W = diag(1/μ)`, not rescaled. A mean
//! `μᵢ ≤ 0` (or one creeping to 0 at a zero count) ends the fit not converged, naming the row.
//!
//! For the robust losses each inner fit starts from the previous nonlinear parameters; the
//! iteration stops when every parameter of `θ = (b, a)` changes by less than
//! `max(1e-10, xtol)` relative, or after [`MAX_IRLS_ITERATIONS`] (not converged,
//! [`FitWarning::IrlsNotConverged`]).

use crate::error::FitError;
use crate::fit::{Detail, Fit, FitOptions, FitWarning, FitWorkspace, Method, Outcome, fit_with};
use crate::loss::{Loss, poisson_deviance, robust_cost};
use crate::model::{ModelEval, SeparableModel};
use crate::problems::data::check_data;
use crate::problems::full::weighted_full_jacobian;
use crate::stats;
use faer::Mat;

/// Iteration limit of the reweighting.
pub const MAX_IRLS_ITERATIONS: usize = 200;

/// The linear parameters at the nonlinear `b` by the (bounded) weighted projection of
/// `options` (`None` where it cannot be computed).
fn projected_linear<M: SeparableModel + ?Sized>(model: &mut M, y: &[f64], options: &FitOptions, b: &[f64]) -> Option<Vec<f64>> {
    let mut prob = crate::VarProProblem::compact_for(model, y, options).ok()?;
    prob.project(b).ok()?;
    let a = prob.linear_params().to_vec();
    a.iter().all(|v| v.is_finite()).then_some(a)
}

/// The box `lower ≤ θ ≤ upper` of `θ = (b, a)` from the options' bounds (infinite where none).
fn parameter_box(options: &FitOptions, q: usize, p: usize) -> (Vec<f64>, Vec<f64>) {
    let side = |b: &Option<Vec<f64>>, len: usize, none: f64| -> Vec<f64> {
        (0..len).map(|k| b.as_ref().and_then(|v| v.get(k).copied()).unwrap_or(none)).collect()
    };
    let inf = f64::INFINITY;
    let mut lower = side(&options.lm.lower, q, -inf);
    lower.extend(side(&options.linear_lower, p, -inf));
    let mut upper = side(&options.lm.upper, q, inf);
    upper.extend(side(&options.linear_upper, p, inf));
    (lower, upper)
}

/// [`fit_with`] for `options.loss` other than [`Loss::Linear`] (see the module docs).
pub(crate) fn fit_irls<M: SeparableModel + ?Sized>(
    model: &mut M,
    y: &[f64],
    options: &FitOptions,
    ws: &mut FitWorkspace,
) -> Result<Fit, FitError> {
    let loss = options.loss;
    let fs = options.f_scale;
    if loss.is_robust() && !(fs.is_finite() && fs > 0.0) {
        return Err(FitError::BadFScale { value: fs });
    }
    if loss == Loss::Poisson && options.sigma.is_some() {
        return Err(FitError::SigmaWithPoisson);
    }
    // Data checks (lengths, finiteness, σ) and the user's weights 1/σᵢ.
    let w_user = check_data(&*model, y, options.sigma.as_deref())?;
    let n = y.len();
    let sigma_user: Vec<f64> = w_user.iter().map(|w| 1.0 / w).collect();
    if loss == Loss::Poisson
        && let Some(row) = y.iter().position(|v| *v < 0.0)
    {
        return Err(FitError::NegativeCount { row, value: y[row] });
    }
    let mut inner = FitOptions { loss: Loss::Linear, detail: Detail::Full, ..options.clone() };
    inner.lm.record = false;
    inner.sigma = Some(match loss {
        Loss::Poisson => y.iter().map(|v| v.max(1.0).sqrt()).collect(),
        _ => sigma_user.clone(),
    });
    let tol = options.lm.xtol.max(1e-10);
    let (mut iterations, mut residual_evaluations, mut jacobian_evaluations, mut polish_steps) = (0, 0, 0, 0);
    let mut previous: Option<Vec<f64>> = None;
    let mut initial_rss = f64::NAN;
    let mut irls = 0;
    let mut stop_warning: Option<FitWarning> = None;
    let mut f = if loss == Loss::Poisson {
        // Least squares with σᵢ² = max(yᵢ, 1) gives a start, Fisher scoring the optimum.
        let f0 = fit_with(model, y, &inner, ws)?;
        (iterations, residual_evaluations, jacobian_evaluations, polish_steps) = (f0.iterations, f0.residual_evaluations, f0.jacobian_evaluations, f0.polish_steps);
        initial_rss = f0.initial_rss;
        let (q, p) = (f0.nonlinear.len(), f0.linear.len());
        let (lower, upper) = parameter_box(options, q, p);
        // Two starts: the least-squares fit, and, where that fit or the scoring from it does not
        // end at a clearly determined optimum, the start given with its projection
        // (least squares on sparse counts can end far from the likelihood's optimum, at a rate
        // of 0). The scoring from each only descends; the lower converged end wins.
        let mut starts: Vec<Vec<f64>> = vec![f0.nonlinear.iter().chain(&f0.linear).copied().collect()];
        if let Some(a0) = projected_linear(model, y, &inner, &options.start) {
            starts.push(options.start.iter().chain(&a0).copied().collect());
        }
        let mut best: Option<crate::poisson::Scored> = None;
        let least_squares_ok = f0.outcome == Outcome::Converged;
        for theta0 in &starts {
            // The second start only where the least-squares fit did not converge, or the scoring
            // from it did not end at an optimum that determines every nonlinear parameter to
            // a tenth of its size (standard error < 0.1·|b_k|): on clear curves (most of an image)
            // one start does.
            let clear = |b: &crate::poisson::Scored| {
                b.converged && b.theta[..q].iter().zip(&b.std_errors[..q]).all(|(v, se)| se.is_finite() && *se < 0.1 * v.abs())
            };
            if least_squares_ok && best.as_ref().is_some_and(clear) {
                break;
            }
            if let Some(s) = crate::poisson::fisher_scoring(model, y, theta0, q, &lower, &upper) {
                residual_evaluations += s.evaluations;
                jacobian_evaluations += s.evaluations;
                if best.as_ref().is_none_or(|b| (s.converged, -s.deviance) > (b.converged, -b.deviance)) {
                    best = Some(s);
                }
            }
        }
        match best {
            None => {
                stop_warning = Some(match f0.fitted.iter().position(|m| !(*m > 0.0)) {
                    Some(row) => FitWarning::NonPositiveMean { row, value: f0.fitted[row] },
                    None => FitWarning::IrlsNotConverged { iterations: 0 },
                });
                f0
            }
            Some(s) => {
                irls = s.iterations;
                if !s.converged {
                    stop_warning = Some(match s.non_positive {
                        Some((row, value)) => FitWarning::NonPositiveMean { row, value },
                        None => FitWarning::IrlsNotConverged { iterations: s.iterations },
                    });
                }
                // The weighted fit with σᵢ² = μᵢ at the optimum has the optimum as its own: it
                // gives the fit's pieces there, and confirms it (the same deviance).
                inner.start = s.theta[..q].to_vec();
                if inner.method == Method::Full {
                    inner.linear_start = Some(s.theta[q..].to_vec());
                }
                inner.sigma = Some(s.mu.iter().map(|m| m.sqrt()).collect());
                let g = fit_with(model, y, &inner, ws)?;
                iterations += g.iterations;
                residual_evaluations += g.residual_evaluations;
                jacobian_evaluations += g.jacobian_evaluations;
                polish_steps += g.polish_steps;
                let dg = poisson_deviance(y, &g.fitted);
                if stop_warning.is_none() && !((dg - s.deviance).abs() <= 1e-9 * s.deviance + 1e-12) {
                    stop_warning = Some(FitWarning::IrlsNotConverged { iterations: s.iterations });
                }
                g
            }
        }
    } else {
        loop {
            irls += 1;
            let f = fit_with(model, y, &inner, ws)?;
            iterations += f.iterations;
            residual_evaluations += f.residual_evaluations;
            jacobian_evaluations += f.jacobian_evaluations;
            polish_steps += f.polish_steps;
            if irls == 1 {
                initial_rss = f.initial_rss;
            }
            if !f.termination.is_converged() {
                break f;
            }
            // New weights from this iterate.
            let new_sigma: Vec<f64> = (0..n)
                .map(|i| {
                    let r = (y[i] - f.fitted[i]) * w_user[i] / fs;
                    sigma_user[i] / loss.rho(r * r).1.sqrt()
                })
                .collect();
            if new_sigma.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
                stop_warning = Some(FitWarning::IrlsNotConverged { iterations: irls });
                break f;
            }
            let done = previous.as_ref().is_some_and(|p| {
                p.iter().zip(&f.estimates).all(|(a, b)| (a - b).abs() <= tol * b.abs().max(f64::MIN_POSITIVE))
            });
            if done {
                break f;
            }
            if irls >= MAX_IRLS_ITERATIONS {
                stop_warning = Some(FitWarning::IrlsNotConverged { iterations: irls });
                break f;
            }
            previous = Some(f.estimates.clone());
            inner.start = f.nonlinear.clone();
            if inner.method == Method::Full {
                inner.linear_start = Some(f.linear.clone());
            }
            inner.sigma = Some(new_sigma);
        }
    };
    let (p, q) = (f.linear.len(), f.nonlinear.len());
    let full = options.detail == Detail::Full;
    // Residuals and the criteria on the loss's own terms.
    let (row_w, scale_num, pearson_w): (Vec<f64>, f64, Vec<f64>) = match loss {
        Loss::Poisson => {
            let dev = poisson_deviance(y, &f.fitted);
            f.deviance = dev;
            f.loss_cost = dev;
            let w: Vec<f64> = f.fitted.iter().map(|m| if *m > 0.0 { 1.0 / m.sqrt() } else { f64::NAN }).collect();
            // Cov = (JᵀWJ)⁻¹: the "residual variance" factor is 1 (rss/dof = dof/dof).
            (w.clone(), f.dof as f64, w)
        }
        _ => {
            let r: Vec<f64> = (0..n).map(|i| (y[i] - f.fitted[i]) * w_user[i]).collect();
            let cost = robust_cost(loss, fs, &r);
            f.loss_cost = cost;
            let eps = f64::EPSILON;
            let w: Vec<f64> = (0..n)
                .map(|i| {
                    let z = (r[i] / fs) * (r[i] / fs);
                    let (_, d1, d2) = loss.rho(z);
                    (d1 + 2.0 * d2 * z).max(eps).sqrt() * w_user[i]
                })
                .collect();
            (w, 2.0 * cost, w_user.clone())
        }
    };
    f.loss = loss;
    f.f_scale = fs;
    f.irls_iterations = irls;
    f.iterations = iterations;
    f.residual_evaluations = residual_evaluations;
    f.jacobian_evaluations = jacobian_evaluations;
    f.polish_steps = polish_steps;
    f.initial_rss = initial_rss;
    f.weighted_residuals = f.residuals.iter().zip(&pearson_w).map(|(r, w)| r * w).collect();
    f.rss = f.weighted_residuals.iter().map(|r| r * r).sum();
    let per_dof = if f.dof > 0 { f.rss / f.dof as f64 } else { f64::NAN };
    f.reduced_chi_square = per_dof;
    f.residual_std_error = per_dof.sqrt();
    {
        let sw: f64 = pearson_w.iter().map(|v| v * v).sum();
        let ybar: f64 = y.iter().zip(&pearson_w).map(|(y, w)| y * (w * w)).sum::<f64>() / sw;
        let tss: f64 = y.iter().zip(&pearson_w).map(|(y, w)| (w * w) * (y - ybar) * (y - ybar)).sum();
        f.r_squared = 1.0 - f.rss / tss;
    }
    // The Gaussian information criteria do not apply to these objectives.
    (f.aic, f.bic) = (f64::NAN, f64::NAN);
    // Covariance from the loss's Jacobian.
    if row_w.iter().all(|v| v.is_finite()) {
        let mut ev = ModelEval::new(&*model);
        if model.eval(&f.nonlinear, &mut ev).is_ok() {
            let mut jac = Mat::zeros(n, q + p);
            weighted_full_jacobian(&ev, model.basis_derivative_pattern(), model.offset_derivative_pattern(), &f.linear, &row_w, q, &mut jac);
            let mut st = stats::param_stats_with(jac.as_ref(), n, scale_num, f.dof, &f.estimates, full);
            if f.dof == 0 {
                st.std_errors.iter_mut().chain(&mut st.t_values).chain(&mut st.p_values).for_each(|v| *v = f64::NAN);
                (st.covariance, st.correlation) = (None, None);
            }
            f.stats = st;
        }
    }
    if let Some(wn) = stop_warning {
        f.warnings.push(wn);
        f.outcome = Outcome::NotConverged;
        f.converged = false;
    }
    if !full {
        (f.fitted, f.residuals, f.weighted_residuals) = (Vec::new(), Vec::new(), Vec::new());
    }
    if options.detail == Detail::Covariance {
        f.stats.fill_tests_with_nan();
    }
    Ok(f)
}
