//! Dimensional analysis of a model formula: which power of each data column's unit every
//! nonlinear parameter carries.
//!
//! Every data column `x_c` is given its own unit `[x_c]`, the response its own `[y]`. The
//! formula's structure constrains the parameters' units:
//!
//! * the arguments of `exp`, `log`, `sin`, … and exponents are dimensionless
//!   (`exp(-k·t)` ⇒ `[k] = [t]⁻¹`, `sin(2πx/P)` ⇒ `[P] = [x]`);
//! * terms of a sum share a unit (`x − m` ⇒ `[m] = [x]`, `1 + b·x²` ⇒ `[b] = [x]⁻²`);
//!   a plain number added to a term with parameters makes that term dimensionless;
//! * products add units, quotients subtract them, `u^c` multiplies by `c`, `√u` halves;
//! * each basis function `φ_j` may have any unit (its linear coefficient absorbs it), but the
//!   offset `φ₀`, which has no coefficient, has the response's unit.
//!
//! Writing `[b_k] = Π_c [x_c]^{E_kc}`, each constraint is one linear equation in the exponent
//! matrix `E` (one column per unit, the same coefficients), solved by Gauss–Jordan elimination.
//! A parameter whose row is determined gets its exponents; one left free by the formula (or
//! caught in a contradiction) gets none, and the search falls back to a wide dimensionless
//! range for it.

use sepfit_expr::func::Func;
use sepfit_expr::{ExprId, ModelFormula, Node, SymbolKind};

/// A node's unit as an affine form `Σ_k coef_k·[b_k] + Σ_c base_c·[x_c]`, or opaque (a power
/// with a parameter exponent of a dimensioned quantity, `x^h`: no linear form).
#[derive(Clone, Debug, PartialEq)]
enum Unit {
    Affine { coef: Vec<f64>, base: Vec<f64>, constant: bool },
    Opaque,
}

impl Unit {
    fn zero(q: usize, k: usize) -> Unit {
        Unit::Affine { coef: vec![0.0; q], base: vec![0.0; k], constant: false }
    }
    fn combine(&self, other: &Unit, s: f64) -> Unit {
        match (self, other) {
            (Unit::Affine { coef: c1, base: b1, .. }, Unit::Affine { coef: c2, base: b2, .. }) => Unit::Affine {
                coef: c1.iter().zip(c2).map(|(a, b)| a + s * b).collect(),
                base: b1.iter().zip(b2).map(|(a, b)| a + s * b).collect(),
                constant: false,
            },
            _ => Unit::Opaque,
        }
    }
    fn scale(&self, s: f64) -> Unit {
        match self {
            Unit::Affine { coef, base, .. } => Unit::Affine {
                coef: coef.iter().map(|v| v * s).collect(),
                base: base.iter().map(|v| v * s).collect(),
                constant: false,
            },
            Unit::Opaque => Unit::Opaque,
        }
    }
    fn has_unknowns(&self) -> bool {
        matches!(self, Unit::Affine { coef, .. } if coef.iter().any(|c| *c != 0.0))
    }
    fn is_dimensionless_data(&self) -> bool {
        matches!(self, Unit::Affine { coef, base, .. } if coef.iter().all(|c| *c == 0.0) && base.iter().all(|b| *b == 0.0))
    }
}

/// The units of the nonlinear parameters: `exponents[k]` is `Some(E_k)` with one exponent per
/// unit (the data columns in the formula's column order, then the response), or `None` when
/// the formula leaves it undetermined.
#[derive(Clone, Debug, PartialEq)]
pub struct Units {
    /// Per nonlinear parameter, its exponents of `[x_0] … [x_{m−1}] [y]`.
    pub exponents: Vec<Option<Vec<f64>>>,
}

