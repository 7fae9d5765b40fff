//! Loss formulas in vectors and matrices: declared variables with (symbolic) shapes, a typed
//! matrix expression graph, exact reverse-mode gradients printed in matrix notation, numeric
//! evaluation and a gradient check against central differences.
//!
//! The same lexer, parser, syntax tree and [`Diagnostic`]s as model formulas; only the lowering
//! differs: `*` is the matrix product (or a scalar product), `.*` `./` `.^` are elementwise with
//! broadcasting (a column minus a row, `x - b'`, is a matrix), `'` transposes.
//!
//! ```
//! use sepfit_expr::matrix::{LossFormula, Mat, Values};
//! let mut f = LossFormula::new("norm2(X*w - y)^2", "X: n x d, w: d, y: n", None).unwrap();
//! let g = f.gradient("w").unwrap();
//! assert_eq!(f.ascii(g), "2*X'*(X*w - y)");
//! assert_eq!(f.unicode(g), "2·Xᵀ·(X·w − y)");
//! let mut v = Values::new();
//! v.insert("X".into(), Mat::from_rows(&[vec![1.0, 0.0], vec![0.0, 2.0], vec![1.0, 1.0]]).unwrap());
//! v.insert("w".into(), Mat::vector(vec![1.0, -1.0]));
//! v.insert("y".into(), Mat::vector(vec![0.0, 0.0, 1.0]));
//! let [j, gw] = f.eval(&[f.root(), g], &v).unwrap().try_into().unwrap();
//! assert!((j.data[0] - 6.0).abs() < 1e-12); // ‖(1, -2, -1)‖₂²
//! assert_eq!(gw.data, [2.0 * (1.0 - 1.0), 2.0 * (-4.0 - 1.0)]);
//! assert!(f.check_gradient(&["w"], &[g], &v, 4, 1).unwrap() < 1e-9);
//! ```
//!
//! ## Relation to [`crate::Pool`]
//! `Pool` is the elementwise scalar graph of model formulas (every node is a scalar or a
//! per-observation vector). [`Graph`] is a separate arena with the same conventions
//! (hash-consing, simplify-on-build, children before parents) plus matrix nodes. A model formula
//! is the special case with no matrix products; unifying them means adding `MatMul`, `Transpose`
//! and the reductions to `Pool` with `Shape` as here, and retiring this arena.

pub mod emit;
pub mod eval;
pub mod grad;
pub mod graph;
pub mod jacobian;
pub mod lower;
pub mod print;
mod simplify;

pub use emit::{EmitError, Lang};
pub use eval::{Mat, ValueError, Values};
pub use graph::{Graph, MId, MNode};
pub use lower::{Decl, parse_decls};
pub use print::Style;

use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::func::Func;
use crate::shape::{Dim, Shape};
use crate::span::Span;
use std::collections::HashMap;

/// Why a loss formula could not be built, differentiated or evaluated.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum LossError {
    /// A problem in the formula; the span refers to the formula text.
    #[error("{0}")]
    Formula(Diagnostic),
    /// A problem in the declarations; the span refers to the declaration text.
    #[error("{0}")]
    Declarations(Diagnostic),
    /// A problem with a variable's value, a requested variable, or evaluation.
    #[error("{0}")]
    Value(String),
}

impl From<ValueError> for LossError {
    fn from(e: ValueError) -> Self {
        LossError::Value(e.0)
    }
}

/// A parsed, shape-checked loss formula. See the module docs.
#[derive(Clone, Debug)]
pub struct LossFormula {
    /// The expression graph.
    pub graph: Graph,
    src: String,
    root: MId,
    defs: Vec<(String, MId)>,
    used: Vec<(u32, Span)>,
    names: HashMap<MId, String>,
}

/// The smallest printed size (in nodes) of a shared subexpression that
/// [`LossFormula::name_shared`] names.
pub const SHARED_MIN_SIZE: usize = 24;

