//! Robust losses against scipy: `scripts/robust_reference.py` fits three problems with
//! outliers by `curve_fit(…, loss=L, f_scale=F)` (tight tolerances) for the four robust
//! losses and stores data, estimates and curve_fit's standard errors under
//! `data/reference/robust/`. Estimates to 1e-6 relative, standard errors to 1e-4.

use sepfit::{Dataset, Loss, NamedOptions, fit_formula};
use serde_json::Value;
use std::path::PathBuf;

fn dir(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/reference").join(sub)
}

fn read_csv(path: PathBuf) -> Dataset {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let names: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let mut cols = vec![Vec::new(); names.len()];
    for line in lines.filter(|l| !l.is_empty()) {
        for (c, v) in line.split(',').enumerate() {
            cols[c].push(v.parse::<f64>().unwrap());
        }
    }
    Dataset::new(names, cols).unwrap()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

#[test]
fn robust_losses_match_scipy() {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(dir("robust").join("reference.json")).unwrap()).unwrap();
    let probs = v["problems"].as_array().unwrap();
    assert!(probs.len() >= 3);
    let mut checked = 0;
    for p in probs {
        let name = p["name"].as_str().unwrap();
        let data = read_csv(dir("robust").join(p["data"].as_str().unwrap()));
        let f_scale = p["f_scale"].as_f64().unwrap();
        for (loss_name, r) in p["fits"].as_object().unwrap() {
            let loss: Loss = loss_name.parse().unwrap();
            let opts = NamedOptions {
                start: p["start"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_f64().unwrap())).collect(),
                loss,
                f_scale: Some(f_scale),
                ..Default::default()
            };
            let f = fit_formula(p["formula"].as_str().unwrap(), &data, &opts).unwrap();
            assert!(f.fit.converged, "{name}/{loss_name}: {:?} {:?}", f.fit.outcome, f.fit.warnings);
            assert_eq!(f.fit.loss, loss);
            for (k, want) in r["estimates"].as_object().unwrap() {
                let (got, want) = (f.param(k).unwrap().value, want.as_f64().unwrap());
                assert!(rel(got, want) < 1e-6, "{name}/{loss_name}: {k} = {got}, scipy {want}");
            }
            for (k, want) in r["std_errors"].as_object().unwrap() {
                let (got, want) = (f.param(k).unwrap().std_error, want.as_f64().unwrap());
                assert!(rel(got, want) < 1e-4, "{name}/{loss_name}: se({k}) = {got}, scipy {want}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 12);
}

/// A non-positive or non-finite `f_scale` is an error naming it.
#[test]
fn bad_f_scale_is_an_error() {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(dir("robust").join("reference.json")).unwrap()).unwrap();
    let p = &v["problems"][0];
    let data = read_csv(dir("robust").join(p["data"].as_str().unwrap()));
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let opts = NamedOptions { start: vec![("k".into(), 1.0)], loss: Loss::Huber, f_scale: Some(bad), ..Default::default() };
        let e = fit_formula(p["formula"].as_str().unwrap(), &data, &opts).unwrap_err().to_string();
        assert!(e.contains("f_scale"), "{e}");
    }
}
