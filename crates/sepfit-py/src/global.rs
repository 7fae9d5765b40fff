//! Global fits: shared nonlinear parameters, per-curve linear coefficients.

use pyo3::prelude::*;

pub(crate) fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
