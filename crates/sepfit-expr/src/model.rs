//! Model formulas `response ~ model` and their separable structure
//! `f(x; a, b) = Σ_j a_j φ_j(x; b) + φ_0(x; b)`.

use crate::diagnostic::Diagnostic;
use crate::lower::{check_declared, lower_model};
use crate::parser::parse;
use crate::pool::{ExprId, Pool, SymId};
use crate::span::Span;
use std::collections::HashMap;

/// The most parameters one formula may have. Exact derivatives cost one pass over the formula
/// per parameter, so this bounds the work on adversarial input (a megabyte of distinct names).
pub const MAX_PARAMS: usize = 500;

/// A parameter of a model formula.
#[derive(Clone, Debug, PartialEq)]
pub struct Parameter {
    /// Its name.
    pub name: String,
    /// Its symbol in the pool.
    pub sym: SymId,
    /// Whether it was found to enter linearly (and is eliminated by variable projection).
    pub linear: bool,
    /// Where it first appears in the formula.
    pub span: Span,
}

/// A parsed model formula with its separable structure and exact derivatives.
///
/// ```
/// use sepfit_expr::ModelFormula;
/// let m = ModelFormula::parse("y ~ a1*exp(-b1*t) + a2*exp(-b2*t) + c", &["t", "y"]).unwrap();
/// let linear: Vec<&str> = m.linear_params().map(|p| p.name.as_str()).collect();
/// let nonlinear: Vec<&str> = m.nonlinear_params().map(|p| p.name.as_str()).collect();
/// assert_eq!(linear, ["a1", "a2", "c"]);
/// assert_eq!(nonlinear, ["b1", "b2"]);
/// assert_eq!(m.print(m.basis()[0]), "exp(-b1*t)");
/// assert_eq!(m.print(m.basis()[2]), "1");
/// ```
#[derive(Clone, Debug)]
pub struct ModelFormula {
    source: String,
    pool: Pool,
    lhs: ExprId,
    rhs: ExprId,
    lhs_span: Span,
    rhs_span: Span,
    columns: Vec<String>,
    used_columns: Vec<SymId>,
    params: Vec<Parameter>,
    /// Basis φ_j for each linear parameter, in the order of `linear_params()`.
    basis: Vec<ExprId>,
    /// φ_0, or `None` when it is identically zero.
    offset: Option<ExprId>,
    /// ∂φ_j/∂b_k as (j, k, expr) for nonzero derivatives; k indexes `nonlinear_params()`.
    d_basis: Vec<(usize, usize, ExprId)>,
    /// ∂φ_0/∂b_k as (k, expr) for nonzero derivatives.
    d_offset: Vec<(usize, ExprId)>,
    /// ∂f/∂θ for every parameter θ in `params` order.
    gradient: Vec<ExprId>,
    notes: Vec<String>,
}

/// Options for [`ModelFormula::parse_with`].
#[derive(Clone, Debug, Default)]
pub struct ModelOptions<'a> {
    /// Names the user declared as parameters (start values, fixed values): an error if one is a
    /// data column.
    pub declared_params: &'a [&'a str],
    /// Parameters to treat as nonlinear even if they enter linearly.
    pub force_nonlinear: &'a [&'a str],
    /// Parameters held at a fixed value: substituted before the structure is found.
    pub fixed: &'a [(&'a str, f64)],
}

impl ModelFormula {
    /// Parses `response ~ model` where `columns` names the data columns; every other identifier
    /// (except function names and `pi`) is a parameter.
    pub fn parse(src: &str, columns: &[&str]) -> Result<ModelFormula, Diagnostic> {
        Self::parse_with(src, columns, &ModelOptions::default())
    }

