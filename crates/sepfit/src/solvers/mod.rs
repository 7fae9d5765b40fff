//! Solvers, one file per algorithm: Levenberg–Marquardt for least squares ([`lm`]), and for
//! general smooth losses L-BFGS ([`lbfgs`]), L-BFGS with box bounds ([`projected_lbfgs`]) and
//! gradient descent ([`gd`]).

pub mod gd;
pub mod lbfgs;
pub mod lm;
pub mod projected_lbfgs;
