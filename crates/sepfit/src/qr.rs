//! A Householder QR with column pivoting for tall, thin matrices (`n ≫ p`), the shape of every
//! variable-projection basis. Rank revealing: at step `j` the remaining column of largest norm
//! is moved to position `j` (Businger & Golub 1965), so `|r₁₁| ≥ |r₂₂| ≥ …` and the numerical
//! rank is the number of `|r_jj| > ε·max(n, p)·|r₁₁|`.
//!
//! For `p ≤ ~10` the unblocked algorithm on contiguous columns is the fast one: it is a few
//! passes of dot products and AXPYs over each column (≈ `2np²` flops), with column norms
//! recomputed exactly at each step (no downdating, so no cancellation trouble).
//! On x86-64 CPUs with AVX2 the same code is compiled for 4-lane vectors and chosen at run
//! time; the sums have a fixed association (four explicit accumulators) and no FMA, so the
//! results are bit-identical either way.
//!
//! ```
//! use sepfit::qr::PivotedQr;
//! // A = [1 1; 1 2; 1 3], b = [1, 2, 2]: least squares a = (2/3, 1/2).
//! let mut qr = PivotedQr::new(3, 2);
//! qr.a_mut().copy_from_slice(&[1.0, 1.0, 1.0, 1.0, 2.0, 3.0]);
//! qr.factor();
//! let mut z = [1.0, 2.0, 2.0];
//! qr.apply_qt(&mut z);
//! let mut a = [0.0; 2];
//! qr.solve_r(&z, &mut a);
//! assert!((a[0] - 2.0 / 3.0).abs() < 1e-14 && (a[1] - 0.5).abs() < 1e-14);
//! ```

/// Householder QR with column pivoting of an `n × p` matrix, in place. See the module docs.
#[derive(Clone, Debug)]
pub struct PivotedQr {
    n: usize,
    p: usize,
    /// Column-major; after `factor`, `R` on and above the diagonal, Householder vectors below
    /// (with implicit unit first element).
    a: Vec<f64>,
    tau: Vec<f64>,
    perm: Vec<usize>,
    norms: Vec<f64>,
    /// `‖x_{j+1..n}‖²` of each remaining column at step `j`.
    tails: Vec<f64>,
    rank: usize,
}

impl PivotedQr {
    /// Workspace for `n × p` matrices.
    pub fn new(n: usize, p: usize) -> Self {
        PivotedQr {
            n,
            p,
            a: vec![0.0; n * p],
            tau: vec![0.0; p],
            perm: (0..p).collect(),
            norms: vec![0.0; p],
            tails: vec![0.0; p],
            rank: 0,
        }
    }

    /// The matrix to factor, column-major `n × p`; fill it, then call [`PivotedQr::factor`].
    pub fn a_mut(&mut self) -> &mut [f64] {
        &mut self.a
    }

    /// Column `j` of the matrix (before factoring) to fill.
    pub fn col_mut(&mut self, j: usize) -> &mut [f64] {
        &mut self.a[j * self.n..(j + 1) * self.n]
    }

