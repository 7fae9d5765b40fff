//! Gradients of losses in vectors and matrices (`sepfit_expr::matrix::LossFormula`), their
//! minimization (`sepfit::solvers::{lbfgs, gd}`), and the loss landscape of a fit
//! (`sepfit::landscape::reduced_loss_grid`).

use crate::{DataError, FitError, FormulaError, ParameterError, guard};
use numpy::ndarray::{Array2, ArrayViewD};
use numpy::{IntoPyArray, PyArrayDyn, PyReadonlyArray1, PyReadonlyArrayDyn};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use sepfit::solvers::gd::{GdOptions, gradient_descent};
use sepfit::solvers::lbfgs::{LbfgsOptions, lbfgs};
use sepfit::FormulaModel;
use sepfit_expr::matrix::{Lang, LossError, LossFormula, MId, Mat, Style, Values};
use std::collections::HashMap;

fn loss_error(formula: &str, decls: &str, e: LossError) -> PyErr {
    match e {
        LossError::Formula(d) => FormulaError::new_err(d.render(formula)),
        LossError::Declarations(d) => FormulaError::new_err(d.render(decls)),
        LossError::Value(m) => DataError::new_err(m),
    }
}

/// A numpy array (row-major, 0-, 1- or 2-D) as a column-major `Mat`.
fn to_mat(name: &str, a: ArrayViewD<'_, f64>) -> PyResult<Mat> {
    match a.ndim() {
        0 => Ok(Mat::scalar(a.iter().next().copied().unwrap_or(f64::NAN))),
        1 => Ok(Mat::vector(a.iter().copied().collect())),
        2 => {
            let (r, c) = (a.shape()[0], a.shape()[1]);
            let mut data = Vec::with_capacity(r * c);
            for j in 0..c {
                for i in 0..r {
                    data.push(a[[i, j]]);
                }
            }
            Ok(Mat { rows: r, cols: c, data })
        }
        d => Err(DataError::new_err(format!("`{name}` has {d} dimensions; give a scalar, a vector or a matrix"))),
    }
}

/// A `Mat` as a numpy array: a vector (`n×1`) 1-D, otherwise 2-D row-major.
fn from_mat<'py>(py: Python<'py>, m: &Mat) -> Bound<'py, PyArrayDyn<f64>> {
    if m.cols == 1 {
        numpy::ndarray::Array1::from(m.data.clone()).into_dyn().into_pyarray(py)
    } else {
        Array2::from_shape_fn((m.rows, m.cols), |(i, j)| m.data[j * m.rows + i]).into_dyn().into_pyarray(py)
    }
}

fn values_from(values: &HashMap<String, PyReadonlyArrayDyn<'_, f64>>) -> PyResult<Values> {
    let mut out = Values::new();
    for (k, v) in values {
        out.insert(k.clone(), to_mat(k, v.as_array())?);
    }
    Ok(out)
}

/// A loss with its exact gradient with respect to one variable.
#[pyclass(frozen, module = "sepfit._sepfit")]
pub struct Gradient {
    src: String,
    decls: String,
    #[pyo3(get)]
    wrt: String,
    /// The formula built with the declarations alone (None if shapes come from the values).
    built: Option<(LossFormula, MId)>,
}

fn build(src: &str, decls: &str, wrt: &str, values: Option<&Values>) -> Result<(LossFormula, MId), LossError> {
    let mut f = LossFormula::new(src, decls, values)?;
    let g = f.gradient(wrt)?;
    Ok((f, g))
}

/// A formula and what was derived from it (`B`).
type Built<B> = (LossFormula, B);

/// `build` with the declarations `var` alone (`None` without declarations: the shapes then
/// come from the values at each evaluation).
fn build_declared<B>(src: &str, var: &str, build: impl FnOnce(Option<&Values>) -> Result<Built<B>, LossError>) -> PyResult<Option<Built<B>>> {
    if var.trim().is_empty() {
        return Ok(None);
    }
    Ok(Some(guard(|| build(None).map_err(|e| loss_error(src, var, e)))?))
}

/// `run` on the formula built with the declarations (`built`), or else on one built now by
/// `build` with the shapes of `vals`.
fn with_formula<B, T>(
    (src, decls): (&str, &str),
    built: &Option<Built<B>>,
    vals: &Values,
    build: impl FnOnce(Option<&Values>) -> Result<Built<B>, LossError>,
    run: impl FnOnce(&LossFormula, &B) -> Result<T, LossError>,
) -> PyResult<T> {
    guard(|| {
        let lerr = |e| loss_error(src, decls, e);
        let owned;
        let (f, b) = match built {
            Some((f, b)) => (f, b),
            None => {
                owned = build(Some(vals)).map_err(lerr)?;
                (&owned.0, &owned.1)
            }
        };
        run(f, b).map_err(lerr)
    })
}

