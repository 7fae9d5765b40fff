//! Property tests of matrix gradients: random scalar losses built from variables of compatible
//! shapes (`A: n×m`, `B: m×k`, `x: m`, `y: n`, `s` scalar, small random sizes) with `*`, `.*`,
//! `./` (positive denominators), `+`, `-`, `'`, `exp`/`log`/`sqrt` on safe arguments,
//! broadcasting (`y - x'`), `sum`, `norm2`, `normF`, `tr` of square products, and `logdet`,
//! `inv`, `det`, `diag` of symmetric positive definite `diag(1 + u.^2) + E·Eᵀ`. The gradient with
//! respect to a random variable of the loss is evaluated and compared, entry by entry, with
//! Richardson-extrapolated central differences: `|g − fd| / max(1, |g|, |fd|) ≤ 1e-6`. Points where
//! the difference quotients at two step sizes disagree (a kink, or a loss too curved to
//! difference) are skipped and counted; most cases must be checked.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sepfit_expr::matrix::{LossFormula, MId, MNode, Values};
use std::cell::Cell;

mod support;
use support::{D, Gen, Rng};

enum Outcome {
    Checked,
    Skipped,
    /// The loss uses no variable (a constant): nothing to differentiate.
    Constant,
}

fn loss_at(f: &LossFormula, v: &Values) -> f64 {
    f.eval(&[f.root()], v).map(|m| m[0].data[0]).unwrap_or(f64::NAN)
}

/// The fused evaluator (blocks, fused sums, `Aᵀ·B` without the transpose) gives the node-by-node
/// reference's numbers, up to summation order (amplified by `det`/`inv` of ill-conditioned
/// matrices, hence 1e-9 rather than a few ulps).
fn same_as_unfused(f: &LossFormula, ids: &[MId], v: &Values, src: &str) -> Result<(), TestCaseError> {
    let fused = f.eval(ids, v).map_err(|e| TestCaseError::fail(format!("{src}: {e}")))?;
    let plain = f.graph.eval_unfused(ids, v).map_err(|e| TestCaseError::fail(format!("{src}: {e}")))?;
    for (p, q) in fused.iter().zip(&plain) {
        prop_assert_eq!((p.rows, p.cols), (q.rows, q.cols), "{}: fused and plain shapes differ", src);
        for (x, y) in p.data.iter().zip(&q.data) {
            let ok = (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0) || (x.is_nan() && y.is_nan());
            prop_assert!(ok, "{}: fused {} vs plain {}", src, x, y);
        }
    }
    Ok(())
}

