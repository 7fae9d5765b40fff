//! A Householder QR with column pivoting for tall, thin matrices (`n ≫ p`), the shape of every
//! variable-projection basis. Rank revealing: at step `j` the remaining column of largest norm
//! is moved to position `j` (Businger & Golub 1965), so `|r₁₁| ≥ |r₂₂| ≥ …` and the numerical
//! rank is the number of `|r_jj| > ε·max(n, p)·|r₁₁|`.
//!
//! For `p ≤ ~10` the unblocked algorithm on contiguous columns is the fast one: it is a few
//! passes of dot products and AXPYs over each column (≈ `2np²` flops). The column norms for
//! the next pivot and reflector are summed exactly from the updated entries in the same pass
//! as each update (no downdating, so no cancellation trouble), and the Householder vectors
//! are left unnormalised in place (no scaling pass).
//! Each reflector is applied to up to three columns per pass (`h` loaded once; the dot
//! products in one pass, the updates with their norms in a second), and
//! [`PivotedQr::factor_with_next`] applies the basis reflectors to appended columns in the same
//! passes. On x86-64 CPUs with AVX2 or AVX-512 the kernels use 4- or 8-lane vectors, chosen at
//! run time; the sums have a fixed association (sixteen accumulators in four chains) and no
//! FMA, so the results are bit-identical on every path (tested).
//!
//! ```
//! use sepfit::linalg::qr::PivotedQr;
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

#[cfg(target_arch = "x86_64")]
use super::kernels::{Avx2, Avx512, Simd, simd_level};
use super::kernels::{Kernels, Scalar};

/// Householder QR with column pivoting of an `n × p` matrix, in place, optionally followed by
/// `extra` appended columns that are factored in order (no pivoting). See the module docs.
///
/// The appended columns are what variable projection needs next to the basis: the data
/// column `z` and the derivative columns `∂Φ/∂b`. Factoring them after the basis (with
/// [`PivotedQr::factor_next`]) gives their coordinates in the basis of `Q`, so that every
/// quantity of a Levenberg–Marquardt step is found in the small triangular factor.
#[derive(Clone, Debug)]
pub struct PivotedQr {
    n: usize,
    /// Columns that take part in the pivoting (the basis).
    p: usize,
    /// All columns: `p` plus the appended ones.
    cols: usize,
    /// Columns factored so far (`p` after [`PivotedQr::factor`], more after `factor_next`).
    done: usize,
    /// Column-major; after `factor`, `R` on and above the diagonal and, below it, the
    /// Householder vectors' tails (the column's own entries: see [`make_reflector`]).
    a: Vec<f64>,
    /// `τ_j = 2/‖u_j‖²` of reflector `H_j = I − τ_j u_j u_jᵀ` (0: identity).
    tau: Vec<f64>,
    /// First entry `u_j[0]` of each Householder vector (the rest is stored in `a`).
    u0: Vec<f64>,
    perm: Vec<usize>,
    norms: Vec<f64>,
    /// `‖x_{j+1..n}‖²` of each remaining column at step `j`.
    tails: Vec<f64>,
    rank: usize,
}

impl PivotedQr {
    /// Workspace for `n × p` matrices.
    pub fn new(n: usize, p: usize) -> Self {
        Self::with_extra(n, p, 0)
    }

    /// Workspace for `n × (p + extra)` matrices whose first `p` columns are pivoted.
    pub fn with_extra(n: usize, p: usize, extra: usize) -> Self {
        let cols = p + extra;
        PivotedQr {
            n,
            p,
            cols,
            done: 0,
            a: vec![0.0; n * cols],
            tau: vec![0.0; cols],
            u0: vec![0.0; cols],
            perm: (0..p).collect(),
            norms: vec![0.0; p],
            tails: vec![0.0; p],
            rank: 0,
        }
    }

    /// The matrix to factor, column-major `n × p` (or `n × (p + extra)`); fill it, then call
    /// [`PivotedQr::factor`].
    pub fn a_mut(&mut self) -> &mut [f64] {
        &mut self.a
    }

