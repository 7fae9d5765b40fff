//! Vector kernels shared by the QR, variable projection and Levenberg–Marquardt: dot
//! products and AXPYs with one fixed association (bit-identical on every instruction set),
//! finiteness checks, and the one run-time dispatch on the CPU's vector instructions.

#[inline(always)]
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    // Sixteen accumulators in a fixed association: four independent 4-lane chains (the add
    // latency, not the loads, bounds a dot product with fewer), and more accurate than one
    // running sum. Leftover blocks of four go to the first chain and at most three products
    // are added one by one. The same association with or without AVX2.
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut s = [[0.0f64; 4]; 4];
    let n16 = n - n % 16;
    for (x, y) in a[..n16].chunks_exact(16).zip(b[..n16].chunks_exact(16)) {
        for (k, acc) in s.iter_mut().enumerate() {
            let (x, y) = (&x[4 * k..4 * k + 4], &y[4 * k..4 * k + 4]);
            acc[0] += x[0] * y[0];
            acc[1] += x[1] * y[1];
            acc[2] += x[2] * y[2];
            acc[3] += x[3] * y[3];
        }
    }
    let n4 = n - n % 4;
    for (x, y) in a[n16..n4].chunks_exact(4).zip(b[n16..n4].chunks_exact(4)) {
        for l in 0..4 {
            s[0][l] += x[l] * y[l];
        }
    }
    let mut t4 = [0.0f64; 4];
    for (l, v) in t4.iter_mut().enumerate() {
        *v = (s[0][l] + s[1][l]) + (s[2][l] + s[3][l]);
    }
    let mut t = (t4[0] + t4[1]) + (t4[2] + t4[3]);
    for (x, y) in a[n4..].iter().zip(&b[n4..]) {
        t += x * y;
    }
    t
}

/// The two vector kernels of the factorisation, with one association of the sums for every
/// implementation (results are bit-identical whichever runs).
pub(crate) trait Kernels {
    /// `hᵀc` for each of `N` columns `c` of length `len`, each with the association of
    /// [`dot`] (a vector version loads `h` once for all of them).
    ///
    /// # Safety
    /// `h` and every `cols[i]` are valid for `len` reads.
    unsafe fn dot_n<const N: usize>(h: *const f64, cols: [*const f64; N], len: usize) -> [f64; N];
    /// `c ← c + α_c h` for each of `N` columns of length `len`, returning `‖c[1..]‖²` of each
    /// (the association of [`axpy_sumsq`]).
    ///
    /// # Safety
    /// `h` is valid for `len` reads, every `cols[i]` for `len` reads and writes, and the
    /// columns do not overlap `h` or each other.
    unsafe fn axpy_sumsq_n<const N: usize>(alpha: [f64; N], h: *const f64, cols: [*mut f64; N], len: usize) -> [f64; N];
    /// `aᵀb` (see [`dot`]).
    #[inline(always)]
    fn dot(a: &[f64], b: &[f64]) -> f64 {
        // SAFETY: both slices hold the common length.
        unsafe { Self::dot_n::<1>(a.as_ptr(), [b.as_ptr()], a.len().min(b.len()))[0] }
    }
    /// `y ← y + αx`.
    #[inline(always)]
    fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
        axpy(alpha, x, y)
    }
}

/// Portable kernels: the multi-column versions are the single-column ones in turn.
pub(crate) struct Scalar;

impl Kernels for Scalar {
    #[inline(always)]
    unsafe fn dot_n<const N: usize>(h: *const f64, cols: [*const f64; N], len: usize) -> [f64; N] {
        // SAFETY: the caller's contract.
        let h = unsafe { std::slice::from_raw_parts(h, len) };
        // SAFETY: as above.
        cols.map(|c| dot(h, unsafe { std::slice::from_raw_parts(c, len) }))
    }
    #[inline(always)]
    unsafe fn axpy_sumsq_n<const N: usize>(alpha: [f64; N], h: *const f64, cols: [*mut f64; N], len: usize) -> [f64; N] {
        // SAFETY: the caller's contract.
        let h = unsafe { std::slice::from_raw_parts(h, len) };
        // SAFETY: as above.
        std::array::from_fn(|i| axpy_sumsq(alpha[i], h, unsafe { std::slice::from_raw_parts_mut(cols[i], len) }))
    }
}

