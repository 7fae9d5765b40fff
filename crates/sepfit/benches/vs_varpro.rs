//! sepfit vs the `varpro` crate on the same separable fit.
//!
//! Problem: `y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + c` on 1024 points,
//! t_i = 10*i/1023, y = 2 exp(-t/0.5) + 1 exp(-t/3) + 0.1 + N(0, 0.01²) noise,
//! started from tau1 = 1, tau2 = 5.
//!
//! The data are generated **in this file** (xorshift64 + Box–Muller with a fixed seed),
//! so the benchmark is self-contained and reproducible; it does not read
//! `data/problems/double_exp_1024.csv` (if that file exists, only a note on how far it
//! is from the generated data is printed).
//!
//! Benchmarks (criterion group `double_exp_1024`):
//! - `sepfit fit (model prebuilt)`: `sepfit::fit` on an already built `FormulaModel`;
//! - `sepfit parse+compile+fit`: formula string and data slices to a fit (parse, symbolic
//!   derivatives, compile, fit);
//! - `varpro build+solve`: what a `varpro` user writes — `SeparableModelBuilder` with
//!   hand-written basis functions `exp(-t/tau)`, their derivatives `t/tau² exp(-t/tau)` and
//!   the constant 1, `SeparableProblemBuilder`, `LevMarSolver::default().solve` (its default
//!   SVD linear solver, no LAPACK), data copied into nalgebra vectors each time.
//!
//! Before timing, both must reach the same optimum (tau1, tau2 to 1e-6 relative); RSS and
//! iteration/evaluation counts of both are printed. After criterion's output, one line
//! gives medians from interleaved repetitions in the same run and the ratio varpro/sepfit.
//!
//! Run: `cargo bench -p sepfit --bench vs_varpro`.
//!
//! Profiling aids (no criterion run):
//! - `VS_VARPRO_PROFILE=sepfit|sepfit-full|varpro[:COUNT]` only runs COUNT (default 2000)
//!   fits of one kind, for `perf record` / `valgrind --tool=callgrind`;
//! - `VS_VARPRO_PROFILE=phases` prints sepfit's time per phase (parse, compile, LM,
//!   one model evaluation, one projection, one Jacobian, ...);
//! - `VS_VARPRO_FTZ=1` (with either) sets FTZ|DAZ first, to see what subnormal
//!   arithmetic costs.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::Criterion;
use nalgebra::DVector;
use sepfit::{
    FitOptions, FormulaModel, JacobianKind, LmOptions, ModelError, ModelEval, SeparableModel, VarProProblem, fit,
};
use sepfit_expr::ModelFormula;
use varpro::basis_function::BasisFunction;
use varpro::model::SeparableModel as VpModel;
use varpro::prelude::*;
use varpro::problem::{SeparableProblemBuilder, SingleRhs};
use varpro::solvers::levmar::LevMarSolver;

const N: usize = 1024;
const FORMULA: &str = "y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + c";
const START_TAU1: f64 = 1.0;
const START_TAU2: f64 = 5.0;

/// Deterministic xorshift64 generator with Box–Muller normals.
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
    /// Standard normal pair (Box–Muller).
    fn normal_pair(&mut self) -> (f64, f64) {
        let r = (-2.0 * self.uniform().ln()).sqrt();
        let th = 2.0 * std::f64::consts::PI * self.uniform();
        (r * th.cos(), r * th.sin())
    }
}

/// t = linspace(0, 10, 1024), y = 2 e^{-t/0.5} + e^{-t/3} + 0.1 + 0.01·N(0,1).
fn generate() -> (Vec<f64>, Vec<f64>) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut noise = Vec::with_capacity(N);
    while noise.len() < N {
        let (a, b) = rng.normal_pair();
        noise.push(a);
        noise.push(b);
    }
    let t: Vec<f64> = (0..N).map(|i| 10.0 * i as f64 / (N - 1) as f64).collect();
    let y = t.iter().zip(&noise).map(|(&t, &e)| 2.0 * (-t / 0.5).exp() + (-t / 3.0).exp() + 0.1 + 0.01 * e).collect();
    (t, y)
}

