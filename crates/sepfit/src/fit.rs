//! The fit: [`fit`] and [`fit_with`], their [`FitOptions`] and result [`Fit`]; one path for
//! every method and level of [`Detail`].
//!
//! Parameter order for all statistics is `θ = (b₀ … b_{q−1}, a₀ … a_{p−1})`:
//! nonlinear parameters first, then linear ones (the column order of the
//! unreduced Jacobian `[∂f/∂b_k | φ_j]`).
//!
//! Information criteria follow R's `AIC`/`BIC` for `nls` (Gaussian log
//! likelihood with the ML variance estimate, counting σ as a parameter):
//!
//! ```text
//! AIC = n ln(2π RSS/n) + n + 2 Σ ln σᵢ + 2(k+1),   BIC = … + (k+1) ln n,   k = p + q
//! ```
//!
//! (`Σ ln σᵢ = 0` without weights). lmfit instead reports
//! `n ln(χ²/n) + 2k` and `n ln(χ²/n) + k ln n`, which differ by constants.

use crate::error::FitError;
use crate::loss::Loss;
use crate::model::{ModelError, ModelEval, SeparableModel};
use crate::problems::data::check_data;
use crate::problems::full::{FullProblem, weighted_full_jacobian};
use crate::problems::varpro::{self, JacobianKind, VarProProblem};
use crate::solvers::lm::{self, IterationRecord, LeastSquaresProblem, LmError, LmOptions, LmReport, Termination};
use crate::linalg::bvls::VarState;
use crate::stats::{self, ParamStats};
use faer::Mat;

/// How the parameters are estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Variable projection with the exact Golub–Pereyra Jacobian (default).
    #[default]
    VarPro,
    /// Variable projection with Kaufman's approximate Jacobian.
    Kaufman,
    /// All parameters fitted jointly by Levenberg–Marquardt (for comparison).
    Full,
}

impl Method {
    /// What the method is, in words (the report's `method` line).
    pub fn description(self) -> &'static str {
        match self {
            Method::VarPro => "variable projection (exact Golub-Pereyra Jacobian) + Levenberg-Marquardt",
            Method::Kaufman => "variable projection (Kaufman Jacobian) + Levenberg-Marquardt",
            Method::Full => "Levenberg-Marquardt on all parameters jointly",
        }
    }
    /// Whether the linear parameters are eliminated by variable projection.
    pub fn eliminates_linear(self) -> bool {
        self != Method::Full
    }
}

/// How much a fit computes and keeps beyond estimates, standard errors and the RSS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Detail {
    /// Everything: fitted values and residuals, R², AIC and BIC, t and p values, correlations,
    /// the iteration log and the path of the iterates.
    #[default]
    Full,
    /// What a row of a batch reports: estimates, standard errors, RSS, counts, termination and
    /// warnings. The RSS is the projection's `‖r̃‖²` (no fitted values are formed), and the
    /// standard errors come from the triangular factors of the compact Jacobian when it is
    /// clearly well-conditioned (variable projection: from the basis QR the fit already has,
    /// completed by a QR of the derivative rows below it; the SVD otherwise); fitted values,
    /// residuals, t and p values,
    /// correlations, log and path are empty, R², AIC and BIC NaN.
    Lean,
    /// What `curve_fit` returns: estimates, their covariance (from the SVD, as with
    /// [`Detail::Full`]), standard errors, rank and condition number with their warnings, RSS,
    /// counts and termination. The RSS is the projection's (no fitted values are formed);
    /// fitted values, residuals, correlations, log and path are empty, t and p values, R²,
    /// AIC and BIC NaN.
    Covariance,
}

/// Options of [`fit`]. Build them from [`FitOptions::with_start`] and the `with_*` methods (or
/// set the public fields of a [`Default`] value).
///
/// ```
/// use sepfit::{FitOptions, Method};
/// let o = FitOptions::with_start(&[0.5, 2.0]).with_bounds(vec![0.0, 0.0], vec![10.0, f64::INFINITY]).with_method(Method::Kaufman);
/// assert_eq!(o.lm.lower.as_deref(), Some(&[0.0, 0.0][..]));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FitOptions {
    /// Estimation method.
    pub method: Method,
    /// Per-observation standard deviations σᵢ (rows are weighted by 1/σᵢ).
    pub sigma: Option<Vec<f64>>,
    /// Starting values of the nonlinear parameters `b` (length `q`).
    pub start: Vec<f64>,
    /// Starting values of the linear parameters for [`Method::Full`] (default all 1).
    pub linear_start: Option<Vec<f64>>,
    /// The solver's options: tolerances, limits, polishing, and the bounds of the nonlinear
    /// parameters (`lm.lower`, `lm.upper`, length `q`; the linear ones have their own,
    /// [`FitOptions::linear_lower`] and [`FitOptions::linear_upper`]).
    pub lm: LmOptions,
    /// How much to compute beyond estimates, standard errors and RSS.
    pub detail: Detail,
    /// Lower bounds of the linear parameters (length `p`, `−∞` for none). Variable projection
    /// keeps them linear and solves the bounded inner problem (see
    /// [`crate::problems::varpro`]); [`Method::Full`] passes them to the solver.
    pub linear_lower: Option<Vec<f64>>,
    /// Upper bounds of the linear parameters (length `p`, `+∞` for none).
    pub linear_upper: Option<Vec<f64>>,
    /// The loss minimised ([`Loss::Linear`], least squares, by default): a robust loss or
    /// Poisson maximum likelihood, fitted by reweighting ([`crate::irls`]).
    pub loss: Loss,
    /// Scale `F` of the robust losses (scipy's `f_scale`, default 1): residuals `|rᵢ| ≲ F`
    /// count as inliers. Must be positive and finite for a robust loss; unused otherwise.
    pub f_scale: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            method: Method::default(),
            sigma: None,
            start: Vec::new(),
            linear_start: None,
            lm: LmOptions::default(),
            detail: Detail::default(),
            linear_lower: None,
            linear_upper: None,
            loss: Loss::Linear,
            f_scale: 1.0,
        }
    }
}

