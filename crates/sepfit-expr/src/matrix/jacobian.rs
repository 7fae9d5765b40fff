//! Symbolic forward-mode differentiation on the matrix graph: the Jacobian `∂f/∂x` of a vector
//! expression `f` (length `p`) with respect to a vector (or scalar) variable `x` (length `d`), a
//! `p×d` matrix expression.
//!
//! One forward sweep over ids (children before parents, a loop) carries a tangent expression per
//! scalar or vector node that depends on `x`: the variable's tangent is `I`; a column vector of
//! length `p` has a `p×d` tangent; a scalar a `1×d` row (its gradient, transposed); a row vector
//! `1×q` the tangent of its transpose (`q×d`).
//!
//! **Matrix intermediates.** A matrix `M` that depends on `x` (`x·xᵀ`, `A + x·xᵀ`, a matrix
//! variable `W` itself) would need a three-index tangent. It gets none: it is *deferred*, and a
//! vector that reads it, `M·v` (or a row `u·M`), asks for `∂(M·v)/∂x` at fixed `v` (plus
//! `M·Ṫv`), derived from `M`'s structure by the product rule down to its vector and scalar
//! parts, which have tangents:
//!
//! | `M`          | `∂(M·u)/∂x` at fixed `u`                                   |
//! |--------------|------------------------------------------------------------|
//! | `W` (`m×n`)  | `uᵀ ⊗ I_m` over the columns of `vec(W)` (`d = m·n`); `∂(Wᵀ·u) = I_n ⊗ uᵀ` |
//! | `A·B`        | `∂(A·(B·u)) + A·∂(B·u)`; `(A·B)ᵀ·u` as `∂(Bᵀ·(Aᵀ·u)) + Bᵀ·∂(Aᵀ·u)` |
//! | `a·bᵀ`       | `a·(uᵀ·Ṫb) + (bᵀ·u)·Ṫa` (the rule above, down to vectors)  |
//! | `A ± B`, `−A`, `Aᵀ` | linear                                              |
//! | `s·A`, `A/s` | `s·∂(A·u) + (A·u)·ṡ`, `(∂(A·u) − (M·u)·ṡ)/s`                |
//! | `v .* A`     | `v .* ∂(A·u) + (A·u) .* Ṫv` (rows scaled; columns alike)   |
//! | `A⁻¹`        | `−A⁻¹·∂(A·(A⁻¹·u))`                                         |
//! | `A^k`        | `Σ_j A^j·∂(A·(A^(k−1−j)·u))` (`2 ≤ k ≤ 8`)                  |
//! | `diag(v)`    | `u .* Ṫv`                                                  |
//!
//! `sum(M, 2) = M·1`, `sum(M, 1)ᵀ = Mᵀ·1` and `sum(M) = 1ᵀ·M·1` are read the same way. So `∂((w·wᵀ)·v)/∂w` is
//! `wᵀ·v·I + w·vᵀ`, `∂(A·X·b)/∂X` is `bᵀ ⊗ A` (products with a Kronecker factor are folded,
//! `A·(p ⊗ Q) = p ⊗ (A·Q)` for a row `p`), and `∂ tanh(W·x + b)/∂W` is
//! `(xᵀ ⊗ I).*(1 − tanh(W·x + b).^2)`. A matrix inside an elementwise function, an
//! elementwise product of two matrices, a trace or a determinant of one (inside a vector
//! expression) is reported as unsupported.
//!
//! | node            | tangent                                                    |
//! |-----------------|------------------------------------------------------------|
//! | `a + b`         | `Ṫa + Ṫb` (a scalar's `1×d` row broadcasts over the rows)  |
//! | `a .* b`        | `b .* Ṫa + a .* Ṫb` (a vector times a scalar's row is `v·ṫ`) |
//! | `a ./ b`        | `(Ṫa − (a./b) .* Ṫb) ./ b`                                 |
//! | `f(a)`          | `f'(a) .* Ṫa`                                              |
//! | `A*b`           | `A·Ṫb + bᵀ·Ṫa` (the latter only for a row `a`)             |
//! | `sum(a)`        | `sum(Ṫa, 1)`                                               |
//! | `‖a‖₂`          | `aᵀ·Ṫa / ‖a‖₂`                                             |
//! | `logsumexp(a)`  | `softmax(a)ᵀ·Ṫa`                                           |
//! | `softmax(a) = s`| `s .* Ṫa − s·(sᵀ·Ṫa)`                                      |
//!
//! Products and quotients keep scalar divisors outside (`(u/s)·vᵀ = u·vᵀ/s`, `(p/s)/s = p/s²`),
//! so that seed 002 §12.2, `∂/∂x (x − a)/‖x − a‖₂`, prints as
//! `(I − (x − a)·(x − a)ᵀ/‖x − a‖₂²)/‖x − a‖₂`: the seed's `I/‖x − a‖ − (x − a)(x − a)ᵀ/‖x − a‖³`
//! with `1/‖x − a‖` taken out.

