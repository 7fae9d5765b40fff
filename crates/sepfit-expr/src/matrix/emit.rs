//! Code generation: a loss and its gradients as a self-contained Python function on numpy
//! arrays, written from the same (simplified) graph the printer shows.
//!
//! ```text
//! import numpy as np
//!
//!
//! def loss_and_grad(X, w, y):
//!     X = np.asarray(X, dtype=np.float64)
//!     w = np.asarray(w, dtype=np.float64).reshape(-1)
//!     y = np.asarray(y, dtype=np.float64).reshape(-1)
//!     t_0 = X @ w - y
//!     value = np.linalg.norm(t_0) ** 2
//!     grad_w = 2.0 * (X.T @ t_0)
//!     return float(value), grad_w
//! ```
//!
//! Representation: a scalar is a float, a vector (a column `n×1` or a row `1×n` of the graph)
//! a 1-D array, a matrix a 2-D array. Where the graph broadcasts a column against a row or a
//! matrix, the column is written `v[:, None]` and the row `v[None, :]`; a matrix product of a
//! column and a row is `np.outer(u, v)`, the other products `@`.
//!
//! Local variables: the definitions of the printed formula (the user's `z = ...;` and the names
//! [`LossFormula::name_shared`] gave) keep their names; any other node used twice or more (an
//! expression the printer would repeat) becomes `t_0`, `t_1`, ... Each local is computed once, in
//! node order (a topological order), so the code is linear in the size of the graph.
//!
//! | node                         | numpy                                              |
//! |------------------------------|----------------------------------------------------|
//! | `A*B`, `A'`                  | `A @ B` (`np.outer(u, v)` for `u·vᵀ`), `A.T`       |
//! | `.*` `./` `.^` `+` `-`       | `*` `/` `**` `+` `-` (with `[:, None]`, `[None, :]`) |
//! | `sum(A)`, `sum(A, 1)`, `sum(A, 2)` | `np.sum(A)`, `np.sum(A, axis=0)`, `np.sum(A, axis=1)` |
//! | `norm2`, `normF`             | `np.linalg.norm`                                   |
//! | `tr`, `diag`                 | `np.trace`, `np.diag`                              |
//! | `inv`, `det`, `logdet`       | `np.linalg.inv`, `np.linalg.det`, `np.linalg.slogdet(A)[1]` |
//! | `pinv`, `X^k`, `kron`        | `np.linalg.pinv`, `np.linalg.matrix_power`, `np.kron` |
//! | `kronsum` (adjoints of `kron`) | `_kronsum_a`, `_kronsum_b` (`np.einsum` over the blocks) |
//! | `softmax`, `logsumexp`       | `_softmax`, `_logsumexp` (max subtracted: no overflow) |
//! | `softmax(A, d)`, `logsumexp(A, d)` | `_softmax_axis`, `_logsumexp_axis` along axis `d − 1` |
//! | `sigmoid`, `softplus`, `xlogy` | `_sigmoid`, `_softplus`, `_xlogy` (stable helpers) |
//! | `relu`, `step`, `max`, `min`, `atan2` | `np.maximum(x, 0.0)`, `np.heaviside(x, 0.0)`, `np.maximum`, `np.minimum`, `np.arctan2` |
//!
//! `erf` and `erfc` have no numpy function: a formula with them is an [`EmitError`].

use super::LossFormula;
use super::graph::{MId, MNode, ONE, rc};
use crate::func::{Func, Func2};
use crate::shape::{Dim, Shape};

/// The language [`LossFormula::emit`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// A Python function on numpy arrays.
    Numpy,
}

impl Lang {
    /// Looks a language up by name (`numpy`).
    pub fn from_name(name: &str) -> Option<Lang> {
        match name {
            "numpy" | "python" => Some(Lang::Numpy),
            _ => None,
        }
    }
}

/// Why code could not be generated.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EmitError {
    /// A node of the formula has no translation.
    #[error("cannot emit numpy code for `{what}`: {reason}")]
    Unsupported {
        /// The subexpression, in the ASCII form of the formula.
        what: String,
        /// Why.
        reason: String,
    },
    /// A variable's name is not usable as a Python argument.
    #[error("cannot emit numpy code: the variable `{0}` is a Python keyword or a name the generated code uses (`np`, `float`, `value`, `grad_*`, `t_*`, `_*`); rename it")]
    BadName(String),
    /// A dimension needed by the code is not the size of any argument.
    #[error("cannot emit numpy code: the size of dimension `{0}` is not the size of any variable the formula uses")]
    UnknownDim(String),
    /// A requested gradient does not belong to the formula.
    #[error("cannot emit numpy code: {0}")]
    Request(String),
}

