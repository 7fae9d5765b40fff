//! Many curves, one model: sepfit's batch and global fitting vs the `varpro` crate (0.14).
//!
//! 1. **Batch** (group `flim_batch`): FLIM-like decays
//!    `y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + bg` on 256 points (t_i = 0.05 i), true
//!    tau1 ~ U(0.3, 0.8), tau2 ~ U(2, 4), a1 ~ U(200, 800), a2 ~ U(100, 400), bg ~ U(2, 10),
//!    Poisson-like noise (Gaussian with sd = sqrt(mean)), started from tau1 = 0.5, tau2 = 3;
//!    2,000 curves. sepfit: `BatchFitter::fit_curve` one after another on one thread with a
//!    reused worker, and `BatchFitter::fit_all` inside a 1-thread and a 2-thread rayon pool,
//!    at `sepfit batch`'s default tolerance (`DEFAULT_BATCH_TOL` = 1e-12) and at full
//!    precision (`sepfit fit`'s defaults: 1e-15 and Gauss–Newton polishing).
//!    varpro: its single-right-hand-side fit of each curve one after another on one thread
//!    (hand-written basis functions, model + problem built per curve, `LevMarSolver::default()`,
//!    exactly as in `benches/vs_varpro.rs`).
//! 2. **Global** (group `global_1000x1024`): 1,000 curves x 1,024 points sharing tau1 = 0.5 and
//!    tau2 = 3 (t = linspace(0, 10, 1024)), per-curve a1, a2 ~ U(0.5, 2), c ~ U(0, 0.2),
//!    Gaussian noise sd 0.01, started from tau1 = 1, tau2 = 5. sepfit: `batch::fit_global`;
//!    varpro: `SeparableProblemBuilder::mrhs(..).observations(DMatrix with one column per
//!    curve)` solved by `LevMarSolver::default()` (SVD linear solver, no LAPACK). The
//!    observation matrix is built inside varpro's timed region, as `fit_global` copies the
//!    responses inside its own.
//!
//! Tolerances: varpro 0.14 uses the `levenberg-marquardt` 0.15 defaults, ftol = xtol = gtol =
//! 30 eps ≈ 6.7e-15 (not MINPACK's 1.5e-8), so nothing is tightened; sepfit uses its own
//! defaults (1e-15).
//!
//! All data are generated here (xorshift64 + Box–Muller, fixed seeds). Before timing, the
//! answers are compared: per curve of the batch, tau1/tau2 of sepfit vs varpro (max relative
//! difference, count over 1e-6; at least 95% must agree to 1e-6), and for the global fit the
//! shared taus (must agree to 1e-8 relative) and the RSS. After criterion's output (which, to
//! keep the run short, times the batch on the first 200 curves), the summary lines give
//! medians of interleaved repetitions on all curves in the same run, fits/s and ratios.
//!
//! Run: `cargo bench -p sepfit --bench batch_vs_varpro`.
//!
//! Profiling aid (no criterion run): `BATCH_VS_VARPRO_PROFILE=<what>[:<count>]` with `what` one
//! of `sepfit-batch`, `varpro-batch` (count = passes over the 2,000 curves, default 1),
//! `sepfit-global`, `varpro-global` (count = global fits, default 3), for `perf record`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use nalgebra::{DMatrix, DVector};
use sepfit::FormulaModel;
use sepfit::batch::{BatchFitter, CurveResult, DEFAULT_BATCH_TOL};
use sepfit::{GlobalFit, fit_global};
use sepfit::named::NamedOptions;
use varpro::model::SeparableModel as VpModel;
use varpro::prelude::*;
use varpro::problem::{MultiRhs, SeparableProblemBuilder, SingleRhs};
use varpro::solvers::levmar::LevMarSolver;

const BATCH_FORMULA: &str = "y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + bg";
const BATCH_N: usize = 256;
const BATCH_CURVES: usize = 2000;
const BATCH_START: (f64, f64) = (0.5, 3.0);
/// Curves per criterion iteration for the batch group (the summary uses all of them).
const CRITERION_BATCH: usize = 200;

const GLOBAL_FORMULA: &str = "y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + c";
const GLOBAL_N: usize = 1024;
const GLOBAL_CURVES: usize = 1000;
const GLOBAL_START: (f64, f64) = (1.0, 5.0);

