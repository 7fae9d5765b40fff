//! The three loss functions of the matrix-calculus seeds, evaluated with their gradients at
//! n = 100,000 points by sepfit's matrix evaluator (from the derived formulas) against the same
//! outputs written by hand in Rust:
//!
//! ```text
//! least squares  J = sum((X*w - y).^2)                                   X: n×50, ∇_w
//! logistic       z = exp(-(x - b').^2/2)*a;  J = sum(log(1 + exp(z)) - y.*z)   m = 20, ∇_a, ∇_b
//! quadratic form z = sum((X*P).*X, 2);  J = sum(z./y - log(z))            X: n×10, ∇_P
//! ```
//!
//! Run: `cargo bench -p sepfit-expr --bench matrix_losses` (criterion, then the ratios of
//! interleaved medians), with mimalloc as the allocator, as in the shipped binaries. Both give the same numbers to 1e-10 relative (asserted first).
//! With `MATRIX_LOSSES_EXPORT=DIR` it skips criterion, writes each loss's inputs (`.npy`), the
//! medians and sepfit's outputs (`DIR/sepfit.json`) for `scripts/bench_matrix_losses.py`,
//! which times JAX and numpy on the same inputs and prints all ratios from one run.
//! `MATRIX_LOSSES_PROFILE=<loss>[:<evaluations>]` (`quadratic_form:500`) runs sepfit's
//! evaluator on one loss only, for a profiler, and exits.

use criterion::{Criterion, criterion_group, criterion_main};
use sepfit_expr::matrix::{LossFormula, MId, Mat, Values};
use std::hint::black_box;
use std::io::Write;
use std::time::Instant;

/// The allocator the `sepfit` binary and the Python extension use (the evaluator allocates its
/// n×m intermediates per evaluation; with glibc's malloc their fresh pages fault in every time:
/// the quadratic-form loss took 18 ms instead of 5).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const N: usize = 100_000;

/// xorshift64 uniform in [0, 1) and standard normal (Box–Muller).
struct Rng(u64);
impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Named values of a loss's variables.
type Named = [(&'static str, Mat)];

/// One loss: its formula, the values, and the hand-written loss and gradients.
struct Case {
    name: &'static str,
    formula: &'static str,
    decls: &'static str,
    wrt: &'static [&'static str],
    values: Vec<(&'static str, Mat)>,
    hand: fn(&Named) -> Vec<Vec<f64>>,
}

fn get<'a>(v: &'a Named, name: &str) -> &'a Mat {
    &v.iter().find(|(n, _)| *n == name).unwrap().1
}

/// r = Xw − y (column by column), J = Σ r², ∇_w J = 2 Xᵀ r.
fn hand_least_squares(v: &Named) -> Vec<Vec<f64>> {
    let (x, w, y) = (get(v, "X"), get(v, "w"), get(v, "y"));
    let (n, d) = (x.rows, x.cols);
    let mut r: Vec<f64> = y.data.iter().map(|v| -v).collect();
    for k in 0..d {
        let wk = w.data[k];
        for (ri, xi) in r.iter_mut().zip(&x.data[k * n..(k + 1) * n]) {
            *ri += xi * wk;
        }
    }
    let j = r.iter().map(|v| v * v).sum();
    let g = (0..d).map(|k| 2.0 * x.data[k * n..(k + 1) * n].iter().zip(&r).map(|(a, b)| a * b).sum::<f64>()).collect();
    vec![vec![j], g]
}

const M: usize = 20;

/// Per point: q_j = exp(−(x_i − b_j)²/2), z_i = Σ_j q_j a_j, p_i = σ(z_i) − y_i;
/// ∇_a J += p_i q, ∇_b J_j += p_i a_j q_j (x_i − b_j).
fn hand_logistic(v: &Named) -> Vec<Vec<f64>> {
    let (x, y, a, b) = (&get(v, "x").data, &get(v, "y").data, &get(v, "a").data, &get(v, "b").data);
    let (mut ga, mut gb) = (vec![0.0; M], vec![0.0; M]);
    let mut j = 0.0;
    let (mut q, mut d) = ([0.0; M], [0.0; M]);
    for i in 0..x.len() {
        let mut z = 0.0;
        for k in 0..M {
            d[k] = x[i] - b[k];
            q[k] = (-(d[k] * d[k]) / 2.0).exp();
            z += q[k] * a[k];
        }
        let ez = z.exp();
        j += (1.0 + ez).ln() - y[i] * z;
        let p = ez / (1.0 + ez) - y[i];
        for k in 0..M {
            ga[k] += q[k] * p;
            gb[k] += p * a[k] * q[k] * d[k];
        }
    }
    vec![vec![j], ga, gb]
}