impl FitOptions {
    /// Default options with the given start for the nonlinear parameters.
    pub fn with_start(start: &[f64]) -> Self {
        Self { start: start.to_vec(), ..Self::default() }
    }
    /// With per-observation standard deviations.
    pub fn with_sigma(mut self, sigma: Vec<f64>) -> Self {
        self.sigma = Some(sigma);
        self
    }
    /// With box bounds on the nonlinear parameters (`±inf` for none).
    pub fn with_bounds(mut self, lower: Vec<f64>, upper: Vec<f64>) -> Self {
        self.lm.lower = Some(lower);
        self.lm.upper = Some(upper);
        self
    }
    /// With box bounds on the linear parameters (`±inf` for none), e.g. `a ≥ 0` for every
    /// amplitude: `with_linear_bounds(vec![0.0; p], vec![f64::INFINITY; p])`.
    ///
    /// ```
    /// use sepfit::{FitOptions, PointModel, fit};
    /// // y = a·exp(−k t) + c on data that fall below the exponential: the least-squares c < 0.
    /// let t: Vec<f64> = (0..30).map(|i| i as f64 * 0.2).collect();
    /// let y: Vec<f64> = t.iter().map(|t| 2.0 * (-0.7 * t).exp() - 0.05).collect();
    /// let mut model = PointModel::builder(t.iter().map(|&v| vec![v]).collect(), 2, 1)
    ///     .derivative(0, 0)
    ///     .eval(|x, b, phi, dphi, _, _| {
    ///         let e = (-b[0] * x[0]).exp();
    ///         (phi[0], phi[1], dphi[0]) = (e, 1.0, -x[0] * e);
    ///     })
    ///     .build()
    ///     .unwrap();
    /// let opts = FitOptions::with_start(&[0.5]).with_linear_bounds(vec![0.0, 0.0], vec![f64::INFINITY; 2]);
    /// let f = fit(&mut model, &y, &opts).unwrap();
    /// assert_eq!(f.linear[1], 0.0);
    /// assert!(f.linear_at_lower[1] && !f.linear_at_lower[0]);
    /// ```
    pub fn with_linear_bounds(mut self, lower: Vec<f64>, upper: Vec<f64>) -> Self {
        self.linear_lower = Some(lower);
        self.linear_upper = Some(upper);
        self
    }
    /// With starting values of the linear parameters (for [`Method::Full`]).
    pub fn with_linear_start(mut self, start: Vec<f64>) -> Self {
        self.linear_start = Some(start);
        self
    }
    /// With another method.
    pub fn with_method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }
    /// With another level of detail.
    pub fn with_detail(mut self, detail: Detail) -> Self {
        self.detail = detail;
        self
    }
    /// With a loss and its scale `f_scale` (scipy's `least_squares(loss=…, f_scale=…)`;
    /// `f_scale` is used by the robust losses only).
    ///
    /// ```
    /// use sepfit::{FitOptions, Loss};
    /// let o = FitOptions::with_start(&[1.0]).with_loss(Loss::Huber, 0.1);
    /// assert_eq!((o.loss, o.f_scale), (Loss::Huber, 0.1));
    /// ```
    pub fn with_loss(mut self, loss: Loss, f_scale: f64) -> Self {
        (self.loss, self.f_scale) = (loss, f_scale);
        self
    }
    /// With the relative tolerances `ftol = xtol = gtol = tol`.
    pub fn with_tolerance(mut self, tol: f64) -> Self {
        (self.lm.ftol, self.lm.xtol, self.lm.gtol) = (tol, tol, tol);
        self
    }
}

/// How a fit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A (local) optimum with a full-rank Jacobian: estimates and standard errors are defined.
    Converged,
    /// The iteration stopped before convergence (iteration or evaluation limit, non-finite
    /// Jacobian).
    NotConverged,
    /// The iteration stopped at a degenerate point: the basis functions are linearly dependent
    /// or the Jacobian is rank deficient there, so some parameters are not determined by the
    /// data (e.g. two merged rates, or an amplitude at 0 whose rate is then arbitrary).
    Degenerate,
}

impl Outcome {
    /// The word the report prints.
    pub fn headline(self) -> &'static str {
        match self {
            Outcome::Converged => "Converged",
            Outcome::NotConverged => "NOT CONVERGED",
            Outcome::Degenerate => "STOPPED AT A DEGENERATE POINT",
        }
    }
}