/// Builds the loss, derives the gradient in a random variable, compares with differences.
fn one_case(choices: &[u32], n: usize, m: usize, k: usize, seed: u64, extra: bool) -> Result<Outcome, TestCaseError> {
    let mut g = Gen { choices, at: 0, spd: true, extra };
    let src = g.expr(D::One, D::One, 4);
    let decls = "A: n x m, B: m x k, x: m, y: n, s: scalar";
    let mut f = LossFormula::new(&src, decls, None).map_err(|e| TestCaseError::fail(format!("{src}: does not build: {e}")))?;
    let used = f.variables();
    if used.is_empty() {
        return Ok(Outcome::Constant);
    }
    let wrt = used[g.pick(used.len())].clone();
    let grad = f.gradient(&wrt).map_err(|e| TestCaseError::fail(format!("{src}: no gradient in {wrt}: {e}")))?;
    let mut rng = Rng(seed | 1);
    let mut v = Values::new();
    v.insert("A".into(), rng.mat(n, m));
    v.insert("B".into(), rng.mat(m, k));
    v.insert("x".into(), rng.mat(m, 1));
    v.insert("y".into(), rng.mat(n, 1));
    v.insert("s".into(), rng.mat(1, 1));
    let f0 = loss_at(&f, &v);
    if !f0.is_finite() || f0.abs() > 1e8 {
        return Ok(Outcome::Skipped);
    }
    // a norm of a zero argument is a non-smooth point (where `u/‖u‖` is 0/0)
    let norms: Vec<MId> = (0..f.graph.len() as u32)
        .map(MId)
        .filter(|&id| matches!(f.graph.node(id), MNode::Norm2(_) | MNode::NormF(_)))
        .collect();
    let norm_values = f.eval(&norms, &v).map_err(|e| TestCaseError::fail(format!("{src}: {e}")))?;
    if norm_values.iter().any(|n| n.data[0] < 1e-6) {
        return Ok(Outcome::Skipped);
    }
    let gv = f.eval(&[grad], &v).map_err(|e| TestCaseError::fail(format!("{src}: gradient does not evaluate: {e}")))?;
    let gv = &gv[0];
    same_as_unfused(&f, &[f.root(), grad], &v, &src)?;
    let x0 = &v[&wrt];
    prop_assert_eq!((gv.rows, gv.cols), (x0.rows, x0.cols), "{}: gradient in {} has the wrong size", src, wrt);
    for idx in 0..x0.data.len() {
        let h = 1e-3 * x0.data[idx].abs().max(1.0);
        let at = |t: f64| {
            let mut w = v.clone();
            w.get_mut(&wrt).unwrap().data[idx] += t;
            loss_at(&f, &w)
        };
        let d1 = (at(h) - at(-h)) / (2.0 * h);
        let d2 = (at(h / 2.0) - at(-h / 2.0)) / h;
        let d4 = (at(h / 4.0) - at(-h / 4.0)) / (h / 2.0);
        let r1 = (4.0 * d2 - d1) / 3.0;
        let r2 = (4.0 * d4 - d2) / 3.0;
        let fd = (16.0 * r2 - r1) / 15.0;
        if !fd.is_finite() || (r1 - r2).abs() > 1e-5 * r2.abs().max(1.0) {
            return Ok(Outcome::Skipped); // not smooth enough here to difference
        }
        let g = gv.data[idx];
        let err = (g - fd).abs() / g.abs().max(fd.abs()).max(1.0);
        prop_assert!(
            err <= 1e-6,
            "{src}\n  d/d{wrt}[{idx}]: derived {g}, differences {fd}, relative error {err:e}\n  gradient: {}",
            f.ascii(grad)
        );
    }
    Ok(Outcome::Checked)
}

#[test]
fn random_matrix_gradients_match_differences() {
    gradients_match_differences(false);
}

/// The same with the functions of issue 14 (`sigmoid`, `softplus`, `log1p`, `expm1`, `erf`,
/// `erfc`, `relu`, `softmax`, `logsumexp`) in the mix.
#[test]
fn random_gradients_with_more_functions_match_differences() {
    gradients_match_differences(true);
}

fn gradients_match_differences(extra: bool) {
    let checked = Cell::new(0usize);
    let skipped = Cell::new(0usize);
    let mut runner = TestRunner::new(Config { cases: 2000, failure_persistence: None, ..Config::default() });
    let strategy = (prop::collection::vec(any::<u32>(), 96), 1usize..=3, 1usize..=3, 1usize..=3, any::<u64>());
    runner
        .run(&strategy, |(choices, n, m, k, seed)| {
            match one_case(&choices, n, m, k, seed, extra)? {
                Outcome::Checked => checked.set(checked.get() + 1),
                Outcome::Skipped => skipped.set(skipped.get() + 1),
                Outcome::Constant => {}
            }
            Ok(())
        })
        .unwrap();
    let (c, s) = (checked.get(), skipped.get());
    eprintln!("checked {c}, skipped {s}");
    assert!(c >= 9 * (c + s) / 10, "only {c} of {} cases could be checked", c + s);
}

/// The generator covers the operations it claims (a sanity check on the test itself).
#[test]
fn generator_covers_operations() {
    let mut all = String::new();
    for s in 0..300u32 {
        let choices: Vec<u32> = (0..96).map(|i| (s.wrapping_mul(2654435761).wrapping_add(i * 40503)) ^ (i << 7)).collect();
        let mut g = Gen { choices: &choices, at: 0, spd: true, extra: false };
        all.push_str(&g.expr(D::One, D::One, 4));
    }
    for op in [" * ", ".*", "./", " + ", " - ", "'", "exp(", "log(", "sqrt(", "sum(", "norm2(", "normF(", "tr(", "logdet(", "inv(", "det(", "diag("] {
        assert!(all.contains(op), "never generated `{op}`");
    }
}

