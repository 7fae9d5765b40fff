//! Why a fit could not run.

use crate::model::ModelError;
use crate::solvers::lm::LmError;

/// Why a fit could not be run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    /// `y` has the wrong length.
    #[error("data has {got} values but the model has {expected} observations")]
    DataLength {
        /// Number of observations of the model.
        expected: usize,
        /// Length of `y`.
        got: usize,
    },
    /// `y` contains NaN or ±inf.
    #[error("observation {index} is not finite ({value}); remove or fix it")]
    NonFiniteData {
        /// Index of the observation.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// σ has the wrong length.
    #[error("sigma has {got} values but there are {expected} observations")]
    WeightsLength {
        /// Number of observations.
        expected: usize,
        /// Length of σ.
        got: usize,
    },
    /// A σ is not a positive finite number.
    #[error("sigma[{index}] = {value} must be positive and finite")]
    BadSigma {
        /// Index.
        index: usize,
        /// Value.
        value: f64,
    },
    /// The model's derivative pattern refers to a nonexistent parameter.
    #[error("derivative pattern entry (j={j}, k={k}) is out of range for p={p} linear and q={q} nonlinear parameters (j=usize::MAX: offset pattern)")]
    BadPattern {
        /// Basis index.
        j: usize,
        /// Nonlinear parameter index.
        k: usize,
        /// Number of linear parameters.
        p: usize,
        /// Number of nonlinear parameters.
        q: usize,
    },
    /// Fewer observations than parameters (as many is a square system: it is solved, without
    /// standard errors).
    #[error("{n} observations are fewer than the {params} parameters; a fit needs at least as many observations as parameters")]
    TooFewObservations {
        /// Number of observations.
        n: usize,
        /// Number of parameters.
        params: usize,
    },
    /// The linear start has the wrong length.
    #[error("linear_start has {got} values but the model has {expected} linear parameters")]
    LinearStartLength {
        /// Expected.
        expected: usize,
        /// Given.
        got: usize,
    },
    /// Invalid start, bounds or tolerances.
    #[error(transparent)]
    Options(#[from] LmError),
    /// The model cannot be evaluated at the start.
    #[error("the model cannot be evaluated at the starting values: {0}; choose other starting values")]
    NonFiniteAtStart(ModelError),
}
