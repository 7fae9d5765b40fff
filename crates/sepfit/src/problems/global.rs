//! Variable projection with multiple right-hand sides: curves that share the nonlinear
//! parameters `b`, each with its own linear coefficients `a_c`, on a common independent
//! variable. One QR of the weighted basis `Φ(b)` per evaluation serves every curve,
//! `r_c = P⊥ y_c`, and the Golub–Pereyra Jacobian is stacked curve by curve.

use crate::linalg::qr::PivotedQr;
use crate::model::{ModelError, ModelEval, SeparableModel};
use crate::problems::varpro::CompactLayout;
use crate::solvers::lm::LeastSquaresProblem;

/// Variable projection with multiple right-hand sides, in compact form (see
/// [`crate::problems::varpro::VarProProblem`]): one QR of `[Φ | D]` (`D` the derivative columns) per
/// evaluation serves every curve. With `v_c = Qᵀ(y_c − φ₀)` and `K = p + m` factored columns,
/// curve `c` contributes `K + 1` rows: `r̃_c = (0_ρ, v_c[ρ..K], ‖v_c[K..n]‖)` and the Jacobian
/// rows `−(R₁₁⁻ᵀ Πᵀ u_c ; Σ a_cj R[ρ..K, D_jk] + R[ρ..K, D₀k] ; 0)`, `u_cj = R[:, D_jk]ᵀ r̃_c`.
/// The residual's last row, the part of `y_c` outside the span of `[Φ | D]`, is orthogonal to
/// every Jacobian column, so Levenberg–Marquardt sees the same `‖r‖`, `Jᵀr` and `JᵀJ` as
/// with the stacked `n·C`-row problem, at `C(K+1)` rows.
pub struct GlobalProblem<'m, M: SeparableModel + ?Sized> {
    model: &'m mut M,
    ys: Vec<Vec<f64>>,
    eval: ModelEval,
    qr: PivotedQr,
    n: usize,
    p: usize,
    q: usize,
    pattern: Vec<(usize, usize)>,
    opattern: Vec<usize>,
    /// Factored columns `K = min(n, p + m)`.
    k: usize,
    /// Linear coefficients, `a[c*p + j]`.
    a: Vec<f64>,
    /// Compact residuals, `res[c*(K+1) + i]`.
    res: Vec<f64>,
    /// Scratch of length `n`.
    v: Vec<f64>,
    last: Vec<f64>,
    valid: bool,
    kaufman: bool,
    /// Row weights `1/σ` common to every curve (`None`: unweighted).
    w: Option<Vec<f64>>,
}

impl<'m, M: SeparableModel + ?Sized> GlobalProblem<'m, M> {
    /// The problem of `model` (its independent variables common to every curve) with the
    /// responses `ys` (one per curve, each of the model's length); Kaufman's Jacobian if `kaufman`.
    pub fn new(model: &'m mut M, ys: Vec<Vec<f64>>, kaufman: bool) -> Self {
        let (n, p, q) = (model.n_obs(), model.n_linear(), model.n_nonlinear());
        let pattern = model.basis_derivative_pattern().to_vec();
        let opattern = model.offset_derivative_pattern().to_vec();
        let m = pattern.len() + opattern.len();
        let k = n.min(p + m);
        let nc = ys.len();
        GlobalProblem {
            eval: ModelEval::new(&*model),
            qr: PivotedQr::with_extra(n, p, m),
            model,
            ys,
            n,
            p,
            q,
            pattern,
            opattern,
            k,
            a: vec![0.0; p * nc],
            res: vec![0.0; (k + 1) * nc],
            v: vec![0.0; n],
            last: vec![f64::NAN; q],
            valid: false,
            kaufman,
            w: None,
        }
    }

    /// Weights every row by `w[i] = 1/σ_i`, the same for every curve (as the independent
    /// variables are): the residuals become `W(y_c − f_c)` and the RSS a χ². `w` must have the
    /// model's length (a shorter or longer one is ignored and the problem stays unweighted).
    pub fn with_weights(mut self, w: Vec<f64>) -> Self {
        self.w = (w.len() == self.n).then_some(w);
        self
    }

    /// Rows per curve.
    fn rows(&self) -> usize {
        self.k + 1
    }