/// Deterministic xorshift64 generator with Box–Muller normals (as in vs_varpro.rs).
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// Uniform in (0, 1].
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) * (1.0 / (1u64 << 53) as f64)
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
    /// One standard normal (Box–Muller, the second of the pair discarded for simplicity).
    fn normal(&mut self) -> f64 {
        let r = (-2.0 * self.uniform().ln()).sqrt();
        let th = 2.0 * std::f64::consts::PI * self.uniform();
        r * th.cos()
    }
}

/// A set of curves sharing one time axis: `ys[c]` is curve c's response.
struct Curves {
    t: Vec<f64>,
    ys: Vec<Vec<f64>>,
}

impl Curves {
    /// `curves[c] = vec![t, y_c]` as `BatchFitter::fit_all` / `fit_global` take them.
    fn columns(&self) -> Vec<Vec<Vec<f64>>> {
        self.ys.iter().map(|y| vec![self.t.clone(), y.clone()]).collect()
    }
}

/// FLIM-like decays with Poisson-like (Gaussian, sd = sqrt(mean)) noise.
fn generate_flim() -> Curves {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let t: Vec<f64> = (0..BATCH_N).map(|i| 0.05 * i as f64).collect();
    let ys = (0..BATCH_CURVES)
        .map(|_| {
            let tau1 = rng.range(0.3, 0.8);
            let tau2 = rng.range(2.0, 4.0);
            let a1 = rng.range(200.0, 800.0);
            let a2 = rng.range(100.0, 400.0);
            let bg = rng.range(2.0, 10.0);
            t.iter()
                .map(|&t| {
                    let mean = a1 * (-t / tau1).exp() + a2 * (-t / tau2).exp() + bg;
                    mean + mean.sqrt() * rng.normal()
                })
                .collect()
        })
        .collect();
    Curves { t, ys }
}

/// Curves sharing tau1 = 0.5, tau2 = 3 on t = linspace(0, 10, 1024).
fn generate_global() -> Curves {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let t: Vec<f64> = (0..GLOBAL_N).map(|i| 10.0 * i as f64 / (GLOBAL_N - 1) as f64).collect();
    let ys = (0..GLOBAL_CURVES)
        .map(|_| {
            let a1 = rng.range(0.5, 2.0);
            let a2 = rng.range(0.5, 2.0);
            let c = rng.range(0.0, 0.2);
            t.iter().map(|&t| a1 * (-t / 0.5).exp() + a2 * (-t / 3.0).exp() + c + 0.01 * rng.normal()).collect()
        })
        .collect();
    Curves { t, ys }
}

fn names() -> Vec<String> {
    vec!["t".into(), "y".into()]
}

fn sepfit_opts((tau1, tau2): (f64, f64)) -> NamedOptions {
    NamedOptions { start: vec![("tau1".into(), tau1), ("tau2".into(), tau2)], ..Default::default() }
}

// ---------------------------------------------------------------- sepfit side

/// The batch fitter with `sepfit batch`'s default tolerance ([`DEFAULT_BATCH_TOL`]), or with
/// `sepfit fit`'s full-precision defaults (1e-15 and Gauss–Newton polishing) when `full`.
fn batch_fitter(full: bool) -> BatchFitter {
    let mut f = BatchFitter::new(BATCH_FORMULA, &names(), &sepfit_opts(BATCH_START)).expect("batch fitter builds");
    if !full {
        f.set_tolerance(DEFAULT_BATCH_TOL);
    }
    f
}

/// One thread, one reused worker, curves one after another.
fn sepfit_sequential(f: &BatchFitter, data: &Curves, count: usize) -> Vec<CurveResult> {
    let mut w = sepfit::batch::BatchWorker::default();
    data.ys[..count].iter().map(|y| f.fit_curve(&mut w, &[&data.t, y])).collect()
}

fn sepfit_global(curves: &[Vec<Vec<f64>>]) -> GlobalFit {
    fit_global(GLOBAL_FORMULA, &names(), &sepfit_opts(GLOBAL_START), curves).expect("sepfit global fit runs")
}

/// (tau1, tau2) positions in a `CurveResult::values` / `GlobalFit::nonlinear`.
fn tau_index(names: &[String]) -> (usize, usize) {
    let pos = |n: &str| names.iter().position(|x| x == n).unwrap();
    (pos("tau1"), pos("tau2"))
}