/// Solves the formula's unit constraints. `n_columns` is the number of data columns the
/// formula was parsed against (the response's unit is the last, index `n_columns`).
pub fn units(m: &ModelFormula, n_columns: usize) -> Units {
    let pool = m.pool();
    let nl = m.nonlinear_syms();
    let (q, k) = (nl.len(), n_columns + 1);
    let mut roots: Vec<ExprId> = m.basis().to_vec();
    roots.extend(m.offset());
    let reach = pool.reachable(&roots);
    let mut unit: Vec<Unit> = vec![Unit::Opaque; reach.len()];
    // Equations Σ coef·[b] = −base, one row each.
    let mut eqs: Vec<(Vec<f64>, Vec<f64>)> = Vec::new();
    let require = |u: &Unit, target: Option<&Unit>, eqs: &mut Vec<(Vec<f64>, Vec<f64>)>| {
        let diff = match target {
            Some(t) => u.combine(t, -1.0),
            None => u.clone(),
        };
        if let Unit::Affine { coef, base, .. } = diff
            && coef.iter().any(|c| *c != 0.0)
        {
            eqs.push((coef, base.iter().map(|b| -b).collect()));
        }
    };
    for i in 0..reach.len() {
        if !reach[i] {
            continue;
        }
        let u = |id: ExprId| unit[id.index()].clone();
        let node = pool.node(ExprId(i as u32));
        let this = match node {
            Node::Const(_) => Unit::Affine { coef: vec![0.0; q], base: vec![0.0; k], constant: true },
            Node::Sym(s) => {
                let mut z = Unit::zero(q, k);
                if let Unit::Affine { coef, base, .. } = &mut z {
                    if let Some(p) = nl.iter().position(|&x| x == s) {
                        coef[p] = 1.0;
                    } else if let SymbolKind::Data(c) = pool.symbol_info(s).kind
                        && c < n_columns
                    {
                        base[c] = 1.0;
                    }
                }
                z
            }
            // max/min carry their arguments' common unit; atan2 needs one and is dimensionless
            Node::Call2(sepfit_expr::Func2::Atan2, a, b) => {
                let (ua, ub) = (u(a), u(b));
                if !matches!(ua, Unit::Opaque) && !matches!(ub, Unit::Opaque) {
                    require(&ua, Some(&ub), &mut eqs);
                }
                Unit::zero(q, k)
            }
            Node::Add(a, b) | Node::Sub(a, b) | Node::Call2(_, a, b) => {
                let (ua, ub) = (u(a), u(b));
                let is_const = |x: &Unit| matches!(x, Unit::Affine { constant: true, .. });
                match (&ua, &ub) {
                    (Unit::Opaque, _) => ub,
                    (_, Unit::Opaque) => ua,
                    _ if is_const(&ua) => {
                        require(&ub, None, &mut eqs);
                        if ub.has_unknowns() { Unit::zero(q, k) } else { ub }
                    }
                    _ if is_const(&ub) => {
                        require(&ua, None, &mut eqs);
                        if ua.has_unknowns() { Unit::zero(q, k) } else { ua }
                    }
                    _ => {
                        require(&ua, Some(&ub), &mut eqs);
                        if ua.has_unknowns() || !ub.has_unknowns() { ua } else { ub }
                    }
                }
            }
            Node::Mul(a, b) => match (u(a), u(b)) {
                (Unit::Affine { constant: true, .. }, y) | (y, Unit::Affine { constant: true, .. }) => strip_constant(y),
                (x, y) => x.combine(&y, 1.0),
            },
            Node::Div(a, b) => match (u(a), u(b)) {
                (x, Unit::Affine { constant: true, .. }) => strip_constant(x),
                (x, y) => x.combine(&y, -1.0),
            },
            Node::Neg(a) => u(a),
            Node::Pow(a, b) => match pool.as_const(b) {
                Some(c) => u(a).scale(c),
                None => {
                    let (ua, ub) = (u(a), u(b));
                    require(&ub, None, &mut eqs);
                    if ua.has_unknowns() {
                        require(&ua, None, &mut eqs);
                        Unit::zero(q, k)
                    } else if ua.is_dimensionless_data() {
                        Unit::zero(q, k)
                    } else {
                        Unit::Opaque
                    }
                }
            },
            Node::Call(f, a) => match f {
                Func::Sqrt => u(a).scale(0.5),
                Func::Abs => strip_constant(u(a)),
                Func::Sign => Unit::zero(q, k),
                _ => {
                    require(&u(a), None, &mut eqs);
                    Unit::zero(q, k)
                }
            },
            Node::XLogY(a, b) => {
                require(&u(b), None, &mut eqs);
                strip_constant(u(a))
            }
        };
        unit[i] = this;
    }
    if let Some(off) = m.offset() {
        let mut y = Unit::zero(q, k);
        if let Unit::Affine { base, .. } = &mut y {
            base[n_columns] = 1.0;
        }
        require(&unit[off.index()], Some(&y), &mut eqs);
    }
    Units { exponents: solve(q, k, eqs) }
}

