//! Models from formulas: a [`ModelFormula`] plus data columns becomes a [`SeparableModel`]
//! whose basis functions and exact derivatives are evaluated by one compiled program.
//!
//! ```
//! use sepfit::{FitOptions, FormulaModel};
//! use sepfit_expr::ModelFormula;
//! let t: Vec<f64> = (0..50).map(|i| i as f64 * 0.1).collect();
//! let y: Vec<f64> = t.iter().map(|t| 2.0 * (-1.5 * t).exp() + 0.3).collect();
//! let m = ModelFormula::parse("y ~ a*exp(-k*t) + c", &["t", "y"]).unwrap();
//! let mut model = FormulaModel::new(m, &[&t, &y]).unwrap();
//! let f = model.fit(&FitOptions::with_start(&[1.0])).unwrap();
//! assert!((f.nonlinear[0] - 1.5).abs() < 1e-10);
//! ```

use crate::model::{ModelError, ModelEval, SeparableModel};
use sepfit_expr::{ExprId, ModelFormula, Program, Workspace};

/// Why a formula and data could not be made into a model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormulaModelError {
    /// Number of data columns differs from the formula's column names.
    #[error("the formula was parsed with {expected} column names but {got} data columns were given")]
    ColumnCount {
        /// Column names.
        expected: usize,
        /// Data columns.
        got: usize,
    },
    /// Columns of different lengths.
    #[error("column `{name}` has {got} rows, expected {expected}")]
    ColumnLength {
        /// Column name.
        name: String,
        /// Its length.
        got: usize,
        /// The first column's length.
        expected: usize,
    },
    /// The response is not finite at some row (e.g. `log(y)` with `y <= 0`).
    #[error("the response `{response}` is {value} at row {} of the data; every observation needs a finite response", row + 1)]
    BadResponse {
        /// The response expression.
        response: String,
        /// Zero-based row.
        row: usize,
        /// The value.
        value: f64,
    },
    /// A used data column holds a NaN or infinite value.
    #[error("column `{name}` holds {value} at row {} of the data; remove or fix that row", row + 1)]
    NonFiniteData {
        /// Column name.
        name: String,
        /// Zero-based row.
        row: usize,
        /// The value.
        value: f64,
    },
    /// Compilation failed.
    #[error("{0}")]
    Compile(#[from] sepfit_expr::EvalError),
}

/// A [`SeparableModel`] built from a formula and data. See the module docs.
#[derive(Clone)]
pub struct FormulaModel {
    formula: ModelFormula,
    program: Program,
    ws: Workspace,
    /// Basis and offset only, for [`SeparableModel::eval_values`].
    values: Program,
    values_ws: Workspace,
    /// The response program (left-hand side) and its workspace.
    lhs: Program,
    lhs_ws: Workspace,
    /// Indices of the used columns among the formula's columns.
    used: Vec<usize>,
    /// Used data columns, in the order the program binds them.
    data: Vec<Vec<f64>>,
    response: Vec<f64>,
    pattern: Vec<(usize, usize)>,
    offset_pattern: Vec<usize>,
    n: usize,
}

impl FormulaModel {
    /// Fits the model to its own response (the formula's left-hand side on the data).
    pub fn fit(&mut self, options: &crate::FitOptions) -> Result<crate::Fit, crate::FitError> {
        let y = std::mem::take(&mut self.response);
        let result = crate::fit(self, &y, options);
        self.response = y;
        result
    }

