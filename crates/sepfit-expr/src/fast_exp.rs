//! A vectorisable `exp` over slices, faithfully rounded (error < 1 ulp), so that it differs
//! from `f64::exp` (also faithful) by at most 1 ulp everywhere.
//!
//! Algorithm: fdlibm's `e_exp.c` (Sun, 1993) argument reduction and reconstruction, with the
//! rational approximation replaced by a polynomial (no division, which bounded the
//! throughput), and without table or branches in the main loop:
//!
//! ```text
//! k = round(x / ln2),   r = hi − lo,   hi = x − k·ln2_hi (exact),   lo = k·ln2_lo,
//! q = r² Σ_{j=0}^{11} r^j / (j+2)!            (|r| ≤ ½ ln2: truncation < r¹⁴/14! < 5e-18)
//! exp(x) = 2^k · (1 − ((lo − q) − hi))        (= 2^k (1 + r + q))
//! ```
//!
//! `q ≤ 0.07`, so its rounding errors are a few hundredths of an ulp of the result and, as in
//! fdlibm, the final sum keeps the bits of `lo`; the result is within 1 ulp (tested against
//! `f64::exp` on millions of points). `k` comes from adding 1.5·2^52 (which
//! rounds `x/ln2` to an integer held in the low bits) and `2^k` is built from its bits, so the
//! loop has no conversions, calls or branches and LLVM vectorises it (SSE2; AVX2 or AVX-512
//! where the CPU has them, chosen at run time). The polynomial is evaluated by Estrin's scheme
//! (a dependency chain of four fused multiply-adds instead of Horner's eleven, which bounded
//! the AVX2 loop by latency) with explicit `mul_add` and no other FMA contraction, so the
//! results are the same on every x86-64 CPU.
//!
//! For `|x| ≤ 708` the result is a normal number and `2^k` is exact. Everything else (overflow,
//! subnormal or zero results, ±∞, NaN) is recomputed by `f64::exp` in a second pass that only
//! runs when such an input occurs.

const LN2_HI: f64 = 6.931_471_803_691_238e-1; // 0x3fe62e42_fee00000
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10; // 0x3dea39ef_35793c76
/// `1/k!` for `k = 2..=13`.
const T: [f64; 12] = [
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
    1.0 / 40320.0,
    1.0 / 362880.0,
    1.0 / 3628800.0,
    1.0 / 39916800.0,
    1.0 / 479001600.0,
    1.0 / 6227020800.0,
];
/// 1.5·2^52: adding it rounds to an integer (to nearest) kept in the low mantissa bits.
const SHIFT: f64 = 6_755_399_441_055_744.0;
/// Inputs with `|x|` up to this take the fast path (result normal, `2^k` representable).
const FAST_MAX: f64 = 708.0;

#[inline(always)]
fn exp_core(x: f64) -> f64 {
    let t = x * std::f64::consts::LOG2_E + SHIFT;
    let kf = t - SHIFT;
    let k = (t.to_bits() as i64).wrapping_sub(SHIFT.to_bits() as i64);
    let hi = x - kf * LN2_HI;
    let lo = kf * LN2_LO;
    let r = hi - lo;
    // q = exp(r) − 1 − r by its Taylor series to degree 13 (no division), Estrin's scheme with
    // fused multiply-adds: correctly rounded with or without FMA hardware (`f64::mul_add` is
    // exact-then-rounded also in software), so every CPU gets the same bits.
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    let p0 = T[1].mul_add(r, T[0]);
    let p1 = T[3].mul_add(r, T[2]);
    let p2 = T[5].mul_add(r, T[4]);
    let p3 = T[7].mul_add(r, T[6]);
    let p4 = T[9].mul_add(r, T[8]);
    let p5 = T[11].mul_add(r, T[10]);
    let q0 = p1.mul_add(r2, p0);
    let q1 = p3.mul_add(r2, p2);
    let q2 = p5.mul_add(r2, p4);
    let s0 = q1.mul_add(r4, q0);
    let h = q2.mul_add(r8, s0);
    let q = r2 * h;
    let y = 1.0 - ((lo - q) - hi);
    let scale = f64::from_bits((k.wrapping_add(1023) as u64).wrapping_shl(52));
    y * scale
}

