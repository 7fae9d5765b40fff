//! Bounded-variable least squares (Stark & Parker 1995), an active-set method that contains
//! Lawson & Hanson's NNLS (1974) as the case `l = 0, u = +∞`:
//!
//! ```text
//! min ½‖A x − b‖²   subject to   lᵢ ≤ xᵢ ≤ uᵢ   (A: m × p, lᵢ ∈ [−∞, ∞), uᵢ ∈ (−∞, ∞]).
//! ```
//!
//! The problem is convex; `x` is optimal iff it is feasible and, with the negative gradient
//! `w = Aᵀ(b − A x)`, every variable strictly inside its bounds has `wᵢ = 0`, every variable
//! on its lower bound `wᵢ ≤ 0` and every variable on its upper bound `wᵢ ≥ 0` (Karush–Kuhn–
//! Tucker). The method keeps a feasible `x` and a partition of the variables into a *free*
//! set `F` and a *bound* set (each at `lᵢ` or `uᵢ`):
//!
//! 1. (Outer loop.) Compute `w`. If no bound variable violates its KKT sign (beyond the
//!    rounding level of `wᵢ`), stop. Otherwise free the one with the largest `|wᵢ|`.
//! 2. (Inner loop.) Solve the unconstrained problem on the free set,
//!    `z_F = argmin ‖A_F z − (b − A_B x_B)‖` (a pivoted Householder QR of `A` with the bound
//!    columns zeroed: they fall beyond the numerical rank and get `z = 0`; rank-deficient free
//!    columns get the basic solution). If `z_F` is feasible, `x_F ← z_F` and go to 1. Else
//!    step from `x` towards `z` as far as feasibility allows, `x ← x + α(z − x)`,
//!    `α = min (bound − xᵢ)/(zᵢ − xᵢ)` over the violating `i`, move the variables that reach a
//!    bound to the bound set, and repeat 2.
//!
//! Each outer iteration strictly decreases the objective, so no partition repeats and the
//! method terminates in exact arithmetic. In floating point, a freed variable whose new
//! value `zⱼ` moves the wrong way (out of its bound: its `wⱼ` was rounding noise) is put back
//! and not tried again until another variable has been freed (Stark & Parker's safeguard),
//! and an iteration limit of `3(p + 1)` steps bounds the work; [`BvlsReport::converged`] says
//! whether the KKT conditions were reached.
//!
//! The solver starts from a caller's `x` (clipped into the box; the variables clipped start
//! on their bounds), so a good guess — in variable projection the unconstrained solution —
//! usually needs one or two inner steps.
//!
//! ```
//! use sepfit::linalg::bvls::{Bvls, VarState};
//! // min ‖A x − b‖ with x ≥ 0: the unconstrained solution (3, −1) is infeasible.
//! // A = [1 0; 0 1; 1 1] (column-major), b = (3, −1, 2).
//! let a = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0];
//! let b = [3.0, -1.0, 2.0];
//! let mut x = [0.0; 2];
//! let mut state = [VarState::Free; 2];
//! let mut solver = Bvls::new(3, 2);
//! let rep = solver.solve(&a, &b, &[0.0, 0.0], &[f64::INFINITY; 2], &mut x, &mut state).unwrap();
//! assert!(rep.converged);
//! // x₂ sits on its bound; x₁ = argmin (x₁−3)² + (x₁−2)² = 2.5.
//! assert_eq!(state[1], VarState::Lower);
//! assert!((x[0] - 2.5).abs() < 1e-14 && x[1] == 0.0);
//! ```

use super::qr::PivotedQr;

/// Where a variable of a bounded least-squares problem stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VarState {
    /// Strictly inside its bounds (or unbounded): determined by least squares.
    #[default]
    Free,
    /// On its lower bound.
    Lower,
    /// On its upper bound.
    Upper,
}

