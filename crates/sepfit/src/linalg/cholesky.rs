//! Cholesky solves of the small symmetric positive definite systems of the solvers (a Fisher
//! information, a Hessian with a secant term): `m` is the number of parameters.

/// Solves the symmetric positive definite `A x = r` (`A` is `m × m`; symmetric, so row- or
/// column-major alike) by Cholesky, `A = LLᵀ`; `None` if `A` is not numerically positive
/// definite or the solution is not finite.
pub(crate) fn solve_spd(a: &[f64], r: &[f64], m: usize) -> Option<Vec<f64>> {
    // In-place Cholesky A = LLᵀ (row-major lower triangle).
    let mut l = a.to_vec();
    for j in 0..m {
        let mut d = l[j * m + j];
        for k in 0..j {
            d -= l[j * m + k] * l[j * m + k];
        }
        if !(d > 0.0 && d.is_finite()) {
            return None;
        }
        let d = d.sqrt();
        l[j * m + j] = d;
        for i in j + 1..m {
            let mut s = l[i * m + j];
            for k in 0..j {
                s -= l[i * m + k] * l[j * m + k];
            }
            l[i * m + j] = s / d;
        }
    }
    let mut x = r.to_vec();
    for i in 0..m {
        let mut s = x[i];
        for k in 0..i {
            s -= l[i * m + k] * x[k];
        }
        x[i] = s / l[i * m + i];
    }
    for i in (0..m).rev() {
        let mut s = x[i];
        for k in i + 1..m {
            s -= l[k * m + i] * x[k];
        }
        x[i] = s / l[i * m + i];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}
