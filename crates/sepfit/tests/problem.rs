//! Fitting by name: exchangeable parameters keep the order of their starting values.

use sepfit::named::{Dataset, NamedOptions, fit_formula};

fn data() -> Dataset {
    let t: Vec<f64> = (0..80).map(|i| i as f64 * 0.1).collect();
    let y: Vec<f64> = t.iter().map(|t| 2.0 * (-1.3 * t).exp() + 1.0 * (-0.2 * t).exp()).collect();
    Dataset::new(vec!["t".into(), "y".into()], vec![t, y]).unwrap()
}

fn fit_from(k1: f64, k2: f64) -> (f64, f64, f64, f64, Vec<String>) {
    let opts = NamedOptions { start: vec![("k1".into(), k1), ("k2".into(), k2)], ..Default::default() };
    let r = fit_formula("y ~ a1*exp(-k1*t) + a2*exp(-k2*t)", &data(), &opts).unwrap();
    assert!(r.fit.converged);
    let v = |n: &str| r.params.iter().find(|p| p.name == n).unwrap().value;
    (v("k1"), v("k2"), v("a1"), v("a2"), r.notes.clone())
}

#[test]
fn exchangeable_rates_follow_the_order_of_the_start() {
    let (k1, k2, a1, a2, _) = fit_from(2.0, 0.1);
    assert!((k1 - 1.3).abs() < 1e-9 && (k2 - 0.2).abs() < 1e-9, "{k1} {k2}");
    assert!((a1 - 2.0).abs() < 1e-9 && (a2 - 1.0).abs() < 1e-9);
    // Started the other way round: the labels follow, and the amplitudes with them.
    let (k1, k2, a1, a2, _) = fit_from(0.1, 2.0);
    assert!((k1 - 0.2).abs() < 1e-9 && (k2 - 1.3).abs() < 1e-9, "{k1} {k2}");
    assert!((a1 - 1.0).abs() < 1e-9 && (a2 - 2.0).abs() < 1e-9);
}

#[test]
fn non_exchangeable_parameters_are_left_alone() {
    // k and m play different roles: no relabelling, no note.
    let opts = NamedOptions { start: vec![("k".into(), 1.0), ("m".into(), 0.1)], ..Default::default() };
    let r = fit_formula("y ~ a*exp(-k*t) + b*t*exp(-m*t)", &data(), &opts).unwrap();
    assert!(r.notes.is_empty(), "{:?}", r.notes);
}
