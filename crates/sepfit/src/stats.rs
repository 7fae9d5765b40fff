//! Parameter statistics: covariance, standard errors, t and p values.
//!
//! With the weighted Jacobian `J = W ∂f/∂θ` of *all* parameters at the solution
//! (the unreduced Jacobian `[∂f/∂b_k | φ_j]`, scaled by `1/σᵢ`), the covariance is
//!
//! ```text
//! Cov(θ) = s² (JᵀJ)⁻¹ = s² V Σ⁻² Vᵀ,   s² = RSS/(n − p − q),
//! ```
//!
//! computed from the thin SVD `J = U Σ Vᵀ` (never by inverting `JᵀJ`), obtained as the SVD of
//! the small triangular factor of a pivoted QR `J Π = Q R` (σ(J) = σ(R)). This is the
//! convention of R `nls` and of lmfit with `scale_covar=True`: σ only sets the
//! relative weights, the overall scale comes from the residuals. If `J` is
//! numerically rank deficient (`σ_min ≤ ε·max(n, m)·σ_max`) no covariance is
//! reported. Two-sided p values use Student's t with `n − p − q` degrees of freedom:
//! `P(|T| > |t|) = I_{ν/(ν+t²)}(ν/2, ½)` with the regularized incomplete beta `I`.

use crate::qr::PivotedQr;
use faer::{Mat, MatRef};

/// `ln Γ(x)` for `x > 0` (Lanczos approximation, g = 7, 9 terms; relative error ~1e-15).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx)
        let s = (std::f64::consts::PI * x).sin();
        return (std::f64::consts::PI / s.abs()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Continued fraction for the incomplete beta (modified Lentz), valid for `x < (a+1)/(a+b+2)`.
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=1000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// Regularized incomplete beta function `I_x(a, b)` for `a, b > 0`, `0 ≤ x ≤ 1`
/// (NaN outside the domain). Continued fraction as in Numerical Recipes §6.4.
pub fn regularized_incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    regularized_incomplete_beta_with(a, b, x, ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b))
}

/// [`regularized_incomplete_beta`] given `ln_inv_beta = ln Γ(a+b) − ln Γ(a) − ln Γ(b)`
/// (computed once for many `x` with the same `a`, `b`).
fn regularized_incomplete_beta_with(a: f64, b: f64, x: f64, ln_inv_beta: f64) -> f64 {
    if !(a > 0.0 && b > 0.0 && (0.0..=1.0).contains(&x)) {
        return f64::NAN;
    }
    if x == 0.0 || x == 1.0 {
        return x;
    }
    let ln_front = ln_inv_beta + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_cf(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_cf(b, a, 1.0 - x) / b
    }
}

/// Two-sided p value `P(|T| > |t|)` of Student's t with `dof > 0` degrees of freedom.
pub fn student_t_two_sided_p(t: f64, dof: f64) -> f64 {
    if t.is_nan() || !(dof > 0.0) {
        return f64::NAN;
    }
    if t.is_infinite() {
        return 0.0;
    }
    regularized_incomplete_beta(0.5 * dof, 0.5, dof / (dof + t * t))
}

/// [`student_t_two_sided_p`] for many `t` with the same degrees of freedom.
pub fn student_t_two_sided_ps(t: &[f64], dof: f64) -> Vec<f64> {
    let (a, b) = (0.5 * dof, 0.5);
    let ln_inv_beta = if dof > 0.0 { ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) } else { f64::NAN };
    t.iter()
        .map(|&t| {
            if t.is_nan() || !(dof > 0.0) {
                f64::NAN
            } else if t.is_infinite() {
                0.0
            } else {
                regularized_incomplete_beta_with(a, b, dof / (dof + t * t), ln_inv_beta)
            }
        })
        .collect()
}

/// Covariance-derived statistics of all parameters.
#[derive(Debug, Clone)]
pub struct ParamStats {
    /// Covariance matrix `s² (JᵀJ)⁻¹` (`None` if `J` is rank deficient).
    pub covariance: Option<Mat<f64>>,
    /// Correlation matrix (`None` if no covariance).
    pub correlation: Option<Mat<f64>>,
    /// Standard errors (NaN if no covariance).
    pub std_errors: Vec<f64>,
    /// `estimate / std_error`.
    pub t_values: Vec<f64>,
    /// Two-sided p values from Student's t with `dof` degrees of freedom.
    pub p_values: Vec<f64>,
    /// Numerical rank of `J`.
    pub rank: usize,
    /// 2-norm condition number `σ_max/σ_min` of `J` (∞ if singular).
    pub condition_number: f64,
}