use super::graph::{Graph, MId, MNode, ONE, rc};
use crate::func::Func;
use crate::shape::Shape;

/// Why a Jacobian could not be formed.
#[derive(Clone, Debug, PartialEq)]
pub enum JacobianError {
    /// A node that depends on the variable is a matrix (its tangent would have three indices).
    MatrixIntermediate(MId),
    /// Reading the matrix intermediates through products took more than [`MAX_APPLIED`]
    /// steps: products of a matrix by itself nested deeply, whose Jacobian grows exponentially.
    TooLarge,
}

/// The most steps of the product rule through matrix intermediates in one Jacobian.
pub const MAX_APPLIED: usize = 2_000;

impl Graph {
    fn is_row(&self, id: MId) -> bool {
        let (r, c) = rc(self.shape(id));
        r == ONE && c != ONE
    }

    fn is_matrix(&self, id: MId) -> bool {
        let (r, c) = rc(self.shape(id));
        r != ONE && c != ONE
    }

    /// The column form of a vector-like value (rows transposed).
    fn col(&mut self, id: MId) -> MId {
        if self.is_row(id) { self.transpose(id) } else { id }
    }

    /// A matrix product that keeps scalar divisors outside: `(x/s)·y = (x·y)/s`.
    fn mm(&mut self, a: MId, b: MId) -> MId {
        if let MNode::Div(x, s) = self.node(a)
            && self.shape(s) == Shape::Scalar && self.shape(x) != Shape::Scalar {
                let m = self.mm(x, b);
                return self.sdiv(m, s);
            }
        if let MNode::Div(y, s) = self.node(b)
            && self.shape(s) == Shape::Scalar && self.shape(y) != Shape::Scalar {
                let m = self.mm(a, y);
                return self.sdiv(m, s);
            }
        // A·(p ⊗ Q) = p ⊗ (A·Q) for a row (or 1×1) p: (1 ⊗ A)(p ⊗ Q) by the mixed product
        // (and A·(s·(p ⊗ Q)) = s·(p ⊗ (A·Q)) for a scalar s).
        if self.shape(a) != Shape::Scalar {
            let (s, k) = match self.node(b) {
                MNode::Mul(s, k) if self.shape(s) == Shape::Scalar => (Some(s), k),
                _ => (None, b),
            };
            if let MNode::Kron(p, q) = self.node(k)
                && rc(self.shape(p)).0 == ONE {
                    let aq = self.mm(a, q);
                    let pk = self.kron(p, aq);
                    return match s {
                        Some(s) => self.mul(s, pk),
                        None => pk,
                    };
                }
        }
        self.matmul(a, b)
    }

    /// `p / t`, gathering scalar divisors: `(q/s)/s = q/s²`, `(q/s^k)/s = q/s^(k+1)`.
    fn sdiv(&mut self, p: MId, t: MId) -> MId {
        if self.shape(t) == Shape::Scalar
            && let MNode::Div(q, s) = self.node(p)
                && self.shape(s) == Shape::Scalar && self.shape(q) != Shape::Scalar {
                    if s == t {
                        let two = self.constant(2.0);
                        let s2 = self.pow(t, two);
                        return self.div(q, s2);
                    }
                    if let MNode::Pow(base, k) = self.node(s)
                        && let (true, Some(k)) = (base == t, self.as_const(k)) {
                            let k1 = self.constant(k + 1.0);
                            let sk = self.pow(t, k1);
                            return self.div(q, sk);
                        }
                }
        self.div(p, t)
    }

    /// A value (scalar or vector, column form) times a tangent: a vector times a scalar's `1×d`
    /// tangent is the outer product `v·ṫ`; otherwise elementwise (rows scaled).
    fn scale(&mut self, v: MId, t: MId) -> MId {
        let v = self.col(v);
        let (tr, _) = rc(self.shape(t));
        if self.shape(v) != Shape::Scalar && tr == ONE {
            return self.mm(v, t);
        }
        if self.shape(v) != Shape::Scalar && matches!(self.node(t), MNode::Eye(_)) {
            return self.diag_m(v);
        }
        self.mul(v, t)
    }

