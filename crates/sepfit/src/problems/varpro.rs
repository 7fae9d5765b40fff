//! Variable projection (Golub & Pereyra 1973; Kaufman 1975) and the "full" problem.
//!
//! For fixed nonlinear parameters `b`, the linear parameters solve the weighted
//! linear least-squares problem
//!
//! ```text
//! â(b) = argmin_a ‖W (z − Φ a)‖,   z = y − φ₀(b),   W = diag(1/σᵢ)
//! ```
//!
//! by a rank-revealing column-pivoted Householder QR `WΦ Π = Q R` ([`crate::linalg::qr::PivotedQr`],
//! unblocked, for thin matrices; workspace reused). Loss-only evaluations call
//! [`SeparableModel::eval_values`]; derivatives are evaluated only when a Jacobian is needed. With `r₁₁` the leading block of numerical
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
//! Kaufman's approximation drops the second term. Both are assembled in the `Q` basis of
//! one QR of `[WΦ | Wz | D]` (`D` the weighted derivative columns): the first term is
//! `Qᵀ(D c_k)` with its first `ρ` rows zeroed, the second lives only in those first `ρ`
//! rows, where it equals `R₁₁⁻ᵀ Πᵀ D_kᵀ r`. Residual and Jacobian then occupy only the
//! first `p + 1 + m` coordinates, and Levenberg–Marquardt runs on that compact problem
//! (see [`VarProProblem`]); one application of `Q` gives the `n`-vectors when wanted.
//!
//! **Bounded linear parameters** ([`VarProProblem::set_linear_bounds`], e.g. `a ≥ 0`). The
//! inner problem becomes `â(b) = argmin_{l ≤ a ≤ u} ‖W(z − Φa)‖`. When the unconstrained `â`
//! is feasible nothing changes (the same operations, bit for bit). Otherwise the bounded
//! problem is solved by [`crate::linalg::bvls`] on the small triangular system that the QR
//! already gives (`‖WΦa − Wz‖² = ‖R Πᵀa − (Qᵀz)₁‖² + const`), and with the active set `B`
//! (coefficients on a bound `v_j`) the projection is redone on the free columns `F`:
//!
//! ```text
//! r(b) = P⊥_F W (z − Σ_{j∈B} v_j φ_j),     P⊥_F = I − Q_F Q_Fᵀ,
//! ```
//!
//! by the same QR with the columns of `B` zeroed (they fall beyond the numerical rank) and the
//! data column reduced by `Σ_B v_j Wφ_j`; `solve_r` then gives `a_F`, equal to the bounded
//! solution. For a fixed active set this is the variable projection functional of the model
//! with basis `Φ_F` and offset `φ₀ + Σ_B v_j φ_j`, so its Jacobian is the formula above with
//! `â_j = v_j` for `j ∈ B` in the first term (the bound columns act as part of the offset) and
//! the Golub–Pereyra term over the free columns only (those within the rank). Where the active
//! set changes, `r(b)` has a kink (it stays continuous: the bounded solution is continuous in
//! `b` for a full-rank basis).
//!
//! The [`FullProblem`](super::full::FullProblem) instead fits `θ = (b, a)` jointly with residual
//! `W(y − Φ a − φ₀)` and Jacobian `−W [Σ_j a_j ∂φ_j/∂b_k + ∂φ₀/∂b_k | φ_j]`.

use super::data::check_data_into;
use crate::error::FitError;
use crate::linalg::bvls::{Bvls, VarState};
use crate::linalg::kernels::{all_finite, dot, weighted_copy};
use crate::linalg::qr::PivotedQr;
use crate::model::{ModelError, ModelEval, SeparableModel};
use crate::solvers::lm::LeastSquaresProblem;
use faer::Mat;

/// Which Jacobian of the variable projection functional to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JacobianKind {
    /// Exact Jacobian (Golub–Pereyra), the default.
    #[default]
    GolubPereyra,
    /// Kaufman's approximation (drops the `(Φ⁺)ᵀ D_kᵀ r` term).
    Kaufman,
}

