//! `sepfit minimize`: minimise a loss over some of its variables with the derived gradient.

use crate::values::{loss_error, mat_to_json, read_all_values};
use super::{CliError, emit};
use crate::cli::{Format, MinMethod, MinimizeArgs};
use sepfit::solvers::gd::{GdOptions, MinReport, MinTermination, gradient_descent};
use sepfit::solvers::lbfgs::{LbfgsOptions, lbfgs};
use sepfit_expr::matrix::{LossFormula, Mat, Style};
use serde_json::json;

pub fn run(a: &MinimizeArgs) -> Result<(), CliError> {
    if a.step.is_some() && a.method != MinMethod::Gd {
        return Err(anyhow::anyhow!("--step is the fixed step of gradient descent (--method gd); L-BFGS chooses its steps by a line search").into());
    }
    if a.grad_tol.is_nan() || a.grad_tol < 0.0 {
        return Err(anyhow::anyhow!("--grad-tol must be a number ≥ 0, got {}", a.grad_tol).into());
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
    let mut ids = vec![f.root()];
    ids.extend(&grads);
    let mut vals = values.clone();
    let mut failure: Option<String> = None;
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
            lbfgs(objective, &x0, &o)
        }
        MinMethod::Gd => {
            let o = GdOptions { step: a.step, max_iter: a.max_iter, grad_tol: a.grad_tol, record: a.trace, ..GdOptions::default() };
            gradient_descent(objective, &x0, &o)
        }
    }
    .map_err(|e| match &failure {
        Some(m) => anyhow::anyhow!("{e}: {m}"),
        None => anyhow::anyhow!("{e}"),
    })?;
    let mut solution = serde_json::Map::new();
    let mut off = 0;
    let mut text_sol = String::new();
    for (name, r, c) in &layout {
        let m = Mat { rows: *r, cols: *c, data: report.x[off..off + r * c].to_vec() };
        off += r * c;
        text_sol.push_str(&format!("  {name} = {}\n", mat_to_json(&m)));
        solution.insert(name.clone(), mat_to_json(&m));
    }
    let method = match a.method {
        MinMethod::Lbfgs => "lbfgs",
        MinMethod::Gd => "gd",
    };
    match a.format {
        Format::Json => {
            let mut out = json!({
                "method": method,
                "formula": f.render(f.root(), Style::Unicode),
                "gradient_formulas": wrt.iter().zip(&grads).map(|(w, g)| json!({"wrt": w, "gradient_formula": f.render(*g, Style::Unicode)})).collect::<Vec<_>>(),
                "iterations": report.iterations,
                "evaluations": report.evaluations,
                "initial_loss": report.f0,
                "loss": report.f,
                "gradient_norm": report.grad_norm,
                "converged": report.termination.converged(),
                "termination": report.termination.describe(),
                "solution": solution,
            });
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
            for (w, g) in wrt.iter().zip(&grads) {
                s.push_str(&format!("∇_{w} J = {}\n", f.render(*g, Style::Unicode)));
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
