//! Stored reference data under `data/reference/` (made by the committed scripts in
//! `scripts/`): numeric CSV files, `reference.json` problem lists, relative errors.

use sepfit::Dataset;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `data/reference/<sub>` of the repository.
pub fn reference_dir(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/reference").join(sub)
}

/// The header and the columns of a numeric CSV file (blank lines skipped, fields trimmed).
pub fn read_columns(path: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let names: Vec<String> = lines.next().unwrap().split(',').map(|s| s.trim().to_string()).collect();
    let mut cols = vec![Vec::new(); names.len()];
    for line in lines.filter(|l| !l.trim().is_empty()) {
        for (c, v) in line.split(',').enumerate() {
            cols[c].push(v.trim().parse::<f64>().unwrap());
        }
    }
    (names, cols)
}

/// A numeric CSV file as a [`Dataset`].
pub fn read_dataset(path: &Path) -> Dataset {
    let (names, cols) = read_columns(path);
    Dataset::new(names, cols).unwrap()
}

/// The `problems` array of `data/reference/<sub>/reference.json`.
pub fn problems(sub: &str) -> Vec<Value> {
    let path = reference_dir(sub).join("reference.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap();
    v["problems"].as_array().unwrap().clone()
}

/// `|a − b| / |b|`.
pub fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

/// Asserts that the fit's estimates and standard errors equal `reference["estimates"]` and
/// `reference["std_errors"]` (objects name → value) to `est_tol` and `se_tol` relative;
/// `label` names the case and `source` the reference in the messages.
pub fn assert_params(f: &sepfit::NamedFit, reference: &Value, est_tol: f64, se_tol: f64, label: &str, source: &str) {
    for (k, want) in reference["estimates"].as_object().unwrap() {
        let (got, want) = (f.param(k).unwrap().value, want.as_f64().unwrap());
        assert!(rel(got, want) < est_tol, "{label}: {k} = {got}, {source} {want}");
    }
    for (k, want) in reference["std_errors"].as_object().unwrap() {
        let (got, want) = (f.param(k).unwrap().std_error, want.as_f64().unwrap());
        assert!(rel(got, want) < se_tol, "{label}: se({k}) = {got}, {source} {want}");
    }
}
