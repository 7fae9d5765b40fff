//! Fitting by name: a formula, named data columns, and starting values, fixed values and bounds
//! given by parameter name. This is the layer under `sepfit fit` (and the Python module):
//! names are turned into indices once ([`resolve`]), and results come back by name
//! ([`NamedFit::params`], in the formula's order).
//!
//! ```
//! use sepfit::{Dataset, NamedOptions, fit_formula};
//! let t: Vec<f64> = (0..40).map(|i| i as f64 * 0.2).collect();
//! let y: Vec<f64> = t.iter().map(|t| 3.0 * (-0.8 * t).exp() + 0.5 * (-0.1 * t).exp()).collect();
//! let data = Dataset::new(vec!["t".into(), "y".into()], vec![t, y]).unwrap();
//! let opts = NamedOptions { start: vec![("k1".into(), 1.0), ("k2".into(), 0.05)], ..Default::default() };
//! let r = fit_formula("y ~ a1*exp(-k1*t) + a2*exp(-k2*t)", &data, &opts).unwrap();
//! assert!(r.fit.converged);
//! assert!((r.param("k1").unwrap().value - 0.8).abs() < 1e-9);
//! ```

use crate::error::FitError;
use crate::fit::{Fit, FitOptions, FitWarning, Method, Outcome, fit};
use crate::search::{self, SearchError};
use crate::formula::{CompiledFormula, FormulaModelError};
use sepfit_expr::{Diagnostic, ModelFormula, ModelOptions};
use crate::search::{SearchOptions, SearchReport};
use std::sync::Arc;
use std::time::Instant;

/// Named data columns of equal length (columns a formula does not use may be empty).
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    names: Vec<String>,
    columns: Vec<Vec<f64>>,
}

impl Dataset {
    /// A dataset; names must be unique.
    pub fn new(names: Vec<String>, columns: Vec<Vec<f64>>) -> Result<Dataset, ProblemError> {
        if names.len() != columns.len() {
            return Err(ProblemError::ColumnCount { names: names.len(), columns: columns.len() });
        }
        let mut seen = std::collections::HashSet::with_capacity(names.len());
        if let Some(n) = names.iter().find(|n| !seen.insert(n.as_str())) {
            return Err(ProblemError::DuplicateColumn { name: n.clone() });
        }
        Ok(Dataset { names, columns })
    }
    /// Column names.
    pub fn names(&self) -> &[String] {
        &self.names
    }
    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        self.names.iter().position(|n| n == name).map(|i| self.columns[i].as_slice())
    }
    /// All columns.
    pub fn columns(&self) -> &[Vec<f64>] {
        &self.columns
    }
}

/// Options given by parameter name.
#[derive(Clone, Debug, Default)]
pub struct NamedOptions {
    /// Starting values of nonlinear parameters (a start for a linear one is not needed, and
    /// is ignored with a note). Parameters without one are found by a search
    /// ([`crate::search`]) over ranges derived from the formula and the data.
    pub start: Vec<(String, f64)>,
    /// Parameters held fixed at a value.
    pub fixed: Vec<(String, f64)>,
    /// Box bounds `(name, lower, upper)` (infinite allowed). On a nonlinear parameter the solver
    /// keeps the iterates inside; a linear parameter stays linear, its coefficient found by
    /// bounded least squares inside variable projection ([`crate::problems::varpro`]).
    pub bounds: Vec<(String, f64, f64)>,
    /// Column of per-observation standard deviations.
    pub sigma: Option<String>,
    /// Parameters to fit as nonlinear even though they enter linearly (e.g. to bound them).
    pub force_nonlinear: Vec<String>,
    /// Estimation method.
    pub method: Method,
    /// Iteration limit (default: the solver's).
    pub max_iterations: Option<usize>,
    /// Search for the best optimum even where starts are given (a local multi-start around
    /// them); `None`: search only for parameters without a start, and to escape a fit that
    /// ends degenerate or does not converge.
    pub search: Option<SearchOptions>,
    /// Column of per-observation weights `wᵢ = 1/σᵢ²` (R's `nls(weights = …)`); not together
    /// with `sigma`. Like `sigma`, weights set only the relative precision of the observations
    /// unless `absolute_sigma` is set.
    pub weights: Option<String>,
    /// Take `sigma` (or `weights`) as the absolute standard deviations of the observations
    /// (scipy's `curve_fit(absolute_sigma=True)`): the covariance is `(JᵀWJ)⁻¹`, not rescaled by
    /// the reduced χ², and t values, p values and intervals use the normal distribution.
    /// Needs `sigma` or `weights`.
    pub absolute_sigma: bool,
    /// The loss minimised ([`crate::Loss`]; least squares by default).
    pub loss: crate::loss::Loss,
    /// Scale of the robust losses (scipy's `f_scale`; `None`: 1).
    pub f_scale: Option<f64>,
}

