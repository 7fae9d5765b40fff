//! Batch and global fitting.

use sepfit::FormulaModelError;
use sepfit::batch::{BatchFitter, CurveError};
use sepfit::fit_global;
use sepfit::named::{Dataset, NamedOptions, fit_formula};

fn t() -> Vec<f64> {
    (0..120).map(|i| i as f64 * 0.05).collect()
}

/// Deterministic pseudo-noise.
fn noise(seed: u64, i: usize) -> f64 {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) ^ (i as u64).wrapping_mul(0xBF58476D1CE4E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D049BB133111EB);
    x ^= x >> 29;
    (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5
}

#[test]
fn batch_keeps_order_and_survives_bad_curves() {
    let t = t();
    let names = vec!["t".to_string(), "y".to_string()];
    let mut curves = Vec::new();
    for c in 0..40 {
        let k = 0.3 + 0.05 * c as f64;
        let mut y: Vec<f64> = t.iter().map(|t| 2.0 * (-k * t).exp() + 0.1).collect();
        if c == 7 {
            y[3] = f64::NAN; // bad data
        }
        if c == 11 {
            y.truncate(2); // too short, and of the wrong length
        }
        curves.push(vec![t.clone(), y]);
    }
    let opts = NamedOptions { start: vec![("k".into(), 1.0)], ..Default::default() };
    let f = BatchFitter::new("y ~ a*exp(-k*t) + c", &names, &opts).unwrap();
    assert_eq!(f.param_names(), ["a", "c", "k"]);
    let res = f.fit_all(&curves);
    assert_eq!(res.len(), 40);
    for (c, r) in res.iter().enumerate() {
        match c {
            7 => {
                assert!(matches!(r.error, Some(CurveError::Model(FormulaModelError::NonFiniteData { row: 3, .. }))), "{:?}", r.error);
                assert_eq!((r.status(), r.termination), ("error", None));
            }
            11 => assert!(matches!(r.error, Some(CurveError::Model(FormulaModelError::ColumnLength { .. }))), "{:?}", r.error),
            _ => {
                assert!(r.error.is_none() && r.converged, "curve {c}: {r:?}");
                let k = 0.3 + 0.05 * c as f64;
                assert!((r.values[2] - k).abs() < 1e-9, "curve {c}: k = {}", r.values[2]);
            }
        }
    }
}

#[test]
fn global_fit_matches_the_stacked_single_fit() {
    let t = t();
    let (k1, k2) = (1.7, 0.35);
    let amps = [(2.0, 0.5), (1.0, 1.5), (0.3, 2.2)];
    let names = vec!["t".to_string(), "y".to_string()];
    let curves: Vec<Vec<Vec<f64>>> = amps
        .iter()
        .enumerate()
        .map(|(c, &(a1, a2))| {
            let y = t.iter().enumerate().map(|(i, t)| a1 * (-k1 * t).exp() + a2 * (-k2 * t).exp() + 0.01 * noise(c as u64, i)).collect();
            vec![t.clone(), y]
        })
        .collect();
    let opts = NamedOptions { start: vec![("k1".into(), 2.5), ("k2".into(), 0.2)], ..Default::default() };
    let g = fit_global("y ~ a1*exp(-k1*t) + a2*exp(-k2*t)", &names, &opts, &curves).unwrap();
    assert!(g.converged, "{:?}", g.termination);
    assert_eq!(g.dof, 3 * 120 - 2 - 6);
    // Independent check: one ordinary fit of the stacked data, with indicator columns giving
    // each curve its own amplitudes.
    let mut cols = vec![Vec::new(); 5];
    for (c, curve) in curves.iter().enumerate() {
        for i in 0..t.len() {
            cols[0].push(t[i]);
            cols[1].push(curve[1][i]);
            for d in 0..3 {
                cols[2 + d].push(if d == c { 1.0 } else { 0.0 });
            }
        }
    }
    let data = Dataset::new(vec!["t".into(), "y".into(), "i0".into(), "i1".into(), "i2".into()], cols).unwrap();
    let stacked = "y ~ p0*i0*exp(-k1*t) + q0*i0*exp(-k2*t) + p1*i1*exp(-k1*t) + q1*i1*exp(-k2*t) + p2*i2*exp(-k1*t) + q2*i2*exp(-k2*t)";
    let r = fit_formula(stacked, &data, &opts).unwrap();
    let get = |n: &str| r.params.iter().find(|p| p.name == n).unwrap().clone();
    for (k, name) in ["k1", "k2"].iter().enumerate() {
        let p = get(name);
        assert!((g.nonlinear[k] - p.value).abs() < 1e-8 * p.value.abs(), "{name}: {} vs {}", g.nonlinear[k], p.value);
        assert!(
            (g.nonlinear_std_errors[k] - p.std_error).abs() < 1e-6 * p.std_error,
            "{name} se: {} vs {}",
            g.nonlinear_std_errors[k],
            p.std_error
        );
    }
    for c in 0..3 {
        assert!((g.linear[c][0] - get(&format!("p{c}")).value).abs() < 1e-7);
        assert!((g.linear[c][1] - get(&format!("q{c}")).value).abs() < 1e-7);
    }
    assert!((g.rss - r.fit.rss).abs() < 1e-10 * r.fit.rss);
}

