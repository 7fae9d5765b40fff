//! The loss path: `matrix::LossFormula` → gradients, printing, evaluation.

use crate::{Rng, check_diagnostic, hash};
use sepfit_expr::matrix::graph::rc;
use sepfit_expr::matrix::{LossError, LossFormula, MId, Mat, Values};
use sepfit_expr::{Dim, Shape};

/// Declarations the fuzz input chooses from (byte 0, low 3 bits; 7 = the declarations are the
/// input's first line).
pub const DECLS: [&str; 7] = [
    "A: n x m, B: m x k, x: m, y: n, s: scalar",
    "X: n x d, w: d, y: n",
    "x: n, a: n, s",
    "S: n x n, v: n, c: scalar",
    "",
    "X: matrix(n, d); w: vector(d); b: scalar",
    "M: 3 x 3, u: 3, t",
];

/// The most entries any node may have for the values to be evaluated.
const MAX_ENTRIES: usize = 4096;

/// Decodes a fuzz input into (loss text, declarations).
pub fn decode(data: &[u8]) -> Option<(String, String)> {
    let (&head, rest) = data.split_first()?;
    let text = String::from_utf8_lossy(rest).into_owned();
    let k = (head & 7) as usize;
    if k < DECLS.len() {
        Some((text, DECLS[k].to_string()))
    } else {
        let (decls, src) = text.split_once('\n').unwrap_or(("", &text));
        Some((src.to_string(), decls.to_string()))
    }
}

/// Runs every oracle of the loss path on one fuzz input.
pub fn check(data: &[u8]) {
    let Some((src, decls)) = decode(data) else { return };
    check_loss(&src, &decls, hash(data));
}

fn size(d: Dim, sizes: &[usize]) -> Option<usize> {
    match d {
        Dim::Fixed(k) => Some(k),
        Dim::Sym(i) => sizes.get(i as usize).copied(),
        Dim::Obs => None,
    }
}

fn entries(s: Shape, sizes: &[usize]) -> Option<usize> {
    let (r, c) = rc(s);
    size(r, sizes)?.checked_mul(size(c, sizes)?)
}

