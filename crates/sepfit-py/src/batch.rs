//! Many curves, each fitted on its own, in parallel with the GIL released.

use crate::{DataError, FitError, guard, named_options, problem_error};
use numpy::ndarray::{ArrayView1, ArrayViewD, Axis};
use numpy::{IntoPyArray, PyReadonlyArrayDyn};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rayon::prelude::*;
use sepfit::batch::{BatchFitter, BatchWorker, CurveError, CurveResult, DEFAULT_BATCH_TOL};

/// How a column enters a batch: the same values for every curve, or one lane per curve.
enum Col<'a> {
    Shared(ArrayView1<'a, f64>),
    PerCurve(Vec<ArrayView1<'a, f64>>),
}

/// The lanes of `a` along `axis`, in C order of the other axes (the order of
/// `numpy.moveaxis(a, axis, -1).reshape(-1, n)`).
fn lanes<'a>(a: &ArrayViewD<'a, f64>, axis: usize) -> Vec<ArrayView1<'a, f64>> {
    let mut out = Vec::new();
    push_lanes(a.clone(), axis, &mut out);
    out
}

fn push_lanes<'a>(a: ArrayViewD<'a, f64>, axis: usize, out: &mut Vec<ArrayView1<'a, f64>>) {
    if a.ndim() <= 1 {
        if let Ok(l) = a.into_dimensionality() {
            out.push(l);
        }
        return;
    }
    // Peel the first axis that is not `axis` (C order of the others).
    let k = if axis == 0 { 1 } else { 0 };
    let inner = if k < axis { axis - 1 } else { axis };
    for i in 0..a.len_of(Axis(k)) {
        push_lanes(a.clone().index_axis_move(Axis(k), i), inner, out);
    }
}

/// Status codes of `fit_batch` (`sepfit.STATUS` names them).
pub(crate) fn status_code(r: &CurveResult) -> u8 {
    match r.status() {
        "converged" => 0,
        "not_converged" => 1,
        "degenerate" => 2,
        _ => 3,
    }
}

/// Error codes of `fit_batch` (`sepfit.ERRORS` names them): 0 ok.
fn error_code(r: &CurveResult) -> u8 {
    match &r.error {
        None => 0,
        Some(CurveError::Model(_)) => 1,
        Some(CurveError::Fit(_)) => 2,
        Some(_) => 3,
    }
}