/// The error for a Jacobian or Hessian whose product rule through matrix intermediates took
/// more than [`jacobian::MAX_APPLIED`] steps.
fn too_large(whole: Span, what: &str, wrt: &str) -> LossError {
    LossError::Formula(
        Diagnostic::new(
            DiagnosticKind::ShapeMismatch,
            whole,
            format!(
                "the {what} in `{wrt}` is too large to form: the product rule through its matrix intermediates takes more than {} steps (products of matrices that depend on `{wrt}` nest too deeply)",
                jacobian::MAX_APPLIED
            ),
            "nests too many products",
        )
        .hint("differentiate a smaller expression, or name fewer nested products"),
    )
}

fn all_finite(ms: &[&Mat]) -> bool {
    ms.iter().all(|m| m.data.iter().all(|v| v.is_finite()))
}

/// The shape of a value: `1×1` is a scalar, `n×1` a vector.
pub fn shape_of(m: &Mat) -> Shape {
    graph::from_rc(Dim::Fixed(m.rows), Dim::Fixed(m.cols))
}

impl LossFormula {
    /// Parses `src` (statements `name = expr;` ending in the loss) with the variables declared in
    /// `decls` (see [`parse_decls`]; may be empty). Variables without a declaration take their
    /// shape from `values` when given; declared variables are checked against their values.
    pub fn new(src: &str, decls: &str, values: Option<&Values>) -> Result<Self, LossError> {
        let mut g = Graph::new();
        for d in parse_decls(decls, &mut g).map_err(LossError::Declarations)? {
            g.declare(&d.name, d.shape);
        }
        if let Some(values) = values {
            let mut names: Vec<&String> = values.keys().collect();
            names.sort();
            for name in names {
                if g.find_var(name).is_none() {
                    g.declare(name, shape_of(&values[name]));
                }
            }
            g.bind(values, &[])?;
        }
        let parsed = crate::parser::parse(src).map_err(LossError::Formula)?;
        let low = lower::lower_loss(src, &parsed, &mut g).map_err(LossError::Formula)?;
        let mut names = HashMap::new();
        for (n, id) in &low.defs {
            if !matches!(g.node(*id), MNode::Var(_) | MNode::Const(_)) {
                names.entry(*id).or_insert_with(|| n.clone());
            }
        }
        Ok(LossFormula { graph: g, src: src.to_string(), root: low.root, defs: low.defs, used: low.used, names })
    }

    /// The loss (the value of the last statement).
    pub fn root(&self) -> MId {
        self.root
    }

    /// The formula text.
    pub fn source(&self) -> &str {
        &self.src
    }

    /// Names of the variables the formula uses, in order of first use.
    pub fn variables(&self) -> Vec<String> {
        self.used.iter().map(|(v, _)| self.graph.vars[*v as usize].name.clone()).collect()
    }

    /// The shape of a node, in words (`vector of length n`).
    pub fn shape_name(&self, id: MId) -> String {
        self.graph.shape_name(self.graph.shape(id))
    }

