//! Poisson maximum likelihood by damped Fisher scoring and Newton steps: Levenberg–Marquardt
//! on the deviance, in all parameters `θ = (b, a)` at once.
//!
//! For counts `yᵢ ≥ 0` with mean `μᵢ(θ) = Σⱼ aⱼ φⱼ(xᵢ; b) + φ₀(xᵢ; b)` the deviance
//! `D(θ) = 2 Σᵢ [yᵢ ln(yᵢ/μᵢ) − (yᵢ − μᵢ)]` has gradient and Fisher information
//!
//! ```text
//! ∇(D/2) = g = Jᵀ(1 − y/μ),     F = Jᵀ diag(1/μ) J,     J = ∂μ/∂θ,
//! ```
//!
//! and each iteration solves `(H + λ·diag H) δ = −g` on the free parameters (those not held
//! on a bound by a gradient pointing outward) — `H = F`, or, once a step has cut the
//! decrement by less than 4, the Hessian of `D/2` by central differences of `g` where it is
//! positive definite (Fisher scoring alone converges only linearly when counts are few) —
//! projects `θ + δ` onto the
//! bounds, and accepts the step only if every mean stays positive and `D` decreases; `λ`
//! shrinks after an accepted
//! step and grows after a rejected one. Every accepted step lowers the deviance, so the
//! iteration cannot wander off the way plain reweighting (weights `1/μ` of the previous
//! iterate) can on sparse counts, where tiny means in an empty tail get huge weights.
//!
//! It stops **converged** when the Newton decrement `η = g_fᵀ H_ff⁻¹ g_f` (twice the decrease
//! a Newton step would bring in `D/2`, and the squared Newton step in units of the standard
//! errors) is at most [`CONVERGED_DECREMENT`], or when no step is accepted although
//! `η ≤` [`FLAT_DECREMENT`] (the deviance is flat to rounding). It stops **not
//! converged** otherwise: after [`MAX_SCORING_ITERATIONS`], or when no step lowers the deviance;
//! then, if a rejected step made a mean non-positive, or a mean at a zero count has fallen
//! below `1e-6` of the largest, that row: the likelihood's optimum is where the model touches
//! 0 at a zero count, outside the open domain the likelihood is defined on.

use crate::linalg::cholesky::solve_spd;
use crate::model::{ModelEval, SeparableModel};
use crate::problems::full::weighted_full_jacobian;
use faer::Mat;

/// Iteration limit of the scoring.
pub const MAX_SCORING_ITERATIONS: usize = 500;

/// The Newton decrement `η = g_fᵀ F_ff⁻¹ g_f` is the squared length of the Newton step in
/// units of the standard errors (`F⁻¹` is the covariance): converged when the step is at most
/// `1e-8` standard errors.
pub const CONVERGED_DECREMENT: f64 = 1e-16;

/// Where no step lowers the deviance any more (it is flat to rounding), converged if the
/// Newton step is at most `1e-6` standard errors.
pub const FLAT_DECREMENT: f64 = 1e-12;

/// How the scoring ended.
#[derive(Debug, Clone)]
pub(crate) struct Scored {
    /// Final `θ = (b, a)`.
    pub theta: Vec<f64>,
    /// Its deviance.
    pub deviance: f64,
    /// The means there.
    pub mu: Vec<f64>,
    /// `√diag(H⁻¹)` of the last curvature used (Fisher information or Hessian; NaN where it is
    /// singular): the standard errors, for telling a runaway end from an optimum.
    pub std_errors: Vec<f64>,
    /// Accepted steps.
    pub iterations: usize,
    /// Model evaluations.
    pub evaluations: usize,
    /// Whether the Newton decrement vanished (see the module docs).
    pub converged: bool,
    /// Where a rejected step made the mean non-positive, if that is what stopped it.
    pub non_positive: Option<(usize, f64)>,
}

/// `μ` (into `mu`) and, if `jac` is given, `J = ∂μ/∂θ` at `θ`; `false` where the model cannot
/// be evaluated or is not finite.
fn eval_at<M: SeparableModel + ?Sized>(
    model: &mut M,
    theta: &[f64],
    q: usize,
    ev: &mut ModelEval,
    mu: &mut [f64],
    jac: Option<&mut Mat<f64>>,
    ones: &[f64],
) -> bool {
    let (b, a) = theta.split_at(q);
    let ok = match jac {
        Some(_) => model.eval(b, ev).is_ok(),
        None => model.eval_values(b, ev).is_ok(),
    };
    if !ok {
        return false;
    }
    mu.copy_from_slice(&ev.offset);
    for (j, aj) in a.iter().enumerate() {
        for (m, p) in mu.iter_mut().zip(ev.basis.col_as_slice(j)) {
            *m += aj * p;
        }
    }
    if !mu.iter().all(|m| m.is_finite()) {
        return false;
    }
    if let Some(jac) = jac {
        weighted_full_jacobian(
            ev,
            model.basis_derivative_pattern(),
            model.offset_derivative_pattern(),
            a,
            ones,
            q,
            jac,
        );
        if !(0..jac.ncols()).all(|k| jac.col_as_slice(k).iter().all(|v| v.is_finite())) {
            return false;
        }
    }
    true
}

