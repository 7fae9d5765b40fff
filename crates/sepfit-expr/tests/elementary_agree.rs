//! The model tower and the matrix tower evaluate `x^y` and every elementary function with the
//! same bits: the compiled model program ([`Program`]), the model's reference evaluator
//! ([`Pool::eval`]), and the matrix evaluator (fused and unfused) agree exactly, for constant
//! exponents (integers −70..70, halves, random reals) and for an exponent given at run time.

use proptest::prelude::*;
use sepfit_expr::func::ALL_FUNCS;
use sepfit_expr::matrix::{LossFormula, Mat, Values};
use sepfit_expr::{Dim, ExprId, Func, Pool, Program, Shape, SymbolKind};

/// Equal bits, or both NaN.
fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn check_all(what: &str, xs: &[f64], a: &[f64], b: &[f64]) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.len(), b.len());
    for ((x, u), v) in xs.iter().zip(a).zip(b) {
        prop_assert!(same(*u, *v), "{}: at x = {:e}: {:e} vs {:e}", what, x, u, v);
    }
    Ok(())
}

/// Evaluates `root` (over the data column `x`, with parameter `b` bound to `bv`) with the
/// compiled program and with the reference evaluator.
fn model_values(pool: &Pool, root: ExprId, xs: &[f64], bv: f64) -> (Vec<f64>, Vec<f64>) {
    let x = pool.find_symbol("x").unwrap();
    let params: Vec<_> = pool.find_symbol("b").into_iter().collect();
    let prog = Program::new(pool, &[root], &params, &[x]).unwrap();
    let mut out = vec![0.0; xs.len()];
    prog.evaluator().eval(&vec![bv; params.len()], &[xs], &mut [&mut out]).unwrap();
    let reference = xs
        .iter()
        .map(|&xv| pool.eval(root, &|s| if s == x { xv } else { bv }))
        .collect();
    (out, reference)
}

fn model_pool() -> (Pool, ExprId, ExprId) {
    let mut pool = Pool::new();
    let x = pool.symbol("x", SymbolKind::Data(0), Shape::Vector(Dim::Obs));
    let b = pool.symbol("b", SymbolKind::Parameter, Shape::Scalar);
    let (xe, be) = (pool.sym(x), pool.sym(b));
    (pool, xe, be)
}

/// Evaluates a loss formula in `x` (a vector) and `b` (a scalar), fused and unfused.
fn matrix_values(src: &str, xs: &[f64], bv: f64) -> (Vec<f64>, Vec<f64>) {
    let f = LossFormula::new(src, "x: n, b", None).unwrap();
    let mut v = Values::new();
    v.insert("x".into(), Mat::vector(xs.to_vec()));
    v.insert("b".into(), Mat::scalar(bv));
    let fused = f.graph.eval(&[f.root()], &v).unwrap().remove(0).data;
    let unfused = f.graph.eval_unfused(&[f.root()], &v).unwrap().remove(0).data;
    (fused, unfused)
}

fn check_pow(xs: &[f64], y: f64) -> Result<(), TestCaseError> {
    // A constant exponent (the compiled program specialises it) and a run-time one.
    let (mut pool, xe, be) = model_pool();
    let c = pool.constant(y);
    let pc = pool.pow(xe, c);
    let pb = pool.pow(xe, be);
    let (compiled, reference) = model_values(&pool, pc, xs, y);
    check_all(&format!("x^{y}: compiled vs reference"), xs, &compiled, &reference)?;
    let (compiled_b, reference_b) = model_values(&pool, pb, xs, y);
    check_all(&format!("x^b, b = {y}: compiled vs reference"), xs, &compiled_b, &reference_b)?;
    check_all(&format!("x^{y} vs x^b"), xs, &compiled, &compiled_b)?;
    for src in [format!("x.^({y:?})"), "x.^b".to_string()] {
        let (fused, unfused) = matrix_values(&src, xs, y);
        check_all(&format!("`{src}`, b = {y}: model vs matrix (fused)"), xs, &compiled, &fused)?;
        check_all(&format!("`{src}`, b = {y}: model vs matrix (unfused)"), xs, &compiled, &unfused)?;
    }
    Ok(())
}