/// If the colleague's CSV exists, say how it compares (informational only).
fn note_csv(t: &[f64], y: &[f64]) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/problems/double_exp_1024.csv");
    let Ok(text) = std::fs::read_to_string(path) else { return };
    let rows: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.split(',');
            Some((it.next()?.trim().parse().ok()?, it.next()?.trim().parse().ok()?))
        })
        .collect();
    if rows.len() != t.len() {
        println!(
            "note: data/problems/double_exp_1024.csv has {} rows; the bench uses its own {N} generated rows",
            rows.len()
        );
        return;
    }
    let dt = rows.iter().zip(t).map(|(r, t)| (r.0 - t).abs()).fold(0.0, f64::max);
    let dy = rows.iter().zip(y).map(|(r, y)| (r.1 - y).abs()).fold(0.0, f64::max);
    println!(
        "note: data/problems/double_exp_1024.csv vs generated data: max |dt| = {dt:.3e}, max |dy| = {dy:.3e} (bench uses the generated data)"
    );
}

// ---------------------------------------------------------------- sepfit side

/// Starting values in the formula's nonlinear-parameter order.
fn sepfit_start(m: &ModelFormula) -> Vec<f64> {
    m.nonlinear_params()
        .map(|p| match p.name.as_str() {
            "tau1" => START_TAU1,
            "tau2" => START_TAU2,
            other => panic!("unexpected nonlinear parameter {other}"),
        })
        .collect()
}

/// Everything from the formula string and data slices.
fn sepfit_full(t: &[f64], y: &[f64]) -> sepfit::Fit {
    let m = ModelFormula::parse(FORMULA, &["t", "y"]).expect("formula parses");
    let opts = FitOptions::with_start(&sepfit_start(&m));
    let mut model = FormulaModel::new(m, &[t, y]).expect("model builds");
    fit(&mut model, y, &opts).expect("sepfit fit runs")
}

/// (tau1, tau2) of a sepfit fit, by name.
fn sepfit_taus(m: &ModelFormula, f: &sepfit::Fit) -> (f64, f64) {
    let names: Vec<&str> = m.nonlinear_params().map(|p| p.name.as_str()).collect();
    let get = |n: &str| f.nonlinear[names.iter().position(|&x| x == n).unwrap()];
    (get("tau1"), get("tau2"))
}

// ---------------------------------------------------------------- varpro side

fn exp_decay(t: &DVector<f64>, tau: f64) -> DVector<f64> {
    t.map(|t| (-t / tau).exp())
}

fn exp_decay_dtau(t: &DVector<f64>, tau: f64) -> DVector<f64> {
    t.map(|t| (-t / tau).exp() * t / (tau * tau))
}

type VpFit = varpro::fit::FitResult<VpModel<f64>, SingleRhs>;

/// A whole varpro fit as a user writes it: vectors, model, problem, solve.
fn varpro_fit_with<F, D>(t: &[f64], y: &[f64], f: F, d: D) -> VpFit
where
    F: BasisFunction<f64, f64> + Clone + 'static,
    D: BasisFunction<f64, f64> + Clone + 'static,
{
    let model = SeparableModelBuilder::<f64>::new(&["tau1", "tau2"])
        .function(&["tau1"], f.clone())
        .partial_deriv("tau1", d.clone())
        .function(&["tau2"], f)
        .partial_deriv("tau2", d)
        .invariant_function(|v: &DVector<f64>| DVector::from_element(v.len(), 1.0))
        .independent_variable(DVector::from_column_slice(t))
        .initial_parameters(vec![START_TAU1, START_TAU2])
        .build()
        .expect("varpro model builds");
    let problem = SeparableProblemBuilder::new(model)
        .observations(DVector::from_column_slice(y))
        .build()
        .expect("varpro problem builds");
    match LevMarSolver::default().solve(problem) {
        Ok(r) => r,
        Err(r) => panic!("varpro fit failed: {:?}", r.minimization_report.termination),
    }
}

fn varpro_fit(t: &[f64], y: &[f64]) -> VpFit {
    varpro_fit_with(t, y, exp_decay, exp_decay_dtau)
}

static VP_FUNC_CALLS: AtomicUsize = AtomicUsize::new(0);
static VP_DERIV_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Counts model evaluations of a sepfit model (for the check and the phase breakdown only).
struct Counting<M> {
    inner: M,
    evals: usize,
}

impl<M: SeparableModel> SeparableModel for Counting<M> {
    fn n_obs(&self) -> usize {
        self.inner.n_obs()
    }
    fn n_linear(&self) -> usize {
        self.inner.n_linear()
    }
    fn n_nonlinear(&self) -> usize {
        self.inner.n_nonlinear()
    }
    fn has_offset(&self) -> bool {
        self.inner.has_offset()
    }
    fn basis_derivative_pattern(&self) -> &[(usize, usize)] {
        self.inner.basis_derivative_pattern()
    }
    fn offset_derivative_pattern(&self) -> &[usize] {
        self.inner.offset_derivative_pattern()
    }
    fn eval(&mut self, b: &[f64], out: &mut ModelEval) -> Result<(), ModelError> {
        self.evals += 1;
        self.inner.eval(b, out)
    }
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs())
}