fn strip_constant(u: Unit) -> Unit {
    match u {
        Unit::Affine { coef, base, .. } => Unit::Affine { coef, base, constant: false },
        Unit::Opaque => Unit::Opaque,
    }
}

/// Gauss–Jordan elimination of `A·E = R` (rows `(a, r)`): the rows of `E` that the equations
/// determine. Inconsistent equations (0 = r ≠ 0) are dropped, and the unknowns they involved
/// are left undetermined.
fn solve(q: usize, k: usize, eqs: Vec<(Vec<f64>, Vec<f64>)>) -> Vec<Option<Vec<f64>>> {
    let mut rows = eqs;
    let mut pivot_of: Vec<Option<usize>> = vec![None; q];
    let mut r = 0;
    let tol = 1e-9;
    for col in 0..q {
        let Some(best) = (r..rows.len()).max_by(|&i, &j| rows[i].0[col].abs().total_cmp(&rows[j].0[col].abs())) else {
            break;
        };
        if rows[best].0[col].abs() <= tol {
            continue;
        }
        rows.swap(r, best);
        let p = rows[r].0[col];
        rows[r].0.iter_mut().for_each(|v| *v /= p);
        rows[r].1.iter_mut().for_each(|v| *v /= p);
        for i in 0..rows.len() {
            if i != r && rows[i].0[col].abs() > tol {
                let f = rows[i].0[col];
                let (pa, pr) = (rows[r].0.clone(), rows[r].1.clone());
                rows[i].0.iter_mut().zip(&pa).for_each(|(v, a)| *v -= f * a);
                rows[i].1.iter_mut().zip(&pr).for_each(|(v, a)| *v -= f * a);
            }
        }
        pivot_of[col] = Some(r);
        r += 1;
    }
    // Inconsistent leftover rows poison nothing determined (their unknowns are all
    // eliminated), but they say the formula mixes units: the pivots stay valid.
    let _ = k;
    (0..q)
        .map(|col| {
            let row = pivot_of[col]?;
            let (a, rhs) = &rows[row];
            // Determined only if no free unknown remains in its row.
            let free = (0..q).any(|c| c != col && a[c].abs() > tol && pivot_of[c].is_none());
            if free {
                return None;
            }
            Some(rhs.iter().map(|v| if v.abs() < 1e-9 { 0.0 } else { *v }).collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exps(formula: &str, cols: &[&str]) -> Vec<Option<Vec<f64>>> {
        let m = ModelFormula::parse(formula, cols).unwrap();
        units(&m, cols.len()).exponents
    }

    #[test]
    fn rates_locations_widths_and_powers() {
        // columns: t, y → units [t], [y_col], then response.
        assert_eq!(exps("y ~ a*exp(-k*t) + c", &["t", "y"]), vec![Some(vec![-1.0, 0.0, 0.0])]);
        assert_eq!(exps("y ~ a*exp(-t/tau)", &["t", "y"]), vec![Some(vec![1.0, 0.0, 0.0])]);
        let g = exps("y ~ a*exp(-(t-m)^2/(2*w^2))", &["t", "y"]);
        assert_eq!(g, vec![Some(vec![1.0, 0.0, 0.0]), Some(vec![1.0, 0.0, 0.0])]);
        assert_eq!(exps("y ~ a*t^h", &["t", "y"]), vec![Some(vec![0.0, 0.0, 0.0])]);
        // 1 + b·t²: the term is dimensionless.
        assert_eq!(exps("y ~ a/(1 + b*t^2)", &["t", "y"]), vec![Some(vec![-2.0, 0.0, 0.0])]);
    }

    #[test]
    fn an_offset_has_the_response_unit() {
        // No linear parameter: exp(-b1 x)/(b2 + b3 x) has the unit of y.
        let e = exps("y ~ exp(-b1*x)/(b2+b3*x)", &["x", "y"]);
        assert_eq!(e[0], Some(vec![-1.0, 0.0, 0.0]));
        assert_eq!(e[1], Some(vec![0.0, 0.0, -1.0]));
        assert_eq!(e[2], Some(vec![-1.0, 0.0, -1.0]));
    }

    #[test]
    fn an_undetermined_parameter_has_no_unit() {
        // b and c only appear as a product: their units are not separately determined.
        let e = exps("y ~ a*exp(-b*c*t)", &["t", "y"]);
        assert_eq!(e, vec![None, None]);
    }
}
