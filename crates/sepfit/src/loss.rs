//! Loss functions: scipy's robust losses and the Poisson deviance.
//!
//! Robust losses follow `scipy.optimize.least_squares(loss=…, f_scale=F)` exactly. With the
//! σ-weighted residual `rᵢ = (yᵢ − fᵢ)/σᵢ` and `zᵢ = (rᵢ/F)²` the cost is
//!
//! ```text
//! C = ½ F² Σᵢ ρ(zᵢ)
//! soft_l1: ρ(z) = 2(√(1+z) − 1)
//! huber:   ρ(z) = z            (z ≤ 1),   2√z − 1   (z > 1)
//! cauchy:  ρ(z) = ln(1+z)
//! arctan:  ρ(z) = arctan z
//! ```
//!
//! (`linear`, ρ(z) = z, is ordinary least squares.) Its stationarity equations
//! `Σ ρ′(zᵢ) rᵢ ∂rᵢ/∂θ = 0` are those of a weighted least-squares fit with the weights
//! `ρ′(zᵢ)` held fixed, which is what the IRLS driver ([`crate::irls`]) iterates.
//!
//! Poisson maximum likelihood for counts `yᵢ ≥ 0` with mean `μᵢ` (the model) minimises the
//! deviance `D = 2 Σᵢ [yᵢ ln(yᵢ/μᵢ) − (yᵢ − μᵢ)]` (the logarithmic term 0 at `yᵢ = 0`), whose
//! stationarity equations `Σ (yᵢ − μᵢ)/μᵢ ∂μᵢ/∂θ = 0` are those of least squares with
//! `σᵢ² = μᵢ` held fixed.

/// The loss a fit minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Least squares, ρ(z) = z (default).
    #[default]
    Linear,
    /// ρ(z) = 2(√(1+z) − 1): a smooth approximation of the absolute value.
    SoftL1,
    /// ρ(z) = z for z ≤ 1, 2√z − 1 beyond.
    Huber,
    /// ρ(z) = ln(1+z).
    Cauchy,
    /// ρ(z) = arctan z.
    Arctan,
    /// Poisson maximum likelihood for counts (minimises the deviance).
    Poisson,
}

/// A loss name that is not one of [`Loss::NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown loss `{0}`; expected one of linear, soft_l1, huber, cauchy, arctan, poisson")]
pub struct UnknownLoss(pub String);

impl std::str::FromStr for Loss {
    type Err = UnknownLoss;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "linear" => Loss::Linear,
            "soft_l1" => Loss::SoftL1,
            "huber" => Loss::Huber,
            "cauchy" => Loss::Cauchy,
            "arctan" => Loss::Arctan,
            "poisson" => Loss::Poisson,
            _ => return Err(UnknownLoss(s.to_string())),
        })
    }
}

/// A scale `f_scale` that the loss cannot use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScaleError {
    /// Not a positive finite number.
    #[error("{value}: give a positive finite scale for the robust losses, e.g. 0.1")]
    NotPositive {
        /// The scale given.
        value: f64,
    },
    /// Given with a loss that has no scale (least squares, Poisson).
    #[error("{value}: only the robust losses (soft_l1, huber, cauchy, arctan) have a scale; the {loss} loss does not use it")]
    Unused {
        /// The scale given.
        value: f64,
        /// The loss's name.
        loss: &'static str,
    },
}

impl Loss {
    /// Checks a scale given for this loss (`None`: the default 1 of the robust losses).
    ///
    /// ```
    /// use sepfit::Loss;
    /// assert!(Loss::Huber.check_scale(Some(0.1)).is_ok());
    /// assert!(Loss::Huber.check_scale(Some(-1.0)).is_err());
    /// assert!(Loss::Poisson.check_scale(Some(2.0)).is_err());
    /// assert!(Loss::Poisson.check_scale(None).is_ok());
    /// ```
    pub fn check_scale(self, f_scale: Option<f64>) -> Result<(), ScaleError> {
        match f_scale {
            Some(value) if !(value.is_finite() && value > 0.0) => Err(ScaleError::NotPositive { value }),
            Some(value) if !self.is_robust() => Err(ScaleError::Unused { value, loss: self.name() }),
            _ => Ok(()),
        }
    }

