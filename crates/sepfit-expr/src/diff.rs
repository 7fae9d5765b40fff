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
//! | `c^b`       | `c^b*log(c)*b'` (constant `c`)               |
//! | `a^b`       | `a^b*(b'*log(a) + b*a'/a)`                   |
//! | `exp(a)`    | `a'*exp(a)`                                  |
//! | `log(a)`    | `a'/a`; `log10(a)`: `a'/(a*log(10))`         |
//! | `sqrt(a)`   | `a'/(2*sqrt(a))`                             |
//! | `sin, cos, tan` | `a'*cos(a)`, `-a'*sin(a)`, `a'/cos(a)^2` |
//! | `asin, acos, atan` | `a'/sqrt(1-a^2)`, `-a'/sqrt(1-a^2)`, `a'/(1+a^2)` |
//! | `sinh, cosh, tanh` | `a'*cosh(a)`, `a'*sinh(a)`, `a'*(1-tanh(a)^2)` |
//! | `abs(a)`    | `a'*sign(a)`; `sign(a)`: 0                   |

use crate::func::Func;
use crate::pool::{ExprId, Node, Pool, SymId};

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
                        let la = self.call(Func::Log, a);
                        let m = self.mul(db, me);
                        self.mul(m, la)
                    } else {
                        let me = ExprId(i as u32);
                        let la = self.call(Func::Log, a);
                        let t1 = self.mul(db, la);
                        let ba = self.mul(b, da);
                        let t2 = self.div(ba, a);
                        let s = self.add(t1, t2);
                        self.mul(me, s)
                    }
                }
                Node::Call(f, a) => {
                    let da = g(a);
                    let me = ExprId(i as u32);
                    match f {
                        Func::Exp => self.mul(da, me),
                        Func::Log => self.div(da, a),
                        Func::Log10 => {
                            let l10 = self.constant(std::f64::consts::LN_10);
                            let den = self.mul(l10, a);
                            self.div(da, den)
                        }
                        Func::Sqrt => {
                            let two = self.constant(2.0);
                            let den = self.mul(two, me);
                            self.div(da, den)
                        }
                        Func::Sin => {
                            let c = self.call(Func::Cos, a);
                            self.mul(da, c)
                        }
                        Func::Cos => {
                            let s = self.call(Func::Sin, a);
                            let m = self.mul(da, s);
                            self.neg(m)
                        }
                        Func::Tan => {
                            let c = self.call(Func::Cos, a);
                            let two = self.constant(2.0);
                            let c2 = self.pow(c, two);
                            self.div(da, c2)
                        }
                        Func::Asin | Func::Acos => {
                            let two = self.constant(2.0);
                            let a2 = self.pow(a, two);
                            let one = self.constant(1.0);
                            let r = self.sub(one, a2);
                            let sq = self.call(Func::Sqrt, r);
                            let q = self.div(da, sq);
                            if f == Func::Acos { self.neg(q) } else { q }
                        }
                        Func::Atan => {
                            let two = self.constant(2.0);
                            let a2 = self.pow(a, two);
                            let one = self.constant(1.0);
                            let den = self.add(one, a2);
                            self.div(da, den)
                        }
                        Func::Sinh => {
                            let c = self.call(Func::Cosh, a);
                            self.mul(da, c)
                        }
                        Func::Cosh => {
                            let s = self.call(Func::Sinh, a);
                            self.mul(da, s)
                        }
                        Func::Tanh => {
                            let two = self.constant(2.0);
                            let t2 = self.pow(me, two);
                            let one = self.constant(1.0);
                            let r = self.sub(one, t2);
                            self.mul(da, r)
                        }
                        Func::Abs => {
                            let sg = self.call(Func::Sign, a);
                            self.mul(da, sg)
                        }
                        Func::Sign => zero,
                    }
                }
            };
        }
        d[root.index()]
    }
}
