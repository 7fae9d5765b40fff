//! `sepfit grad`: the exact gradient of a loss in vectors and matrices, printed in matrix
//! notation, evaluated at given values and checked against central differences.

use super::{CliError, emit};
use crate::values::{loss_error, mat_to_json, read_all_values};
use crate::cli::{EmitLang, Format, GradArgs};
use sepfit_expr::Shape;
use sepfit_expr::matrix::graph::ONE;
use sepfit_expr::matrix::{Lang, LossFormula, MId, Mat, Style, Values};
use serde_json::json;

fn mat_to_text(m: &Mat) -> String {
    let f = |v: f64| format!("{v:.10}").trim_end_matches('0').trim_end_matches('.').to_string();
    if m.rows == 1 && m.cols == 1 {
        f(m.data[0])
    } else if m.cols == 1 {
        format!("[{}]", m.data.iter().map(|v| f(*v)).collect::<Vec<_>>().join(", "))
    } else {
        let rows: Vec<String> = m.to_rows().iter().map(|r| format!("[{}]", r.iter().map(|v| f(*v)).collect::<Vec<_>>().join(", "))).collect();
        format!("[{}]", rows.join(",\n            "))
    }
}

/// The definitions to list under the formulas: the user's that they use and names for their
/// shared subexpressions (so nothing prints twice), each after those it uses.
fn definitions(f: &mut LossFormula, derivs: &[MId], root: MId) -> Vec<(String, MId)> {
    let roots: Vec<MId> = derivs.iter().copied().chain([root]).collect();
    f.name_shared(&roots);
    let mut defs: Vec<(String, MId)> = Vec::new();
    for g in &roots {
        for d in f.definitions_used(*g) {
            if !defs.contains(&d) {
                defs.push(d);
            }
        }
    }
    defs.sort_by_key(|(_, d)| *d);
    defs
}

/// The verdict of a check, and whether it passed: relative error at most 1e-6; an infinite
/// error means something was not finite (NaN) at the point.
fn verdict(e: f64) -> (&'static str, bool) {
    if e <= 1e-6 {
        ("ok", true)
    } else if e.is_infinite() {
        ("FAILED (the value, the derivative or the differences are not finite here, e.g. NaN)", false)
    } else {
        ("MISMATCH", false)
    }
}

/// Exit status 1 after the report when a check failed.
fn check_outcome(errors: &[f64]) -> Result<(), CliError> {
    if errors.iter().all(|e| verdict(*e).1) {
        return Ok(());
    }
    let nonfinite = errors.iter().any(|e| e.is_infinite());
    Err(CliError::Unsuccessful(if nonfinite {
        "the derivative check failed: not finite (NaN or infinite) at the point; see the report".into()
    } else {
        "the derivative check failed: the derivative disagrees with central differences; see the report".into()
    }))
}

/// What is not finite (NaN or infinite) among the evaluated quantities, named as the report
/// names them: `"the value"`, `"∇_w J"`, … Empty when everything is finite.
fn not_finite<'a>(named: impl IntoIterator<Item = (String, &'a Mat)>) -> Vec<String> {
    named.into_iter().filter(|(_, m)| m.data.iter().any(|v| !v.is_finite())).map(|(n, _)| n).collect()
}

/// The warning for quantities that are not finite at the point (a loss outside its domain, such
/// as `log` of a negative entry, or an overflow).
fn not_finite_warning(names: &[String]) -> Option<String> {
    (!names.is_empty()).then(|| {
        format!(
            "not finite (NaN or infinite) at the point: {}; the point is outside the loss's domain (e.g. log or sqrt of a negative entry, division by zero) or a value overflows",
            names.join(", ")
        )
    })
}

/// Exit status 1 after the report when a check failed or something evaluated is not finite.
fn outcome(errors: &[f64], nonfinite: &Option<String>) -> Result<(), CliError> {
    check_outcome(errors)?;
    match nonfinite {
        Some(w) => Err(CliError::Unsuccessful(format!("{w} (exit status 1); see the report"))),
        None => Ok(()),
    }
}

