//! Parameter statistics: covariance, standard errors, t and p values.
//!
//! With the weighted Jacobian `J = W ∂f/∂θ` of *all* parameters at the solution
//! (the unreduced Jacobian `[∂f/∂b_k | φ_j]`, scaled by `1/σᵢ`), the covariance is
//!
//! ```text
//! Cov(θ) = s² (JᵀJ)⁻¹ = s² V Σ⁻² Vᵀ,   s² = RSS/(n − p − q),
//! ```
//!
//! computed from the column-equilibrated Jacobian `J_s = J D⁻¹`, `D = diag(‖J e_c‖₂)` (unit
//! columns), and its thin SVD `J_s = U Σ Vᵀ` (never by inverting `JᵀJ`):
//!
//! ```text
//! Cov(θ) = s² D⁻¹ (J_sᵀJ_s)⁻¹ D⁻¹ = s² D⁻¹ V Σ⁻² Vᵀ D⁻¹.
//! ```
//!
//! Standard errors, t values and correlations do not depend on the units of the parameters
//! (a column scaling of `J`), and neither do the rank decision and the reported condition
//! number, which are those of `J_s`: a decay time of 2.5e-12 s has the same statistics as one of
//! 2.5 ps. (Column equilibration is within a factor `√m` of the best diagonal scaling for the
//! condition number: van der Sluis 1969.) With few parameters the SVD is that of the small
//! triangular factor of a pivoted QR `J_s Π = Q R` (σ(J_s) = σ(R)) by one-sided Jacobi, with
//! many it is faer's (`linalg/svd.rs`). This is the convention of R `nls` and of
//! lmfit with `scale_covar=True`: σ only sets the relative weights, the overall scale comes
//! from the residuals. If `J_s` is numerically rank deficient (`σ_min ≤ ε·max(n, m)·σ_max`,
//! or a zero column) no covariance is reported. Two-sided p values use Student's t with
//! `n − p − q` degrees of freedom: `P(|T| > |t|) = I_{ν/(ν+t²)}(ν/2, ½)` with the regularized
//! incomplete beta `I`.

use crate::linalg::svd::{QR_MAX_COLS, SafeQr, equilibrated_tall_qr, safe_column_norms, safe_tall_qr, small_svd};
#[cfg(test)]
use crate::linalg::svd::faer_svd;
#[cfg(test)]
use crate::linalg::svd::{jacobi_svd, tall_qr};
pub use crate::linalg::svd::tall_singular_values;
use faer::{Mat, MatRef};

mod distributions;
mod weights;

pub use distributions::*;
pub use weights::{sigma_from_weights, to_absolute_sigma};

/// Covariance-derived statistics of all parameters.
#[derive(Debug, Clone)]
#[non_exhaustive]
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
    /// Numerical rank of the column-equilibrated Jacobian `J D⁻¹` (columns of unit 2-norm; a
    /// zero column of `J` counts as deficient).
    pub rank: usize,
    /// 2-norm condition number `σ_max/σ_min` of the column-equilibrated Jacobian `J D⁻¹`, not
    /// of `J` itself (∞ if singular): independent of the parameters' units, it measures how
    /// well the standard errors are determined. `J`'s own condition number also grows with the
    /// spread of the column norms, which changes no standard error.
    pub condition_number: f64,
}

