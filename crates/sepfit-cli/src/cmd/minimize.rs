//! `sepfit minimize`: minimise a loss over some of its variables with the derived gradient.

use crate::values::{loss_error, mat_to_json, read_all_values};
use super::{CliError, emit};
use crate::cli::{Format, MinMethod, MinimizeArgs};
use sepfit::solvers::gd::{GdOptions, MinReport, MinTermination, gradient_descent};
use sepfit::solvers::lbfgs::{LbfgsOptions, lbfgs};
use sepfit::solvers::projected_lbfgs::projected_lbfgs;
use sepfit_expr::matrix::{LossFormula, Mat, Style};
use serde_json::json;

pub fn run(a: &MinimizeArgs) -> Result<(), CliError> {
    if a.step.is_some() && a.method != MinMethod::Gd {
        return Err(anyhow::anyhow!("--step is the fixed step of gradient descent (--method gd); L-BFGS and Newton choose their steps by a line search").into());
    }
    if a.grad_tol.is_nan() || a.grad_tol < 0.0 {
        return Err(anyhow::anyhow!("--grad-tol must be a number ≥ 0, got {}", a.grad_tol).into());
    }
    let bounds: Vec<(String, f64, f64)> = a.bounds.iter().flat_map(|b| b.0.iter().cloned()).collect();
    if !bounds.is_empty() && a.method != MinMethod::Lbfgs {
        return Err(anyhow::anyhow!("--bounds needs --method lbfgs (L-BFGS with projection onto the bounds)").into());
    }
    for (name, _, _) in &bounds {
        if !a.wrt.contains(name) {
            return Err(anyhow::anyhow!("--bounds names `{name}`, which is not minimised over (--wrt {}); bound a --wrt variable", a.wrt.join(",")).into());
        }
        if bounds.iter().filter(|b| &b.0 == name).count() > 1 {
            return Err(anyhow::anyhow!("--bounds gives `{name}` more than once; write its bounds in one item, e.g. \"0<={name}<=1\"").into());
        }
    }
    let values = read_all_values(&a.at)?.unwrap_or_default();
    let lerr = |e| loss_error(&a.formula, &a.var, e);
    let mut f = LossFormula::new(&a.formula, &a.var, Some(&values)).map_err(lerr)?;
    let wrt: Vec<&str> = a.wrt.iter().map(String::as_str).collect();
    let grads = f.gradients(&wrt).map_err(lerr)?;
    // the variables to optimise, flattened one after the other
    let mut layout: Vec<(String, usize, usize)> = Vec::new();
    let mut x0 = Vec::new();
    for w in &wrt {
        let m = values.get(*w).ok_or_else(|| anyhow::anyhow!("no starting value for `{w}` in {}", a.at.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")))?;
        if let Some(v) = m.data.iter().find(|v| !v.is_finite()) {
            return Err(anyhow::anyhow!("the starting value of `{w}` is not finite (it has an entry {v})").into());
        }
        layout.push((w.to_string(), m.rows, m.cols));
        x0.extend_from_slice(&m.data);
    }
    // Newton: the Hessian's blocks (i, j), j ≥ i, ∂(∇_{w_i} J)/∂w_j; (j, i) is the transpose
    let mut blocks: Vec<(usize, usize, sepfit_expr::matrix::MId)> = Vec::new();
    if a.method == MinMethod::Newton {
        for i in 0..wrt.len() {
            for j in i..wrt.len() {
                let (_, h) = f.hessian_block(wrt[i], wrt[j]).map_err(|e| match e {
                    sepfit_expr::matrix::LossError::Value(m) => sepfit_expr::matrix::LossError::Value(format!("--method newton: {m} (use --method lbfgs)")),
                    e => e,
                }).map_err(lerr)?;
                blocks.push((i, j, h));
            }
        }
    }
    let mut ids = vec![f.root()];
    ids.extend(&grads);
    let mut vals = values.clone();
    let mut failure: Option<String> = None;
    if a.method == MinMethod::Newton {
        let offsets: Vec<usize> = layout.iter().scan(0, |o, (_, r, c)| { let s = *o; *o += r * c; Some(s) }).collect();
        let sizes: Vec<usize> = layout.iter().map(|(_, r, c)| r * c).collect();
        let n = x0.len();
        let mut hids = ids.clone();
        hids.extend(blocks.iter().map(|b| b.2));
        let eval = |x: &[f64]| -> Option<(f64, Vec<f64>, Vec<f64>)> {
            for ((name, r, c), off) in layout.iter().zip(&offsets) {
                vals.insert(name.clone(), Mat { rows: *r, cols: *c, data: x[*off..off + r * c].to_vec() });
            }
            let out = match f.eval(&hids, &vals) {
                Ok(out) => out,
                Err(e) => {
                    failure.get_or_insert(e.to_string());
                    return None;
                }
            };
            let g: Vec<f64> = out[1..1 + grads.len()].iter().flat_map(|m| m.data.iter().copied()).collect();
            let mut h = vec![0.0; n * n];
            for (k, (i, j, _)) in blocks.iter().enumerate() {
                let m = &out[1 + grads.len() + k];
                if m.rows != sizes[*i] || m.cols != sizes[*j] {
                    failure.get_or_insert(format!("the Hessian block ({}, {}) evaluated to a {} matrix, not {}×{}", wrt[*i], wrt[*j], m.dims(), sizes[*i], sizes[*j]));
                    return None;
                }
                for p in 0..m.rows {
                    for q in 0..m.cols {
                        let (r, c) = (offsets[*i] + p, offsets[*j] + q);
                        h[r * n + c] = m.get(p, q);
                        h[c * n + r] = m.get(p, q);
                    }
                }
            }
            (g.len() == n).then_some((out[0].data[0], g, h))
        };
        let o = NewtonOptions { max_iter: a.max_iter, grad_tol: a.grad_tol, record: a.trace, f_floor: sepfit::solvers::gd::DEFAULT_F_FLOOR };
        let (report, shifts) = newton(eval, &x0, &o).map_err(|e| match &failure {
            Some(m) => anyhow::anyhow!("{e}: {m}"),
            None => anyhow::anyhow!("{e}"),
        })?;
        let hess: Vec<(String, String)> =
            blocks.iter().filter(|b| b.0 == b.1).map(|b| (wrt[b.0].to_string(), f.render(b.2, Style::Unicode))).collect();
        return finish(a, &f, &wrt, &grads, &layout, report, failure, Some((hess, shifts)));
    }
    let objective = |x: &[f64], g: &mut [f64]| -> f64 {
        let mut off = 0;
        for (name, r, c) in &layout {
            vals.insert(name.clone(), Mat { rows: *r, cols: *c, data: x[off..off + r * c].to_vec() });
            off += r * c;
        }
        match f.eval(&ids, &vals) {
            Ok(out) => {
                let mut off = 0;
                for m in &out[1..] {
                    g[off..off + m.data.len()].copy_from_slice(&m.data);
                    off += m.data.len();
                }
                out[0].data[0]
            }
            Err(e) => {
                failure.get_or_insert(e.to_string());
                f64::NAN
            }
        }
    };
    let report: MinReport = match a.method {
        MinMethod::Lbfgs => {
            let o = LbfgsOptions { max_iter: a.max_iter, grad_tol: a.grad_tol, record: a.trace, ..LbfgsOptions::default() };
            if bounds.is_empty() {
                lbfgs(objective, &x0, &o)
            } else {
                let (mut lower, mut upper) = (Vec::with_capacity(x0.len()), Vec::with_capacity(x0.len()));
                for (name, r, c) in &layout {
                    let (lo, hi) = bounds.iter().find(|b| &b.0 == name).map_or((f64::NEG_INFINITY, f64::INFINITY), |b| (b.1, b.2));
                    lower.extend(std::iter::repeat_n(lo, r * c));
                    upper.extend(std::iter::repeat_n(hi, r * c));
                }
                if let Some(i) = x0.iter().zip(lower.iter().zip(&upper)).position(|(x, (l, u))| x < l || x > u) {
                    let name = layout.iter().scan(0, |o, (n, r, c)| { *o += r * c; Some((n, *o)) }).find(|(_, end)| i < *end).map_or("", |(n, _)| n.as_str());
                    eprintln!("note: the starting value of `{name}` lies outside its --bounds; it is moved onto them");
                }
                projected_lbfgs(objective, &x0, &lower, &upper, &o)
            }
        }
        MinMethod::Gd => {
            let o = GdOptions { step: a.step, max_iter: a.max_iter, grad_tol: a.grad_tol, record: a.trace, ..GdOptions::default() };
            gradient_descent(objective, &x0, &o)
        }
        MinMethod::Newton => unreachable!("handled above"),
    }
    .map_err(|e| match &failure {
        Some(m) => anyhow::anyhow!("{e}: {m}"),
        None => anyhow::anyhow!("{e}"),
    })?;
    finish(a, &f, &wrt, &grads, &layout, report, failure, None)
}

/// The Hessians' printed forms (diagonal blocks) and the number of shifted steps, for Newton.
type NewtonExtra = (Vec<(String, String)>, usize);

/// Prints the report and turns a non-converged one into an error.
#[allow(clippy::too_many_arguments)]
fn finish(
    a: &MinimizeArgs,
    f: &LossFormula,
    wrt: &[&str],
    grads: &[sepfit_expr::matrix::MId],
    layout: &[(String, usize, usize)],
    report: MinReport,
    failure: Option<String>,
    newton: Option<NewtonExtra>,
) -> Result<(), CliError> {
    let mut solution = serde_json::Map::new();
    let mut off = 0;
    let mut text_sol = String::new();
    for (name, r, c) in layout {
        let m = Mat { rows: *r, cols: *c, data: report.x[off..off + r * c].to_vec() };
        off += r * c;
        text_sol.push_str(&format!("  {name} = {}\n", mat_to_json(&m)));
        solution.insert(name.clone(), mat_to_json(&m));
    }
    let method = match a.method {
        MinMethod::Lbfgs if a.bounds.is_empty() => "lbfgs",
        MinMethod::Lbfgs => "lbfgs with bounds (projected)",
        MinMethod::Gd => "gd",
        MinMethod::Newton => "newton",
    };
    match a.format {
        Format::Json => {
            let mut out = json!({
                "method": method,
                "formula": f.render(f.root(), Style::Unicode),
                "gradient_formulas": wrt.iter().zip(grads).map(|(w, g)| json!({"wrt": w, "gradient_formula": f.render(*g, Style::Unicode)})).collect::<Vec<_>>(),
                "iterations": report.iterations,
                "evaluations": report.evaluations,
                "initial_loss": report.f0,
                "loss": report.f,
                "gradient_norm": report.grad_norm,
                "converged": report.termination.converged(),
                "termination": report.termination.describe(),
                "solution": solution,
            });
            if let Some((hess, shifts)) = &newton {
                out["hessian_formulas"] = json!(hess.iter().map(|(w, h)| json!({"wrt": w, "hessian_formula": h})).collect::<Vec<_>>());
                out["shifted_steps"] = json!(shifts);
            }
            if a.trace {
                out["trace"] = json!(report
                    .trace
                    .iter()
                    .map(|t| json!({"iter": t.iter, "loss": t.f, "gradient_norm": t.grad_norm, "x_norm": t.x_norm, "step": t.step}))
                    .collect::<Vec<_>>());
            }
            emit(&format!("{}\n", serde_json::to_string_pretty(&out).map_err(anyhow::Error::from)?))?;
        }
        Format::Text => {
            let mut s = format!("minimise   {}\n", f.render(f.root(), Style::Unicode));
            for (w, g) in wrt.iter().zip(grads) {
                s.push_str(&format!("∇_{w} J = {}\n", f.render(*g, Style::Unicode)));
            }
            if let Some((hess, _)) = &newton {
                for (w, h) in hess {
                    s.push_str(&format!("∇²_{w} J = {h}\n"));
                }
            }
            if a.trace {
                s.push_str(&format!("{:>6} {:>22} {:>12} {:>12} {:>12}\n", "iter", "loss", "|gradient|", "|x|", "step"));
                for t in &report.trace {
                    s.push_str(&format!("{:>6} {:>22.15e} {:>12.4e} {:>12.4e} {:>12.4e}\n", t.iter, t.f, t.grad_norm, t.x_norm, t.step));
                }
            }
            s.push_str(&format!(
                "method     {method}\ntermination {} after {} iterations ({} evaluations)\nloss       {:.15e} (initial {:.6e})\n|gradient| {:.3e}\nsolution\n{text_sol}",
                report.termination.describe(),
                report.iterations,
                report.evaluations,
                report.f,
                report.f0,
                report.grad_norm
            ));
            if let Some((_, shifts)) = &newton
                && *shifts > 0 {
                    s.push_str(&format!("note       {shifts} steps used a shifted Hessian H + μI (not positive definite there)\n"));
                }
            emit(&s)?;
        }
    }
    if report.termination.converged() {
        return Ok(());
    }
    let mut msg = match report.termination {
        MinTermination::UnboundedBelow => {
            "the loss is unbounded below: it fell below -1e300 or reached -inf; there is no minimum to report (the solution shown is the last accepted iterate)".to_string()
        }
        MinTermination::NonFinite => "not converged: the loss or its gradient was not finite (NaN or ±inf) at the next iterate, so the iteration diverged or left the domain of the loss (the solution shown is the last finite iterate)".to_string(),
        MinTermination::MaxIterations => format!(
            "not converged: the iteration limit (--max-iter {}) was reached with gradient norm {:.3e} > --grad-tol {:e}",
            a.max_iter, report.grad_norm, a.grad_tol
        ),
        MinTermination::LineSearchFailed => format!(
            "not converged: the line search found no decrease, with gradient norm {:.3e} > --grad-tol {:e} (the loss may be at its rounding level, or the gradient wrong or infinite near the solution)",
            report.grad_norm, a.grad_tol
        ),
        other => format!("not converged: {}", other.describe()),
    };
    if let Some(e) = &failure {
        msg.push_str(&format!("; evaluating the loss failed at some trial point: {e}"));
    }
    Err(CliError::Unsuccessful(msg))
}

/// Options of [`newton`].
struct NewtonOptions {
    max_iter: usize,
    grad_tol: f64,
    record: bool,
    f_floor: f64,
}

/// Newton's method with a backtracking (Armijo) line search: at `x`, the step `p` solves
/// `(H + μI)·p = −∇f` with the smallest shift `μ ≥ 0` of the sequence `0, β, 2β, 4β, …`
/// (`β = 10⁻³·max(1, maxᵢⱼ |Hᵢⱼ|)`) for which the Cholesky factorisation succeeds, so `p` is a
/// descent direction even where `H` is indefinite or singular (`μ = 0`: the plain Newton step,
/// one step for a quadratic). The step length `t` halves from 1 until
/// `f(x + t·p) ≤ f(x) + 10⁻⁴·t·∇fᵀp`. `eval(x)` returns `(f, ∇f, H)` (`H` row by row, `n×n`)
/// or `None` where the loss cannot be evaluated. Returns the report and how many steps needed a
/// shift.
fn newton(
    mut eval: impl FnMut(&[f64]) -> Option<(f64, Vec<f64>, Vec<f64>)>,
    x0: &[f64],
    o: &NewtonOptions,
) -> Result<(MinReport, usize), sepfit::solvers::gd::MinError> {
    use sepfit::solvers::gd::{MinError, MinIter};
    let n = x0.len();
    if n == 0 {
        return Err(MinError::Empty);
    }
    if let Some((index, &value)) = x0.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(MinError::NonFiniteX0 { index, value });
    }
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
    let (mut fx, mut g, mut h) = match eval(x0) {
        Some((fx, g, h)) if fx.is_finite() && finite(&g) => (fx, g, h),
        Some((fx, ..)) => return Err(MinError::NonFiniteStart { f: fx }),
        None => return Err(MinError::NonFiniteStart { f: f64::NAN }),
    };
    let f0 = fx;
    let mut x = x0.to_vec();
    let mut evaluations = 1;
    let mut shifts = 0;
    let mut trace = Vec::new();
    if o.record {
        trace.push(MinIter { iter: 0, f: fx, grad_norm: norm(&g), x_norm: norm(&x), step: 0.0 });
    }
    let mut iterations = 0;
    let termination = loop {
        if norm(&g) <= o.grad_tol {
            break MinTermination::GradientTolerance;
        }
        if iterations >= o.max_iter {
            break MinTermination::MaxIterations;
        }
        if !finite(&h) {
            break MinTermination::NonFinite;
        }
        let (mut p, shifted) = newton_direction(&h, &g, n);
        let mut slope: f64 = g.iter().zip(&p).map(|(a, b)| a * b).sum();
        if slope.is_nan() || slope >= 0.0 || !finite(&p) {
            // rounding made the shifted step useless: the gradient direction instead
            p = g.iter().map(|v| -v).collect();
            slope = -norm(&g).powi(2);
        }
        shifts += usize::from(shifted);
        let mut t = 1.0;
        let mut accepted = None;
        for _ in 0..64 {
            let xt: Vec<f64> = x.iter().zip(&p).map(|(a, b)| a + t * b).collect();
            evaluations += 1;
            if let Some((ft, gt, ht)) = eval(&xt)
                && (ft.is_finite() || ft == f64::NEG_INFINITY) && finite(&gt)
                && ft <= fx + 1e-4 * t * slope {
                    accepted = Some((xt, ft, gt, ht));
                    break;
                }
            t *= 0.5;
        }
        let Some((xt, ft, gt, ht)) = accepted else { break MinTermination::LineSearchFailed };
        let step = norm(&x.iter().zip(&xt).map(|(a, b)| b - a).collect::<Vec<_>>());
        (x, fx, g, h) = (xt, ft, gt, ht);
        iterations += 1;
        if o.record {
            trace.push(MinIter { iter: iterations, f: fx, grad_norm: norm(&g), x_norm: norm(&x), step });
        }
        if fx < o.f_floor {
            break MinTermination::UnboundedBelow;
        }
    };
    let grad_norm = norm(&g);
    Ok((MinReport { x, f: fx, f0, grad_norm, iterations, evaluations, termination, trace }, shifts))
}

/// The Newton step `p` with `(H + μI)·p = −g` for the smallest shift of [`newton`]'s sequence
/// that makes `H + μI` positive definite (Cholesky), and whether a shift was needed. `H` is
/// symmetrised first. If no shift up to `2⁶⁰·β` works (non-finite entries), `−g`.
fn newton_direction(h: &[f64], g: &[f64], n: usize) -> (Vec<f64>, bool) {
    let scale = h.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let beta = 1e-3 * scale.max(1.0);
    let mut mu = 0.0;
    for _ in 0..62 {
        if let Some(l) = cholesky(h, n, mu) {
            // L·Lᵀ·p = −g
            let mut y = vec![0.0; n];
            for i in 0..n {
                let s: f64 = (0..i).map(|k| l[i * n + k] * y[k]).sum();
                y[i] = (-g[i] - s) / l[i * n + i];
            }
            let mut p = vec![0.0; n];
            for i in (0..n).rev() {
                let s: f64 = (i + 1..n).map(|k| l[k * n + i] * p[k]).sum();
                p[i] = (y[i] - s) / l[i * n + i];
            }
            return (p, mu > 0.0);
        }
        mu = if mu == 0.0 { beta } else { 2.0 * mu };
    }
    (g.iter().map(|v| -v).collect(), true)
}

/// The lower Cholesky factor of `(H + Hᵀ)/2 + μI` (row by row), or `None` if a pivot is not
/// positive (relative to the diagonal's size: a numerically singular matrix fails).
fn cholesky(h: &[f64], n: usize, mu: f64) -> Option<Vec<f64>> {
    let a = |i: usize, j: usize| 0.5 * (h[i * n + j] + h[j * n + i]) + if i == j { mu } else { 0.0 };
    let diag = (0..n).fold(0.0f64, |m, i| m.max(a(i, i).abs()));
    let tiny = 1e-13 * diag.max(f64::MIN_POSITIVE);
    let mut l = vec![0.0; n * n];
    for j in 0..n {
        let d = a(j, j) - (0..j).map(|k| l[j * n + k] * l[j * n + k]).sum::<f64>();
        if d.is_nan() || d <= tiny {
            return None;
        }
        let ljj = d.sqrt();
        l[j * n + j] = ljj;
        for i in j + 1..n {
            let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            l[i * n + j] = (a(i, j) - s) / ljj;
        }
    }
    Some(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A quadratic with positive definite Hessian: one step, exactly.
    #[test]
    fn one_step_on_a_quadratic() {
        let (a, b) = ([4.0, 1.0, 1.0, 3.0], [1.0, 2.0]);
        let eval = |x: &[f64]| {
            let ax = [a[0] * x[0] + a[1] * x[1], a[2] * x[0] + a[3] * x[1]];
            let f = 0.5 * (x[0] * ax[0] + x[1] * ax[1]) - b[0] * x[0] - b[1] * x[1];
            Some((f, vec![ax[0] - b[0], ax[1] - b[1]], a.to_vec()))
        };
        let o = NewtonOptions { max_iter: 50, grad_tol: 1e-12, record: false, f_floor: -1e300 };
        let (r, shifts) = newton(eval, &[10.0, -7.0], &o).unwrap();
        assert_eq!((r.iterations, shifts, r.termination), (1, 0, MinTermination::GradientTolerance));
        assert!((r.x[0] - 1.0 / 11.0).abs() < 1e-14 && (r.x[1] - 7.0 / 11.0).abs() < 1e-14, "{:?}", r.x);
    }

    /// Indefinite Hessian (a saddle of x⁴/4 − x²/2 + y² at 0): the shift makes a descent step,
    /// and the minimum (±1, 0) is reached.
    #[test]
    fn shifted_steps_where_the_hessian_is_indefinite() {
        let eval = |x: &[f64]| {
            let f = x[0].powi(4) / 4.0 - x[0] * x[0] / 2.0 + x[1] * x[1];
            Some((f, vec![x[0].powi(3) - x[0], 2.0 * x[1]], vec![3.0 * x[0] * x[0] - 1.0, 0.0, 0.0, 2.0]))
        };
        let o = NewtonOptions { max_iter: 100, grad_tol: 1e-10, record: true, f_floor: -1e300 };
        let (r, shifts) = newton(eval, &[1e-3, 0.5], &o).unwrap();
        assert_eq!(r.termination, MinTermination::GradientTolerance);
        assert!(shifts >= 1 && (r.x[0].abs() - 1.0).abs() < 1e-8 && r.x[1].abs() < 1e-8, "{r:?}");
        assert!(r.trace.windows(2).all(|w| w[1].f <= w[0].f));
        // unbounded below: −x² has no minimum
        let eval = |x: &[f64]| Some((-x[0] * x[0], vec![-2.0 * x[0]], vec![-2.0]));
        let (r, _) = newton(eval, &[1.0], &o).unwrap();
        assert_eq!(r.termination, MinTermination::UnboundedBelow);
        // a loss that cannot be evaluated at the start is an error, not a panic
        assert!(newton(|_| None, &[1.0], &o).is_err());
        assert!(newton(|_| Some((1.0, vec![], vec![])), &[], &o).is_err());
    }
}
