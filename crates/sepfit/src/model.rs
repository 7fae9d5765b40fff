//! The separable model interface.
//!
//! A separable model has the form
//!
//! ```text
//! f(x_i; a, b) = Σ_{j<p} a_j φ_j(x_i; b) + φ_0(x_i; b),   i = 0..n
//! ```
//!
//! with `p` *linear* parameters `a` (eliminated by variable projection) and `q`
//! *nonlinear* parameters `b`. The model only ever has to evaluate the basis
//! functions `φ_j`, the optional offset `φ_0`, and their exact partial
//! derivatives with respect to `b`; the solver never differentiates numerically.

use faer::Mat;

/// Error returned by a model when it cannot be evaluated at the requested `b`.
///
/// During an iteration such an error is treated like an infinite cost (the
/// trial step is rejected); at the starting point it aborts the fit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("model evaluation failed: {message}")]
pub struct ModelError {
    /// Human-readable reason (e.g. "log of negative number at observation 3").
    pub message: String,
}

impl ModelError {
    /// Creates a model error from any message.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }
}

/// Buffers a [`SeparableModel`] fills in [`SeparableModel::eval`].
///
/// All matrices are column-major `faer::Mat<f64>` with one row per observation.
#[derive(Debug, Clone)]
pub struct ModelEval {
    /// `n × p`; column `j` holds `φ_j(x_i; b)`.
    pub basis: Mat<f64>,
    /// Length `n`; `φ_0(x_i; b)` (left at zero when the model has no offset).
    pub offset: Vec<f64>,
    /// `n × m` with `m = basis_derivative_pattern().len()`; column `i` holds
    /// `∂φ_j/∂b_k` for `(j, k) = pattern[i]`.
    pub d_basis: Mat<f64>,
    /// `n × offset_derivative_pattern().len()`; column `i` holds `∂φ_0/∂b_k`
    /// for `k = offset_pattern[i]`.
    pub d_offset: Mat<f64>,
}

impl ModelEval {
    /// Allocates zeroed buffers of the right shapes for `model`.
    pub fn new<M: SeparableModel + ?Sized>(model: &M) -> Self {
        let n = model.n_obs();
        Self {
            basis: Mat::zeros(n, model.n_linear()),
            offset: vec![0.0; n],
            d_basis: Mat::zeros(n, model.basis_derivative_pattern().len()),
            d_offset: Mat::zeros(n, model.offset_derivative_pattern().len()),
        }
    }

    /// True if every entry of every buffer is finite.
    pub fn all_finite(&self) -> bool {
        fn mat_ok(m: &Mat<f64>) -> bool {
            (0..m.ncols()).all(|j| m.col(j).iter().all(|v| v.is_finite()))
        }
        mat_ok(&self.basis)
            && self.offset.iter().all(|v| v.is_finite())
            && mat_ok(&self.d_basis)
            && mat_ok(&self.d_offset)
    }
}

/// A separable least-squares model `f = Σ_j a_j φ_j(b) + φ_0(b)`.
///
/// Implementors provide values and exact first derivatives with respect to the
/// nonlinear parameters `b`. Observations (the `x` values) are owned by the model.
pub trait SeparableModel {
    /// Number of observations `n`.
    fn n_obs(&self) -> usize;
    /// Number of linear parameters `p` (0: plain nonlinear model `f = φ_0`).
    fn n_linear(&self) -> usize;
    /// Number of nonlinear parameters `q` (0: linear least squares).
    fn n_nonlinear(&self) -> usize;
    /// Whether the offset `φ_0` is present (otherwise it is treated as zero).
    fn has_offset(&self) -> bool;
    /// Pairs `(j, k)` (`j < p`, `k < q`) for which `∂φ_j/∂b_k` may be nonzero.
    /// Fixed for the life of the model; pairs must be distinct.
    fn basis_derivative_pattern(&self) -> &[(usize, usize)];
    /// Sorted indices `k` for which `∂φ_0/∂b_k` may be nonzero.
    fn offset_derivative_pattern(&self) -> &[usize];
    /// Evaluates the basis, offset and their derivatives at `b` into `out`
    /// (allocated by [`ModelEval::new`]). Non-finite values are allowed and are
    /// handled by the solver (treated as an infinite cost).
    fn eval(&mut self, b: &[f64], out: &mut ModelEval) -> Result<(), ModelError>;