/// Something the user should know about a fit. Parameters are referred to by their index in
/// `θ = (b, a)` (the named layer, [`crate::named`], puts names on them).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FitWarning {
    /// The iteration stopped without convergence.
    NotConverged(Termination),
    /// The basis matrix `Φ` is numerically rank deficient at the solution.
    RankDeficientBasis {
        /// Numerical rank.
        rank: usize,
        /// Number of basis functions.
        p: usize,
        /// Whether variable projection set the coefficients of the dependent functions to 0.
        eliminated: bool,
    },
    /// The full Jacobian is rank deficient: standard errors are not available.
    SingularJacobian {
        /// Numerical rank.
        rank: usize,
        /// Number of parameters.
        params: usize,
    },
    /// The full Jacobian is ill-conditioned (condition number > 1e10): standard errors are unreliable.
    IllConditioned {
        /// 2-norm condition number.
        condition_number: f64,
    },
    /// As many parameters as observations: no residual degrees of freedom, so no residual
    /// variance and no standard errors.
    NoDegreesOfFreedom {
        /// Number of observations.
        n: usize,
        /// Number of parameters.
        params: usize,
    },
    /// A nonlinear parameter ended on a bound; its standard error ignores the constraint.
    AtBound {
        /// Nonlinear parameter index.
        index: usize,
        /// `true` for the upper bound.
        upper: bool,
    },
    /// A linear parameter ended on a bound (the inner bounded least squares put it there); its
    /// standard error ignores the constraint.
    LinearAtBound {
        /// Index in `θ = (b, a)`: `q + j` for linear parameter `j`.
        index: usize,
        /// `true` for the upper bound.
        upper: bool,
    },
    /// The data do not determine a nonlinear parameter (a standard error above `1e7·|b_k|` and
    /// `1e6`): the fit ran off to where the model no longer depends on it, and stopped there as
    /// if converged.
    Undetermined {
        /// Nonlinear parameter index.
        index: usize,
        /// Its value there.
        value: f64,
        /// Its standard error.
        std_error: f64,
    },
    /// The reweighting of a robust fit ([`crate::irls`]) or the Fisher scoring of a Poisson fit
    /// ([`crate::poisson`]) did not settle.
    IrlsNotConverged {
        /// Reweighting iterations or scoring steps done.
        iterations: usize,
    },
    /// A Poisson fit reached a mean `μᵢ ≤ 0` on a row (zero-based), where the likelihood is
    /// not defined.
    NonPositiveMean {
        /// Zero-based row.
        row: usize,
        /// The model's value there.
        value: f64,
    },
}

impl FitWarning {
    /// The warning in words, with `name(k)` naming parameter `k` of `θ = (b, a)` (nonlinear
    /// parameter `k` for `k < q`).
    pub fn message_with(&self, name: impl Fn(usize) -> String) -> String {
        match self {
            FitWarning::NotConverged(t) => format!("not converged: {t}"),
            FitWarning::RankDeficientBasis { rank, p, eliminated: true } => {
                format!("basis functions are linearly dependent (rank {rank} of {p}); some linear parameters are set to 0")
            }
            FitWarning::RankDeficientBasis { rank, p, eliminated: false } => {
                format!("basis functions are linearly dependent (rank {rank} of {p}); the linear parameters are not determined by the data")
            }
            FitWarning::SingularJacobian { rank, params } => {
                format!("Jacobian is singular (rank {rank} of {params}); standard errors unavailable")
            }
            FitWarning::IllConditioned { condition_number } => {
                format!("Jacobian is ill-conditioned (condition number {condition_number:.3e}); standard errors unreliable")
            }
            FitWarning::NoDegreesOfFreedom { n, params } => format!(
                "{n} observations for {params} parameters: no residual degrees of freedom, so the residual variance, standard errors, t and p values are not available"
            ),
            FitWarning::AtBound { index, upper } | FitWarning::LinearAtBound { index, upper } => format!(
                "`{}` ended at its {} bound; its standard error ignores the constraint",
                name(*index),
                if *upper { "upper" } else { "lower" }
            ),
            FitWarning::Undetermined { index, value, std_error } => format!(
                "the data do not determine `{}`: its standard error {std_error:e} dwarfs its value {value:e}; the fit ran off to where the model no longer depends on it and stopped there, which is not an optimum (give another start, or bound `{}`)",
                name(*index),
                name(*index)
            ),
            FitWarning::IrlsNotConverged { iterations } => {
                format!("the iteration of the robust/Poisson fit did not settle in {iterations} iterations; not converged")
            }
            FitWarning::NonPositiveMean { row, value } => {
                format!(
                    "the Poisson mean is {value} at row {}; the likelihood needs a positive mean: not converged (where the counts are 0 the maximum-likelihood model touches 0: bound the linear coefficients so that it stays positive, e.g. `c >= 0`, or write a model that cannot go negative)",
                    row + 1
                )
            }
        }
    }
}

impl std::fmt::Display for FitWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FitWarning::LinearAtBound { index, .. } => f.write_str(&self.message_with(|_| format!("parameter {index} of theta"))),
            _ => f.write_str(&self.message_with(|k| format!("nonlinear parameter {k}"))),
        }
    }
}

