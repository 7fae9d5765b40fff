//! Variable projection (Golub & Pereyra 1973; Kaufman 1975) and the "full" problem.
//!
//! For fixed nonlinear parameters `b`, the linear parameters solve the weighted
//! linear least-squares problem
//!
//! ```text
//! â(b) = argmin_a ‖W (z − Φ a)‖,   z = y − φ₀(b),   W = diag(1/σᵢ)
//! ```
//!
//! by a rank-revealing column-pivoted Householder QR `WΦ Π = Q R` (faer, low-level
//! API, block size 1, workspace reused). With `r₁₁` the leading block of numerical
//! rank `ρ` (|Rᵢᵢ| > ε·max(n,p)·|R₀₀|), the *variable projection functional* is the
//! residual
//!
//! ```text
//! r(b) = P⊥ W z,   P⊥ = I − Q₁Q₁ᵀ   (Q₁ = first ρ columns of Q).
//! ```
//!
//! Its exact Jacobian (Golub–Pereyra) is, with `D_k = W ∂Φ/∂b_k` and
//! `(WΦ)⁺ = Π R₁₁⁻¹ Q₁ᵀ`,
//!
//! ```text
//! J_k = −P⊥ (D_k â + W ∂φ₀/∂b_k) − ((WΦ)⁺)ᵀ D_kᵀ r.
//! ```
//!
//! Kaufman's approximation drops the second term. Both are assembled in the
//! `Q` basis: the first term is `Qᵀ v_k` with its first `ρ` rows zeroed; the second
//! lives only in those first `ρ` rows, where it equals `R₁₁⁻ᵀ Πᵀ D_kᵀ r`; one
//! application of `Q` then gives the whole Jacobian.
//!
//! The [`FullProblem`] instead fits `θ = (b, a)` jointly with residual
//! `W(y − Φ a − φ₀)` and Jacobian `−W [Σ_j a_j ∂φ_j/∂b_k + ∂φ₀/∂b_k | φ_j]`.

use crate::fit::FitError;
use crate::lm::LeastSquaresProblem;
use crate::model::{ModelError, ModelEval, SeparableModel};
use faer::dyn_stack::{MemBuffer, MemStack, StackReq};
use faer::linalg::householder as hh;
use faer::linalg::qr::col_pivoting::factor as cpqr;
use faer::{Conj, Mat, Par};

/// Which Jacobian of the variable projection functional to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JacobianKind {
    /// Exact Jacobian (Golub–Pereyra), the default.
    #[default]
    GolubPereyra,
    /// Kaufman's approximation (drops the `(Φ⁺)ᵀ D_kᵀ r` term).
    Kaufman,
}

/// Checks shapes and finiteness of the data; returns `W = 1/σ`.
pub(crate) fn check_data<M: SeparableModel + ?Sized>(
    model: &M,
    y: &[f64],
    sigma: Option<&[f64]>,
) -> Result<Vec<f64>, FitError> {
    let n = model.n_obs();
    if y.len() != n {
        return Err(FitError::DataLength { expected: n, got: y.len() });
    }
    if let Some(index) = y.iter().position(|v| !v.is_finite()) {
        return Err(FitError::NonFiniteData { index, value: y[index] });
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
    match sigma {
        None => Ok(vec![1.0; n]),
        Some(s) => {
            if s.len() != n {
                return Err(FitError::WeightsLength { expected: n, got: s.len() });
            }
            if let Some(index) = s.iter().position(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(FitError::BadSigma { index, value: s[index] });
            }
            Ok(s.iter().map(|v| 1.0 / v).collect())
        }
    }
}

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
    out.fill(0.0);
    for (c, &(j, k)) in pattern.iter().enumerate() {
        let aj = a[j];
        if aj != 0.0 {
            for i in 0..n {
                out[(i, k)] += aj * eval.d_basis[(i, c)];
            }
        }
    }
    for (c, &k) in offset_pattern.iter().enumerate() {
        for i in 0..n {
            out[(i, k)] += eval.d_offset[(i, c)];
        }
    }
    for j in 0..a.len() {
        for i in 0..n {
            out[(i, q + j)] = eval.basis[(i, j)];
        }
    }
    for c in 0..out.ncols() {
        for i in 0..n {
            out[(i, c)] *= w[i];
        }
    }
}

/// The variable projection functional `r(b)` as a [`LeastSquaresProblem`] in `b`.
pub struct VarProProblem<'m, M: SeparableModel + ?Sized> {
    model: &'m mut M,
    y: Vec<f64>,
    w: Vec<f64>,
    kind: JacobianKind,
    n: usize,
    p: usize,
    q: usize,
    has_offset: bool,
    pattern: Vec<(usize, usize)>,
    offset_pattern: Vec<usize>,
    eval: ModelEval,
    qr: Mat<f64>,
    h: Mat<f64>,
    perm: Vec<usize>,
    perm_inv: Vec<usize>,
    mem: MemBuffer,
    qtz: Mat<f64>,
    tmp: Mat<f64>,
    a: Vec<f64>,
    rank: usize,
    res: Vec<f64>,
    v: Mat<f64>,
    u: Vec<f64>,
    last_b: Vec<f64>,
    valid: bool,
    scale: f64,
}

