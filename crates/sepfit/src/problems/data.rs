//! Checks of the data handed to a fit: lengths, finiteness, weights `W = 1/σ`.

use crate::error::FitError;
use crate::model::SeparableModel;

/// Checks shapes and finiteness of the data; returns `W = 1/σ`.
pub(crate) fn check_data<M: SeparableModel + ?Sized>(
    model: &M,
    y: &[f64],
    sigma: Option<&[f64]>,
) -> Result<Vec<f64>, FitError> {
    let mut w = Vec::new();
    check_data_into(model, y, sigma, &mut w)?;
    Ok(w)
}

/// [`check_data`] writing `W = 1/σ` into `w` (reusing its allocation).
pub(crate) fn check_data_into<M: SeparableModel + ?Sized>(
    model: &M,
    y: &[f64],
    sigma: Option<&[f64]>,
    w: &mut Vec<f64>,
) -> Result<(), FitError> {
    let n = model.n_obs();
    if y.len() != n {
        return Err(FitError::DataLength { expected: n, got: y.len() });
    }
    if let Some((index, value)) = crate::linalg::kernels::first_non_finite(y) {
        return Err(FitError::NonFiniteData { index, value });
    }
    let p = model.n_linear();
    let q = model.n_nonlinear();
    for &(j, k) in model.basis_derivative_pattern() {
        if j >= p || k >= q {
            return Err(FitError::BadPattern { j, k, p, q });
        }
    }
    for &k in model.offset_derivative_pattern() {
        if k >= q {
            return Err(FitError::BadPattern { j: usize::MAX, k, p, q });
        }
    }
    w.clear();
    match sigma {
        None => w.resize(n, 1.0),
        Some(s) => {
            if s.len() != n {
                return Err(FitError::WeightsLength { expected: n, got: s.len() });
            }
            if let Some(index) = s.iter().position(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(FitError::BadSigma { index, value: s[index] });
            }
            w.extend(s.iter().map(|v| 1.0 / v));
        }
    }
    Ok(())
}