/// `z = W (y − o)`; returns the rounding scale `‖W(|y| + |o|)‖` (four accumulators).
fn weighted_difference(y: &[f64], o: &[f64], w: &[f64], z: &mut [f64]) -> f64 {
    let n = z.len();
    let (y, o, w) = (&y[..n], &o[..n], &w[..n]);
    let mut acc = [0.0f64; 4];
    let mut i = 0;
    while i + 4 <= n {
        for l in 0..4 {
            z[i + l] = w[i + l] * (y[i + l] - o[i + l]);
            let t = w[i + l] * (y[i + l].abs() + o[i + l].abs());
            acc[l] += t * t;
        }
        i += 4;
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    while i < n {
        z[i] = w[i] * (y[i] - o[i]);
        let t = w[i] * (y[i].abs() + o[i].abs());
        s += t * t;
        i += 1;
    }
    s.sqrt()
}

/// The variable projection functional `r(b)` as a [`LeastSquaresProblem`] in `b`.
///
/// **Compact form** ([`VarProProblem::compact`], what [`crate::fit()`] uses). One Householder QR
/// of the `n × (p + 1 + m)` matrix `A = [WΦ | Wz | D]` (the basis pivoted, then the data column,
/// then the `m` weighted derivative columns `D_c = W ∂φ_j/∂b_k` of the pattern and
/// `W ∂φ₀/∂b_k`) gives every quantity of a Levenberg–Marquardt step in `R`:
///
/// * the residual is `r = Q r̃` with `r̃ = (0_ρ, R[ρ..=p, z], 0, …)`, so `‖r‖ = ‖r̃‖`;
/// * the first Jacobian term is `P⊥ D c_k = Q (0_ρ, (Σ_c C_ck R[:, D_c])_{ρ..})`;
/// * `D_cᵀ r = R[:, D_c]ᵀ r̃`, so the Golub–Pereyra term is `Q (R₁₁⁻ᵀ Πᵀ u_k, 0)`.
///
/// Residual and Jacobian both live in the first `p + 1 + m` coordinates of `Q`, and the
/// problem handed to Levenberg–Marquardt has that many rows instead of `n`: orthogonal
/// changes of basis leave `‖r + J δ‖`, `Jᵀr` and `JᵀJ` unchanged, so the iteration is the same
/// one, at a cost of one QR per evaluation (`≈ 2n(p+1)²` flops for the residual,
/// `≈ 4n(p+1)m + 2nm²` more for the Jacobian) and nothing else of size `n`. The residual of a
/// trial point needs only the first `p + 1` columns; the derivative columns are factored when
/// the solver asks for the Jacobian there.
///
/// **Expanded form** ([`VarProProblem::new`]): the same quantities multiplied by `Q`, the
/// residual and Jacobian as `n`-vectors (for finite-difference checks and for users who want
/// them).
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
    /// The most recent projection.
    cur: Projection,
    /// The projection before it if the Jacobian was computed there (an accepted iterate of
    /// the solver, which then tries a step that it may reject): kept so that the solution's
    /// statistics need no new evaluation when the solver ends at that iterate.
    prev: Projection,
    /// Rows of the compact problem, `min(n, p + 1 + m)`.
    nr: usize,
    compact: bool,
    /// `n` zeros (the offset of a model without one).
    zeros: Vec<f64>,
    /// `W y` and its rounding scale `‖W|y|‖`: the data column of every evaluation of a model
    /// without offset, computed once.
    wy: Vec<f64>,
    wy_scale: f64,
    /// Compact Jacobian, column-major `nr × q`.
    jred: Vec<f64>,
    u: Vec<f64>,
    /// Bounds of the linear parameters and their workspace (kept between problems).
    bounds: Option<LinearBounds>,
    /// Whether `bounds` apply (some bound is finite).
    bounded: bool,
}

/// Bounds `l ≤ a ≤ u` of the linear parameters and the workspace of the bounded solve, in the
/// pivoted order of the current QR.
#[derive(Clone)]
struct LinearBounds {
    lower: Vec<f64>,
    upper: Vec<f64>,
    solver: Bvls,
    /// The leading `m × p` block of `R` (`m = min(n, p)`), column-major.
    mat: Vec<f64>,
    rhs: Vec<f64>,
    lo: Vec<f64>,
    hi: Vec<f64>,
    x: Vec<f64>,
    state: Vec<VarState>,
}

impl LinearBounds {
    fn feasible(&self, a: &[f64]) -> bool {
        a.iter().zip(self.lower.iter().zip(&self.upper)).all(|(v, (l, u))| *l <= *v && *v <= *u)
    }
}

/// The buffers of a [`VarProProblem`], kept between problems of the same shape so that
/// fitting many curves allocates nothing per curve (see [`crate::fit::FitWorkspace`]).
pub(crate) struct VarProBuffers {
    shape: (usize, usize, usize, Vec<(usize, usize)>, Vec<usize>),
    y: Vec<f64>,
    w: Vec<f64>,
    cur: Projection,
    prev: Projection,
    zeros: Vec<f64>,
    wy: Vec<f64>,
    jred: Vec<f64>,
    u: Vec<f64>,
    bounds: Option<LinearBounds>,
}

impl VarProBuffers {
    /// Number of observations these buffers are for.
    pub(crate) fn n_obs(&self) -> usize {
        self.shape.0
    }
}

