//! Gradient of the seed 001 problem 4 loss (logistic regression on Gaussian features)
//!
//! ```text
//! z = exp(-(x - b').^2/2)*a;  J = sum(log(1 + exp(z)) - y.*z)
//! ```
//!
//! for n = 100,000 points and m = 20 centres, in `a` and in `b` (and the loss itself), evaluated
//! by sepfit's matrix evaluator from the derived formulas, against the same three outputs
//! hand-written in Rust (one pass over the points, no n×m temporaries).
//!
//! Run: `cargo bench -p sepfit-expr --bench matrix_grad`. The ratio (interleaved medians) is
//! printed at the end; both give the same numbers to 1e-10 relative (asserted first).

use criterion::{Criterion, criterion_group, criterion_main};
use sepfit_expr::matrix::{LossFormula, MId, Mat, Values};
use std::hint::black_box;
use std::time::Instant;

const N: usize = 100_000;
const M: usize = 20;

/// J, ∇_a J, ∇_b J by hand: for each point, q_j = exp(−(x_i − b_j)²/2), z_i = Σ_j q_j a_j,
/// p_i = σ(z_i) − y_i; ∇_a J += p_i q; ∇_b J_j += p_i a_j q_j (x_i − b_j).
fn hand(x: &[f64], y: &[f64], a: &[f64], b: &[f64], ga: &mut [f64], gb: &mut [f64]) -> f64 {
    ga.fill(0.0);
    gb.fill(0.0);
    let mut j = 0.0;
    let mut q = [0.0; M];
    let mut d = [0.0; M];
    for i in 0..x.len() {
        let xi = x[i];
        let mut z = 0.0;
        for k in 0..M {
            d[k] = xi - b[k];
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
    j
}

struct Setup {
    f: LossFormula,
    ids: [MId; 3],
    values: Values,
    x: Vec<f64>,
    y: Vec<f64>,
    a: Vec<f64>,
    b: Vec<f64>,
}

fn setup() -> Setup {
    let mut f = LossFormula::new("z = exp(-(x - b').^2/2)*a; J = sum(log(1 + exp(z)) - y.*z)", "x: n, b: m, a: m, y: n", None).unwrap();
    let [ga, gb]: [MId; 2] = f.gradients(&["a", "b"]).unwrap().try_into().unwrap();
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let mut u = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let x: Vec<f64> = (0..N).map(|_| -3.0 + 6.0 * u()).collect();
    let b: Vec<f64> = (0..M).map(|k| -3.0 + 6.0 * k as f64 / (M - 1) as f64).collect();
    let a: Vec<f64> = (0..M).map(|_| 2.0 * u() - 1.0).collect();
    let y: Vec<f64> = x.iter().map(|xi| if (xi * 1.3).sin() + 0.5 * (u() - 0.5) > 0.0 { 1.0 } else { 0.0 }).collect();
    let mut values = Values::new();
    values.insert("x".into(), Mat::vector(x.clone()));
    values.insert("y".into(), Mat::vector(y.clone()));
    values.insert("a".into(), Mat::vector(a.clone()));
    values.insert("b".into(), Mat::vector(b.clone()));
    let root = f.root();
    Setup { f, ids: [root, ga, gb], values, x, y, a, b }
}

fn sepfit_eval(s: &Setup) -> Vec<Mat> {
    s.f.eval(&s.ids, &s.values).unwrap()
}

fn bench(c: &mut Criterion) {
    let s = setup();
    let (mut ga, mut gb) = (vec![0.0; M], vec![0.0; M]);
    // Same numbers from both.
    {
        let out = sepfit_eval(&s);
        let j = hand(&s.x, &s.y, &s.a, &s.b, &mut ga, &mut gb);
        let close = |p: &[f64], q: &[f64], what: &str| {
            let scale = q.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for (k, (u, v)) in p.iter().zip(q).enumerate() {
                assert!((u - v).abs() <= 1e-10 * scale, "{what}[{k}]: sepfit {u} vs hand-written {v}");
            }
        };
        close(&out[0].data, &[j], "J");
        close(&out[1].data, &ga, "∇_a J");
        close(&out[2].data, &gb, "∇_b J");
        println!("∇_a J = {}", s.f.unicode(s.ids[1]));
        println!("∇_b J = {}", s.f.unicode(s.ids[2]));
    }
    let mut g = c.benchmark_group("p4 loss + gradient in a and b, n=1e5, m=20");
    g.sample_size(20);
    g.bench_function("sepfit matrix evaluator", |bch| bch.iter(|| black_box(sepfit_eval(&s))));
    g.bench_function("hand-written loop", |bch| {
        bch.iter(|| black_box(hand(black_box(&s.x), &s.y, &s.a, &s.b, &mut ga, &mut gb)))
    });
    g.finish();
    // Ratio from interleaved repetitions (median of 21 each).
    let (mut ts, mut th) = (Vec::new(), Vec::new());
    for _ in 0..21 {
        let t0 = Instant::now();
        black_box(sepfit_eval(&s));
        ts.push(t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        black_box(hand(black_box(&s.x), &s.y, &s.a, &s.b, &mut ga, &mut gb));
        th.push(t0.elapsed().as_secs_f64());
    }
    ts.sort_by(f64::total_cmp);
    th.sort_by(f64::total_cmp);
    println!("sepfit {:.2} ms, hand-written {:.2} ms, ratio sepfit/hand = {:.3}", ts[10] * 1e3, th[10] * 1e3, ts[10] / th[10]);
}

criterion_group!(benches, bench);
criterion_main!(benches);
