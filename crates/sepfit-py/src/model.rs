//! What sepfit sees in a formula, for given column names: `parse_model` → `ModelInfo`.

use crate::{FormulaError, guard};
use pyo3::prelude::*;
use sepfit_expr::lexer::{Tok, lex};
use sepfit_expr::{ExprId, Func, ModelFormula, ModelOptions};

/// The identifiers of a formula that are not functions or `pi`, in order of first appearance:
/// `(left-hand side, right-hand side)`. Which of them are data columns is decided by the data.
#[pyfunction]
fn formula_identifiers(formula: &str) -> PyResult<(Vec<String>, Vec<String>)> {
    let toks = lex(formula).map_err(|d| FormulaError::new_err(d.render(formula)))?;
    let (mut lhs, mut rhs) = (Vec::new(), Vec::new());
    let mut right = false;
    for (i, t) in toks.iter().enumerate() {
        match &t.tok {
            Tok::Tilde => right = true,
            Tok::Ident(name) => {
                let call = matches!(toks.get(i + 1).map(|t| &t.tok), Some(Tok::LParen));
                if (call && Func::from_name(name).is_some()) || name == "pi" {
                    continue;
                }
                let side: &mut Vec<String> = if right { &mut rhs } else { &mut lhs };
                if !side.contains(name) {
                    side.push(name.clone());
                }
            }
            _ => {}
        }
    }
    if !right {
        // No `~`: the whole formula is the right-hand side.
        std::mem::swap(&mut lhs, &mut rhs);
    }
    Ok((lhs, rhs))
}

/// A formula parsed against column names.
#[pyclass(frozen, module = "sepfit._sepfit")]
pub struct ModelInfo {
    #[pyo3(get)]
    formula: String,
    #[pyo3(get)]
    columns: Vec<String>,
    #[pyo3(get)]
    used_columns: Vec<String>,
    #[pyo3(get)]
    param_names: Vec<String>,
    #[pyo3(get)]
    linear: Vec<String>,
    #[pyo3(get)]
    nonlinear: Vec<String>,
    #[pyo3(get)]
    response: String,
    #[pyo3(get)]
    model: String,
    #[pyo3(get)]
    basis: Vec<String>,
    #[pyo3(get)]
    offset: Option<String>,
    /// `(parameter, ∂f/∂parameter)` in parameter order.
    #[pyo3(get)]
    derivatives: Vec<(String, String)>,
    #[pyo3(get)]
    derivatives_latex: Vec<(String, String)>,
    /// `(basis index, nonlinear parameter, ∂φ_j/∂b_k)`.
    #[pyo3(get)]
    basis_derivatives: Vec<(usize, String, String)>,
    #[pyo3(get)]
    latex: String,
    #[pyo3(get)]
    notes: Vec<String>,
}

#[pymethods]
impl ModelInfo {
    fn __repr__(&self) -> String {
        format!(
            "ModelInfo({:?}, linear={:?}, nonlinear={:?}, columns={:?})",
            self.formula, self.linear, self.nonlinear, self.used_columns
        )
    }
}

/// Parses `formula` with `columns` as the data column names (every other identifier, except
/// function names and `pi`, is a parameter). `fixed` substitutes values, `force_nonlinear`
/// keeps linear parameters in the nonlinear set.
#[pyfunction]
#[pyo3(signature = (formula, columns, fixed = Vec::new(), force_nonlinear = Vec::new()))]
fn parse_model(formula: &str, columns: Vec<String>, fixed: Vec<(String, f64)>, force_nonlinear: Vec<String>) -> PyResult<ModelInfo> {
    guard(|| {
        let cols: Vec<&str> = columns.iter().map(String::as_str).collect();
        let fx: Vec<(&str, f64)> = fixed.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        let force: Vec<&str> = force_nonlinear.iter().map(String::as_str).collect();
        let opts = ModelOptions { declared_params: &[], force_nonlinear: &force, fixed: &fx };
        let m = ModelFormula::parse_with(formula, &cols, &opts).map_err(|d| FormulaError::new_err(d.render(formula)))?;
        Ok(info(formula, &m))
    })
}

pub(crate) fn info(formula: &str, m: &ModelFormula) -> ModelInfo {
    let nl: Vec<String> = m.nonlinear_params().map(|p| p.name.clone()).collect();
    let show = |id: ExprId| m.print(id);
    let derivatives = m.params().iter().zip(m.gradient()).map(|(p, &g)| (p.name.clone(), show(g))).collect();
    let derivatives_latex = m.params().iter().zip(m.gradient()).map(|(p, &g)| (p.name.clone(), m.latex(g))).collect();
    let basis_derivatives = m.basis_derivatives().iter().map(|&(j, k, e)| (j, nl[k].clone(), show(e))).collect();
    ModelInfo {
        formula: formula.to_string(),
        columns: m.columns().to_vec(),
        used_columns: m.used_columns().into_iter().map(|c| m.columns()[c].clone()).collect(),
        param_names: m.params().iter().map(|p| p.name.clone()).collect(),
        linear: m.linear_params().map(|p| p.name.clone()).collect(),
        nonlinear: nl,
        response: show(m.lhs()),
        model: show(m.rhs()),
        basis: m.basis().iter().map(|&b| show(b)).collect(),
        offset: m.offset().map(show),
        derivatives,
        derivatives_latex,
        basis_derivatives,
        latex: format!("{} = {}", m.latex(m.lhs()), m.latex(m.rhs())),
        notes: m.notes().to_vec(),
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ModelInfo>()?;
    m.add_function(wrap_pyfunction!(formula_identifiers, m)?)?;
    m.add_function(wrap_pyfunction!(parse_model, m)?)?;
    Ok(())
}
