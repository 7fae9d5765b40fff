//! Values of loss variables (`--at` files: JSON or CSV) and loss errors, for `grad` and
//! `minimize`.

use crate::cmd::{CliError, formula_error};
use sepfit_expr::matrix::{LossError, Mat, Values};
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