/// AVX2 kernels; only used from functions compiled with AVX2 after a run-time check.
#[cfg(target_arch = "x86_64")]
pub(crate) struct Avx2;

#[cfg(target_arch = "x86_64")]
impl Kernels for Avx2 {
    #[inline(always)]
    unsafe fn dot_n<const N: usize>(h: *const f64, cols: [*const f64; N], len: usize) -> [f64; N] {
        // SAFETY: the caller's contract; AVX2 was detected before entering this path.
        unsafe { dot_n_avx2::<N>(h, cols, len) }
    }
    #[inline(always)]
    unsafe fn axpy_sumsq_n<const N: usize>(alpha: [f64; N], h: *const f64, cols: [*mut f64; N], len: usize) -> [f64; N] {
        // SAFETY: the caller's contract; AVX2 was detected before entering this path.
        unsafe { axpy_sumsq_n_avx2::<N>(alpha, h, cols, len) }
    }
}

/// The widest vector instructions of this CPU that the kernels use.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Simd {
    None,
    Avx2,
    Avx512,
}

/// Detected once (the standard library caches the CPUID answers).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn simd_level() -> Simd {
    if std::arch::is_x86_feature_detected!("avx512f") {
        Simd::Avx512
    } else if std::arch::is_x86_feature_detected!("avx2") {
        Simd::Avx2
    } else {
        Simd::None
    }
}

/// AVX-512 kernels: the same sixteen accumulators as two 8-lane registers (`[s₀|s₁]`,
/// `[s₂|s₃]`), so the same association and bits; only used from functions compiled with
/// AVX-512F after a run-time check.
#[cfg(target_arch = "x86_64")]
pub(crate) struct Avx512;

#[cfg(target_arch = "x86_64")]
impl Kernels for Avx512 {
    #[inline(always)]
    unsafe fn dot_n<const N: usize>(h: *const f64, cols: [*const f64; N], len: usize) -> [f64; N] {
        // SAFETY: the caller's contract; AVX-512F was detected before entering this path.
        unsafe { dot_n_avx512::<N>(h, cols, len) }
    }
    #[inline(always)]
    unsafe fn axpy_sumsq_n<const N: usize>(alpha: [f64; N], h: *const f64, cols: [*mut f64; N], len: usize) -> [f64; N] {
        // SAFETY: the caller's contract; AVX-512F was detected before entering this path.
        unsafe { axpy_sumsq_n_avx512::<N>(alpha, h, cols, len) }
    }
}

/// Horizontal sum of four 4-lane accumulators in the association of [`dot`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn reduce4(s: [std::arch::x86_64::__m256d; 4]) -> f64 {
    use std::arch::x86_64::*;
    let t = _mm256_add_pd(_mm256_add_pd(s[0], s[1]), _mm256_add_pd(s[2], s[3]));
    let mut t4 = [0.0f64; 4];
    // SAFETY: `t4` holds four doubles.
    unsafe { _mm256_storeu_pd(t4.as_mut_ptr(), t) };
    (t4[0] + t4[1]) + (t4[2] + t4[3])
}