// ---------------------------------------------------------------- check, bench, summary

/// Both solvers must agree before anything is timed.
fn check(t: &[f64], y: &[f64]) {
    let m = ModelFormula::parse(FORMULA, &["t", "y"]).unwrap();
    let order: Vec<&str> = m.nonlinear_params().map(|p| p.name.as_str()).collect();
    let sf = sepfit_full(t, y);
    let model_evals = {
        let mut cm = Counting { inner: FormulaModel::new(m.clone(), &[t, y]).unwrap(), evals: 0 };
        let f2 = fit(&mut cm, y, &FitOptions::with_start(&sepfit_start(&m))).unwrap();
        assert_eq!(f2.nonlinear, sf.nonlinear);
        cm.evals
    };
    assert!(sf.converged, "sepfit did not converge: {:?}", sf.termination);
    let (s1, s2) = sepfit_taus(&m, &sf);

    // Counting wrappers (used for this check only, not in the timed fits).
    let vf = varpro_fit_with(
        t,
        y,
        |t: &DVector<f64>, tau: f64| {
            VP_FUNC_CALLS.fetch_add(1, Ordering::Relaxed);
            exp_decay(t, tau)
        },
        |t: &DVector<f64>, tau: f64| {
            VP_DERIV_CALLS.fetch_add(1, Ordering::Relaxed);
            exp_decay_dtau(t, tau)
        },
    );
    let vb = vf.nonlinear_parameters();
    let (v1, v2) = (vb[0], vb[1]);
    let vfit = vf.best_fit().expect("varpro best fit");
    let v_rss: f64 = y.iter().zip(vfit.iter()).map(|(y, f)| (y - f) * (y - f)).sum();
    let vc = vf.linear_coefficients().expect("varpro coefficients");
    let rep = &vf.minimization_report;

    println!("problem: {FORMULA}, n = {N}, start tau1 = {START_TAU1}, tau2 = {START_TAU2}");
    println!(
        "sepfit nonlinear parameter order: {order:?}; linear: {:?}",
        m.linear_params().map(|p| p.name.as_str()).collect::<Vec<_>>()
    );
    println!(
        "sepfit: tau1 = {s1:.12}, tau2 = {s2:.12}, linear = {:?}, RSS = {:.12e}, iterations = {}, residual evals = {}, jacobian evals = {}, model evals = {model_evals}, termination = {:?}",
        sf.linear, sf.rss, sf.iterations, sf.residual_evaluations, sf.jacobian_evaluations, sf.termination
    );
    println!(
        "varpro: tau1 = {v1:.12}, tau2 = {v2:.12}, linear = {:?}, RSS = {v_rss:.12e}, residual evals = {}, basis-function calls = {} (per fn), derivative calls = {} (per fn), termination = {:?}",
        vc.iter().collect::<Vec<_>>(),
        rep.number_of_evaluations,
        VP_FUNC_CALLS.load(Ordering::Relaxed) / 2,
        VP_DERIV_CALLS.load(Ordering::Relaxed) / 2,
        rep.termination
    );
    assert!(rel(s1, v1) < 1e-6 && rel(s2, v2) < 1e-6, "optima differ: sepfit ({s1}, {s2}) vs varpro ({v1}, {v2})");
    assert!(rel(sf.rss, v_rss) < 1e-9, "RSS differ: sepfit {} vs varpro {v_rss}", sf.rss);
    println!(
        "agreement: |d tau1|/tau1 = {:.1e}, |d tau2|/tau2 = {:.1e}, |d RSS|/RSS = {:.1e}",
        rel(s1, v1),
        rel(s2, v2),
        rel(sf.rss, v_rss)
    );
}

