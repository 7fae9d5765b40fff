//! Nested-model comparison: the extra-sum-of-squares F test between two least-squares fits on
//! the same data, R's `anova(m1, m2)` on two `nls` fits.
//!
//! A small model with `p₁` free parameters is nested in a big one with `p₂ > p₁` when the big
//! model reduces to the small one for some values of its extra parameters (e.g. `b = 0` in
//! `Vm·x/(K + x) + b·x`). With `n` observations, residual degrees of freedom `νᵢ = n − pᵢ` and
//! (weighted) residual sums of squares `Sᵢ = Σ wₖ (yₖ − f̂ᵢ(xₖ))²`,
//!
//! ```text
//! Δν = ν₁ − ν₂ = p₂ − p₁,     ΔS = S₁ − S₂ ≥ 0,
//! F  = (ΔS / Δν) / (S₂ / ν₂),
//! Pr(>F) = P(F(Δν, ν₂) > F) = I_{ν₂/(ν₂ + Δν·F)}(ν₂/2, Δν/2),
//! ```
//!
//! `I_x(a, b)` the regularized incomplete beta function. Under the small model (and normal
//! errors, and asymptotically for nonlinear models) `F` follows the F distribution with
//! `(Δν, ν₂)` degrees of freedom. When both fits took their `σ` as absolute
//! ([`NamedFit::absolute_sigma`]), `ΔS` is also the likelihood-ratio statistic `−2 ln Λ`, χ² with
//! `Δν` degrees of freedom: [`NestedTest::chi_square_p`] is `Q(Δν/2, ΔS/2)`.
//!
//! ```
//! use sepfit::{Dataset, NamedOptions, fit_formula};
//! let conc = vec![0.02, 0.02, 0.06, 0.06, 0.11, 0.11, 0.22, 0.22, 0.56, 0.56, 1.10, 1.10];
//! let rate = vec![76., 47., 97., 107., 123., 139., 159., 152., 191., 201., 207., 200.];
//! let data = Dataset::new(vec!["conc".into(), "rate".into()], vec![conc, rate]).unwrap();
//! let opts = NamedOptions::with_start(&[("K", 0.05)]);
//! let small = fit_formula("rate ~ Vm*conc/(K + conc)", &data, &opts).unwrap();
//! let big = fit_formula("rate ~ Vm*conc/(K + conc) + b*conc", &data, &opts).unwrap();
//! let test = sepfit::compare::nested(&small, &big).unwrap();
//! assert_eq!((test.small.res_df, test.big.res_df, test.df), (10, 9, 1));
//! assert!((test.f - 1.4398206).abs() < 1e-6 && (test.p_value - 0.2608008).abs() < 1e-6);
//! ```

use crate::fit::Outcome;
use crate::named::NamedFit;
use crate::stats::{regularized_incomplete_beta, regularized_upper_gamma};

/// One model's row of the comparison table.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct ModelRow {
    /// The formula as given.
    pub formula: String,
    /// Free parameters `p` (fitted linear and nonlinear ones; fixed ones do not count).
    pub params: usize,
    /// Residual degrees of freedom `n − p` (R's `Res.Df`).
    pub res_df: usize,
    /// Weighted residual sum of squares (R's `Res.Sum Sq`).
    pub rss: f64,
}

/// The F test between a small model and a big one that nests it (R's `anova(m1, m2)`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct NestedTest {
    /// Observations.
    pub n: usize,
    /// The small model.
    pub small: ModelRow,
    /// The big model.
    pub big: ModelRow,
    /// `Δν = p₂ − p₁` (R's `Df`).
    pub df: usize,
    /// `ΔS = S₁ − S₂` (R's `Sum Sq`).
    pub sum_sq: f64,
    /// `F = (ΔS/Δν)/(S₂/ν₂)` (R's `F value`).
    pub f: f64,
    /// `P(F(Δν, ν₂) > F)` (R's `Pr(>F)`).
    pub p_value: f64,
    /// With absolute σ in both fits: the likelihood-ratio test's `P(χ²(Δν) > ΔS)`.
    pub chi_square_p: Option<f64>,
}