/// Result of [`fit`]. Parameter order for statistics: `θ = (b, a)`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Fit {
    /// Method used.
    pub method: Method,
    /// Linear parameters `a` (length `p`).
    pub linear: Vec<f64>,
    /// Nonlinear parameters `b` (length `q`).
    pub nonlinear: Vec<f64>,
    /// Why the iteration stopped.
    pub termination: Termination,
    /// How the fit ended ([`Outcome::Converged`] only for a full-rank optimum).
    pub outcome: Outcome,
    /// `outcome == Outcome::Converged`.
    pub converged: bool,
    /// Iterations of Levenberg–Marquardt.
    pub iterations: usize,
    /// Gauss–Newton polishing steps accepted after convergence (see [`crate::solvers::lm`]).
    pub polish_steps: usize,
    /// Residual (model) evaluations.
    pub residual_evaluations: usize,
    /// Jacobian evaluations.
    pub jacobian_evaluations: usize,
    /// Weighted residual sum of squares χ² = Σ ((yᵢ − fᵢ)/σᵢ)².
    pub rss: f64,
    /// Initial weighted RSS (for VarPro: with the optimal `a` at `b₀`).
    pub initial_rss: f64,
    /// Degrees of freedom `n − p − q` (0 for a square system).
    pub dof: usize,
    /// Residual standard error `s = sqrt(rss/dof)` (NaN without degrees of freedom).
    pub residual_std_error: f64,
    /// Reduced χ² = rss/dof (NaN without degrees of freedom).
    pub reduced_chi_square: f64,
    /// `R² = 1 − rss/tss`, tss around the weighted mean.
    pub r_squared: f64,
    /// R-style AIC (see module docs).
    pub aic: f64,
    /// R-style BIC (see module docs).
    pub bic: f64,
    /// Fitted values `f(xᵢ)`.
    pub fitted: Vec<f64>,
    /// Raw residuals `yᵢ − fᵢ`.
    pub residuals: Vec<f64>,
    /// Weighted residuals `(yᵢ − fᵢ)/σᵢ`.
    pub weighted_residuals: Vec<f64>,
    /// All estimates `θ = (b, a)`.
    pub estimates: Vec<f64>,
    /// Standard errors, t and p values, covariance and correlation of `θ`.
    pub stats: ParamStats,
    /// Numerical rank of the weighted basis `WΦ` at the solution.
    pub basis_rank: usize,
    /// Nonlinear parameters ending on their lower bound.
    pub at_lower: Vec<bool>,
    /// Nonlinear parameters ending on their upper bound.
    pub at_upper: Vec<bool>,
    /// Linear parameters ending on their lower bound ([`FitOptions::linear_lower`]).
    pub linear_at_lower: Vec<bool>,
    /// Linear parameters ending on their upper bound.
    pub linear_at_upper: Vec<bool>,
    /// Iteration log.
    pub log: Vec<IterationRecord>,
    /// Accepted iterates of the nonlinear parameters `b`.
    pub path: Vec<Vec<f64>>,
    /// Warnings.
    pub warnings: Vec<FitWarning>,
    /// The loss minimised.
    pub loss: Loss,
    /// The `f_scale` option, the scale `F` of the robust losses (unused by the others).
    pub f_scale: f64,
    /// The minimised objective for a loss other than [`Loss::Linear`]: the robust cost
    /// `½F²Σρ(zᵢ)` or the Poisson deviance (NaN for least squares, whose objective is `rss`).
    /// With such a loss `rss` is `Σ rᵢ²` with the user's σ (Pearson's χ² for Poisson).
    pub loss_cost: f64,
    /// The Poisson deviance `2Σ[yᵢ ln(yᵢ/μᵢ) − (yᵢ − μᵢ)]` (NaN for other losses).
    pub deviance: f64,
    /// Reweighting iterations ([`crate::irls`]; 0 for least squares).
    pub irls_iterations: usize,
}

impl Fit {
    /// The objective the fit minimised: `rss` for least squares, [`Fit::loss_cost`] (the
    /// robust cost or the Poisson deviance) for the other losses. Fits of the same data with
    /// the same loss compare by it (a search's candidates, a batch's relabelled refits).
    pub fn objective(&self) -> f64 {
        if self.loss == Loss::Linear { self.rss } else { self.loss_cost }
    }

    /// Index in `θ` of nonlinear parameter `k`.
    pub fn nonlinear_index(&self, k: usize) -> usize {
        k
    }
    /// Index in `θ` of linear parameter `j`.
    pub fn linear_index(&self, j: usize) -> usize {
        self.nonlinear.len() + j
    }
    /// Number of observations.
    pub fn n_obs(&self) -> usize {
        self.fitted.len()
    }
}

/// `φ₀ + Σ_j a_j φ_j` from an evaluation.
fn fitted_values(ev: &ModelEval, has_offset: bool, a: &[f64], n: usize) -> Vec<f64> {
    let mut fitted = if has_offset { ev.offset[..n].to_vec() } else { vec![0.0; n] };
    for (j, aj) in a.iter().enumerate() {
        for (f, v) in fitted.iter_mut().zip(ev.basis.col_as_slice(j)) {
            *f += aj * v;
        }
    }
    fitted
}

/// The solver's answer, before statistics.
struct Solution {
    /// The report (`x`, `path`, `at_lower`, `at_upper` of the nonlinear parameters only).
    rep: LmReport,
    /// Linear parameters.
    a: Vec<f64>,
    /// The weighted Jacobian of all parameters, `θ = (b, a)` (variable projection: its compact
    /// form `QᵀJ`, with the same singular values).
    jac: Mat<f64>,
    /// Fitted values ([`Detail::Full`] only).
    fitted: Option<Vec<f64>>,
    /// The projection's RSS and basis rank, where it was kept ([`Detail::Lean`] variable projection).
    projected: Option<(f64, usize)>,
    /// Where each linear parameter ended relative to its bounds.
    linear_state: Vec<VarState>,
    /// Standard errors of `θ = (b, a)` from the variable projection's factors
    /// ([`Detail::Lean`], where they are well conditioned; `jac` is then empty).
    std_errors: Option<Vec<f64>>,
}

/// Why the residuals are not finite at the start `b`: the first row of the data where the model
/// (a basis function, the offset or a derivative) is not finite, or else an overflow of the
/// sum of squares, or else the model's own reason `err`.
fn start_error<M: SeparableModel + ?Sized>(model: &mut M, b: &[f64], y: &[f64], w: Option<&[f64]>, err: Option<ModelError>) -> FitError {
    let mut ev = ModelEval::new(&*model);
    if model.eval(b, &mut ev).is_ok() {
        let n = model.n_obs();
        let bad = |v: f64| !v.is_finite();
        for i in 0..n {
            let basis = (0..ev.basis.ncols()).find(|&j| bad(ev.basis[(i, j)]));
            let found = match basis {
                Some(j) => Some((format!("basis function {} of {}", j + 1, ev.basis.ncols()), ev.basis[(i, j)])),
                None if bad(ev.offset[i]) => Some(("the term without a linear coefficient".to_string(), ev.offset[i])),
                None => (0..ev.d_basis.ncols())
                    .map(|c| ev.d_basis[(i, c)])
                    .chain((0..ev.d_offset.ncols()).map(|c| ev.d_offset[(i, c)]))
                    .find(|v| bad(*v))
                    .map(|v| ("a derivative".to_string(), v)),
            };
            if let Some((what, value)) = found {
                return FitError::ModelNotFiniteAtRow { row: i, what, value };
            }
        }
        let max_weighted =
            y.iter().enumerate().map(|(i, v)| (v * w.map_or(1.0, |w| w[i])).abs()).filter(|v| v.is_finite()).fold(0.0, f64::max);
        return FitError::SumOfSquaresOverflow { max_weighted };
    }
    FitError::NonFiniteAtStart(err.unwrap_or_else(|| ModelError::new("non-finite residuals")))
}

