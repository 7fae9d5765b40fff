//! The least-squares problems a fit hands to its solver: variable projection (the default), all
//! parameters jointly, and many curves sharing their nonlinear parameters; with the checks of
//! the data they start from.

pub(crate) mod data;
pub mod full;
pub mod global;
pub mod varpro;