/// Everything computed at one `b`.
#[derive(Clone)]
struct Projection {
    eval: ModelEval,
    /// Whether `eval` holds derivatives at `last_b` (not only values).
    derivs_valid: bool,
    /// QR of `[WΦ | Wz | D]`.
    qr: PivotedQr,
    /// Whether the derivative columns of `qr` are factored at `last_b`.
    derivs_factored: bool,
    a: Vec<f64>,
    /// Numerical rank of the factored basis (the free columns when some are on a bound).
    rank: usize,
    /// Numerical rank of the whole weighted basis `WΦ`.
    full_rank: usize,
    /// Where each linear parameter stands relative to its bounds.
    state: Vec<VarState>,
    /// Linear parameters on a bound (their columns are zeroed in `qr`).
    n_bound: usize,
    /// Compact residual `r̃` (length `nr`).
    res: Vec<f64>,
    /// `‖r‖²`.
    rss: f64,
    scale: f64,
    last_b: Vec<f64>,
    valid: bool,
}

impl<'m, M: SeparableModel + ?Sized> VarProProblem<'m, M> {
    /// Sets up workspaces for `model` with data `y` and optional per-point `σ`; the residual
    /// and Jacobian are `n`-vectors (the expanded form).
    pub fn new(
        model: &'m mut M,
        y: &[f64],
        sigma: Option<&[f64]>,
        kind: JacobianKind,
    ) -> Result<Self, FitError> {
        Self::with_buffers(model, y, sigma, kind, false, None)
    }

    /// Sets up the problem, reusing `buffers` of an earlier problem when the shapes agree.
    pub(crate) fn with_buffers(
        model: &'m mut M,
        y: &[f64],
        sigma: Option<&[f64]>,
        kind: JacobianKind,
        compact: bool,
        buffers: Option<VarProBuffers>,
    ) -> Result<Self, FitError> {
        let n = model.n_obs();
        let p = model.n_linear();
        let q = model.n_nonlinear();
        let shape = (n, p, q, model.basis_derivative_pattern().to_vec(), model.offset_derivative_pattern().to_vec());
        let mut b = match buffers {
            Some(b) if b.shape == shape => b,
            _ => {
                let eval = ModelEval::new(&*model);
                let m = shape.3.len() + shape.4.len();
                let nr = n.min(p + 1 + m);
                let cur = Projection {
                    eval,
                    derivs_valid: false,
                    qr: PivotedQr::with_extra(n, p, 1 + m),
                    derivs_factored: false,
                    a: vec![0.0; p],
                    rank: 0,
                    full_rank: 0,
                    state: vec![VarState::Free; p],
                    n_bound: 0,
                    res: vec![0.0; nr],
                    rss: f64::NAN,
                    scale: f64::NAN,
                    last_b: vec![f64::NAN; q],
                    valid: false,
                };
                VarProBuffers {
                    shape: shape.clone(),
                    y: Vec::with_capacity(n),
                    w: Vec::with_capacity(n),
                    prev: cur.clone(),
                    cur,
                    zeros: vec![0.0; n],
                    wy: vec![0.0; n],
                    jred: vec![0.0; nr * q],
                    u: vec![0.0; p * q],
                    bounds: None,
                }
            }
        };
        check_data_into(&*model, y, sigma, &mut b.w)?;
        b.y.clear();
        b.y.extend_from_slice(y);
        b.cur.valid = false;
        b.prev.valid = false;
        let wy_scale = weighted_difference(&b.y, &b.zeros, &b.w, &mut b.wy);
        let (_, _, _, pattern, offset_pattern) = shape;
        let nr = n.min(p + 1 + pattern.len() + offset_pattern.len());
        Ok(Self {
            y: b.y,
            w: b.w,
            kind,
            n,
            p,
            q,
            has_offset: model.has_offset(),
            pattern,
            offset_pattern,
            prev: b.prev,
            cur: b.cur,
            nr,
            compact,
            zeros: b.zeros,
            wy: b.wy,
            wy_scale,
            jred: b.jred,
            u: b.u,
            // Kept for their workspace (the shape is the same); unbounded until set again.
            bounds: b.bounds,
            bounded: false,
            model,
        })
    }

    /// Releases the model and returns the buffers for a later problem of the same shape.
    pub(crate) fn into_buffers(self) -> VarProBuffers {
        VarProBuffers {
            shape: (self.n, self.p, self.q, self.pattern, self.offset_pattern),
            y: self.y,
            w: self.w,
            cur: self.cur,
            prev: self.prev,
            zeros: self.zeros,
            wy: self.wy,
            jred: self.jred,
            u: self.u,
            bounds: self.bounds,
        }
    }

    /// As [`new`](Self::new), in the compact form: residual and Jacobian in the first
    /// `min(n, p + 1 + m)` coordinates of `Q` (see the type's docs).
    pub fn compact(model: &'m mut M, y: &[f64], sigma: Option<&[f64]>, kind: JacobianKind) -> Result<Self, FitError> {
        Self::with_buffers(model, y, sigma, kind, true, None)
    }

    /// The compact problem with the exact Jacobian and the weights and linear bounds of
    /// `options`: the reduced loss at trial `b` as a fit with those options sees it (a search's
    /// samples, a batch's learned starts, the projection of a Poisson fit's start).
    pub fn compact_for(model: &'m mut M, y: &[f64], options: &crate::fit::FitOptions) -> Result<Self, FitError> {
        let mut prob = Self::compact(model, y, options.sigma.as_deref(), JacobianKind::GolubPereyra)?;
        if let (Some(lo), Some(hi)) = (&options.linear_lower, &options.linear_upper) {
            prob.set_linear_bounds(lo, hi)?;
        }
        Ok(prob)
    }