impl<'m, M: SeparableModel + ?Sized> VarProProblem<'m, M> {
    /// Sets up workspaces for `model` with data `y` and optional per-point `σ`.
    pub fn new(
        model: &'m mut M,
        y: &[f64],
        sigma: Option<&[f64]>,
        kind: JacobianKind,
    ) -> Result<Self, FitError> {
        let w = check_data(&*model, y, sigma)?;
        let n = model.n_obs();
        let p = model.n_linear();
        let q = model.n_nonlinear();
        let size = n.min(p);
        let req = StackReq::any_of(&[
            cpqr::qr_in_place_scratch::<usize, f64>(n, p, 1, Par::Seq, Default::default()),
            hh::apply_block_householder_sequence_transpose_on_the_left_in_place_scratch::<f64>(n, 1, q.max(1)),
            hh::apply_block_householder_sequence_on_the_left_in_place_scratch::<f64>(n, 1, q.max(1)),
        ]);
        let eval = ModelEval::new(&*model);
        Ok(Self {
            y: y.to_vec(),
            w,
            kind,
            n,
            p,
            q,
            has_offset: model.has_offset(),
            pattern: model.basis_derivative_pattern().to_vec(),
            offset_pattern: model.offset_derivative_pattern().to_vec(),
            eval,
            qr: Mat::zeros(n, p),
            h: Mat::zeros(1, size),
            perm: vec![0; p],
            perm_inv: vec![0; p],
            mem: MemBuffer::new(req),
            qtz: Mat::zeros(n, 1),
            tmp: Mat::zeros(n, 1),
            a: vec![0.0; p],
            rank: 0,
            res: vec![0.0; n],
            v: Mat::zeros(n, q),
            u: vec![0.0; p * q],
            last_b: vec![f64::NAN; q],
            valid: false,
            scale: f64::NAN,
            model,
        })
    }

    /// Evaluates the model at `b`, solves for the linear parameters and forms
    /// the projected residual. Fails if the model fails or produces non-finite values.
    pub fn project(&mut self, b: &[f64]) -> Result<(), ModelError> {
        self.valid = false;
        self.model.eval(b, &mut self.eval)?;
        if !self.eval.all_finite() {
            return Err(ModelError::new("model produced non-finite values"));
        }
        let (n, p) = (self.n, self.p);
        let mut scale2 = 0.0;
        for i in 0..n {
            let off = if self.has_offset { self.eval.offset[i] } else { 0.0 };
            self.qtz[(i, 0)] = self.w[i] * (self.y[i] - off);
            scale2 += (self.w[i] * (self.y[i].abs() + off.abs())).powi(2);
        }
        self.scale = scale2.sqrt();
        if p == 0 {
            for i in 0..n {
                self.res[i] = self.qtz[(i, 0)];
            }
            self.rank = 0;
        } else {
            for j in 0..p {
                for i in 0..n {
                    self.qr[(i, j)] = self.w[i] * self.eval.basis[(i, j)];
                }
            }
            let mut stack = MemStack::new(&mut self.mem);
            cpqr::qr_in_place(
                self.qr.as_mut(),
                self.h.as_mut(),
                &mut self.perm,
                &mut self.perm_inv,
                Par::Seq,
                &mut stack,
                Default::default(),
            );
            let size = n.min(p);
            let r00 = if size > 0 { self.qr[(0, 0)].abs() } else { 0.0 };
            let tol = f64::EPSILON * (n.max(p) as f64) * r00;
            let mut rank = 0;
            while rank < size && self.qr[(rank, rank)].abs() > tol {
                rank += 1;
            }
            self.rank = rank;
            hh::apply_block_householder_sequence_transpose_on_the_left_in_place_with_conj(
                self.qr.as_ref().subcols(0, size),
                self.h.as_ref(),
                Conj::No,
                self.qtz.as_mut(),
                Par::Seq,
                &mut stack,
            );
            // Back substitution R11 c = (Qᵀz)_{0..ρ}; a = Π c.
            self.a.iter_mut().for_each(|v| *v = 0.0);
            for c in (0..rank).rev() {
                let mut s = self.qtz[(c, 0)];
                for i in c + 1..rank {
                    s -= self.qr[(c, i)] * self.a[self.perm[i]];
                }
                self.a[self.perm[c]] = s / self.qr[(c, c)];
            }
            // r = Q [0; (Qᵀz)_{ρ..n}]
            let t = &mut self.tmp;
            t.copy_from(&self.qtz);
            for c in 0..rank {
                t[(c, 0)] = 0.0;
            }
            hh::apply_block_householder_sequence_on_the_left_in_place_with_conj(
                self.qr.as_ref().subcols(0, size),
                self.h.as_ref(),
                Conj::No,
                t.as_mut(),
                Par::Seq,
                &mut stack,
            );
            for i in 0..n {
                self.res[i] = t[(i, 0)];
            }
        }
        if self.res.iter().any(|v| !v.is_finite()) || self.a.iter().any(|v| !v.is_finite()) {
            return Err(ModelError::new("non-finite residuals or linear parameters"));
        }
        self.last_b.copy_from_slice(b);
        self.valid = true;
        Ok(())
    }