/// Why [`Bvls::solve`] could not run (a caller's mistake: lengths, bounds).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BvlsError {
    /// A slice of the wrong length.
    #[error("bounded least squares: `{which}` has {got} entries, expected {expected}")]
    Length {
        /// Which argument.
        which: &'static str,
        /// Expected length.
        expected: usize,
        /// Given length.
        got: usize,
    },
    /// A lower bound above the upper bound, or a NaN bound.
    #[error("bounded least squares: the bounds of variable {index} are [{lower}, {upper}]; need lower <= upper")]
    InvalidBounds {
        /// Variable.
        index: usize,
        /// Lower bound.
        lower: f64,
        /// Upper bound.
        upper: f64,
    },
}

/// How a [`Bvls::solve`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BvlsReport {
    /// Least-squares solves on a free set (inner steps).
    pub iterations: usize,
    /// Whether the KKT conditions hold at the returned `x` (else the iteration limit stopped it;
    /// `x` is then feasible but possibly not optimal).
    pub converged: bool,
    /// Variables on a bound.
    pub n_bound: usize,
}

/// Workspace of the bounded least-squares solver for `m × p` problems (reused across solves,
/// allocation-free after construction).
#[derive(Debug, Clone)]
pub struct Bvls {
    m: usize,
    p: usize,
    qr: PivotedQr,
    rhs: Vec<f64>,
    z: Vec<f64>,
    w: Vec<f64>,
    rejected: Vec<bool>,
    norms: Vec<f64>,
}

impl Bvls {
    /// Workspace for `m × p` matrices.
    pub fn new(m: usize, p: usize) -> Self {
        Bvls {
            m,
            p,
            qr: PivotedQr::new(m, p),
            rhs: vec![0.0; m],
            z: vec![0.0; p],
            w: vec![0.0; p],
            rejected: vec![false; p],
            norms: vec![0.0; p],
        }
    }

