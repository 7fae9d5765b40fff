//! Dense linear algebra for thin matrices: the rank-revealing Householder QR of every
//! variable-projection basis ([`qr`]), the vector kernels it and the solvers share, and the
//! singular values of small parameter Jacobians.

pub(crate) mod kernels;
pub mod qr;
pub(crate) mod svd;
