//! Declarations (`X: n x d, w: d`) and lowering of a parsed loss formula to the typed
//! [`Graph`], with shape checks whose diagnostics carry the operator's span and name both shapes.

use super::graph::{Graph, MId, ONE, broadcast, from_rc, rc};
use crate::ast::{AstId, AstKind, BinOp, Parsed, Statement};
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::func::{self, Func};
use crate::shape::{Dim, Shape};
use crate::span::Span;
use std::collections::HashMap;

/// One declared variable: its name, shape and where it was declared (in the declaration text).
#[derive(Clone, Debug, PartialEq)]
pub struct Decl {
    /// Variable name.
    pub name: String,
    /// Its shape; symbolic dimensions index into the graph's dimension names.
    pub shape: Shape,
    /// Span in the declaration text.
    pub span: Span,
}

/// Matrix functions of the loss language besides the elementwise [`Func`]s.
pub const MATRIX_FUNCS: [&str; 21] = [
    "sum", "norm2", "normF", "tr", "diag", "inv", "det", "logdet", "trace", "normf", "eye", "ones", "xlogy", "softmax", "logsumexp", "atan2", "max",
    "min", "pinv", "kron", "kronsum",
];

/// Parses declarations such as `X: n x d, w: d, y: n, s: scalar` or
/// `X: matrix(n, d); w: vector(d)`. Dimensions are names (symbolic) or integers. A bare
/// dimension (`w: d`) declares a column vector. Spans refer to `text`.
pub fn parse_decls(text: &str, g: &mut Graph) -> Result<Vec<Decl>, Diagnostic> {
    let mut out: Vec<Decl> = Vec::new();
    // split at top-level `,` and `;`
    let mut items: Vec<(usize, usize)> = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, ch) in text.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' | ';' | '\n' if depth <= 0 => {
                items.push((start, i));
                start = i + ch.len_utf8();
            }
            _ => {}
        }
    }
    items.push((start, text.len()));
    for (s, e) in items {
        let item = &text[s..e];
        if item.trim().is_empty() {
            continue;
        }
        let lead = item.len() - item.trim_start().len();
        let (s, item) = (s + lead, item.trim());
        let span = Span::new(s, s + item.len());
        let bad = |msg: String| {
            Diagnostic::new(DiagnosticKind::UnexpectedToken, span, msg, "cannot read this declaration")
                .hint("declare variables as `X: n x d, w: d, y: n, s: scalar` (or `X: matrix(n, d); w: vector(d)`)")
        };
        let Some(colon) = item.find(':') else {
            if is_ident(item) {
                // a bare name declares a scalar
                if out.iter().any(|d| d.name == item) {
                    return Err(bad(format!("`{item}` is declared twice")));
                }
                out.push(Decl { name: item.to_string(), shape: Shape::Scalar, span });
                continue;
            }
            return Err(bad(format!("declaration `{item}` has no `:`")));
        };
        let name = item[..colon].trim();
        if !is_ident(name) {
            return Err(bad(format!("`{name}` is not a variable name")));
        }
        let spec = item[colon + 1..].trim();
        let dims_text: Vec<&str> = if spec == "scalar" || spec.is_empty() {
            vec![]
        } else if let Some(inner) = spec.strip_prefix("matrix(").or_else(|| spec.strip_prefix("vector(")) {
            let Some(inner) = inner.strip_suffix(')') else {
                return Err(bad(format!("unclosed parenthesis in `{spec}`")));
            };
            let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
            let want = if spec.starts_with("matrix") { 2 } else { 1 };
            if parts.len() != want {
                return Err(bad(format!("`{}` takes {want} dimension(s), found {}", &spec[..6], parts.len())));
            }
            parts
        } else {
            spec.split(['x', '×', '*']).map(str::trim).collect()
        };
        let mut dims = Vec::new();
        for d in &dims_text {
            if let Ok(k) = d.parse::<usize>() {
                if k == 0 {
                    return Err(bad("a dimension must be at least 1".into()));
                }
                dims.push(Dim::Fixed(k));
            } else if is_ident(d) {
                dims.push(g.dim(d));
            } else {
                return Err(bad(format!("`{d}` is not a dimension (a name such as `n` or a number)")));
            }
        }
        let shape = match dims.as_slice() {
            [] => Shape::Scalar,
            [d] => super::graph::from_rc(*d, ONE),
            [r, c] => super::graph::from_rc(*r, *c),
            _ => return Err(bad(format!("`{name}` has more than two dimensions"))),
        };
        if out.iter().any(|d| d.name == name) {
            return Err(Diagnostic::new(
                DiagnosticKind::BadDefinition,
                span,
                format!("`{name}` is declared twice"),
                "second declaration",
            ));
        }
        out.push(Decl { name: name.to_string(), shape, span });
    }
    Ok(out)
}