/// [`dot`] of `h` with each of `N` columns in one pass, 4-lane vectors (same association).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn dot_n_avx2<const N: usize>(h: *const f64, cols: [*const f64; N], len: usize) -> [f64; N] {
    use std::arch::x86_64::*;
    // SAFETY: every load reads indices < len of `h` and of each column.
    unsafe {
        let mut s = [[_mm256_setzero_pd(); 4]; N];
        let mut i = 0;
        while i + 16 <= len {
            for k in 0..4 {
                let hv = _mm256_loadu_pd(h.add(i + 4 * k));
                for c in 0..N {
                    s[c][k] = _mm256_add_pd(s[c][k], _mm256_mul_pd(hv, _mm256_loadu_pd(cols[c].add(i + 4 * k))));
                }
            }
            i += 16;
        }
        while i + 4 <= len {
            let hv = _mm256_loadu_pd(h.add(i));
            for c in 0..N {
                s[c][0] = _mm256_add_pd(s[c][0], _mm256_mul_pd(hv, _mm256_loadu_pd(cols[c].add(i))));
            }
            i += 4;
        }
        std::array::from_fn(|c| {
            let mut t = reduce4(s[c]);
            for r in i..len {
                t += *h.add(r) * *cols[c].add(r);
            }
            t
        })
    }
}

/// [`axpy_sumsq`] on each of `N` columns in one pass, 4-lane vectors (same association).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn axpy_sumsq_n_avx2<const N: usize>(alpha: [f64; N], h: *const f64, cols: [*mut f64; N], len: usize) -> [f64; N] {
    use std::arch::x86_64::*;
    if len == 0 {
        return [0.0; N];
    }
    // SAFETY: every access is at indices < len of `h` and of each column.
    unsafe {
        for c in 0..N {
            *cols[c] += alpha[c] * *h;
        }
        let (px, m) = (h.add(1), len - 1);
        let py: [*mut f64; N] = cols.map(|c| c.add(1));
        let va: [__m256d; N] = alpha.map(|a| _mm256_set1_pd(a));
        let mut s = [[_mm256_setzero_pd(); 4]; N];
        let mut i = 0;
        while i + 16 <= m {
            for k in 0..4 {
                let xv = _mm256_loadu_pd(px.add(i + 4 * k));
                for c in 0..N {
                    let y = _mm256_add_pd(_mm256_loadu_pd(py[c].add(i + 4 * k)), _mm256_mul_pd(va[c], xv));
                    _mm256_storeu_pd(py[c].add(i + 4 * k), y);
                    s[c][k] = _mm256_add_pd(s[c][k], _mm256_mul_pd(y, y));
                }
            }
            i += 16;
        }
        while i + 4 <= m {
            let xv = _mm256_loadu_pd(px.add(i));
            for c in 0..N {
                let y = _mm256_add_pd(_mm256_loadu_pd(py[c].add(i)), _mm256_mul_pd(va[c], xv));
                _mm256_storeu_pd(py[c].add(i), y);
                s[c][0] = _mm256_add_pd(s[c][0], _mm256_mul_pd(y, y));
            }
            i += 4;
        }
        std::array::from_fn(|c| {
            let mut t = reduce4(s[c]);
            for r in i..m {
                let v = *py[c].add(r) + alpha[c] * *px.add(r);
                *py[c].add(r) = v;
                t += v * v;
            }
            t
        })
    }
}

/// Splits two 8-lane accumulators `[s₀|s₁]`, `[s₂|s₃]` into the four 4-lane ones.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2")]
#[inline]
fn split8(s01: std::arch::x86_64::__m512d, s23: std::arch::x86_64::__m512d) -> [std::arch::x86_64::__m256d; 4] {
    use std::arch::x86_64::*;
    [
        _mm512_castpd512_pd256(s01),
        _mm512_extractf64x4_pd::<1>(s01),
        _mm512_castpd512_pd256(s23),
        _mm512_extractf64x4_pd::<1>(s23),
    ]
}

