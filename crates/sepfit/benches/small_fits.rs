//! Small fits, one thread: sepfit's batch fitter against a hand-written minimal
//! Levenberg–Marquardt for the same model (the floor reference: no allocation, no dispatch,
//! the model and its Jacobian written out, normal equations and a Cholesky solve).
//!
//! Workloads (all data generated here: xorshift64 + Box–Muller, fixed seeds; Poisson-like
//! noise, Gaussian with sd = sqrt(mean)):
//!
//! * `gauss1d_32`: `y ~ a*exp(-(x - x0)^2/(2*s^2)) + b` on x = 0..31, true a ~ U(500, 1500),
//!   x0 ~ U(13.5, 17.5), s ~ U(2, 4), b ~ U(5, 20); start x0 = 15.5, s = 3.
//! * `gauss2d_5x5`: `y ~ a*exp(-((u - u0)^2 + (v - v0)^2)/(2*s^2)) + b` on the 5×5 grid
//!   u, v = 0..4 (Gpufit's benchmark shape), a ~ U(500, 1500), u0, v0 ~ U(1.6, 2.4),
//!   s ~ U(0.8, 1.2), b ~ U(5, 20); start u0 = v0 = 2, s = 1.
//! * `flim_256`: `y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + bg` on t = 0.05 i, i < 256, as in
//!   `batch_vs_varpro.rs`; start tau1 = 0.5, tau2 = 3.
//!
//! sepfit: `BatchFitter::fit_curve` with a reused worker (variable projection: only the
//! nonlinear parameters are iterated; standard errors of every parameter computed for every
//! fit), at `sepfit batch`'s default tolerance ([`DEFAULT_BATCH_TOL`]) and at 1e-4. The hand
//! LM fits all parameters jointly (as Gpufit does), starting the linear ones from the data
//! (`a = max − min`, `b = min`; for FLIM `a1 = a2 = (y₀ − min)/2`, `bg = min`), and stops when
//! the relative change of χ² is below its tolerance (Gpufit's criterion); it computes no
//! standard errors. Before timing, both answers are compared (the share of curves whose
//! nonlinear estimates agree to 1e-6 relative at the default tolerance).
//!
//! After criterion's output, a summary gives fits per second of each from interleaved
//! repetitions in the same run, and ratios.
//!
//! Run: `cargo bench -p sepfit --bench small_fits`. `SMALL_FITS_EXPORT=DIR` writes each
//! workload's data and starts as little-endian f64 files (`DIR/<workload>.{x,y,start}.f64`,
//! shapes in `DIR/<workload>.txt`) so that an outside peer can be measured on the same curves,
//! then exits. `SMALL_FITS_PROFILE=<workload>[:<tol>[:<passes>]]` fits one workload with sepfit only, for a
//! profiler (`valgrind --tool=callgrind`), and exits.

// The hand-written LM indexes small fixed-size matrices as the textbook writes them.
#![allow(clippy::needless_range_loop)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use sepfit::batch::{BatchFitter, BatchWorker, DEFAULT_BATCH_TOL};
use sepfit::named::NamedOptions;

/// Curves per workload.
const CURVES: usize = 4000;

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
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) * (1.0 / (1u64 << 53) as f64)
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
    fn normal(&mut self) -> f64 {
        let r = (-2.0 * self.uniform().ln()).sqrt();
        r * (2.0 * std::f64::consts::PI * self.uniform()).cos()
    }
}

/// A model written out by hand: value and gradient in all `P` parameters at point `i`.
trait HandModel<const P: usize> {
    fn eval(&self, theta: &[f64; P], i: usize, grad: &mut [f64; P]) -> f64;
}

struct Gauss1d<'a> {
    x: &'a [f64],
}

impl HandModel<4> for Gauss1d<'_> {
    /// θ = (a, x0, s, b).
    #[inline(always)]
    fn eval(&self, th: &[f64; 4], i: usize, g: &mut [f64; 4]) -> f64 {
        let d = self.x[i] - th[1];
        let is2 = 1.0 / (th[2] * th[2]);
        let e = (-0.5 * d * d * is2).exp();
        g[0] = e;
        g[1] = th[0] * e * d * is2;
        g[2] = th[0] * e * d * d * is2 / th[2];
        g[3] = 1.0;
        th[0] * e + th[3]
    }
}