    /// Builds the model; `columns[i]` holds the data of `formula.columns()[i]` (columns the
    /// formula does not use may be empty).
    pub fn new(formula: ModelFormula, columns: &[&[f64]]) -> Result<FormulaModel, FormulaModelError> {
        if columns.len() != formula.columns().len() {
            return Err(FormulaModelError::ColumnCount { expected: formula.columns().len(), got: columns.len() });
        }
        // Only the columns the formula uses must hold data (others may be empty).
        let used = formula.used_columns();
        let n = used.first().map_or(0, |&u| columns[u].len());
        for &u in &used {
            if columns[u].len() != n {
                let name = formula.columns()[u].clone();
                return Err(FormulaModelError::ColumnLength { name, got: columns[u].len(), expected: n });
            }
        }
        for &u in &used {
            if let Some((row, &value)) = columns[u].iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(FormulaModelError::NonFiniteData { name: formula.columns()[u].clone(), row, value });
            }
        }
        let all_syms = formula.column_syms();
        let syms: Vec<_> = used.iter().map(|&u| all_syms[u]).collect();
        let data: Vec<Vec<f64>> = used.iter().map(|&u| columns[u].to_vec()).collect();
        let cols: Vec<&[f64]> = data.iter().map(|c| c.as_slice()).collect();
        // The response, once.
        let lhs_prog = Program::new(formula.pool(), &[formula.lhs()], &[], &syms)?;
        let mut lhs_ws = lhs_prog.workspace();
        let mut response = vec![0.0; n];
        lhs_prog.run(&mut lhs_ws, &[], &cols, &mut [&mut response])?;
        if let Some((row, &value)) = response.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(FormulaModelError::BadResponse { response: formula.print(formula.lhs()), row, value });
        }
        let mut outs: Vec<ExprId> = formula.basis().to_vec();
        outs.extend(formula.offset());
        outs.extend(formula.basis_derivatives().iter().map(|&(_, _, e)| e));
        outs.extend(formula.offset_derivatives().iter().map(|&(_, e)| e));
        let program = Program::new(formula.pool(), &outs, &formula.nonlinear_syms(), &syms)?;
        let ws = program.workspace();
        let mut vouts: Vec<ExprId> = formula.basis().to_vec();
        vouts.extend(formula.offset());
        let values = Program::new(formula.pool(), &vouts, &formula.nonlinear_syms(), &syms)?;
        let values_ws = values.workspace();
        let pattern = formula.basis_derivatives().iter().map(|&(j, k, _)| (j, k)).collect();
        let offset_pattern = formula.offset_derivatives().iter().map(|&(k, _)| k).collect();
        Ok(FormulaModel {
            formula,
            program,
            ws,
            values,
            values_ws,
            lhs: lhs_prog,
            lhs_ws,
            used,
            data,
            response,
            pattern,
            offset_pattern,
            n,
        })
    }

    /// Replaces the data (same column layout as [`FormulaModel::new`]), keeping the compiled
    /// programs: fitting many curves with one model costs no recompilation.
    pub fn set_data(&mut self, columns: &[&[f64]]) -> Result<(), FormulaModelError> {
        if columns.len() != self.formula.columns().len() {
            return Err(FormulaModelError::ColumnCount { expected: self.formula.columns().len(), got: columns.len() });
        }
        let used = &self.used;
        let n = used.first().map_or(0, |&u| columns[u].len());
        for &u in used {
            let name = &self.formula.columns()[u];
            if columns[u].len() != n {
                return Err(FormulaModelError::ColumnLength { name: name.clone(), got: columns[u].len(), expected: n });
            }
            if let Some((row, &value)) = columns[u].iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(FormulaModelError::NonFiniteData { name: name.clone(), row, value });
            }
        }
        for (d, &u) in self.data.iter_mut().zip(used) {
            d.clear();
            d.extend_from_slice(columns[u]);
        }
        self.response.resize(n, 0.0);
        with_columns(&self.data, |cols| self.lhs.run(&mut self.lhs_ws, &[], cols, &mut [&mut self.response]))?;
        if let Some((row, &value)) = self.response.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(FormulaModelError::BadResponse { response: self.formula.print(self.formula.lhs()), row, value });
        }
        self.n = n;
        Ok(())
    }

    /// The formula.
    pub fn formula(&self) -> &ModelFormula {
        &self.formula
    }

    /// The response values (the left-hand side evaluated on the data).
    pub fn response(&self) -> &[f64] {
        &self.response
    }

    /// Evaluates the model `Σ a_j φ_j + φ_0` at `(a, b)` on new values of the used columns
    /// (in the order of [`ModelFormula::used_columns`]); for plotting fitted curves.
    pub fn predict(&self, a: &[f64], b: &[f64], used_columns: &[&[f64]]) -> Result<Vec<f64>, FormulaModelError> {
        let n = used_columns.first().map_or(0, |c| c.len());
        let mut bufs = vec![vec![0.0; n]; self.program.n_outputs()];
        {
            let mut outs: Vec<&mut [f64]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
            self.program.run(&mut self.program.workspace(), b, used_columns, &mut outs)?;
        }
        let p = self.formula.basis().len();
        let mut f = if self.formula.offset().is_some() { bufs[p].clone() } else { vec![0.0; n] };
        for j in 0..p {
            for (fi, v) in f.iter_mut().zip(&bufs[j]) {
                *fi += a[j] * v;
            }
        }
        Ok(f)
    }
}

