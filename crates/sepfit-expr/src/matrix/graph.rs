//! The typed matrix expression graph: a hash-consed arena of nodes whose shapes are checked
//! when the graph is built from a formula, and which simplify as they are built.
//!
//! Children always have smaller ids than their parents, so id order is a topological order and
//! every pass (differentiation, evaluation) is a loop over ids, never a recursion.
//!
//! Shapes reuse [`Shape`] and [`Dim`]: a vector is a column (`n×1`), a row vector is the
//! `Matrix(Fixed(1), m)`, and `1×1` is a scalar. [`rc`] and [`from_rc`] convert between a shape
//! and its (rows, columns) pair, so that `x'*x` is a scalar and `x*b'` an `n×m` matrix.

use crate::func::{Build, Func, Func2};
use crate::shape::{Dim, Shape};
use std::collections::HashMap;

/// Index of a node in a [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MId(pub u32);

impl MId {
    /// Index as `usize`.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// An `f64` compared and hashed by its bits (so nodes can be hash-consed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Num(u64);

impl Num {
    /// Wraps a value (`-0.0` becomes `0.0`).
    pub fn new(v: f64) -> Self {
        Num(if v == 0.0 { 0.0f64 } else { v }.to_bits())
    }
    /// The value.
    pub fn get(self) -> f64 {
        f64::from_bits(self.0)
    }
}

/// A node of the matrix graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MNode {
    /// A scalar constant.
    Const(Num),
    /// An array of the node's (non-scalar) shape, every entry equal to the value (`ones(n)`).
    Fill(Num),
    /// The identity matrix of the given size.
    Eye(Dim),
    /// A declared variable, by index into [`Graph::vars`].
    Var(u32),
    /// `a + b` elementwise, with broadcasting.
    Add(MId, MId),
    /// `a - b` elementwise, with broadcasting.
    Sub(MId, MId),
    /// `a .* b` elementwise, with broadcasting (a scalar times anything is this node).
    Mul(MId, MId),
    /// `a ./ b` elementwise, with broadcasting.
    Div(MId, MId),
    /// `a .^ b` elementwise, with broadcasting.
    Pow(MId, MId),
    /// `-a`
    Neg(MId),
    /// `f(a)` elementwise.
    Call(Func, MId),
    /// `xlogy(a, b)` elementwise: `a .* log(b)`, 0 where `a` is 0 ([`crate::func::xlogy`]).
    XLogY(MId, MId),
    /// `f(a, b)` elementwise, with broadcasting ([`crate::Func2`]: `atan2`, `max`, `min`).
    Call2(Func2, MId, MId),
    /// Matrix product `a * b`.
    MatMul(MId, MId),
    /// Transpose `a'`.
    Transpose(MId),
    /// Sum of all entries.
    Sum(MId),
    /// `sum(A, 1)`: column sums, a `1×c` row.
    SumRows(MId),
    /// `sum(A, 2)`: row sums, an `r×1` column.
    SumCols(MId),
    /// Euclidean norm of a vector, `‖v‖₂`.
    Norm2(MId),
    /// Frobenius norm, `‖A‖_F`.
    NormF(MId),
    /// Trace.
    Trace(MId),
    /// `diag(v)`: the diagonal matrix with `v` on its diagonal.
    DiagM(MId),
    /// `diag(A)`: the diagonal of a square matrix, as a vector.
    DiagV(MId),
    /// Matrix inverse.
    Inv(MId),
    /// Determinant.
    Det(MId),
    /// `log|det(A)|`.
    LogDet(MId),
    /// `logsumexp(A) = log(Σᵢⱼ exp(Aᵢⱼ))`, computed as `m + log(Σ exp(Aᵢⱼ − m))`, `m = max A`.
    LogSumExp(MId),
    /// `softmax(A) = exp(A − m)/Σ exp(A − m)` over all entries (the gradient of `logsumexp`).
    Softmax(MId),
    /// `logsumexp(A, d)`: `logsumexp` of each column (`d = 1`, a row) or of each row (`d = 2`,
    /// a column), stable as `logsumexp` is.
    LogSumExpDim(MId, u8),
    /// `softmax(A, d)`: each column (`d = 1`) or each row (`d = 2`) normalised by `softmax`
    /// (the gradient of `logsumexp(A, d)`).
    SoftmaxDim(MId, u8),
    /// `X^k`: the matrix power of a square matrix, `k ≥ 2` (`X^1 = X`, `X^0 = I`, and a
    /// negative power is the power of the inverse).
    MatPow(MId, i32),
    /// `pinv(X) = X⁺`: the Moore–Penrose pseudo-inverse of a matrix of full column rank,
    /// `(XᵀX)⁻¹Xᵀ` (evaluated by a QR factorisation, `R⁻¹Qᵀ`).
    Pinv(MId),
    /// `kron(A, B) = A ⊗ B`: the Kronecker product, block `(i, j)` is `A_ij B`.
    Kron(MId, MId),
    /// The adjoint of `A` in `A ⊗ B`: `G ⊙⊗ B`, the `ra×ca` matrix of the block sums
    /// `Σ_kl G_{(i,k),(j,l)} B_kl` of `G` (`ra·rb × ca·cb`) weighted by `B`. The node's shape
    /// gives `ra×ca`; printed `kronsum(G, B)`.
    KronSumA(MId, MId),
    /// The adjoint of `B` in `A ⊗ B`: the `rb×cb` matrix `Σ_ij A_ij G_{(i,k),(j,l)}`; printed
    /// `kronsum(A, G)`.
    KronSumB(MId, MId),
}

impl MNode {
    /// The children of the node (0, 1 or 2).
    pub fn children(&self) -> impl Iterator<Item = MId> {
        use MNode::*;
        let (a, b) = match *self {
            Const(_) | Fill(_) | Eye(_) | Var(_) => (None, None),
            Add(a, b) | Sub(a, b) | Mul(a, b) | Div(a, b) | Pow(a, b) | XLogY(a, b) | Call2(_, a, b) | MatMul(a, b) | Kron(a, b)
            | KronSumA(a, b) | KronSumB(a, b) => (Some(a), Some(b)),
            Neg(a) | Call(_, a) | Transpose(a) | Sum(a) | SumRows(a) | SumCols(a) | Norm2(a) | NormF(a)
            | Trace(a) | DiagM(a) | DiagV(a) | Inv(a) | Det(a) | LogDet(a) | LogSumExp(a) | Softmax(a) | MatPow(a, _)
            | LogSumExpDim(a, _) | SoftmaxDim(a, _) | Pinv(a) => (Some(a), None),
        };
        a.into_iter().chain(b)
    }
}

/// A declared variable.
#[derive(Clone, Debug, PartialEq)]
pub struct Var {
    /// Its name.
    pub name: String,
    /// Its shape.
    pub shape: Shape,
}

/// `Dim::Fixed(1)`.
pub const ONE: Dim = Dim::Fixed(1);

/// (rows, columns) of a shape: a scalar is `1×1`, a vector `n×1`.
pub fn rc(s: Shape) -> (Dim, Dim) {
    match s {
        Shape::Scalar => (ONE, ONE),
        Shape::Vector(d) => (d, ONE),
        Shape::Matrix(r, c) => (r, c),
    }
}

/// The shape with the given rows and columns (`1×1` → scalar, `n×1` → vector).
pub fn from_rc(r: Dim, c: Dim) -> Shape {
    match (r, c) {
        (ONE, ONE) => Shape::Scalar,
        (r, ONE) => Shape::Vector(r),
        (r, c) => Shape::Matrix(r, c),
    }
}

fn bdim(a: Dim, b: Dim) -> Option<Dim> {
    if a == b {
        Some(a)
    } else if a == ONE {
        Some(b)
    } else if b == ONE {
        Some(a)
    } else {
        None
    }
}

/// The shape of an elementwise operation with broadcasting: each dimension must agree or be 1
/// on one side (a scalar goes with anything; a column minus a row is a matrix).
pub fn broadcast(a: Shape, b: Shape) -> Option<Shape> {
    let (ar, ac) = rc(a);
    let (br, bc) = rc(b);
    Some(from_rc(bdim(ar, br)?, bdim(ac, bc)?))
}

/// The transposed shape.
pub fn transposed(s: Shape) -> Shape {
    let (r, c) = rc(s);
    from_rc(c, r)
}

