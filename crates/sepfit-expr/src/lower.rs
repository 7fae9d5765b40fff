//! Lowering a parsed model formula to the expression graph, with diagnostics.

use crate::ast::{AstKind, BinOp, Parsed, Statement};
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::func::{self, Func};
use crate::pool::{ExprId, Pool, SymId, SymbolKind};
use crate::shape::{Dim, Shape};
use crate::span::Span;
use std::collections::HashMap;

/// Result of lowering a model formula.
pub(crate) struct Lowered {
    pub pool: Pool,
    pub lhs: ExprId,
    pub rhs: ExprId,
    /// Parameters in order of first appearance, with the span of that appearance.
    pub params: Vec<(SymId, Span)>,
    /// Data columns used, in order of first appearance.
    pub used_columns: Vec<SymId>,
    pub lhs_span: Span,
    pub rhs_span: Span,
}

pub(crate) fn lower_model(src: &str, parsed: &Parsed, columns: &[&str], declared: &[&str]) -> Result<Lowered, Diagnostic> {
    let mut pool = Pool::new();
    let col_syms: Vec<SymId> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| pool.symbol(c, SymbolKind::Data(i), Shape::Vector(Dim::Obs)))
        .collect();
    let mut defs: HashMap<String, (ExprId, Span)> = HashMap::new();
    let mut params: Vec<(SymId, Span)> = Vec::new();
    let mut used_columns: Vec<SymId> = Vec::new();
    let mut map: Vec<ExprId> = vec![ExprId(u32::MAX); parsed.ast.nodes.len()];
    let mut next_node = 0usize;
    let n_stmts = parsed.statements.len();
    let mut model: Option<(ExprId, ExprId, Span, Span)> = None;

    for (si, (st, st_span)) in parsed.statements.iter().enumerate() {
        let root = match st {
            Statement::Define { value, .. } => *value,
            Statement::Model { rhs, .. } => *rhs,
            Statement::Expr(e) => *e,
        };
        let in_lhs_until = match st {
            Statement::Model { lhs, .. } => lhs.0 as usize + 1,
            _ => 0,
        };
        // Lower all nodes of this statement (they are contiguous in the arena).
        while next_node <= root.0 as usize {
            let i = next_node;
            next_node += 1;
            let node = &parsed.ast.nodes[i];
            let span = node.span;
            let in_lhs = i < in_lhs_until;
            let m = |id: crate::ast::AstId| map[id.0 as usize];
            let id = match &node.kind {
                AstKind::Num(v) => pool.constant(*v),
                AstKind::Paren(inner) | AstKind::Pos(inner) => m(*inner),
                AstKind::Neg(inner) => pool.neg(m(*inner)),
                AstKind::Ident(name) => {
                    if let Some((e, _)) = defs.get(name) {
                        *e
                    } else if let Some(ci) = columns.iter().position(|c| c == name) {
                        if name == "pi" {
                            return Err(Diagnostic::new(
                                DiagnosticKind::Shadowing,
                                span,
                                "`pi` is both a data column and the constant π",
                                "ambiguous name",
                            )
                            .hint("rename the data column `pi`"));
                        }
                        if declared.contains(&name.as_str()) {
                            return Err(shadow_column(name, span));
                        }
                        let s = col_syms[ci];
                        if !used_columns.contains(&s) {
                            used_columns.push(s);
                        }
                        pool.sym(s)
                    } else if name == "pi" {
                        pool.constant(std::f64::consts::PI)
                    } else if Func::from_name(name).is_some() {
                        return Err(Diagnostic::new(
                            DiagnosticKind::NotAFunction,
                            span,
                            format!("`{name}` is a function, used here without an argument"),
                            "function name",
                        )
                        .hint(format!("call it with parentheses: `{name}(...)`")));
                    } else if in_lhs {
                        let mut d = Diagnostic::new(
                            DiagnosticKind::BadResponse,
                            span,
                            format!("`{name}` in the response is not a data column"),
                            "not a column",
                        );
                        d = d.hint(format!("the left-hand side of `~` may only use data columns: {}", list(columns)));
                        if let Some(c) = closest(name, columns) {
                            d = d.hint(format!("did you mean the column `{c}`?"));
                        }
                        return Err(d);
                    } else {
                        let s = pool.symbol(name, SymbolKind::Parameter, Shape::Scalar);
                        if !params.iter().any(|(p, _)| *p == s) {
                            if params.len() == crate::model::MAX_PARAMS {
                                return Err(Diagnostic::new(
                                    DiagnosticKind::TooManyParameters,
                                    span,
                                    format!("more than {} parameters in one formula", crate::model::MAX_PARAMS),
                                    "one parameter too many",
                                )
                                .hint("fit many curves with `sepfit batch` or a global fit instead of one giant formula"));
                            }
                            params.push((s, span));
                        }
                        pool.sym(s)
                    }
                }
                AstKind::Binary(op, ra, rb) => {
                    let (a, b) = (m(*ra), m(*rb));
                    match op {
                        BinOp::Add => pool.add(a, b),
                        BinOp::Sub => pool.sub(a, b),
                        BinOp::Mul | BinOp::ElemMul => pool.mul(a, b),
                        BinOp::Div | BinOp::ElemDiv => {
                            if pool.as_const(b) == Some(0.0) {
                                return Err(Diagnostic::new(
                                    DiagnosticKind::DomainError,
                                    parsed.ast.span(*rb),
                                    "division by zero",
                                    "this is zero",
                                ));
                            }
                            pool.div(a, b)
                        }
                        BinOp::Pow | BinOp::ElemPow => {
                            if let (Some(x), Some(y)) = (pool.as_const(a), pool.as_const(b)) {
                                let v = func::pow(x, y);
                                if !v.is_finite() {
                                    return Err(Diagnostic::new(
                                        DiagnosticKind::DomainError,
                                        span,
                                        format!("`{x}^{y}` is not a finite real number"),
                                        "undefined power",
                                    ));
                                }
                            }
                            pool.pow(a, b)
                        }
                    }
                }
                AstKind::Transpose(_) => {
                    return Err(Diagnostic::new(
                        DiagnosticKind::NotAllowedHere,
                        span,
                        "transpose `'` is not meaningful in a model formula",
                        "transpose",
                    )
                    .hint("model formulas are written per observation; transpose belongs to matrix expressions (`sepfit grad`)"));
                }
                AstKind::Call { name, args, .. } if name == "xlogy" => {
                    if args.len() != 2 {
                        return Err(Diagnostic::new(
                            DiagnosticKind::WrongArity,
                            span,
                            format!("`xlogy` takes 2 arguments, got {}", args.len()),
                            "wrong number of arguments",
                        )
                        .hint("`xlogy(x, y)` is `x*log(y)`, and 0 where x is 0"));
                    }
                    pool.xlogy(m(args[0]), m(args[1]))
                }
                AstKind::Call { name, args, .. } if func::Func2::from_name(name).is_some() => {
                    let f = func::Func2::from_name(name).unwrap_or(func::Func2::Max);
                    if args.len() != 2 {
                        return Err(Diagnostic::new(
                            DiagnosticKind::WrongArity,
                            span,
                            format!("`{name}` takes 2 arguments, got {}", args.len()),
                            "wrong number of arguments",
                        )
                        .hint(match f {
                            func::Func2::Atan2 => "`atan2(y, x)` is the angle of the point (x, y)",
                            func::Func2::Max => "`max(a, b)` is the larger of a and b, elementwise",
                            func::Func2::Min => "`min(a, b)` is the smaller of a and b, elementwise",
                        }));
                    }
                    pool.call2(f, m(args[0]), m(args[1]))
                }
                AstKind::Call { name, name_span, args } => {
                    let f = match Func::from_name(name) {
                        Some(f) => f,
                        None => {
                            if columns.contains(&name.as_str()) || defs.contains_key(name) {
                                return Err(Diagnostic::new(
                                    DiagnosticKind::NotAFunction,
                                    *name_span,
                                    format!("`{name}` is not a function"),
                                    "called like a function",
                                )
                                .hint(format!("write multiplication explicitly: `{name}*(...)`")));
                            }
                            let mut d = Diagnostic::new(
                                DiagnosticKind::UnknownFunction,
                                *name_span,
                                format!("unknown function `{name}`"),
                                "unknown function",
                            );
                            if let Some(s) = func::suggest(name) {
                                d = d.hint(format!("did you mean `{s}`?"));
                            }
                            let mut names: Vec<&str> =
                                func::ALL_FUNCS.iter().map(|f| f.name()).filter(|n| *n != "sign").collect();
                            names.push("xlogy");
                            names.extend(func::ALL_FUNCS2.iter().map(|f| f.name()));
                            return Err(d.hint(format!("known functions: {}", names.join(", "))));
                        }
                    };
                    if args.len() != 1 {
                        return Err(Diagnostic::new(
                            DiagnosticKind::WrongArity,
                            span,
                            format!("`{name}` takes 1 argument, got {}", args.len()),
                            "wrong number of arguments",
                        ));
                    }
                    let a = m(args[0]);
                    if let Some(x) = pool.as_const(a)
                        && let Some(why) = f.domain_error(x) {
                            return Err(Diagnostic::new(
                                DiagnosticKind::DomainError,
                                parsed.ast.span(args[0]),
                                format!("`{name}` of the constant {x}: {why}"),
                                format!("this is {x}"),
                            ));
                        }
                    pool.call(f, a)
                }
            };
            // A constant expression that did not fold is not a finite number (`1e308*10`):
            // an error here, as for a literal that overflows.
            let operands_const = match &node.kind {
                AstKind::Binary(_, ra, rb) => pool.as_const(map[ra.0 as usize]).is_some() && pool.as_const(map[rb.0 as usize]).is_some(),
                AstKind::Call { args, .. } => args.iter().all(|a| pool.as_const(map[a.0 as usize]).is_some()),
                AstKind::Neg(a) => pool.as_const(map[a.0 as usize]).is_some(),
                _ => false,
            };
            // (A product or quotient that underflows to a subnormal is left unfolded on purpose
            // and is finite: no error.)
            let v = if operands_const && pool.as_const(id).is_none() { pool.eval(id, &|_| f64::NAN) } else { 0.0 };
            if !v.is_finite() {
                let what = if v.is_nan() { "is not a real number (NaN)" } else { "overflows to infinity" };
                return Err(Diagnostic::new(DiagnosticKind::DomainError, span, format!("this constant expression {what}"), "not a finite number")
                    .hint("constants must be finite double-precision numbers (at most about 1.8e308)"));
            }
            map[i] = id;
        }
        match st {
            Statement::Define { name, name_span, value } => {
                if si + 1 == n_stmts {
                    // `y = a*exp(-k*t)`: a definition where the model should be
                    let vspan = parsed.ast.span(*value);
                    let lo = name_span.end.min(src.len());
                    let hi = vspan.start.clamp(lo, src.len());
                    let eq = src.get(lo..hi).and_then(|b| b.find('=')).map(|k| Span::new(lo + k, lo + k + 1)).unwrap_or(*name_span);
                    let rhs_text = src.get(vspan.start.min(src.len())..vspan.end.min(src.len())).unwrap_or("");
                    return Err(Diagnostic::new(
                        DiagnosticKind::MissingTilde,
                        eq,
                        "the formula ends in a definition, not a model: a model formula needs `~`",
                        "did you mean `~`?",
                    )
                    .hint(format!("did you mean `~`? write `{name} ~ {rhs_text}`; `name = ...;` defines an intermediate quantity before the model")));
                }
                if columns.contains(&name.as_str()) {
                    return Err(Diagnostic::new(
                        DiagnosticKind::Shadowing,
                        *name_span,
                        format!("definition `{name}` shadows the data column `{name}`"),
                        "already a data column",
                    )
                    .hint("choose another name for the intermediate quantity"));
                }
                if defs.contains_key(name) || params.iter().any(|(p, _)| pool.symbol_info(*p).name == *name) {
                    return Err(Diagnostic::new(
                        DiagnosticKind::BadDefinition,
                        *name_span,
                        format!("`{name}` is already defined or used"),
                        "redefinition",
                    )
                    .hint("define each name once, before it is used"));
                }
                if Func::from_name(name).is_some() || func::Func2::from_name(name).is_some() || name == "pi" || name == "xlogy" {
                    return Err(Diagnostic::new(
                        DiagnosticKind::Shadowing,
                        *name_span,
                        format!("`{name}` is a built-in name"),
                        "cannot be redefined",
                    ));
                }
                defs.insert(name.clone(), (map[value.0 as usize], *st_span));
            }
            Statement::Model { lhs, rhs, .. } => {
                if si + 1 != n_stmts {
                    return Err(Diagnostic::new(
                        DiagnosticKind::UnexpectedToken,
                        *st_span,
                        "the model `response ~ formula` must be the last statement",
                        "more follows",
                    ));
                }
                let (lspan, rspan) = (parsed.ast.span(*lhs), parsed.ast.span(*rhs));
                model = Some((map[lhs.0 as usize], map[rhs.0 as usize], lspan, rspan));
            }
            Statement::Expr(_) => {
                if si + 1 == n_stmts {
                    return Err(Diagnostic::new(
                        DiagnosticKind::MissingTilde,
                        *st_span,
                        "a model formula needs `~` between the response and the model",
                        "no `~` in this formula",
                    )
                    .hint(format!("write `RESPONSE ~ MODEL`, e.g. `y ~ a*exp(-b*t)`; data columns: {}", list(columns))));
                }
                return Err(Diagnostic::new(
                    DiagnosticKind::BadDefinition,
                    *st_span,
                    "an expression statement has no effect here",
                    "not a definition",
                )
                .hint("statements before the model are definitions: `name = expression;`"));
            }
        }
    }
    let (lhs, rhs, lhs_span, rhs_span) = model.ok_or_else(|| {
        Diagnostic::new(DiagnosticKind::MissingTilde, Span::new(0, src.len()), "no model statement", "")
    })?;
    // The response may not depend on parameters (through a definition).
    for s in pool.free_symbols(lhs) {
        if pool.symbol_info(s).kind == SymbolKind::Parameter {
            return Err(Diagnostic::new(
                DiagnosticKind::BadResponse,
                lhs_span,
                format!("the response depends on the parameter `{}`", pool.symbol_info(s).name),
                "response must be data only",
            )
            .hint("the left-hand side of `~` may only use data columns"));
        }
    }
    if pool.free_symbols(lhs).is_empty() {
        return Err(Diagnostic::new(
            DiagnosticKind::BadResponse,
            lhs_span,
            "the response uses no data column",
            "constant response",
        )
        .hint(format!("put the measured column on the left of `~`; data columns: {}", list(columns))));
    }
    Ok(Lowered { pool, lhs, rhs, params, used_columns, lhs_span, rhs_span })
}

