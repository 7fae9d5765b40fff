//! `profile_traces`: the profile statistic on a grid, for `--profile-plot`. On Puromycin
//! (treated; `rate ~ Vm*conc/(K + conc)`, R's example) the trace is 0 at the estimate, crosses
//! `∓q` at the profile interval ends (which are trace points), increases, and agrees with an
//! independent fit with the parameter held.

use sepfit::profile::{profile_intervals, profile_traces};
use sepfit::{Dataset, NamedOptions, fit_formula};
use std::path::PathBuf;

fn puromycin() -> Dataset {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/reference/intervals/puromycin.csv");
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let split = |l: &str| l.split(',').map(|f| f.trim().trim_matches('"').to_string()).collect::<Vec<_>>();
    let names = split(lines.next().unwrap());
    let rows: Vec<Vec<String>> = lines.map(split).collect();
    let cols = (0..names.len()).map(|c| rows.iter().map(|r| r[c].parse::<f64>().unwrap()).collect()).collect();
    Dataset::new(names, cols).unwrap()
}

const FORMULA: &str = "rate ~ Vm*conc/(K + conc)";

#[test]
fn trace_is_zero_at_the_estimate_and_crosses_the_quantile_at_the_interval_ends() {
    let data = puromycin();
    let opts = NamedOptions::with_start(&[("K", 0.05)]);
    let r = fit_formula(FORMULA, &data, &opts).unwrap();
    let ci = profile_intervals(&r, &data, &opts, 0.95).unwrap();
    let p = profile_traces(&r, &data, &opts, 0.95, 10).unwrap();
    assert_eq!(p.intervals, ci, "the traces carry the same intervals");
    let q = ci.quantile;
    assert!((q - 2.228138851986).abs() < 1e-9, "t(10) quantile, got {q}");
    assert_eq!(p.traces.len(), 2);
    for (t, c) in p.traces.iter().zip(&ci.params) {
        assert_eq!(t.name, c.name);
        assert_eq!((t.lower, t.upper, t.estimate), (c.lower, c.upper, c.estimate));
        assert_eq!(t.values.len(), t.tau.len());
        // 10 grid points a side, the two ends and the estimate; no re-fit failed here.
        assert_eq!(t.values.len(), 23, "{}: {:?}", t.name, t.values);
        assert!(t.values.windows(2).all(|w| w[0] < w[1]), "{}: values increase", t.name);
        assert!(t.tau.windows(2).all(|w| w[0] < w[1]), "{}: tau increases: {:?}", t.name, t.tau);
        let at = |v: f64| t.values.iter().position(|&x| x == v).unwrap_or_else(|| panic!("{}: {v} is not a trace point", t.name));
        assert_eq!(t.tau[at(t.estimate)], 0.0);
        let (lo, hi) = (t.tau[at(t.lower)], t.tau[at(t.upper)]);
        assert!((lo + q).abs() < 1e-6 * q, "{}: tau at the lower end {lo}, -q = {}", t.name, -q);
        assert!((hi - q).abs() < 1e-6 * q, "{}: tau at the upper end {hi}, q = {q}", t.name);
        // A bit beyond each end on both sides.
        assert!(t.values[0] < t.lower && t.tau[0] < -q);
        assert!(*t.values.last().unwrap() > t.upper && *t.tau.last().unwrap() > q);
        let beyond = (t.values[0] - t.estimate) / (t.lower - t.estimate);
        assert!((beyond - 1.15).abs() < 1e-12, "{}: reaches {beyond} times the distance to the end", t.name);
    }
    // One point against an independent fit with the parameter held: K at its third grid
    // point above the estimate.
    let k = p.traces.iter().find(|t| t.name == "K").unwrap();
    let i = k.values.iter().position(|&v| v == k.estimate).unwrap() + 3;
    let v = k.values[i];
    let mut held = NamedOptions::with_start(&[]);
    held.fixed.push(("K".into(), v));
    let s = fit_formula(FORMULA, &data, &held).unwrap();
    let s2 = r.fit.rss / r.fit.dof as f64;
    let tau = ((s.fit.rss - r.fit.rss) / s2).sqrt();
    assert!((k.tau[i] - tau).abs() < 1e-8 * tau, "tau({v}) = {} against {tau}", k.tau[i]);
}

#[test]
fn traces_refuse_what_the_intervals_refuse() {
    let data = puromycin();
    let opts = NamedOptions::with_start(&[("K", 0.05)]);
    let r = fit_formula(FORMULA, &data, &opts).unwrap();
    assert!(profile_traces(&r, &data, &opts, 1.5, 10).is_err());
}
