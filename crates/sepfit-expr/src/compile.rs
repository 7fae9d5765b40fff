//! Compiled evaluation: many expressions of one pool (a model's value, its basis functions and
//! their derivatives) become one straight-line program with shared subexpressions.
//!
//! * Parts that do not depend on the data (parameter-only subexpressions such as `-b1` or
//!   `1/b2`) are computed once per evaluation, as scalars.
//! * Parts that depend on data run over the rows in chunks of [`CHUNK`] values, one simple
//!   loop per instruction, so every loop is short, branch-free and vectorisable, and the
//!   working registers stay in the L1 cache.
//! * Registers are reused once their value is dead; an [`Evaluator`] owns its buffers, so
//!   evaluation allocates nothing after setup.
//!
//! ```
//! use sepfit_expr::{ModelFormula, Program};
//! let m = ModelFormula::parse("y ~ a*exp(-b*t)", &["t", "y"]).unwrap();
//! // Outputs: the model and its derivative with respect to b.
//! let outputs = [m.rhs(), m.gradient()[1]];
//! let prog = Program::new(m.pool(), &outputs, &m.param_syms(), &m.column_syms()).unwrap();
//! let mut ev = prog.evaluator();
//! let t = [0.0, 1.0, 2.0];
//! let y = [0.0; 3];
//! let mut f = [0.0; 3];
//! let mut df = [0.0; 3];
//! ev.eval(&[2.0, 0.5], &[&t, &y], &mut [&mut f, &mut df]).unwrap();
//! assert!((f[1] - 2.0 * (-0.5f64).exp()).abs() < 1e-15);
//! assert!((df[2] + 2.0 * 2.0 * (-1.0f64).exp()).abs() < 1e-15);
//! ```

use crate::func::Func;
use crate::pool::{ExprId, Node, Pool, SymId};

/// Number of rows processed per chunk.
pub const CHUNK: usize = 256;

/// An operand of a vector instruction.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Opnd {
    /// A scalar slot.
    S(u32),
    /// A vector register.
    R(u32),
    /// A data column.
    C(u32),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Powi(i32),
    Sqrt,
    Neg,
    F(Func),
}

#[derive(Clone, Copy, Debug)]
struct VInstr {
    op: Op,
    dst: u32,
    a: Opnd,
    b: Opnd,
}

#[derive(Clone, Copy, Debug)]
enum SSrc {
    Const(f64),
    Param(u32),
    Op(Op, u32, u32),
}

/// Error from building or running a [`Program`].
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// An expression uses a symbol that was given neither as a parameter nor as a column.
    #[error("symbol `{0}` is neither a parameter nor a data column of this program")]
    UnboundSymbol(String),
    /// Wrong number of parameter values.
    #[error("expected {expected} parameter values, got {got}")]
    ParamCount {
        /// Expected count.
        expected: usize,
        /// Given count.
        got: usize,
    },
    /// Wrong number of columns or outputs.
    #[error("expected {expected} {what}, got {got}")]
    Count {
        /// What was counted.
        what: &'static str,
        /// Expected count.
        expected: usize,
        /// Given count.
        got: usize,
    },
    /// Columns or outputs of different lengths.
    #[error("{what} {index} has length {got}, expected {expected} (the length of the first column)")]
    Length {
        /// Column or output.
        what: &'static str,
        /// Which one.
        index: usize,
        /// Its length.
        got: usize,
        /// The expected length.
        expected: usize,
    },
}

/// Where an output comes from.
#[derive(Clone, Copy, Debug)]
enum OutSrc {
    Scalar(u32),
    Reg(u32),
    Col(u32),
}

/// A compiled program. See the module docs.
#[derive(Clone, Debug)]
pub struct Program {
    n_params: usize,
    n_cols: usize,
    scalar_code: Vec<SSrc>,
    vector_code: Vec<VInstr>,
    outputs: Vec<OutSrc>,
    n_regs: usize,
}