// ---------------------------------------------------------------- varpro side

fn exp_decay(t: &DVector<f64>, tau: f64) -> DVector<f64> {
    t.map(|t| (-t / tau).exp())
}

fn exp_decay_dtau(t: &DVector<f64>, tau: f64) -> DVector<f64> {
    t.map(|t| (-t / tau).exp() * t / (tau * tau))
}

/// The hand-written double exponential + constant, as in vs_varpro.rs.
fn varpro_model(t: &[f64], (tau1, tau2): (f64, f64)) -> VpModel<f64> {
    SeparableModelBuilder::<f64>::new(&["tau1", "tau2"])
        .function(&["tau1"], exp_decay)
        .partial_deriv("tau1", exp_decay_dtau)
        .function(&["tau2"], exp_decay)
        .partial_deriv("tau2", exp_decay_dtau)
        .invariant_function(|v: &DVector<f64>| DVector::from_element(v.len(), 1.0))
        .independent_variable(DVector::from_column_slice(t))
        .initial_parameters(vec![tau1, tau2])
        .build()
        .expect("varpro model builds")
}

type VpSingle = varpro::fit::FitResult<VpModel<f64>, SingleRhs>;
type VpMulti = varpro::fit::FitResult<VpModel<f64>, MultiRhs>;

/// One curve, as a varpro user writes it (Err = varpro reported no success).
// The varpro crate's own convention (`Result<Fit, Fit>`), kept as it returns it.
#[allow(clippy::result_large_err)]
fn varpro_single(t: &[f64], y: &[f64]) -> Result<VpSingle, VpSingle> {
    let problem = SeparableProblemBuilder::new(varpro_model(t, BATCH_START))
        .observations(DVector::from_column_slice(y))
        .build()
        .expect("varpro problem builds");
    LevMarSolver::default().solve(problem)
}

fn varpro_sequential(data: &Curves, count: usize) -> Vec<Result<VpSingle, VpSingle>> {
    #[allow(clippy::result_large_err)]
    let fits = data.ys[..count].iter().map(|y| varpro_single(&data.t, y)).collect();
    fits
}

/// Global fit with multiple right-hand sides: one column per curve.
fn varpro_global(data: &Curves) -> VpMulti {
    let n = data.t.len();
    let y = DMatrix::from_fn(n, data.ys.len(), |i, c| data.ys[c][i]);
    let problem = SeparableProblemBuilder::mrhs(varpro_model(&data.t, GLOBAL_START))
        .observations(y)
        .build()
        .expect("varpro mrhs problem builds");
    match LevMarSolver::default().solve(problem) {
        Ok(r) => r,
        Err(r) => panic!("varpro global fit failed: {:?}", r.minimization_report.termination),
    }
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs())
}

// ---------------------------------------------------------------- checks

