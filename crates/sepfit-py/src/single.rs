//! One fit by name: `fit(...)` → `FitResult` (a `NamedFit` with its report).

use crate::{DataError, guard, named_options, problem_error};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1};
use pyo3::prelude::*;
use sepfit::Summary;
use sepfit::formula::CompiledFormula;
use sepfit::named::{Dataset, NamedFit, NamedOptions, Resolved, fit_resolved, resolve};
use std::collections::HashMap;
use std::sync::Arc;

/// The result of one fit (`sepfit.FitResult` wraps it).
#[pyclass(frozen, module = "sepfit._sepfit")]
pub struct FitResult {
    fit: NamedFit,
    data: String,
    /// The compiled formula, for predictions.
    compiled: Arc<CompiledFormula>,
}

/// A row-major `n × n` matrix in the order `order` (indices into θ, `None` for a fixed
/// parameter: zero row and column) from a θ-ordered matrix.
fn reorder(m: &faer::Mat<f64>, order: &[Option<usize>]) -> Vec<f64> {
    let n = order.len();
    let mut out = vec![0.0; n * n];
    for (i, oi) in order.iter().enumerate() {
        for (j, oj) in order.iter().enumerate() {
            if let (Some(a), Some(b)) = (oi, oj) {
                out[i * n + j] = m[(*a, *b)];
            }
        }
    }
    out
}

impl FitResult {
    /// For each parameter of `params` (formula order, fixed last), its index in θ.
    fn theta_order(&self) -> Vec<Option<usize>> {
        let theta = self.fit.theta_names();
        self.fit.params.iter().map(|p| if p.fixed { None } else { theta.iter().position(|t| *t == p.name) }).collect()
    }
    fn matrix<'py>(&self, py: Python<'py>, m: Option<&faer::Mat<f64>>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let order = self.theta_order();
        let n = order.len();
        let data = match m {
            Some(m) => reorder(m, &order),
            None => vec![f64::NAN; n * n],
        };
        Ok(numpy::ndarray::Array2::from_shape_vec((n, n), data).map_err(|e| DataError::new_err(e.to_string()))?.into_pyarray(py))
    }
}