/// [`dot`] of `h` with each of `N` columns in one pass, the sixteen accumulators in two
/// 8-lane registers per column (same association).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2")]
#[inline]
unsafe fn dot_n_avx512<const N: usize>(h: *const f64, cols: [*const f64; N], len: usize) -> [f64; N] {
    use std::arch::x86_64::*;
    // SAFETY: every load reads indices < len of `h` and of each column.
    unsafe {
        let mut s01 = [_mm512_setzero_pd(); N];
        let mut s23 = [_mm512_setzero_pd(); N];
        let mut i = 0;
        while i + 16 <= len {
            let (h01, h23) = (_mm512_loadu_pd(h.add(i)), _mm512_loadu_pd(h.add(i + 8)));
            for c in 0..N {
                s01[c] = _mm512_add_pd(s01[c], _mm512_mul_pd(h01, _mm512_loadu_pd(cols[c].add(i))));
                s23[c] = _mm512_add_pd(s23[c], _mm512_mul_pd(h23, _mm512_loadu_pd(cols[c].add(i + 8))));
            }
            i += 16;
        }
        let mut s: [[__m256d; 4]; N] = std::array::from_fn(|c| split8(s01[c], s23[c]));
        while i + 4 <= len {
            let hv = _mm256_loadu_pd(h.add(i));
            for c in 0..N {
                s[c][0] = _mm256_add_pd(s[c][0], _mm256_mul_pd(hv, _mm256_loadu_pd(cols[c].add(i))));
            }
            i += 4;
        }
        std::array::from_fn(|c| {
            let mut t = reduce4(s[c]);
            for r in i..len {
                t += *h.add(r) * *cols[c].add(r);
            }
            t
        })
    }
}

/// [`axpy_sumsq`] on each of `N` columns in one pass, 8-lane vectors (same association).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2")]
#[inline]
unsafe fn axpy_sumsq_n_avx512<const N: usize>(alpha: [f64; N], h: *const f64, cols: [*mut f64; N], len: usize) -> [f64; N] {
    use std::arch::x86_64::*;
    if len == 0 {
        return [0.0; N];
    }
    // SAFETY: every access is at indices < len of `h` and of each column.
    unsafe {
        for c in 0..N {
            *cols[c] += alpha[c] * *h;
        }
        let (px, m) = (h.add(1), len - 1);
        let py: [*mut f64; N] = cols.map(|c| c.add(1));
        let va8: [__m512d; N] = alpha.map(|a| _mm512_set1_pd(a));
        let mut s01 = [_mm512_setzero_pd(); N];
        let mut s23 = [_mm512_setzero_pd(); N];
        let mut i = 0;
        while i + 16 <= m {
            let (x01, x23) = (_mm512_loadu_pd(px.add(i)), _mm512_loadu_pd(px.add(i + 8)));
            for c in 0..N {
                let y01 = _mm512_add_pd(_mm512_loadu_pd(py[c].add(i)), _mm512_mul_pd(va8[c], x01));
                let y23 = _mm512_add_pd(_mm512_loadu_pd(py[c].add(i + 8)), _mm512_mul_pd(va8[c], x23));
                _mm512_storeu_pd(py[c].add(i), y01);
                _mm512_storeu_pd(py[c].add(i + 8), y23);
                s01[c] = _mm512_add_pd(s01[c], _mm512_mul_pd(y01, y01));
                s23[c] = _mm512_add_pd(s23[c], _mm512_mul_pd(y23, y23));
            }
            i += 16;
        }
        let mut s: [[__m256d; 4]; N] = std::array::from_fn(|c| split8(s01[c], s23[c]));
        let va: [__m256d; N] = alpha.map(|a| _mm256_set1_pd(a));
        while i + 4 <= m {
            let xv = _mm256_loadu_pd(px.add(i));
            for c in 0..N {
                let y = _mm256_add_pd(_mm256_loadu_pd(py[c].add(i)), _mm256_mul_pd(va[c], xv));
                _mm256_storeu_pd(py[c].add(i), y);
                s[c][0] = _mm256_add_pd(s[c][0], _mm256_mul_pd(y, y));
            }
            i += 4;
        }
        std::array::from_fn(|c| {
            let mut t = reduce4(s[c]);
            for r in i..m {
                let v = *py[c].add(r) + alpha[c] * *px.add(r);
                *py[c].add(r) = v;
                t += v * v;
            }
            t
        })
    }
}