    fn project(&mut self, b: &[f64]) -> Result<(), ModelError> {
        self.valid = false;
        self.model.eval(b, &mut self.eval)?;
        if !self.eval.all_finite() {
            return Err(ModelError::new("model produced non-finite values or derivatives"));
        }
        let (n, p, k) = (self.n, self.p, self.k);
        let w = self.w.as_deref();
        let put = |dst: &mut [f64], src: &[f64]| match w {
            None => dst.copy_from_slice(src),
            Some(w) => {
                for ((d, s), w) in dst.iter_mut().zip(src).zip(w) {
                    *d = w * s;
                }
            }
        };
        for j in 0..p {
            put(self.qr.col_mut(j), self.eval.basis.col_as_slice(j));
        }
        let mb = self.pattern.len();
        for c in 0..mb {
            put(self.qr.col_mut(p + c), self.eval.d_basis.col_as_slice(c));
        }
        for c in 0..self.opattern.len() {
            put(self.qr.col_mut(p + mb + c), self.eval.d_offset.col_as_slice(c));
        }
        self.qr.factor_with_next(mb + self.opattern.len());
        let rank = if p > 0 { self.qr.rank() } else { 0 };
        let has_offset = self.model.has_offset();
        let rows = k + 1;
        for (c, y) in self.ys.iter().enumerate() {
            let v = &mut self.v;
            if has_offset {
                for ((d, y), o) in v.iter_mut().zip(y).zip(&self.eval.offset) {
                    *d = y - o;
                }
            } else {
                v.copy_from_slice(y);
            }
            if let Some(w) = w {
                for (d, w) in v.iter_mut().zip(w) {
                    *d *= w;
                }
            }
            self.qr.apply_qt(v);
            if p > 0 {
                self.qr.solve_r(v, &mut self.a[c * p..(c + 1) * p]);
            }
            let r = &mut self.res[c * rows..(c + 1) * rows];
            r[..rank].fill(0.0);
            r[rank..k].copy_from_slice(&v[rank..k]);
            r[k] = v[k..n].iter().map(|x| x * x).sum::<f64>().sqrt();
        }
        if !crate::linalg::kernels::all_finite(&self.res) || !crate::linalg::kernels::all_finite(&self.a) {
            return Err(ModelError::new("non-finite residuals"));
        }
        self.last.copy_from_slice(b);
        self.valid = true;
        Ok(())
    }

    /// Linear coefficients of curve `c` at the last projection.
    pub fn linear(&self, c: usize) -> &[f64] {
        &self.a[c * self.p..(c + 1) * self.p]
    }

    /// Numerical rank of the basis at the last projection.
    pub fn basis_rank(&self) -> usize {
        if self.p > 0 { self.qr.rank() } else { 0 }
    }

    /// Uses Kaufman's Jacobian (whose `s²(JᵀJ)⁻¹` is the shared parameters' block of the full
    /// covariance) or the exact one.
    pub fn set_kaufman(&mut self, kaufman: bool) {
        self.kaufman = kaufman;
    }

    /// Per-curve residual sums of squares of the last projection.
    pub fn curve_rss(&self) -> Vec<f64> {
        self.res.chunks_exact(self.rows()).map(|r| r.iter().map(|v| v * v).sum()).collect()
    }
}

impl<M: SeparableModel + ?Sized> LeastSquaresProblem for GlobalProblem<'_, M> {
    fn n_residuals(&self) -> usize {
        self.res.len()
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
        if !self.valid || self.last != x {
            self.project(x)?;
        }
        let (p, q) = (self.p, self.q);
        let rows = self.rows();
        let total = self.res.len();
        let nc = self.ys.len();
        let rank = if p > 0 { self.qr.rank() } else { 0 };
        let layout = CompactLayout { qr: &self.qr, d_start: p, pattern: &self.pattern, offset_pattern: &self.opattern };
        let mut u = vec![0.0; p];
        for c in 0..nc {
            let ac = &self.a[c * p..(c + 1) * p];
            let rc = &self.res[c * rows..(c + 1) * rows];
            for kk in 0..q {
                let out = &mut jac[kk * total + c * rows..kk * total + (c + 1) * rows];
                layout.jacobian_column(ac, rc, rank, kk, !self.kaufman, &mut u, out);
            }
        }
        Ok(())
    }
}
