//! One fit by name: `fit(...)` → `FitResult` (a `NamedFit` with its report).

use crate::{DataError, guard, named_options, problem_error};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1};
use pyo3::prelude::*;
use sepfit::named::{Dataset, NamedFit, fit_resolved, resolve};
use sepfit::{FormulaModel, Summary};
use std::collections::HashMap;

/// The result of one fit (`sepfit.FitResult` wraps it).
#[pyclass(frozen, module = "sepfit._sepfit")]
pub struct FitResult {
    fit: NamedFit,
    data: String,
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
    /// the Jacobian is rank deficient). The library's convention: `s² (JᵀJ)⁻¹`, scaled by the
    /// reduced χ².
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
        let m = &self.fit.formula;
        let rhs = m.pool().free_symbols(m.rhs());
        m.used_columns()
            .into_iter()
            .map(|c| m.columns()[c].clone())
            .filter(|c| m.pool().find_symbol(c).is_some_and(|s| rhs.contains(&s)))
            .collect()
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
    /// The model at the fitted parameters on new values of the columns.
    fn predict<'py>(&self, py: Python<'py>, columns: HashMap<String, PyReadonlyArray1<'py, f64>>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let m = &self.fit.formula;
        let needed = self.predict_columns();
        let mut n = None;
        for name in &needed {
            let Some(c) = columns.get(name) else {
                return Err(DataError::new_err(format!(
                    "predict needs the column `{name}`; the model uses: {}",
                    needed.join(", ")
                )));
            };
            n.get_or_insert(c.len()?);
        }
        let n = n.unwrap_or(1);
        let ones = vec![1.0; n];
        let owned: Vec<Vec<f64>> = m
            .columns()
            .iter()
            .map(|c| match columns.get(c) {
                Some(a) if needed.contains(c) => a.as_array().to_vec(),
                _ if m.used_columns().iter().any(|&u| &m.columns()[u] == c) => ones.clone(),
                _ => Vec::new(),
            })
            .collect();
        let f = &self.fit.fit;
        let out = guard(|| {
            let cols: Vec<&[f64]> = owned.iter().map(Vec::as_slice).collect();
            let model = FormulaModel::new(m.clone(), &cols).map_err(|e| DataError::new_err(e.to_string()))?;
            let used: Vec<&[f64]> = m.used_columns().iter().map(|&u| owned[u].as_slice()).collect();
            model.predict(&f.linear, &f.nonlinear, &used).map_err(|e| DataError::new_err(e.to_string()))
        })?;
        Ok(out.into_pyarray(py))
    }
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
    let opts = named_options(start, fixed, bounds, sigma, force_nonlinear, method, max_iterations)?;
    let cols: Vec<Vec<f64>> = columns.iter().map(|c| c.as_array().to_vec()).collect();
    let data = Dataset::new(names, cols).map_err(problem_error)?;
    let formula = formula.to_string();
    let r = py.detach(move || {
        guard(|| {
            let resolved = resolve(&formula, data.names(), &opts).map_err(problem_error)?;
            fit_resolved(&resolved, &data, &opts).map_err(problem_error)
        })
    })?;
    Ok(FitResult { fit: r, data: data_name })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<FitResult>()?;
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    Ok(())
}
