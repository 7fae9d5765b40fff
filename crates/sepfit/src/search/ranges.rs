//! Search ranges for the nonlinear parameters, derived from the formula's structure and the
//! data.
//!
//! Two kinds of parameter are told apart:
//!
//! * a **location**: a parameter added to (or subtracted from) a pure data expression,
//!   `x − m`, `x + s`. Its values are those of the expression: the range of the data
//!   (a *centre* — the difference is then squared, divided by a width or taken absolutely, as
//!   in a peak — is searched inside the data's range, widened by a quarter of its span; a
//!   *shift* also beyond it, on a logarithmic scale out to a hundred times the data's size);
//! * a **magnitude**: every other parameter. Its unit `[b] = Π_c [x_c]^{e_c}` (from
//!   [`super::dimensions`]) says how its size relates to the data's: each column `x_c`
//!   contributes sizes from its spacing `h_c` (the median gap between its sorted distinct
//!   values) to its extent `L_c = max(span, max|x_c|)`, the response its typical size. A rate
//!   `exp(−k·t)` (`e = −1`) gets `k ∈ [1/(100·L), 3/h]`, a timescale `t/τ` or a width
//!   `τ ∈ [h/3, 100·L]`, a dimensionless parameter (an exponent, a constant in an argument)
//!   `[0.01, 100]`. Magnitudes are searched in log space, with both signs unless the model
//!   cannot tell the sign apart (then positive only).
//!
//! User bounds override the structure: two finite bounds replace the range; one bound cuts it.

use super::{RangeKind, SearchRange};
use sepfit_expr::{ExprId, ModelFormula, Node, SymbolKind};

/// Typical sizes of one unit: its spacing and its extent.
#[derive(Clone, Copy, Debug)]
struct UnitSize {
    small: f64,
    large: f64,
}

fn column_size(values: &[f64]) -> Option<UnitSize> {
    let step = values.len().div_ceil(100_000).max(1);
    let mut v: Vec<f64> = values.iter().step_by(step).copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    v.dedup();
    let (lo, hi) = (v[0], v[v.len() - 1]);
    let large = (hi - lo).max(lo.abs()).max(hi.abs());
    if !(large > 0.0) {
        return None;
    }
    let mut gaps: Vec<f64> = v.windows(2).map(|w| w[1] - w[0]).filter(|g| *g > 0.0).collect();
    let small = if gaps.is_empty() {
        large
    } else {
        let mid = gaps.len() / 2;
        *gaps.select_nth_unstable_by(mid, f64::total_cmp).1
    };
    Some(UnitSize { small: small.min(large), large })
}

fn response_size(y: &[f64]) -> Option<UnitSize> {
    let mut a: Vec<f64> = y.iter().map(|v| v.abs()).filter(|v| v.is_finite() && *v > 0.0).collect();
    if a.is_empty() {
        return None;
    }
    let mid = a.len() / 2;
    let med = *a.select_nth_unstable_by(mid, f64::total_cmp).1;
    Some(UnitSize { small: med, large: med })
}

/// How a parameter sits next to data in a sum: `x − m` (sign +1: `m` takes `x`'s values) or
/// `x + s` (sign −1: `s` takes `−x`'s values), with the data expression and whether the
/// difference is a centre.
struct Occurrence {
    data: ExprId,
    sign: f64,
    centre: bool,
}

/// `±p` (possibly times −1): the sign, if `e` is the parameter `p` itself or its negation.
fn signed_param(m: &ModelFormula, e: ExprId, p: sepfit_expr::SymId) -> Option<f64> {
    let pool = m.pool();
    match pool.node(e) {
        Node::Sym(s) if s == p => Some(1.0),
        Node::Neg(a) => signed_param(m, a, p).map(|s| -s),
        Node::Mul(a, b) => match (pool.as_const(a), pool.as_const(b)) {
            (Some(c), None) if c == -1.0 => signed_param(m, b, p).map(|s| -s),
            (None, Some(c)) if c == -1.0 => signed_param(m, a, p).map(|s| -s),
            _ => None,
        },
        _ => None,
    }
}