impl Program {
    /// Compiles `outputs`, with `params[i]` bound to the i-th parameter value and `columns[c]` to
    /// the c-th data column at evaluation time.
    pub fn new(pool: &Pool, outputs: &[ExprId], params: &[SymId], columns: &[SymId]) -> Result<Program, EvalError> {
        let reach = pool.reachable(outputs);
        let top = reach.len();
        // Classify nodes: data-dependent (vector) or not (scalar).
        let mut vary = vec![false; top];
        for i in 0..top {
            if !reach[i] {
                continue;
            }
            let node = pool.node(ExprId(i as u32));
            vary[i] = match node {
                Node::Sym(s) => {
                    if columns.contains(&s) {
                        true
                    } else if params.contains(&s) {
                        false
                    } else {
                        return Err(EvalError::UnboundSymbol(pool.symbol_info(s).name.clone()));
                    }
                }
                Node::Const(_) => false,
                _ => node.children().any(|c| vary[c.index()]),
            };
        }
        // Scalar program, in id order.
        let mut scalar_code = Vec::new();
        let mut slot = vec![u32::MAX; top];
        let op_of = |pool: &Pool, node: Node| -> (Op, ExprId, ExprId) {
            match node {
                Node::Add(a, b) => (Op::Add, a, b),
                Node::Sub(a, b) => (Op::Sub, a, b),
                Node::Mul(a, b) => (Op::Mul, a, b),
                Node::Div(a, b) => (Op::Div, a, b),
                Node::Pow(a, b) => match pool.as_const(b) {
                    Some(c) if c == c.trunc() && c.abs() <= 64.0 => (Op::Powi(c as i32), a, a),
                    Some(c) if c == 0.5 => (Op::Sqrt, a, a),
                    _ => (Op::Pow, a, b),
                },
                Node::Neg(a) => (Op::Neg, a, a),
                Node::Call(f, a) => (Op::F(f), a, a),
                Node::Const(_) | Node::Sym(_) => (Op::Neg, ExprId(0), ExprId(0)),
            }
        };
        for i in 0..top {
            if !reach[i] || vary[i] {
                continue;
            }
            let node = pool.node(ExprId(i as u32));
            let src = match node {
                Node::Const(c) => SSrc::Const(c),
                Node::Sym(s) => SSrc::Param(params.iter().position(|&p| p == s).unwrap_or(0) as u32),
                _ => {
                    let (op, a, b) = op_of(pool, node);
                    SSrc::Op(op, slot[a.index()], slot[b.index()])
                }
            };
            slot[i] = scalar_code.len() as u32;
            scalar_code.push(src);
        }
        // Vector program: instructions for varying non-symbol nodes, in id order.
        let vnodes: Vec<usize> =
            (0..top).filter(|&i| reach[i] && vary[i] && !matches!(pool.node(ExprId(i as u32)), Node::Sym(_))).collect();
        // Last use of each varying node (as instruction index), outputs live to the end.
        let mut last_use = vec![0usize; top];
        for (k, &i) in vnodes.iter().enumerate() {
            for c in pool.node(ExprId(i as u32)).children() {
                last_use[c.index()] = k;
            }
        }
        for o in outputs {
            last_use[o.index()] = usize::MAX;
        }
        let mut reg = vec![u32::MAX; top];
        let mut free: Vec<u32> = Vec::new();
        let mut n_regs = 0u32;
        let mut vector_code = Vec::with_capacity(vnodes.len());
        let opnd = |j: ExprId, reg: &Vec<u32>, slot: &Vec<u32>| -> Opnd {
            let jj = j.index();
            if !vary[jj] {
                Opnd::S(slot[jj])
            } else if let Node::Sym(s) = pool.node(j) {
                Opnd::C(columns.iter().position(|&c| c == s).unwrap_or(0) as u32)
            } else {
                Opnd::R(reg[jj])
            }
        };
        for (k, &i) in vnodes.iter().enumerate() {
            let node = pool.node(ExprId(i as u32));
            let (op, a, b) = op_of(pool, node);
            let (oa, ob) = (opnd(a, &reg, &slot), opnd(b, &reg, &slot));
            let dst = free.pop().unwrap_or_else(|| {
                n_regs += 1;
                n_regs - 1
            });
            reg[i] = dst;
            vector_code.push(VInstr { op, dst, a: oa, b: ob });
            // Free registers of operands whose last use is this instruction.
            let mut kids: Vec<ExprId> = node.children().collect();
            kids.dedup();
            for c in kids {
                let ci = c.index();
                if vary[ci] && last_use[ci] == k && reg[ci] != u32::MAX {
                    free.push(reg[ci]);
                }
            }
        }
        let outputs = outputs
            .iter()
            .map(|o| match opnd(*o, &reg, &slot) {
                Opnd::S(s) => OutSrc::Scalar(s),
                Opnd::R(r) => OutSrc::Reg(r),
                Opnd::C(c) => OutSrc::Col(c),
            })
            .collect();
        Ok(Program {
            n_params: params.len(),
            n_cols: columns.len(),
            scalar_code,
            vector_code,
            outputs,
            n_regs: n_regs as usize,
        })
    }