    /// Evaluates only `out.basis` and `out.offset` (derivatives may be left stale). Loss-only
    /// uses (line searches, rejected steps, landscapes) call this; the default evaluates all.
    fn eval_values(&mut self, b: &[f64], out: &mut ModelEval) -> Result<(), ModelError> {
        self.eval(b, out)
    }
}

impl<M: SeparableModel + ?Sized> SeparableModel for Box<M> {
    fn n_obs(&self) -> usize {
        (**self).n_obs()
    }
    fn n_linear(&self) -> usize {
        (**self).n_linear()
    }
    fn n_nonlinear(&self) -> usize {
        (**self).n_nonlinear()
    }
    fn has_offset(&self) -> bool {
        (**self).has_offset()
    }
    fn basis_derivative_pattern(&self) -> &[(usize, usize)] {
        (**self).basis_derivative_pattern()
    }
    fn offset_derivative_pattern(&self) -> &[usize] {
        (**self).offset_derivative_pattern()
    }
    fn eval(&mut self, b: &[f64], out: &mut ModelEval) -> Result<(), ModelError> {
        (**self).eval(b, out)
    }
    fn eval_values(&mut self, b: &[f64], out: &mut ModelEval) -> Result<(), ModelError> {
        (**self).eval_values(b, out)
    }
}

impl<M: SeparableModel + ?Sized> SeparableModel for &mut M {
    fn n_obs(&self) -> usize {
        (**self).n_obs()
    }
    fn n_linear(&self) -> usize {
        (**self).n_linear()
    }
    fn n_nonlinear(&self) -> usize {
        (**self).n_nonlinear()
    }
    fn has_offset(&self) -> bool {
        (**self).has_offset()
    }
    fn basis_derivative_pattern(&self) -> &[(usize, usize)] {
        (**self).basis_derivative_pattern()
    }
    fn offset_derivative_pattern(&self) -> &[usize] {
        (**self).offset_derivative_pattern()
    }
    fn eval(&mut self, b: &[f64], out: &mut ModelEval) -> Result<(), ModelError> {
        (**self).eval(b, out)
    }
    fn eval_values(&mut self, b: &[f64], out: &mut ModelEval) -> Result<(), ModelError> {
        (**self).eval_values(b, out)
    }
}

/// Type of the per-observation evaluation callback of a [`PointModel`].
///
/// Called as `f(x_i, b, phi, dphi, phi0, dphi0)` where `x_i` is the row of
/// predictors of observation `i`, `phi` (length `p`) receives `φ_j`, `dphi`
/// (length of the basis pattern) receives `∂φ_j/∂b_k` in pattern order, `phi0`
/// receives `φ_0` and `dphi0` (length of the offset pattern) its derivatives.
pub type PointFn = dyn FnMut(&[f64], &[f64], &mut [f64], &mut [f64], &mut f64, &mut [f64]) + Send;

/// A convenience [`SeparableModel`] defined observation by observation by a closure; build it
/// with [`PointModel::builder`].
///
/// ```
/// use sepfit::{FitOptions, PointModel, fit};
/// // y = a0 exp(-b0 x) + a1: two basis functions, one nonlinear parameter, ∂φ0/∂b0 ≠ 0.
/// let x: Vec<f64> = (0..20).map(|i| i as f64 * 0.25).collect();
/// let y: Vec<f64> = x.iter().map(|x| 3.0 * (-0.7 * x).exp() + 0.5).collect();
/// let mut model = PointModel::builder(x.iter().map(|&v| vec![v]).collect(), 2, 1)
///     .derivative(0, 0)
///     .eval(|x, b, phi, dphi, _, _| {
///         let e = (-b[0] * x[0]).exp();
///         (phi[0], phi[1], dphi[0]) = (e, 1.0, -x[0] * e);
///     })
///     .build()
///     .unwrap();
/// let f = fit(&mut model, &y, &FitOptions::with_start(&[0.2])).unwrap();
/// assert!((f.nonlinear[0] - 0.7).abs() < 1e-10);
/// ```
pub struct PointModel {
    x: Vec<Vec<f64>>,
    p: usize,
    q: usize,
    offset: bool,
    pattern: Vec<(usize, usize)>,
    offset_pattern: Vec<usize>,
    f: Box<PointFn>,
    phi: Vec<f64>,
    dphi: Vec<f64>,
    dphi0: Vec<f64>,
}