    /// Bounds `lower ≤ a ≤ upper` on the linear parameters (`±∞` for none; length `p`): every
    /// later projection solves the bounded inner problem (see the module docs). Fails if a
    /// length is wrong, a bound is NaN or `lower > upper`.
    pub fn set_linear_bounds(&mut self, lower: &[f64], upper: &[f64]) -> Result<(), FitError> {
        let p = self.p;
        for (which, v) in [("lower", lower), ("upper", upper)] {
            if v.len() != p {
                return Err(FitError::LinearBoundsLength { which, expected: p, got: v.len() });
            }
        }
        for j in 0..p {
            if !(lower[j] <= upper[j]) || lower[j] == f64::INFINITY || upper[j] == f64::NEG_INFINITY {
                return Err(FitError::InvalidLinearBounds { index: j, lower: lower[j], upper: upper[j] });
            }
        }
        let m = self.n.min(p);
        let lb = self.bounds.get_or_insert_with(|| LinearBounds {
            lower: vec![0.0; p],
            upper: vec![0.0; p],
            solver: Bvls::new(m, p),
            mat: vec![0.0; m * p],
            rhs: vec![0.0; m],
            lo: vec![0.0; p],
            hi: vec![0.0; p],
            x: vec![0.0; p],
            state: vec![VarState::Free; p],
        });
        lb.lower.copy_from_slice(lower);
        lb.upper.copy_from_slice(upper);
        self.bounded = lower.iter().chain(upper).any(|v| v.is_finite());
        self.cur.valid = false;
        self.prev.valid = false;
        Ok(())
    }

    /// Where each linear parameter stands relative to its bounds at the last projection
    /// (all [`VarState::Free`] without bounds).
    pub fn linear_state(&self) -> &[VarState] {
        &self.cur.state
    }

    /// Whether residuals and Jacobians are in the compact form.
    pub fn is_compact(&self) -> bool {
        self.compact
    }

    /// Evaluates the model at `b`, solves for the linear parameters and forms
    /// the projected residual. Fails if the model fails or produces non-finite values.
    pub fn project(&mut self, b: &[f64]) -> Result<(), ModelError> {
        self.project_with(b, false)
    }

    /// [`project`](Self::project), evaluating the model's derivatives too when `derivatives`
    /// (the solver's residual calls: most are followed by a Jacobian at the same point, and
    /// the full evaluation costs little more than values alone, shared subexpressions such
    /// as `exp(-t/τ)` being computed once).
    fn project_with(&mut self, b: &[f64], derivatives: bool) -> Result<(), ModelError> {
        if self.cur.valid && self.cur.last_b == b && (self.cur.derivs_valid || !derivatives) {
            return Ok(());
        }
        if self.prev.valid && self.prev.last_b == b && (self.prev.derivs_valid || !derivatives) {
            std::mem::swap(&mut self.cur, &mut self.prev);
            return Ok(());
        }
        if self.cur.valid && self.cur.derivs_factored {
            std::mem::swap(&mut self.cur, &mut self.prev);
        }
        self.cur.valid = false;
        self.cur.derivs_valid = false;
        self.cur.derivs_factored = false;
        if derivatives {
            self.model.eval(b, &mut self.cur.eval)?;
        } else {
            self.model.eval_values(b, &mut self.cur.eval)?;
        }
        let p = self.p;
        if !self.fill_columns(false) {
            return Err(ModelError::new("model produced non-finite values"));
        }
        self.cur.qr.factor_with_next(1);
        self.cur.rank = self.cur.qr.rank();
        self.cur.full_rank = self.cur.rank;
        self.cur.n_bound = 0;
        // a = Π R₁₁⁻¹ (Qᵀz)_{0..ρ};  r̃ = (0_ρ, (Qᵀz)_{ρ..=p}, 0 …).
        if p > 0 {
            let zc = self.cur.qr.r_col(p);
            self.cur.qr.solve_r(zc, &mut self.cur.a);
        }
        // (Also clears the states a reused buffer may hold from an earlier problem.)
        self.cur.state.fill(VarState::Free);
        if self.bounded && !self.bounds.as_ref().is_some_and(|lb| lb.feasible(&self.cur.a)) {
            self.constrain()?;
        }
        let rank = self.cur.rank;
        let zc = self.cur.qr.r_col(p);
        self.cur.res.fill(0.0);
        self.cur.res[rank..zc.len()].copy_from_slice(&zc[rank..]);
        self.cur.rss = self.cur.res.iter().map(|v| v * v).sum();
        if !self.cur.rss.is_finite() || !all_finite(&self.cur.a) {
            return Err(ModelError::new("non-finite residuals or linear parameters"));
        }
        self.cur.last_b.copy_from_slice(b);
        self.cur.valid = true;
        // Derivatives are checked for finiteness when they are first used.
        self.cur.derivs_valid = derivatives;
        Ok(())
    }

