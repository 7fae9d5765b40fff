//! Levenberg–Marquardt in the style of MINPACK `lmder` (Moré 1978), with box bounds.
//!
//! Minimises `½‖f(x)‖²` for a residual vector `f: ℝᵐ → ℝⁿ` with Jacobian `J`.
//! Each iteration solves the trust-region subproblem
//!
//! ```text
//! min_p ‖f + J p‖   subject to  ‖D p‖ ≤ Δ
//! ```
//!
//! where `D = diag(d_k)` holds the running maximum of the Jacobian column norms
//! (MINPACK `mode = 1`). The subproblem is solved exactly (up to 10 % in `‖Dp‖`)
//! by the Levenberg parameter search `lmpar`: `p(λ) = −(JᵀJ + λD²)⁻¹ Jᵀ f`, using a
//! column-pivoted Householder QR of `J` and Givens rotations for each trial `λ`
//! (`qrsolv`). The step is accepted when the ratio `ρ` of actual to predicted
//! reduction exceeds `10⁻⁴`; `Δ` is updated from `ρ` as in MINPACK.
//!
//! **Steps much better than predicted** (a departure from MINPACK). A step with
//! `ρ > 2` whose actual reduction is above the rounding level of `‖f‖²` (see
//! below) is rejected, `Δ` is halved and `λ` doubled: the linear model is not valid
//! over that step (MINPACK's own `ftol` test already treats `ρ > 2` that way).
//! MINPACK accepts such steps. They happen on plateaus where the Jacobian is
//! nearly zero, where the scaling `D` lets an insensitive parameter jump far,
//! e.g. NIST MGH17 from start 1 (`b4 = 1`, `b5 = 2`, basis `exp(−x b)` ≈ 0 for
//! `x ≥ 10`): the first step took `b5` from 2 to 0.44 (ρ ≈ 2·10⁵), past `b4`, and the
//! fit ended at the label-swapped optimum. With the test `b5` descends in steps the
//! model can follow and the fit reaches the certified one. Over a grid of 225 starts
//! for MGH17, the share that keeps the labels of the start rose from 98 to 130 (and
//! label swaps fell from 35 to 12); on the other 53 NIST runs the test never fires
//! at a real reduction except for Eckerle4 and MGH10 from start 1 (a few
//! more iterations). Reductions at the rounding level give meaningless `ρ` and
//! are treated as in MINPACK.
//!
//! **Rounding level.** A problem may report through
//! [`LeastSquaresProblem::rounding_scale`] a norm `‖s‖` such that residual `i`
//! carries a rounding error of about `ε sᵢ` (for `f = W(y − model)`, `s` is made of
//! `|y|` and `|model|`). Changes of `‖f‖²` below `8ε‖s‖‖f‖` (relative:
//! `8ε‖s‖/‖f‖`, at least `8ε`) are treated as rounding noise.
//!
//! **Polishing.** After a converged termination, Gauss–Newton steps
//! (`λ = 0`, `p = J⁺f` from the pivoted QR, singular columns held) are taken from the
//! final point as long as `‖f‖²` does not increase by more than its rounding level, and
//! the iterate with the smallest Gauss–Newton correction `‖D J⁺f‖` is kept (with linear
//! convergence the correction is proportional to the distance to the solution, so this
//! is the best-converged point, and it needs no cost comparison). The steps stop when two
//! in a row bring no smaller correction (the corrections have reached rounding noise),
//! after a step at the rounding level of `x` (`‖Dp‖ ≤ 4ε‖Dx‖`), or after 50 steps.
//! Why: near the solution of an ill-conditioned problem the cost changes by less
//! than its rounding error long before `x` is accurate (a parameter error `δ` in
//! units of its standard error changes `‖f‖²` by a relative `δ²/dof`), so the `ftol`
//! and `xtol` tests fire, and no cost-based acceptance test can go further. The
//! Gauss–Newton correction keeps shrinking until `Jᵀf` is zero to rounding. On
//! the NIST StRD problems this raised the smallest LRE of the estimates from
//! 6.5–7.5 (ENSO, Lanczos3, MGH09, Thurber, MGH10) to above 10.3 on all 54 runs.
//! (An earlier rule, stopping at the first correction that was not smaller than the
//! step before it, was at the mercy of rounding: a 1-ulp change in `exp` or in the
//! Householder arithmetic stopped NIST Rat43 or Thurber after 0–1 steps at LRE 8.2–9.5.)
//! It costs one residual and one Jacobian evaluation per step. Polishing steps that are
//! kept are counted in [`LmReport::polish_steps`], not in `iterations`, and appended to
//! the log and path; the termination reason is the one that ended the LM iteration.
//!
//! **Terminal Newton steps.** Where the residuals are not small, Gauss–Newton converges only
//! linearly: the error contracts by about `‖(JᵀJ)⁻¹S‖` per step, `S = Σ fᵢ∇²fᵢ` (1/75 per
//! step on the 1,024-point biexponential, so 6 steps from a close start). At full precision
//! (polishing on, `ftol ≤ 1e-13`), the iteration keeps a secant estimate of
//! `S` (`secant.rs`: symmetric rank-one updates from `Δg − JᵀJ s` between accepted iterates)
//! and, once the Gauss–Newton steps are evidently in that terminal phase (the last one accepted
//! at `λ = 0` with `ρ ∈ [½, 2]`, a quarter or less of the one before), tries the Newton step of
//! `(JᵀJ + S) p = Jᵀf` instead when `JᵀJ + S` is positive definite and the step differs from
//! the Gauss–Newton one by at most half of its length, inside the trust region (and strictly
//! inside the bounds, with every parameter free). It is accepted
//! or rejected like any trial; after a rejection no more are tried, and polishing (whose first
//! step is the same Newton step when the secant has not failed) continues with Gauss–Newton
//! corrections as before, so the point it stops at is the same fixed point. On the
//! biexponential a fit takes 5 evaluations instead of 7; over the 54 NIST StRD runs 1,087
//! instead of 1,411, every LRE unchanged to 0.05.
//!
//! **Bounds.** Iterates are kept feasible: a variable sitting on a bound whose
//! gradient `(Jᵀf)_k` points out of the box is frozen for the iteration (its
//! column is removed from the subproblem), and the step of the remaining ones is
//! projected onto the box. When a projection changes the step, the predicted
//! reduction is computed directly as `‖f‖² − ‖f + J s‖²` for the step `s`
//! actually taken.
//!
//! **Non-finite values.** A residual evaluation that fails or produces a
//! non-finite value counts as an infinite cost: the trial step is rejected and the
//! trust region shrinks by a factor 10.
//!
//! **Termination** (MINPACK `info` codes in brackets), see [`Termination`]:
//! `ftol` \[1\]: `|actred| ≤ ftol` and `prered ≤ ftol` and `ρ ≤ 2`, where both
//! reductions are relative to `‖f‖²`; `xtol` \[2\]: `Δ ≤ xtol ‖D x‖`; `gtol` \[4\]: the
//! largest cosine between `f` and a column of `J` is `≤ gtol`. The machine
//! precision variants [6, 7, 8] mean the requested tolerance is below what
//! `f64` can resolve: the solution is as accurate as it can get.