    /// `I .* v` (a column times the identity) is `diag(v)`; `I ./ v` is `diag(1./v)`.
    fn tidy(&mut self, t: MId) -> MId {
        let is_col = |g: &Self, v: MId| matches!(g.shape(v), Shape::Vector(_));
        match self.node(t) {
            MNode::Mul(p, q) if matches!(self.node(p), MNode::Eye(_)) && is_col(self, q) => self.diag_m(q),
            MNode::Mul(p, q) if matches!(self.node(q), MNode::Eye(_)) && is_col(self, p) => self.diag_m(p),
            MNode::Div(p, q) if matches!(self.node(p), MNode::Eye(_)) && is_col(self, q) => {
                let one = self.constant(1.0);
                let r = self.div(one, q);
                self.diag_m(r)
            }
            MNode::Neg(p) => {
                let t = self.tidy(p);
                self.neg(t)
            }
            _ => t,
        }
    }

    fn add_t(&mut self, a: Option<MId>, b: Option<MId>) -> Option<MId> {
        match (a, b) {
            (Some(a), Some(b)) => Some(self.add(a, b)),
            (a, None) => a,
            (None, b) => b,
        }
    }

    /// A tangent as the tangent of a node of `len` rows (a scalar's `1×d` row broadcast down).
    fn spread(&mut self, t: MId, like: MId) -> MId {
        let like = self.col(like);
        let (lr, _) = rc(self.shape(like));
        let (tr, _) = rc(self.shape(t));
        if lr != ONE && tr == ONE {
            let ones = self.fill(1.0, Shape::Vector(lr));
            return self.mm(ones, t);
        }
        t
    }