    /// [`ModelFormula::parse`] with options.
    pub fn parse_with(src: &str, columns: &[&str], opts: &ModelOptions<'_>) -> Result<ModelFormula, Diagnostic> {
        let parsed = parse(src)?;
        let mut declared: Vec<&str> = opts.declared_params.to_vec();
        declared.extend(opts.fixed.iter().map(|(n, _)| *n));
        check_declared(&parsed, columns, &declared, src.len())?;
        let low = lower_model(src, &parsed, columns, &declared)?;
        let mut pool = low.pool;
        let mut rhs = low.rhs;
        let mut notes = Vec::new();
        let mut param_list = low.params.clone();
        column_typo_notes(&pool, &param_list, columns, &low.used_columns, &mut notes);
        if !opts.fixed.is_empty() {
            let mut map = HashMap::new();
            for (name, v) in opts.fixed {
                if let Some(pos) = param_list.iter().position(|(s, _)| pool.symbol_info(*s).name == *name) {
                    let c = pool.constant(*v);
                    map.insert(param_list[pos].0, c);
                    param_list.remove(pos);
                    notes.push(format!("`{name}` is fixed at {v}"));
                }
            }
            let before = rhs;
            rhs = pool.substitute(rhs, &map);
            check_fixed_finite(&pool, before, rhs, &low.params, opts.fixed)?;
        }
        let syms: Vec<SymId> = param_list.iter().map(|(s, _)| *s).collect();
        let gradient: Vec<ExprId> = syms.iter().map(|&s| pool.diff(rhs, s)).collect();

        // Candidates: parameters the model is affine in: ∂f/∂p free of p, and f − p·∂f/∂p free
        // of p too (a derivative can be free of p without f being affine: ∂sign(t − c)/∂c
        // simplifies to 0, and `4*p/(2*p)` has derivative 0 but is 0/0 at p = 0).
        let n = syms.len();
        let deps: Vec<Vec<SymId>> = gradient.iter().map(|&g| pool.free_symbols(g)).collect();
        let forced = |s: SymId, pool: &Pool| opts.force_nonlinear.contains(&pool.symbol_info(s).name.as_str());
        let mut cand: Vec<usize> = Vec::new();
        for i in 0..n {
            if deps[i].contains(&syms[i]) || forced(syms[i], &pool) {
                continue;
            }
            if affine_in(&pool, rhs, syms[i]) {
                cand.push(i);
                continue;
            }
            let p = pool.sym(syms[i]);
            let pg = pool.mul(p, gradient[i]);
            let rest = pool.sub(rhs, pg);
            if !pool.depends_on(rest, syms[i]) {
                cand.push(i);
            }
        }
        // Conflicts: p and q cannot both be linear when ∂f/∂p involves q (a product a*b).
        let conflict = |i: usize, j: usize| deps[i].contains(&syms[j]) || deps[j].contains(&syms[i]);
        let chosen = max_independent_set(&cand, &conflict);
        for &i in &cand {
            if chosen.contains(&i) {
                continue;
            }
            let partners: Vec<String> = chosen
                .iter()
                .filter(|&&j| conflict(i, j))
                .map(|&j| format!("`{}`", pool.symbol_info(syms[j]).name))
                .collect();
            notes.push(format!(
                "`{}` enters linearly but multiplies {}; only one factor of a product can be eliminated, so {} {} linear (the earliest in the formula) and `{}` is fitted as nonlinear",
                pool.symbol_info(syms[i]).name,
                partners.join(", "),
                partners.join(", "),
                if partners.len() == 1 { "is" } else { "are" },
                pool.symbol_info(syms[i]).name,
            ));
        }
        let mut params: Vec<Parameter> = param_list
            .iter()
            .enumerate()
            .map(|(i, (s, span))| Parameter {
                name: pool.symbol_info(*s).name.clone(),
                sym: *s,
                linear: chosen.contains(&i),
                span: *span,
            })
            .collect();
        // Linear parameters first (in order of appearance), then nonlinear.
        params.sort_by_key(|p| !p.linear);
        let index_of = |s: SymId| syms.iter().position(|&x| x == s).unwrap_or(0);
        let basis: Vec<ExprId> = params.iter().filter(|p| p.linear).map(|p| gradient[index_of(p.sym)]).collect();
        let mut zero_map = HashMap::new();
        let zero = pool.constant(0.0);
        for p in params.iter().filter(|p| p.linear) {
            zero_map.insert(p.sym, zero);
        }
        let off = pool.substitute(rhs, &zero_map);
        let offset = (pool.as_const(off) != Some(0.0)).then_some(off);
        let nl: Vec<SymId> = params.iter().filter(|p| !p.linear).map(|p| p.sym).collect();
        let mut d_basis = Vec::new();
        for (j, &phi) in basis.iter().enumerate() {
            for (k, &b) in nl.iter().enumerate() {
                let d = pool.diff(phi, b);
                if pool.as_const(d) != Some(0.0) {
                    d_basis.push((j, k, d));
                }
            }
        }
        let mut d_offset = Vec::new();
        if let Some(o) = offset {
            for (k, &b) in nl.iter().enumerate() {
                let d = pool.diff(o, b);
                if pool.as_const(d) != Some(0.0) {
                    d_offset.push((k, d));
                }
            }
        }
        let gradient = params.iter().map(|p| gradient[index_of(p.sym)]).collect();
        Ok(ModelFormula {
            source: src.to_string(),
            pool,
            lhs: low.lhs,
            rhs,
            lhs_span: low.lhs_span,
            rhs_span: low.rhs_span,
            columns: columns.iter().map(|s| s.to_string()).collect(),
            used_columns: low.used_columns,
            params,
            basis,
            offset,
            d_basis,
            d_offset,
            gradient,
            notes,
        })
    }