impl NamedOptions {
    /// Options with starting values by name, e.g. `NamedOptions::with_start(&[("k", 1.0)])`.
    pub fn with_start(start: &[(&str, f64)]) -> Self {
        NamedOptions { start: start.iter().map(|(n, v)| (n.to_string(), *v)).collect(), ..Self::default() }
    }
}

/// Why a named fit could not run. Variants name the option (`start`, `fixed`, `bounds`,
/// `force_nonlinear`, `sigma`) that a front end maps to its own spelling (the CLI's flags, the
/// Python keywords).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProblemError {
    /// The formula has an error; the message is the diagnostic rendered under its source.
    #[error("{}", diagnostic.render(text))]
    Formula {
        /// The formula as given.
        text: String,
        /// What is wrong, and where.
        diagnostic: Diagnostic,
    },
    /// Nonlinear parameters without starting values (option `start`).
    #[error("starting values are needed for the nonlinear parameter{} {} (linear parameters need none)", if names.len() == 1 { "" } else { "s" }, names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))]
    MissingStart {
        /// The nonlinear parameters without a start.
        names: Vec<String>,
    },
    /// A name that is not a parameter of the model.
    #[error("`{name}` (in `{option}`) is not a parameter of the model{}; its parameters are: {}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(), known.join(", "))]
    UnknownParameter {
        /// The name.
        name: String,
        /// The option it was given in: `start`, `fixed`, `bounds` or `force_nonlinear`.
        option: &'static str,
        /// The model's parameters.
        known: Vec<String>,
        /// The closest known name, if one is close.
        suggestion: Option<String>,
    },
    /// Bounds given for a fixed parameter.
    #[error("`{name}` is held fixed, so bounds on it have no effect; drop the bounds or do not fix it")]
    BoundOnFixed {
        /// The parameter.
        name: String,
    },
    /// A starting value that is not finite.
    #[error("the starting value of `{name}` is {value}; give a finite number")]
    NonFiniteStart {
        /// The parameter.
        name: String,
        /// The value.
        value: f64,
    },
    /// Bounds that leave no room.
    #[error("the bounds of `{name}` leave no room: {lower} < {name} < {upper}")]
    EmptyBounds {
        /// The parameter.
        name: String,
        /// Lower bound.
        lower: f64,
        /// Upper bound.
        upper: f64,
    },
    /// A start outside its bounds.
    #[error("the starting value {name}={value} lies outside its bounds {lower} <= {name} <= {upper}; choose a start inside")]
    StartOutsideBounds {
        /// The parameter.
        name: String,
        /// The start.
        value: f64,
        /// Lower bound.
        lower: f64,
        /// Upper bound.
        upper: f64,
    },
    /// The `sigma` column is not in the data.
    #[error("sigma column `{name}` is not in the data; columns: {}", columns.join(", "))]
    MissingSigmaColumn {
        /// The column asked for.
        name: String,
        /// The data's columns.
        columns: Vec<String>,
    },
    /// The `sigma` column has the wrong length.
    #[error("sigma column `{name}` has {got} rows, expected {expected}")]
    SigmaLength {
        /// The column.
        name: String,
        /// Its rows.
        got: usize,
        /// The observations.
        expected: usize,
    },
    /// Names and columns of a dataset differ in number.
    #[error("{names} names for {columns} columns")]
    ColumnCount {
        /// Names.
        names: usize,
        /// Columns.
        columns: usize,
    },
    /// A column name given twice.
    #[error("column name `{name}` appears twice; column names must be unique")]
    DuplicateColumn {
        /// The name.
        name: String,
    },
    /// The model could not be built on the data.
    #[error(transparent)]
    Model(#[from] FormulaModelError),
    /// The solver could not run.
    #[error(transparent)]
    Fit(#[from] FitError),
    /// The `weights` column is not in the data.
    #[error("weights column `{name}` is not in the data; columns: {}", columns.join(", "))]
    MissingWeightsColumn {
        /// The column asked for.
        name: String,
        /// The data's columns.
        columns: Vec<String>,
    },
    /// The `weights` column has the wrong length.
    #[error("weights column `{name}` has {got} rows, expected {expected}")]
    WeightsLength {
        /// The column.
        name: String,
        /// Its rows.
        got: usize,
        /// The observations.
        expected: usize,
    },
    /// A weight that is not positive and finite.
    #[error("weights column `{name}` holds {value} at row {}; weights (1/sigma^2) must be positive and finite", row + 1)]
    BadWeight {
        /// The column.
        name: String,
        /// Zero-based row.
        row: usize,
        /// The value.
        value: f64,
    },
    /// Both `sigma` and `weights` given.
    #[error("give either `sigma` (standard deviations) or `weights` (1/sigma^2), not both")]
    SigmaAndWeights,
    /// `absolute_sigma` without `sigma` or `weights`.
    #[error("`absolute_sigma` takes the standard deviations in `sigma` (or `weights`) as absolute, but neither was given")]
    AbsoluteSigmaWithoutSigma,
    /// The search for starting values could not run.
    #[error(transparent)]
    Search(SearchError),
}

impl ProblemError {
    fn from_search(e: SearchError) -> ProblemError {
        match e {
            SearchError::Fit(f) => ProblemError::Fit(f),
            other => ProblemError::Search(other),
        }
    }
}

/// Where a parameter ended relative to its bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bound {
    /// Inside its bounds (or unbounded).
    #[default]
    Free,
    /// On its lower bound.
    Lower,
    /// On its upper bound.
    Upper,
}