    /// The Jacobian `∂f/∂x` of the scalar or vector node `f` with respect to variable `x`: a
    /// `p×d` expression (`1×d` for a scalar `f`, `p×1` for a scalar `x`).
    pub fn jacobian(&mut self, f: MId, x: u32) -> Result<MId, JacobianError> {
        let n = f.index() + 1;
        let xid = self.var(x);
        let (xm, xn) = rc(self.shape(xid));
        let matrix_var = xm != ONE && xn != ONE;
        // Scalars and vectors carry tangents; a matrix that depends on x (the matrix variable
        // itself included) is deferred: it has no tangent of its own, and a product with a
        // vector that reads it asks for the tangent of that product (`applied`).
        let mut sw = Sweep { tan: vec![None; n], deferred: vec![false; n], var_shape: (xm, xn), steps: Default::default() };
        // Only the nodes f reads (the graph also holds, e.g., the loss a gradient came from).
        let mut reached = vec![false; n];
        reached[n - 1] = true;
        for i in (0..n).rev() {
            if reached[i] {
                for c in self.node(MId(i as u32)).children() {
                    reached[c.index()] = true;
                }
            }
        }
        for (i, _) in reached.iter().enumerate().filter(|(_, r)| **r) {
            let id = MId(i as u32);
            let node = self.node(id);
            if let MNode::Var(k) = node {
                if k == x {
                    if matrix_var {
                        sw.deferred[i] = true;
                    } else {
                        let (d, _) = rc(self.shape(id));
                        sw.tan[i] = Some(self.eye(d));
                    }
                }
                continue;
            }
            let any_deferred = node.children().any(|c| sw.deferred[c.index()]);
            if !any_deferred && !node.children().any(|c| sw.tan[c.index()].is_some()) {
                continue;
            }
            if self.is_matrix(id) {
                if !deferrable(node) {
                    return Err(JacobianError::MatrixIntermediate(id));
                }
                sw.deferred[i] = true;
                continue;
            }
            if any_deferred {
                sw.tan[i] = Some(self.reads_deferred(&sw, node)?);
                continue;
            }
            let tan = &sw.tan;
            let t = |c: MId| tan[c.index()];
            let out = match node {
                MNode::Const(_) | MNode::Fill(_) | MNode::Eye(_) | MNode::Var(_) => None,
                MNode::Add(a, b) => {
                    let (ta, tb) = (t(a), t(b));
                    let s = self.add_t(ta, tb);
                    s.map(|s| self.spread(s, id))
                }
                MNode::Sub(a, b) => {
                    let (ta, tb) = (t(a), t(b));
                    let s = match (ta, tb) {
                        (Some(ta), Some(tb)) => Some(self.sub(ta, tb)),
                        (Some(ta), None) => Some(ta),
                        (None, Some(tb)) => Some(self.neg(tb)),
                        (None, None) => None,
                    };
                    s.map(|s| self.spread(s, id))
                }
                MNode::Neg(a) => t(a).map(|ta| self.neg(ta)),
                MNode::Transpose(a) => t(a),
                MNode::Mul(a, b) => {
                    let (ta, tb) = (t(a), t(b));
                    let ca = ta.map(|ta| self.scale(b, ta));
                    let cb = tb.map(|tb| self.scale(a, tb));
                    let s = self.add_t(ca, cb);
                    s.map(|s| self.spread(s, id))
                }
                MNode::Div(a, b) => {
                    let (ta, tb) = (t(a), t(b));
                    let num = match (ta, tb) {
                        (ta, Some(tb)) => {
                            let q = self.scale(id, tb);
                            Some(match ta {
                                Some(ta) => self.sub(ta, q),
                                None => self.neg(q),
                            })
                        }
                        (ta, None) => ta,
                    };
                    num.map(|num| {
                        let cb = self.col(b);
                        let r = if self.shape(cb) == Shape::Scalar { self.sdiv(num, cb) } else { self.div(num, cb) };
                        self.spread(r, id)
                    })
                }
                MNode::Pow(a, b) => {
                    let (ta, tb) = (t(a), t(b));
                    let ca = ta.map(|ta| {
                        let one = self.constant(1.0);
                        let bm1 = self.sub(b, one);
                        let p = self.pow(a, bm1);
                        let d = self.mul(b, p);
                        self.scale(d, ta)
                    });
                    let cb = tb.map(|tb| {
                        let l = self.call(Func::Log, a);
                        let d = self.mul(id, l);
                        self.scale(d, tb)
                    });
                    let s = self.add_t(ca, cb);
                    s.map(|s| self.spread(s, id))
                }
                MNode::XLogY(a, b) => {
                    // log(b) ṫa + (a/b) ṫb (the tangent of a is not guarded where it is 0)
                    let (ta, tb) = (t(a), t(b));
                    let ca = ta.map(|ta| {
                        let l = self.call(Func::Log, b);
                        self.scale(l, ta)
                    });
                    let cb = tb.map(|tb| {
                        let q = self.div(a, b);
                        self.scale(q, tb)
                    });
                    let s = self.add_t(ca, cb);
                    s.map(|s| self.spread(s, id))
                }
                MNode::Call2(f, a, b) => {
                    let (ta, tb) = (t(a), t(b));
                    let (pa, pb) = f.partials(self, a, b, id);
                    let ca = ta.map(|ta| self.scale(pa, ta));
                    let cb = tb.map(|tb| self.scale(pb, tb));
                    let s = self.add_t(ca, cb);
                    s.map(|s| self.spread(s, id))
                }
                MNode::Call(f, a) => match t(a) {
                    Some(ta) => {
                        let (ca, cn) = (self.col(a), self.col(id));
                        match f.chain(self, ca, cn, ta) {
                            Some(c) => Some(self.tidy(c)),
                            None => {
                                let s = self.shape(ta);
                                Some(self.fill(0.0, s))
                            }
                        }
                    }
                    None => None,
                },
                MNode::MatMul(a, b) => {
                    // from b (out a column or scalar): A·Ṫb; from a row a: bᵀ·Ṫa
                    let (ta, tb) = (t(a), t(b));
                    let cb = tb.map(|tb| self.mm(a, tb));
                    let ca = ta.map(|ta| {
                        let bt = self.transpose(b);
                        self.mm(bt, ta)
                    });
                    self.add_t(ca, cb)
                }
                MNode::Sum(a) => t(a).map(|ta| self.sum_rows(ta)),
                MNode::SumRows(a) | MNode::SumCols(a) => t(a).map(|ta| self.sum_rows(ta)),
                MNode::Norm2(a) | MNode::NormF(a) => t(a).map(|ta| {
                    let ca = self.col(a);
                    let at = self.transpose(ca);
                    let g = self.mm(at, ta);
                    self.sdiv(g, id)
                }),
                MNode::Kron(..) | MNode::KronSumA(..) | MNode::KronSumB(..) => return Err(JacobianError::MatrixIntermediate(id)),
                MNode::Trace(a)
                | MNode::Det(a)
                | MNode::DiagV(a)
                | MNode::Inv(a)
                | MNode::DiagM(a)
                | MNode::MatPow(a, _)
                | MNode::Pinv(a)
                | MNode::LogSumExpDim(a, _)
                | MNode::SoftmaxDim(a, _) => {
                    // only matrices reach these (scalars are simplified away); caught above
                    return Err(JacobianError::MatrixIntermediate(a));
                }
                MNode::LogDet(a) => t(a).map(|ta| self.sdiv(ta, a)),
                // a row: softmax(a)ᵀ·Ṫa
                MNode::LogSumExp(a) => t(a).map(|ta| {
                    let ca = self.col(a);
                    let s = self.softmax(ca);
                    let st = self.transpose(s);
                    self.mm(st, ta)
                }),
                // s .* Ṫa − s·(sᵀ·Ṫa)
                MNode::Softmax(a) => t(a).map(|ta| {
                    let s = self.col(id);
                    let d = self.scale(s, ta);
                    let st = self.transpose(s);
                    let r = self.mm(st, ta);
                    let o = self.mm(s, r);
                    self.sub(d, o)
                }),
            };
            sw.tan[i] = out;
        }
        Ok(match sw.tan[f.index()] {
            Some(j) => j,
            None => {
                let fc = self.col(f);
                let (p, _) = rc(self.shape(fc));
                let d = if matrix_var { self.dim_product(xn, xm) } else { xm };
                self.fill(0.0, super::graph::from_rc(p, d))
            }
        })
    }

