//! Poisson maximum likelihood against `scripts/poisson_reference.py` (scipy `minimize` on the
//! negative log-likelihood with its analytic gradient, Newton-polished; standard errors
//! √diag((JᵀWJ)⁻¹), W = diag(1/μ)), stored under `data/reference/poisson/`. Estimates to 1e-6
//! relative, standard errors to 1e-4, the deviance to 1e-8.

use sepfit::{Dataset, Loss, NamedOptions, fit_formula};
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/reference/poisson")
}

fn read_csv(name: &str) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = std::fs::read_to_string(dir().join(name)).unwrap();
    let mut lines = text.lines();
    let names: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let mut cols = vec![Vec::new(); names.len()];
    for line in lines.filter(|l| !l.is_empty()) {
        for (c, v) in line.split(',').enumerate() {
            cols[c].push(v.parse::<f64>().unwrap());
        }
    }
    (names, cols)
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

fn problems() -> Vec<Value> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(dir().join("reference.json")).unwrap()).unwrap();
    v["problems"].as_array().unwrap().clone()
}

fn options(p: &Value) -> NamedOptions {
    NamedOptions {
        start: p["start"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_f64().unwrap())).collect(),
        loss: Loss::Poisson,
        ..Default::default()
    }
}

#[test]
fn poisson_mle_matches_reference() {
    let probs = problems();
    assert!(probs.len() >= 3);
    for p in &probs {
        let name = p["name"].as_str().unwrap();
        let (names, cols) = read_csv(p["data"].as_str().unwrap());
        let data = Dataset::new(names, cols).unwrap();
        let f = fit_formula(p["formula"].as_str().unwrap(), &data, &options(p)).unwrap();
        assert!(f.fit.converged, "{name}: {:?} {:?}", f.fit.outcome, f.fit.warnings);
        for (k, want) in p["estimates"].as_object().unwrap() {
            let (got, want) = (f.param(k).unwrap().value, want.as_f64().unwrap());
            assert!(rel(got, want) < 1e-6, "{name}: {k} = {got}, reference {want}");
        }
        for (k, want) in p["std_errors"].as_object().unwrap() {
            let (got, want) = (f.param(k).unwrap().std_error, want.as_f64().unwrap());
            assert!(rel(got, want) < 1e-4, "{name}: se({k}) = {got}, reference {want}");
        }
        let dev = p["deviance"].as_f64().unwrap();
        assert!(rel(f.fit.deviance, dev) < 1e-8, "{name}: deviance {} vs {dev}", f.fit.deviance);
    }
}

/// A negative count is an error naming its row (one-based).
#[test]
fn negative_count_names_row() {
    let p = &problems()[0];
    let (names, mut cols) = read_csv(p["data"].as_str().unwrap());
    cols[1][4] = -3.0;
    let data = Dataset::new(names, cols).unwrap();
    let e = fit_formula(p["formula"].as_str().unwrap(), &data, &options(p)).unwrap_err().to_string();
    assert!(e.contains("row 5") && e.contains("-3"), "{e}");
}