use crate::model::ModelError;
use crate::linalg::kernels::dot;

/// A nonlinear least-squares problem for [`levenberg_marquardt`].
pub trait LeastSquaresProblem {
    /// Number of residuals `n`.
    fn n_residuals(&self) -> usize;
    /// Number of parameters `m`.
    fn n_params(&self) -> usize;
    /// Computes `f(x)` into `r` (length `n`). Errors and non-finite values are
    /// treated as an infinite cost.
    fn residuals(&mut self, x: &[f64], r: &mut [f64]) -> Result<(), ModelError>;
    /// Computes the Jacobian `∂f/∂x` at `x` into `jac`, column-major `n × m`.
    ///
    /// It is only called at the `x` of the most recent successful
    /// [`residuals`](Self::residuals) call, so implementations may reuse work.
    fn jacobian(&mut self, x: &[f64], jac: &mut [f64]) -> Result<(), ModelError>;

    /// Rounding scale of the residuals at the most recent successful
    /// [`residuals`](Self::residuals) call: a norm `‖s‖` such that residual `i` is
    /// computed with an error of about `ε·sᵢ`. For a data-fitting residual
    /// `f = W(y − model)` this is `‖W|y|‖ + ‖W|model|‖`: the residuals are small
    /// differences of larger numbers and carry their rounding errors.
    ///
    /// Changes of `‖f‖²` smaller than about `2ε‖s‖‖f‖` are rounding noise; the
    /// solver uses this to tell them from real changes. The default, `None`, means
    /// `s = f` (residuals accurate to relative precision `ε`).
    fn rounding_scale(&self) -> Option<f64> {
        None
    }
}

/// Why the Levenberg–Marquardt iteration stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Termination {
    /// Relative reduction of the cost (actual and predicted) ≤ `ftol` [MINPACK 1].
    CostChangeTolerance,
    /// Relative trust-region radius `Δ/‖Dx‖` ≤ `xtol` [MINPACK 2].
    StepTolerance,
    /// Both the `ftol` and the `xtol` tests fired [MINPACK 3].
    CostChangeAndStepTolerance,
    /// Largest cosine between residual and a Jacobian column ≤ `gtol` [MINPACK 4];
    /// also used for an exactly zero residual.
    GradientTolerance,
    /// `ftol` is too small: no further reduction possible in `f64` [MINPACK 6].
    CostChangeAtMachinePrecision,
    /// `xtol` is too small: no further improvement of `x` possible [MINPACK 7].
    StepAtMachinePrecision,
    /// `gtol` is too small: residual orthogonal to the Jacobian columns to
    /// machine precision [MINPACK 8].
    GradientAtMachinePrecision,
    /// Every parameter is held at a bound by a gradient pointing out of the box
    /// (a constrained stationary point), or there are no parameters.
    NoFreeParameters,
    /// The iteration limit was reached (not converged).
    MaxIterations,
    /// The residual evaluation limit was reached (not converged) [MINPACK 5].
    MaxEvaluations,
    /// The Jacobian at an accepted point is non-finite or could not be computed.
    NonFiniteJacobian,
}

