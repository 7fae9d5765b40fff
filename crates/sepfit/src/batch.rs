//! Many curves with one model.
//!
//! * **Batch**: every curve fitted on its own, in parallel ([`BatchFitter::fit_all`]); results
//!   come back in input order, and a curve with bad data or a failed fit is recorded with its
//!   reason while the rest go on.
//! * **Global**: all curves share the nonlinear parameters `b` and each has its own linear
//!   coefficients `a_c` ([`crate::fit_global`]). With a common independent variable this is variable
//!   projection with multiple right-hand sides: one QR of the weighted basis `Φ(b)` per
//!   evaluation serves every curve, `r_c = P⊥ y_c`, and the Golub–Pereyra Jacobian is stacked
//!   curve by curve.
//!
//! ```
//! use sepfit::batch::BatchFitter;
//! use sepfit::named::NamedOptions;
//! let t: Vec<f64> = (0..50).map(|i| i as f64 * 0.1).collect();
//! let curves: Vec<Vec<Vec<f64>>> = [0.5, 1.0, 2.0]
//!     .iter()
//!     .map(|&k| vec![t.clone(), t.iter().map(|t| 3.0 * (-k * t).exp()).collect()])
//!     .collect();
//! let opts = NamedOptions { start: vec![("k".into(), 1.0)], ..Default::default() };
//! let fitter = BatchFitter::new("y ~ a*exp(-k*t)", &["t".into(), "y".into()], &opts).unwrap();
//! let results = fitter.fit_all(&curves);
//! let k: Vec<f64> = results.iter().map(|r| r.values[1]).collect();
//! assert!((k[0] - 0.5).abs() < 1e-10 && (k[2] - 2.0).abs() < 1e-10);
//! ```

use crate::error::FitError;
use crate::fit::{Detail, FitOptions, FitWarning, FitWorkspace, Outcome, fit_with};
use crate::formula::{CompiledFormula, FormulaModel, FormulaModelError};
use crate::solvers::lm::Termination;
use crate::named::{NamedOptions, ProblemError, Resolved, resolve};
use crate::search::{self, SearchError, SearchOptions};
use rayon::prelude::*;

/// Why one curve of a batch could not be fitted.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CurveError {
    /// The curve's data cannot be used by the model (lengths, non-finite values, response).
    #[error(transparent)]
    Model(#[from] FormulaModelError),
    /// The fit could not run (too few points, the model not finite at the start, ...).
    #[error(transparent)]
    Fit(#[from] FitError),
    /// The curve's data could not be read (a front end's reader: a bad cell, a ragged row).
    #[error("{0}")]
    Data(String),
    /// The search for starting values found nothing to start from.
    #[error(transparent)]
    Search(SearchError),
}

/// The result of one curve of a batch: the pieces of a single fit's result that a batch row
/// reports ([`crate::Fit`] with [`Detail::Lean`]), with the same [`Outcome`], [`Termination`]
/// and [`FitWarning`] vocabulary.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct CurveResult {
    /// Estimates in [`BatchFitter::param_names`] order (empty on error).
    pub values: Vec<f64>,
    /// Standard errors, same order (NaN where unavailable).
    pub std_errors: Vec<f64>,
    /// Residual sum of squares (with a robust or Poisson loss, `Σ rᵢ²` with the user's σ, or
    /// Pearson's χ²: see [`crate::Fit::rss`]).
    pub rss: f64,
    /// The minimised objective of a loss other than least squares: the robust cost or the
    /// Poisson deviance ([`crate::Fit::loss_cost`]; NaN for least squares and on error).
    pub loss_cost: f64,
    /// Degrees of freedom.
    pub dof: usize,
    /// LM iterations.
    pub iterations: usize,
    /// How the fit ended (`None` if the curve could not be fitted).
    pub outcome: Option<Outcome>,
    /// `outcome == Some(Outcome::Converged)`.
    pub converged: bool,
    /// Why the iteration stopped (`None` if the curve could not be fitted).
    pub termination: Option<Termination>,
    /// Warnings (indices in `θ = (b, a)`: nonlinear parameters as in
    /// [`BatchFitter::nonlinear_names`], then the linear ones; a linear parameter ending on its
    /// bound is a [`FitWarning::LinearAtBound`]).
    pub warnings: Vec<FitWarning>,
    /// Why the curve could not be fitted, if it could not.
    pub error: Option<CurveError>,
}

