//! Gauss–Newton polishing of a converged solution (see the `lm` module docs).

use super::*;

/// A Gauss–Newton step of the free variables at `x` (residuals `f`): `x_new = x − p`.
pub(super) struct GnStep {
    /// The step `p` (zero for variables held at a bound).
    p: Vec<f64>,
    /// Predicted relative reduction `(‖f‖² − ‖f − J p‖²)/‖f‖²`.
    prered: f64,
    /// `‖Jᵀf‖∞` over the free variables.
    gmax: f64,
}

/// Workspace of [`gn_step`], allocated once per polishing phase.
pub(super) struct GnWork {
    jac: Vec<f64>,
    a: Vec<f64>,
    free: Vec<usize>,
    ipvt: Vec<usize>,
    rdiag: Vec<f64>,
    acnorm: Vec<f64>,
    wa1: Vec<f64>,
    wa2: Vec<f64>,
    sdiag: Vec<f64>,
    qtf: Vec<f64>,
    pf: Vec<f64>,
    ones: Vec<f64>,
    wa4: Vec<f64>,
    /// `Jᵀf`.
    grad: Vec<f64>,
}

impl GnWork {
    fn new(n: usize, m: usize) -> Self {
        GnWork {
            jac: vec![0.0; n * m],
            a: vec![0.0; n * m],
            free: Vec::with_capacity(m),
            ipvt: vec![0; m],
            rdiag: vec![0.0; m],
            acnorm: vec![0.0; m],
            wa1: vec![0.0; m],
            wa2: vec![0.0; m],
            sdiag: vec![0.0; m],
            qtf: vec![0.0; m],
            pf: vec![0.0; m],
            ones: vec![1.0; m],
            wa4: vec![0.0; n],
            grad: vec![0.0; m],
        }
    }
}

/// Computes the Gauss–Newton step over the free variables at `x` (residuals `f`) into `out`,
/// from the pivoted QR of `J` (singular columns get a zero step). Unless `have_jac`, the
/// Jacobian is first computed into `ws.jac` (`x` must then be the point of the most recent
/// residual evaluation). `false` if the Jacobian cannot be computed or is non-finite.
#[allow(clippy::too_many_arguments)]
pub(super) fn gn_step<P: LeastSquaresProblem + ?Sized>(
    problem: &mut P,
    x: &[f64],
    f: &[f64],
    lo: &[f64],
    hi: &[f64],
    have_jac: bool,
    ws: &mut GnWork,
    out: &mut GnStep,
    secant: Option<&super::secant::Secant>,
) -> bool {
    let n = f.len();
    let m = x.len();
    if !have_jac && (problem.jacobian(x, &mut ws.jac).is_err() || !all_finite(&ws.jac)) {
        return false;
    }
    ws.free.clear();
    let mut gmax = 0.0f64;
    for k in 0..m {
        let col = &ws.jac[k * n..(k + 1) * n];
        let g = dot(col, f);
        ws.grad[k] = g;
        let blocked = (x[k] <= lo[k] && g > 0.0) || (x[k] >= hi[k] && g < 0.0) || lo[k] == hi[k];
        if !blocked {
            ws.free.push(k);
            gmax = gmax.max(g.abs());
        }
    }
    let nf = ws.free.len();
    let a = &mut ws.a[..n * nf];
    for (c, &k) in ws.free.iter().enumerate() {
        a[c * n..(c + 1) * n].copy_from_slice(&ws.jac[k * n..(k + 1) * n]);
    }
    let (ipvt, rdiag, acnorm, wa1) = (&mut ws.ipvt[..nf], &mut ws.rdiag[..nf], &mut ws.acnorm[..nf], &mut ws.wa1[..nf]);
    qrfac(n, nf, a, n, ipvt, rdiag, acnorm, wa1);
    let qtf = &mut ws.qtf[..nf];
    qt_f(n, nf, a, rdiag, f, &mut ws.wa4, qtf);
    let fnorm = enorm(f);
    let nsing = rdiag.iter().position(|v| *v == 0.0).unwrap_or(nf);
    let prered = if fnorm > 0.0 { (enorm(&qtf[..nsing]) / fnorm).powi(2) } else { 0.0 };
    // λ = 0: an infinite trust radius makes lmpar return the Gauss–Newton step.
    let mut par = 0.0;
    let pf = &mut ws.pf[..nf];
    lmpar(
        nf,
        a,
        n,
        ipvt,
        &ws.ones[..nf],
        qtf,
        f64::INFINITY,
        &mut par,
        pf,
        &mut ws.sdiag[..nf],
        wa1,
        &mut ws.wa2[..nf],
    );
    out.p.iter_mut().for_each(|v| *v = 0.0);
    for (c, &k) in ws.free.iter().enumerate() {
        out.p[k] = pf[c];
    }
    out.prered = prered;
    out.gmax = gmax;
    // With a secant estimate of the second-order term (all parameters free), the Newton step
    // when it is a small correction of the Gauss–Newton one and stays strictly inside the
    // bounds (see the module docs).
    if let Some(sec) = secant
        && nf == m
        && let Some(pn) = sec.correction(&ws.jac, &ws.grad, n, &out.p, x, lo, hi, &ws.ones[..m])
    {
        out.p.copy_from_slice(&pn);
    }
    true
}

