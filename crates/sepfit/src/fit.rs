//! The user-facing fit: [`fit`], [`FitOptions`], [`Fit`], [`FitError`].
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
use crate::model::{ModelError, ModelEval, SeparableModel};
use crate::problems::full::{FullProblem, weighted_full_jacobian};
use crate::problems::varpro::{self, JacobianKind, VarProProblem};
use crate::problems::data::check_data;
use crate::solvers::lm::{self, IterationRecord, LmError, LmOptions, Termination};
use crate::stats::{self, ParamStats};
use faer::Mat;

/// How the parameters are estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    /// Variable projection with the exact Golub–Pereyra Jacobian (default).
    #[default]
    VarPro,
    /// Variable projection with Kaufman's approximate Jacobian.
    Kaufman,
    /// All parameters fitted jointly by Levenberg–Marquardt (for comparison).
    Full,
}

/// Options of [`fit`].
#[derive(Debug, Clone, PartialEq)]
pub struct FitOptions {
    /// Estimation method.
    pub method: Method,
    /// Per-observation standard deviations σᵢ (rows are weighted by 1/σᵢ).
    pub sigma: Option<Vec<f64>>,
    /// Starting values of the nonlinear parameters `b` (length `q`).
    pub start: Vec<f64>,
    /// Starting values of the linear parameters for [`Method::Full`] (default all 1).
    pub linear_start: Option<Vec<f64>>,
    /// Lower bounds of the nonlinear parameters (`-inf` allowed).
    pub lower: Option<Vec<f64>>,
    /// Upper bounds of the nonlinear parameters (`+inf` allowed).
    pub upper: Option<Vec<f64>>,
    /// Relative cost-reduction tolerance (see [`LmOptions::ftol`]).
    pub ftol: f64,
    /// Relative step tolerance (see [`LmOptions::xtol`]).
    pub xtol: f64,
    /// Gradient tolerance (see [`LmOptions::gtol`]).
    pub gtol: f64,
    /// Maximum iterations.
    pub max_iterations: usize,
    /// Maximum residual evaluations.
    pub max_evaluations: usize,
    /// Initial trust radius factor (see [`LmOptions::factor`]).
    pub factor: f64,
    /// Gauss–Newton polishing of the solution (see [`LmOptions::polish`]).
    pub polish: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        let lm = LmOptions::default();
        Self {
            method: Method::default(),
            sigma: None,
            start: vec![],
            linear_start: None,
            lower: None,
            upper: None,
            ftol: lm.ftol,
            xtol: lm.xtol,
            gtol: lm.gtol,
            max_iterations: lm.max_iterations,
            max_evaluations: lm.max_evaluations,
            factor: lm.factor,
            polish: lm.polish,
        }
    }
}

impl FitOptions {
    /// Default options with the given start for the nonlinear parameters.
    pub fn with_start(start: &[f64]) -> Self {
        Self { start: start.to_vec(), ..Self::default() }
    }
}

/// Something the user should know about a fit.
#[derive(Debug, Clone, PartialEq)]
pub enum FitWarning {
    /// The iteration stopped without convergence.
    NotConverged(Termination),
    /// The basis matrix `Φ` is numerically rank deficient at the solution.
    RankDeficientBasis {
        /// Numerical rank.
        rank: usize,
        /// Number of basis functions.
        p: usize,
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
    /// A nonlinear parameter ended on a bound; its standard error ignores the constraint.
    AtBound {
        /// Nonlinear parameter index.
        index: usize,
        /// `true` for the upper bound.
        upper: bool,
    },
}

impl std::fmt::Display for FitWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FitWarning::NotConverged(t) => write!(f, "not converged: {t}"),
            FitWarning::RankDeficientBasis { rank, p } => {
                write!(f, "basis functions are linearly dependent (rank {rank} of {p}); some linear parameters are set to 0")
            }
            FitWarning::SingularJacobian { rank, params } => {
                write!(f, "Jacobian is singular (rank {rank} of {params}); standard errors unavailable")
            }
            FitWarning::IllConditioned { condition_number } => {
                write!(f, "Jacobian is ill-conditioned (condition number {condition_number:.3e}); standard errors unreliable")
            }
            FitWarning::AtBound { index, upper } => {
                write!(f, "nonlinear parameter {index} is at its {} bound", if *upper { "upper" } else { "lower" })
            }
        }
    }
}

