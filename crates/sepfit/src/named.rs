//! Fitting by name: a formula, named data columns, and starting values, fixed values and bounds
//! given by parameter name. This is the layer under `sepfit fit` (and the Python module).
//!
//! ```
//! use sepfit::named::{Dataset, NamedOptions, fit_formula};
//! let t: Vec<f64> = (0..40).map(|i| i as f64 * 0.2).collect();
//! let y: Vec<f64> = t.iter().map(|t| 3.0 * (-0.8 * t).exp() + 0.5 * (-0.1 * t).exp()).collect();
//! let data = Dataset::new(vec!["t".into(), "y".into()], vec![t, y]).unwrap();
//! let opts = NamedOptions { start: vec![("k1".into(), 1.0), ("k2".into(), 0.05)], ..Default::default() };
//! let r = fit_formula("y ~ a1*exp(-k1*t) + a2*exp(-k2*t)", &data, &opts).unwrap();
//! assert!(r.fit.converged);
//! let k1 = r.params.iter().find(|p| p.name == "k1").unwrap();
//! assert!((k1.value - 0.8).abs() < 1e-9);
//! ```

use crate::error::FitError;
use crate::fit::{Fit, FitOptions, Method, fit};
use crate::formula::{FormulaModel, FormulaModelError};
use sepfit_expr::{Diagnostic, ModelFormula, ModelOptions};
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
            return Err(ProblemError::Data(format!("{} names for {} columns", names.len(), columns.len())));
        }
        for (i, n) in names.iter().enumerate() {
            if names[..i].contains(n) {
                return Err(ProblemError::Data(format!("column name `{n}` appears twice; column names must be unique")));
            }
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
    /// Starting values; needed for every nonlinear parameter, ignored for linear ones.
    pub start: Vec<(String, f64)>,
    /// Parameters held fixed at a value.
    pub fixed: Vec<(String, f64)>,
    /// Box bounds `(name, lower, upper)` on nonlinear parameters (infinite allowed).
    pub bounds: Vec<(String, f64, f64)>,
    /// Column of per-observation standard deviations.
    pub sigma: Option<String>,
    /// Parameters to fit as nonlinear even though they enter linearly (e.g. to bound them).
    pub force_nonlinear: Vec<String>,
    /// Estimation method.
    pub method: Method,
    /// Iteration limit (default: the solver's).
    pub max_iterations: Option<usize>,
}

/// Why a named fit could not run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProblemError {
    /// The formula has an error (render it with its source).
    #[error("{0}")]
    Formula(Diagnostic),
    /// Nonlinear parameters without starting values.
    #[error("starting values are needed for the nonlinear parameter{} {}; e.g. --start \"{}\" (linear parameters need none)", if .0.len() == 1 { "" } else { "s" }, .0.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "), .0.iter().map(|n| format!("{n}=1")).collect::<Vec<_>>().join(", "))]
    MissingStart(Vec<String>),
    /// A name that is not a parameter of the model.
    #[error("`{name}` ({context}) is not a parameter of the model; its parameters are: {known}")]
    UnknownParameter {
        /// The name.
        name: String,
        /// Where it was given (start, fix, bounds).
        context: &'static str,
        /// The model's parameters.
        known: String,
    },
    /// Bounds given for a linear parameter.
    #[error("`{0}` enters the model linearly and is eliminated by variable projection, so it cannot be bounded; fit it as nonlinear to bound it (--nonlinear {0})")]
    BoundOnLinear(String),
    /// A start outside its bounds, or empty bounds.
    #[error("{0}")]
    Bounds(String),
    /// A data problem (sigma column, lengths, names).
    #[error("{0}")]
    Data(String),
    /// The model could not be built on the data.
    #[error(transparent)]
    Model(#[from] FormulaModelError),
    /// The solver could not run.
    #[error(transparent)]
    Fit(#[from] FitError),
}

/// One parameter's result.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamResult {
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
    /// Bounds (nonlinear parameters).
    pub bounds: Option<(f64, f64)>,
    /// Ended at its lower (-1) or upper (+1) bound, or 0.
    pub at_bound: i8,
}

