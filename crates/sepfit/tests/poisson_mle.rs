//! Poisson maximum likelihood against `scripts/poisson_reference.py` (scipy `minimize` on the
//! negative log-likelihood with its analytic gradient, Newton-polished; standard errors
//! √diag((JᵀWJ)⁻¹), W = diag(1/μ)), stored under `data/reference/poisson/`. Estimates to 1e-6
//! relative, standard errors to 1e-4, the deviance to 1e-8.

use sepfit::{Dataset, Loss, NamedOptions, fit_formula};
use serde_json::Value;

mod support;
use support::reference::{assert_params, read_columns, reference_dir, rel};

fn problems() -> Vec<Value> {
    support::reference::problems("poisson")
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
        let (names, cols) = read_columns(&reference_dir("poisson").join(p["data"].as_str().unwrap()));
        let data = Dataset::new(names, cols).unwrap();
        let f = fit_formula(p["formula"].as_str().unwrap(), &data, &options(p)).unwrap();
        assert!(f.fit.converged, "{name}: {:?} {:?}", f.fit.outcome, f.fit.warnings);
        assert_params(&f, p, 1e-6, 1e-4, name, "reference");
        let dev = p["deviance"].as_f64().unwrap();
        assert!(rel(f.fit.deviance, dev) < 1e-8, "{name}: deviance {} vs {dev}", f.fit.deviance);
    }
}

/// A negative count is an error naming its row (one-based).
#[test]
fn negative_count_names_row() {
    let p = &problems()[0];
    let (names, mut cols) = read_columns(&reference_dir("poisson").join(p["data"].as_str().unwrap()));
    cols[1][4] = -3.0;
    let data = Dataset::new(names, cols).unwrap();
    let e = fit_formula(p["formula"].as_str().unwrap(), &data, &options(p)).unwrap_err().to_string();
    assert!(e.contains("row 5") && e.contains("-3"), "{e}");
}