/// Fits every curve of `y` (lanes along `axis`). `names` are the column names: `names[0]` is
/// `y`'s, then one per entry of `columns`, each a 1-D array (shared by every curve) or an array
/// shaped like `y` (one lane per curve). A lane that is contiguous is read in place; a strided
/// one is copied into the thread's buffer first.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (formula, names, y, axis, columns, start = Vec::new(), fixed = Vec::new(), bounds = Vec::new(), sigma = None, force_nonlinear = Vec::new(), method = "varpro", max_iterations = None, threads = None, tol = None, search = None, loss = "linear", f_scale = None))]
fn fit_batch<'py>(
    py: Python<'py>,
    formula: &str,
    names: Vec<String>,
    y: PyReadonlyArrayDyn<'py, f64>,
    axis: usize,
    columns: Vec<PyReadonlyArrayDyn<'py, f64>>,
    start: Vec<(String, f64)>,
    fixed: Vec<(String, f64)>,
    bounds: Vec<(String, f64, f64)>,
    sigma: Option<String>,
    force_nonlinear: Vec<String>,
    method: &str,
    max_iterations: Option<usize>,
    threads: Option<usize>,
    tol: Option<f64>,
    search: Option<usize>,
    loss: &str,
    f_scale: Option<f64>,
) -> PyResult<Bound<'py, PyDict>> {
    let lk = crate::LossKeywords { loss: loss.to_string(), f_scale, absolute_sigma: false };
    let opts = named_options(start, fixed, bounds, sigma, force_nonlinear, method, max_iterations, search, &lk)?;
    if names.len() != columns.len() + 1 {
        return Err(DataError::new_err(format!("{} names for {} columns", names.len(), columns.len() + 1)));
    }
    let yv = y.as_array();
    if axis >= yv.ndim() {
        return Err(DataError::new_err(format!("axis {axis} is out of range for an array with {} dimensions", yv.ndim())));
    }
    let ylanes = lanes(&yv, axis);
    let nc = ylanes.len();
    let mut cols = Vec::with_capacity(columns.len());
    for (name, c) in names[1..].iter().zip(&columns) {
        let v = c.as_array();
        if v.ndim() == 1 {
            cols.push(Col::Shared(v.into_dimensionality().map_err(|e| DataError::new_err(e.to_string()))?));
        } else if v.shape() == yv.shape() {
            cols.push(Col::PerCurve(lanes(&v, axis)));
        } else {
            return Err(DataError::new_err(format!(
                "column `{name}` has shape {:?}; give a 1-D array (the same for every curve) or one shaped like the response {:?}",
                v.shape(),
                yv.shape()
            )));
        }
    }
    let mut fitter = BatchFitter::new(formula, &names, &opts).map_err(problem_error)?;
    fitter.set_tolerance(tol.unwrap_or(DEFAULT_BATCH_TOL));
    let p = fitter.param_names().len();
    let run = || -> Vec<CurveResult> {
        (0..nc)
            .into_par_iter()
            .map_init(
                || (BatchWorker::default(), vec![Vec::new(); names.len()]),
                |(worker, scratch), c| {
                    // Contiguous lanes are borrowed; strided ones copied into `scratch`.
                    let mut views: Vec<ArrayView1<'_, f64>> = Vec::with_capacity(names.len());
                    views.push(ylanes[c]);
                    for col in &cols {
                        views.push(match col {
                            Col::Shared(v) => *v,
                            Col::PerCurve(l) => l[c],
                        });
                    }
                    for (v, s) in views.iter().zip(scratch.iter_mut()) {
                        if v.as_slice().is_none() {
                            s.clear();
                            s.extend(v.iter().copied());
                        }
                    }
                    let slices: Vec<&[f64]> =
                        views.iter().zip(scratch.iter()).map(|(v, s)| v.as_slice().unwrap_or(s.as_slice())).collect();
                    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fitter.fit_curve(worker, &slices))) {
                        Ok(r) => r,
                        Err(_) => {
                            *worker = BatchWorker::default();
                            CurveResult::failed(CurveError::Data("internal error (panic) while fitting this curve".into()))
                        }
                    }
                },
            )
            .collect()
    };
    let results = py.detach(|| -> PyResult<Vec<CurveResult>> {
        guard(|| match threads {
            None | Some(0) => Ok(run()),
            Some(n) => {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build().map_err(|e| FitError::new_err(e.to_string()))?;
                Ok(pool.install(run))
            }
        })
    })?;
    let mut values = vec![f64::NAN; nc * p];
    let mut stderr = vec![f64::NAN; nc * p];
    let mut rss = vec![f64::NAN; nc];
    let mut loss_cost = vec![f64::NAN; nc];
    let mut dof = vec![0i64; nc];
    let mut iterations = vec![0i64; nc];
    let mut converged = vec![false; nc];
    let mut status = vec![0u8; nc];
    let mut error = vec![0u8; nc];
    let mut messages: Vec<(usize, String)> = Vec::new();
    let mut warnings: Vec<(usize, String)> = Vec::new();
    for (c, r) in results.iter().enumerate() {
        if r.values.len() == p {
            values[c * p..(c + 1) * p].copy_from_slice(&r.values);
            stderr[c * p..(c + 1) * p].copy_from_slice(&r.std_errors);
        }
        rss[c] = r.rss;
        loss_cost[c] = r.loss_cost;
        dof[c] = r.dof as i64;
        iterations[c] = r.iterations as i64;
        converged[c] = r.converged;
        status[c] = status_code(r);
        error[c] = error_code(r);
        if let Some(e) = &r.error {
            messages.push((c, e.to_string()));
        }
        if !r.warnings.is_empty() {
            warnings.push((c, fitter.warning_messages(r)));
        }
    }
    let d = PyDict::new(py);
    d.set_item("param_names", fitter.param_names().to_vec())?;
    d.set_item("nonlinear", fitter.nonlinear_names().to_vec())?;
    d.set_item("values", values.into_pyarray(py))?;
    d.set_item("stderr", stderr.into_pyarray(py))?;
    d.set_item("rss", rss.into_pyarray(py))?;
    d.set_item("loss", fitter.loss().name())?;
    d.set_item("loss_cost", loss_cost.into_pyarray(py))?;
    d.set_item("dof", dof.into_pyarray(py))?;
    d.set_item("iterations", iterations.into_pyarray(py))?;
    d.set_item("converged", converged.into_pyarray(py))?;
    d.set_item("status", status.into_pyarray(py))?;
    d.set_item("error", error.into_pyarray(py))?;
    d.set_item("messages", messages)?;
    d.set_item("warnings", warnings)?;
    Ok(d)
}