impl CurveResult {
    /// The result of a curve that could not be fitted.
    pub fn failed(error: CurveError) -> Self {
        CurveResult { rss: f64::NAN, loss_cost: f64::NAN, error: Some(error), ..Default::default() }
    }
    /// The status word of a batch row: `converged`, `not_converged`, `degenerate` or `error`.
    pub fn status(&self) -> &'static str {
        match self.outcome {
            Some(Outcome::Converged) => "converged",
            Some(Outcome::NotConverged) => "not_converged",
            Some(Outcome::Degenerate) => "degenerate",
            None => "error",
        }
    }
}

/// The default relative tolerance of `sepfit batch` ([`BatchFitter::set_tolerance`]). On the
/// FLIM curves of `benches/batch_vs_varpro.rs` the estimates lie within 4e-6 (relative) of the
/// fully converged ones, about 1e-4 of their standard errors, at 6.9 iterations per curve
/// instead of 8.9 plus 6.9 polishing steps.
pub const DEFAULT_BATCH_TOL: f64 = 1e-12;

/// What one thread keeps between curves: the compiled model and the fit's buffers, so that a
/// curve costs no compilation and no per-observation allocation.
#[derive(Default)]
pub struct BatchWorker {
    model: Option<FormulaModel>,
    ws: FitWorkspace,
    y: Vec<f64>,
}

impl std::fmt::Debug for BatchWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchWorker").field("compiled", &self.model.is_some()).field("ws", &self.ws).finish()
    }
}

/// One model, many curves. See the module docs.
#[derive(Clone, Debug)]
pub struct BatchFitter {
    resolved: Resolved,
    names: Vec<String>,
    sigma: Option<usize>,
    /// The per-curve search, when some start is missing or a search was asked for.
    search: Option<SearchOptions>,
    /// Whether given starts are searched around (a search was asked for) or held.
    around_starts: bool,
    /// Starts learned from a sample of the curves ([`Self::learn_starts`]).
    pool: Option<Vec<Vec<f64>>>,
    /// The exchangeable blocks of the model (found when the starts were learned).
    pool_groups: Vec<Vec<Vec<usize>>>,
}

impl BatchFitter {
    /// Resolves `formula` and the named options against the column names of each curve.
    pub fn new(formula: &str, column_names: &[String], opts: &NamedOptions) -> Result<Self, ProblemError> {
        let mut resolved = resolve(formula, column_names, opts)?;
        resolved.options.detail = Detail::Lean;
        let sigma = match &opts.sigma {
            None => None,
            Some(s) => Some(column_names.iter().position(|c| c == s).ok_or_else(|| {
                ProblemError::MissingSigmaColumn { name: s.clone(), columns: column_names.to_vec() }
            })?),
        };
        let names = resolved.formula.params().iter().map(|p| p.name.clone()).collect();
        let missing = resolved.given.iter().any(|g| !g);
        let search = match &opts.search {
            Some(s) => Some(s.clone()),
            None if missing => Some(SearchOptions::per_curve()),
            None => None,
        };
        Ok(BatchFitter { resolved, names, sigma, search, around_starts: opts.search.is_some(), pool: None, pool_groups: Vec::new() })
    }

    /// The per-curve search (`None` when every start is given and no search was asked for).
    pub fn search(&self) -> Option<&SearchOptions> {
        self.search.as_ref()
    }

    /// Sets the relative tolerances of every fit (`ftol = xtol = gtol = tol`). Above `1e-13`
    /// the final Gauss–Newton polishing is skipped too: digits far below the noise of real
    /// curves are not worth the extra evaluations when fitting many of them. `ftol` bounds the
    /// relative change of the sum of squares, so parameters converge to about `√tol` of their
    /// standard error.
    pub fn set_tolerance(&mut self, tol: f64) {
        let o = &mut self.resolved.options.lm;
        (o.ftol, o.xtol, o.gtol) = (tol, tol, tol);
        o.polish = tol <= 1e-13;
    }

    /// Parameter names: linear first, then nonlinear (the order of [`CurveResult::values`]).
    pub fn param_names(&self) -> &[String] {
        &self.names
    }

    /// The loss every curve is fitted with ([`crate::FitOptions::loss`]).
    pub fn loss(&self) -> crate::Loss {
        self.resolved.options.loss
    }

    /// Names of the nonlinear parameters (the indices of [`CurveResult::warnings`]).
    pub fn nonlinear_names(&self) -> &[String] {
        &self.resolved.nonlinear
    }

