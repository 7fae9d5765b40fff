//! Confidence intervals of the parameters: Wald intervals from the standard errors
//! ([`NamedFit::wald_intervals`]) and profile-likelihood intervals from re-fits
//! ([`profile_intervals`](crate::profile::profile_intervals)), both as [`Intervals`].
//!
//! **Wald.** For every fitted parameter, linear ones included,
//!
//! ```text
//! θᵢ ± q · SE(θᵢ),   q = t_{ν, 1−α/2}  (ν = n − p − q degrees of freedom),
//! ```
//!
//! the interval of R's `confint.default` but with Student's t in place of the normal quantile
//! (`confint.default` uses `z_{1−α/2}` whatever the degrees of freedom; lmfit's and R's `nls`
//! t tables use t). With absolute standard deviations ([`NamedFit::absolute_sigma`]) the
//! variance is known and `q = z_{1−α/2}`. [`NamedFit::wald_intervals_with`] takes the
//! distribution explicitly (`Distribution::Normal` gives `confint.default` exactly).
//!
//! ```
//! use sepfit::{Dataset, NamedOptions, fit_formula};
//! let t: Vec<f64> = (0..30).map(|i| i as f64 * 0.2).collect();
//! let y: Vec<f64> = t.iter().map(|t| 2.0 * (-0.7 * t).exp() + 0.1 + 1e-3 * (7.0 * t).sin()).collect();
//! let data = Dataset::new(vec!["t".into(), "y".into()], vec![t, y]).unwrap();
//! let r = fit_formula("y ~ a*exp(-k*t) + c", &data, &NamedOptions::with_start(&[("k", 1.0)])).unwrap();
//! let ci = r.wald_intervals(0.95).unwrap();
//! let k = ci.get("k").unwrap();
//! assert!(k.lower < 0.7 && 0.7 < k.upper);
//! ```

use crate::named::NamedFit;
use crate::stats::{normal_two_sided_quantile, student_t_two_sided_quantile};

/// How intervals were computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IntervalMethod {
    /// `estimate ± quantile · standard error`.
    Wald,
    /// Where the profiled sum of squares crosses its quantile.
    Profile,
}

/// The reference distribution of the interval's quantile.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "name")]
pub enum Distribution {
    /// Student's t with the residual degrees of freedom (the variance is estimated).
    T {
        /// Degrees of freedom `n − p − q`.
        dof: usize,
    },
    /// The standard normal (the variance is known: absolute σ; or R's `confint.default`).
    Normal,
}

impl Distribution {
    /// The two-sided quantile `q` with `P(|X| > q) = 1 − level`.
    pub fn two_sided_quantile(self, level: f64) -> f64 {
        let alpha = 1.0 - level;
        match self {
            Distribution::T { dof } => student_t_two_sided_quantile(alpha, dof as f64),
            Distribution::Normal => normal_two_sided_quantile(alpha),
        }
    }
}

/// One parameter's interval.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ParamInterval {
    /// Parameter name.
    pub name: String,
    /// The estimate.
    pub estimate: f64,
    /// Lower end (NaN when not available, −∞ when a profile never reaches the level below).
    pub lower: f64,
    /// Upper end (NaN when not available, +∞ when a profile never reaches the level above).
    pub upper: f64,
    /// Why an end is missing, open or on a bound.
    pub notes: Vec<String>,
}

/// Intervals of all fitted (not fixed) parameters, in the order of [`NamedFit::params`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Intervals {
    /// How they were computed.
    pub method: IntervalMethod,
    /// Confidence level, e.g. 0.95.
    pub level: f64,
    /// The distribution of the quantile.
    pub distribution: Distribution,
    /// The quantile `q` (`t_{ν,1−α/2}` or `z_{1−α/2}`).
    pub quantile: f64,
    /// One per fitted parameter.
    pub params: Vec<ParamInterval>,
    /// Re-fits made (profile intervals; 0 for Wald).
    pub refits: usize,
}

impl Intervals {
    /// The interval of the parameter called `name`.
    pub fn get(&self, name: &str) -> Option<&ParamInterval> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// Why intervals could not be computed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum IntervalError {
    /// A level outside (0, 1).
    #[error("the confidence level is {level}; give a number strictly between 0 and 1, e.g. 0.95")]
    BadLevel {
        /// The level given.
        level: f64,
    },
    /// Profiles need a converged fit with full-rank Jacobian.
    #[error("the fit did not converge to a full-rank optimum, so there is no profile about it; fix the fit first")]
    NotConverged,
    /// No residual degrees of freedom (and relative σ): no variance to scale the profile.
    #[error("the fit has no residual degrees of freedom, so the residual variance and the intervals are not defined")]
    NoDegreesOfFreedom,
    /// Profile intervals are defined here through the sum of squares: not for other losses.
    #[error("profile intervals are computed from the sum of squares, so not for the {loss} loss; use Wald intervals (--ci wald)")]
    NotLeastSquares {
        /// The loss of the fit.
        loss: &'static str,
    },
    /// A profile re-fit found a smaller sum of squares than the fit.
    #[error("profiling `{name}`: the fit with {name} = {value} has a smaller sum of squares ({rss:e}) than the fit itself ({best_rss:e}), so the fit is not at the least-squares optimum; refit from other starting values")]
    BetterFit {
        /// The parameter profiled.
        name: String,
        /// Where it was held.
        value: f64,
        /// The smaller RSS.
        rss: f64,
        /// The fit's RSS.
        best_rss: f64,
    },
}

/// The distribution intervals of `fit` use by default: normal for absolute σ, else t.
pub(crate) fn default_distribution(fit: &NamedFit) -> Distribution {
    if fit.absolute_sigma { Distribution::Normal } else { Distribution::T { dof: fit.fit.dof } }
}

pub(crate) fn check_level(level: f64) -> Result<(), IntervalError> {
    if level > 0.0 && level < 1.0 { Ok(()) } else { Err(IntervalError::BadLevel { level }) }
}

impl NamedFit {
    /// Wald intervals `θᵢ ± q·SE(θᵢ)` at confidence `level` for every fitted parameter (see the
    /// [module docs](crate::intervals)); `q = t_{ν,1−α/2}`, or `z_{1−α/2}` with absolute σ.
    /// A parameter without a standard error gets NaN ends and a note.
    pub fn wald_intervals(&self, level: f64) -> Result<Intervals, IntervalError> {
        self.wald_intervals_with(level, default_distribution(self))
    }

    /// [`wald_intervals`](Self::wald_intervals) with the quantile of `distribution`
    /// (`Distribution::Normal` is R's `confint.default`).
    pub fn wald_intervals_with(&self, level: f64, distribution: Distribution) -> Result<Intervals, IntervalError> {
        check_level(level)?;
        let q = distribution.two_sided_quantile(level);
        let params = self
            .params
            .iter()
            .filter(|p| !p.fixed)
            .map(|p| {
                let half = q * p.std_error;
                let notes = if half.is_finite() { Vec::new() } else { vec!["no standard error, so no Wald interval".to_string()] };
                let (lower, upper) = if half.is_finite() { (p.value - half, p.value + half) } else { (f64::NAN, f64::NAN) };
                ParamInterval { name: p.name.clone(), estimate: p.value, lower, upper, notes }
            })
            .collect();
        Ok(Intervals { method: IntervalMethod::Wald, level, distribution, quantile: q, params, refits: 0 })
    }
}