fn is_pure_data(m: &ModelFormula, e: ExprId) -> bool {
    let pool = m.pool();
    let syms = pool.free_symbols(e);
    !syms.is_empty() && syms.iter().all(|s| matches!(pool.symbol_info(*s).kind, SymbolKind::Data(_)))
}

fn locations(m: &ModelFormula, p: sepfit_expr::SymId) -> Vec<Occurrence> {
    let pool = m.pool();
    let mut roots: Vec<ExprId> = m.basis().to_vec();
    roots.extend(m.offset());
    let reach = pool.reachable(&roots);
    // Parents, to tell a centre (the difference squared, divided or taken absolutely).
    let mut parents: Vec<Vec<ExprId>> = vec![Vec::new(); reach.len()];
    for (i, r) in reach.iter().enumerate() {
        if *r {
            for c in pool.node(ExprId(i as u32)).children() {
                parents[c.index()].push(ExprId(i as u32));
            }
        }
    }
    let is_centre = |start: ExprId| -> bool {
        let mut frontier = vec![start];
        for _ in 0..3 {
            let mut next = Vec::new();
            for e in frontier {
                for &par in &parents[e.index()] {
                    match pool.node(par) {
                        Node::Pow(_, b) if pool.as_const(b).is_some_and(|c| c > 0.0 && c % 2.0 == 0.0) => return true,
                        Node::Mul(a, b) if a == b => return true,
                        Node::Call(sepfit_expr::Func::Abs, _) => return true,
                        Node::Div(a, b) if a == e && !is_pure_data(m, b) && pool.as_const(b).is_none() => return true,
                        _ => next.push(par),
                    }
                }
            }
            frontier = next;
        }
        false
    };
    let mut out = Vec::new();
    for (i, r) in reach.iter().enumerate() {
        if !*r {
            continue;
        }
        let id = ExprId(i as u32);
        let (a, b, sub) = match pool.node(id) {
            Node::Add(a, b) => (a, b, false),
            Node::Sub(a, b) => (a, b, true),
            _ => continue,
        };
        // data − p, p − data (p ~ data), data + p (p ~ −data).
        let found = if is_pure_data(m, a) {
            signed_param(m, b, p).map(|s| (a, if sub { s } else { -s }))
        } else if is_pure_data(m, b) {
            signed_param(m, a, p).map(|s| (b, if sub { s } else { -s }))
        } else {
            None
        };
        if let Some((data, sign)) = found {
            out.push(Occurrence { data, sign, centre: is_centre(id) });
        }
    }
    out
}

fn column_span(values: &[f64]) -> f64 {
    let (lo, hi) = values.iter().filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
    if hi > lo { hi - lo } else { 0.0 }
}

/// Whether `p` appears in the argument of a sine, cosine or tangent.
fn periodic(m: &ModelFormula, p: sepfit_expr::SymId) -> bool {
    use sepfit_expr::Func;
    let pool = m.pool();
    let mut roots: Vec<ExprId> = m.basis().to_vec();
    roots.extend(m.offset());
    let reach = pool.reachable(&roots);
    reach.iter().enumerate().any(|(i, r)| {
        *r && matches!(pool.node(ExprId(i as u32)), Node::Call(Func::Sin | Func::Cos | Func::Tan, a) if pool.depends_on(a, p))
    })
}

/// Whether `p` shares a basis function (or the offset) with a centre `x_c − m` of column `c`:
/// then a parameter with the unit of `x_c` is that peak's width.
fn width_of_centre(m: &ModelFormula, p: sepfit_expr::SymId, c: usize) -> bool {
    let pool = m.pool();
    let col_sym = m.column_syms().into_iter().find(|s| matches!(pool.symbol_info(*s).kind, SymbolKind::Data(i) if i == c));
    let Some(col) = col_sym else { return false };
    m.nonlinear_params().any(|other| {
        other.sym != p
            && locations(m, other.sym).iter().any(|o| o.centre && pool.free_symbols(o.data) == [col])
            && m.basis().iter().chain(m.offset().iter()).any(|&e| pool.depends_on(e, p) && pool.depends_on(e, other.sym))
    })
}