/// Positive arguments over many orders of magnitude (300 of them: more than one chunk).
fn positive_xs() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec((-8.0f64..8.0).prop_map(|e| 2f64.powf(e)), 300)
}

fn exponent() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-70i32..70).prop_map(f64::from),
        (-140i32..140).prop_map(|k| f64::from(k) / 2.0),
        -70.0f64..70.0,
    ]
}

/// A random argument in (a little beyond) the function's domain.
fn argument(f: Func) -> BoxedStrategy<f64> {
    match f {
        Func::Log | Func::Log10 | Func::Sqrt => (-30.0f64..30.0).prop_map(f64::exp).boxed(),
        Func::Asin | Func::Acos => (-1.0f64..=1.0).boxed(),
        Func::Exp => prop_oneof![-745.0f64..745.0, -30.0f64..30.0, -1.0f64..1.0].boxed(),
        Func::Sinh | Func::Cosh => (-710.0f64..710.0).boxed(),
        _ => prop_oneof![-1e3f64..1e3, -4.0f64..4.0].boxed(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn powers_agree(xs in positive_xs(), y in exponent()) {
        check_pow(&xs, y)?;
    }

    #[test]
    fn functions_agree((k, xs) in (0..ALL_FUNCS.len()).prop_flat_map(|k| (Just(k), prop::collection::vec(argument(ALL_FUNCS[k]), 300)))) {
        let f = ALL_FUNCS[k];
        let (mut pool, xe, _) = model_pool();
        let e = pool.call(f, xe);
        let (compiled, reference) = model_values(&pool, e, &xs, 0.0);
        check_all(&format!("{}: compiled vs reference", f.name()), &xs, &compiled, &reference)?;
        let src = format!("{}(x)", f.name());
        let (fused, unfused) = matrix_values(&src, &xs, 0.0);
        check_all(&format!("{}: model vs matrix (fused)", f.name()), &xs, &compiled, &fused)?;
        check_all(&format!("{}: model vs matrix (unfused)", f.name()), &xs, &compiled, &unfused)?;
        // And a constant argument, folded when the graphs are built.
        let c = pool.constant(xs[0]);
        let folded = pool.call(f, c);
        if let Some(v) = pool.as_const(folded) {
            prop_assert!(same(v, reference[0]), "{}({:e}) folded to {:e}, evaluated {:e}", f.name(), xs[0], v, reference[0]);
        }
    }

    /// `atan2`, `max`, `min` of the column `x` and the parameter `b` (and of `b` and `x`), with
    /// ties (`b` drawn from the column itself half the time) and signed zeros.
    #[test]
    fn functions_of_two_arguments_agree(
        k in 0..sepfit_expr::func::ALL_FUNCS2.len(),
        xs in prop::collection::vec(prop_oneof![-1e3f64..1e3, -2.0f64..2.0, Just(0.0), Just(-0.0)], 300),
        pick in 0usize..300,
        tie in any::<bool>(),
        flip in any::<bool>(),
    ) {
        let f = sepfit_expr::func::ALL_FUNCS2[k];
        let bv = if tie { xs[pick] } else { 0.37 };
        let (mut pool, xe, be) = model_pool();
        let e = if flip { pool.call2(f, be, xe) } else { pool.call2(f, xe, be) };
        let (compiled, reference) = model_values(&pool, e, &xs, bv);
        check_all(&format!("{}: compiled vs reference", f.name()), &xs, &compiled, &reference)?;
        let src = if flip { format!("{}(b, x)", f.name()) } else { format!("{}(x, b)", f.name()) };
        let (fused, unfused) = matrix_values(&src, &xs, bv);
        check_all(&format!("{src}: model vs matrix (fused)"), &xs, &compiled, &fused)?;
        check_all(&format!("{src}: model vs matrix (unfused)"), &xs, &compiled, &unfused)?;
        for (x, v) in xs.iter().zip(&compiled) {
            let want = if flip { f.apply(bv, *x) } else { f.apply(*x, bv) };
            prop_assert!(same(*v, want));
        }
    }

    #[test]
    fn integer_powers_of_negative_bases_agree(xs in prop::collection::vec(-4.0f64..4.0, 300), k in -70i32..70) {
        check_pow(&xs, f64::from(k))?;
    }
}
