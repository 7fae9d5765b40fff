//! Parameter statistics do not depend on the units of the parameters (a column scaling of the
//! Jacobian): the rank decision and the condition number are those of the column-equilibrated
//! Jacobian. And they are fast for hundreds of parameters.

use faer::Mat;
use faer::linalg::solvers::DenseSolveCore;
use sepfit::stats::{ParamStats, param_stats, param_stats_n};

/// The Jacobian of `y = a exp(−t/τ) + c` with respect to `(τ, a, c)` at `t = i·dt`, `i < n`.
fn decay_jacobian(n: usize, dt: f64, tau: f64, a: f64) -> Mat<f64> {
    Mat::from_fn(n, 3, |i, c| {
        let t = i as f64 * dt;
        let e = (-t / tau).exp();
        match c {
            0 => a * t / (tau * tau) * e,
            1 => e,
            _ => 1.0,
        }
    })
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

/// `y ~ a exp(−t/τ) + c`, 80 points over 8 ps, τ = 2.5 ps, a = 1.3, c = 0.2: in picoseconds and
/// in seconds, and with y (so a, c and the RSS) scaled by 1e15 and 1e-15. The standard errors
/// agree after unit conversion, and so do t values, correlations and the (scaled) condition
/// number, which is small: no rank deficiency, no ill-conditioning.
#[test]
fn standard_errors_do_not_depend_on_units() {
    let (n, rss) = (80, 3.1e-4);
    let dof = n - 3;
    let reference = {
        let j = decay_jacobian(n, 0.1, 2.5, 1.3);
        param_stats(j.as_ref(), rss, dof, &[2.5, 1.3, 0.2])
    };
    assert_eq!(reference.rank, 3);
    assert!(reference.condition_number < 100.0, "{}", reference.condition_number);
    assert!(reference.std_errors.iter().all(|s| s.is_finite() && *s > 0.0));
    // (time unit in ps, y scale): τ is in the time unit, a and c in units of y.
    for (time, yscale) in [(1.0, 1.0), (1e-12, 1.0), (1.0, 1e15), (1.0, 1e-15), (1e-12, 1e15), (1e-12, 1e-15)] {
        let tau = 2.5 * time;
        let j = decay_jacobian(n, 0.1 * time, tau, 1.3 * yscale);
        let est = [tau, 1.3 * yscale, 0.2 * yscale];
        let st = param_stats(j.as_ref(), rss * yscale * yscale, dof, &est);
        let what = format!("time unit {time:e} ps, y scale {yscale:e}");
        assert_eq!(st.rank, 3, "{what}: rank {}", st.rank);
        assert!(
            rel(st.condition_number, reference.condition_number) < 1e-8,
            "{what}: condition number {} vs {}",
            st.condition_number,
            reference.condition_number
        );
        let unit = [time, yscale, yscale];
        for (k, u) in unit.iter().enumerate() {
            let se = st.std_errors[k] / u;
            assert!(rel(se, reference.std_errors[k]) < 1e-10, "{what}: SE {k}: {se} vs {}", reference.std_errors[k]);
            assert!(rel(st.t_values[k], reference.t_values[k]) < 1e-10, "{what}: t {k}");
            assert!(rel(st.p_values[k], reference.p_values[k]) < 1e-8, "{what}: p {k}");
        }
        let (c, c0) = (st.correlation.as_ref().unwrap(), reference.correlation.as_ref().unwrap());
        let cov = st.covariance.as_ref().unwrap();
        for a in 0..3 {
            for b in 0..3 {
                assert!((c[(a, b)] - c0[(a, b)]).abs() < 1e-10, "{what}: correlation {a},{b}");
                let c_ref = reference.covariance.as_ref().unwrap()[(a, b)] * unit[a] * unit[b];
                assert!(rel(cov[(a, b)], c_ref) < 1e-10, "{what}: covariance {a},{b}");
            }
        }
        // The compact form R of J = QR (same JᵀJ, fewer rows) gives the same.
        let r = j.qr().thin_R().to_owned();
        let compact = param_stats_n(r.as_ref(), n, rss * yscale * yscale, dof, &est);
        assert_eq!(compact.rank, 3, "{what}: compact");
        for k in 0..3 {
            assert!(rel(compact.std_errors[k], st.std_errors[k]) < 1e-10, "{what}: compact SE {k}");
        }
        assert!(rel(compact.condition_number, reference.condition_number) < 1e-8, "{what}: compact condition");
    }
}

fn assert_rank_deficient(st: &ParamStats, rank: usize, what: &str) {
    assert_eq!(st.rank, rank, "{what}");
    assert!(st.covariance.is_none() && st.correlation.is_none(), "{what}");
    assert!(st.std_errors.iter().all(|s| s.is_nan()), "{what}");
    assert!(st.condition_number > 1e12, "{what}: {}", st.condition_number);
}

/// Equilibration does not hide a genuine rank deficiency: two proportional columns (whatever
/// their scales) or a zero column.
#[test]
fn genuine_rank_deficiency_is_still_reported() {
    let n = 80;
    let est = [2.5, 1.3, 0.2];
    for (time, factor) in [(1.0, 1.0), (1e-12, 1.0), (1.0, 1e12), (1e-12, -3e-9)] {
        let mut j = decay_jacobian(n, 0.1 * time, 2.5 * time, 1.3);
        // Column 2 = factor × column 1.
        for i in 0..n {
            j[(i, 2)] = factor * j[(i, 1)];
        }
        let st = param_stats(j.as_ref(), 1e-3, n - 3, &est);
        assert_rank_deficient(&st, 2, &format!("proportional columns, time {time:e}, factor {factor:e}"));
        let r = j.qr().thin_R().to_owned();
        let st = param_stats_n(r.as_ref(), n, 1e-3, n - 3, &est);
        assert_rank_deficient(&st, 2, &format!("compact, proportional columns, time {time:e}, factor {factor:e}"));
    }
    for zero in 0..3 {
        let mut j = decay_jacobian(n, 1e-13, 2.5e-12, 1.3);
        for i in 0..n {
            j[(i, zero)] = 0.0;
        }
        let st = param_stats(j.as_ref(), 1e-3, n - 3, &est);
        assert_rank_deficient(&st, 2, &format!("zero column {zero}"));
        assert!(st.condition_number.is_infinite());
    }
}

/// Uniform in [−½, ½) from a 64-bit xorshift.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }
}

