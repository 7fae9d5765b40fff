//! Where the time of a matrix loss evaluation goes (profiling aid): the least-squares or the
//! quadratic-form loss of `benches/matrix_losses.rs` with its gradient at n = 100,000, evaluated
//! in a loop; prints the median time and the derived gradient.
//!
//! Run: `cargo run --release -p sepfit-expr --example profile_matrix [ls|qf] [repeats] [loss]`.

use sepfit_expr::matrix::{LossFormula, Mat, Values};
use std::time::Instant;

/// The allocator of the `sepfit` binary and the Python extension.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "ls".into());
    let repeats: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(50);
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut mat = |r: usize, c: usize, lo: f64, hi: f64| Mat { rows: r, cols: c, data: (0..r * c).map(|_| lo + (hi - lo) * next()).collect() };
    let n = 100_000;
    let (formula, decls, wrt, values) = if which == "qf" {
        let m = 10;
        let mut p = mat(m, m, -0.05, 0.05);
        for i in 0..m {
            for j in 0..i {
                p.data[i * m + j] = p.data[j * m + i];
            }
            p.data[i * m + i] += 1.0;
        }
        ("z = sum((X*P).*X, 2); J = sum(z./y - log(z))", "X: n x m, P: m x m, y: n", "P", vec![("X", mat(n, m, -1.0, 1.0)), ("P", p), ("y", mat(n, 1, 5.0, 15.0))])
    } else {
        ("J = sum((X*w - y).^2)", "X: n x d, w: d, y: n", "w", vec![("X", mat(n, 50, -1.0, 1.0)), ("w", mat(50, 1, -1.0, 1.0)), ("y", mat(n, 1, -1.0, 1.0))])
    };
    // `qf loss`: the loss alone (no gradient)
    let loss_only = std::env::args().nth(3).as_deref() == Some("loss");
    let mut f = LossFormula::new(formula, decls, None).expect("builds");
    let mut ids = vec![f.root()];
    ids.extend(f.gradients(&[wrt]).expect("derives"));
    println!("gradient: {}", f.ascii(ids[1]));
    if loss_only {
        ids.truncate(1);
    }
    let mut v = Values::new();
    for (k, m) in values {
        v.insert(k.to_string(), m);
    }
    let mut ts = Vec::new();
    for _ in 0..repeats {
        let t0 = Instant::now();
        std::hint::black_box(f.eval(&ids, &v).expect("evaluates"));
        ts.push(t0.elapsed().as_secs_f64());
    }
    ts.sort_by(f64::total_cmp);
    println!("{which}: median {:.2} ms over {repeats}", ts[repeats / 2] * 1e3);
}