/// Counters and records that [`polish`] extends.
pub(super) struct PolishState<'a> {
    pub(super) nfev: usize,
    pub(super) njev: usize,
    pub(super) log: &'a mut Vec<IterationRecord>,
    pub(super) path: &'a mut Vec<Vec<f64>>,
    pub(super) iter: usize,
    /// Whether steps are recorded in `log` and `path` ([`super::LmOptions::record`]).
    pub(super) record: bool,
    /// A point already evaluated (`x`, its residuals, `‖f‖`): the iteration's last trial, a
    /// Gauss–Newton (or terminal Newton) step from the start of polishing. The first step uses
    /// it instead of evaluating again when it lands there (to a few ulps: the same step, solved
    /// twice).
    pub(super) pending: Option<(&'a [f64], &'a [f64], f64)>,
    /// The iteration's secant estimate of the second-order term for the first step, when its
    /// Newton trials did not fail (see the module docs).
    pub(super) secant: Option<&'a super::secant::Secant>,
}

/// Upper limit on Gauss–Newton polishing steps (see the module docs).
pub(super) const MAX_POLISH_STEPS: usize = 50;

/// Polishing stops after this many steps without a smaller Gauss–Newton correction.
pub(super) const STALL_STEPS: usize = 2;

/// Polishing stops without taking a correction `p` that changes no parameter by more than
/// this many ulps of its value, once the corrections contract (see [`settled`]).
pub(super) const SETTLED_ULPS: f64 = 256.0;

/// Whether the Gauss–Newton correction `p` at `x`, the last of a sequence contracting by the
/// ratio `rho` per step, leaves every parameter within [`SETTLED_ULPS`] ulps of the solution:
/// with linear convergence the distance to the solution is about `|p_k| / (1 − ρ)`, so
/// `|p_k| ≤ 256 ε (1 − ρ) |x_k|` for every `k` (and `ρ ≤ ½`, a contraction clearly seen).
/// Taking that correction would cost one more residual and Jacobian evaluation for digits
/// beyond the 13th.
fn settled(p: &[f64], x: &[f64], rho: f64) -> bool {
    rho <= 0.5 && p.iter().zip(x).all(|(p, x)| p.abs() <= SETTLED_ULPS * f64::EPSILON * (1.0 - rho) * x.abs())
}