/// Powers of two `(c, d)` that bring extreme data into range: the response is multiplied by
/// `c` when `|y|` reaches beyond `2^±400` (only for models without an offset, where the
/// linear parameters then scale by `c` and nothing else changes), and the standard deviations
/// by `d` when the weights `1/σ` do (the weights' common scale changes only the RSS). Without
/// it, sums of squares of such data overflow or underflow and the estimates go wrong.
fn data_scales(has_offset: bool, y: &[f64], sigma: Option<&[f64]>) -> (f64, f64) {
    const LIMIT: f64 = 2.58e120; // ≈ 2^400
    let scale = |max: f64| if max == 0.0 || !max.is_finite() || (1.0 / LIMIT..=LIMIT).contains(&max) { 1.0 } else { 2f64.powi(-(max.log2().round() as i32)) };
    let c = if has_offset { 1.0 } else { scale(max_finite(y, f64::abs)) };
    let d = match sigma {
        Some(s) => 1.0 / scale(max_finite(s, |s| 1.0 / s.abs())),
        None => 1.0,
    };
    (c, d)
}

/// The largest finite `f(v_i)` (0 if none), in eight independent lanes (a maximum is exact in
/// any order; one chain of dependent comparisons costs a few cycles per element).
fn max_finite(v: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        for k in 0..8 {
            let a = f(c[k]);
            acc[k] = if a < f64::INFINITY && a > acc[k] { a } else { acc[k] };
        }
    }
    for &x in chunks.remainder() {
        let a = f(x);
        acc[0] = if a < f64::INFINITY && a > acc[0] { a } else { acc[0] };
    }
    acc.into_iter().fold(0.0, f64::max)
}

/// [`fit_with`] on the response times `c` and the standard deviations times `d` (see
/// [`data_scales`]), reported on the data's own scale.
fn fit_scaled<M: SeparableModel + ?Sized>(
    model: &mut M,
    y: &[f64],
    options: &FitOptions,
    ws: &mut FitWorkspace,
    (c, d): (f64, f64),
) -> Result<Fit, FitError> {
    let ys: Vec<f64> = y.iter().map(|v| v * c).collect();
    // The linear parameters scale with the response (c is a power of two: exact).
    let times_c = |v: &Option<Vec<f64>>| v.as_ref().map(|v| v.iter().map(|b| b * c).collect());
    let scaled = FitOptions {
        sigma: options.sigma.as_ref().map(|s| s.iter().map(|s| s * d).collect()),
        linear_lower: times_c(&options.linear_lower),
        linear_upper: times_c(&options.linear_upper),
        linear_start: times_c(&options.linear_start),
        ..options.clone()
    };
    let mut f = fit_with(model, &ys, &scaled, ws)?;
    let q = f.nonlinear.len();
    // Back to the data's scale: the response by 1/c, the weights by 1/d.
    let (r, w) = (1.0 / c, d);
    f.linear.iter_mut().for_each(|a| *a *= r);
    f.estimates[q..].iter_mut().for_each(|a| *a *= r);
    f.stats.std_errors[q..].iter_mut().for_each(|s| *s *= r);
    if let Some(cov) = &mut f.stats.covariance {
        for i in 0..cov.nrows() {
            for j in 0..cov.ncols() {
                cov[(i, j)] *= if i >= q { r } else { 1.0 } * if j >= q { r } else { 1.0 };
            }
        }
    }
    f.fitted.iter_mut().chain(&mut f.residuals).for_each(|v| *v *= r);
    f.weighted_residuals.iter_mut().for_each(|v| *v *= r * w);
    let rw2 = (r * w) * (r * w);
    f.rss *= rw2;
    f.initial_rss *= rw2;
    f.reduced_chi_square *= rw2;
    f.residual_std_error *= r * w;
    // AIC and BIC do not depend on the weights' scale; the response's moves them by 2n ln c.
    let shift = 2.0 * y.len() as f64 * c.ln();
    f.aic -= shift;
    f.bic -= shift;
    Ok(f)
}

/// Levenberg–Marquardt on the compact variable-projection problem (reusing `ws`'s buffers).
fn solve_varpro<M: SeparableModel + ?Sized>(
    model: &mut M,
    y: &[f64],
    options: &FitOptions,
    lm_opts: &LmOptions,
    ws: &mut FitWorkspace,
) -> Result<Solution, FitError> {
    let (n, p, model_q) = (model.n_obs(), model.n_linear(), model.n_nonlinear());
    let kind = if options.method == Method::Kaufman { JacobianKind::Kaufman } else { JacobianKind::GolubPereyra };
    let mut prob = VarProProblem::with_buffers(model, y, options.sigma.as_deref(), kind, true, ws.varpro.take())?;
    if let Some((lower, upper)) = linear_bounds(options, p)? {
        prob.set_linear_bounds(&lower, &upper)?;
    }
    let rep = match lm::levenberg_marquardt(&mut prob, &options.start, lm_opts) {
        Err(LmError::NonFiniteAtStart) => {
            let err = prob.project(&options.start).err();
            drop(prob);
            let w: Option<Vec<f64>> = options.sigma.as_ref().map(|s| s.iter().map(|s| 1.0 / s).collect());
            return Err(start_error(model, &options.start, y, w.as_deref(), err));
        }
        r => r?,
    };
    if !prob.is_projected_at(&rep.x) {
        prob.project(&rep.x).map_err(FitError::NonFiniteAtStart)?;
    }
    let a = prob.linear_params().to_vec();
    let linear_state = prob.linear_state().to_vec();
    // What a batch row needs, from the factors at hand; the Jacobian only where that declines.
    let std_errors = if options.detail == Detail::Lean { prob.lean_std_errors(n - p - model_q) } else { None };
    let jac = match std_errors {
        Some(_) => Mat::zeros(0, 0),
        None => prob.compact_full_jacobian().map_err(FitError::NonFiniteAtStart)?,
    };
    let (fitted, projected) = match options.detail {
        Detail::Lean | Detail::Covariance => (None, Some((prob.rss(), prob.basis_rank()))),
        Detail::Full => {
            let has_offset = prob.has_offset();
            let ev = prob.full_eval().map_err(FitError::NonFiniteAtStart)?;
            (Some(fitted_values(ev, has_offset, &a, n)), None)
        }
    };
    ws.varpro = Some(prob.into_buffers());
    Ok(Solution { rep, a, jac, fitted, projected, linear_state, std_errors })
}