impl Termination {
    /// True for the terminations that mean a (local) optimum was reached.
    pub fn is_converged(self) -> bool {
        use Termination::*;
        matches!(
            self,
            CostChangeTolerance
                | StepTolerance
                | CostChangeAndStepTolerance
                | GradientTolerance
                | CostChangeAtMachinePrecision
                | StepAtMachinePrecision
                | GradientAtMachinePrecision
                | NoFreeParameters
        )
    }

    /// The variant's name (as `{:?}` prints it, and as the JSON reports and batch rows write it).
    pub fn name(self) -> &'static str {
        use Termination::*;
        match self {
            CostChangeTolerance => "CostChangeTolerance",
            StepTolerance => "StepTolerance",
            CostChangeAndStepTolerance => "CostChangeAndStepTolerance",
            GradientTolerance => "GradientTolerance",
            CostChangeAtMachinePrecision => "CostChangeAtMachinePrecision",
            StepAtMachinePrecision => "StepAtMachinePrecision",
            GradientAtMachinePrecision => "GradientAtMachinePrecision",
            NoFreeParameters => "NoFreeParameters",
            MaxIterations => "MaxIterations",
            MaxEvaluations => "MaxEvaluations",
            NonFiniteJacobian => "NonFiniteJacobian",
        }
    }

    /// A one-line human-readable explanation.
    pub fn message(self) -> &'static str {
        use Termination::*;
        match self {
            CostChangeTolerance => "relative reduction of the sum of squares is at most ftol",
            StepTolerance => "relative change of the parameters is at most xtol",
            CostChangeAndStepTolerance => "both the ftol and the xtol tests are satisfied",
            GradientTolerance => "residuals are orthogonal to the Jacobian columns (gtol)",
            CostChangeAtMachinePrecision => "no further reduction of the sum of squares is possible (machine precision)",
            StepAtMachinePrecision => "no further improvement of the parameters is possible (machine precision)",
            GradientAtMachinePrecision => "residuals orthogonal to the Jacobian to machine precision",
            NoFreeParameters => "all parameters are held at their bounds (or there are none)",
            MaxIterations => "iteration limit reached before convergence",
            MaxEvaluations => "evaluation limit reached before convergence",
            NonFiniteJacobian => "the Jacobian is non-finite (or failed) at an accepted point",
        }
    }
}

impl std::fmt::Display for Termination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// Options of [`levenberg_marquardt`] (MINPACK names).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LmOptions {
    /// Relative cost-reduction tolerance. Default `1e-15`.
    pub ftol: f64,
    /// Relative step tolerance. Default `1e-15`.
    pub xtol: f64,
    /// Gradient (cosine) tolerance. Default `1e-15`.
    pub gtol: f64,
    /// Maximum number of iterations (Jacobian evaluations). Default 1000.
    pub max_iterations: usize,
    /// Maximum number of residual evaluations. Default 10000.
    pub max_evaluations: usize,
    /// Initial trust radius is `factor · ‖D x₀‖` (or `factor` if that is 0).
    /// Default 1 (MINPACK suggests 100; 1 is more cautious and solved NIST
    /// MGH10 from start 1, where 100 walks off along a degenerate valley).
    pub factor: f64,
    /// Lower bounds (length `m`, `-inf` allowed); `None` = unbounded.
    pub lower: Option<Vec<f64>>,
    /// Upper bounds (length `m`, `+inf` allowed); `None` = unbounded.
    pub upper: Option<Vec<f64>>,
    /// Polish a converged solution with Gauss–Newton steps to full double precision (see the
    /// module docs). Default `true`; turn it off when digits far below the noise level are not
    /// worth the extra evaluations (e.g. fitting many noisy curves).
    pub polish: bool,
    /// Keep the iteration log and the path of accepted iterates in the report. Default
    /// `true`; off, they are empty (for many fits whose paths nobody reads).
    pub record: bool,
}

impl Default for LmOptions {
    fn default() -> Self {
        Self {
            ftol: 1e-15,
            xtol: 1e-15,
            gtol: 1e-15,
            max_iterations: 1000,
            max_evaluations: 10000,
            factor: 1.0,
            lower: None,
            upper: None,
            polish: true,
            record: true,
        }
    }
}

/// One line of the iteration log (Ceres-style columns).
#[derive(Debug, Clone, PartialEq)]
pub struct IterationRecord {
    /// Iteration number (0 = starting point).
    pub iter: usize,
    /// Cost `½‖f‖²` after the iteration.
    pub cost: f64,
    /// Decrease of the cost during the iteration.
    pub cost_change: f64,
    /// `‖Jᵀf‖∞` over the free parameters at the start of the iteration.
    pub gradient_norm: f64,
    /// Euclidean norm of the accepted step (0 when none was accepted).
    pub step_norm: f64,
    /// Ratio of actual to predicted reduction of the last trial step.
    pub ratio: f64,
    /// Levenberg parameter `λ` of the last trial step.
    pub lambda: f64,
    /// Trust-region radius `Δ` after the iteration.
    pub radius: f64,
    /// Residual evaluations so far.
    pub evaluations: usize,
}