/// Why two fits cannot be compared. Each message names the problem and what to do.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CompareError {
    /// A fit with a loss other than least squares: the F test compares sums of squares.
    #[error("the {which} model was fitted with the {loss} loss; the F test compares least-squares fits (fit both without --loss)")]
    NotLeastSquares {
        /// `"small"` or `"big"`.
        which: &'static str,
        /// The loss of that fit.
        loss: &'static str,
    },
    /// The fits have different numbers of observations.
    #[error("the models were fitted to different data: {small_n} observations for the small model, {big_n} for the big one; fit both to the same rows")]
    DifferentN {
        /// Observations of the small model's fit.
        small_n: usize,
        /// Observations of the big model's fit.
        big_n: usize,
    },
    /// The responses differ.
    #[error("the models were fitted to different responses: observation {index} (from 0) is {small} for the small model and {big} for the big one; fit both to the same response column")]
    DifferentResponse {
        /// First observation that differs (0-based).
        index: usize,
        /// The small model's response there.
        small: f64,
        /// The big model's response there.
        big: f64,
    },
    /// The fits weighted the observations differently.
    #[error("the models were fitted with different weights (observation {index}, from 0, first differs): give both the same sigma or weights column")]
    DifferentWeights {
        /// First observation whose weight differs (0-based).
        index: usize,
    },
    /// The "big" model has no more free parameters than the small one.
    #[error("the big model `{big}` has {big_params} free parameters, no more than the {small_params} of the small model `{small}`: a nested model has fewer; give the smaller model first")]
    NotMoreParameters {
        /// The small model's formula.
        small: String,
        /// Its free parameters.
        small_params: usize,
        /// The big model's formula.
        big: String,
        /// Its free parameters.
        big_params: usize,
    },
    /// The big model fits worse than the small one.
    #[error("the big model's residual sum of squares {big_rss} is larger than the small model's {small_rss}: the models are not nested, or the big model's fit stopped at a worse local optimum (try other starting values, or a search for them)")]
    BigFitsWorse {
        /// The small model's RSS.
        small_rss: f64,
        /// The big model's RSS.
        big_rss: f64,
    },
    /// A fit did not converge (or stopped at a degenerate point).
    #[error("the {which} model `{formula}` did not converge ({outcome}): its sum of squares and degrees of freedom are not those of an optimum; fix the fit first")]
    NotConverged {
        /// `small` or `big`.
        which: &'static str,
        /// Its formula.
        formula: String,
        /// How it ended, in words.
        outcome: &'static str,
    },
    /// The big model leaves no residual degrees of freedom, so `S₂/ν₂` is undefined.
    #[error("the big model `{big}` has as many free parameters as observations ({n}): no residual degrees of freedom are left for the F test")]
    NoResidualDf {
        /// The big model's formula.
        big: String,
        /// Observations.
        n: usize,
    },
}