impl SeparableModel for FormulaModel {
    fn n_obs(&self) -> usize {
        self.n
    }
    fn n_linear(&self) -> usize {
        self.formula.basis().len()
    }
    fn n_nonlinear(&self) -> usize {
        self.formula.nonlinear_params().count()
    }
    fn has_offset(&self) -> bool {
        self.formula.offset().is_some()
    }
    fn basis_derivative_pattern(&self) -> &[(usize, usize)] {
        &self.pattern
    }
    fn offset_derivative_pattern(&self) -> &[usize] {
        &self.offset_pattern
    }
    fn eval(&mut self, b: &[f64], out: &mut ModelEval) -> Result<(), ModelError> {
        let has_offset = self.formula.offset().is_some();
        run_into(&self.program, &mut self.ws, b, &self.data, out, has_offset, true)
    }
    fn eval_values(&mut self, b: &[f64], out: &mut ModelEval) -> Result<(), ModelError> {
        let has_offset = self.formula.offset().is_some();
        run_into(&self.values, &mut self.values_ws, b, &self.data, out, has_offset, false)
    }
}

/// Outputs and data columns of up to this many go on the stack (no allocation per evaluation).
const STACK: usize = 32;

/// Calls `f` with the data columns as slices.
fn with_columns<T>(data: &[Vec<f64>], f: impl FnOnce(&[&[f64]]) -> T) -> T {
    if data.len() <= STACK {
        let mut cols: [&[f64]; STACK] = [&[]; STACK];
        for (c, d) in cols.iter_mut().zip(data) {
            *c = d.as_slice();
        }
        f(&cols[..data.len()])
    } else {
        let cols: Vec<&[f64]> = data.iter().map(|c| c.as_slice()).collect();
        f(&cols)
    }
}

/// Runs `prog` with its outputs in `out`: the basis columns, the offset when the model has one,
/// then (when `derivatives`) the basis and offset derivative columns.
fn run_into(
    prog: &Program,
    ws: &mut Workspace,
    b: &[f64],
    data: &[Vec<f64>],
    out: &mut ModelEval,
    has_offset: bool,
    derivatives: bool,
) -> Result<(), ModelError> {
    fn col(c: faer::ColMut<'_, f64>) -> &mut [f64] {
        c.try_as_col_major_mut().expect("faer Mat columns are contiguous").as_slice_mut()
    }
    let ModelEval { basis, offset, d_basis, d_offset } = out;
    let outs = basis
        .col_iter_mut()
        .map(col)
        .chain(has_offset.then_some(offset.as_mut_slice()))
        .chain(d_basis.col_iter_mut().map(col).filter(|_| derivatives))
        .chain(d_offset.col_iter_mut().map(col).filter(|_| derivatives));
    let mut run = |outs: &mut [&mut [f64]]| {
        with_columns(data, |cols| prog.run(ws, b, cols, outs)).map_err(|e| ModelError::new(e.to_string()))
    };
    if prog.n_outputs() <= STACK {
        let mut buf: [&mut [f64]; STACK] = Default::default();
        let mut k = 0;
        for (slot, o) in buf.iter_mut().zip(outs) {
            *slot = o;
            k += 1;
        }
        run(&mut buf[..k])
    } else {
        let mut v: Vec<&mut [f64]> = outs.collect();
        run(&mut v)
    }
}