fn is_ident(s: &str) -> bool {
    let mut ch = s.chars();
    ch.next().is_some_and(|c| c.is_alphabetic() || c == '_') && ch.all(|c| c.is_alphanumeric() || c == '_')
}

/// The result of lowering a loss formula.
pub(crate) struct LoweredLoss {
    /// The value of the last statement.
    pub root: MId,
    /// Definitions `name = expr` in source order.
    pub defs: Vec<(String, MId)>,
    /// Variables used, with the span of their first use.
    pub used: Vec<(u32, Span)>,
}

/// Lowers `parsed` into `g`, whose variables must already be declared.
pub(crate) fn lower_loss(src: &str, parsed: &Parsed, g: &mut Graph) -> Result<LoweredLoss, Diagnostic> {
    let mut defs: HashMap<String, (MId, Span)> = HashMap::new();
    let mut def_order: Vec<(String, MId)> = Vec::new();
    let mut used: Vec<(u32, Span)> = Vec::new();
    let mut map: Vec<MId> = vec![MId(u32::MAX); parsed.ast.nodes.len()];
    let mut next = 0usize;
    let mut last: Option<MId> = None;
    // `eye(n)` names a dimension, not a variable: its argument is read from the syntax tree.
    let eye_args: std::collections::HashSet<u32> = parsed
        .ast
        .nodes
        .iter()
        .filter_map(|n| match &n.kind {
            AstKind::Call { name, args, .. } if name == "eye" && args.len() == 1 => Some(vec![args[0].0]),
            AstKind::Call { name, args, .. } if name == "ones" && (1..=2).contains(&args.len()) => {
                Some(args.iter().map(|a| a.0).collect())
            }
            _ => None,
        })
        .flatten()
        .collect();
    for (st, _span) in &parsed.statements {
        let root = match st {
            Statement::Define { value, .. } => *value,
            Statement::Expr(e) => *e,
            Statement::Model { tilde, .. } => {
                return Err(Diagnostic::new(
                    DiagnosticKind::NotAllowedHere,
                    *tilde,
                    "`~` is for model formulas; a loss is an expression",
                    "not allowed in a loss",
                )
                .hint("write the loss itself, e.g. `norm2(X*w - y)^2`, and fit models with `sepfit fit`"));
            }
        };
        while next <= root.0 as usize {
            let i = next;
            next += 1;
            let node = &parsed.ast.nodes[i];
            let span = node.span;
            let m = |id: AstId| map[id.0 as usize];
            let id = match &node.kind {
                AstKind::Num(v) => g.constant(*v),
                AstKind::Paren(x) | AstKind::Pos(x) => m(*x),
                AstKind::Neg(x) => g.neg(m(*x)),
                AstKind::Transpose(x) => g.transpose(m(*x)),
                AstKind::Ident(_) if eye_args.contains(&(i as u32)) => g.constant(0.0),
                AstKind::Ident(name) => {
                    if let Some((e, _)) = defs.get(name) {
                        *e
                    } else if let Some(v) = g.find_var(name) {
                        if !used.iter().any(|(u, _)| *u == v) {
                            used.push((v, span));
                        }
                        g.var(v)
                    } else if name == "pi" {
                        g.constant(std::f64::consts::PI)
                    } else if Func::from_name(name).is_some() || MATRIX_FUNCS.contains(&name.as_str()) {
                        return Err(Diagnostic::new(
                            DiagnosticKind::NotAFunction,
                            span,
                            format!("`{name}` is a function, used here without an argument"),
                            "function name",
                        )
                        .hint(format!("call it with parentheses: `{name}(...)`")));
                    } else if name == "I" {
                        return Err(Diagnostic::new(
                            DiagnosticKind::BadDefinition,
                            span,
                            "`I` is not a variable here: the identity matrix is written with its size",
                            "not declared",
                        )
                        .hint("write `eye(n)` for the n×n identity (n a declared dimension or a number), or declare `I` as a variable"));
                    } else {
                        let mut d = Diagnostic::new(
                            DiagnosticKind::BadDefinition,
                            span,
                            format!("unknown variable `{name}`"),
                            "not declared, defined or given a value",
                        )
                        .hint(format!("declare it, e.g. `--var \"{name}: n\"`, or give it a value in the values file"));
                        let names: Vec<&str> = g.vars.iter().map(|v| v.name.as_str()).chain(defs.keys().map(String::as_str)).collect();
                        if let Some(c) = names.iter().min_by_key(|c| func::edit_distance(name, c))
                            && func::edit_distance(name, c) <= 1 + name.len() / 4 {
                                d = d.hint(format!("did you mean `{c}`?"));
                            }
                        return Err(d);
                    }
                }
                AstKind::Binary(op, a, b) => {
                    let op_span = op_span(src, parsed.ast.span(*a), parsed.ast.span(*b), op.symbol());
                    binary(g, *op, m(*a), m(*b), op_span)?
                }
                AstKind::Call { name, args, .. } if (name == "eye" && args.len() == 1) || (name == "ones" && (1..=2).contains(&args.len())) => {
                    let mut ds = Vec::new();
                    for a in args {
                    let arg = parsed.ast.get(*a);
                    let d = match &arg.kind {
                        AstKind::Ident(dn) if g.dims.iter().any(|x| x == dn) => g.dim(dn),
                        AstKind::Num(v) if *v >= 1.0 && v.fract() == 0.0 && *v <= 1e6 => Dim::Fixed(*v as usize),
                        _ => {
                            return Err(Diagnostic::new(
                                DiagnosticKind::ShapeMismatch,
                                arg.span,
                                if name == "eye" {
                                    "`eye` takes a dimension: a declared dimension name or a positive whole number".to_string()
                                } else {
                                    "`ones` takes dimensions: declared dimension names or positive whole numbers".to_string()
                                },
                                "not a dimension",
                            )
                            .hint(format!(
                                "declared dimensions: {}",
                                if g.dims.is_empty() { "(none)".to_string() } else { g.dims.join(", ") }
                            )));
                        }
                    };
                    ds.push(d);
                    }
                    if name == "eye" {
                        g.eye(ds[0])
                    } else {
                        // `ones(n)` is a column of n ones, `ones(r, c)` an r×c matrix of them
                        let s = from_rc(ds[0], ds.get(1).copied().unwrap_or(ONE));
                        g.fill(1.0, s)
                    }
                }
                AstKind::Call { name, name_span, args } => {
                    let ids: Vec<MId> = args.iter().map(|a| m(*a)).collect();
                    let arg_spans: Vec<Span> = args.iter().map(|a| parsed.ast.span(*a)).collect();
                    // A matrix function of a scalar constant is a constant: it must be finite
                    // (`inv(0)`, `logdet(0)` are not), as every constant of the language is.
                    if let [a] = ids.as_slice()
                        && let Some(x) = g.fill_value(*a)
                        && matches!(g.shape(*a), Shape::Scalar)
                    {
                        let v = match name.as_str() {
                            "inv" | "pinv" => Some(1.0 / x),
                            "logdet" => Some(x.ln()),
                            _ => None,
                        };
                        if let Some(v) = v
                            && !v.is_finite()
                        {
                            return Err(Diagnostic::new(
                                DiagnosticKind::DomainError,
                                span,
                                format!("`{name}` of the constant {x} is not a finite number"),
                                "not a finite number",
                            )
                            .hint("constants must be finite double-precision numbers"));
                        }
                    }
                    call(g, name, *name_span, span, &ids, &arg_spans)?
                }
            };
            if let Some(v) = g.fill_value(id)
                && !v.is_finite() {
                    return Err(non_finite(v, span));
                }
            if let AstKind::Binary(BinOp::Div | BinOp::ElemDiv, _, b) = &node.kind
                && g.fill_value(m(*b)) == Some(0.0) {
                    return Err(Diagnostic::new(DiagnosticKind::DomainError, parsed.ast.span(*b), "division by zero", "this is zero"));
                }
            if let Some(v) = constant_value(g, &node.kind, &m)
                && !v.is_finite() {
                    return Err(non_finite(v, span));
                }
            map[i] = id;
        }
        let value = map[root.0 as usize];
        if let Statement::Define { name, name_span, .. } = st {
            if defs.contains_key(name) || g.find_var(name).is_some() {
                return Err(Diagnostic::new(
                    DiagnosticKind::BadDefinition,
                    *name_span,
                    format!("`{name}` is already defined"),
                    "redefinition",
                )
                .hint("give each intermediate quantity its own name"));
            }
            defs.insert(name.clone(), (value, *name_span));
            def_order.push((name.clone(), value));
        }
        last = Some(value);
    }
    let root = last.ok_or_else(|| Diagnostic::new(DiagnosticKind::EmptyFormula, Span::at(0), "the formula is empty", "nothing here"))?;
    Ok(LoweredLoss { root, defs: def_order, used })
}

