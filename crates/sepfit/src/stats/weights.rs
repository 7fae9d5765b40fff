//! Weights as users mean them: R's `weights = w` (`wᵢ = 1/σᵢ²`) and scipy's
//! `absolute_sigma=True`.
//!
//! Both conventions minimise `χ² = Σ wᵢ rᵢ² = Σ (rᵢ/σᵢ)²`. They differ in the covariance:
//!
//! ```text
//! relative σ (R nls, lmfit scale_covar=True, scipy default):  Cov = s² (JᵀWJ)⁻¹,  s² = χ²/(n − p − q)
//! absolute σ (scipy absolute_sigma=True):                      Cov =    (JᵀWJ)⁻¹
//! ```
//!
//! With absolute σ the variance of the observations is known, so t values are z values with
//! two-sided p values `P(|Z| > |z|)` of the standard normal, and intervals use its quantiles.

use crate::fit::Fit;
use crate::named::{Dataset, ProblemError};

/// The standard deviations `σᵢ = 1/√wᵢ` of the weights in column `name` of `data` (`n` rows);
/// every weight must be positive and finite.
pub fn sigma_from_weights(data: &Dataset, name: &str, n: usize) -> Result<Vec<f64>, ProblemError> {
    let w = data
        .column(name)
        .ok_or_else(|| ProblemError::MissingWeightsColumn { name: name.to_string(), columns: data.names().to_vec() })?;
    if w.len() != n {
        return Err(ProblemError::WeightsLength { name: name.to_string(), got: w.len(), expected: n });
    }
    if let Some((row, &value)) = w.iter().enumerate().find(|(_, w)| !(w.is_finite() && **w > 0.0)) {
        return Err(ProblemError::BadWeight { name: name.to_string(), row, value });
    }
    Ok(w.iter().map(|w| 1.0 / w.sqrt()).collect())
}

/// Turns the statistics of `f` (relative σ: `Cov = s² (JᵀWJ)⁻¹`) into those of absolute σ:
/// the covariance divided by `s²`, the standard errors by `s`, t values recomputed and p
/// values from the standard normal. `s² = χ²/dof` for least squares and `2C/dof` for a robust
/// loss of cost `C` (the factor [`crate::irls`] scaled by); a Poisson fit's covariance is the
/// inverse Fisher information, absolute already (`s² = 1`: only its t and p values become z
/// and normal ones). Without degrees of freedom (`s²` undefined) the statistics stay NaN.
pub fn to_absolute_sigma(f: &mut Fit) {
    let s2 = match f.loss {
        crate::Loss::Poisson => 1.0,
        crate::Loss::Linear => f.reduced_chi_square,
        _ if f.dof > 0 => 2.0 * f.loss_cost / f.dof as f64,
        _ => f64::NAN,
    };
    if !(s2.is_finite() && s2 > 0.0) {
        return;
    }
    let s = s2.sqrt();
    let st = &mut f.stats;
    st.std_errors.iter_mut().for_each(|v| *v /= s);
    if let Some(c) = &mut st.covariance {
        for i in 0..c.nrows() {
            for j in 0..c.ncols() {
                c[(i, j)] /= s2;
            }
        }
    }
    // (Not where the tests were not computed: empty, or NaN with [`crate::Detail::Covariance`].)
    if !st.t_values.iter().all(|t| t.is_nan()) {
        st.t_values = f.estimates.iter().zip(&st.std_errors).map(|(e, s)| e / s).collect();
        st.p_values = st.t_values.iter().map(|&z| super::normal_two_sided_p(z)).collect();
    }
}