/// Result of [`fit`]. Parameter order for statistics: `θ = (b, a)`.
#[derive(Debug, Clone)]
pub struct Fit {
    /// Method used.
    pub method: Method,
    /// Linear parameters `a` (length `p`).
    pub linear: Vec<f64>,
    /// Nonlinear parameters `b` (length `q`).
    pub nonlinear: Vec<f64>,
    /// Why the iteration stopped.
    pub termination: Termination,
    /// Whether the termination means convergence.
    pub converged: bool,
    /// Iterations of Levenberg–Marquardt.
    pub iterations: usize,
    /// Gauss–Newton polishing steps accepted after convergence (see [`crate::lm`]).
    pub polish_steps: usize,
    /// Residual (model) evaluations.
    pub residual_evaluations: usize,
    /// Jacobian evaluations.
    pub jacobian_evaluations: usize,
    /// Weighted residual sum of squares χ² = Σ ((yᵢ − fᵢ)/σᵢ)².
    pub rss: f64,
    /// Initial weighted RSS (for VarPro: with the optimal `a` at `b₀`).
    pub initial_rss: f64,
    /// Degrees of freedom `n − p − q`.
    pub dof: usize,
    /// Residual standard error `s = sqrt(rss/dof)`.
    pub residual_std_error: f64,
    /// Reduced χ² = rss/dof.
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
    /// Iteration log.
    pub log: Vec<IterationRecord>,
    /// Accepted iterates of the nonlinear parameters `b`.
    pub path: Vec<Vec<f64>>,
    /// Warnings.
    pub warnings: Vec<FitWarning>,
}

impl Fit {
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

fn lm_options(options: &FitOptions, record: bool) -> LmOptions {
    LmOptions {
        ftol: options.ftol,
        xtol: options.xtol,
        gtol: options.gtol,
        max_iterations: options.max_iterations,
        max_evaluations: options.max_evaluations,
        factor: options.factor,
        lower: options.lower.clone(),
        upper: options.upper.clone(),
        polish: options.polish,
        record,
    }
}

/// Runs Levenberg–Marquardt on the compact variable-projection problem (reusing `ws`'s
/// buffers) and leaves the problem projected at the solution.
fn solve_varpro<'m, M: SeparableModel + ?Sized>(
    model: &'m mut M,
    y: &[f64],
    options: &FitOptions,
    ws: &mut FitWorkspace,
    record: bool,
) -> Result<(VarProProblem<'m, M>, lm::LmReport), FitError> {
    let (n, p, q) = (model.n_obs(), model.n_linear(), model.n_nonlinear());
    let kind = if options.method == Method::Kaufman { JacobianKind::Kaufman } else { JacobianKind::GolubPereyra };
    let mut prob = VarProProblem::with_buffers(model, y, options.sigma.as_deref(), kind, true, ws.varpro.take())?;
    if n <= p + q {
        return Err(FitError::TooFewObservations { n, params: p + q });
    }
    let rep = lm::levenberg_marquardt(&mut prob, &options.start, &lm_options(options, record))?;
    if rep.termination == Termination::NonFiniteAtStart {
        let err = prob.project(&options.start).err().unwrap_or_else(|| ModelError::new("non-finite residuals"));
        return Err(FitError::NonFiniteAtStart(err));
    }
    if !prob.is_projected_at(&rep.x) {
        prob.project(&rep.x).map_err(FitError::NonFiniteAtStart)?;
    }
    Ok((prob, rep))
}