fn shadow_column(name: &str, span: Span) -> Diagnostic {
    Diagnostic::new(
        DiagnosticKind::Shadowing,
        span,
        format!("parameter `{name}` shadows the data column `{name}`"),
        "this is a data column",
    )
    .hint(format!("rename the parameter (e.g. `{name}_0`) or the column; a name in the data is always data"))
}

/// Checks that names given as parameters (start values, fixed values) are not data columns.
/// The span points at the first use in the formula, or at the whole formula if unused.
pub(crate) fn check_declared(parsed: &Parsed, columns: &[&str], declared: &[&str], src_len: usize) -> Result<(), Diagnostic> {
    for d in declared {
        if columns.contains(d) {
            let span = parsed
                .ast
                .nodes
                .iter()
                .find(|n| matches!(&n.kind, AstKind::Ident(s) if s == d))
                .map(|n| n.span)
                .unwrap_or(Span::new(0, src_len));
            return Err(shadow_column(d, span));
        }
    }
    Ok(())
}

fn list(columns: &[&str]) -> String {
    if columns.is_empty() {
        "(none given)".into()
    } else {
        columns.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
    }
}

fn closest<'a>(name: &str, options: &[&'a str]) -> Option<&'a str> {
    options
        .iter()
        .map(|o| (func::edit_distance(name, o), *o))
        .filter(|(d, o)| *d <= 1 + o.len() / 4 && *d < name.chars().count())
        .min()
        .map(|(_, o)| o)
}
