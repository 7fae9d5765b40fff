//! Separable nonlinear least squares with exact derivatives.
//!
//! Fits `y ≈ Σ_j a_j φ_j(x; b) + φ₀(x; b)` by variable projection (the linear parameters `a`
//! are eliminated with a pivoted QR for every `b`) and a MINPACK-quality Levenberg–Marquardt
//! on the nonlinear parameters `b`. Write the model as a formula; only the nonlinear
//! parameters need starting values:
//!
//! ```
//! use sepfit::{Dataset, NamedOptions, Summary, fit_formula};
//! let t: Vec<f64> = (0..20).map(|i| i as f64 * 0.25).collect();
//! let y: Vec<f64> = t.iter().map(|t| 3.0 * (-0.7 * t).exp() + 0.5).collect();
//! let data = Dataset::new(vec!["t".into(), "y".into()], vec![t, y])?;
//! let r = fit_formula("y ~ a*exp(-k*t) + c", &data, &NamedOptions::with_start(&[("k", 1.0)]))?;
//! assert!(r.fit.converged && (r.param("k").unwrap().value - 0.7).abs() < 1e-10);
//! println!("{}", Summary::new(&r, "example").full());
//! # Ok::<(), sepfit::ProblemError>(())
//! ```
//!
//! The front door, floor by floor:
//!
//! * **Fits by name** ([`named`]): [`Dataset`], [`NamedOptions`], [`fit_formula`] →
//!   [`NamedFit`] with [`ParamEstimate`]s in the formula's order; [`Summary`] ([`report`])
//!   prints it as text or JSON. Many curves: [`batch::BatchFitter`] (each on its own, in
//!   parallel) and [`fit_global`] (shared nonlinear parameters).
//! * **Fits of a model** ([`fit()`]): any [`SeparableModel`] — a [`FormulaModel`] or your own
//!   ([`PointModel::builder`] for a closure) — with [`FitOptions`] → [`Fit`], whose
//!   [`Outcome`] says whether it converged.
//! * **Problems** ([`problems`]): the variable-projection functional with its exact
//!   Golub–Pereyra Jacobian, the joint problem, the multi-curve problem.
//! * **Solvers** ([`solvers`]): Levenberg–Marquardt (any [`LeastSquaresProblem`]), L-BFGS and
//!   gradient descent. **Linear algebra** ([`linalg`]) and **statistics** ([`stats`]) below.
#![deny(missing_docs)]
// Numerical code: index loops mirror the maths and MINPACK's loops (several arrays indexed
// together, lanes of accumulators), and `!(a < b)` is the idiom that rejects NaN along with
// the failed comparison; clippy's rewrites of either would obscure what is computed.
#![allow(clippy::needless_range_loop, clippy::neg_cmp_op_on_partial_ord)]

pub mod batch;
pub mod compare;
pub mod error;
pub mod fit;
pub mod formula;
pub mod global;
pub mod intervals;
pub mod irls;
pub mod landscape;
pub mod linalg;
pub mod loss;
pub mod poisson;
pub mod model;
pub mod named;
pub mod predict;
pub mod problems;
pub mod profile;
pub mod report;
pub mod search;
pub mod solvers;
pub mod stats;

pub use error::FitError;
pub use loss::Loss;
pub use fit::{Detail, Fit, FitOptions, FitWarning, FitWorkspace, Method, Outcome, fit, fit_with};
pub use formula::{FormulaModel, FormulaModelError};
pub use model::{ModelError, ModelEval, PointModel, PointModelBuilder, PointModelError, SeparableModel};
pub use named::{Bound, Dataset, NamedFit, NamedOptions, ParamEstimate, ProblemError, fit_formula};
pub use report::{GlobalSummary, Summary};
pub use problems::full::FullProblem;
pub use global::{GlobalError, GlobalFit, fit_global};
pub use problems::varpro::{JacobianKind, VarProProblem};
pub use solvers::lm::{IterationRecord, LeastSquaresProblem, LmError, LmOptions, LmReport, Termination, levenberg_marquardt};
pub use stats::ParamStats;
pub use predict::{PredictError, Prediction};
pub use intervals::{Distribution, IntervalError, IntervalMethod, Intervals, ParamInterval};
pub use compare::{CompareError, ModelRow, NestedTest};