/// Evaluates a data-only expression on (up to 2,000 evenly spaced) rows.
fn data_values(m: &ModelFormula, e: ExprId, columns: &[&[f64]]) -> Vec<f64> {
    let pool = m.pool();
    let n = columns.iter().map(|c| c.len()).max().unwrap_or(0);
    let step = n.div_ceil(2000).max(1);
    (0..n)
        .step_by(step)
        .map(|r| {
            pool.eval(e, &|s| match pool.symbol_info(s).kind {
                SymbolKind::Data(c) => columns.get(c).and_then(|col| col.get(r)).copied().unwrap_or(f64::NAN),
                _ => f64::NAN,
            })
        })
        .filter(|v| v.is_finite())
        .collect()
}

/// The structural range of every nonlinear parameter (before bounds and starts).
pub(crate) fn structural_ranges(m: &ModelFormula, columns: &[&[f64]], response: &[f64]) -> Vec<SearchRange> {
    let units = super::dimensions::units(m, m.columns().len());
    let mut sizes: Vec<Option<UnitSize>> =
        (0..m.columns().len()).map(|c| columns.get(c).and_then(|col| column_size(col))).collect();
    sizes.push(response_size(response));
    let names: Vec<String> = m.columns().to_vec();
    m.nonlinear_params()
        .enumerate()
        .map(|(k, par)| {
            // A location beside data?
            let occ = locations(m, par.sym);
            if let Some(o) = occ.iter().find(|o| o.centre).or(occ.first()) {
                let vals = data_values(m, o.data, columns);
                let (mut lo, mut hi) = vals.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
                if o.sign < 0.0 {
                    (lo, hi) = (-hi, -lo);
                }
                if lo.is_finite() && hi.is_finite() {
                    let span = hi - lo;
                    let size = span.max(lo.abs()).max(hi.abs()).max(f64::MIN_POSITIVE);
                    let what = m.print(o.data);
                    return if o.centre {
                        let margin = 0.25 * span.max(size * 1e-12);
                        SearchRange {
                            lo: lo - margin,
                            hi: hi + margin,
                            kind: RangeKind::Linear,
                            reach: 0.0,
                            why: format!("centre within the range of {what}"),
                            cells: 1.0,
                            sign_free: false,
                        }
                    } else {
                        SearchRange {
                            lo,
                            hi: if hi > lo { hi } else { lo + size },
                            kind: RangeKind::Location,
                            reach: 100.0 * size,
                            why: format!("shift of {what}: its range, and beyond it on a log scale"),
                            cells: 1.0,
                            sign_free: false,
                        }
                    };
                }
            }
            let exps = units.exponents.get(k).cloned().flatten();
            // The unit of exactly one column, to the power ±1?
            let single = exps.as_ref().and_then(|e| {
                let nz: Vec<usize> = (0..e.len()).filter(|&c| e[c] != 0.0).collect();
                (nz.len() == 1 && nz[0] < names.len() && e[nz[0]].abs() == 1.0).then(|| (nz[0], e[nz[0]]))
            });
            if let Some((c, e)) = single
                && let Some(sz) = sizes[c]
            {
                let span = column_span(columns.get(c).copied().unwrap_or(&[])).max(sz.small);
                // A period (or angular frequency) inside sin/cos/tan: the loss has a valley per
                // cycle count, evenly spaced in frequency, so frequency is sampled uniformly,
                // from a quarter cycle over the data to two samples per cycle.
                if periodic(m, par.sym) {
                    let cells = (2.0 * span / sz.small).clamp(1.0, 4096.0);
                    return if e > 0.0 {
                        SearchRange {
                            lo: 2.0 * sz.small,
                            hi: 4.0 * span,
                            kind: RangeKind::Reciprocal,
                            reach: 0.0,
                            why: format!("period in {}: uniform in frequency", names[c]),
                            cells,
                            sign_free: false,
                        }
                    } else {
                        SearchRange {
                            lo: 0.25 / span,
                            hi: 0.5 / sz.small,
                            kind: RangeKind::Linear,
                            reach: 0.0,
                            why: format!("frequency in {}", names[c]),
                            cells,
                            sign_free: false,
                        }
                    };
                }
                // The width of a peak centred on this column: from a third of its spacing to
                // twice its span.
                if e > 0.0 && width_of_centre(m, par.sym, c) {
                    return SearchRange {
                        lo: sz.small / 3.0,
                        hi: 2.0 * span,
                        kind: RangeKind::SignedLog,
                        reach: 0.0,
                        why: format!("width of a peak in {}", names[c]),
                        cells: 1.0,
                            sign_free: false,
                    };
                }
            }
            // A magnitude from its unit.
            let (mut lo, mut hi) = (1.0f64, 1.0f64);
            let mut parts = Vec::new();
            match &exps {
                Some(e) if e.iter().any(|v| *v != 0.0) => {
                    for (c, &ec) in e.iter().enumerate() {
                        if ec == 0.0 {
                            continue;
                        }
                        let Some(s) = sizes.get(c).copied().flatten() else {
                            continue;
                        };
                        let (wide_small, wide_large) = if c == names.len() { (10.0, 10.0) } else { (3.0, 100.0) };
                        let (a, b) = ((s.small / wide_small).powf(ec), (s.large * wide_large).powf(ec));
                        lo *= a.min(b);
                        hi *= a.max(b);
                        let unit = if c == names.len() { "the response".to_string() } else { names[c].clone() };
                        parts.push(if ec == 1.0 { unit } else { format!("{unit}^{ec}") });
                    }
                    if parts.is_empty() {
                        (lo, hi) = (1e-2, 1e2);
                    }
                }
                Some(_) => (lo, hi) = (1e-2, 1e2),
                None => (lo, hi) = (1e-3, 1e3),
            }
            if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && hi > lo) {
                (lo, hi) = (1e-3, 1e3);
            }
            let why = match (&exps, parts.is_empty()) {
                (None, _) => "magnitude (its unit is not determined by the formula)".to_string(),
                (_, true) => "dimensionless magnitude".to_string(),
                (_, false) => format!("magnitude with the unit of {}", parts.join("·")),
            };
            SearchRange { lo, hi, kind: RangeKind::SignedLog, reach: 0.0, why, cells: 1.0, sign_free: false }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(formula: &str, x: &[f64]) -> Vec<SearchRange> {
        let y: Vec<f64> = x.iter().map(|v| 1.0 + v).collect();
        let m = ModelFormula::parse(formula, &["x", "y"]).unwrap();
        structural_ranges(&m, &[x, &y], &y)
    }

    #[test]
    fn a_rate_spans_the_data_scales() {
        let x: Vec<f64> = (0..101).map(|i| i as f64 * 0.1).collect();
        let r = ranges("y ~ a*exp(-k*x)", &x);
        assert_eq!(r[0].kind, RangeKind::SignedLog);
        // 1/(100·L) with L = 10, and 3/h with h = 0.1.
        assert!((r[0].lo - 1e-3).abs() < 1e-12 && (r[0].hi - 30.0).abs() < 1e-9, "{:?}", r[0]);
    }

    #[test]
    fn a_peak_centre_lies_in_the_data() {
        let x: Vec<f64> = (0..41).map(|i| 10.0 + i as f64 * 0.5).collect();
        let r = ranges("y ~ a*exp(-(x-m)^2/w^2)", &x);
        assert_eq!(r[0].kind, RangeKind::Linear);
        assert!((r[0].lo - 5.0).abs() < 1e-12 && (r[0].hi - 35.0).abs() < 1e-12, "{:?}", r[0]);
        assert_eq!(r[1].kind, RangeKind::SignedLog);
        // The width: from a third of the spacing to twice the span.
        assert!(r[1].why.contains("width of a peak in x"), "{:?}", r[1]);
        assert!((r[1].lo - 0.5 / 3.0).abs() < 1e-12 && (r[1].hi - 40.0).abs() < 1e-12, "{:?}", r[1]);
    }

    #[test]
    fn a_shift_reaches_beyond_the_data() {
        let x: Vec<f64> = (0..20).map(|i| 50.0 + i as f64 * 4.0).collect();
        let r = ranges("y ~ a*exp(b/(x+s))", &x);
        // s ~ −x: inside [−126, −50], tails out to 100·126.
        assert_eq!(r[1].kind, RangeKind::Location);
        assert!((r[1].lo + 126.0).abs() < 1e-12 && (r[1].hi + 50.0).abs() < 1e-12, "{:?}", r[1]);
        assert!(r[1].reach >= 12_600.0);
    }
}