    /// Factors `A Π = Q R` in place and determines the numerical rank.
    pub fn factor(&mut self) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { self.factor_avx2() };
        }
        self.factor_impl()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn factor_avx2(&mut self) {
        self.factor_impl()
    }

    #[inline(always)]
    fn factor_impl(&mut self) {
        let (n, p) = (self.n, self.p);
        for (j, v) in self.perm.iter_mut().enumerate() {
            *v = j;
        }
        let steps = n.min(p);
        for j in 0..steps {
            // Pivot: the remaining column with the largest norm over rows j..n, computed
            // exactly as x_j² + ‖x_{j+1..n}‖² (the second term is the pivot's reflector norm).
            // With one column left there is no choice to make.
            let xnorm2;
            if j + 1 < p {
                for c in j..p {
                    let col = &self.a[c * n + j..(c + 1) * n];
                    let t = dot(&col[1..], &col[1..]);
                    self.tails[c] = t;
                    self.norms[c] = col[0] * col[0] + t;
                }
                let mut best = j;
                for c in j + 1..p {
                    if self.norms[c] > self.norms[best] {
                        best = c;
                    }
                }
                if best != j {
                    let (lo, hi) = self.a.split_at_mut(best * n);
                    lo[j * n..(j + 1) * n].swap_with_slice(&mut hi[..n]);
                    self.perm.swap(j, best);
                    self.norms.swap(j, best);
                    self.tails.swap(j, best);
                }
                xnorm2 = self.tails[j];
            } else {
                let col = &self.a[j * n + j + 1..(j + 1) * n];
                xnorm2 = dot(col, col);
            }
            // Householder reflector for column j, rows j..n.
            let (head, tail) = self.a.split_at_mut((j + 1) * n);
            let colj = &mut head[j * n + j..(j + 1) * n];
            let alpha = colj[0];
            if xnorm2 == 0.0 {
                self.tau[j] = 0.0;
            } else {
                let norm = (alpha * alpha + xnorm2).sqrt();
                let beta = if alpha >= 0.0 { -norm } else { norm };
                self.tau[j] = (beta - alpha) / beta;
                let s = 1.0 / (alpha - beta);
                for v in &mut colj[1..] {
                    *v *= s;
                }
                colj[0] = beta;
            }
            let tau = self.tau[j];
            if tau != 0.0 {
                let v = &colj[1..];
                for c in 0..p - j - 1 {
                    let col = &mut tail[c * n + j..(c + 1) * n];
                    let w = tau * (col[0] + dot(v, &col[1..]));
                    col[0] -= w;
                    axpy(-w, v, &mut col[1..]);
                }
            }
        }
        let r00 = if steps > 0 { self.a[0].abs() } else { 0.0 };
        let tol = f64::EPSILON * n.max(p) as f64 * r00;
        self.rank = (0..steps).take_while(|&j| self.a[j * n + j].abs() > tol && r00 > 0.0).count();
    }

    /// Numerical rank found by [`PivotedQr::factor`].
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The column permutation: column `j` of `AΠ` is column `perm()[j]` of `A`.
    pub fn perm(&self) -> &[usize] {
        &self.perm
    }

    /// `R[i, j]` (`i ≤ j`), in pivoted order.
    pub fn r(&self, i: usize, j: usize) -> f64 {
        self.a[j * self.n + i]
    }

    /// `v ← Qᵀ v` (length `n`).
    pub fn apply_qt(&self, v: &mut [f64]) {
        self.apply(v, true)
    }

    /// `v ← Q v` (length `n`).
    pub fn apply_q(&self, v: &mut [f64]) {
        self.apply(v, false)
    }

    /// Applies the reflectors `H_0 … H_{k−1}` in order (`Qᵀ`) or in reverse (`Q`).
    fn apply(&self, v: &mut [f64], transpose: bool) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { self.apply_avx2(v, transpose) };
        }
        self.apply_impl(v, transpose)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn apply_avx2(&self, v: &mut [f64], transpose: bool) {
        self.apply_impl(v, transpose)
    }

    #[inline(always)]
    fn apply_impl(&self, v: &mut [f64], transpose: bool) {
        let k = self.n.min(self.p);
        if transpose {
            (0..k).for_each(|j| self.reflect(j, v));
        } else {
            (0..k).rev().for_each(|j| self.reflect(j, v));
        }
    }

    /// `v ← H_j v` with `H_j = I − τ_j h_j h_jᵀ` (`h_j` has an implicit leading 1).
    #[inline(always)]
    fn reflect(&self, j: usize, v: &mut [f64]) {
        let tau = self.tau[j];
        if tau == 0.0 {
            return;
        }
        let n = self.n;
        let h = &self.a[j * n + j + 1..(j + 1) * n];
        let w = tau * (v[j] + dot(h, &v[j + 1..]));
        v[j] -= w;
        axpy(-w, h, &mut v[j + 1..]);
    }

    /// Solves `R₁₁ c = (Qᵀz)[..rank]` and writes `x = Π c` (zeros for the rank-deficient part),
    /// the basic least-squares solution of `min ‖A x − z‖` given `qtz = Qᵀ z`.
    pub fn solve_r(&self, qtz: &[f64], x: &mut [f64]) {
        let n = self.n;
        x.iter_mut().for_each(|v| *v = 0.0);
        let r = self.rank;
        let mut c = vec![0.0; r];
        for i in (0..r).rev() {
            let mut s = qtz[i];
            for k in i + 1..r {
                s -= self.a[k * n + i] * c[k];
            }
            c[i] = s / self.a[i * n + i];
        }
        for i in 0..r {
            x[self.perm[i]] = c[i];
        }
    }
}

