//! Exact symbolic derivatives.
//!
//! `Pool::diff(root, s)` applies the chain rule node by node in id (topological) order, so the
//! derivative of a node reuses its children's derivatives and the nodes of the original
//! expression: `d/db exp(-b*t) = -t*exp(-b*t)` shares the `exp(-b*t)` node with the value.
//!
//! | node        | derivative                                   |
//! |-------------|----------------------------------------------|
//! | `a ± b`     | `a' ± b'`                                    |
//! | `a*b`       | `a'*b + a*b'`                                |
//! | `a/b`       | `a'/b`, `-(a*b')/b^2` or `(a'*b - a*b')/b^2` |
//! | `a^c`       | `c*a^(c-1)*a'` (constant `c`)                |
//! | `c^b`       | `b'*xlogy(c^b, c)` (constant `c`; `log(c)*b'*c^b` for `c > 0`) |
//! | `a^b`       | `b'*xlogy(a^b, a) + a^b*(b*a'/a)`; `b'*xlogy(a^b, a)` for `a` free of the variable |
//! | `xlogy(a, b)` | `xlogy(a', b) + a*b'/b`                    |
//! | `f(a)`      | `a'*f'(a)`, by the elementary functions' one table, `Func::chain` (shared with the matrix graph) |
//!
//! `xlogy(a^b, a)` is `a^b*log(a)` except that it is 0 where `a^b` is 0: the derivative of
//! `t^p` in `p` at `t = 0` is 0 (for `p > 0`), not `0*log(0) = NaN`; and `xlogy(a', b)` keeps
//! the next derivative 0 there too.
//!
//! The power rules stay here: forward mode combines the two partials of `a^b` into one
//! expression, where the matrix graph's reverse mode keeps them apart, and each tower's printed
//! form of them is fixed by its snapshot tests.

use crate::func::{Build, Func};
use crate::pool::{ExprId, Node, Pool, SymId};

/// The derivative rules of the elementary functions ([`Func::chain`]) build into the pool.
impl Build for Pool {
    type Id = ExprId;
    fn constant(&mut self, v: f64) -> ExprId {
        Pool::constant(self, v)
    }
    fn add(&mut self, a: ExprId, b: ExprId) -> ExprId {
        Pool::add(self, a, b)
    }
    fn sub(&mut self, a: ExprId, b: ExprId) -> ExprId {
        Pool::sub(self, a, b)
    }
    fn mul(&mut self, a: ExprId, b: ExprId) -> ExprId {
        Pool::mul(self, a, b)
    }
    fn div(&mut self, a: ExprId, b: ExprId) -> ExprId {
        Pool::div(self, a, b)
    }
    fn pow(&mut self, a: ExprId, b: ExprId) -> ExprId {
        Pool::pow(self, a, b)
    }
    fn neg(&mut self, a: ExprId) -> ExprId {
        Pool::neg(self, a)
    }
    fn call(&mut self, f: Func, a: ExprId) -> ExprId {
        Pool::call(self, f, a)
    }
}

impl Pool {
    /// The exact partial derivative of `root` with respect to symbol `s`, simplified.
    ///
    /// ```
    /// use sepfit_expr::ModelFormula;
    /// let m = ModelFormula::parse("y ~ a*exp(-b*t)", &["t", "y"]).unwrap();
    /// let (pool, rhs) = (m.pool(), m.rhs());
    /// let mut pool = pool.clone();
    /// let b = pool.find_symbol("b").unwrap();
    /// let d = pool.diff(rhs, b);
    /// assert_eq!(pool.to_plain(d), "-a*t*exp(-b*t)");
    /// ```
    pub fn diff(&mut self, root: ExprId, s: SymId) -> ExprId {
        let reach = self.reachable(&[root]);
        let zero = self.constant(0.0);
        let one = self.constant(1.0);
        let mut d = vec![zero; reach.len()];
        // Which nodes depend on `s` at all: a forward pass.
        let mut dep = vec![false; reach.len()];
        for i in 0..reach.len() {
            if !reach[i] {
                continue;
            }
            let node = self.node(ExprId(i as u32));
            dep[i] = match node {
                Node::Sym(t) => t == s,
                _ => node.children().any(|c| dep[c.index()]),
            };
        }
        for i in 0..reach.len() {
            if !reach[i] || !dep[i] {
                continue;
            }
            let g = |e: ExprId| d[e.index()];
            d[i] = match self.node(ExprId(i as u32)) {
                Node::Const(_) => zero,
                Node::Sym(_) => one,
                Node::Add(a, b) => self.add(g(a), g(b)),
                Node::Sub(a, b) => self.sub(g(a), g(b)),
                Node::Neg(a) => self.neg(g(a)),
                Node::Mul(a, b) => {
                    let (da, db) = (g(a), g(b));
                    let l = self.mul(da, b);
                    let r = self.mul(a, db);
                    self.add(l, r)
                }
                Node::Div(a, b) => {
                    let (da, db) = (g(a), g(b));
                    if !dep[b.index()] {
                        self.div(da, b)
                    } else {
                        let two = self.constant(2.0);
                        let b2 = self.pow(b, two);
                        if !dep[a.index()] {
                            let num = self.mul(a, db);
                            let q = self.div(num, b2);
                            self.neg(q)
                        } else {
                            let l = self.mul(da, b);
                            let r = self.mul(a, db);
                            let num = self.sub(l, r);
                            self.div(num, b2)
                        }
                    }
                }
                Node::Pow(a, b) => {
                    let (da, db) = (g(a), g(b));
                    if let Some(c) = self.as_const(b) {
                        let cm1 = self.constant(c - 1.0);
                        let cc = self.constant(c);
                        let p = self.pow(a, cm1);
                        let m = self.mul(p, da);
                        self.mul(cc, m)
                    } else if !dep[a.index()] {
                        let me = ExprId(i as u32);
                        let xl = self.xlogy(me, a);
                        self.mul(db, xl)
                    } else {
                        let me = ExprId(i as u32);
                        let xl = self.xlogy(me, a);
                        let t1 = self.mul(db, xl);
                        let ba = self.mul(b, da);
                        let q = self.div(ba, a);
                        let t2 = self.mul(me, q);
                        self.add(t1, t2)
                    }
                }
                Node::XLogY(a, b) => {
                    let (da, db) = (g(a), g(b));
                    let t1 = if dep[a.index()] { self.xlogy(da, b) } else { zero };
                    let t2 = if dep[b.index()] {
                        let n = self.mul(a, db);
                        self.div(n, b)
                    } else {
                        zero
                    };
                    self.add(t1, t2)
                }
                Node::Call(f, a) => {
                    let me = ExprId(i as u32);
                    f.chain(self, a, me, g(a)).unwrap_or(zero)
                }
                Node::Call2(f, a, b) => {
                    let me = ExprId(i as u32);
                    let (pa, pb) = f.partials(self, a, b, me);
                    let t1 = if dep[a.index()] { self.mul(g(a), pa) } else { zero };
                    let t2 = if dep[b.index()] { self.mul(g(b), pb) } else { zero };
                    self.add(t1, t2)
                }
            };
        }
        d[root.index()]
    }
}
