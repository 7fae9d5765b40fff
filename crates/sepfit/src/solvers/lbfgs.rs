//! L-BFGS (limited-memory BFGS, two-loop recursion) with a strong-Wolfe line search
//! (Nocedal & Wright, Algorithms 3.5 and 3.6), on a closure `f(x, grad) -> value`.
//!
//! ```
//! use sepfit::solvers::lbfgs::{LbfgsOptions, lbfgs};
//! // Rosenbrock
//! let f = |x: &[f64], g: &mut [f64]| {
//!     let (a, b) = (1.0 - x[0], x[1] - x[0] * x[0]);
//!     g[0] = -2.0 * a - 400.0 * x[0] * b;
//!     g[1] = 200.0 * b;
//!     a * a + 100.0 * b * b
//! };
//! let r = lbfgs(f, &[-1.2, 1.0], &LbfgsOptions::default()).unwrap();
//! assert!(r.termination.converged());
//! assert!((r.x[0] - 1.0).abs() < 1e-7 && (r.x[1] - 1.0).abs() < 1e-7);
//! ```

pub use super::gd::{MinError, MinIter, MinReport, MinTermination};
use super::gd::{DEFAULT_F_FLOOR, Trial, check_common, classify, dot, norm, probe_unbounded};
use std::collections::VecDeque;

/// Options of [`lbfgs`].
#[derive(Clone, Debug, PartialEq)]
pub struct LbfgsOptions {
    /// Number of correction pairs kept.
    pub memory: usize,
    /// Iteration limit.
    pub max_iter: usize,
    /// Stop when `‖∇f‖₂ ≤ grad_tol`.
    pub grad_tol: f64,
    /// Sufficient-decrease constant of the Wolfe conditions.
    pub c1: f64,
    /// Curvature constant of the strong Wolfe conditions.
    pub c2: f64,
    /// Evaluations allowed per line search.
    pub max_line_search: usize,
    /// Record every iterate in [`MinReport::trace`].
    pub record: bool,
    /// `f` below this counts as unbounded below ([`MinTermination::UnboundedBelow`]).
    pub f_floor: f64,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        LbfgsOptions { memory: 10, max_iter: 1000, grad_tol: 1e-8, c1: 1e-4, c2: 0.9, max_line_search: 40, record: false, f_floor: DEFAULT_F_FLOOR }
    }
}

struct Eval<'a, F> {
    f: &'a mut F,
    x: &'a [f64],
    d: &'a [f64],
    xt: Vec<f64>,
    gt: Vec<f64>,
    evals: usize,
    f_floor: f64,
    unbounded: bool,
}

impl<F: FnMut(&[f64], &mut [f64]) -> f64> Eval<'_, F> {
    /// φ(a) and φ'(a); leaves x + a d and its gradient in `xt`, `gt`. A point where f or its
    /// gradient is not finite gives φ = NaN (the line search shortens the step), one where f is
    /// below the floor or −∞ sets `unbounded`.
    fn phi(&mut self, a: f64) -> (f64, f64) {
        for i in 0..self.x.len() {
            self.xt[i] = self.x[i] + a * self.d[i];
        }
        let v = (self.f)(&self.xt, &mut self.gt);
        self.evals += 1;
        match classify(v, &self.gt, self.f_floor) {
            Trial::Finite => (v, dot(&self.gt, self.d)),
            Trial::Unbounded => {
                self.unbounded = true;
                (f64::NAN, f64::NAN)
            }
            Trial::NonFinite => (f64::NAN, f64::NAN),
        }
    }
}

/// A point of a line search: step, φ, φ'.
type LinePoint = (f64, f64, f64);

/// Minimiser of the cubic through (a, fa, da), (b, fb, db), or `None`.
fn cubic_min(a: f64, fa: f64, da: f64, b: f64, fb: f64, db: f64) -> Option<f64> {
    let d1 = da + db - 3.0 * (fa - fb) / (a - b);
    let disc = d1 * d1 - da * db;
    if disc < 0.0 {
        return None;
    }
    let d2 = (b - a).signum() * disc.sqrt();
    let m = b - (b - a) * (db + d2 - d1) / (db - da + 2.0 * d2);
    m.is_finite().then_some(m)
}

