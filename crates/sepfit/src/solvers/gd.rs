//! Gradient descent with a fixed step or Armijo backtracking, on any differentiable function
//! given as a closure `f(x, grad) -> value` (it writes the gradient into `grad`).
//!
//! Also holds the report types shared with [`super::lbfgs`].
//!
//! ```
//! use sepfit::solvers::gd::{GdOptions, gradient_descent};
//! // J(w) = ½(b₁w₁² + b₂w₂²), the fixed step 2/(b₁+b₂) contracts ‖w‖ by (κ−1)/(κ+1).
//! let (b1, b2) = (1.0, 4.0);
//! let f = |w: &[f64], g: &mut [f64]| {
//!     g[0] = b1 * w[0];
//!     g[1] = b2 * w[1];
//!     0.5 * (b1 * w[0] * w[0] + b2 * w[1] * w[1])
//! };
//! let opts = GdOptions { step: Some(2.0 / (b1 + b2)), max_iter: 3, grad_tol: 0.0, ..GdOptions::default() };
//! let r = gradient_descent(f, &[1.0, 1.0], &opts).unwrap();
//! let c: f64 = (4.0 - 1.0) / (4.0 + 1.0);
//! assert!((r.x[0].hypot(r.x[1]) - c.powi(3) * 2f64.sqrt()).abs() < 1e-12);
//! ```

/// Why a minimiser stopped (not an error: the report is still usable). Only
/// [`MinTermination::GradientTolerance`] counts as converged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MinTermination {
    /// `‖∇f‖₂ ≤ grad_tol`.
    GradientTolerance,
    /// The iteration limit was reached.
    MaxIterations,
    /// No step along the search direction decreased `f` (usually: at machine precision).
    LineSearchFailed,
    /// `f` decreases without bound: it fell below the options' `f_floor` (default −1e300) or
    /// reached −∞, at an accepted step or along a search direction on which a probe with
    /// ever longer steps kept decreasing it. There is no minimum to report; [`MinReport::x`] is
    /// the last accepted iterate.
    UnboundedBelow,
    /// `f` or its gradient became non-finite (NaN or ±∞) at the next iterate and no shorter
    /// step was tried (a fixed step that diverges) or none helped; [`MinReport::x`] is the last
    /// iterate where both were finite.
    NonFinite,
}

impl MinTermination {
    /// Whether this counts as converged.
    pub fn converged(self) -> bool {
        self == MinTermination::GradientTolerance
    }
    /// A short description.
    pub fn describe(self) -> &'static str {
        match self {
            MinTermination::GradientTolerance => "gradient norm below tolerance",
            MinTermination::MaxIterations => "maximum number of iterations reached",
            MinTermination::LineSearchFailed => "line search found no decrease (machine precision?)",
            MinTermination::UnboundedBelow => "loss unbounded below (it fell below -1e300 or reached -inf)",
            MinTermination::NonFinite => "loss or gradient not finite at the next iterate (diverged?)",
        }
    }
}

/// One iteration of a minimiser.
#[derive(Clone, Debug, PartialEq)]
pub struct MinIter {
    /// Iteration number (0 is the start).
    pub iter: usize,
    /// f at the iterate.
    pub f: f64,
    /// ‖∇f‖₂ at the iterate.
    pub grad_norm: f64,
    /// ‖x‖₂ of the iterate.
    pub x_norm: f64,
    /// Step length taken to reach it (0 at the start).
    pub step: f64,
}

/// What a minimiser did.
#[derive(Clone, Debug, PartialEq)]
pub struct MinReport {
    /// The final point.
    pub x: Vec<f64>,
    /// f there.
    pub f: f64,
    /// f at the start.
    pub f0: f64,
    /// ‖∇f‖₂ there.
    pub grad_norm: f64,
    /// Iterations taken.
    pub iterations: usize,
    /// Evaluations of f and its gradient.
    pub evaluations: usize,
    /// Why it stopped.
    pub termination: MinTermination,
    /// Every iterate (when asked for with `record`).
    pub trace: Vec<MinIter>,
}