    /// Fills the columns `[WΦ | Wz]` of the QR from the current evaluation and sets the
    /// rounding scale; with `bounded`, the columns of the coefficients on a bound (`state`) are
    /// zeroed and `Σ v_j Wφ_j` is subtracted from `Wz`. Returns whether everything is finite.
    fn fill_columns(&mut self, bounded: bool) -> bool {
        let (n, p) = (self.n, self.p);
        let cur = &mut self.cur;
        // Column p: z = W (y − φ₀), and the rounding scale ‖W(|y| + |φ₀|)‖ (not finite if φ₀
        // is not).
        if self.has_offset {
            let offset = &cur.eval.offset[..n];
            cur.scale = weighted_difference(&self.y[..n], offset, &self.w[..n], cur.qr.col_mut(p));
        } else {
            cur.qr.col_mut(p).copy_from_slice(&self.wy);
            cur.scale = self.wy_scale;
        }
        let mut finite = cur.scale.is_finite();
        for j in 0..p {
            if bounded && cur.state[j] != VarState::Free {
                let v = cur.a[j];
                if v != 0.0 {
                    let phi = cur.eval.basis.col_as_slice(j);
                    let z = cur.qr.col_mut(p);
                    for i in 0..n {
                        z[i] -= v * (self.w[i] * phi[i]);
                    }
                }
                cur.qr.col_mut(j).fill(0.0);
            } else {
                finite &= weighted_copy(cur.eval.basis.col_as_slice(j), &self.w, cur.qr.col_mut(j));
            }
        }
        finite
    }

    /// The bounded inner problem at the current evaluation, whose unconstrained solution
    /// `cur.a` is infeasible: bounded least squares on the triangular system of the QR, then
    /// (when some coefficient ends on a bound) the QR again without the bound columns and
    /// with the data column reduced by them (see the module docs).
    fn constrain(&mut self) -> Result<(), ModelError> {
        let (n, p) = (self.n, self.p);
        let m = n.min(p);
        let Some(lb) = self.bounds.as_mut() else { return Ok(()) };
        let cur = &mut self.cur;
        let perm = cur.qr.perm();
        for c in 0..p {
            let rc = cur.qr.r_col(c);
            let col = &mut lb.mat[c * m..(c + 1) * m];
            col.fill(0.0);
            let len = rc.len().min(m);
            col[..len].copy_from_slice(&rc[..len]);
            let j = perm[c];
            (lb.lo[c], lb.hi[c], lb.x[c]) = (lb.lower[j], lb.upper[j], cur.a[j]);
        }
        let zc = cur.qr.r_col(p);
        lb.rhs.copy_from_slice(&zc[..m]);
        lb.solver
            .solve(&lb.mat, &lb.rhs, &lb.lo, &lb.hi, &mut lb.x, &mut lb.state)
            .map_err(|e| ModelError::new(format!("bounded linear least squares: {e}")))?;
        let mut n_bound = 0;
        for c in 0..p {
            let j = perm[c];
            cur.state[j] = lb.state[c];
            cur.a[j] = lb.x[c];
            n_bound += usize::from(lb.state[c] != VarState::Free);
        }
        cur.n_bound = n_bound;
        if n_bound == 0 {
            // A rank-deficient basis with a feasible least-squares solution other than the
            // basic one: the same residual.
            return Ok(());
        }
        if !self.fill_columns(true) {
            return Err(ModelError::new("model produced non-finite values"));
        }
        let cur = &mut self.cur;
        cur.qr.factor_with_next(1);
        cur.rank = cur.qr.rank();
        // a_F = Π R₁₁⁻¹ (Qᵀz')_{0..ρ}; the bound coefficients keep their values.
        // (`lb.x` keeps the bounded solution, in the original order, meanwhile.)
        let Some(lb) = self.bounds.as_mut() else { return Ok(()) };
        lb.x.copy_from_slice(&cur.a);
        cur.qr.solve_r(cur.qr.r_col(p), &mut cur.a);
        for j in 0..p {
            if cur.state[j] != VarState::Free {
                cur.a[j] = lb.x[j];
            }
        }
        Ok(())
    }

    /// Linear parameters `â(b)` of the last [`project`](Self::project).
    pub fn linear_params(&self) -> &[f64] {
        &self.cur.a
    }

    /// Numerical rank of `WΦ` at the last projection.
    pub fn basis_rank(&self) -> usize {
        self.cur.full_rank
    }

    /// Weighted residual sum of squares `‖r(b)‖²` of the last projection.
    pub fn rss(&self) -> f64 {
        self.cur.rss
    }