    /// The formula text.
    pub fn source(&self) -> &str {
        &self.source
    }
    /// The expression graph holding every expression of this model.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
    /// The response (left-hand side).
    pub fn lhs(&self) -> ExprId {
        self.lhs
    }
    /// The model (right-hand side), after fixed parameters were substituted.
    pub fn rhs(&self) -> ExprId {
        self.rhs
    }
    /// Span of the response in the source.
    pub fn lhs_span(&self) -> Span {
        self.lhs_span
    }
    /// Span of the model in the source.
    pub fn rhs_span(&self) -> Span {
        self.rhs_span
    }
    /// Data column names given at parse time (all of them, used or not).
    pub fn columns(&self) -> &[String] {
        &self.columns
    }
    /// Data columns the formula uses, as indices into [`ModelFormula::columns`], in order of
    /// first appearance.
    pub fn used_columns(&self) -> Vec<usize> {
        self.used_columns
            .iter()
            .filter_map(|s| match self.pool.symbol_info(*s).kind {
                crate::pool::SymbolKind::Data(i) => Some(i),
                _ => None,
            })
            .collect()
    }
    /// All parameters: linear ones first, then nonlinear, each group in order of appearance.
    pub fn params(&self) -> &[Parameter] {
        &self.params
    }
    /// Linear parameters (eliminated by variable projection).
    pub fn linear_params(&self) -> impl Iterator<Item = &Parameter> {
        self.params.iter().filter(|p| p.linear)
    }
    /// Nonlinear parameters.
    pub fn nonlinear_params(&self) -> impl Iterator<Item = &Parameter> {
        self.params.iter().filter(|p| !p.linear)
    }
    /// Basis functions φ_j, one per linear parameter.
    pub fn basis(&self) -> &[ExprId] {
        &self.basis
    }
    /// The term φ_0 that no linear parameter multiplies, if any.
    pub fn offset(&self) -> Option<ExprId> {
        self.offset
    }
    /// Nonzero ∂φ_j/∂b_k as `(j, k, expr)`.
    pub fn basis_derivatives(&self) -> &[(usize, usize, ExprId)] {
        &self.d_basis
    }
    /// Nonzero ∂φ_0/∂b_k as `(k, expr)`.
    pub fn offset_derivatives(&self) -> &[(usize, ExprId)] {
        &self.d_offset
    }
    /// ∂f/∂θ for every parameter, in [`ModelFormula::params`] order.
    pub fn gradient(&self) -> &[ExprId] {
        &self.gradient
    }
    /// Explanations of structural choices (which factor of a product was made linear, fixed
    /// parameters) and hints: a parameter whose name is close to a data column the formula
    /// does not use (`tt` for `t`: "did you mean the column `t`?").
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
    /// Symbols of all parameters, in [`ModelFormula::params`] order.
    pub fn param_syms(&self) -> Vec<SymId> {
        self.params.iter().map(|p| p.sym).collect()
    }
    /// Symbols of the nonlinear parameters, in order.
    pub fn nonlinear_syms(&self) -> Vec<SymId> {
        self.nonlinear_params().map(|p| p.sym).collect()
    }
    /// Symbols of all data columns, in [`ModelFormula::columns`] order.
    pub fn column_syms(&self) -> Vec<SymId> {
        (0..self.columns.len())
            .filter_map(|i| self.pool.find_symbol(&self.columns[i]))
            .collect()
    }
    /// Plain-text form of an expression of this model.
    pub fn print(&self, id: ExprId) -> String {
        self.pool.to_plain(id)
    }
    /// LaTeX form of an expression of this model.
    pub fn latex(&self, id: ExprId) -> String {
        self.pool.to_latex(id)
    }
}