    fn var_index(&self, name: &str) -> Result<u32, LossError> {
        match self.graph.find_var(name) {
            Some(v) if self.used.iter().any(|(u, _)| *u == v) => Ok(v),
            _ => Err(LossError::Value(format!(
                "`{name}` is not a variable of the formula (it uses: {})",
                self.variables().iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// The gradient of the (scalar) loss with respect to one variable, of that variable's shape.
    pub fn gradient(&mut self, wrt: &str) -> Result<MId, LossError> {
        Ok(self.gradients(&[wrt])?[0])
    }

    /// The gradients of the (scalar) loss with respect to several variables, in one sweep.
    pub fn gradients(&mut self, wrt: &[&str]) -> Result<Vec<MId>, LossError> {
        let s = self.graph.shape(self.root);
        if s != Shape::Scalar {
            return Err(LossError::Formula(
                Diagnostic::new(
                    DiagnosticKind::ShapeMismatch,
                    Span::new(0, self.src.len()),
                    format!("a gradient needs a scalar loss, but this is a {}", self.graph.shape_name(s)),
                    "not a scalar",
                )
                .hint("sum it (`sum(...)`), take a norm (`norm2(...)^2`), or ask for the Jacobian of a vector"),
            ));
        }
        let vars = wrt.iter().map(|w| self.var_index(w)).collect::<Result<Vec<_>, _>>()?;
        Ok(self.graph.gradients(self.root, &vars))
    }

    /// The Jacobian `∂f/∂x` of a vector (or scalar) loss expression `f` of length `p` with respect
    /// to a vector (or scalar) variable `x` of length `d`: a `p×d` expression, row `i` the
    /// gradient of `f_i`. Seed 002 §12.2, `∂/∂x (x − a)/‖x − a‖₂`, prints as
    /// `(I − (x − a)·(x − a)ᵀ/‖x − a‖₂²)/‖x − a‖₂`, the seed's
    /// `I/‖x − a‖ − (x − a)(x − a)ᵀ/‖x − a‖³` with the common factor `1/‖x − a‖` taken out.
    /// With respect to a matrix variable `W` the columns are the entries of `vec(W)` (column by
    /// column) and `W` is read through products with vectors: `∂(W·x)/∂W = xᵀ ⊗ I`.
    /// A matrix intermediate that depends on the variable is read through its products with
    /// vectors: `∂((w·wᵀ)·v)/∂w = wᵀ·v·I + w·vᵀ`, `∂(A·X·b)/∂X = bᵀ ⊗ A`,
    /// `∂(X⁻¹·b)/∂X = −(bᵀ·X⁻ᵀ) ⊗ X⁻¹`. See [`jacobian`] for the rules and what is not
    /// supported (a matrix inside an elementwise function, a trace, a determinant).
    pub fn jacobian(&mut self, wrt: &str) -> Result<MId, LossError> {
        let whole = Span::new(0, self.src.len());
        let s = self.graph.shape(self.root);
        if matches!(s, Shape::Matrix(r, c) if r != graph::ONE && c != graph::ONE) {
            return Err(LossError::Formula(Diagnostic::new(
                DiagnosticKind::ShapeMismatch,
                whole,
                format!("a Jacobian needs a vector expression, but this is a {}", self.graph.shape_name(s)),
                "not a vector",
            )));
        }
        let v = self.var_index(wrt)?;
        self.graph.jacobian(self.root, v).map_err(|e| {
            let id = match e {
                jacobian::JacobianError::MatrixIntermediate(id) => id,
                jacobian::JacobianError::TooLarge => return too_large(whole, "Jacobian", wrt),
            };
            let what = self.graph.render(id, Style::Ascii, &self.names);
            LossError::Formula(
                Diagnostic::new(
                    DiagnosticKind::ShapeMismatch,
                    whole,
                    if what == wrt {
                        format!(
                            "the Jacobian in `{wrt}` is not supported here: `{wrt}` is a {} and is used other than through a product with a vector",
                            self.graph.shape_name(self.graph.shape(id))
                        )
                    } else {
                        format!(
                            "the Jacobian in `{wrt}` is not supported here: `{what}` depends on `{wrt}` and is a {}",
                            self.graph.shape_name(self.graph.shape(id))
                        )
                    },
                    "has a matrix intermediate",
                )
                .hint("a matrix that depends on the variable is differentiated only where a vector multiplies it (through sums, products, transposes, scalings, inverses, integer powers and diag(v)); not inside an elementwise function, an elementwise product of two matrices, a trace or a determinant"),
            )
        })
    }

    /// Compares a Jacobian `jac` (of the root with respect to `wrt`) with Richardson-extrapolated
    /// central differences of the root along `directions` random directions (seeded): the
    /// largest `‖J·v − D_v f‖∞ / max(‖J·v‖∞, ‖D_v f‖∞)` (absolute where both are tiny).
    /// Infinite when the value, the Jacobian or a difference is not finite (NaN included): the
    /// check has failed.
    pub fn check_jacobian(&self, wrt: &str, jac: MId, values: &Values, directions: usize, seed: u64) -> Result<f64, LossError> {
        self.check_jacobian_of(self.root, wrt, jac, values, directions, seed)
    }

    /// The Hessian `∇²_x J` of the scalar loss in a vector (or scalar) variable `x`: the
    /// Jacobian of the gradient, a `d×d` expression (forward mode over the reverse-mode
    /// gradient). Least squares `‖X·w − y‖₂²` gives `2·Xᵀ·X`; the logistic loss
    /// `sum(softplus(X·w) − y.*(X·w))` gives `Xᵀ·diag(p.*(1 − p))·X`, `p = sigmoid(X·w)`
    /// (printed `Xᵀ·(p.*(1 − p).*X)`, the same product with the diagonal applied to `X`).
    /// Returns the gradient and the Hessian.
    pub fn hessian(&mut self, wrt: &str) -> Result<(MId, MId), LossError> {
        let g = self.gradient(wrt)?;
        let h = self.hessian_of(g, wrt, wrt)?;
        Ok((g, h))
    }

    /// A block of the Hessian for several variables: `∂(∇_row J)/∂col`, the Jacobian of the
    /// gradient in `row` with respect to `col` (`d_row×d_col`; [`Self::hessian`] when they are
    /// the same variable). Its transpose is the block `(col, row)`. Both must be vectors or
    /// scalars. Returns the gradient in `row` and the block.
    pub fn hessian_block(&mut self, row: &str, col: &str) -> Result<(MId, MId), LossError> {
        let g = self.gradient(row)?;
        let h = self.hessian_of(g, row, col)?;
        Ok((g, h))
    }

    fn hessian_of(&mut self, g: MId, row: &str, wrt: &str) -> Result<MId, LossError> {
        let v = self.var_index(wrt)?;
        for name in [row, wrt] {
            let vs = self.graph.vars[self.var_index(name)? as usize].shape;
            if matches!(vs, Shape::Matrix(..)) {
                return Err(LossError::Value(format!(
                    "a Hessian with respect to `{name}`, a {}, is not supported: differentiate with respect to a vector or a scalar",
                    self.graph.shape_name(vs)
                )));
            }
        }
        self.graph.jacobian(g, v).map_err(|e| {
            let id = match e {
                jacobian::JacobianError::MatrixIntermediate(id) => id,
                jacobian::JacobianError::TooLarge => return too_large(Span::new(0, self.src.len()), "Hessian", wrt),
            };
            let what = self.graph.render(id, Style::Ascii, &self.names);
            LossError::Formula(
                Diagnostic::new(
                    DiagnosticKind::ShapeMismatch,
                    Span::new(0, self.src.len()),
                    format!(
                        "the Hessian in `{wrt}` is not supported here: the gradient's intermediate `{what}` depends on `{wrt}` and is a {}",
                        self.graph.shape_name(self.graph.shape(id))
                    ),
                    "has a matrix intermediate",
                )
                .hint("a matrix in the gradient that depends on the variable is differentiated only where a vector multiplies it (through sums, products, transposes, scalings, inverses, integer powers and diag(v)); not inside an elementwise function, an elementwise product of two matrices, a trace or a determinant"),
            )
        })
    }

    /// Compares a Hessian `hess` with Richardson-extrapolated central differences of the
    /// gradient `grad` along random directions, as [`Self::check_jacobian`] does for the loss.
    pub fn check_hessian(&self, wrt: &str, grad: MId, hess: MId, values: &Values, directions: usize, seed: u64) -> Result<f64, LossError> {
        self.check_jacobian_of(grad, wrt, hess, values, directions, seed)
    }

    fn check_jacobian_of(&self, of: MId, wrt: &str, jac: MId, values: &Values, directions: usize, seed: u64) -> Result<f64, LossError> {
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut uniform = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        let x = values.get(wrt).ok_or_else(|| LossError::Value(format!("no value for `{wrt}`")))?;
        let j = self.eval(&[jac], values)?.remove(0);
        let f0 = self.eval(&[of], values)?.remove(0);
        if !all_finite(&[&j, &f0]) {
            return Ok(f64::INFINITY);
        }
        let scale = x.data.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        let fscale = f0.data.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let mut worst: f64 = 0.0;
        for _ in 0..directions {
            let dir: Vec<f64> = x.data.iter().map(|_| uniform()).collect();
            // J·v, J stored column-major p×d
            let p = j.rows;
            let mut jv = vec![0.0; p];
            for (k, dk) in dir.iter().enumerate() {
                for (i, o) in jv.iter_mut().enumerate() {
                    *o += j.data[k * p + i] * dk;
                }
            }
            let at = |t: f64| -> Result<Vec<f64>, LossError> {
                let mut v = values.clone();
                if let Some(xv) = v.get_mut(wrt) {
                    for (xi, di) in xv.data.iter_mut().zip(&dir) {
                        *xi += t * di;
                    }
                }
                Ok(self.eval(&[of], &v)?.remove(0).data)
            };
            let h = 1e-3 * scale;
            let (fp, fm, fp2, fm2) = (at(h)?, at(-h)?, at(h / 2.0)?, at(-h / 2.0)?);
            if fp.len() != p {
                return Err(LossError::Value(format!("the Jacobian has {p} rows but the expression has {} entries", fp.len())));
            }
            let mut num: f64 = 0.0;
            let mut den: f64 = 0.0;
            for i in 0..p {
                let d1 = (fp[i] - fm[i]) / (2.0 * h);
                let d2 = (fp2[i] - fm2[i]) / h;
                let fd = (4.0 * d2 - d1) / 3.0;
                if !fd.is_finite() || !jv[i].is_finite() {
                    return Ok(f64::INFINITY); // `max` would skip a NaN
                }
                num = num.max((jv[i] - fd).abs());
                den = den.max(jv[i].abs()).max(fd.abs());
            }
            let e = if den < 1e-13 * (1.0 + fscale) { num } else { num / den };
            worst = worst.max(if e.is_nan() { f64::INFINITY } else { e });
        }
        Ok(worst)
    }

    /// ASCII form, re-readable by the parser; definitions print as their names.
    pub fn ascii(&self, id: MId) -> String {
        self.graph.render(id, Style::Ascii, &self.names)
    }

    /// Plain Unicode form: `2·Xᵀ·(X·w − y)`.
    pub fn unicode(&self, id: MId) -> String {
        self.graph.render(id, Style::Unicode, &self.names)
    }

    /// LaTeX form.
    pub fn latex(&self, id: MId) -> String {
        self.graph.render(id, Style::Latex, &self.names)
    }

    /// Prints in the given style.
    pub fn render(&self, id: MId, style: Style) -> String {
        self.graph.render(id, style, &self.names)
    }

    /// The definitions `id` refers to (directly or through other definitions), the user's and
    /// those made by [`Self::name_shared`], as `(name, node)`, each after the definitions it
    /// uses (in node order, a topological order); print each with [`Self::render`] to list them
    /// under a formula.
    pub fn definitions_used(&self, id: MId) -> Vec<(String, MId)> {
        let reach = self.graph.reachable(&[id]);
        let mut out: Vec<(String, MId)> = self
            .defs
            .iter()
            .filter(|(n, d)| *d != id && reach.get(d.index()).copied().unwrap_or(false) && self.names.get(d) == Some(n))
            .cloned()
            .collect();
        out.sort_by_key(|(_, d)| *d);
        out
    }

    /// Gives names (`t1`, `t2`, ...; names already in use are skipped) to the subexpressions
    /// of `roots` that would otherwise print more than once: a node used by two or more others
    /// and of at least [`SHARED_MIN_SIZE`] printed nodes. Afterwards every print shows them by
    /// name and [`Self::definitions_used`] lists them, so the printed size is linear in the
    /// graph (twenty nested definitions `u2 = sin(u1)*u1` once printed gradients of hundreds of
    /// megabytes). Returns the new definitions in node order.
    pub fn name_shared(&mut self, roots: &[MId]) -> Vec<(String, MId)> {
        let reach = self.graph.reachable(roots);
        let n = reach.len();
        let mut uses = vec![0u32; n];
        for i in (0..n).filter(|&i| reach[i]) {
            for c in self.graph.node(MId(i as u32)).children() {
                uses[c.index()] = uses[c.index()].saturating_add(1);
            }
        }
        let mut size = vec![0usize; n];
        let mut fresh = Vec::new();
        let mut counter = 0usize;
        for i in (0..n).filter(|&i| reach[i]) {
            let id = MId(i as u32);
            let node = self.graph.node(id);
            size[i] = node
                .children()
                .map(|c| if self.names.contains_key(&c) { 1 } else { size[c.index()] })
                .fold(1usize, usize::saturating_add);
            let leaf = matches!(node, MNode::Const(_) | MNode::Fill(_) | MNode::Eye(_) | MNode::Var(_));
            if leaf || uses[i] < 2 || size[i] < SHARED_MIN_SIZE || self.names.contains_key(&id) {
                continue;
            }
            let name = loop {
                counter += 1;
                let name = format!("t{counter}");
                let taken = self.graph.find_var(&name).is_some()
                    || self.graph.dims.contains(&name)
                    || self.defs.iter().any(|(d, _)| *d == name)
                    || Func::from_name(&name).is_some()
                    || crate::Func2::from_name(&name).is_some()
                    || name == "xlogy";
                if !taken {
                    break name;
                }
            };
            self.names.insert(id, name.clone());
            self.defs.push((name.clone(), id));
            fresh.push((name, id));
        }
        fresh
    }

    /// The ASCII form of `id` as a whole formula the parser reads back: the definitions it uses
    /// (`t1 = ...; `) and then the expression.
    pub fn ascii_program(&self, id: MId) -> String {
        let mut s = String::new();
        for (n, d) in self.definitions_used(id) {
            s.push_str(&format!("{n} = {}; ", self.ascii(d)));
        }
        s.push_str(&self.ascii(id));
        s
    }

    /// Evaluates nodes with the given values.
    pub fn eval(&self, ids: &[MId], values: &Values) -> Result<Vec<Mat>, LossError> {
        Ok(self.graph.eval(ids, values)?)
    }

    /// Compares the gradients `grads` (of the loss with respect to `wrt`) with Richardson-
    /// extrapolated central differences along `directions` random directions (seeded), and
    /// returns the largest relative error `|gᵀv − D_v f| / max(|gᵀv|, |D_v f|)`; infinite when
    /// the value, the gradient or a difference is not finite (NaN included): the check has
    /// failed.
    pub fn check_gradient(&self, wrt: &[&str], grads: &[MId], values: &Values, directions: usize, seed: u64) -> Result<f64, LossError> {
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut uniform = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        let g = self.eval(grads, values)?;
        let f0 = self.eval(&[self.root], values)?[0].data[0];
        if !f0.is_finite() || !all_finite(&g.iter().collect::<Vec<_>>()) {
            return Ok(f64::INFINITY);
        }
        let mut worst: f64 = 0.0;
        for _ in 0..directions {
            let dirs: Vec<Mat> = wrt
                .iter()
                .map(|w| {
                    let x = values.get(*w).ok_or_else(|| LossError::Value(format!("no value for `{w}`")))?;
                    Ok(Mat { rows: x.rows, cols: x.cols, data: x.data.iter().map(|_| uniform()).collect() })
                })
                .collect::<Result<_, LossError>>()?;
            let gv: f64 = g.iter().zip(&dirs).map(|(g, d)| g.data.iter().zip(&d.data).map(|(a, b)| a * b).sum::<f64>()).sum();
            let scale = wrt
                .iter()
                .map(|w| values[*w].data.iter().fold(0.0f64, |m, v| m.max(v.abs())))
                .fold(1.0f64, f64::max);
            let at = |t: f64| -> Result<f64, LossError> {
                let mut v = values.clone();
                for (w, d) in wrt.iter().zip(&dirs) {
                    let x = v.get_mut(*w).ok_or_else(|| LossError::Value(format!("no value for `{w}`")))?;
                    for (xi, di) in x.data.iter_mut().zip(&d.data) {
                        *xi += t * di;
                    }
                }
                Ok(self.eval(&[self.root], &v)?[0].data[0])
            };
            let h = 1e-3 * scale;
            let d1 = (at(h)? - at(-h)?) / (2.0 * h);
            let d2 = (at(h / 2.0)? - at(-h / 2.0)?) / h;
            let fd = (4.0 * d2 - d1) / 3.0;
            if !fd.is_finite() || !gv.is_finite() {
                return Ok(f64::INFINITY);
            }
            let denom = gv.abs().max(fd.abs());
            let e = if denom < 1e-13 * (1.0 + f0.abs()) { (gv - fd).abs() } else { (gv - fd).abs() / denom };
            worst = worst.max(if e.is_nan() { f64::INFINITY } else { e });
        }
        Ok(worst)
    }
}
