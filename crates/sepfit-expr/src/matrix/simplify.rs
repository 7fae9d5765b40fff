//! The simplifier rules that look deeper than one node: collecting like terms of a sum,
//! factoring a common factor out of products, cancelling a matrix against its inverse.
//!
//! A sum `a ± b` (of equal shapes, no broadcasting) is read as terms `cᵢ·tᵢ` (constant
//! coefficients, signs folded in). Two terms merge when
//!
//! * their cores are equal, elementwise factors in any order: `A.*X + X.*A = 2·A.*X`,
//!   `2·Xᵀ·Xᵀ + Xᵀ·Xᵀ = 3·Xᵀ·Xᵀ`;
//! * they are matrix products with a common last factor (or first factor):
//!   `Dᵀ·v + D·v = (D + Dᵀ)·v`, `X·b·cᵀ + X·c·bᵀ = X·(b·cᵀ + c·bᵀ)`,
//!   `0.5·Aᵀ·x − b + 0.5·A·x = 0.5·(A + Aᵀ)·x − b`.
//!
//! When nothing merges, products of a sum and transposed sums are expanded and the terms
//! collected again, kept only when that shortens the sum (`y.*(1 − s) − (1 − y).*s = y − s`,
//! what the gradient of the logistic log-likelihood reduces to; `A·X/t + (Xᵀ·A/t)ᵀ =
//! (A + Aᵀ)·X/t`). A product whose other factor cancels the
//! denominators of a sum's terms is distributed over it: `(y./s − (1 − y)./(1 − s)).*(s.*(1 − s))
//! = y.*(1 − s) − (1 − y).*s`, `s.*(c − y./s) = c·s − y` (the chain rule through `log` of a
//! sigmoid or a softmax).
//!
//! Otherwise the sum is built as it stands, so these rules only ever shorten a
//! form. Every rule is an identity of real matrices (no assumption of symmetry or
//! invertibility beyond what the expression itself already uses: `X⁻¹·X = I` is only applied
//! where `X⁻¹` appears).

use super::graph::{Graph, MId, MNode};
use crate::shape::Shape;

/// The most terms a sum is distributed over, or expanded into and collected again.
const MAX_EXPANDED: usize = 8;

/// The most terms a sum is read into before collecting is skipped (it stays linear-time).
const MAX_TERMS: usize = 24;

#[derive(Clone, Copy, Debug)]
struct Term {
    coef: f64,
    core: MId,
}

impl Graph {
    /// The terms of `id` (times `sign`), appended to `out`; `false` when there are too many.
    /// A constant `c` (a scalar added to an array, or an array of `c`) is the term `c·1` (so
    /// `x + 1 − 1 = x`).
    fn terms(&mut self, id: MId, sign: f64, out: &mut Vec<Term>) -> bool {
        if out.len() >= MAX_TERMS {
            return false;
        }
        let s = self.shape(id);
        let fits = |g: &Self, x: MId| g.shape(x) == s || g.as_const(x).is_some();
        match self.node(id) {
            MNode::Add(a, b) if fits(self, a) && fits(self, b) => self.terms(a, sign, out) && self.terms(b, sign, out),
            MNode::Sub(a, b) if fits(self, a) && fits(self, b) => self.terms(a, sign, out) && self.terms(b, -sign, out),
            MNode::Neg(a) => self.terms(a, -sign, out),
            MNode::Const(v) | MNode::Fill(v) => {
                let one = self.constant(1.0);
                out.push(Term { coef: sign * v.get(), core: one });
                true
            }
            MNode::Mul(c, x) if self.shape(x) == s && self.as_const(c).is_some() => {
                out.push(Term { coef: sign * self.as_const(c).unwrap_or(1.0), core: x });
                true
            }
            _ => {
                out.push(Term { coef: sign, core: id });
                true
            }
        }
    }

    /// The factors of an elementwise product of equal shapes or scalars, sorted (so `A.*X` and
    /// `X.*A`, `x·c` and `c·x` compare equal).
    fn elementwise_factors(&self, id: MId) -> Vec<MId> {
        let mut out = Vec::new();
        let mut stack = vec![id];
        let s = self.shape(id);
        let fits = |x: MId| self.shape(x) == s || self.shape(x) == Shape::Scalar;
        while let Some(t) = stack.pop() {
            match self.node(t) {
                MNode::Mul(a, b) if fits(a) && fits(b) && out.len() + stack.len() < MAX_TERMS => {
                    stack.push(a);
                    stack.push(b);
                }
                _ => out.push(t),
            }
        }
        out.sort();
        out
    }