fn check_batch(f: &BatchFitter, data: &Curves, label: &str) {
    println!("flim batch, sepfit {label}:");
    let (i1, i2) = tau_index(f.param_names());
    let sf = sepfit_sequential(f, data, BATCH_CURVES);
    let vf = varpro_sequential(data, BATCH_CURVES);
    // fit_all must give the same as the sequential loop.
    let curves = data.columns();
    for k in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(k).build().unwrap();
        let par = pool.install(|| f.fit_all(&curves));
        let same = par.iter().zip(&sf).filter(|(a, b)| a.values == b.values).count();
        println!("flim batch: fit_all in a {k}-thread pool gives bit-identical values to the sequential loop for {same}/{BATCH_CURVES} curves");
    }
    let (mut max_rel, mut max_at, mut over, mut s_fail, mut v_fail) = (0.0f64, 0, 0, 0, 0);
    let mut worse = [0usize; 2]; // RSS worse by > 1e-9 relative: [sepfit, varpro]
    let (mut s_iter, mut v_eval) = (0usize, 0usize);
    for (c, (s, v)) in sf.iter().zip(&vf).enumerate() {
        let s_ok = s.error.is_none() && s.converged;
        let v = match v {
            Ok(v) => v,
            Err(_) => {
                v_fail += 1;
                if !s_ok {
                    s_fail += 1;
                }
                over += 1;
                continue;
            }
        };
        if !s_ok {
            s_fail += 1;
            over += 1;
            continue;
        }
        s_iter += s.iterations;
        v_eval += v.minimization_report.number_of_evaluations;
        let vb = v.nonlinear_parameters();
        let d = rel(s.values[i1], vb[0]).max(rel(s.values[i2], vb[1]));
        if d > max_rel {
            (max_rel, max_at) = (d, c);
        }
        if d > 1e-6 {
            over += 1;
            let y = &data.ys[c];
            let v_rss: f64 = v.best_fit().unwrap().iter().zip(y).map(|(f, y)| (y - f) * (y - f)).sum();
            if s.rss > v_rss * (1.0 + 1e-9) {
                worse[0] += 1;
            } else if v_rss > s.rss * (1.0 + 1e-9) {
                worse[1] += 1;
            }
            if over <= 5 {
                println!(
                    "  curve {c}: sepfit tau = ({:.9}, {:.9}) RSS {:.9e} [{}] vs varpro ({:.9}, {:.9}) RSS {v_rss:.9e} [{:?}]",
                    s.values[i1], s.values[i2], s.rss, s.status(), vb[0], vb[1], v.minimization_report.termination
                );
            }
        }
    }
    let ok = BATCH_CURVES - over;
    println!(
        "flim batch agreement ({BATCH_CURVES} curves): max relative tau difference {max_rel:.2e} (curve {max_at}); {over} curves differ by > 1e-6 or failed ({} with the lower RSS on sepfit's side, {} on varpro's; sepfit not converged/error: {s_fail}, varpro unsuccessful: {v_fail}); {ok} agree ({:.1}%)",
        worse[1],
        worse[0],
        100.0 * ok as f64 / BATCH_CURVES as f64
    );
    println!(
        "flim batch: mean sepfit LM iterations {:.1}, mean varpro residual evaluations {:.1}",
        s_iter as f64 / ok.max(1) as f64,
        v_eval as f64 / ok.max(1) as f64
    );
    assert!(ok * 100 >= 95 * BATCH_CURVES, "only {ok}/{BATCH_CURVES} curves agree between sepfit and varpro");
    // Work per sepfit fit (what fit_curve runs: sepfit::fit with the resolved options).
    let (mut nfev, mut njev, mut polish) = (0usize, 0usize, 0usize);
    let mut model = FormulaModel::new(f.resolved().formula.clone(), &[&data.t, &data.ys[0]]).unwrap();
    for y in &data.ys {
        model.set_data(&[&data.t, y]).unwrap();
        let r = sepfit::fit(&mut model, y, &f.resolved().options).unwrap();
        (nfev, njev, polish) = (nfev + r.residual_evaluations, njev + r.jacobian_evaluations, polish + r.polish_steps);
    }
    let per = |v: usize| v as f64 / BATCH_CURVES as f64;
    println!(
        "flim batch: per sepfit fit, mean residual evaluations {:.1}, Jacobian evaluations {:.1}, polish steps {:.2}",
        per(nfev),
        per(njev),
        per(polish)
    );
}

fn check_global(data: &Curves, curves: &[Vec<Vec<f64>>]) {
    let sf = sepfit_global(curves);
    let (i1, i2) = tau_index(&sf.nonlinear_names);
    let (s1, s2) = (sf.nonlinear[i1], sf.nonlinear[i2]);
    let vf = varpro_global(data);
    let vb = vf.nonlinear_parameters();
    let (v1, v2) = (vb[0], vb[1]);
    let best = vf.best_fit().expect("varpro best fit");
    let v_rss: f64 = (0..GLOBAL_CURVES)
        .map(|c| data.ys[c].iter().zip(best.column(c).iter()).map(|(y, f)| (y - f) * (y - f)).sum::<f64>())
        .sum();
    let coef = vf.linear_coefficients().expect("varpro coefficients");
    // varpro's linear order: tau1 function, tau2 function, constant; sepfit's: its linear names.
    let lin_idx: Vec<usize> =
        ["a1", "a2", "c"].iter().map(|n| sf.linear_names.iter().position(|x| x == n).unwrap()).collect();
    let max_lin = (0..GLOBAL_CURVES)
        .flat_map(|c| (0..3).map(move |j| (c, j)))
        .map(|(c, j)| (sf.linear[c][lin_idx[j]] - coef[(j, c)]).abs())
        .fold(0.0, f64::max);
    println!(
        "global {GLOBAL_CURVES}x{GLOBAL_N}: sepfit tau1 = {s1:.12}, tau2 = {s2:.12}, RSS = {:.12e}, iterations = {}, termination = {:?}",
        sf.rss, sf.iterations, sf.termination
    );
    println!(
        "global {GLOBAL_CURVES}x{GLOBAL_N}: varpro tau1 = {v1:.12}, tau2 = {v2:.12}, RSS = {v_rss:.12e}, residual evaluations = {}, termination = {:?}",
        vf.minimization_report.number_of_evaluations, vf.minimization_report.termination
    );
    println!(
        "global agreement: |d tau1|/tau1 = {:.1e}, |d tau2|/tau2 = {:.1e}, |d RSS|/RSS = {:.1e}, max |d linear coefficient| = {max_lin:.1e}",
        rel(s1, v1),
        rel(s2, v2),
        rel(sf.rss, v_rss)
    );
    assert!(
        rel(s1, v1) < 1e-8 && rel(s2, v2) < 1e-8,
        "global optima differ: sepfit ({s1}, {s2}) vs varpro ({v1}, {v2})"
    );
}

