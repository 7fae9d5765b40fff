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
    /// Bounds of the linear parameters of the wrong length (option `linear_lower` / `linear_upper`).
    #[error("linear_{which} has {got} values but the model has {expected} linear parameters")]
    LinearBoundsLength {
        /// `lower` or `upper`.
        which: &'static str,
        /// Linear parameters.
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// A linear parameter's lower bound above its upper bound, or a NaN bound.
    #[error("the bounds of linear parameter {index} are [{lower}, {upper}]; need lower <= upper")]
    InvalidLinearBounds {
        /// Linear parameter.
        index: usize,
        /// Lower bound.
        lower: f64,
        /// Upper bound.
        upper: f64,
    },
    /// Invalid start, bounds or tolerances.
    #[error(transparent)]
    Options(#[from] LmError),
    /// The model cannot be evaluated at the start.
    #[error("the model cannot be evaluated at the starting values: {0}; choose other starting values")]
    NonFiniteAtStart(ModelError),
    /// The model is not finite on a row of the data at the starting values: the data of that
    /// row (e.g. `log(0)`, a division by zero) or the start.
    #[error("the model is {value} at row {} of the data at the starting values ({what}); check that row's data (e.g. log(0) or a division by zero there) or choose other starting values", row + 1)]
    ModelNotFiniteAtRow {
        /// Zero-based row.
        row: usize,
        /// Which part of the model: a basis function, the offset or a derivative.
        what: String,
        /// The value there.
        value: f64,
    },
    /// The model is finite everywhere at the start, but the weighted sum of squares is not.
    #[error("the sum of squares overflows at the starting values although the model is finite (the data reach |y/σ| = {max_weighted:e}); rescale the data or sigma")]
    SumOfSquaresOverflow {
        /// Largest `|yᵢ/σᵢ|`.
        max_weighted: f64,
    },
    /// `f_scale` of a robust loss is not a positive finite number.
    #[error("f_scale = {value} must be positive and finite")]
    BadFScale {
        /// The value given.
        value: f64,
    },
    /// A negative count in a Poisson fit.
    #[error("count at row {} is {value}; the poisson loss needs counts y >= 0", row + 1)]
    NegativeCount {
        /// Zero-based row.
        row: usize,
        /// The value there.
        value: f64,
    },
    /// σ given for a Poisson fit (its variances are the means).
    #[error("sigma cannot be combined with the poisson loss (the variance of a count is its mean)")]
    SigmaWithPoisson,
}