/// Gauss–Newton polishing after convergence (see the module docs). `fvec` are the residuals
/// at `x`; `jac_at_x` is the Jacobian at `x` if the caller has it, otherwise `x` must be the
/// point of the most recent residual evaluation. Returns the number of accepted steps.
#[allow(clippy::too_many_arguments)]
pub(super) fn polish<P: LeastSquaresProblem + ?Sized>(
    problem: &mut P,
    x: &mut [f64],
    fvec: &mut [f64],
    fnorm: &mut f64,
    lo: &[f64],
    hi: &[f64],
    diag: &[f64],
    jac_at_x: Option<&[f64]>,
    st: &mut PolishState<'_>,
) -> usize {
    let eps = f64::EPSILON;
    let n = fvec.len();
    let m = x.len();
    let dnorm = |v: &[f64]| enorm_it(v.iter().zip(diag).map(|(a, b)| a * b));
    let mut ws = GnWork::new(n, m);
    let have_jac = match jac_at_x {
        Some(j) => {
            ws.jac.copy_from_slice(j);
            true
        }
        None => {
            st.njev += 1;
            false
        }
    };
    let mut step = GnStep { p: vec![0.0; m], prered: 0.0, gmax: 0.0 };
    let mut next = GnStep { p: vec![0.0; m], prered: 0.0, gmax: 0.0 };
    if !gn_step(problem, x, fvec, lo, hi, have_jac, &mut ws, &mut step, st.secant) {
        return 0;
    }
    let mut ft = vec![0.0; n];
    let mut xt = vec![0.0; x.len()];
    // The iterate with the smallest Gauss–Newton correction so far (the best stationarity:
    // with linear convergence the correction is proportional to the distance to the solution)
    // and the number of steps taken to reach it.
    let mut best_pn = dnorm(&step.p);
    let (mut best_x, mut best_f, mut best_fnorm) = (x.to_vec(), fvec.to_vec(), *fnorm);
    let mut best_steps = 0;
    let mut taken = 0;
    let log_len = st.log.len();
    while taken < MAX_POLISH_STEPS {
        let pn = dnorm(&step.p);
        let xn = dnorm(x);
        if pn == 0.0 {
            break;
        }
        for k in 0..x.len() {
            xt[k] = (x[k] - step.p[k]).clamp(lo[k], hi[k]);
        }
        let same = |(px, _, _): &(&[f64], &[f64], f64)| px.iter().zip(&xt).all(|(a, b)| (a - b).abs() <= 4.0 * eps * b.abs());
        let fn1 = match st.pending.take().filter(|t| taken == 0 && same(t)) {
            Some((px, pf, f1)) => {
                xt.copy_from_slice(px);
                ft.copy_from_slice(pf);
                f1
            }
            None => {
                st.nfev += 1;
                eval_res(problem, &xt, &mut ft)
            }
        };
        if !fn1.is_finite() {
            break;
        }
        let mut actred = 0.0;
        for i in 0..n {
            actred -= ((ft[i] - fvec[i]) / *fnorm) * ((ft[i] + fvec[i]) / *fnorm);
        }
        // Reject a step that increases ‖f‖² by more than its rounding level.
        if actred < -noise_level(problem, fn1.min(*fnorm)) {
            break;
        }
        st.njev += 1;
        if !gn_step(problem, &xt, &ft, lo, hi, false, &mut ws, &mut next, None) {
            break;
        }
        let cost_before = 0.5 * *fnorm * *fnorm;
        let snorm = enorm_it(x.iter().zip(&xt).map(|(a, b)| a - b));
        x.copy_from_slice(&xt);
        fvec.copy_from_slice(&ft);
        *fnorm = fn1;
        taken += 1;
        if st.record {
            st.path.push(x.to_vec());
            st.log.push(IterationRecord {
                iter: st.iter + taken,
                cost: 0.5 * fn1 * fn1,
                cost_change: cost_before - 0.5 * fn1 * fn1,
                gradient_norm: step.gmax,
                step_norm: snorm,
                ratio: if step.prered > 0.0 { actred / step.prered } else { f64::NAN },
                lambda: 0.0,
                radius: f64::NAN,
                evaluations: st.nfev,
            });
        }
        std::mem::swap(&mut step, &mut next);
        let npn = dnorm(&step.p);
        if npn < best_pn {
            best_pn = npn;
            best_x.copy_from_slice(x);
            best_f.copy_from_slice(fvec);
            best_fnorm = *fnorm;
            best_steps = taken;
        } else if taken >= best_steps + STALL_STEPS {
            // The corrections stopped shrinking: they are rounding noise.
            break;
        }
        if pn <= 4.0 * eps * xn || (best_steps == taken && settled(&step.p, x, npn / pn)) {
            break;
        }
    }
    if best_steps < taken {
        x.copy_from_slice(&best_x);
        fvec.copy_from_slice(&best_f);
        *fnorm = best_fnorm;
        if st.record {
            st.log.truncate(log_len + best_steps);
            let keep = st.path.len() - (taken - best_steps);
            st.path.truncate(keep);
        }
    }
    best_steps
}