/// One parameter's result.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ParamEstimate {
    /// Name.
    pub name: String,
    /// Estimate.
    pub value: f64,
    /// Standard error (NaN when unavailable, e.g. singular Jacobian; 0 for fixed parameters).
    pub std_error: f64,
    /// t value.
    pub t_value: f64,
    /// Two-sided p value.
    pub p_value: f64,
    /// Whether it was eliminated as linear.
    pub linear: bool,
    /// Whether it was held fixed.
    pub fixed: bool,
    /// Starting value (nonlinear parameters).
    pub start: Option<f64>,
    /// Bounds, where any is finite.
    pub bounds: Option<(f64, f64)>,
    /// Whether it ended on a bound.
    pub bound: Bound,
}

/// A fit by name.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NamedFit {
    /// The formula as given.
    pub source: String,
    /// The model formula (after fixed values were substituted).
    pub formula: ModelFormula,
    /// The solver's result (parameter order θ = (b…, a…), see [`Fit`]).
    pub fit: Fit,
    /// Per-parameter results in formula order (linear first, then nonlinear), then fixed ones.
    pub params: Vec<ParamEstimate>,
    /// Number of observations.
    pub n: usize,
    /// Seconds from data in memory to parameters and statistics.
    pub solve_s: f64,
    /// Response values.
    pub response: Vec<f64>,
    /// Remarks on the fit (e.g. exchangeable parameters relabelled, a start that was not needed).
    pub notes: Vec<String>,
    /// The search for starting values, when one ran (names in [`Self::nonlinear_names`] order).
    pub search: Option<SearchReport>,
    /// Whether the standard deviations were taken as absolute ([`NamedOptions::absolute_sigma`],
    /// and always for the Poisson loss, whose variances are the means): then the covariance is
    /// not rescaled by the reduced χ² and t values, p values and intervals use the normal
    /// distribution.
    pub absolute_sigma: bool,
}