#[pymethods]
impl Gradient {
    /// The gradient in matrix notation (Unicode).
    #[getter]
    fn formula(&self) -> String {
        self.built.as_ref().map(|(f, g)| f.render(*g, Style::Unicode)).unwrap_or_default()
    }
    #[getter]
    fn latex(&self) -> String {
        self.built.as_ref().map(|(f, g)| f.render(*g, Style::Latex)).unwrap_or_default()
    }
    /// The loss in matrix notation.
    #[getter]
    fn loss(&self) -> String {
        self.built.as_ref().map(|(f, _)| f.render(f.root(), Style::Unicode)).unwrap_or_else(|| self.src.clone())
    }
    /// Python source of `loss_and_grad(<variables>) -> (value, gradient)` in the language
    /// `lang` (`"numpy"`), written from the printed formula (needs the declarations `var`).
    #[pyo3(signature = (lang = "numpy"))]
    fn emit(&self, lang: &str) -> PyResult<String> {
        let Some(l) = Lang::from_name(lang) else {
            return Err(ParameterError::new_err(format!("unknown language `{lang}`; use 'numpy'")));
        };
        let Some((f, g)) = &self.built else {
            return Err(FormulaError::new_err("emit needs the variables' shapes: pass var=\"X: n x d, w: d, ...\" to grad"));
        };
        let mut f = f.clone();
        f.name_shared(&[*g, f.root()]);
        f.emit(l, &[self.wrt.as_str()], &[*g]).map_err(|e| FormulaError::new_err(e.to_string()))
    }
    /// `(value, gradient)` at the values.
    fn eval<'py>(&self, py: Python<'py>, values: HashMap<String, PyReadonlyArrayDyn<'py, f64>>) -> PyResult<(f64, Bound<'py, PyArrayDyn<f64>>)> {
        let vals = values_from(&values)?;
        let build = |v: Option<&Values>| build(&self.src, &self.decls, &self.wrt, v);
        let out = with_formula((&self.src, &self.decls), &self.built, &vals, build, |f, g| f.eval(&[f.root(), *g], &vals))?;
        Ok((out[0].data[0], from_mat(py, &out[1])))
    }
}

/// `Gradient` of `loss` with respect to `wrt`; `var` declares shapes (`"X: n x d, w: d"`).
#[pyfunction]
#[pyo3(signature = (loss, wrt, var = ""))]
fn grad(loss: &str, wrt: &str, var: &str) -> PyResult<Gradient> {
    let built = build_declared(loss, var, |v| build(loss, var, wrt, v))?;
    Ok(Gradient { src: loss.to_string(), decls: var.to_string(), wrt: wrt.to_string(), built })
}

/// What a [`Derivative`] is.
#[derive(Clone, Copy, PartialEq)]
enum DerivKind {
    /// `∂f/∂x` of a vector (or scalar) expression.
    Jacobian,
    /// `∇²_x J` of a scalar loss (with its gradient).
    Hessian,
}

/// A Jacobian of a vector expression, or a Hessian of a scalar loss, with respect to one
/// variable.
#[pyclass(frozen, module = "sepfit._sepfit")]
pub struct Derivative {
    src: String,
    decls: String,
    #[pyo3(get)]
    wrt: String,
    kind: DerivKind,
    /// The formula and its derivatives (`[J]`, or `[∇J, ∇²J]`), built with the declarations
    /// alone (None if shapes come from the values).
    built: Option<Built<Vec<MId>>>,
}

fn build_derivative(src: &str, decls: &str, wrt: &str, kind: DerivKind, values: Option<&Values>) -> Result<Built<Vec<MId>>, LossError> {
    let mut f = LossFormula::new(src, decls, values)?;
    let ids = match kind {
        DerivKind::Jacobian => vec![f.jacobian(wrt)?],
        DerivKind::Hessian => {
            let (g, h) = f.hessian(wrt)?;
            vec![g, h]
        }
    };
    Ok((f, ids))
}

impl Derivative {
    fn with_built<T>(&self, vals: &Values, run: impl FnOnce(&LossFormula, &[MId]) -> Result<T, LossError>) -> PyResult<T> {
        let build = |v: Option<&Values>| build_derivative(&self.src, &self.decls, &self.wrt, self.kind, v);
        with_formula((&self.src, &self.decls), &self.built, vals, build, |f, ids: &Vec<MId>| run(f, ids))
    }
}

