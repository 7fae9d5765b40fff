//! Regression tests for defects found by fuzzing and by new users: linearity of parameters
//! whose derivative simplifies to 0, non-finite constants (rejected, and rewrites that always
//! terminate), printed forms that parse back (shared subexpressions printed once), derivative
//! checks that fail on NaN, and messages (`=` for `~`, misspelt columns).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sepfit_expr::matrix::{Graph, LossError, LossFormula, MId, Mat, Values};
use sepfit_expr::{DiagnosticKind, Func, ModelFormula, ModelOptions, Shape};
use std::time::{Duration, Instant};

fn names(it: impl Iterator<Item = String>) -> Vec<String> {
    it.collect()
}

#[test]
fn a_parameter_inside_sign_is_nonlinear() {
    let m = ModelFormula::parse("y ~ a*t + sign(t - c) + c", &["t", "y"]).unwrap();
    assert_eq!(names(m.linear_params().map(|p| p.name.clone())), ["a"]);
    assert_eq!(names(m.nonlinear_params().map(|p| p.name.clone())), ["c"]);
    // the offset keeps c: sign(t - c) + c, not sign(t)
    let off = m.offset().expect("an offset");
    assert!(m.print(off).contains("sign(t - c)"), "{}", m.print(off));
}

#[test]
fn a_parameter_that_cancels_is_nonlinear() {
    let m = ModelFormula::parse("y ~ a + 4*p/(2*p)", &["t", "y"]).unwrap();
    assert_eq!(names(m.linear_params().map(|p| p.name.clone())), ["a"]);
    assert_eq!(names(m.nonlinear_params().map(|p| p.name.clone())), ["p"]);
    for b in m.basis() {
        assert_ne!(m.pool().as_const(*b), Some(0.0), "a basis function 0");
    }
    // ordinary linear parameters stay linear
    let m = ModelFormula::parse("y ~ a1*exp(-b1*t) + a2*exp(-b2*t)/3 - (c - t)*2", &["t", "y"]).unwrap();
    assert_eq!(names(m.linear_params().map(|p| p.name.clone())), ["a1", "a2", "c"]);
}

#[test]
fn constant_zero_over_zero_is_not_one() {
    let mut g = Graph::new();
    let z = g.constant(0.0);
    let d = g.div(z, z);
    assert_ne!(g.fill_value(d), Some(1.0));
    assert_ne!(g.fill_value(d), Some(0.0));
    let mut p = sepfit_expr::Pool::new();
    let z = p.constant(0.0);
    let d = p.div(z, z);
    assert_ne!(p.as_const(d), Some(1.0));
}

fn formula_err(r: Result<LossFormula, LossError>) -> sepfit_expr::Diagnostic {
    match r {
        Err(LossError::Formula(d)) => d,
        other => panic!("expected a formula error, got {other:?}"),
    }
}

#[test]
fn non_finite_constants_are_errors_with_a_span() {
    let d = formula_err(LossFormula::new("x + 1e308*10/0", "x", None));
    assert_eq!(d.kind, DiagnosticKind::DomainError);
    assert_eq!((d.span.start, d.span.end), (4, 12), "{d:?}"); // `1e308*10`
    let d = formula_err(LossFormula::new("1e300*1e300*2/.0", "", None));
    assert_eq!(d.kind, DiagnosticKind::DomainError);
    assert_eq!((d.span.start, d.span.end), (0, 11));
    let d = formula_err(LossFormula::new("x/0", "x", None));
    assert_eq!(d.message, "division by zero");
    let d = formula_err(LossFormula::new("x + sqrt(-1)", "x", None));
    assert_eq!(d.kind, DiagnosticKind::DomainError);
    // the model language likewise
    let d = ModelFormula::parse("y ~ a*t + 1e308*10", &["t", "y"]).unwrap_err();
    assert_eq!(d.kind, DiagnosticKind::DomainError);
    assert_eq!((d.span.start, d.span.end), (10, 18));
}

