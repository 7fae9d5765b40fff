//! The expression graph: a hash-consed arena of nodes (a DAG), where equal subexpressions are
//! one node, every node carries a [`Shape`], and constructors simplify as they build
//! (constant folding, `x*1`, `x+0`, `x^1`, `0*x`, `--x`, ...).
//!
//! Children always have smaller ids than their parents, so id order is a topological order:
//! differentiation, substitution and evaluation are loops over ids, never recursions.
//!
//! ```
//! use sepfit_expr::{Pool, Shape, SymbolKind};
//! let mut p = Pool::new();
//! let x = p.symbol("x", SymbolKind::Parameter, Shape::Scalar);
//! let one = p.constant(1.0);
//! let zero = p.constant(0.0);
//! let xe = p.sym(x);
//! let m = p.mul(xe, one);
//! assert_eq!(m, xe);                       // x*1 = x
//! let s = p.add(m, zero);
//! assert_eq!(s, xe);                       // x+0 = x
//! let e1 = p.call(sepfit_expr::Func::Exp, xe);
//! let e2 = p.call(sepfit_expr::Func::Exp, xe);
//! assert_eq!(e1, e2);                      // shared, not duplicated
//! ```

use crate::func::{Func, Func2};
use crate::shape::Shape;
use std::collections::HashMap;

/// Index of a node in a [`Pool`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExprId(pub u32);

impl ExprId {
    /// Index as `usize`.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Index of a symbol (data column or parameter) in a [`Pool`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SymId(pub u32);

/// What a symbol stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SymbolKind {
    /// A data column (by its index among the data columns given).
    Data(usize),
    /// A parameter to be fitted.
    Parameter,
}

/// A named symbol.
#[derive(Clone, Debug, PartialEq)]
pub struct Symbol {
    /// Its name in the formula.
    pub name: String,
    /// What it stands for.
    pub kind: SymbolKind,
    /// Its shape.
    pub shape: Shape,
}

/// A node of the expression graph.
#[derive(Clone, Copy, Debug)]
pub enum Node {
    /// A constant.
    Const(f64),
    /// A symbol.
    Sym(SymId),
    /// `a + b` (elementwise, scalars broadcast).
    Add(ExprId, ExprId),
    /// `a - b`
    Sub(ExprId, ExprId),
    /// `a * b` elementwise
    Mul(ExprId, ExprId),
    /// `a / b` elementwise
    Div(ExprId, ExprId),
    /// `a ^ b` elementwise
    Pow(ExprId, ExprId),
    /// `-a`
    Neg(ExprId),
    /// `f(a)` elementwise
    Call(Func, ExprId),
    /// `xlogy(a, b)`: `a*log(b)`, 0 where `a = 0` ([`crate::func::xlogy`])
    XLogY(ExprId, ExprId),
    /// `f(a, b)` elementwise ([`crate::Func2`]: `atan2`, `max`, `min`)
    Call2(Func2, ExprId, ExprId),
}

impl PartialEq for Node {
    fn eq(&self, other: &Self) -> bool {
        use Node::*;
        match (self, other) {
            (Const(a), Const(b)) => a.to_bits() == b.to_bits(),
            (Sym(a), Sym(b)) => a == b,
            (Add(a, b), Add(c, d))
            | (Sub(a, b), Sub(c, d))
            | (Mul(a, b), Mul(c, d))
            | (Div(a, b), Div(c, d))
            | (Pow(a, b), Pow(c, d))
            | (XLogY(a, b), XLogY(c, d)) => a == c && b == d,
            (Neg(a), Neg(b)) => a == b,
            (Call(f, a), Call(g, b)) => f == g && a == b,
            (Call2(f, a, b), Call2(g, c, d)) => f == g && a == c && b == d,
            _ => false,
        }
    }
}
impl Eq for Node {}
impl std::hash::Hash for Node {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        use Node::*;
        std::mem::discriminant(self).hash(h);
        match self {
            Const(a) => a.to_bits().hash(h),
            Sym(s) => s.hash(h),
            Add(a, b) | Sub(a, b) | Mul(a, b) | Div(a, b) | Pow(a, b) | XLogY(a, b) => {
                a.hash(h);
                b.hash(h)
            }
            Neg(a) => a.hash(h),
            Call(f, a) => {
                f.hash(h);
                a.hash(h)
            }
            Call2(f, a, b) => {
                f.hash(h);
                a.hash(h);
                b.hash(h)
            }
        }
    }
}

