//! Robust losses against scipy: `scripts/robust_reference.py` fits three problems with
//! outliers by `curve_fit(…, loss=L, f_scale=F)` (tight tolerances) for the four robust
//! losses and stores data, estimates and curve_fit's standard errors under
//! `data/reference/robust/`. Estimates to 1e-6 relative, standard errors to 1e-4.

use sepfit::{Loss, NamedOptions, fit_formula};
use serde_json::Value;

mod support;
use support::reference::{assert_params, read_dataset, reference_dir};

#[test]
fn robust_losses_match_scipy() {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(reference_dir("robust").join("reference.json")).unwrap()).unwrap();
    let probs = v["problems"].as_array().unwrap();
    assert!(probs.len() >= 3);
    let mut checked = 0;
    for p in probs {
        let name = p["name"].as_str().unwrap();
        let data = read_dataset(&reference_dir("robust").join(p["data"].as_str().unwrap()));
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
            assert_params(&f, r, 1e-6, 1e-4, &format!("{name}/{loss_name}"), "scipy");
            checked += 1;
        }
    }
    assert!(checked >= 12);
}

/// A non-positive or non-finite `f_scale` is an error naming it.
#[test]
fn bad_f_scale_is_an_error() {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(reference_dir("robust").join("reference.json")).unwrap()).unwrap();
    let p = &v["problems"][0];
    let data = read_dataset(&reference_dir("robust").join(p["data"].as_str().unwrap()));
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let opts = NamedOptions { start: vec![("k".into(), 1.0)], loss: Loss::Huber, f_scale: Some(bad), ..Default::default() };
        let e = fit_formula(p["formula"].as_str().unwrap(), &data, &opts).unwrap_err().to_string();
        assert!(e.contains("f_scale"), "{e}");
    }
}