/// Benchmarking aid (not API): the library's in-memory batch throughput on the same data,
/// without this binding's array handling. The rows of `y` (curves × points) and the 1-D
/// `columns` shared by every curve are copied, before the clock starts, into owned curves
/// `curves[c] = [y_c, columns...]`, as `sepfit::batch::BatchFitter::fit_all` takes them (and as
/// `benches/batch_vs_varpro.rs` times it); then `fit_all` runs with the GIL released, on all
/// cores or in a pool of `threads`. Returns `(seconds, values)`, the estimates flattened curve
/// by curve in `param_names` order.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (formula, names, y, columns, start = Vec::new(), threads = None, tol = None))]
fn _bench_batch<'py>(
    py: Python<'py>,
    formula: &str,
    names: Vec<String>,
    y: numpy::PyReadonlyArray2<'py, f64>,
    columns: Vec<numpy::PyReadonlyArray1<'py, f64>>,
    start: Vec<(String, f64)>,
    threads: Option<usize>,
    tol: Option<f64>,
) -> PyResult<(f64, Bound<'py, numpy::PyArray1<f64>>)> {
    let opts = named_options(start, Vec::new(), Vec::new(), None, Vec::new(), "varpro", None, None, &crate::LossKeywords::least_squares())?;
    let shared: Vec<Vec<f64>> = columns.iter().map(|c| c.as_array().to_vec()).collect();
    let curves: Vec<Vec<Vec<f64>>> = y
        .as_array()
        .rows()
        .into_iter()
        .map(|row| std::iter::once(row.to_vec()).chain(shared.iter().cloned()).collect())
        .collect();
    let mut fitter = BatchFitter::new(formula, &names, &opts).map_err(problem_error)?;
    fitter.set_tolerance(tol.unwrap_or(DEFAULT_BATCH_TOL));
    let p = fitter.param_names().len();
    let (seconds, results) = py.detach(|| -> PyResult<(f64, Vec<CurveResult>)> {
        guard(|| {
            let t0 = std::time::Instant::now();
            let r = match threads {
                None | Some(0) => fitter.fit_all(&curves),
                Some(n) => {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build().map_err(|e| FitError::new_err(e.to_string()))?;
                    pool.install(|| fitter.fit_all(&curves))
                }
            };
            Ok((t0.elapsed().as_secs_f64(), r))
        })
    })?;
    let mut values = vec![f64::NAN; results.len() * p];
    for (c, r) in results.iter().enumerate() {
        if r.values.len() == p {
            values[c * p..(c + 1) * p].copy_from_slice(&r.values);
        }
    }
    Ok((seconds, values.into_pyarray(py)))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(fit_batch, m)?)?;
    m.add_function(wrap_pyfunction!(_bench_batch, m)?)?;
    Ok(())
}
