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

use crate::linalg::kernels::first_non_finite;
use crate::model::{ModelError, ModelEval, SeparableModel};
use sepfit_expr::{ExprId, ModelFormula, Program, Workspace};
use std::sync::Arc;

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
    /// A prediction was given the wrong number of parameter values.
    #[error("the model has {linear} linear and {nonlinear} nonlinear parameters, but {got_linear} and {got_nonlinear} values were given")]
    ParamCount {
        /// Linear parameters of the model.
        linear: usize,
        /// Nonlinear parameters of the model.
        nonlinear: usize,
        /// Linear values given.
        got_linear: usize,
        /// Nonlinear values given.
        got_nonlinear: usize,
    },
    /// Compilation failed.
    #[error("{0}")]
    Compile(#[from] sepfit_expr::EvalError),
}

/// A formula compiled once, for any data: the programs of the basis functions and their exact
/// derivatives, of the basis alone (values only) and of the response. Compiling does not look
/// at data, so one `CompiledFormula` (shared behind an [`Arc`]) serves every fit of the formula:
/// [`CompiledFormula::bind`] pairs it with data columns at the cost of checking and copying
/// them, with no parsing or compilation.
///
/// ```
/// use sepfit::formula::CompiledFormula;
/// use sepfit::FitOptions;
/// use sepfit_expr::ModelFormula;
/// use std::sync::Arc;
/// let m = ModelFormula::parse("y ~ a*exp(-k*t)", &["t", "y"]).unwrap();
/// let compiled = Arc::new(CompiledFormula::new(m).unwrap());
/// let t: Vec<f64> = (0..30).map(|i| i as f64 * 0.1).collect();
/// for k in [0.5, 2.0] {
///     let y: Vec<f64> = t.iter().map(|t| 3.0 * (-k * t).exp()).collect();
///     let mut model = CompiledFormula::bind(&compiled, &[&t, &y]).unwrap();
///     let f = model.fit(&FitOptions::with_start(&[1.0])).unwrap();
///     assert!((f.nonlinear[0] - k).abs() < 1e-10);
/// }
/// // The model on new values of the right-hand side's columns; the response is not needed.
/// let f = compiled.predict(&[3.0], &[0.5], &[&[0.0, 1.0], &[]]).unwrap();
/// assert!((f[1] - 3.0 * (-0.5f64).exp()).abs() < 1e-15);
/// ```
#[derive(Clone, Debug)]
pub struct CompiledFormula {
    formula: ModelFormula,
    /// Basis, offset, then the basis and offset derivative columns.
    program: Program,
    /// Basis and offset only, for [`SeparableModel::eval_values`] and predictions.
    values: Program,
    /// The response program (left-hand side).
    lhs: Program,
    /// Indices of the used columns among the formula's columns.
    used: Vec<usize>,
    /// Whether each used column appears on the right-hand side.
    rhs_used: Vec<bool>,
    pattern: Vec<(usize, usize)>,
    offset_pattern: Vec<usize>,
}

impl CompiledFormula {
    /// Compiles the programs of `formula`.
    pub fn new(formula: ModelFormula) -> Result<CompiledFormula, FormulaModelError> {
        let used = formula.used_columns();
        let all_syms = formula.column_syms();
        let syms: Vec<_> = used.iter().map(|&u| all_syms[u]).collect();
        let lhs = Program::new(formula.pool(), &[formula.lhs()], &[], &syms)?;
        let mut outs: Vec<ExprId> = formula.basis().to_vec();
        outs.extend(formula.offset());
        outs.extend(formula.basis_derivatives().iter().map(|&(_, _, e)| e));
        outs.extend(formula.offset_derivatives().iter().map(|&(_, e)| e));
        let nl = formula.nonlinear_syms();
        let program = Program::new(formula.pool(), &outs, &nl, &syms)?;
        let mut vouts: Vec<ExprId> = formula.basis().to_vec();
        vouts.extend(formula.offset());
        let values = Program::new(formula.pool(), &vouts, &nl, &syms)?;
        let rhs_free = formula.pool().free_symbols(formula.rhs());
        let rhs_used = syms.iter().map(|s| rhs_free.contains(s)).collect();
        let pattern = formula.basis_derivatives().iter().map(|&(j, k, _)| (j, k)).collect();
        let offset_pattern = formula.offset_derivatives().iter().map(|&(k, _)| k).collect();
        Ok(CompiledFormula { formula, program, values, lhs, used, rhs_used, pattern, offset_pattern })
    }