/// What [`levenberg_marquardt`] found.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LmReport {
    /// Final parameters.
    pub x: Vec<f64>,
    /// Residuals at `x`.
    pub residuals: Vec<f64>,
    /// Final cost `½‖f(x)‖²`.
    pub cost: f64,
    /// Initial cost.
    pub initial_cost: f64,
    /// Why the iteration stopped.
    pub termination: Termination,
    /// Number of iterations (Jacobian evaluations at accepted points).
    pub iterations: usize,
    /// Number of residual evaluations.
    pub residual_evaluations: usize,
    /// Number of Jacobian evaluations.
    pub jacobian_evaluations: usize,
    /// Number of rejected trial steps.
    pub rejected_steps: usize,
    /// Per-iteration log (entry 0 is the starting point).
    pub log: Vec<IterationRecord>,
    /// Accepted iterates `x₀, x₁, …` (for plotting the path).
    pub path: Vec<Vec<f64>>,
    /// `true` for parameters that end on their lower bound.
    pub at_lower: Vec<bool>,
    /// `true` for parameters that end on their upper bound.
    pub at_upper: Vec<bool>,
    /// Numerical rank of the last Jacobian factorised (free columns only).
    pub jacobian_rank: usize,
    /// Gauss–Newton polishing steps accepted after convergence (not counted in
    /// `iterations`; their evaluations are counted, and they are appended to `log`
    /// and `path`). See the module docs.
    pub polish_steps: usize,
}

/// Errors that prevent [`levenberg_marquardt`] from running.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LmError {
    /// `x0` has the wrong length.
    #[error("starting point has {got} values but the problem has {expected} parameters")]
    StartLength {
        /// Expected length.
        expected: usize,
        /// Given length.
        got: usize,
    },
    /// A starting value is NaN or infinite.
    #[error("starting value of parameter {index} is not finite ({value})")]
    NonFiniteStart {
        /// Parameter index.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// Bounds have the wrong length.
    #[error("{which} bounds have {got} values but the problem has {expected} parameters")]
    BoundsLength {
        /// "lower" or "upper".
        which: &'static str,
        /// Expected length.
        expected: usize,
        /// Given length.
        got: usize,
    },
    /// A lower bound exceeds its upper bound, or a bound is NaN.
    #[error("invalid bounds for parameter {index}: lower {lower} > upper {upper} (or NaN)")]
    InvalidBounds {
        /// Parameter index.
        index: usize,
        /// Lower bound.
        lower: f64,
        /// Upper bound.
        upper: f64,
    },
    /// A starting value lies outside its bounds.
    #[error("starting value {value} of parameter {index} is outside its bounds [{lower}, {upper}]; move it inside")]
    StartOutsideBounds {
        /// Parameter index.
        index: usize,
        /// Starting value.
        value: f64,
        /// Lower bound.
        lower: f64,
        /// Upper bound.
        upper: f64,
    },
    /// A tolerance is negative or NaN.
    #[error("tolerance {name} = {value} must be a non-negative number")]
    InvalidTolerance {
        /// Name of the tolerance.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// The residuals at the starting point are non-finite or the problem failed there (the
    /// iteration cannot start; see [`LeastSquaresProblem::residuals`] for the reason).
    #[error("the residuals are not finite (or cannot be computed) at the starting point")]
    NonFiniteAtStart,
    /// The problem has fewer residuals than parameters.
    #[error("{n} residuals are fewer than the {m} parameters; need at least as many observations as parameters")]
    TooFewResiduals {
        /// Number of residuals.
        n: usize,
        /// Number of parameters.
        m: usize,
    },
}

mod minpack;
mod polish;
mod secant;

use minpack::*;
use polish::*;

fn validate(m: usize, x0: &[f64], opts: &LmOptions) -> Result<(Vec<f64>, Vec<f64>), LmError> {
    if x0.len() != m {
        return Err(LmError::StartLength { expected: m, got: x0.len() });
    }
    if let Some((index, &value)) = x0.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(LmError::NonFiniteStart { index, value });
    }
    for (name, value) in [("ftol", opts.ftol), ("xtol", opts.xtol), ("gtol", opts.gtol), ("factor", opts.factor)] {
        if !(value >= 0.0) || (name == "factor" && value == 0.0) {
            return Err(LmError::InvalidTolerance { name, value });
        }
    }
    let lo = match &opts.lower {
        Some(l) if l.len() != m => {
            return Err(LmError::BoundsLength { which: "lower", expected: m, got: l.len() });
        }
        Some(l) => l.clone(),
        None => vec![f64::NEG_INFINITY; m],
    };
    let hi = match &opts.upper {
        Some(u) if u.len() != m => {
            return Err(LmError::BoundsLength { which: "upper", expected: m, got: u.len() });
        }
        Some(u) => u.clone(),
        None => vec![f64::INFINITY; m],
    };
    for k in 0..m {
        if !(lo[k] <= hi[k]) {
            return Err(LmError::InvalidBounds { index: k, lower: lo[k], upper: hi[k] });
        }
        if x0[k] < lo[k] || x0[k] > hi[k] {
            return Err(LmError::StartOutsideBounds { index: k, value: x0[k], lower: lo[k], upper: hi[k] });
        }
    }
    Ok((lo, hi))
}

