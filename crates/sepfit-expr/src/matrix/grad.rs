//! Symbolic reverse-mode differentiation on the matrix graph (denominator layout: the gradient
//! with respect to a variable has the variable's shape).
//!
//! One backward sweep over ids (parents before children, a loop) carries an adjoint expression
//! `Ḡ` per node; each rule adds `∂f/∂child` contributions, reduced over broadcast dimensions
//! ([`Graph::unbroadcast`]). The builders simplify as the adjoints are formed, which is what turns
//! `‖Xw − y‖₂²` into `2·Xᵀ(Xw − y)` rather than a sum of transposed terms:
//!
//! | node            | contribution to the child(ren)                |
//! |-----------------|-----------------------------------------------|
//! | `A*B`           | `Ā += Ḡ Bᵀ`, `B̄ += Aᵀ Ḡ`                        |
//! | `A'`            | `Ā += Ḡᵀ`                                       |
//! | `a .* b`        | `ā += Ḡ .* b`, `b̄ += Ḡ .* a`                    |
//! | `‖u‖₂^c`        | `ū += c Ḡ ‖u‖₂^(c−2) u` (so `‖u‖₂²` gives `2u`) |
//! | `sum(A)`        | `Ā += Ḡ 𝟏`                                      |
//! | `tr(A)`         | `Ā += Ḡ I`                                      |
//! | `inv(A)`        | `Ā += −A⁻ᵀ Ḡ A⁻ᵀ`                               |
//! | `det(A)`        | `Ā += Ḡ det(A) A⁻ᵀ`; `logdet`: `Ḡ A⁻ᵀ`          |
//! | `logsumexp(A)`  | `Ā += Ḡ softmax(A)`                             |
//! | `s = softmax(a)`| `ā += s .* (Ḡ − sum(Ḡ .* s))`                   |
//! | `X^k`           | `X̄ += Σ_{i<k} (X^i)ᵀ Ḡ (X^(k−1−i))ᵀ`            |
//! | `P = pinv(X)`   | `X̄ += −Pᵀ Ḡ Pᵀ + (I − X P) Ḡᵀ P Pᵀ` (full column rank) |
//! | `A ⊗ B`         | `Ā += kronsum(Ḡ, B, 1)`, `B̄ += kronsum(A, Ḡ, 2)` (block sums) |
//!
//! The pseudo-inverse rule is the derivative of `X⁺` where the rank is constant, with the
//! term `(I − X⁺X) dXᵀ X⁺ᵀX⁺` dropped: it vanishes for full column rank, where `X⁺X = I`.
//! The block sums are linear in both arguments, so their own adjoints are Kronecker products
//! and block sums again.

use super::graph::{Graph, MId, MNode, rc};
use crate::shape::Shape;

impl Graph {
    /// Reduces an adjoint over the dimensions that were broadcast to reach `target`.
    pub fn unbroadcast(&mut self, g: MId, target: Shape) -> MId {
        let gs = self.shape(g);
        if gs == target {
            return g;
        }
        if target == Shape::Scalar {
            return self.sum(g);
        }
        let (tr, tc) = rc(target);
        let (gr, gc) = rc(gs);
        let mut g = g;
        if tr != gr {
            g = self.sum_rows(g);
        }
        if tc != gc {
            g = self.sum_cols(g);
        }
        g
    }