#[pymethods]
impl FitResult {
    /// Parameter names: the formula's order (linear first, then nonlinear), fixed ones last.
    #[getter]
    fn param_names(&self) -> Vec<String> {
        self.fit.params.iter().map(|p| p.name.clone()).collect()
    }
    #[getter]
    fn values<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.fit.params.iter().map(|p| p.value).collect::<Vec<_>>().into_pyarray(py)
    }
    #[getter]
    fn stderr<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.fit.params.iter().map(|p| p.std_error).collect::<Vec<_>>().into_pyarray(py)
    }
    /// Per parameter: `(name, value, std_error, t_value, p_value, linear, fixed, start, bounds, at_bound)`.
    #[allow(clippy::type_complexity)]
    #[getter]
    fn params(&self) -> Vec<(String, f64, f64, f64, f64, bool, bool, Option<f64>, Option<(f64, f64)>, String)> {
        self.fit
            .params
            .iter()
            .map(|p| {
                let bound = match p.bound {
                    sepfit::Bound::Free => "",
                    sepfit::Bound::Lower => "lower",
                    sepfit::Bound::Upper => "upper",
                };
                (p.name.clone(), p.value, p.std_error, p.t_value, p.p_value, p.linear, p.fixed, p.start, p.bounds, bound.to_string())
            })
            .collect()
    }
    /// Covariance in `param_names` order (zero rows and columns for fixed parameters; NaN when
    /// the Jacobian is rank deficient): `s² (JᵀWJ)⁻¹`, scaled by the reduced χ² unless σ is
    /// absolute (a robust loss: the Triggs-scaled Jacobian and `s² = 2C/dof`; Poisson: the
    /// inverse Fisher information).
    #[getter]
    fn covar<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.matrix(py, self.fit.fit.stats.covariance.as_ref())
    }
    #[getter]
    fn correl<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.matrix(py, self.fit.fit.stats.correlation.as_ref())
    }
    #[getter]
    fn has_covariance(&self) -> bool {
        self.fit.fit.stats.covariance.is_some()
    }
    #[getter]
    fn rss(&self) -> f64 {
        self.fit.fit.rss
    }
    #[getter]
    fn dof(&self) -> usize {
        self.fit.fit.dof
    }
    /// The loss minimised (`'linear'`, `'soft_l1'`, `'huber'`, `'cauchy'`, `'arctan'`,
    /// `'poisson'`).
    #[getter]
    fn loss(&self) -> &'static str {
        self.fit.fit.loss.name()
    }
    /// The minimised objective of a loss other than least squares: the robust cost
    /// `½F²Σρ(zᵢ)` or the Poisson deviance (NaN for least squares).
    #[getter]
    fn loss_cost(&self) -> f64 {
        self.fit.fit.loss_cost
    }
    /// Whether σ was taken as absolute (covariance not rescaled).
    #[getter]
    fn absolute_sigma(&self) -> bool {
        self.fit.absolute_sigma
    }
    #[getter]
    fn n(&self) -> usize {
        self.fit.n
    }
    #[getter]
    fn aic(&self) -> f64 {
        self.fit.fit.aic
    }
    #[getter]
    fn bic(&self) -> f64 {
        self.fit.fit.bic
    }
    #[getter]
    fn r_squared(&self) -> f64 {
        self.fit.fit.r_squared
    }
    #[getter]
    fn residual_std_error(&self) -> f64 {
        self.fit.fit.residual_std_error
    }
    #[getter]
    fn reduced_chi_square(&self) -> f64 {
        self.fit.fit.reduced_chi_square
    }
    #[getter]
    fn converged(&self) -> bool {
        self.fit.fit.converged
    }
    /// `converged`, `not_converged` or `degenerate`.
    #[getter]
    fn status(&self) -> &'static str {
        match self.fit.fit.outcome {
            sepfit::Outcome::Converged => "converged",
            sepfit::Outcome::NotConverged => "not_converged",
            sepfit::Outcome::Degenerate => "degenerate",
        }
    }
    /// `(name, message)` of the termination.
    #[getter]
    fn termination(&self) -> (&'static str, &'static str) {
        (self.fit.fit.termination.name(), self.fit.fit.termination.message())
    }
    #[getter]
    fn iterations(&self) -> usize {
        self.fit.fit.iterations
    }
    #[getter]
    fn method(&self) -> &'static str {
        self.fit.fit.method.description()
    }
    /// Raw residuals `y − f`.
    #[getter]
    fn residual<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.fit.fit.residuals.clone().into_pyarray(py)
    }
    /// Weighted residuals `(y − f)/σ`.
    #[getter]
    fn weighted_residual<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.fit.fit.weighted_residuals.clone().into_pyarray(py)
    }
    #[getter]
    fn best_fit<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.fit.fit.fitted.clone().into_pyarray(py)
    }
    /// The response values (the formula's left-hand side on the data).
    #[getter]
    fn response<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.fit.response.clone().into_pyarray(py)
    }
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.fit.warning_messages()
    }
    #[getter]
    fn notes(&self) -> Vec<String> {
        self.fit.all_notes().cloned().collect()
    }
    #[getter]
    fn formula(&self) -> String {
        self.fit.source.clone()
    }
    #[getter]
    fn solve_s(&self) -> f64 {
        self.fit.solve_s
    }
    /// The columns a prediction needs (the right-hand side's data columns).
    #[getter]
    fn predict_columns(&self) -> Vec<String> {
        let names = self.compiled.formula().columns();
        self.compiled.rhs_columns().into_iter().map(|c| names[c].clone()).collect()
    }
    /// The full text report (`Summary::full`).
    fn summary(&self) -> String {
        Summary::new(&self.fit, self.data.as_str()).full()
    }
    /// One line.
    fn brief(&self) -> String {
        Summary::new(&self.fit, self.data.as_str()).brief()
    }
    /// The JSON report (`Summary::to_json`) as a string.
    fn to_json(&self) -> String {
        Summary::new(&self.fit, self.data.as_str()).to_json().to_string()
    }
    /// The model at the fitted parameters on new values of the right-hand side's columns (the
    /// response is not needed); contiguous arrays are read in place.
    fn predict<'py>(&self, py: Python<'py>, columns: HashMap<String, PyReadonlyArray1<'py, f64>>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let c = &*self.compiled;
        let names = c.formula().columns();
        let needed = c.rhs_columns();
        let mut owned: Vec<Vec<f64>> = Vec::new();
        let mut slots: Vec<Option<usize>> = vec![None; names.len()];
        for &u in &needed {
            let Some(a) = columns.get(&names[u]) else {
                let list: Vec<&str> = needed.iter().map(|&k| names[k].as_str()).collect();
                return Err(DataError::new_err(format!("predict needs the column `{}`; the model uses: {}", names[u], list.join(", "))));
            };
            if a.as_slice().is_err() {
                owned.push(a.as_array().to_vec());
                slots[u] = Some(owned.len() - 1);
            }
        }
        let cols: Vec<&[f64]> = (0..names.len())
            .map(|u| match (slots[u], needed.contains(&u)) {
                (Some(k), _) => owned[k].as_slice(),
                (None, true) => columns[&names[u]].as_slice().unwrap_or(&[]),
                (None, false) => &[],
            })
            .collect();
        let f = &self.fit.fit;
        let out = guard(|| c.predict(&f.linear, &f.nonlinear, &cols).map_err(|e| DataError::new_err(e.to_string())))?;
        Ok(out.into_pyarray(py))
    }
}

