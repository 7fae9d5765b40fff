//! Separable nonlinear least squares with exact derivatives.
#![deny(missing_docs)]

pub mod lm;
pub mod model;

pub use model::{ModelError, ModelEval, PointModel, SeparableModel};
