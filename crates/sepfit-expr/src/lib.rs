//! # sepfit-expr: the sepfit formula language
//!
//! A scientist writes a model as `response ~ model`; sepfit parses it (with source spans for
//! every error), finds which parameters enter linearly, derives exact partial derivatives
//! symbolically, prints them as text or LaTeX, and compiles everything into one fast program.
//!
//! ```
//! use sepfit_expr::ModelFormula;
//!
//! let m = ModelFormula::parse("y ~ a1*exp(-b1*t) + a2*exp(-b2*t) + c", &["t", "y"]).unwrap();
//! // f = Σ_j a_j φ_j(t; b) + φ_0: a1, a2, c are eliminated by variable projection.
//! let lin: Vec<_> = m.linear_params().map(|p| p.name.clone()).collect();
//! assert_eq!(lin, ["a1", "a2", "c"]);
//! // ∂φ_1/∂b1, exactly:
//! let (j, k, d) = m.basis_derivatives()[0];
//! assert_eq!((j, k), (0, 0));
//! assert_eq!(m.print(d), "-t*exp(-b1*t)");
//! assert_eq!(m.latex(d), "-t\\,e^{-b_{1}\\,t}");
//! ```
//!
//! ## The formula language
//! `response ~ model` (model formulas) or an expression (loss formulas), with numbers (`2`,
//! `0.5`, `1e-3`, `.5`; every constant, and every constant expression such as `1e308*10` or
//! `sqrt(-1)`, must be a finite number, or it is an error at its span), `+ - * / ^` (`**`
//! also), parentheses, the constant `pi`, definitions before the formula (`u = exp(-k*t); y ~
//! a*u`; a formula that ends in a definition, `y = a*exp(-k*t)`, is an error pointing at `=`:
//! did you mean `~`?), and the elementwise functions `exp log log10 sqrt sin cos tan asin
//! acos atan sinh cosh tanh abs sign`, and the two-argument `xlogy(x, y)`.
//!
//! `xlogy(x, y)` is `x*log(y)`, except that it is 0 wherever `x` is 0 (whatever `y`, even 0).
//! It is how derivatives of powers in their exponent print: `∂(t^p)/∂p = xlogy(t^p, t)`, which
//! is 0 at `t = 0` (for `p > 0`, where `t^p` is 0), not `0*log(0) = NaN`; a power law fitted to
//! data with a `t = 0` row gets a finite Jacobian. Its derivative is `xlogy(x', y) + x*y'/y`.
//! Loss formulas have it too, elementwise (`xlogy(x, y)` with broadcasting, as `x .* log(y)`).
//!
//! `sign(x)` is −1, 0 or 1 as `x` is negative, zero or positive. Its derivative is taken as 0
//! everywhere (it is 0 almost everywhere; at 0, where `sign` jumps, there is none), so a fit
//! gets no gradient information through it: a parameter inside `sign(...)`, as `c` in
//! `sign(t - c)`, is nonlinear (it needs a starting value) and moves only through the other
//! places it appears. (`abs` has the derivative `sign(x)`.)
//!
//! A parameter is linear (eliminated by variable projection) only if the model is affine in
//! it: `∂f/∂p` free of `p` and `f − p·∂f/∂p` free of `p`. A derivative that merely simplifies
//! to something free of `p` is not enough (`sign(t - c) + c`, `4*p/(2*p)`).
//!
//! ## Modules
//! Front end, shared by both kinds of formula:
//! * [`lexer`] and [`parser`]: text → syntax tree ([`ast`]) with a [`Span`] ([`span`]) on every
//!   node. Operator chains are loops and nesting is capped at [`parser::MAX_DEPTH`], so no input
//!   overflows the stack.
//! * [`diagnostic`]: every error ([`Diagnostic`]), with span, label and hints, rendered with a caret.
//! * [`shape`]: [`Shape`] and [`Dim`] (scalar, vector, matrix; fixed, symbolic or per-observation
//!   sizes).
//! * [`func`]: the elementary functions ([`Func`]), written once for both graphs: names, values
//!   (including `x^y`, [`func::pow`]) and derivative rules. Every evaluator, compiled or not, in
//!   either tower gives the same bits.
//!
//! Model formulas (`sepfit fit`, `sepfit model`), per observation:
//! * [`pool`]: the expression graph [`Pool`]. Nodes are hash-consed (equal subexpressions are one
//!   node), carry a [`Shape`], and are simplified as they are built. Its lowering from the syntax
//!   tree is private (`lower`).
//! * [`Pool::diff`]: exact symbolic derivatives (forward mode, private module `diff`);
//!   [`Pool::to_plain`], [`Pool::to_latex`]: printing (private module `print`).
//! * [`model`]: [`ModelFormula`], the separable structure `Σ_j a_j φ_j(x; b) + φ_0(x; b)`.
//! * [`compile`]: [`Program`], compiled evaluation of many expressions at once over data columns
//!   (chunked loops, AVX2/AVX-512 where the CPU has them, a vectorised `exp`).
//!
//! Loss formulas in vectors and matrices (`sepfit grad`, `sepfit minimize`):
//! * [`matrix`]: [`matrix::LossFormula`] over the typed matrix graph [`matrix::Graph`]
//!   ([`matrix::graph`]), with its lowering ([`matrix::lower`]), reverse-mode gradients
//!   ([`matrix::grad`]), Jacobians ([`matrix::jacobian`]), numeric evaluation with fused
//!   elementwise loops ([`matrix::eval`]) and printing in ASCII, Unicode and LaTeX
//!   ([`matrix::print`]).
#![deny(missing_docs)]

pub mod ast;
pub mod compile;
pub mod diagnostic;
mod diff;
mod fast_exp;
pub mod func;
pub mod lexer;
mod lower;
pub mod matrix;
pub mod model;
pub mod parser;
pub mod pool;
mod print;
pub mod shape;
pub mod span;

pub use compile::{EvalError, Evaluator, Program, Workspace};
pub use diagnostic::{Diagnostic, DiagnosticKind};
pub use func::{Func, Func2};
pub use model::{ModelFormula, ModelOptions, Parameter};
pub use pool::{ExprId, Node, Pool, SymId, Symbol, SymbolKind};
pub use shape::{Dim, Shape};
pub use span::Span;