    /// The formula.
    pub fn formula(&self) -> &ModelFormula {
        &self.formula
    }

    /// Indices (among [`ModelFormula::columns`]) of the columns the right-hand side uses: the
    /// columns [`CompiledFormula::predict`] needs.
    pub fn rhs_columns(&self) -> Vec<usize> {
        self.used.iter().zip(&self.rhs_used).filter(|(_, r)| **r).map(|(&u, _)| u).collect()
    }

    /// Binds data to the compiled formula: `columns[i]` holds the data of
    /// `formula.columns()[i]` (columns the formula does not use may be empty). The used
    /// columns are checked (equal lengths, finite values, a finite response) and copied.
    pub fn bind(this: &Arc<CompiledFormula>, columns: &[&[f64]]) -> Result<FormulaModel, FormulaModelError> {
        let c = &**this;
        let mut model = FormulaModel {
            ws: c.program.workspace(),
            values_ws: c.values.workspace(),
            lhs_ws: c.lhs.workspace(),
            data: vec![Vec::new(); c.used.len()],
            response: Vec::new(),
            n: 0,
            compiled: Arc::clone(this),
        };
        model.set_data(columns)?;
        Ok(model)
    }

    /// The model `Σ a_j φ_j(b) + φ_0(b)` on new data: `columns` in the order of
    /// [`ModelFormula::columns`], where only the columns of the right-hand side
    /// ([`CompiledFormula::rhs_columns`]) need values (the response and unused columns may be
    /// empty). With no data column on the right-hand side the result has one value.
    pub fn predict(&self, a: &[f64], b: &[f64], columns: &[&[f64]]) -> Result<Vec<f64>, FormulaModelError> {
        let names = self.formula.columns();
        if columns.len() != names.len() {
            return Err(FormulaModelError::ColumnCount { expected: names.len(), got: columns.len() });
        }
        let p = self.formula.basis().len();
        let q = self.formula.nonlinear_params().count();
        if a.len() != p || b.len() != q {
            return Err(FormulaModelError::ParamCount { linear: p, nonlinear: q, got_linear: a.len(), got_nonlinear: b.len() });
        }
        let rhs = self.rhs_columns();
        let n = rhs.first().map_or(1, |&u| columns[u].len());
        for &u in &rhs {
            if columns[u].len() != n {
                return Err(FormulaModelError::ColumnLength { name: names[u].clone(), got: columns[u].len(), expected: n });
            }
        }
        // Columns only the response uses are bound to zeros: the basis never reads them.
        let zeros = vec![0.0; n];
        let cols: Vec<&[f64]> =
            self.used.iter().zip(&self.rhs_used).map(|(&u, &r)| if r { columns[u] } else { zeros.as_slice() }).collect();
        let mut bufs = vec![vec![0.0; n]; self.values.n_outputs()];
        {
            let mut outs: Vec<&mut [f64]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
            self.values.run(&mut self.values.workspace(), b, &cols, &mut outs)?;
        }
        let mut f = if self.formula.offset().is_some() { std::mem::take(&mut bufs[p]) } else { vec![0.0; n] };
        for (j, bj) in bufs.iter().take(p).enumerate() {
            for (fi, v) in f.iter_mut().zip(bj) {
                *fi += a[j] * v;
            }
        }
        Ok(f)
    }
}

/// A [`SeparableModel`] built from a formula and data (a [`CompiledFormula`] bound to data
/// columns). See the module docs.
#[derive(Clone)]
pub struct FormulaModel {
    compiled: Arc<CompiledFormula>,
    ws: Workspace,
    values_ws: Workspace,
    lhs_ws: Workspace,
    /// Used data columns, in the order the programs bind them.
    data: Vec<Vec<f64>>,
    response: Vec<f64>,
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
    /// formula does not use may be empty). This compiles the formula; to fit one formula to
    /// many data sets, compile it once ([`CompiledFormula`]) and [`CompiledFormula::bind`] it.
    pub fn new(formula: ModelFormula, columns: &[&[f64]]) -> Result<FormulaModel, FormulaModelError> {
        // The data are checked before compiling, so their errors come first.
        check_columns(&formula, &formula.used_columns(), columns)?;
        let compiled = Arc::new(CompiledFormula::new(formula)?);
        CompiledFormula::bind(&compiled, columns)
    }