    fn same_core(&self, a: MId, b: MId) -> bool {
        a == b
            || (matches!(self.node(a), MNode::Mul(..))
                && matches!(self.node(b), MNode::Mul(..))
                && self.elementwise_factors(a) == self.elementwise_factors(b))
    }

    /// The factors of a chain of matrix products, left to right.
    pub(super) fn chain(&self, id: MId) -> Vec<MId> {
        let mut out = Vec::new();
        let mut stack = vec![id];
        while let Some(t) = stack.pop() {
            match self.node(t) {
                MNode::MatMul(a, b) if out.len() + stack.len() < MAX_TERMS => {
                    stack.push(b);
                    stack.push(a);
                }
                _ => out.push(t),
            }
        }
        out
    }

    /// The product of a non-empty chain of factors (right to left, so that a chain ending in
    /// a vector is evaluated as matrix-vector products).
    pub(super) fn product(&mut self, fs: &[MId]) -> MId {
        let mut it = fs.iter().rev();
        let mut acc = *it.next().expect("a non-empty chain");
        for &f in it {
            acc = self.matmul(f, acc);
        }
        acc
    }

    /// `c·t` with the sign outside.
    fn scaled(&mut self, c: f64, t: MId) -> MId {
        if c == 1.0 {
            t
        } else if c == -1.0 {
            self.neg(t)
        } else {
            let k = self.constant(c);
            self.mul(k, t)
        }
    }

    /// `ca·P + cb·Q` written with a common factor: `c·(P + Q)`, `c·(P − Q)`, else as is;
    /// `P + Pᵀ` with the untransposed matrix first.
    pub(super) fn factored_sum(&mut self, ca: f64, p: MId, cb: f64, q: MId) -> MId {
        let (ca, p, cb, q) = if matches!(self.node(p), MNode::Transpose(x) if x == q) { (cb, q, ca, p) } else { (ca, p, cb, q) };
        if ca == cb {
            let s = self.add(p, q);
            self.scaled(ca, s)
        } else if ca == -cb {
            let s = self.sub(p, q);
            self.scaled(ca, s)
        } else {
            let (x, y) = (self.scaled(ca, p), self.scaled(cb, q));
            self.add(x, y)
        }
    }

    /// Merges two terms into one, if they share a core or a first or last matrix factor.
    fn merge(&mut self, a: Term, b: Term) -> Option<Term> {
        if self.same_core(a.core, b.core) {
            return Some(Term { coef: a.coef + b.coef, core: a.core });
        }
        // s·p + s·q = s·(p + q) for a scalar s (not a constant: those are coefficients), the
        // sum merged further where it can be (det(M)·P + det(M)·Q = det(M)·(P + Q))
        if let (MNode::Mul(s, p), MNode::Mul(t, q)) = (self.node(a.core), self.node(b.core))
            && s == t
            && self.shape(s) == crate::shape::Shape::Scalar
            && self.as_const(s).is_none()
            && self.shape(p) == self.shape(q)
        {
            let c = match self.merge(Term { coef: a.coef, core: p }, Term { coef: b.coef, core: q }) {
                Some(m) => self.scaled(m.coef, m.core),
                None => self.factored_sum(a.coef, p, b.coef, q),
            };
            return Some(Term { coef: 1.0, core: self.mul(s, c) });
        }
        // p/s + q/s = (p + q)/s for a scalar s
        if let (MNode::Div(p, s), MNode::Div(q, t)) = (self.node(a.core), self.node(b.core))
            && s == t
            && self.shape(s) == crate::shape::Shape::Scalar
            && self.shape(p) == self.shape(q)
            && let Some(m) = self.merge(Term { coef: a.coef, core: p }, Term { coef: b.coef, core: q })
        {
            let c = self.scaled(m.coef, m.core);
            return Some(Term { coef: 1.0, core: self.div(c, s) });
        }
        let (ca, cb) = (self.chain(a.core), self.chain(b.core));
        if ca.len() < 2 && cb.len() < 2 {
            return None;
        }
        let (la, lb) = (ca.len(), cb.len());
        // common last factors: (P + Q)·v
        let mut k = 0;
        while k + 1 < la && k + 1 < lb && ca[la - 1 - k] == cb[lb - 1 - k] {
            k += 1;
        }
        if k > 0 {
            let (p, q) = (self.product(&ca[..la - k]), self.product(&cb[..lb - k]));
            let s = self.factored_sum(a.coef, p, b.coef, q);
            let tail = self.product(&ca[la - k..]);
            let core = self.matmul(s, tail);
            return Some(Term { coef: 1.0, core });
        }
        // common first factors: X·(P + Q)
        let mut k = 0;
        while k + 1 < la && k + 1 < lb && ca[k] == cb[k] {
            k += 1;
        }
        if k > 0 {
            let (p, q) = (self.product(&ca[k..]), self.product(&cb[k..]));
            let s = self.factored_sum(a.coef, p, b.coef, q);
            let head = self.product(&ca[..k]);
            let core = self.matmul(head, s);
            return Some(Term { coef: 1.0, core });
        }
        None
    }