/// The batch's variable-projection fit ([`FitWorkspace::lean`]): estimates, standard errors,
/// RSS and counts only. The RSS is the projection's `‖r̃‖²` (no fitted values are formed), and
/// the standard errors come from a QR of the compact Jacobian when it is clearly
/// well-conditioned (the SVD of [`fit`] otherwise); the fields the batch does not report
/// (fitted values, residuals, R², AIC, BIC, t and p values, correlations, condition number,
/// log and path) are empty or NaN.
fn fit_lean<M: SeparableModel + ?Sized>(
    model: &mut M,
    y: &[f64],
    options: &FitOptions,
    ws: &mut FitWorkspace,
) -> Result<Fit, FitError> {
    let (n, p, q) = (model.n_obs(), model.n_linear(), model.n_nonlinear());
    let (mut prob, rep) = solve_varpro(model, y, options, ws, false)?;
    let a = prob.linear_params().to_vec();
    let rss = prob.rss();
    let basis_rank = prob.basis_rank();
    let jac = prob.compact_full_jacobian().map_err(FitError::NonFiniteAtStart)?;
    ws.varpro = Some(prob.into_buffers());
    let dof = n - p - q;
    let b = rep.x.clone();
    let mut estimates = b.clone();
    estimates.extend_from_slice(&a);
    let st = match stats::std_errors_qr(jac.as_ref(), rss, dof) {
        Some(se) => ParamStats {
            covariance: None,
            correlation: None,
            std_errors: se,
            t_values: Vec::new(),
            p_values: Vec::new(),
            rank: p + q,
            condition_number: f64::NAN,
        },
        None => stats::param_stats_with(jac.as_ref(), n, rss, dof, &estimates, false),
    };
    let converged = rep.termination.is_converged();
    let warnings = solution_warnings(rep.termination, basis_rank, p, q, &st);
    Ok(Fit {
        method: options.method,
        linear: a,
        nonlinear: b,
        termination: rep.termination,
        converged,
        iterations: rep.iterations,
        polish_steps: rep.polish_steps,
        residual_evaluations: rep.residual_evaluations,
        jacobian_evaluations: rep.jacobian_evaluations,
        rss,
        initial_rss: 2.0 * rep.initial_cost,
        dof,
        residual_std_error: (rss / dof as f64).sqrt(),
        reduced_chi_square: rss / dof as f64,
        r_squared: f64::NAN,
        aic: f64::NAN,
        bic: f64::NAN,
        fitted: Vec::new(),
        residuals: Vec::new(),
        weighted_residuals: Vec::new(),
        estimates,
        stats: st,
        basis_rank,
        at_lower: rep.at_lower,
        at_upper: rep.at_upper,
        log: rep.log,
        path: rep.path,
        warnings,
    })
}

/// Warnings about the solution: not converged, rank-deficient basis, singular or
/// ill-conditioned Jacobian (a NaN condition number, not computed, gives none).
fn solution_warnings(termination: Termination, basis_rank: usize, p: usize, q: usize, st: &ParamStats) -> Vec<FitWarning> {
    let mut warnings = vec![];
    if !termination.is_converged() {
        warnings.push(FitWarning::NotConverged(termination));
    }
    if p > 0 && basis_rank < p {
        warnings.push(FitWarning::RankDeficientBasis { rank: basis_rank, p });
    }
    if st.rank < p + q {
        warnings.push(FitWarning::SingularJacobian { rank: st.rank, params: p + q });
    } else if st.condition_number > 1e10 {
        warnings.push(FitWarning::IllConditioned { condition_number: st.condition_number });
    }
    warnings
}