impl NamedFit {
    /// The parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&ParamEstimate> {
        self.params.iter().find(|p| p.name == name)
    }
    /// Names of the fitted nonlinear parameters, in solver order.
    pub fn nonlinear_names(&self) -> Vec<&str> {
        self.params.iter().filter(|p| !p.linear && !p.fixed).map(|p| p.name.as_str()).collect()
    }
    /// Parameter names in the solver's θ order (nonlinear, then linear): the order of
    /// [`Fit::estimates`] and of the covariance and correlation matrices.
    pub fn theta_names(&self) -> Vec<&str> {
        let lin = self.params.iter().filter(|p| p.linear).map(|p| p.name.as_str());
        self.nonlinear_names().into_iter().chain(lin).collect()
    }
    /// The fit's warnings in words, naming the parameters.
    pub fn warning_messages(&self) -> Vec<String> {
        let theta = self.theta_names();
        self.fit.warnings.iter().map(|w| w.message_with(|k| theta.get(k).copied().unwrap_or("?").to_string())).collect()
    }
    /// The formula's notes and the fit's.
    pub fn all_notes(&self) -> impl Iterator<Item = &String> {
        self.formula.notes().iter().chain(&self.notes)
    }
}

/// A formula with its named options checked and turned into solver options.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Resolved {
    /// The model formula (fixed values substituted).
    pub formula: ModelFormula,
    /// The formula as given.
    pub source: String,
    /// Nonlinear parameter names, in order.
    pub nonlinear: Vec<String>,
    /// Starting values of the nonlinear parameters (1 where none was given: see `given`).
    pub start: Vec<f64>,
    /// Whether each nonlinear parameter's start was given (the others are searched for).
    pub given: Vec<bool>,
    /// Lower bounds (−∞ when none).
    pub lower: Vec<f64>,
    /// Upper bounds (+∞ when none).
    pub upper: Vec<f64>,
    /// Lower bounds of the linear parameters, in formula order (−∞ when none).
    pub linear_lower: Vec<f64>,
    /// Upper bounds of the linear parameters (+∞ when none).
    pub linear_upper: Vec<f64>,
    /// Solver options (start and bounds filled in; `sigma` not yet).
    pub options: FitOptions,
    /// Remarks about the options (a start for a linear parameter, ignored).
    pub notes: Vec<String>,
    /// `formula` compiled (once, here): fits bind data to it without recompiling.
    pub compiled: Arc<CompiledFormula>,
}

/// The closest of `known` to `name`, if it is close (a typo, or another case).
fn closest<'a>(name: &str, known: &'a [String]) -> Option<&'a String> {
    let lower = name.to_lowercase();
    known.iter().find(|k| k.to_lowercase() == lower).or_else(|| {
        known
            .iter()
            .map(|k| (sepfit_expr::func::edit_distance(name, k), k))
            .filter(|(d, _)| *d > 0 && *d <= (name.chars().count() + 1) / 3)
            .min_by_key(|(d, _)| *d)
            .map(|(_, k)| k)
    })
}