    /// Column `j` of the matrix (before factoring) to fill.
    pub fn col_mut(&mut self, j: usize) -> &mut [f64] {
        &mut self.a[j * self.n..(j + 1) * self.n]
    }

    /// Factors the first `p` columns, `A Π = Q R`, in place and determines the numerical rank.
    /// Appended columns are left untouched (see [`PivotedQr::factor_next`]).
    pub fn factor(&mut self) {
        self.factor_with_next(0)
    }

    /// [`factor`](Self::factor) followed by [`factor_next(extra)`](Self::factor_next), with the
    /// same results bit for bit, in fewer passes over the columns: each reflector of the basis
    /// is applied to the next `extra` appended columns in the pass that applies it to the basis.
    ///
    /// # Panics
    /// If there are fewer than `extra` appended columns (a programming error).
    pub fn factor_with_next(&mut self, extra: usize) {
        assert!(self.p + extra <= self.cols, "factor_with_next past the last column");
        #[cfg(target_arch = "x86_64")]
        match simd_level() {
            // SAFETY: the CPU supports the instructions (`simd_level` checked).
            Simd::Avx512 => return unsafe { self.factor_avx512(extra) },
            // SAFETY: as above.
            Simd::Avx2 => return unsafe { self.factor_avx2(extra) },
            Simd::None => {}
        }
        self.factor_impl::<Scalar>(extra)
    }