    /// The weighted projected residual `r(b)` of the last projection as an `n`-vector.
    pub fn residual(&self) -> Vec<f64> {
        let mut r = vec![0.0; self.n];
        r[..self.nr].copy_from_slice(&self.cur.res);
        self.cur.qr.apply_q(&mut r);
        r
    }

    /// The model evaluation of the last projection.
    pub fn model_eval(&self) -> &ModelEval {
        &self.cur.eval
    }

    /// Whether the last projection succeeded at exactly `b` (its results are then current).
    pub fn is_projected_at(&self, b: &[f64]) -> bool {
        self.cur.valid && self.cur.last_b == b
    }

    /// Evaluates the model's derivatives at the last projection if that has not been done
    /// yet, checks that they are finite, and factors the derivative columns.
    fn ensure_derivatives(&mut self) -> Result<(), ModelError> {
        if !self.cur.derivs_valid {
            self.model.eval(&self.cur.last_b, &mut self.cur.eval)?;
            self.cur.derivs_valid = true;
        }
        if !self.cur.derivs_factored {
            let (p, mb) = (self.p, self.pattern.len());
            let cur = &mut self.cur;
            let mut finite = true;
            for c in 0..mb {
                finite &= weighted_copy(cur.eval.d_basis.col_as_slice(c), &self.w, cur.qr.col_mut(p + 1 + c));
            }
            for c in 0..self.offset_pattern.len() {
                finite &= weighted_copy(cur.eval.d_offset.col_as_slice(c), &self.w, cur.qr.col_mut(p + 1 + mb + c));
            }
            if !finite {
                return Err(ModelError::new("model derivatives are not finite"));
            }
            cur.qr.factor_next(mb + self.offset_pattern.len());
            cur.derivs_factored = true;
        }
        Ok(())
    }

    /// The full model evaluation (values and derivatives) at the last projection, consuming
    /// the problem (no copy).
    pub fn into_full_eval(mut self) -> Result<ModelEval, ModelError> {
        self.ensure_derivatives()?;
        Ok(self.cur.eval)
    }

    /// The full model evaluation (values and derivatives) at the last projection.
    pub fn full_eval(&mut self) -> Result<&ModelEval, ModelError> {
        self.ensure_derivatives()?;
        Ok(&self.cur.eval)
    }

    /// Whether the model has an offset `φ₀`.
    pub fn has_offset(&self) -> bool {
        self.has_offset
    }

    /// Weights `1/σᵢ`.
    pub fn weights(&self) -> &[f64] {
        &self.w
    }