/// Parses `formula` against the column names and checks the named options: every name is a
/// parameter of the model (before fixing), every nonlinear parameter has a start inside its
/// bounds, bounds are not empty and do not name fixed parameters.
pub fn resolve(formula: &str, column_names: &[String], opts: &NamedOptions) -> Result<Resolved, ProblemError> {
    let cols: Vec<&str> = column_names.iter().map(String::as_str).collect();
    let mut declared: Vec<&str> = opts.start.iter().map(|(n, _)| n.as_str()).collect();
    declared.extend(opts.bounds.iter().map(|(n, _, _)| n.as_str()));
    let fixed: Vec<(&str, f64)> = opts.fixed.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let force: Vec<&str> = opts.force_nonlinear.iter().map(String::as_str).collect();
    let formula_error = |diagnostic| ProblemError::Formula { text: formula.to_string(), diagnostic };
    let mopts = ModelOptions { declared_params: &declared, force_nonlinear: &force, fixed: &fixed };
    let m = ModelFormula::parse_with(formula, &cols, &mopts).map_err(formula_error)?;
    // Every name must be a parameter of the model as written, before fixed values are
    // substituted (so a fixed name is checked too).
    let all_names: Vec<String> = if fixed.is_empty() {
        m.params().iter().map(|p| p.name.clone()).collect()
    } else {
        let unfixed = ModelOptions { declared_params: &declared, force_nonlinear: &force, fixed: &[] };
        let whole = ModelFormula::parse_with(formula, &cols, &unfixed).map_err(formula_error)?;
        whole.params().iter().map(|p| p.name.clone()).collect()
    };
    for (name, option) in opts
        .start
        .iter()
        .map(|(n, _)| (n, "start"))
        .chain(opts.fixed.iter().map(|(n, _)| (n, "fixed")))
        .chain(opts.bounds.iter().map(|(n, _, _)| (n, "bounds")))
        .chain(opts.force_nonlinear.iter().map(|n| (n, "force_nonlinear")))
    {
        if !all_names.contains(name) {
            let suggestion = closest(name, &all_names).cloned();
            return Err(ProblemError::UnknownParameter { name: name.clone(), option, known: all_names.clone(), suggestion });
        }
    }
    let nl: Vec<String> = m.nonlinear_params().map(|p| p.name.clone()).collect();
    for (name, _, _) in &opts.bounds {
        if opts.fixed.iter().any(|(f, _)| f == name) {
            return Err(ProblemError::BoundOnFixed { name: name.clone() });
        }
    }
    let lin: Vec<String> = m.linear_params().map(|p| p.name.clone()).collect();
    let mut linear_lower = vec![f64::NEG_INFINITY; lin.len()];
    let mut linear_upper = vec![f64::INFINITY; lin.len()];
    for (name, lo, hi) in &opts.bounds {
        let Some(j) = lin.iter().position(|n| n == name) else { continue };
        linear_lower[j] = linear_lower[j].max(*lo);
        linear_upper[j] = linear_upper[j].min(*hi);
        if !(linear_lower[j] <= linear_upper[j]) {
            return Err(ProblemError::EmptyBounds { name: name.clone(), lower: linear_lower[j], upper: linear_upper[j] });
        }
    }
    let given: Vec<bool> = nl.iter().map(|n| opts.start.iter().any(|(s, _)| s == n)).collect();
    let mut notes = Vec::new();
    for (name, _) in &opts.start {
        if m.linear_params().any(|p| &p.name == name) && !notes.iter().any(|n: &String| n.contains(&format!("`{name}`"))) {
            notes.push(format!(
                "`{name}` enters linearly and is eliminated by variable projection: it needs no starting value, and the one given was not used"
            ));
        }
    }
    let mut start: Vec<f64> =
        nl.iter().map(|n| opts.start.iter().rev().find(|(s, _)| s == n).map(|(_, v)| *v).unwrap_or(1.0)).collect();
    for (n, v) in nl.iter().zip(&start) {
        if !v.is_finite() {
            return Err(ProblemError::NonFiniteStart { name: n.clone(), value: *v });
        }
    }
    let mut lower = vec![f64::NEG_INFINITY; nl.len()];
    let mut upper = vec![f64::INFINITY; nl.len()];
    for (name, lo, hi) in &opts.bounds {
        // Known and not fixed (checked above): a nonlinear or a linear parameter.
        let Some(k) = nl.iter().position(|n| n == name) else { continue };
        lower[k] = lower[k].max(*lo);
        upper[k] = upper[k].min(*hi);
        if !(lower[k] < upper[k]) {
            return Err(ProblemError::EmptyBounds { name: name.clone(), lower: lower[k], upper: upper[k] });
        }
        if given[k] && !(lower[k] <= start[k] && start[k] <= upper[k]) {
            return Err(ProblemError::StartOutsideBounds { name: name.clone(), value: start[k], lower: lower[k], upper: upper[k] });
        }
    }
    let f_scale = opts.f_scale.unwrap_or(1.0);
    let mut fo = FitOptions { method: opts.method, start: start.clone(), ..FitOptions::default() }.with_loss(opts.loss, f_scale);
    if opts.bounds.iter().any(|(n, _, _)| nl.contains(n)) {
        fo = fo.with_bounds(lower.clone(), upper.clone());
    }
    if opts.bounds.iter().any(|(n, _, _)| lin.contains(n)) {
        fo = fo.with_linear_bounds(linear_lower.clone(), linear_upper.clone());
    }
    if let Some(it) = opts.max_iterations {
        fo.lm.max_iterations = it;
    }
    // A start for every parameter the solver sees: inside the bounds where none was given
    // (the search replaces it).
    for k in 0..nl.len() {
        let inside = lower[k] <= start[k] && start[k] <= upper[k];
        if !given[k] && !inside {
            start[k] = if lower[k].is_finite() && upper[k].is_finite() {
                0.5 * (lower[k] + upper[k])
            } else if lower[k].is_finite() {
                lower[k] + lower[k].abs().max(1.0)
            } else {
                upper[k] - upper[k].abs().max(1.0)
            };
        }
    }
    fo.start = start.clone();
    let compiled = Arc::new(CompiledFormula::new(m.clone())?);
    Ok(Resolved {
        formula: m,
        source: formula.to_string(),
        nonlinear: nl,
        start,
        given,
        lower,
        upper,
        linear_lower,
        linear_upper,
        options: fo,
        notes,
        compiled,
    })
}