/// A fit by name.
#[derive(Clone, Debug)]
pub struct NamedFit {
    /// The model formula (after fixed values were substituted).
    pub formula: ModelFormula,
    /// The solver's result (parameter order θ = (b…, a…), see [`Fit`]).
    pub fit: Fit,
    /// Per-parameter results in formula order (linear first, then nonlinear), then fixed ones.
    pub params: Vec<ParamResult>,
    /// Number of observations.
    pub n: usize,
    /// Seconds from data in memory to parameters and statistics.
    pub solve_s: f64,
    /// Response values.
    pub response: Vec<f64>,
    /// Remarks on the fit (e.g. exchangeable parameters relabelled).
    pub notes: Vec<String>,
}

/// A formula with its named options checked and turned into solver options.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The model formula (fixed values substituted).
    pub formula: ModelFormula,
    /// Nonlinear parameter names, in order.
    pub nonlinear: Vec<String>,
    /// Starting values of the nonlinear parameters.
    pub start: Vec<f64>,
    /// Lower bounds (−∞ when none).
    pub lower: Vec<f64>,
    /// Upper bounds (+∞ when none).
    pub upper: Vec<f64>,
    /// Solver options (start and bounds filled in; `sigma` not yet).
    pub options: FitOptions,
}

/// Parses `formula` against the column names and checks the named options: every name is a
/// parameter, every nonlinear parameter has a start inside its bounds, bounds are not empty
/// and apply to nonlinear parameters only.
pub fn resolve(formula: &str, column_names: &[String], opts: &NamedOptions) -> Result<Resolved, ProblemError> {
    let cols: Vec<&str> = column_names.iter().map(String::as_str).collect();
    let mut declared: Vec<&str> = opts.start.iter().map(|(n, _)| n.as_str()).collect();
    declared.extend(opts.bounds.iter().map(|(n, _, _)| n.as_str()));
    let fixed: Vec<(&str, f64)> = opts.fixed.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let force: Vec<&str> = opts.force_nonlinear.iter().map(String::as_str).collect();
    let mopts = ModelOptions { declared_params: &declared, force_nonlinear: &force, fixed: &fixed };
    let m = ModelFormula::parse_with(formula, &cols, &mopts).map_err(ProblemError::Formula)?;
    // Names must be parameters (fixed ones are substituted away, so check against the unfixed list).
    let all_names: Vec<String> =
        m.params().iter().map(|p| p.name.clone()).chain(opts.fixed.iter().map(|(n, _)| n.clone())).collect();
    let known = all_names.join(", ");
    for (name, ctx) in opts
        .start
        .iter()
        .map(|(n, _)| (n, "start"))
        .chain(opts.fixed.iter().map(|(n, _)| (n, "fix")))
        .chain(opts.bounds.iter().map(|(n, _, _)| (n, "bounds")))
        .chain(opts.force_nonlinear.iter().map(|n| (n, "nonlinear")))
    {
        if !all_names.contains(name) {
            return Err(ProblemError::UnknownParameter { name: name.clone(), context: ctx, known: known.clone() });
        }
    }
    let nl: Vec<String> = m.nonlinear_params().map(|p| p.name.clone()).collect();
    for (name, _, _) in &opts.bounds {
        if m.linear_params().any(|p| &p.name == name) {
            return Err(ProblemError::BoundOnLinear(name.clone()));
        }
    }
    let missing: Vec<String> =
        nl.iter().filter(|n| !opts.start.iter().any(|(s, _)| s == *n)).cloned().collect();
    if !missing.is_empty() {
        return Err(ProblemError::MissingStart(missing));
    }
    let start: Vec<f64> =
        nl.iter().map(|n| opts.start.iter().rev().find(|(s, _)| s == n).map(|(_, v)| *v).unwrap_or(1.0)).collect();
    for (n, v) in nl.iter().zip(&start) {
        if !v.is_finite() {
            return Err(ProblemError::Bounds(format!("the starting value of `{n}` is {v}; give a finite number")));
        }
    }
    let mut lower = vec![f64::NEG_INFINITY; nl.len()];
    let mut upper = vec![f64::INFINITY; nl.len()];
    for (name, lo, hi) in &opts.bounds {
        let k = nl.iter().position(|n| n == name).unwrap_or(0);
        lower[k] = lower[k].max(*lo);
        upper[k] = upper[k].min(*hi);
        if !(lower[k] < upper[k]) {
            return Err(ProblemError::Bounds(format!(
                "the bounds of `{name}` leave no room: {} < {name} < {}",
                lower[k], upper[k]
            )));
        }
        if !(lower[k] <= start[k] && start[k] <= upper[k]) {
            return Err(ProblemError::Bounds(format!(
                "the starting value {name}={} lies outside its bounds {} <= {name} <= {}; choose a start inside",
                start[k], lower[k], upper[k]
            )));
        }
    }
    let has_bounds = !opts.bounds.is_empty();
    let mut fo = FitOptions { method: opts.method, start: start.clone(), ..FitOptions::default() };
    if has_bounds {
        fo = fo.with_bounds(lower.clone(), upper.clone());
    }
    if let Some(it) = opts.max_iterations {
        fo.lm.max_iterations = it;
    }
    Ok(Resolved { formula: m, nonlinear: nl, start, lower, upper, options: fo })
}

