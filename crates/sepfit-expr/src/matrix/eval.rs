//! Numeric evaluation of the matrix graph with plain column-major `Vec<f64>` matrices, and a
//! small LU factorisation (partial pivoting) for `inv`, `det` and `logdet`.

use std::borrow::Cow;
use super::graph::{Graph, MId, MNode, rc};
use crate::func::{Func, PowKind};
use crate::shape::{Dim, Shape};
use std::collections::HashMap;

/// A dense column-major matrix (`rows × cols`); vectors are `n×1`, scalars `1×1`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mat {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Entries, column by column.
    pub data: Vec<f64>,
}

impl Mat {
    /// A `1×1` matrix.
    pub fn scalar(v: f64) -> Self {
        Mat { rows: 1, cols: 1, data: vec![v] }
    }
    /// A column vector.
    pub fn vector(v: Vec<f64>) -> Self {
        Mat { rows: v.len(), cols: 1, data: v }
    }
    /// A `rows×cols` matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Mat { rows, cols, data: vec![0.0; rows * cols] }
    }
    /// A matrix from its rows; `None` if the rows differ in length or there are none.
    pub fn from_rows(rows: &[Vec<f64>]) -> Option<Self> {
        let c = rows.first()?.len();
        if c == 0 || rows.iter().any(|r| r.len() != c) {
            return None;
        }
        let mut m = Mat::zeros(rows.len(), c);
        for (i, r) in rows.iter().enumerate() {
            for (j, v) in r.iter().enumerate() {
                m.data[j * rows.len() + i] = *v;
            }
        }
        Some(m)
    }
    /// Entry `(i, j)`.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[j * self.rows + i]
    }
    /// The rows, as vectors.
    pub fn to_rows(&self) -> Vec<Vec<f64>> {
        (0..self.rows).map(|i| (0..self.cols).map(|j| self.get(i, j)).collect()).collect()
    }
    /// The shape word for messages: `3×2`.
    pub fn dims(&self) -> String {
        format!("{}×{}", self.rows, self.cols)
    }
    fn transpose(&self) -> Mat {
        let mut t = Mat::zeros(self.cols, self.rows);
        for j in 0..self.cols {
            for i in 0..self.rows {
                t.data[i * self.cols + j] = self.data[j * self.rows + i];
            }
        }
        t
    }
}

/// Values of the variables by name.
pub type Values = HashMap<String, Mat>;

/// An error evaluating a formula: a missing or ill-shaped value, a singular matrix.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ValueError> {
    Err(ValueError(msg.into()))
}

/// LU factorisation with partial pivoting of a square matrix (column-major), in place.
/// Returns the pivot rows and the sign of the permutation; `None` if exactly singular.
fn lu(a: &mut [f64], n: usize) -> Option<(Vec<usize>, f64)> {
    let mut piv = vec![0; n];
    let mut sign = 1.0;
    for k in 0..n {
        let p = (k..n).max_by(|&i, &j| a[k * n + i].abs().total_cmp(&a[k * n + j].abs()))?;
        piv[k] = p;
        if a[k * n + p] == 0.0 {
            return None;
        }
        if p != k {
            sign = -sign;
            for j in 0..n {
                a.swap(j * n + k, j * n + p);
            }
        }
        let d = a[k * n + k];
        for i in k + 1..n {
            a[k * n + i] /= d;
        }
        for j in k + 1..n {
            let f = a[j * n + k];
            if f != 0.0 {
                for i in k + 1..n {
                    a[j * n + i] -= a[k * n + i] * f;
                }
            }
        }
    }
    Some((piv, sign))
}

fn inverse(m: &Mat) -> Result<Mat, ValueError> {
    let n = m.rows;
    let mut a = m.data.clone();
    let Some((piv, _)) = lu(&mut a, n) else { return err("inv: the matrix is singular") };
    let mut inv = Mat::zeros(n, n);
    for c in 0..n {
        let mut b = vec![0.0; n];
        b[c] = 1.0;
        for (k, &p) in piv.iter().enumerate() {
            b.swap(k, p);
        }
        for k in 0..n {
            for i in k + 1..n {
                b[i] -= a[k * n + i] * b[k];
            }
        }
        for k in (0..n).rev() {
            b[k] /= a[k * n + k];
            for i in 0..k {
                b[i] -= a[k * n + i] * b[k];
            }
        }
        inv.data[c * n..(c + 1) * n].copy_from_slice(&b);
    }
    Ok(inv)
}

fn identity(n: usize) -> Mat {
    let mut m = Mat::zeros(n, n);
    for k in 0..n {
        m.data[k * n + k] = 1.0;
    }
    m
}

/// The pseudo-inverse `X⁺ = R⁻¹Qᵀ` of an `m×n` matrix of full column rank (`m ≥ n`) from its
/// Householder QR factorisation; an error where a diagonal entry of `R` is below
/// `1e-12 · max |R_kk|` (rank deficient, where `X⁺` is not differentiable).
fn pinv(x: &Mat) -> Result<Mat, ValueError> {
    let (m, n) = (x.rows, x.cols);
    if m < n {
        return err(format!("pinv: a {} matrix has more columns than rows; pinv needs full column rank", x.dims()));
    }
    let mut a = x.data.clone();
    // Qᵀ applied to the identity, column-major m×m
    let mut qt = identity(m).data;
    let mut rdiag = vec![0.0; n];
    for k in 0..n {
        let col = &a[k * m + k..(k + 1) * m];
        let norm = col.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm == 0.0 {
            return err("pinv: the matrix does not have full column rank");
        }
        let alpha = if col[0] > 0.0 { -norm } else { norm };
        let mut v: Vec<f64> = col.to_vec();
        v[0] -= alpha;
        let vv: f64 = v.iter().map(|t| t * t).sum();
        rdiag[k] = alpha;
        let reflect = |data: &mut [f64], cols: std::ops::Range<usize>| {
            for j in cols {
                let c = &mut data[j * m + k..(j + 1) * m];
                let d: f64 = c.iter().zip(&v).map(|(a, b)| a * b).sum();
                let f = 2.0 * d / vv;
                c.iter_mut().zip(&v).for_each(|(a, b)| *a -= f * b);
            }
        };
        if vv > 0.0 {
            reflect(&mut a, k..n);
            reflect(&mut qt, 0..m);
        }
    }
    let big = rdiag.iter().fold(0.0f64, |s, v| s.max(v.abs()));
    if rdiag.iter().any(|v| v.abs() <= 1e-12 * big) {
        return err("pinv: the matrix does not have full column rank");
    }
    // solve R P = (Qᵀ)[0..n, :] by back substitution, column by column
    let mut p = Mat::zeros(n, m);
    for j in 0..m {
        for i in (0..n).rev() {
            let mut s = qt[j * m + i];
            for l in i + 1..n {
                s -= a[l * m + i] * p.data[j * n + l];
            }
            p.data[j * n + i] = s / a[i * m + i];
        }
    }
    Ok(p)
}

fn det_parts(m: &Mat) -> (f64, f64) {
    // (sign, log|det|)
    let n = m.rows;
    let mut a = m.data.clone();
    match lu(&mut a, n) {
        None => (0.0, f64::NEG_INFINITY),
        Some((_, mut sign)) => {
            let mut l = 0.0;
            for k in 0..n {
                let d = a[k * n + k];
                if d < 0.0 {
                    sign = -sign;
                }
                l += d.abs().ln();
            }
            (sign, l)
        }
    }
}

