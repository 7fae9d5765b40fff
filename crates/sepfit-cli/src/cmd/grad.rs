//! `sepfit grad`: the exact gradient of a loss in vectors and matrices, printed in matrix
//! notation, evaluated at given values and checked against central differences.

use super::{CliError, emit, formula_error};
use crate::cli::{Format, GradArgs};
use sepfit_expr::Shape;
use sepfit_expr::matrix::graph::ONE;
use sepfit_expr::matrix::{LossError, LossFormula, MId, Mat, Style, Values};
use serde_json::{Value, json};
use std::path::Path;

/// Turns a formula-library error into a CLI error with the right source text.
pub fn loss_error(formula: &str, decls: &str, e: LossError) -> CliError {
    match e {
        LossError::Formula(d) => formula_error(formula, d),
        LossError::Declarations(d) => formula_error(decls, d),
        LossError::Value(m) => CliError::Other(anyhow::anyhow!(m)),
    }
}

/// Reads variable values from every file: JSON objects (numbers, arrays as vectors, arrays of
/// rows as matrices) or CSV files (each column a vector named by its header). A name given
/// twice is an error.
pub fn read_all_values(paths: &[std::path::PathBuf]) -> Result<Option<Values>, CliError> {
    if paths.is_empty() {
        return Ok(None);
    }
    let mut out = Values::new();
    for p in paths {
        let is_csv = p.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let vals = if is_csv { read_csv_values(p)? } else { read_values(p)? };
        for (name, m) in vals {
            if out.contains_key(&name) {
                return Err(anyhow::anyhow!("`{name}` is given a value twice (again in {})", p.display()).into());
            }
            out.insert(name, m);
        }
    }
    Ok(Some(out))
}

/// Each column of a CSV file (header row required) as a vector variable.
pub fn read_csv_values(path: &Path) -> Result<Values, CliError> {
    let data = crate::data::read_csv(path)?;
    let names: Vec<&str> = data.names.iter().map(String::as_str).collect();
    data.check_columns(&names)?;
    Ok(data.names.iter().cloned().zip(data.columns.iter().map(|c| Mat::vector(c.clone()))).collect())
}

/// Reads variable values from a JSON object: numbers, arrays (vectors), arrays of rows (matrices).
pub fn read_values(path: &Path) -> Result<Values, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: not valid JSON: {e}", path.display()))?;
    let Value::Object(map) = v else {
        return Err(anyhow::anyhow!("{}: expected a JSON object {{\"name\": value, ...}}", path.display()).into());
    };
    let mut out = Values::new();
    for (name, v) in map {
        out.insert(name.clone(), json_to_mat(&name, &v).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?);
    }
    Ok(out)
}

fn json_to_mat(name: &str, v: &Value) -> Result<Mat, String> {
    let num = |x: &Value, at: &str| -> Result<f64, String> {
        x.as_f64().ok_or_else(|| format!("`{name}`{at}: expected a number, found {x}"))
    };
    match v {
        Value::Number(_) => Ok(Mat::scalar(num(v, "")?)),
        Value::Array(items) if items.is_empty() => Err(format!("`{name}` is an empty array")),
        Value::Array(items) if items[0].is_array() => {
            let mut rows = Vec::with_capacity(items.len());
            for (i, r) in items.iter().enumerate() {
                let Value::Array(r) = r else { return Err(format!("`{name}` row {}: expected an array of numbers, found {r}", i + 1)) };
                rows.push(r.iter().enumerate().map(|(j, x)| num(x, &format!("[{}][{}]", i + 1, j + 1))).collect::<Result<Vec<_>, _>>()?);
            }
            let w = rows[0].len();
            if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != w) {
                return Err(format!("`{name}`: row {} has {} entries but row 1 has {w}", i + 1, r.len()));
            }
            Mat::from_rows(&rows).ok_or_else(|| format!("`{name}`: empty rows"))
        }
        Value::Array(items) => Ok(Mat::vector(items.iter().enumerate().map(|(i, x)| num(x, &format!("[{}]", i + 1))).collect::<Result<_, _>>()?)),
        other => Err(format!("`{name}`: expected a number, an array or an array of rows, found {other}")),
    }
}

