//! Nested-model F tests against R's `anova(nls(...), nls(...))` (`scripts/compare_reference.R`,
//! output in `data/reference/compare/anova_R.csv`, data from `data/reference/intervals/`): four
//! pairs, Puromycin (treated) Michaelis–Menten vs MM + a linear term, the same with R's
//! `weights =`, BOD exponential vs with an offset, and a single vs double exponential on 1000
//! points; and the refusals.

use sepfit::compare::{CompareError, f_upper_tail, nested};
use sepfit::{Dataset, NamedFit, NamedOptions, fit_formula};
use std::collections::HashMap;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/reference")
}

/// A small CSV (header, fields trimmed of R's quotes and padding).
fn read_csv(path: PathBuf) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let split = |l: &str| l.split(',').map(|f| f.trim().trim_matches('"').to_string()).collect::<Vec<_>>();
    let header = split(lines.next().unwrap());
    (header, lines.map(split).collect())
}

fn dataset(file: &str) -> Dataset {
    let (names, rows) = read_csv(root().join("intervals").join(file));
    let cols = (0..names.len()).map(|c| rows.iter().map(|r| r[c].parse::<f64>().unwrap()).collect()).collect();
    Dataset::new(names, cols).unwrap()
}

/// R's rows: (pair, model) → field → value (NA as NaN).
fn reference() -> HashMap<(String, String), HashMap<String, f64>> {
    let (names, rows) = read_csv(root().join("compare/anova_R.csv"));
    rows.into_iter()
        .map(|r| {
            let fields = names.iter().zip(&r).skip(2).map(|(n, v)| (n.clone(), v.parse::<f64>().unwrap_or(f64::NAN))).collect();
            ((r[0].clone(), r[1].clone()), fields)
        })
        .collect()
}

struct Pair {
    name: &'static str,
    file: &'static str,
    small: &'static str,
    small_start: &'static [(&'static str, f64)],
    big: &'static str,
    big_start: &'static [(&'static str, f64)],
    weights: Option<&'static str>,
}

const MM: &str = "rate ~ Vm*conc/(K + conc)";
const MM_LIN: &str = "rate ~ Vm*conc/(K + conc) + b*conc";
const PAIRS: &[Pair] = &[
    Pair { name: "puromycin", file: "puromycin.csv", small: MM, small_start: &[("K", 0.05)], big: MM_LIN, big_start: &[("K", 0.05)], weights: None },
    Pair {
        name: "puromycin_weighted",
        file: "puromycin_weighted.csv",
        small: MM,
        small_start: &[("K", 0.05)],
        big: MM_LIN,
        big_start: &[("K", 0.05)],
        weights: Some("w"),
    },
    Pair {
        name: "bod",
        file: "bod.csv",
        small: "demand ~ A*(1 - exp(-exp(lrc)*Time))",
        small_start: &[("lrc", -1.0)],
        big: "demand ~ A*(1 - exp(-exp(lrc)*Time)) + c0",
        big_start: &[("lrc", -1.0)],
        weights: None,
    },
    Pair {
        name: "dexp1000",
        file: "dexp1000.csv",
        small: "y ~ a1*exp(-t/tau1) + c",
        small_start: &[("tau1", 1.0)],
        big: "y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + c",
        big_start: &[("tau1", 0.5), ("tau2", 3.0)],
        weights: None,
    },
];

fn fit(p: &Pair, formula: &str, start: &[(&str, f64)]) -> NamedFit {
    let data = dataset(p.file);
    let opts = NamedOptions { weights: p.weights.map(String::from), ..NamedOptions::with_start(start) };
    fit_formula(formula, &data, &opts).unwrap()
}

fn rel(a: f64, b: f64) -> f64 {
    if a == b { 0.0 } else { (a - b).abs() / b.abs() }
}

#[test]
fn anova_matches_r() {
    let r = reference();
    let mut worst: (f64, f64, f64) = (0.0, 0.0, 0.0);
    for p in PAIRS {
        let t = nested(&fit(p, p.small, p.small_start), &fit(p, p.big, p.big_start)).unwrap();
        let (r1, r2) = (&r[&(p.name.to_string(), "1".to_string())], &r[&(p.name.to_string(), "2".to_string())]);
        assert_eq!(t.small.res_df as f64, r1["res_df"], "{}", p.name);
        assert_eq!(t.big.res_df as f64, r2["res_df"], "{}", p.name);
        assert_eq!(t.df as f64, r2["df"], "{}", p.name);
        let e_rss = rel(t.small.rss, r1["rss"]).max(rel(t.big.rss, r2["rss"]));
        let e_f = rel(t.f, r2["F"]);
        // R's p underflows to 0 for the double exponential (F ≈ 2.4e4 on (2, 995)).
        let e_p = if r2["p"] == 0.0 { if t.p_value < 1e-300 { 0.0 } else { 1.0 } } else { rel(t.p_value, r2["p"]) };
        eprintln!("{:<20} rss {e_rss:.1e}  sum_sq {:.1e}  F {e_f:.1e}  p {e_p:.1e}", p.name, rel(t.sum_sq, r2["sumsq"]));
        assert!(e_rss < 1e-9, "{}: rss off by {e_rss:e}", p.name);
        assert!(e_f < 1e-6, "{}: F {} vs R {} ({e_f:e})", p.name, t.f, r2["F"]);
        assert!(e_p < 1e-6, "{}: p {} vs R {} ({e_p:e})", p.name, t.p_value, r2["p"]);
        worst = (worst.0.max(e_rss), worst.1.max(e_f), worst.2.max(e_p));
    }
    eprintln!("worst relative: rss {:.1e}  F {:.1e}  p {:.1e}", worst.0, worst.1, worst.2);
}

