//! Global fits: shared nonlinear parameters, per-curve linear coefficients.

use crate::{DataError, FitError, guard, named_options, problem_error};
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use sepfit::{GlobalError, GlobalFit, fit_global as lib_fit_global};
use sepfit::{GlobalSummary, Outcome};
use std::time::Instant;

/// The Python exception for a global fit's error.
fn global_error(e: GlobalError) -> PyErr {
    match e {
        GlobalError::Problem(p) => problem_error(p),
        GlobalError::Fit(f) => crate::fit_error(&f),
        GlobalError::NoCurves
        | GlobalError::DifferentColumn { .. }
        | GlobalError::DifferentLength { .. }
        | GlobalError::Curve { .. } => DataError::new_err(e.to_string()),
    }
}

/// The result of a global fit (`sepfit.GlobalResult` wraps it).
#[pyclass(frozen, module = "sepfit._sepfit")]
pub struct GlobalResult {
    fit: GlobalFit,
    ids: Vec<String>,
    formula: String,
    solve_s: f64,
}

#[pymethods]
impl GlobalResult {
    #[getter]
    fn nonlinear_names(&self) -> Vec<String> {
        self.fit.nonlinear_names.clone()
    }
    #[getter]
    fn nonlinear(&self) -> Vec<f64> {
        self.fit.nonlinear.clone()
    }
    #[getter]
    fn nonlinear_std_errors(&self) -> Vec<f64> {
        self.fit.nonlinear_std_errors.clone()
    }
    #[getter]
    fn linear_names(&self) -> Vec<String> {
        self.fit.linear_names.clone()
    }
    /// Per-curve linear coefficients, flattened curve by curve.
    #[getter]
    fn linear(&self) -> Vec<f64> {
        self.fit.linear.iter().flatten().copied().collect()
    }
    #[getter]
    fn rss(&self) -> f64 {
        self.fit.rss
    }
    #[getter]
    fn curve_rss(&self) -> Vec<f64> {
        self.fit.curve_rss.clone()
    }
    #[getter]
    fn dof(&self) -> usize {
        self.fit.dof
    }
    #[getter]
    fn iterations(&self) -> usize {
        self.fit.iterations
    }
    #[getter]
    fn converged(&self) -> bool {
        self.fit.converged
    }
    #[getter]
    fn status(&self) -> &'static str {
        match self.fit.outcome {
            Outcome::Converged => "converged",
            Outcome::NotConverged => "not_converged",
            Outcome::Degenerate => "degenerate",
        }
    }
    #[getter]
    fn termination(&self) -> (&'static str, &'static str) {
        (self.fit.termination.name(), self.fit.termination.message())
    }
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.fit.warning_messages()
    }
    /// Correlation of the shared parameters (None when the Jacobian is rank deficient).
    #[getter]
    fn correlation<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray2<f64>>> {
        self.fit.correlation.as_ref().map(|c| {
            let rows: Vec<Vec<f64>> = (0..c.nrows()).map(|i| (0..c.ncols()).map(|j| c[(i, j)]).collect()).collect();
            numpy::ndarray::Array2::from_shape_fn((c.nrows(), c.ncols()), |(i, j)| rows[i][j]).into_pyarray(py)
        })
    }
    /// The full text report (`GlobalSummary::full`).
    fn summary(&self) -> String {
        GlobalSummary::new(&self.fit, &self.ids, "data", "curve", self.formula.as_str(), self.solve_s).full()
    }
    fn brief(&self) -> String {
        GlobalSummary::new(&self.fit, &self.ids, "data", "curve", self.formula.as_str(), self.solve_s).brief()
    }
    /// The JSON report (`GlobalSummary::to_json`) as a string.
    fn to_json(&self) -> String {
        GlobalSummary::new(&self.fit, &self.ids, "data", "curve", self.formula.as_str(), self.solve_s).to_json().to_string()
    }
}

/// One fit of every row of `y` (curves × points) with shared nonlinear parameters. `names[0]`
/// names `y`, the rest the 1-D `columns` shared by every curve; `sigma` names one of them
/// (per-point standard deviations, the same for every curve). Contiguous arrays are read in
/// place (`y` row by row).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (formula, names, y, columns, start = Vec::new(), fixed = Vec::new(), bounds = Vec::new(), max_iterations = None, sigma = None))]
fn fit_global(
    py: Python<'_>,
    formula: &str,
    names: Vec<String>,
    y: PyReadonlyArray2<'_, f64>,
    columns: Vec<PyReadonlyArray1<'_, f64>>,
    start: Vec<(String, f64)>,
    fixed: Vec<(String, f64)>,
    bounds: Vec<(String, f64, f64)>,
    max_iterations: Option<usize>,
    sigma: Option<String>,
) -> PyResult<GlobalResult> {
    let opts = named_options(start, fixed, bounds, sigma, Vec::new(), "varpro", max_iterations, None, &crate::LossKeywords::least_squares())?;
    if names.len() != columns.len() + 1 {
        return Err(DataError::new_err(format!("{} names for {} columns", names.len(), columns.len() + 1)));
    }
    let yv = y.as_array();
    // Borrow what is contiguous, copy the rest (once).
    // (`ArrayView::as_slice` is `Some` only in C order: rows contiguous one after another.)
    let y_owned: Option<Vec<f64>> = if yv.as_slice().is_some() { None } else { Some(yv.iter().copied().collect()) };
    let y_flat: &[f64] = match &y_owned {
        Some(v) => v,
        None => yv.as_slice().unwrap_or(&[]),
    };
    let owned: Vec<Option<Vec<f64>>> = columns.iter().map(|c| if c.as_slice().is_ok() { None } else { Some(c.as_array().to_vec()) }).collect();
    let shared: Vec<&[f64]> =
        columns.iter().zip(&owned).map(|(c, o)| o.as_deref().unwrap_or_else(|| c.as_slice().unwrap_or(&[]))).collect();
    let (nc, n) = (yv.nrows(), yv.ncols());
    let curves: Vec<Vec<&[f64]>> = (0..nc)
        .map(|c| std::iter::once(&y_flat[c * n..(c + 1) * n]).chain(shared.iter().copied()).collect())
        .collect();
    let ids: Vec<String> = (0..nc).map(|c| c.to_string()).collect();
    let formula = formula.to_string();
    let (fit, solve_s) = py.detach(|| {
        guard(|| {
            let t0 = Instant::now();
            let f = lib_fit_global(&formula, &names, &opts, &curves).map_err(global_error)?;
            Ok((f, t0.elapsed().as_secs_f64()))
        })
    })?;
    if fit.linear.len() != nc {
        return Err(FitError::new_err("the global fit returned a wrong number of curves"));
    }
    Ok(GlobalResult { fit, ids, formula, solve_s })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<GlobalResult>()?;
    m.add_function(wrap_pyfunction!(fit_global, m)?)?;
    Ok(())
}