#[test]
fn global_fit_rejects_different_time_axes() {
    let names = vec!["t".to_string(), "y".to_string()];
    let t1 = t();
    let t2: Vec<f64> = t1.iter().map(|t| t * 1.01).collect();
    let curves = vec![vec![t1.clone(), t1.iter().map(|t| (-t).exp()).collect()], vec![t2.clone(), t2.iter().map(|t| (-t).exp()).collect()]];
    let opts = NamedOptions { start: vec![("k".into(), 1.0)], ..Default::default() };
    let e = fit_global("y ~ a*exp(-k*t)", &names, &opts, &curves).unwrap_err();
    assert!(e.to_string().contains("same `t` for every curve"), "{e}");
}

#[test]
fn weighted_global_fit_on_borrowed_slices() {
    let t = t();
    let sigma: Vec<f64> = (0..t.len()).map(|i| 0.005 + 0.01 * (noise(99, i) + 0.5)).collect();
    let ys: Vec<Vec<f64>> = [(2.0, 0.5), (1.0, 1.5), (0.3, 2.2)]
        .iter()
        .enumerate()
        .map(|(c, &(a1, a2))| {
            t.iter().enumerate().map(|(i, t)| a1 * (-1.7 * t).exp() + a2 * (-0.35 * t).exp() + sigma[i] * noise(c as u64, i)).collect()
        })
        .collect();
    let names = vec!["t".to_string(), "y".to_string(), "s".to_string()];
    let formula = "y ~ a1*exp(-k1*t) + a2*exp(-k2*t)";
    let mut opts = NamedOptions { start: vec![("k1".into(), 2.5), ("k2".into(), 0.2)], sigma: Some("s".into()), ..Default::default() };
    // Borrowed columns: no copy of the shared time axis and weights per curve.
    let curves: Vec<Vec<&[f64]>> = ys.iter().map(|y| vec![t.as_slice(), y.as_slice(), sigma.as_slice()]).collect();
    // One curve: the weighted single fit (which polishes further: the rates to 1e-7).
    let one = fit_global(formula, &names, &opts, &curves[..1]).unwrap();
    let data = Dataset::new(names.clone(), vec![t.clone(), ys[0].clone(), sigma.clone()]).unwrap();
    let single = fit_formula(formula, &data, &opts).unwrap();
    assert!(one.converged && single.fit.converged);
    for (k, name) in ["k1", "k2"].iter().enumerate() {
        let p = single.param(name).unwrap();
        assert!((one.nonlinear[k] - p.value).abs() < 1e-7 * p.value.abs(), "{name}: {} vs {}", one.nonlinear[k], p.value);
        assert!((one.nonlinear_std_errors[k] - p.std_error).abs() < 1e-6 * p.std_error, "{name}");
    }
    assert!((one.rss - single.fit.rss).abs() < 1e-12 * single.fit.rss);
    // All curves; the owned form gives the same numbers as the borrowed one.
    let g = fit_global(formula, &names, &opts, &curves).unwrap();
    let owned: Vec<Vec<Vec<f64>>> = ys.iter().map(|y| vec![t.clone(), y.clone(), sigma.clone()]).collect();
    let go = fit_global(formula, &names, &opts, &owned).unwrap();
    assert!(g.converged);
    assert_eq!(g.nonlinear, go.nonlinear);
    assert_eq!(g.linear, go.linear);
    // A constant sigma changes the chi-square scale only.
    let half = vec![0.5; t.len()];
    let unweighted: Vec<Vec<&[f64]>> = ys.iter().map(|y| vec![t.as_slice(), y.as_slice(), half.as_slice()]).collect();
    let gc = fit_global(formula, &names, &opts, &unweighted).unwrap();
    opts.sigma = None;
    let gu = fit_global(formula, &names, &opts, &unweighted).unwrap();
    for k in 0..2 {
        assert!((gc.nonlinear[k] - gu.nonlinear[k]).abs() < 1e-10 * gu.nonlinear[k].abs());
    }
    assert!((gc.rss - 4.0 * gu.rss).abs() < 1e-10 * gc.rss);
}