struct Gauss2d<'a> {
    u: &'a [f64],
    v: &'a [f64],
}

impl HandModel<5> for Gauss2d<'_> {
    /// θ = (a, u0, v0, s, b).
    #[inline(always)]
    fn eval(&self, th: &[f64; 5], i: usize, g: &mut [f64; 5]) -> f64 {
        let (du, dv) = (self.u[i] - th[1], self.v[i] - th[2]);
        let is2 = 1.0 / (th[3] * th[3]);
        let r2 = du * du + dv * dv;
        let e = (-0.5 * r2 * is2).exp();
        let ae = th[0] * e;
        g[0] = e;
        g[1] = ae * du * is2;
        g[2] = ae * dv * is2;
        g[3] = ae * r2 * is2 / th[3];
        g[4] = 1.0;
        ae + th[4]
    }
}

struct Biexp<'a> {
    t: &'a [f64],
}

impl HandModel<5> for Biexp<'_> {
    /// θ = (a1, tau1, a2, tau2, bg).
    #[inline(always)]
    fn eval(&self, th: &[f64; 5], i: usize, g: &mut [f64; 5]) -> f64 {
        let t = self.t[i];
        let (e1, e2) = ((-t / th[1]).exp(), (-t / th[3]).exp());
        g[0] = e1;
        g[1] = th[0] * e1 * t / (th[1] * th[1]);
        g[2] = e2;
        g[3] = th[2] * e2 * t / (th[3] * th[3]);
        g[4] = 1.0;
        th[0] * e1 + th[2] * e2 + th[4]
    }
}

/// χ², `JᵀJ` and `Jᵀr` of `model` at `theta` on `y`.
#[inline(always)]
fn normal_equations<const P: usize, M: HandModel<P>>(model: &M, y: &[f64], theta: &[f64; P]) -> (f64, [[f64; P]; P], [f64; P]) {
    let mut jtj = [[0.0; P]; P];
    let mut jtr = [0.0; P];
    let mut chi2 = 0.0;
    let mut g = [0.0; P];
    for (i, &yi) in y.iter().enumerate() {
        let r = yi - model.eval(theta, i, &mut g);
        chi2 += r * r;
        for a in 0..P {
            jtr[a] += g[a] * r;
            for b in 0..=a {
                jtj[a][b] += g[a] * g[b];
            }
        }
    }
    (chi2, jtj, jtr)
}

/// Solves `(JᵀJ + λ diag(JᵀJ)) δ = Jᵀr` by Cholesky; `None` if not positive definite.
#[inline(always)]
fn damped_step<const P: usize>(jtj: &[[f64; P]; P], jtr: &[f64; P], lambda: f64) -> Option<[f64; P]> {
    let mut l = [[0.0; P]; P];
    for a in 0..P {
        for b in 0..=a {
            let mut s = jtj[a][b] + if a == b { lambda * jtj[a][a] } else { 0.0 };
            for k in 0..b {
                s -= l[a][k] * l[b][k];
            }
            if a == b {
                if s <= 0.0 {
                    return None;
                }
                l[a][a] = s.sqrt();
            } else {
                l[a][b] = s / l[b][b];
            }
        }
    }
    let mut z = [0.0; P];
    for a in 0..P {
        let mut s = jtr[a];
        for k in 0..a {
            s -= l[a][k] * z[k];
        }
        z[a] = s / l[a][a];
    }
    let mut d = [0.0; P];
    for a in (0..P).rev() {
        let mut s = z[a];
        for k in a + 1..P {
            s -= l[k][a] * d[k];
        }
        d[a] = s / l[a][a];
    }
    Some(d)
}

/// The hand-written Levenberg–Marquardt (Marquardt's diagonal scaling, λ ×10 / ÷10), stopping
/// when `|χ²_prev − χ²| < tol·χ²` after an accepted step or after 200 iterations. Returns the
/// estimates and the iterations.
fn hand_lm<const P: usize, M: HandModel<P>>(model: &M, y: &[f64], mut theta: [f64; P], tol: f64) -> ([f64; P], usize) {
    let mut lambda = 1e-3;
    let (mut chi2, mut jtj, mut jtr) = normal_equations(model, y, &theta);
    for it in 1..=200 {
        let Some(d) = damped_step(&jtj, &jtr, lambda) else {
            lambda *= 10.0;
            continue;
        };
        let mut trial = theta;
        for a in 0..P {
            trial[a] += d[a];
        }
        let (c2, j2, r2) = normal_equations(model, y, &trial);
        if c2.is_finite() && c2 < chi2 {
            let done = (chi2 - c2) < tol * c2;
            (theta, chi2, jtj, jtr) = (trial, c2, j2, r2);
            lambda = (lambda * 0.1).max(1e-12);
            if done {
                return (theta, it);
            }
        } else {
            lambda *= 10.0;
            if lambda > 1e12 {
                return (theta, it);
            }
        }
    }
    (theta, 200)
}

