//! The standard errors of a batch row ([`Detail::Lean`]), computed from the variable
//! projection's own factors, against those of the SVD of the whole Jacobian
//! ([`Detail::Covariance`], as `curve_fit` reports them) on noisy biexponential and Gaussian
//! fits: the same to rounding (1e-10 relative).

use sepfit::{Detail, FitOptions, PointModel, fit};

/// Deterministic xorshift64 with Box–Muller normals.
struct Rng(u64);
impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        (-2.0 * self.uniform().ln()).sqrt() * (2.0 * std::f64::consts::PI * self.uniform()).cos()
    }
}

fn biexp(t: &[f64]) -> PointModel {
    PointModel::builder(t.iter().map(|&v| vec![v]).collect(), 3, 2)
        .derivative(0, 0)
        .derivative(1, 1)
        .eval(|x, b, phi, dphi, _, _| {
            let (e0, e1) = ((-x[0] / b[0]).exp(), (-x[0] / b[1]).exp());
            (phi[0], phi[1], phi[2]) = (e0, e1, 1.0);
            (dphi[0], dphi[1]) = (x[0] / (b[0] * b[0]) * e0, x[0] / (b[1] * b[1]) * e1);
        })
        .build()
        .unwrap()
}

/// `a·exp(−((u − u0)² + (v − v0)²)/(2s²)) + c` on a 5×5 grid.
fn gauss2d() -> PointModel {
    let pts: Vec<Vec<f64>> = (0..25).map(|i| vec![(i % 5) as f64, (i / 5) as f64]).collect();
    PointModel::builder(pts, 2, 3)
        .derivative(0, 0)
        .derivative(0, 1)
        .derivative(0, 2)
        .eval(|x, b, phi, dphi, _, _| {
            let (du, dv, s) = (x[0] - b[0], x[1] - b[1], b[2]);
            let e = (-(du * du + dv * dv) / (2.0 * s * s)).exp();
            (phi[0], phi[1]) = (e, 1.0);
            (dphi[0], dphi[1], dphi[2]) = (e * du / (s * s), e * dv / (s * s), e * (du * du + dv * dv) / (s * s * s));
        })
        .build()
        .unwrap()
}

fn agree(model: &mut PointModel, y: &[f64], start: &[f64]) {
    let lean = fit(model, y, &FitOptions::with_start(start).with_detail(Detail::Lean)).unwrap();
    let cov = fit(model, y, &FitOptions::with_start(start).with_detail(Detail::Covariance)).unwrap();
    assert!(lean.converged && cov.converged);
    assert_eq!(lean.estimates, cov.estimates, "the same fit");
    for (i, (a, b)) in lean.stats.std_errors.iter().zip(&cov.stats.std_errors).enumerate() {
        assert!(a.is_finite() && (a - b).abs() <= 1e-10 * b.abs(), "parameter {i}: {a:e} vs {b:e}");
    }
}

#[test]
fn batch_standard_errors_match_the_svd() {
    let mut rng = Rng(0x5EED);
    let t: Vec<f64> = (0..256).map(|i| 0.05 * i as f64).collect();
    let mut m = biexp(&t);
    for _ in 0..20 {
        let (a1, a2, c, t1, t2) = (500.0 + 500.0 * rng.uniform(), 300.0 + 300.0 * rng.uniform(), 10.0 * rng.uniform(), 0.4 + 0.4 * rng.uniform(), 2.0 + 2.0 * rng.uniform());
        let y: Vec<f64> = t.iter().map(|&t| {
            let mu = a1 * (-t / t1).exp() + a2 * (-t / t2).exp() + c;
            mu + mu.max(1.0).sqrt() * rng.normal()
        }).collect();
        agree(&mut m, &y, &[0.5, 3.0]);
    }
    let mut g = gauss2d();
    for _ in 0..20 {
        let (a, c, u0, v0, s) = (500.0 + 1000.0 * rng.uniform(), 5.0 + 15.0 * rng.uniform(), 1.6 + 0.8 * rng.uniform(), 1.6 + 0.8 * rng.uniform(), 0.8 + 0.4 * rng.uniform());
        let y: Vec<f64> = (0..25).map(|i| {
            let (du, dv) = ((i % 5) as f64 - u0, (i / 5) as f64 - v0);
            let mu = a * (-(du * du + dv * dv) / (2.0 * s * s)).exp() + c;
            mu + mu.sqrt() * rng.normal()
        }).collect();
        agree(&mut g, &y, &[2.0, 2.0, 1.0]);
    }
}