    /// The names accepted by [`str::parse`], in scipy's spelling.
    pub const NAMES: [&'static str; 6] = ["linear", "soft_l1", "huber", "cauchy", "arctan", "poisson"];

    /// The name (scipy's spelling).
    pub fn name(self) -> &'static str {
        match self {
            Loss::Linear => "linear",
            Loss::SoftL1 => "soft_l1",
            Loss::Huber => "huber",
            Loss::Cauchy => "cauchy",
            Loss::Arctan => "arctan",
            Loss::Poisson => "poisson",
        }
    }

    /// Whether this is one of the robust losses (`soft_l1`, `huber`, `cauchy`, `arctan`).
    pub fn is_robust(self) -> bool {
        matches!(self, Loss::SoftL1 | Loss::Huber | Loss::Cauchy | Loss::Arctan)
    }

    /// `(ρ(z), ρ′(z), ρ″(z))` at `z ≥ 0` (for [`Loss::Poisson`], which has no ρ, those of
    /// [`Loss::Linear`]).
    pub fn rho(self, z: f64) -> (f64, f64, f64) {
        match self {
            Loss::Linear | Loss::Poisson => (z, 1.0, 0.0),
            Loss::SoftL1 => {
                let t = 1.0 + z;
                let s = t.sqrt();
                (2.0 * (s - 1.0), 1.0 / s, -0.5 / (t * s))
            }
            Loss::Huber => {
                if z <= 1.0 {
                    (z, 1.0, 0.0)
                } else {
                    let s = z.sqrt();
                    (2.0 * s - 1.0, 1.0 / s, -0.5 / (z * s))
                }
            }
            Loss::Cauchy => {
                let t = 1.0 + z;
                (z.ln_1p(), 1.0 / t, -1.0 / (t * t))
            }
            Loss::Arctan => {
                let t = 1.0 + z * z;
                (z.atan(), 1.0 / t, -2.0 * z / (t * t))
            }
        }
    }
}

/// The robust cost `½ F² Σ ρ((rᵢ/F)²)` of the σ-weighted residuals `r`.
pub fn robust_cost(loss: Loss, f_scale: f64, r: &[f64]) -> f64 {
    let f2 = f_scale * f_scale;
    0.5 * f2 * r.iter().map(|r| loss.rho(r * r / f2).0).sum::<f64>()
}

/// The Poisson deviance `D = 2 Σ [yᵢ ln(yᵢ/μᵢ) − (yᵢ − μᵢ)]`, `yᵢ ln(yᵢ/μᵢ) = 0` at `yᵢ = 0`
/// (`+∞` where some `μᵢ ≤ 0` with `yᵢ > 0`).
pub fn poisson_deviance(y: &[f64], mu: &[f64]) -> f64 {
    2.0 * y
        .iter()
        .zip(mu)
        .map(|(&y, &m)| {
            let log_term = if y > 0.0 { if m > 0.0 { y * (y / m).ln() } else { f64::INFINITY } } else { 0.0 };
            log_term - (y - m)
        })
        .sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ρ′ and ρ″ against central differences of ρ, on both sides of huber's kink.
    #[test]
    fn derivatives_match_differences() {
        for loss in [Loss::SoftL1, Loss::Huber, Loss::Cauchy, Loss::Arctan] {
            for z in [0.0, 0.3, 0.9, 1.7, 12.0] {
                let h = 1e-5 * (1.0 + z);
                let zc = if z == 0.0 { h } else { z };
                let (_, d1, d2) = loss.rho(zc);
                let fd1 = (loss.rho(zc + h).0 - loss.rho(zc - h).0) / (2.0 * h);
                let fd2 = (loss.rho(zc + h).1 - loss.rho(zc - h).1) / (2.0 * h);
                assert!((d1 - fd1).abs() < 1e-7, "{loss:?} z={z}: {d1} vs {fd1}");
                assert!((d2 - fd2).abs() < 1e-6, "{loss:?} z={z}: {d2} vs {fd2}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for n in Loss::NAMES {
            assert_eq!(n.parse::<Loss>().unwrap().name(), n);
        }
        assert!("l2".parse::<Loss>().is_err());
    }

    #[test]
    fn deviance_zero_counts() {
        assert_eq!(poisson_deviance(&[0.0], &[2.0]), 4.0);
        assert_eq!(poisson_deviance(&[3.0], &[3.0]), 0.0);
        assert!(poisson_deviance(&[3.0], &[0.0]).is_infinite());
    }
}