/// The Newton decrement `g_fᵀ H_ff⁻¹ g_f` on the free parameters `free` of the `m × m`
/// curvature `h` (a tiny ridge where `h` is singular; infinite where even that fails).
fn decrement_of(h: &[f64], g: &[f64], free: &[usize], m: usize) -> f64 {
    let rhs: Vec<f64> = free.iter().map(|&k| -g[k]).collect();
    let mf = free.len();
    solve_spd(&damped(h, free, m, 0.0), &rhs, mf)
        .or_else(|| solve_spd(&damped(h, free, m, 1e-12), &rhs, mf))
        .map_or(f64::INFINITY, |d| d.iter().zip(&rhs).map(|(d, r)| d * r).sum())
}

/// The rows and columns `free` of the `m × m` curvature `h`, with `λ·diag` added (Marquardt's
/// scaling; a zero diagonal counts as the smallest positive number).
fn damped(h: &[f64], free: &[usize], m: usize, lambda: f64) -> Vec<f64> {
    let mf = free.len();
    let mut a = vec![0.0; mf * mf];
    for (r, &i) in free.iter().enumerate() {
        for (c, &k) in free.iter().enumerate() {
            a[r * mf + c] = h[i * m + k];
        }
        a[r * mf + r] += lambda * h[i * m + i].max(f64::MIN_POSITIVE);
    }
    a
}

/// `g = Jᵀ(1 − y/μ)`, the gradient of `D/2`.
fn gradient(jac: &Mat<f64>, y: &[f64], mu: &[f64]) -> Vec<f64> {
    (0..jac.ncols()).map(|k| jac.col_as_slice(k).iter().zip(y.iter().zip(mu)).map(|(j, (y, m))| j * (1.0 - y / m)).sum()).collect()
}

/// The Hessian of `D/2` at `θ` by central differences of the analytic gradient, with steps of
/// `1e-4` standard errors (`√(F⁻¹)ₖₖ`), symmetrised; `None` where a step leaves the domain or
/// `F` is singular.
#[allow(clippy::too_many_arguments)]
fn gradient_differences<M: SeparableModel + ?Sized>(
    model: &mut M,
    y: &[f64],
    theta: &[f64],
    q: usize,
    fisher: &[f64],
    ev: &mut ModelEval,
    mu: &mut [f64],
    jac: &mut Mat<f64>,
    ones: &[f64],
) -> Option<Vec<f64>> {
    let m = theta.len();
    let mut h = vec![0.0; m * m];
    let mut point = theta.to_vec();
    for k in 0..m {
        let mut e = vec![0.0; m];
        e[k] = 1.0;
        let var = solve_spd(fisher, &e, m)?[k];
        let step = 1e-4 * var.sqrt();
        if !(step.is_finite() && step > 0.0) {
            return None;
        }
        let mut g = [Vec::new(), Vec::new()];
        for (side, sign) in [(0, 1.0), (1, -1.0)] {
            point[k] = theta[k] + sign * step;
            if !eval_at(model, &point, q, ev, mu, Some(jac), ones) || non_positive(mu).is_some() {
                return None;
            }
            g[side] = gradient(jac, y, mu);
        }
        point[k] = theta[k];
        for i in 0..m {
            h[i * m + k] = (g[0][i] - g[1][i]) / (2.0 * step);
        }
    }
    for i in 0..m {
        for k in 0..i {
            let v = 0.5 * (h[i * m + k] + h[k * m + i]);
            h[i * m + k] = v;
            h[k * m + i] = v;
        }
    }
    h.iter().all(|v| v.is_finite()).then_some(h)
}

/// The first row where the mean is not positive, with its value.
fn non_positive(mu: &[f64]) -> Option<(usize, f64)> {
    mu.iter().position(|m| !(*m > 0.0)).map(|i| (i, mu[i]))
}