/// Runs every oracle on one loss text and its declarations; `seed` picks sizes and values.
pub fn check_loss(src: &str, decls: &str, seed: u64) {
    let mut f = match LossFormula::new(src, decls, None) {
        Ok(f) => f,
        Err(LossError::Formula(d)) => return check_diagnostic(&d, src, "loss formula"),
        Err(LossError::Declarations(d)) => return check_diagnostic(&d, decls, "declarations"),
        Err(LossError::Value(_)) => return,
    };
    let root = f.root();
    let _ = (f.ascii(root), f.unicode(root), f.latex(root));
    let mut rng = Rng::new(seed);
    let vars = f.variables();
    let names: Vec<&str> = vars.iter().map(String::as_str).take(3).collect();
    // Gradients exist for a scalar loss; an error is an answer, not a failure.
    let grads: Vec<(String, MId)> = if f.graph.shape(root).is_scalar() {
        names.iter().filter_map(|w| f.gradient(w).ok().map(|g| (w.to_string(), g))).collect()
    } else {
        Vec::new()
    };
    let printed: Vec<String> = grads.iter().map(|(_, g)| printed_with_definitions(&f, *g)).collect();
    for (_, g) in &grads {
        let _ = (f.unicode(*g), f.latex(*g));
    }
    // Every printed gradient parses back (with the same declarations).
    let mut reparsed = Vec::new();
    for ((w, _), text) in grads.iter().zip(&printed) {
        match LossFormula::new(text, decls, None) {
            Ok(g2) => reparsed.push(g2),
            // Known (fuzz/README.md, bug 3, being fixed): `ones(n)` prints a dimension name that
            // the parser reads as a variable.
            Err(_) if text.contains("ones(") => return,
            // Known (fuzz/README.md, bug 10, open): a gradient holding two constants whose
            // product overflows (`1e308*1e308*x`, kept apart by the simplifier on purpose)
            // prints a constant expression the parser refuses.
            Err(e) if e.to_string().contains("overflows to infinity") => return,
            Err(e) => panic!("loss {src:?} ({decls}): gradient in {w} printed as {text:?} does not parse: {e}"),
        }
    }
    // Values, if every node is small at random small sizes.
    let sizes: Vec<usize> = (0..f.graph.dims.len()).map(|_| 1 + rng.below(4)).collect();
    for i in 0..f.graph.len() {
        match entries(f.graph.shape(MId(i as u32)), &sizes) {
            Some(n) if n <= MAX_ENTRIES => {}
            _ => return,
        }
    }
    let mut v = Values::new();
    for var in &f.graph.vars {
        let (r, c) = rc(var.shape);
        let (Some(r), Some(c)) = (size(r, &sizes), size(c, &sizes)) else { return };
        // a declared variable the loss does not use is not a node, so check its size here
        // (`x: 888888888` once made the oracle allocate 7 GB)
        if r.saturating_mul(c) > MAX_ENTRIES {
            return;
        }
        v.insert(var.name.clone(), Mat { rows: r, cols: c, data: (0..r * c).map(|_| rng.range(-1.0, 1.0)).collect() });
    }
    let mut ids = vec![root];
    ids.extend(grads.iter().map(|g| g.1));
    let Ok(fused) = f.eval(&ids, &v) else { return };
    if let Ok(plain) = f.graph.eval_unfused(&ids, &v) {
        for (k, (p, q)) in fused.iter().zip(&plain).enumerate() {
            assert_eq!((p.rows, p.cols), (q.rows, q.cols), "loss {src:?}: fused and plain shapes of output {k} differ");
            for (x, y) in p.data.iter().zip(&q.data) {
                let ok = (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0) || (x.is_nan() && y.is_nan()) || x == y;
                assert!(ok, "loss {src:?}: output {k}: fused {x:e} vs plain {y:e}");
            }
        }
    }
    let f0 = fused[0].data.first().copied().unwrap_or(f64::NAN);
    // Every node's value at the point, computed once and only when a gradient is not finite
    // (evaluating node by node made the oracle quadratic in the graph's size).
    let mut nodes: Option<Vec<Option<Mat>>> = None;
    for (k, ((w, _), g2)) in grads.iter().zip(&reparsed).enumerate() {
        let gv = &fused[k + 1];
        let x0 = &v[w];
        assert_eq!((gv.rows, gv.cols), (x0.rows, x0.cols), "loss {src:?}: gradient in {w} has the wrong size");
        // The reparsed print gives the same numbers.
        if let Ok(r) = g2.eval(&[g2.root()], &v) {
            let r = &r[0];
            let same_shape = (r.rows, r.cols) == (gv.rows, gv.cols) || (r.data.len() == 1 && gv.data.iter().all(|&x| x == r.data[0]));
            assert!(same_shape, "loss {src:?}: printed gradient in {w} {:?} evaluates to {}x{}, the gradient is {}x{}", printed[k], r.rows, r.cols, gv.rows, gv.cols);
            for (i, &a) in gv.data.iter().enumerate() {
                let b = if r.data.len() == 1 { r.data[0] } else { r.data[i] };
                let ok = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
                assert!(ok, "loss {src:?}: gradient in {w}[{i}] = {a:e}, its printed form {:?} gives {b:e}", printed[k]);
            }
        }
        // Central differences, Richardson-extrapolated, where smooth.
        if !f0.is_finite() || f0.abs() > 1e8 {
            continue;
        }
        for idx in 0..x0.data.len().min(16) {
            let h = 1e-3 * x0.data[idx].abs().max(1.0);
            let at = |t: f64| {
                let mut u = v.clone();
                u.get_mut(w).unwrap().data[idx] += t;
                f.eval(&[root], &u).ok().and_then(|m| m[0].data.first().copied()).unwrap_or(f64::NAN)
            };
            let d1 = (at(h) - at(-h)) / (2.0 * h);
            let d2 = (at(h / 2.0) - at(-h / 2.0)) / h;
            let d4 = (at(h / 4.0) - at(-h / 4.0)) / (h / 2.0);
            let (r1, r2) = ((4.0 * d2 - d1) / 3.0, (4.0 * d4 - d2) / 3.0);
            let fd = (16.0 * r2 - r1) / 15.0;
            if !fd.is_finite() || (r1 - r2).abs() > 1e-6 * r2.abs().max(1.0) || (d1 - d2).abs() > 1e-3 * d2.abs().max(1.0) {
                continue;
            }
            let g = gv.data[idx];
            if fd == 0.0 && g != 0.0 && [h, -h, h / 2.0, -h / 2.0].iter().all(|&t| at(t) == f0) && {
                let nodes = nodes.get_or_insert_with(|| node_values(&f, &v));
                absorbs(nodes)
            } {
                // The loss does not change at all under the perturbation because an
                // intermediate is so large that the change is absorbed by rounding
                // (`cos(1e308 + y.^7)`): differences carry no information there.
                continue;
            }
            let inf_const = (0..f.graph.len()).any(|i| f.graph.as_const(MId(i as u32)).is_some_and(|c| !c.is_finite()));
            if !g.is_finite() && inf_const {
                continue; // known: a loss holding a non-finite constant (`pi/0`, README.md)
            }
            if !g.is_finite() && {
                let nodes = nodes.get_or_insert_with(|| node_values(&f, &v));
                at_singular_point(&f, nodes) || overflows(nodes)
            } {
                // The chain rule does not apply where an elementary function is not
                // differentiable at its argument (README.md, "Not bugs").
                continue;
            }
            let err = (g - fd).abs() / g.abs().max(fd.abs()).max(1.0);
            assert!(
                err <= 1e-5 || !g.is_finite() && f0.abs() > 1e6,
                "loss {src:?} ({decls}): d/d{w}[{idx}]: derived {g:e}, central differences {fd:e}, relative error {err:e}\n  gradient: {}",
                printed[k]
            );
        }
    }
}