/// Lower and upper bounds.
type BoxBounds = (Vec<f64>, Vec<f64>);

/// The linear bounds of `options` (`None` when none is given), both of length `p`, the
/// missing side infinite.
fn linear_bounds(options: &FitOptions, p: usize) -> Result<Option<BoxBounds>, FitError> {
    if options.linear_lower.is_none() && options.linear_upper.is_none() {
        return Ok(None);
    }
    let side = |v: &Option<Vec<f64>>, which: &'static str, fill: f64| match v {
        None => Ok(vec![fill; p]),
        Some(v) if v.len() == p => Ok(v.clone()),
        Some(v) => Err(FitError::LinearBoundsLength { which, expected: p, got: v.len() }),
    };
    let lower = side(&options.linear_lower, "lower", f64::NEG_INFINITY)?;
    let upper = side(&options.linear_upper, "upper", f64::INFINITY)?;
    for j in 0..p {
        if !(lower[j] <= upper[j]) || lower[j] == f64::INFINITY || upper[j] == f64::NEG_INFINITY {
            return Err(FitError::InvalidLinearBounds { index: j, lower: lower[j], upper: upper[j] });
        }
    }
    Ok(Some((lower, upper)))
}

/// Levenberg–Marquardt on all parameters jointly.
fn solve_full<M: SeparableModel + ?Sized>(
    model: &mut M,
    y: &[f64],
    options: &FitOptions,
    lm_opts: &LmOptions,
    w: &[f64],
) -> Result<Solution, FitError> {
    let (n, p, q) = (model.n_obs(), model.n_linear(), model.n_nonlinear());
    if let Some(ls) = &options.linear_start
        && ls.len() != p {
            return Err(FitError::LinearStartLength { expected: p, got: ls.len() });
        }
    if options.start.len() != q {
        return Err(LmError::StartLength { expected: q, got: options.start.len() }.into());
    }
    let lin_bounds = linear_bounds(options, p)?;
    let mut x0 = options.start.clone();
    let mut lin_start = options.linear_start.clone().unwrap_or_else(|| vec![1.0; p]);
    if let (Some((lo, hi)), None) = (&lin_bounds, &options.linear_start) {
        // The default start, moved inside the bounds.
        for j in 0..p {
            lin_start[j] = lin_start[j].clamp(lo[j], hi[j]);
        }
    }
    x0.extend(lin_start);
    let extend = |v: &Option<Vec<f64>>, fill: f64, lin: Option<&Vec<f64>>| {
        let v = match (v, lin) {
            (None, None) => return None,
            (Some(v), _) if v.len() != q => return Some(v.clone()),
            (Some(v), _) => v.clone(),
            (None, Some(_)) => vec![if fill > 0.0 { f64::INFINITY } else { f64::NEG_INFINITY }; q],
        };
        let mut v = v;
        match lin {
            Some(l) => v.extend_from_slice(l),
            None => v.extend(std::iter::repeat_n(fill, p)),
        }
        Some(v)
    };
    let opts = LmOptions {
        lower: extend(&lm_opts.lower, f64::NEG_INFINITY, lin_bounds.as_ref().map(|b| &b.0)),
        upper: extend(&lm_opts.upper, f64::INFINITY, lin_bounds.as_ref().map(|b| &b.1)),
        ..lm_opts.clone()
    };
    let mut prob = FullProblem::new(&mut *model, y, options.sigma.as_deref())?;
    let mut rep = match lm::levenberg_marquardt(&mut prob, &x0, &opts) {
        Err(LmError::NonFiniteAtStart) => {
            let mut r = vec![0.0; n];
            let err = prob.residuals(&x0, &mut r).err();
            drop(prob);
            return Err(start_error(model, &options.start, y, Some(w), err));
        }
        r => r?,
    };
    let a = rep.x.split_off(q);
    for v in rep.path.iter_mut() {
        v.truncate(q);
    }
    let linear_state: Vec<VarState> = match &lin_bounds {
        None => vec![VarState::Free; p],
        Some((lo, hi)) => (0..p)
            .map(|j| {
                if a[j] <= lo[j] {
                    VarState::Lower
                } else if a[j] >= hi[j] {
                    VarState::Upper
                } else {
                    VarState::Free
                }
            })
            .collect(),
    };
    rep.at_lower.truncate(q);
    rep.at_upper.truncate(q);
    let mut ev = ModelEval::new(&*model);
    model.eval(&rep.x, &mut ev).map_err(FitError::NonFiniteAtStart)?;
    let fitted = fitted_values(&ev, model.has_offset(), &a, n);
    let mut jac = Mat::zeros(n, q + p);
    weighted_full_jacobian(&ev, model.basis_derivative_pattern(), model.offset_derivative_pattern(), &a, w, q, &mut jac);
    Ok(Solution { rep, a, jac, fitted: Some(fitted), projected: None, linear_state, std_errors: None })
}