/// Maximises the Poisson likelihood of `y` from `theta0` (`θ = (b, a)`, `q` nonlinear
/// parameters first) within `lower ≤ θ ≤ upper` (see the module docs). `None` if the model
/// cannot be evaluated at `theta0` or a mean is not positive there.
pub(crate) fn fisher_scoring<M: SeparableModel + ?Sized>(
    model: &mut M,
    y: &[f64],
    theta0: &[f64],
    q: usize,
    lower: &[f64],
    upper: &[f64],
) -> Option<Scored> {
    let n = y.len();
    let m = theta0.len();
    let ones = vec![1.0; n];
    let mut ev = ModelEval::new(&*model);
    let mut theta: Vec<f64> = theta0
        .iter()
        .zip(lower.iter().zip(upper))
        .map(|(t, (l, u))| t.clamp(*l, *u))
        .collect();
    let mut mu = vec![0.0; n];
    let mut jac = Mat::zeros(n, m);
    let mut evaluations = 1;
    if !eval_at(model, &theta, q, &mut ev, &mut mu, Some(&mut jac), &ones)
        || non_positive(&mu).is_some()
    {
        return None;
    }
    let mut dev = crate::loss::poisson_deviance(y, &mu);
    let mut lambda = 1e-3;
    let (mut trial, mut mu_t, mut jac_t) = (vec![0.0; m], vec![0.0; n], Mat::zeros(n, m));
    let mut out = Scored {
        theta: Vec::new(),
        deviance: dev,
        mu: Vec::new(),
        std_errors: Vec::new(),
        iterations: 0,
        evaluations: 0,
        converged: false,
        non_positive: None,
    };
    let mut curvature: Vec<f64> = Vec::new();
    let mut iterations = 0;
    let (mut newton, mut previous_eta) = (false, None::<f64>);
    loop {
        // Gradient of D/2 and the Fisher information.
        let g = gradient(&jac, y, &mu);
        let mut fisher = vec![0.0; m * m];
        for i in 0..m {
            for k in 0..=i {
                let v: f64 = jac
                    .col_as_slice(i)
                    .iter()
                    .zip(jac.col_as_slice(k))
                    .zip(&mu)
                    .map(|((a, b), m)| a * b / m)
                    .sum();
                fisher[i * m + k] = v;
                fisher[k * m + i] = v;
            }
        }
        // Free parameters: not held on a bound by a gradient pointing out of the box.
        let free: Vec<usize> = (0..m)
            .filter(|&k| !((theta[k] <= lower[k] && g[k] > 0.0) || (theta[k] >= upper[k] && g[k] < 0.0)))
            .collect();
        // Fisher scoring converges only linearly where the counts are few and the relative
        // residuals large (the Hessian of D/2 is F plus Σ(1 − y/μ)∂²μ/∂θ², which is not small
        // then: 0.96 per step, 500 steps short of converging, measured on 30-count decays).
        // Once a step has cut the decrement by less than 4 (from the third step on), the
        // Hessian by central differences of the analytic gradient (2m evaluations; steps of
        // 1e-4 standard errors) replaces F where it is positive definite: damped Newton steps
        // (7 steps on that decay). Well-fitting curves (high counts) never pay for it.
        let eta_fisher = decrement_of(&fisher, &g, &free, m);
        if iterations >= 2 && previous_eta.is_some_and(|p| eta_fisher > 0.25 * p) {
            newton = true;
        }
        previous_eta = Some(eta_fisher);
        let mut newton_step = false;
        if newton
            && eta_fisher > CONVERGED_DECREMENT
            && let Some(h) = gradient_differences(model, y, &theta, q, &fisher, &mut ev, &mut mu_t, &mut jac_t, &ones)
        {
            evaluations += 2 * m;
            if solve_spd(&h, &vec![1.0; m], m).is_some() {
                fisher = h;
                newton_step = true;
            }
        }
        let mf = free.len();
        let rhs: Vec<f64> = free.iter().map(|&k| -g[k]).collect();
        // The decrement of the curvature the steps use (Fisher's unless replaced above).
        let decrement = if newton_step { decrement_of(&fisher, &g, &free, m) } else { eta_fisher };
        curvature.clone_from(&fisher);
        if mf == 0 || decrement <= CONVERGED_DECREMENT {
            out.converged = true;
            break;
        }
        if iterations >= MAX_SCORING_ITERATIONS {
            break;
        }
        // Damped steps until one lowers the deviance.
        let mut accepted = false;
        let mut last_bad: Option<(usize, f64)> = None;
        for _ in 0..60 {
            let Some(delta) = solve_spd(&damped(&fisher, &free, m, lambda), &rhs, mf) else {
                lambda = (lambda * 10.0).max(1e-12);
                continue;
            };
            trial.copy_from_slice(&theta);
            for (d, &k) in delta.iter().zip(&free) {
                trial[k] = (theta[k] + d).clamp(lower[k], upper[k]);
            }
            if trial == theta {
                break;
            }
            evaluations += 1;
            let ok = eval_at(
                model,
                &trial,
                q,
                &mut ev,
                &mut mu_t,
                Some(&mut jac_t),
                &ones,
            );
            if ok {
                if let Some(bad) = non_positive(&mu_t) {
                    last_bad = Some(bad);
                } else {
                    let d_t = crate::loss::poisson_deviance(y, &mu_t);
                    if d_t < dev {
                        std::mem::swap(&mut theta, &mut trial);
                        std::mem::swap(&mut mu, &mut mu_t);
                        std::mem::swap(&mut jac, &mut jac_t);
                        dev = d_t;
                        lambda = (lambda / 10.0).max(1e-15);
                        accepted = true;
                        break;
                    }
                }
            }
            lambda = (lambda * 10.0).max(1e-12);
            if lambda > 1e16 {
                break;
            }
        }
        if !accepted {
            // No step lowers the deviance: flat to rounding (converged) or stuck.
            out.converged = decrement <= FLAT_DECREMENT;
            if !out.converged {
                out.non_positive = last_bad;
            }
            break;
        }
        iterations += 1;
    }
    if !out.converged && out.non_positive.is_none() {
        // Creeping towards a mean of 0 at a zero count: the optimum is on that boundary.
        let top = mu.iter().fold(0.0f64, |m, v| m.max(*v));
        out.non_positive = (0..n).filter(|&i| y[i] == 0.0 && mu[i] < 1e-6 * top).min_by(|&i, &j| mu[i].total_cmp(&mu[j])).map(|i| (i, mu[i]));
    }
    out.std_errors = (0..m)
        .map(|k| {
            let mut e = vec![0.0; m];
            e[k] = 1.0;
            solve_spd(&curvature, &e, m).map_or(f64::NAN, |x| x[k].sqrt())
        })
        .collect();
    out.theta = theta;
    out.deviance = dev;
    out.mu = mu;
    out.iterations = iterations;
    out.evaluations = evaluations;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PointModel;

    /// `μ = a·exp(−t/τ) + c` (b = τ; a, c linear) on `t`.
    fn decay(t: Vec<f64>) -> PointModel {
        PointModel::builder(t.iter().map(|&v| vec![v]).collect(), 2, 1)
            .derivative(0, 0)
            .eval(|x, b, phi, dphi, _off, _doff| {
                let (t, tau) = (x[0], b[0]);
                let e = (-t / tau).exp();
                phi[0] = e;
                phi[1] = 1.0;
                dphi[0] = e * t / (tau * tau);
            })
            .build()
            .unwrap()
    }

    /// Sparse counts (10 photons in 64 bins) where reweighting runs off to τ → −∞: scoring
    /// climbs to the optimum, a stationary point whose deviance no nearby point beats.
    #[test]
    fn sparse_counts_reach_the_optimum() {
        let y = [
            1., 0., 0., 2., 1., 0., 0., 0., 0., 1., 0., 1., 0., 0., 0., 0., 0., 0., 0., 1., 0., 0.,
            0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 1., 0., 0., 0., 0., 0., 0., 0.,
            0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 2., 0., 0., 0., 0., 0., 0., 0., 0., 0.,
        ];
        let t: Vec<f64> = (0..64).map(|i| 10.0 * i as f64 / 64.0).collect();
        let mut model = decay(t.clone());
        let inf = f64::INFINITY;
        let (lo, hi) = ([-inf, -inf, 0.0072], [inf, inf, 0.0072]);
        let s = fisher_scoring(&mut model, &y, &[1.5, 0.7, 0.0072], 1, &lo, &hi).unwrap();
        assert!(s.converged, "{s:?}");
        // Independent check: the deviance on a fine grid of τ (a profiled by its own scoring
        // at each τ) is nowhere lower.
        let dev_at = |tau: f64, a: f64| {
            let mu: Vec<f64> = t.iter().map(|t| a * (-t / tau).exp() + 0.0072).collect();
            crate::loss::poisson_deviance(&y, &mu)
        };
        assert!((dev_at(s.theta[0], s.theta[1]) - s.deviance).abs() < 1e-12);
        for i in 1..200 {
            let tau = 0.05 * i as f64;
            for j in 1..200 {
                let a = 0.01 * j as f64;
                assert!(
                    dev_at(tau, a) >= s.deviance - 1e-9,
                    "τ={tau} a={a}: {} < {}",
                    dev_at(tau, a),
                    s.deviance
                );
            }
        }
        assert!(s.theta[0] > 1.0 && s.theta[0] < 10.0, "{s:?}");
    }

    #[test]
    fn a_non_positive_start_is_refused() {
        let t: Vec<f64> = (0..10).map(f64::from).collect();
        let mut model = decay(t);
        let y = [3.0; 10];
        let inf = f64::INFINITY;
        assert!(
            fisher_scoring(&mut model, &y, &[1.0, -5.0, 0.0], 1, &[-inf; 3], &[inf; 3]).is_none()
        );
    }
}