#[test]
fn weighted_global_fit_errors() {
    let t = t();
    let y: Vec<f64> = t.iter().map(|t| (-t).exp()).collect();
    let names = vec!["t".to_string(), "y".to_string(), "s".to_string()];
    let (s1, mut s2) = (vec![0.1; t.len()], vec![0.1; t.len()]);
    s2[5] = 0.2;
    let opts = NamedOptions { start: vec![("k".into(), 1.0)], sigma: Some("s".into()), ..Default::default() };
    let curves = vec![vec![t.as_slice(), y.as_slice(), s1.as_slice()], vec![t.as_slice(), y.as_slice(), s2.as_slice()]];
    let e = fit_global("y ~ a*exp(-k*t)", &names, &opts, &curves).unwrap_err();
    assert!(e.to_string().contains("same `s` for every curve"), "{e}");
    s2[5] = -0.1;
    let curves = vec![vec![t.as_slice(), y.as_slice(), s2.as_slice()]];
    let e = fit_global("y ~ a*exp(-k*t)", &names, &opts, &curves).unwrap_err();
    assert!(e.to_string().contains("sigma[5]"), "{e}");
    let missing = NamedOptions { sigma: Some("w".into()), ..opts.clone() };
    let e = fit_global("y ~ a*exp(-k*t)", &names, &missing, &curves).unwrap_err();
    assert!(matches!(e, sepfit::GlobalError::Problem(sepfit::ProblemError::MissingSigmaColumn { .. })), "{e}");
    let short = vec![vec![t.as_slice(), y.as_slice()]];
    let e = fit_global("y ~ a*exp(-k*t)", &names, &opts, &short).unwrap_err();
    assert!(e.to_string().contains("3 column names but 2 data columns"), "{e}");
}

/// Without starts every curve is searched on its own: the same optimum as a fit from good
/// starts, the rates labelled in ascending order on every curve, and the result of a curve
/// independent of the others (fitting it alone gives the same bits).
#[test]
fn batch_without_starts_searches_each_curve() {
    let t = t();
    let names = vec!["t".to_string(), "y".to_string()];
    let curves: Vec<Vec<Vec<f64>>> = (0..12)
        .map(|c| {
            let (k1, k2) = (0.4 + 0.1 * c as f64, 3.0 + 0.2 * c as f64);
            let y = t.iter().enumerate().map(|(i, t)| 2.0 * (-k2 * t).exp() + 1.0 * (-k1 * t).exp() + 0.002 * noise(c, i)).collect();
            vec![t.clone(), y]
        })
        .collect();
    let model = "y ~ a1*exp(-k1*t) + a2*exp(-k2*t)";
    let auto = BatchFitter::new(model, &names, &NamedOptions::default()).unwrap();
    assert!(auto.search().is_some());
    let res = auto.fit_all(&curves);
    let given = BatchFitter::new(model, &names, &NamedOptions::with_start(&[("k1", 0.5), ("k2", 3.0)])).unwrap();
    let reference = given.fit_all(&curves);
    for (c, (r, g)) in res.iter().zip(&reference).enumerate() {
        assert!(r.converged && g.converged, "curve {c}: {r:?}");
        assert!((r.rss - g.rss).abs() <= 1e-9 * g.rss, "curve {c}: rss {} vs {}", r.rss, g.rss);
        // a1, a2, k1, k2: k1 < k2 on every curve.
        assert!(r.values[2] < r.values[3], "curve {c}: {:?}", r.values);
        for (x, y) in r.values.iter().zip(&g.values) {
            assert!((x - y).abs() <= 1e-6 * y.abs(), "curve {c}: {:?} vs {:?}", r.values, g.values);
        }
    }
    let alone = auto.fit_all(&curves[5..6]);
    assert_eq!(alone[0].values, res[5].values);
}