    /// Number of outputs.
    pub fn n_outputs(&self) -> usize {
        self.outputs.len()
    }

    /// Number of vector instructions (a measure of work per row).
    pub fn n_instructions(&self) -> usize {
        self.vector_code.len()
    }

    /// A reusable evaluator with its own buffers.
    pub fn evaluator(&self) -> Evaluator<'_> {
        Evaluator {
            prog: self,
            scalars: vec![0.0; self.scalar_code.len()],
            regs: vec![0.0; self.n_regs * CHUNK],
        }
    }
}

/// Runs a [`Program`]; owns the scratch buffers so evaluation does not allocate.
pub struct Evaluator<'p> {
    prog: &'p Program,
    scalars: Vec<f64>,
    regs: Vec<f64>,
}

#[inline(always)]
fn scalar_op(op: Op, a: f64, b: f64) -> f64 {
    match op {
        Op::Add => a + b,
        Op::Sub => a - b,
        Op::Mul => a * b,
        Op::Div => a / b,
        Op::Pow => crate::pool::pow_value(a, b),
        Op::Powi(n) => a.powi(n),
        Op::Sqrt => a.sqrt(),
        Op::Neg => -a,
        Op::F(f) => f.apply(a),
    }
}

enum Src<'a> {
    V(&'a [f64]),
    S(f64),
}

#[inline(always)]
fn bin(dst: &mut [f64], a: Src<'_>, b: Src<'_>, f: impl Fn(f64, f64) -> f64) {
    match (a, b) {
        (Src::V(a), Src::V(b)) => {
            for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
                *d = f(x, y);
            }
        }
        (Src::V(a), Src::S(y)) => {
            for (d, &x) in dst.iter_mut().zip(a) {
                *d = f(x, y);
            }
        }
        (Src::S(x), Src::V(b)) => {
            for (d, &y) in dst.iter_mut().zip(b) {
                *d = f(x, y);
            }
        }
        (Src::S(x), Src::S(y)) => dst.fill(f(x, y)),
    }
}

#[inline(always)]
fn un(dst: &mut [f64], a: Src<'_>, f: impl Fn(f64) -> f64) {
    match a {
        Src::V(a) => {
            for (d, &x) in dst.iter_mut().zip(a) {
                *d = f(x);
            }
        }
        Src::S(x) => dst.fill(f(x)),
    }
}