impl Node {
    /// The children of the node (0, 1 or 2).
    pub fn children(&self) -> impl Iterator<Item = ExprId> {
        use Node::*;
        let (a, b) = match *self {
            Const(_) | Sym(_) => (None, None),
            Add(a, b) | Sub(a, b) | Mul(a, b) | Div(a, b) | Pow(a, b) | XLogY(a, b) | Call2(_, a, b) => (Some(a), Some(b)),
            Neg(a) | Call(_, a) => (Some(a), None),
        };
        a.into_iter().chain(b)
    }
}

/// The expression graph. See the module docs.
#[derive(Clone, Debug, Default)]
pub struct Pool {
    nodes: Vec<Node>,
    shapes: Vec<Shape>,
    interned: HashMap<Node, ExprId>,
    symbols: Vec<Symbol>,
    /// Nesting depth of the simplifying constructors now running (see `Pool::rewrite`).
    depth: u32,
    /// Rewrite steps left to the outermost constructor call now running.
    fuel: u32,
}

/// The deepest the simplifying constructors nest before a node is built as it stands.
const MAX_REWRITE_DEPTH: u32 = 64;
/// The most rewrite steps one outermost constructor call may take, so that every call
/// terminates whatever the rules do.
const REWRITE_FUEL: u32 = 4096;

impl Pool {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the pool has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node at `id`.
    pub fn node(&self, id: ExprId) -> Node {
        self.nodes[id.index()]
    }

    /// The shape of `id`.
    pub fn shape(&self, id: ExprId) -> Shape {
        self.shapes[id.index()]
    }

