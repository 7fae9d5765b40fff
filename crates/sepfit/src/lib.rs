//! Separable nonlinear least squares with exact derivatives.
//!
//! Fits `y ≈ Σ_j a_j φ_j(x; b) + φ₀(x; b)` by variable projection (the linear
//! parameters `a` are eliminated with a pivoted QR for every `b`) and a
//! MINPACK-quality Levenberg–Marquardt on the nonlinear parameters `b`.
//!
//! ```
//! use sepfit::{fit, FitOptions, PointModel};
//! // y = a0 exp(-b0 x) + a1, noise-free
//! let x: Vec<f64> = (0..20).map(|i| i as f64 * 0.25).collect();
//! let y: Vec<f64> = x.iter().map(|x| 3.0 * (-0.7 * x).exp() + 0.5).collect();
//! let mut model = PointModel::new(
//!     x.iter().map(|&v| vec![v]).collect(), 2, 1, false, vec![(0, 0)], vec![],
//!     Box::new(|x, b, phi, dphi, _, _| {
//!         let e = (-b[0] * x[0]).exp();
//!         phi[0] = e;
//!         phi[1] = 1.0;
//!         dphi[0] = -x[0] * e;
//!     }),
//! );
//! let f = fit(&mut model, &y, &FitOptions::with_start(&[0.2])).unwrap();
//! assert!(f.converged);
//! assert!((f.nonlinear[0] - 0.7).abs() < 1e-10);
//! assert!((f.linear[0] - 3.0).abs() < 1e-10 && (f.linear[1] - 0.5).abs() < 1e-10);
//! ```
#![deny(missing_docs)]

pub mod batch;
pub mod error;
pub mod fit;
pub mod formula;
pub mod landscape;
pub mod linalg;
pub mod model;
pub mod named;
pub mod problems;
pub mod report;
pub mod solvers;
pub mod stats;

pub use error::FitError;
pub use fit::{Detail, Fit, FitOptions, FitWarning, FitWorkspace, Method, Outcome, fit, fit_with};
pub use formula::{FormulaModel, FormulaModelError};
pub use model::{ModelError, ModelEval, PointModel, SeparableModel};
pub use named::{Bound, Dataset, NamedFit, NamedOptions, ParamEstimate, ProblemError, fit_formula};
pub use report::{GlobalSummary, Summary};
pub use problems::full::FullProblem;
pub use problems::global::{GlobalError, GlobalFit, fit_global};
pub use problems::varpro::{JacobianKind, VarProProblem};
pub use solvers::lm::{IterationRecord, LeastSquaresProblem, LmError, LmOptions, LmReport, Termination, levenberg_marquardt};
pub use stats::ParamStats;