    /// A curve's warnings in words, naming the parameters, joined by `; `.
    pub fn warning_messages(&self, r: &CurveResult) -> String {
        // Indices in θ = (b, a): the nonlinear parameters, then the linear ones.
        let q = self.resolved.nonlinear.len();
        let name = |k: usize| match self.resolved.nonlinear.get(k) {
            Some(n) => n.clone(),
            None => self.resolved.formula.linear_params().nth(k - q).map(|p| p.name.clone()).unwrap_or_default(),
        };
        r.warnings.iter().map(|w| w.message_with(name)).collect::<Vec<_>>().join("; ")
    }

    /// The resolved formula and options.
    pub fn resolved(&self) -> &Resolved {
        &self.resolved
    }

    /// Fits one curve (`columns` in the order of the column names), reusing `worker`'s compiled
    /// model and buffers (start with `BatchWorker::default()`, one per thread). Never panics;
    /// problems are recorded in the result.
    pub fn fit_curve(&self, worker: &mut BatchWorker, columns: &[&[f64]]) -> CurveResult {
        match self.try_fit(worker, columns) {
            Ok(r) => r,
            Err(e) => CurveResult::failed(e),
        }
    }

    fn try_fit(&self, worker: &mut BatchWorker, columns: &[&[f64]]) -> Result<CurveResult, CurveError> {
        let model = match &mut worker.model {
            Some(m) => {
                m.set_data(columns)?;
                m
            }
            slot @ None => slot.insert(CompiledFormula::bind(&self.resolved.compiled, columns)?),
        };
        worker.y.clear();
        worker.y.extend_from_slice(model.response());
        let with_sigma;
        let opts = match self.sigma {
            Some(s) => {
                with_sigma = FitOptions { sigma: Some(columns[s].to_vec()), ..self.resolved.options.clone() };
                &with_sigma
            }
            None => &self.resolved.options,
        };
        let f = match &self.search {
            None => fit_with(model, &worker.y, opts, &mut worker.ws)?,
            Some(sopts) => {
                let from_pool = match &self.pool {
                    Some(pool) => self.fit_from_pool(model, &worker.y, opts, pool, &mut worker.ws),
                    None => None,
                };
                match from_pool {
                    Some(f) => f,
                    None => self.searched(model, columns, &worker.y, opts, sopts, &mut worker.ws)?,
                }
            }
        };
        let p = f.linear.len();
        let mut values = f.linear.clone();
        values.extend(&f.nonlinear);
        let std_errors = (0..p)
            .map(|j| f.stats.std_errors[f.linear_index(j)])
            .chain((0..f.nonlinear.len()).map(|k| f.stats.std_errors[f.nonlinear_index(k)]))
            .collect();
        Ok(CurveResult {
            values,
            std_errors,
            rss: f.rss,
            loss_cost: f.loss_cost,
            dof: f.dof,
            iterations: f.iterations,
            outcome: Some(f.outcome),
            converged: f.converged,
            termination: Some(f.termination),
            warnings: f.warnings,
            error: None,
        })
    }

    /// A curve's search ([`search::search_formula`]), with exchangeable blocks in the order they
    /// were sampled in (ascending), so that every curve's columns mean the same.
    fn searched(
        &self,
        model: &mut FormulaModel,
        columns: &[&[f64]],
        y: &[f64],
        opts: &FitOptions,
        sopts: &SearchOptions,
        ws: &mut FitWorkspace,
    ) -> Result<crate::Fit, CurveError> {
        let r = &self.resolved;
        let starts: Vec<Option<f64>> = r.start.iter().zip(&r.given).map(|(s, g)| g.then_some(*s)).collect();
        let found = search::search_formula(model, &r.formula, columns, y, opts, &starts, self.around_starts, sopts).map_err(|e| match e {
            SearchError::Fit(f) => CurveError::Fit(f),
            other => CurveError::Search(other),
        })?;
        let mut f = found.fit;
        let reference: Vec<f64> = (0..r.start.len()).map(|k| if r.given[k] { r.start[k] } else { found.report.start[k] }).collect();
        let groups = if search::same_order(&f.nonlinear, &reference) {
            Vec::new()
        } else {
            search::exchangeable_blocks_at(&r.formula, columns, &f.nonlinear)
        };
        if let Some(b) = search::relabel(&f.nonlinear, &reference, &groups)
            && let Ok(g) = fit_with(model, y, &FitOptions { start: b, ..opts.clone() }, ws)
            && g.converged
            && g.objective() <= search::same_loss_limit(f.objective(), y, opts.sigma.as_deref())
        {
            f = g;
        }
        Ok(f)
    }