/// Minimises `f` from `x0` by L-BFGS. See [`LbfgsOptions`].
///
/// A trial point where `f` or its gradient is not finite is never accepted (the line search
/// shortens the step). `f` below `f_floor` or −∞ at a trial stops with
/// [`MinTermination::UnboundedBelow`], and so does a line search that used up its evaluations
/// doubling the step with `f` still falling, when a probe with ever longer steps along the same
/// direction finds `f` falling past the floor (otherwise the longest step is taken).
pub fn lbfgs<F: FnMut(&[f64], &mut [f64]) -> f64>(mut f: F, x0: &[f64], opts: &LbfgsOptions) -> Result<MinReport, MinError> {
    check_common(x0, opts.grad_tol, opts.f_floor)?;
    if opts.memory == 0 || !(0.0 < opts.c1 && opts.c1 < opts.c2 && opts.c2 < 1.0) {
        return Err(MinError::BadOption("need memory ≥ 1 and 0 < c1 < c2 < 1".into()));
    }
    let n = x0.len();
    let (mut x, mut g, mut fx) = super::gd::start(&mut f, x0)?;
    let f0 = fx;
    let mut evals = 1;
    let mut trace = Vec::new();
    if opts.record {
        trace.push(MinIter { iter: 0, f: fx, grad_norm: norm(&g), x_norm: norm(&x), step: 0.0 });
    }
    let mut hist: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::new();
    let mut termination = MinTermination::MaxIterations;
    let mut iterations = 0;
    let mut d = vec![0.0; n];
    let mut alpha = vec![0.0; opts.memory];
    for it in 1..=opts.max_iter {
        if norm(&g) <= opts.grad_tol {
            termination = MinTermination::GradientTolerance;
            break;
        }
        // two-loop recursion: d = -H g
        d.copy_from_slice(&g);
        for (k, (s, y, rho)) in hist.iter().enumerate().rev() {
            alpha[k] = rho * dot(s, &d);
            for i in 0..n {
                d[i] -= alpha[k] * y[i];
            }
        }
        let gamma = hist.back().map(|(s, y, _)| dot(s, y) / dot(y, y)).unwrap_or(1.0 / norm(&g).max(1.0));
        for v in d.iter_mut() {
            *v *= gamma;
        }
        for (k, (s, y, rho)) in hist.iter().enumerate() {
            let b = rho * dot(y, &d);
            for i in 0..n {
                d[i] += s[i] * (alpha[k] - b);
            }
        }
        for v in d.iter_mut() {
            *v = -*v;
        }
        let mut dphi0 = dot(&g, &d);
        if dphi0.is_nan() || dphi0 >= 0.0 {
            hist.clear();
            for i in 0..n {
                d[i] = -g[i] / norm(&g).max(1.0);
            }
            dphi0 = dot(&g, &d);
        }
        // strong Wolfe line search
        let mut ev = Eval { f: &mut f, x: &x, d: &d, xt: vec![0.0; n], gt: vec![0.0; n], evals: 0, f_floor: opts.f_floor, unbounded: false };
        let (c1, c2) = (opts.c1, opts.c2);
        // Sufficient decrease, or Hager & Zhang's approximate Wolfe condition where the loss
        // changes only at its rounding level (so that φ(α) ≤ φ(0) + c1·α·φ'(0) cannot be
        // verified in floating point): φ(α) ≤ φ(0) + ε|φ(0)| and φ'(α) ≤ (2c1 − 1)·φ'(0).
        let eps_f = 1e-12 * fx.abs();
        let suff = |a: f64, fa: f64, da: f64| fa <= fx + c1 * a * dphi0 || (fa <= fx + eps_f && da <= (2.0 * c1 - 1.0) * dphi0);
        let mut found: Option<(f64, f64)> = None;
        let (mut a_prev, mut f_prev, mut d_prev) = (0.0, fx, dphi0);
        let mut a = 1.0;
        let mut zoom: Option<(LinePoint, LinePoint)> = None;
        // the bracketing phase used up its evaluations with f still falling
        let mut expanding = false;
        for i in 0..opts.max_line_search {
            let (fa, da) = ev.phi(a);
            if ev.unbounded {
                break;
            }
            if !fa.is_finite() {
                a = 0.5 * (a_prev + a);
                continue;
            }
            if !suff(a, fa, da) || (i > 0 && fa > f_prev + eps_f) {
                zoom = Some(((a_prev, f_prev, d_prev), (a, fa, da)));
                break;
            }
            if da.abs() <= -c2 * dphi0 {
                found = Some((a, fa));
                break;
            }
            if da >= 0.0 {
                zoom = Some(((a, fa, da), (a_prev, f_prev, d_prev)));
                break;
            }
            (a_prev, f_prev, d_prev) = (a, fa, da);
            a *= 2.0;
            expanding = i + 1 == opts.max_line_search;
        }
        if zoom.is_none() && found.is_none() && !ev.unbounded && a_prev > 0.0 {
            // The evaluations ran out, every finite trial having decreased f sufficiently. If
            // the last doubled the step, f may be unbounded below along d: probe with longer
            // steps. Otherwise take the longest step that decreased f.
            if expanding && probe_unbounded(ev.f, &x, &d, a_prev, fx, dphi0, c1, opts.f_floor, &mut ev.evals) {
                ev.unbounded = true;
            } else {
                let (fa, _) = ev.phi(a_prev);
                if fa.is_finite() {
                    found = Some((a_prev, fa));
                }
            }
        }
        if let Some((mut lo, mut hi)) = zoom.filter(|_| !ev.unbounded) {
            for _ in 0..opts.max_line_search {
                if ev.unbounded {
                    break;
                }
                let (l, h) = (lo.0.min(hi.0), lo.0.max(hi.0));
                let w = h - l;
                let mut at = cubic_min(lo.0, lo.1, lo.2, hi.0, hi.1, hi.2).unwrap_or(0.5 * (l + h));
                if !(at > l + 0.1 * w && at < h - 0.1 * w) {
                    at = 0.5 * (l + h);
                }
                let (fa, da) = ev.phi(at);
                if !fa.is_finite() || !suff(at, fa, da) || fa > lo.1 + eps_f {
                    hi = (at, fa, da);
                } else {
                    if da.abs() <= -c2 * dphi0 {
                        found = Some((at, fa));
                        break;
                    }
                    if da * (hi.0 - lo.0) >= 0.0 {
                        hi = lo;
                    }
                    lo = (at, fa, da);
                }
                if (hi.0 - lo.0).abs() < 1e-16 * lo.0.abs().max(1e-300) {
                    break;
                }
            }
            // accept the best sufficient-decrease point if Wolfe was not met exactly
            if found.is_none() && !ev.unbounded && lo.0 > 0.0 && lo.1 < fx {
                let (fa, _) = ev.phi(lo.0);
                if fa.is_finite() {
                    found = Some((lo.0, fa));
                }
            }
        }
        let (xt, gt) = (std::mem::take(&mut ev.xt), std::mem::take(&mut ev.gt));
        evals += ev.evals;
        if ev.unbounded {
            termination = MinTermination::UnboundedBelow;
            break;
        }
        let Some((step, fa)) = found else {
            if hist.is_empty() {
                termination = MinTermination::LineSearchFailed;
                break;
            }
            hist.clear();
            continue;
        };
        let s: Vec<f64> = xt.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gt.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * norm(&s) * norm(&y) {
            if hist.len() == opts.memory {
                hist.pop_front();
            }
            hist.push_back((s, y, 1.0 / sy));
        }
        x = xt;
        g = gt;
        fx = fa;
        iterations = it;
        if opts.record {
            trace.push(MinIter { iter: it, f: fx, grad_norm: norm(&g), x_norm: norm(&x), step });
        }
    }
    if termination == MinTermination::MaxIterations && norm(&g) <= opts.grad_tol {
        termination = MinTermination::GradientTolerance;
    }
    Ok(MinReport { grad_norm: norm(&g), x, f: fx, f0, iterations, evaluations: evals, termination, trace })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unbounded_below_is_detected() {
        let linear = |x: &[f64], g: &mut [f64]| {
            g.fill(1.0);
            x.iter().sum::<f64>()
        };
        let neg_square = |x: &[f64], g: &mut [f64]| {
            g[0] = -2.0 * x[0];
            -x[0] * x[0]
        };
        let cube = |x: &[f64], g: &mut [f64]| {
            g[0] = 3.0 * x[0] * x[0];
            x[0].powi(3)
        };
        let o = LbfgsOptions::default();
        for r in [lbfgs(linear, &[1.0, 2.0, 3.0], &o), lbfgs(neg_square, &[2.0], &o), lbfgs(cube, &[-1.0], &o)] {
            let r = r.unwrap();
            assert_eq!(r.termination, MinTermination::UnboundedBelow, "{r:?}");
            assert!(!r.termination.converged());
            assert!(r.x.iter().all(|v| v.is_finite()) && r.f.is_finite(), "{r:?}");
        }
        // log(x): −∞ at a trial at the edge of the domain (x = 0)
        let log = |x: &[f64], g: &mut [f64]| {
            g[0] = 1.0 / x[0];
            x[0].ln()
        };
        let r = lbfgs(log, &[2.0], &o).unwrap();
        assert!(!r.termination.converged(), "{r:?}");
    }

    #[test]
    fn a_long_linear_stretch_of_a_bounded_loss_is_not_unbounded() {
        // f = −1e15·tanh(x/1e15) is linear for a long way and bounded below by −1e15. The
        // first line search runs out of evaluations doubling the step (to 2^39); the probe finds
        // sufficient decrease failing, so the longest step is taken and the minimisation goes
        // on; it is never reported as unbounded below.
        let f = |x: &[f64], g: &mut [f64]| {
            let t = (x[0] / 1e15).tanh();
            g[0] = -(1.0 - t * t);
            -1e15 * t
        };
        let r = lbfgs(f, &[0.0], &LbfgsOptions::default()).unwrap();
        assert_ne!(r.termination, MinTermination::UnboundedBelow, "{r:?}");
        assert!(r.f < -1e12, "{r:?}");
    }

    #[test]
    fn non_finite_gradient_is_never_accepted() {
        let f = |x: &[f64], g: &mut [f64]| {
            g[0] = if x[0] < 0.5 { f64::NAN } else { 2.0 * x[0] };
            x[0] * x[0]
        };
        let r = lbfgs(f, &[2.0], &LbfgsOptions::default()).unwrap();
        assert!(!r.termination.converged(), "{r:?}");
        assert!(r.x[0] >= 0.5 && r.grad_norm.is_finite(), "{r:?}");
    }

    #[test]
    fn bad_starts_and_options_are_errors() {
        let sq = |x: &[f64], g: &mut [f64]| {
            g[0] = 2.0 * x[0];
            x[0] * x[0]
        };
        let o = LbfgsOptions::default();
        assert!(matches!(lbfgs(sq, &[f64::NAN], &o), Err(MinError::NonFiniteX0 { index: 0, .. })));
        let nan_g = |_: &[f64], g: &mut [f64]| {
            g[0] = f64::NAN;
            0.0
        };
        assert!(matches!(lbfgs(nan_g, &[1.0], &o), Err(MinError::NonFiniteStart { .. })));
        let neg_inf = |_: &[f64], g: &mut [f64]| {
            g[0] = 1.0;
            f64::NEG_INFINITY
        };
        assert!(matches!(lbfgs(neg_inf, &[1.0], &o), Err(MinError::NonFiniteStart { .. })));
        assert!(matches!(lbfgs(sq, &[1.0], &LbfgsOptions { grad_tol: f64::NAN, ..o.clone() }), Err(MinError::BadOption(_))));
    }

    #[test]
    fn iteration_limit_is_not_converged() {
        let rosen = |x: &[f64], g: &mut [f64]| {
            let (a, b) = (1.0 - x[0], x[1] - x[0] * x[0]);
            g[0] = -2.0 * a - 400.0 * x[0] * b;
            g[1] = 200.0 * b;
            a * a + 100.0 * b * b
        };
        let r = lbfgs(rosen, &[-1.2, 1.0], &LbfgsOptions { max_iter: 3, ..LbfgsOptions::default() }).unwrap();
        assert_eq!(r.termination, MinTermination::MaxIterations);
        assert!(!r.termination.converged());
    }
}