/// Buffers reused by [`fit_with`] across fits of models of one shape (the same numbers of
/// observations and parameters), so that fitting many curves one after another allocates
/// no per-observation workspace per curve.
#[derive(Default)]
pub struct FitWorkspace {
    varpro: Option<varpro::VarProBuffers>,
    /// Batch mode (set by [`crate::batch::BatchWorker`] only): the `Fit` keeps estimates,
    /// standard errors, RSS and the iteration counts; the iteration log and path, the fitted
    /// and residual vectors, t and p values and correlations are left empty (see
    /// [`fit_lean`] for variable projection).
    pub(crate) lean: bool,
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
/// with [`Fit::converged`] false and a [`FitWarning::NotConverged`].
pub fn fit<M: SeparableModel + ?Sized>(model: &mut M, y: &[f64], options: &FitOptions) -> Result<Fit, FitError> {
    fit_with(model, y, options, &mut FitWorkspace::default())
}

/// [`fit`], reusing the buffers in `ws` (for many fits of one model shape).
pub fn fit_with<M: SeparableModel + ?Sized>(
    model: &mut M,
    y: &[f64],
    options: &FitOptions,
    ws: &mut FitWorkspace,
) -> Result<Fit, FitError> {
    let sigma = options.sigma.as_deref();
    let varpro_method = matches!(options.method, Method::VarPro | Method::Kaufman);
    if ws.lean && varpro_method {
        // The batch's fit: its `VarProProblem` checks the data.
        return fit_lean(model, y, options, ws);
    }
    let w = check_data(&*model, y, sigma)?;
    let (n, p, q) = (model.n_obs(), model.n_linear(), model.n_nonlinear());
    if n <= p + q {
        return Err(FitError::TooFewObservations { n, params: p + q });
    }
    let lm_opts = lm_options(options, !ws.lean);
    let (b, a_full, rep, ev) = match options.method {
        Method::VarPro | Method::Kaufman => {
            let (mut prob, rep) = solve_varpro(model, y, options, ws, lm_opts.record)?;
            let a = prob.linear_params().to_vec();
            let jac = prob.compact_full_jacobian().map_err(FitError::NonFiniteAtStart)?;
            let has_offset = prob.has_offset();
            let ev = prob.full_eval().map_err(FitError::NonFiniteAtStart)?;
            let fitted = fitted_values(ev, has_offset, &a, n);
            ws.varpro = Some(prob.into_buffers());
            (rep.x.clone(), a, rep, Some((fitted, jac)))
        }
        Method::Full => {
            if let Some(ls) = &options.linear_start {
                if ls.len() != p {
                    return Err(FitError::LinearStartLength { expected: p, got: ls.len() });
                }
            }
            if options.start.len() != q {
                return Err(LmError::StartLength { expected: q, got: options.start.len() }.into());
            }
            let mut x0 = options.start.clone();
            x0.extend(options.linear_start.clone().unwrap_or_else(|| vec![1.0; p]));
            let extend = |v: &Option<Vec<f64>>, fill: f64| {
                v.as_ref().map(|v| {
                    let mut v = v.clone();
                    if v.len() == q {
                        v.extend(std::iter::repeat_n(fill, p));
                    }
                    v
                })
            };
            let opts = LmOptions {
                lower: extend(&options.lower, f64::NEG_INFINITY),
                upper: extend(&options.upper, f64::INFINITY),
                ..lm_opts.clone()
            };
            let mut prob = FullProblem::new(&mut *model, y, sigma)?;
            let mut rep = lm::levenberg_marquardt(&mut prob, &x0, &opts)?;
            if rep.termination == Termination::NonFiniteAtStart {
                let mut r = vec![0.0; n];
                use crate::solvers::lm::LeastSquaresProblem;
                let err = prob.residuals(&x0, &mut r).err().unwrap_or_else(|| ModelError::new("non-finite residuals"));
                return Err(FitError::NonFiniteAtStart(err));
            }
            let b = rep.x[..q].to_vec();
            let a = rep.x[q..].to_vec();
            for v in rep.path.iter_mut() {
                v.truncate(q);
            }
            rep.at_lower.truncate(q);
            rep.at_upper.truncate(q);
            (b, a, rep, None)
        }
    };
    // Evaluate at the solution (VarPro: the problem's last evaluation) and build statistics.
    // The weighted Jacobian of all parameters (VarPro: its compact form `QᵀJ`, with the same
    // singular values; Full: `n × (q + p)`).
    let (fitted, jac) = match ev {
        Some(fj) => fj,
        None => {
            let mut ev = ModelEval::new(&*model);
            model.eval(&b, &mut ev).map_err(FitError::NonFiniteAtStart)?;
            let fitted = fitted_values(&ev, model.has_offset(), &a_full, n);
            let mut jac = Mat::zeros(n, q + p);
            weighted_full_jacobian(
                &ev,
                model.basis_derivative_pattern(),
                model.offset_derivative_pattern(),
                &a_full,
                &w,
                q,
                &mut jac,
            );
            (fitted, jac)
        }
    };
    let (fitted, residuals, weighted_residuals, rss) = if ws.lean {
        let rss = y.iter().zip(&fitted).zip(&w).map(|((y, f), w)| (w * (y - f)) * (w * (y - f))).sum();
        (Vec::new(), Vec::new(), Vec::new(), rss)
    } else {
        let residuals: Vec<f64> = y.iter().zip(&fitted).map(|(y, f)| y - f).collect();
        let weighted_residuals: Vec<f64> = residuals.iter().zip(&w).map(|(r, w)| r * w).collect();
        let rss: f64 = weighted_residuals.iter().map(|r| r * r).sum();
        (fitted, residuals, weighted_residuals, rss)
    };
    let dof = n - p - q;
    let mut estimates = b.clone();
    estimates.extend_from_slice(&a_full);
    let st = stats::param_stats_with(jac.as_ref(), n, rss, dof, &estimates, !ws.lean);
    // Basis rank at the solution: the weighted basis is columns q.. of the weighted Jacobian.
    // A full-rank Jacobian has a full-rank basis (a column subset's condition number is at most
    // the whole matrix's), so its singular values are needed only otherwise.
    let basis_rank = if p == 0 {
        0
    } else if st.rank == p + q {
        p
    } else {
        match stats::tall_singular_values(jac.as_ref().subcols(q, p)) {
            Some(s) => {
                let smax = s.iter().fold(0.0f64, |a, v| a.max(*v));
                s.iter().filter(|v| **v > f64::EPSILON * (n.max(p) as f64) * smax).count()
            }
            None => 0,
        }
    };
    let sw: f64 = w.iter().map(|v| v * v).sum();
    let ybar: f64 = y.iter().zip(&w).map(|(y, w)| y * (w * w)).sum::<f64>() / sw;
    let tss: f64 = y.iter().zip(&w).map(|(y, w)| (w * w) * (y - ybar) * (y - ybar)).sum();
    let nf = n as f64;
    let k = (p + q) as f64;
    // Σ ln σᵢ (zero without weights: no n logarithms per fit then).
    let sum_ln_sigma: f64 = if options.sigma.is_some() { w.iter().map(|w| -w.ln()).sum() } else { 0.0 };
    let base = nf * (2.0 * std::f64::consts::PI * rss / nf).ln() + nf + 2.0 * sum_ln_sigma;
    let converged = rep.termination.is_converged();
    let mut warnings = solution_warnings(rep.termination, basis_rank, p, q, &st);
    for kk in 0..q {
        if rep.at_lower[kk] && options.lower.is_some() {
            warnings.push(FitWarning::AtBound { index: kk, upper: false });
        }
        if rep.at_upper[kk] && options.upper.is_some() {
            warnings.push(FitWarning::AtBound { index: kk, upper: true });
        }
    }
    Ok(Fit {
        method: options.method,
        linear: a_full,
        nonlinear: b,
        termination: rep.termination,
        converged,
        iterations: rep.iterations,
        polish_steps: rep.polish_steps,
        residual_evaluations: rep.residual_evaluations,
        jacobian_evaluations: rep.jacobian_evaluations,
        rss,
        initial_rss: 2.0 * rep.initial_cost,
        dof,
        residual_std_error: (rss / dof as f64).sqrt(),
        reduced_chi_square: rss / dof as f64,
        r_squared: 1.0 - rss / tss,
        aic: base + 2.0 * (k + 1.0),
        bic: base + (k + 1.0) * nf.ln(),
        fitted,
        residuals,
        weighted_residuals,
        estimates,
        stats: st,
        basis_rank,
        at_lower: rep.at_lower,
        at_upper: rep.at_upper,
        log: rep.log,
        path: rep.path,
        warnings,
    })
}