/// Whether `root` is affine in the parameter `p` by its structure: `p` occurs only in sums,
/// differences, negations, products with factors free of `p` and quotients by expressions free
/// of `p` (never inside a function, a power or a denominator). Then `f = p·∂f/∂p + f|_{p=0}`
/// exactly, and substituting `p = 0` gives the offset.
fn affine_in(pool: &Pool, root: ExprId, p: SymId) -> bool {
    use crate::pool::Node;
    let reach = pool.reachable(&[root]);
    let mut dep = vec![false; reach.len()];
    let mut aff = vec![true; reach.len()];
    for i in (0..reach.len()).filter(|&i| reach[i]) {
        let node = pool.node(ExprId(i as u32));
        dep[i] = match node {
            Node::Sym(s) => s == p,
            _ => node.children().any(|c| dep[c.index()]),
        };
        if !dep[i] {
            continue;
        }
        aff[i] = match node {
            Node::Const(_) | Node::Sym(_) => true,
            Node::Add(a, b) | Node::Sub(a, b) => aff[a.index()] && aff[b.index()],
            Node::Neg(a) => aff[a.index()],
            Node::Mul(a, b) => match (dep[a.index()], dep[b.index()]) {
                (false, _) => aff[b.index()],
                (_, false) => aff[a.index()],
                _ => false,
            },
            Node::Div(a, b) => !dep[b.index()] && aff[a.index()],
            Node::Pow(..) | Node::Call(..) | Node::XLogY(..) | Node::Call2(..) => false,
        };
    }
    aff[root.index()]
}

/// Notes for names taken as parameters that look like misspelt data columns: within a small
/// edit distance of a column that the formula does not use (`tt` for `t`). The parse
/// stands; the note says what happened.
fn column_typo_notes(pool: &Pool, params: &[(SymId, Span)], columns: &[&str], used: &[SymId], notes: &mut Vec<String>) {
    let used: Vec<&str> = used.iter().map(|s| pool.symbol_info(*s).name.as_str()).collect();
    let unused: Vec<&str> = columns.iter().copied().filter(|c| !used.contains(c)).collect();
    for (s, _) in params {
        let name = pool.symbol_info(*s).name.as_str();
        let best = unused
            .iter()
            .copied()
            .filter(|c| likely_typo(name, c))
            .min_by_key(|c| crate::func::edit_distance(name, c));
        if let Some(c) = best {
            notes.push(format!(
                "`{name}` is not a data column, so it is fitted as a parameter; did you mean the column `{c}`? (the formula does not use `{c}`)"
            ));
        }
    }
}

/// Whether `name` is plausibly a misspelling of the column `col`: one edit for short names
/// (and the same first letter, so `a1` is not taken for `x1`), up to a quarter of the length
/// for longer ones.
fn likely_typo(name: &str, col: &str) -> bool {
    let d = crate::func::edit_distance(name, col);
    if d == 0 {
        return false;
    }
    let short = name.chars().count().min(col.chars().count());
    if short < 4 {
        let first = |x: &str| x.chars().next().map(|c| c.to_ascii_lowercase());
        d == 1 && first(name) == first(col)
    } else {
        d <= 1 + short / 4
    }
}