    /// Solves `min ‖A x − b‖` subject to `lower ≤ x ≤ upper` (`A` column-major `m × p`).
    /// `x` holds the starting guess on entry (clipped into the box; non-finite entries start at
    /// a finite bound, or 0) and the solution on return; `state` receives each variable's
    /// [`VarState`]. Variables with `lower = upper` stay on that value.
    pub fn solve(
        &mut self,
        a: &[f64],
        b: &[f64],
        lower: &[f64],
        upper: &[f64],
        x: &mut [f64],
        state: &mut [VarState],
    ) -> Result<BvlsReport, BvlsError> {
        let (m, p) = (self.m, self.p);
        for (which, got, expected) in [
            ("a", a.len(), m * p),
            ("b", b.len(), m),
            ("lower", lower.len(), p),
            ("upper", upper.len(), p),
            ("x", x.len(), p),
            ("state", state.len(), p),
        ] {
            if got != expected {
                return Err(BvlsError::Length { which, expected, got });
            }
        }
        for i in 0..p {
            if !(lower[i] <= upper[i]) || lower[i] == f64::INFINITY || upper[i] == f64::NEG_INFINITY {
                return Err(BvlsError::InvalidBounds { index: i, lower: lower[i], upper: upper[i] });
            }
        }
        // Start: clip the guess into the box.
        for i in 0..p {
            let (l, u) = (lower[i], upper[i]);
            let v = x[i];
            state[i] = if l == u || v <= l || (v.is_nan() && l.is_finite()) {
                VarState::Lower
            } else if v >= u || (v.is_nan() && u.is_finite()) {
                VarState::Upper
            } else {
                VarState::Free
            };
            x[i] = match state[i] {
                VarState::Lower => l,
                VarState::Upper => u,
                VarState::Free if v.is_nan() => 0.0,
                VarState::Free => v,
            };
        }
        for (i, nrm) in self.norms.iter_mut().enumerate() {
            let col = &a[i * m..(i + 1) * m];
            *nrm = col.iter().map(|v| v * v).sum::<f64>().sqrt();
        }
        self.rejected.fill(false);
        let limit = 3 * (p + 1);
        let mut iterations = 0;
        // The variable the outer loop just freed (its state still records its bound until the
        // inner loop accepts the move).
        let mut freed: Option<usize> = None;
        loop {
            // Inner loop: least squares on the free set, stepping back into the box.
            loop {
                if iterations >= limit {
                    return Ok(self.report(iterations, false, state));
                }
                iterations += 1;
                self.solve_free(a, b, x, state, freed);
                if let Some(j) = freed.take() {
                    let wrong = match state[j] {
                        VarState::Lower => self.z[j] <= lower[j],
                        VarState::Upper => self.z[j] >= upper[j],
                        VarState::Free => false,
                    };
                    if wrong {
                        // Its gradient was rounding noise: put it back, try another.
                        self.rejected[j] = true;
                        break;
                    }
                    state[j] = VarState::Free;
                    self.rejected.fill(false);
                }
                // The step towards z that keeps every free variable feasible.
                let mut alpha = 1.0f64;
                let mut first = None;
                for i in 0..p {
                    if state[i] != VarState::Free {
                        continue;
                    }
                    let zi = self.z[i];
                    let target = if zi < lower[i] {
                        lower[i]
                    } else if zi > upper[i] {
                        upper[i]
                    } else {
                        continue;
                    };
                    let d = zi - x[i];
                    let t = if d != 0.0 { ((target - x[i]) / d).clamp(0.0, 1.0) } else { 0.0 };
                    if first.is_none() || t < alpha {
                        alpha = t;
                        first = Some(i);
                    }
                }
                let Some(first) = first else {
                    for i in 0..p {
                        if state[i] == VarState::Free {
                            x[i] = self.z[i];
                        }
                    }
                    break;
                };
                for i in 0..p {
                    if state[i] != VarState::Free {
                        continue;
                    }
                    let zi = self.z[i];
                    let v = x[i] + alpha * (zi - x[i]);
                    let near = |bound: f64| (v - bound).abs() <= 4.0 * f64::EPSILON * bound.abs();
                    if zi < lower[i] && (i == first || v <= lower[i] || near(lower[i])) {
                        state[i] = VarState::Lower;
                        x[i] = lower[i];
                    } else if zi > upper[i] && (i == first || v >= upper[i] || near(upper[i])) {
                        state[i] = VarState::Upper;
                        x[i] = upper[i];
                    } else {
                        x[i] = v.clamp(lower[i], upper[i]);
                    }
                }
            }
            // Outer loop: the negative gradient w = Aᵀ(b − A x) of the bound variables.
            self.rhs.copy_from_slice(&b[..m]);
            for i in 0..p {
                if x[i] != 0.0 {
                    let col = &a[i * m..(i + 1) * m];
                    for (r, v) in self.rhs.iter_mut().zip(col) {
                        *r -= x[i] * v;
                    }
                }
            }
            let rnorm = self.rhs.iter().map(|v| v * v).sum::<f64>().sqrt();
            let mut best: Option<(usize, f64)> = None;
            for i in 0..p {
                if state[i] == VarState::Free || lower[i] == upper[i] || self.rejected[i] {
                    continue;
                }
                let col = &a[i * m..(i + 1) * m];
                let wi: f64 = col.iter().zip(&self.rhs).map(|(c, r)| c * r).sum();
                self.w[i] = wi;
                // The rounding level of the dot product aᵢᵀr.
                let tol = 16.0 * f64::EPSILON * (m as f64) * self.norms[i] * rnorm;
                let violates = match state[i] {
                    VarState::Lower => wi > tol,
                    VarState::Upper => wi < -tol,
                    VarState::Free => false,
                };
                if violates && best.is_none_or(|(_, s)| wi.abs() > s) {
                    best = Some((i, wi.abs()));
                }
            }
            let Some((j, _)) = best else {
                return Ok(self.report(iterations, true, state));
            };
            freed = Some(j);
        }
    }