const D: usize = 10;

/// Per point: z_i = x_iᵀ P x_i, J += z_i/y_i − ln z_i, ∇_P J += (1/y_i − 1/z_i) x_i x_iᵀ.
fn hand_quadratic_form(v: &Named) -> Vec<Vec<f64>> {
    let (x, p, y) = (get(v, "X"), get(v, "P"), get(v, "y"));
    let n = x.rows;
    let mut g = [[0.0; D]; D];
    let mut j = 0.0;
    let mut xi = [0.0; D];
    for i in 0..n {
        for (k, v) in xi.iter_mut().enumerate() {
            *v = x.data[k * n + i];
        }
        let mut z = 0.0;
        for c in 0..D {
            let pc = &p.data[c * D..(c + 1) * D];
            z += xi[c] * (0..D).map(|r| xi[r] * pc[r]).sum::<f64>();
        }
        j += z / y.data[i] - z.ln();
        let gi = 1.0 / y.data[i] - 1.0 / z;
        for (gc, &xc) in g.iter_mut().zip(&xi) {
            let s = gi * xc;
            for (gcr, &xr) in gc.iter_mut().zip(&xi) {
                *gcr += s * xr;
            }
        }
    }
    vec![vec![j], g.iter().flatten().copied().collect()]
}

fn cases() -> Vec<Case> {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut mat = |r: usize, c: usize, f: &mut dyn FnMut(&mut Rng) -> f64| Mat { rows: r, cols: c, data: (0..r * c).map(|_| f(&mut rng)).collect() };
    let ls_x = mat(N, 50, &mut |r| r.normal());
    let ls_w = mat(50, 1, &mut |r| r.normal());
    let ls_y = mat(N, 1, &mut |r| r.normal());
    let lx = mat(N, 1, &mut |r| -3.0 + 6.0 * r.uniform());
    let la = mat(M, 1, &mut |r| 2.0 * r.uniform() - 1.0);
    let lb = Mat { rows: M, cols: 1, data: (0..M).map(|k| -3.0 + 6.0 * k as f64 / (M - 1) as f64).collect() };
    let ly = Mat { rows: N, cols: 1, data: lx.data.iter().map(|xi| if (xi * 1.3).sin() > 0.0 { 1.0 } else { 0.0 }).collect() };
    let qx = mat(N, D, &mut |r| r.normal());
    // P = I + 0.1·(S + Sᵀ)/2: symmetric positive definite, so every z_i > 0.
    let s = mat(D, D, &mut |r| r.normal());
    let qp = Mat { rows: D, cols: D, data: (0..D * D).map(|k| f64::from(k % (D + 1) == 0) + 0.05 * (s.data[k] + s.data[(k % D) * D + k / D])).collect() };
    let qy = mat(N, 1, &mut |r| 5.0 + 10.0 * r.uniform());
    vec![
        Case {
            name: "least_squares",
            formula: "J = sum((X*w - y).^2)",
            decls: "X: n x d, w: d, y: n",
            wrt: &["w"],
            values: vec![("X", ls_x), ("w", ls_w), ("y", ls_y)],
            hand: hand_least_squares,
        },
        Case {
            name: "logistic",
            formula: "z = exp(-(x - b').^2/2)*a; J = sum(log(1 + exp(z)) - y.*z)",
            decls: "x: n, b: m, a: m, y: n",
            wrt: &["a", "b"],
            values: vec![("x", lx), ("y", ly), ("a", la), ("b", lb)],
            hand: hand_logistic,
        },
        Case {
            name: "quadratic_form",
            formula: "z = sum((X*P).*X, 2); J = sum(z./y - log(z))",
            decls: "X: n x m, P: m x m, y: n",
            wrt: &["P"],
            values: vec![("X", qx), ("P", qp), ("y", qy)],
            hand: hand_quadratic_form,
        },
    ]
}

/// A case ready to run: the formula with its gradients and the values.
struct Ready {
    case: Case,
    f: LossFormula,
    ids: Vec<MId>,
    values: Values,
}