/// The value of an elementwise operation on constants, computed as the graph would fold it
/// (the graph leaves a constant that is not finite unfolded, so it is caught here).
fn constant_value(g: &Graph, kind: &AstKind, m: &dyn Fn(AstId) -> MId) -> Option<f64> {
    match kind {
        AstKind::Binary(op, a, b) => {
            let (x, y) = (g.fill_value(m(*a))?, g.fill_value(m(*b))?);
            Some(match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul | BinOp::ElemMul => x * y,
                BinOp::Div | BinOp::ElemDiv => x / y,
                BinOp::Pow | BinOp::ElemPow => func::pow(x, y),
            })
        }
        AstKind::Call { name, args, .. } if args.len() == 1 => Func::from_name(name).and_then(|f| Some(f.apply(g.fill_value(m(args[0]))?))),
        AstKind::Call { name, args, .. } if args.len() == 2 && name == "xlogy" => {
            Some(func::xlogy(g.fill_value(m(args[0]))?, g.fill_value(m(args[1]))?))
        }
        AstKind::Call { name, args, .. } if args.len() == 2 => func::Func2::from_name(name)
            .and_then(|f| Some(f.apply(g.fill_value(m(args[0]))?, g.fill_value(m(args[1]))?))),
        _ => None,
    }
}