/// Starts learned from a few curves: every curve reaches the same optimum as from good starts.
#[test]
fn batch_with_learned_starts() {
    let t = t();
    let names = vec!["t".to_string(), "y".to_string()];
    let curves: Vec<Vec<Vec<f64>>> = (0..30)
        .map(|c| {
            let (k1, k2) = (0.5 + 0.02 * c as f64, 3.0 + 0.05 * c as f64);
            let y = t.iter().enumerate().map(|(i, t)| 2.0 * (-k2 * t).exp() + 1.0 * (-k1 * t).exp() + 0.002 * noise(c + 100, i)).collect();
            vec![t.clone(), y]
        })
        .collect();
    let model = "y ~ a1*exp(-k1*t) + a2*exp(-k2*t)";
    let mut learned = BatchFitter::new(model, &names, &NamedOptions::default()).unwrap();
    let sample: Vec<Vec<&[f64]>> = curves[..3].iter().map(|c| c.iter().map(|v| v.as_slice()).collect()).collect();
    let n = learned.learn_starts(&sample);
    assert!((1..=3).contains(&n), "{n} starts learned");
    let res = learned.fit_all(&curves);
    let reference = BatchFitter::new(model, &names, &NamedOptions::with_start(&[("k1", 0.5), ("k2", 3.0)])).unwrap().fit_all(&curves);
    for (c, (r, g)) in res.iter().zip(&reference).enumerate() {
        assert!(r.converged, "curve {c}: {r:?}");
        assert!((r.rss - g.rss).abs() <= 1e-9 * g.rss, "curve {c}: rss {} vs {}", r.rss, g.rss);
        assert!(r.values[2] < r.values[3], "curve {c}: {:?}", r.values);
    }
    // With every start given and no search asked for, there is nothing to learn.
    let mut given = BatchFitter::new(model, &names, &NamedOptions::with_start(&[("k1", 0.5), ("k2", 3.0)])).unwrap();
    assert_eq!(given.learn_starts(&sample), 0);
}

/// A global fit without starts searches the summed reduced loss: the optimum a good start
/// gives, the shared rates in ascending order, and a note saying so.
#[test]
fn global_fit_without_starts() {
    let t = t();
    let names = vec!["t".to_string(), "y".to_string()];
    let curves: Vec<Vec<Vec<f64>>> = [(2.0, 0.5), (1.0, 1.5), (0.3, 2.2)]
        .iter()
        .enumerate()
        .map(|(c, &(a1, a2))| {
            let y = t.iter().enumerate().map(|(i, t)| a1 * (-1.7 * t).exp() + a2 * (-0.35 * t).exp() + 0.01 * noise(c as u64 + 7, i)).collect();
            vec![t.clone(), y]
        })
        .collect();
    let model = "y ~ a1*exp(-k1*t) + a2*exp(-k2*t)";
    let auto = fit_global(model, &names, &NamedOptions::default(), &curves).unwrap();
    let given = fit_global(model, &names, &NamedOptions::with_start(&[("k1", 0.3), ("k2", 2.0)]), &curves).unwrap();
    assert!(auto.converged && given.converged);
    assert!((auto.rss - given.rss).abs() <= 1e-9 * given.rss, "{} vs {}", auto.rss, given.rss);
    assert!(auto.nonlinear[0] < auto.nonlinear[1], "{:?}", auto.nonlinear);
    for (a, g) in auto.nonlinear.iter().zip(&given.nonlinear) {
        assert!((a - g).abs() <= 1e-7 * g.abs(), "{:?} vs {:?}", auto.nonlinear, given.nonlinear);
    }
    assert!(auto.notes.iter().any(|n| n.contains("found by a search")), "{:?}", auto.notes);
    assert!(given.notes.is_empty());
}
