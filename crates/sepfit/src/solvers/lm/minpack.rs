//! The MINPACK pieces of the Levenberg–Marquardt iteration (Moré 1978): overflow-safe norms,
//! the column-pivoted QR of the Jacobian (`qrfac`), the Givens solve for a trial `λ`
//! (`qrsolv`) and the Levenberg parameter search (`lmpar`).

use crate::linalg::kernels::{axpy, dot};
pub(super) use crate::linalg::kernels::all_finite;

/// Euclidean norm, safe against overflow and underflow. Fast path: the plain sum of squares
/// (four accumulators, vectorised) when it is finite and far above the underflow range, so
/// that no term overflowed and underflowed terms are negligible; otherwise the scaled
/// one-pass algorithm (which also handles ∞ and NaN).
pub(super) fn enorm(v: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let chunks = v.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        acc[0] += c[0] * c[0];
        acc[1] += c[1] * c[1];
        acc[2] += c[2] * c[2];
        acc[3] += c[3] * c[3];
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for x in rest {
        s += x * x;
    }
    // 2^-900: any term below 2^-1022 contributes less than n·2^-122 relative.
    if s.is_finite() && s >= 1.2e-271 {
        return s.sqrt();
    }
    enorm_it(v.iter().copied())
}

/// Scaled two-norm of an iterator, safe against overflow/underflow.
pub(super) fn enorm_it(v: impl Iterator<Item = f64>) -> f64 {
    let mut scale = 0.0f64;
    let mut ssq = 1.0f64;
    for x in v {
        if x != 0.0 {
            let a = x.abs();
            if scale < a {
                ssq = 1.0 + ssq * (scale / a) * (scale / a);
                scale = a;
            } else {
                ssq += (a / scale) * (a / scale);
            }
        }
    }
    scale * ssq.sqrt()
}

/// After [`qrfac`]: `qtf = (Qᵀ f)[..nf]` by the Householder vectors stored below the diagonal
/// of `a` (scratch `wa4`, length `n`), and the diagonal of `a` set to `R`'s (`rdiag`).
pub(super) fn qt_f(n: usize, nf: usize, a: &mut [f64], rdiag: &[f64], f: &[f64], wa4: &mut [f64], qtf: &mut [f64]) {
    wa4.copy_from_slice(f);
    for j in 0..nf {
        let ajj = a[j + j * n];
        if ajj != 0.0 {
            let colj = &a[j + j * n..(j + 1) * n];
            let temp = -dot(colj, &wa4[j..n]) / ajj;
            axpy(temp, colj, &mut wa4[j..n]);
        }
        a[j + j * n] = rdiag[j];
        qtf[j] = wa4[j];
    }
}

/// Column-pivoted Householder QR of the `n × m` column-major `a` (leading dim `ld`), MINPACK `qrfac`.
#[allow(clippy::too_many_arguments)]
pub(super) fn qrfac(
    n: usize,
    m: usize,
    a: &mut [f64],
    ld: usize,
    ipvt: &mut [usize],
    rdiag: &mut [f64],
    acnorm: &mut [f64],
    wa: &mut [f64],
) {
    let eps = f64::EPSILON;
    for j in 0..m {
        acnorm[j] = enorm(&a[j * ld..j * ld + n]);
        rdiag[j] = acnorm[j];
        wa[j] = rdiag[j];
        ipvt[j] = j;
    }
    for j in 0..m.min(n) {
        let mut kmax = j;
        for k in j..m {
            if rdiag[k] > rdiag[kmax] {
                kmax = k;
            }
        }
        if kmax != j {
            for i in 0..n {
                a.swap(i + j * ld, i + kmax * ld);
            }
            rdiag[kmax] = rdiag[j];
            wa[kmax] = wa[j];
            ipvt.swap(j, kmax);
        }
        let mut ajnorm = enorm(&a[j + j * ld..n + j * ld]);
        if ajnorm != 0.0 {
            if a[j + j * ld] < 0.0 {
                ajnorm = -ajnorm;
            }
            for v in &mut a[j + j * ld..n + j * ld] {
                *v /= ajnorm;
            }
            a[j + j * ld] += 1.0;
            for k in j + 1..m {
                let (left, right) = a.split_at_mut(k * ld);
                let colj = &left[j + j * ld..n + j * ld];
                let colk = &mut right[j..n];
                let temp = dot(colj, colk) / colj[0];
                axpy(-temp, colj, colk);
                if rdiag[k] != 0.0 {
                    let t = a[j + k * ld] / rdiag[k];
                    rdiag[k] *= (1.0 - t * t).max(0.0).sqrt();
                    if 0.05 * (rdiag[k] / wa[k]).powi(2) <= eps {
                        rdiag[k] = enorm(&a[j + 1 + k * ld..n + k * ld]);
                        wa[k] = rdiag[k];
                    }
                }
            }
        }
        rdiag[j] = -ajnorm;
    }
}