    /// Collects like terms of `a + sign·b` (equal shapes); `None` when nothing merges.
    pub(super) fn collect_sum(&mut self, a: MId, b: MId, sign: f64) -> Option<MId> {
        // equal shapes, or a scalar constant added to an array
        let s = if self.as_const(a).is_some() { self.shape(b) } else { self.shape(a) };
        if (self.shape(a) != s && self.as_const(a).is_none()) || (self.shape(b) != s && self.as_const(b).is_none()) {
            return None;
        }
        let mut ts = Vec::new();
        if !self.terms(a, 1.0, &mut ts) || !self.terms(b, sign, &mut ts) {
            return None;
        }
        let (merged, _) = self.merge_all(&mut ts);
        if !merged {
            return self.expanded(&ts, s);
        }
        ts.retain(|t| t.coef != 0.0);
        Some(self.rebuilt(&ts, s))
    }

    /// Merges every pair of terms that merges, in order; returns whether anything merged and
    /// whether a merge cancelled (left a coefficient 0).
    fn merge_all(&mut self, ts: &mut Vec<Term>) -> (bool, bool) {
        let (mut merged, mut cancelled) = (false, false);
        let mut i = 0;
        while i < ts.len() {
            let mut j = i + 1;
            while j < ts.len() {
                if let Some(m) = self.merge(ts[i], ts[j]) {
                    ts[i] = m;
                    ts.remove(j);
                    merged = true;
                    cancelled |= m.coef == 0.0;
                } else {
                    j += 1;
                }
            }
            i += 1;
        }
        (merged, cancelled)
    }

    /// The sum of terms, signs folded (`a − c·x` rather than `a + (−c)·x`); zero of shape `s`
    /// when there are none.
    fn rebuilt(&mut self, ts: &[Term], s: Shape) -> MId {
        let mut acc: Option<MId> = None;
        for t in ts {
            acc = Some(match acc {
                None => self.scaled(t.coef, t.core),
                Some(p) if t.coef < 0.0 => {
                    let q = self.scaled(-t.coef, t.core);
                    self.sub(p, q)
                }
                Some(p) => {
                    let q = self.scaled(t.coef, t.core);
                    self.add(p, q)
                }
            });
        }
        match acc {
            // only constants (or only broadcast terms) left of an array: spread to its shape
            Some(r) if self.shape(r) != s => match self.fill_value(r) {
                Some(v) => self.fill(v, s),
                None => {
                    let ones = self.fill(1.0, s);
                    self.mul(r, ones)
                }
            },
            Some(r) => r,
            None => self.fill(0.0, s),
        }
    }