/// Parses `formula` against the dataset's columns, checks the named options, fits, and reports
/// results by name.
pub fn fit_formula(formula: &str, data: &Dataset, opts: &NamedOptions) -> Result<NamedFit, ProblemError> {
    let t0 = Instant::now();
    let Resolved { formula: m, nonlinear: nl, start, lower, upper, options: mut fo } = resolve(formula, &data.names, opts)?;
    let columns: Vec<&[f64]> = data.columns.iter().map(|c| c.as_slice()).collect();
    let mut model = FormulaModel::new(m.clone(), &columns)?;
    let n = model.response().len();
    let sigma = match &opts.sigma {
        None => None,
        Some(name) => {
            let s = data.column(name).ok_or_else(|| {
                ProblemError::Data(format!("sigma column `{name}` is not in the data; columns: {}", data.names.join(", ")))
            })?;
            if s.len() != n {
                return Err(ProblemError::Data(format!("sigma column `{name}` has {} rows, expected {n}", s.len())));
            }
            Some(s.to_vec())
        }
    };
    let y = model.response().to_vec();
    fo.sigma = sigma;
    let mut f = fit(&mut model, &y, &fo)?;
    // Exchangeable parameters (a symmetric model such as a sum of two exponentials) carry no
    // labels of their own: keep the order of their starting values.
    let mut notes = Vec::new();
    for (k, l) in exchangeable_pairs(&m, &columns, &f.nonlinear) {
        let (nk, nl_) = (&nl[k], &nl[l]);
        if (start[k] - start[l]) * (f.nonlinear[k] - f.nonlinear[l]) < 0.0 {
            let mut swapped = f.nonlinear.clone();
            swapped.swap(k, l);
            let inside = |v: &[f64]| (0..v.len()).all(|i| lower[i] <= v[i] && v[i] <= upper[i]);
            if inside(&swapped) {
                let refit = fit(&mut model, &y, &FitOptions { start: swapped, ..fo.clone() })?;
                if refit.converged && refit.rss <= f.rss * (1.0 + 1e-10) + f64::MIN_POSITIVE {
                    notes.push(format!(
                        "`{nk}` and `{nl_}` are exchangeable in this model; they are labelled to keep the order of their starting values"
                    ));
                    f = refit;
                }
            }
        }
    }
    let mut params = Vec::new();
    for (j, p) in m.linear_params().enumerate() {
        let i = f.linear_index(j);
        params.push(ParamResult {
            name: p.name.clone(),
            value: f.linear[j],
            std_error: f.stats.std_errors[i],
            t_value: f.stats.t_values[i],
            p_value: f.stats.p_values[i],
            linear: true,
            fixed: false,
            start: None,
            bounds: None,
            at_bound: 0,
        });
    }
    for (k, p) in m.nonlinear_params().enumerate() {
        let i = f.nonlinear_index(k);
        let at = if f.at_lower.get(k).copied().unwrap_or(false) {
            -1
        } else if f.at_upper.get(k).copied().unwrap_or(false) {
            1
        } else {
            0
        };
        params.push(ParamResult {
            name: p.name.clone(),
            value: f.nonlinear[k],
            std_error: f.stats.std_errors[i],
            t_value: f.stats.t_values[i],
            p_value: f.stats.p_values[i],
            linear: false,
            fixed: false,
            start: Some(start[k]),
            bounds: (lower[k].is_finite() || upper[k].is_finite()).then_some((lower[k], upper[k])),
            at_bound: at,
        });
    }
    for (name, v) in &opts.fixed {
        params.push(ParamResult {
            name: name.clone(),
            value: *v,
            std_error: 0.0,
            t_value: f64::NAN,
            p_value: f64::NAN,
            linear: false,
            fixed: true,
            start: None,
            bounds: None,
            at_bound: 0,
        });
    }
    let solve_s = t0.elapsed().as_secs_f64();
    Ok(NamedFit { formula: m, fit: f, params, n, solve_s, response: y, notes })
}

