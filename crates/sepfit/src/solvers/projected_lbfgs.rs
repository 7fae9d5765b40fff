//! L-BFGS with box bounds by projection (Bertsekas 1982; Kim, Sra & Dhillon 2010): minimises
//! a smooth `f` over `l ≤ x ≤ u` (infinite bounds allowed).
//!
//! At an iterate `x` with gradient `g`, the **ε-active set** (Bertsekas) holds the variables within
//! `ε = min(10⁻³, ‖p‖₂)` of a bound whose gradient points out of the box (`x_i − l_i ≤ ε,
//! g_i > 0` or `u_i − x_i ≤ ε, g_i < 0`); they move by steepest descent, `d_i = −g_i`, which
//! the projection stops on the bound. The direction of the others is the L-BFGS direction
//! `d = −H g` of the two-loop recursion restricted to the free variables (the correction pairs
//! `(s, y)` with their active entries left out), or `−g` if that is not a descent direction. The step
//! follows the projection arc `x(α) = P(x + α d)`, `P` the projection onto the box, with
//! backtracking from `α = 1` (halving, then quadratic interpolation) until the Armijo condition
//!
//! ```text
//! f(x(α)) ≤ f(x) + c₁ gᵀ(x(α) − x)
//! ```
//!
//! holds, or `f` changes by less than its rounding error (`8ε|f|`) while the projected
//! gradient shrinks (near a solution the promised decrease is below the rounding of `f`), (the
//! first step without curvature information moves each variable by at most 1, and
//! is doubled while `f` keeps falling, so that a direction along which `f` is unbounded below is
//! recognised). A pair `(s, y) = (x⁺ − x, g⁺ − g)` is kept only when `sᵀy > ε‖s‖‖y‖` (curvature).
//!
//! **Convergence** is measured by the projected gradient `p = x − P(x − g)`: it is zero exactly
//! at points satisfying the first-order (KKT) conditions of the box-constrained problem, and
//! equals `g` away from the bounds. The iteration stops when `‖p‖₂ ≤ grad_tol`
//! ([`MinTermination::GradientTolerance`]; [`MinReport::grad_norm`] is `‖p‖₂`). Unbounded and
//! non-finite values are handled as in [`crate::solvers::lbfgs`].
//!
//! ```
//! use sepfit::solvers::lbfgs::LbfgsOptions;
//! use sepfit::solvers::projected_lbfgs::projected_lbfgs;
//! // (x − 2)² + (y + 1)² over 0 ≤ x ≤ 1, y ≥ 0: the minimum is at the corner (1, 0).
//! let f = |x: &[f64], g: &mut [f64]| {
//!     g[0] = 2.0 * (x[0] - 2.0);
//!     g[1] = 2.0 * (x[1] + 1.0);
//!     (x[0] - 2.0).powi(2) + (x[1] + 1.0).powi(2)
//! };
//! let r = projected_lbfgs(f, &[0.5, 3.0], &[0.0, 0.0], &[1.0, f64::INFINITY], &LbfgsOptions::default()).unwrap();
//! assert!(r.termination.converged());
//! assert_eq!(r.x, [1.0, 0.0]);
//! ```

use super::gd::{MinError, MinIter, MinReport, MinTermination, check_common, dot, norm};
use super::lbfgs::LbfgsOptions;
use std::collections::VecDeque;

/// Most doublings of an accepted first step without curvature information (2^1100 covers
/// every finite step length).
const EXPANSIONS: usize = 1100;

/// `P(x)`: each entry clipped into its bounds.
fn project(x: &mut [f64], lower: &[f64], upper: &[f64]) {
    for ((v, l), u) in x.iter_mut().zip(lower).zip(upper) {
        *v = v.max(*l).min(*u);
    }
}

/// The projected gradient `x − P(x − g)`.
fn projected_gradient(x: &[f64], g: &[f64], lower: &[f64], upper: &[f64]) -> Vec<f64> {
    x.iter().zip(g).zip(lower.iter().zip(upper)).map(|((x, g), (l, u))| x - (x - g).max(*l).min(*u)).collect()
}