    /// Linear parameters `â(b)` of the last [`project`](Self::project).
    pub fn linear_params(&self) -> &[f64] {
        &self.a
    }

    /// Numerical rank of `WΦ` at the last projection.
    pub fn basis_rank(&self) -> usize {
        self.rank
    }

    /// Weighted projected residual `r(b)` of the last projection.
    pub fn residual(&self) -> &[f64] {
        &self.res
    }

    /// The model evaluation of the last projection.
    pub fn model_eval(&self) -> &ModelEval {
        &self.eval
    }

    /// Weights `1/σᵢ`.
    pub fn weights(&self) -> &[f64] {
        &self.w
    }

    /// Computes the Jacobian `∂r/∂b` (column-major `n × q`) at the last projection.
    pub fn jacobian_at_last(&mut self, jac: &mut [f64]) {
        let (n, p, q) = (self.n, self.p, self.q);
        jac.iter_mut().for_each(|v| *v = 0.0);
        if p == 0 {
            for (c, &k) in self.offset_pattern.iter().enumerate() {
                for i in 0..n {
                    jac[i + k * n] = -self.w[i] * self.eval.d_offset[(i, c)];
                }
            }
            return;
        }
        self.v.fill(0.0);
        self.u.iter_mut().for_each(|v| *v = 0.0);
        for (c, &(j, k)) in self.pattern.iter().enumerate() {
            let aj = self.a[j];
            let mut dot = 0.0;
            for i in 0..n {
                let d = self.w[i] * self.eval.d_basis[(i, c)];
                self.v[(i, k)] += aj * d;
                dot += d * self.res[i];
            }
            self.u[j + k * p] += dot;
        }
        for (c, &k) in self.offset_pattern.iter().enumerate() {
            for i in 0..n {
                self.v[(i, k)] += self.w[i] * self.eval.d_offset[(i, c)];
            }
        }
        let size = n.min(p);
        let mut stack = MemStack::new(&mut self.mem);
        hh::apply_block_householder_sequence_transpose_on_the_left_in_place_with_conj(
            self.qr.as_ref().subcols(0, size),
            self.h.as_ref(),
            Conj::No,
            self.v.as_mut(),
            Par::Seq,
            &mut stack,
        );
        let rank = self.rank;
        for k in 0..q {
            for c in 0..rank {
                self.v[(c, k)] = 0.0;
            }
            if self.kind == JacobianKind::GolubPereyra {
                // Solve R11ᵀ s = (Πᵀ u_k)_{0..ρ}, store s in rows 0..ρ.
                for c in 0..rank {
                    let mut s = self.u[self.perm[c] + k * p];
                    for i in 0..c {
                        s -= self.qr[(i, c)] * self.v[(i, k)];
                    }
                    self.v[(c, k)] = s / self.qr[(c, c)];
                }
            }
        }
        hh::apply_block_householder_sequence_on_the_left_in_place_with_conj(
            self.qr.as_ref().subcols(0, size),
            self.h.as_ref(),
            Conj::No,
            self.v.as_mut(),
            Par::Seq,
            &mut stack,
        );
        for k in 0..q {
            for i in 0..n {
                jac[i + k * n] = -self.v[(i, k)];
            }
        }
    }
}

impl<M: SeparableModel + ?Sized> LeastSquaresProblem for VarProProblem<'_, M> {
    fn n_residuals(&self) -> usize {
        self.n
    }
    fn n_params(&self) -> usize {
        self.q
    }
    fn residuals(&mut self, x: &[f64], r: &mut [f64]) -> Result<(), ModelError> {
        self.project(x)?;
        r.copy_from_slice(&self.res);
        Ok(())
    }
    fn jacobian(&mut self, x: &[f64], jac: &mut [f64]) -> Result<(), ModelError> {
        if !self.valid || self.last_b != x {
            self.project(x)?;
        }
        self.jacobian_at_last(jac);
        Ok(())
    }
    fn rounding_scale(&self) -> Option<f64> {
        self.valid.then_some(self.scale)
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