/// Largest ratio of actual to predicted reduction for which a step is accepted,
/// when the actual reduction is above the rounding level (see the module docs).
const RATIO_MAX: f64 = 2.0;

/// Relative rounding level of `‖f‖²` after the most recent residual evaluation:
/// `8ε‖s‖/‖f‖` with `s` from [`LeastSquaresProblem::rounding_scale`] (at least `8ε`).
fn noise_level<P: LeastSquaresProblem + ?Sized>(problem: &P, fnorm: f64) -> f64 {
    let eps = f64::EPSILON;
    match problem.rounding_scale() {
        Some(s) if s.is_finite() && fnorm > 0.0 => 8.0 * eps * (s / fnorm).max(1.0),
        _ => 8.0 * eps,
    }
}

fn eval_res<P: LeastSquaresProblem + ?Sized>(p: &mut P, x: &[f64], r: &mut [f64]) -> f64 {
    match p.residuals(x, r) {
        Ok(()) => {
            let nrm = enorm(r);
            // A finite norm means every residual is finite (see `enorm`).
            if nrm.is_finite() { nrm } else { f64::INFINITY }
        }
        Err(_) => f64::INFINITY,
    }
}

/// Minimises `½‖f(x)‖²` from `x0` by MINPACK-style Levenberg–Marquardt with optional box bounds.
///
/// Returns `Err` only when the problem cannot be run (bad shapes, bounds or
/// options, or residuals that are not finite at `x0`); failure to converge is reported in
/// [`LmReport::termination`].
pub fn levenberg_marquardt<P: LeastSquaresProblem + ?Sized>(
    problem: &mut P,
    x0: &[f64],
    opts: &LmOptions,
) -> Result<LmReport, LmError> {
    let n = problem.n_residuals();
    let m = problem.n_params();
    let (lo, hi) = validate(m, x0, opts)?;
    if n < m {
        return Err(LmError::TooFewResiduals { n, m });
    }
    let eps = f64::EPSILON;

    let mut x = x0.to_vec();
    let mut fvec = vec![0.0; n];
    // One allocation for the work arrays (an LM call on a compact problem is short, and many
    // small allocations would cost as much as the iteration itself).
    let mut work = vec![0.0; 2 * n * m + 2 * n + 13 * m];
    let (jac, rest) = work.split_at_mut(n * m);
    let (a, rest) = rest.split_at_mut(n * m); // free columns, factorised
    let (ft, rest) = rest.split_at_mut(n);
    let (wa4, rest) = rest.split_at_mut(n);
    let mut m_arrays = rest.chunks_exact_mut(m.max(1));
    let mut next = || m_arrays.next().map(|v| &mut v[..m]).unwrap_or_default();
    let (rdiag, acnorm, diag, diag_f, qtf, grad, step_f) = (next(), next(), next(), next(), next(), next(), next());
    let (wa1, wa2, wa3, sdiag, xt, s) = (next(), next(), next(), next(), next(), next());
    let mut iwork = vec![0usize; 2 * m];
    let (free, ipvt) = iwork.split_at_mut(m);

    let mut nfev = 1usize;
    let mut njev = 0usize;
    let mut fnorm = eval_res(problem, &x, &mut fvec);
    let initial_cost = 0.5 * fnorm * fnorm;
    // The start (when the iterations are recorded at all).
    let mut log = Vec::new();
    let mut path = Vec::new();
    if opts.record {
        log.push(IterationRecord {
            iter: 0,
            cost: initial_cost,
            cost_change: 0.0,
            gradient_norm: f64::NAN,
            step_norm: 0.0,
            ratio: f64::NAN,
            lambda: 0.0,
            radius: f64::NAN,
            evaluations: 1,
        });
        path.push(x.clone());
    }
    let mut rejected = 0usize;
    let mut rank = 0usize;

    if !fnorm.is_finite() {
        return Err(LmError::NonFiniteAtStart);
    }

    let mut par = 0.0f64;
    let mut delta = 0.0f64;
    let mut xnorm = 0.0f64;
    let mut iter = 0usize;
    // Whether `jac` holds the Jacobian at the current `x`.
    let mut jac_at_current = false;
    // ‖f‖ at the last trial (in `xt`, `ft`) when it was a pure Gauss–Newton step from `x`
    // that the tolerance tests stopped at without accepting it: polishing's first step is
    // that step again, already evaluated.
    let mut pending_trial: Option<f64> = None;
    // Terminal Newton steps (see the module docs): the secant estimate of S, whether the last
    // accepted step was a Gauss–Newton step the linear model predicted well, the last two
    // accepted step lengths, and whether a Newton trial has failed (then no more are tried).
    // Only where the last digits are sought (polishing on, a tolerance of 1e-13 or tighter):
    // a loose tolerance stops on the cost decrease of a step, which bounds the distance left
    // only while the steps contract linearly (see `tests/tolerance.rs`), and batches at their
    // default tolerance keep their results. With bounds, only steps that stay strictly inside.
    let newton_ok = opts.polish && opts.ftol <= 1e-13;
    // (Without Newton steps the secant is never used: nothing to allocate.)
    let mut secant = secant::Secant::new(if newton_ok { m } else { 0 });
    let mut last_gn_good = false;
    let (mut last_pnorm, mut prev_pnorm) = (f64::INFINITY, f64::INFINITY);
    let (mut newton_stopped, mut newton_failed) = (false, false);
    // Every stop breaks out of this loop with its termination; only the converged stops of
    // the tolerance tests go on to polishing.
    let term = 'outer: loop {
        if m == 0 {
            break 'outer Termination::NoFreeParameters;
        }
        if iter >= opts.max_iterations {
            break 'outer Termination::MaxIterations;
        }
        // Jacobian at the current (accepted) point.
        njev += 1;
        let ok = problem.jacobian(&x, jac).is_ok() && all_finite(jac);
        if !ok {
            break 'outer Termination::NonFiniteJacobian;
        }
        iter += 1;
        jac_at_current = true;
        // Gradient g = Jᵀ f and the free set.
        let mut nfree = 0;
        let mut gmax = 0.0f64;
        for k in 0..m {
            let col = &jac[k * n..(k + 1) * n];
            grad[k] = dot(col, &fvec);
            let blocked = (x[k] <= lo[k] && grad[k] > 0.0) || (x[k] >= hi[k] && grad[k] < 0.0) || lo[k] == hi[k];
            if !blocked {
                free[nfree] = k;
                nfree += 1;
                gmax = gmax.max(grad[k].abs());
            }
        }
        if newton_ok {
            secant.record(&x, grad, jac, n);
        }
        // Scaling from the full column norms (MINPACK mode 1).
        for k in 0..m {
            let cn = enorm(&jac[k * n..(k + 1) * n]);
            if iter == 1 {
                diag[k] = if cn == 0.0 { 1.0 } else { cn };
            } else {
                diag[k] = diag[k].max(cn);
            }
        }
        if iter == 1 {
            xnorm = enorm_it(x.iter().zip(diag.iter()).map(|(a, b)| a * b));
            delta = opts.factor * xnorm;
            if delta == 0.0 {
                delta = opts.factor;
            }
        }
        if nfree == 0 {
            break 'outer Termination::NoFreeParameters;
        }
        for (c, &k) in free[..nfree].iter().enumerate() {
            a[c * n..(c + 1) * n].copy_from_slice(&jac[k * n..(k + 1) * n]);
            diag_f[c] = diag[k];
        }
        qrfac(n, nfree, a, n, &mut ipvt[..nfree], &mut rdiag[..nfree], &mut acnorm[..nfree], &mut wa1[..nfree]);
        // Numerical rank of the free Jacobian.
        let rmax = rdiag[..nfree].iter().fold(0.0f64, |acc, v| acc.max(v.abs()));
        let tol = eps * (n.max(nfree) as f64) * rmax;
        rank = rdiag[..nfree].iter().filter(|v| v.abs() > tol).count();
        // qtf = first nfree components of Qᵀ f.
        qt_f(n, nfree, a, &rdiag[..nfree], &fvec, wa4, &mut qtf[..nfree]);
        // Scaled gradient (largest cosine) test.
        let mut gnorm = 0.0f64;
        if fnorm != 0.0 {
            for j in 0..nfree {
                let l = ipvt[j];
                if acnorm[l] != 0.0 {
                    let mut sum = 0.0;
                    for i in 0..=j {
                        sum += a[i + j * n] * (qtf[i] / fnorm);
                    }
                    gnorm = gnorm.max((sum / acnorm[l]).abs());
                }
            }
        }
        if gnorm <= opts.gtol {
            break 'outer Termination::GradientTolerance;
        }
        let cost_before = 0.5 * fnorm * fnorm;
        // Inner loop: find an acceptable step.
        loop {
            lmpar(
                nfree,
                a,
                n,
                &ipvt[..nfree],
                &diag_f[..nfree],
                &qtf[..nfree],
                delta,
                &mut par,
                &mut step_f[..nfree],
                &mut sdiag[..nfree],
                &mut wa1[..nfree],
                &mut wa2[..nfree],
            );
            // In the terminal phase (Gauss–Newton steps contracting linearly, the last one
            // predicted well), the Newton step with the secant S when it is a small correction
            // of the Gauss–Newton step inside the trust region.
            let mut newton = false;
            if par == 0.0 && newton_ok && nfree == m && !newton_stopped && last_gn_good && last_pnorm <= 0.25 * prev_pnorm
                && let Some(pn) = secant.correction(jac, grad, n, &step_f[..m], &x, &lo, &hi, diag)
                && enorm_it(pn.iter().zip(diag.iter()).map(|(a, b)| a * b)) <= delta
            {
                step_f[..m].copy_from_slice(&pn);
                newton = true;
            }
            // Trial point, projected onto the box.
            xt.copy_from_slice(&x);
            let mut projected = false;
            for (c, &k) in free[..nfree].iter().enumerate() {
                let want = x[k] - step_f[c];
                let v = want.clamp(lo[k], hi[k]);
                if v != want {
                    projected = true;
                }
                xt[k] = v;
            }
            for k in 0..m {
                s[k] = xt[k] - x[k];
            }
            let pnorm = enorm_it(s.iter().zip(diag.iter()).map(|(a, b)| a * b));
            if iter == 1 {
                delta = delta.min(pnorm);
            }
            // (the step polishing would take first from x: Gauss–Newton, or Newton with S)
            let gauss_newton = par == 0.0 && !projected;
            nfev += 1;
            let fnorm1 = eval_res(problem, xt, ft);
            // Actual relative reduction, computed as −Σ (f̃ᵢ − fᵢ)(f̃ᵢ + fᵢ)/‖f‖² so that
            // differences below the rounding level of ‖f‖² are still resolved.
            let actred = if 0.1 * fnorm1 < fnorm {
                let mut acc = 0.0;
                for i in 0..n {
                    acc -= ((ft[i] - fvec[i]) / fnorm) * ((ft[i] + fvec[i]) / fnorm);
                }
                acc
            } else {
                -1.0
            };
            let (prered, dirder);
            if !projected {
                // ‖J p‖ via R: wa3 = R Pᵀ p.
                for i in 0..nfree {
                    wa3[i] = 0.0;
                }
                for j in 0..nfree {
                    let temp = -step_f[ipvt[j]];
                    for i in 0..=j {
                        wa3[i] += a[i + j * n] * temp;
                    }
                }
                let pn_f = enorm_it(step_f[..nfree].iter().zip(&diag_f[..nfree]).map(|(a, b)| a * b));
                let temp1 = enorm(&wa3[..nfree]) / fnorm;
                let temp2 = par.sqrt() * pn_f / fnorm;
                prered = temp1 * temp1 + temp2 * temp2 / 0.5;
                dirder = -(temp1 * temp1 + temp2 * temp2);
            } else {
                // Direct: J s and ‖f + J s‖.
                let mut fjs = 0.0;
                let mut js2 = 0.0;
                for i in 0..n {
                    let mut v = 0.0;
                    for k in 0..m {
                        if s[k] != 0.0 {
                            v += jac[i + k * n] * s[k];
                        }
                    }
                    fjs += fvec[i] * v;
                    js2 += v * v;
                }
                let f2 = fnorm * fnorm;
                prered = -(2.0 * fjs + js2) / f2;
                dirder = fjs / f2;
            }
            let ratio = if prered != 0.0 { actred / prered } else { 0.0 };
            // A real (above rounding) reduction far larger than predicted: the
            // linear model is not valid over this step, so the step is not trusted.
            let model_invalid = ratio > RATIO_MAX && actred > noise_level(problem, fnorm1.min(fnorm));
            if model_invalid {
                delta = 0.5 * delta.min(pnorm);
                par *= 2.0;
            } else if ratio <= 0.25 {
                let mut temp = if actred >= 0.0 { 0.5 } else { 0.5 * dirder / (dirder + 0.5 * actred) };
                if 0.1 * fnorm1 >= fnorm || temp < 0.1 || !temp.is_finite() {
                    temp = 0.1;
                }
                delta = temp * delta.min(pnorm / 0.1);
                par /= temp;
            } else if par == 0.0 || ratio >= 0.75 {
                delta = pnorm / 0.5;
                par *= 0.5;
            }
            let accepted = ratio >= 1e-4 && !model_invalid;
            // A rejected Newton trial ends the Newton steps of the iteration; one rejected above
            // the rounding level of the cost also those of polishing.
            if newton && !accepted {
                newton_stopped = true;
                newton_failed |= -actred > noise_level(problem, fnorm1.min(fnorm));
            }
            if accepted {
                last_gn_good = gauss_newton && (0.5..=2.0).contains(&ratio);
                (prev_pnorm, last_pnorm) = (last_pnorm, pnorm);
                jac_at_current = false;
                x.copy_from_slice(xt);
                fvec.copy_from_slice(ft);
                xnorm = enorm_it(x.iter().zip(diag.iter()).map(|(a, b)| a * b));
                fnorm = fnorm1;
                if opts.record {
                    path.push(x.clone());
                    let cost = 0.5 * fnorm * fnorm;
                    log.push(IterationRecord {
                        iter,
                        cost,
                        cost_change: cost_before - cost,
                        gradient_norm: gmax,
                        step_norm: enorm(s),
                        ratio,
                        lambda: par,
                        radius: delta,
                        evaluations: nfev,
                    });
                }
            } else {
                rejected += 1;
            }
            // Convergence tests.
            let ftol_hit = actred.abs() <= opts.ftol && prered <= opts.ftol && 0.5 * ratio <= 1.0;
            let xtol_hit = delta <= opts.xtol * xnorm;
            let term = if ftol_hit && xtol_hit {
                Some(Termination::CostChangeAndStepTolerance)
            } else if ftol_hit {
                Some(Termination::CostChangeTolerance)
            } else if xtol_hit {
                Some(Termination::StepTolerance)
            } else if nfev >= opts.max_evaluations {
                Some(Termination::MaxEvaluations)
            } else if actred.abs() <= eps && prered <= eps && 0.5 * ratio <= 1.0 {
                Some(Termination::CostChangeAtMachinePrecision)
            } else if delta <= eps * xnorm {
                Some(Termination::StepAtMachinePrecision)
            } else if gnorm <= eps {
                Some(Termination::GradientAtMachinePrecision)
            } else if fnorm == 0.0 {
                Some(Termination::GradientTolerance)
            } else {
                None
            };
            if let Some(t) = term {
                if !accepted && gauss_newton && fnorm1.is_finite() {
                    pending_trial = Some(fnorm1);
                }
                break 'outer t;
            }
            if accepted {
                break;
            }
        }
    };
    let mut polish_steps = 0;
    let polishable = term.is_converged() && term != Termination::NoFreeParameters;
    if polishable && fnorm > 0.0 && opts.polish {
        // If `x` has not moved since the Jacobian of the last iteration was computed (the
        // last trial was rejected, or the gradient test fired), polishing starts from it.
        let jac_at_x = jac_at_current.then_some(&*jac);
        // (a trial stopped at without being accepted left x, and so the Jacobian, where it was)
        let pending = pending_trial.map(|f1| (&xt[..], &ft[..], f1));
        let sec = (newton_ok && !newton_failed && secant.updates > 0).then_some(&secant);
        let mut ctx = PolishState { nfev, njev, log: &mut log, path: &mut path, iter, record: opts.record, pending, secant: sec };
        polish_steps = polish(problem, &mut x, &mut fvec, &mut fnorm, &lo, &hi, diag, jac_at_x, &mut ctx);
        (nfev, njev) = (ctx.nfev, ctx.njev);
    }
    let at_lower = x.iter().zip(&lo).map(|(v, l)| v <= l).collect();
    let at_upper = x.iter().zip(&hi).map(|(v, h)| v >= h).collect();
    Ok(LmReport {
        x,
        residuals: fvec,
        cost: 0.5 * fnorm * fnorm,
        initial_cost,
        termination: term,
        iterations: iter,
        residual_evaluations: nfev,
        jacobian_evaluations: njev,
        rejected_steps: rejected,
        log,
        path,
        at_lower,
        at_upper,
        jacobian_rank: rank,
        polish_steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rosenbrock as least squares: f = (10(x1 − x0²), 1 − x0).
    struct Rosen;
    impl LeastSquaresProblem for Rosen {
        fn n_residuals(&self) -> usize {
            2
        }
        fn n_params(&self) -> usize {
            2
        }
        fn residuals(&mut self, x: &[f64], r: &mut [f64]) -> Result<(), ModelError> {
            r[0] = 10.0 * (x[1] - x[0] * x[0]);
            r[1] = 1.0 - x[0];
            Ok(())
        }
        fn jacobian(&mut self, x: &[f64], j: &mut [f64]) -> Result<(), ModelError> {
            j[0] = -20.0 * x[0];
            j[1] = -1.0;
            j[2] = 10.0;
            j[3] = 0.0;
            Ok(())
        }
    }

    #[test]
    fn rosenbrock_converges() {
        let r = levenberg_marquardt(&mut Rosen, &[-1.2, 1.0], &LmOptions::default()).unwrap();
        assert!(r.termination.is_converged(), "{:?}", r.termination);
        assert!((r.x[0] - 1.0).abs() < 1e-12 && (r.x[1] - 1.0).abs() < 1e-12, "{:?}", r.x);
        assert_eq!(r.path.len(), r.log.len());
    }

    #[test]
    fn rosenbrock_with_bound_ends_on_bound() {
        let opts = LmOptions { upper: Some(vec![0.5, f64::INFINITY]), ..Default::default() };
        let r = levenberg_marquardt(&mut Rosen, &[-1.2, 1.0], &opts).unwrap();
        assert!(r.termination.is_converged(), "{:?}", r.termination);
        assert!(r.at_upper[0], "{:?}", r.x);
        assert!((r.x[0] - 0.5).abs() < 1e-14 && (r.x[1] - 0.25).abs() < 1e-10, "{:?}", r.x);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(matches!(
            levenberg_marquardt(&mut Rosen, &[1.0], &LmOptions::default()),
            Err(LmError::StartLength { .. })
        ));
        assert!(matches!(
            levenberg_marquardt(&mut Rosen, &[f64::NAN, 1.0], &LmOptions::default()),
            Err(LmError::NonFiniteStart { .. })
        ));
        let opts = LmOptions { lower: Some(vec![0.0, 0.0]), ..Default::default() };
        assert!(matches!(
            levenberg_marquardt(&mut Rosen, &[-1.0, 1.0], &opts),
            Err(LmError::StartOutsideBounds { index: 0, .. })
        ));
    }
}
