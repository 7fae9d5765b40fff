//! Where the time of one named fit goes (profiling aid): parse + resolve, compile, the fit
//! itself, and the whole `fit_formula`, on the 1,024-point biexponential
//! (`data/problems/double_exp_1024.csv`). Medians of interleaved repetitions.
//!
//! Run: `cargo run --release -p sepfit --example profile_fit [repeats]`.

use sepfit::named::{Dataset, NamedOptions, fit_resolved, resolve};
use sepfit::{FormulaModel, fit};
use std::time::Instant;

const FORMULA: &str = "y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + c";

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let repeats: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(500);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/problems/double_exp_1024.csv");
    let text = std::fs::read_to_string(path).expect("data/problems/double_exp_1024.csv");
    let (mut t, mut y) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1) {
        let mut it = line.split(',').map(|v| v.parse::<f64>().expect("a number"));
        t.push(it.next().expect("t"));
        y.push(it.next().expect("y"));
    }
    let data = Dataset::new(vec!["t".into(), "y".into()], vec![t.clone(), y.clone()]).expect("dataset");
    let opts = NamedOptions::with_start(&[("tau1", 0.5), ("tau2", 3.0)]);
    let names = data.names().to_vec();
    let resolved = resolve(FORMULA, &names, &opts).expect("resolves");
    // `profile_fit <repeats> fit|named`: only that piece, in a loop, for `perf record`.
    match std::env::args().nth(2).as_deref() {
        Some("fit") => {
            let mut model = FormulaModel::new(resolved.formula.clone(), &[&t, &y]).expect("compiles");
            let yy = model.response().to_vec();
            for _ in 0..repeats {
                std::hint::black_box(fit(&mut model, &yy, &resolved.options).expect("fits"));
            }
            return;
        }
        Some("log") => {
            let mut model = FormulaModel::new(resolved.formula.clone(), &[&t, &y]).expect("compiles");
            let yy = model.response().to_vec();
            let f = fit(&mut model, &yy, &resolved.options).expect("fits");
            println!("iterations {}, polish {}, evaluations {}, jacobians {}, termination {:?}", f.iterations, f.polish_steps, f.residual_evaluations, f.jacobian_evaluations, f.termination);
            for r in &f.log {
                println!("{:3} cost {:.17e} change {:9.2e} |g| {:9.2e} step {:9.2e} ratio {:6.3} lambda {:9.2e} evals {}", r.iter, r.cost, r.cost_change, r.gradient_norm, r.step_norm, r.ratio, r.lambda, r.evaluations);
            }
            return;
        }
        Some("named") => {
            for _ in 0..repeats {
                std::hint::black_box(fit_resolved(&resolved, &data, &opts).expect("fits"));
            }
            return;
        }
        _ => {}
    }
    let lean = resolved.options.clone().with_detail(sepfit::Detail::Lean);
    let mut scipy_tol = resolved.options.clone().with_tolerance(1.49012e-8);
    scipy_tol.lm.polish = false;
    let mut times: [Vec<f64>; 8] = Default::default();
    let mut ws = sepfit::FitWorkspace::default();
    for _ in 0..repeats {
        let t0 = Instant::now();
        let r = resolve(FORMULA, &names, &opts).expect("resolves");
        times[0].push(t0.elapsed().as_secs_f64());
        std::hint::black_box(&r);
        let t0 = Instant::now();
        let mut model = FormulaModel::new(resolved.formula.clone(), &[&t, &y]).expect("compiles");
        times[1].push(t0.elapsed().as_secs_f64());
        let yy = model.response().to_vec();
        let t0 = Instant::now();
        let f = fit(&mut model, &yy, &resolved.options).expect("fits");
        times[2].push(t0.elapsed().as_secs_f64());
        std::hint::black_box(&f);
        let t0 = Instant::now();
        std::hint::black_box(sepfit::fit_with(&mut model, &yy, &resolved.options, &mut ws).expect("fits"));
        times[7].push(t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        std::hint::black_box(fit(&mut model, &yy, &lean).expect("fits"));
        times[5].push(t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        std::hint::black_box(fit(&mut model, &yy, &scipy_tol).expect("fits"));
        times[6].push(t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        let nf = fit_resolved(&resolved, &data, &opts).expect("fits");
        times[3].push(t0.elapsed().as_secs_f64());
        std::hint::black_box(&nf);
        let t0 = Instant::now();
        let nf = sepfit::fit_formula(FORMULA, &data, &opts).expect("fits");
        times[4].push(t0.elapsed().as_secs_f64());
        std::hint::black_box(&nf);
    }
    let labels = ["parse + resolve", "FormulaModel::new (compile)", "fit (Detail::Full)", "fit_resolved", "fit_formula", "fit (Detail::Lean)", "fit (tol 1.49e-8, no polish)", "fit_with (reused workspace)"];
    for (l, v) in labels.iter().zip(times.iter_mut()) {
        println!("{l:<30} {:8.1} µs", median(v) * 1e6);
    }
}
