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
    if !(a > 0.0 && b > 0.0 && (0.0..=1.0).contains(&x)) {
        return f64::NAN;
    }
    if x == 0.0 || x == 1.0 {
        return x;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
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
    r.as_ref().singular_values().ok()
}

/// Computes [`ParamStats`] from the weighted full Jacobian `j` (`n × m`), the
/// residual sum of squares, the degrees of freedom and the estimates.
pub fn param_stats(j: MatRef<'_, f64>, rss: f64, dof: usize, estimates: &[f64]) -> ParamStats {
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
    let k = n.min(m);
    let (qr, r) = tall_qr(j);
    let svd = match r.thin_svd() {
        Ok(s) => s,
        Err(_) => return fail(0, f64::INFINITY),
    };
    let mut s: Vec<f64> = (0..k).map(|i| svd.S()[i]).collect();
    s.resize(m, 0.0);
    let w = svd.V();
    let mut v = Mat::zeros(m, k);
    for (row, &pr) in qr.perm().iter().enumerate() {
        for c in 0..k {
            v[(pr, c)] = w[(row, c)];
        }
    }
    let smax = s.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let smin = s.iter().fold(f64::INFINITY, |a, v| a.min(v.abs()));
    let tol = f64::EPSILON * (n.max(m) as f64) * smax;
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
    let mut corr = Mat::zeros(m, m);
    for a in 0..m {
        for b in 0..m {
            corr[(a, b)] = cov[(a, b)] / (se[a] * se[b]);
        }
    }
    let t: Vec<f64> = estimates.iter().zip(&se).map(|(e, s)| e / s).collect();
    let p = t.iter().map(|t| student_t_two_sided_p(*t, dof as f64)).collect();
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

#[cfg(test)]
mod tests {
    use super::*;

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