    /// All symbols.
    pub fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }

    /// The symbol `s`.
    pub fn symbol_info(&self, s: SymId) -> &Symbol {
        &self.symbols[s.0 as usize]
    }

    /// Finds a symbol by name.
    pub fn find_symbol(&self, name: &str) -> Option<SymId> {
        self.symbols.iter().position(|s| s.name == name).map(|i| SymId(i as u32))
    }

    /// Declares a symbol (or returns the existing one of that name).
    pub fn symbol(&mut self, name: &str, kind: SymbolKind, shape: Shape) -> SymId {
        if let Some(s) = self.find_symbol(name) {
            return s;
        }
        self.symbols.push(Symbol { name: name.to_string(), kind, shape });
        SymId((self.symbols.len() - 1) as u32)
    }

    /// The constant value of `id`, if it is a constant.
    pub fn as_const(&self, id: ExprId) -> Option<f64> {
        match self.nodes[id.index()] {
            Node::Const(v) => Some(v),
            _ => None,
        }
    }

    fn is_const(&self, id: ExprId, v: f64) -> bool {
        self.as_const(id) == Some(v)
    }

    fn intern(&mut self, node: Node, shape: Shape) -> ExprId {
        if let Some(&id) = self.interned.get(&node) {
            return id;
        }
        let id = ExprId(self.nodes.len() as u32);
        self.nodes.push(node);
        self.shapes.push(shape);
        self.interned.insert(node, id);
        id
    }

    /// A constant node. `-0.0` is stored as `0.0`.
    pub fn constant(&mut self, v: f64) -> ExprId {
        let v = if v == 0.0 { 0.0 } else { v };
        self.intern(Node::Const(v), Shape::Scalar)
    }

    /// The node for symbol `s`.
    pub fn sym(&mut self, s: SymId) -> ExprId {
        let shape = self.symbols[s.0 as usize].shape;
        self.intern(Node::Sym(s), shape)
    }

    /// Runs the rewrite rules of one constructor, or, past [`MAX_REWRITE_DEPTH`] nested rewrites
    /// or [`REWRITE_FUEL`] steps in the outermost call, builds `raw` as it stands: every
    /// constructor terminates, whatever the rules do.
    fn rewrite(&mut self, raw: Node, shape: Shape, rules: impl FnOnce(&mut Self) -> ExprId) -> ExprId {
        if self.depth == 0 {
            self.fuel = REWRITE_FUEL;
        }
        if self.depth >= MAX_REWRITE_DEPTH || self.fuel == 0 {
            return self.intern(raw, shape);
        }
        self.fuel -= 1;
        self.depth += 1;
        let r = rules(self);
        self.depth -= 1;
        r
    }

    fn bshape(&self, a: ExprId, b: ExprId) -> Shape {
        // Callers (lowering, differentiation) only combine shapes that broadcast.
        self.shape(a).broadcast(self.shape(b)).unwrap_or(self.shape(a))
    }

    fn fold(&mut self, v: f64) -> Option<ExprId> {
        v.is_finite().then(|| self.constant(v))
    }

    /// [`Self::fold`] for a product or quotient whose operands are non-zero (`nonzero`): a
    /// result that underflowed to 0 or to a subnormal is not folded (it would print as a zero
    /// divisor, or as a constant that parses to something else), the operands are kept.
    fn fold_scaled(&mut self, v: f64, nonzero: bool) -> Option<ExprId> {
        if nonzero && (v == 0.0 || v.is_subnormal()) { None } else { self.fold(v) }
    }

    /// `a + b`, simplified.
    pub fn add(&mut self, a: ExprId, b: ExprId) -> ExprId {
        let shape = self.bshape(a, b);
        self.rewrite(Node::Add(a, b), shape, |p| p.add_rules(a, b))
    }

    fn add_rules(&mut self, a: ExprId, b: ExprId) -> ExprId {
        if let (Some(x), Some(y)) = (self.as_const(a), self.as_const(b))
            && let Some(c) = self.fold(x + y) {
                return c;
            }
        if self.is_const(a, 0.0) && self.shape(b) == self.bshape(a, b) {
            return b;
        }
        if self.is_const(b, 0.0) && self.shape(a) == self.bshape(a, b) {
            return a;
        }
        if let Node::Neg(c) = self.node(b) {
            return self.sub(a, c);
        }
        if let Node::Neg(c) = self.node(a) {
            return self.sub(b, c);
        }
        if let Some(y) = self.as_const(b)
            && y < 0.0 {
                let c = self.constant(-y);
                return self.sub(a, c);
            }
        if a == b {
            let two = self.constant(2.0);
            return self.mul(two, a);
        }
        let s = self.bshape(a, b);
        self.intern(Node::Add(a, b), s)
    }

    /// `a - b`, simplified.
    pub fn sub(&mut self, a: ExprId, b: ExprId) -> ExprId {
        let shape = self.bshape(a, b);
        self.rewrite(Node::Sub(a, b), shape, |p| p.sub_rules(a, b))
    }

    fn sub_rules(&mut self, a: ExprId, b: ExprId) -> ExprId {
        if let (Some(x), Some(y)) = (self.as_const(a), self.as_const(b))
            && let Some(c) = self.fold(x - y) {
                return c;
            }
        if self.is_const(b, 0.0) && self.shape(a) == self.bshape(a, b) {
            return a;
        }
        if self.is_const(a, 0.0) && self.shape(b) == self.bshape(a, b) {
            return self.neg(b);
        }
        if a == b {
            return self.constant(0.0);
        }
        if let Node::Neg(c) = self.node(b) {
            return self.add(a, c);
        }
        if let Some(y) = self.as_const(b)
            && y < 0.0 {
                let c = self.constant(-y);
                return self.add(a, c);
            }
        let s = self.bshape(a, b);
        self.intern(Node::Sub(a, b), s)
    }

    /// `a * b`, simplified (constants move to the left).
    pub fn mul(&mut self, a: ExprId, b: ExprId) -> ExprId {
        let shape = self.bshape(a, b);
        self.rewrite(Node::Mul(a, b), shape, |p| p.mul_rules(a, b))
    }

    fn mul_rules(&mut self, a: ExprId, b: ExprId) -> ExprId {
        let (ca, cb) = (self.as_const(a), self.as_const(b));
        if let (Some(x), Some(y)) = (ca, cb)
            && let Some(c) = self.fold_scaled(x * y, x != 0.0 && y != 0.0) {
                return c;
            }
        if ca == Some(0.0) || cb == Some(0.0) {
            let s = self.bshape(a, b);
            return if s.is_scalar() { self.constant(0.0) } else { self.zero_like(s) };
        }
        if ca == Some(1.0) && self.shape(b) == self.bshape(a, b) {
            return b;
        }
        if cb == Some(1.0) && self.shape(a) == self.bshape(a, b) {
            return a;
        }
        if ca == Some(-1.0) && self.shape(b) == self.bshape(a, b) {
            return self.neg(b);
        }
        if cb == Some(-1.0) && self.shape(a) == self.bshape(a, b) {
            return self.neg(a);
        }
        if cb.is_some() && ca.is_none() {
            return self.mul(b, a);
        }
        if let Node::Neg(x) = self.node(a) {
            let m = self.mul(x, b);
            return self.neg(m);
        }
        if let Node::Neg(y) = self.node(b) {
            let m = self.mul(a, y);
            return self.neg(m);
        }
        if let Some(x) = ca {
            if x < 0.0 {
                let c = self.constant(-x);
                let m = self.mul(c, b);
                return self.neg(m);
            }
            if let Node::Mul(l, r) = self.node(b)
                && let Some(y) = self.as_const(l)
                    && let Some(c) = self.fold_scaled(x * y, x != 0.0 && y != 0.0) {
                        return self.mul(c, r);
                    }
        }
        // Constant factors gather at the front: a*(c*x) = c*(a*x), (c*x)*b = c*(x*b).
        if ca.is_none() {
            if let Node::Mul(l, r) = self.node(b)
                && let Some(c) = self.as_const(l) {
                    let m = self.mul(a, r);
                    let c = self.constant(c);
                    return self.mul(c, m);
                }
            if cb.is_none()
                && let Node::Mul(l, r) = self.node(a)
                    && let Some(c) = self.as_const(l) {
                        let m = self.mul(r, b);
                        let c = self.constant(c);
                        return self.mul(c, m);
                    }
        }
        // (1/x)*y = y/x and y*(1/x) = y/x
        if let Node::Div(n, d) = self.node(a)
            && self.is_const(n, 1.0) {
                return self.div(b, d);
            }
        if let Node::Div(n, d) = self.node(b)
            && self.is_const(n, 1.0) {
                return self.div(a, d);
            }
        // x*x = x^2, but not for a constant (c*c did not fold: it is not finite, and c^2 would
        // print as a power of constants)
        if a == b && ca.is_none() {
            let two = self.constant(2.0);
            return self.pow(a, two);
        }
        let s = self.bshape(a, b);
        self.intern(Node::Mul(a, b), s)
    }

    fn zero_like(&mut self, s: Shape) -> ExprId {
        // Model formulas broadcast scalars, so a scalar zero stands for any zero.
        let _ = s;
        self.constant(0.0)
    }

    /// `a / b`, simplified. Division by a constant zero is left unsimplified (lowering reports it).
    pub fn div(&mut self, a: ExprId, b: ExprId) -> ExprId {
        let shape = self.bshape(a, b);
        self.rewrite(Node::Div(a, b), shape, |p| p.div_rules(a, b))
    }

    fn div_rules(&mut self, a: ExprId, b: ExprId) -> ExprId {
        let (ca, cb) = (self.as_const(a), self.as_const(b));
        if let (Some(x), Some(y)) = (ca, cb)
            && let Some(c) = self.fold_scaled(x / y, x != 0.0) {
                return c;
            }
        if cb == Some(1.0) && self.shape(a) == self.bshape(a, b) {
            return a;
        }
        if cb == Some(-1.0) && self.shape(a) == self.bshape(a, b) {
            return self.neg(a);
        }
        if ca == Some(0.0) && cb != Some(0.0) {
            return self.constant(0.0);
        }
        // x/x = 1, but not 0/0 (constants that did not fold are not finite or divide by zero)
        if a == b && ca.is_none() {
            return self.constant(1.0);
        }
        if let Node::Neg(x) = self.node(a) {
            let d = self.div(x, b);
            return self.neg(d);
        }
        if let Node::Neg(y) = self.node(b) {
            let d = self.div(a, y);
            return self.neg(d);
        }
        if let Some(x) = ca
            && x < 0.0 {
                let c = self.constant(-x);
                let d = self.div(c, b);
                return self.neg(d);
            }
        if let Some(y) = cb
            && y < 0.0 {
                let c = self.constant(-y);
                let d = self.div(a, c);
                return self.neg(d);
            }
        // (k*x)/c = (k/c)*x for constants k, c
        if let (Node::Mul(k, x), Some(c)) = (self.node(a), cb)
            && let Some(k) = self.as_const(k)
                && let Some(kc) = self.fold_scaled(k / c, k != 0.0) {
                    return self.mul(kc, x);
                }
        // (p/q)/b = p/(q*b), unless q*b is a product of constants that overflows (`y/1e300/1e300`
        // would print as `y/(1e300*1e300)`, which is not a finite constant)
        if let Node::Div(p, q) = self.node(a)
            && !matches!((self.as_const(q), cb), (Some(x), Some(y)) if !(x * y).is_finite())
        {
            let qb = self.mul(q, b);
            return self.div(p, qb);
        }
        let s = self.bshape(a, b);
        self.intern(Node::Div(a, b), s)
    }

    /// `a ^ b`, simplified.
    pub fn pow(&mut self, a: ExprId, b: ExprId) -> ExprId {
        let shape = self.bshape(a, b);
        self.rewrite(Node::Pow(a, b), shape, |p| p.pow_rules(a, b))
    }

    fn pow_rules(&mut self, a: ExprId, b: ExprId) -> ExprId {
        let (ca, cb) = (self.as_const(a), self.as_const(b));
        if let (Some(x), Some(y)) = (ca, cb)
            && let Some(c) = self.fold(crate::func::pow(x, y)) {
                return c;
            }
        if cb == Some(0.0) {
            return self.constant(1.0);
        }
        if cb == Some(1.0) {
            return a;
        }
        if ca == Some(1.0) {
            return self.constant(1.0);
        }
        if cb == Some(2.0)
            && let Node::Call(Func::Sqrt, x) = self.node(a) {
                return x;
            }
        if cb == Some(0.5) {
            return self.call(Func::Sqrt, a);
        }
        let s = self.bshape(a, b);
        self.intern(Node::Pow(a, b), s)
    }

    /// `-a`, simplified.
    pub fn neg(&mut self, a: ExprId) -> ExprId {
        let shape = self.shape(a);
        self.rewrite(Node::Neg(a), shape, |p| p.neg_rules(a))
    }

    fn neg_rules(&mut self, a: ExprId) -> ExprId {
        if let Some(x) = self.as_const(a) {
            return self.constant(-x);
        }
        match self.node(a) {
            Node::Neg(x) => x,
            Node::Sub(x, y) => self.sub(y, x),
            _ => {
                let s = self.shape(a);
                self.intern(Node::Neg(a), s)
            }
        }
    }

    /// `f(a)`, simplified.
    pub fn call(&mut self, f: Func, a: ExprId) -> ExprId {
        if let Some(x) = self.as_const(a)
            && let Some(c) = self.fold(f.apply(x)) {
                return c;
            }
        match (f, self.node(a)) {
            (Func::Log, Node::Call(Func::Exp, x)) => return x,
            (Func::Exp, Node::Call(Func::Log, x)) => return x,
            (Func::Abs, Node::Call(Func::Abs, _)) => return a,
            _ => {}
        }
        let s = self.shape(a);
        self.intern(Node::Call(f, a), s)
    }

    /// `xlogy(a, b)` ([`crate::func::xlogy`]), simplified: folded for constants,
    /// `xlogy(0, b) = 0`, and `xlogy(a, c) = log(c)*a` (`c*log(b)`) for a constant `c` whose
    /// logarithm is finite (a nonzero constant `a`).
    pub fn xlogy(&mut self, a: ExprId, b: ExprId) -> ExprId {
        let shape = self.bshape(a, b);
        self.rewrite(Node::XLogY(a, b), shape, |p| p.xlogy_rules(a, b))
    }

    fn xlogy_rules(&mut self, a: ExprId, b: ExprId) -> ExprId {
        let (ca, cb) = (self.as_const(a), self.as_const(b));
        if let (Some(x), Some(y)) = (ca, cb)
            && let Some(c) = self.fold(crate::func::xlogy(x, y)) {
                return c;
            }
        if ca == Some(0.0) {
            return self.constant(0.0);
        }
        if let Some(y) = cb
            && let Some(l) = self.fold(y.ln()) {
                return self.mul(a, l);
            }
        if ca.is_some() {
            let l = self.call(Func::Log, b);
            return self.mul(a, l);
        }
        let s = self.bshape(a, b);
        self.intern(Node::XLogY(a, b), s)
    }

    /// `f(a, b)` ([`crate::Func2`]), folded where both arguments are constants, and
    /// `max(a, a) = min(a, a) = a`.
    pub fn call2(&mut self, f: Func2, a: ExprId, b: ExprId) -> ExprId {
        if let (Some(x), Some(y)) = (self.as_const(a), self.as_const(b))
            && let Some(c) = self.fold(f.apply(x, y)) {
                return c;
            }
        if a == b && f != Func2::Atan2 {
            return a;
        }
        let s = self.bshape(a, b);
        self.intern(Node::Call2(f, a, b), s)
    }

    /// Marks every node reachable from `roots`: `reach[i]` for `i` in `0..=max(roots)`.
    pub fn reachable(&self, roots: &[ExprId]) -> Vec<bool> {
        let top = roots.iter().map(|r| r.index() + 1).max().unwrap_or(0);
        let mut reach = vec![false; top];
        for r in roots {
            reach[r.index()] = true;
        }
        for i in (0..top).rev() {
            if reach[i] {
                for c in self.nodes[i].children() {
                    reach[c.index()] = true;
                }
            }
        }
        reach
    }

    /// The symbols that `root` depends on, sorted.
    pub fn free_symbols(&self, root: ExprId) -> Vec<SymId> {
        let reach = self.reachable(&[root]);
        let mut out: Vec<SymId> = reach
            .iter()
            .enumerate()
            .filter(|(_, r)| **r)
            .filter_map(|(i, _)| match self.nodes[i] {
                Node::Sym(s) => Some(s),
                _ => None,
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Whether `root` depends on symbol `s`.
    pub fn depends_on(&self, root: ExprId, s: SymId) -> bool {
        self.free_symbols(root).contains(&s)
    }

    /// Replaces symbols by expressions throughout `root`, simplifying as it rebuilds.
    pub fn substitute(&mut self, root: ExprId, map: &HashMap<SymId, ExprId>) -> ExprId {
        let reach = self.reachable(&[root]);
        let mut new = vec![ExprId(u32::MAX); reach.len()];
        for i in 0..reach.len() {
            if !reach[i] {
                continue;
            }
            let m = |e: ExprId| new[e.index()];
            new[i] = match self.nodes[i] {
                Node::Const(_) => ExprId(i as u32),
                Node::Sym(s) => map.get(&s).copied().unwrap_or(ExprId(i as u32)),
                Node::Add(a, b) => {
                    let (a, b) = (m(a), m(b));
                    self.add(a, b)
                }
                Node::Sub(a, b) => {
                    let (a, b) = (m(a), m(b));
                    self.sub(a, b)
                }
                Node::Mul(a, b) => {
                    let (a, b) = (m(a), m(b));
                    self.mul(a, b)
                }
                Node::Div(a, b) => {
                    let (a, b) = (m(a), m(b));
                    self.div(a, b)
                }
                Node::Pow(a, b) => {
                    let (a, b) = (m(a), m(b));
                    self.pow(a, b)
                }
                Node::Neg(a) => {
                    let a = m(a);
                    self.neg(a)
                }
                Node::Call(f, a) => {
                    let a = m(a);
                    self.call(f, a)
                }
                Node::XLogY(a, b) => {
                    let (a, b) = (m(a), m(b));
                    self.xlogy(a, b)
                }
                Node::Call2(f, a, b) => {
                    let (a, b) = (m(a), m(b));
                    self.call2(f, a, b)
                }
            };
        }
        new[root.index()]
    }

    /// Evaluates `root` at a point: `value(sym, row)` gives each symbol's value.
    ///
    /// A plain reference evaluator (one pass over the reachable nodes); use
    /// [`crate::Program`] for speed.
    pub fn eval(&self, root: ExprId, value: &dyn Fn(SymId) -> f64) -> f64 {
        let reach = self.reachable(&[root]);
        let mut v = vec![0.0; reach.len()];
        for i in 0..reach.len() {
            if !reach[i] {
                continue;
            }
            let g = |e: ExprId| v[e.index()];
            v[i] = match self.nodes[i] {
                Node::Const(c) => c,
                Node::Sym(s) => value(s),
                Node::Add(a, b) => g(a) + g(b),
                Node::Sub(a, b) => g(a) - g(b),
                Node::Mul(a, b) => g(a) * g(b),
                Node::Div(a, b) => g(a) / g(b),
                Node::Pow(a, b) => crate::func::pow(g(a), g(b)),
                Node::Neg(a) => -g(a),
                Node::Call(f, a) => f.apply(g(a)),
                Node::XLogY(a, b) => crate::func::xlogy(g(a), g(b)),
                Node::Call2(f, a, b) => f.apply(g(a), g(b)),
            };
        }
        v[root.index()]
    }
}