/// `y ← y + αx`, returning `‖y[1..]‖²` of the updated `y` (the squared norm below the next
/// pivot row, for the next Householder step), summed with the association of [`dot`].
#[inline(always)]
pub(crate) fn axpy_sumsq(alpha: f64, x: &[f64], y: &mut [f64]) -> f64 {
    let n = x.len().min(y.len());
    if n == 0 {
        return 0.0;
    }
    y[0] += alpha * x[0];
    let (x, y) = (&x[1..n], &mut y[1..n]);
    let m = n - 1;
    let mut s = [[0.0f64; 4]; 4];
    let m16 = m - m % 16;
    for (xc, yc) in x[..m16].chunks_exact(16).zip(y[..m16].chunks_exact_mut(16)) {
        for (k, acc) in s.iter_mut().enumerate() {
            for l in 0..4 {
                let v = yc[4 * k + l] + alpha * xc[4 * k + l];
                yc[4 * k + l] = v;
                acc[l] += v * v;
            }
        }
    }
    let m4 = m - m % 4;
    for (xc, yc) in x[m16..m4].chunks_exact(4).zip(y[m16..m4].chunks_exact_mut(4)) {
        for l in 0..4 {
            let v = yc[l] + alpha * xc[l];
            yc[l] = v;
            s[0][l] += v * v;
        }
    }
    let mut t4 = [0.0f64; 4];
    for (l, v) in t4.iter_mut().enumerate() {
        *v = (s[0][l] + s[1][l]) + (s[2][l] + s[3][l]);
    }
    let mut t = (t4[0] + t4[1]) + (t4[2] + t4[3]);
    for (xi, yi) in x[m4..].iter().zip(&mut y[m4..]) {
        let v = *yi + alpha * xi;
        *yi = v;
        t += v * v;
    }
    t
}

#[inline(always)]
pub(crate) fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}


/// Whether every value is finite (branch-free, vectorisable).
#[inline]
pub(crate) fn all_finite(v: &[f64]) -> bool {
    const EXP: u64 = 0x7ff0_0000_0000_0000;
    !v.iter().fold(false, |bad, x| bad | (x.to_bits() & EXP == EXP))
}

/// The index and value of the first non-finite entry of `v`: one branch-free pass
/// ([`all_finite`]) when there is none, the search only when there is one.
#[inline]
pub(crate) fn first_non_finite(v: &[f64]) -> Option<(usize, f64)> {
    if all_finite(v) {
        return None;
    }
    v.iter().copied().enumerate().find(|(_, x)| !x.is_finite())
}

/// `dst = w ⊙ src`; returns whether every `src` value is finite (checked in the same pass).
/// Compiled for AVX2 too and chosen at run time (element-wise: the same results either way).
pub(crate) fn weighted_copy(src: &[f64], w: &[f64], dst: &mut [f64]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if simd_level() != Simd::None {
        // SAFETY: the CPU supports AVX2 (checked just above; AVX-512F implies it).
        return unsafe { weighted_copy_avx2(src, w, dst) };
    }
    weighted_copy_impl(src, w, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn weighted_copy_avx2(src: &[f64], w: &[f64], dst: &mut [f64]) -> bool {
    weighted_copy_impl(src, w, dst)
}

#[inline(always)]
fn weighted_copy_impl(src: &[f64], w: &[f64], dst: &mut [f64]) -> bool {
    const EXP: u64 = 0x7ff0_0000_0000_0000;
    let mut bad = false;
    for ((d, s), w) in dst.iter_mut().zip(src).zip(w) {
        *d = w * s;
        bad |= s.to_bits() & EXP == EXP;
    }
    !bad
}