    /// The terms of a sum of shape `s` whose terms may also be broadcast over it (`c − y./s`
    /// with a scalar `c`, `Y./S − t` with a column `t`), like [`Self::terms`].
    fn broadcast_terms(&self, id: MId, sign: f64, out: &mut Vec<Term>) -> bool {
        if out.len() >= MAX_TERMS {
            return false;
        }
        let s = self.shape(id);
        let fits = |x: MId| super::graph::broadcast(self.shape(x), s) == Some(s);
        match self.node(id) {
            MNode::Add(a, b) if fits(a) && fits(b) => self.broadcast_terms(a, sign, out) && self.broadcast_terms(b, sign, out),
            MNode::Sub(a, b) if fits(a) && fits(b) => self.broadcast_terms(a, sign, out) && self.broadcast_terms(b, -sign, out),
            MNode::Neg(a) => self.broadcast_terms(a, -sign, out),
            MNode::Mul(c, x) if self.as_const(c).is_some() && fits(x) => {
                out.push(Term { coef: sign * self.as_const(c).unwrap_or(1.0), core: x });
                true
            }
            _ => {
                out.push(Term { coef: sign, core: id });
                true
            }
        }
    }

    /// The terms of `sum .* v` (or `v .* sum`) for a product `id` with a factor that is a sum
    /// of at most [`MAX_EXPANDED`] terms, each product built (and so simplified); `None` for
    /// anything else.
    fn product_terms(&mut self, id: MId) -> Option<Vec<Term>> {
        let MNode::Mul(u, v) = self.node(id) else { return None };
        let s = self.shape(id);
        for (sum, other) in [(u, v), (v, u)] {
            if self.shape(sum) != s || !matches!(self.node(sum), MNode::Add(..) | MNode::Sub(..)) {
                continue;
            }
            let mut ts = Vec::new();
            if !self.broadcast_terms(sum, 1.0, &mut ts) || ts.len() < 2 || ts.len() > MAX_EXPANDED {
                continue;
            }
            return Some(ts.into_iter().map(|t| Term { coef: t.coef, core: self.mul(t.core, other) }).collect());
        }
        None
    }

    /// The sum of `ts` (of shape `s`, where nothing merged as it stands) with its products of
    /// sums and its transposed sums expanded, if collecting the expanded terms leaves fewer
    /// terms than there were, or as many with some cancelled.
    fn expanded(&mut self, ts: &[Term], s: Shape) -> Option<MId> {
        if ts.len() > MAX_EXPANDED {
            return None;
        }
        let mut ex: Vec<Term> = Vec::new();
        let mut grew = false;
        for t in ts {
            let parts = match self.transposed_terms(t.core) {
                Some(p) => Some(p),
                None => self.product_terms(t.core),
            };
            match parts {
                Some(parts) => {
                    grew = true;
                    for p in parts {
                        if !self.terms(p.core, t.coef * p.coef, &mut ex) {
                            return None;
                        }
                    }
                }
                None => ex.push(*t),
            }
            if ex.len() > 2 * MAX_EXPANDED {
                return None;
            }
        }
        if !grew {
            return None;
        }
        let (_, cancelled) = self.merge_all(&mut ex);
        ex.retain(|t| t.coef != 0.0);
        (ex.len() < ts.len() || (cancelled && ex.len() == ts.len())).then(|| self.rebuilt(&ex, s))
    }

    /// The terms of `(P ± Q)ᵀ` as `Pᵀ`, `±Qᵀ` (for a transposed sum of equal shapes); `None`
    /// for anything else.
    fn transposed_terms(&mut self, id: MId) -> Option<Vec<Term>> {
        let MNode::Transpose(x) = self.node(id) else { return None };
        if !matches!(self.node(x), MNode::Add(..) | MNode::Sub(..)) {
            return None;
        }
        let mut ts = Vec::new();
        if !self.terms(x, 1.0, &mut ts) || ts.len() < 2 || ts.len() > MAX_EXPANDED || ts.iter().any(|t| self.shape(t.core) != self.shape(x)) {
            return None;
        }
        Some(ts.into_iter().map(|t| Term { coef: t.coef, core: self.transpose(t.core) }).collect())
    }