impl ParamStats {
    /// t and p values NaN, one per standard error (statistics computed without them).
    pub(crate) fn fill_tests_with_nan(&mut self) {
        let m = self.std_errors.len();
        self.t_values = vec![f64::NAN; m];
        self.p_values = vec![f64::NAN; m];
    }
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
    let Some((s, v, d)) = equilibrated_svd(j) else {
        return fail(0, f64::INFINITY);
    };
    let smax = s.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let smin = s.iter().fold(f64::INFINITY, |a, v| a.min(v.abs()));
    let tol = f64::EPSILON * (n_obs.max(n).max(m) as f64) * smax;
    let zero_cols = d.iter().filter(|d| **d == 0.0).count();
    let rank = s.iter().filter(|v| v.abs() > tol).count().min(m - zero_cols);
    let cond = if smin > 0.0 && zero_cols == 0 { smax / smin } else { f64::INFINITY };
    if rank < m {
        return fail(rank, cond);
    }
    let s2 = if dof > 0 { rss / dof as f64 } else { f64::NAN };
    // C_s = V Σ⁻² Vᵀ = (J_sᵀJ_s)⁻¹; Cov = s² D⁻¹ C_s D⁻¹. The standard errors and
    // correlations come from C_s (as s √(C_s)_cc / d_c and (C_s)_ab / √((C_s)_aa (C_s)_bb)),
    // not through Cov, whose entries can leave the range of f64 at extreme units when theirs
    // do not.
    // `cov` holds C_s first, then becomes Cov in place.
    let mut cov = if m > QR_MAX_COLS {
        let x = Mat::from_fn(m, m, |a, k| v[(a, k)] / s[k]);
        &x * x.transpose()
    } else {
        let mut cs = Mat::zeros(m, m);
        for a in 0..m {
            for b in 0..=a {
                let mut acc = 0.0;
                for k in 0..m {
                    acc += v[(a, k)] * v[(b, k)] / (s[k] * s[k]);
                }
                cs[(a, b)] = acc;
                cs[(b, a)] = acc;
            }
        }
        cs
    };
    let root: Vec<f64> = (0..m).map(|i| cov[(i, i)].max(0.0).sqrt()).collect();
    let corr = extras.then(|| Mat::from_fn(m, m, |a, b| cov[(a, b)] / (root[a] * root[b])));
    for a in 0..m {
        for b in 0..=a {
            let c = s2 * (cov[(a, b)] / d[a]) / d[b];
            cov[(a, b)] = c;
            cov[(b, a)] = c;
        }
    }
    let sd = s2.sqrt();
    let se: Vec<f64> = (0..m).map(|i| sd * root[i] / d[i]).collect();
    let Some(corr) = corr else {
        return ParamStats {
            covariance: Some(cov),
            correlation: None,
            std_errors: se,
            t_values: Vec::new(),
            p_values: Vec::new(),
            rank,
            condition_number: cond,
        };
    };
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

/// The SVD `J D⁻¹ = U Σ Vᵀ` of the column-equilibrated `n × m` matrix (`D = diag(d)`,
/// `d_c = ‖J e_c‖₂`; a zero column is left zero and has `d_c = 0`): returns `σ` (in no particular
/// order), `V` (`m × m`) and `d`. `None` if an entry is not finite or the SVD fails.
/// A tall `J` with up to [`QR_MAX_COLS`] columns through the equilibrated pivoted QR
/// `J D⁻¹ Π = Q R` and the SVD `R = U Σ Wᵀ` (so that `J D⁻¹ = (Q U) Σ (Π W)ᵀ` and `V = Π W`),
/// by one-sided Jacobi or faer (see [`crate::linalg::svd`]); others by the SVD of `J D⁻¹`.
fn equilibrated_svd(j: MatRef<'_, f64>) -> Option<(Vec<f64>, Mat<f64>, Vec<f64>)> {
    let (n, m) = (j.nrows(), j.ncols());
    if m <= QR_MAX_COLS && n > 2 * m {
        let (qr, r, d) = equilibrated_tall_qr(j)?;
        let (s, w) = small_svd(r.as_ref(), true)?;
        let mut v = Mat::zeros(m, s.len());
        for (row, &pr) in qr.perm().iter().enumerate() {
            for c in 0..s.len() {
                v[(pr, c)] = w[(row, c)];
            }
        }
        return Some((s, v, d));
    }
    if !(0..m).all(|c| j.col(c).iter().all(|v| v.is_finite())) {
        return None;
    }
    // Short (such as a compact Jacobian) or many columns: scale J itself.
    let d = match safe_column_norms(j) {
        Some(d) => d,
        None => (0..m).map(|c| j.col(c).norm_l2()).collect(),
    };
    if !d.iter().all(|d| d.is_finite()) {
        return None;
    }
    let js = Mat::from_fn(n, m, |i, c| if d[c] > 0.0 { j[(i, c)] / d[c] } else { 0.0 });
    let (s, v) = small_svd(js.as_ref(), true)?;
    Some((s, v, d))
}

/// Standard errors `s √diag((JᵀJ)⁻¹)`, `s² = rss/dof`, from a pivoted QR `J Π = Q R`:
/// `(JᵀJ)⁻¹ = Π R⁻¹ R⁻ᵀ Πᵀ`, so the error of parameter `Π e_i` is `s` times the norm of row `i`
/// of `R⁻¹`. Cheaper than the SVD of [`param_stats_with`] (what the batch needs of a fit), and
/// only for a clearly well-conditioned column-equilibrated `J D⁻¹` (`D = diag(‖J e_c‖₂)`, see
/// [`param_stats_with`]), whose triangular factor is `R_s = R D_Π⁻¹` (`D_Π = Πᵀ D Π`): returns
/// `None` (use the SVD) unless `κ_F(R_s) = ‖R_s‖_F ‖R_s⁻¹‖_F = √m ‖D_Π R⁻¹‖_F ≤ 1e8`. Since
/// `κ₂ ≤ κ_F`, an accepted `J` has a (scaled) condition number of at most 1e8, far below any
/// rank tolerance and below the ill-conditioning warning's 1e10, and the two routes agree to
/// rounding (tested). Like the SVD route it does not depend on the units of the parameters.
pub(crate) fn std_errors_qr(j: MatRef<'_, f64>, rss: f64, dof: usize) -> Option<Vec<f64>> {
    let (n, m) = (j.nrows(), j.ncols());
    if m == 0 || n < m || dof == 0 {
        return None;
    }
    // R of J P (P: exact powers of two, the identity but at extreme scales); ‖r_k‖ = d_{Π k}.
    let SafeQr { qr, r, norms, p2 } = safe_tall_qr(j)?;
    let mut x = vec![0.0; m * m];
    let mut se = vec![0.0; m];
    let perm = qr.perm();
    let accepted = triangular_std_errors(m, |i, c| r[(i, c)], &norms, rss / dof as f64, &mut x, |i, e| {
        let pi = perm[i];
        se[pi] = e * p2.as_ref().map_or(1.0, |p2| p2[pi]);
    });
    (accepted && se.iter().all(|v| v.is_finite())).then_some(se)
}

/// The standard errors of the columns of `J Π = Q R` from its upper-triangular `m×m` factor
/// `R` (read as `r(i, c)`): `s·‖row i of R⁻¹‖` for column `i`, `s² = s2`, handed to
/// `put(i, error)`, with `x` (at least `m²`) as scratch for `R⁻¹`. Returns whether they are to
/// be used: `R` has no zero on its diagonal and `κ_F(R D⁻¹)² = m·Σ_i norms_i²·‖row i of R⁻¹‖²
/// ≤ 1e16` (`norms`: `R`'s column norms; NaN or ∞ is declined too). Shared by
/// [`std_errors_qr`] and the variable projection's factors
/// (`VarProProblem::lean_std_errors`), so both routes take the same decision.
pub(crate) fn triangular_std_errors(
    m: usize,
    r: impl Fn(usize, usize) -> f64,
    norms: &[f64],
    s2: f64,
    x: &mut [f64],
    mut put: impl FnMut(usize, f64),
) -> bool {
    if !(0..m).all(|c| r(c, c) != 0.0) {
        return false;
    }
    // X = R⁻¹ (upper triangular, column-major in `x`) column by column: X[c, c] = 1/r_cc and,
    // upwards, X[i, c] = −(Σ_{k=i+1..=c} r_ik X[k, c]) / r_ii.
    for c in 0..m {
        x[c * m + c] = 1.0 / r(c, c);
        for i in (0..c).rev() {
            let mut acc = 0.0;
            for k in i + 1..=c {
                acc += r(i, k) * x[c * m + k];
            }
            x[c * m + i] = -acc / r(i, i);
        }
    }
    // κ_F² = ‖R_s‖_F² ‖D R⁻¹‖_F² with ‖R_s‖_F² = m (unit columns).
    let mut inv_f2 = 0.0;
    for (i, &ni) in norms.iter().enumerate().take(m) {
        let row: f64 = (i..m).map(|c| x[c * m + i] * x[c * m + i]).sum();
        inv_f2 += ni * ni * row;
        put(i, (s2 * row).sqrt());
    }
    let kappa_f2 = m as f64 * inv_f2;
    !(kappa_f2.is_nan() || kappa_f2 > 1e16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The QR route to standard errors agrees with the SVD one on well-conditioned matrices
    /// and declines ill-conditioned ones, whatever the column scales (parameter units: here
    /// 10^(e·c) for column c, out to squares that overflow and underflow), and both are
    /// invariant to them.
    #[test]
    fn standard_errors_by_qr_match_the_svd() {
        let mut seed = 3u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        for (n, m, e) in [(6, 5, 1), (5, 5, 1), (40, 3, 1), (9, 1, 1), (200, 6, 1), (6, 5, 12), (40, 3, -12), (200, 6, 12)]
            .into_iter()
            .chain([(6, 4, 45), (40, 3, -70), (200, 6, 40), (3, 3, -100)])
        {
            let mut j = Mat::<f64>::zeros(n, m);
            for c in 0..m {
                for i in 0..n {
                    j[(i, c)] = next();
                }
            }
            let unscaled = param_stats_with(j.as_ref(), n, 3.7, 11, &vec![1.0; m], false);
            let unscaled_qr = std_errors_qr(j.as_ref(), 3.7, 11).expect("well conditioned");
            let scale = |c: usize| 10f64.powi(e * c as i32);
            for c in 0..m {
                for i in 0..n {
                    j[(i, c)] *= scale(c);
                }
            }
            let svd = param_stats_with(j.as_ref(), n, 3.7, 11, &vec![1.0; m], false);
            assert_eq!(svd.rank, m, "n={n} m={m} e={e}");
            assert!((svd.condition_number - unscaled.condition_number).abs() <= 1e-12 * unscaled.condition_number);
            let qr = std_errors_qr(j.as_ref(), 3.7, 11).expect("well conditioned");
            for c in 0..m {
                let (a, b) = (qr[c], svd.std_errors[c]);
                assert!((a - b).abs() <= 1e-12 * b, "n={n} m={m} e={e}: {a} vs {b}");
                let u = unscaled.std_errors[c] / scale(c);
                assert!((b - u).abs() <= 1e-12 * u, "n={n} m={m} e={e}: {b} vs {u}");
                let u = unscaled_qr[c] / scale(c);
                assert!((a - u).abs() <= 1e-12 * u, "n={n} m={m} e={e}: {a} vs {u}");
            }
            // A nearly dependent column: declined (the SVD decides rank and errors).
            if m > 1 {
                for i in 0..n {
                    j[(i, m - 1)] = (j[(i, 0)] * 3.0 + 1e-12 * next() * scale(0)) * (scale(m - 1) / scale(0));
                }
                assert!(std_errors_qr(j.as_ref(), 3.7, 11).is_none(), "n={n} m={m} e={e}");
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

    /// One-sided Jacobi converges on an exactly singular matrix (two equal columns): the
    /// rounding noise left in the annihilated column must not keep it rotating forever.
    #[test]
    fn jacobi_svd_converges_on_equal_columns() {
        for k in [3usize, 5, 40] {
            let a = Mat::from_fn(k, 3, |r, c| {
                let t = r as f64 * 0.1;
                if c == 2 { 1.0 } else { (-t / 2.5).exp() }
            });
            let (_, r) = tall_qr(a.as_ref());
            let (s, _) = jacobi_svd(r.as_ref()).expect("converges");
            let big = s.iter().fold(0.0f64, |x, v| x.max(*v));
            assert_eq!(s.iter().filter(|v| **v > 1e-13 * big).count(), 2, "k = {k}");
            let (s, _) = jacobi_svd(a.as_ref()).expect("converges");
            assert_eq!(s.iter().filter(|v| **v > 1e-13 * big).count(), 2, "k = {k}");
        }
    }

    /// A NaN or ∞ anywhere: no statistics, by either route.
    #[test]
    fn non_finite_jacobians_give_no_statistics() {
        for (n, m) in [(40, 3), (6, 5), (300, 30), (200, 70)] {
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                for (r, c) in [(0, 0), (n - 1, m - 1), (n / 2, m / 2)] {
                    let mut j = Mat::from_fn(n, m, |i, k| ((i * 7 + k * 13) % 11) as f64 - 5.0 + if i == k { 9.0 } else { 0.0 });
                    j[(r, c)] = bad;
                    let st = param_stats_with(j.as_ref(), n, 1.0, 10, &vec![1.0; m], true);
                    assert!(st.covariance.is_none() && st.std_errors.iter().all(|v| v.is_nan()), "{n}x{m} {bad} at {r},{c}");
                    assert_eq!(st.rank, 0);
                    assert!(std_errors_qr(j.as_ref(), 1.0, 10).is_none(), "{n}x{m} {bad} at {r},{c}");
                    assert!(tall_singular_values(j.as_ref()).is_none(), "{n}x{m} {bad} at {r},{c}");
                }
            }
        }
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
    /// Timing harness (not a timed test: it asserts nothing about time). Run with
    /// `cargo test --release -p sepfit --lib stats::tests::timing_harness -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn timing_harness() {
        use std::time::Instant;
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let large = std::env::var("SEPFIT_TIMING_LARGE").map_or(true, |v| v != "0");
        // (n, m, bumps): random entries, or a linear model of m Gaussian bumps on n points
        // (width two spacings: the Jacobian of 500 linear parameters, condition number ~1e3).
        let shapes: &[(usize, usize, bool)] = if large {
            &[(256, 5, false), (6, 5, false), (1000, 500, false), (1000, 500, true)]
        } else {
            &[(256, 5, false), (6, 5, false)]
        };
        for &(n, m, bumps) in shapes {
            let j = if bumps {
                Mat::from_fn(n, m, |i, c| {
                    let u = (i as f64 / (n - 1) as f64 - c as f64 / (m - 1) as f64) * (m - 1) as f64 / 2.0;
                    (-u * u).exp()
                })
            } else {
                Mat::from_fn(n, m, |i, c| rnd() * 10f64.powi(c as i32 % 3) + if i == c { 1.0 } else { 0.0 })
            };
            let est = vec![1.0; m];
            let (reps, tries) = if m > 50 { (1, 1) } else { (20_000, 3) };
            let time = |f: &dyn Fn()| {
                let mut best = f64::INFINITY;
                for _ in 0..tries {
                    let t0 = Instant::now();
                    for _ in 0..reps {
                        f();
                    }
                    best = best.min(t0.elapsed().as_secs_f64() / reps as f64);
                }
                best
            };
            let full = time(&|| {
                std::hint::black_box(param_stats_with(std::hint::black_box(j.as_ref()), n, 3.7, n.max(m + 1) - m, &est, true));
            });
            if m > 50 {
                println!("n = {n:5}, m = {m:4}, bumps {bumps}: param_stats (extras) {:12.3} us", full * 1e6);
                let qr = time(&|| {
                    std::hint::black_box(std_errors_qr(std::hint::black_box(j.as_ref()), 3.7, n - m));
                });
                println!("n = {n:5}, m = {m:4}, bumps {bumps}: std_errors_qr {:12.3} us", qr * 1e6);
                continue;
            }
            let lean = time(&|| {
                std::hint::black_box(param_stats_with(std::hint::black_box(j.as_ref()), n, 3.7, n.max(m + 1) - m, &est, false));
            });
            let qr = time(&|| {
                std::hint::black_box(std_errors_qr(std::hint::black_box(j.as_ref()), 3.7, n.max(m + 1) - m));
            });
            println!(
                "n = {n:5}, m = {m:4}: param_stats (extras) {:12.3} us   (lean) {:12.3} us   std_errors_qr {:12.3} us",
                full * 1e6,
                lean * 1e6,
                qr * 1e6
            );
        }
        // Crossover of the SVD routes (JACOBI_MAX_COLS): pivoted QR + Jacobi of R, faer of the
        // tall J, pivoted QR + faer of R.
        for m in [5, 8, 12, 16, 20, 24, 32, 48, 64] {
            let n = 256usize.max(4 * m);
            let j = Mat::from_fn(n, m, |i, c| rnd() + if i == c { 1.0 } else { 0.0 });
            let reps = 20_000 / m;
            let time = |f: &dyn Fn()| {
                let mut best = f64::INFINITY;
                for _ in 0..3 {
                    let t0 = Instant::now();
                    for _ in 0..reps {
                        f();
                    }
                    best = best.min(t0.elapsed().as_secs_f64() / reps as f64);
                }
                best * 1e6
            };
            let jac = time(&|| {
                let (_, r) = crate::linalg::svd::tall_qr(std::hint::black_box(j.as_ref()));
                std::hint::black_box(jacobi_svd(r.as_ref()));
            });
            let fa = time(&|| {
                std::hint::black_box(faer_svd(std::hint::black_box(j.as_ref()), true));
            });
            let qf = time(&|| {
                let (_, r) = crate::linalg::svd::tall_qr(std::hint::black_box(j.as_ref()));
                std::hint::black_box(faer_svd(r.as_ref(), true));
            });
            println!("crossover n = {n:5}, m = {m:3}: QR+Jacobi {jac:10.2} us   faer(J) {fa:10.2} us   QR+faer(R) {qf:10.2} us");
        }
    }
}

#[cfg(test)]
mod quantile_tests {
    use super::*;

    /// Quantiles against closed forms (ν = 1: tan(π(1−α)/2); ν = 2: √(2u²/(1−u²)), u = 1−α),
    /// tabulated values, and their own tail functions.
    #[test]
    fn quantiles_invert_the_tails() {
        for alpha in [0.5, 0.1, 0.05, 0.01, 1e-4] {
            let t1 = (std::f64::consts::PI * (1.0 - alpha) / 2.0).tan();
            assert!((student_t_two_sided_quantile(alpha, 1.0) - t1).abs() < 1e-12 * t1, "alpha={alpha}");
            let u: f64 = 1.0 - alpha;
            let t2 = (2.0 * u * u / (1.0 - u * u)).sqrt();
            assert!((student_t_two_sided_quantile(alpha, 2.0) - t2).abs() < 1e-12 * t2, "alpha={alpha}");
            for dof in [3.0, 10.0, 995.0, 1e4] {
                let t = student_t_two_sided_quantile(alpha, dof);
                let got = student_t_two_sided_p(t, dof);
                // The tail is good to ~1e-16·ν (ln Γ cancellation), the quantile inverts it.
                assert!((got - alpha).abs() < 1e-15 * dof.max(100.0) * alpha.max(1e-3), "alpha={alpha} dof={dof}: p(t = {t}) = {got}");
            }
            let z = normal_two_sided_quantile(alpha);
            assert!((normal_two_sided_p(z) - alpha).abs() < 1e-14 * alpha.max(1e-2), "alpha={alpha}");
        }
        // With a million degrees of freedom the tail itself is good to ~2e-11 (ln Γ of 5e5
        // cancels in the incomplete beta's prefactor): the quantile to ~5e-10 (R: qt(0.75, 1e6)).
        assert!((student_t_two_sided_quantile(0.5, 1e6) - 0.674_489_995_531_087).abs() < 1e-9);
        // R: qnorm(0.975), qt(0.975, 10), qt(0.995, 3).
        assert!((normal_two_sided_quantile(0.05) - 1.959963984540054).abs() < 1e-14);
        assert!((student_t_two_sided_quantile(0.05, 10.0) - 2.228138851986274).abs() < 1e-13);
        assert!((student_t_two_sided_quantile(0.01, 3.0) - 5.840909309733351).abs() < 1e-12);
        // R: 2*pnorm(-3), 2*pnorm(-0.5).
        assert!((normal_two_sided_p(3.0) - 0.002699796063260191).abs() < 1e-17);
        assert!((normal_two_sided_p(-0.5) - 0.6170750774519738).abs() < 1e-15);
        assert!(student_t_two_sided_quantile(0.05, 0.0).is_nan() && normal_two_sided_quantile(1.5).is_nan());
    }
}