const PY_KEYWORDS: [&str; 39] = [
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif", "else",
    "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise",
    "return", "try", "while", "with", "yield", "np", "value", "loss_and_grad", "float",
];

// Python precedence levels, loosest first.
const P_ADD: u8 = 1;
const P_MUL: u8 = 2;
const P_NEG: u8 = 3;
const P_POW: u8 = 4;
const P_ATOM: u8 = 5;

/// A Python expression and its precedence.
#[derive(Clone, Debug)]
struct Py {
    s: String,
    p: u8,
}

fn atom(s: impl Into<String>) -> Py {
    Py { s: s.into(), p: P_ATOM }
}

impl Py {
    /// The expression as an operand that needs at least precedence `p`.
    fn at(&self, p: u8) -> String {
        if self.p < p { format!("({})", self.s) } else { self.s.clone() }
    }
}

/// A Python float literal that reads back as the same `f64` (Rust's shortest round-trip form).
fn float_lit(v: f64) -> Py {
    let s = if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v:?}") };
    Py { p: if v < 0.0 { P_NEG } else { P_ATOM }, s }
}

const HELPERS: [(&str, &str); 9] = [
    (
        "_kronsum_a",
        "def _kronsum_a(G, B):\n    rb, cb = B.shape\n    return np.einsum(\"ikjl,kl->ij\", G.reshape(G.shape[0] // rb, rb, G.shape[1] // cb, cb), B)\n",
    ),
    (
        "_kronsum_b",
        "def _kronsum_b(A, G):\n    ra, ca = A.shape\n    return np.einsum(\"ikjl,ij->kl\", G.reshape(ra, G.shape[0] // ra, ca, G.shape[1] // ca), A)\n",
    ),
    (
        "_sigmoid",
        "def _sigmoid(x):\n    e = np.exp(-np.abs(x))\n    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))\n",
    ),
    ("_softplus", "def _softplus(x):\n    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))\n"),
    (
        "_xlogy",
        "def _xlogy(x, y):\n    x, y = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))\n    safe = np.where(x == 0, 1.0, y)\n    return np.where(x == 0, 0.0, x * np.log(safe))\n",
    ),
    ("_logsumexp", "def _logsumexp(a):\n    m = np.max(a)\n    return m + np.log(np.sum(np.exp(a - m)))\n"),
    ("_softmax", "def _softmax(a):\n    e = np.exp(a - np.max(a))\n    return e / np.sum(e)\n"),
    (
        "_logsumexp_axis",
        "def _logsumexp_axis(a, axis):\n    m = np.max(a, axis=axis, keepdims=True)\n    return (m + np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True))).squeeze(axis)\n",
    ),
    (
        "_softmax_axis",
        "def _softmax_axis(a, axis):\n    e = np.exp(a - np.max(a, axis=axis, keepdims=True))\n    return e / np.sum(e, axis=axis, keepdims=True)\n",
    ),
];

/// How a graph shape is held in numpy.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Scalar,
    Col,
    Row,
    Matrix,
}

fn kind(s: Shape) -> Kind {
    let (r, c) = rc(s);
    match (r == ONE, c == ONE) {
        (true, true) => Kind::Scalar,
        (false, true) => Kind::Col,
        (true, false) => Kind::Row,
        (false, false) => Kind::Matrix,
    }
}