/// The value of every node of the graph at the point (`None` where it cannot be evaluated):
/// one evaluation of the whole graph, or node by node where that fails.
fn node_values(f: &LossFormula, v: &Values) -> Vec<Option<Mat>> {
    let all: Vec<MId> = (0..f.graph.len()).map(|i| MId(i as u32)).collect();
    match f.graph.eval_unfused(&all, v) {
        Ok(m) => m.into_iter().map(Some).collect(),
        Err(_) => all.iter().map(|&a| f.eval(&[a], v).ok().and_then(|mut m| m.pop())).collect(),
    }
}

/// Whether some node of the graph applies a function at a point where its derivative is
/// undefined: `sqrt`, `log`, `log10`, `abs` or `sign` of an exact zero, a division by zero,
/// a power of a zero base, or a power of a negative base whose exponent varies (`u^v` is real
/// there only at integer `v`, so `∂/∂v = u^v·log(u)` is NaN, as JAX's is, although a loss whose
/// exponent rounds to an integer looks smooth to differences). There the symbolic gradient
/// may be `inf·0 = NaN` although differences of an underflowing loss look smooth.
fn at_singular_point(f: &LossFormula, nodes: &[Option<Mat>]) -> bool {
    use sepfit_expr::Func;
    use sepfit_expr::matrix::graph::MNode;
    let value = |a: MId| nodes.get(a.index()).and_then(Option::as_ref);
    let variable = |a: MId| f.graph.as_const(a).is_none();
    let has = |a: MId, p: fn(f64) -> bool| variable(a) && value(a).is_some_and(|m| m.data.iter().any(|&x| p(x)));
    (0..f.graph.len()).any(|i| match f.graph.node(MId(i as u32)) {
        MNode::Call(Func::Sqrt | Func::Log | Func::Log10 | Func::Abs | Func::Sign, a) | MNode::Div(_, a) | MNode::XLogY(_, a) => {
            has(a, |x| x == 0.0)
        }
        MNode::Pow(a, e) => has(a, |x| x == 0.0) || (variable(e) && has(a, |x| x < 0.0)),
        _ => false,
    })
}

/// Whether some node of the graph holds an entry so large (beyond 1e12) that adding a small
/// perturbation to it can vanish in rounding.
fn absorbs(nodes: &[Option<Mat>]) -> bool {
    nodes.iter().flatten().any(|m| m.data.iter().any(|x| x.abs() > 1e12))
}

/// Whether some node of the graph overflows (an entry ±∞) at the point: a loss whose
/// intermediates overflow can still be finite (`norm2(v)^-4` is 0 where `norm2(v)` is ∞), but
/// its gradient then holds `0·∞`; that is the arithmetic's limit, not a wrong rule.
fn overflows(nodes: &[Option<Mat>]) -> bool {
    nodes.iter().flatten().any(|m| m.data.iter().any(|x| x.is_infinite()))
}

/// The gradient's ASCII form preceded by the definitions it refers to, as a loss text.
pub fn printed_with_definitions(f: &LossFormula, g: MId) -> String {
    let mut text = String::new();
    for (name, id) in f.definitions_used(g) {
        text.push_str(&format!("{name} = {}; ", f.ascii(id)));
    }
    text.push_str(&f.ascii(g));
    text
}