/// One workload: the sepfit formula, its start, the data columns, the curves and the hand
/// model's linear starts from the data.
struct Workload {
    name: &'static str,
    formula: &'static str,
    start: Vec<(&'static str, f64)>,
    /// Column names (the last is `y`) and the shared columns before `y`.
    names: Vec<&'static str>,
    x: Vec<Vec<f64>>,
    ys: Vec<Vec<f64>>,
}

impl Workload {
    fn fitter(&self, tol: f64) -> BatchFitter {
        let names: Vec<String> = self.names.iter().map(|s| s.to_string()).collect();
        let opts = NamedOptions { start: self.start.iter().map(|(n, v)| (n.to_string(), *v)).collect(), ..Default::default() };
        let mut f = BatchFitter::new(self.formula, &names, &opts).expect("batch fitter builds");
        f.set_tolerance(tol);
        f
    }
}

fn gauss1d() -> Workload {
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let x: Vec<f64> = (0..32).map(|i| i as f64).collect();
    let ys = (0..CURVES)
        .map(|_| {
            let (a, x0, s, b) = (rng.range(500.0, 1500.0), rng.range(13.5, 17.5), rng.range(2.0, 4.0), rng.range(5.0, 20.0));
            x.iter()
                .map(|&xi| {
                    let m = a * (-(xi - x0) * (xi - x0) / (2.0 * s * s)).exp() + b;
                    m + m.sqrt() * rng.normal()
                })
                .collect()
        })
        .collect();
    Workload {
        name: "gauss1d_32",
        formula: "y ~ a*exp(-(x - x0)^2/(2*s^2)) + b",
        start: vec![("x0", 15.5), ("s", 3.0)],
        names: vec!["x", "y"],
        x: vec![x],
        ys,
    }
}

fn gauss2d() -> Workload {
    let mut rng = Rng(0x0FED_CBA9_8765_4321);
    let u: Vec<f64> = (0..25).map(|i| (i % 5) as f64).collect();
    let v: Vec<f64> = (0..25).map(|i| (i / 5) as f64).collect();
    let ys = (0..CURVES)
        .map(|_| {
            let (a, u0, v0, s, b) =
                (rng.range(500.0, 1500.0), rng.range(1.6, 2.4), rng.range(1.6, 2.4), rng.range(0.8, 1.2), rng.range(5.0, 20.0));
            (0..25)
                .map(|i| {
                    let r2 = (u[i] - u0).powi(2) + (v[i] - v0).powi(2);
                    let m = a * (-r2 / (2.0 * s * s)).exp() + b;
                    m + m.sqrt() * rng.normal()
                })
                .collect()
        })
        .collect();
    Workload {
        name: "gauss2d_5x5",
        formula: "y ~ a*exp(-((u - u0)^2 + (v - v0)^2)/(2*s^2)) + b",
        start: vec![("u0", 2.0), ("v0", 2.0), ("s", 1.0)],
        names: vec!["u", "v", "y"],
        x: vec![u, v],
        ys,
    }
}

fn flim() -> Workload {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let t: Vec<f64> = (0..256).map(|i| 0.05 * i as f64).collect();
    let ys = (0..CURVES)
        .map(|_| {
            let (tau1, tau2) = (rng.range(0.3, 0.8), rng.range(2.0, 4.0));
            let (a1, a2, bg) = (rng.range(200.0, 800.0), rng.range(100.0, 400.0), rng.range(2.0, 10.0));
            t.iter()
                .map(|&t| {
                    let m = a1 * (-t / tau1).exp() + a2 * (-t / tau2).exp() + bg;
                    m + m.sqrt() * rng.normal()
                })
                .collect()
        })
        .collect();
    Workload {
        name: "flim_256",
        formula: "y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + bg",
        start: vec![("tau1", 0.5), ("tau2", 3.0)],
        names: vec!["t", "y"],
        x: vec![t],
        ys,
    }
}

fn min_max(y: &[f64]) -> (f64, f64) {
    y.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

/// The hand LM's full start for curve `y` (nonlinear from the workload, linear from the data),
/// in its parameter order.
fn hand_start(w: &Workload, y: &[f64]) -> Vec<f64> {
    let (lo, hi) = min_max(y);
    let s = |n: &str| w.start.iter().find(|(k, _)| *k == n).unwrap().1;
    match w.name {
        "gauss1d_32" => vec![hi - lo, s("x0"), s("s"), lo],
        "gauss2d_5x5" => vec![hi - lo, s("u0"), s("v0"), s("s"), lo],
        _ => vec![(y[0] - lo) / 2.0, s("tau1"), (y[0] - lo) / 2.0, s("tau2"), lo],
    }
}

/// Fits every curve of `w` with the hand LM; returns the nonlinear estimates per curve (in the
/// order of `w.start`) and the mean iterations.
fn hand_all(w: &Workload, tol: f64) -> (Vec<Vec<f64>>, f64) {
    let mut its = 0;
    let est = w
        .ys
        .iter()
        .map(|y| {
            let st = hand_start(w, y);
            match w.name {
                "gauss1d_32" => {
                    let (th, k) = hand_lm(&Gauss1d { x: &w.x[0] }, y, st.try_into().unwrap(), tol);
                    its += k;
                    vec![th[1], th[2]]
                }
                "gauss2d_5x5" => {
                    let (th, k) = hand_lm(&Gauss2d { u: &w.x[0], v: &w.x[1] }, y, st.try_into().unwrap(), tol);
                    its += k;
                    vec![th[1], th[2], th[3]]
                }
                _ => {
                    let (th, k) = hand_lm(&Biexp { t: &w.x[0] }, y, st.try_into().unwrap(), tol);
                    its += k;
                    vec![th[1], th[3]]
                }
            }
        })
        .collect();
    (est, its as f64 / w.ys.len() as f64)
}

/// Fits every curve with sepfit; returns the nonlinear estimates (order of `w.start`), the
/// mean iterations and the number of converged fits.
fn sepfit_all(w: &Workload, f: &BatchFitter, worker: &mut BatchWorker) -> (Vec<Vec<f64>>, f64, usize) {
    let names = f.param_names();
    let idx: Vec<usize> = w.start.iter().map(|(n, _)| names.iter().position(|m| m == n).unwrap()).collect();
    let mut its = 0;
    let mut ok = 0;
    let mut cols: Vec<&[f64]> = w.x.iter().map(|c| c.as_slice()).collect();
    cols.push(&[]);
    let est = w
        .ys
        .iter()
        .map(|y| {
            *cols.last_mut().unwrap() = y;
            let r = f.fit_curve(worker, &cols);
            its += r.iterations;
            ok += usize::from(r.converged && r.std_errors.iter().all(|s| s.is_finite()));
            idx.iter().map(|&i| r.values.get(i).copied().unwrap_or(f64::NAN)).collect()
        })
        .collect();
    (est, its as f64 / w.ys.len() as f64, ok)
}

fn export(dir: &str, w: &Workload) {
    let write = |suffix: &str, vals: &[f64]| {
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(format!("{dir}/{}.{suffix}.f64", w.name), bytes).expect("export writes");
    };
    let n = w.ys[0].len();
    write("x", &w.x.concat());
    write("y", &w.ys.concat());
    let starts: Vec<f64> = w.ys.iter().flat_map(|y| hand_start(w, y)).collect();
    write("start", &starts);
    let shape = format!("curves {} points {} x_columns {} params {}\n", w.ys.len(), n, w.x.len(), starts.len() / w.ys.len());
    std::fs::write(format!("{dir}/{}.txt", w.name), shape).expect("export writes");
}

fn main() {
    let workloads = [gauss1d(), gauss2d(), flim()];
    if let Ok(dir) = std::env::var("SMALL_FITS_EXPORT") {
        std::fs::create_dir_all(&dir).expect("export directory");
        for w in &workloads {
            export(&dir, w);
        }
        eprintln!("wrote the workloads to {dir}");
        return;
    }
    if let Ok(spec) = std::env::var("SMALL_FITS_PROFILE") {
        // `<workload>[:<tol>[:<passes>]]`: sepfit only, every curve `passes` times (default
        // once), for callgrind or perf.
        let mut parts = spec.split(':');
        let name = parts.next().unwrap_or_default();
        let tol = parts.next().map_or(DEFAULT_BATCH_TOL, |t| t.parse().expect("a tolerance"));
        let passes: usize = parts.next().map_or(1, |n| n.parse().expect("a number of passes"));
        let w = workloads.iter().find(|w| w.name == name).expect("a workload name");
        let (f, mut worker) = (w.fitter(tol), BatchWorker::default());
        let t0 = Instant::now();
        let (mut its, mut ok) = (0.0, 0);
        for _ in 0..passes {
            (_, its, ok) = sepfit_all(w, &f, &mut worker);
        }
        let secs = t0.elapsed().as_secs_f64();
        eprintln!("{name}: {ok} converged, {its:.2} iterations per fit, {:.0} fits/s", (passes * w.ys.len()) as f64 / secs);
        return;
    }
    let tols = [("default tol", DEFAULT_BATCH_TOL), ("tol 1e-4", 1e-4)];
    // Agreement before timing.
    for w in &workloads {
        let f = w.fitter(DEFAULT_BATCH_TOL);
        let (s, s_it, ok) = sepfit_all(w, &f, &mut BatchWorker::default());
        let (h, h_it) = hand_all(w, 1e-12);
        let agree = s
            .iter()
            .zip(&h)
            .filter(|(a, b)| a.iter().zip(b.iter()).all(|(x, y)| (x - y).abs() <= 1e-6 * x.abs().max(y.abs())))
            .count();
        eprintln!(
            "{}: sepfit {ok}/{} converged with finite standard errors, {s_it:.2} iterations; hand LM (tol 1e-12) {h_it:.2} iterations; nonlinear estimates agree to 1e-6 on {agree}/{} curves",
            w.name,
            w.ys.len(),
            w.ys.len()
        );
        assert!(agree * 10 >= w.ys.len() * 9, "{}: sepfit and the hand LM disagree on more than 10% of the curves", w.name);
    }
    let mut c = Criterion::default().configure_from_args().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    for w in &workloads {
        let mut g = c.benchmark_group(w.name);
        g.sample_size(10);
        for (label, tol) in tols {
            let f = w.fitter(tol);
            let mut worker = BatchWorker::default();
            g.bench_function(format!("sepfit {label}"), |b| b.iter(|| black_box(sepfit_all(w, &f, &mut worker))));
            let htol = if tol == 1e-4 { 1e-4 } else { 1e-12 };
            g.bench_function(format!("hand LM {label}"), |b| b.iter(|| black_box(hand_all(w, htol))));
        }
        g.finish();
    }
    c.final_summary();
    // Summary: interleaved repetitions, medians, fits per second.
    println!("\nsmall fits, one thread, {CURVES} curves per workload (median of 5 interleaved passes)");
    println!("{:<12} {:<12} {:>14} {:>14} {:>9} {:>8} {:>8}", "workload", "tolerance", "sepfit fits/s", "hand LM fits/s", "ratio", "it sep", "it hand");
    for w in &workloads {
        for (label, tol) in tols {
            let f = w.fitter(tol);
            let htol = if tol == 1e-4 { 1e-4 } else { 1e-12 };
            let mut worker = BatchWorker::default();
            let (mut ts, mut th) = (Vec::new(), Vec::new());
            let (mut its_s, mut its_h) = (0.0, 0.0);
            for _ in 0..5 {
                let t0 = Instant::now();
                its_s = black_box(sepfit_all(w, &f, &mut worker)).1;
                ts.push(t0.elapsed().as_secs_f64());
                let t0 = Instant::now();
                its_h = black_box(hand_all(w, htol)).1;
                th.push(t0.elapsed().as_secs_f64());
            }
            ts.sort_by(f64::total_cmp);
            th.sort_by(f64::total_cmp);
            let (fs, fh) = (CURVES as f64 / ts[2], CURVES as f64 / th[2]);
            println!("{:<12} {:<12} {:>14.0} {:>14.0} {:>8.2}× {:>8.2} {:>8.2}", w.name, label, fs, fh, fs / fh, its_s, its_h);
        }
    }
}
