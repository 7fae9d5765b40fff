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

use crate::func::{self, Func, Func2, PowKind};
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
    /// An output buffer.
    O(u32),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    /// `v/s` for a data-independent `s`: [`div_by_invariant`], with the reciprocal's check done
    /// once per chunk.
    DivS,
    Pow,
    Powi(i32),
    Sqrt,
    Neg,
    F(Func),
    XLogY,
    F2(Func2),
}

#[derive(Clone, Copy, Debug)]
struct VInstr {
    op: Op,
    dst: Loc,
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
    /// Filled with a data-independent value.
    Scalar(u32),
    /// Written in place by the vector program.
    Home,
    /// A copy of a data column.
    Col(u32),
    /// A copy of another output (the same expression requested twice).
    Copy(u32),
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

/// A node of the compile-time IR: the pool's nodes after peephole rewrites.
#[derive(Clone, Copy, Debug)]
enum Ir {
    Const(f64),
    Param(u32),
    Col(u32),
    Op(Op, u32, u32),
}

/// Where a vector value lives during a chunk.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Loc {
    Reg(u32),
    Out(u32),
}

impl Program {
    /// Compiles `outputs`, with `params[i]` bound to the i-th parameter value and `columns[c]` to
    /// the c-th data column at evaluation time.
    pub fn new(pool: &Pool, outputs: &[ExprId], params: &[SymId], columns: &[SymId]) -> Result<Program, EvalError> {
        let reach = pool.reachable(outputs);
        // 1. Lower to IR with peephole rewrites: v/s by the reciprocal (see `div_by_invariant`),
        //    -(s*v) = (-s)*v and -(v*s) = v*(-s) for data-independent s, so the reciprocal and
        //    the negation are done once per evaluation, not per row (a vector division costs
        //    several times a multiplication; `v*(1/s)` may differ from `v/s` by one rounding).
        //    A constant s is decided here; any other s by `Op::DivS`, once per chunk.
        let mut ir: Vec<Ir> = Vec::with_capacity(reach.len());
        let mut vary: Vec<bool> = Vec::with_capacity(reach.len());
        let mut map = vec![u32::MAX; reach.len()];
        let push = |ir: &mut Vec<Ir>, vary: &mut Vec<bool>, n: Ir, v: bool| -> u32 {
            ir.push(n);
            vary.push(v);
            (ir.len() - 1) as u32
        };
        for i in 0..reach.len() {
            if !reach[i] {
                continue;
            }
            let node = pool.node(ExprId(i as u32));
            let id = match node {
                Node::Const(c) => push(&mut ir, &mut vary, Ir::Const(c), false),
                Node::Sym(s) => {
                    if let Some(c) = columns.iter().position(|&c| c == s) {
                        push(&mut ir, &mut vary, Ir::Col(c as u32), true)
                    } else if let Some(p) = params.iter().position(|&p| p == s) {
                        push(&mut ir, &mut vary, Ir::Param(p as u32), false)
                    } else {
                        return Err(EvalError::UnboundSymbol(pool.symbol_info(s).name.clone()));
                    }
                }
                _ => {
                    let (op, a, b) = op_of(pool, node);
                    let (ia, ib) = (map[a.index()], map[b.index()]);
                    let v = vary[ia as usize] || vary[ib as usize];
                    match (op, ir[ia as usize]) {
                        (Op::Div, _) if vary[ia as usize] && !vary[ib as usize] => match ir[ib as usize] {
                            Ir::Const(c) if reciprocal(c).is_some() => {
                                let r = push(&mut ir, &mut vary, Ir::Const(1.0 / c), false);
                                push(&mut ir, &mut vary, Ir::Op(Op::Mul, ia, r), true)
                            }
                            Ir::Const(_) => push(&mut ir, &mut vary, Ir::Op(Op::Div, ia, ib), true),
                            _ => push(&mut ir, &mut vary, Ir::Op(Op::DivS, ia, ib), true),
                        },
                        (Op::Neg, Ir::Op(Op::Mul, x, y)) if v && !vary[x as usize] => {
                            let nx = push(&mut ir, &mut vary, Ir::Op(Op::Neg, x, x), false);
                            push(&mut ir, &mut vary, Ir::Op(Op::Mul, nx, y), true)
                        }
                        (Op::Neg, Ir::Op(Op::Mul, x, y)) if v && !vary[y as usize] => {
                            let ny = push(&mut ir, &mut vary, Ir::Op(Op::Neg, y, y), false);
                            push(&mut ir, &mut vary, Ir::Op(Op::Mul, x, ny), true)
                        }
                        _ => push(&mut ir, &mut vary, Ir::Op(op, ia, ib), v),
                    }
                }
            };
            map[i] = id;
        }
        let out_ir: Vec<u32> = outputs.iter().map(|o| map[o.index()]).collect();
        // 2. Dead-code elimination on the IR (rewrites may leave nodes unused).
        let top = ir.len();
        let mut live = vec![false; top];
        for &o in &out_ir {
            live[o as usize] = true;
        }
        for i in (0..top).rev() {
            if live[i]
                && let Ir::Op(_, a, b) = ir[i] {
                    live[a as usize] = true;
                    live[b as usize] = true;
                }
        }
        // 3. Scalar program, in order.
        let mut scalar_code = Vec::new();
        let mut slot = vec![u32::MAX; top];
        for i in 0..top {
            if !live[i] || vary[i] {
                continue;
            }
            let src = match ir[i] {
                Ir::Const(c) => SSrc::Const(c),
                Ir::Param(p) => SSrc::Param(p),
                Ir::Col(_) => SSrc::Const(f64::NAN),
                Ir::Op(op, a, b) => SSrc::Op(op, slot[a as usize], slot[b as usize]),
            };
            slot[i] = scalar_code.len() as u32;
            scalar_code.push(src);
        }
        // 4. Vector program. Outputs are written in place; other values get registers that are
        //    reused once dead.
        let vnodes: Vec<usize> = (0..top).filter(|&i| live[i] && vary[i] && matches!(ir[i], Ir::Op(..))).collect();
        let mut last_use = vec![0usize; top];
        for (k, &i) in vnodes.iter().enumerate() {
            if let Ir::Op(_, a, b) = ir[i] {
                last_use[a as usize] = k;
                last_use[b as usize] = k;
            }
        }
        let mut home_out = vec![u32::MAX; top];
        for (o, &i) in out_ir.iter().enumerate() {
            if home_out[i as usize] == u32::MAX && vary[i as usize] && matches!(ir[i as usize], Ir::Op(..)) {
                home_out[i as usize] = o as u32;
            }
            last_use[i as usize] = usize::MAX;
        }
        let mut loc: Vec<Option<Loc>> = vec![None; top];
        let mut free: Vec<u32> = Vec::new();
        let mut n_regs = 0u32;
        let mut vector_code = Vec::with_capacity(vnodes.len());
        let opnd = |j: u32, loc: &[Option<Loc>], slot: &[u32]| -> Opnd {
            let j = j as usize;
            match ir[j] {
                _ if !vary[j] => Opnd::S(slot[j]),
                Ir::Col(c) => Opnd::C(c),
                _ => match loc[j] {
                    Some(Loc::Reg(r)) => Opnd::R(r),
                    Some(Loc::Out(o)) => Opnd::O(o),
                    None => Opnd::S(0),
                },
            }
        };
        for (k, &i) in vnodes.iter().enumerate() {
            let Ir::Op(op, a, b) = ir[i] else { continue };
            let (oa, ob) = (opnd(a, &loc, &slot), opnd(b, &loc, &slot));
            let dst = if home_out[i] != u32::MAX {
                Loc::Out(home_out[i])
            } else {
                Loc::Reg(free.pop().unwrap_or_else(|| {
                    n_regs += 1;
                    n_regs - 1
                }))
            };
            loc[i] = Some(dst);
            vector_code.push(VInstr { op, dst, a: oa, b: ob });
            for c in if a == b { vec![a] } else { vec![a, b] } {
                let c = c as usize;
                if last_use[c] == k
                    && let Some(Loc::Reg(r)) = loc[c] {
                        free.push(r);
                    }
            }
        }
        let outputs = out_ir
            .iter()
            .enumerate()
            .map(|(o, &i)| match opnd(i, &loc, &slot) {
                Opnd::S(s) => OutSrc::Scalar(s),
                Opnd::C(c) => OutSrc::Col(c),
                Opnd::O(h) if h as usize == o => OutSrc::Home,
                Opnd::O(h) => OutSrc::Copy(h),
                Opnd::R(_) => OutSrc::Home,
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
        Evaluator { prog: self, ws: self.workspace() }
    }

    /// Scratch buffers for [`Program::run`].
    pub fn workspace(&self) -> Workspace {
        Workspace {
            scalars: vec![0.0; self.scalar_code.len()],
            regs: vec![0.0; self.n_regs * CHUNK],
            out_ptrs: Vec::with_capacity(self.outputs.len()),
        }
    }
}

/// `1/s` where it is a normal number (so that `v*(1/s)` is `v/s` up to one rounding), else
/// `None`: `1/s` overflows for subnormal `s` (and `0`) and is subnormal, losing precision, for
/// `|s| > 2^1022`; there the division is done as written.
#[inline(always)]
fn reciprocal(s: f64) -> Option<f64> {
    let r = 1.0 / s;
    r.is_normal().then_some(r)
}

/// `v/s` as a [`Program`] computes it when `v` depends on the data and `s` does not: as
/// `v*(1/s)`, the reciprocal computed once per chunk of rows (within one rounding of `v/s`), where
/// `1/s` is a normal number; otherwise (`s` subnormal, zero, of magnitude above `2^1022`, infinite
/// or NaN) as `v/s`. Reference evaluators that must reproduce the compiled bits use this.
///
/// ```
/// use sepfit_expr::compile::div_by_invariant;
/// assert_eq!(div_by_invariant(1e-320, 5e-324), 1e-320 / 5e-324); // 1/5e-324 overflows
/// assert_eq!(div_by_invariant(3.0, 4.0), 3.0 * 0.25);
/// ```
#[inline(always)]
pub fn div_by_invariant(v: f64, s: f64) -> f64 {
    match reciprocal(s) {
        Some(r) => v * r,
        None => v / s,
    }
}

fn op_of(pool: &Pool, node: Node) -> (Op, ExprId, ExprId) {
    match node {
        Node::Add(a, b) => (Op::Add, a, b),
        Node::Sub(a, b) => (Op::Sub, a, b),
        Node::Mul(a, b) => (Op::Mul, a, b),
        Node::Div(a, b) => (Op::Div, a, b),
        // A constant exponent is specialised by the method `func::pow` itself chooses for it.
        Node::Pow(a, b) => match pool.as_const(b).map(PowKind::of) {
            Some(PowKind::Powi(k)) => (Op::Powi(k), a, a),
            Some(PowKind::Sqrt) => (Op::Sqrt, a, a),
            _ => (Op::Pow, a, b),
        },
        Node::Neg(a) => (Op::Neg, a, a),
        Node::Call(f, a) => (Op::F(f), a, a),
        Node::XLogY(a, b) => (Op::XLogY, a, b),
        Node::Call2(f, a, b) => (Op::F2(f), a, b),
        Node::Const(_) | Node::Sym(_) => (Op::Neg, ExprId(0), ExprId(0)),
    }
}

/// Runs a [`Program`]; owns the scratch buffers so evaluation does not allocate.
pub struct Evaluator<'p> {
    prog: &'p Program,
    ws: Workspace,
}

/// Scratch buffers of a [`Program`] (from [`Program::workspace`]); evaluation allocates nothing.
#[derive(Clone, Debug)]
pub struct Workspace {
    scalars: Vec<f64>,
    regs: Vec<f64>,
    /// Output base addresses for the current call (kept to avoid allocating per call).
    out_ptrs: Vec<usize>,
}

impl Evaluator<'_> {
    /// Evaluates every output; see [`Program::run`].
    pub fn eval(&mut self, params: &[f64], columns: &[&[f64]], outputs: &mut [&mut [f64]]) -> Result<(), EvalError> {
        self.prog.run(&mut self.ws, params, columns, outputs)
    }
}