/// A constant expression whose value is not a finite number (`1e308*10`, `sqrt(-1)`): the loss
/// language has no infinities or NaNs, so this is an error at the expression.
fn non_finite(v: f64, span: Span) -> Diagnostic {
    let what = if v.is_nan() { "is not a real number (NaN)" } else { "overflows to infinity" };
    Diagnostic::new(DiagnosticKind::DomainError, span, format!("this constant expression {what}"), "not a finite number")
        .hint("constants must be finite double-precision numbers (at most about 1.8e308)")
}

/// The span of the operator between two operands (found in the source between them).
fn op_span(src: &str, a: Span, b: Span, sym: &str) -> Span {
    let (lo, hi) = (a.end.min(src.len()), b.start.min(src.len()));
    if lo <= hi
        && let Some(between) = src.get(lo..hi)
            && let Some(k) = between.find(sym) {
                return Span::new(lo + k, lo + k + sym.len());
            }
    a.to(b)
}

fn mismatch(g: &Graph, span: Span, what: &str, a: MId, b: MId) -> Diagnostic {
    let (sa, sb) = (g.shape(a), g.shape(b));
    Diagnostic::new(
        DiagnosticKind::ShapeMismatch,
        span,
        format!("{what} (left: {}, right: {})", g.shape_name(sa), g.shape_name(sb)),
        format!("{} and {}", g.shape_short(sa), g.shape_short(sb)),
    )
}

