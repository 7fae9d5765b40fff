//! Dense linear algebra for thin matrices: the rank-revealing Householder QR of every
//! variable-projection basis ([`qr`]), bounded-variable least squares for bounded linear
//! coefficients ([`bvls`]), the vector kernels they and the solvers share, the singular
//! values of small parameter Jacobians, and Cholesky solves of small positive definite systems.

pub mod bvls;
pub(crate) mod cholesky;
pub(crate) mod kernels;
pub mod qr;
pub(crate) mod svd;