/// With fixed values substituted, a constant subexpression that did not fold is not a finite
/// number (`sqrt(p)` with `p` fixed at -0.25): an error at the first fixed parameter it
/// involves, since the model cannot be evaluated (nor printed in the formula language).
fn check_fixed_finite(
    pool: &Pool,
    before: ExprId,
    after: ExprId,
    params: &[(SymId, Span)],
    fixed: &[(&str, f64)],
) -> Result<(), Diagnostic> {
    use crate::pool::Node;
    let reach = pool.reachable(&[after]);
    let mut free = vec![false; reach.len()];
    let mut bad: Option<ExprId> = None;
    for i in (0..reach.len()).filter(|&i| reach[i]) {
        let node = pool.node(ExprId(i as u32));
        free[i] = match node {
            Node::Sym(_) => true,
            _ => node.children().any(|c| free[c.index()]),
        };
        if !free[i] && !matches!(node, Node::Const(_)) && bad.is_none() {
            bad = Some(ExprId(i as u32));
        }
    }
    let Some(bad) = bad else { return Ok(()) };
    let involved: Vec<&(SymId, Span)> = params
        .iter()
        .filter(|(s, _)| fixed.iter().any(|(n, _)| *n == pool.symbol_info(*s).name) && pool.depends_on(before, *s))
        .collect();
    let span = involved.first().map(|(_, sp)| *sp).unwrap_or(Span::at(0));
    let names: Vec<String> = involved
        .iter()
        .map(|(s, _)| {
            let n = &pool.symbol_info(*s).name;
            let v = fixed.iter().find(|(f, _)| f == n).map(|(_, v)| *v).unwrap_or(f64::NAN);
            format!("`{n}` = {v}")
        })
        .collect();
    Err(Diagnostic::new(
        crate::diagnostic::DiagnosticKind::DomainError,
        span,
        format!(
            "with {} fixed, the model contains `{}`, which is not a finite number",
            names.join(", "),
            pool.to_plain(bad)
        ),
        "fixed here",
    )
    .hint("fix the parameter at a value where the model is defined"))
}

/// A maximum set of mutually non-conflicting candidates; among maximum sets, the one whose
/// sorted indices are lexicographically smallest (earliest in the formula). Exact for up to
/// 20 candidates in a conflict component, greedy beyond.
fn max_independent_set(cand: &[usize], conflict: &dyn Fn(usize, usize) -> bool) -> Vec<usize> {
    // Split into connected components of the conflict graph.
    let mut comp = vec![usize::MAX; cand.len()];
    let mut ncomp = 0;
    for s in 0..cand.len() {
        if comp[s] != usize::MAX {
            continue;
        }
        let mut stack = vec![s];
        comp[s] = ncomp;
        while let Some(u) = stack.pop() {
            for v in 0..cand.len() {
                if comp[v] == usize::MAX && conflict(cand[u], cand[v]) {
                    comp[v] = ncomp;
                    stack.push(v);
                }
            }
        }
        ncomp += 1;
    }
    let mut chosen = Vec::new();
    for c in 0..ncomp {
        let members: Vec<usize> = (0..cand.len()).filter(|&i| comp[i] == c).map(|i| cand[i]).collect();
        if members.len() == 1 {
            chosen.push(members[0]);
            continue;
        }
        if members.len() <= 20 {
            let m = members.len();
            let mut best: Option<Vec<usize>> = None;
            for mask in 0u32..(1u32 << m) {
                let set: Vec<usize> = (0..m).filter(|&i| mask & (1 << i) != 0).map(|i| members[i]).collect();
                let ok = set.iter().enumerate().all(|(x, &a)| set[x + 1..].iter().all(|&b| !conflict(a, b)));
                if !ok {
                    continue;
                }
                let better = match &best {
                    None => true,
                    Some(b) => set.len() > b.len() || (set.len() == b.len() && set < *b),
                };
                if better {
                    best = Some(set);
                }
            }
            chosen.extend(best.unwrap_or_default());
        } else {
            let mut set: Vec<usize> = Vec::new();
            for &a in &members {
                if set.iter().all(|&b| !conflict(a, b)) {
                    set.push(a);
                }
            }
            chosen.extend(set);
        }
    }
    chosen.sort();
    chosen
}