    /// `a .* b` (of shape `out`) distributed over the terms of one factor when the other
    /// factor cancels the denominators of all of them, or of all but one:
    /// `(y./s − (1 − y)./(1 − s)).*(s.*(1 − s)) = y.*(1 − s) − (1 − y).*s`,
    /// `s.*(c − y./s) = c·s − y`. The cancellation is the continuous extension where a
    /// denominator is 0, as `x./x = 1` is.
    pub(super) fn distribute_cancelling(&mut self, a: MId, b: MId, out: Shape) -> Option<MId> {
        for (sum, p) in [(a, b), (b, a)] {
            if self.shape(sum) != out || !matches!(self.node(sum), MNode::Add(..) | MNode::Sub(..)) {
                continue;
            }
            let mut ts = Vec::new();
            if !self.broadcast_terms(sum, 1.0, &mut ts) || ts.len() < 2 || ts.len() > MAX_EXPANDED {
                continue;
            }
            let factors = if self.shape(p) == out && matches!(self.node(p), MNode::Mul(..)) { self.elementwise_factors(p) } else { vec![p] };
            // for each term, the factor index its denominator cancels
            let cancels: Vec<Option<usize>> = ts
                .iter()
                .map(|t| match self.node(t.core) {
                    MNode::Div(n, d) if self.fill_value(d).is_none() => {
                        factors.iter().position(|&f| f == d).filter(|_| factors.len() > 1 || self.shape(n) == out)
                    }
                    _ => None,
                })
                .collect();
            let n = cancels.iter().filter(|c| c.is_some()).count();
            if n == 0 || n + 1 < ts.len() {
                continue;
            }
            let mut out_terms = Vec::with_capacity(ts.len());
            for (t, c) in ts.iter().zip(&cancels) {
                let core = match (c, self.node(t.core)) {
                    (Some(k), MNode::Div(num, _)) => {
                        let mut acc = num;
                        for (i, &f) in factors.iter().enumerate() {
                            if i != *k {
                                acc = self.mul(acc, f);
                            }
                        }
                        acc
                    }
                    _ => self.mul(t.core, p),
                };
                out_terms.push(Term { coef: t.coef, core });
            }
            return Some(self.rebuilt(&out_terms, out));
        }
        None
    }

    /// `L·F` where the last factor `L` of the left chain and the first factor `F` of the right
    /// cancel (`X⁻¹·X`, `X·X⁻¹`, `X⁻ᵀ·Xᵀ`, `Xᵀ·X⁻ᵀ`): the product of the rest, or `I`.
    pub(super) fn cancel_inverse(&mut self, a: MId, b: MId) -> Option<MId> {
        let (ca, cb) = (self.chain(a), self.chain(b));
        let (l, f) = (*ca.last()?, *cb.first()?);
        let inverse_pair = |g: &Self, p: MId, q: MId| match (g.node(p), g.node(q)) {
            (MNode::Inv(m), _) => m == q,
            (MNode::Transpose(t), MNode::Transpose(m)) => matches!(g.node(t), MNode::Inv(x) if x == m),
            _ => false,
        };
        if !(inverse_pair(self, l, f) || inverse_pair(self, f, l)) {
            let r = self.cancel_into_inverse(l, f)?;
            let rest: Vec<MId> = ca[..ca.len() - 1].iter().chain([&r]).chain(&cb[1..]).copied().collect();
            return Some(self.product(&rest));
        }
        let rest: Vec<MId> = ca[..ca.len() - 1].iter().chain(&cb[1..]).copied().collect();
        Some(if rest.is_empty() {
            let (r, _) = super::graph::rc(self.shape(l));
            self.eye(r)
        } else {
            self.product(&rest)
        })
    }