#[pymethods]
impl Derivative {
    /// `"jacobian"` or `"hessian"`.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.kind {
            DerivKind::Jacobian => "jacobian",
            DerivKind::Hessian => "hessian",
        }
    }
    /// The derivative in matrix notation (Unicode).
    #[getter]
    fn formula(&self) -> String {
        self.built.as_ref().map(|(f, ids)| f.render(ids[ids.len() - 1], Style::Unicode)).unwrap_or_default()
    }
    #[getter]
    fn latex(&self) -> String {
        self.built.as_ref().map(|(f, ids)| f.render(ids[ids.len() - 1], Style::Latex)).unwrap_or_default()
    }
    /// The gradient of a Hessian's loss in matrix notation (empty for a Jacobian).
    #[getter]
    fn gradient_formula(&self) -> String {
        match &self.built {
            Some((f, ids)) if self.kind == DerivKind::Hessian => f.render(ids[0], Style::Unicode),
            _ => String::new(),
        }
    }
    /// The expression (or loss) in matrix notation.
    #[getter]
    fn expression(&self) -> String {
        self.built.as_ref().map(|(f, _)| f.render(f.root(), Style::Unicode)).unwrap_or_else(|| self.src.clone())
    }
    /// The value, then (for a Hessian) the gradient, then the derivative, at the values.
    fn eval<'py>(&self, py: Python<'py>, values: HashMap<String, PyReadonlyArrayDyn<'py, f64>>) -> PyResult<Vec<Bound<'py, PyArrayDyn<f64>>>> {
        let vals = values_from(&values)?;
        let out = self.with_built(&vals, |f, ids| {
            let all: Vec<MId> = std::iter::once(f.root()).chain(ids.iter().copied()).collect();
            f.eval(&all, &vals)
        })?;
        Ok(out.iter().map(|m| from_mat(py, m)).collect())
    }
    /// The largest relative error of the derivative against Richardson central differences
    /// (of the expression for a Jacobian, of the gradient for a Hessian) along `directions`
    /// random directions at the values; infinite if something is not finite.
    #[pyo3(signature = (values, directions = 8, seed = 1))]
    fn check(&self, values: HashMap<String, PyReadonlyArrayDyn<'_, f64>>, directions: usize, seed: u64) -> PyResult<f64> {
        let vals = values_from(&values)?;
        self.with_built(&vals, |f, ids| match ids {
            [j] => f.check_jacobian(&self.wrt, *j, &vals, directions, seed),
            [g, h] => f.check_hessian(&self.wrt, *g, *h, &vals, directions, seed),
            _ => unreachable!("a Jacobian or a gradient and a Hessian"),
        })
    }
}

fn derivative(src: &str, wrt: &str, var: &str, kind: DerivKind) -> PyResult<Derivative> {
    let built = build_declared(src, var, |v| build_derivative(src, var, wrt, kind, v))?;
    Ok(Derivative { src: src.to_string(), decls: var.to_string(), wrt: wrt.to_string(), kind, built })
}

/// The Jacobian of the vector expression `expr` with respect to `wrt` (a vector, a scalar or a
/// matrix, whose entries are then the columns of `vec(W)`).
#[pyfunction]
#[pyo3(signature = (expr, wrt, var = ""))]
fn jacobian(expr: &str, wrt: &str, var: &str) -> PyResult<Derivative> {
    derivative(expr, wrt, var, DerivKind::Jacobian)
}

/// The Hessian of the scalar `loss` with respect to the vector or scalar `wrt`.
#[pyfunction]
#[pyo3(signature = (loss, wrt, var = ""))]
fn hessian(loss: &str, wrt: &str, var: &str) -> PyResult<Derivative> {
    derivative(loss, wrt, var, DerivKind::Hessian)
}