impl LossFormula {
    /// Python source of `def loss_and_grad(<variables>): ... return value, grad_<w>, ...`: the
    /// loss and the gradients `grads` (from [`Self::gradients`] for the variables `wrt`) on
    /// numpy arrays. The arguments are the variables the formula uses, in declaration order;
    /// vectors may be given as 1-D arrays or columns, and each gradient is returned as a 1-D
    /// array for a vector, a 2-D array for a matrix, a float for a scalar. See the module docs
    /// for the translation; call [`Self::name_shared`] first to have the printed names.
    pub fn emit(&self, lang: Lang, wrt: &[&str], grads: &[MId]) -> Result<String, EmitError> {
        let Lang::Numpy = lang;
        if wrt.len() != grads.len() {
            return Err(EmitError::Request(format!("{} variables but {} gradients", wrt.len(), grads.len())));
        }
        let g = &self.graph;
        if g.shape(self.root) != Shape::Scalar {
            return Err(EmitError::Request(format!("the loss must be a scalar, but this is a {}", g.shape_name(g.shape(self.root)))));
        }
        let used = self.variables();
        let args: Vec<(u32, String)> = g
            .vars
            .iter()
            .enumerate()
            .filter(|(_, v)| used.contains(&v.name))
            .map(|(k, v)| (k as u32, v.name.clone()))
            .collect();
        for (_, n) in &args {
            if PY_KEYWORDS.contains(&n.as_str()) || n.starts_with("grad_") || n.starts_with("t_") || n.starts_with('_') {
                return Err(EmitError::BadName(n.clone()));
            }
        }
        for w in wrt {
            if !args.iter().any(|(_, n)| n == w) {
                return Err(EmitError::Request(format!("`{w}` is not a variable of the formula")));
            }
        }
        let mut roots = vec![self.root];
        roots.extend_from_slice(grads);
        let reach = g.reachable(&roots);
        let n = reach.len();
        let mut uses = vec![0u32; n];
        for i in (0..n).filter(|&i| reach[i]) {
            for c in g.node(MId(i as u32)).children() {
                uses[c.index()] += 1;
            }
        }
        for r in &roots {
            uses[r.index()] += 1;
        }
        // names in use: arguments, dimensions, user definitions
        let mut taken: Vec<String> = args.iter().map(|(_, n)| n.clone()).collect();
        taken.extend(self.names.values().cloned());
        let dim_names: Vec<String> = g
            .dims
            .iter()
            .map(|d| {
                let d = d.replace('*', "_");
                if taken.contains(&d) || PY_KEYWORDS.contains(&d.as_str()) { format!("{d}_") } else { d }
            })
            .collect();
        taken.extend(dim_names.iter().cloned());
        let mut dims_needed = vec![false; g.dims.len()];
        let mut helpers = [false; HELPERS.len()];
        let mut expr: Vec<Option<Py>> = vec![None; n];
        let mut body: Vec<String> = Vec::new();
        let mut counter = 0usize;
        for i in (0..n).filter(|&i| reach[i]) {
            let id = MId(i as u32);
            let e = self.emit_node(id, &expr, &dim_names, &mut dims_needed, &mut helpers)?;
            let node = g.node(id);
            let trivial = matches!(node, MNode::Const(_) | MNode::Fill(_) | MNode::Eye(_) | MNode::Var(_))
                || (matches!(node, MNode::Transpose(a) if matches!(g.node(a), MNode::Var(_)) || kind(g.shape(a)) != Kind::Matrix));
            let only_root = id == self.root && uses[i] == 1;
            let name = if trivial || only_root {
                None
            } else if let Some(nm) = self.names.get(&id) {
                let clash = PY_KEYWORDS.contains(&nm.as_str()) || args.iter().any(|(_, a)| a == nm) || nm.starts_with("grad_") || nm.starts_with('_');
                Some(if clash { format!("{nm}_") } else { nm.clone() })
            } else if uses[i] >= 2 {
                let nm = loop {
                    let nm = format!("t_{counter}");
                    counter += 1;
                    if !taken.contains(&nm) {
                        break nm;
                    }
                };
                Some(nm)
            } else {
                None
            };
            expr[i] = Some(match name {
                Some(nm) => {
                    body.push(format!("    {nm} = {}", e.s));
                    atom(nm)
                }
                None => e,
            });
        }
        let get = |id: MId| expr[id.index()].clone().unwrap_or_else(|| atom("None"));
        body.push(format!("    value = {}", get(self.root).s));
        let mut rets = vec!["float(value)".to_string()];
        for (w, gr) in wrt.iter().zip(grads) {
            let e = get(*gr);
            let e = if g.shape(*gr) == Shape::Scalar { format!("float({})", e.s) } else { e.s };
            body.push(format!("    grad_{w} = {e}"));
            rets.push(format!("grad_{w}"));
        }
        body.push(format!("    return {}", rets.join(", ")));
        // sizes of the dimensions used by `ones`, `eye`, `zeros`
        let mut prologue: Vec<String> = Vec::new();
        for (_, nm) in &args {
            let k = g.find_var(nm).unwrap_or(0);
            let s = g.vars[k as usize].shape;
            prologue.push(match kind(s) {
                Kind::Scalar => format!("    {nm} = float({nm})"),
                Kind::Col | Kind::Row => format!("    {nm} = np.asarray({nm}, dtype=np.float64).reshape(-1)"),
                Kind::Matrix => format!("    {nm} = np.asarray({nm}, dtype=np.float64)"),
            });
        }
        // a product dimension `n*m` (from `kron`) is computed from its factors
        let dim_expr = |d: Dim, names: &[String]| match d {
            Dim::Sym(i) => names.get(i as usize).cloned().unwrap_or_default(),
            Dim::Fixed(k) => k.to_string(),
            Dim::Obs => "n".to_string(),
        };
        for &(i, (a, b)) in g.dim_products.iter().rev() {
            if dims_needed[i as usize] {
                for f in [a, b] {
                    if let Dim::Sym(j) = f {
                        dims_needed[j as usize] = true;
                    }
                }
            }
        }
        for (d, needed) in dims_needed.iter().enumerate() {
            if !needed {
                continue;
            }
            if let Some((_, (a, b))) = g.dim_products.iter().find(|(i, _)| *i as usize == d) {
                prologue.push(format!("    {} = {} * {}", dim_names[d], dim_expr(*a, &dim_names), dim_expr(*b, &dim_names)));
                continue;
            }
            let dim = Dim::Sym(d as u32);
            let src = args.iter().find_map(|(k, nm)| {
                let s = g.vars[*k as usize].shape;
                let (r, c) = rc(s);
                match kind(s) {
                    Kind::Matrix if r == dim => Some(format!("{nm}.shape[0]")),
                    Kind::Matrix if c == dim => Some(format!("{nm}.shape[1]")),
                    Kind::Col if r == dim => Some(format!("{nm}.shape[0]")),
                    Kind::Row if c == dim => Some(format!("{nm}.shape[0]")),
                    _ => None,
                }
            });
            let Some(src) = src else { return Err(EmitError::UnknownDim(g.dims[d].clone())) };
            prologue.push(format!("    {} = {src}", dim_names[d]));
        }
        let mut out = String::from("import numpy as np\n\n\n");
        for (k, (_, h)) in HELPERS.iter().enumerate() {
            if helpers[k] {
                out.push_str(h);
                out.push_str("\n\n");
            }
        }
        let names: Vec<&str> = args.iter().map(|(_, n)| n.as_str()).collect();
        out.push_str(&format!("def loss_and_grad({}):\n", names.join(", ")));
        out.push_str(&format!("    \"\"\"Loss {} and its gradient{} (generated by sepfit).\n\n", self.unicode(self.root).replace('\\', "\\\\"), if wrt.len() == 1 { "" } else { "s" }));
        for (w, gr) in wrt.iter().zip(grads) {
            out.push_str(&format!("    grad_{w} = {}\n", self.unicode(*gr).replace('\\', "\\\\")));
        }
        let defs = {
            let mut d: Vec<(String, MId)> = Vec::new();
            for r in &roots {
                for x in self.definitions_used(*r) {
                    if !d.contains(&x) {
                        d.push(x);
                    }
                }
            }
            d.sort_by_key(|(_, i)| *i);
            d
        };
        if !defs.is_empty() {
            out.push_str("    where\n");
            for (nm, id) in &defs {
                out.push_str(&format!("      {nm} = {}\n", self.unicode(*id).replace('\\', "\\\\")));
            }
        }
        out.push_str("    \"\"\"\n");
        for l in prologue.iter().chain(&body) {
            out.push_str(l);
            out.push('\n');
        }
        Ok(out)
    }