    /// Where the derivative columns sit in the factored `[WΦ | Wz | D]`.
    fn layout(&self) -> CompactLayout<'_> {
        CompactLayout { qr: &self.cur.qr, d_start: self.p + 1, pattern: &self.pattern, offset_pattern: &self.offset_pattern }
    }

    /// Computes the compact Jacobian (`nr × q`, in `jred`) at the last projection, evaluating
    /// the model's derivatives there if that has not been done yet.
    fn compact_jacobian(&mut self) -> Result<(), ModelError> {
        let (p, q, nr, rank) = (self.p, self.q, self.nr, self.cur.rank);
        self.ensure_derivatives()?;
        let mut jred = std::mem::take(&mut self.jred);
        let mut u = std::mem::take(&mut self.u);
        let gp = self.kind == JacobianKind::GolubPereyra;
        for k in 0..q {
            let layout = self.layout();
            layout.jacobian_column(&self.cur.a, &self.cur.res, rank, k, gp, &mut u[..p], &mut jred[k * nr..(k + 1) * nr]);
        }
        self.jred = jred;
        self.u = u;
        Ok(())
    }

    /// Computes the Jacobian `∂r/∂b` at the last projection (column-major, `nr × q` in the
    /// compact form, `n × q` in the expanded one), evaluating the model's derivatives there
    /// if that has not been done yet.
    pub fn jacobian_at_last(&mut self, jac: &mut [f64]) -> Result<(), ModelError> {
        self.compact_jacobian()?;
        let (n, nr) = (self.n, self.nr);
        if self.compact {
            jac[..nr * self.q].copy_from_slice(&self.jred);
        } else {
            for k in 0..self.q {
                let col = &mut jac[k * n..(k + 1) * n];
                col.fill(0.0);
                col[..nr].copy_from_slice(&self.jred[k * nr..(k + 1) * nr]);
                self.cur.qr.apply_q(col);
            }
        }
        Ok(())
    }

    /// The weighted Jacobian of the model values with respect to all parameters
    /// `θ = (b, a)` at the last projection, `Qᵀ W [∂f/∂b_k | φ_j]`, as a `nr × (q + p)` matrix:
    /// the same singular values and `JᵀJ` as the `n × (q + p)` one, for statistics.
    ///
    /// With linear parameters on a bound (whose columns are not in the QR), the `n × (q + p)`
    /// matrix `W [∂f/∂b_k | φ_j]` itself.
    pub fn compact_full_jacobian(&mut self) -> Result<Mat<f64>, ModelError> {
        self.ensure_derivatives()?;
        let (n, p, q, nr) = (self.n, self.p, self.q, self.nr);
        if self.cur.n_bound > 0 {
            let mut out = Mat::zeros(n, q + p);
            let mut col = vec![0.0; n];
            for k in 0..q {
                col.fill(0.0);
                self.layout().add_model_derivative(&self.cur.a, k, 0, &mut col);
                self.cur.qr.apply_q(&mut col);
                out.col_as_slice_mut(k).copy_from_slice(&col);
            }
            for j in 0..p {
                let phi = self.cur.eval.basis.col_as_slice(j);
                for (i, o) in out.col_as_slice_mut(q + j).iter_mut().enumerate() {
                    *o = self.w[i] * phi[i];
                }
            }
            return Ok(out);
        }
        let mut out = Mat::zeros(nr, q + p);
        let mut col = vec![0.0; nr];
        for k in 0..q {
            col.fill(0.0);
            self.layout().add_model_derivative(&self.cur.a, k, 0, &mut col);
            out.col_as_slice_mut(k).copy_from_slice(&col);
        }
        for (pos, &j) in self.cur.qr.perm().iter().enumerate() {
            let rc = self.cur.qr.r_col(pos);
            out.col_as_slice_mut(q + j)[..rc.len()].copy_from_slice(rc);
        }
        Ok(out)
    }

    /// Standard errors of all parameters `θ = (b, a)` (in that order) at the last projection,
    /// `s √diag((JᵀJ)⁻¹)` with `s² = rss/dof`, from the factors the fit already has: in the
    /// coordinates of the basis QR the Jacobian, its columns reordered as `(a in pivot
    /// order, b)`, is `[[R₁₁, T], [0, B]]` with `R₁₁` the basis's triangular factor, so only
    /// the small `B` (rows `p..nr` of the derivative columns) needs a QR, `B = Q₂R₂₂`, and
    /// `R = [[R₁₁, T], [0, R₂₂]]` is the triangular factor of the whole Jacobian. The error
    /// of a parameter is `s` times the norm of its row of `R⁻¹`. As
    /// [`crate::stats::std_errors_qr`] (same numbers to rounding, and the same inverse and
    /// acceptance test, `triangular_std_errors`), only for a clearly well-conditioned
    /// column-equilibrated Jacobian (`κ_F ≤ 1e8`), with column sums of
    /// squares in `[1e-280, 1e280]`, a full-rank basis, no linear parameter on a bound and at
    /// most 8 parameters and 32 compact rows (stack buffers, no allocation but the result):
    /// `None` otherwise, and the caller takes the general route.
    pub(crate) fn lean_std_errors(&mut self, dof: usize) -> Option<Vec<f64>> {
        const MAX_M: usize = 8;
        const MAX_ROWS: usize = 32;
        let (p, q, nr) = (self.p, self.q, self.nr);
        let m = p + q;
        if dof == 0 || m == 0 || m > MAX_M || nr > MAX_ROWS || nr < m || self.cur.n_bound > 0 || self.cur.rank < p {
            return None;
        }
        self.ensure_derivatives().ok()?;
        // J' = [R₁₁ columns (pivot order) | b columns], column-major nr × m.
        let mut j = [0.0f64; MAX_M * MAX_ROWS];
        for pos in 0..p {
            let rc = self.cur.qr.r_col(pos);
            j[pos * nr..pos * nr + rc.len()].copy_from_slice(rc);
        }
        for k in 0..q {
            let col = &mut j[(p + k) * nr..(p + k + 1) * nr];
            self.layout().add_model_derivative(&self.cur.a, k, 0, col);
        }
        // Column norms (kept by the orthogonal transformations below), safely in range.
        let mut d = [0.0f64; MAX_M];
        for c in 0..m {
            let ss: f64 = j[c * nr..(c + 1) * nr].iter().map(|v| v * v).sum();
            if !(1e-280..=1e280).contains(&ss) {
                return None;
            }
            d[c] = ss.sqrt();
        }
        // Householder QR of rows p..nr of the b columns (unpivoted), in place.
        for c in p..m {
            let x = &j[c * nr + c..(c + 1) * nr];
            let alpha = x[0];
            let tail: f64 = x[1..].iter().map(|v| v * v).sum();
            if tail == 0.0 {
                continue;
            }
            let norm = (alpha * alpha + tail).sqrt();
            let beta = if alpha >= 0.0 { -norm } else { norm };
            // v = x − β e₁ (v₀ = α − β), H = I − τ v vᵀ with τ = (β − α)/(β v₀)... as v₀-scaled:
            let v0 = alpha - beta;
            let tau = (beta - alpha) / beta;
            let mut v = [0.0f64; MAX_ROWS];
            v[0] = 1.0;
            for (i, x) in x[1..].iter().enumerate() {
                v[i + 1] = x / v0;
            }
            let len = nr - c;
            j[c * nr + c] = beta;
            for i in 1..len {
                j[c * nr + c + i] = 0.0;
            }
            for cc in c + 1..m {
                let col = &mut j[cc * nr + c..cc * nr + nr];
                let w: f64 = col.iter().zip(&v[..len]).map(|(a, b)| a * b).sum::<f64>() * tau;
                for (a, b) in col.iter_mut().zip(&v[..len]) {
                    *a -= w * b;
                }
            }
        }
        let mut x = [0.0f64; MAX_M * MAX_M];
        let mut se = vec![0.0; m];
        let perm = self.cur.qr.perm();
        let r = |i: usize, c: usize| j[c * nr + i];
        let accepted = crate::stats::triangular_std_errors(m, r, &d[..m], self.cur.rss / dof as f64, &mut x, |i, e| {
            se[if i < p { q + perm[i] } else { i - p }] = e;
        });
        (accepted && se.iter().all(|v| v.is_finite())).then_some(se)
    }
}

