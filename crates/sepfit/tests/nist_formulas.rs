//! All 27 NIST StRD nonlinear regression problems × 2 starting points, fitted through the
//! formula language with default options and starting values by name, as `sepfit fit` does. Every run must reach
//! LRE ≥ 7 on every parameter against the certified values and LRE ≥ 4 on every standard error.
//!
//! One documented exception: Lanczos1's standard errors. Its data are the model evaluated to
//! 13 digits, so the certified residual sum of squares is 1.4e-25 — residuals of ~8e-14 on
//! values of order 1. In double precision each residual carries a rounding error of order
//! 1e-16·|y| ≈ 1e-15 (about 1% of itself), which caps the LRE of the residual standard error,
//! and hence of every standard error, near 3 (2.9–3.2 measured, depending on which
//! rounding-level point the last step lands on). No double-precision solver can do better; the
//! test asserts LRE ≥ 2.5 there and LRE ≥ 7 for its parameters like everywhere else.

mod support;
use support::nist::{lre, parse_nist};
use sepfit::named::{Dataset, NamedOptions, fit_formula};
use sepfit_expr::ModelFormula;

const PROBLEMS: &[(&str, &str, &[&str])] = &[
    ("Misra1a", "y ~ b1*(1-exp(-b2*x))", &["x"]),
    ("Chwirut2", "y ~ exp(-b1*x)/(b2+b3*x)", &["x"]),
    ("Chwirut1", "y ~ exp(-b1*x)/(b2+b3*x)", &["x"]),
    ("Lanczos3", "y ~ b1*exp(-b2*x) + b3*exp(-b4*x) + b5*exp(-b6*x)", &["x"]),
    ("Gauss1", "y ~ b1*exp(-b2*x) + b3*exp(-(x-b4)^2/b5^2) + b6*exp(-(x-b7)^2/b8^2)", &["x"]),
    ("Gauss2", "y ~ b1*exp(-b2*x) + b3*exp(-(x-b4)^2/b5^2) + b6*exp(-(x-b7)^2/b8^2)", &["x"]),
    ("DanWood", "y ~ b1*x^b2", &["x"]),
    ("Misra1b", "y ~ b1*(1-(1+b2*x/2)^(-2))", &["x"]),
    ("Kirby2", "y ~ (b1 + b2*x + b3*x^2)/(1 + b4*x + b5*x^2)", &["x"]),
    ("Hahn1", "y ~ (b1+b2*x+b3*x^2+b4*x^3)/(1+b5*x+b6*x^2+b7*x^3)", &["x"]),
    ("Nelson", "log(y) ~ b1 - b2*x1*exp(-b3*x2)", &["x1", "x2"]),
    ("MGH17", "y ~ b1 + b2*exp(-x*b4) + b3*exp(-x*b5)", &["x"]),
    ("Lanczos1", "y ~ b1*exp(-b2*x) + b3*exp(-b4*x) + b5*exp(-b6*x)", &["x"]),
    ("Lanczos2", "y ~ b1*exp(-b2*x) + b3*exp(-b4*x) + b5*exp(-b6*x)", &["x"]),
    ("Gauss3", "y ~ b1*exp(-b2*x) + b3*exp(-(x-b4)^2/b5^2) + b6*exp(-(x-b7)^2/b8^2)", &["x"]),
    ("Misra1c", "y ~ b1*(1-(1+2*b2*x)^(-.5))", &["x"]),
    ("Misra1d", "y ~ b1*b2*x*((1+b2*x)^(-1))", &["x"]),
    ("Roszman1", "y ~ b1 - b2*x - atan(b3/(x-b4))/pi", &["x"]),
    ("ENSO", "y ~ b1 + b2*cos(2*pi*x/12) + b3*sin(2*pi*x/12) + b5*cos(2*pi*x/b4) + b6*sin(2*pi*x/b4) + b8*cos(2*pi*x/b7) + b9*sin(2*pi*x/b7)", &["x"]),
    ("MGH09", "y ~ b1*(x^2+x*b2) / (x^2+x*b3+b4)", &["x"]),
    ("Thurber", "y ~ (b1 + b2*x + b3*x^2 + b4*x^3)/(1 + b5*x + b6*x^2 + b7*x^3)", &["x"]),
    ("BoxBOD", "y ~ b1*(1-exp(-b2*x))", &["x"]),
    ("Rat42", "y ~ b1/(1+exp(b2-b3*x))", &["x"]),
    ("MGH10", "y ~ b1*exp(b2/(x+b3))", &["x"]),
    ("Eckerle4", "y ~ (b1/b2)*exp(-0.5*((x-b3)/b2)^2)", &["x"]),
    ("Rat43", "y ~ b1/((1+exp(b2-b3*x))^(1/b4))", &["x"]),
    ("Bennett5", "y ~ b1*(b2+x)^(-1/b3)", &["x"]),
];