/// A value as JSON: a number, an array (vector) or an array of rows (matrix).
pub fn mat_to_json(m: &Mat) -> Value {
    if m.rows == 1 && m.cols == 1 {
        json!(m.data[0])
    } else if m.cols == 1 {
        json!(m.data)
    } else {
        json!(m.to_rows())
    }
}

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

pub fn run(a: &GradArgs) -> Result<(), CliError> {
    let values = read_all_values(&a.at)?;
    let lerr = |e| loss_error(&a.formula, &a.var, e);
    let mut f = LossFormula::new(&a.formula, &a.var, values.as_ref()).map_err(lerr)?;
    let wrt: Vec<&str> = a.wrt.iter().map(String::as_str).collect();
    if matches!(f.graph.shape(f.root()), Shape::Vector(_) | Shape::Matrix(ONE, _)) {
        return run_jacobian(a, &mut f, &wrt, values.as_ref());
    }
    let grads = f.gradients(&wrt).map_err(lerr)?;
    let style = if a.latex { Style::Latex } else { Style::Unicode };
    let root = f.root();
    let mut defs: Vec<(String, MId)> = Vec::new();
    for g in grads.iter().chain([&root]) {
        for d in f.definitions_used(*g) {
            if !defs.contains(&d) {
                defs.push(d);
            }
        }
    }
    let (value, gvals) = match &values {
        Some(v) => {
            let mut ids = vec![root];
            ids.extend(&grads);
            let out = f.eval(&ids, v).map_err(lerr)?;
            (Some(out[0].data[0]), Some(out[1..].to_vec()))
        }
        None => (None, None),
    };
    let check = match (&values, a.check) {
        (Some(v), true) => Some(f.check_gradient(&wrt, &grads, v, a.directions.max(1), 0x5EED).map_err(lerr)?),
        _ => None,
    };
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
                out["check"] = json!({"max_relative_error": e, "directions": a.directions.max(1), "ok": e <= 1e-6});
            }
            emit(&format!("{}\n", serde_json::to_string_pretty(&out).map_err(anyhow::Error::from)?))
        }
        Format::Text => {
            let mut s = String::new();
            s.push_str(&format!("loss       {}\n", f.render(root, style)));
            for (k, w) in wrt.iter().enumerate() {
                let lhs = if a.latex { format!("\\nabla_{{{w}}} J") } else { format!("∇_{w} J") };
                s.push_str(&format!("{lhs:<10} = {}\n", f.render(grads[k], style)));
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
            if let Some(e) = check {
                let verdict = if e <= 1e-6 { "ok" } else { "MISMATCH" };
                s.push_str(&format!(
                    "check      max relative error {e:.2e} against central differences along {} random directions: {verdict}\n",
                    a.directions.max(1)
                ));
            }
            emit(&s)
        }
    }
}

/// A vector expression: its Jacobian with respect to each (vector or scalar) variable, a matrix
/// whose row `i` is the gradient of entry `i`. JSON: `"jacobian_formula"`, and with values
/// `"value"` (the vector) and `"jacobian"` (an array of rows).
fn run_jacobian(a: &GradArgs, f: &mut LossFormula, wrt: &[&str], values: Option<&Values>) -> Result<(), CliError> {
    let lerr = |e| loss_error(&a.formula, &a.var, e);
    let jacs = wrt.iter().map(|w| f.jacobian(w)).collect::<Result<Vec<_>, _>>().map_err(lerr)?;
    let style = if a.latex { Style::Latex } else { Style::Unicode };
    let root = f.root();
    let mut defs: Vec<(String, MId)> = Vec::new();
    for g in jacs.iter().chain([&root]) {
        for d in f.definitions_used(*g) {
            if !defs.contains(&d) {
                defs.push(d);
            }
        }
    }
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
                    e["check"] = json!({"max_relative_error": c[k], "directions": a.directions.max(1), "ok": c[k] <= 1e-6});
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
            emit(&format!("{}\n", serde_json::to_string_pretty(&out).map_err(anyhow::Error::from)?))
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
                    let verdict = if c[k] <= 1e-6 { "ok" } else { "MISMATCH" };
                    s.push_str(&format!(
                        "check      ∂f/∂{w}: max relative error {:.2e} against central differences along {} random directions: {verdict}\n",
                        c[k],
                        a.directions.max(1)
                    ));
                }
            }
            emit(&s)
        }
    }
}
