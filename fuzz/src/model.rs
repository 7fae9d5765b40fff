//! The model path: `ModelFormula::parse` → structure, derivatives, compiled program, printing.

use crate::{Rng, check_diagnostic, hash, same_bits};
use sepfit_expr::compile::div_by_invariant;
use sepfit_expr::func::{ALL_FUNCS, pow, xlogy};
use sepfit_expr::{ExprId, Func, ModelFormula, Node, Pool, Program, SymId};

/// Column names the fuzz input can choose from.
const COLUMNS: [&str; 4] = ["t", "x", "y", "z"];

/// Decodes a fuzz input: byte 0 chooses the columns (bits 0–3) and whether the rest is the
/// formula text (bit 7 clear) or choices for a formula generator (bit 7 set).
pub fn decode(data: &[u8]) -> Option<(String, Vec<&'static str>)> {
    let (&head, rest) = data.split_first()?;
    let cols: Vec<&str> = COLUMNS.iter().enumerate().filter(|(i, _)| head & (1 << i) != 0).map(|(_, c)| *c).collect();
    let text = if head & 0x80 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        let mut g = Gen { bytes: rest, at: 0 };
        format!("{} ~ {}", g.lhs(), g.expr(6))
    };
    Some((text, cols))
}

/// Builds a well-formed formula from a stream of bytes (so that most inputs get past the parser).
struct Gen<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Gen<'_> {
    fn pick(&mut self, n: usize) -> usize {
        let b = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b as usize % n
    }
    fn lhs(&mut self) -> &'static str {
        ["y", "y", "log(y)", "y/t", "sqrt(y)"][self.pick(5)]
    }
    fn leaf(&mut self) -> String {
        const LEAVES: [&str; 24] = [
            "t", "x", "y", "z", "a", "b", "c", "p", "q", "a1", "b1", "pi", "0", "1", "2", "0.5", "-1", "3", "1e-3", "1e300",
            "1e-310", "10", "0.1", "1e308",
        ];
        if self.at >= self.bytes.len() {
            return "x".into();
        }
        LEAVES[self.pick(LEAVES.len())].to_string()
    }
    fn expr(&mut self, depth: u32) -> String {
        if depth == 0 || self.at >= self.bytes.len() {
            return self.leaf();
        }
        let d = depth - 1;
        match self.pick(13) {
            0 => self.leaf(),
            1 => format!("xlogy({}, {})", self.expr(d), self.expr(d)),
            2 => format!("({} + {})", self.expr(d), self.expr(d)),
            3 => format!("({} - {})", self.expr(d), self.expr(d)),
            4 | 5 => format!("{}*{}", self.expr(d), self.expr(d)),
            6 => format!("({})/({})", self.expr(d), self.expr(d)),
            7 => format!("({})^({})", self.expr(d), self.expr(d)),
            8 => format!("({})^{}", self.expr(d), ["2", "3", "-1", "0.5", "-2", "1.5", "0", "65", "-0.5"][self.pick(9)]),
            9 => format!("-{}", self.expr(d)),
            _ => {
                let f = ALL_FUNCS[self.pick(ALL_FUNCS.len())];
                format!("{}({})", f.name(), self.expr(d))
            }
        }
    }
}

/// A dual number a + b ε: forward-mode derivatives of the original graph (the oracle).
#[derive(Clone, Copy, Debug)]
struct Dual {
    re: f64,
    eps: f64,
}

fn d(re: f64, eps: f64) -> Dual {
    Dual { re, eps }
}