    /// The tangent of a scalar or vector `node` that reads a deferred matrix `M`: a product
    /// `M·v` with a column `v` (`M·Ṫv + ∂(M·v)/∂x` at fixed `v`), a row `u·M` (the tangent of
    /// its transpose, `Mᵀ·Ṫu + ∂(Mᵀ·uᵀ)/∂x`), or the sums `sum(M, 1)`, `sum(M, 2)` and `sum(M)`
    /// (products with ones). Anything else is a matrix intermediate.
    fn reads_deferred(&mut self, sw: &Sweep, node: MNode) -> Result<MId, JacobianError> {
        let deferred = |c: MId| sw.deferred[c.index()];
        let refuse = || JacobianError::MatrixIntermediate(node.children().find(|c| deferred(*c)).unwrap_or(MId(0)));
        let is_col = |g: &Self, v: MId| matches!(g.shape(v), Shape::Vector(_));
        let (direct, other) = match node {
            MNode::MatMul(a, b) if deferred(a) && is_col(self, b) => {
                let other = sw.tan[b.index()].map(|tb| self.mm(a, tb));
                (self.applied(sw, a, b, false)?, other)
            }
            MNode::MatMul(a, b) if deferred(b) && self.is_row(a) => {
                let other = sw.tan[a.index()].map(|ta| {
                    let bt = self.transpose(b);
                    self.mm(bt, ta)
                });
                let at = self.transpose(a);
                (self.applied(sw, b, at, true)?, other)
            }
            // sum(M, 2) = M·1, and sum(M) = 1ᵀ·M·1 its column sum
            MNode::SumCols(a) | MNode::Sum(a) if deferred(a) => {
                let (_, c) = rc(self.shape(a));
                let ones = self.fill(1.0, Shape::Vector(c));
                let t = self.applied(sw, a, ones, false)?;
                (if matches!(node, MNode::Sum(_)) { t.map(|t| self.sum_rows(t)) } else { t }, None)
            }
            MNode::SumRows(a) if deferred(a) => {
                let (r, _) = rc(self.shape(a));
                let ones = self.fill(1.0, Shape::Vector(r));
                (self.applied(sw, a, ones, true)?, None)
            }
            _ => return Err(refuse()),
        };
        Ok(match (other, direct) {
            (Some(o), Some(d)) => self.add(o, d),
            (Some(t), None) | (None, Some(t)) => t,
            (None, None) => return Err(refuse()),
        })
    }

    /// `M·u` (or `Mᵀ·u` with `tr`).
    fn prod(&mut self, m: MId, u: MId, tr: bool) -> MId {
        if tr {
            let mt = self.transpose(m);
            self.mm(mt, u)
        } else {
            self.mm(m, u)
        }
    }

