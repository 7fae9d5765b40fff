//! Python bindings of sepfit: the `sepfit._sepfit` extension module.
//!
//! A thin layer: it converts numpy arrays and Python values into the library's types, calls the
//! library's front door ([`sepfit::fit_formula`], [`sepfit::batch::BatchFitter`],
//! [`sepfit::fit_global`], [`sepfit::Summary`]) with the GIL released, and maps the library's
//! errors onto Python exceptions (subclasses of `ValueError`). The Python package
//! (`python/sepfit/__init__.py`) builds the user-facing API on top of it.

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use sepfit::named::ProblemError;
use sepfit::{FitError as LibFitError, FormulaModelError, Method, NamedOptions};

/// mimalloc for the extension's Rust allocations (as polars does for its Python package, and as
/// the CLI does): a single fit of 1,024 points spent about a quarter of its time in glibc's
/// malloc/free (per-fit buffers of tens of kB); the allocator is private to this library, so
/// Python and numpy keep theirs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod batch;
mod global;
mod grad;
mod model;
mod single;

create_exception!(sepfit, SepfitError, PyValueError, "Base class of sepfit's errors (a `ValueError`).");
create_exception!(
    sepfit,
    FormulaError,
    SepfitError,
    "The formula cannot be parsed or used; the message shows the formula with a caret under the problem."
);
create_exception!(
    sepfit,
    DataError,
    SepfitError,
    "The data cannot be used: lengths differ, or a value is NaN or infinite (the message names the column and the row)."
);
create_exception!(
    sepfit,
    ParameterError,
    SepfitError,
    "A starting value, fixed value or bound is missing, unknown or inconsistent."
);
create_exception!(sepfit, FitError, SepfitError, "The fit could not run (too few observations, the model not finite at the start, ...).");

/// The Python exception for a library error.
pub(crate) fn problem_error(e: ProblemError) -> PyErr {
    let msg = e.to_string();
    match &e {
        ProblemError::Formula { .. } => FormulaError::new_err(msg),
        ProblemError::Model(FormulaModelError::Compile(_)) => FormulaError::new_err(msg),
        ProblemError::Model(_)
        | ProblemError::ColumnCount { .. }
        | ProblemError::DuplicateColumn { .. }
        | ProblemError::MissingSigmaColumn { .. }
        | ProblemError::SigmaLength { .. } => DataError::new_err(msg),
        ProblemError::Fit(f) => fit_error(f),
        _ => ParameterError::new_err(msg),
    }
}

/// The Python exception for a solver error.
pub(crate) fn fit_error(e: &LibFitError) -> PyErr {
    FitError::new_err(e.to_string())
}

/// The estimation method from its Python name.
pub(crate) fn parse_method(method: &str) -> PyResult<Method> {
    match method {
        "varpro" | "golub-pereyra" | "golub_pereyra" => Ok(Method::VarPro),
        "kaufman" => Ok(Method::Kaufman),
        "full" | "joint" => Ok(Method::Full),
        other => Err(ParameterError::new_err(format!("unknown method `{other}`; use 'varpro', 'kaufman' or 'full'"))),
    }
}

/// Named options from the Python keywords.
#[allow(clippy::too_many_arguments)] // the Python keywords, one to one
pub(crate) fn named_options(
    start: Vec<(String, f64)>,
    fixed: Vec<(String, f64)>,
    bounds: Vec<(String, f64, f64)>,
    sigma: Option<String>,
    force_nonlinear: Vec<String>,
    method: &str,
    max_iterations: Option<usize>,
    search: Option<usize>,
    loss: &LossKeywords,
) -> PyResult<NamedOptions> {
    // `search`: None (search only parameters without a start), Some(0) (search with the
    // default number of samples), Some(n) (n samples).
    let search = search.map(|n| sepfit::search::SearchOptions { samples: (n > 0).then_some(n), ..Default::default() });
    let parsed: sepfit::Loss = loss.loss.parse().map_err(|e: sepfit::loss::UnknownLoss| ParameterError::new_err(format!("loss: {e}")))?;
    parsed.check_scale(loss.f_scale).map_err(|e| ParameterError::new_err(format!("f_scale={e}")))?;
    if loss.absolute_sigma && sigma.is_none() {
        return Err(ParameterError::new_err("absolute_sigma=True takes sigma as absolute standard deviations, but no sigma was given"));
    }
    Ok(NamedOptions {
        start,
        fixed,
        bounds,
        sigma,
        force_nonlinear,
        method: parse_method(method)?,
        max_iterations,
        search,
        loss: parsed,
        f_scale: loss.f_scale,
        absolute_sigma: loss.absolute_sigma,
        ..Default::default()
    })
}

/// The loss keywords of a fit: `loss` (scipy's names, or `'poisson'`), `f_scale` and
/// `absolute_sigma`.
#[derive(Debug, Clone, Default)]
pub(crate) struct LossKeywords {
    pub loss: String,
    pub f_scale: Option<f64>,
    pub absolute_sigma: bool,
}

impl LossKeywords {
    /// Least squares with relative σ.
    pub(crate) fn least_squares() -> Self {
        LossKeywords { loss: "linear".into(), ..Default::default() }
    }
}

/// Runs `f`, turning a Rust panic into a Python exception (`FitError`) rather than letting
/// pyo3's `PanicException` (a `BaseException`) escape. The library aims never to panic; this is
/// the safety net.
pub(crate) fn guard<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(FitError::new_err(format!("internal error in sepfit (please report): {what}")))
        }
    }
}

#[pymodule]
fn _sepfit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("SepfitError", py.get_type::<SepfitError>())?;
    m.add("FormulaError", py.get_type::<FormulaError>())?;
    m.add("DataError", py.get_type::<DataError>())?;
    m.add("ParameterError", py.get_type::<ParameterError>())?;
    m.add("FitError", py.get_type::<FitError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    model::register(m)?;
    single::register(m)?;
    batch::register(m)?;
    global::register(m)?;
    grad::register(m)?;
    Ok(())
}