/// Jacobians of random vector expressions (length n) with respect to `x`, `y` or `s`, entry by
/// entry against central differences. Matrix intermediates that depend on the variable are read
/// through their products with vectors; expressions with one the forward mode does not support
/// (inside an elementwise function, a trace, a determinant) are counted apart; most must be
/// checked (1,400 of 1,500 on 2026-12-06).
#[test]
fn random_jacobians_match_differences() {
    let checked = Cell::new(0usize);
    let other = Cell::new(0usize);
    let mut runner = TestRunner::new(Config { cases: 1500, failure_persistence: None, ..Config::default() });
    let strategy = (prop::collection::vec(any::<u32>(), 96), 1usize..=3, 1usize..=3, 1usize..=3, any::<u64>());
    runner
        .run(&strategy, |(choices, n, m, k, seed)| {
            let mut g = Gen { choices: &choices, at: 0, spd: false, extra: seed % 2 == 0 };
            let src = g.expr(D::N, D::One, 3);
            let decls = "A: n x m, B: m x k, x: m, y: n, s: scalar";
            let mut f = LossFormula::new(&src, decls, None).map_err(|e| TestCaseError::fail(format!("{src}: {e}")))?;
            let used: Vec<String> = f.variables().into_iter().filter(|v| ["x", "y", "s"].contains(&v.as_str())).collect();
            if used.is_empty() {
                other.set(other.get() + 1);
                return Ok(());
            }
            let wrt = used[g.pick(used.len())].clone();
            let Ok(jac) = f.jacobian(&wrt) else {
                other.set(other.get() + 1);
                return Ok(());
            };
            let mut rng = Rng(seed | 1);
            let mut v = Values::new();
            v.insert("A".into(), rng.mat(n, m));
            v.insert("B".into(), rng.mat(m, k));
            v.insert("x".into(), rng.mat(m, 1));
            v.insert("y".into(), rng.mat(n, 1));
            v.insert("s".into(), rng.mat(1, 1));
            let norms: Vec<MId> = (0..f.graph.len() as u32)
                .map(MId)
                .filter(|&id| matches!(f.graph.node(id), MNode::Norm2(_) | MNode::NormF(_)))
                .collect();
            let nv = f.eval(&norms, &v).map_err(|e| TestCaseError::fail(format!("{src}: {e}")))?;
            if nv.iter().any(|t| t.data[0] < 1e-6) {
                other.set(other.get() + 1);
                return Ok(());
            }
            let jm = f.eval(&[jac], &v).map_err(|e| TestCaseError::fail(format!("{src}: Jacobian does not evaluate: {e}")))?.remove(0);
            same_as_unfused(&f, &[f.root(), jac], &v, &src)?;
            let x0 = v[&wrt].clone();
            prop_assert_eq!((jm.rows, jm.cols), (n, x0.data.len()), "{}: Jacobian in {} has the wrong size: {}", src, wrt, f.ascii(jac));
            for c in 0..x0.data.len() {
                let h = 1e-3 * x0.data[c].abs().max(1.0);
                let at = |t: f64| {
                    let mut w = v.clone();
                    w.get_mut(&wrt).unwrap().data[c] += t;
                    f.eval(&[f.root()], &w).map(|m| m[0].data.clone()).unwrap_or_default()
                };
                let (p1, m1, p2, m2, p4, m4) = (at(h), at(-h), at(h / 2.0), at(-h / 2.0), at(h / 4.0), at(-h / 4.0));
                for r in 0..n {
                    let d1 = (p1[r] - m1[r]) / (2.0 * h);
                    let d2 = (p2[r] - m2[r]) / h;
                    let d4 = (p4[r] - m4[r]) / (h / 2.0);
                    let (r1, r2) = ((4.0 * d2 - d1) / 3.0, (4.0 * d4 - d2) / 3.0);
                    let fd = (16.0 * r2 - r1) / 15.0;
                    if !fd.is_finite() || (r1 - r2).abs() > 1e-5 * r2.abs().max(1.0) {
                        continue;
                    }
                    let got = jm.get(r, c);
                    let err = (got - fd).abs() / got.abs().max(fd.abs()).max(1.0);
                    prop_assert!(err <= 1e-6, "{src}\n  J[{r},{c}] in {wrt}: derived {got}, differences {fd}, error {err:e}\n  J = {}", f.ascii(jac));
                }
            }
            checked.set(checked.get() + 1);
            Ok(())
        })
        .unwrap();
    let (c, o) = (checked.get(), other.get());
    eprintln!("Jacobians checked {c}, not applicable or unsupported {o}");
    assert!(c >= (c + o) / 2, "only {c} of {} cases checked", c + o);
}

