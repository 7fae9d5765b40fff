//! Compiled evaluation of `a1*exp(-b1*t) + a2*exp(-b2*t) + c` and all five partial derivatives
//! for n = 1,000,000, against a hand-written Rust loop computing the same six outputs.
//!
//! Run: `cargo bench -p sepfit-expr --bench eval`. The ratio is printed at the end.

use criterion::{Criterion, criterion_group, criterion_main};
use sepfit_expr::{ModelFormula, Program};
use std::hint::black_box;
use std::time::Instant;

const N: usize = 1_000_000;

fn hand(t: &[f64], p: [f64; 5], out: &mut [Vec<f64>]) {
    let [a1, a2, c, b1, b2] = p;
    let (f, rest) = out.split_at_mut(1);
    let (da1, rest) = rest.split_at_mut(1);
    let (da2, rest) = rest.split_at_mut(1);
    let (dc, rest) = rest.split_at_mut(1);
    let (db1, db2) = rest.split_at_mut(1);
    let (f, da1, da2, dc, db1, db2) = (&mut f[0], &mut da1[0], &mut da2[0], &mut dc[0], &mut db1[0], &mut db2[0]);
    for i in 0..t.len() {
        let ti = t[i];
        let e1 = (-b1 * ti).exp();
        let e2 = (-b2 * ti).exp();
        f[i] = a1 * e1 + a2 * e2 + c;
        da1[i] = e1;
        da2[i] = e2;
        dc[i] = 1.0;
        db1[i] = -a1 * ti * e1;
        db2[i] = -a2 * ti * e2;
    }
}

fn bench(c: &mut Criterion) {
    let t: Vec<f64> = (0..N).map(|i| i as f64 * 10.0 / N as f64).collect();
    let y = vec![0.0; N];
    let m = ModelFormula::parse("y ~ a1*exp(-b1*t) + a2*exp(-b2*t) + c", &["t", "y"]).unwrap();
    let mut outs = vec![m.rhs()];
    outs.extend(m.gradient());
    let prog = Program::new(m.pool(), &outs, &m.param_syms(), &m.column_syms()).unwrap();
    let params = [2.0, 1.0, 0.5, 1.3, 0.2]; // a1 a2 c b1 b2 (params() order)
    let mut ev = prog.evaluator();
    let mut bufs = vec![vec![0.0; N]; 6];
    let mut hand_bufs = vec![vec![0.0; N]; 6];
    // Same numbers from both.
    {
        let mut s: Vec<&mut [f64]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
        ev.eval(&params, &[&t, &y], &mut s).unwrap();
        hand(&t, params, &mut hand_bufs);
        for k in 0..6 {
            for i in (0..N).step_by(997) {
                let (a, b) = (bufs[k][i], hand_bufs[k][i]);
                assert!((a - b).abs() <= 1e-15 * b.abs().max(1e-300), "output {k} row {i}: {a} vs {b}");
            }
        }
    }
    let mut g = c.benchmark_group("value+5 partials, n=1e6");
    g.sample_size(20);
    g.bench_function("sepfit compiled", |bch| {
        bch.iter(|| {
            let mut s: Vec<&mut [f64]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
            ev.eval(black_box(&params), &[&t, &y], &mut s).unwrap();
        })
    });
    g.bench_function("hand-written loop", |bch| bch.iter(|| hand(black_box(&t), black_box(params), &mut hand_bufs)));
    g.finish();
    // Ratio from interleaved repetitions (median of 15 each).
    let mut ts = Vec::new();
    let mut th = Vec::new();
    for _ in 0..15 {
        let t0 = Instant::now();
        let mut s: Vec<&mut [f64]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
        ev.eval(&params, &[&t, &y], &mut s).unwrap();
        ts.push(t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        hand(black_box(&t), params, &mut hand_bufs);
        th.push(t0.elapsed().as_secs_f64());
    }
    ts.sort_by(f64::total_cmp);
    th.sort_by(f64::total_cmp);
    println!(
        "sepfit {:.2} ms, hand-written {:.2} ms, ratio sepfit/hand = {:.3}",
        ts[7] * 1e3,
        th[7] * 1e3,
        ts[7] / th[7]
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