pub fn run(a: &GradArgs) -> Result<(), CliError> {
    let values = read_all_values(&a.at)?;
    let lerr = |e| loss_error(&a.formula, &a.var, e);
    let mut f = LossFormula::new(&a.formula, &a.var, values.as_ref()).map_err(lerr)?;
    let wrt: Vec<&str> = a.wrt.iter().map(String::as_str).collect();
    if matches!(f.graph.shape(f.root()), Shape::Vector(_) | Shape::Matrix(ONE, _)) {
        if a.hessian {
            return Err(anyhow::anyhow!(
                "--hessian needs a scalar loss, but this is a {}: its first derivative is the Jacobian (drop --hessian)",
                f.shape_name(f.root())
            )
            .into());
        }
        if a.emit.is_some() {
            return Err(anyhow::anyhow!("--emit needs a scalar loss, but this is a {}", f.shape_name(f.root())).into());
        }
        return run_jacobian(a, &mut f, &wrt, values.as_ref());
    }
    let grads = f.gradients(&wrt).map_err(lerr)?;
    if let Some(lang) = a.emit {
        let lang = match lang {
            EmitLang::Numpy => Lang::Numpy,
        };
        let root = f.root();
        definitions(&mut f, &grads, root);
        let code = f.emit(lang, &wrt, &grads).map_err(anyhow::Error::from)?;
        return emit(&code);
    }
    // (gradient, Hessian) per variable, with --hessian
    let hess: Vec<(MId, MId)> = if a.hessian { wrt.iter().map(|w| f.hessian(w)).collect::<Result<_, _>>().map_err(lerr)? } else { Vec::new() };
    let style = if a.latex { Style::Latex } else { Style::Unicode };
    let root = f.root();
    let shown: Vec<MId> = grads.iter().copied().chain(hess.iter().map(|(_, h)| *h)).collect();
    let defs = definitions(&mut f, &shown, root);
    let (value, gvals, hvals) = match &values {
        Some(v) => {
            let mut ids = vec![root];
            ids.extend(&shown);
            let out = f.eval(&ids, v).map_err(lerr)?;
            let hv = (!hess.is_empty()).then(|| out[1 + grads.len()..].to_vec());
            (Some(out[0].data[0]), Some(out[1..1 + grads.len()].to_vec()), hv)
        }
        None => (None, None, None),
    };
    let check = match (&values, a.check) {
        (Some(v), true) => Some(f.check_gradient(&wrt, &grads, v, a.directions.max(1), 0x5EED).map_err(lerr)?),
        _ => None,
    };
    let hchecks: Vec<f64> = match (&values, a.check) {
        (Some(v), true) => wrt
            .iter()
            .zip(&hess)
            .map(|(w, (g, h))| f.check_hessian(w, *g, *h, v, a.directions.max(1), 0x5EED))
            .collect::<Result<_, _>>()
            .map_err(lerr)?,
        _ => Vec::new(),
    };
    let all_checks: Vec<f64> = check.into_iter().chain(hchecks.iter().copied()).collect();
    let value_mat = value.map(|v| Mat { rows: 1, cols: 1, data: vec![v] });
    let mut named: Vec<(String, &Mat)> = value_mat.iter().map(|m| ("the value".to_string(), m)).collect();
    if let Some(g) = &gvals {
        named.extend(wrt.iter().zip(g).map(|(w, m)| (format!("∇_{w} J"), m)));
    }
    if let Some(h) = &hvals {
        named.extend(wrt.iter().zip(h).map(|(w, m)| (format!("∇²_{w} J"), m)));
    }
    let nonfinite = not_finite_warning(&not_finite(named));
    match a.format {
        Format::Json => {
            let entry = |k: usize| {
                let mut e = json!({
                    "wrt": wrt[k],
                    "gradient_formula": f.render(grads[k], Style::Unicode),
                    "gradient_ascii": f.render(grads[k], Style::Ascii),
                    "gradient_latex": f.render(grads[k], Style::Latex),
                    "shape": f.shape_name(grads[k]),
                });
                if let Some(g) = &gvals {
                    e["gradient"] = mat_to_json(&g[k]);
                }
                e
            };
            let mut out = if wrt.len() == 1 {
                entry(0)
            } else {
                json!({ "gradients": (0..wrt.len()).map(entry).collect::<Vec<_>>() })
            };
            out["formula"] = json!(f.render(root, Style::Unicode));
            out["definitions"] = json!(defs
                .iter()
                .map(|(n, id)| json!({"name": n, "formula": f.render(*id, Style::Unicode), "ascii": f.render(*id, Style::Ascii)}))
                .collect::<Vec<_>>());
            if let Some(v) = value {
                out["value"] = json!(v);
            }
            if let Some(e) = check {
                out["check"] = json!({"max_relative_error": if e.is_finite() { json!(e) } else { json!(null) }, "directions": a.directions.max(1), "ok": verdict(e).1});
            }
            if a.hessian {
                out["hessians"] = json!((0..wrt.len())
                    .map(|k| {
                        let h = hess[k].1;
                        let mut e = json!({
                            "wrt": wrt[k],
                            "hessian_formula": f.render(h, Style::Unicode),
                            "hessian_ascii": f.render(h, Style::Ascii),
                            "hessian_latex": f.render(h, Style::Latex),
                        });
                        if let Some(hk) = hvals.as_ref().and_then(|hv| hv.get(k)) {
                            e["hessian"] = json!(hk.to_rows());
                        }
                        if let Some(c) = hchecks.get(k) {
                            e["check"] = json!({"max_relative_error": if c.is_finite() { json!(c) } else { json!(null) }, "directions": a.directions.max(1), "ok": verdict(*c).1});
                        }
                        e
                    })
                    .collect::<Vec<_>>());
            }
            if let Some(w) = &nonfinite {
                out["warnings"] = json!([w]);
            }
            emit(&format!("{}\n", serde_json::to_string_pretty(&out).map_err(anyhow::Error::from)?))?;
            outcome(&all_checks, &nonfinite)
        }
        Format::Text => {
            let mut s = String::new();
            s.push_str(&format!("loss       {}\n", f.render(root, style)));
            for (k, w) in wrt.iter().enumerate() {
                let lhs = if a.latex { format!("\\nabla_{{{w}}} J") } else { format!("∇_{w} J") };
                s.push_str(&format!("{lhs:<10} = {}\n", f.render(grads[k], style)));
            }
            for (k, w) in wrt.iter().enumerate().filter(|_| a.hessian) {
                let lhs = if a.latex { format!("\\nabla^2_{{{w}}} J") } else { format!("∇²_{w} J") };
                s.push_str(&format!("{lhs:<10} = {}\n", f.render(hess[k].1, style)));
            }
            if !defs.is_empty() {
                s.push_str("where\n");
                for (n, id) in &defs {
                    s.push_str(&format!("  {n} = {}\n", f.render(*id, style)));
                }
            }
            if let Some(v) = value {
                s.push_str(&format!("value      {v}\n"));
            }
            if let Some(g) = &gvals {
                for (k, w) in wrt.iter().enumerate() {
                    s.push_str(&format!("{:<10} {}\n", format!("∇_{w} J"), mat_to_text(&g[k])));
                }
            }
            if let Some(h) = &hvals {
                for (w, hk) in wrt.iter().zip(h) {
                    s.push_str(&format!("{:<10} {}\n", format!("∇²_{w} J"), mat_to_text(hk)));
                }
            }
            if let Some(e) = check {
                let verdict = verdict(e).0;
                s.push_str(&format!(
                    "check      max relative error {e:.2e} against central differences along {} random directions: {verdict}\n",
                    a.directions.max(1)
                ));
            }
            for (w, e) in wrt.iter().zip(&hchecks) {
                s.push_str(&format!(
                    "check      ∇²_{w} J: max relative error {e:.2e} against central differences of the gradient along {} random directions: {}\n",
                    a.directions.max(1),
                    verdict(*e).0
                ));
            }
            if let Some(w) = &nonfinite {
                s.push_str(&format!("warning    {w}\n"));
            }
            emit(&s)?;
            outcome(&all_checks, &nonfinite)
        }
    }
}

