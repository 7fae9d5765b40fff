//! A secant estimate of the second-order term of the Hessian, for the last iterations of
//! Levenberg–Marquardt (see the `lm` module docs, *Terminal Newton steps*).
//!
//! The Hessian of `½‖f‖²` is `JᵀJ + S` with `S = Σ fᵢ ∇²fᵢ`. Gauss–Newton drops `S` and so
//! converges only linearly where the residuals are not small: the error contracts by about
//! `‖(JᵀJ)⁻¹S‖` per step (1/75 on the 1,024-point biexponential). Between accepted iterates
//! `x_k → x_{k+1}` the gradient `g = Jᵀf` changes by `(JᵀJ + S)s` to first order, so
//! `y = g_{k+1} − g_k − J_{k+1}ᵀJ_{k+1}s ≈ S s` (Dennis, Gay & Welsch 1981 update `S` from
//! such pairs in NL2SOL; this `y` needs only `J` and `f` at the new point, which a variable
//! projection's compact Jacobian also gives: `JᵀJ` and `Jᵀf` do not depend on the basis in
//! which the residual is written). `S` is updated by the symmetric rank-one formula
//! `S ← S + v vᵀ/(vᵀs)`, `v = y − S s` (skipped when `|vᵀs|` is tiny), which reproduces `S`
//! exactly after `m` independent steps when `S` is constant.

use crate::linalg::cholesky::solve_spd;

/// The secant estimate and the last accepted point.
#[derive(Debug, Clone)]
pub(super) struct Secant {
    m: usize,
    /// `S`, `m × m` column-major.
    s: Vec<f64>,
    /// The previous accepted point and its gradient (`have_prev` once set).
    x: Vec<f64>,
    g: Vec<f64>,
    have_prev: bool,
    /// Pairs that updated `S`.
    pub(super) updates: usize,
}

impl Secant {
    pub(super) fn new(m: usize) -> Self {
        Secant { m, s: vec![0.0; m * m], x: vec![0.0; m], g: vec![0.0; m], have_prev: false, updates: 0 }
    }

    /// Records the accepted point `x` with gradient `g = Jᵀf` and Jacobian `jac` (`n × m`,
    /// column-major), updating `S` from the step since the previous point.
    pub(super) fn record(&mut self, x: &[f64], g: &[f64], jac: &[f64], n: usize) {
        let m = self.m;
        if self.have_prev {
            let s: Vec<f64> = x.iter().zip(&self.x).map(|(a, b)| a - b).collect();
            // J s, then y = Δg − Jᵀ(J s) − S s = v
            let mut js = vec![0.0; n];
            for (k, sk) in s.iter().enumerate() {
                for (o, j) in js.iter_mut().zip(&jac[k * n..(k + 1) * n]) {
                    *o += j * sk;
                }
            }
            let mut v = vec![0.0; m];
            for k in 0..m {
                let jtjs: f64 = jac[k * n..(k + 1) * n].iter().zip(&js).map(|(a, b)| a * b).sum();
                let ss: f64 = (0..m).map(|l| self.s[l * m + k] * s[l]).sum();
                v[k] = (g[k] - self.g[k]) - jtjs - ss;
            }
            let vs: f64 = v.iter().zip(&s).map(|(a, b)| a * b).sum();
            let (nv, ns) = (norm(&v), norm(&s));
            if vs.is_finite() && vs.abs() > 1e-8 * nv * ns && ns > 0.0 {
                for a in 0..m {
                    for b in 0..m {
                        self.s[b * m + a] += v[a] * v[b] / vs;
                    }
                }
                self.updates += 1;
            }
        }
        self.x.copy_from_slice(x);
        self.g.copy_from_slice(g);
        self.have_prev = true;
    }

    /// The Newton step `p` of `(JᵀJ + S) p = g` (the step the iteration subtracts from `x`),
    /// over all `m` parameters, when `S` has been updated and `JᵀJ + S` is positive definite;
    /// `None` otherwise.
    pub(super) fn step(&self, jac: &[f64], g: &[f64], n: usize) -> Option<Vec<f64>> {
        let m = self.m;
        if self.updates == 0 {
            return None;
        }
        let mut h = self.s.clone();
        for a in 0..m {
            for b in 0..=a {
                let d: f64 = jac[a * n..(a + 1) * n].iter().zip(&jac[b * n..(b + 1) * n]).map(|(x, y)| x * y).sum();
                h[b * m + a] += d;
                if a != b {
                    h[a * m + b] += d;
                }
            }
        }
        solve_spd(&h, g, m)
    }

    /// [`Secant::step`] where it is taken in place of the Gauss–Newton step `gn` at `x`: when
    /// it differs from `gn` by at most half of `gn`'s length in the scaled norm `‖D·‖`
    /// (`D = diag(scale)`: a correction, not another direction) and `x − p` stays strictly
    /// inside the bounds `lo`, `hi`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn correction(&self, jac: &[f64], g: &[f64], n: usize, gn: &[f64], x: &[f64], lo: &[f64], hi: &[f64], scale: &[f64]) -> Option<Vec<f64>> {
        let p = self.step(jac, g, n)?;
        let inside = (0..self.m).all(|k| lo[k] < x[k] - p[k] && x[k] - p[k] < hi[k]);
        let gn_norm = norm_it(gn.iter().zip(scale).map(|(a, d)| a * d));
        let change = norm_it(p.iter().zip(gn).zip(scale).map(|((a, b), d)| (a - b) * d));
        (inside && change <= 0.5 * gn_norm).then_some(p)
    }
}

fn norm_it(v: impl Iterator<Item = f64>) -> f64 {
    v.map(|x| x * x).sum::<f64>().sqrt()
}

fn norm(v: &[f64]) -> f64 {
    norm_it(v.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a quadratic with a constant `S` the secant reproduces `S` after `m` independent
    /// steps, and the step solves `(JᵀJ + S) p = g`.
    #[test]
    fn secant_recovers_a_constant_second_order_term() {
        let (n, m) = (4, 2);
        let jac = [1.0, 0.5, -0.2, 0.3, 0.1, 1.0, 0.4, -0.6];
        let s_true = [0.3, 0.1, 0.1, -0.2];
        let jtj = |a: usize, b: usize| -> f64 { (0..n).map(|i| jac[a * n + i] * jac[b * n + i]).sum() };
        // g(x) = (JᵀJ + S) x (a quadratic with minimum at 0)
        let grad = |x: &[f64]| -> Vec<f64> { (0..m).map(|a| (0..m).map(|b| (jtj(a, b) + s_true[b * m + a]) * x[b]).sum()).collect() };
        let mut sec = Secant::new(m);
        for x in [[1.0, 2.0], [0.5, 1.0], [0.4, 0.3]] {
            sec.record(&x, &grad(&x), &jac, n);
        }
        for (a, b) in sec.s.iter().zip(&s_true) {
            assert!((a - b).abs() < 1e-12, "{:?}", sec.s);
        }
        let x = [0.4, 0.3];
        let p = sec.step(&jac, &grad(&x), n).unwrap();
        assert!((p[0] - x[0]).abs() < 1e-12 && (p[1] - x[1]).abs() < 1e-12, "{p:?}");
    }
}
