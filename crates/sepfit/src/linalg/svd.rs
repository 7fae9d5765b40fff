//! Singular values of the small matrices of parameter statistics: a pivoted QR reduces a
//! tall Jacobian to its triangular factor, whose one-sided Jacobi SVD gives the singular
//! values and right singular vectors.

use super::qr::PivotedQr;
use faer::{Mat, MatRef};

/// Pivoted QR `A Π = Q R` of a tall `n × m` matrix; returns the factorisation and `R`
/// (`min(n, m) × m`) as a small dense matrix, whose singular values are those of `A`.
pub(crate) fn tall_qr(a: MatRef<'_, f64>) -> (PivotedQr, Mat<f64>) {
    let (n, m) = (a.nrows(), a.ncols());
    let mut qr = PivotedQr::new(n, m);
    for c in 0..m {
        for (d, v) in qr.col_mut(c).iter_mut().zip(a.col(c).iter()) {
            *d = *v;
        }
    }
    qr.factor();
    let r = Mat::from_fn(n.min(m), m, |i, j| if i <= j { qr.r(i, j) } else { 0.0 });
    (qr, r)
}

/// Singular values of a tall `n × m` matrix (`n ≥ m`), from the `m × m` factor of its pivoted
/// QR (faster than an SVD of the tall matrix, and as accurate). `None` if the SVD fails.
pub fn tall_singular_values(a: MatRef<'_, f64>) -> Option<Vec<f64>> {
    let (_, r) = tall_qr(a);
    jacobi_svd(r.as_ref()).map(|(s, _)| s)
}

/// Singular values and right singular vectors of a small `k × m` matrix by one-sided Jacobi
/// rotations (Hestenes 1958): the columns of `U Σ = A V` are made orthogonal pair by pair,
/// with `V` the product of the rotations. Each rotation zeroes the inner product of two
/// columns; sweeps repeat until every pair is orthogonal to rounding (`|aᵢᵀaⱼ| ≤ ε‖aᵢ‖‖aⱼ‖`).
/// One-sided Jacobi computes small singular values to high relative accuracy and, for the
/// few columns of a parameter Jacobian, costs a few microseconds where a general SVD
/// (bidiagonalisation, QR iteration, workspace allocation) costs several times more.
/// Returns `σ` (unsorted, `σ_c = ‖(AV)_c‖`) and `V` (`m × m`); `None` if an entry is not
/// finite or the sweeps do not converge.
pub fn jacobi_svd(a: MatRef<'_, f64>) -> Option<(Vec<f64>, Mat<f64>)> {
    let (k, m) = (a.nrows(), a.ncols());
    let mut u: Vec<f64> = (0..m).flat_map(|c| a.col(c).iter().copied().collect::<Vec<_>>()).collect();
    if !u.iter().all(|v| v.is_finite()) {
        return None;
    }
    let mut v = Mat::<f64>::identity(m, m);
    let col_dot = |u: &[f64], i: usize, j: usize| -> f64 { (0..k).map(|r| u[i * k + r] * u[j * k + r]).sum() };
    // Squared column norms, updated by each rotation (α' = α − tγ, β' = β + tγ) and
    // recomputed exactly at the start of every sweep.
    let mut norms: Vec<f64> = (0..m).map(|c| col_dot(&u, c, c)).collect();
    let mut converged = m < 2;
    for _sweep in 0..60 {
        let mut rotated = false;
        for (c, nc) in norms.iter_mut().enumerate() {
            *nc = col_dot(&u, c, c);
        }
        for i in 0..m {
            for j in i + 1..m {
                let (alpha, beta) = (norms[i], norms[j]);
                let gamma = col_dot(&u, i, j);
                if gamma == 0.0 || gamma.abs() <= f64::EPSILON * (alpha * beta).sqrt() {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                for r in 0..k {
                    let (x, y) = (u[i * k + r], u[j * k + r]);
                    u[i * k + r] = c * x - s * y;
                    u[j * k + r] = s * x + c * y;
                }
                for r in 0..m {
                    let (x, y) = (v[(r, i)], v[(r, j)]);
                    v[(r, i)] = c * x - s * y;
                    v[(r, j)] = s * x + c * y;
                }
                norms[i] = alpha - t * gamma;
                norms[j] = beta + t * gamma;
            }
        }
        if !rotated {
            converged = true;
            break;
        }
    }
    if !converged {
        return None;
    }
    let s = (0..m).map(|c| col_dot(&u, c, c).sqrt()).collect();
    Some((s, v))
}