/// 500 parameters, 1000 rows: a random well-conditioned matrix whose columns have scales from
/// 1e-8 to 1e8 (parameters in mixed units). The standard errors agree with those from the
/// Cholesky factorisation of JᵀJ (faer), and the whole takes well under a second.
#[test]
fn five_hundred_parameters() {
    let (n, m) = (1000, 500);
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let scale = |c: usize| 10f64.powi(2 * (c % 9) as i32 - 8);
    let j = Mat::from_fn(n, m, |_, c| rng.next() * scale(c));
    let est: Vec<f64> = (0..m).map(|c| scale(c) * 0.01).collect();
    let (rss, dof) = (2.7, n - m);
    let st = param_stats(j.as_ref(), rss, dof, &est);
    assert_eq!(st.rank, m);
    assert!(st.condition_number < 100.0, "{}", st.condition_number);
    let jtj = j.transpose() * &j;
    let inv = jtj.llt(faer::Side::Lower).expect("positive definite").inverse();
    let s2 = rss / dof as f64;
    for c in 0..m {
        let se = (s2 * inv[(c, c)]).sqrt();
        assert!(rel(st.std_errors[c], se) < 1e-8, "column {c}: {} vs {se}", st.std_errors[c]);
        assert!(rel(st.t_values[c], est[c] / se) < 1e-8, "t {c}");
    }
    let corr = st.correlation.as_ref().unwrap();
    for a in (0..m).step_by(37) {
        for b in (0..m).step_by(41) {
            let r = inv[(a, b)] / (inv[(a, a)] * inv[(b, b)]).sqrt();
            assert!((corr[(a, b)] - r).abs() < 1e-8, "correlation {a},{b}");
        }
    }
}