    /// The gradients of the scalar `f` with respect to the variables `wrt`, one expression per
    /// variable, each of the variable's shape. `f` must be a scalar node.
    pub fn gradients(&mut self, f: MId, wrt: &[u32]) -> Vec<MId> {
        let n = f.index() + 1;
        // which nodes depend on any of the variables
        let mut dep = vec![false; n];
        for i in 0..n {
            let node = self.node(MId(i as u32));
            dep[i] = match node {
                MNode::Var(k) => wrt.contains(&k),
                _ => node.children().any(|c| dep[c.index()]),
            };
        }
        let mut adj: Vec<Option<MId>> = vec![None; n];
        if dep[f.index()] {
            adj[f.index()] = Some(self.constant(1.0));
        }
        for i in (0..n).rev() {
            let Some(g) = adj[i] else { continue };
            let id = MId(i as u32);
            let node = self.node(id);
            let mut push = |this: &mut Graph, child: MId, contrib: MId| {
                if !dep[child.index()] {
                    return;
                }
                let s = this.shape(child);
                let c = this.unbroadcast(contrib, s);
                adj[child.index()] = Some(match adj[child.index()] {
                    Some(prev) => this.add(prev, c),
                    None => c,
                });
            };
            match node {
                MNode::Const(_) | MNode::Fill(_) | MNode::Eye(_) | MNode::Var(_) => {}
                MNode::Add(a, b) => {
                    push(self, a, g);
                    push(self, b, g);
                }
                MNode::Sub(a, b) => {
                    push(self, a, g);
                    let ng = self.neg(g);
                    push(self, b, ng);
                }
                MNode::Neg(a) => {
                    let ng = self.neg(g);
                    push(self, a, ng);
                }
                MNode::Mul(a, b) => {
                    if dep[a.index()] {
                        let c = self.mul(g, b);
                        push(self, a, c);
                    }
                    if dep[b.index()] {
                        let c = self.mul(g, a);
                        push(self, b, c);
                    }
                }
                MNode::Div(a, b) => {
                    if dep[a.index()] {
                        let c = self.div(g, b);
                        push(self, a, c);
                    }
                    if dep[b.index()] {
                        let gn = self.mul(g, id);
                        let q = self.div(gn, b);
                        let c = self.neg(q);
                        push(self, b, c);
                    }
                }
                MNode::Pow(a, b) => {
                    let norm_child = match self.node(a) {
                        MNode::Norm2(u) | MNode::NormF(u) => Some(u),
                        _ => None,
                    };
                    match (self.as_const(b), norm_child) {
                        // ‖u‖^c: straight to u, c Ḡ ‖u‖^(c-2) u
                        (Some(c), Some(u)) => {
                            let cm2 = self.constant(c - 2.0);
                            let p = self.pow(a, cm2);
                            let gp = self.mul(g, p);
                            let gu = self.mul(gp, u);
                            let k = self.constant(c);
                            let contrib = self.mul(k, gu);
                            push(self, u, contrib);
                        }
                        (Some(c), None) => {
                            let cm1 = self.constant(c - 1.0);
                            let p = self.pow(a, cm1);
                            let k = self.constant(c);
                            let kp = self.mul(k, p);
                            let contrib = self.mul(g, kp);
                            push(self, a, contrib);
                        }
                        (None, _) => {
                            if dep[a.index()] {
                                let one = self.constant(1.0);
                                let bm1 = self.sub(b, one);
                                let p = self.pow(a, bm1);
                                let bp = self.mul(b, p);
                                let contrib = self.mul(g, bp);
                                push(self, a, contrib);
                            }
                            if dep[b.index()] {
                                // a.^b .* log(a), 0 where a.^b is 0 (not 0*log(0) = NaN)
                                let nl = self.xlogy(id, a);
                                let contrib = self.mul(g, nl);
                                push(self, b, contrib);
                            }
                        }
                    }
                }
                MNode::XLogY(a, b) => {
                    if dep[a.index()] {
                        let c = self.xlogy(g, b);
                        push(self, a, c);
                    }
                    if dep[b.index()] {
                        let ga = self.mul(g, a);
                        let c = self.div(ga, b);
                        push(self, b, c);
                    }
                }
                MNode::Call2(f, a, b) => {
                    let (pa, pb) = f.partials(self, a, b, id);
                    if dep[a.index()] {
                        let c = self.mul(g, pa);
                        push(self, a, c);
                    }
                    if dep[b.index()] {
                        let c = self.mul(g, pb);
                        push(self, b, c);
                    }
                }
                MNode::Call(f, a) => {
                    let contrib = f.chain(self, a, id, g);
                    if let Some(c) = contrib {
                        push(self, a, c);
                    }
                }
                MNode::MatMul(a, b) => {
                    if dep[a.index()] {
                        let bt = self.transpose(b);
                        let c = self.matmul(g, bt);
                        push(self, a, c);
                    }
                    if dep[b.index()] {
                        let at = self.transpose(a);
                        let c = self.matmul(at, g);
                        push(self, b, c);
                    }
                }
                MNode::Transpose(a) => {
                    let c = self.transpose(g);
                    push(self, a, c);
                }
                MNode::Sum(a) | MNode::SumRows(a) | MNode::SumCols(a) => {
                    let s = self.shape(a);
                    let ones = self.fill(1.0, s);
                    let c = self.mul(g, ones);
                    push(self, a, c);
                }
                MNode::Norm2(a) | MNode::NormF(a) => {
                    let u = self.div(a, id);
                    let c = self.mul(g, u);
                    push(self, a, c);
                }
                MNode::Trace(a) => {
                    let (r, _) = rc(self.shape(a));
                    let eye = self.eye(r);
                    let c = self.mul(g, eye);
                    push(self, a, c);
                }
                MNode::DiagM(a) => {
                    let c = self.diag_v(g);
                    push(self, a, c);
                }
                MNode::DiagV(a) => {
                    let c = self.diag_m(g);
                    push(self, a, c);
                }
                MNode::Inv(a) => {
                    let it = self.transpose(id);
                    let l = self.matmul(it, g);
                    let r = self.matmul(l, it);
                    let c = self.neg(r);
                    push(self, a, c);
                }
                MNode::Det(a) => {
                    let inv = self.inv(a);
                    let it = self.transpose(inv);
                    let gd = self.mul(g, id);
                    let c = self.mul(gd, it);
                    push(self, a, c);
                }
                // ∂ logsumexp(A)/∂A = softmax(A)
                MNode::LogSumExp(a) => {
                    let s = self.softmax(a);
                    let c = self.mul(g, s);
                    push(self, a, c);
                }
                // s = softmax(a): ā += s .* (Ḡ − sum(Ḡ .* s))
                MNode::Softmax(a) => {
                    let gs = self.mul(g, id);
                    let t = self.sum(gs);
                    let d = self.sub(g, t);
                    let c = self.mul(id, d);
                    push(self, a, c);
                }
                // ∂ logsumexp(A, d)/∂A = softmax(A, d), each column or row weighted by its adjoint
                MNode::LogSumExpDim(a, d) => {
                    let s = self.softmax_dim(a, d);
                    let c = self.mul(g, s);
                    push(self, a, c);
                }
                // S = softmax(A, d): Ā += S .* (Ḡ − sum(Ḡ .* S, d))
                MNode::SoftmaxDim(a, d) => {
                    let gs = self.mul(g, id);
                    let t = if d == 1 { self.sum_rows(gs) } else { self.sum_cols(gs) };
                    let diff = self.sub(g, t);
                    let c = self.mul(id, diff);
                    push(self, a, c);
                }
                // tr(X^k): k (X^(k−1))ᵀ
                MNode::MatPow(a, k) if matches!(self.node(g), MNode::Eye(_)) => {
                    let p = self.mat_pow(a, k - 1);
                    let pt = self.transpose(p);
                    let kc = self.constant(k as f64);
                    let c = self.mul(kc, pt);
                    push(self, a, c);
                }
                MNode::MatPow(a, k) => {
                    // dF = Σ_i X^i dX X^(k−1−i)
                    let mut acc: Option<MId> = None;
                    for i in 0..k {
                        let l = self.mat_pow(a, i);
                        let r = self.mat_pow(a, k - 1 - i);
                        let (lt, rt) = (self.transpose(l), self.transpose(r));
                        let lg = self.matmul(lt, g);
                        let t = self.matmul(lg, rt);
                        acc = Some(match acc {
                            Some(p) => self.add(p, t),
                            None => t,
                        });
                    }
                    if let Some(c) = acc {
                        push(self, a, c);
                    }
                }
                MNode::Pinv(a) => {
                    let pt = self.transpose(id);
                    let l = self.matmul(pt, g);
                    let t1 = self.matmul(l, pt);
                    let (m, _) = rc(self.shape(a));
                    let eye = self.eye(m);
                    let xp = self.matmul(a, id);
                    let proj = self.sub(eye, xp);
                    let gt = self.transpose(g);
                    let ppt = self.matmul(id, pt);
                    let pg = self.matmul(proj, gt);
                    let t2 = self.matmul(pg, ppt);
                    let c = self.sub(t2, t1);
                    push(self, a, c);
                }
                MNode::Kron(a, b) => {
                    if dep[a.index()] {
                        let s = self.shape(a);
                        let c = self.kron_sum_a(g, b, s);
                        push(self, a, c);
                    }
                    if dep[b.index()] {
                        let s = self.shape(b);
                        let c = self.kron_sum_b(a, g, s);
                        push(self, b, c);
                    }
                }
                // out = Σ_kl G_(ik),(jl) B_kl: Ḡ += H ⊗ B, B̄ += kronsum(H, G, 2)
                MNode::KronSumA(gg, b) => {
                    if dep[gg.index()] {
                        let c = self.kron(g, b);
                        push(self, gg, c);
                    }
                    if dep[b.index()] {
                        let s = self.shape(b);
                        let c = self.kron_sum_b(g, gg, s);
                        push(self, b, c);
                    }
                }
                // out = Σ_ij A_ij G_(ik),(jl): Ḡ += A ⊗ H, Ā += kronsum(G, H, 1)
                MNode::KronSumB(a, gg) => {
                    if dep[gg.index()] {
                        let c = self.kron(a, g);
                        push(self, gg, c);
                    }
                    if dep[a.index()] {
                        let s = self.shape(a);
                        let c = self.kron_sum_a(gg, g, s);
                        push(self, a, c);
                    }
                }
                MNode::LogDet(a) => {
                    let inv = self.inv(a);
                    let it = self.transpose(inv);
                    let c = self.mul(g, it);
                    push(self, a, c);
                }
            }
        }
        wrt.iter()
            .map(|&v| {
                let vid = self.var(v);
                match adj.get(vid.index()).copied().flatten() {
                    Some(g) => g,
                    None => {
                        let s = self.shape(vid);
                        self.fill(0.0, s)
                    }
                }
            })
            .collect()
    }
}
