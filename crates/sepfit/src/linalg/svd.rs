//! Singular values of the matrices of parameter statistics. A tall Jacobian with at most
//! [`QR_MAX_COLS`] columns is first reduced to the triangular factor `R` of a pivoted QR
//! (σ(A) = σ(R)); the SVD of a matrix with at most [`JACOBI_MAX_COLS`] columns is one-sided
//! Jacobi's (a few microseconds), of a larger one faer's (bidiagonalisation, blocked, where
//! Jacobi sweeps cost many times more: 2 s against 0.1 s for 500 columns).
//! [`equilibrated_tall_qr`] gives the triangular factor of the column-equilibrated matrix.

use super::qr::PivotedQr;
use faer::{Mat, MatRef};

/// Up to this many columns one-sided Jacobi, above it faer's SVD. Measured
/// (`stats::tests::timing_harness`, pivoted QR of 256 rows then the SVD of `R`): equal at
/// 5 to 8 columns (about 5 and 13 µs), faer 1.5 times faster at 12, 2 at 24, 4 at 64.
pub(crate) const JACOBI_MAX_COLS: usize = 8;

/// Up to this many columns a tall matrix goes through the (unblocked) pivoted QR first, above
/// it to faer's SVD whole (which has its own blocked QR). Measured with 256 rows: QR then
/// faer's SVD of `R` is 1.3 to 3 times faster than faer's SVD of the matrix for 8 to 64 columns.
pub(crate) const QR_MAX_COLS: usize = 64;

/// [`jacobi_svd`] up to [`JACOBI_MAX_COLS`] columns, else [`faer_svd`]: `σ` (unordered) and,
/// if `vectors`, `V`.
pub(crate) fn small_svd(a: MatRef<'_, f64>, vectors: bool) -> Option<(Vec<f64>, Mat<f64>)> {
    if a.ncols() <= JACOBI_MAX_COLS {
        // Jacobi's sweeps have a cap; faer if it is ever reached.
        jacobi_svd(a).or_else(|| faer_svd(a, vectors))
    } else {
        faer_svd(a, vectors)
    }
}

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
    if a.ncols() > QR_MAX_COLS {
        return faer_svd(a, false).map(|(s, _)| s);
    }
    let (_, r) = tall_qr(a);
    small_svd(r.as_ref(), false).map(|(s, _)| s)
}

/// A pivoted QR `A P Π = Q R` of a tall matrix whose column norms are safely computed: `P` is
/// the identity (`p2` is `None`) unless a column's sum of squares is out of the range where it
/// is exact enough (or the factor overflows); then `P` holds exact power-of-two column scales
/// (the largest entry of each column in [1, 2), original column order) and the scaled matrix is
/// factored instead. `norms[k]` is the 2-norm of column `k` of `R` (pivoted order), which is
/// that of column `Π k` of `A P`. `None` if an entry is not finite.
pub(crate) struct SafeQr {
    pub qr: PivotedQr,
    pub r: Mat<f64>,
    pub norms: Vec<f64>,
    pub p2: Option<Vec<f64>>,
}

/// See [`SafeQr`].
pub(crate) fn safe_tall_qr(a: MatRef<'_, f64>) -> Option<SafeQr> {
    let m = a.ncols();
    // A NaN or ∞ in A reaches its column of R, which fails the norms' range check.
    let (qr, r) = tall_qr(a);
    if let Some(norms) = safe_column_norms(r.as_ref()) {
        return Some(SafeQr { qr, r, norms, p2: None });
    }
    if !(0..m).all(|c| a.col(c).iter().all(|v| v.is_finite())) {
        return None;
    }
    let p2: Vec<f64> = (0..m)
        .map(|c| {
            let big = a.col(c).iter().fold(0.0f64, |x, v| x.max(v.abs()));
            if big > 0.0 { 2f64.powi(-(big.log2().floor() as i32).clamp(-1022, 1022)) } else { 1.0 }
        })
        .collect();
    let scaled = Mat::from_fn(a.nrows(), m, |i, c| a[(i, c)] * p2[c]);
    let (qr, r) = tall_qr(scaled.as_ref());
    let norms = safe_column_norms(r.as_ref())?;
    Some(SafeQr { qr, r, norms, p2: Some(p2) })
}