/// The typed, hash-consed matrix expression graph. See the module docs.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    nodes: Vec<MNode>,
    shapes: Vec<Shape>,
    interned: HashMap<(MNode, Shape), MId>,
    /// Declared variables.
    pub vars: Vec<Var>,
    /// Names of the symbolic dimensions (`Dim::Sym(i)` is `dims[i]`).
    pub dims: Vec<String>,
    /// Symbolic dimensions that are products of two others (`n*m`, from `kron`): `(i, (a, b))`
    /// for `Dim::Sym(i) = a·b`.
    pub dim_products: Vec<(u32, (Dim, Dim))>,
    /// Nesting depth of the simplifying constructors now running (see [`Graph::rewrite`]).
    depth: u32,
    /// Rewrite steps left to the outermost constructor call now running.
    fuel: u32,
}

/// The deepest the simplifying constructors nest before a node is built as it stands.
const MAX_REWRITE_DEPTH: u32 = 64;
/// The most rewrite steps one outermost constructor call may take: the rewrites move
/// constants and signs around and could, in some combination, undo each other; with a budget
/// every call terminates (a node past the budget is simply not simplified further).
const REWRITE_FUEL: u32 = 4096;

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node at `id`.
    pub fn node(&self, id: MId) -> MNode {
        self.nodes[id.index()]
    }

    /// The shape of `id`.
    pub fn shape(&self, id: MId) -> Shape {
        self.shapes[id.index()]
    }

    /// The index of a symbolic dimension by name, adding it if new.
    pub fn dim(&mut self, name: &str) -> Dim {
        if let Some(i) = self.dims.iter().position(|d| d == name) {
            return Dim::Sym(i as u32);
        }
        self.dims.push(name.to_string());
        Dim::Sym((self.dims.len() - 1) as u32)
    }

    /// A dimension as written (`n`, `3`).
    pub fn dim_name(&self, d: Dim) -> String {
        match d {
            Dim::Sym(i) => self.dims.get(i as usize).cloned().unwrap_or_else(|| format!("d{i}")),
            Dim::Fixed(k) => k.to_string(),
            Dim::Obs => "n".to_string(),
        }
    }

    /// A shape in words, with the dimension names: `scalar`, `vector of length n`,
    /// `1×m row vector`, `n×d matrix`.
    pub fn shape_name(&self, s: Shape) -> String {
        match s {
            Shape::Scalar => "scalar".into(),
            Shape::Vector(d) => format!("vector of length {}", self.dim_name(d)),
            Shape::Matrix(ONE, c) => format!("1×{} row vector", self.dim_name(c)),
            Shape::Matrix(r, c) => format!("{}×{} matrix", self.dim_name(r), self.dim_name(c)),
        }
    }

    /// A shape as `rows×cols`.
    pub fn shape_short(&self, s: Shape) -> String {
        let (r, c) = rc(s);
        format!("{}×{}", self.dim_name(r), self.dim_name(c))
    }

    /// Declares a variable (or returns the existing one of that name).
    pub fn declare(&mut self, name: &str, shape: Shape) -> u32 {
        if let Some(i) = self.vars.iter().position(|v| v.name == name) {
            return i as u32;
        }
        self.vars.push(Var { name: name.to_string(), shape });
        (self.vars.len() - 1) as u32
    }

    /// Finds a variable by name.
    pub fn find_var(&self, name: &str) -> Option<u32> {
        self.vars.iter().position(|v| v.name == name).map(|i| i as u32)
    }

    fn intern(&mut self, node: MNode, shape: Shape) -> MId {
        if let Some(&id) = self.interned.get(&(node, shape)) {
            return id;
        }
        let id = MId(self.nodes.len() as u32);
        self.nodes.push(node);
        self.shapes.push(shape);
        self.interned.insert((node, shape), id);
        id
    }

    /// Runs the rewrite rules `rules` of one constructor, or, past [`MAX_REWRITE_DEPTH`] nested
    /// rewrites or [`REWRITE_FUEL`] steps in the outermost call, builds `raw` as it stands. So
    /// every constructor terminates, whatever the rules do (non-finite constants once made
    /// `mul` and `div` rewrite into each other forever).
    fn rewrite(&mut self, raw: MNode, shape: Shape, rules: impl FnOnce(&mut Self) -> MId) -> MId {
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

    // ---- queries used by the simplifier ----

    /// The constant value of a scalar constant.
    pub fn as_const(&self, id: MId) -> Option<f64> {
        match self.node(id) {
            MNode::Const(v) => Some(v.get()),
            _ => None,
        }
    }

    /// The value of a constant or of a constant-filled array.
    pub fn fill_value(&self, id: MId) -> Option<f64> {
        match self.node(id) {
            MNode::Const(v) | MNode::Fill(v) => Some(v.get()),
            _ => None,
        }
    }

    fn is_fill(&self, id: MId, v: f64) -> bool {
        self.fill_value(id) == Some(v)
    }

    fn is_scalar(&self, id: MId) -> bool {
        self.shape(id) == Shape::Scalar
    }

    fn bshape(&self, a: MId, b: MId) -> Shape {
        broadcast(self.shape(a), self.shape(b)).unwrap_or(self.shape(a))
    }

    // ---- leaves ----

    /// A scalar constant.
    pub fn constant(&mut self, v: f64) -> MId {
        self.intern(MNode::Const(Num::new(v)), Shape::Scalar)
    }

    /// An array of shape `s` filled with `v` (a constant if `s` is scalar).
    pub fn fill(&mut self, v: f64, s: Shape) -> MId {
        if s == Shape::Scalar {
            return self.constant(v);
        }
        self.intern(MNode::Fill(Num::new(v)), s)
    }

    /// The identity matrix of size `d`.
    pub fn eye(&mut self, d: Dim) -> MId {
        if d == ONE {
            return self.constant(1.0);
        }
        self.intern(MNode::Eye(d), Shape::Matrix(d, d))
    }

    /// The node of variable `i`.
    pub fn var(&mut self, i: u32) -> MId {
        let s = self.vars[i as usize].shape;
        self.intern(MNode::Var(i), s)
    }

    /// Replaces a filled array operand by its scalar value when the other operand already has
    /// the result's shape (`ones(n) ./ y` is `1 ./ y`).
    fn unfill(&mut self, a: MId, b: MId) -> (MId, MId) {
        let out = self.bshape(a, b);
        let a2 = match self.node(a) {
            MNode::Fill(v) if self.shape(b) == out => self.constant(v.get()),
            _ => a,
        };
        let b2 = match self.node(b) {
            MNode::Fill(v) if self.shape(a) == out => self.constant(v.get()),
            _ => b,
        };
        (a2, b2)
    }

    /// The scalar value of an array every entry of which is the same expression, built from
    /// filled arrays and scalars (`ones(1, m)/s` is `1/s` in every entry); `None` otherwise.
    fn uniform(&mut self, p: MId, depth: u32) -> Option<MId> {
        if self.is_scalar(p) {
            return Some(p);
        }
        if depth == 0 {
            return None;
        }
        let d = depth - 1;
        match self.node(p) {
            MNode::Fill(v) => Some(self.constant(v.get())),
            MNode::Neg(a) => {
                let x = self.uniform(a, d)?;
                Some(self.neg(x))
            }
            MNode::Add(a, b) | MNode::Sub(a, b) | MNode::Mul(a, b) | MNode::Div(a, b) => {
                let (x, y) = (self.uniform(a, d)?, self.uniform(b, d)?);
                Some(match self.node(p) {
                    MNode::Add(..) => self.add(x, y),
                    MNode::Sub(..) => self.sub(x, y),
                    MNode::Mul(..) => self.mul(x, y),
                    _ => self.div(x, y),
                })
            }
            _ => None,
        }
    }

    /// Like [`Self::unfill`] for any uniform operand (`ones(n)/s .* E` is `E/s`): the new
    /// operands when one changed.
    fn unfill_uniform(&mut self, a: MId, b: MId) -> Option<(MId, MId)> {
        let out = self.bshape(a, b);
        let cheap = |g: &Self, p: MId| !g.is_scalar(p) && !matches!(g.node(p), MNode::Fill(_) | MNode::Var(_) | MNode::Eye(_));
        if self.shape(b) == out && cheap(self, a)
            && let Some(x) = self.uniform(a, 6) {
                return Some((x, b));
            }
        if self.shape(a) == out && cheap(self, b)
            && let Some(y) = self.uniform(b, 6) {
                return Some((a, y));
            }
        None
    }

    fn fold2(&mut self, a: MId, b: MId, f: impl Fn(f64, f64) -> f64) -> Option<MId> {
        let (x, y) = (self.fill_value(a)?, self.fill_value(b)?);
        let v = f(x, y);
        let s = self.bshape(a, b);
        v.is_finite().then(|| self.fill(v, s))
    }

    // ---- elementwise ----

    /// `a + b`, simplified.
    pub fn add(&mut self, a: MId, b: MId) -> MId {
        let out = self.bshape(a, b);
        self.rewrite(MNode::Add(a, b), out, |g| g.add_rules(a, b))
    }

    fn add_rules(&mut self, a: MId, b: MId) -> MId {
        if let Some(c) = self.fold2(a, b, |x, y| x + y) {
            return c;
        }
        let out = self.bshape(a, b);
        if self.is_fill(a, 0.0) && self.shape(b) == out {
            return b;
        }
        if self.is_fill(b, 0.0) && self.shape(a) == out {
            return a;
        }
        if let MNode::Neg(y) = self.node(b) {
            return self.sub(a, y);
        }
        if let MNode::Neg(x) = self.node(a) {
            return self.sub(b, x);
        }
        // a + (−p − q) = a − p − q
        if let MNode::Sub(x, q) = self.node(b)
            && let MNode::Neg(p) = self.node(x) {
                let ap = self.sub(a, p);
                return self.sub(ap, q);
            }
        if a == b {
            let two = self.constant(2.0);
            return self.mul(two, a);
        }
        if let Some((x, y)) = self.unfill_uniform(a, b) {
            return self.add(x, y);
        }
        // a + (−c)·x = a − c·x; (−c)·x + b = b − c·x
        if let Some((c, x)) = self.negative_multiple(b) {
            let m = self.mul(c, x);
            return self.sub(a, m);
        }
        if let Some((c, x)) = self.negative_multiple(a) {
            let m = self.mul(c, x);
            return self.sub(b, m);
        }
        if let Some(r) = self.collect_sum(a, b, 1.0) {
            return r;
        }
        if let Some(r) = self.common_constant(a, b, out, false) {
            return r;
        }
        let (a, b) = self.unfill(a, b);
        self.intern(MNode::Add(a, b), out)
    }

    /// `c·p ± c·q = c·(p ± q)` for the same constant `c` (not ±1) on both terms of the shape
    /// `out`, written by [`Self::factored_sum`]: `2·(E − Aᵀ·E·Bᵀ)` for `2·E − 2·Aᵀ·E·Bᵀ`.
    fn common_constant(&mut self, a: MId, b: MId, out: Shape, minus: bool) -> Option<MId> {
        let (MNode::Mul(k1, p), MNode::Mul(k2, q)) = (self.node(a), self.node(b)) else { return None };
        let c = self.as_const(k1)?;
        if self.as_const(k2) != Some(c) || c.abs() == 1.0 || self.shape(p) != out || self.shape(q) != out {
            return None;
        }
        Some(self.factored_sum(c, p, if minus { -c } else { c }, q))
    }

    /// `(c, x)` with `c > 0` when `p = (−c)·x` (a negative constant multiple).
    fn negative_multiple(&mut self, p: MId) -> Option<(MId, MId)> {
        if let MNode::Mul(c, x) = self.node(p)
            && let Some(v) = self.as_const(c)
            && v < 0.0
            && self.shape(x) == self.shape(p)
        {
            return Some((self.constant(-v), x));
        }
        None
    }

    /// `a - b`, simplified.
    pub fn sub(&mut self, a: MId, b: MId) -> MId {
        let out = self.bshape(a, b);
        self.rewrite(MNode::Sub(a, b), out, |g| g.sub_rules(a, b))
    }

    fn sub_rules(&mut self, a: MId, b: MId) -> MId {
        if let Some(c) = self.fold2(a, b, |x, y| x - y) {
            return c;
        }
        let out = self.bshape(a, b);
        if self.is_fill(b, 0.0) && self.shape(a) == out {
            return a;
        }
        if self.is_fill(a, 0.0) && self.shape(b) == out {
            return self.neg(b);
        }
        if a == b {
            return self.fill(0.0, out);
        }
        if let MNode::Neg(y) = self.node(b) {
            return self.add(a, y);
        }
        if let Some((x, y)) = self.unfill_uniform(a, b) {
            return self.sub(x, y);
        }
        if let Some((c, x)) = self.negative_multiple(b) {
            let m = self.mul(c, x);
            return self.add(a, m);
        }
        if let Some(r) = self.collect_sum(a, b, -1.0) {
            return r;
        }
        if let Some(r) = self.common_constant(a, b, out, true) {
            return r;
        }
        let (a, b) = self.unfill(a, b);
        self.intern(MNode::Sub(a, b), out)
    }

    /// `a .* b` (a scalar times anything included), simplified: constants are pulled to the
    /// front, signs outwards, and broadcasts against `ones` absorbed.
    pub fn mul(&mut self, a: MId, b: MId) -> MId {
        let out = self.bshape(a, b);
        self.rewrite(MNode::Mul(a, b), out, |g| g.mul_rules(a, b))
    }

    fn mul_rules(&mut self, a: MId, b: MId) -> MId {
        if let Some(c) = self.fold2(a, b, |x, y| x * y) {
            return c;
        }
        let out = self.bshape(a, b);
        // constants first, and scalars before arrays (`2·lambda·w`, not `2·w·lambda`)
        if self.as_const(b).is_some() && self.as_const(a).is_none() {
            return self.mul(b, a);
        }
        if self.is_scalar(b) && !self.is_scalar(a) && self.fill_value(a).is_none() {
            return self.mul(b, a);
        }
        if self.is_fill(a, 0.0) || self.is_fill(b, 0.0) {
            return self.fill(0.0, out);
        }
        if self.is_fill(a, 1.0) && self.shape(b) == out {
            return b;
        }
        if self.is_fill(b, 1.0) && self.shape(a) == out {
            return a;
        }
        if self.fill_value(a) == Some(-1.0) && self.shape(b) == out {
            return self.neg(b);
        }
        if self.fill_value(b) == Some(-1.0) && self.shape(a) == out {
            return self.neg(a);
        }
        if let Some((x, y)) = self.unfill_uniform(a, b) {
            return self.mul(x, y);
        }
        // (p/s)·(q/t) = (p·q)/(s·t) for scalars s and t (`‖A·x‖₂/‖x‖₂²·x/‖x‖₂ = ‖A·x‖₂·x/‖x‖₂³`),
        // and elementwise for quotients and divisors of one shape (`(x./s).*(x./(2·s)) =
        // x.^2./(2·s.^2)`; a vector quotient scaling a matrix's rows stays, printed with diag)
        if let (MNode::Div(p, s), MNode::Div(q, t)) = (self.node(a), self.node(b))
            && self.shape(s) == self.shape(t)
            && (self.is_scalar(s) || self.shape(a) == self.shape(b))
            && self.fill_value(s).is_none()
            && self.fill_value(t).is_none()
        {
            let (num, den) = (self.mul(p, q), self.mul(s, t));
            return self.div(num, den);
        }
        // x .* x = x.^2
        if a == b && self.fill_value(a).is_none() {
            let two = self.constant(2.0);
            return self.pow(a, two);
        }
        // x.^j .* x.^k = x.^(j+k) for whole j, k ≥ 1 (`‖x‖₂²·‖x‖₂ = ‖x‖₂³`), x a scalar or of
        // the product's shape
        if ((self.is_scalar(a) && self.is_scalar(b)) || (self.shape(a) == out && self.shape(b) == out))
            && self.as_const(a).is_none()
            && self.as_const(b).is_none()
            && self.fill_value(a).is_none()
            && self.fill_value(b).is_none()
        {
            let ((c1, x, j), (c2, y, k)) = (self.power_parts(a), self.power_parts(b));
            if x == y && (j + k).is_finite() && (c1 * c2).is_finite() && c1 * c2 != 0.0 {
                let e = self.constant(j + k);
                let p = self.pow(x, e);
                let c = self.constant(c1 * c2);
                return self.mul(c, p);
            }
        }
        // s·(p/d) = (s·p)/d for scalars s (not a constant) and d (`E·(u/(2·s²))/s = E·u/(2·s³)`)
        if let MNode::Div(p, d) = self.node(b)
            && self.is_scalar(a)
            && self.as_const(a).is_none()
            && self.is_scalar(d)
            && self.fill_value(d).is_none()
            && self.fill_value(p).is_none()
        {
            let num = self.mul(a, p);
            return self.div(num, d);
        }
        // (p./d).*x = (p.*x)./d for a scalar quotient or one of x's shape
        // (`‖A·x‖₂/‖x‖₂²·x = ‖A·x‖₂·x/‖x‖₂²`); a vector quotient scaling the rows of a matrix
        // stays as it is (printed `diag(p./d)·X` inside a product)
        if let MNode::Div(p, d) = self.node(a)
            && ((self.is_scalar(p) && self.is_scalar(d)) || self.shape(a) == self.shape(b))
            && self.fill_value(p).is_none()
            && self.fill_value(d).is_none()
            && self.fill_value(b).is_none()
        {
            let num = self.mul(p, b);
            return self.div(num, d);
        }
        // c1 * diag(y / (c2 * z)) = diag(c1 * (y / (c2 * z))), simplified by the rule below
        // (`2·diag(x.^2./(2·u)) = diag(x.^2./u)`; a constant left over comes out of diag again)
        if let (Some(c1), MNode::DiagM(u)) = (self.as_const(a), self.node(b))
            && let MNode::Div(_, d) = self.node(u)
            && let MNode::Mul(c2, _) = self.node(d)
            && let Some(c2) = self.as_const(c2)
            && c1 != 0.0
            && c2 != 0.0
            && (c1 / c2).fract() == 0.0
            && (c1 / c2).is_finite()
        {
            let m = self.mul(a, u);
            return self.diag_m(m);
        }
        // c1 * (y / (c2 * z)) = (c1/c2) * (y / z) when c1/c2 or c2/c1 is a whole number
        // (`2*(x/(2*sqrt(u)))` = `x/sqrt(u)`)
        if let (Some(c1), MNode::Div(y, d)) = (self.as_const(a), self.node(b))
            && let MNode::Mul(c2, z) = self.node(d)
            && let Some(c2) = self.as_const(c2)
            && c1 != 0.0
            && c2 != 0.0
        {
            if (c1 / c2).fract() == 0.0 && (c1 / c2).is_finite() {
                let k = self.constant(c1 / c2);
                let q = self.div(y, z);
                return self.mul(k, q);
            }
            if (c2 / c1).fract() == 0.0 && (c2 / c1).is_finite() {
                let k = self.constant(c2 / c1);
                let kz = self.mul(k, z);
                return self.div(y, kz);
            }
        }
        // c1 * ((y / (c2 * z)) .* q) = (c1/c2) * ((y / z) .* q) when c1/c2 is a whole number
        if let (Some(c1), MNode::Mul(p, q)) = (self.as_const(a), self.node(b))
            && let MNode::Div(y, d) = self.node(p)
            && let MNode::Mul(c2, z) = self.node(d)
            && let Some(c2) = self.as_const(c2)
            && c2 != 0.0
            && (c1 / c2).fract() == 0.0
            && (c1 / c2).is_finite()
        {
            let k = self.constant(c1 / c2);
            let yz = self.div(y, z);
            let m = self.mul(yz, q);
            return self.mul(k, m);
        }
        // c1 * (c2 ./ z) = (c1·c2) ./ z
        if let (Some(c1), MNode::Div(k, z)) = (self.as_const(a), self.node(b))
            && let Some(c2) = self.as_const(k)
            && (c1 * c2).is_finite()
        {
            let c = self.constant(c1 * c2);
            return self.div(c, z);
        }
        // c1 * (y / c2) = (c1/c2) * y when that is an integer (`2*(u/2)` = `u`)
        if let (Some(c1), MNode::Div(y, c2)) = (self.as_const(a), self.node(b))
            && let Some(c2) = self.as_const(c2)
                && (c1 / c2).fract() == 0.0 && (c1 / c2).is_finite() {
                    let k = self.constant(c1 / c2);
                    return self.mul(k, y);
                }
        // (y / c) .* q = (y .* q) / c for a constant c (constants gather at the outside)
        for (p, q) in [(a, b), (b, a)] {
            if let MNode::Div(y, c) = self.node(p)
                && self.as_const(c).is_some() && self.fill_value(y).is_none() && self.fill_value(q).is_none() {
                    let m = self.mul(y, q);
                    return self.div(m, c);
                }
        }
        if let MNode::Neg(x) = self.node(a) {
            let m = self.mul(x, b);
            return self.neg(m);
        }
        if let MNode::Neg(y) = self.node(b) {
            let m = self.mul(a, y);
            return self.neg(m);
        }
        // (p ./ q) .* q = p (the continuous extension where q is 0, as x/x = 1)
        for (p, q) in [(a, b), (b, a)] {
            if let MNode::Div(n, d) = self.node(p)
                && d == q
                && self.fill_value(q).is_none()
                && self.shape(n) == out
            {
                return n;
            }
        }
        // v .* diag(u) = diag(v .* u) for a vector v of u's length, either way up (only the
        // diagonal is nonzero), and 2·step(t).*diag(step(t)) reads 2·diag(step(t))
        for (p, q) in [(a, b), (b, a)] {
            if let MNode::DiagM(u) = self.node(p)
                && let Some(col) = self.diagonal_partner(u, q)
            {
                let m = self.mul(col, u);
                return self.diag_m(m);
            }
        }
        // (y ./ x.^k) .* x.^j = y ./ x.^(k−j), and (y ./ (c·x.^k)) .* x.^j = y ./ (c·x.^(k−j)),
        // for integers k > j ≥ 1 (x alone is x.^1)
        for (p, q) in [(a, b), (b, a)] {
            if let MNode::Div(n, d) = self.node(p)
                && self.shape(n) == out
            {
                let (c, base, k) = self.power_parts(d);
                let (cq, qb, j) = self.power_parts(q);
                if cq == 1.0 && base == qb && k > j {
                    let e = self.constant(k - j);
                    let lower = self.pow(base, e);
                    let cc = self.constant(c);
                    let den = self.mul(cc, lower);
                    return self.div(n, den);
                }
            }
        }
        if let Some(r) = self.distribute_cancelling(a, b, out) {
            return r;
        }
        // (k ./ x) .* y = (k .* y) ./ x  for a constant k or an array of one (so `1./(1+e).*e`
        // reads `e./(1+e)`, and `ones(n, k)./s.*E` reads `E./s`)
        for (p, q) in [(a, b), (b, a)] {
            if let MNode::Div(k, x) = self.node(p)
                && self.fill_value(k).is_some() && self.shape(q) == out {
                    let kq = self.mul(k, q);
                    return self.div(kq, x);
                }
        }
        // c1 * (c2 * y) = (c1 c2) * y ; x * (c * y) = c * (x * y)
        if let MNode::Mul(c2, y) = self.node(b)
            && let Some(v2) = self.as_const(c2) {
                if let Some(v1) = self.as_const(a)
                    && (v1 * v2).is_finite() {
                        let c = self.constant(v1 * v2);
                        return self.mul(c, y);
                    }
                let m = self.mul(a, y);
                return self.mul(c2, m);
            }
        if let MNode::Mul(c1, x) = self.node(a)
            && self.as_const(c1).is_some() {
                let m = self.mul(x, b);
                return self.mul(c1, m);
            }
        // (u .* ones(S)) .* b  with b of shape S  =  u .* b
        for (p, q) in [(a, b), (b, a)] {
            if let MNode::Mul(u, f) = self.node(p)
                && self.is_fill(f, 1.0) && self.shape(q) == self.shape(f) && self.shape(q) == out {
                    return self.mul(u, q);
                }
        }
        let (a, b) = self.unfill(a, b);
        self.intern(MNode::Mul(a, b), out)
    }

    /// `(c, x, k)` with `id = c·x.^k` for a constant `c` (1 if none) and an integer `k ≥ 1`
    /// (1 if `id` is not a power).
    /// Exponents up to 2⁵² only, so that sums and differences of two are exact integers (the
    /// fuzzer found `y.^1e308` combined into `y.^inf`).
    pub(super) fn power_parts(&self, id: MId) -> (f64, MId, f64) {
        const MAX_POWER: f64 = 4_503_599_627_370_496.0; // 2^52
        let (c, rest) = match self.node(id) {
            MNode::Mul(c, x) if self.as_const(c).is_some() => (self.as_const(c).unwrap_or(1.0), x),
            _ => (1.0, id),
        };
        match self.node(rest) {
            MNode::Pow(x, k) if self.as_const(k).is_some_and(|k| k.fract() == 0.0 && (1.0..=MAX_POWER).contains(&k)) => {
                (c, x, self.as_const(k).unwrap_or(1.0))
            }
            _ => (c, rest, 1.0),
        }
    }

    /// `v` as a column when it is a vector (either way up) of the length of the column `u`, the
    /// diagonal of `diag(u)`: the operand of `v .* diag(u)` and `diag(u) ./ v` that only meets
    /// the diagonal.
    fn diagonal_partner(&mut self, u: MId, v: MId) -> Option<MId> {
        if self.is_scalar(v) {
            return None;
        }
        let (r, c) = rc(self.shape(v));
        let len = if r == ONE { c } else if c == ONE { r } else { return None };
        if len != rc(self.shape(u)).0 {
            return None;
        }
        Some(if r == ONE { self.transpose(v) } else { v })
    }

    /// `a ./ b`, simplified.
    pub fn div(&mut self, a: MId, b: MId) -> MId {
        let out = self.bshape(a, b);
        self.rewrite(MNode::Div(a, b), out, |g| g.div_rules(a, b))
    }

    fn div_rules(&mut self, a: MId, b: MId) -> MId {
        if let Some(c) = self.fold2(a, b, |x, y| x / y) {
            return c;
        }
        let out = self.bshape(a, b);
        if self.is_fill(b, 1.0) && self.shape(a) == out {
            return a;
        }
        if self.is_fill(a, 0.0) && self.fill_value(b).is_none_or(|v| v != 0.0) {
            return self.fill(0.0, out);
        }
        if let Some(v) = self.fill_value(a)
            && v < 0.0 {
                let sa = self.shape(a);
                let pa = self.fill(-v, sa);
                let d = self.div(pa, b);
                return self.neg(d);
            }
        // x/x = 1, but not 0/0 or inf/inf (constants that did not fold are not finite)
        if a == b && self.fill_value(a).is_none() {
            return self.fill(1.0, out);
        }
        if let MNode::Neg(x) = self.node(a) {
            let d = self.div(x, b);
            return self.neg(d);
        }
        if let MNode::Neg(y) = self.node(b) {
            let d = self.div(a, y);
            return self.neg(d);
        }
        if let MNode::Mul(c, x) = self.node(a)
            && self.as_const(c).is_some() && !self.is_fill(x, 1.0) {
                let d = self.div(x, b);
                return self.mul(c, d);
            }
        if let Some((x, y)) = self.unfill_uniform(a, b) {
            return self.div(x, y);
        }
        // (p .* q) ./ p = q, (p .* q) ./ q = p (the continuous extension where p is 0, as x/x = 1)
        if let MNode::Mul(p, q) = self.node(a)
            && self.fill_value(b).is_none() {
                if p == b && self.shape(q) == out {
                    return q;
                }
                if q == b && self.shape(p) == out {
                    return p;
                }
            }
        // (x ./ (c1·b.^j)) ./ (c2·b.^k) = x ./ (c1·c2·b.^(j+k)) for integer powers (b alone is
        // b.^1, a missing constant 1): `(x ./ b) ./ b = x ./ b.^2`, `(x/‖x‖)/‖x‖² = x/‖x‖³`
        if let MNode::Div(x, d) = self.node(a)
            && self.fill_value(b).is_none()
        {
            let (c1, b1, j) = self.power_parts(d);
            let (c2, b2, k) = self.power_parts(b);
            if b1 == b2 && (c1 * c2).is_finite() && c1 * c2 != 0.0 {
                let e = self.constant(j + k);
                let p = self.pow(b1, e);
                let c = self.constant(c1 * c2);
                let den = self.mul(c, p);
                return self.div(x, den);
            }
        }
        // (k ./ u) ./ v = k ./ (v .* u) for a constant k (`(1./(1 + r.^2/ν))/ν = 1./(ν + r.^2)`)
        if let MNode::Div(k, u) = self.node(a)
            && self.as_const(k).is_some()
            && self.fill_value(b).is_none()
            && self.fill_value(u).is_none()
        {
            let den = self.mul(b, u);
            return self.div(k, den);
        }
        // (x/s)/t = x/(s·t) for scalars s and t (`Aᵀ·A·x/‖A·x‖₂/‖x‖₂ = Aᵀ·A·x/(‖A·x‖₂·‖x‖₂)`)
        if let MNode::Div(x, s) = self.node(a)
            && self.is_scalar(s)
            && self.is_scalar(b)
            && self.fill_value(s).is_none()
            && self.fill_value(b).is_none()
        {
            let den = self.mul(s, b);
            return self.div(x, den);
        }
        // diag(u) ./ v = diag(u ./ v) for a vector v of u's length, either way up (the
        // continuous extension off the diagonal where v has a 0)
        if let MNode::DiagM(u) = self.node(a)
            && let Some(col) = self.diagonal_partner(u, b)
        {
            let d = self.div(u, col);
            return self.diag_m(d);
        }
        if let Some(r) = self.cancel_powers(a, b, out) {
            return r;
        }
        // a ./ (a ./ b) = b (the continuous extension where a is 0)
        if let MNode::Div(p, q) = self.node(b)
            && p == a
            && self.fill_value(a).is_none()
            && self.shape(q) == out
        {
            return q;
        }
        // x.^j ./ x.^k = 1 ./ x.^(k−j) or x.^(j−k) for integer powers (x alone is x.^1), the
        // continuous extension where x is 0
        {
            let (ca, na, j) = self.power_parts(a);
            let (cb, nb, k) = self.power_parts(b);
            if ca == 1.0 && cb == 1.0 && na == nb && j != k && self.fill_value(na).is_none() && self.shape(na) == out {
                let e = self.constant((k - j).abs());
                let p = self.pow(na, e);
                if k > j {
                    let one = self.constant(1.0);
                    return self.div(one, p);
                }
                return p;
            }
        }
        // sinh(u) ./ cosh(u) = tanh(u), sin(u) ./ cos(u) = tan(u)
        if let (MNode::Call(f, u), MNode::Call(g, v)) = (self.node(a), self.node(b))
            && u == v
            && let Some(t) = match (f, g) {
                (Func::Sinh, Func::Cosh) => Some(Func::Tanh),
                (Func::Sin, Func::Cos) => Some(Func::Tan),
                _ => None,
            }
        {
            return self.call(t, u);
        }
        // exp(u) ./ (1 + exp(u)) = 1 ./ (1 + exp(−u)) (the logistic function; no inf/inf)
        if let MNode::Call(Func::Exp, u) = self.node(a)
            && let MNode::Add(p, q) = self.node(b)
            && ((p == a && self.fill_value(q) == Some(1.0)) || (q == a && self.fill_value(p) == Some(1.0)))
            && self.shape(a) == out {
                let nu = self.neg(u);
                let e = self.call(Func::Exp, nu);
                let one = self.constant(1.0);
                let den = self.add(one, e);
                return self.div(one, den);
            }
        let (a, b) = self.unfill(a, b);
        self.intern(MNode::Div(a, b), out)
    }

    /// `a .^ b`, simplified.
    pub fn pow(&mut self, a: MId, b: MId) -> MId {
        let out = self.bshape(a, b);
        self.rewrite(MNode::Pow(a, b), out, |g| g.pow_rules(a, b))
    }

    fn pow_rules(&mut self, a: MId, b: MId) -> MId {
        if let Some(c) = self.fold2(a, b, crate::func::pow) {
            return c;
        }
        let out = self.bshape(a, b);
        if self.is_fill(b, 1.0) && self.shape(a) == out {
            return a;
        }
        if self.is_fill(b, 0.0) || self.is_fill(a, 1.0) {
            return self.fill(1.0, out);
        }
        // step(t).^k = step(t) for k > 0 (its values are 0 and 1)
        if let (MNode::Call(Func::Step, _), Some(k)) = (self.node(a), self.as_const(b))
            && k > 0.0
        {
            return a;
        }
        // (c·x)^k = c^k·x^k for a constant c and an integer k
        if let (MNode::Mul(c, x), Some(k)) = (self.node(a), self.as_const(b))
            && let Some(cv) = self.as_const(c)
            && k.fract() == 0.0
            && crate::func::pow(cv, k).is_finite()
        {
            let ck = self.constant(crate::func::pow(cv, k));
            let xk = self.pow(x, b);
            return self.mul(ck, xk);
        }
        // sqrt(u).^2 = u (the continuous extension where u < 0, as x/x = 1 at 0)
        if let (MNode::Call(Func::Sqrt, u), Some(2.0)) = (self.node(a), self.as_const(b))
            && self.shape(u) == out
        {
            return u;
        }
        // (x^p)^q = x^(pq) for integer p (where it holds for every real x), while pq is finite
        if let (MNode::Pow(x, p), Some(q)) = (self.node(a), self.as_const(b))
            && let Some(pv) = self.as_const(p)
                && pv.fract() == 0.0 && q.fract() == 0.0 && (pv * q).is_finite() {
                    let e = self.constant(pv * q);
                    return self.pow(x, e);
                }
        let (a, b) = self.unfill(a, b);
        self.intern(MNode::Pow(a, b), out)
    }

    /// `xlogy(a, b)` elementwise, simplified: folded for constants, `xlogy(0, b) = 0`, and
    /// `a .* log(c)` for a constant `c` of finite logarithm (`c .* log(b)` for a nonzero `c`).
    pub fn xlogy(&mut self, a: MId, b: MId) -> MId {
        let out = self.bshape(a, b);
        self.rewrite(MNode::XLogY(a, b), out, |g| g.xlogy_rules(a, b))
    }

    fn xlogy_rules(&mut self, a: MId, b: MId) -> MId {
        if let Some(c) = self.fold2(a, b, crate::func::xlogy) {
            return c;
        }
        let out = self.bshape(a, b);
        if self.is_fill(a, 0.0) {
            return self.fill(0.0, out);
        }
        if let Some(y) = self.fill_value(b)
            && y.ln().is_finite() {
                let l = self.constant(y.ln());
                return self.mul(a, l);
            }
        if self.fill_value(a).is_some() {
            let l = self.call(Func::Log, b);
            return self.mul(a, l);
        }
        let (a, b) = self.unfill(a, b);
        self.intern(MNode::XLogY(a, b), out)
    }

    /// `f(a, b)` elementwise ([`crate::Func2`]), folded when both are constant, and
    /// `max(a, a) = min(a, a) = a`.
    pub fn call2(&mut self, f: Func2, a: MId, b: MId) -> MId {
        if let Some(c) = self.fold2(a, b, |x, y| f.apply(x, y)) {
            return c;
        }
        let out = self.bshape(a, b);
        if a == b && f != Func2::Atan2 {
            return a;
        }
        let (a, b) = self.unfill(a, b);
        self.intern(MNode::Call2(f, a, b), out)
    }

    /// `-a`, simplified.
    pub fn neg(&mut self, a: MId) -> MId {
        let s = self.shape(a);
        self.rewrite(MNode::Neg(a), s, |g| g.neg_rules(a))
    }

    fn neg_rules(&mut self, a: MId) -> MId {
        match self.node(a) {
            MNode::Const(v) => self.constant(-v.get()),
            MNode::Fill(v) => {
                let s = self.shape(a);
                self.fill(-v.get(), s)
            }
            MNode::Neg(x) => x,
            MNode::Mul(c, x) if self.as_const(c).is_some() => {
                let v = self.as_const(c).unwrap_or(1.0);
                let c = self.constant(-v);
                self.mul(c, x)
            }
            MNode::Sub(x, y) => self.sub(y, x),
            // −((x − y)./d) = (y − x)./d, −((x − y).*q) = (y − x).*q
            MNode::Div(n, d) if matches!(self.node(n), MNode::Sub(..)) && self.shape(n) == self.shape(a) => {
                let m = self.neg(n);
                self.div(m, d)
            }
            MNode::Mul(n, q) if matches!(self.node(n), MNode::Sub(..)) && self.shape(n) == self.shape(a) => {
                let m = self.neg(n);
                self.mul(m, q)
            }
            _ => {
                let s = self.shape(a);
                self.intern(MNode::Neg(a), s)
            }
        }
    }

    /// `f(a)` elementwise, folded when `a` is constant.
    pub fn call(&mut self, f: Func, a: MId) -> MId {
        let s = self.shape(a);
        if let Some(v) = self.fill_value(a) {
            let r = f.apply(v);
            if r.is_finite() {
                return self.fill(r, s);
            }
        }
        self.intern(MNode::Call(f, a), s)
    }

    // ---- matrix operations ----

    /// Matrix product (a scalar operand makes it an elementwise product), simplified.
    pub fn matmul(&mut self, a: MId, b: MId) -> MId {
        if self.is_scalar(a) || self.is_scalar(b) {
            return self.mul(a, b);
        }
        let out = from_rc(rc(self.shape(a)).0, rc(self.shape(b)).1);
        self.rewrite(MNode::MatMul(a, b), out, |g| g.matmul_rules(a, b))
    }

    fn matmul_rules(&mut self, a: MId, b: MId) -> MId {
        if self.is_scalar(a) || self.is_scalar(b) {
            return self.mul(a, b);
        }
        let (r, _) = rc(self.shape(a));
        let (_, c) = rc(self.shape(b));
        let out = from_rc(r, c);
        if matches!(self.node(a), MNode::Eye(_)) {
            return b;
        }
        if matches!(self.node(b), MNode::Eye(_)) {
            return a;
        }
        if self.is_fill(a, 0.0) || self.is_fill(b, 0.0) {
            return self.fill(0.0, out);
        }
        if let MNode::Neg(x) = self.node(a) {
            let m = self.matmul(x, b);
            return self.neg(m);
        }
        if let MNode::Neg(y) = self.node(b) {
            let m = self.matmul(a, y);
            return self.neg(m);
        }
        if let Some(r) = self.cancel_inverse(a, b) {
            return r;
        }
        // scalar divisors move out of products: (x/s) y = (x y)/s, x (y/s) = (x y)/s
        if let MNode::Div(x, s) = self.node(a)
            && self.is_scalar(s) && !self.is_scalar(x) {
                let m = self.matmul(x, b);
                return self.div(m, s);
            }
        if let MNode::Div(y, s) = self.node(b)
            && self.is_scalar(s) && !self.is_scalar(y) {
                let m = self.matmul(a, y);
                return self.div(m, s);
            }
        // diag(v)·B = v .* B (rows scaled; a column B included), A·diag(v) = A .* vᵀ (columns
        // scaled): no n×n diagonal matrix is formed. A row scaling inside a product prints as
        // `diag(v)·B` again (see the printer).
        if let MNode::DiagM(v) = self.node(a) {
            return self.mul(v, b);
        }
        if let MNode::DiagM(v) = self.node(b) {
            let vt = self.transpose(v);
            return self.mul(a, vt);
        }
        // scalar factors move out of products: (s x) y = s (x y), x (s y) = s (x y)
        if let MNode::Mul(s, x) = self.node(a)
            && self.is_scalar(s) && !self.is_scalar(x) {
                let m = self.matmul(x, b);
                return self.mul(s, m);
            }
        if let MNode::Mul(s, y) = self.node(b)
            && self.is_scalar(s) && !self.is_scalar(y) {
                let m = self.matmul(a, y);
                return self.mul(s, m);
            }
        self.intern(MNode::MatMul(a, b), out)
    }

    /// Transpose, simplified (`x'' = x`, scalars and symmetric constants unchanged).
    pub fn transpose(&mut self, a: MId) -> MId {
        let s = self.shape(a);
        if s == Shape::Scalar {
            return a;
        }
        self.rewrite(MNode::Transpose(a), transposed(s), |g| g.transpose_rules(a))
    }

    fn transpose_rules(&mut self, a: MId) -> MId {
        let s = self.shape(a);
        match self.node(a) {
            MNode::Transpose(x) => x,
            MNode::Eye(_) | MNode::DiagM(_) => a,
            MNode::Fill(v) => self.fill(v.get(), transposed(s)),
            MNode::Neg(x) => {
                let t = self.transpose(x);
                self.neg(t)
            }
            MNode::Mul(c, x) if self.is_scalar(c) => {
                let t = self.transpose(x);
                self.mul(c, t)
            }
            // (uᵀ.^c)ᵀ = u.^c, (pᵀ.*qᵀ)ᵀ = p.*q: elementwise operations of transposes
            MNode::Pow(u, c) if self.is_scalar(c) && matches!(self.node(u), MNode::Transpose(_)) => {
                let t = self.transpose(u);
                self.pow(t, c)
            }
            MNode::Mul(p, q) if matches!((self.node(p), self.node(q)), (MNode::Transpose(_), MNode::Transpose(_))) => {
                let (pt, qt) = (self.transpose(p), self.transpose(q));
                self.mul(pt, qt)
            }
            // (u/s)' = u'/s for a scalar s
            MNode::Div(u, c) if self.is_scalar(c) && !self.is_scalar(u) => {
                let t = self.transpose(u);
                self.div(t, c)
            }
            // a symmetric matrix is its own transpose: S⁻¹ for S = Sᵀ (`(Xᵀ·X)⁻¹`), P + Pᵀ
            MNode::Inv(m) if self.transpose(m) == m => a,
            MNode::Add(p, q) if self.node(q) == MNode::Transpose(p) || self.node(p) == MNode::Transpose(q) => a,
            // a sum of symmetric matrices (`Xᵀ·X − I`)
            MNode::Add(p, q) | MNode::Sub(p, q)
                if self.shape(p) == s && self.shape(q) == s && self.transpose(p) == p && self.transpose(q) == q =>
            {
                a
            }
            // a row sum is an adjoint on its way to a column: (pᵀ ± qᵀ)ᵀ = p ± q
            MNode::Add(p, q) | MNode::Sub(p, q) if rc(s).0 == ONE && self.shape(p) == s && self.shape(q) == s => {
                let (pt, qt) = (self.transpose(p), self.transpose(q));
                if matches!(self.node(a), MNode::Add(..)) { self.add(pt, qt) } else { self.sub(pt, qt) }
            }
            // (A B)' = B' A'
            MNode::MatMul(x, y) => {
                let (yt, xt) = (self.transpose(y), self.transpose(x));
                self.matmul(yt, xt)
            }
            _ => self.intern(MNode::Transpose(a), transposed(s)),
        }
    }

    /// Sum of all entries.
    pub fn sum(&mut self, a: MId) -> MId {
        if self.is_scalar(a) {
            return a;
        }
        match self.node(a) {
            MNode::Neg(x) => {
                let s = self.sum(x);
                self.neg(s)
            }
            MNode::Mul(c, x) if self.is_scalar(c) => {
                let s = self.sum(x);
                self.mul(c, s)
            }
            MNode::Transpose(x) => self.sum(x),
            MNode::DiagM(v) => self.sum(v),
            _ => self.intern(MNode::Sum(a), Shape::Scalar),
        }
    }

    /// `sum(A, 1)`: the `1×c` row of column sums.
    pub fn sum_rows(&mut self, a: MId) -> MId {
        let (r, c) = rc(self.shape(a));
        if r == ONE {
            return a;
        }
        if c == ONE {
            return self.sum(a);
        }
        // the column sums of diag(v) are vᵀ
        if let MNode::DiagM(v) = self.node(a) {
            return self.transpose(v);
        }
        if let MNode::Neg(x) = self.node(a) {
            let t = self.sum_rows(x);
            return self.neg(t);
        }
        self.intern(MNode::SumRows(a), from_rc(ONE, c))
    }

    /// `sum(A, 2)`: the `r×1` column of row sums.
    pub fn sum_cols(&mut self, a: MId) -> MId {
        let (r, c) = rc(self.shape(a));
        if c == ONE {
            return a;
        }
        if r == ONE {
            return self.sum(a);
        }
        if let MNode::DiagM(v) = self.node(a) {
            return v;
        }
        if let MNode::Neg(x) = self.node(a) {
            let t = self.sum_cols(x);
            return self.neg(t);
        }
        self.intern(MNode::SumCols(a), from_rc(r, ONE))
    }

    /// A one-argument node with a fixed result shape, interned as is.
    pub fn unary(&mut self, node: MNode, shape: Shape) -> MId {
        self.intern(node, shape)
    }

    /// `‖v‖₂`
    pub fn norm2(&mut self, a: MId) -> MId {
        self.intern(MNode::Norm2(a), Shape::Scalar)
    }

    /// `‖A‖_F`
    pub fn normf(&mut self, a: MId) -> MId {
        self.intern(MNode::NormF(a), Shape::Scalar)
    }

    /// `tr(A)`
    pub fn trace(&mut self, a: MId) -> MId {
        if self.is_scalar(a) {
            return a;
        }
        if let MNode::DiagM(v) = self.node(a) {
            return self.sum(v);
        }
        self.intern(MNode::Trace(a), Shape::Scalar)
    }

    /// `diag(v)`: vector → diagonal matrix.
    pub fn diag_m(&mut self, a: MId) -> MId {
        if self.is_scalar(a) {
            return a;
        }
        let (n, _) = rc(self.shape(a));
        if let MNode::Fill(v) = self.node(a) {
            let e = self.eye(n);
            let k = self.constant(v.get());
            return self.mul(k, e);
        }
        // constants and signs outside: diag(c·u) = c·diag(u), diag(−u) = −diag(u)
        match self.node(a) {
            MNode::Mul(c, u) if self.as_const(c).is_some() && self.shape(u) == self.shape(a) => {
                let d = self.diag_m(u);
                return self.mul(c, d);
            }
            MNode::Neg(u) => {
                let d = self.diag_m(u);
                return self.neg(d);
            }
            _ => {}
        }
        self.intern(MNode::DiagM(a), Shape::Matrix(n, n))
    }

    /// `diag(A)`: square matrix → its diagonal.
    pub fn diag_v(&mut self, a: MId) -> MId {
        if self.is_scalar(a) {
            return a;
        }
        if let MNode::DiagM(v) = self.node(a) {
            return v;
        }
        // diag(u·wᵀ) = u .* w for columns u, w
        if let MNode::MatMul(u, r) = self.node(a)
            && matches!(self.shape(u), Shape::Vector(_))
            && rc(self.shape(r)).0 == ONE {
                let w = self.transpose(r);
                return self.mul(u, w);
            }
        let (n, _) = rc(self.shape(a));
        self.intern(MNode::DiagV(a), Shape::Vector(n))
    }

    /// `inv(A)`
    pub fn inv(&mut self, a: MId) -> MId {
        if self.is_scalar(a) {
            let one = self.constant(1.0);
            return self.div(one, a);
        }
        if let MNode::Inv(x) = self.node(a) {
            return x;
        }
        // (Xᵀ)⁻¹ = X⁻ᵀ, one form for both
        if let MNode::Transpose(x) = self.node(a) {
            let i = self.inv(x);
            return self.transpose(i);
        }
        let s = self.shape(a);
        self.intern(MNode::Inv(a), s)
    }

    /// `det(A)`
    pub fn det(&mut self, a: MId) -> MId {
        if self.is_scalar(a) {
            return a;
        }
        self.intern(MNode::Det(a), Shape::Scalar)
    }

    /// `logdet(A) = log|det(A)|`
    pub fn logdet(&mut self, a: MId) -> MId {
        self.intern(MNode::LogDet(a), Shape::Scalar)
    }

    /// `logsumexp(A)` (of a scalar: the scalar itself).
    pub fn logsumexp(&mut self, a: MId) -> MId {
        if self.is_scalar(a) {
            return a;
        }
        self.intern(MNode::LogSumExp(a), Shape::Scalar)
    }

    /// `softmax(A)` (of a scalar: 1).
    pub fn softmax(&mut self, a: MId) -> MId {
        if self.is_scalar(a) {
            return self.constant(1.0);
        }
        let s = self.shape(a);
        self.intern(MNode::Softmax(a), s)
    }

    /// `logsumexp(A, d)` for `d` 1 (each column, a row) or 2 (each row, a column); over a
    /// single entry it is the entry, along a vector the vector's `logsumexp`.
    pub fn logsumexp_dim(&mut self, a: MId, d: u8) -> MId {
        let (r, c) = rc(self.shape(a));
        let (along, across) = if d == 1 { (r, c) } else { (c, r) };
        if along == ONE {
            return a;
        }
        if across == ONE {
            return self.logsumexp(a);
        }
        let s = if d == 1 { from_rc(ONE, c) } else { from_rc(r, ONE) };
        self.intern(MNode::LogSumExpDim(a, d), s)
    }

    /// `softmax(A, d)` for `d` 1 (each column) or 2 (each row): ones over single entries, the
    /// vector's `softmax` along a vector.
    pub fn softmax_dim(&mut self, a: MId, d: u8) -> MId {
        let s = self.shape(a);
        let (r, c) = rc(s);
        let (along, across) = if d == 1 { (r, c) } else { (c, r) };
        if along == ONE {
            return self.fill(1.0, s);
        }
        if across == ONE {
            return self.softmax(a);
        }
        self.intern(MNode::SoftmaxDim(a, d), s)
    }

    /// `X^k` for a square `X` and an integer `k`: `X` for 1, `I` for 0, `inv(X)^(-k)` for a
    /// negative `k`; `(X^j)^k = X^(jk)`.
    pub fn mat_pow(&mut self, a: MId, k: i32) -> MId {
        if self.is_scalar(a) {
            let c = self.constant(k as f64);
            return self.pow(a, c);
        }
        let (n, _) = rc(self.shape(a));
        match k {
            0 => self.eye(n),
            1 => a,
            k if k < 0 => {
                let i = self.inv(a);
                self.mat_pow(i, k.saturating_neg())
            }
            k => {
                if let MNode::MatPow(x, j) = self.node(a)
                    && let Some(jk) = j.checked_mul(k) {
                        return self.mat_pow(x, jk);
                    }
                if let MNode::Eye(_) = self.node(a) {
                    return a;
                }
                let s = self.shape(a);
                self.intern(MNode::MatPow(a, k), s)
            }
        }
    }

    /// `pinv(X)`, of shape `cols×rows` (of a scalar: `1/x`).
    pub fn pinv(&mut self, a: MId) -> MId {
        if self.is_scalar(a) {
            let one = self.constant(1.0);
            return self.div(one, a);
        }
        let s = transposed(self.shape(a));
        self.intern(MNode::Pinv(a), s)
    }

    /// The dimension `a·b` (a product of symbolic dimensions is a new symbolic dimension named
    /// `a*b`, whose size [`Graph::bind`] computes from the sizes of `a` and `b`).
    pub fn dim_product(&mut self, a: Dim, b: Dim) -> Dim {
        match (a, b) {
            (ONE, d) | (d, ONE) => d,
            (Dim::Fixed(x), Dim::Fixed(y)) => Dim::Fixed(x.saturating_mul(y)),
            (a, b) => {
                if let Some((i, _)) = self.dim_products.iter().find(|(_, p)| *p == (a, b)) {
                    return Dim::Sym(*i);
                }
                let name = format!("{}*{}", self.dim_name(a), self.dim_name(b));
                let d = self.dim(&name);
                if let Dim::Sym(i) = d {
                    self.dim_products.push((i, (a, b)));
                }
                d
            }
        }
    }

    /// The dimension `p/q` when `p` is a product with the factor `q` (or `q` divides a fixed `p`).
    pub fn dim_quotient(&self, p: Dim, q: Dim) -> Option<Dim> {
        match (p, q) {
            _ if p == q => Some(ONE),
            (p, ONE) => Some(p),
            (Dim::Fixed(x), Dim::Fixed(y)) if y > 0 && x % y == 0 => Some(Dim::Fixed(x / y)),
            (Dim::Sym(i), q) => self.dim_products.iter().find(|(k, _)| *k == i).and_then(|(_, (a, b))| {
                if *b == q {
                    Some(*a)
                } else if *a == q {
                    Some(*b)
                } else {
                    None
                }
            }),
            _ => None,
        }
    }

    /// `kron(A, B) = A ⊗ B`, of shape `(ra·rb)×(ca·cb)` (a scalar factor makes it a product).
    pub fn kron(&mut self, a: MId, b: MId) -> MId {
        if self.is_scalar(a) || self.is_scalar(b) {
            return self.mul(a, b);
        }
        let ((ra, ca), (rb, cb)) = (rc(self.shape(a)), rc(self.shape(b)));
        let (r, c) = (self.dim_product(ra, rb), self.dim_product(ca, cb));
        self.intern(MNode::Kron(a, b), from_rc(r, c))
    }

    /// [`MNode::KronSumA`]`(g, b)`, of the shape `s` of `A`, simplified: scalar factors move
    /// out, `kronsum(I, B, 1) = tr(B)·I`, `kronsum(X ⊗ Y, B, 1) = sum(Y .* B)·X`.
    pub fn kron_sum_a(&mut self, g: MId, b: MId, s: Shape) -> MId {
        if self.is_fill(g, 0.0) {
            return self.fill(0.0, s);
        }
        match self.node(g) {
            MNode::Mul(c, x) if self.is_scalar(c) && !self.is_scalar(x) => {
                let k = self.kron_sum_a(x, b, s);
                return self.mul(c, k);
            }
            // all of G equal to v: v·sum(other)·ones
            MNode::Fill(v) => {
                let t = self.sum(b);
                let k = self.constant(v.get());
                let kt = self.mul(k, t);
                let ones = self.fill(1.0, s);
                return self.mul(kt, ones);
            }
            MNode::Neg(x) => {
                let k = self.kron_sum_a(x, b, s);
                return self.neg(k);
            }
            MNode::Eye(_) if matches!(s, Shape::Matrix(r, c) if r == c) && matches!(self.shape(b), Shape::Matrix(r, c) if r == c) => {
                let (r, _) = rc(s);
                let (t, e) = (self.trace(b), self.eye(r));
                return self.mul(t, e);
            }
            MNode::Kron(x, y) if self.shape(x) == s && self.shape(y) == self.shape(b) => {
                let p = self.mul(y, b);
                let t = self.sum(p);
                return self.mul(t, x);
            }
            _ => {}
        }
        self.intern(MNode::KronSumA(g, b), s)
    }

    /// [`MNode::KronSumB`]`(a, g)`, of the shape `s` of `B`, simplified as
    /// [`Self::kron_sum_a`]: `kronsum(A, I, 2) = tr(A)·I`, `kronsum(A, X ⊗ Y, 2) = sum(A .* X)·Y`.
    pub fn kron_sum_b(&mut self, a: MId, g: MId, s: Shape) -> MId {
        if self.is_fill(g, 0.0) {
            return self.fill(0.0, s);
        }
        match self.node(g) {
            MNode::Mul(c, x) if self.is_scalar(c) && !self.is_scalar(x) => {
                let k = self.kron_sum_b(a, x, s);
                return self.mul(c, k);
            }
            // all of G equal to v: v·sum(other)·ones
            MNode::Fill(v) => {
                let t = self.sum(a);
                let k = self.constant(v.get());
                let kt = self.mul(k, t);
                let ones = self.fill(1.0, s);
                return self.mul(kt, ones);
            }
            MNode::Neg(x) => {
                let k = self.kron_sum_b(a, x, s);
                return self.neg(k);
            }
            MNode::Eye(_) if matches!(s, Shape::Matrix(r, c) if r == c) && matches!(self.shape(a), Shape::Matrix(r, c) if r == c) => {
                let (r, _) = rc(s);
                let (t, e) = (self.trace(a), self.eye(r));
                return self.mul(t, e);
            }
            MNode::Kron(x, y) if self.shape(y) == s && self.shape(x) == self.shape(a) => {
                let p = self.mul(a, x);
                let t = self.sum(p);
                return self.mul(t, y);
            }
            _ => {}
        }
        self.intern(MNode::KronSumB(a, g), s)
    }

    /// Whether `id` depends on variable `v` (a loop over ids up to `id`).
    pub fn depends_on(&self, id: MId, v: u32) -> bool {
        let mut dep = vec![false; id.index() + 1];
        for i in 0..=id.index() {
            let n = self.nodes[i];
            dep[i] = match n {
                MNode::Var(k) => k == v,
                _ => n.children().any(|c| dep[c.index()]),
            };
        }
        dep[id.index()]
    }

    /// The nodes `roots` depend on, as a mask over ids.
    pub fn reachable(&self, roots: &[MId]) -> Vec<bool> {
        let top = roots.iter().map(|r| r.index() + 1).max().unwrap_or(0);
        let mut need = vec![false; top];
        for r in roots {
            need[r.index()] = true;
        }
        for i in (0..top).rev() {
            if need[i] {
                for c in self.nodes[i].children() {
                    need[c.index()] = true;
                }
            }
        }
        need
    }
}

/// The derivative rules of the elementary functions ([`Func::chain`]) build into the graph.
impl Build for Graph {
    type Id = MId;
    fn constant(&mut self, v: f64) -> MId {
        Graph::constant(self, v)
    }
    fn add(&mut self, a: MId, b: MId) -> MId {
        Graph::add(self, a, b)
    }
    fn sub(&mut self, a: MId, b: MId) -> MId {
        Graph::sub(self, a, b)
    }
    fn mul(&mut self, a: MId, b: MId) -> MId {
        Graph::mul(self, a, b)
    }
    fn div(&mut self, a: MId, b: MId) -> MId {
        Graph::div(self, a, b)
    }
    fn pow(&mut self, a: MId, b: MId) -> MId {
        Graph::pow(self, a, b)
    }
    fn neg(&mut self, a: MId) -> MId {
        Graph::neg(self, a)
    }
    fn call(&mut self, f: Func, a: MId) -> MId {
        Graph::call(self, f, a)
    }
}
