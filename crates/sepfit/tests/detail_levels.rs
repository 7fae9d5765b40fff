//! The levels of detail of a fit report the same optimum: [`Detail::Covariance`] (what
//! Python's `curve_fit` asks for) has the estimates of [`Detail::Full`] bit for bit, their
//! covariance to rounding (its RSS is the projection's, not recomputed from fitted values),
//! the same warnings and outcome, and leaves out what it says it leaves out. And `fit`'s
//! per-thread workspace changes nothing: a fit after fits of other shapes, with and without
//! bounds, equals a fit with a fresh workspace.

use sepfit::named::{NamedOptions, resolve};
use sepfit::{Detail, FitOptions, FitWorkspace, FormulaModel, fit, fit_with};

const FORMULA: &str = "y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + c";

fn biexponential() -> (Vec<f64>, Vec<f64>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/problems/double_exp_1024.csv");
    let text = std::fs::read_to_string(path).unwrap();
    let (mut t, mut y) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1) {
        let mut it = line.split(',').map(|v| v.parse::<f64>().unwrap());
        t.push(it.next().unwrap());
        y.push(it.next().unwrap());
    }
    (t, y)
}

fn setup(t: &[f64], y: &[f64]) -> (FormulaModel, FitOptions) {
    let names = vec!["t".to_string(), "y".to_string()];
    let resolved = resolve(FORMULA, &names, &NamedOptions::with_start(&[("tau1", 0.5), ("tau2", 3.0)])).unwrap();
    let model = FormulaModel::new(resolved.formula.clone(), &[t, y]).unwrap();
    (model, resolved.options)
}

#[test]
fn covariance_detail_has_the_full_estimates_and_covariance() {
    let (t, y) = biexponential();
    let (mut model, opts) = setup(&t, &y);
    let full = fit(&mut model, &y, &opts).unwrap();
    let cov = fit(&mut model, &y, &opts.clone().with_detail(Detail::Covariance)).unwrap();
    assert!(full.converged && cov.converged);
    assert_eq!(full.estimates, cov.estimates, "the same iteration");
    assert_eq!((full.iterations, full.residual_evaluations), (cov.iterations, cov.residual_evaluations));
    assert_eq!(full.warnings, cov.warnings);
    assert_eq!(full.outcome, cov.outcome);
    assert!((full.rss - cov.rss).abs() <= 1e-13 * full.rss, "{} vs {}", full.rss, cov.rss);
    let (a, b) = (full.stats.covariance.as_ref().unwrap(), cov.stats.covariance.as_ref().unwrap());
    for i in 0..a.nrows() {
        for j in 0..a.ncols() {
            let (x, z) = (a[(i, j)], b[(i, j)]);
            assert!((x - z).abs() <= 1e-12 * x.abs(), "cov[{i},{j}]: {x} vs {z}");
        }
    }
    for (s, z) in full.stats.std_errors.iter().zip(&cov.stats.std_errors) {
        assert!((s - z).abs() <= 1e-12 * s, "{s} vs {z}");
    }
    assert_eq!(full.stats.condition_number, cov.stats.condition_number);
    // what it leaves out
    assert!(cov.fitted.is_empty() && cov.residuals.is_empty(), "{} {}", cov.fitted.len(), cov.residuals.len());
    assert!(cov.log.is_empty() && cov.path.is_empty(), "{} {}", cov.log.len(), cov.path.len());
    assert!(cov.stats.correlation.is_none());
    assert_eq!(cov.stats.t_values.len(), 5);
    assert!(cov.stats.t_values.iter().chain(&cov.stats.p_values).all(|v| v.is_nan()));
    assert!(cov.aic.is_nan() && cov.r_squared.is_nan());
    assert!(full.stats.p_values.iter().all(|p| p.is_finite()));
}

/// A fit stopped by the iteration limit says so at the covariance level too.
#[test]
fn covariance_detail_reports_a_fit_that_did_not_converge() {
    let (t, y) = biexponential();
    let (mut model, mut opts) = setup(&t, &y);
    opts.lm.max_iterations = 1;
    let full = fit(&mut model, &y, &opts).unwrap();
    let cov = fit(&mut model, &y, &opts.clone().with_detail(Detail::Covariance)).unwrap();
    assert!(!full.converged, "{:?}", full.outcome);
    assert_eq!(full.outcome, cov.outcome);
    assert_eq!(full.termination, cov.termination);
    assert_eq!(full.warnings, cov.warnings);
    assert_eq!(full.estimates, cov.estimates);
}

#[test]
fn thread_workspace_changes_nothing() {
    let (t, y) = biexponential();
    let (mut model, opts) = setup(&t, &y);
    let fresh = fit_with(&mut model, &y, &opts, &mut FitWorkspace::default()).unwrap();
    // other shapes and a bounded fit on this thread first
    let (ts, ys) = (t[..100].to_vec(), y[..100].to_vec());
    let (mut small, small_opts) = setup(&ts, &ys);
    fit(&mut small, &ys, &small_opts).unwrap();
    let bounded = opts.clone().with_linear_bounds(vec![0.0; 3], vec![f64::INFINITY; 3]);
    fit(&mut model, &y, &bounded).unwrap();
    for _ in 0..3 {
        let again = fit(&mut model, &y, &opts).unwrap();
        assert_eq!(again.estimates, fresh.estimates);
        assert_eq!(again.stats.std_errors, fresh.stats.std_errors);
        assert_eq!(again.fitted, fresh.fitted);
    }
}