// ---------------------------------------------------------------- criterion

fn benches(c: &mut Criterion, f: &BatchFitter, f_full: &BatchFitter, flim: &Curves, glob: &Curves, glob_cols: &[Vec<Vec<f64>>]) {
    let pool1 = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let pool2 = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let sub = &flim.columns()[..CRITERION_BATCH];
    let mut g = c.benchmark_group("flim_batch");
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g.bench_function(format!("sepfit fit_curve x{CRITERION_BATCH} (1 thread)"), |b| {
        b.iter(|| sepfit_sequential(f, black_box(flim), CRITERION_BATCH))
    });
    g.bench_function(format!("sepfit fit_curve full precision x{CRITERION_BATCH} (1 thread)"), |b| {
        b.iter(|| sepfit_sequential(f_full, black_box(flim), CRITERION_BATCH))
    });
    g.bench_function(format!("sepfit fit_all x{CRITERION_BATCH} (1-thread pool)"), |b| {
        b.iter(|| pool1.install(|| f.fit_all(black_box(sub))))
    });
    g.bench_function(format!("sepfit fit_all x{CRITERION_BATCH} (2-thread pool)"), |b| {
        b.iter(|| pool2.install(|| f.fit_all(black_box(sub))))
    });
    g.bench_function(format!("varpro sequential x{CRITERION_BATCH} (1 thread)"), |b| {
        b.iter(|| varpro_sequential(black_box(flim), CRITERION_BATCH))
    });
    g.finish();
    let mut g = c.benchmark_group(format!("global_{GLOBAL_CURVES}x{GLOBAL_N}"));
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g.bench_function("sepfit fit_global", |b| b.iter(|| sepfit_global(black_box(glob_cols))));
    g.bench_function("varpro mrhs", |b| b.iter(|| varpro_global(black_box(glob))));
    g.finish();
}

// ---------------------------------------------------------------- summary

fn median(v: &mut [Duration]) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64()
}

fn time<T>(f: impl FnOnce() -> T) -> Duration {
    let s = Instant::now();
    black_box(f());
    s.elapsed()
}