// `!(|x| <= FAST_MAX)` is deliberately true for NaN (which takes the slow path), in one
// branch-free comparison that the loop vectorises.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
#[inline(always)]
fn exp_slice_impl(dst: &mut [f64], src: &[f64]) {
    let mut slow = false;
    for (d, &x) in dst.iter_mut().zip(src) {
        *d = exp_core(x);
        slow |= !(x.abs() <= FAST_MAX);
    }
    if slow {
        for (d, &x) in dst.iter_mut().zip(src) {
            if !(x.abs() <= FAST_MAX) {
                *d = x.exp();
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn exp_slice_avx2(dst: &mut [f64], src: &[f64]) {
    exp_slice_impl(dst, src)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
fn exp_slice_avx512(dst: &mut [f64], src: &[f64]) {
    exp_slice_impl(dst, src)
}

/// `exp(x)` for one number, with the same bits as [`exp_slice`] gives for it.
#[inline(always)]
pub(crate) fn exp(x: f64) -> f64 {
    if x.abs() <= FAST_MAX { exp_core(x) } else { x.exp() }
}

/// `dst[i] = exp(src[i])` over the common length, within 1 ulp of `f64::exp`.
pub(crate) fn exp_slice(dst: &mut [f64], src: &[f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("fma")
    {
        // SAFETY: the CPU supports these features (checked just above).
        return unsafe { exp_slice_avx512(dst, src) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { exp_slice_avx2(dst, src) };
    }
    exp_slice_impl(dst, src)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two doubles (0 for equal values, both NaN,
    /// or equal infinities; `u64::MAX` if one is NaN and the other not).
    fn ulps(a: f64, b: f64) -> u64 {
        if a.is_nan() || b.is_nan() {
            return if a.is_nan() && b.is_nan() { 0 } else { u64::MAX };
        }
        // Map the bits to a monotone integer line (−0 and +0 coincide).
        let key = |v: f64| {
            let i = v.to_bits() as i64;
            if i < 0 { i64::MIN - i } else { i }
        };
        key(a).abs_diff(key(b))
    }

    fn check(xs: &[f64]) -> (u64, f64) {
        let mut out = vec![0.0; xs.len()];
        exp_slice(&mut out, xs);
        let mut worst = (0u64, f64::NAN);
        for (&x, &e) in xs.iter().zip(&out) {
            let d = ulps(e, x.exp());
            if d > worst.0 || worst.1.is_nan() {
                worst = (d.max(worst.0), x);
            }
            assert!(d <= 1, "exp({x:e}) = {e:e} vs f64::exp {:e}: {d} ulps", x.exp());
        }
        // The generic path and each vector path the CPU has give identical results.
        let same = |other: &[f64]| {
            for (a, b) in out.iter().zip(other) {
                assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
            }
        };
        let mut out2 = vec![0.0; xs.len()];
        exp_slice_impl(&mut out2, xs);
        same(&out2);
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") && has!("fma") {
                // SAFETY: the CPU has the features (checked).
                unsafe { exp_slice_avx2(&mut out2, xs) };
                same(&out2);
            }
            if has!("avx512f") && has!("avx512dq") && has!("avx512vl") && has!("fma") {
                // SAFETY: the CPU has the features (checked).
                unsafe { exp_slice_avx512(&mut out2, xs) };
                same(&out2);
            }
        }
        worst
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn edge_cases() {
        let mut xs = vec![
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            f64::EPSILON,
            -f64::EPSILON,
            5e-324,
            -5e-324,
            1e-300,
            -1e-300,
            1e-17,
            -1e-17,
            709.782712893384,
            709.7827128933841,
            709.78,
            710.0,
            -708.3964185322641,
            -708.4,
            -745.1332191019411,
            -745.1332191019412,
            -745.2,
            -746.0,
            -1000.0,
            1000.0,
        ];
        // Around the fast-path limits, the rounding ties of x/ln2 and multiples of ln2.
        for &c in &[708.0, -708.0, 709.0, -709.0, 707.0, -707.0] {
            let mut v = c;
            for _ in 0..64 {
                xs.push(v);
                v = f64::from_bits(v.to_bits() + 1);
            }
            let mut v = c;
            for _ in 0..64 {
                xs.push(v);
                v = f64::from_bits(v.to_bits() - 1);
            }
        }
        for k in -1100..=1100 {
            let base = (k as f64 + 0.5) * std::f64::consts::LN_2;
            for d in -4i64..=4 {
                xs.push(f64::from_bits((base.to_bits() as i64 + d) as u64));
                let m = k as f64 * std::f64::consts::LN_2;
                xs.push(f64::from_bits((m.to_bits() as i64 + d) as u64));
            }
        }
        check(&xs);
        let mut out = vec![0.0; 5];
        exp_slice(&mut out, &[f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 0.0, 1000.0]);
        assert_eq!(out[0], f64::INFINITY);
        assert_eq!(out[1], 0.0);
        assert!(out[2].is_nan());
        assert_eq!(out[3], 1.0);
        assert_eq!(out[4], f64::INFINITY);
    }

    /// Millions of points: uniform over the whole range where exp is neither 0 nor ∞ (and a
    /// little beyond), log-uniform magnitudes down to subnormal inputs, and random bit patterns.
    #[test]
    fn within_one_ulp_of_std_exp() {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let n = 1 << 20;
        let uniform: Vec<f64> = (0..n).map(|_| -750.0 + 1462.0 * rng.unit()).collect();
        check(&uniform);
        let small: Vec<f64> = (0..n).map(|_| -1.0 + 2.0 * rng.unit()).collect();
        check(&small);
        let logu: Vec<f64> = (0..n)
            .map(|_| {
                let mag = 10f64.powf(-320.0 + 323.0 * rng.unit());
                if rng.next() & 1 == 0 { mag } else { -mag }
            })
            .collect();
        check(&logu);
        let bits: Vec<f64> = (0..n).map(|_| f64::from_bits(rng.next())).collect();
        check(&bits);
        // Short and odd lengths (vector remainders).
        for len in 0..20 {
            check(&uniform[..len]);
        }
    }
}