/// A vector expression: its Jacobian with respect to each variable (a matrix one by the entries
/// of vec(W), column by column), a matrix
/// whose row `i` is the gradient of entry `i`. JSON: `"jacobian_formula"`, and with values
/// `"value"` (the vector) and `"jacobian"` (an array of rows).
fn run_jacobian(a: &GradArgs, f: &mut LossFormula, wrt: &[&str], values: Option<&Values>) -> Result<(), CliError> {
    let lerr = |e| loss_error(&a.formula, &a.var, e);
    let jacs = wrt.iter().map(|w| f.jacobian(w)).collect::<Result<Vec<_>, _>>().map_err(lerr)?;
    let style = if a.latex { Style::Latex } else { Style::Unicode };
    let root = f.root();
    let defs = definitions(f, &jacs, root);
    let (value, jvals) = match values {
        Some(v) => {
            let mut ids = vec![root];
            ids.extend(&jacs);
            let out = f.eval(&ids, v).map_err(lerr)?;
            (Some(out[0].clone()), Some(out[1..].to_vec()))
        }
        None => (None, None),
    };
    let checks = match (values, a.check) {
        (Some(v), true) => Some(
            wrt.iter()
                .zip(&jacs)
                .map(|(w, j)| f.check_jacobian(w, *j, v, a.directions.max(1), 0x5EED))
                .collect::<Result<Vec<f64>, _>>()
                .map_err(lerr)?,
        ),
        _ => None,
    };
    let mut named: Vec<(String, &Mat)> = value.iter().map(|m| ("the value".to_string(), m)).collect();
    if let Some(j) = &jvals {
        named.extend(wrt.iter().zip(j).map(|(w, m)| (format!("∂f/∂{w}"), m)));
    }
    let nonfinite = not_finite_warning(&not_finite(named));
    let rows = |m: &Mat| json!(m.to_rows());
    match a.format {
        Format::Json => {
            let entry = |k: usize| {
                let mut e = json!({
                    "wrt": wrt[k],
                    "jacobian_formula": f.render(jacs[k], Style::Unicode),
                    "jacobian_ascii": f.render(jacs[k], Style::Ascii),
                    "jacobian_latex": f.render(jacs[k], Style::Latex),
                    "shape": f.shape_name(jacs[k]),
                });
                if let Some(j) = &jvals {
                    e["jacobian"] = rows(&j[k]);
                }
                if let Some(c) = &checks {
                    let err = if c[k].is_finite() { json!(c[k]) } else { json!(null) };
                    e["check"] = json!({"max_relative_error": err, "directions": a.directions.max(1), "ok": verdict(c[k]).1});
                }
                e
            };
            let mut out = if wrt.len() == 1 { entry(0) } else { json!({ "jacobians": (0..wrt.len()).map(entry).collect::<Vec<_>>() }) };
            out["formula"] = json!(f.render(root, Style::Unicode));
            out["definitions"] = json!(defs
                .iter()
                .map(|(n, id)| json!({"name": n, "formula": f.render(*id, Style::Unicode), "ascii": f.render(*id, Style::Ascii)}))
                .collect::<Vec<_>>());
            if let Some(v) = &value {
                out["value"] = mat_to_json(v);
            }
            if let Some(w) = &nonfinite {
                out["warnings"] = json!([w]);
            }
            emit(&format!("{}\n", serde_json::to_string_pretty(&out).map_err(anyhow::Error::from)?))?;
            outcome(checks.as_deref().unwrap_or(&[]), &nonfinite)
        }
        Format::Text => {
            let mut s = String::new();
            s.push_str(&format!("expression {}  ({})\n", f.render(root, style), f.shape_name(root)));
            for (k, w) in wrt.iter().enumerate() {
                let lhs = if a.latex { format!("\\partial f/\\partial {w}") } else { format!("∂f/∂{w}") };
                s.push_str(&format!("{lhs:<10} = {}\n", f.render(jacs[k], style)));
            }
            if !defs.is_empty() {
                s.push_str("where\n");
                for (n, id) in &defs {
                    s.push_str(&format!("  {n} = {}\n", f.render(*id, style)));
                }
            }
            if let Some(v) = &value {
                s.push_str(&format!("value      {}\n", mat_to_text(v)));
            }
            if let Some(j) = &jvals {
                for (k, w) in wrt.iter().enumerate() {
                    s.push_str(&format!("{:<10} {}\n", format!("∂f/∂{w}"), mat_to_text(&j[k])));
                }
            }
            if let Some(c) = &checks {
                for (k, w) in wrt.iter().enumerate() {
                    let verdict = verdict(c[k]).0;
                    s.push_str(&format!(
                        "check      ∂f/∂{w}: max relative error {:.2e} against central differences along {} random directions: {verdict}\n",
                        c[k],
                        a.directions.max(1)
                    ));
                }
            }
            if let Some(w) = &nonfinite {
                s.push_str(&format!("warning    {w}\n"));
            }
            emit(&s)?;
            outcome(checks.as_deref().unwrap_or(&[]), &nonfinite)
        }
    }
}