/// The exchangeable terms of each NIST model, as blocks of parameter numbers (amplitude,
/// then its nonlinear parameters).
fn exchangeable_terms(name: &str) -> Vec<Vec<usize>> {
    match name {
        "Lanczos1" | "Lanczos2" | "Lanczos3" => vec![vec![1, 2], vec![3, 4], vec![5, 6]],
        "Gauss1" | "Gauss2" | "Gauss3" => vec![vec![3, 4, 5], vec![6, 7, 8]],
        "MGH17" => vec![vec![2, 4], vec![3, 5]],
        "ENSO" => vec![vec![4, 5, 6], vec![7, 8, 9]],
        _ => Vec::new(),
    }
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for i in 0..=p.len() {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}

struct Run {
    name: &'static str,
    start: usize,
    min_params: f64,
    min_se: f64,
    iterations: usize,
    polish_steps: usize,
    evaluations: usize,
    converged: bool,
    worst: usize,
    lre_rss: f64,
    termination: sepfit::Termination,
    seconds: f64,
    agreeing: Option<(usize, usize)>,
    found: String,
}

/// One run: from NIST start 1 or 2, or (`start = 0`) from no start at all; `search` asks for
/// the search even where starts are given.
fn run(name: &'static str, formula: &str, xcols: &[&str], start: usize, search: bool) -> Run {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/nist").join(format!("{name}.dat"));
    let text = std::fs::read_to_string(&path).unwrap();
    let prob = parse_nist(&text).unwrap();
    let mut names = vec!["y".to_string()];
    names.extend(xcols.iter().map(|s| s.to_string()));
    // prob.x holds rows; the formula wants columns.
    let mut cols = vec![prob.y.clone()];
    cols.extend((0..xcols.len()).map(|c| prob.x.iter().map(|r| r[c]).collect::<Vec<f64>>()));
    let data = Dataset::new(names, cols).unwrap();
    // Starting values by name, as `sepfit fit --start` gives them (linear ones are ignored).
    let s = if start == 1 { &prob.start1 } else { &prob.start2 };
    let m = ModelFormula::parse(formula, &["y", "x", "x1", "x2"]).unwrap();
    let starts: Vec<(String, f64)> = if start == 0 {
        Vec::new()
    } else {
        m.nonlinear_params().map(|p| (p.name.clone(), s[p.name[1..].parse::<usize>().unwrap() - 1])).collect()
    };
    let search = search.then(sepfit::search::SearchOptions::default);
    let t0 = std::time::Instant::now();
    let r = fit_formula(formula, &data, &NamedOptions { start: starts, search, ..Default::default() }).unwrap();
    let seconds = t0.elapsed().as_secs_f64();
    let f = &r.fit;
    let k = prob.certified.len();
    let (mut est, mut se) = (vec![f64::NAN; k], vec![f64::NAN; k]);
    for p in &r.params {
        let i = p.name[1..].parse::<usize>().unwrap() - 1;
        est[i] = p.value;
        se[i] = p.std_error;
    }
    let min = |v: Vec<f64>| v.into_iter().fold(f64::INFINITY, f64::min);
    // Without starts, exchangeable terms (the peaks of Gauss, the exponentials of Lanczos and
    // MGH17, the cycles of ENSO) carry no labels: NIST's labelling is one of the orders, so
    // the estimates are compared in the order of blocks that matches best.
    if start == 0 {
        let blocks = exchangeable_terms(name);
        let mut best: Option<(f64, Vec<f64>, Vec<f64>)> = None;
        for perm in permutations(blocks.len()) {
            let (mut e2, mut s2) = (est.clone(), se.clone());
            for (dst, &src) in perm.iter().enumerate() {
                for (&i, &j) in blocks[dst].iter().zip(&blocks[src]) {
                    e2[i - 1] = est[j - 1];
                    s2[i - 1] = se[j - 1];
                }
            }
            let worst = min(e2.iter().zip(&prob.certified).map(|(x, c)| lre(*x, *c)).collect());
            if best.as_ref().is_none_or(|b| worst > b.0) {
                best = Some((worst, e2, s2));
            }
        }
        if let Some((_, e2, s2)) = best {
            (est, se) = (e2, s2);
        }
    }
    let lres: Vec<f64> = est.iter().zip(&prob.certified).map(|(x, c)| lre(*x, *c)).collect();
    let worst = (0..k).fold(0, |w, i| if lres[i] < lres[w] { i } else { w }) + 1;
    Run {
        name,
        start,
        worst,
        lre_rss: lre(f.rss, prob.certified_rss),
        termination: f.termination,
        min_params: min(lres),
        min_se: min(se.iter().zip(&prob.certified_sd).map(|(x, c)| lre(*x, *c)).collect()),
        iterations: f.iterations,
        polish_steps: f.polish_steps,
        evaluations: f.residual_evaluations,
        converged: f.converged,
        seconds,
        agreeing: r.search.as_ref().map(|s| (s.agreeing, s.polished)),
        found: format!(
            "{}; search: {}",
            r.params.iter().map(|p| format!("{}={:.6e}", p.name, p.value)).collect::<Vec<_>>().join(" "),
            r.search.as_ref().map_or(String::new(), |s| s
                .ranges
                .iter()
                .zip(r.nonlinear_names())
                .map(|(g, n)| format!("{n} {} ({}) from {:.4e}", g.describe(), g.why, s.start[r.nonlinear_names().iter().position(|x| *x == n).unwrap()]))
                .collect::<Vec<_>>()
                .join("; "))
        ),
    }
}

#[test]
fn nist_strd_all_54_runs() {
    let mut runs = Vec::new();
    for (name, formula, xcols) in PROBLEMS {
        for start in [1, 2] {
            runs.push(run(name, formula, xcols, start, false));
        }
    }
    check(&runs);
}

/// All 27 problems with no starting values at all: the search finds the certified optimum.
#[test]
fn nist_strd_all_27_without_starts() {
    let runs: Vec<Run> = PROBLEMS.iter().map(|(name, formula, xcols)| run(name, formula, xcols, 0, false)).collect();
    check(&runs);
}

/// Both NIST starts with the search asked for (a multi-start around them): still 54 of 54.
#[test]
fn nist_strd_all_54_runs_with_search() {
    let mut runs = Vec::new();
    for (name, formula, xcols) in PROBLEMS {
        for start in [1, 2] {
            runs.push(run(name, formula, xcols, start, true));
        }
    }
    check(&runs);
}

fn check(runs: &[Run]) {
    println!(
        "{:<10} {:>5} {:>10} {:>6} {:>8} {:>8} {:>6} {:>7} {:>6} {:>9} {:>9} {:>7}  termination",
        "problem", "start", "LRE(est)", "worst", "LRE(se)", "LRE(rss)", "iters", "polish", "evals", "converged", "ms", "agree"
    );
    for r in runs {
        println!(
            "{:<10} {:>5} {:>10.2} {:>6} {:>8.2} {:>8.2} {:>6} {:>7} {:>6} {:>9} {:>9.2} {:>7}  {:?}",
            r.name,
            r.start,
            r.min_params,
            format!("b{}", r.worst),
            r.min_se,
            r.lre_rss,
            r.iterations,
            r.polish_steps,
            r.evaluations,
            r.converged,
            r.seconds * 1e3,
            r.agreeing.map(|(a, p)| format!("{a}/{p}")).unwrap_or_default(),
            r.termination
        );
    }
    let bad: Vec<String> = runs
        .iter()
        .filter(|r| {
            let se_need = if r.name == "Lanczos1" { 2.5 } else { 4.0 };
            r.min_params < 7.0 || r.min_se < se_need || !r.converged
        })
        .map(|r| {
            format!("{}/{}: LRE est {:.2}, se {:.2}, {:?}; {}", r.name, r.start, r.min_params, r.min_se, r.termination, r.found)
        })
        .collect();
    let good = runs.len() - bad.len();
    println!("{good} of {} runs meet the thresholds", runs.len());
    assert!(bad.is_empty(), "runs below threshold:\n{}", bad.join("\n"));
}