#[inline(always)]
fn scalar_op(op: Op, a: f64, b: f64) -> f64 {
    match op {
        Op::Add => a + b,
        Op::Sub => a - b,
        Op::Mul => a * b,
        Op::Div => a / b,
        Op::DivS => div_by_invariant(a, b),
        Op::Pow => func::pow(a, b),
        Op::Powi(n) => PowKind::Powi(n).apply(a, 0.0),
        Op::Sqrt => a.sqrt(),
        Op::Neg => -a,
        Op::F(f) => f.apply(a),
        Op::XLogY => func::xlogy(a, b),
        Op::F2(f) => f.apply(a, b),
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

impl Program {
    /// Evaluates every output over all rows: `params` in the order given at compile time,
    /// `columns[c]` the data columns (all of one length n), `outputs[o]` of length n each.
    /// `ws` must come from this program's [`Program::workspace`].
    pub fn run(&self, ws: &mut Workspace, params: &[f64], columns: &[&[f64]], outputs: &mut [&mut [f64]]) -> Result<(), EvalError> {
        let prog = self;
        if ws.scalars.len() != prog.scalar_code.len() || ws.regs.len() != prog.n_regs * CHUNK {
            *ws = prog.workspace();
        }
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
            ws.scalars[k] = match *src {
                SSrc::Const(c) => c,
                SSrc::Param(p) => params[p as usize],
                SSrc::Op(op, a, b) => scalar_op(op, ws.scalars[a as usize], ws.scalars[b as usize]),
            };
        }
        for (o, src) in prog.outputs.iter().enumerate() {
            if let OutSrc::Scalar(s) = src {
                outputs[o].fill(ws.scalars[*s as usize]);
            }
        }
        ws.out_ptrs.clear();
        ws.out_ptrs.extend(outputs.iter_mut().map(|o| o.as_mut_ptr() as usize));
        prog.run_chunks(ws, columns, n);
        for (o, src) in prog.outputs.iter().enumerate() {
            match *src {
                OutSrc::Scalar(_) | OutSrc::Home => {}
                OutSrc::Col(c) => outputs[o].copy_from_slice(columns[c as usize]),
                OutSrc::Copy(h) => {
                    let (a, b) = outputs.split_at_mut(o.max(h as usize));
                    if (h as usize) < o {
                        b[0].copy_from_slice(a[h as usize]);
                    }
                }
            }
        }
        Ok(())
    }

    /// Runs the vector code over rows `0..n` chunk by chunk; the element-wise loops are compiled
    /// for AVX2 and AVX-512 too and the widest the CPU has is chosen at run time (element-wise
    /// IEEE operations give the same results at any vector width).
    fn run_chunks(&self, ws: &mut Workspace, columns: &[&[f64]], n: usize) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { self.run_chunks_avx512(ws, columns, n) };
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { self.run_chunks_avx2(ws, columns, n) };
        }
        self.run_chunks_impl(ws, columns, n)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn run_chunks_avx2(&self, ws: &mut Workspace, columns: &[&[f64]], n: usize) {
        self.run_chunks_impl(ws, columns, n)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn run_chunks_avx512(&self, ws: &mut Workspace, columns: &[&[f64]], n: usize) {
        self.run_chunks_impl(ws, columns, n)
    }

    #[inline(always)]
    fn run_chunks_impl(&self, ws: &mut Workspace, columns: &[&[f64]], n: usize) {
        let mut start = 0;
        while start < n {
            let len = CHUNK.min(n - start);
            self.run_chunk(ws, columns, start, len);
            start += len;
        }
    }

    #[inline(always)]
    fn run_chunk(&self, ws: &mut Workspace, columns: &[&[f64]], start: usize, len: usize) {
        let prog = self;
        let scalars = &ws.scalars;
        let outs = &ws.out_ptrs;
        let regs = ws.regs.as_mut_ptr();
        for ins in &prog.vector_code {
            // SAFETY: every output buffer is a distinct `&mut [f64]` of length >= start + len
            // (checked in `eval`), registers are CHUNK-sized blocks of `self.regs`, and an
            // instruction's destination is never one of its operands (the allocator frees operand
            // registers only after choosing the destination, and each output is written by one
            // instruction), so the destination slice aliases nothing that is read.
            let dst: &mut [f64] = unsafe {
                match ins.dst {
                    Loc::Reg(r) => std::slice::from_raw_parts_mut(regs.add(r as usize * CHUNK), len),
                    Loc::Out(o) => std::slice::from_raw_parts_mut((outs[o as usize] as *mut f64).add(start), len),
                }
            };
            let get = |o: Opnd| -> Src<'_> {
                match o {
                    Opnd::S(s) => Src::S(scalars[s as usize]),
                    Opnd::C(c) => Src::V(&columns[c as usize][start..start + len]),
                    // SAFETY: as above; operands are only read.
                    Opnd::R(r) => Src::V(unsafe { std::slice::from_raw_parts(regs.add(r as usize * CHUNK), len) }),
                    Opnd::O(o) => {
                        Src::V(unsafe { std::slice::from_raw_parts((outs[o as usize] as *const f64).add(start), len) })
                    }
                }
            };
            let (a, b) = (get(ins.a), get(ins.b));
            match ins.op {
                Op::Add => bin(dst, a, b, |x, y| x + y),
                Op::Sub => bin(dst, a, b, |x, y| x - y),
                Op::Mul => bin(dst, a, b, |x, y| x * y),
                Op::Div => bin(dst, a, b, |x, y| x / y),
                Op::DivS => match (a, b) {
                    (a, Src::S(s)) => match reciprocal(s) {
                        Some(r) => bin(dst, a, Src::S(r), |x, y| x * y),
                        None => bin(dst, a, Src::S(s), |x, y| x / y),
                    },
                    (a, b) => bin(dst, a, b, div_by_invariant),
                },
                Op::Pow => bin(dst, a, b, func::pow),
                Op::Powi(2) => un(dst, a, |x| x * x),
                Op::Powi(k) => un(dst, a, |x| x.powi(k)),
                Op::Sqrt => un(dst, a, f64::sqrt),
                Op::Neg => un(dst, a, |x| -x),
                Op::F(Func::Exp) => match a {
                    Src::V(a) => crate::fast_exp::exp_slice(dst, a),
                    Src::S(x) => dst.fill(Func::Exp.apply(x)),
                },
                Op::F(f) => un(dst, a, |x| f.apply(x)),
                Op::XLogY => bin(dst, a, b, func::xlogy),
                Op::F2(f) => bin(dst, a, b, |x, y| f.apply(x, y)),
            }
        }
    }
}
