//! Symbolic forward-mode differentiation on the matrix graph: the Jacobian `∂f/∂x` of a vector
//! expression `f` (length `p`) with respect to a vector (or scalar) variable `x` (length `d`), a
//! `p×d` matrix expression.
//!
//! One forward sweep over ids (children before parents, a loop) carries a tangent expression per
//! node that depends on `x`: the variable's tangent is `I`; a column vector of length `p` has a
//! `p×d` tangent; a scalar a `1×d` row (its gradient, transposed); a row vector `1×q` the tangent
//! of its transpose (`q×d`). A node that depends on `x` and is a matrix (it would need a
//! three-index tangent, e.g. `x·xᵀ`) is reported as unsupported. A matrix variable `W` (`m×n`)
//! is read through products with vectors only, its columns those of `vec(W)` (`d = n·m`, column
//! by column): `∂(W·v)/∂W = vᵀ ⊗ I`, `∂(Wᵀ·v)/∂W = I ⊗ vᵀ`, so `∂ tanh(W·x + b)/∂W` is
//! `(1 − tanh(W·x + b).^2).*(xᵀ ⊗ I)`.
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
}

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
        let mut tan: Vec<Option<MId>> = vec![None; n];
        // A matrix variable W (m×n) has no tangent of its own: the products that read it, W·v,
        // Wᵀ·v, u·W and u·Wᵀ, start tangents with the columns of vec(W) (column by column).
        let xid = self.var(x);
        let (xm, xn) = rc(self.shape(xid));
        let matrix_var = xm != ONE && xn != ONE;
        let (mut wvar, mut wt): (Option<MId>, Option<MId>) = (None, None);
        for i in 0..n {
            let id = MId(i as u32);
            let node = self.node(id);
            if let MNode::Var(k) = node {
                if k == x {
                    if matrix_var {
                        wvar = Some(id);
                    } else {
                        let (d, _) = rc(self.shape(id));
                        tan[i] = Some(self.eye(d));
                    }
                }
                continue;
            }
            let is_w = |c: MId| wvar == Some(c) || wt == Some(c);
            if matrix_var && node.children().any(is_w) {
                if let MNode::Transpose(a) = node
                    && wvar == Some(a)
                {
                    wt = Some(id);
                    continue;
                }
                tan[i] = Some(self.matrix_variable_product(node, (xm, xn), (wvar, wt), &tan)?);
                continue;
            }
            if !node.children().any(|c| tan[c.index()].is_some()) {
                continue;
            }
            if self.is_matrix(id) {
                return Err(JacobianError::MatrixIntermediate(id));
            }
            for c in node.children() {
                if tan[c.index()].is_some() && self.is_matrix(c) {
                    return Err(JacobianError::MatrixIntermediate(c));
                }
            }
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
            tan[i] = out;
        }
        Ok(match tan[f.index()] {
            Some(j) => j,
            None => {
                let fc = self.col(f);
                let (p, _) = rc(self.shape(fc));
                let d = if matrix_var { self.dim_product(xn, xm) } else { xm };
                self.fill(0.0, super::graph::from_rc(p, d))
            }
        })
    }

    /// The tangent of a product reading the matrix variable `W` (`m×n`, `w = (W, Wᵀ)` by
    /// node) directly, over the columns of vec(W): `d(W·v) = (vᵀ ⊗ I_m)·dvec(W)`,
    /// `d(Wᵀ·v) = (I_n ⊗ vᵀ)·dvec(W)`, and a row `u·W` or `u·Wᵀ` as the tangent of its
    /// transpose (`(I_n ⊗ u)`, `(u ⊗ I_m)`); plus `W·Ṫv` (or `Wᵀ·Ṫu`) where the other factor
    /// depends on `W` too. Any other use of `W` is a matrix intermediate.
    fn matrix_variable_product(
        &mut self,
        node: MNode,
        (m, n): (crate::shape::Dim, crate::shape::Dim),
        (w, wt): (Option<MId>, Option<MId>),
        tan: &[Option<MId>],
    ) -> Result<MId, JacobianError> {
        let refuse = JacobianError::MatrixIntermediate(w.or(wt).unwrap_or(MId(0)));
        let MNode::MatMul(a, b) = node else { return Err(refuse) };
        let is_col = |g: &Self, v: MId| matches!(g.shape(v), Shape::Vector(_));
        let (em, en) = (self.eye(m), self.eye(n));
        let (direct, other) = if w == Some(a) && is_col(self, b) {
            let bt = self.transpose(b);
            (self.kron(bt, em), tan[b.index()].map(|tb| (a, tb)))
        } else if wt == Some(a) && is_col(self, b) {
            let bt = self.transpose(b);
            (self.kron(en, bt), tan[b.index()].map(|tb| (a, tb)))
        } else if w == Some(b) && self.is_row(a) {
            let wtr = self.transpose(b);
            (self.kron(en, a), tan[a.index()].map(|ta| (wtr, ta)))
        } else if wt == Some(b) && self.is_row(a) {
            let wtr = self.transpose(b);
            (self.kron(a, em), tan[a.index()].map(|ta| (wtr, ta)))
        } else {
            return Err(refuse);
        };
        Ok(match other {
            Some((f, t)) => {
                let ft = self.mm(f, t);
                self.add(ft, direct)
            }
            None => direct,
        })
    }
}