/// Minimises `f` (value, gradient into its second argument) over `lower ≤ x ≤ upper` from `x0`
/// (projected into the box first). See the module docs.
pub fn projected_lbfgs<F: FnMut(&[f64], &mut [f64]) -> f64>(
    mut f: F,
    x0: &[f64],
    lower: &[f64],
    upper: &[f64],
    opts: &LbfgsOptions,
) -> Result<MinReport, MinError> {
    check_common(x0, opts.grad_tol, opts.f_floor)?;
    let n = x0.len();
    if lower.len() != n || upper.len() != n {
        return Err(MinError::BadOption(format!("{} lower and {} upper bounds for {n} variables", lower.len(), upper.len())));
    }
    if let Some(i) = (0..n).find(|&i| lower[i].is_nan() || upper[i].is_nan() || lower[i] > upper[i]) {
        return Err(MinError::BadOption(format!("the bounds of x[{i}] leave no room: {} ≤ x ≤ {}", lower[i], upper[i])));
    }
    if opts.memory == 0 || opts.max_line_search == 0 || !(opts.c1 > 0.0 && opts.c1 < 1.0) {
        return Err(MinError::BadOption("memory and max_line_search must be at least 1 and 0 < c1 < 1".into()));
    }
    let mut x = x0.to_vec();
    project(&mut x, lower, upper);
    let mut g = vec![0.0; n];
    let mut fx = f(&x, &mut g);
    let mut evaluations = 1;
    if !fx.is_finite() || g.iter().any(|v| !v.is_finite()) {
        return Err(MinError::NonFiniteStart { f: fx });
    }
    let f0 = fx;
    let mut trace = Vec::new();
    let mut pg = projected_gradient(&x, &g, lower, upper);
    if opts.record {
        trace.push(MinIter { iter: 0, f: fx, grad_norm: norm(&pg), x_norm: norm(&x), step: 0.0 });
    }
    let mut pairs: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::new();
    let mut xt = vec![0.0; n];
    let mut gt = vec![0.0; n];
    let mut iterations = 0;
    let termination = loop {
        if fx < opts.f_floor {
            break MinTermination::UnboundedBelow;
        }
        if norm(&pg) <= opts.grad_tol {
            break MinTermination::GradientTolerance;
        }
        if iterations >= opts.max_iter {
            break MinTermination::MaxIterations;
        }
        iterations += 1;
        // Active variables (Bertsekas' ε-active set): within ε of a bound, with the gradient
        // pointing out of the box, ε = min(1e-3, ‖p‖₂) so that it vanishes at a solution.
        let eps = norm(&pg).min(1e-3);
        let active: Vec<bool> =
            (0..n).map(|i| (x[i] - lower[i] <= eps && g[i] > 0.0) || (upper[i] - x[i] <= eps && g[i] < 0.0)).collect();
        let free = |v: &[f64]| -> Vec<f64> { v.iter().zip(&active).map(|(v, a)| if *a { 0.0 } else { *v }).collect() };
        // Two-loop recursion on the free variables.
        let mut q = free(&g);
        let mut alphas = Vec::with_capacity(pairs.len());
        for (s, y, _) in pairs.iter().rev() {
            let (s, y) = (free(s), free(y));
            let sy = dot(&s, &y);
            let a = if sy > 0.0 { dot(&s, &q) / sy } else { 0.0 };
            for (qi, yi) in q.iter_mut().zip(&y) {
                *qi -= a * yi;
            }
            alphas.push((a, s, y, sy));
        }
        if let Some((s, y, _)) = pairs.back() {
            let (s, y) = (free(s), free(y));
            let (sy, yy) = (dot(&s, &y), dot(&y, &y));
            if sy > 0.0 && yy > 0.0 {
                let gamma = sy / yy;
                q.iter_mut().for_each(|v| *v *= gamma);
            }
        }
        for (a, s, y, sy) in alphas.into_iter().rev() {
            if sy > 0.0 {
                let b = dot(&y, &q) / sy;
                for (qi, si) in q.iter_mut().zip(&s) {
                    *qi += (a - b) * si;
                }
            }
        }
        let mut d: Vec<f64> = q.iter().map(|v| -v).collect();
        let gf = free(&g);
        if !(dot(&d, &gf) < 0.0) && dot(&gf, &gf) > 0.0 {
            // Not a descent direction (or the memory is stale): steepest descent, memory reset.
            d = gf.iter().map(|v| -v).collect();
            pairs.clear();
        }
        // Active variables move by steepest descent, onto their bound (the projection stops them).
        for i in 0..n {
            if active[i] {
                d[i] = -g[i];
            }
        }
        // Without curvature information the first step moves by at most 1 in each variable.
        let alpha0 = if pairs.is_empty() { 1.0 / norm(&d).max(1.0) } else { 1.0 };
        let mut alpha = alpha0;
        let mut accepted = None;
        for _ in 0..opts.max_line_search {
            for i in 0..n {
                xt[i] = x[i] + alpha * d[i];
            }
            project(&mut xt, lower, upper);
            let ft = f(&xt, &mut gt);
            evaluations += 1;
            let decrease: f64 = g.iter().zip(xt.iter().zip(&x)).map(|(g, (a, b))| g * (a - b)).sum();
            if ft == f64::NEG_INFINITY || ft < opts.f_floor {
                accepted = Some((ft, alpha));
                break;
            }
            if ft.is_finite() && gt.iter().all(|v| v.is_finite()) {
                // Sufficient decrease, or (Hager–Zhang's approximate Wolfe idea) a change of f
                // within its rounding error that makes the projected gradient smaller: near the
                // solution the decrease the step promises is below the rounding of f.
                let rounding = 8.0 * f64::EPSILON * fx.abs();
                if ft <= fx + opts.c1 * decrease
                    || (ft <= fx + rounding && norm(&projected_gradient(&xt, &gt, lower, upper)) < norm(&pg))
                {
                    accepted = Some((ft, alpha));
                    break;
                }
            }
            // Quadratic interpolation along the arc where it is informative, else halving.
            let next = if ft.is_finite() && decrease < 0.0 {
                let den = 2.0 * (ft - fx - decrease);
                if den > 0.0 { (-decrease * alpha / den).clamp(0.1 * alpha, 0.5 * alpha) } else { 0.5 * alpha }
            } else {
                0.5 * alpha
            };
            alpha = next;
        }
        let Some((mut ft, mut step)) = accepted else {
            break MinTermination::LineSearchFailed;
        };
        // Without curvature information (the first iteration, or a loss with none, such as a
        // linear one) a first trial that is accepted may be far too short: double the step
        // while f keeps falling, so that an unbounded direction is found to be one.
        if pairs.is_empty() && step == alpha0 && ft.is_finite() {
            let (mut x2, mut g2) = (vec![0.0; n], vec![0.0; n]);
            for _ in 0..EXPANSIONS {
                let a2 = 2.0 * step;
                for i in 0..n {
                    x2[i] = x[i] + a2 * d[i];
                }
                project(&mut x2, lower, upper);
                if x2 == xt {
                    break; // every variable that moves has reached a bound
                }
                let f2 = f(&x2, &mut g2);
                evaluations += 1;
                let decrease: f64 = g.iter().zip(x2.iter().zip(&x)).map(|(g, (a, b))| g * (a - b)).sum();
                let finite = f2 == f64::NEG_INFINITY || (f2.is_finite() && g2.iter().all(|v| v.is_finite()));
                if !(finite && f2 < ft && f2 <= fx + opts.c1 * decrease) {
                    break;
                }
                (ft, step) = (f2, a2);
                xt.copy_from_slice(&x2);
                gt.copy_from_slice(&g2);
                if ft < opts.f_floor {
                    break;
                }
            }
        }
        if ft == f64::NEG_INFINITY || ft < opts.f_floor {
            x.copy_from_slice(&xt);
            fx = ft;
            break MinTermination::UnboundedBelow;
        }
        let s: Vec<f64> = xt.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gt.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > f64::EPSILON * norm(&s) * norm(&y) {
            if pairs.len() == opts.memory {
                pairs.pop_front();
            }
            pairs.push_back((s, y, sy));
        }
        x.copy_from_slice(&xt);
        g.copy_from_slice(&gt);
        fx = ft;
        pg = projected_gradient(&x, &g, lower, upper);
        if opts.record {
            trace.push(MinIter { iter: iterations, f: fx, grad_norm: norm(&pg), x_norm: norm(&x), step });
        }
    };
    Ok(MinReport { grad_norm: norm(&pg), x, f: fx, f0, iterations, evaluations, termination, trace })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rosenbrock in 2-D on boxes whose constrained minimum is known in closed form.
    fn rosen(x: &[f64], g: &mut [f64]) -> f64 {
        let (a, b) = (x[0], x[1]);
        g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
        g[1] = 200.0 * (b - a * a);
        (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
    }

    #[test]
    fn unconstrained_box_gives_the_free_minimum() {
        let o = LbfgsOptions { grad_tol: 1e-10, ..LbfgsOptions::default() };
        let inf = f64::INFINITY;
        let r = projected_lbfgs(rosen, &[-1.2, 1.0], &[-inf, -inf], &[inf, inf], &o).unwrap();
        assert!(r.termination.converged(), "{:?}", r.termination);
        assert!((r.x[0] - 1.0).abs() < 1e-8 && (r.x[1] - 1.0).abs() < 1e-8, "{:?}", r.x);
    }

    #[test]
    fn active_bound_satisfies_kkt() {
        // b ≤ 0.5: the minimum of (1 − a)² + 100 (b − a²)² on b = 0.5 solves
        // ∂/∂a = −2(1 − a) − 400 a (0.5 − a²) = 0 with ∂f/∂b = 200 (0.5 − a²) < 0 (pushes out).
        let o = LbfgsOptions { grad_tol: 1e-10, ..LbfgsOptions::default() };
        let inf = f64::INFINITY;
        let r = projected_lbfgs(rosen, &[-1.2, 0.0], &[-inf, -inf], &[inf, 0.5], &o).unwrap();
        assert!(r.termination.converged(), "{:?}", r.termination);
        let a = r.x[0];
        assert_eq!(r.x[1], 0.5);
        assert!((-2.0 * (1.0 - a) - 400.0 * a * (0.5 - a * a)).abs() < 1e-8, "a = {a}");
        assert!(200.0 * (0.5 - a * a) < 0.0);
    }

    #[test]
    fn bad_bounds_and_starts_are_errors() {
        let o = LbfgsOptions::default();
        assert!(matches!(projected_lbfgs(rosen, &[0.0, 0.0], &[1.0, 0.0], &[0.0, 1.0], &o), Err(MinError::BadOption(_))));
        assert!(matches!(projected_lbfgs(rosen, &[0.0, 0.0], &[0.0], &[1.0, 1.0], &o), Err(MinError::BadOption(_))));
        assert!(matches!(projected_lbfgs(rosen, &[f64::NAN, 0.0], &[0.0, 0.0], &[1.0, 1.0], &o), Err(MinError::NonFiniteX0 { .. })));
    }

    #[test]
    fn a_start_outside_is_projected_and_linear_losses_stop_at_a_corner() {
        // f = x − 2y on [0, 1]²: the corner (0, 1), reached from outside the box.
        let f = |_: &[f64], g: &mut [f64]| {
            g[0] = 1.0;
            g[1] = -2.0;
            0.0
        };
        let lin = |x: &[f64], g: &mut [f64]| f(x, g) + x[0] - 2.0 * x[1];
        let r = projected_lbfgs(lin, &[5.0, -3.0], &[0.0, 0.0], &[1.0, 1.0], &LbfgsOptions::default()).unwrap();
        assert!(r.termination.converged());
        assert_eq!(r.x, [0.0, 1.0]);
        // Unbounded below when a direction of descent is unbounded.
        let inf = f64::INFINITY;
        let r = projected_lbfgs(lin, &[0.5, 0.5], &[0.0, 0.0], &[1.0, inf], &LbfgsOptions::default()).unwrap();
        assert_eq!(r.termination, MinTermination::UnboundedBelow);
    }
}
