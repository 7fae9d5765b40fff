//! Prediction bands against lmfit's `eval_uncertainty` and a hand delta method in numpy
//! (`scripts/predict_reference.py`, output in `data/reference/predict/`), and weights against
//! scipy's `curve_fit` with `absolute_sigma=False` and `True`.

use sepfit::{Dataset, NamedOptions, fit_formula};
use serde_json::Value;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/reference")
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("predict").join(name)).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn dataset(problem: &str) -> Dataset {
    let text = std::fs::read_to_string(root().join("intervals").join(format!("{problem}.csv"))).unwrap();
    let mut lines = text.lines();
    let names: Vec<String> = lines.next().unwrap().split(',').map(|h| h.trim_matches('"').to_string()).collect();
    let rows: Vec<Vec<f64>> = lines.filter(|l| !l.is_empty()).map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
    let cols = (0..names.len()).map(|c| rows.iter().map(|r| r[c]).collect()).collect();
    Dataset::new(names, cols).unwrap()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

/// The fitted values and both half-widths equal numpy's delta method and lmfit's
/// `eval_uncertainty` (given the exact covariance) to 1e-6 relative; with lmfit's own
/// covariance (from MINPACK's finite-difference Jacobian) to 1e-4.
#[test]
fn bands_match_lmfit_and_numpy() {
    let cases = [
        ("puromycin", "rate ~ Vm*conc/(K + conc)", vec![("K", 0.05)]),
        ("dnase1", "density ~ Asym/(1 + exp((xmid - log(conc))/scal))", vec![("xmid", 0.0), ("scal", 1.0)]),
        ("dexp1000", "y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + c", vec![("tau1", 0.5), ("tau2", 3.0)]),
    ];
    let (mut worst, mut worst_own): (f64, f64) = (0.0, 0.0);
    for (name, formula, start) in cases {
        let reference = json(&format!("{name}.json"));
        let r = fit_formula(formula, &dataset(name), &NamedOptions::with_start(&start)).unwrap();
        assert!(r.fit.converged);
        let x = reference["x"].as_str().unwrap().to_string();
        let grid = Dataset::new(vec![x], vec![floats(&reference["grid"])]).unwrap();
        let p = r.predict(&grid, 0.95, None).unwrap();
        assert!(rel(p.quantile, reference["quantile"].as_f64().unwrap()) < 1e-13);
        let dely: Vec<f64> = p.upper.iter().zip(&p.fit).map(|(u, f)| u - f).collect();
        let dely_pred: Vec<f64> = p.pred_upper.iter().zip(&p.fit).map(|(u, f)| u - f).collect();
        for (ours, key) in [
            (&p.fit, "fit"),
            (&p.se_fit, "numpy_se_fit"),
            (&dely, "numpy_dely"),
            (&dely, "lmfit_dely"),
            (&dely_pred, "numpy_dely_predicted"),
            (&dely_pred, "lmfit_dely_predicted"),
            (&dely, "lmfit_own_covar_dely"),
            (&dely_pred, "lmfit_own_covar_dely_predicted"),
        ] {
            let tol = if key.contains("own_covar") { 1e-4 } else { 1e-6 };
            for (i, (a, b)) in ours.iter().zip(floats(&reference[key])).enumerate() {
                let e = rel(*a, b);
                if tol < 1e-5 {
                    worst = worst.max(e);
                } else {
                    worst_own = worst_own.max(e);
                }
                assert!(e < tol, "{name} {key}[{i}]: {a} vs {b}");
            }
        }
        // Lower bands are symmetric.
        for i in 0..p.fit.len() {
            assert!(((p.fit[i] - p.lower[i]) - dely[i]).abs() <= 1e-12 * dely[i]);
            assert!(((p.fit[i] - p.pred_lower[i]) - dely_pred[i]).abs() <= 1e-12 * dely_pred[i]);
        }
    }
    eprintln!("bands: largest relative difference from numpy and lmfit {worst:.2e}, from lmfit with its own covariance {worst_own:.2e}");
}

/// R's `weights = w` and scipy's `sigma = 1/sqrt(w)` with `absolute_sigma=False` give the
/// same covariance; with `absolute_sigma=True` it is not rescaled by the reduced chi-square.
#[test]
fn weights_and_absolute_sigma_match_curve_fit() {
    let reference = json("puromycin_weighted_curve_fit.json");
    let data = dataset("puromycin_weighted");
    let w = data.column("w").unwrap().to_vec();
    let sigma: Vec<f64> = w.iter().map(|w| 1.0 / w.sqrt()).collect();
    let mut names = data.names().to_vec();
    names.push("s".into());
    let mut cols = data.columns().to_vec();
    cols.push(sigma);
    let data = Dataset::new(names, cols).unwrap();
    let formula = "rate ~ Vm*conc/(K + conc)";
    let mut worst: f64 = 0.0;
    for (key, absolute) in [("relative", false), ("absolute", true)] {
        let popt = floats(&reference[key]["popt"]);
        let pcov: Vec<Vec<f64>> = reference[key]["pcov"].as_array().unwrap().iter().map(floats).collect();
        for (weights, sigma) in [(Some("w"), None), (None, Some("s"))] {
            let opts = NamedOptions {
                weights: weights.map(String::from),
                sigma: sigma.map(String::from),
                absolute_sigma: absolute,
                ..NamedOptions::with_start(&[("K", 0.05)])
            };
            let r = fit_formula(formula, &data, &opts).unwrap();
            assert!(r.fit.converged && r.absolute_sigma == absolute);
            // θ order (K, Vm); scipy's (Vm, K).
            let cov = r.fit.stats.covariance.as_ref().unwrap();
            let ours = [[cov[(1, 1)], cov[(1, 0)]], [cov[(0, 1)], cov[(0, 0)]]];
            for (i, name) in ["Vm", "K"].iter().enumerate() {
                let e = r.param(name).unwrap();
                let se = pcov[i][i].sqrt();
                assert!((e.value - popt[i]).abs() < 1e-6 * se, "{key} {name}: {} vs {}", e.value, popt[i]);
                assert!(rel(e.std_error, se) < 1e-6, "{key} {name}: se {} vs {se}", e.std_error);
                for j in 0..2 {
                    let d = (ours[i][j] - pcov[i][j]).abs() / (pcov[i][i] * pcov[j][j]).sqrt();
                    worst = worst.max(d);
                    assert!(d < 1e-6, "{key} cov[{i}][{j}]: {} vs {}", ours[i][j], pcov[i][j]);
                }
                // Absolute sigma: z values with normal p values.
                if absolute {
                    assert!((e.p_value - sepfit::stats::normal_two_sided_p(e.t_value)).abs() < 1e-15);
                }
            }
        }
    }
    eprintln!("weights: largest covariance difference from curve_fit {worst:.2e} (relative to the standard errors)");
    // Errors name the option.
    let both = NamedOptions { weights: Some("w".into()), sigma: Some("s".into()), ..NamedOptions::with_start(&[("K", 0.05)]) };
    assert!(matches!(fit_formula(formula, &data, &both), Err(sepfit::ProblemError::SigmaAndWeights)));
    let none = NamedOptions { absolute_sigma: true, ..NamedOptions::with_start(&[("K", 0.05)]) };
    assert!(matches!(fit_formula(formula, &data, &none), Err(sepfit::ProblemError::AbsoluteSigmaWithoutSigma)));
    let missing = NamedOptions { weights: Some("nope".into()), ..NamedOptions::with_start(&[("K", 0.05)]) };
    assert!(matches!(fit_formula(formula, &data, &missing), Err(sepfit::ProblemError::MissingWeightsColumn { .. })));
    let mut names = data.names().to_vec();
    names.push("bad".into());
    let mut cols = data.columns().to_vec();
    cols.push(w.iter().enumerate().map(|(i, w)| if i == 3 { 0.0 } else { *w }).collect());
    let bad = Dataset::new(names, cols).unwrap();
    let zero = NamedOptions { weights: Some("bad".into()), ..NamedOptions::with_start(&[("K", 0.05)]) };
    assert!(matches!(fit_formula(formula, &bad, &zero), Err(sepfit::ProblemError::BadWeight { row: 3, .. })));
}