impl Ready {
    fn new(case: Case) -> Self {
        let mut f = LossFormula::new(case.formula, case.decls, None).unwrap();
        let mut ids = vec![f.root()];
        ids.extend(f.gradients(case.wrt).unwrap());
        let mut values = Values::new();
        for (name, m) in &case.values {
            values.insert(name.to_string(), m.clone());
        }
        Ready { case, f, ids, values }
    }
    fn sepfit(&self) -> Vec<Mat> {
        self.f.eval(&self.ids, &self.values).unwrap()
    }
    fn hand(&self) -> Vec<Vec<f64>> {
        (self.case.hand)(black_box(&self.case.values))
    }
    /// Asserts that both give the same numbers.
    fn check(&self) {
        let (s, h) = (self.sepfit(), self.hand());
        for (k, (p, q)) in s.iter().zip(&h).enumerate() {
            let scale = q.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for (i, (u, v)) in p.data.iter().zip(q).enumerate() {
                assert!((u - v).abs() <= 1e-10 * scale, "{} output {k}[{i}]: sepfit {u} vs hand-written {v}", self.case.name);
            }
        }
    }
    /// Medians (seconds) of 21 interleaved repetitions: (sepfit, hand-written).
    fn medians(&self) -> (f64, f64) {
        let (mut ts, mut th) = (Vec::new(), Vec::new());
        for _ in 0..21 {
            let t0 = Instant::now();
            black_box(self.sepfit());
            ts.push(t0.elapsed().as_secs_f64());
            let t0 = Instant::now();
            black_box(self.hand());
            th.push(t0.elapsed().as_secs_f64());
        }
        ts.sort_by(f64::total_cmp);
        th.sort_by(f64::total_cmp);
        (ts[10], th[10])
    }
}

/// Writes a column-major matrix as a Fortran-ordered `.npy` (version 1.0, little-endian f64).
fn write_npy(path: &std::path::Path, m: &Mat) -> std::io::Result<()> {
    let mut header = format!("{{'descr': '<f8', 'fortran_order': True, 'shape': ({}, {}), }}", m.rows, m.cols);
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    out.write_all(b"\x93NUMPY\x01\x00")?;
    out.write_all(&(header.len() as u16).to_le_bytes())?;
    out.write_all(header.as_bytes())?;
    for v in &m.data {
        out.write_all(&v.to_le_bytes())?;
    }
    out.flush()
}

fn export(dir: &str, ready: &[Ready]) {
    let dir = std::path::Path::new(dir);
    std::fs::create_dir_all(dir).unwrap();
    let mut json = String::from("{\n");
    for (k, r) in ready.iter().enumerate() {
        for (name, m) in &r.case.values {
            write_npy(&dir.join(format!("{}_{name}.npy", r.case.name)), m).unwrap();
        }
        let (ts, th) = r.medians();
        let outputs: Vec<String> = r.sepfit().iter().map(|m| format!("[{}]", m.data.iter().map(|v| format!("{v:e}")).collect::<Vec<_>>().join(", "))).collect();
        json += &format!(
            "  \"{}\": {{\"formula\": {:?}, \"wrt\": {:?}, \"sepfit_s\": {ts:e}, \"hand_s\": {th:e}, \"outputs\": [{}]}}{}\n",
            r.case.name,
            r.case.formula,
            r.case.wrt,
            outputs.join(", "),
            if k + 1 < ready.len() { "," } else { "" }
        );
    }
    json += "}\n";
    std::fs::write(dir.join("sepfit.json"), json).unwrap();
}

fn bench(c: &mut Criterion) {
    let ready: Vec<Ready> = cases().into_iter().map(Ready::new).collect();
    for r in &ready {
        r.check();
    }
    if let Ok(dir) = std::env::var("MATRIX_LOSSES_EXPORT") {
        return export(&dir, &ready);
    }
    if let Ok(spec) = std::env::var("MATRIX_LOSSES_PROFILE") {
        // `<loss>[:<evaluations>]`: sepfit's evaluator only, for a profiler (`perf record`)
        let (name, reps) = spec.split_once(':').unwrap_or((&spec, "200"));
        let r = ready.iter().find(|r| r.case.name == name).expect("MATRIX_LOSSES_PROFILE names a loss of this bench");
        for _ in 0..reps.parse::<usize>().expect("a number of evaluations") {
            black_box(r.sepfit());
        }
        return;
    }
    for r in &ready {
        let mut g = c.benchmark_group(format!("{} (n = {N}): loss + gradient", r.case.name));
        g.sample_size(20);
        g.bench_function("sepfit matrix evaluator", |b| b.iter(|| black_box(r.sepfit())));
        g.bench_function("hand-written loop", |b| b.iter(|| black_box(r.hand())));
        g.finish();
    }
    for r in &ready {
        let (ts, th) = r.medians();
        println!("{:15} sepfit {:8.3} ms, hand-written {:8.3} ms, sepfit/hand = {:.3}", r.case.name, ts * 1e3, th * 1e3, ts / th);
        for (w, id) in r.case.wrt.iter().zip(&r.ids[1..]) {
            println!("{:15} ∇_{w} J = {}", "", r.f.unicode(*id));
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