/// Compares a `small` fit with a `big` one that nests it on the same data: the extra sum of
/// squares F test of the [module docs](self), R's `anova(small, big)`.
///
/// Refuses fits on different data (observations, response or weights differ), a big model
/// with no more free parameters than the small one or with a larger residual sum of squares
/// (not nested, or a worse local optimum), and fits that did not converge. Nesting itself
/// (that the big model reduces to the small one) is not checked: it is the caller's claim.
pub fn nested(small: &NamedFit, big: &NamedFit) -> Result<NestedTest, CompareError> {
    for (which, r) in [("small", small), ("big", big)] {
        if r.fit.loss != crate::Loss::Linear {
            return Err(CompareError::NotLeastSquares { which, loss: r.fit.loss.name() });
        }
    }
    let n = small.n;
    if big.n != n {
        return Err(CompareError::DifferentN { small_n: n, big_n: big.n });
    }
    if let Some(i) = (0..n).find(|&i| small.response[i].to_bits() != big.response[i].to_bits()) {
        return Err(CompareError::DifferentResponse { index: i, small: small.response[i], big: big.response[i] });
    }
    if let Some(i) = first_weight_difference(small, big) {
        return Err(CompareError::DifferentWeights { index: i });
    }
    for (which, r) in [("small", small), ("big", big)] {
        if r.fit.outcome != Outcome::Converged || !r.fit.converged {
            let outcome = match r.fit.outcome {
                Outcome::Degenerate => "it stopped at a degenerate point",
                _ => "it stopped before converging",
            };
            return Err(CompareError::NotConverged { which, formula: r.source.clone(), outcome });
        }
    }
    let row = |r: &NamedFit| ModelRow { formula: r.source.clone(), params: n - r.fit.dof, res_df: r.fit.dof, rss: r.fit.rss };
    let (s, b) = (row(small), row(big));
    if b.params <= s.params {
        return Err(CompareError::NotMoreParameters { small: s.formula, small_params: s.params, big: b.formula, big_params: b.params });
    }
    if b.res_df == 0 {
        return Err(CompareError::NoResidualDf { big: b.formula, n });
    }
    if !(b.rss <= s.rss) {
        return Err(CompareError::BigFitsWorse { small_rss: s.rss, big_rss: b.rss });
    }
    let df = b.params - s.params;
    let sum_sq = s.rss - b.rss;
    let f = (sum_sq / df as f64) / (b.rss / b.res_df as f64);
    let p_value = f_upper_tail(f, df as f64, b.res_df as f64);
    let chi_square_p = (small.absolute_sigma && big.absolute_sigma).then(|| regularized_upper_gamma(0.5 * df as f64, 0.5 * sum_sq));
    Ok(NestedTest { n, small: s, big: b, df, sum_sq, f, p_value, chi_square_p })
}

/// `P(F(d₁, d₂) > f) = I_{d₂/(d₂ + d₁f)}(d₂/2, d₁/2)` for `f ≥ 0` (1 at `f = 0`, 0 at `f = ∞`,
/// NaN for NaN or negative `f` or non-positive degrees of freedom).
pub fn f_upper_tail(f: f64, d1: f64, d2: f64) -> f64 {
    if !(f >= 0.0 && d1 > 0.0 && d2 > 0.0) {
        return f64::NAN;
    }
    if f.is_infinite() {
        return 0.0;
    }
    // Near x = 1 (small f), 1 − x = d₁f/(d₂ + d₁f) is computed directly rather than by
    // subtraction, through I_x(a, b) = 1 − I_{1−x}(b, a).
    let denom = d2 + d1 * f;
    let x = d2 / denom;
    if x > 0.5 {
        1.0 - regularized_incomplete_beta(0.5 * d1, 0.5 * d2, d1 * f / denom)
    } else {
        regularized_incomplete_beta(0.5 * d2, 0.5 * d1, x)
    }
}

/// The first observation whose weight `1/σᵢ` (the ratio of weighted to raw residual) differs
/// between the fits, where both residuals are large enough for the ratio to be read.
fn first_weight_difference(small: &NamedFit, big: &NamedFit) -> Option<usize> {
    let weight = |r: &NamedFit, i: usize| {
        let raw = r.fit.residuals[i];
        (raw.abs() > 1e-12 * r.response[i].abs().max(f64::MIN_POSITIVE)).then(|| r.fit.weighted_residuals[i] / raw)
    };
    (0..small.n.min(small.fit.residuals.len()).min(big.fit.residuals.len())).find(|&i| match (weight(small, i), weight(big, i)) {
        (Some(a), Some(b)) => (a - b).abs() > 1e-6 * a.abs().max(b.abs()),
        _ => false,
    })
}