/// Pairs `(k, l)` of nonlinear parameters that the model cannot tell apart: swapping `b_k` and
/// `b_l` maps the basis functions onto a permutation of themselves (so the linear parameters
/// follow) and leaves the offset unchanged. Checked numerically on a few data rows at two
/// parameter points near `b`.
fn exchangeable_pairs(m: &ModelFormula, columns: &[&[f64]], b: &[f64]) -> Vec<(usize, usize)> {
    use sepfit_expr::SymbolKind;
    let q = b.len();
    let pool = m.pool();
    let nl = m.nonlinear_syms();
    let n = columns.iter().map(|c| c.len()).find(|&l| l > 0).unwrap_or(0);
    if q < 2 || n == 0 {
        return Vec::new();
    }
    let rows: Vec<usize> = (0..6).map(|i| i * (n - 1) / 5).collect();
    let eval_all = |bv: &[f64]| -> Vec<Vec<f64>> {
        let mut exprs: Vec<sepfit_expr::ExprId> = m.basis().to_vec();
        exprs.extend(m.offset());
        exprs
            .iter()
            .map(|&e| {
                rows.iter()
                    .map(|&r| {
                        pool.eval(e, &|s| match pool.symbol_info(s).kind {
                            SymbolKind::Data(c) => columns.get(c).and_then(|col| col.get(r)).copied().unwrap_or(0.0),
                            _ => nl.iter().position(|&x| x == s).map_or(0.0, |k| bv[k]),
                        })
                    })
                    .collect()
            })
            .collect()
    };
    let close = |u: &[f64], v: &[f64]| u.iter().zip(v).all(|(a, b)| (a - b).abs() <= 1e-9 * (a.abs() + b.abs()).max(1e-300));
    let mut out = Vec::new();
    for k in 0..q {
        for l in k + 1..q {
            let ok = [1.0, 1.07].iter().all(|&scale| {
                let mut bv: Vec<f64> = b.iter().enumerate().map(|(i, v)| v * scale * (1.0 + 0.013 * i as f64)).collect();
                if bv[k] == bv[l] {
                    bv[l] *= 1.1;
                }
                let mut sw = bv.clone();
                sw.swap(k, l);
                let (e1, e2) = (eval_all(&bv), eval_all(&sw));
                if e1.iter().chain(&e2).any(|v| v.iter().any(|x| !x.is_finite())) {
                    return false;
                }
                let p = m.basis().len();
                // Offset unchanged, every swapped basis function equals some original one.
                let offset_ok = m.offset().is_none() || close(&e1[p], &e2[p]);
                offset_ok && (0..p).all(|j| (0..p).any(|i| close(&e2[j], &e1[i])))
            });
            if ok {
                out.push((k, l));
            }
        }
    }
    out
}