    /// Replaces the data (same column layout as [`FormulaModel::new`]), keeping the compiled
    /// programs: fitting many curves with one model costs no recompilation.
    pub fn set_data(&mut self, columns: &[&[f64]]) -> Result<(), FormulaModelError> {
        let c = &*self.compiled;
        let n = check_columns(&c.formula, &c.used, columns)?;
        for (d, &u) in self.data.iter_mut().zip(&c.used) {
            d.clear();
            d.extend_from_slice(columns[u]);
        }
        self.response.resize(n, 0.0);
        with_columns(&self.data, |cols| c.lhs.run(&mut self.lhs_ws, &[], cols, &mut [&mut self.response]))?;
        if let Some((row, value)) = first_non_finite(&self.response) {
            return Err(FormulaModelError::BadResponse { response: c.formula.print(c.formula.lhs()), row, value });
        }
        self.n = n;
        Ok(())
    }

    /// The formula.
    pub fn formula(&self) -> &ModelFormula {
        &self.compiled.formula
    }

    /// The compiled formula this model binds.
    pub fn compiled(&self) -> &Arc<CompiledFormula> {
        &self.compiled
    }

    /// The response values (the left-hand side evaluated on the data).
    pub fn response(&self) -> &[f64] {
        &self.response
    }

    /// Evaluates the model `Σ a_j φ_j + φ_0` at `(a, b)` on new values of the used columns
    /// (in the order of [`ModelFormula::used_columns`]); for plotting fitted curves. Columns
    /// that only the response uses may hold anything of the right length;
    /// [`CompiledFormula::predict`] does not need them at all.
    pub fn predict(&self, a: &[f64], b: &[f64], used_columns: &[&[f64]]) -> Result<Vec<f64>, FormulaModelError> {
        let c = &*self.compiled;
        let mut all: Vec<&[f64]> = vec![&[]; c.formula.columns().len()];
        for (&u, col) in c.used.iter().zip(used_columns) {
            all[u] = col;
        }
        c.predict(a, b, &all)
    }
}

impl SeparableModel for FormulaModel {
    fn n_obs(&self) -> usize {
        self.n
    }
    fn n_linear(&self) -> usize {
        self.compiled.formula.basis().len()
    }
    fn n_nonlinear(&self) -> usize {
        self.compiled.formula.nonlinear_params().count()
    }
    fn has_offset(&self) -> bool {
        self.compiled.formula.offset().is_some()
    }
    fn basis_derivative_pattern(&self) -> &[(usize, usize)] {
        &self.compiled.pattern
    }
    fn offset_derivative_pattern(&self) -> &[usize] {
        &self.compiled.offset_pattern
    }
    fn eval(&mut self, b: &[f64], out: &mut ModelEval) -> Result<(), ModelError> {
        let c = &*self.compiled;
        run_into(&c.program, &mut self.ws, b, &self.data, out, c.formula.offset().is_some(), true)
    }
    fn eval_values(&mut self, b: &[f64], out: &mut ModelEval) -> Result<(), ModelError> {
        let c = &*self.compiled;
        run_into(&c.values, &mut self.values_ws, b, &self.data, out, c.formula.offset().is_some(), false)
    }
}

/// Checks the used columns (indices `used`) of `columns` (in the order of the formula's
/// columns): as many columns as the formula names, equal lengths, finite values. Returns the
/// common length.
fn check_columns(formula: &ModelFormula, used: &[usize], columns: &[&[f64]]) -> Result<usize, FormulaModelError> {
    let names = formula.columns();
    if columns.len() != names.len() {
        return Err(FormulaModelError::ColumnCount { expected: names.len(), got: columns.len() });
    }
    let n = used.first().map_or(0, |&u| columns[u].len());
    for &u in used {
        if columns[u].len() != n {
            return Err(FormulaModelError::ColumnLength { name: names[u].clone(), got: columns[u].len(), expected: n });
        }
    }
    for &u in used {
        if let Some((row, value)) = first_non_finite(columns[u]) {
            return Err(FormulaModelError::NonFiniteData { name: names[u].clone(), row, value });
        }
    }
    Ok(n)
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