/// MINPACK `qrsolv`: solves `[R; √λ D] z ≈ [Qᵀf; 0]` given the QR of `J`.
#[allow(clippy::too_many_arguments)]
pub(super) fn qrsolv(
    m: usize,
    r: &mut [f64],
    ld: usize,
    ipvt: &[usize],
    diag: &[f64],
    qtb: &[f64],
    x: &mut [f64],
    sdiag: &mut [f64],
    wa: &mut [f64],
) {
    for j in 0..m {
        for i in j..m {
            r[i + j * ld] = r[j + i * ld];
        }
        x[j] = r[j + j * ld];
        wa[j] = qtb[j];
    }
    for j in 0..m {
        let l = ipvt[j];
        if diag[l] != 0.0 {
            for s in sdiag[j..m].iter_mut() {
                *s = 0.0;
            }
            sdiag[j] = diag[l];
            let mut qtbpj = 0.0;
            for k in j..m {
                if sdiag[k] == 0.0 {
                    continue;
                }
                let rkk = r[k + k * ld];
                let (sin, cos);
                if rkk.abs() < sdiag[k].abs() {
                    let cotan = rkk / sdiag[k];
                    sin = 0.5 / (0.25 + 0.25 * cotan * cotan).sqrt();
                    cos = sin * cotan;
                } else {
                    let tan = sdiag[k] / rkk;
                    cos = 0.5 / (0.25 + 0.25 * tan * tan).sqrt();
                    sin = cos * tan;
                }
                r[k + k * ld] = cos * rkk + sin * sdiag[k];
                let temp = cos * wa[k] + sin * qtbpj;
                qtbpj = -sin * wa[k] + cos * qtbpj;
                wa[k] = temp;
                for i in k + 1..m {
                    let temp = cos * r[i + k * ld] + sin * sdiag[i];
                    sdiag[i] = -sin * r[i + k * ld] + cos * sdiag[i];
                    r[i + k * ld] = temp;
                }
            }
        }
        sdiag[j] = r[j + j * ld];
        r[j + j * ld] = x[j];
    }
    let mut nsing = m;
    for j in 0..m {
        if sdiag[j] == 0.0 && nsing == m {
            nsing = j;
        }
        if nsing < m {
            wa[j] = 0.0;
        }
    }
    for j in (0..nsing).rev() {
        let mut sum = 0.0;
        for i in j + 1..nsing {
            sum += r[i + j * ld] * wa[i];
        }
        wa[j] = (wa[j] - sum) / sdiag[j];
    }
    for j in 0..m {
        x[ipvt[j]] = wa[j];
    }
}

/// MINPACK `lmpar`: finds `λ` such that `‖D p(λ)‖ ≈ Δ` (within 10 %), or `λ = 0`
/// if the Gauss–Newton step is inside the region. Returns `x = −p`.
#[allow(clippy::too_many_arguments)]
pub(super) fn lmpar(
    m: usize,
    r: &mut [f64],
    ld: usize,
    ipvt: &[usize],
    diag: &[f64],
    qtb: &[f64],
    delta: f64,
    par: &mut f64,
    x: &mut [f64],
    sdiag: &mut [f64],
    wa1: &mut [f64],
    wa2: &mut [f64],
) {
    let dwarf = f64::MIN_POSITIVE;
    let mut nsing = m;
    for j in 0..m {
        wa1[j] = qtb[j];
        if r[j + j * ld] == 0.0 && nsing == m {
            nsing = j;
        }
        if nsing < m {
            wa1[j] = 0.0;
        }
    }
    for j in (0..nsing).rev() {
        wa1[j] /= r[j + j * ld];
        let temp = wa1[j];
        for i in 0..j {
            wa1[i] -= r[i + j * ld] * temp;
        }
    }
    for j in 0..m {
        x[ipvt[j]] = wa1[j];
    }
    for j in 0..m {
        wa2[j] = diag[j] * x[j];
    }
    let mut dxnorm = enorm(&wa2[..m]);
    let mut fp = dxnorm - delta;
    if fp <= 0.1 * delta {
        *par = 0.0;
        return;
    }
    let mut parl = 0.0;
    if nsing >= m {
        for j in 0..m {
            let l = ipvt[j];
            wa1[j] = diag[l] * (wa2[l] / dxnorm);
        }
        for j in 0..m {
            let mut sum = 0.0;
            for i in 0..j {
                sum += r[i + j * ld] * wa1[i];
            }
            wa1[j] = (wa1[j] - sum) / r[j + j * ld];
        }
        let temp = enorm(&wa1[..m]);
        parl = ((fp / delta) / temp) / temp;
    }
    for j in 0..m {
        let mut sum = 0.0;
        for i in 0..=j {
            sum += r[i + j * ld] * qtb[i];
        }
        wa1[j] = sum / diag[ipvt[j]];
    }
    let gnorm = enorm(&wa1[..m]);
    let mut paru = gnorm / delta;
    if paru == 0.0 {
        paru = dwarf / delta.min(0.1);
    }
    *par = par.max(parl).min(paru);
    if *par == 0.0 {
        *par = gnorm / dxnorm;
    }
    let mut iter = 0;
    loop {
        iter += 1;
        if *par == 0.0 {
            *par = dwarf.max(0.001 * paru);
        }
        let s = par.sqrt();
        for j in 0..m {
            wa1[j] = s * diag[j];
        }
        qrsolv(m, r, ld, ipvt, &wa1[..m], qtb, x, sdiag, wa2);
        for j in 0..m {
            wa2[j] = diag[j] * x[j];
        }
        dxnorm = enorm(&wa2[..m]);
        let temp = fp;
        fp = dxnorm - delta;
        if fp.abs() <= 0.1 * delta || (parl == 0.0 && fp <= temp && temp < 0.0) || iter == 10 {
            return;
        }
        for j in 0..m {
            let l = ipvt[j];
            wa1[j] = diag[l] * (wa2[l] / dxnorm);
        }
        for j in 0..m {
            wa1[j] /= sdiag[j];
            let temp = wa1[j];
            for i in j + 1..m {
                wa1[i] -= r[i + j * ld] * temp;
            }
        }
        let temp = enorm(&wa1[..m]);
        let parc = ((fp / delta) / temp) / temp;
        if fp > 0.0 {
            parl = parl.max(*par);
        }
        if fp < 0.0 {
            paru = paru.min(*par);
        }
        *par = parl.max(*par + parc);
    }
}