/// Random expressions of constants (finite or not: the graph API accepts any) and a variable
/// through every simplifying constructor: each finishes, and quickly.
#[test]
fn simplifier_terminates_on_random_constant_expressions() {
    let consts = [0.0, 1.0, -1.0, 2.0, 0.5, 10.0, 1e308, -1e308, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e-308];
    let mut runner = TestRunner::new(Config { cases: 3000, failure_persistence: None, ..Config::default() });
    let strategy = prop::collection::vec((any::<u8>(), any::<u16>(), any::<u16>()), 1..40);
    runner
        .run(&strategy, |ops| {
            let t0 = Instant::now();
            let mut g = Graph::new();
            let v = g.declare("x", Shape::Scalar);
            let mut ids: Vec<MId> = consts.iter().map(|&c| g.constant(c)).collect();
            ids.push(g.var(v));
            for (op, i, j) in ops {
                let (a, b) = (ids[i as usize % ids.len()], ids[j as usize % ids.len()]);
                let id = match op % 9 {
                    0 => g.add(a, b),
                    1 => g.sub(a, b),
                    2 => g.mul(a, b),
                    3 => g.div(a, b),
                    4 => g.pow(a, b),
                    5 => g.neg(a),
                    6 => g.call(Func::Exp, a),
                    7 => g.matmul(a, b),
                    _ => g.call(Func::Sqrt, a),
                };
                ids.push(id);
            }
            prop_assert!(t0.elapsed() < Duration::from_secs(2), "took {:?}", t0.elapsed());
            Ok(())
        })
        .unwrap();
    // the reported cases
    for src in ["x + 1e308*10/0", "1e300*1e300*2/.0"] {
        let t0 = Instant::now();
        assert!(LossFormula::new(src, "x", None).is_err());
        assert!(t0.elapsed() < Duration::from_secs(2));
    }
}

fn values(v: &[(&str, Mat)]) -> Values {
    let mut out = Values::new();
    for (k, m) in v {
        out.insert(k.to_string(), m.clone());
    }
    out
}

#[test]
fn checks_fail_on_nan() {
    let v = values(&[("x", Mat::vector(vec![-1.0, 4.0]))]);
    let mut f = LossFormula::new("sum(sqrt(x))", "x: n", None).unwrap();
    let g = f.gradient("x").unwrap();
    assert!(f.check_gradient(&["x"], &[g], &v, 4, 1).unwrap().is_infinite());
    let mut f = LossFormula::new("sqrt(x)", "x: n", None).unwrap();
    let j = f.jacobian("x").unwrap();
    assert!(f.check_jacobian("x", j, &v, 4, 1).unwrap().is_infinite());
    // and still pass where finite
    let v = values(&[("x", Mat::vector(vec![1.0, 4.0]))]);
    assert!(f.check_jacobian("x", j, &v, 4, 1).unwrap() < 1e-6);
}

/// Twenty nested definitions that use each other twice: printed once each, not expanded.
#[test]
fn shared_subexpressions_print_once() {
    let mut src = "u1 = sin(x)".to_string();
    for i in 2..=20 {
        src += &format!("; u{i} = sin(u{})*u{}", i - 1, i - 1);
    }
    src += "; u20";
    let mut f = LossFormula::new(&src, "x", None).unwrap();
    let g = f.gradient("x").unwrap();
    f.name_shared(&[g, f.root()]);
    let prog = f.ascii_program(g);
    assert!(prog.len() < 20_000, "{} bytes", prog.len());
    let back = LossFormula::new(&prog, "x", None).unwrap();
    let v = values(&[("x", Mat::vector(vec![0.7]))]);
    let (a, b) = (f.eval(&[g], &v).unwrap()[0].data[0], back.eval(&[back.root()], &v).unwrap()[0].data[0]);
    assert!((a - b).abs() <= 1e-12 * a.abs().max(1.0), "{a} vs {b}");
}