impl PointModel {
    /// Creates a model from per-observation predictor rows `x`, sizes, patterns
    /// and the evaluation closure (see [`PointFn`]).
    pub fn new(
        x: Vec<Vec<f64>>,
        n_linear: usize,
        n_nonlinear: usize,
        has_offset: bool,
        pattern: Vec<(usize, usize)>,
        offset_pattern: Vec<usize>,
        f: Box<PointFn>,
    ) -> Self {
        let (m, mo) = (pattern.len(), offset_pattern.len());
        Self {
            x,
            p: n_linear,
            q: n_nonlinear,
            offset: has_offset,
            pattern,
            offset_pattern,
            f,
            phi: vec![0.0; n_linear],
            dphi: vec![0.0; m],
            dphi0: vec![0.0; mo],
        }
    }
}

impl SeparableModel for PointModel {
    fn n_obs(&self) -> usize {
        self.x.len()
    }
    fn n_linear(&self) -> usize {
        self.p
    }
    fn n_nonlinear(&self) -> usize {
        self.q
    }
    fn has_offset(&self) -> bool {
        self.offset
    }
    fn basis_derivative_pattern(&self) -> &[(usize, usize)] {
        &self.pattern
    }
    fn offset_derivative_pattern(&self) -> &[usize] {
        &self.offset_pattern
    }
    fn eval(&mut self, b: &[f64], out: &mut ModelEval) -> Result<(), ModelError> {
        for (i, xi) in self.x.iter().enumerate() {
            let mut phi0 = 0.0;
            self.phi.iter_mut().for_each(|v| *v = 0.0);
            self.dphi.iter_mut().for_each(|v| *v = 0.0);
            self.dphi0.iter_mut().for_each(|v| *v = 0.0);
            (self.f)(xi, b, &mut self.phi, &mut self.dphi, &mut phi0, &mut self.dphi0);
            for (j, v) in self.phi.iter().enumerate() {
                out.basis[(i, j)] = *v;
            }
            for (c, v) in self.dphi.iter().enumerate() {
                out.d_basis[(i, c)] = *v;
            }
            out.offset[i] = if self.offset { phi0 } else { 0.0 };
            for (c, v) in self.dphi0.iter().enumerate() {
                out.d_offset[(i, c)] = *v;
            }
        }
        Ok(())
    }
}

/// Why a [`PointModelBuilder`] could not build its model; each says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PointModelError {
    /// No evaluation closure was given.
    #[error("the model has no evaluation function; give one with `.eval(|x, b, phi, dphi, phi0, dphi0| ...)`")]
    MissingEval,
    /// There are no observations.
    #[error("the model has no observations; pass one row of predictors per observation")]
    NoObservations,
    /// Predictor rows of different lengths.
    #[error("observation {row} has {got} predictors but observation 0 has {expected}; every row needs the same predictors")]
    RaggedRows {
        /// Zero-based observation.
        row: usize,
        /// Its predictors.
        got: usize,
        /// Observation 0's.
        expected: usize,
    },
    /// A derivative refers to a basis function or parameter the model does not have.
    #[error("derivative (basis {j}, parameter {k}) is out of range: the model has {p} basis functions and {q} nonlinear parameters")]
    DerivativeOutOfRange {
        /// Basis function (`usize::MAX` for the offset).
        j: usize,
        /// Nonlinear parameter.
        k: usize,
        /// Basis functions.
        p: usize,
        /// Nonlinear parameters.
        q: usize,
    },
    /// A derivative given twice.
    #[error("derivative (basis {j}, parameter {k}) is declared twice; declare each once")]
    DuplicateDerivative {
        /// Basis function (`usize::MAX` for the offset).
        j: usize,
        /// Nonlinear parameter.
        k: usize,
    },
    /// Offset derivatives without an offset.
    #[error("offset derivatives are declared but the model has no offset; call `.offset()`")]
    OffsetDerivativeWithoutOffset,
}