/// Warnings about the solution: not converged, rank-deficient basis, singular or
/// ill-conditioned Jacobian (a NaN condition number, not computed, gives none), no degrees of
/// freedom.
fn solution_warnings(termination: Termination, basis_rank: usize, method: Method, n: usize, p: usize, q: usize, st: &ParamStats) -> Vec<FitWarning> {
    let mut warnings = vec![];
    if !termination.is_converged() {
        warnings.push(FitWarning::NotConverged(termination));
    }
    if p > 0 && basis_rank < p {
        warnings.push(FitWarning::RankDeficientBasis { rank: basis_rank, p, eliminated: method.eliminates_linear() });
    }
    if st.rank < p + q {
        warnings.push(FitWarning::SingularJacobian { rank: st.rank, params: p + q });
    } else if st.condition_number > 1e10 {
        warnings.push(FitWarning::IllConditioned { condition_number: st.condition_number });
    }
    if n == p + q {
        warnings.push(FitWarning::NoDegreesOfFreedom { n, params: p + q });
    }
    warnings
}

/// Nonlinear parameters the data do not determine, with their standard errors: a standard
/// error above `1e7·|b_k|` and above `1e6` (no significant digit, by seven orders of
/// magnitude). That is a fit run off to where the model no longer depends on the parameter — a
/// time constant at 1e9 or ±1e15 (the exponential a constant), or one far below the sampling
/// interval (it touches only the first point) — where the gradient vanishes and the iteration
/// stops as if converged, though the Jacobian stays numerically of full rank. Both limits
/// together keep a well-determined estimate that merely sits near 0 (a peak centre of
/// 1e-17 ± 0.001) from being flagged.
fn undetermined_parameters(b: &[f64], std_errors: &[f64]) -> Vec<(usize, f64)> {
    b.iter()
        .zip(std_errors)
        .enumerate()
        .filter(|(_, (v, se))| se.is_finite() && **se > 1e7 * v.abs() && **se > 1e6)
        .map(|(k, (_, se))| (k, *se))
        .collect()
}

/// Buffers reused by [`fit_with`] across fits of models of one shape (the same numbers of
/// observations and parameters), so that fitting many curves one after another allocates
/// no per-observation workspace per curve.
#[derive(Default)]
pub struct FitWorkspace {
    varpro: Option<varpro::VarProBuffers>,
}

impl FitWorkspace {
    /// The most observations whose buffers [`fit`] keeps for the next fit on the same thread
    /// (a few megabytes; larger problems allocate per fit, where that cost is negligible).
    pub const KEPT_OBS: usize = 1 << 16;
}

impl std::fmt::Debug for FitWorkspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FitWorkspace").field("holds_buffers", &self.varpro.is_some()).finish()
    }
}

/// Fits the separable `model` to `y`.
///
/// Returns `Err` when the fit cannot run (shapes, NaN in data, bad start or
/// bounds, model failing at the start); a fit that does not converge is `Ok`
/// with [`Fit::outcome`] saying so and a [`FitWarning`] why.
///
/// Repeated fits of one shape on a thread reuse a workspace kept for that thread (for up to
/// [`FitWorkspace::KEPT_OBS`] observations), as [`fit_with`] would: the results are the same,
/// bit for bit, without allocating and zeroing the per-observation buffers again.
pub fn fit<M: SeparableModel + ?Sized>(model: &mut M, y: &[f64], options: &FitOptions) -> Result<Fit, FitError> {
    // Taken out for the fit (a nested fit, as in a search, gets a fresh one), put back after.
    let mut ws = THREAD_WORKSPACE.with(|w| w.take()).unwrap_or_default();
    let out = fit_with(model, y, options, &mut ws);
    if ws.varpro.as_ref().is_some_and(|b| b.n_obs() <= FitWorkspace::KEPT_OBS) {
        THREAD_WORKSPACE.with(|w| w.set(Some(ws)));
    }
    out
}

thread_local! {
    /// The workspace [`fit`] reuses on this thread (boxed: a pointer in thread-local storage,
    /// which is small in a shared library loaded at run time, such as the Python extension).
    static THREAD_WORKSPACE: std::cell::Cell<Option<Box<FitWorkspace>>> = const { std::cell::Cell::new(None) };
}