fn benches(c: &mut Criterion, t: &[f64], y: &[f64]) {
    let mut g = c.benchmark_group("double_exp_1024");
    let m = ModelFormula::parse(FORMULA, &["t", "y"]).unwrap();
    let opts = FitOptions::with_start(&sepfit_start(&m));
    let mut model = FormulaModel::new(m, &[t, y]).unwrap();
    g.bench_function("sepfit fit (model prebuilt)", |b| b.iter(|| fit(&mut model, black_box(y), &opts).unwrap()));
    g.bench_function("sepfit parse+compile+fit", |b| b.iter(|| sepfit_full(black_box(t), black_box(y))));
    g.bench_function("varpro build+solve", |b| b.iter(|| varpro_fit(black_box(t), black_box(y))));
    g.finish();
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Interleaved repetitions in this run; medians and ratios on one line.
fn summary(t: &[f64], y: &[f64]) {
    const REPS: usize = 51;
    let m = ModelFormula::parse(FORMULA, &["t", "y"]).unwrap();
    let opts = FitOptions::with_start(&sepfit_start(&m));
    let mut model = FormulaModel::new(m, &[t, y]).unwrap();
    // warm-up
    for _ in 0..5 {
        black_box(varpro_fit(t, y));
        black_box(fit(&mut model, y, &opts).unwrap());
        black_box(sepfit_full(t, y));
    }
    let (mut vp, mut pre, mut full) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..REPS {
        let s = Instant::now();
        black_box(varpro_fit(black_box(t), black_box(y)));
        vp.push(s.elapsed());
        let s = Instant::now();
        black_box(fit(&mut model, black_box(y), &opts).unwrap());
        pre.push(s.elapsed());
        let s = Instant::now();
        black_box(sepfit_full(black_box(t), black_box(y)));
        full.push(s.elapsed());
    }
    let (vp, pre, full) = (median(&mut vp), median(&mut pre), median(&mut full));
    println!(
        "varpro {:.3} ms, sepfit {:.3} ms, ratio {:.1}x (sepfit prebuilt model; parse+compile+fit {:.3} ms, ratio {:.1}x) [medians of {REPS} interleaved repetitions]",
        ms(vp),
        ms(pre),
        vp.as_secs_f64() / pre.as_secs_f64(),
        ms(full),
        vp.as_secs_f64() / full.as_secs_f64()
    );
}

/// `VS_VARPRO_PROFILE=<what>[:<count>]` runs only `count` (default 2000) fits of one kind
/// and exits (for `perf`/`callgrind`); `what` is `sepfit`, `sepfit-full` or `varpro`.
fn profile_loop(spec: &str, t: &[f64], y: &[f64]) {
    let (what, count) = match spec.split_once(':') {
        Some((w, c)) => (w, c.parse().expect("count")),
        None => (spec, 2000usize),
    };
    let m = ModelFormula::parse(FORMULA, &["t", "y"]).unwrap();
    let opts = FitOptions::with_start(&sepfit_start(&m));
    let mut model = FormulaModel::new(m, &[t, y]).unwrap();
    let s = Instant::now();
    for _ in 0..count {
        match what {
            "sepfit" => drop(black_box(fit(&mut model, black_box(y), &opts).unwrap())),
            "sepfit-full" => drop(black_box(sepfit_full(black_box(t), black_box(y)))),
            "varpro" => drop(black_box(varpro_fit(black_box(t), black_box(y)))),
            other => panic!("unknown VS_VARPRO_PROFILE kind {other}"),
        }
    }
    println!("{what}: {count} fits, {:.3} ms per fit", ms(s.elapsed()) / count as f64);
}

/// Best-of-`reps` time of `f` (robust against a loaded machine), averaged over `inner` calls.
fn best_of(reps: usize, inner: usize, mut f: impl FnMut()) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let s = Instant::now();
        for _ in 0..inner {
            f();
        }
        best = best.min(s.elapsed().as_secs_f64() / inner as f64);
    }
    best * 1e6
}