/// The fused evaluator against the node-by-node reference at sizes that span several blocks
/// (with partial last blocks), on random losses, their gradients and random vector expressions.
#[test]
fn fused_evaluation_matches_plain_at_larger_sizes() {
    let mut runner = TestRunner::new(Config { cases: 150, failure_persistence: None, ..Config::default() });
    let strategy = (prop::collection::vec(any::<u32>(), 96), 1usize..=700, 1usize..=40, 1usize..=5, any::<u64>());
    runner
        .run(&strategy, |(choices, n, m, k, seed)| {
            let mut g = Gen { choices: &choices, at: 0, spd: false, extra: false };
            let (r, src) = if g.pick(2) == 0 { (D::One, g.expr(D::One, D::One, 4)) } else { (D::N, g.expr(D::N, D::M, 3)) };
            let decls = "A: n x m, B: m x k, x: m, y: n, s: scalar";
            let mut f = LossFormula::new(&src, decls, None).map_err(|e| TestCaseError::fail(format!("{src}: {e}")))?;
            let mut ids = vec![f.root()];
            if r == D::One {
                let used = f.variables();
                if !used.is_empty() {
                    let names: Vec<&str> = used.iter().map(String::as_str).collect();
                    ids.extend(f.gradients(&names).map_err(|e| TestCaseError::fail(format!("{src}: {e}")))?);
                }
            }
            let mut rng = Rng(seed | 1);
            let mut v = Values::new();
            v.insert("A".into(), rng.mat(n, m));
            v.insert("B".into(), rng.mat(m, k));
            v.insert("x".into(), rng.mat(m, 1));
            v.insert("y".into(), rng.mat(n, 1));
            v.insert("s".into(), rng.mat(1, 1));
            same_as_unfused(&f, &ids, &v, &src)
        })
        .unwrap();
}

/// Products `Aᵀ·E` of an elementwise `E` are computed in one fused loop over tiles of rows in
/// pieces on all cores (E never stored): the same numbers as the plain evaluation at sizes
/// that span several blocks, tiles and pieces with partial ends, for the gradients of the
/// quadratic-form loss (`Xᵀ·diag(v)·X`), logistic and Poisson regression (`Xᵀ·(σ(Xw) − y)`,
/// `Xᵀ·(exp(Xw) − y)`), a broadcast scalar `E`, and a product too large to fuse.
#[test]
fn fused_gram_products_match_plain_across_tiles_and_pieces() {
    let cases = [
        ("z = sum((A*P).*A, 2); J = sum(z./y - log(z))", "A: n x m, P: m x m, y: n", "P", 7),
        ("J = sum(log(1 + exp(A*x)) - y.*(A*x))", "A: n x m, x: m, y: n", "x", 9),
        ("J = sum(exp(A*x) - y.*(A*x))", "A: n x m, x: m, y: n", "x", 3),
        ("J = sum(exp(A*x)) + s*sum(A*x)", "A: n x m, x: m, s: scalar", "x", 4),
        ("z = sum((A*P).*A, 2); J = sum(z./y - log(z))", "A: n x m, P: m x m, y: n", "P", 70),
    ];
    for n in [40_123, 16_384, 4_097, 300] {
        for (src, decls, wrt, m) in cases {
            let mut f = LossFormula::new(src, decls, None).unwrap();
            let ids = vec![f.root(), f.gradient(wrt).unwrap()];
            let mut rng = Rng(n as u64 * 31 + m as u64);
            let mut v = Values::new();
            let a = rng.mat(n, m);
            v.insert("A".into(), sepfit_expr::matrix::Mat { data: a.data.iter().map(|t| 0.3 * t).collect(), ..a });
            let mut p = sepfit_expr::matrix::Mat { rows: m, cols: m, data: vec![0.0; m * m] };
            for i in 0..m {
                p.data[i * m + i] = 1.0 + 0.1 * i as f64;
            }
            v.insert("P".into(), p);
            v.insert("x".into(), rng.mat(m, 1));
            let y = rng.mat(n, 1);
            v.insert("y".into(), sepfit_expr::matrix::Mat { data: y.data.iter().map(|t| 2.0 + t.abs()).collect(), ..y });
            v.insert("s".into(), rng.mat(1, 1));
            same_as_unfused(&f, &ids, &v, &format!("{src} (n = {n}, m = {m})")).unwrap();
        }
    }
}