/// [`fit`], reusing the buffers in `ws` (for many fits of one model shape).
pub fn fit_with<M: SeparableModel + ?Sized>(
    model: &mut M,
    y: &[f64],
    options: &FitOptions,
    ws: &mut FitWorkspace,
) -> Result<Fit, FitError> {
    if options.loss != Loss::Linear {
        return crate::irls::fit_irls(model, y, options, ws);
    }
    let scales = data_scales(model.has_offset(), y, options.sigma.as_deref());
    if scales != (1.0, 1.0) {
        return fit_scaled(model, y, options, ws, scales);
    }
    let full = options.detail == Detail::Full;
    let (n, p, q) = (model.n_obs(), model.n_linear(), model.n_nonlinear());
    // The weights (and the data checks) are needed up front except for the lean variable
    // projection, whose problem checks the data itself.
    let w = if full || options.method == Method::Full { check_data(&*model, y, options.sigma.as_deref())? } else { Vec::new() };
    if n < p + q {
        return Err(FitError::TooFewObservations { n, params: p + q });
    }
    let mut lm_opts = options.lm.clone();
    lm_opts.record &= full;
    let Solution { rep, a, jac, fitted, projected, linear_state, std_errors } = match options.method {
        Method::VarPro | Method::Kaufman => solve_varpro(model, y, options, &lm_opts, ws)?,
        Method::Full => solve_full(model, y, options, &lm_opts, &w)?,
    };
    let b = rep.x.clone();
    let (fitted, residuals, weighted_residuals, rss) = match (fitted, projected) {
        (Some(fitted), _) if full => {
            let residuals: Vec<f64> = y.iter().zip(&fitted).map(|(y, f)| y - f).collect();
            let weighted_residuals: Vec<f64> = residuals.iter().zip(&w).map(|(r, w)| r * w).collect();
            let rss: f64 = weighted_residuals.iter().map(|r| r * r).sum();
            (fitted, residuals, weighted_residuals, rss)
        }
        (Some(fitted), _) => {
            let rss = y.iter().zip(&fitted).zip(&w).map(|((y, f), w)| (w * (y - f)) * (w * (y - f))).sum();
            (Vec::new(), Vec::new(), Vec::new(), rss)
        }
        (None, Some((rss, _))) => (Vec::new(), Vec::new(), Vec::new(), rss),
        (None, None) => unreachable!("every solver returns fitted values or the projection"),
    };
    let dof = n - p - q;
    let mut estimates = b.clone();
    estimates.extend_from_slice(&a);
    let lean_se = if options.detail == Detail::Lean { std_errors.or_else(|| stats::std_errors_qr(jac.as_ref(), rss, dof)) } else { None };
    let mut st = match lean_se {
        Some(se) => ParamStats {
            covariance: None,
            correlation: None,
            std_errors: se,
            t_values: Vec::new(),
            p_values: Vec::new(),
            rank: p + q,
            condition_number: f64::NAN,
        },
        None => stats::param_stats_with(jac.as_ref(), n, rss, dof, &estimates, full),
    };
    if options.detail == Detail::Covariance {
        st.fill_tests_with_nan();
    }
    if dof == 0 {
        // A square system: the estimates solve it, but there is no residual variance.
        st.std_errors.iter_mut().chain(&mut st.t_values).chain(&mut st.p_values).for_each(|v| *v = f64::NAN);
        (st.covariance, st.correlation) = (None, None);
    }
    // Basis rank at the solution: the weighted basis is columns q.. of the weighted Jacobian.
    // A full-rank Jacobian has a full-rank basis (a column subset's condition number is at most
    // the whole matrix's), so its singular values are needed only otherwise.
    let basis_rank = match projected {
        Some((_, rank)) => rank,
        None if p == 0 => 0,
        None if st.rank == p + q => p,
        None => match stats::tall_singular_values(jac.as_ref().subcols(q, p)) {
            Some(s) => {
                let smax = s.iter().fold(0.0f64, |a, v| a.max(*v));
                s.iter().filter(|v| **v > f64::EPSILON * (n.max(p) as f64) * smax).count()
            }
            // No singular values (non-finite entries): nothing is claimed about the rank.
            None => p,
        },
    };
    let (r_squared, aic, bic) = if full {
        let sw: f64 = w.iter().map(|v| v * v).sum();
        let ybar: f64 = y.iter().zip(&w).map(|(y, w)| y * (w * w)).sum::<f64>() / sw;
        let tss: f64 = y.iter().zip(&w).map(|(y, w)| (w * w) * (y - ybar) * (y - ybar)).sum();
        let nf = n as f64;
        let k = (p + q) as f64;
        // Σ ln σᵢ (zero without weights: no n logarithms per fit then).
        let sum_ln_sigma: f64 = if options.sigma.is_some() { w.iter().map(|w| -w.ln()).sum() } else { 0.0 };
        let base = nf * (2.0 * std::f64::consts::PI * rss / nf).ln() + nf + 2.0 * sum_ln_sigma;
        (1.0 - rss / tss, base + 2.0 * (k + 1.0), base + (k + 1.0) * nf.ln())
    } else {
        (f64::NAN, f64::NAN, f64::NAN)
    };
    let mut warnings = solution_warnings(rep.termination, basis_rank, options.method, n, p, q, &st);
    for kk in 0..q {
        if rep.at_lower[kk] && options.lm.lower.is_some() {
            warnings.push(FitWarning::AtBound { index: kk, upper: false });
        }
        if rep.at_upper[kk] && options.lm.upper.is_some() {
            warnings.push(FitWarning::AtBound { index: kk, upper: true });
        }
    }
    let linear_at_lower: Vec<bool> = linear_state.iter().map(|s| *s == VarState::Lower).collect();
    let linear_at_upper: Vec<bool> = linear_state.iter().map(|s| *s == VarState::Upper).collect();
    for j in 0..p {
        if linear_at_lower[j] || linear_at_upper[j] {
            warnings.push(FitWarning::LinearAtBound { index: q + j, upper: linear_at_upper[j] });
        }
    }
    let undetermined = undetermined_parameters(&b, &st.std_errors);
    for &(index, std_error) in &undetermined {
        warnings.push(FitWarning::Undetermined { index, value: b[index], std_error });
    }
    let degenerate = (p > 0 && basis_rank < p) || st.rank < p + q || !undetermined.is_empty();
    let outcome = if !rep.termination.is_converged() {
        Outcome::NotConverged
    } else if degenerate {
        Outcome::Degenerate
    } else {
        Outcome::Converged
    };
    let per_dof = if dof > 0 { rss / dof as f64 } else { f64::NAN };
    Ok(Fit {
        method: options.method,
        linear: a,
        nonlinear: b,
        termination: rep.termination,
        outcome,
        converged: outcome == Outcome::Converged,
        iterations: rep.iterations,
        polish_steps: rep.polish_steps,
        residual_evaluations: rep.residual_evaluations,
        jacobian_evaluations: rep.jacobian_evaluations,
        rss,
        initial_rss: 2.0 * rep.initial_cost,
        dof,
        residual_std_error: per_dof.sqrt(),
        reduced_chi_square: per_dof,
        r_squared,
        aic,
        bic,
        fitted,
        residuals,
        weighted_residuals,
        estimates,
        stats: st,
        basis_rank,
        at_lower: rep.at_lower,
        at_upper: rep.at_upper,
        linear_at_lower,
        linear_at_upper,
        log: rep.log,
        path: rep.path,
        warnings,
        loss: Loss::Linear,
        f_scale: options.f_scale,
        loss_cost: f64::NAN,
        deviance: f64::NAN,
        irls_iterations: 0,
    })
}