fn dual_call(f: Func, x: Dual) -> Dual {
    let v = f.apply(x.re);
    let e = x.eps;
    let slope = match f {
        Func::Exp => v,
        Func::Log => 1.0 / x.re,
        Func::Log10 => 1.0 / (x.re * std::f64::consts::LN_10),
        Func::Sqrt => 0.5 / v,
        Func::Sin => x.re.cos(),
        Func::Cos => -x.re.sin(),
        Func::Tan => 1.0 + v * v,
        Func::Asin => 1.0 / (1.0 - x.re * x.re).sqrt(),
        Func::Acos => -1.0 / (1.0 - x.re * x.re).sqrt(),
        Func::Atan => 1.0 / (1.0 + x.re * x.re),
        Func::Sinh => x.re.cosh(),
        Func::Cosh => x.re.sinh(),
        Func::Tanh => 1.0 - v * v,
        Func::Abs => Func::Sign.apply(x.re),
        Func::Sign => 0.0,
        Func::Sigmoid => v * (1.0 - v),
        Func::Softplus => 1.0 / (1.0 + (-x.re).exp()),
        Func::Log1p => 1.0 / (1.0 + x.re),
        Func::Expm1 => x.re.exp(),
        Func::Erf => 2.0 / std::f64::consts::PI.sqrt() * (-x.re * x.re).exp(),
        Func::Erfc => -2.0 / std::f64::consts::PI.sqrt() * (-x.re * x.re).exp(),
        Func::Relu => {
            if x.re > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Func::Step => 0.0,
    };
    // A zero tangent stays zero (an unused input does not turn an infinite slope into NaN).
    d(v, if e == 0.0 { 0.0 } else { slope * e })
}

fn dual_pow(a: Dual, b: Dual, const_exp: bool) -> Dual {
    let v = pow(a.re, b.re);
    let mut eps = 0.0;
    if a.eps != 0.0 {
        eps += if b.re == 0.0 { 0.0 } else { b.re * pow(a.re, b.re - 1.0) * a.eps };
    }
    if !const_exp && b.eps != 0.0 {
        eps += xlogy(v, a.re) * b.eps;
    }
    d(v, eps)
}

/// Dual evaluation of `root`; also returns the largest finite magnitude among the values and
/// tangents of its nodes (the scale of rounding errors).
fn eval_dual(pool: &Pool, root: ExprId, value: &dyn Fn(SymId) -> Dual) -> (Dual, f64) {
    let reach = pool.reachable(&[root]);
    let mut v = vec![d(0.0, 0.0); reach.len()];
    let mut scale: f64 = 0.0;
    for i in 0..reach.len() {
        if !reach[i] {
            continue;
        }
        let g = |e: ExprId| v[e.index()];
        let r = match pool.node(ExprId(i as u32)) {
            Node::Const(c) => d(c, 0.0),
            Node::Sym(s) => value(s),
            Node::Add(a, b) => d(g(a).re + g(b).re, g(a).eps + g(b).eps),
            Node::Sub(a, b) => d(g(a).re - g(b).re, g(a).eps - g(b).eps),
            Node::Mul(a, b) => d(g(a).re * g(b).re, g(a).eps * g(b).re + g(a).re * g(b).eps),
            Node::Div(a, b) => {
                let (x, y) = (g(a), g(b));
                d(x.re / y.re, (x.eps * y.re - x.re * y.eps) / (y.re * y.re))
            }
            Node::Pow(a, b) => dual_pow(g(a), g(b), pool.as_const(b).is_some()),
            Node::Neg(a) => d(-g(a).re, -g(a).eps),
            Node::Call(f, a) => dual_call(f, g(a)),
            Node::XLogY(a, b) => {
                let (x, y) = (g(a), g(b));
                let mut eps = if x.eps == 0.0 { 0.0 } else { xlogy(x.eps, y.re) };
                if y.eps != 0.0 {
                    eps += x.re * y.eps / y.re;
                }
                d(xlogy(x.re, y.re), eps)
            }
            Node::Call2(f, a, b) => {
                let (x, y) = (g(a), g(b));
                match f {
                    sepfit_expr::Func2::Atan2 => {
                        let r2 = x.re * x.re + y.re * y.re;
                        d(x.re.atan2(y.re), (y.re * x.eps - x.re * y.eps) / r2)
                    }
                    // the subgradient at a tie is the second argument's
                    sepfit_expr::Func2::Max => if x.re > y.re || x.re.is_nan() { x } else { y },
                    sepfit_expr::Func2::Min => if x.re < y.re || x.re.is_nan() { x } else { y },
                }
            }
        };
        for x in [r.re, r.eps] {
            if x.is_finite() {
                scale = scale.max(x.abs());
            }
        }
        v[i] = r;
    }
    (v[root.index()], scale)
}

/// Whether some node of `root` overflows to ±∞ at the point.
fn overflows(pool: &Pool, root: ExprId, value: &dyn Fn(SymId) -> f64) -> bool {
    let reach = pool.reachable(&[root]);
    reach.iter().enumerate().any(|(i, &r)| r && pool.eval(ExprId(i as u32), value).is_infinite())
}

/// The largest finite magnitude among the values of the nodes of `root`.
fn largest(pool: &Pool, root: ExprId, value: &dyn Fn(SymId) -> f64) -> f64 {
    let reach = pool.reachable(&[root]);
    let mut best: f64 = 0.0;
    for (i, &r) in reach.iter().enumerate() {
        if r {
            let v = pool.eval(ExprId(i as u32), value);
            if v.is_finite() {
                best = best.max(v.abs());
            }
        }
    }
    best
}

/// Runs every oracle of the model path on one fuzz input.
pub fn check(data: &[u8]) {
    let Some((text, cols)) = decode(data) else { return };
    check_formula(&text, &cols, hash(data));
}

/// Runs every oracle on one formula text with the given columns; `seed` picks the values.
pub fn check_formula(text: &str, cols: &[&str], seed: u64) {
    let m = match ModelFormula::parse(text, cols) {
        Ok(m) => m,
        Err(e) => {
            check_diagnostic(&e, text, "model formula");
            return;
        }
    };
    let _ = m.latex(m.rhs());
    let _ = m.latex(m.lhs());
    let mut rng = Rng::new(seed);
    compiled_equals_reference(&m, text, &mut rng);
    structure_adds_up(&m, text, &mut rng);
    derivatives_match(&m, text, &mut rng);
    printing_round_trips(&m, text, cols, &mut rng);
}

/// Every output the fitter compiles, compiled and by the reference evaluator: the same bits.
fn compiled_equals_reference(m: &ModelFormula, text: &str, rng: &mut Rng) {
    let pool = m.pool();
    let params = m.param_syms();
    let columns = m.column_syms();
    let mut outs = vec![m.rhs(), m.lhs()];
    outs.extend(m.gradient());
    outs.extend(m.basis());
    outs.extend(m.offset());
    outs.extend(m.basis_derivatives().iter().map(|t| t.2));
    outs.extend(m.offset_derivatives().iter().map(|t| t.1));
    outs.truncate(64);
    let prog = match Program::new(pool, &outs, &params, &columns) {
        Ok(p) => p,
        Err(e) => panic!("{text:?}: parsed but does not compile: {e}"),
    };
    let rows = 1 + rng.below(40);
    let pv: Vec<f64> = params.iter().map(|_| rng.wild()).collect();
    let cv: Vec<Vec<f64>> = columns.iter().map(|_| (0..rows).map(|_| rng.wild()).collect()).collect();
    let colrefs: Vec<&[f64]> = cv.iter().map(|c| c.as_slice()).collect();
    let mut bufs = vec![vec![0.0; rows]; outs.len()];
    {
        let mut slices: Vec<&mut [f64]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
        if let Err(e) = prog.evaluator().eval(&pv, &colrefs, &mut slices) {
            panic!("{text:?}: compiled program does not evaluate: {e}");
        }
    }
    for row in 0..rows {
        let env = |s: SymId| {
            if let Some(i) = params.iter().position(|&p| p == s) {
                pv[i]
            } else if let Some(j) = columns.iter().position(|&c| c == s) {
                cv[j][row]
            } else {
                panic!("symbol {} is neither a parameter nor a column", pool.symbol_info(s).name)
            }
        };
        for (o, &e) in outs.iter().enumerate() {
            let r = pool.eval(e, &env);
            let c = bufs[o][row];
            // The compiler divides by a data-independent s as v*(1/s) where 1/s is normal
            // (`compile::div_by_invariant`, one rounding that conditioning may amplify): the
            // reference with that rewrite must give the compiled bits exactly.
            let r2 = eval_like_compiled(pool, e, &columns, &env);
            let close = same_bits(r2, c);
            assert!(
                same_bits(r, c) || close,
                "{text:?}: output {o} `{}` in row {row}: compiled {c:e} vs reference {r:e} (with v*(1/s): {r2:e})\n  params {pv:?}\n  columns {:?}",
                pool.to_plain(e),
                cv.iter().map(|c| c[row]).collect::<Vec<_>>()
            );
        }
    }
}

/// Moderate values for the derivative and structure oracles.
fn moderate(rng: &mut Rng) -> f64 {
    let v = rng.range(0.2, 2.5);
    if rng.below(3) == 0 { -v } else { v }
}

/// Values at a moderate point: parameters, then columns, by symbol.
struct Point {
    syms: Vec<SymId>,
    vals: Vec<f64>,
}

impl Point {
    fn new(m: &ModelFormula, rng: &mut Rng) -> Point {
        let mut syms = m.param_syms();
        syms.extend(m.column_syms());
        let vals = syms.iter().map(|_| moderate(rng)).collect();
        Point { syms, vals }
    }
    fn get(&self, s: SymId) -> f64 {
        self.syms.iter().position(|&t| t == s).map_or(0.0, |i| self.vals[i])
    }
    fn by_name(&self, pool: &Pool, name: &str) -> Option<f64> {
        self.syms.iter().position(|&t| pool.symbol_info(t).name == name).map(|i| self.vals[i])
    }
}

/// Whether the value of `e` jumps (by more than 1e-6 relative) when every input moves by
/// 1e-12 relative: rounding noise amplified, where two forms of one function may differ.
fn erratic(pool: &Pool, e: ExprId, pt: &Point) -> bool {
    let v0 = pool.eval(e, &|s: SymId| pt.get(s));
    let mut r = Rng::new(0x5eed);
    (0..4).any(|_| {
        let moved: Vec<f64> = pt.vals.iter().map(|v| v * (1.0 + 1e-12 * (r.range(0.0, 2.0) - 1.0))).collect();
        let v = pool.eval(e, &|s: SymId| pt.syms.iter().position(|&t| t == s).map_or(0.0, |i| moved[i]));
        let same = (v - v0).abs() <= 1e-6 * v0.abs().max(v.abs()).max(1.0);
        !same
    })
}

/// f = Σ a_j φ_j + φ_0 at a moderate point.
fn structure_adds_up(m: &ModelFormula, text: &str, rng: &mut Rng) {
    let pool = m.pool();
    let pt = Point::new(m, rng);
    let env = |s: SymId| pt.get(s);
    let f = pool.eval(m.rhs(), &env);
    let linear: Vec<&sepfit_expr::Parameter> = m.linear_params().collect();
    // Known (fuzz/README.md, bug 4, being fixed): a parameter whose derivative simplifies to 0
    // (`sign(a)`) is taken as linear with basis 0, and its part of f is lost.
    let params = m.params();
    if params.iter().zip(m.gradient()).any(|(p, &g)| p.linear && pool.as_const(g) == Some(0.0)) {
        return;
    }
    assert_eq!(linear.len(), m.basis().len(), "{text:?}: {} linear parameters but {} basis functions", linear.len(), m.basis().len());
    let mut sum = m.offset().map_or(0.0, |o| pool.eval(o, &env));
    let mut scale = sum.abs() + largest(pool, m.rhs(), &env);
    for (p, &phi) in linear.iter().zip(m.basis()) {
        let term = pt.get(p.sym) * pool.eval(phi, &env);
        scale += term.abs() + largest(pool, phi, &env);
        sum += term;
    }
    if !f.is_finite() || !sum.is_finite() || scale > 1e12 {
        return;
    }
    assert!(
        (f - sum).abs() <= 1e-9 * scale.max(1.0),
        "{text:?}: f = {f:e} but Σ a_j φ_j + φ_0 = {sum:e} at {:?}",
        pt.vals
    );
}

/// Symbolic derivatives (the model's gradient, ∂φ_j/∂b_k, and derivatives in a column) against
/// dual numbers and Richardson-extrapolated central differences.
fn derivatives_match(m: &ModelFormula, text: &str, rng: &mut Rng) {
    let mut pool = m.pool().clone();
    let pt = Point::new(m, rng);
    let env = |s: SymId| pt.get(s);
    let mut cases: Vec<(ExprId, SymId, ExprId)> = Vec::new();
    for (i, p) in m.params().iter().enumerate().take(8) {
        cases.push((m.rhs(), p.sym, m.gradient()[i]));
    }
    let nonlinear = m.nonlinear_syms();
    for &(j, k, e) in m.basis_derivatives().iter().take(8) {
        cases.push((m.basis()[j], nonlinear[k], e));
    }
    // Zero derivatives of the basis are left out of basis_derivatives: check that they are zero.
    for (j, &phi) in m.basis().iter().enumerate().take(4) {
        for (k, &b) in nonlinear.iter().enumerate().take(4) {
            if !m.basis_derivatives().iter().any(|t| t.0 == j && t.1 == k) {
                let zero = pool.constant(0.0);
                cases.push((phi, b, zero));
            }
        }
    }
    if let Some(&c) = m.column_syms().first() {
        let dc = pool.diff(m.rhs(), c);
        cases.push((m.rhs(), c, dc));
    }
    for (f, wrt, df) in cases {
        let f0 = pool.eval(f, &env);
        if !f0.is_finite() || f0.abs() > 1e8 {
            continue;
        }
        let sym = pool.eval(df, &env);
        let (dual, dscale) = eval_dual(&pool, f, &|s| d(pt.get(s), if s == wrt { 1.0 } else { 0.0 }));
        assert!(same_bits(dual.re, f0), "{text:?}: dual evaluation {} vs reference {f0}", dual.re);
        let name = &pool.symbol_info(wrt).name;
        if dual.eps.is_finite() && sym.is_finite() {
            let scale = dscale.max(largest(&pool, df, &env)).max(1.0);
            if scale < 1e10 {
                assert!(
                    (sym - dual.eps).abs() <= 1e-9 * scale,
                    "{text:?}: d/d{name} of `{}` at {:?}: symbolic `{}` = {sym:e} vs dual numbers {:e}",
                    pool.to_plain(f),
                    pt.vals,
                    pool.to_plain(df),
                    dual.eps
                );
            }
        }
        // Central differences, Richardson-extrapolated, where the function is smooth.
        let x0 = pt.get(wrt);
        let at = |h: f64| pool.eval(f, &|s| if s == wrt { x0 + h } else { pt.get(s) });
        let h = 1e-4 * x0.abs().max(1.0);
        let d1 = (at(h) - at(-h)) / (2.0 * h);
        let d2 = (at(h / 2.0) - at(-h / 2.0)) / h;
        let d4 = (at(h / 4.0) - at(-h / 4.0)) / (h / 2.0);
        let (r1, r2) = ((4.0 * d2 - d1) / 3.0, (4.0 * d4 - d2) / 3.0);
        let smooth = d1.is_finite() && d2.is_finite() && d4.is_finite() && (r1 - r2).abs() <= 1e-6 * r2.abs().max(1.0);
        let noise = 1e-16 * dscale.max(1.0) / h;
        if smooth && noise < 1e-8 && sym.is_finite() {
            let rich = (16.0 * r2 - r1) / 15.0;
            let rel = (rich - sym).abs() / sym.abs().max(rich.abs()).max(1.0);
            assert!(
                rel <= 1e-5,
                "{text:?}: d/d{name} of `{}` at {:?}: symbolic `{}` = {sym:e} vs central differences {rich:e}",
                pool.to_plain(f),
                pt.vals,
                pool.to_plain(df)
            );
        }
    }
}

/// Whether `root` has a subexpression free of symbols whose value is not finite.
fn holds_non_finite_constant(pool: &Pool, root: ExprId) -> bool {
    let reach = pool.reachable(&[root]);
    (0..reach.len()).any(|i| {
        let e = ExprId(i as u32);
        reach[i] && pool.free_symbols(e).is_empty() && !pool.eval(e, &|_| f64::NAN).is_finite()
    })
}

/// The printed right-hand side (and printed derivatives) parse back to the same function.
fn printing_round_trips(m: &ModelFormula, text: &str, cols: &[&str], rng: &mut Rng) {
    let pool = m.pool();
    let pt = Point::new(m, rng);
    let lhs = m.print(m.lhs());
    let mut exprs = vec![m.rhs()];
    exprs.extend(m.gradient().iter().take(4));
    for e in exprs {
        let printed = m.print(e);
        let src = format!("{lhs} ~ {printed}");
        let m2 = match ModelFormula::parse(&src, cols) {
            Ok(m2) => m2,
            // Not a bug (the non-finite-constant class, as in the loss oracle): a derivative
            // holding a constant subexpression that is not finite (d/da of `a/1e-310` is
            // 1e310 = inf, printed `1/1e-310`; d/dq of `xlogy(1e300*q, -2)` holds
            // `1e300*log(-2)`, NaN) has no parseable form: the language has no such constants.
            Err(_) if e != m.rhs() && holds_non_finite_constant(pool, e) => continue,
            Err(err) => panic!("{text:?}: printed form {src:?} does not parse: {}", err.render(&src)),
        };
        // Same values at a moderate point (symbols matched by name).
        let env = |s: SymId| pt.get(s);
        let p2 = m2.pool();
        let env2 = |s: SymId| pt.by_name(pool, &p2.symbol_info(s).name).unwrap_or(f64::NAN);
        let v1 = pool.eval(e, &env);
        let v2 = p2.eval(m2.rhs(), &env2);
        let scale = largest(pool, e, &env).max(largest(p2, m2.rhs(), &env2)).max(1.0);
        // NaN against a number: `u - u` folds to 0 on reparse where u was two distinct nodes printing alike.
        // An intermediate that overflows in either form (the printed form groups products and
        // quotients differently, so the infinity appears elsewhere or not at all): `a/inf` is 0
        // in one, a number or an infinity in the other. `-(1/1e-310)*(q/1e-310)/(t/1e-310)`
        // gave -0 (its true value, about -1e310·q/t, is beyond the range of f64) and its
        // printed form `-q/(1e-310*(1e-310*t/1e-310))` gave -inf.
        let ok = v1.is_nan()
            || v2.is_nan()
            || v1 == v2
            || (v1 - v2).abs() <= 1e-9 * scale
            || scale > 1e100
            || overflows(pool, e, &env)
            || overflows(p2, m2.rhs(), &env2);
        // Not a bug: the original is ill-conditioned at this point (its value is rounding noise
        // amplified: two equal terms computed by different roundings cancel, and the difference
        // is multiplied by a huge factor; the printed form may round them alike and give 0).
        // Then its value jumps under perturbations of the inputs at the rounding level.
        if !ok && erratic(pool, e, &pt) {
            continue;
        }
        assert!(ok, "{text:?}: `{printed}` reparsed gives {v2:e}, the original expression {v1:e} at {:?}", pt.vals);
        let l2 = p2.eval(m2.lhs(), &env2);
        let l1 = pool.eval(m.lhs(), &env);
        assert!(same_bits(l1, l2) || (l1 - l2).abs() <= 1e-12 * l1.abs(), "{text:?}: lhs `{lhs}` reparsed gives {l2:e}, was {l1:e}");
    }
}

/// `Pool::eval` with the compiler's rewrite of `v/s` (`v*(1/s)` where `1/s` is normal,
/// [`div_by_invariant`]) where `v` depends on a data column and `s` does not.
fn eval_like_compiled(pool: &Pool, root: ExprId, columns: &[SymId], value: &dyn Fn(SymId) -> f64) -> f64 {
    let reach = pool.reachable(&[root]);
    let mut v = vec![0.0; reach.len()];
    let mut vary = vec![false; reach.len()];
    for i in 0..reach.len() {
        if !reach[i] {
            continue;
        }
        let node = pool.node(ExprId(i as u32));
        vary[i] = match node {
            Node::Sym(s) => columns.contains(&s),
            _ => node.children().any(|c| vary[c.index()]),
        };
        let g = |e: ExprId| v[e.index()];
        v[i] = match node {
            Node::Const(c) => c,
            Node::Sym(s) => value(s),
            Node::Add(a, b) => g(a) + g(b),
            Node::Sub(a, b) => g(a) - g(b),
            Node::Mul(a, b) => g(a) * g(b),
            Node::Div(a, b) if vary[a.index()] && !vary[b.index()] => div_by_invariant(g(a), g(b)),
            Node::Div(a, b) => g(a) / g(b),
            Node::Pow(a, b) => pow(g(a), g(b)),
            Node::Neg(a) => -g(a),
            Node::Call(f, a) => f.apply(g(a)),
            Node::XLogY(a, b) => xlogy(g(a), g(b)),
            Node::Call2(f, a, b) => f.apply(g(a), g(b)),
        };
    }
    v[root.index()]
}