#[inline(always)]
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    // Four accumulators: vectorisable, and more accurate than one running sum.
    let mut s = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        s[0] += x[0] * y[0];
        s[1] += x[1] * y[1];
        s[2] += x[2] * y[2];
        s[3] += x[3] * y[3];
    }
    let mut t = (s[0] + s[1]) + (s[2] + s[3]);
    for (x, y) in ra.iter().zip(rb) {
        t += x * y;
    }
    t
}

#[inline(always)]
pub(crate) fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 11) as f64 / (1u64 << 53) as f64) - 0.5
    }

    /// Q R Πᵀ reproduces A; Qᵀ Q = I; |r_jj| decreases; rank of constructed rank-deficient
    /// matrices is found; least-squares solutions satisfy the normal equations.
    #[test]
    fn reconstructs_and_reveals_rank() {
        let mut seed = 42u64;
        for &(n, p, rank) in &[(50, 3, 3), (200, 5, 5), (30, 4, 2), (7, 7, 7), (10, 1, 1), (100, 6, 4), (5, 3, 0)] {
            // A = B C with B n×rank, C rank×p (rank-deficient when rank < p).
            let b: Vec<f64> = (0..n * rank).map(|_| lcg(&mut seed)).collect();
            let c: Vec<f64> = (0..rank * p).map(|_| lcg(&mut seed)).collect();
            let mut a = vec![0.0; n * p];
            for j in 0..p {
                for i in 0..n {
                    a[j * n + i] = (0..rank).map(|k| b[k * n + i] * c[j * rank + k]).sum();
                }
            }
            let mut qr = PivotedQr::new(n, p);
            qr.a_mut().copy_from_slice(&a);
            qr.factor();
            assert_eq!(qr.rank(), rank, "n={n} p={p}");
            for j in 1..n.min(p) {
                assert!(qr.r(j, j).abs() <= qr.r(j - 1, j - 1).abs() * (1.0 + 1e-12) + 1e-12);
            }
            // Column perm[j] of A = Q R[:, j].
            for j in 0..p {
                let mut v = vec![0.0; n];
                for i in 0..=j.min(n - 1) {
                    v[i] = qr.r(i, j);
                }
                qr.apply_q(&mut v);
                let col = &a[qr.perm()[j] * n..(qr.perm()[j] + 1) * n];
                for i in 0..n {
                    assert!((v[i] - col[i]).abs() < 1e-12, "n={n} p={p} j={j}");
                }
            }
            // Qᵀ then Q is the identity.
            let z: Vec<f64> = (0..n).map(|_| lcg(&mut seed)).collect();
            let mut w = z.clone();
            qr.apply_qt(&mut w);
            let norm_z: f64 = z.iter().map(|v| v * v).sum();
            let norm_w: f64 = w.iter().map(|v| v * v).sum();
            assert!((norm_z - norm_w).abs() < 1e-12 * norm_z);
            let mut back = w.clone();
            qr.apply_q(&mut back);
            for i in 0..n {
                assert!((back[i] - z[i]).abs() < 1e-13);
            }
            // Least squares: Aᵀ(Ax − z) = 0.
            let mut x = vec![0.0; p];
            qr.solve_r(&w, &mut x);
            let r: Vec<f64> = (0..n).map(|i| (0..p).map(|j| a[j * n + i] * x[j]).sum::<f64>() - z[i]).collect();
            for j in 0..p {
                let g: f64 = (0..n).map(|i| a[j * n + i] * r[i]).sum();
                assert!(g.abs() < 1e-10, "normal equations, n={n} p={p}: {g}");
            }
        }
    }
}