#[test]
fn f_tail_matches_r_pf() {
    // pf(q, d1, d2, lower.tail = FALSE) in R 4.
    for (f, d1, d2, want) in [
        (1.439_820_642_982_241, 1.0, 9.0, 0.260_800_812_715_341_3),
        (0.5, 3.0, 20.0, 0.686_518_612_836_403_1),
        (4.0, 2.0, 10.0, 0.052_922_149_401_344_65),
        (1e-8, 2.0, 5.0, 0.999_999_99),
    ] {
        let got = f_upper_tail(f, d1, d2);
        assert!(rel(got, want) < 1e-9, "pf({f}, {d1}, {d2}) = {want}, got {got}");
    }
    assert_eq!(f_upper_tail(0.0, 1.0, 3.0), 1.0);
    assert_eq!(f_upper_tail(f64::INFINITY, 1.0, 3.0), 0.0);
    assert!(f_upper_tail(-1.0, 1.0, 3.0).is_nan() && f_upper_tail(1.0, 0.0, 3.0).is_nan());
}

#[test]
fn refusals_name_the_problem() {
    let p = &PAIRS[0];
    let small = fit(p, MM, &[("K", 0.05)]);
    let big = fit(p, MM_LIN, &[("K", 0.05)]);
    // Swapped: the "big" model has fewer parameters.
    let e = nested(&big, &small).unwrap_err();
    assert!(matches!(e, CompareError::NotMoreParameters { small_params: 3, big_params: 2, .. }), "{e}");
    assert!(e.to_string().contains("smaller model first"));
    // Same number of parameters.
    assert!(matches!(nested(&small, &small).unwrap_err(), CompareError::NotMoreParameters { .. }));
    // Different response.
    let d = dataset("puromycin.csv");
    let mut cols = d.columns().to_vec();
    cols[1][3] += 1.0;
    let other = Dataset::new(d.names().to_vec(), cols).unwrap();
    let big2 = fit_formula(MM_LIN, &other, &NamedOptions::with_start(&[("K", 0.05)])).unwrap();
    let e = nested(&small, &big2).unwrap_err();
    assert!(matches!(e, CompareError::DifferentResponse { index: 3, .. }), "{e}");
    // Different n.
    let short = Dataset::new(d.names().to_vec(), d.columns().iter().map(|c| c[..10].to_vec()).collect()).unwrap();
    let big3 = fit_formula(MM_LIN, &short, &NamedOptions::with_start(&[("K", 0.05)])).unwrap();
    assert!(matches!(nested(&small, &big3).unwrap_err(), CompareError::DifferentN { small_n: 12, big_n: 10 }));
    // Different weights.
    let pw = &PAIRS[1];
    let bigw = fit(pw, MM_LIN, &[("K", 0.05)]);
    assert!(matches!(nested(&small, &bigw).unwrap_err(), CompareError::DifferentWeights { .. }));
    // A "big" model that fits worse (not nested, or stopped at a worse local optimum).
    let mut worse = big.clone();
    worse.fit.rss = small.fit.rss * 1.01;
    let e = nested(&small, &worse).unwrap_err();
    assert!(matches!(e, CompareError::BigFitsWorse { .. }) && e.to_string().contains("not nested"), "{e}");
    // Fits that did not converge, or stopped at a degenerate point.
    let mut stopped = big.clone();
    stopped.fit.converged = false;
    stopped.fit.outcome = sepfit::Outcome::NotConverged;
    let e = nested(&small, &stopped).unwrap_err();
    assert!(matches!(e, CompareError::NotConverged { which: "big", .. }) && e.to_string().contains("did not converge"), "{e}");
    let mut degenerate = small.clone();
    degenerate.fit.outcome = sepfit::Outcome::Degenerate;
    let e = nested(&degenerate, &big).unwrap_err();
    assert!(matches!(e, CompareError::NotConverged { which: "small", .. }) && e.to_string().contains("degenerate"), "{e}");
}