/// Interleaved repetitions on all curves; medians, fits/s and ratios.
fn summary(f: &BatchFitter, f_full: &BatchFitter, flim: &Curves, glob: &Curves, glob_cols: &[Vec<Vec<f64>>]) {
    const BATCH_REPS: usize = 5;
    const GLOBAL_REPS: usize = 5;
    let pool1 = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let pool2 = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let cols = flim.columns();
    let (mut vp, mut seq, mut p1, mut p2) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut fseq, mut fp2) = (Vec::new(), Vec::new());
    for _ in 0..BATCH_REPS {
        vp.push(time(|| varpro_sequential(black_box(flim), BATCH_CURVES)));
        seq.push(time(|| sepfit_sequential(f, black_box(flim), BATCH_CURVES)));
        p1.push(time(|| pool1.install(|| f.fit_all(black_box(&cols)))));
        p2.push(time(|| pool2.install(|| f.fit_all(black_box(&cols)))));
        fseq.push(time(|| sepfit_sequential(f_full, black_box(flim), BATCH_CURVES)));
        fp2.push(time(|| pool2.install(|| f_full.fit_all(black_box(&cols)))));
    }
    let (vp, seq, p1, p2) = (median(&mut vp), median(&mut seq), median(&mut p1), median(&mut p2));
    let (fseq, fp2) = (median(&mut fseq), median(&mut fp2));
    let fps = |s: f64| BATCH_CURVES as f64 / s;
    println!(
        "flim batch ({BATCH_CURVES} curves x {BATCH_N} points; medians of {BATCH_REPS} interleaved repetitions): varpro 1 thread {:.0} fits/s",
        fps(vp)
    );
    println!(
        "  sepfit at the batch default tol {DEFAULT_BATCH_TOL:e}: fit_curve 1 thread {:.0} fits/s ({:.1}x varpro); fit_all 1-thread pool {:.0} fits/s ({:.1}x); fit_all 2-thread pool {:.0} fits/s ({:.1}x varpro; 2-thread scaling {:.2}x)",
        fps(seq),
        vp / seq,
        fps(p1),
        vp / p1,
        fps(p2),
        vp / p2,
        p1 / p2
    );
    println!(
        "  sepfit at full precision (tol 1e-15 + polishing): fit_curve 1 thread {:.0} fits/s ({:.1}x varpro); fit_all 2-thread pool {:.0} fits/s ({:.1}x varpro)",
        fps(fseq),
        vp / fseq,
        fps(fp2),
        vp / fp2
    );
    let (mut sg, mut vg) = (Vec::new(), Vec::new());
    for _ in 0..GLOBAL_REPS {
        vg.push(time(|| varpro_global(black_box(glob))));
        sg.push(time(|| sepfit_global(black_box(glob_cols))));
    }
    let (sg, vg) = (median(&mut sg), median(&mut vg));
    println!(
        "global {GLOBAL_CURVES}x{GLOBAL_N} (medians of {GLOBAL_REPS} interleaved repetitions): varpro mrhs {:.1} ms, sepfit fit_global {:.1} ms, ratio varpro/sepfit {:.1}x",
        vg * 1e3,
        sg * 1e3,
        vg / sg
    );
}

/// `BATCH_VS_VARPRO_PROFILE=<what>[:<count>]`: run one kind only, for `perf record`.
fn profile_loop(spec: &str, f: &BatchFitter, flim: &Curves, glob: &Curves, glob_cols: &[Vec<Vec<f64>>]) {
    let (what, count) = match spec.split_once(':') {
        Some((w, c)) => (w, Some(c.parse::<usize>().expect("count"))),
        None => (spec, None),
    };
    let s = Instant::now();
    let count = match what {
        "sepfit-batch" | "varpro-batch" => {
            let count = count.unwrap_or(1);
            for _ in 0..count {
                if what == "sepfit-batch" {
                    black_box(sepfit_sequential(f, flim, BATCH_CURVES));
                } else {
                    black_box(varpro_sequential(flim, BATCH_CURVES));
                }
            }
            count * BATCH_CURVES
        }
        "sepfit-global" | "varpro-global" => {
            let count = count.unwrap_or(3);
            for _ in 0..count {
                if what == "sepfit-global" {
                    black_box(sepfit_global(glob_cols));
                } else {
                    black_box(varpro_global(glob));
                }
            }
            count
        }
        other => panic!("unknown BATCH_VS_VARPRO_PROFILE kind {other}"),
    };
    println!("{what}: {count} fits, {:.4} ms per fit", s.elapsed().as_secs_f64() * 1e3 / count as f64);
}

fn main() {
    let flim = generate_flim();
    let glob = generate_global();
    let glob_cols = glob.columns();
    let f = batch_fitter(false);
    let f_full = batch_fitter(true);
    if let Ok(spec) = std::env::var("BATCH_VS_VARPRO_PROFILE") {
        profile_loop(&spec, &f, &flim, &glob, &glob_cols);
        return;
    }
    check_batch(&f, &flim, &format!("batch default tol {DEFAULT_BATCH_TOL:e}"));
    check_batch(&f_full, &flim, "full precision");
    check_global(&glob, &glob_cols);
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c, &f, &f_full, &flim, &glob, &glob_cols);
    c.final_summary();
    summary(&f, &f_full, &flim, &glob, &glob_cols);
}