/// Pivoted QR `A Π = Q R` of a tall `n × m` matrix; returns the factorisation and `R`
/// (`min(n, m) × m`) as a small dense matrix, whose singular values are those of `A`.
fn tall_qr(a: MatRef<'_, f64>) -> (PivotedQr, Mat<f64>) {
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

/// Computes [`ParamStats`] from the weighted full Jacobian `j` (`n × m`), the
/// residual sum of squares, the degrees of freedom and the estimates.
pub fn param_stats(j: MatRef<'_, f64>, rss: f64, dof: usize, estimates: &[f64]) -> ParamStats {
    param_stats_n(j, j.nrows(), rss, dof, estimates)
}

/// [`param_stats`] from any matrix with the same `JᵀJ` as the `n_obs × m` weighted Jacobian,
/// such as its compact form `QᵀJ` (fewer rows); `n_obs` sets the rank tolerance
/// `ε·max(n_obs, m)·σ_max` as for `J` itself.
pub fn param_stats_n(j: MatRef<'_, f64>, n_obs: usize, rss: f64, dof: usize, estimates: &[f64]) -> ParamStats {
    param_stats_with(j, n_obs, rss, dof, estimates, true)
}

/// [`param_stats_n`]; without `extras` only the covariance, standard errors, rank and
/// condition number are computed (correlation `None`, t and p values empty): what a batch of
/// many curves reports.
pub(crate) fn param_stats_with(
    j: MatRef<'_, f64>,
    n_obs: usize,
    rss: f64,
    dof: usize,
    estimates: &[f64],
    extras: bool,
) -> ParamStats {
    let m = j.ncols();
    let n = j.nrows();
    let nan = || vec![f64::NAN; m];
    let fail = |rank, cond| ParamStats {
        covariance: None,
        correlation: None,
        std_errors: nan(),
        t_values: nan(),
        p_values: nan(),
        rank,
        condition_number: cond,
    };
    if m == 0 {
        return ParamStats {
            covariance: Some(Mat::zeros(0, 0)),
            correlation: Some(Mat::zeros(0, 0)),
            std_errors: vec![],
            t_values: vec![],
            p_values: vec![],
            rank: 0,
            condition_number: 1.0,
        };
    }
    if !(0..m).all(|c| j.col(c).iter().all(|v| v.is_finite())) {
        return fail(0, f64::INFINITY);
    }
    // J Π = Q R (pivoted Householder QR), then the SVD of the small R = U Σ Wᵀ:
    // J = (Q U) Σ (Π W)ᵀ, so σ(J) = σ(R) and V = Π W.
    // A short matrix (such as a compact Jacobian) goes to Jacobi directly.
    let (s, v) = if n <= 2 * m {
        match jacobi_svd(j) {
            Some(sv) => sv,
            None => return fail(0, f64::INFINITY),
        }
    } else {
        let (qr, r) = tall_qr(j);
        let Some((s, w)) = jacobi_svd(r.as_ref()) else {
            return fail(0, f64::INFINITY);
        };
        let mut v = Mat::zeros(m, s.len());
        for (row, &pr) in qr.perm().iter().enumerate() {
            for c in 0..s.len() {
                v[(pr, c)] = w[(row, c)];
            }
        }
        (s, v)
    };
    let smax = s.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let smin = s.iter().fold(f64::INFINITY, |a, v| a.min(v.abs()));
    let tol = f64::EPSILON * (n_obs.max(n).max(m) as f64) * smax;
    let rank = s.iter().filter(|v| v.abs() > tol).count();
    let cond = if smin > 0.0 { smax / smin } else { f64::INFINITY };
    if rank < m {
        return fail(rank, cond);
    }
    let s2 = if dof > 0 { rss / dof as f64 } else { f64::NAN };
    let mut cov = Mat::zeros(m, m);
    for a in 0..m {
        for b in 0..=a {
            let mut acc = 0.0;
            for k in 0..m {
                acc += v[(a, k)] * v[(b, k)] / (s[k] * s[k]);
            }
            cov[(a, b)] = s2 * acc;
            cov[(b, a)] = s2 * acc;
        }
    }
    let se: Vec<f64> = (0..m).map(|i| cov[(i, i)].max(0.0).sqrt()).collect();
    if !extras {
        return ParamStats {
            covariance: Some(cov),
            correlation: None,
            std_errors: se,
            t_values: Vec::new(),
            p_values: Vec::new(),
            rank,
            condition_number: cond,
        };
    }
    let mut corr = Mat::zeros(m, m);
    for a in 0..m {
        for b in 0..m {
            corr[(a, b)] = cov[(a, b)] / (se[a] * se[b]);
        }
    }
    let t: Vec<f64> = estimates.iter().zip(&se).map(|(e, s)| e / s).collect();
    let p = student_t_two_sided_ps(&t, dof as f64);
    ParamStats {
        covariance: Some(cov),
        correlation: Some(corr),
        std_errors: se,
        t_values: t,
        p_values: p,
        rank,
        condition_number: cond,
    }
}

/// Standard errors `s √diag((JᵀJ)⁻¹)`, `s² = rss/dof`, from a pivoted QR `J Π = Q R`:
/// `(JᵀJ)⁻¹ = Π R⁻¹ R⁻ᵀ Πᵀ`, so the error of parameter `Π e_i` is `s` times the norm of row `i`
/// of `R⁻¹`. Cheaper than the SVD of [`param_stats_with`] (what the batch needs of a fit), and
/// only for a clearly well-conditioned `J`: returns `None` (use the SVD) unless `R` has full
/// rank with `|r_mm| > 1e-8 |r_11|`. Then `σ_min(J) ≥ |r_mm| / (2^{m−1} √m)` is far above any
/// rank tolerance, and the two routes agree to rounding (tested).
pub(crate) fn std_errors_qr(j: MatRef<'_, f64>, rss: f64, dof: usize) -> Option<Vec<f64>> {
    let (n, m) = (j.nrows(), j.ncols());
    if m == 0 || n < m || dof == 0 {
        return None;
    }
    let (qr, r) = tall_qr(j);
    let r00 = r[(0, 0)].abs();
    if qr.rank() < m || !(r[(m - 1, m - 1)].abs() > 1e-8 * r00) || !r00.is_finite() {
        return None;
    }
    // X = R⁻¹ (upper triangular) column by column: X[c, c] = 1/r_cc and, upwards,
    // X[i, c] = −(Σ_{k=i+1..=c} r_ik X[k, c]) / r_ii.
    let mut x = Mat::<f64>::zeros(m, m);
    for c in 0..m {
        x[(c, c)] = 1.0 / r[(c, c)];
        for i in (0..c).rev() {
            let mut acc = 0.0;
            for k in i + 1..=c {
                acc += r[(i, k)] * x[(k, c)];
            }
            x[(i, c)] = -acc / r[(i, i)];
        }
    }
    let s2 = rss / dof as f64;
    let mut se = vec![0.0; m];
    for (i, &pi) in qr.perm().iter().enumerate() {
        let row: f64 = (i..m).map(|c| x[(i, c)] * x[(i, c)]).sum();
        se[pi] = (s2 * row).sqrt();
    }
    se.iter().all(|v| v.is_finite()).then_some(se)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The QR route to standard errors agrees with the SVD one on well-conditioned matrices
    /// and declines ill-conditioned ones.
    #[test]
    fn standard_errors_by_qr_match_the_svd() {
        let mut seed = 3u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        for &(n, m) in &[(6, 5), (5, 5), (40, 3), (9, 1), (200, 6)] {
            let mut j = Mat::<f64>::zeros(n, m);
            for c in 0..m {
                for i in 0..n {
                    j[(i, c)] = next() * 10f64.powi(c as i32);
                }
            }
            let est = vec![1.0; m];
            let svd = param_stats_with(j.as_ref(), n, 3.7, 11, &est, false);
            let qr = std_errors_qr(j.as_ref(), 3.7, 11).expect("well conditioned");
            for (a, b) in qr.iter().zip(&svd.std_errors) {
                assert!((a - b).abs() <= 1e-12 * b, "n={n} m={m}: {a} vs {b}");
            }
            // A nearly dependent column: declined (the SVD decides rank and errors).
            if m > 1 {
                for i in 0..n {
                    j[(i, m - 1)] = j[(i, 0)] * 3.0 + 1e-12 * next();
                }
                assert!(std_errors_qr(j.as_ref(), 3.7, 11).is_none());
            }
        }
    }

    #[test]
    fn p_values_in_bulk_equal_one_by_one() {
        for dof in [1.0, 3.0, 10.0, 251.0, 1e5] {
            let t = [0.0, 0.3, -1.7, 2.5, 12.0, -80.0, f64::INFINITY, f64::NAN];
            let bulk = student_t_two_sided_ps(&t, dof);
            for (x, p) in t.iter().zip(&bulk) {
                let one = student_t_two_sided_p(*x, dof);
                assert!(one.to_bits() == p.to_bits() || (one.is_nan() && p.is_nan()), "t = {x}, dof = {dof}");
            }
        }
    }

    /// One-sided Jacobi against faer's SVD: same singular values, `V` orthogonal, and
    /// `AV` has orthogonal columns of norms `σ`; also rank-deficient and graded matrices.
    #[test]
    fn jacobi_svd_matches_faer() {
        let mut seed = 5u64;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        for &(k, m, graded) in &[(6, 5, false), (5, 5, true), (3, 3, false), (8, 2, true), (4, 1, false)] {
            let mut a = Mat::from_fn(k, m, |_, _| rnd());
            if graded {
                for c in 0..m {
                    for r in 0..k {
                        a[(r, c)] *= 10f64.powi(-3 * c as i32);
                    }
                }
            }
            let (s, v) = jacobi_svd(a.as_ref()).unwrap();
            let mut ours = s.clone();
            ours.sort_by(|x, y| y.total_cmp(x));
            let theirs = a.as_ref().singular_values().unwrap();
            for (x, y) in ours.iter().zip(&theirs) {
                assert!((x - y).abs() <= 1e-13 * theirs[0] + 1e-12 * y, "{k}x{m}: {x} vs {y}");
            }
            let vtv = v.transpose() * &v;
            let av = &a * &v;
            for i in 0..m {
                assert!((av.col(i).norm_l2() - s[i]).abs() <= 1e-14 * theirs[0]);
                for j in 0..m {
                    let e = if i == j { 1.0 } else { 0.0 };
                    assert!((vtv[(i, j)] - e).abs() < 1e-14);
                    if i != j {
                        let d: f64 = (0..k).map(|r| av[(r, i)] * av[(r, j)]).sum();
                        assert!(d.abs() <= 1e-14 * theirs[0] * theirs[0]);
                    }
                }
            }
        }
        // Rank one: one nonzero singular value.
        let a = Mat::from_fn(5, 3, |r, c| (r as f64 + 1.0) * (c as f64 + 2.0));
        let (s, _) = jacobi_svd(a.as_ref()).unwrap();
        let big = s.iter().fold(0.0f64, |x, v| x.max(*v));
        assert_eq!(s.iter().filter(|v| **v > 1e-12 * big).count(), 1);
        assert!(jacobi_svd(Mat::from_fn(2, 2, |_, _| f64::NAN).as_ref()).is_none());
    }

    #[test]
    fn ln_gamma_known_values() {
        assert!((ln_gamma(1.0)).abs() < 1e-14);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-14);
        assert!((ln_gamma(10.0) - 362880f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn t_p_values_match_closed_forms() {
        for &t in &[0.0, 0.3, 1.0, 2.5, 10.0, 100.0] {
            // ν = 1: Cauchy, p = 1 − (2/π) atan|t|
            let p1 = 1.0 - 2.0 / std::f64::consts::PI * f64::atan(t);
            assert!((student_t_two_sided_p(t, 1.0) - p1).abs() < 1e-13 * p1.max(1e-3), "t={t}");
            // ν = 2: p = 1 − |t|/sqrt(2+t²)
            let p2 = 1.0 - t / (2.0 + t * t).sqrt();
            let got = student_t_two_sided_p(t, 2.0);
            assert!((got - p2).abs() <= 1e-12 * p2.max(1e-4), "t={t} {got} {p2}");
        }
        // Tabulated: t_{0.975, 10} = 2.228138851986274
        assert!((student_t_two_sided_p(2.228138851986274, 10.0) - 0.05).abs() < 1e-12);
    }
}