#[test]
fn ones_prints_and_parses_back() {
    let mut f = LossFormula::new("sum(x) + 2*sum(y)", "x: n, y: n", None).unwrap();
    let g = f.gradient("x").unwrap();
    assert_eq!(f.ascii(g), "ones(n)");
    let gy = f.gradient("y").unwrap();
    let back = LossFormula::new(&f.ascii_program(gy), "x: n, y: n", None).unwrap();
    let v = values(&[("x", Mat::vector(vec![1.0, 2.0, 3.0])), ("y", Mat::vector(vec![0.0, 1.0, 2.0]))]);
    assert_eq!(back.eval(&[back.root()], &v).unwrap()[0].data, [2.0, 2.0, 2.0]);
}

// ---- random loss expressions: printed ASCII → parsed → the same values ----

struct Gen<'a> {
    c: &'a [u32],
    at: usize,
}

impl Gen<'_> {
    fn pick(&mut self, k: usize) -> usize {
        let c = self.c[self.at % self.c.len()] as usize;
        self.at += 1;
        c % k
    }
    /// A vector expression of length n (`x`, `y`: n) or a scalar (`s`).
    fn vec(&mut self, d: u32) -> String {
        if d == 0 || self.pick(4) == 0 {
            return ["x", "y", "(A*z)", "(x - 0.5)", "ones(n)"][self.pick(5)].into();
        }
        let d = d - 1;
        match self.pick(9) {
            0 => format!("({} + {})", self.vec(d), self.vec(d)),
            1 => format!("({} - {})", self.vec(d), self.vec(d)),
            2 => format!("({} .* {})", self.vec(d), self.vec(d)),
            3 => format!("({} ./ (1 + ({}).^2))", self.vec(d), self.vec(d)),
            4 => format!("({} * {})", self.scalar(d), self.vec(d)),
            5 => format!("exp(-({}).^2)", self.vec(d)),
            6 => format!("-{}", self.vec(d)),
            7 => format!("sin({})", self.vec(d)),
            _ => format!("({}/{})", self.vec(d), ["2", "3", "(1 + s^2)"][self.pick(3)]),
        }
    }
    fn scalar(&mut self, d: u32) -> String {
        if d == 0 || self.pick(4) == 0 {
            return ["s", "2", "0.5", "pi"][self.pick(4)].into();
        }
        let d = d - 1;
        match self.pick(8) {
            0 => format!("sum({})", self.vec(d)),
            1 => format!("norm2(1 + ({}).^2)", self.vec(d)),
            2 => format!("({} + {})", self.scalar(d), self.scalar(d)),
            3 => format!("({} * {})", self.scalar(d), self.scalar(d)),
            4 => format!("(x'*{})", self.vec(d)),
            5 => format!("log(1 + ({})^2)", self.scalar(d)),
            6 => format!("({})^3", self.scalar(d)),
            _ => format!("-{}", self.scalar(d)),
        }
    }
}

