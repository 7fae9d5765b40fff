//! Symmetries of a model that the search should not sample twice, found numerically on a few
//! data rows at generic parameter points:
//!
//! * **sign symmetry**: negating `b_k` maps every basis function to ± itself and leaves the
//!   offset unchanged (a width that enters squared, `exp(−(x−m)²/w²)`): the linear
//!   coefficients absorb the sign, so only `b_k > 0` is searched;
//! * **exchangeable blocks**: swapping the parameters of two basis functions (`b1 ↔ b2` in
//!   `a1·exp(−b1·t) + a2·exp(−b2·t)`, `(m1, w1) ↔ (m2, w2)` for two peaks) permutes the basis
//!   functions and leaves the offset unchanged, so the blocks are searched in one order only.

use sepfit_expr::{ExprId, ModelFormula, SymbolKind};

/// Basis functions and offset of `m` at `b` on `rows`, or `None` where any is not finite.
fn evaluate(m: &ModelFormula, columns: &[&[f64]], rows: &[usize], b: &[f64]) -> Option<Vec<Vec<f64>>> {
    let pool = m.pool();
    let nl = m.nonlinear_syms();
    let mut exprs: Vec<ExprId> = m.basis().to_vec();
    exprs.extend(m.offset());
    let out: Vec<Vec<f64>> = exprs
        .iter()
        .map(|&e| {
            rows.iter()
                .map(|&r| {
                    pool.eval(e, &|s| match pool.symbol_info(s).kind {
                        SymbolKind::Data(c) => columns.get(c).and_then(|col| col.get(r)).copied().unwrap_or(0.0),
                        _ => nl.iter().position(|&x| x == s).map_or(0.0, |k| b[k]),
                    })
                })
                .collect()
        })
        .collect();
    out.iter().all(|v| v.iter().all(|x| x.is_finite())).then_some(out)
}

fn close(u: &[f64], v: &[f64], sign: f64) -> bool {
    u.iter().zip(v).all(|(a, b)| (a - sign * b).abs() <= 1e-9 * (a.abs() + b.abs()).max(1e-300))
}

fn sample_rows(columns: &[&[f64]]) -> Vec<usize> {
    let n = columns.iter().map(|c| c.len()).find(|&l| l > 0).unwrap_or(0);
    if n == 0 {
        return Vec::new();
    }
    let mut rows: Vec<usize> = (0..7).map(|i| i * (n - 1) / 6).collect();
    rows.dedup();
    rows
}

/// Two generic points near `b` (distinct coordinates, slightly perturbed).
fn generic_points(b: &[f64]) -> [Vec<f64>; 2] {
    let at = |scale: f64| b.iter().enumerate().map(|(i, v)| v * scale * (1.0 + 0.0137 * i as f64)).collect();
    [at(1.0), at(1.071)]
}

/// For each nonlinear parameter: whether the model is symmetric under its negation (checked
/// near `b`, a point where the model is finite).
pub(crate) fn sign_symmetric(m: &ModelFormula, columns: &[&[f64]], b: &[f64]) -> Vec<bool> {
    let rows = sample_rows(columns);
    let p = m.basis().len();
    (0..b.len())
        .map(|k| {
            !rows.is_empty()
                && generic_points(b).iter().all(|bv| {
                    let mut neg = bv.clone();
                    neg[k] = -neg[k];
                    match (evaluate(m, columns, &rows, bv), evaluate(m, columns, &rows, &neg)) {
                        (Some(e1), Some(e2)) => {
                            let basis_ok = (0..p).all(|j| close(&e1[j], &e2[j], 1.0) || close(&e1[j], &e2[j], -1.0));
                            let offset_ok = m.offset().is_none() || close(&e1[p], &e2[p], 1.0);
                            basis_ok && offset_ok && depends(m, k)
                        }
                        _ => false,
                    }
                })
        })
        .collect()
}

fn depends(m: &ModelFormula, k: usize) -> bool {
    let s = m.nonlinear_syms()[k];
    m.basis().iter().chain(m.offset().iter()).any(|&e| m.pool().depends_on(e, s))
}