fn binary(g: &mut Graph, op: BinOp, a: MId, b: MId, span: Span) -> Result<MId, Diagnostic> {
    let (sa, sb) = (g.shape(a), g.shape(b));
    let elementwise = |g: &mut Graph, what: &str| -> Result<(), Diagnostic> {
        if broadcast(sa, sb).is_none() {
            return Err(mismatch(g, span, what, a, b)
                .hint("elementwise operations need equal shapes, a scalar, or a column and a row (`x - b'`)"));
        }
        Ok(())
    };
    Ok(match op {
        BinOp::Add => {
            elementwise(g, "cannot add these")?;
            g.add(a, b)
        }
        BinOp::Sub => {
            elementwise(g, "cannot subtract these")?;
            g.sub(a, b)
        }
        BinOp::ElemMul => {
            elementwise(g, "cannot multiply these elementwise")?;
            g.mul(a, b)
        }
        BinOp::ElemDiv => {
            elementwise(g, "cannot divide these elementwise")?;
            g.div(a, b)
        }
        BinOp::ElemPow => {
            elementwise(g, "cannot raise these elementwise")?;
            g.pow(a, b)
        }
        BinOp::Mul => {
            if sa == Shape::Scalar || sb == Shape::Scalar {
                return Ok(g.mul(a, b));
            }
            let (_, ac) = rc(sa);
            let (br, _) = rc(sb);
            if ac != br {
                let mut d = mismatch(g, span, "matrix product `*` needs the columns of the left operand to match the rows of the right", a, b);
                if broadcast(sa, sb).is_some() {
                    d = d.hint("for the elementwise product write `.*`");
                } else if rc(sa).0 == br {
                    d = d.hint("transpose the left operand: `A'*B`");
                }
                return Err(d);
            }
            g.matmul(a, b)
        }
        BinOp::Div => {
            if sb != Shape::Scalar {
                return Err(mismatch(g, span, "`/` divides by a scalar only", a, b)
                    .hint("for elementwise division write `./`; for a matrix inverse write `inv(B)`"));
            }
            g.div(a, b)
        }
        BinOp::Pow if sa != Shape::Scalar && sb == Shape::Scalar => {
            // X^k: the matrix power of a square matrix, k an integer constant
            let (r, c) = rc(sa);
            let k = g.as_const(b).filter(|k| k.fract() == 0.0 && k.abs() <= 1024.0);
            match k {
                Some(k) if r == c => g.mat_pow(a, k as i32),
                Some(_) => {
                    return Err(mismatch(g, span, "`^` of a matrix is the matrix power of a square matrix", a, b)
                        .hint("for the elementwise power write `.^`"));
                }
                None => {
                    return Err(mismatch(g, span, "a matrix power `X^k` needs a whole-number constant exponent k (|k| ≤ 1024)", a, b)
                        .hint("for the elementwise power write `.^`"));
                }
            }
        }
        BinOp::Pow => {
            if sa != Shape::Scalar || sb != Shape::Scalar {
                return Err(mismatch(g, span, "`^` is the power of scalars", a, b).hint("for the elementwise power write `.^`"));
            }
            g.pow(a, b)
        }
    })
}