    /// Factors the next `count` appended columns in order: the reflectors found so far are
    /// applied to them, then each gets its own reflector (no pivoting). Columns `done..done+count`
    /// must have been filled (before or after [`PivotedQr::factor`]).
    ///
    /// # Panics
    /// If there are fewer than `count` unfactored columns (a programming error).
    pub fn factor_next(&mut self, count: usize) {
        assert!(self.done >= self.p && self.done + count <= self.cols, "factor_next past the last column");
        #[cfg(target_arch = "x86_64")]
        match simd_level() {
            // SAFETY: the CPU supports the instructions (`simd_level` checked).
            Simd::Avx512 => return unsafe { self.factor_next_avx512(count) },
            // SAFETY: as above.
            Simd::Avx2 => return unsafe { self.factor_next_avx2(count) },
            Simd::None => {}
        }
        self.factor_next_impl::<Scalar>(count)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn factor_next_avx2(&mut self, count: usize) {
        self.factor_next_impl::<Avx2>(count)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2")]
    fn factor_next_avx512(&mut self, count: usize) {
        self.factor_next_impl::<Avx512>(count)
    }

    #[inline(always)]
    fn factor_next_impl<K: Kernels>(&mut self, count: usize) {
        let n = self.n;
        let (start, end) = (self.done, self.done + count);
        // ‖rows j+1..n‖² of the next column to be factored, when known from a fused update.
        let mut tail_norm: Option<f64> = None;
        let last = n.min(start);
        for j in 0..last {
            let (tau, u0) = (self.tau[j], self.u0[j]);
            if tau == 0.0 {
                continue;
            }
            reflect_columns::<K>(&mut self.a, n, j, tau, u0, start..end, |c, t, _| {
                if j + 1 == last && c == start {
                    // The first new column's reflector norm, fused into its last update.
                    tail_norm = Some(t);
                }
            });
        }
        self.factor_own::<K>(start, end, tail_norm);
    }

    /// Gives each of columns `start..end` (to which every earlier reflector has been applied)
    /// its own reflector, in order, applying each to the columns after it. `tail_norm`:
    /// `‖rows start+1..n‖²` of column `start` if known.
    #[inline(always)]
    fn factor_own<K: Kernels>(&mut self, start: usize, end: usize, mut tail_norm: Option<f64>) {
        let n = self.n;
        for j in start..n.min(end) {
            let colj = &mut self.a[j * n + j..(j + 1) * n];
            let xnorm2 = match tail_norm.take() {
                Some(t) => t,
                None => K::dot(&colj[1..], &colj[1..]),
            };
            let (tau, u0) = make_reflector(colj, xnorm2);
            self.tau[j] = tau;
            self.u0[j] = u0;
            if tau != 0.0 {
                reflect_columns::<K>(&mut self.a, n, j, tau, u0, j + 1..end, |c, t, _| {
                    if c == j + 1 {
                        tail_norm = Some(t);
                    }
                });
            }
        }
        for j in n.min(end)..end {
            self.tau[j] = 0.0;
        }
        self.done = end;
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn factor_avx2(&mut self, extra: usize) {
        self.factor_impl::<Avx2>(extra)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2")]
    fn factor_avx512(&mut self, extra: usize) {
        self.factor_impl::<Avx512>(extra)
    }

    #[inline(always)]
    fn factor_impl<K: Kernels>(&mut self, extra: usize) {
        let (n, p) = (self.n, self.p);
        for (j, v) in self.perm.iter_mut().enumerate() {
            *v = j;
        }
        let steps = n.min(p);
        // Column norms over rows j..n (`norms`) and j+1..n (`tails`) at step j: computed here
        // for j = 0, then fused into each step's update of the remaining columns (exact, no
        // downdating, so no cancellation trouble).
        for c in 0..steps.min(p) {
            let col = &self.a[c * n..(c + 1) * n];
            let t = K::dot(&col[1..], &col[1..]);
            self.tails[c] = t;
            self.norms[c] = col[0] * col[0] + t;
        }
        for c in steps..p {
            let col = &self.a[c * n..(c + 1) * n];
            self.tails[c] = 0.0;
            self.norms[c] = K::dot(col, col);
        }
        // The first appended column's tail norm after the last reflector (for its own).
        let mut first_tail = None;
        for j in 0..steps {
            // Pivot: the remaining column with the largest norm over rows j..n.
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
            let xnorm2 = self.tails[j];
            // Householder reflector for column j, rows j..n.
            let colj = &mut self.a[j * n + j..(j + 1) * n];
            let (tau, u0) = make_reflector(colj, xnorm2);
            self.tau[j] = tau;
            self.u0[j] = u0;
            first_tail = None;
            if tau != 0.0 {
                // The remaining basis columns (their norms for the next pivot) and the
                // appended columns, in one pass per group of columns.
                let (tails, norms) = (&mut self.tails, &mut self.norms);
                reflect_columns::<K>(&mut self.a, n, j, tau, u0, j + 1..p + extra, |c, t, head| {
                    if c < p {
                        tails[c] = t;
                        norms[c] = head * head + t;
                    } else if c == p {
                        first_tail = Some(t);
                    }
                });
            } else if j + 1 < n {
                for c in j + 1..p {
                    let col = &self.a[c * n + j..(c + 1) * n];
                    let t = K::dot(&col[2..], &col[2..]);
                    self.tails[c] = t;
                    self.norms[c] = col[1] * col[1] + t;
                }
            }
        }
        for j in steps..p {
            self.tau[j] = 0.0;
        }
        self.done = p;
        let r00 = if steps > 0 { self.a[0].abs() } else { 0.0 };
        let tol = f64::EPSILON * n.max(p) as f64 * r00;
        self.rank = (0..steps).take_while(|&j| self.a[j * n + j].abs() > tol && r00 > 0.0).count();
        if extra > 0 {
            self.factor_own::<K>(p, p + extra, first_tail);
        }
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

    /// Column `j` of `R` above and on the diagonal: rows `0..=min(j, n−1)` (the rows below are
    /// zero). Pivoted order for `j < p`.
    pub fn r_col(&self, j: usize) -> &[f64] {
        &self.a[j * self.n..j * self.n + (j + 1).min(self.n)]
    }

    /// Number of rows `n`.
    pub fn n_rows(&self) -> usize {
        self.n
    }

    /// `v ← Qᵀ v` (length `n`).
    pub fn apply_qt(&self, v: &mut [f64]) {
        self.apply(v, true)
    }

    /// `v ← Q v` (length `n`).
    pub fn apply_q(&self, v: &mut [f64]) {
        self.apply(v, false)
    }

    /// Applies the reflectors `H_0 … H_{k−1}` of every factored column in order (`Qᵀ`) or in
    /// reverse (`Q`).
    fn apply(&self, v: &mut [f64], transpose: bool) {
        #[cfg(target_arch = "x86_64")]
        match simd_level() {
            // SAFETY: the CPU supports the instructions (`simd_level` checked).
            Simd::Avx512 => return unsafe { self.apply_avx512(v, transpose) },
            // SAFETY: as above.
            Simd::Avx2 => return unsafe { self.apply_avx2(v, transpose) },
            Simd::None => {}
        }
        self.apply_impl::<Scalar>(v, transpose)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn apply_avx2(&self, v: &mut [f64], transpose: bool) {
        self.apply_impl::<Avx2>(v, transpose)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2")]
    fn apply_avx512(&self, v: &mut [f64], transpose: bool) {
        self.apply_impl::<Avx512>(v, transpose)
    }

    #[inline(always)]
    fn apply_impl<K: Kernels>(&self, v: &mut [f64], transpose: bool) {
        let k = self.n.min(self.done);
        if transpose {
            (0..k).for_each(|j| self.reflect::<K>(j, v));
        } else {
            (0..k).rev().for_each(|j| self.reflect::<K>(j, v));
        }
    }

    /// `v ← H_j v` with `H_j = I − τ_j u_j u_jᵀ`.
    #[inline(always)]
    fn reflect<K: Kernels>(&self, j: usize, v: &mut [f64]) {
        let (tau, u0) = (self.tau[j], self.u0[j]);
        if tau == 0.0 {
            return;
        }
        let n = self.n;
        let h = &self.a[j * n + j + 1..(j + 1) * n];
        let w = tau * (u0 * v[j] + K::dot(h, &v[j + 1..]));
        v[j] -= w * u0;
        K::axpy(-w, h, &mut v[j + 1..]);
    }

    /// Solves `R₁₁ c = (Qᵀz)[..rank]` and writes `x = Π c` (zeros for the rank-deficient part),
    /// the basic least-squares solution of `min ‖A x − z‖` given `qtz = Qᵀ z`.
    pub fn solve_r(&self, qtz: &[f64], x: &mut [f64]) {
        let n = self.n;
        x.iter_mut().for_each(|v| *v = 0.0);
        let r = self.rank;
        let mut stack = [0.0; 16];
        let mut heap = Vec::new();
        let c = if r <= stack.len() {
            &mut stack[..r]
        } else {
            heap.resize(r, 0.0);
            &mut heap[..]
        };
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

/// Applies reflector `j` (`τ ≠ 0`, vector `(u₀, a[j·n+j+1..(j+1)·n])`) to columns `cols` of
/// the column-major `n`-row matrix `a` (all after column `j`), up to three columns per pass
/// (the reflector is loaded once per pass). For each column `c`, when `j + 1 < n`, calls
/// `f(c, ‖rows j+2..n‖², row j+1)` of the updated column. Every column gets exactly the
/// operations of a single-column update (`w = τ(u₀ c_j + hᵀc_{j+1..})`, `c −= w u`), so the
/// grouping does not change any bit.
#[inline(always)]
fn reflect_columns<K: Kernels>(
    a: &mut [f64],
    n: usize,
    j: usize,
    tau: f64,
    u0: f64,
    cols: std::ops::Range<usize>,
    mut f: impl FnMut(usize, f64, f64),
) {
    assert!(j < n && cols.start > j && cols.end * n <= a.len());
    let len = n - j - 1;
    let base = a.as_mut_ptr();
    let mut c = cols.start;
    while c < cols.end {
        let g = (cols.end - c).min(3);
        // SAFETY: column j's rows j+1..n (read) and rows j..n of columns c..c+g (written) are
        // disjoint (c > j) and inside `a` (asserted above).
        unsafe {
            match g {
                3 => reflect_group::<K, 3>(base, n, j, len, tau, u0, c, &mut f),
                2 => reflect_group::<K, 2>(base, n, j, len, tau, u0, c, &mut f),
                _ => reflect_group::<K, 1>(base, n, j, len, tau, u0, c, &mut f),
            }
        }
        c += g;
    }
}

/// [`reflect_columns`] for the `N` columns from `c0`.
///
/// # Safety
/// `base` is a column-major `n`-row matrix with at least `c0 + N` columns, `j < c0`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn reflect_group<K: Kernels, const N: usize>(
    base: *mut f64,
    n: usize,
    j: usize,
    len: usize,
    tau: f64,
    u0: f64,
    c0: usize,
    f: &mut impl FnMut(usize, f64, f64),
) {
    // SAFETY: see the function's contract; all pointers stay inside their columns' rows j..n.
    unsafe {
        let h = base.add(j * n + j + 1) as *const f64;
        let heads: [*mut f64; N] = std::array::from_fn(|i| base.add((c0 + i) * n + j));
        let dots = K::dot_n::<N>(h, heads.map(|p| p.add(1) as *const f64), len);
        let mut alpha = [0.0; N];
        for i in 0..N {
            let w = tau * (u0 * *heads[i] + dots[i]);
            *heads[i] -= w * u0;
            alpha[i] = -w;
        }
        let sums = K::axpy_sumsq_n::<N>(alpha, h, heads.map(|p| p.add(1)), len);
        if len > 0 {
            for i in 0..N {
                f(c0 + i, sums[i], *heads[i].add(1));
            }
        }
    }
}

/// Householder reflector for `x = col` (rows `j..n` of a column, `xnorm2 = ‖x[1..]‖²`):
/// `(I − τ u uᵀ) x = β e₁` with `β = −sign(x₀)‖x‖` and `u = x − β e₁`, so `u[1..] = x[1..]`
/// stays where it is (no pass over the column to normalise it) and only `u[0] = x₀ − β` is
/// returned; `col[0]` becomes `β`. Returns `(τ, u₀)` with `τ = 2/‖u‖²` (`τ = 0`: nothing to
/// reflect).
#[inline(always)]
fn make_reflector(col: &mut [f64], xnorm2: f64) -> (f64, f64) {
    let alpha = col[0];
    if xnorm2 == 0.0 {
        return (0.0, 0.0);
    }
    let norm = (alpha * alpha + xnorm2).sqrt();
    let beta = if alpha >= 0.0 { -norm } else { norm };
    let u0 = alpha - beta;
    col[0] = beta;
    // ‖u‖² = u₀² + ‖x[1..]‖² = 2‖x‖(‖x‖ + |x₀|) = −2β u₀.
    (1.0 / (-beta * u0), u0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appended columns factored later give the same `R` as factoring everything at once
    /// would, and `Q R` reproduces them.
    #[test]
    fn appended_columns_are_factored_in_q_coordinates() {
        let mut seed = 7u64;
        for &(n, p, extra) in &[(60, 3, 3), (9, 4, 5), (30, 0, 2), (5, 2, 6)] {
            let a: Vec<f64> = (0..n * (p + extra)).map(|_| lcg(&mut seed)).collect();
            let mut qr = PivotedQr::with_extra(n, p, extra);
            qr.a_mut().copy_from_slice(&a);
            qr.factor();
            qr.factor_next(1);
            qr.factor_next(extra - 1);
            for c in p..p + extra {
                let mut v = vec![0.0; n];
                let rc = qr.r_col(c);
                v[..rc.len()].copy_from_slice(rc);
                qr.apply_q(&mut v);
                for i in 0..n {
                    assert!((v[i] - a[c * n + i]).abs() < 1e-12, "n={n} p={p} column {c} row {i}");
                }
            }
        }
    }

    /// Fusing appended columns into the basis passes, and the portable, AVX2 and AVX-512
    /// kernels, all give the same factorisation bit for bit (shapes with n < p, p = 0, a zero
    /// column and duplicated columns included).
    #[test]
    fn factorisations_agree_bitwise_across_paths() {
        let mut seed = 19u64;
        for &(n, p, extra) in &[(256, 3, 3), (60, 3, 3), (9, 4, 5), (30, 0, 2), (5, 2, 6), (4, 6, 2), (33, 5, 7), (17, 2, 1)] {
            let mut a: Vec<f64> = (0..n * (p + extra)).map(|_| lcg(&mut seed)).collect();
            if p >= 2 {
                a.copy_within(0..n, n); // duplicated column: rank deficient
            }
            if p >= 3 {
                a[2 * n..3 * n].fill(0.0);
            }
            let run = |level: u8, fused: bool| {
                let mut qr = PivotedQr::with_extra(n, p, extra);
                qr.a_mut().copy_from_slice(&a);
                let first = extra.min(2);
                match (level, fused) {
                    (0, false) => {
                        qr.factor_impl::<Scalar>(0);
                        qr.factor_next_impl::<Scalar>(first);
                    }
                    (0, true) => qr.factor_impl::<Scalar>(first),
                    #[cfg(target_arch = "x86_64")]
                    (1, _) => unsafe { qr.factor_avx2(first) },
                    #[cfg(target_arch = "x86_64")]
                    (2, _) => unsafe { qr.factor_avx512(first) },
                    _ => unreachable!(),
                }
                match level {
                    #[cfg(target_arch = "x86_64")]
                    1 => unsafe { qr.factor_next_avx2(extra - first) },
                    #[cfg(target_arch = "x86_64")]
                    2 => unsafe { qr.factor_next_avx512(extra - first) },
                    _ => qr.factor_next_impl::<Scalar>(extra - first),
                }
                (qr.a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), qr.tau.clone(), qr.perm.clone(), qr.rank)
            };
            let reference = run(0, false);
            assert!(reference == run(0, true), "fused, n={n} p={p} extra={extra}");
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") {
                    assert!(reference == run(1, true), "AVX2, n={n} p={p} extra={extra}");
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    assert!(reference == run(2, true), "AVX-512, n={n} p={p} extra={extra}");
                }
            }
        }
    }

    /// The AVX2 and AVX-512 dot products have the association of the portable one, bit for bit.
    #[test]
    fn dot_kernels_agree_bitwise() {
        let mut seed = 11u64;
        for n in [0, 1, 5, 15, 16, 17, 31, 64, 100, 257] {
            let a: Vec<f64> = (0..n).map(|_| lcg(&mut seed) * 1e3).collect();
            let b: Vec<f64> = (0..n).map(|_| lcg(&mut seed)).collect();
            let s = Scalar::dot(&a, &b);
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 detected just above.
                assert_eq!(Avx2::dot(&a, &b).to_bits(), s.to_bits(), "n = {n}");
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: AVX-512F detected just above.
                assert_eq!(Avx512::dot(&a, &b).to_bits(), s.to_bits(), "n = {n}");
            }
            let naive: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((s - naive).abs() <= 1e-12 * a.iter().zip(&b).map(|(x, y)| (x * y).abs()).sum::<f64>());
            // The fused update and norm: same vector and bits either way, and the norm of the
            // updated tail.
            let mut y1 = b.clone();
            let t1 = axpy_sumsq_1::<Scalar>(-0.37, &a, &mut y1);
            let expect: Vec<f64> = b.iter().zip(&a).map(|(y, x)| y + -0.37 * x).collect();
            assert_eq!(y1, expect);
            let tail: f64 = expect.iter().skip(1).map(|v| v * v).sum();
            assert!((t1 - tail).abs() <= 1e-12 * tail.max(1e-300), "n = {n}: {t1} vs {tail}");
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                let mut y2 = b.clone();
                // SAFETY: AVX2 detected just above.
                let t2 = axpy_sumsq_1::<Avx2>(-0.37, &a, &mut y2);
                assert_eq!(y2, y1);
                assert_eq!(t2.to_bits(), t1.to_bits(), "n = {n}");
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                let mut y2 = b.clone();
                // SAFETY: AVX-512F detected just above.
                let t2 = axpy_sumsq_1::<Avx512>(-0.37, &a, &mut y2);
                assert_eq!(y2, y1);
                assert_eq!(t2.to_bits(), t1.to_bits(), "n = {n}");
            }
        }
    }

    /// The one-column update with its norm through a kernel set.
    fn axpy_sumsq_1<K: Kernels>(alpha: f64, x: &[f64], y: &mut [f64]) -> f64 {
        let n = x.len().min(y.len());
        // SAFETY: both slices hold `n` values and do not overlap. The vector kernel sets are
        // only passed after their features were detected.
        unsafe { K::axpy_sumsq_n::<1>([alpha], x.as_ptr(), [y.as_mut_ptr()], n)[0] }
    }

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