    fn unsupported(&self, id: MId, reason: &str) -> EmitError {
        EmitError::Unsupported { what: self.graph.render(id, super::Style::Ascii, &self.names), reason: reason.to_string() }
    }

    /// The numpy expression of one node, its children already emitted.
    fn emit_node(
        &self,
        id: MId,
        expr: &[Option<Py>],
        dim_names: &[String],
        dims_needed: &mut [bool],
        helpers: &mut [bool; HELPERS.len()],
    ) -> Result<Py, EmitError> {
        let g = &self.graph;
        let get = |c: MId| expr[c.index()].clone().unwrap_or_else(|| atom("None"));
        let mut dim = |d: Dim| -> String {
            match d {
                Dim::Fixed(k) => k.to_string(),
                Dim::Sym(i) => {
                    if let Some(x) = dims_needed.get_mut(i as usize) {
                        *x = true;
                    }
                    dim_names.get(i as usize).cloned().unwrap_or_else(|| format!("d{i}"))
                }
                Dim::Obs => "n".to_string(),
            }
        };
        let mut helper = |name: &str| {
            if let Some(k) = HELPERS.iter().position(|(h, _)| *h == name) {
                helpers[k] = true;
            }
        };
        let out_kind = kind(g.shape(id));
        // an operand of an elementwise operation, broadcast as the graph does
        let bcast = |c: MId| -> Py {
            let e = get(c);
            match (out_kind, kind(g.shape(c))) {
                (Kind::Matrix, Kind::Col) => atom(format!("{}[:, None]", e.at(P_ATOM))),
                (Kind::Matrix, Kind::Row) => atom(format!("{}[None, :]", e.at(P_ATOM))),
                _ => e,
            }
        };
        // `(X @ P) * X`, `(a * b) @ c`: a matrix product and an elementwise one keep parentheses
        let is_mm = |c: MId| matches!(g.node(c), MNode::MatMul(l, _) if kind(g.shape(l)) != Kind::Col);
        let mixed = |c: MId, e: &Py, mm: bool| e.p == P_MUL && is_mm(c) != mm;
        let bin = |a: MId, op: &str, p: u8, b: MId| -> Py {
            let (x, y) = (bcast(a), bcast(b));
            let l = if p == P_MUL && mixed(a, &x, false) { format!("({})", x.s) } else { x.at(p) };
            let r = if p == P_MUL && mixed(b, &y, false) { format!("({})", y.s) } else { y.at(p + 1) };
            Py { s: format!("{l} {op} {r}"), p }
        };
        let call = |f: &str, a: &Py| atom(format!("{f}({})", a.s));
        Ok(match g.node(id) {
            MNode::Const(v) => float_lit(v.get()),
            MNode::Fill(v) => {
                let (r, c) = rc(g.shape(id));
                let shape = match out_kind {
                    Kind::Col => dim(r),
                    Kind::Row => dim(c),
                    _ => format!("({}, {})", dim(r), dim(c)),
                };
                match v.get() {
                    0.0 => atom(format!("np.zeros({shape})")),
                    1.0 => atom(format!("np.ones({shape})")),
                    x => atom(format!("np.full({shape}, {x:?})")),
                }
            }
            MNode::Eye(d) => atom(format!("np.eye({})", dim(d))),
            MNode::Var(k) => atom(g.vars[k as usize].name.clone()),
            MNode::Add(a, b) => bin(a, "+", P_ADD, b),
            MNode::Sub(a, b) => bin(a, "-", P_ADD, b),
            MNode::Mul(a, b) => bin(a, "*", P_MUL, b),
            MNode::Div(a, b) => bin(a, "/", P_MUL, b),
            MNode::Pow(a, b) => {
                let (x, y) = (bcast(a), bcast(b));
                Py { s: format!("{} ** {}", x.at(P_ATOM), y.at(P_NEG)), p: P_POW }
            }
            MNode::Neg(a) => Py { s: format!("-{}", get(a).at(P_POW)), p: P_NEG },
            MNode::XLogY(a, b) => {
                helper("_xlogy");
                atom(format!("_xlogy({}, {})", bcast(a).s, bcast(b).s))
            }
            MNode::Call2(f, a, b) => {
                let name = match f {
                    Func2::Atan2 => "np.arctan2",
                    Func2::Max => "np.maximum",
                    Func2::Min => "np.minimum",
                };
                atom(format!("{name}({}, {})", bcast(a).s, bcast(b).s))
            }
            MNode::Call(f, a) => {
                let x = get(a);
                match f {
                    Func::Exp => call("np.exp", &x),
                    Func::Log => call("np.log", &x),
                    Func::Log10 => call("np.log10", &x),
                    Func::Sqrt => call("np.sqrt", &x),
                    Func::Sin => call("np.sin", &x),
                    Func::Cos => call("np.cos", &x),
                    Func::Tan => call("np.tan", &x),
                    Func::Asin => call("np.arcsin", &x),
                    Func::Acos => call("np.arccos", &x),
                    Func::Atan => call("np.arctan", &x),
                    Func::Sinh => call("np.sinh", &x),
                    Func::Cosh => call("np.cosh", &x),
                    Func::Tanh => call("np.tanh", &x),
                    Func::Abs => call("np.abs", &x),
                    Func::Sign => call("np.sign", &x),
                    Func::Log1p => call("np.log1p", &x),
                    Func::Expm1 => call("np.expm1", &x),
                    Func::Sigmoid => {
                        helper("_sigmoid");
                        call("_sigmoid", &x)
                    }
                    Func::Softplus => {
                        helper("_softplus");
                        call("_softplus", &x)
                    }
                    Func::Relu => atom(format!("np.maximum({}, 0.0)", x.s)),
                    Func::Step => atom(format!("np.heaviside({}, 0.0)", x.s)),
                    Func::Erf | Func::Erfc => {
                        return Err(self.unsupported(id, &format!("numpy has no `{}` (scipy.special.{} has)", f.name(), f.name())));
                    }
                }
            }
            MNode::MatMul(a, b) => {
                let (x, y) = (get(a), get(b));
                if kind(g.shape(a)) == Kind::Col {
                    atom(format!("np.outer({}, {})", x.s, y.s))
                } else {
                    let l = if mixed(a, &x, true) { format!("({})", x.s) } else { x.at(P_MUL) };
                    Py { s: format!("{l} @ {}", y.at(P_MUL + 1)), p: P_MUL }
                }
            }
            MNode::Transpose(a) => {
                let x = get(a);
                if kind(g.shape(a)) == Kind::Matrix { atom(format!("{}.T", x.at(P_ATOM))) } else { x }
            }
            MNode::Sum(a) => call("np.sum", &get(a)),
            MNode::SumRows(a) => match kind(g.shape(a)) {
                Kind::Matrix => atom(format!("np.sum({}, axis=0)", get(a).s)),
                Kind::Col => call("np.sum", &get(a)),
                _ => get(a),
            },
            MNode::SumCols(a) => match kind(g.shape(a)) {
                Kind::Matrix => atom(format!("np.sum({}, axis=1)", get(a).s)),
                Kind::Row => call("np.sum", &get(a)),
                _ => get(a),
            },
            MNode::Norm2(a) | MNode::NormF(a) => call("np.linalg.norm", &get(a)),
            MNode::Trace(a) => call("np.trace", &get(a)),
            MNode::DiagM(a) | MNode::DiagV(a) => call("np.diag", &get(a)),
            MNode::Inv(a) => call("np.linalg.inv", &get(a)),
            MNode::Det(a) => call("np.linalg.det", &get(a)),
            MNode::LogDet(a) => atom(format!("np.linalg.slogdet({})[1]", get(a).s)),
            MNode::LogSumExp(a) => {
                helper("_logsumexp");
                call("_logsumexp", &get(a))
            }
            MNode::Softmax(a) => {
                helper("_softmax");
                call("_softmax", &get(a))
            }
            // along axis 0 (each column, a row) or 1 (each row, a column), as 1-D results
            MNode::LogSumExpDim(a, d) => {
                helper("_logsumexp_axis");
                atom(format!("_logsumexp_axis({}, {})", get(a).s, d - 1))
            }
            MNode::SoftmaxDim(a, d) => {
                helper("_softmax_axis");
                atom(format!("_softmax_axis({}, {})", get(a).s, d - 1))
            }
            MNode::MatPow(a, k) => atom(format!("np.linalg.matrix_power({}, {k})", get(a).s)),
            MNode::Pinv(a) => call("np.linalg.pinv", &get(a)),
            MNode::Kron(a, b) | MNode::KronSumA(a, b) | MNode::KronSumB(a, b) => {
                // on the 2-D forms (a column `v[:, None]`, a row `v[None, :]`)
                let two_d = |c: MId| -> String {
                    let e = get(c);
                    match kind(g.shape(c)) {
                        Kind::Col => format!("{}[:, None]", e.at(P_ATOM)),
                        Kind::Row => format!("{}[None, :]", e.at(P_ATOM)),
                        Kind::Scalar => format!("np.atleast_2d({})", e.s),
                        Kind::Matrix => e.s,
                    }
                };
                let f = match g.node(id) {
                    MNode::Kron(..) => "np.kron",
                    MNode::KronSumA(..) => "_kronsum_a",
                    _ => "_kronsum_b",
                };
                helper(f);
                let e = format!("{f}({}, {})", two_d(a), two_d(b));
                match out_kind {
                    Kind::Matrix => atom(e),
                    Kind::Scalar => atom(format!("{e}.item()")),
                    _ => atom(format!("{e}.ravel()")),
                }
            }
        })
    }
}