    /// `l·f` where one is the inverse (or inverse transpose) of a product of square matrices
    /// and the other cancels its first or last factor: `Aᵀ·(A·R)⁻ᵀ = R⁻ᵀ`,
    /// `(R·B)⁻ᵀ·Bᵀ = R⁻ᵀ`, `(A·R)⁻¹·A = R⁻¹`, `B·(R·B)⁻¹ = R⁻¹` (as `(A·R)⁻¹ = R⁻¹·A⁻¹` for
    /// square `A` and `R`, both invertible where the inverse exists). So the gradient of
    /// `det(A·X·B)` is `det(A·X·B)·X⁻ᵀ`, the Cookbook's (51).
    fn cancel_into_inverse(&mut self, l: MId, f: MId) -> Option<MId> {
        let square = |g: &Self, x: MId| {
            let (r, c) = super::graph::rc(g.shape(x));
            r == c
        };
        // (the product inside an inverse, whether the inverse is transposed)
        let inverse_of = |g: &Self, x: MId| match g.node(x) {
            MNode::Inv(p) => Some((p, false)),
            MNode::Transpose(t) => match g.node(t) {
                MNode::Inv(p) => Some((p, true)),
                _ => None,
            },
            _ => None,
        };
        // powers: (X^k)⁻¹·X^j = (X^(k−j))⁻¹ for j < k, X^(j−k) for j > k, on either side, and
        // transposed alike (`det(X³)·(X³)⁻ᵀ·(X²)ᵀ = det(X³)·X⁻ᵀ`)
        let power = |g: &Self, x: MId| match g.node(x) {
            MNode::MatPow(b, k) if k > 0 => (b, k),
            _ => (x, 1),
        };
        for (inv_side, other) in [(f, l), (l, f)] {
            let Some((p, transposed)) = inverse_of(self, inv_side) else { continue };
            let (pb, k) = power(self, p);
            if k < 2 || !square(self, pb) {
                continue;
            }
            let o = match (transposed, self.node(other)) {
                (false, _) => other,
                (true, MNode::Transpose(t)) => t,
                _ => continue,
            };
            let (ob, j) = power(self, o);
            if ob != pb {
                continue;
            }
            let r = match j.cmp(&k) {
                std::cmp::Ordering::Less => {
                    let q = self.mat_pow(pb, k - j);
                    self.inv(q)
                }
                std::cmp::Ordering::Greater => self.mat_pow(pb, j - k),
                std::cmp::Ordering::Equal => {
                    let (n, _) = super::graph::rc(self.shape(pb));
                    self.eye(n)
                }
            };
            return Some(if transposed { self.transpose(r) } else { r });
        }
        for (inv_side, other, inverse_on_right) in [(f, l, true), (l, f, false)] {
            let Some((p, transposed)) = inverse_of(self, inv_side) else { continue };
            let ps = self.chain(p);
            if ps.len() < 2 || !ps.iter().all(|&x| square(self, x)) {
                continue;
            }
            // the factor of the product next to `other`: the first when the product is
            // transposed on the right (Aᵀ·(A·R)⁻ᵀ) or inverted on the left ((A·R)⁻¹·A)
            let first = inverse_on_right == transposed;
            let (k, rest) = if first { (ps[0], &ps[1..]) } else { (ps[ps.len() - 1], &ps[..ps.len() - 1]) };
            let want = if transposed { self.transpose(k) } else { k };
            if want != other {
                continue;
            }
            let r = self.product(rest);
            let ri = self.inv(r);
            return Some(if transposed { self.transpose(ri) } else { ri });
        }
        None
    }

    /// `(… .* x.^j .* …) ./ (c·x.^k)`: the powers of `x` in an elementwise product (scalar
    /// factors included) and its divisor combined, `(3·‖x‖²·x·xᵀ)/‖x‖ = 3·‖x‖·x·xᵀ`,
    /// `(a.*x)./x.^3 = a./x.^2`; `None` when no factor has the divisor's base. (The continuous
    /// extension where `x` is 0, as `x./x = 1` is.)
    pub(super) fn cancel_powers(&mut self, a: MId, b: MId, out: Shape) -> Option<MId> {
        if !matches!(self.node(a), MNode::Mul(..)) || self.shape(a) != out || self.fill_value(b).is_some() {
            return None;
        }
        let (c, base, k) = self.power_parts(b);
        let mut fs = self.elementwise_factors(a);
        let i = fs.iter().position(|&f| self.power_parts(f).0 == 1.0 && self.power_parts(f).1 == base)?;
        let (_, _, j) = self.power_parts(fs[i]);
        fs.remove(i);
        if j > k {
            let e = self.constant(j - k);
            fs.push(self.pow(base, e));
        }
        let mut num = fs[0];
        for &f in &fs[1..] {
            num = self.mul(num, f);
        }
        if self.shape(num) != out {
            return None;
        }
        let den = if j < k {
            let e = self.constant(k - j);
            let p = self.pow(base, e);
            let cc = self.constant(c);
            Some(self.mul(cc, p))
        } else if c != 1.0 {
            Some(self.constant(c))
        } else {
            None
        };
        Some(match den {
            Some(d) => self.div(num, d),
            None => num,
        })
    }
}