/// A formula resolved against column names with its options, compiled once (`sepfit.Model`
/// caches these): [`Prepared::fit`] binds data and fits with no parsing or compilation.
#[pyclass(frozen, module = "sepfit._sepfit")]
pub struct Prepared {
    resolved: Resolved,
    opts: NamedOptions,
    names: Vec<String>,
}

#[pymethods]
impl Prepared {
    /// Column names, in the order [`Prepared::fit`] takes the columns.
    #[getter]
    fn names(&self) -> Vec<String> {
        self.names.clone()
    }
    /// Fits the prepared formula to `columns` (in the order of `names`). The columns are
    /// copied once into the library's dataset (the GIL is released for the fit).
    #[pyo3(signature = (columns, data_name = "data".to_string()))]
    fn fit(&self, py: Python<'_>, columns: Vec<PyReadonlyArray1<'_, f64>>, data_name: String) -> PyResult<FitResult> {
        if columns.len() != self.names.len() {
            return Err(DataError::new_err(format!("{} columns for {} names", columns.len(), self.names.len())));
        }
        let cols: Vec<Vec<f64>> = columns.iter().map(|c| c.as_slice().map(<[f64]>::to_vec).unwrap_or_else(|_| c.as_array().to_vec())).collect();
        let data = Dataset::new(self.names.clone(), cols).map_err(problem_error)?;
        let r = py.detach(|| guard(|| fit_resolved(&self.resolved, &data, &self.opts).map_err(problem_error)))?;
        Ok(FitResult { fit: r, data: data_name, compiled: Arc::clone(&self.resolved.compiled) })
    }
}