impl Graph {
    /// Sizes of the symbolic dimensions implied by `values`, after checking every given
    /// variable's value against its declared shape.
    pub fn bind(&self, values: &Values, needed: &[u32]) -> Result<Vec<Option<usize>>, ValueError> {
        let mut dims: Vec<Option<usize>> = vec![None; self.dims.len()];
        let mut from: Vec<String> = vec![String::new(); self.dims.len()];
        for (k, var) in self.vars.iter().enumerate() {
            let Some(m) = values.get(&var.name) else {
                if needed.contains(&(k as u32)) {
                    return err(format!("no value for variable `{}` ({})", var.name, self.shape_name(var.shape)));
                }
                continue;
            };
            let (r, c) = rc(var.shape);
            if var.shape != Shape::Scalar && matches!(var.shape, Shape::Vector(_)) && m.cols != 1 {
                return err(format!(
                    "`{}` is a {}, but its value is a {} matrix; give a vector as a flat array [..]",
                    var.name,
                    self.shape_name(var.shape),
                    m.dims()
                ));
            }
            for (d, actual, which) in [(r, m.rows, "rows"), (c, m.cols, "columns")] {
                match d {
                    Dim::Fixed(k) if k != actual => {
                        return err(format!(
                            "`{}` is a {}, but its value is {} ({} {which}, expected {k})",
                            var.name,
                            self.shape_name(var.shape),
                            m.dims(),
                            actual
                        ));
                    }
                    Dim::Sym(i) => {
                        let i = i as usize;
                        match dims[i] {
                            None => {
                                dims[i] = Some(actual);
                                from[i] = var.name.clone();
                            }
                            Some(v) if v != actual => {
                                return err(format!(
                                    "dimension `{}` is {v} from the value of `{}` but {actual} from the value of `{}` ({} is a {})",
                                    self.dims[i],
                                    from[i],
                                    var.name,
                                    var.name,
                                    self.shape_name(var.shape)
                                ));
                            }
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
            if !all_finite(&m.data) {
                return err(format!("the value of `{}` contains a non-finite number", var.name));
            }
        }
        // products of dimensions (from `kron`), in the order they were made
        for &(i, (a, b)) in &self.dim_products {
            let known = |d: Dim, dims: &[Option<usize>]| match d {
                Dim::Fixed(k) => Some(k),
                Dim::Sym(j) => dims.get(j as usize).copied().flatten(),
                Dim::Obs => None,
            };
            if let (Some(x), Some(y)) = (known(a, &dims), known(b, &dims)) {
                let p = x.saturating_mul(y);
                match dims[i as usize] {
                    Some(v) if v != p => {
                        return err(format!(
                            "dimension `{}` is {v} from the value of `{}`, but {} × {} = {p}",
                            self.dims[i as usize], from[i as usize], x, y
                        ));
                    }
                    _ => dims[i as usize] = Some(p),
                }
            }
        }
        Ok(dims)
    }

    /// [`Graph::bind`] of the variables among the nodes marked in `need`.
    fn bind_needed(&self, values: &Values, need: &[bool]) -> Result<Vec<Option<usize>>, ValueError> {
        let vars: Vec<u32> = (0..need.len())
            .filter(|&i| need[i])
            .filter_map(|i| match self.node(MId(i as u32)) {
                MNode::Var(k) => Some(k),
                _ => None,
            })
            .collect();
        self.bind(values, &vars)
    }

    /// The value given for variable `k`.
    fn var_value<'v>(&self, k: u32, values: &'v Values) -> Result<&'v Mat, ValueError> {
        let name = &self.vars[k as usize].name;
        values.get(name).ok_or_else(|| ValueError(format!("no value for variable `{name}`")))
    }

    fn size(&self, d: Dim, dims: &[Option<usize>]) -> Result<usize, ValueError> {
        match d {
            Dim::Fixed(k) => Ok(k),
            Dim::Sym(i) => dims.get(i as usize).copied().flatten().ok_or_else(|| {
                ValueError(format!("the size of dimension `{}` is unknown: give a value to a variable that has it", self.dim_name(d)))
            }),
            Dim::Obs => err("dimension n is unknown"),
        }
    }

    /// Evaluates `roots` with the given variable values.
    ///
    /// Elementwise operations (with broadcasting, and outer products `u·vᵀ`) are fused: a node
    /// used once by another elementwise node (or by a `sum`), and a cheap difference like
    /// `x − bᵀ` wherever it is used, is not materialised but computed block by block inside its
    /// consumer's loop (`Fused`); `sum`, `sum(·, 1)` and `sum(·, 2)` of such a group accumulate
    /// without a temporary. `Aᵀ·B` reads `A` directly (dot products), without forming `Aᵀ`.
    pub fn eval(&self, roots: &[MId], values: &Values) -> Result<Vec<Mat>, ValueError> {
        let top = roots.iter().map(|r| r.index() + 1).max().unwrap_or(0);
        // which nodes are needed; `Aᵀ·B` needs `A`, not `Aᵀ`
        let mut need = vec![false; top];
        let mut uses = vec![0u32; top];
        let mut is_root = vec![false; top];
        for r in roots {
            need[r.index()] = true;
            is_root[r.index()] = true;
        }
        for i in (0..top).rev() {
            if !need[i] {
                continue;
            }
            for c in self.operands(MId(i as u32)) {
                need[c.index()] = true;
                uses[c.index()] += 1;
            }
        }
        let dims = self.bind_needed(values, &need)?;
        // all consumers accept a fused operand? all of them elementwise? (a constant fill read
        // only by elementwise loops is a broadcast scalar there, not n×m stored copies of one
        // number)
        let mut all_fusing = vec![true; top];
        let mut elementwise_uses = vec![true; top];
        for (i, &needed) in need.iter().enumerate() {
            if !needed {
                continue;
            }
            let id = MId(i as u32);
            let elementwise = self.fusible(id);
            let accepts = elementwise || matches!(self.node(id), MNode::Sum(_) | MNode::SumRows(_) | MNode::SumCols(_));
            let gram = self.gram_operand(id, &dims);
            if !elementwise {
                for c in self.operands(id) {
                    all_fusing[c.index()] &= accepts || gram == Some(c);
                    elementwise_uses[c.index()] = false;
                }
            }
        }
        let inline: Vec<bool> = (0..top)
            .map(|i| {
                let id = MId(i as u32);
                need[i] && !is_root[i] && all_fusing[i] && ((self.fusible(id) && (uses[i] == 1 || self.cheap(id))) || (uses[i] == 1 && self.is_row_product(id, &dims)))
            })
            .collect();
        let mut val: Vec<Slot<'_>> = vec![None; top];
        for i in 0..top {
            if !need[i] || inline[i] {
                continue;
            }
            let id = MId(i as u32);
            if let MNode::Fill(v) = self.node(id)
                && elementwise_uses[i]
                && !is_root[i]
            {
                val[i] = Some(Cow::Owned(Mat::scalar(v.get())));
                continue;
            }
            if let MNode::Var(k) = self.node(id) {
                // read in place: a variable's value is not copied
                val[i] = Some(Cow::Borrowed(self.var_value(k, values)?));
                continue;
            }
            let group_root = match self.node(id) {
                MNode::Sum(a) | MNode::SumRows(a) | MNode::SumCols(a) if inline[a.index()] => Some(a),
                _ if self.fusible(id) => Some(id),
                _ => self.gram_operand(id, &dims).filter(|b| inline[b.index()]),
            };
            let v = match group_root {
                Some(e) => self.eval_fused(id, e, &inline, &val, &dims)?,
                None => self.eval_node(id, &val, values, &dims)?,
            };
            val[i] = Some(Cow::Owned(v));
        }
        roots
            .iter()
            .map(|r| val[r.index()].as_deref().cloned().ok_or_else(|| ValueError("internal: root not evaluated".into())))
            .collect()
    }

    /// Evaluates `roots` node by node, every intermediate stored and no fused loops: the plain
    /// reference the fused [`Self::eval`] is tested against.
    pub fn eval_unfused(&self, roots: &[MId], values: &Values) -> Result<Vec<Mat>, ValueError> {
        let need = self.reachable(roots);
        let dims = self.bind_needed(values, &need)?;
        let mut val: Vec<Slot<'_>> = vec![None; need.len()];
        for i in 0..need.len() {
            if need[i] {
                val[i] = Some(Cow::Owned(self.eval_node_plain(MId(i as u32), &val, values, &dims)?));
            }
        }
        roots
            .iter()
            .map(|r| val[r.index()].as_deref().cloned().ok_or_else(|| ValueError("internal: root not evaluated".into())))
            .collect()
    }

    /// [`Self::eval_node`] for any node, elementwise ones and outer products included.
    fn eval_node_plain(&self, id: MId, val: &[Slot<'_>], values: &Values, dims: &[Option<usize>]) -> Result<Mat, ValueError> {
        let get = |c: MId| val[c.index()].as_deref().ok_or_else(|| ValueError("internal: child not evaluated".into()));
        match self.node(id) {
            MNode::MatMul(t, b) if matches!(self.node(t), MNode::Transpose(_)) && !self.fusible(id) => {
                // plain product with the stored transpose
                matmul(get(t)?, get(b)?)
            }
            MNode::Add(a, b) => zip(get(a)?, get(b)?, |x, y| x + y),
            MNode::Sub(a, b) => zip(get(a)?, get(b)?, |x, y| x - y),
            MNode::Mul(a, b) => zip(get(a)?, get(b)?, |x, y| x * y),
            MNode::Div(a, b) => zip(get(a)?, get(b)?, |x, y| x / y),
            MNode::Pow(a, b) => zip(get(a)?, get(b)?, crate::func::pow),
            MNode::XLogY(a, b) => zip(get(a)?, get(b)?, crate::func::xlogy),
            MNode::Call2(f, a, b) => zip(get(a)?, get(b)?, |x, y| f.apply(x, y)),
            MNode::Neg(a) => Ok(map(get(a)?, |x| -x)),
            MNode::Call(f, a) => Ok(map(get(a)?, |x| f.apply(x))),
            MNode::MatMul(a, b) => matmul(get(a)?, get(b)?),
            _ => self.eval_node(id, val, values, dims),
        }
    }

    /// The values a node reads when evaluated: its children, except that `Aᵀ·B` reads `A` (unless
    /// it is an outer product, which the fused loop evaluates).
    fn operands(&self, id: MId) -> Vec<MId> {
        let node = self.node(id);
        if let MNode::MatMul(t, b) = node
            && let (MNode::Transpose(x), false) = (self.node(t), self.fusible(id)) {
                return vec![x, b];
            }
        node.children().collect()
    }

    /// The elementwise operand `E` of a product `Aᵀ·E` that a fused loop computes without
    /// storing `E` (as in `Xᵀ·diag(v)·X = Xᵀ·(v .* X)`, see [`Graph::eval_gram`]): when the
    /// result is small (at most [`GRAM_MAX`] entries).
    fn gram_operand(&self, id: MId, dims: &[Option<usize>]) -> Option<MId> {
        let MNode::MatMul(t, b) = self.node(id) else { return None };
        // (`Eᵀ·E` reads E as the stored factor too)
        if !matches!(self.node(t), MNode::Transpose(x) if x != b) || self.fusible(id) || !self.fusible(b) {
            return None;
        }
        let (r, c) = rc(self.shape(id));
        let entries = self.size(r, dims).ok()?.saturating_mul(self.size(c, dims).ok()?);
        (entries <= GRAM_MAX).then_some(b)
    }

    /// `Aᵀ·E` for the fused program `prog` of `E` (`n × c`, root slot `root`): in pieces of
    /// [`PIECE`] rows on all cores, each a loop over tiles of [`GRAM_TILE`] rows that computes
    /// the tile of `E` block by block and adds `A_tileᵀ·E_tile` (faer's product) to the piece's
    /// sum; the pieces' sums are added in order (the same numbers on any number of cores).
    #[allow(clippy::too_many_arguments)]
    fn eval_gram(&self, a: &Mat, prog: &Fused, root: usize, leaves: &[&Mat], n: usize, c: usize) -> Result<Mat, ValueError> {
        if a.rows != n {
            return err(format!("matrix product of {}ᵀ and {n}×{c} values", a.dims()));
        }
        let m = a.cols;
        let pieces: Vec<(usize, usize)> = (0..n).step_by(PIECE).map(|s| (s, PIECE.min(n - s))).collect();
        let parts = parallel_map(&pieces, |&(s, len)| -> Result<Mat, ValueError> {
            let mut run = BlockRunner::new(prog, root, leaves, false);
            let mut part = Mat::zeros(m, c);
            let mut tile = vec![0.0; GRAM_TILE.min(len) * c];
            let mut t0 = s;
            while t0 < s + len {
                let rows = GRAM_TILE.min(s + len - t0);
                run.rows(c, t0, rows, |j, i0, res| res.store(&mut tile[j * rows + (i0 - t0)..j * rows + (i0 - t0) + res.len()]))?;
                let at = view(a).subrows(t0, rows);
                let et = faer::MatRef::from_column_major_slice(&tile[..rows * c], rows, c);
                let dst = faer::MatMut::from_column_major_slice_mut(&mut part.data, m, c);
                faer::linalg::matmul::matmul(dst, faer::Accum::Add, at.transpose(), et, 1.0, faer::Par::Seq);
                clear_upper_vector_state();
                t0 += rows;
            }
            Ok(part)
        });
        let mut out = Mat::zeros(m, c);
        for p in parts {
            for (o, v) in out.data.iter_mut().zip(&p?.data) {
                *o += v;
            }
        }
        Ok(out)
    }

    /// An elementwise node the fused loop evaluates (an outer product `u·vᵀ` counts).
    fn fusible(&self, id: MId) -> bool {
        match self.node(id) {
            MNode::Add(..) | MNode::Sub(..) | MNode::Mul(..) | MNode::Div(..) | MNode::Pow(..) | MNode::XLogY(..) | MNode::Call2(..) | MNode::Neg(_) | MNode::Call(..) => true,
            MNode::MatMul(a, _) => rc(self.shape(a)).1 == super::graph::ONE,
            _ => false,
        }
    }

    /// A product `A·P` of a many-rowed `A` (not a transpose) and a small `P` (at most
    /// [`ROW_PRODUCT_MAX`] entries and [`ROW_PRODUCT_INNER`] rows): the fused loop that consumes it
    /// computes it block by block (row `i` of column `j` is `Σ_k A_ik P_kj`) instead of storing
    /// it, as in `sum((X*P).*X, 2)`.
    fn is_row_product(&self, id: MId, dims: &[Option<usize>]) -> bool {
        let MNode::MatMul(a, p) = self.node(id) else { return false };
        if self.fusible(id) || matches!(self.node(a), MNode::Transpose(_)) {
            return false;
        }
        // (a one-row product broadcasts down the loop's rows: stored, as before)
        let rows = self.size(rc(self.shape(a)).0, dims);
        let (m, c) = rc(self.shape(p));
        match (rows, self.size(m, dims), self.size(c, dims)) {
            (Ok(rows), Ok(m), Ok(c)) => rows >= 2 && m <= ROW_PRODUCT_INNER && m.saturating_mul(c) <= ROW_PRODUCT_MAX,
            _ => false,
        }
    }

    /// A sum, difference or product of two non-elementwise values (`x − bᵀ`): recomputed inside
    /// every loop that uses it rather than stored.
    fn cheap(&self, id: MId) -> bool {
        match self.node(id) {
            MNode::Add(a, b) | MNode::Sub(a, b) | MNode::Mul(a, b) => !self.fusible(a) && !self.fusible(b),
            MNode::Neg(a) => !self.fusible(a),
            _ => false,
        }
    }

    /// Evaluates the fused group rooted at the elementwise node `e` (every inlined node below it),
    /// storing it, or, when `id` is a `sum` of it, accumulating the sum.
    fn eval_fused(&self, id: MId, e: MId, inline: &[bool], val: &[Slot<'_>], dims: &[Option<usize>]) -> Result<Mat, ValueError> {
        // the program: instructions in dependency order, leaves are stored values
        let mut prog = Fused { instrs: Vec::new(), leaves: Vec::new(), row_product_only: Vec::new() };
        let mut slot_of: HashMap<MId, Arg> = HashMap::new();
        let mut stack: Vec<(MId, bool)> = vec![(e, false)];
        while let Some((n, expanded)) = stack.pop() {
            if slot_of.contains_key(&n) {
                continue;
            }
            let is_op = n == e || inline[n.index()];
            if !is_op {
                let k = prog.leaves.len();
                prog.leaves.push(n);
                slot_of.insert(n, Arg::Leaf(k));
                continue;
            }
            let node = self.node(n);
            if !expanded {
                stack.push((n, true));
                for c in node.children() {
                    if !slot_of.contains_key(&c) {
                        stack.push((c, false));
                    }
                }
                continue;
            }
            let arg = |c: MId| slot_of[&c];
            let (op, a, b) = match node {
                MNode::MatMul(a, b) if self.is_row_product(n, dims) => match (arg(a), arg(b)) {
                    (Arg::Leaf(a), Arg::Leaf(b)) => (Op::RowProduct, Arg::Leaf(a), Some(Arg::Leaf(b))),
                    _ => return err("internal: a fused product of values not stored"),
                },
                MNode::Add(a, b) => (Op::Add, arg(a), Some(arg(b))),
                MNode::Sub(a, b) => (Op::Sub, arg(a), Some(arg(b))),
                MNode::Mul(a, b) | MNode::MatMul(a, b) => (Op::Mul, arg(a), Some(arg(b))),
                MNode::Div(a, b) => (Op::Div, arg(a), Some(arg(b))),
                MNode::Pow(a, b) => (Op::Pow, arg(a), Some(arg(b))),
                MNode::XLogY(a, b) => (Op::XLogY, arg(a), Some(arg(b))),
                MNode::Call2(f, a, b) => (Op::Call2(f), arg(a), Some(arg(b))),
                MNode::Neg(a) => (Op::Neg, arg(a), None),
                MNode::Call(f, a) => (Op::Call(f), arg(a), None),
                _ => return err("internal: a non-elementwise node in a fused loop"),
            };
            let k = prog.instrs.len();
            prog.instrs.push(Instr { op, a, b });
            slot_of.insert(n, Arg::Slot(k));
        }
        let (r0, c0) = rc(self.shape(e));
        let (r, c) = (self.size(r0, dims)?, self.size(c0, dims)?);
        let leaves: Vec<&Mat> = prog
            .leaves
            .iter()
            .map(|l| val[l.index()].as_deref().ok_or_else(|| ValueError("internal: operand not evaluated".into())))
            .collect::<Result<_, _>>()?;
        prog.row_product_only = (0..leaves.len())
            .map(|l| {
                let reads = |a: Arg| matches!(a, Arg::Leaf(k) if k == l);
                let by_product = prog.instrs.iter().any(|i| matches!(i.op, Op::RowProduct) && (reads(i.a) || i.b.is_some_and(reads)));
                let other = prog.instrs.iter().any(|i| !matches!(i.op, Op::RowProduct) && (reads(i.a) || i.b.is_some_and(reads)));
                by_product && !other
            })
            .collect();
        for (l, m) in leaves.iter().enumerate() {
            if !prog.row_product_only[l] && (!(m.rows == r || m.rows == 1) || !(m.cols == c || m.cols == 1)) {
                return err(format!("elementwise operation on {} and {r}×{c} values", m.dims()));
            }
        }
        for ins in prog.instrs.iter().filter(|i| matches!(i.op, Op::RowProduct)) {
            if let (Arg::Leaf(a), Some(Arg::Leaf(p))) = (ins.a, ins.b)
                && (leaves[a].rows != r || leaves[a].cols != leaves[p].rows || !(leaves[p].cols == c || leaves[p].cols == 1))
            {
                return err(format!("matrix product of {} and {} values in a {r}×{c} loop", leaves[a].dims(), leaves[p].dims()));
            }
        }
        let products = prog.instrs.iter().any(|i| matches!(i.op, Op::RowProduct));
        let root = match slot_of[&e] {
            Arg::Slot(k) => k,
            Arg::Leaf(_) => return err("internal: fused root is a leaf"),
        };
        if let MNode::MatMul(t, _) = self.node(id)
            && id != e
        {
            let MNode::Transpose(x) = self.node(t) else { return err("internal: a fused product without a transpose") };
            let a = val[x.index()].as_deref().ok_or_else(|| ValueError("internal: operand not evaluated".into()))?;
            return self.eval_gram(a, &prog, root, &leaves, r, c);
        }
        let red = match self.node(id) {
            MNode::Sum(_) if id != e => Red::All,
            MNode::SumRows(_) if id != e => Red::Rows,
            MNode::SumCols(_) if id != e => Red::Cols,
            _ => Red::None,
        };
        // flat when nothing broadcasts except scalars (and no per-column reduction)
        let flat = !products && !matches!(red, Red::Rows | Red::Cols) && leaves.iter().all(|m| (m.rows == r && m.cols == c) || (m.rows == 1 && m.cols == 1));
        let (len, cols) = if flat { (r * c, 1) } else { (r, c) };
        if len >= 2 * PIECE {
            return fused_parallel(&prog, root, &leaves, flat, red, (r, c), len, cols);
        }
        // (one stored column is written in order, block after block: no zero fill first)
        let mut out = match red {
            Red::None if cols == 1 => Mat { rows: r, cols: c, data: Vec::with_capacity(r * c) },
            Red::None => Mat::zeros(r, c),
            Red::All => Mat::zeros(1, 1),
            Red::Rows => Mat::zeros(1, c),
            Red::Cols => Mat::zeros(r, 1),
        };
        let mut run = BlockRunner::new(&prog, root, &leaves, flat);
        run.rows(cols, 0, len, |j, i0, res| match red {
            Red::None if cols == 1 => match res.x {
                X::S(v) => out.data.extend(std::iter::repeat_n(v, res.len())),
                X::V(s) => out.data.extend_from_slice(s),
            },
            Red::None => res.store(&mut out.data[j * len + i0..j * len + i0 + res.len()]),
            Red::All | Red::Rows => out.data[if red == Red::All { 0 } else { j }] += res.sum(),
            Red::Cols => res.add_to(&mut out.data[i0..i0 + res.len()]),
        })?;
        Ok(out)
    }

    fn eval_node(&self, id: MId, val: &[Slot<'_>], values: &Values, dims: &[Option<usize>]) -> Result<Mat, ValueError> {
        let get = |c: MId| val[c.index()].as_deref().ok_or_else(|| ValueError("internal: child not evaluated".into()));
        let shape_of = |s: Shape| -> Result<(usize, usize), ValueError> {
            let (r, c) = rc(s);
            Ok((self.size(r, dims)?, self.size(c, dims)?))
        };
        Ok(match self.node(id) {
            MNode::Const(v) => Mat::scalar(v.get()),
            MNode::Fill(v) => {
                let (r, c) = shape_of(self.shape(id))?;
                Mat { rows: r, cols: c, data: vec![v.get(); r * c] }
            }
            MNode::Eye(d) => {
                let n = self.size(d, dims)?;
                let mut m = Mat::zeros(n, n);
                for k in 0..n {
                    m.data[k * n + k] = 1.0;
                }
                m
            }
            MNode::Var(k) => self.var_value(k, values)?.clone(),
            MNode::Add(a, b) => zip(get(a)?, get(b)?, |x, y| x + y)?,
            MNode::Sub(a, b) => zip(get(a)?, get(b)?, |x, y| x - y)?,
            MNode::Mul(a, b) => zip(get(a)?, get(b)?, |x, y| x * y)?,
            MNode::Div(a, b) => zip(get(a)?, get(b)?, |x, y| x / y)?,
            MNode::Pow(a, b) => zip(get(a)?, get(b)?, crate::func::pow)?,
            MNode::XLogY(a, b) => zip(get(a)?, get(b)?, crate::func::xlogy)?,
            MNode::Call2(f, a, b) => zip(get(a)?, get(b)?, |x, y| f.apply(x, y))?,
            MNode::Neg(a) => map(get(a)?, |x| -x),
            MNode::Call(f, a) => map(get(a)?, |x| f.apply(x)),
            MNode::MatMul(t, b) if matches!(self.node(t), MNode::Transpose(_)) && !self.fusible(id) => {
                let MNode::Transpose(x) = self.node(t) else { unreachable!() };
                // Xᵀ·B without forming Xᵀ
                matmul_transposed(get(x)?, get(b)?)?
            }
            MNode::MatMul(a, b) => matmul(get(a)?, get(b)?)?,
            MNode::Transpose(a) => get(a)?.transpose(),
            MNode::Sum(a) => Mat::scalar(get(a)?.data.iter().sum()),
            MNode::SumRows(a) => {
                let a = get(a)?;
                Mat { rows: 1, cols: a.cols, data: (0..a.cols).map(|j| a.data[j * a.rows..(j + 1) * a.rows].iter().sum()).collect() }
            }
            MNode::SumCols(a) => {
                let a = get(a)?;
                let mut s = vec![0.0; a.rows];
                for j in 0..a.cols {
                    for (si, v) in s.iter_mut().zip(&a.data[j * a.rows..(j + 1) * a.rows]) {
                        *si += v;
                    }
                }
                Mat::vector(s)
            }
            MNode::Norm2(a) | MNode::NormF(a) => Mat::scalar(get(a)?.data.iter().map(|v| v * v).sum::<f64>().sqrt()),
            MNode::Trace(a) => {
                let a = get(a)?;
                Mat::scalar((0..a.rows.min(a.cols)).map(|k| a.get(k, k)).sum())
            }
            MNode::DiagM(a) => {
                let a = get(a)?;
                let n = a.data.len();
                let mut m = Mat::zeros(n, n);
                for k in 0..n {
                    m.data[k * n + k] = a.data[k];
                }
                m
            }
            MNode::DiagV(a) => {
                let a = get(a)?;
                Mat::vector((0..a.rows.min(a.cols)).map(|k| a.get(k, k)).collect())
            }
            MNode::Inv(a) => inverse(get(a)?)?,
            MNode::Det(a) => {
                let (s, l) = det_parts(get(a)?);
                Mat::scalar(if s == 0.0 { 0.0 } else { s * l.exp() })
            }
            MNode::LogDet(a) => Mat::scalar(det_parts(get(a)?).1),
            MNode::LogSumExp(a) => Mat::scalar(logsumexp(&get(a)?.data)),
            MNode::MatPow(a, k) => {
                // repeated squaring
                let x = get(a)?;
                if x.rows != x.cols {
                    return err(format!("matrix power of a {} value", x.dims()));
                }
                let mut result: Option<Mat> = None;
                let mut base = x.clone();
                let mut e = k.unsigned_abs();
                while e > 0 {
                    if e & 1 == 1 {
                        result = Some(match result {
                            Some(r) => matmul(&r, &base)?,
                            None => base.clone(),
                        });
                    }
                    e >>= 1;
                    if e > 0 {
                        base = matmul(&base, &base)?;
                    }
                }
                result.unwrap_or_else(|| identity(x.rows))
            }
            MNode::Pinv(a) => pinv(get(a)?)?,
            MNode::Kron(a, b) => {
                let (a, b) = (get(a)?, get(b)?);
                let (r, c) = (a.rows * b.rows, a.cols * b.cols);
                let mut m = Mat::zeros(r, c);
                for j in 0..a.cols {
                    for i in 0..a.rows {
                        let aij = a.get(i, j);
                        for l in 0..b.cols {
                            for k in 0..b.rows {
                                m.data[(j * b.cols + l) * r + i * b.rows + k] = aij * b.get(k, l);
                            }
                        }
                    }
                }
                m
            }
            MNode::KronSumA(gg, b) | MNode::KronSumB(b, gg) => {
                // Σ over the blocks of G (ra·rb × ca·cb) weighted by the other factor
                let (gm, o) = (get(gg)?, get(b)?);
                let is_a = matches!(self.node(id), MNode::KronSumA(..));
                let (r, c) = shape_of(self.shape(id))?;
                let (ra, ca, rb, cb) = if is_a { (r, c, o.rows, o.cols) } else { (o.rows, o.cols, r, c) };
                if gm.rows != ra * rb || gm.cols != ca * cb {
                    return err(format!("kronsum of a {} value with {} and {r}×{c}", gm.dims(), o.dims()));
                }
                let mut out = Mat::zeros(r, c);
                for j in 0..ca {
                    for i in 0..ra {
                        for l in 0..cb {
                            for k in 0..rb {
                                let gv = gm.data[(j * cb + l) * gm.rows + i * rb + k];
                                if is_a {
                                    out.data[j * r + i] += gv * o.get(k, l);
                                } else {
                                    out.data[l * r + k] += gv * o.get(i, j);
                                }
                            }
                        }
                    }
                }
                out
            }
            MNode::LogSumExpDim(a, d) => {
                let a = get(a)?;
                if d == 1 {
                    Mat { rows: 1, cols: a.cols, data: (0..a.cols).map(|j| logsumexp(&a.data[j * a.rows..(j + 1) * a.rows])).collect() }
                } else {
                    let mut row = Vec::with_capacity(a.cols);
                    let data = (0..a.rows)
                        .map(|i| {
                            row.clear();
                            row.extend((0..a.cols).map(|j| a.data[j * a.rows + i]));
                            logsumexp(&row)
                        })
                        .collect();
                    Mat { rows: a.rows, cols: 1, data }
                }
            }
            MNode::SoftmaxDim(a, d) => {
                let a = get(a)?;
                let mut out = a.clone();
                // each column (d = 1) or row (d = 2): exp(x − m)/Σ exp(x − m)
                let (lines, len) = if d == 1 { (a.cols, a.rows) } else { (a.rows, a.cols) };
                let at = |line: usize, k: usize| if d == 1 { line * a.rows + k } else { k * a.rows + line };
                for line in 0..lines {
                    let m = (0..len).map(|k| a.data[at(line, k)]).fold(f64::NEG_INFINITY, f64::max);
                    let mut total = 0.0;
                    for k in 0..len {
                        let e = crate::fast_exp::exp(a.data[at(line, k)] - m);
                        out.data[at(line, k)] = e;
                        total += e;
                    }
                    for k in 0..len {
                        out.data[at(line, k)] /= total;
                    }
                }
                out
            }
            MNode::Softmax(a) => {
                let a = get(a)?;
                let m = a.data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e = map(a, |x| crate::fast_exp::exp(x - m));
                let total: f64 = e.data.iter().sum();
                map(&e, |x| x / total)
            }
        })
    }
}

/// `log Σ exp(xᵢ)` without overflow: `m + log Σ exp(xᵢ − m)` with `m = max xᵢ` (`−∞` for no
/// entries or all `−∞`, NaN if any is NaN).
pub fn logsumexp(x: &[f64]) -> f64 {
    if x.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + x.iter().map(|v| crate::fast_exp::exp(v - m)).sum::<f64>().ln()
}

fn map(a: &Mat, f: impl Fn(f64) -> f64) -> Mat {
    Mat { rows: a.rows, cols: a.cols, data: a.data.iter().map(|&x| f(x)).collect() }
}

fn zip(a: &Mat, b: &Mat, f: impl Fn(f64, f64) -> f64) -> Result<Mat, ValueError> {
    let bd = |x: usize, y: usize| -> Option<usize> {
        if x == y {
            Some(x)
        } else if x == 1 {
            Some(y)
        } else if y == 1 {
            Some(x)
        } else {
            None
        }
    };
    let (Some(r), Some(c)) = (bd(a.rows, b.rows), bd(a.cols, b.cols)) else {
        return err(format!("elementwise operation on {} and {} values", a.dims(), b.dims()));
    };
    if a.rows == b.rows && a.cols == b.cols {
        return Ok(Mat { rows: r, cols: c, data: a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect() });
    }
    let mut out = Mat::zeros(r, c);
    for j in 0..c {
        let (ja, jb) = (if a.cols == 1 { 0 } else { j }, if b.cols == 1 { 0 } else { j });
        for i in 0..r {
            let (ia, ib) = (if a.rows == 1 { 0 } else { i }, if b.rows == 1 { 0 } else { i });
            out.data[j * r + i] = f(a.data[ja * a.rows + ia], b.data[jb * b.rows + ib]);
        }
    }
    Ok(out)
}

/// Rows per block of a fused elementwise loop.
const BLOCK: usize = 256;
/// The most entries of the small factor `P` of a product `A·P` computed inside a fused loop.
const ROW_PRODUCT_MAX: usize = 1024;
/// The most rows of that `P` (the inner dimension): beyond it faer's product, stored, is
/// faster (measured: `X·w` with 50 columns took 15 % longer inside the loop).
const ROW_PRODUCT_INNER: usize = 16;
/// The most entries of an `Aᵀ·E` computed by a fused loop (see [`Graph::gram_operand`]).
const GRAM_MAX: usize = 4096;
/// Rows of `E` a fused `Aᵀ·E` holds at a time (a multiple of [`BLOCK`] dividing [`PIECE`]).
const GRAM_TILE: usize = 4096;

#[derive(Clone, Copy, Debug)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    XLogY,
    Neg,
    Call(Func),
    Call2(crate::Func2),
    /// `a·b` of a stored `n × m` matrix and a small `m × c` one, row block by row block
    /// ([`Graph::is_row_product`]).
    RowProduct,
}

#[derive(Clone, Copy, Debug)]
enum Arg {
    Leaf(usize),
    Slot(usize),
}

#[derive(Clone, Copy, Debug)]
struct Instr {
    op: Op,
    a: Arg,
    b: Option<Arg>,
}

/// A fused elementwise loop: instructions over blocks of rows, reading stored `leaves`.
struct Fused {
    instrs: Vec<Instr>,
    leaves: Vec<MId>,
    /// Leaves read only by [`Op::RowProduct`] (not shaped like the loop's values).
    row_product_only: Vec<bool>,
}

/// Runs a [`Fused`] program block by block, with its scratch space.
struct BlockRunner<'p> {
    prog: &'p Fused,
    root: usize,
    leaves: &'p [&'p Mat],
    flat: bool,
    scratch: Vec<f64>,
    consts: Vec<Option<f64>>,
    /// The leaves' operands on the current block.
    lx: Vec<X<'p>>,
    /// Instructions that read no column of a matrix (`1./y − 1./z` in `(1./y − 1./z).*X`):
    /// computed once per block of rows, not once per column.
    invariant: Vec<bool>,
    /// The rows (`i0`, `n`) whose values the invariant instructions hold.
    cached: Option<(usize, usize)>,
}

impl<'p> BlockRunner<'p> {
    fn new(prog: &'p Fused, root: usize, leaves: &'p [&'p Mat], flat: bool) -> Self {
        let ni = prog.instrs.len();
        let mut invariant = vec![false; ni];
        for (k, ins) in prog.instrs.iter().enumerate() {
            let same = |a: Arg| match a {
                Arg::Leaf(l) => leaves[l].cols == 1,
                Arg::Slot(s) => invariant[s],
            };
            invariant[k] = match (ins.op, ins.b) {
                (Op::RowProduct, Some(Arg::Leaf(p))) => leaves[p].cols == 1,
                _ => same(ins.a) && ins.b.is_none_or(same),
            };
        }
        BlockRunner {
            prog,
            root,
            leaves,
            flat,
            scratch: vec![0.0; ni * BLOCK],
            consts: vec![None; ni],
            lx: Vec::with_capacity(leaves.len()),
            invariant,
            cached: None,
        }
    }

    /// Runs the program on rows `s..s + n` of every one of `cols` columns, block after block,
    /// handing each block's value to `emit(column, first row, value)`.
    /// (Block by block, every column of a block in turn, so that what does not depend on the
    /// column is computed once per block.)
    fn rows(&mut self, cols: usize, s: usize, n: usize, mut emit: impl FnMut(usize, usize, Block<'_>)) -> Result<(), ValueError> {
        let mut i0 = s;
        while i0 < s + n {
            let nb = BLOCK.min(s + n - i0);
            for j in 0..cols {
                let res = self.block(j, i0, nb)?;
                emit(j, i0, res.with_len(nb));
            }
            i0 += nb;
        }
        Ok(())
    }

    /// The program's root on rows `i0..i0 + n` of column `j` (or entries `i0..i0 + n` when
    /// flat): a constant, or a slice of the scratch space.
    fn block(&mut self, j: usize, i0: usize, n: usize) -> Result<X<'_>, ValueError> {
        let flat = self.flat;
        let leaves: &'p [&'p Mat] = self.leaves;
        self.lx.clear();
        let row_product_only = &self.prog.row_product_only;
        self.lx.extend(leaves.iter().enumerate().map(|(l, m)| {
            if row_product_only[l] {
                X::S(f64::NAN)
            } else if m.rows == 1 && m.cols == 1 {
                X::S(m.data[0])
            } else if flat {
                X::V(&m.data[i0..i0 + n])
            } else if m.rows == 1 {
                X::S(m.data[if m.cols == 1 { 0 } else { j }])
            } else {
                let jj = if m.cols == 1 { 0 } else { j };
                X::V(&m.data[jj * m.rows + i0..jj * m.rows + i0 + n])
            }
        }));
        let reuse = self.cached == Some((i0, n));
        let (scratch, consts, lx) = (&mut self.scratch, &mut self.consts, &self.lx);
        for (k, ins) in self.prog.instrs.iter().enumerate() {
            if reuse && self.invariant[k] {
                continue;
            }
            let (prev, cur) = scratch.split_at_mut(k * BLOCK);
            let get = |a: Arg| -> X {
                match a {
                    Arg::Leaf(l) => lx[l],
                    Arg::Slot(s) => match consts[s] {
                        Some(v) => X::S(v),
                        None => X::V(&prev[s * BLOCK..s * BLOCK + n]),
                    },
                }
            };
            let o = &mut cur[..n];
            if let (Op::RowProduct, Arg::Leaf(la), Some(Arg::Leaf(lp))) = (ins.op, ins.a, ins.b) {
                let (am, pm) = (leaves[la], leaves[lp]);
                let pj = if pm.cols == 1 { 0 } else { j };
                row_product(o, am, &pm.data[pj * pm.rows..(pj + 1) * pm.rows], i0);
                consts[k] = None;
                continue;
            }
            let a = get(ins.a);
            consts[k] = match (ins.op, ins.b.map(get)) {
                (Op::Add, Some(b)) => bin(|x, y| x + y, a, b, o),
                (Op::Sub, Some(b)) => bin(|x, y| x - y, a, b, o),
                (Op::Mul, Some(b)) => bin(|x, y| x * y, a, b, o),
                (Op::Div, Some(b)) => bin(|x, y| x / y, a, b, o),
                (Op::Pow, Some(X::S(y))) => {
                    let k = PowKind::of(y);
                    un(|x| k.apply(x, y), a, o)
                }
                (Op::Pow, Some(b)) => bin(crate::func::pow, a, b, o),
                (Op::XLogY, Some(b)) => bin(crate::func::xlogy, a, b, o),
                (Op::Call2(f), Some(b)) => bin(|x, y| f.apply(x, y), a, b, o),
                (Op::Neg, _) => un(|x| -x, a, o),
                (Op::Call(f), _) => call(f, a, o),
                _ => return err("internal: malformed fused instruction"),
            };
        }
        self.cached = Some((i0, n));
        let root = self.root;
        Ok(match self.consts[root] {
            Some(v) => X::S(v),
            None => X::V(&self.scratch[root * BLOCK..root * BLOCK + n]),
        })
    }
}

/// Rows `s..s + n` of a long loop (a piece).
type Cut = (usize, usize);
/// A piece's rows of each column it writes.
type PieceOut<'a> = std::sync::Mutex<Vec<&'a mut [f64]>>;

/// [`Graph::eval_fused`]'s loop for a long result (`len` rows, or entries when `flat`, of
/// `cols` columns): in pieces of [`PIECE`] rows on all cores, each piece's blocks in order.
/// Stored values and row sums are each written by one piece, so they have the same bits as on
/// one thread; a sum over rows adds the pieces' partial sums in order (the cut depends on `len`
/// only, so the numbers do not depend on how many cores run it).
#[allow(clippy::too_many_arguments)]
fn fused_parallel(prog: &Fused, root: usize, leaves: &[&Mat], flat: bool, red: Red, (r, c): (usize, usize), len: usize, cols: usize) -> Result<Mat, ValueError> {
    let cuts: Vec<(usize, usize)> = (0..len).step_by(PIECE).map(|s| (s, PIECE.min(len - s))).collect();
    match red {
        Red::All | Red::Rows => {
            let width = if red == Red::All { 1 } else { c };
            let parts = parallel_map(&cuts, |&(s, n)| -> Result<Vec<f64>, ValueError> {
                let mut part = vec![0.0; width];
                BlockRunner::new(prog, root, leaves, flat).rows(cols, s, n, |j, _, res| part[if red == Red::All { 0 } else { j }] += res.sum())?;
                Ok(part)
            });
            let mut out = if red == Red::All { Mat::zeros(1, 1) } else { Mat::zeros(1, c) };
            for p in parts {
                for (o, v) in out.data.iter_mut().zip(p?) {
                    *o += v;
                }
            }
            Ok(out)
        }
        Red::None | Red::Cols => {
            let mut out = if red == Red::None { Mat::zeros(r, c) } else { Mat::zeros(r, 1) };
            // each piece's rows of every column it writes (all of them, or the one of a row sum)
            let stored = if red == Red::None { cols } else { 1 };
            let mut slices: Vec<Vec<&mut [f64]>> = cuts.iter().map(|_| Vec::with_capacity(stored)).collect();
            for column in out.data.chunks_mut(len).take(stored) {
                for (dst, piece) in slices.iter_mut().zip(column.chunks_mut(PIECE)) {
                    dst.push(piece);
                }
            }
            let work: Vec<(Cut, PieceOut<'_>)> = cuts.iter().copied().zip(slices.into_iter().map(std::sync::Mutex::new)).collect();
            let done = parallel_map(&work, |((s, n), dst)| -> Result<(), ValueError> {
                let mut dst = dst.lock().unwrap_or_else(|e| e.into_inner());
                BlockRunner::new(prog, root, leaves, flat).rows(cols, *s, *n, |j, i0, res| {
                    let col = if red == Red::None { j } else { 0 };
                    let d = &mut dst[col][i0 - s..i0 - s + res.len()];
                    if red == Red::None {
                        res.store(d)
                    } else {
                        res.add_to(d)
                    }
                })
            });
            done.into_iter().collect::<Result<(), _>>()?;
            Ok(out)
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Red {
    None,
    All,
    Rows,
    Cols,
}

/// An operand of a block: a value constant over the block, or a slice of it.
#[derive(Clone, Copy)]
enum X<'a> {
    S(f64),
    V(&'a [f64]),
}

/// A block's value with its length (a constant stands for `n` equal entries).
#[derive(Clone, Copy)]
struct Block<'a> {
    x: X<'a>,
    n: usize,
}

impl<'a> X<'a> {
    fn with_len(self, n: usize) -> Block<'a> {
        Block { x: self, n }
    }
}

impl Block<'_> {
    fn len(&self) -> usize {
        self.n
    }
    /// The sum of the block's entries.
    fn sum(&self) -> f64 {
        match self.x {
            X::S(v) => v * self.n as f64,
            X::V(s) => sum4(s),
        }
    }
    /// `dst += block`.
    fn add_to(&self, dst: &mut [f64]) {
        match self.x {
            X::S(v) => dst.iter_mut().for_each(|d| *d += v),
            X::V(s) => dst.iter_mut().zip(s).for_each(|(d, v)| *d += v),
        }
    }
    /// `dst = block`.
    fn store(&self, dst: &mut [f64]) {
        match self.x {
            X::S(v) => dst.fill(v),
            X::V(s) => dst.copy_from_slice(s),
        }
    }
}

#[inline(always)]
fn bin(f: impl Fn(f64, f64) -> f64, a: X, b: X, o: &mut [f64]) -> Option<f64> {
    match (a, b) {
        (X::S(x), X::S(y)) => return Some(f(x, y)),
        (X::V(x), X::S(y)) => o.iter_mut().zip(x).for_each(|(o, &x)| *o = f(x, y)),
        (X::S(x), X::V(y)) => o.iter_mut().zip(y).for_each(|(o, &y)| *o = f(x, y)),
        (X::V(x), X::V(y)) => o.iter_mut().zip(x).zip(y).for_each(|((o, &x), &y)| *o = f(x, y)),
    }
    None
}

#[inline(always)]
fn un(f: impl Fn(f64) -> f64, a: X, o: &mut [f64]) -> Option<f64> {
    match a {
        X::S(x) => Some(f(x)),
        X::V(x) => {
            o.iter_mut().zip(x).for_each(|(o, &x)| *o = f(x));
            None
        }
    }
}

fn call(f: Func, a: X, o: &mut [f64]) -> Option<f64> {
    match (f, a) {
        (Func::Exp, X::V(x)) => {
            crate::fast_exp::exp_slice(o, x);
            None
        }
        (Func::Log, _) => un(f64::ln, a, o),
        (Func::Sqrt, _) => un(f64::sqrt, a, o),
        _ => un(|x| f.apply(x), a, o),
    }
}

/// `o[i] = Σ_k a[i0 + i, k]·p[k]`: rows `i0..i0 + o.len()` of `a·p` for one column `p`,
/// column after column of `a` (multiplications and additions in this order on every CPU; AVX2
/// where there is one, with the same bits).
fn row_product(o: &mut [f64], a: &Mat, p: &[f64], i0: usize) {
    #[inline(always)]
    fn kernel(o: &mut [f64], a: &Mat, p: &[f64], i0: usize) {
        let n = o.len();
        for (k, &pk) in p.iter().enumerate() {
            let col = &a.data[k * a.rows + i0..k * a.rows + i0 + n];
            if k == 0 {
                o.iter_mut().zip(col).for_each(|(o, &x)| *o = x * pk);
            } else {
                o.iter_mut().zip(col).for_each(|(o, &x)| *o += x * pk);
            }
        }
        if p.is_empty() {
            o.fill(0.0);
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        fn kernel_avx2(o: &mut [f64], a: &Mat, p: &[f64], i0: usize) {
            kernel(o, a, p, i0)
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { kernel_avx2(o, a, p, i0) };
        }
    }
    kernel(o, a, p, i0)
}

/// Sum with four accumulators (vectorisable).
fn sum4(s: &[f64]) -> f64 {
    let mut acc = [0.0; 4];
    let chunks = s.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..4 {
            acc[k] += c[k];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + rest.iter().sum::<f64>()
}

/// Dot product with four accumulators (vectorisable).
/// A node's value while evaluating: computed, or a variable's value read in place.
type Slot<'v> = Option<Cow<'v, Mat>>;

/// Whether every entry is finite, in one vectorised pass: `v·0` is 0 for a finite `v` and
/// NaN for ±∞ or NaN, and a NaN survives the sums.
fn all_finite(data: &[f64]) -> bool {
    const PART: usize = 1 << 20;
    if data.len() > 2 * PART {
        let parts: Vec<&[f64]> = data.chunks(PART).collect();
        return parallel_map(&parts, |p| all_finite(p)).into_iter().all(|ok| ok);
    }
    let mut acc = [0.0f64; 8];
    let chunks = data.chunks_exact(8);
    let rest = chunks.remainder().iter().fold(0.0, |a, v| a + v * 0.0);
    for c in chunks {
        for k in 0..8 {
            acc[k] += c[k] * 0.0;
        }
    }
    (acc.iter().sum::<f64>() + rest) == 0.0
}

/// A value as a faer view (column-major, as [`Mat`] stores it).
fn view(m: &Mat) -> faer::MatRef<'_, f64> {
    faer::MatRef::from_column_major_slice(&m.data, m.rows, m.cols)
}

/// `A·B` for views of any layout (a transposed view reads `Aᵀ` without forming it): the
/// evaluator's matrix products from [`SMALL_WORK`] multiply-adds on, by faer's cache-blocked
/// SIMD kernels. Like BLAS (and the small loops) it multiplies every entry, so `0·∞` is NaN.
///
/// A large product (at least [`PARALLEL_WORK`] multiply-adds) is cut into pieces of
/// [`PIECE`] along its longest dimension, the pieces computed on all cores: row (or column)
/// blocks of `C` when `A` has many rows (`X·P`), partial products summed in order when the
/// inner dimension is long (`Xᵀ·r`). The cut depends on the shapes only, never on the number
/// of threads, so the numbers do not depend on how many cores run it (faer's kernels do
/// depend on the instruction set, AVX2 or AVX-512, in the last bits).
fn product(a: faer::MatRef<'_, f64>, b: faer::MatRef<'_, f64>) -> Mat {
    let (r, k, c) = (a.nrows(), a.ncols(), b.ncols());
    if k == 0 || r == 0 || c == 0 {
        return Mat::zeros(r, c);
    }
    let work = r.saturating_mul(k).saturating_mul(c);
    let longest = r.max(k).max(c);
    if work < PARALLEL_WORK || longest <= PIECE {
        return product_seq(a, b);
    }
    let cuts: Vec<(usize, usize)> = (0..longest).step_by(PIECE).map(|s| (s, PIECE.min(longest - s))).collect();
    if longest == k {
        // partial products over blocks of the inner dimension, summed in order
        let parts = parallel_map(&cuts, |&(s, len)| product_seq(a.subcols(s, len), b.subrows(s, len)));
        let mut out = Mat::zeros(r, c);
        for p in &parts {
            for (o, v) in out.data.iter_mut().zip(&p.data) {
                *o += v;
            }
        }
        out
    } else {
        // row (or column) blocks of C, each piece written in place by one thread
        let mut out = Mat::zeros(r, c);
        let mut rest = faer::MatMut::from_column_major_slice_mut(&mut out.data, r, c);
        let mut blocks = Vec::with_capacity(cuts.len());
        for &(s, len) in &cuts {
            let (block, more) = if longest == r { rest.split_at_row_mut(len) } else { rest.split_at_col_mut(len) };
            blocks.push(std::sync::Mutex::new((s, block)));
            rest = more;
        }
        parallel_map(&blocks, |piece| {
            let mut piece = piece.lock().unwrap_or_else(|e| e.into_inner());
            let (s, ref mut dst) = *piece;
            let (a, b) = if longest == r { (a.subrows(s, dst.nrows()), b) } else { (a, b.subcols(s, dst.ncols())) };
            faer::linalg::matmul::matmul(dst.as_mut(), faer::Accum::Replace, a, b, 1.0, faer::Par::Seq);
            clear_upper_vector_state();
        });
        drop(blocks);
        out
    }
}

/// Multiply-adds from which a product runs in pieces on all cores.
const PARALLEL_WORK: usize = 1 << 22;
/// The length of a piece of a parallel product.
const PIECE: usize = 16_384;

/// `A·B` on this thread.
fn product_seq(a: faer::MatRef<'_, f64>, b: faer::MatRef<'_, f64>) -> Mat {
    let mut out = Mat::zeros(a.nrows(), b.ncols());
    let dst = faer::MatMut::from_column_major_slice_mut(&mut out.data, a.nrows(), b.ncols());
    faer::linalg::matmul::matmul(dst, faer::Accum::Replace, a, b, 1.0, faer::Par::Seq);
    clear_upper_vector_state();
    out
}

/// `f` of every item, in order, computed on up to as many threads as the machine has cores.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let threads = cores.min(items.len());
    if threads <= 1 {
        return items.iter().map(&f).collect();
    }
    let f = &f;
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| scope.spawn(move || items.iter().enumerate().skip(t).step_by(threads).map(|(i, x)| (i, f(x))).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// `vzeroupper` after faer's AVX kernels: they can return with the upper halves of the vector
/// registers dirty, and the scalar SSE code that runs next (this crate is compiled for baseline
/// x86-64) then stalls on every instruction (measured: `sum(log(z))` over 100,000 entries took
/// 17 ms after a product instead of 0.6 ms).
#[inline]
fn clear_upper_vector_state() {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx")]
        fn zeroupper() {
            std::arch::x86_64::_mm256_zeroupper();
        }
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU supports AVX (checked just above).
            unsafe { zeroupper() }
        }
    }
}

/// Multiply-adds below which a product is computed by the plain loops here rather than faer:
/// faster for the small matrices of most losses, and the same numbers on every CPU (faer's
/// kernels differ between AVX2 and AVX-512 in the last bits).
const SMALL_WORK: usize = 1 << 16;

/// `A·B`, column by column as sums of scaled columns of `A` (small), or by [`product`].
fn matmul(a: &Mat, b: &Mat) -> Result<Mat, ValueError> {
    if a.cols != b.rows {
        return err(format!("matrix product of {} and {} values", a.dims(), b.dims()));
    }
    if a.rows.saturating_mul(a.cols).saturating_mul(b.cols) >= SMALL_WORK {
        return Ok(product(view(a), view(b)));
    }
    let mut c = Mat::zeros(a.rows, b.cols);
    for j in 0..b.cols {
        let cj = &mut c.data[j * a.rows..(j + 1) * a.rows];
        for k in 0..a.cols {
            let bkj = b.data[j * b.rows + k];
            let ak = &a.data[k * a.rows..(k + 1) * a.rows];
            for (ci, ai) in cj.iter_mut().zip(ak) {
                *ci += ai * bkj;
            }
        }
    }
    Ok(c)
}

/// `Xᵀ·B` without forming `Xᵀ`: dot products of columns (small), or [`product`] of a
/// transposed view.
fn matmul_transposed(x: &Mat, b: &Mat) -> Result<Mat, ValueError> {
    if x.rows != b.rows {
        return err(format!("matrix product of {}ᵀ and {} values", x.dims(), b.dims()));
    }
    if x.cols.saturating_mul(x.rows).saturating_mul(b.cols) >= SMALL_WORK {
        return Ok(product(view(x).transpose(), view(b)));
    }
    let mut c = Mat::zeros(x.cols, b.cols);
    for j in 0..b.cols {
        let bj = &b.data[j * b.rows..(j + 1) * b.rows];
        for i in 0..x.cols {
            c.data[j * x.cols + i] = dot4(&x.data[i * x.rows..(i + 1) * x.rows], bj);
        }
    }
    Ok(c)
}

fn dot4(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let rest: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + rest
}