/// Groups of exchangeable blocks: each group lists blocks of nonlinear-parameter indices,
/// aligned (the `t`-th index of every block plays the same role), the first block's lead
/// parameter first. Blocks have at most three parameters.
pub(crate) fn exchangeable_blocks(m: &ModelFormula, columns: &[&[f64]], b: &[f64]) -> Vec<Vec<Vec<usize>>> {
    let rows = sample_rows(columns);
    let pool = m.pool();
    let nl = m.nonlinear_syms();
    let p = m.basis().len();
    if rows.is_empty() || b.len() < 2 {
        return Vec::new();
    }
    let params_of: Vec<Vec<usize>> = m
        .basis()
        .iter()
        .map(|&e| {
            let fs = pool.free_symbols(e);
            (0..nl.len()).filter(|&k| fs.contains(&nl[k])).collect()
        })
        .collect();
    let invariant = |map: &[(usize, usize)]| -> bool {
        generic_points(b).iter().all(|bv| {
            let mut sw = bv.clone();
            for &(i, j) in map {
                sw.swap(i, j);
            }
            match (evaluate(m, columns, &rows, bv), evaluate(m, columns, &rows, &sw)) {
                (Some(e1), Some(e2)) => {
                    let offset_ok = m.offset().is_none() || close(&e1[p], &e2[p], 1.0);
                    offset_ok && (0..p).all(|j| (0..p).any(|i| close(&e2[j], &e1[i], 1.0)))
                }
                _ => false,
            }
        })
    };
    // Blocks paired with the lowest block they are exchangeable with.
    let mut groups: Vec<Vec<Vec<usize>>> = Vec::new();
    let mut used = vec![false; nl.len()];
    let mut blocks: Vec<&Vec<usize>> = params_of.iter().filter(|v| !v.is_empty() && v.len() <= 3).collect();
    blocks.sort();
    blocks.dedup();
    for (bi, first) in blocks.iter().enumerate() {
        if first.iter().any(|&k| used[k]) {
            continue;
        }
        let mut group = vec![(*first).clone()];
        for other in &blocks[bi + 1..] {
            if other.len() != first.len() || other.iter().any(|k| used[*k] || first.contains(k)) {
                continue;
            }
            for perm in permutations(other) {
                let map: Vec<(usize, usize)> = first.iter().copied().zip(perm.iter().copied()).collect();
                if invariant(&map) {
                    group.push(perm);
                    break;
                }
            }
        }
        if group.len() > 1 {
            for blk in &group {
                for &k in blk {
                    used[k] = true;
                }
            }
            groups.push(group);
        }
    }
    // Single parameters exchangeable inside one basis function (`a/((1 + b1·t)(1 + b2·t))`).
    for k in 0..nl.len() {
        for l in k + 1..nl.len() {
            if !used[k] && !used[l] && invariant(&[(k, l)]) {
                used[k] = true;
                used[l] = true;
                groups.push(vec![vec![k], vec![l]]);
            }
        }
    }
    groups
}

fn permutations(v: &[usize]) -> Vec<Vec<usize>> {
    if v.len() <= 1 {
        return vec![v.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..v.len() {
        let mut rest = v.to_vec();
        let x = rest.remove(i);
        for mut p in permutations(&rest) {
            p.insert(0, x);
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_peaks_are_exchangeable_blocks_and_widths_sign_symmetric() {
        let x: Vec<f64> = (0..50).map(|i| i as f64).collect();
        let m = ModelFormula::parse("y ~ a*exp(-k*x) + b1*exp(-(x-m1)^2/w1^2) + b2*exp(-(x-m2)^2/w2^2)", &["x", "y"]).unwrap();
        let cols: [&[f64]; 2] = [&x, &x];
        let b = [0.05, 20.0, 5.0, 30.0, 6.0];
        assert_eq!(exchangeable_blocks(&m, &cols, &b), vec![vec![vec![1, 2], vec![3, 4]]]);
        assert_eq!(sign_symmetric(&m, &cols, &b), vec![false, false, true, false, true]);
    }

    #[test]
    fn three_rates_form_one_group() {
        let x: Vec<f64> = (0..24).map(|i| i as f64 * 0.05).collect();
        let m = ModelFormula::parse("y ~ a1*exp(-k1*x) + a2*exp(-k2*x) + a3*exp(-k3*x)", &["x", "y"]).unwrap();
        let cols: [&[f64]; 2] = [&x, &x];
        assert_eq!(exchangeable_blocks(&m, &cols, &[1.0, 3.0, 5.0]), vec![vec![vec![0], vec![1], vec![2]]]);
        assert_eq!(sign_symmetric(&m, &cols, &[1.0, 3.0, 5.0]), vec![false; 3]);
    }
}