/// The derivative columns `D` of a factored `[WΦ | … | D]` (from column `d_start`: the
/// basis derivatives in `pattern` order, then the offset derivatives), read from `R` to
/// assemble compact Jacobians; shared by [`VarProProblem`] and the global fit.
pub(crate) struct CompactLayout<'a> {
    pub(crate) qr: &'a PivotedQr,
    pub(crate) d_start: usize,
    pub(crate) pattern: &'a [(usize, usize)],
    pub(crate) offset_pattern: &'a [usize],
}

impl CompactLayout<'_> {
    /// Adds `Σ_c C_ck R[i, D_c]` for rows `i ≥ from` to `out`: the coordinates of
    /// `W ∂f/∂b_k = Σ_j a_j D_{jk} + W ∂φ₀/∂b_k` in the basis of `Q`.
    pub(crate) fn add_model_derivative(&self, a: &[f64], k: usize, from: usize, out: &mut [f64]) {
        let terms = self.pattern.iter().enumerate().filter(|(_, (_, kk))| *kk == k).map(|(c, &(j, _))| (c, a[j]));
        let offsets = self.offset_pattern.iter().enumerate().filter(|(_, kk)| **kk == k).map(|(c, _)| (self.pattern.len() + c, 1.0));
        for (c, coef) in terms.chain(offsets) {
            if coef == 0.0 {
                continue;
            }
            let col = self.qr.r_col(self.d_start + c);
            for i in from..col.len() {
                out[i] += coef * col[i];
            }
        }
    }

    /// Column `k` of the compact Jacobian for linear parameters `a` and compact residual `res`
    /// (zero above row `rank`): `−(R₁₁⁻ᵀ Πᵀ u ; P⊥ part of W ∂f/∂b_k)` with
    /// `u_j = R[:, D_jk]ᵀ res`, the first block only for Golub–Pereyra. `u` is scratch of
    /// length `p`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn jacobian_column(
        &self,
        a: &[f64],
        res: &[f64],
        rank: usize,
        k: usize,
        golub_pereyra: bool,
        u: &mut [f64],
        out: &mut [f64],
    ) {
        out.fill(0.0);
        self.add_model_derivative(a, k, rank, out);
        if golub_pereyra && rank > 0 {
            u.fill(0.0);
            for (c, &(j, kk)) in self.pattern.iter().enumerate() {
                if kk == k {
                    let col = self.qr.r_col(self.d_start + c);
                    let lo = rank.min(col.len());
                    u[j] += dot(&col[lo..], &res[lo..col.len()]);
                }
            }
            // Rows 0..ρ: s = R₁₁⁻ᵀ (Πᵀ u)_{0..ρ}.
            let perm = self.qr.perm();
            for c in 0..rank {
                let rc = self.qr.r_col(c);
                let mut s = u[perm[c]];
                for i in 0..c {
                    s -= rc[i] * out[i];
                }
                out[c] = s / rc[c];
            }
        }
        for v in out.iter_mut() {
            *v = -*v;
        }
    }
}

impl<M: SeparableModel + ?Sized> LeastSquaresProblem for VarProProblem<'_, M> {
    fn n_residuals(&self) -> usize {
        if self.compact { self.nr } else { self.n }
    }
    fn n_params(&self) -> usize {
        self.q
    }
    fn residuals(&mut self, x: &[f64], r: &mut [f64]) -> Result<(), ModelError> {
        self.project_with(x, true)?;
        if self.compact {
            r.copy_from_slice(&self.cur.res);
        } else {
            r.fill(0.0);
            r[..self.nr].copy_from_slice(&self.cur.res);
            self.cur.qr.apply_q(r);
        }
        Ok(())
    }
    fn jacobian(&mut self, x: &[f64], jac: &mut [f64]) -> Result<(), ModelError> {
        if !self.cur.valid || self.cur.last_b != x {
            self.project_with(x, true)?;
        }
        self.jacobian_at_last(jac)
    }
    fn rounding_scale(&self) -> Option<f64> {
        self.cur.valid.then_some(self.cur.scale)
    }
}