/// Why a minimiser could not run.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum MinError {
    /// f or its gradient is not finite at the starting point.
    #[error("the function or its gradient is not finite at the starting point (f = {f})")]
    NonFiniteStart {
        /// f at the start.
        f: f64,
    },
    /// An entry of the starting point is not finite.
    #[error("the starting point is not finite (x[{index}] = {value})")]
    NonFiniteX0 {
        /// Index of the first non-finite entry.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// An option is out of range.
    #[error("bad option: {0}")]
    BadOption(String),
    /// The starting point is empty.
    #[error("nothing to minimise: the starting point is empty")]
    Empty,
}

/// Options of [`gradient_descent`].
#[derive(Clone, Debug, PartialEq)]
pub struct GdOptions {
    /// A fixed step; `None` backtracks (Armijo) from `initial_step`.
    pub step: Option<f64>,
    /// First trial step of the backtracking search (later searches start from twice the last).
    pub initial_step: f64,
    /// Iteration limit.
    pub max_iter: usize,
    /// Stop when `‖∇f‖₂ ≤ grad_tol`.
    pub grad_tol: f64,
    /// Armijo constant.
    pub c1: f64,
    /// Record every iterate in [`MinReport::trace`].
    pub record: bool,
    /// `f` below this counts as unbounded below ([`MinTermination::UnboundedBelow`]).
    pub f_floor: f64,
}

impl Default for GdOptions {
    fn default() -> Self {
        GdOptions { step: None, initial_step: 1.0, max_iter: 10_000, grad_tol: 1e-8, c1: 1e-4, record: false, f_floor: DEFAULT_F_FLOOR }
    }
}

/// The default `f_floor` of [`GdOptions`] and [`crate::solvers::lbfgs::LbfgsOptions`]: a loss
/// below −1e300 is taken to be unbounded below.
pub const DEFAULT_F_FLOOR: f64 = -1e300;

/// Checks the options shared by both minimisers.
pub(crate) fn check_common(x0: &[f64], grad_tol: f64, f_floor: f64) -> Result<(), MinError> {
    if x0.is_empty() {
        return Err(MinError::Empty);
    }
    if let Some(index) = x0.iter().position(|v| !v.is_finite()) {
        return Err(MinError::NonFiniteX0 { index, value: x0[index] });
    }
    if grad_tol.is_nan() || grad_tol < 0.0 {
        return Err(MinError::BadOption(format!("grad_tol must be a number ≥ 0, got {grad_tol}")));
    }
    if f_floor.is_nan() {
        return Err(MinError::BadOption("f_floor is NaN".into()));
    }
    Ok(())
}

/// A trial value with its gradient, classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trial {
    /// f and its gradient finite, f at or above the floor.
    Finite,
    /// f is −∞ or below the floor.
    Unbounded,
    /// f is NaN or +∞, or the gradient is not finite.
    NonFinite,
}

pub(crate) fn classify(fx: f64, g: &[f64], f_floor: f64) -> Trial {
    if fx == f64::NEG_INFINITY || fx < f_floor {
        Trial::Unbounded
    } else if !fx.is_finite() || g.iter().any(|v| !v.is_finite()) {
        Trial::NonFinite
    } else {
        Trial::Finite
    }
}

