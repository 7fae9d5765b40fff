//! Numeric evaluation of the matrix graph with plain column-major `Vec<f64>` matrices, and a
//! small LU factorisation (partial pivoting) for `inv`, `det` and `logdet`.

use super::graph::{Graph, MId, MNode, rc};
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
        for k in 0..n {
            b.swap(k, piv[k]);
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
            if m.data.iter().any(|v| !v.is_finite()) {
                return err(format!("the value of `{}` contains a non-finite number", var.name));
            }
        }
        Ok(dims)
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
    pub fn eval(&self, roots: &[MId], values: &Values) -> Result<Vec<Mat>, ValueError> {
        let need = self.reachable(roots);
        let needed_vars: Vec<u32> = (0..need.len())
            .filter(|&i| need[i])
            .filter_map(|i| match self.node(MId(i as u32)) {
                MNode::Var(k) => Some(k),
                _ => None,
            })
            .collect();
        let dims = self.bind(values, &needed_vars)?;
        let mut val: Vec<Option<Mat>> = vec![None; need.len()];
        for i in 0..need.len() {
            if !need[i] {
                continue;
            }
            let id = MId(i as u32);
            let v = self.eval_node(id, &val, values, &dims)?;
            val[i] = Some(v);
        }
        roots
            .iter()
            .map(|r| val[r.index()].clone().ok_or_else(|| ValueError("internal: root not evaluated".into())))
            .collect()
    }

    fn eval_node(&self, id: MId, val: &[Option<Mat>], values: &Values, dims: &[Option<usize>]) -> Result<Mat, ValueError> {
        let get = |c: MId| val[c.index()].as_ref().ok_or_else(|| ValueError("internal: child not evaluated".into()));
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
            MNode::Var(k) => {
                let name = &self.vars[k as usize].name;
                values.get(name).cloned().ok_or_else(|| ValueError(format!("no value for variable `{name}`")))?
            }
            MNode::Add(a, b) => zip(get(a)?, get(b)?, |x, y| x + y)?,
            MNode::Sub(a, b) => zip(get(a)?, get(b)?, |x, y| x - y)?,
            MNode::Mul(a, b) => zip(get(a)?, get(b)?, |x, y| x * y)?,
            MNode::Div(a, b) => zip(get(a)?, get(b)?, |x, y| x / y)?,
            MNode::Pow(a, b) => zip(get(a)?, get(b)?, pow)?,
            MNode::Neg(a) => map(get(a)?, |x| -x),
            MNode::Call(f, a) => map(get(a)?, |x| f.apply(x)),
            MNode::MatMul(a, b) => {
                let (a, b) = (get(a)?, get(b)?);
                if a.cols != b.rows {
                    return err(format!("matrix product of {} and {} values", a.dims(), b.dims()));
                }
                let mut c = Mat::zeros(a.rows, b.cols);
                for j in 0..b.cols {
                    let cj = &mut c.data[j * a.rows..(j + 1) * a.rows];
                    for k in 0..a.cols {
                        let bkj = b.data[j * b.rows + k];
                        if bkj == 0.0 {
                            continue;
                        }
                        let ak = &a.data[k * a.rows..(k + 1) * a.rows];
                        for (ci, ai) in cj.iter_mut().zip(ak) {
                            *ci += ai * bkj;
                        }
                    }
                }
                c
            }
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
        })
    }
}

fn pow(x: f64, y: f64) -> f64 {
    if y == 2.0 {
        x * x
    } else if y.fract() == 0.0 && y.abs() < 64.0 {
        x.powi(y as i32)
    } else {
        x.powf(y)
    }
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