fn call(g: &mut Graph, name: &str, name_span: Span, span: Span, args: &[MId], arg_spans: &[Span]) -> Result<MId, Diagnostic> {
    let arity = |n: usize| -> Result<(), Diagnostic> {
        if args.len() != n {
            return Err(Diagnostic::new(
                DiagnosticKind::WrongArity,
                span,
                format!("`{name}` takes {n} argument{}, found {}", if n == 1 { "" } else { "s" }, args.len()),
                "wrong number of arguments",
            ));
        }
        Ok(())
    };
    let square = |g: &Graph, a: MId| -> Result<Dim, Diagnostic> {
        let s = g.shape(a);
        let (r, c) = rc(s);
        if r != c {
            return Err(Diagnostic::new(
                DiagnosticKind::ShapeMismatch,
                arg_spans[0],
                format!("`{name}` needs a square matrix, but its argument is a {}", g.shape_name(s)),
                g.shape_short(s),
            ));
        }
        Ok(r)
    };
    if let Some(f) = Func::from_name(name) {
        arity(1)?;
        return Ok(g.call(f, args[0]));
    }
    if name == "xlogy" {
        arity(2)?;
        if broadcast(g.shape(args[0]), g.shape(args[1])).is_none() {
            return Err(mismatch(g, span, "cannot take `xlogy` of these elementwise", args[0], args[1])
                .hint("elementwise operations need equal shapes, a scalar, or a column and a row (`x - b'`)"));
        }
        return Ok(g.xlogy(args[0], args[1]));
    }
    if let Some(f) = func::Func2::from_name(name) {
        arity(2)?;
        if broadcast(g.shape(args[0]), g.shape(args[1])).is_none() {
            return Err(mismatch(g, span, &format!("cannot take `{name}` of these elementwise"), args[0], args[1])
                .hint("elementwise operations need equal shapes, a scalar, or a column and a row (`x - b'`)"));
        }
        return Ok(g.call2(f, args[0], args[1]));
    }
    match name {
        "sum" => {
            if args.len() == 2 {
                let dim = g.as_const(args[1]);
                return match dim {
                    Some(1.0) => Ok(g.sum_rows(args[0])),
                    Some(2.0) => Ok(g.sum_cols(args[0])),
                    _ => Err(Diagnostic::new(
                        DiagnosticKind::UnexpectedToken,
                        arg_spans[1],
                        "the second argument of `sum` is the dimension to sum over: 1 or 2",
                        "expected 1 or 2",
                    )
                    .hint("`sum(A, 1)` sums each column (a row), `sum(A, 2)` each row (a column)")),
                };
            }
            arity(1)?;
            Ok(g.sum(args[0]))
        }
        "norm2" => {
            arity(1)?;
            let s = g.shape(args[0]);
            let (r, c) = rc(s);
            if r != ONE && c != ONE {
                return Err(Diagnostic::new(
                    DiagnosticKind::ShapeMismatch,
                    arg_spans[0],
                    format!("`norm2` is the 2-norm of a vector, but its argument is a {}", g.shape_name(s)),
                    g.shape_short(s),
                )
                .hint("for the Frobenius norm of a matrix write `normF(A)`"));
            }
            Ok(g.norm2(args[0]))
        }
        "normF" | "normf" => {
            arity(1)?;
            Ok(g.normf(args[0]))
        }
        "tr" | "trace" => {
            arity(1)?;
            square(g, args[0])?;
            Ok(g.trace(args[0]))
        }
        "diag" => {
            arity(1)?;
            let s = g.shape(args[0]);
            let (r, c) = rc(s);
            if c == ONE {
                Ok(g.diag_m(args[0]))
            } else if r == ONE {
                let t = g.transpose(args[0]);
                Ok(g.diag_m(t))
            } else if r == c {
                Ok(g.diag_v(args[0]))
            } else {
                Err(Diagnostic::new(
                    DiagnosticKind::ShapeMismatch,
                    arg_spans[0],
                    format!("`diag` takes a vector or a square matrix, but its argument is a {}", g.shape_name(s)),
                    g.shape_short(s),
                ))
            }
        }
        "inv" => {
            arity(1)?;
            square(g, args[0])?;
            Ok(g.inv(args[0]))
        }
        "det" => {
            arity(1)?;
            square(g, args[0])?;
            Ok(g.det(args[0]))
        }
        "logdet" => {
            arity(1)?;
            square(g, args[0])?;
            Ok(g.logdet(args[0]))
        }
        "logsumexp" | "softmax" if args.len() == 2 => match g.as_const(args[1]) {
            Some(d @ (1.0 | 2.0)) => {
                let d = d as u8;
                Ok(if name == "logsumexp" { g.logsumexp_dim(args[0], d) } else { g.softmax_dim(args[0], d) })
            }
            _ => Err(Diagnostic::new(
                DiagnosticKind::UnexpectedToken,
                arg_spans[1],
                format!("the second argument of `{name}` is the dimension to take it along: 1 or 2"),
                "expected 1 or 2",
            )
            .hint(format!("`{name}(A, 1)` takes it down each column, `{name}(A, 2)` along each row"))),
        },
        "logsumexp" => {
            arity(1)?;
            Ok(g.logsumexp(args[0]))
        }
        "softmax" => {
            arity(1)?;
            Ok(g.softmax(args[0]))
        }
        "pinv" => {
            arity(1)?;
            Ok(g.pinv(args[0]))
        }
        "kron" => {
            arity(2)?;
            Ok(g.kron(args[0], args[1]))
        }
        // kronsum(G, B, 1): the adjoint of A in A ⊗ B; kronsum(A, G, 2): that of B
        "kronsum" => {
            arity(3)?;
            let which = g.as_const(args[2]);
            let (first, second) = (rc(g.shape(args[0])), rc(g.shape(args[1])));
            let bad = |msg: String| Diagnostic::new(DiagnosticKind::ShapeMismatch, span, msg, "cannot take these block sums");
            let (gs, other) = match which {
                Some(1.0) => (first, second),
                Some(2.0) => (second, first),
                _ => {
                    return Err(Diagnostic::new(
                        DiagnosticKind::UnexpectedToken,
                        arg_spans[2],
                        "the third argument of `kronsum` is 1 (`kronsum(G, B, 1)`, the adjoint of A in kron(A, B)) or 2 (`kronsum(A, G, 2)`, that of B)",
                        "expected 1 or 2",
                    ));
                }
            };
            let (Some(r), Some(c)) = (g.dim_quotient(gs.0, other.0), g.dim_quotient(gs.1, other.1)) else {
                return Err(bad(format!(
                    "`kronsum`: the {} is not a Kronecker product of a matrix and the {}",
                    g.shape_name(from_rc(gs.0, gs.1)),
                    g.shape_name(from_rc(other.0, other.1))
                )));
            };
            let s = from_rc(r, c);
            Ok(if which == Some(1.0) { g.kron_sum_a(args[0], args[1], s) } else { g.kron_sum_b(args[0], args[1], s) })
        }
        _ => {
            let mut d = Diagnostic::new(
                DiagnosticKind::UnknownFunction,
                name_span,
                format!("unknown function `{name}`"),
                "not a function of the loss language",
            );
            // names from numpy, MATLAB and R that the loss language writes otherwise
            let instead = match name {
                "mean" => Some("there is no `mean`: write `sum(x)/n` and declare `n` as a scalar (`--var \"..., n\"`) with its value"),
                "dot" | "inner" => Some("write the inner product as `a'*b`"),
                "outer" => Some("write the outer product as `a*b'`"),
                "transpose" => Some("write the transpose as `A'`"),
                "matmul" | "mm" => Some("write the matrix product as `A*B`"),
                "norm" => Some("write `norm2(x)` for a vector's 2-norm or `normF(X)` for a matrix's Frobenius norm"),
                "sumsq" | "sum_squares" => Some("write `sum(x.^2)` or `norm2(x)^2`"),
                "square" => Some("write `x.^2`"),
                "solve" => Some("write `inv(A)*b`"),
                _ => None,
            };
            if let Some(h) = instead {
                return Err(d.hint(h));
            }
            let best = MATRIX_FUNCS
                .iter()
                .copied()
                .map(|f| (func::edit_distance(name, f), f))
                .min()
                .filter(|(k, f)| *k <= 1 + f.len() / 4)
                .map(|(_, f)| f)
                .or_else(|| func::suggest(name));
            if let Some(b) = best {
                d = d.hint(format!("did you mean `{b}`?"));
            }
            Err(d)
        }
    }
}