/// Resolves and compiles `formula` for data with columns `names` and these options. `tol`
/// sets the relative tolerances `ftol = xtol = gtol` (default: the library's, 1e-15, with
/// Gauss–Newton polishing; polishing is skipped above 1e-13, as `sepfit batch` does).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (formula, names, start = Vec::new(), fixed = Vec::new(), bounds = Vec::new(), sigma = None, force_nonlinear = Vec::new(), method = "varpro", max_iterations = None, tol = None, search = None, loss = "linear", f_scale = None, absolute_sigma = false, detail = "full"))]
fn prepare(
    py: Python<'_>,
    formula: &str,
    names: Vec<String>,
    start: Vec<(String, f64)>,
    fixed: Vec<(String, f64)>,
    bounds: Vec<(String, f64, f64)>,
    sigma: Option<String>,
    force_nonlinear: Vec<String>,
    method: &str,
    max_iterations: Option<usize>,
    tol: Option<f64>,
    search: Option<usize>,
    loss: &str,
    f_scale: Option<f64>,
    absolute_sigma: bool,
    detail: &str,
) -> PyResult<Prepared> {
    let detail = match detail {
        "full" => sepfit::Detail::Full,
        // What curve_fit returns (popt, pcov): no fitted values, residuals or tests.
        "covariance" => sepfit::Detail::Covariance,
        other => return Err(crate::ParameterError::new_err(format!("detail must be 'full' or 'covariance', not {other:?}"))),
    };
    let lk = crate::LossKeywords { loss: loss.to_string(), f_scale, absolute_sigma };
    let opts = named_options(start, fixed, bounds, sigma, force_nonlinear, method, max_iterations, search, &lk)?;
    if let Some(t) = tol
        && !(t.is_finite() && t > 0.0)
    {
        return Err(crate::ParameterError::new_err(format!("tol must be a positive number, not {t}")));
    }
    // The names must be usable as a dataset's (unique): checked here, once.
    Dataset::new(names.clone(), vec![Vec::new(); names.len()]).map_err(problem_error)?;
    let mut resolved = py.detach(|| guard(|| resolve(formula, &names, &opts).map_err(problem_error)))?;
    resolved.options.detail = detail;
    if let Some(t) = tol {
        let o = &mut resolved.options.lm;
        (o.ftol, o.xtol, o.gtol) = (t, t, t);
        o.polish = t <= 1e-13;
    }
    Ok(Prepared { resolved, opts, names })
}

/// Fits `formula` to the named columns. `sigma` names one of the columns.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (formula, names, columns, start = Vec::new(), fixed = Vec::new(), bounds = Vec::new(), sigma = None, force_nonlinear = Vec::new(), method = "varpro", max_iterations = None, data_name = "data".to_string()))]
fn fit(
    py: Python<'_>,
    formula: &str,
    names: Vec<String>,
    columns: Vec<PyReadonlyArray1<'_, f64>>,
    start: Vec<(String, f64)>,
    fixed: Vec<(String, f64)>,
    bounds: Vec<(String, f64, f64)>,
    sigma: Option<String>,
    force_nonlinear: Vec<String>,
    method: &str,
    max_iterations: Option<usize>,
    data_name: String,
) -> PyResult<FitResult> {
    let prepared = prepare(py, formula, names, start, fixed, bounds, sigma, force_nonlinear, method, max_iterations, None, None, "linear", None, false, "full")?;
    prepared.fit(py, columns, data_name)
}

/// The nested-model F test of two fits on the same data (R's `anova(small, big)`): a dict with
/// `n`, `df`, `sum_sq`, `f`, `p_value`, `chi_square_p` (None unless σ is absolute) and the two
/// models' `formula`, `params`, `res_df`, `rss` under `small` and `big`.
#[pyfunction]
fn compare<'py>(py: Python<'py>, small: &FitResult, big: &FitResult) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    use pyo3::types::PyDict;
    let t = sepfit::compare::nested(&small.fit, &big.fit).map_err(|e| crate::ParameterError::new_err(e.to_string()))?;
    let row = |r: &sepfit::compare::ModelRow| -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("formula", &r.formula)?;
        d.set_item("params", r.params)?;
        d.set_item("res_df", r.res_df)?;
        d.set_item("rss", r.rss)?;
        Ok(d)
    };
    let d = PyDict::new(py);
    d.set_item("n", t.n)?;
    d.set_item("small", row(&t.small)?)?;
    d.set_item("big", row(&t.big)?)?;
    d.set_item("df", t.df)?;
    d.set_item("sum_sq", t.sum_sq)?;
    d.set_item("f", t.f)?;
    d.set_item("p_value", t.p_value)?;
    d.set_item("chi_square_p", t.chi_square_p)?;
    Ok(d)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<FitResult>()?;
    m.add_function(wrap_pyfunction!(compare, m)?)?;
    m.add_class::<Prepared>()?;
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_function(wrap_pyfunction!(prepare, m)?)?;
    Ok(())
}