    /// The fit from the learned start with the lowest reduced loss on this curve, if it
    /// converges to a full-rank optimum (otherwise the curve is searched on its own).
    fn fit_from_pool(
        &self,
        model: &mut FormulaModel,
        y: &[f64],
        opts: &FitOptions,
        pool: &[Vec<f64>],
        ws: &mut FitWorkspace,
    ) -> Option<crate::Fit> {
        let best = {
            let mut prob = crate::VarProProblem::compact_for(model, y, opts).ok()?;
            let mut best: Option<(f64, &Vec<f64>)> = None;
            for b in pool {
                if prob.project(b).is_ok() {
                    let l = prob.rss();
                    if l.is_finite() && best.is_none_or(|(bl, _)| l < bl) {
                        best = Some((l, b));
                    }
                }
            }
            best?.1.clone()
        };
        let mut f = fit_with(model, y, &FitOptions { start: best.clone(), ..opts.clone() }, ws).ok()?;
        // Exchangeable blocks in the learned start's (ascending) order.
        if let Some(b) = search::relabel(&f.nonlinear, &best, &self.pool_groups)
            && let Ok(g) = fit_with(model, y, &FitOptions { start: b, ..opts.clone() }, ws)
            && g.converged
            && g.objective() <= search::same_loss_limit(f.objective(), y, opts.sigma.as_deref())
        {
            f = g;
        }
        let degenerate = f.warnings.iter().any(|w| matches!(w, FitWarning::RankDeficientBasis { .. } | FitWarning::SingularJacobian { .. }));
        (f.outcome == Outcome::Converged && !degenerate).then_some(f)
    }

    /// Learns starting values from a sample of the curves (`curves[c][j]`: column `j` of curve
    /// `c`): each is searched on its own with the full search, and the distinct optima found
    /// become the starts every later curve is fitted from — the one with the lowest reduced
    /// loss on that curve; a curve whose fit from it does not converge to a full-rank optimum
    /// is searched on its own. Much cheaper than a search per curve when the curves are alike
    /// (an image of decays); results then depend on which curves were learned from. Does
    /// nothing when every start is given and no search was asked for. Returns the number of
    /// distinct starts learned.
    pub fn learn_starts(&mut self, curves: &[Vec<&[f64]>]) -> usize {
        if self.search.is_none() {
            return 0;
        }
        let full = SearchOptions::default();
        let mut pool: Vec<Vec<f64>> = Vec::new();
        let mut worker = BatchWorker::default();
        for cols in curves {
            let Ok(model) = FormulaModel::new(self.resolved.formula.clone(), cols) else { continue };
            let y = model.response().to_vec();
            let mut model = model;
            let opts = match self.sigma {
                Some(s) => FitOptions { sigma: Some(cols[s].to_vec()), ..self.resolved.options.clone() },
                None => self.resolved.options.clone(),
            };
            let Ok(f) = self.searched(&mut model, cols, &y, &opts, &full, &mut worker.ws) else { continue };
            if f.outcome != Outcome::Converged {
                continue;
            }
            if pool.is_empty() {
                self.pool_groups = search::exchangeable_blocks_at(&self.resolved.formula, cols, &f.nonlinear);
            }
            let b = f.nonlinear;
            let new = !pool.iter().any(|p| p.iter().zip(&b).all(|(u, v)| (u - v).abs() <= 1e-3 * (u.abs() + v.abs())));
            if new && pool.len() < 16 {
                pool.push(b);
            }
        }
        let n = pool.len();
        self.pool = (n > 0).then_some(pool);
        n
    }

    /// Fits every curve in parallel (all cores, or the current rayon pool); results in input
    /// order. `curves[c][j]` is column `j` of curve `c`.
    pub fn fit_all<C: AsRef<[Vec<f64>]> + Sync>(&self, curves: &[C]) -> Vec<CurveResult> {
        curves
            .par_iter()
            .map_init(
                BatchWorker::default,
                |worker, curve| {
                    let cols: Vec<&[f64]> = curve.as_ref().iter().map(|c| c.as_slice()).collect();
                    self.fit_curve(worker, &cols)
                },
            )
            .collect()
    }
}