    /// `∂(M·u)/∂x` (with `tr`, `∂(Mᵀ·u)/∂x`) at a fixed column `u` (a scalar where `M·u` is a
    /// product with a column vector `M`), a `rows×d` expression; `None` where `M` does not
    /// depend on x. For a scalar or vector `M` it comes from `M`'s tangent; for a deferred
    /// matrix from its structure (see the module docs), e.g. `∂((A·B)·u) = ∂(A·(B·u)) + A·∂(B·u)`,
    /// `∂(A⁻¹·u) = −A⁻¹·∂(A·(A⁻¹·u))`, `∂(W·u)/∂W = uᵀ ⊗ I`. An entrywise function of a matrix,
    /// an elementwise product of two matrices and the like are matrix intermediates.
    fn applied(&mut self, sw: &Sweep, m: MId, u: MId, tr: bool) -> Result<Option<MId>, JacobianError> {
        let steps = sw.steps.get() + 1;
        if steps > MAX_APPLIED {
            return Err(JacobianError::TooLarge);
        }
        sw.steps.set(steps);
        let i = m.index();
        if i >= sw.tan.len() {
            return Ok(None);
        }
        if !sw.deferred[i] {
            let Some(t) = sw.tan[i] else { return Ok(None) };
            // A column times a scalar, a row's transpose times a scalar, or a scalar: u·Ṫ;
            // a row times a column, or a column's transpose times one: uᵀ·Ṫ.
            return Ok(Some(if self.shape(m) != Shape::Scalar && self.is_row(m) != tr {
                let ut = self.transpose(u);
                self.mm(ut, t)
            } else {
                self.scale(u, t)
            }));
        }
        let refuse = Err(JacobianError::MatrixIntermediate(m));
        let depends = |c: MId| c.index() < sw.tan.len() && (sw.deferred[c.index()] || sw.tan[c.index()].is_some());
        let node = self.node(m);
        Ok(match node {
            MNode::Var(_) => {
                let (rows, cols) = sw.var_shape;
                let ut = self.transpose(u);
                if tr {
                    let e = self.eye(cols);
                    Some(self.kron(e, ut))
                } else {
                    let e = self.eye(rows);
                    Some(self.kron(ut, e))
                }
            }
            MNode::Transpose(a) => self.applied(sw, a, u, !tr)?,
            MNode::Neg(a) => self.applied(sw, a, u, tr)?.map(|t| self.neg(t)),
            MNode::Add(a, b) | MNode::Sub(a, b) => {
                // A broadcast operand (ones·s) would need its own rule: only constants.
                let ms = self.shape(m);
                if [a, b].iter().any(|&c| depends(c) && self.shape(c) != ms) {
                    return refuse;
                }
                let ta = self.applied(sw, a, u, tr)?;
                let tb = self.applied(sw, b, u, tr)?;
                match (node, ta, tb) {
                    (MNode::Sub(..), ta, Some(tb)) => Some(match ta {
                        Some(ta) => self.sub(ta, tb),
                        None => self.neg(tb),
                    }),
                    (_, ta, tb) => self.add_t(ta, tb),
                }
            }
            MNode::Mul(a, b) => {
                let (sa, sb) = (self.shape(a), self.shape(b));
                if sa == Shape::Scalar || sb == Shape::Scalar {
                    // (s·A)·u = s·(A·u)
                    let (s, a) = if sa == Shape::Scalar { (a, b) } else { (b, a) };
                    let ta = self.applied(sw, a, u, tr)?.map(|t| self.mul(s, t));
                    let ts = match sw.tan[s.index()] {
                        Some(t) => {
                            let au = self.prod(a, u, tr);
                            Some(self.scale(au, t))
                        }
                        None => None,
                    };
                    self.add_t(ta, ts)
                } else if matches!(sa, Shape::Vector(_)) || matches!(sb, Shape::Vector(_)) || self.is_row(a) || self.is_row(b) {
                    // v .* A = diag(v)·A (rows scaled), A .* r = A·diag(rᵀ) (columns scaled)
                    let (v, a) = if self.is_matrix(a) { (b, a) } else { (a, b) };
                    if !self.is_matrix(a) {
                        return refuse;
                    }
                    let rows = !self.is_row(v);
                    let vc = self.col(v);
                    let tv = sw.tan[v.index()];
                    if rows != tr {
                        // diag(v)·(A·u), or (A·diag(v))ᵀ·u = diag(v)·(Aᵀ·u)
                        let ta = self.applied(sw, a, u, tr)?.map(|t| self.scale(vc, t));
                        let tvv = tv.map(|t| {
                            let au = self.prod(a, u, tr);
                            self.scale(au, t)
                        });
                        self.add_t(ta, tvv)
                    } else {
                        // A·(v .* u), or (diag(v)·A)ᵀ·u = Aᵀ·(v .* u)
                        let vu = self.mul(vc, u);
                        let ta = self.applied(sw, a, vu, tr)?;
                        let tvv = tv.map(|t| {
                            let ut = self.scale(u, t);
                            self.prod(a, ut, tr)
                        });
                        self.add_t(ta, tvv)
                    }
                } else {
                    return refuse;
                }
            }
            MNode::Div(a, s) if self.shape(s) == Shape::Scalar => {
                // ∂((A·u)/s) = (∂(A·u) − (M·u)·ṡ)/s
                let ta = self.applied(sw, a, u, tr)?;
                let num = match sw.tan[s.index()] {
                    Some(t) => {
                        let mu = self.prod(m, u, tr);
                        let q = self.scale(mu, t);
                        Some(match ta {
                            Some(ta) => self.sub(ta, q),
                            None => self.neg(q),
                        })
                    }
                    None => ta,
                };
                num.map(|num| self.sdiv(num, s))
            }
            MNode::MatMul(a, b) => {
                if tr {
                    // (A·B)ᵀ·u = Bᵀ·(Aᵀ·u)
                    let atu = self.prod(a, u, true);
                    let tb = self.applied(sw, b, atu, true)?;
                    let ta = match self.applied(sw, a, u, true)? {
                        Some(t) => {
                            let bt = self.transpose(b);
                            Some(self.mm(bt, t))
                        }
                        None => None,
                    };
                    self.add_t(tb, ta)
                } else {
                    // (A·B)·u = A·(B·u)
                    let bu = self.mm(b, u);
                    let ta = self.applied(sw, a, bu, false)?;
                    let tb = self.applied(sw, b, u, false)?.map(|t| self.mm(a, t));
                    self.add_t(ta, tb)
                }
            }
            MNode::Inv(a) => {
                // ∂(A⁻¹·u) = −A⁻¹·∂(A·y), y = A⁻¹·u (transposed alike)
                let y = self.prod(m, u, tr);
                match self.applied(sw, a, y, tr)? {
                    Some(t) => {
                        let p = self.prod(m, t, tr);
                        Some(self.neg(p))
                    }
                    None => None,
                }
            }
            MNode::MatPow(a, k) if (2..=8).contains(&k) => {
                // ∂(A^k·u) = Σ_j A^j·∂(A·(A^(k−1−j)·u)) (transposed alike)
                let mut sum = None;
                for j in 0..k {
                    let pk = self.mat_pow(a, k - 1 - j);
                    let v = self.prod(pk, u, tr);
                    if let Some(t) = self.applied(sw, a, v, tr)? {
                        let pj = self.mat_pow(a, j);
                        let term = self.prod(pj, t, tr);
                        sum = self.add_t(sum, Some(term));
                    }
                }
                sum
            }
            // diag(v)·u = u .* v
            MNode::DiagM(v) => sw.tan[v.index()].map(|t| self.scale(u, t)),
            _ => return refuse,
        })
    }
}

/// The forward sweep's state (see [`Graph::jacobian`]).
struct Sweep {
    /// The tangent of each scalar or vector node that depends on the variable.
    tan: Vec<Option<MId>>,
    /// The matrix nodes that depend on the variable (no tangent of their own).
    deferred: Vec<bool>,
    /// The variable's rows and columns.
    var_shape: (crate::shape::Dim, crate::shape::Dim),
    /// Steps of [`Graph::applied`] so far.
    steps: std::cell::Cell<usize>,
}

/// Whether a matrix node that depends on the variable can be read through products with
/// vectors ([`Graph::applied`]): the linear structure of products, sums, transposes, scalar
/// and diagonal scalings, inverses, integer powers and `diag(v)`.
fn deferrable(node: MNode) -> bool {
    matches!(
        node,
        MNode::Transpose(_)
            | MNode::Neg(_)
            | MNode::Add(..)
            | MNode::Sub(..)
            | MNode::Mul(..)
            | MNode::Div(..)
            | MNode::MatMul(..)
            | MNode::Inv(_)
            | MNode::MatPow(..)
            | MNode::DiagM(_)
    )
}
