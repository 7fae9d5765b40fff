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

use crate::linalg::svd::{jacobi_svd, tall_qr};
pub use crate::linalg::svd::tall_singular_values;
use faer::{Mat, MatRef};

mod distributions;

pub use distributions::*;

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
    }
}