/// `VS_VARPRO_PROFILE=phases`: where a sepfit fit spends its time, phase by phase (µs).
fn phases(t: &[f64], y: &[f64]) {
    let (reps, inner) = (30, 20);
    let m = ModelFormula::parse(FORMULA, &["t", "y"]).unwrap();
    let start = sepfit_start(&m);
    let opts = FitOptions::with_start(&start);
    let t_parse =
        best_of(reps, inner, || drop(black_box(ModelFormula::parse(black_box(FORMULA), &["t", "y"]).unwrap())));
    let t_new = best_of(reps, inner, || drop(black_box(FormulaModel::new(m.clone(), &[t, y]).unwrap())));
    let t_clone = best_of(reps, inner, || drop(black_box(m.clone())));
    let mut model = FormulaModel::new(m.clone(), &[t, y]).unwrap();
    let f = fit(&mut model, y, &opts).unwrap();
    let b_opt = f.nonlinear.clone();
    let t_fit = best_of(reps, inner, || drop(black_box(fit(&mut model, y, &opts).unwrap())));
    let mut ev = ModelEval::new(&model);
    let t_eval = best_of(reps, inner * 10, || model.eval(black_box(&b_opt), &mut ev).unwrap());
    let t_finite = best_of(reps, inner * 10, || {
        black_box(ev.all_finite());
    });
    let mut cm = Counting { inner: FormulaModel::new(m.clone(), &[t, y]).unwrap(), evals: 0 };
    let lm_opts = LmOptions::default();
    let (t_lm, rep) = {
        let mut prob = VarProProblem::compact(&mut cm, y, None, JacobianKind::GolubPereyra).unwrap();
        let rep = sepfit::levenberg_marquardt(&mut prob, &start, &lm_opts).unwrap();
        let t =
            best_of(reps, inner, || drop(black_box(sepfit::levenberg_marquardt(&mut prob, &start, &lm_opts).unwrap())));
        (t, rep)
    };
    let evals_per_lm = {
        cm.evals = 0;
        let mut prob = VarProProblem::compact(&mut cm, y, None, JacobianKind::GolubPereyra).unwrap();
        sepfit::levenberg_marquardt(&mut prob, &start, &lm_opts).unwrap();
        cm.evals
    };
    let mut prob = VarProProblem::compact(&mut model, y, None, JacobianKind::GolubPereyra).unwrap();
    // Three points in turn (the problem keeps its last two projections, so fewer would be
    // answered from that cache).
    let points: Vec<Vec<f64>> =
        [0.0, 1e-6, 2e-6].iter().map(|d| b_opt.iter().map(|v| v * (1.0 + d)).collect()).collect();
    let mut turn = 0;
    let mut next_b = || {
        turn = (turn + 1) % points.len();
        points[turn].clone()
    };
    let t_project = best_of(reps, inner * 10, || {
        let b = next_b();
        prob.project(black_box(&b)).unwrap()
    });
    let mut jac = vec![0.0; N * b_opt.len()];
    // The Jacobian after a values-only projection: derivatives evaluated, derivative columns
    // factored, compact Jacobian assembled.
    let t_jac = best_of(reps, inner * 10, || {
        let b = next_b();
        prob.project(black_box(&b)).unwrap();
        prob.jacobian_at_last(black_box(&mut jac)).unwrap()
    }) - t_project;
    drop(prob);
    let t_vp_new = best_of(reps, inner, || {
        drop(black_box(VarProProblem::compact(&mut model, y, None, JacobianKind::GolubPereyra).unwrap()))
    });
    println!("sepfit phases (best of {reps}, µs):");
    println!("  ModelFormula::parse            {t_parse:9.2}");
    println!("  ModelFormula::clone            {t_clone:9.2}");
    println!("  FormulaModel::new (compile)    {t_new:9.2}");
    println!("  fit (prebuilt model)           {t_fit:9.2}");
    println!(
        "    levenberg_marquardt alone    {t_lm:9.2}  ({} iterations, {} residual evals, {} jacobian evals, {} model evals, {} rejected)",
        rep.iterations, rep.residual_evaluations, rep.jacobian_evaluations, evals_per_lm, rep.rejected_steps
    );
    println!("    fit - LM (setup, stats)      {:9.2}", t_fit - t_lm);
    println!("    VarProProblem::new           {t_vp_new:9.2}");
    println!("    model.eval (1 call)          {t_eval:9.2}");
    println!("      ModelEval::all_finite      {t_finite:9.2}");
    println!("    project (values+QR+residual) {t_project:9.2}");
    println!("    jacobian_at_last (after it)  {t_jac:9.2}  (derivatives, their QR columns, assembly)");
}

/// Diagnostic only (`VS_VARPRO_FTZ=1` with `VS_VARPRO_PROFILE`): flush subnormals to zero
/// (MXCSR FTZ|DAZ) to see how much time subnormal arithmetic costs.
#[allow(deprecated)]
fn set_ftz_daz() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: only changes the floating-point control register of this thread.
    unsafe {
        use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
        _mm_setcsr(_mm_getcsr() | 0x8040);
    }
}

fn main() {
    let (t, y) = generate();
    if let Ok(spec) = std::env::var("VS_VARPRO_PROFILE") {
        if std::env::var_os("VS_VARPRO_FTZ").is_some() {
            set_ftz_daz();
        }
        if spec == "phases" {
            phases(&t, &y);
        } else {
            profile_loop(&spec, &t, &y);
        }
        return;
    }
    note_csv(&t, &y);
    check(&t, &y);
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c, &t, &y);
    c.final_summary();
    summary(&t, &y);
}