    /// `z = argmin ‖A_F z − (b − A_B x_B)‖` over the free set `F` (the variables in state
    /// `Free`, and `extra`), the bound ones fixed at `x` (their `z` entries are set to `x`).
    fn solve_free(&mut self, a: &[f64], b: &[f64], x: &[f64], state: &[VarState], extra: Option<usize>) {
        let (m, p) = (self.m, self.p);
        self.rhs.copy_from_slice(&b[..m]);
        let is_free = |i: usize| state[i] == VarState::Free || extra == Some(i);
        for i in 0..p {
            let col = &a[i * m..(i + 1) * m];
            let dst = self.qr.col_mut(i);
            if is_free(i) {
                dst.copy_from_slice(col);
            } else {
                dst.fill(0.0);
                if x[i] != 0.0 {
                    for (r, v) in self.rhs.iter_mut().zip(col) {
                        *r -= x[i] * v;
                    }
                }
            }
        }
        self.qr.factor();
        self.qr.apply_qt(&mut self.rhs);
        self.qr.solve_r(&self.rhs, &mut self.z);
        for i in 0..p {
            if !is_free(i) {
                self.z[i] = x[i];
            }
        }
    }

    fn report(&self, iterations: usize, converged: bool, state: &[VarState]) -> BvlsReport {
        BvlsReport { iterations, converged, n_bound: state.iter().filter(|s| **s != VarState::Free).count() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform(seed: &mut u64) -> f64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 11) as f64) / ((1u64 << 53) as f64)
    }

    fn objective(a: &[f64], b: &[f64], x: &[f64]) -> f64 {
        let m = b.len();
        (0..m).map(|r| (b[r] - (0..x.len()).map(|i| a[i * m + r] * x[i]).sum::<f64>()).powi(2)).sum()
    }

    /// The optimum by enumeration of all 3^p assignments of the variables to free / lower /
    /// upper: least squares on the free set (normal equations, small p), kept if feasible.
    fn brute_force(a: &[f64], b: &[f64], lo: &[f64], hi: &[f64]) -> (f64, Vec<f64>) {
        let (m, p) = (b.len(), lo.len());
        let mut best = (f64::INFINITY, vec![]);
        for code in 0..3usize.pow(p as u32) {
            let mut c = code;
            let mut x = vec![0.0; p];
            let mut free = vec![];
            let mut ok = true;
            for i in 0..p {
                match c % 3 {
                    0 => free.push(i),
                    1 => x[i] = lo[i],
                    _ => x[i] = hi[i],
                }
                ok &= x[i].is_finite();
                c /= 3;
            }
            if !ok {
                continue;
            }
            let mut r: Vec<f64> = b.to_vec();
            for i in 0..p {
                if !free.contains(&i) {
                    for (k, rv) in r.iter_mut().enumerate() {
                        *rv -= a[i * m + k] * x[i];
                    }
                }
            }
            let f = free.len();
            // Normal equations G z = h, solved by Gaussian elimination with partial pivoting.
            let mut g = vec![0.0; f * (f + 1)];
            for (u, &i) in free.iter().enumerate() {
                for (v, &j) in free.iter().enumerate() {
                    g[u * (f + 1) + v] = (0..m).map(|k| a[i * m + k] * a[j * m + k]).sum();
                }
                g[u * (f + 1) + f] = (0..m).map(|k| a[i * m + k] * r[k]).sum();
            }
            for col in 0..f {
                let piv = (col..f).max_by(|&s, &t| g[s * (f + 1) + col].abs().total_cmp(&g[t * (f + 1) + col].abs())).unwrap();
                for k in 0..=f {
                    g.swap(col * (f + 1) + k, piv * (f + 1) + k);
                }
                for row in 0..f {
                    if row != col {
                        let t = g[row * (f + 1) + col] / g[col * (f + 1) + col];
                        for k in 0..=f {
                            g[row * (f + 1) + k] -= t * g[col * (f + 1) + k];
                        }
                    }
                }
            }
            for (u, &i) in free.iter().enumerate() {
                x[i] = g[u * (f + 1) + f] / g[u * (f + 1) + u];
            }
            if (0..p).all(|i| x[i] >= lo[i] - 1e-12 && x[i] <= hi[i] + 1e-12) {
                let o = objective(a, b, &x);
                if o < best.0 {
                    best = (o, x);
                }
            }
        }
        best
    }

    #[test]
    fn matches_enumeration_of_active_sets() {
        let mut seed = 7u64;
        let mut bound_counts = [0usize; 5];
        for trial in 0..400 {
            let p = 1 + trial % 4;
            let m = p + 2 + trial % 3;
            let a: Vec<f64> = (0..m * p).map(|_| uniform(&mut seed) * 2.0 - 1.0).collect();
            let b: Vec<f64> = (0..m).map(|_| uniform(&mut seed) * 4.0 - 2.0).collect();
            let mut lo = vec![0.0; p];
            let mut hi = vec![f64::INFINITY; p];
            for i in 0..p {
                match (trial / 4 + i) % 4 {
                    0 => {}
                    1 => (lo[i], hi[i]) = (-0.3, 0.4),
                    2 => (lo[i], hi[i]) = (f64::NEG_INFINITY, 0.2),
                    _ => (lo[i], hi[i]) = (f64::NEG_INFINITY, f64::INFINITY),
                }
            }
            let (want, xb) = brute_force(&a, &b, &lo, &hi);
            // Start from zero and from a poor guess: the answer must not depend on it.
            for start in [0.0, 5.0] {
                let mut x = vec![start; p];
                let mut st = vec![VarState::Free; p];
                let rep = Bvls::new(m, p).solve(&a, &b, &lo, &hi, &mut x, &mut st).unwrap();
                assert!(rep.converged, "trial {trial}: not converged");
                let got = objective(&a, &b, &x);
                assert!((got - want).abs() <= 1e-10 * (1.0 + want), "trial {trial}: objective {got} vs {want}");
                for i in 0..p {
                    assert!((x[i] - xb[i]).abs() <= 1e-8 * (1.0 + xb[i].abs()), "trial {trial}: x = {x:?}, brute force {xb:?}");
                    assert!(x[i] >= lo[i] && x[i] <= hi[i]);
                    match st[i] {
                        VarState::Lower => assert_eq!(x[i], lo[i]),
                        VarState::Upper => assert_eq!(x[i], hi[i]),
                        VarState::Free => {}
                    }
                }
                bound_counts[rep.n_bound] += 1;
            }
        }
        // The random problems exercise both interior and bound solutions.
        assert!(bound_counts[0] > 20 && bound_counts[1..].iter().sum::<usize>() > 200, "{bound_counts:?}");
    }

    #[test]
    fn rejects_bad_arguments() {
        let mut s = Bvls::new(2, 1);
        let mut x = [0.0];
        let mut st = [VarState::Free];
        assert!(matches!(
            s.solve(&[1.0, 1.0], &[1.0, 2.0], &[1.0], &[0.0], &mut x, &mut st),
            Err(BvlsError::InvalidBounds { index: 0, .. })
        ));
        assert!(matches!(s.solve(&[1.0], &[1.0, 2.0], &[0.0], &[1.0], &mut x, &mut st), Err(BvlsError::Length { which: "a", .. })));
    }

    #[test]
    fn fixed_variable_stays() {
        // lower = upper: the variable is fixed even where its gradient pulls.
        let mut s = Bvls::new(3, 2);
        let (a, b) = ([1.0, 0.0, 1.0, 0.0, 1.0, 1.0], [3.0, -1.0, 2.0]);
        let mut x = [0.0; 2];
        let mut st = [VarState::Free; 2];
        s.solve(&a, &b, &[0.5, f64::NEG_INFINITY], &[0.5, f64::INFINITY], &mut x, &mut st).unwrap();
        assert_eq!(x[0], 0.5);
        // x₂ = argmin (x₂+1)² + (0.5+x₂−2)² = 0.25.
        assert!((x[1] - 0.25).abs() < 1e-14);
    }
}
