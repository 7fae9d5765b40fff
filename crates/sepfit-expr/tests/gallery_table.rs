//! The gallery table of `docs/gallery.md`: every row's printed form (plain Unicode) is
//! asserted here, checked against Richardson central differences at random points (relative
//! error ≤ 1e-7: of the loss for gradients and Jacobians, of the gradient for Hessians), its
//! ASCII form parsed back to the same values, and the row must appear verbatim in
//! `docs/gallery.md`. Regenerate the Markdown rows with
//! `cargo test -p sepfit-expr --test gallery_table -- --ignored --nocapture`.

use sepfit_expr::matrix::{LossFormula, MId, Mat, Values};

/// What a row derives.
#[derive(Clone, Copy, PartialEq)]
enum K {
    /// ∇ (scalar loss)
    G,
    /// ∇² (scalar loss, vector or scalar variable)
    H,
    /// ∂f/∂x (vector expression)
    J,
}

/// (source, loss, declarations, wrt, kind, printed form)
type Row = (&'static str, &'static str, &'static str, &'static str, K, &'static str);

const ROWS: &[Row] = &include!("gallery_rows.in");

/// Random values for every variable: entries in [0.5, 1.5] (logs, square roots and quotients
/// stay defined), matrices with 3 added on the diagonal (square ones well conditioned with a
/// positive determinant, and `Xᵀ·X` of a tall one well conditioned); the symbolic dimensions decreasing in order of declaration (5 or 6, then one
/// less each, at least 2), so `Xᵀ·X` of an `n×m` matrix is invertible.
fn values(f: &LossFormula, seed: u64) -> Values {
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f64 / (1u64 << 53) as f64
    };
    let dims: Vec<usize> = (0..f.graph.dims.len()).map(|i| (5 + (seed as usize % 2)).saturating_sub(i).max(2)).collect();
    let size = |d: sepfit_expr::Dim| match d {
        sepfit_expr::Dim::Sym(i) => dims[i as usize],
        sepfit_expr::Dim::Fixed(k) => k,
        sepfit_expr::Dim::Obs => 3,
    };
    let mut v = Values::new();
    for var in &f.graph.vars {
        let (r, c) = sepfit_expr::matrix::graph::rc(var.shape);
        let (r, c) = (size(r), size(c));
        let mut m = Mat { rows: r, cols: c, data: (0..r * c).map(|_| 0.5 + next()).collect() };
        if r > 1 && c > 1 {
            for k in 0..r.min(c) {
                m.data[k * r + k] += 3.0;
            }
        }
        v.insert(var.name.clone(), m);
    }
    v
}

/// Derives a row: the printed node and the node checked against it.
fn derive(f: &mut LossFormula, wrt: &str, kind: K) -> (MId, Option<MId>) {
    match kind {
        K::G => (f.gradient(wrt).unwrap(), None),
        K::J => (f.jacobian(wrt).unwrap(), None),
        K::H => {
            let (g, h) = f.hessian(wrt).unwrap();
            (h, Some(g))
        }
    }
}

fn markdown(row: &Row, f: &LossFormula, id: MId) -> String {
    let (what, src, decls, wrt, kind, _) = row;
    let defs: Vec<String> = f.definitions_used(id).iter().map(|(n, d)| format!("`{n} = {}`", f.unicode(*d))).collect();
    let k = match kind {
        K::G => format!("∇_{wrt}"),
        K::H => format!("∇²_{wrt}"),
        K::J => format!("∂f/∂{wrt}"),
    };
    format!("| {what} | `{src}` | `{decls}` | {k} | `{}` | {} |", f.unicode(id), defs.join(", "))
}

#[test]
fn every_gallery_row_is_printed_as_shown_and_correct() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/gallery.md")).unwrap();
    assert!(ROWS.len() >= 60, "{} rows", ROWS.len());
    for row in ROWS {
        let (_, src, decls, wrt, kind, expect) = *row;
        let mut f = LossFormula::new(src, decls, None).unwrap_or_else(|e| panic!("{src}: {e}"));
        let (id, grad) = derive(&mut f, wrt, kind);
        assert_eq!(f.unicode(id), expect, "{src} in {wrt}");
        let line = markdown(row, &f, id);
        assert!(doc.contains(&line), "docs/gallery.md lacks the row\n{line}");
        for seed in 1..4u64 {
            let v = values(&f, seed);
            let err = match (kind, grad) {
                (K::G, _) => f.check_gradient(&[wrt], &[id], &v, 6, seed).unwrap(),
                (K::J, _) => f.check_jacobian(wrt, id, &v, 6, seed).unwrap(),
                (K::H, Some(g)) => f.check_hessian(wrt, g, id, &v, 6, seed).unwrap(),
                (K::H, None) => unreachable!(),
            };
            assert!(err <= 1e-7, "{src} in {wrt}: {} off by {err:e}", f.unicode(id));
            // the ASCII form parses back to the same numbers
            let prog = f.ascii_program(id);
            let back = LossFormula::new(&prog, decls, None).unwrap_or_else(|e| panic!("{prog}: {e}"));
            let (a, b) = (f.eval(&[id], &v).unwrap().remove(0), back.eval(&[back.root()], &v).unwrap().remove(0));
            for (x, y) in a.data.iter().zip(&b.data) {
                assert!((x - y).abs() <= 1e-10 * x.abs().max(1.0), "{src}: printed `{prog}` gives {y}, not {x}");
            }
        }
    }
}

#[test]
#[ignore]
fn print_gallery_rows() {
    for row in ROWS {
        let (_, src, decls, wrt, kind, _) = *row;
        let mut f = LossFormula::new(src, decls, None).unwrap_or_else(|e| panic!("{src}: {e}"));
        let (id, _) = derive(&mut f, wrt, kind);
        println!("ROW\t{}\t{}", f.unicode(id), markdown(row, &f, id));
    }
}