/// Parses `formula` against the dataset's columns, checks the named options, fits, and reports
/// results by name: [`resolve`] then [`fit_resolved`].
pub fn fit_formula(formula: &str, data: &Dataset, opts: &NamedOptions) -> Result<NamedFit, ProblemError> {
    let resolved = resolve(formula, &data.names, opts)?;
    fit_resolved(&resolved, data, opts)
}

/// Fits a formula already [`resolve`]d against `data`'s column names (the `sigma` column and
/// the fixed values are taken from `opts`, the options it was resolved with).
pub fn fit_resolved(resolved: &Resolved, data: &Dataset, opts: &NamedOptions) -> Result<NamedFit, ProblemError> {
    let t0 = Instant::now();
    let Resolved { formula: m, source, nonlinear: nl, start, given, lower, upper, options: fo, notes: resolve_notes, compiled, linear_lower, linear_upper } =
        resolved;
    let (m, source, mut fo) = (m.clone(), source.clone(), fo.clone());
    let columns: Vec<&[f64]> = data.columns.iter().map(|c| c.as_slice()).collect();
    let mut model = CompiledFormula::bind(compiled, &columns)?;
    let n = model.response().len();
    let sigma = match &opts.sigma {
        None => None,
        Some(name) => {
            let s = data
                .column(name)
                .ok_or_else(|| ProblemError::MissingSigmaColumn { name: name.clone(), columns: data.names.clone() })?;
            if s.len() != n {
                return Err(ProblemError::SigmaLength { name: name.clone(), got: s.len(), expected: n });
            }
            Some(s.to_vec())
        }
    };
    let sigma = match (&opts.weights, sigma) {
        (None, s) => s,
        (Some(_), Some(_)) => return Err(ProblemError::SigmaAndWeights),
        (Some(name), None) => Some(crate::stats::sigma_from_weights(data, name, n)?),
    };
    if opts.absolute_sigma && sigma.is_none() {
        return Err(ProblemError::AbsoluteSigmaWithoutSigma);
    }
    let y = model.response().to_vec();
    fo.sigma = sigma;
    let mut notes = resolve_notes.clone();
    let search_opts = opts.search.clone().unwrap_or_default();
    let searching = opts.search.is_some() || given.iter().any(|g| !g);
    let mut search_report: Option<SearchReport> = None;
    let mut f = if searching {
        let starts: Vec<Option<f64>> = start.iter().zip(given).map(|(s, g)| g.then_some(*s)).collect();
        let found = search::search_formula(&mut model, &m, &columns, &y, &fo, &starts, opts.search.is_some(), &search_opts)
            .map_err(ProblemError::from_search)?;
        let missing: Vec<&str> = nl.iter().zip(given).filter(|(_, g)| !**g).map(|(n, _)| n.as_str()).collect();
        if !missing.is_empty() {
            notes.push(format!(
                "no starting value for {}: found by a search of {} points over ranges from the formula and the data",
                missing.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
                found.report.samples
            ));
        }
        search_report = Some(found.report);
        found.fit
    } else {
        fit(&mut model, &y, &fo)?
    };
    // A start at a degenerate point (the basis vanishes or is dependent there, e.g. MGH Beale
    // from (1, 1)) gives the iteration nothing to follow: it stops where it started. Restart
    // from perturbed starts (inside the bounds) and keep the first that converges.
    if !searching && f.outcome == Outcome::Degenerate && f.nonlinear == *start {
        for shift in [0.1, -0.1, 0.5, -0.5] {
            let moved: Vec<f64> = start
                .iter()
                .enumerate()
                .map(|(k, v)| (v + shift * v.abs().max(1.0)).clamp(lower[k], upper[k]))
                .collect();
            let Ok(g) = fit(&mut model, &y, &FitOptions { start: moved.clone(), ..fo.clone() }) else { continue };
            if g.outcome == Outcome::Converged {
                let shown: Vec<String> = nl.iter().zip(&moved).map(|(n, v)| format!("{n}={v}")).collect();
                notes.push(format!(
                    "the start is a degenerate point of the model (some parameters are not determined there), so the fit restarted from {}",
                    shown.join(", ")
                ));
                f = g;
                break;
            }
        }
    }
    // A fit that ends degenerate (rates merged, a basis function lost), rank deficient or not
    // converged (other than by the iteration limit the user set) may have stopped in the wrong place: search from the formula's ranges, and
    // keep what the search finds if it is better.
    let out_of_budget = matches!(f.termination, crate::Termination::MaxIterations | crate::Termination::MaxEvaluations);
    let stuck = (f.outcome != Outcome::Converged && !out_of_budget)
        || f.warnings.iter().any(|w| matches!(w, FitWarning::RankDeficientBasis { .. } | FitWarning::SingularJacobian { .. }));
    if !searching && stuck && !nl.is_empty() {
        let free = vec![None; nl.len()];
        if let Ok(found) = search::search_formula(&mut model, &m, &columns, &y, &fo, &free, false, &search_opts) {
            let g = &found.fit;
            let improves = g.outcome == Outcome::Converged
                && (f.outcome != Outcome::Converged || g.objective() < f.objective() * (1.0 - 1e-9))
                && !g.warnings.iter().any(|w| matches!(w, FitWarning::RankDeficientBasis { .. }));
            if improves {
                notes.push(format!(
                    "the fit from the start given ended {} ({} {}); a search over ranges from the formula and the data found a better optimum",
                    match f.outcome {
                        Outcome::Converged => "rank deficient",
                        Outcome::NotConverged => "without converging",
                        Outcome::Degenerate => "at a degenerate point",
                    },
                    match f.loss {
                        crate::Loss::Linear => "RSS",
                        crate::Loss::Poisson => "deviance",
                        _ => "cost",
                    },
                    crate::report::format_number(f.objective())
                ));
                f = found.fit;
                search_report = Some(found.report);
            }
        }
    }
    // Exchangeable parameters (a symmetric model such as a sum of two exponentials, several
    // peaks) carry no labels of their own: keep the order of their starting values (for a
    // search, the order it samples in: ascending).
    let used_start: Vec<f64> = match &search_report {
        Some(r) => (0..nl.len()).map(|k| if given[k] { start[k] } else { r.start[k] }).collect(),
        None => start.clone(),
    };
    let groups =
        if search::same_order(&f.nonlinear, &used_start) { Vec::new() } else { search::exchangeable_blocks_at(&m, &columns, &f.nonlinear) };
    if let Some(relabelled) = search::relabel(&f.nonlinear, &used_start, &groups) {
        let inside = |v: &[f64]| (0..v.len()).all(|i| lower[i] <= v[i] && v[i] <= upper[i]);
        if inside(&relabelled) {
            let refit = fit(&mut model, &y, &FitOptions { start: relabelled, ..fo.clone() })?;
            if refit.converged && refit.objective() <= search::same_loss_limit(f.objective(), &y, fo.sigma.as_deref()) {
                let names: Vec<String> = groups
                    .iter()
                    .map(|g| g.iter().map(|blk| blk.iter().map(|&k| format!("`{}`", nl[k])).collect::<Vec<_>>().join(", ")).collect::<Vec<_>>().join(" and "))
                    .collect();
                notes.push(format!(
                    "{} are exchangeable in this model; they are labelled to keep the order of their starting values",
                    names.join("; ")
                ));
                f = refit;
            }
        }
    }
    // A Poisson fit's variances are its means: its covariance is absolute, with z statistics.
    let absolute_sigma = opts.absolute_sigma || f.loss == crate::Loss::Poisson;
    if absolute_sigma {
        crate::stats::to_absolute_sigma(&mut f);
    }
    let mut params = Vec::new();
    for (j, p) in m.linear_params().enumerate() {
        let i = f.linear_index(j);
        let bound = if f.linear_at_lower.get(j).copied().unwrap_or(false) {
            Bound::Lower
        } else if f.linear_at_upper.get(j).copied().unwrap_or(false) {
            Bound::Upper
        } else {
            Bound::Free
        };
        let (lo, hi) = (linear_lower[j], linear_upper[j]);
        params.push(ParamEstimate {
            name: p.name.clone(),
            value: f.linear[j],
            std_error: f.stats.std_errors[i],
            t_value: f.stats.t_values[i],
            p_value: f.stats.p_values[i],
            linear: true,
            fixed: false,
            start: None,
            bounds: (lo.is_finite() || hi.is_finite()).then_some((lo, hi)),
            bound,
        });
    }
    for (k, p) in m.nonlinear_params().enumerate() {
        let i = f.nonlinear_index(k);
        let bound = if f.at_lower.get(k).copied().unwrap_or(false) {
            Bound::Lower
        } else if f.at_upper.get(k).copied().unwrap_or(false) {
            Bound::Upper
        } else {
            Bound::Free
        };
        params.push(ParamEstimate {
            name: p.name.clone(),
            value: f.nonlinear[k],
            std_error: f.stats.std_errors[i],
            t_value: f.stats.t_values[i],
            p_value: f.stats.p_values[i],
            linear: false,
            fixed: false,
            start: Some(search_report.as_ref().map_or(start[k], |r| r.start[k])),
            bounds: (lower[k].is_finite() || upper[k].is_finite()).then_some((lower[k], upper[k])),
            bound,
        });
    }
    for (name, v) in &opts.fixed {
        params.push(ParamEstimate {
            name: name.clone(),
            value: *v,
            std_error: 0.0,
            t_value: f64::NAN,
            p_value: f64::NAN,
            linear: false,
            fixed: true,
            start: None,
            bounds: None,
            bound: Bound::Free,
        });
    }
    let solve_s = t0.elapsed().as_secs_f64();
    Ok(NamedFit { source, formula: m, fit: f, params, n, solve_s, response: y, notes, search: search_report, absolute_sigma })
}