#[test]
fn printed_ascii_parses_back_to_the_same_values() {
    let decls = "x: n, y: n, A: n x m, z: m, s";
    let mut runner = TestRunner::new(Config { cases: 3000, failure_persistence: None, ..Config::default() });
    let strategy = (prop::collection::vec(any::<u32>(), 64), any::<u64>());
    runner
        .run(&strategy, |(choices, seed)| {
            let mut gn = Gen { c: &choices, at: 0 };
            let src = format!("w = {}; sum(w .* w) + {}", gn.vec(3), gn.scalar(3));
            let mut f = LossFormula::new(&src, decls, None).map_err(|e| TestCaseError::fail(format!("{src}: {e}")))?;
            let used = f.variables();
            if used.is_empty() {
                return Ok(());
            }
            let wrt = used[gn.pick(used.len())].clone();
            let g = f.gradient(&wrt).map_err(|e| TestCaseError::fail(format!("{src}: {e}")))?;
            f.name_shared(&[g, f.root()]);
            let mut rng = seed | 1;
            let mut next = move || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                (rng >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
            };
            let mut v = Values::new();
            let (n, m) = (3, 2);
            v.insert("x".into(), Mat::vector((0..n).map(|_| next()).collect()));
            v.insert("y".into(), Mat::vector((0..n).map(|_| next()).collect()));
            v.insert("z".into(), Mat::vector((0..m).map(|_| next()).collect()));
            v.insert("A".into(), Mat { rows: n, cols: m, data: (0..n * m).map(|_| next()).collect() });
            v.insert("s".into(), Mat::vector(vec![next()]));
            for id in [f.root(), g] {
                let prog = f.ascii_program(id);
                let back = LossFormula::new(&prog, decls, None)
                    .map_err(|e| TestCaseError::fail(format!("{src}\n  printed `{prog}` does not parse: {e}")))?;
                let a = f.eval(&[id], &v).map_err(|e| TestCaseError::fail(format!("{src}: {e}")))?;
                let b = back.eval(&[back.root()], &v).map_err(|e| TestCaseError::fail(format!("{prog}: {e}")))?;
                prop_assert_eq!(a[0].data.len(), b[0].data.len(), "{}: printed `{}` has another size", src, prog);
                for (x, y) in a[0].data.iter().zip(&b[0].data) {
                    let ok = (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0) || (x.is_nan() && y.is_nan());
                    prop_assert!(ok, "{}\n  printed `{}`: {} vs {}", src, prog, x, y);
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn fixed_values_that_make_the_model_undefined_are_errors() {
    let fixed = [("p", -0.25)];
    let opts = ModelOptions { fixed: &fixed, ..Default::default() };
    let d = ModelFormula::parse_with("y ~ a*sqrt(p) + b*t", &["t", "y"], &opts).unwrap_err();
    assert_eq!(d.kind, DiagnosticKind::DomainError);
    assert!(d.message.contains("`p` = -0.25"), "{}", d.message);
    assert_eq!(d.span.start, 11);
    let fixed = [("p", 0.25)];
    let opts = ModelOptions { fixed: &fixed, ..Default::default() };
    let m = ModelFormula::parse_with("y ~ a*sqrt(p) + b*t", &["t", "y"], &opts).unwrap();
    assert_eq!(m.print(m.basis()[0]), "0.5");
}

#[test]
fn equals_for_tilde_says_did_you_mean() {
    let src = "y = a*exp(-k*t)";
    let d = ModelFormula::parse(src, &["t", "y"]).unwrap_err();
    assert_eq!(d.kind, DiagnosticKind::MissingTilde);
    assert_eq!((d.span.start, d.span.end), (2, 3));
    let r = d.render(src);
    assert!(r.contains("did you mean `~`?") && r.contains("  ^ "), "{r}");
    assert!(d.hints.iter().any(|h| h.contains("y ~ a*exp(-k*t)")), "{:?}", d.hints);
    // a definition before the model is still fine
    assert!(ModelFormula::parse("u = exp(-k*t); y ~ a*u", &["t", "y"]).is_ok());
}

#[test]
fn a_misspelt_column_gets_a_note() {
    let m = ModelFormula::parse("y ~ a*exp(-k*tt)", &["t", "y"]).unwrap();
    assert!(m.params().iter().any(|p| p.name == "tt"));
    assert!(m.notes().iter().any(|n| n.contains("did you mean the column `t`?")), "{:?}", m.notes());
    let m = ModelFormula::parse("y ~ a*exp(-k*tme)", &["time", "y"]).unwrap();
    assert!(m.notes().iter().any(|n| n.contains("`time`")), "{:?}", m.notes());
    // no note when the column is used, or for ordinary parameter names
    let m = ModelFormula::parse("y ~ a*exp(-k*t) + tt", &["t", "y"]).unwrap();
    assert!(m.notes().is_empty(), "{:?}", m.notes());
    let m = ModelFormula::parse("y ~ a1*exp(b1*t1) + a2*exp(b2*t2)", &["x1", "x2", "t1", "t2", "y"]).unwrap();
    assert!(m.notes().is_empty(), "{:?}", m.notes());
}