/// Whether `f` keeps decreasing without bound along `x + a·d` beyond `a0`: evaluates at
/// `a0·4, a0·4·16, a0·4·16·256, …` (the factor squaring each time, at most 12 evaluations),
/// up to the longest step that keeps `x + a·d` finite,
/// while every trial stays finite and satisfies sufficient decrease `f ≤ fx + c1·a·slope`
/// (`slope < 0`); true when a trial reaches the floor or −∞. Used when a line search kept
/// accepting ever longer steps: on a loss bounded below sufficient decrease must fail eventually.
#[allow(clippy::too_many_arguments)]
pub(crate) fn probe_unbounded<F: FnMut(&[f64], &mut [f64]) -> f64>(
    f: &mut F,
    x: &[f64],
    d: &[f64],
    a0: f64,
    fx: f64,
    slope: f64,
    c1: f64,
    f_floor: f64,
    evals: &mut usize,
) -> bool {
    let n = x.len();
    let mut xt = vec![0.0; n];
    let mut gt = vec![0.0; n];
    // the longest step that keeps x + a·d finite
    let dmax = d.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let xmax = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if dmax == 0.0 || !dmax.is_finite() || xmax > 1e306 {
        return false;
    }
    let a_max = 1e307 / dmax;
    let mut a = a0;
    let mut factor = 4.0f64;
    for _ in 0..12 {
        if a >= a_max {
            return false;
        }
        a = (a * factor).min(a_max);
        factor *= factor;
        for i in 0..n {
            xt[i] = x[i] + a * d[i];
        }
        if xt.iter().any(|v| !v.is_finite()) {
            return false;
        }
        let ft = f(&xt, &mut gt);
        *evals += 1;
        if ft == f64::NEG_INFINITY || ft < f_floor {
            return true;
        }
        if !ft.is_finite() || ft > fx + c1 * a * slope {
            return false;
        }
    }
    false
}

/// Evaluates `f` and its gradient at `x0`; a non-finite value or gradient there is an error.
pub(crate) fn start<F: FnMut(&[f64], &mut [f64]) -> f64>(f: &mut F, x0: &[f64]) -> Result<(Vec<f64>, Vec<f64>, f64), MinError> {
    let x = x0.to_vec();
    let mut g = vec![0.0; x.len()];
    let fx = f(&x, &mut g);
    if !fx.is_finite() || g.iter().any(|v| !v.is_finite()) {
        return Err(MinError::NonFiniteStart { f: fx });
    }
    Ok((x, g, fx))
}