impl Evaluator<'_> {
    /// Evaluates every output over all rows: `params` in the order given at compile time,
    /// `columns[c]` the data columns (all of one length n), `outputs[o]` of length n each.
    pub fn eval(&mut self, params: &[f64], columns: &[&[f64]], outputs: &mut [&mut [f64]]) -> Result<(), EvalError> {
        let prog = self.prog;
        if params.len() != prog.n_params {
            return Err(EvalError::ParamCount { expected: prog.n_params, got: params.len() });
        }
        if columns.len() != prog.n_cols {
            return Err(EvalError::Count { what: "data columns", expected: prog.n_cols, got: columns.len() });
        }
        if outputs.len() != prog.outputs.len() {
            return Err(EvalError::Count { what: "outputs", expected: prog.outputs.len(), got: outputs.len() });
        }
        let n = columns.first().map(|c| c.len()).or_else(|| outputs.first().map(|o| o.len())).unwrap_or(0);
        for (i, c) in columns.iter().enumerate() {
            if c.len() != n {
                return Err(EvalError::Length { what: "column", index: i, got: c.len(), expected: n });
            }
        }
        for (i, o) in outputs.iter().enumerate() {
            if o.len() != n {
                return Err(EvalError::Length { what: "output", index: i, got: o.len(), expected: n });
            }
        }
        // Scalars.
        for (k, src) in prog.scalar_code.iter().enumerate() {
            self.scalars[k] = match *src {
                SSrc::Const(c) => c,
                SSrc::Param(p) => params[p as usize],
                SSrc::Op(op, a, b) => scalar_op(op, self.scalars[a as usize], self.scalars[b as usize]),
            };
        }
        for (o, src) in prog.outputs.iter().enumerate() {
            if let OutSrc::Scalar(s) = src {
                outputs[o].fill(self.scalars[*s as usize]);
            }
        }
        let mut start = 0;
        while start < n {
            let len = CHUNK.min(n - start);
            self.run_chunk(columns, start, len);
            for (o, src) in prog.outputs.iter().enumerate() {
                let dst = &mut outputs[o][start..start + len];
                match *src {
                    OutSrc::Scalar(_) => {}
                    OutSrc::Reg(r) => dst.copy_from_slice(&self.regs[r as usize * CHUNK..r as usize * CHUNK + len]),
                    OutSrc::Col(c) => dst.copy_from_slice(&columns[c as usize][start..start + len]),
                }
            }
            start += len;
        }
        Ok(())
    }

    fn run_chunk(&mut self, columns: &[&[f64]], start: usize, len: usize) {
        let prog = self.prog;
        let scalars = &self.scalars;
        for ins in &prog.vector_code {
            let d = ins.dst as usize;
            // Split the register file so the destination can be written while operands
            // (always other registers: operands are freed only after dst is allocated) are read.
            let (lo, rest) = self.regs.split_at_mut(d * CHUNK);
            let (dst, hi) = rest.split_at_mut(CHUNK);
            let dst = &mut dst[..len];
            let get = |o: Opnd| -> Src<'_> {
                match o {
                    Opnd::S(s) => Src::S(scalars[s as usize]),
                    Opnd::C(c) => Src::V(&columns[c as usize][start..start + len]),
                    Opnd::R(r) => {
                        let r = r as usize;
                        if r < d {
                            Src::V(&lo[r * CHUNK..r * CHUNK + len])
                        } else {
                            let off = (r - d - 1) * CHUNK;
                            Src::V(&hi[off..off + len])
                        }
                    }
                }
            };
            let (a, b) = (get(ins.a), get(ins.b));
            match ins.op {
                Op::Add => bin(dst, a, b, |x, y| x + y),
                Op::Sub => bin(dst, a, b, |x, y| x - y),
                Op::Mul => bin(dst, a, b, |x, y| x * y),
                Op::Div => bin(dst, a, b, |x, y| x / y),
                Op::Pow => bin(dst, a, b, crate::pool::pow_value),
                Op::Powi(2) => un(dst, a, |x| x * x),
                Op::Powi(k) => un(dst, a, |x| x.powi(k)),
                Op::Sqrt => un(dst, a, f64::sqrt),
                Op::Neg => un(dst, a, |x| -x),
                Op::F(Func::Exp) => un(dst, a, f64::exp),
                Op::F(f) => un(dst, a, |x| f.apply(x)),
            }
        }
    }
}