/// Builds a [`PointModel`]: sizes first, then which derivatives may be nonzero, the offset and
/// the evaluation closure (see [`PointFn`] for its arguments); [`build`](Self::build) checks it.
pub struct PointModelBuilder {
    x: Vec<Vec<f64>>,
    p: usize,
    q: usize,
    offset: bool,
    pattern: Vec<(usize, usize)>,
    offset_pattern: Vec<usize>,
    f: Option<Box<PointFn>>,
}

impl PointModel {
    /// A builder for the model with predictor rows `x` (one per observation), `n_linear` basis
    /// functions and `n_nonlinear` nonlinear parameters.
    pub fn builder(x: Vec<Vec<f64>>, n_linear: usize, n_nonlinear: usize) -> PointModelBuilder {
        PointModelBuilder { x, p: n_linear, q: n_nonlinear, offset: false, pattern: vec![], offset_pattern: vec![], f: None }
    }
}

impl PointModelBuilder {
    /// Declares that `∂φ_j/∂b_k` may be nonzero (its value goes to `dphi` in declaration order).
    pub fn derivative(mut self, j: usize, k: usize) -> Self {
        self.pattern.push((j, k));
        self
    }
    /// The model has an offset `φ_0` (a term without a linear coefficient).
    pub fn offset(mut self) -> Self {
        self.offset = true;
        self
    }
    /// Declares that `∂φ_0/∂b_k` may be nonzero (its value goes to `dphi0` in declaration order).
    pub fn offset_derivative(mut self, k: usize) -> Self {
        self.offset_pattern.push(k);
        self
    }
    /// The evaluation closure, called once per observation.
    pub fn eval(mut self, f: impl FnMut(&[f64], &[f64], &mut [f64], &mut [f64], &mut f64, &mut [f64]) + Send + 'static) -> Self {
        self.f = Some(Box::new(f));
        self
    }
    /// Checks the model and builds it.
    pub fn build(self) -> Result<PointModel, PointModelError> {
        let f = self.f.ok_or(PointModelError::MissingEval)?;
        let first = self.x.first().ok_or(PointModelError::NoObservations)?.len();
        if let Some((row, r)) = self.x.iter().enumerate().find(|(_, r)| r.len() != first) {
            return Err(PointModelError::RaggedRows { row, got: r.len(), expected: first });
        }
        let (p, q) = (self.p, self.q);
        for (i, &(j, k)) in self.pattern.iter().enumerate() {
            if j >= p || k >= q {
                return Err(PointModelError::DerivativeOutOfRange { j, k, p, q });
            }
            if self.pattern[..i].contains(&(j, k)) {
                return Err(PointModelError::DuplicateDerivative { j, k });
            }
        }
        if !self.offset && !self.offset_pattern.is_empty() {
            return Err(PointModelError::OffsetDerivativeWithoutOffset);
        }
        let mut offset_pattern = self.offset_pattern;
        for (i, &k) in offset_pattern.iter().enumerate() {
            if k >= q {
                return Err(PointModelError::DerivativeOutOfRange { j: usize::MAX, k, p, q });
            }
            if offset_pattern[..i].contains(&k) {
                return Err(PointModelError::DuplicateDerivative { j: usize::MAX, k });
            }
        }
        offset_pattern.sort_unstable();
        Ok(PointModel::new(self.x, p, q, self.offset, self.pattern, offset_pattern, f))
    }
}