pub(crate) fn norm(v: &[f64]) -> f64 {
    let s = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if s.is_finite() || v.iter().any(|x| !x.is_finite()) {
        return s;
    }
    // overflow of the squares of finite entries: scale
    let m = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    m * v.iter().map(|x| (x / m) * (x / m)).sum::<f64>().sqrt()
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Minimises `f` from `x0` by gradient descent. See [`GdOptions`].
///
/// A trial point where `f` or its gradient is not finite is never accepted: the backtracking
/// search shortens the step, a fixed step stops with [`MinTermination::NonFinite`]. `f` below
/// `f_floor` or −∞ stops with [`MinTermination::UnboundedBelow`], and so does a backtracking
/// search whose step has grown by 2⁴⁰ when a probe along the gradient with ever longer steps
/// finds `f` falling past the floor.
pub fn gradient_descent<F: FnMut(&[f64], &mut [f64]) -> f64>(mut f: F, x0: &[f64], opts: &GdOptions) -> Result<MinReport, MinError> {
    check_common(x0, opts.grad_tol, opts.f_floor)?;
    if let Some(s) = opts.step.filter(|s| !(*s > 0.0 && s.is_finite())) {
        return Err(MinError::BadOption(format!("step must be positive, got {s}")));
    }
    if opts.step.is_none() && !(opts.initial_step > 0.0 && opts.initial_step.is_finite()) {
        return Err(MinError::BadOption(format!("initial_step must be positive, got {}", opts.initial_step)));
    }
    let n = x0.len();
    let (mut x, mut g, mut fx) = start(&mut f, x0)?;
    let f0 = fx;
    let mut evals = 1;
    let mut trace = Vec::new();
    let rec = |trace: &mut Vec<MinIter>, iter, fx, g: &[f64], x: &[f64], step| {
        if opts.record {
            trace.push(MinIter { iter, f: fx, grad_norm: norm(g), x_norm: norm(x), step });
        }
    };
    rec(&mut trace, 0, fx, &g, &x, 0.0);
    let mut t = opts.initial_step;
    // probe for a loss unbounded below once the backtracking step has grown this long
    let mut probe_at = opts.initial_step * 2f64.powi(40);
    let mut xt = vec![0.0; n];
    let mut gt = vec![0.0; n];
    let mut termination = MinTermination::MaxIterations;
    let mut iterations = 0;
    for it in 1..=opts.max_iter {
        let gn = norm(&g);
        if gn <= opts.grad_tol {
            termination = MinTermination::GradientTolerance;
            break;
        }
        let step = match opts.step {
            Some(s) => {
                for i in 0..n {
                    xt[i] = x[i] - s * g[i];
                }
                let ft = f(&xt, &mut gt);
                evals += 1;
                match classify(ft, &gt, opts.f_floor) {
                    Trial::Finite => {}
                    Trial::Unbounded => {
                        termination = MinTermination::UnboundedBelow;
                        break;
                    }
                    Trial::NonFinite => {
                        termination = MinTermination::NonFinite;
                        break;
                    }
                }
                fx = ft;
                s
            }
            None => {
                let mut accepted = None;
                let mut unbounded = false;
                for _ in 0..80 {
                    for i in 0..n {
                        xt[i] = x[i] - t * g[i];
                    }
                    let ft = f(&xt, &mut gt);
                    evals += 1;
                    match classify(ft, &gt, opts.f_floor) {
                        Trial::Unbounded => {
                            unbounded = true;
                            break;
                        }
                        Trial::Finite if ft <= fx - opts.c1 * t * gn * gn => {
                            accepted = Some(ft);
                            break;
                        }
                        _ => t *= 0.5,
                    }
                }
                if !unbounded && accepted.is_some() && t >= probe_at {
                    let d: Vec<f64> = g.iter().map(|v| -v).collect();
                    unbounded = probe_unbounded(&mut f, &x, &d, t, fx, -gn * gn, opts.c1, opts.f_floor, &mut evals);
                    probe_at = t * 2f64.powi(40);
                }
                if unbounded {
                    termination = MinTermination::UnboundedBelow;
                    break;
                }
                match accepted {
                    Some(ft) => {
                        fx = ft;
                        let s = t;
                        t *= 2.0;
                        s
                    }
                    None => {
                        termination = MinTermination::LineSearchFailed;
                        break;
                    }
                }
            }
        };
        std::mem::swap(&mut x, &mut xt);
        std::mem::swap(&mut g, &mut gt);
        iterations = it;
        rec(&mut trace, it, fx, &g, &x, step);
    }
    if termination == MinTermination::MaxIterations && norm(&g) <= opts.grad_tol {
        termination = MinTermination::GradientTolerance;
    }
    Ok(MinReport { grad_norm: norm(&g), x, f: fx, f0, iterations, evaluations: evals, termination, trace })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linear(x: &[f64], g: &mut [f64]) -> f64 {
        g.fill(1.0);
        x.iter().sum()
    }

    fn neg_square(x: &[f64], g: &mut [f64]) -> f64 {
        g[0] = -2.0 * x[0];
        -x[0] * x[0]
    }

    #[test]
    fn unbounded_below_is_detected() {
        // sum(x) with backtracking: the step doubles; after 2^40 the probe finds f past −1e300
        let r = gradient_descent(linear, &[1.0, 2.0, 3.0], &GdOptions::default()).unwrap();
        assert_eq!(r.termination, MinTermination::UnboundedBelow, "{r:?}");
        assert!(!r.termination.converged());
        assert!(r.iterations < 100 && r.x.iter().all(|v| v.is_finite()), "{r:?}");
        // −x² with backtracking and with a fixed step (f overflows to −∞)
        for step in [None, Some(0.5)] {
            let r = gradient_descent(neg_square, &[2.0], &GdOptions { step, ..GdOptions::default() }).unwrap();
            assert_eq!(r.termination, MinTermination::UnboundedBelow, "{step:?}: {r:?}");
            assert!(r.x[0].is_finite() && r.f.is_finite());
        }
        // a floor of the caller's choosing
        let r = gradient_descent(linear, &[0.0], &GdOptions { step: Some(1.0), f_floor: -10.0, ..GdOptions::default() }).unwrap();
        assert_eq!(r.termination, MinTermination::UnboundedBelow);
        assert_eq!(r.iterations, 10);
    }

    #[test]
    fn fixed_step_divergence_is_non_finite() {
        let sq = |x: &[f64], g: &mut [f64]| {
            g[0] = 2.0 * x[0];
            x[0] * x[0]
        };
        let r = gradient_descent(sq, &[1.0], &GdOptions { step: Some(1.5), ..GdOptions::default() }).unwrap();
        assert_eq!(r.termination, MinTermination::NonFinite, "{r:?}");
        assert!(r.x[0].is_finite() && r.f.is_finite() && r.grad_norm.is_finite());
    }

    #[test]
    fn non_finite_gradient_is_never_accepted() {
        // f finite everywhere, its gradient NaN for x < 0.5: the minimiser at 0 is out of reach
        let f = |x: &[f64], g: &mut [f64]| {
            g[0] = if x[0] < 0.5 { f64::NAN } else { 2.0 * x[0] };
            x[0] * x[0]
        };
        let r = gradient_descent(f, &[2.0], &GdOptions::default()).unwrap();
        assert!(!r.termination.converged(), "{r:?}");
        assert!(r.x[0] >= 0.5 && r.grad_norm.is_finite(), "{r:?}");
    }

    #[test]
    fn bad_starts_and_options_are_errors() {
        let sq = |x: &[f64], g: &mut [f64]| {
            g[0] = 2.0 * x[0];
            x[0] * x[0]
        };
        let o = GdOptions::default();
        assert!(matches!(gradient_descent(sq, &[f64::NAN], &o), Err(MinError::NonFiniteX0 { index: 0, .. })));
        assert!(matches!(gradient_descent(sq, &[1.0, f64::INFINITY], &o), Err(MinError::NonFiniteX0 { index: 1, .. })));
        let nan_f = |_: &[f64], g: &mut [f64]| {
            g[0] = 0.0;
            f64::NAN
        };
        assert!(matches!(gradient_descent(nan_f, &[1.0], &o), Err(MinError::NonFiniteStart { .. })));
        let nan_g = |_: &[f64], g: &mut [f64]| {
            g[0] = f64::NAN;
            0.0
        };
        assert!(matches!(gradient_descent(nan_g, &[1.0], &o), Err(MinError::NonFiniteStart { .. })));
        for grad_tol in [f64::NAN, -1.0] {
            assert!(matches!(gradient_descent(sq, &[1.0], &GdOptions { grad_tol, ..o.clone() }), Err(MinError::BadOption(_))));
        }
        assert!(matches!(gradient_descent(sq, &[1.0], &GdOptions { initial_step: 0.0, ..o.clone() }), Err(MinError::BadOption(_))));
    }

    #[test]
    fn iteration_limit_is_not_converged() {
        let sq = |x: &[f64], g: &mut [f64]| {
            g[0] = 2.0 * x[0];
            g[1] = 200.0 * x[1];
            x[0] * x[0] + 100.0 * x[1] * x[1]
        };
        let r = gradient_descent(sq, &[1.0, 1.0], &GdOptions { max_iter: 3, ..GdOptions::default() }).unwrap();
        assert_eq!(r.termination, MinTermination::MaxIterations);
        assert!(!r.termination.converged());
    }

    #[test]
    fn norm_does_not_overflow() {
        assert!((norm(&[3e200, 4e200]) / 5e200 - 1.0).abs() < 1e-15);
        assert_eq!(norm(&[3.0, 4.0]), 5.0);
        assert!(norm(&[f64::INFINITY, 1.0]).is_infinite());
        assert!(norm(&[f64::NAN, 1.0]).is_nan());
    }
}