/// The pivoted QR of the column-equilibrated `A D⁻¹`, `D = diag(‖a_c‖₂)`: `A D⁻¹ Π = Q R_s`.
/// Returns the factorisation (for its permutation), `R_s` (`min(n, m) × m`, pivoted order, unit
/// columns but for the zero ones) and `d` (original column order; `d_c = 0` for a zero column,
/// whose column of `R_s` is zero). Householder QR is backward stable column by column
/// (`‖Δa_c‖ ≤ γ ‖a_c‖` whatever the pivoting), so the columns of `R` are scaled after the
/// factorisation ([`safe_tall_qr`]): `‖r_k‖ = ‖a_{Π k}‖`. `None` if an entry is not finite or
/// a norm overflows.
pub(crate) fn equilibrated_tall_qr(a: MatRef<'_, f64>) -> Option<(PivotedQr, Mat<f64>, Vec<f64>)> {
    let SafeQr { qr, mut r, norms, p2 } = safe_tall_qr(a)?;
    let mut d = vec![0.0; norms.len()];
    for (k, (&pk, &nk)) in qr.perm().iter().zip(&norms).enumerate() {
        if nk > 0.0 {
            let inv = 1.0 / nk;
            for i in 0..=k.min(r.nrows() - 1) {
                r[(i, k)] *= inv;
            }
        }
        d[pk] = p2.as_ref().map_or(nk, |p2| nk / p2[pk]);
    }
    d.iter().all(|d| d.is_finite()).then_some((qr, r, d))
}

/// 2-norms of the columns of `r` if every entry is finite and every nonzero column's sum of
/// squares is well inside the normal range (no overflow, no loss to underflow).
pub(crate) fn safe_column_norms(r: MatRef<'_, f64>) -> Option<Vec<f64>> {
    (0..r.ncols())
        .map(|c| {
            let col = r.col(c);
            let ss: f64 = col.iter().map(|v| v * v).sum();
            if ss == 0.0 && col.iter().all(|v| *v == 0.0) {
                Some(0.0)
            } else if (1e-280..=1e280).contains(&ss) {
                Some(ss.sqrt())
            } else {
                None
            }
        })
        .collect()
}

/// faer's SVD of a `k × m` matrix: the singular values (nonincreasing, padded with zeros to
/// `m` when `k < m`) and, if `vectors`, the right singular vectors `V` (`m × m`; else an empty
/// matrix). No left singular vectors are formed. `None` if an entry is not finite or the SVD
/// does not converge.
pub(crate) fn faer_svd(a: MatRef<'_, f64>, vectors: bool) -> Option<(Vec<f64>, Mat<f64>)> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::svd::{ComputeSvdVectors, svd, svd_scratch};
    let (k, m) = (a.nrows(), a.ncols());
    if !(0..m).all(|c| a.col(c).iter().all(|v| v.is_finite())) {
        return None;
    }
    let par = faer::Par::Seq;
    let mut s = faer::diag::Diag::<f64>::zeros(k.min(m));
    let mut v = if vectors { Mat::<f64>::zeros(m, m) } else { Mat::<f64>::zeros(0, 0) };
    let cv = if vectors { ComputeSvdVectors::Full } else { ComputeSvdVectors::No };
    let mut mem = MemBuffer::new(svd_scratch::<f64>(k, m, ComputeSvdVectors::No, cv, par, Default::default()));
    let vm = if vectors { Some(v.as_mut()) } else { None };
    svd(a, s.as_mut(), None, vm, par, MemStack::new(&mut mem), Default::default()).ok()?;
    let mut sv: Vec<f64> = s.column_vector().iter().copied().collect();
    sv.resize(m, 0.0);
    Some((sv, v))
}

/// Singular values and right singular vectors of a small `k × m` matrix by one-sided Jacobi
/// rotations (Hestenes 1958): the columns of `U Σ = A V` are made orthogonal pair by pair,
/// with `V` the product of the rotations. Each rotation zeroes the inner product of two
/// columns; sweeps repeat until every pair is orthogonal to rounding
/// (`|aᵢᵀaⱼ| ≤ √k·ε‖aᵢ‖‖aⱼ‖`, or a column below `ε‖A‖`: noise, a zero singular value).
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
    // Orthogonal to rounding: a computed inner product of length k is only good to about
    // √k·ε (LAPACK's dgesvj uses the same), so a tighter test may never be met.
    let tol = f64::EPSILON * (k.max(1) as f64).sqrt();
    for _sweep in 0..60 {
        let mut rotated = false;
        for (c, nc) in norms.iter_mut().enumerate() {
            *nc = col_dot(&u, c, c);
        }
        // A column below ε·‖A‖ is rounding noise (a zero singular value, whatever the rank
        // tolerance): rotating it against the others only stirs the noise.
        let noise = f64::EPSILON * f64::EPSILON * norms.iter().fold(0.0f64, |a, v| a.max(*v));
        for i in 0..m {
            for j in i + 1..m {
                let (alpha, beta) = (norms[i], norms[j]);
                if alpha.min(beta) <= noise {
                    continue;
                }
                let gamma = col_dot(&u, i, j);
                if gamma == 0.0 || gamma.abs() <= tol * (alpha * beta).sqrt() {
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
