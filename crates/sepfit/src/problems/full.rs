//! All parameters `θ = (b, a)` fitted jointly by Levenberg–Marquardt (for comparison with
//! variable projection, and for models a user wants fitted that way).

use super::data::check_data;
use crate::error::FitError;
use crate::model::{ModelError, ModelEval, SeparableModel};
use crate::solvers::lm::LeastSquaresProblem;
use faer::Mat;

/// Writes the weighted derivative of the model values, `W ∂f/∂θ` with
/// `θ = (b, a)`, into `out` (`n × (q+p)`), given an evaluation and `a`.
pub(crate) fn weighted_full_jacobian(
    eval: &ModelEval,
    pattern: &[(usize, usize)],
    offset_pattern: &[usize],
    a: &[f64],
    w: &[f64],
    q: usize,
    out: &mut Mat<f64>,
) {
    let n = w.len();
    for k in 0..q {
        let col = &mut out.col_as_slice_mut(k)[..n];
        col.fill(0.0);
        for (c, &(j, kk)) in pattern.iter().enumerate() {
            let aj = a[j];
            if kk == k && aj != 0.0 {
                for (o, d) in col.iter_mut().zip(eval.d_basis.col_as_slice(c)) {
                    *o += aj * d;
                }
            }
        }
        for (c, &kk) in offset_pattern.iter().enumerate() {
            if kk == k {
                for (o, d) in col.iter_mut().zip(eval.d_offset.col_as_slice(c)) {
                    *o += d;
                }
            }
        }
        for (o, wi) in col.iter_mut().zip(w) {
            *o *= wi;
        }
    }
    for j in 0..a.len() {
        let col = &mut out.col_as_slice_mut(q + j)[..n];
        for ((o, b), wi) in col.iter_mut().zip(eval.basis.col_as_slice(j)).zip(w) {
            *o = b * wi;
        }
    }
}

/// All parameters `θ = (b, a)` fitted jointly: residual `W(y − Φa − φ₀)`.
pub struct FullProblem<'m, M: SeparableModel + ?Sized> {
    model: &'m mut M,
    y: Vec<f64>,
    w: Vec<f64>,
    q: usize,
    pattern: Vec<(usize, usize)>,
    offset_pattern: Vec<usize>,
    has_offset: bool,
    eval: ModelEval,
    jac: Mat<f64>,
    last: Vec<f64>,
    valid: bool,
    scale: f64,
}

impl<'m, M: SeparableModel + ?Sized> FullProblem<'m, M> {
    /// Sets up the joint problem for `model` with data `y` and optional `σ`.
    pub fn new(model: &'m mut M, y: &[f64], sigma: Option<&[f64]>) -> Result<Self, FitError> {
        let w = check_data(&*model, y, sigma)?;
        let (n, p, q) = (model.n_obs(), model.n_linear(), model.n_nonlinear());
        Ok(Self {
            y: y.to_vec(),
            w,
            q,
            pattern: model.basis_derivative_pattern().to_vec(),
            offset_pattern: model.offset_derivative_pattern().to_vec(),
            has_offset: model.has_offset(),
            eval: ModelEval::new(&*model),
            jac: Mat::zeros(n, p + q),
            last: vec![f64::NAN; p + q],
            valid: false,
            scale: f64::NAN,
            model,
        })
    }
}

impl<M: SeparableModel + ?Sized> LeastSquaresProblem for FullProblem<'_, M> {
    fn n_residuals(&self) -> usize {
        self.y.len()
    }
    fn n_params(&self) -> usize {
        self.last.len()
    }
    fn residuals(&mut self, x: &[f64], r: &mut [f64]) -> Result<(), ModelError> {
        self.valid = false;
        let (b, a) = x.split_at(self.q);
        self.model.eval(b, &mut self.eval)?;
        if !self.eval.all_finite() {
            return Err(ModelError::new("model produced non-finite values"));
        }
        let mut scale2 = 0.0;
        for i in 0..self.y.len() {
            let mut f = if self.has_offset { self.eval.offset[i] } else { 0.0 };
            let mut size = f.abs() + self.y[i].abs();
            for (j, aj) in a.iter().enumerate() {
                let t = aj * self.eval.basis[(i, j)];
                f += t;
                size += t.abs();
            }
            r[i] = self.w[i] * (self.y[i] - f);
            scale2 += (self.w[i] * size).powi(2);
        }
        self.scale = scale2.sqrt();
        self.last.copy_from_slice(x);
        self.valid = true;
        Ok(())
    }
    fn jacobian(&mut self, x: &[f64], jac: &mut [f64]) -> Result<(), ModelError> {
        if !self.valid || self.last != x {
            let mut tmp = vec![0.0; self.y.len()];
            self.residuals(x, &mut tmp)?;
        }
        let a = &x[self.q..];
        weighted_full_jacobian(&self.eval, &self.pattern, &self.offset_pattern, a, &self.w, self.q, &mut self.jac);
        let n = self.y.len();
        for c in 0..self.jac.ncols() {
            for i in 0..n {
                jac[i + c * n] = -self.jac[(i, c)];
            }
        }
        Ok(())
    }
    fn rounding_scale(&self) -> Option<f64> {
        self.valid.then_some(self.scale)
    }
}