/// Minimizes `loss` over `wrt` from `x0` with L-BFGS or gradient descent.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (loss, wrt, var, x0, values, method = "lbfgs", max_iterations = None))]
fn minimize<'py>(
    py: Python<'py>,
    loss: &str,
    wrt: &str,
    var: &str,
    x0: PyReadonlyArrayDyn<'py, f64>,
    values: HashMap<String, PyReadonlyArrayDyn<'py, f64>>,
    method: &str,
    max_iterations: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut vals = values_from(&values)?;
    let start = to_mat(wrt, x0.as_array())?;
    let (rows, cols) = (start.rows, start.cols);
    let x0v = start.data.clone();
    vals.insert(wrt.to_string(), start);
    let (loss_s, wrt_s, var_s, method_s) = (loss.to_string(), wrt.to_string(), var.to_string(), method.to_string());
    let rep = py.detach(move || {
        guard(|| {
            let lerr = |e| loss_error(&loss_s, &var_s, e);
            let (f, g) = build(&loss_s, &var_s, &wrt_s, Some(&vals)).map_err(lerr)?;
            let ids = [f.root(), g];
            let mut failure: Option<String> = None;
            let objective = |x: &[f64], grad: &mut [f64]| -> f64 {
                vals.insert(wrt_s.clone(), Mat { rows, cols, data: x.to_vec() });
                match f.eval(&ids, &vals) {
                    Ok(out) => {
                        grad.copy_from_slice(&out[1].data);
                        out[0].data[0]
                    }
                    Err(e) => {
                        failure.get_or_insert(e.to_string());
                        f64::NAN
                    }
                }
            };
            let r = match method_s.as_str() {
                "lbfgs" | "l-bfgs" | "L-BFGS" => {
                    let mut o = LbfgsOptions::default();
                    if let Some(m) = max_iterations {
                        o.max_iter = m;
                    }
                    lbfgs(objective, &x0v, &o)
                }
                "gd" => {
                    let mut o = GdOptions::default();
                    if let Some(m) = max_iterations {
                        o.max_iter = m;
                    }
                    gradient_descent(objective, &x0v, &o)
                }
                other => return Err(ParameterError::new_err(format!("unknown method `{other}`; use 'lbfgs' or 'gd'"))),
            };
            r.map_err(|e| FitError::new_err(e.to_string()))
        })
    })?;
    let d = PyDict::new(py);
    d.set_item("x", rep.x.clone().into_pyarray(py))?;
    d.set_item("fun", rep.f)?;
    d.set_item("initial_fun", rep.f0)?;
    d.set_item("grad_norm", rep.grad_norm)?;
    d.set_item("iterations", rep.iterations)?;
    d.set_item("evaluations", rep.evaluations)?;
    d.set_item("converged", rep.termination.converged())?;
    d.set_item("message", rep.termination.describe())?;
    Ok(d)
}

/// The reduced (variable-projection) loss over `xs × ys` of nonlinear parameters `kx`, `ky`,
/// the others held at `at`; `z[j*len(xs) + i]`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (formula, names, columns, kx, ky, at, xs, ys, sigma = None))]
fn landscape(
    py: Python<'_>,
    formula: &str,
    names: Vec<String>,
    columns: Vec<PyReadonlyArray1<'_, f64>>,
    kx: usize,
    ky: usize,
    at: Vec<f64>,
    xs: Vec<f64>,
    ys: Vec<f64>,
    sigma: Option<PyReadonlyArray1<'_, f64>>,
) -> PyResult<Vec<f64>> {
    let cols: Vec<Vec<f64>> = columns.iter().map(|c| c.as_array().to_vec()).collect();
    let sigma: Option<Vec<f64>> = sigma.map(|s| s.as_array().to_vec());
    let formula = formula.to_string();
    py.detach(move || {
        guard(|| {
            let cs: Vec<&str> = names.iter().map(String::as_str).collect();
            let m = sepfit_expr::ModelFormula::parse(&formula, &cs).map_err(|d| FormulaError::new_err(d.render(&formula)))?;
            let q = m.nonlinear_params().count();
            if kx >= q || ky >= q || at.len() != q {
                return Err(ParameterError::new_err(format!("the model has {q} nonlinear parameters")));
            }
            let refs: Vec<&[f64]> = cols.iter().map(Vec::as_slice).collect();
            let model = FormulaModel::new(m, &refs).map_err(|e| DataError::new_err(e.to_string()))?;
            let y = model.response().to_vec();
            let g = sepfit::landscape::reduced_loss_grid(&model, &y, sigma.as_deref(), &at, (kx, ky), &xs, &ys)
                .map_err(|e| crate::fit_error(&e))?;
            Ok(g.z)
        })
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Gradient>()?;
    m.add_function(wrap_pyfunction!(grad, m)?)?;
    m.add_class::<Derivative>()?;
    m.add_function(wrap_pyfunction!(jacobian, m)?)?;
    m.add_function(wrap_pyfunction!(hessian, m)?)?;
    m.add_function(wrap_pyfunction!(minimize, m)?)?;
    m.add_function(wrap_pyfunction!(landscape, m)?)?;
    Ok(())
}
