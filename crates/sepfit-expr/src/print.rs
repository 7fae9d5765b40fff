//! Printing expressions as plain text (re-readable by the parser) and as LaTeX.
//!
//! Both printers walk the graph with an explicit stack, so a formula of any depth prints
//! without recursion.

use crate::func::Func;
use crate::pool::{ExprId, Node, Pool};

#[derive(Clone, Copy, PartialEq)]
enum Style {
    Plain,
    Latex,
}

enum Work {
    Visit(ExprId),
    Text(&'static str),
    Owned(String),
}

const P_ADD: u8 = 1;
const P_MUL: u8 = 2;
const P_NEG: u8 = 3;
const P_POW: u8 = 4;
const P_ATOM: u8 = 5;

impl Pool {
    /// Plain-text form, e.g. `-a*t*exp(-b*t)`. The parser reads it back to the same function.
    pub fn to_plain(&self, id: ExprId) -> String {
        self.render(id, Style::Plain)
    }

    /// LaTeX form, e.g. `-a\,t\,e^{-b\,t}`.
    pub fn to_latex(&self, id: ExprId) -> String {
        self.render(id, Style::Latex)
    }

    fn prec(&self, id: ExprId, style: Style) -> u8 {
        match self.node(id) {
            Node::Const(v) => {
                if v < 0.0 {
                    P_NEG
                } else if pi_multiple(v).is_some_and(|k| k != 1.0) {
                    P_MUL
                } else {
                    P_ATOM
                }
            }
            Node::Sym(_) | Node::Call(..) | Node::Call2(..) => P_ATOM,
            Node::XLogY(..) => {
                if style == Style::Latex {
                    P_MUL
                } else {
                    P_ATOM
                }
            }
            Node::Add(..) | Node::Sub(..) => P_ADD,
            Node::Mul(..) => P_MUL,
            Node::Div(..) => {
                if style == Style::Latex {
                    P_ATOM
                } else {
                    P_MUL
                }
            }
            Node::Neg(_) => P_NEG,
            Node::Pow(..) => P_POW,
        }
    }

    /// Whether the plain text of `a + b` (`additive`) or `a*b`, with `b` printed without
    /// parentheses, would start with two constants (`c + d + x`, `c*d/x`): the parser folds
    /// `c + d` first, which need not be finite (and so not parse), so `b` keeps its parentheses.
    fn leads_with_const_after(&self, a: ExprId, b: ExprId, additive: bool, style: Style) -> bool {
        if style != Style::Plain || self.as_const(a).is_none() {
            return false;
        }
        let mut x = b;
        loop {
            x = match self.node(x) {
                Node::Add(l, _) | Node::Sub(l, _) if additive => l,
                Node::Mul(l, _) | Node::Div(l, _) if !additive => l,
                Node::Const(_) => return x != b,
                _ => return false,
            };
        }
    }

    fn render(&self, root: ExprId, style: Style) -> String {
        let mut out = String::new();
        let mut stack = vec![Work::Visit(root)];
        while let Some(w) = stack.pop() {
            let id = match w {
                Work::Text(t) => {
                    out.push_str(t);
                    continue;
                }
                Work::Owned(t) => {
                    out.push_str(&t);
                    continue;
                }
                Work::Visit(id) => id,
            };
            // Pieces are pushed in reverse order of output.
            let mut pieces: Vec<Work> = Vec::with_capacity(8);
            let wrap = |pool: &Pool, child: ExprId, min: u8, pieces: &mut Vec<Work>| {
                let needs = pool.prec(child, style) < min;
                let (open, close) = if style == Style::Latex { ("\\left(", "\\right)") } else { ("(", ")") };
                if needs {
                    pieces.push(Work::Text(open));
                }
                pieces.push(Work::Visit(child));
                if needs {
                    pieces.push(Work::Text(close));
                }
            };
            match self.node(id) {
                Node::Const(v) => pieces.push(Work::Owned(format_number(v, style))),
                Node::Sym(s) => {
                    let name = &self.symbol_info(s).name;
                    pieces.push(Work::Owned(if style == Style::Latex { latex_name(name) } else { name.clone() }))
                }
                Node::Add(a, b) => {
                    wrap(self, a, P_ADD, &mut pieces);
                    pieces.push(Work::Text(" + "));
                    // `c + (d + x)` keeps its parentheses: `c + d + x` reads as `(c + d) + x`,
                    // where `c + d` may not be a finite constant (so not parse).
                    wrap(self, b, if self.leads_with_const_after(a, b, true, style) { P_ATOM } else { P_ADD }, &mut pieces);
                }
                Node::Sub(a, b) => {
                    wrap(self, a, P_ADD, &mut pieces);
                    pieces.push(Work::Text(" - "));
                    wrap(self, b, P_ADD + 1, &mut pieces);
                }
                Node::Mul(a, b) => {
                    wrap(self, a, P_MUL, &mut pieces);
                    let sep = match style {
                        Style::Plain => "*",
                        Style::Latex => {
                            if matches!(self.node(b), Node::Const(_)) { " \\cdot " } else { "\\," }
                        }
                    };
                    pieces.push(Work::Text(sep));
                    // A negative right factor always gets parentheses: a*(-b); so does
                    // `c*(d*x)` (as for `+`).
                    let keep = self.prec(b, style) == P_NEG || self.leads_with_const_after(a, b, false, style);
                    wrap(self, b, if keep { P_ATOM } else { P_MUL }, &mut pieces);
                }
                Node::Div(a, b) => match style {
                    Style::Plain => {
                        wrap(self, a, P_MUL, &mut pieces);
                        pieces.push(Work::Text("/"));
                        wrap(self, b, P_NEG + 1, &mut pieces);
                    }
                    Style::Latex => {
                        pieces.push(Work::Text("\\frac{"));
                        pieces.push(Work::Visit(a));
                        pieces.push(Work::Text("}{"));
                        pieces.push(Work::Visit(b));
                        pieces.push(Work::Text("}"));
                    }
                },
                Node::Neg(a) => {
                    pieces.push(Work::Text("-"));
                    wrap(self, a, P_MUL, &mut pieces);
                }
                Node::Pow(a, b) => match style {
                    Style::Plain => {
                        wrap(self, a, P_ATOM, &mut pieces);
                        pieces.push(Work::Text("^"));
                        wrap(self, b, if self.prec(b, style) == P_NEG { P_ATOM } else { P_POW }, &mut pieces);
                    }
                    Style::Latex => {
                        if let Node::Call(f, x) = self.node(a) {
                            // sin(x)^2 as \sin^{2}\left(x\right)
                            if f != Func::Exp && f != Func::Sqrt && f != Func::Abs {
                                pieces.push(Work::Owned(format!("{}^{{", latex_func(f))));
                                pieces.push(Work::Visit(b));
                                pieces.push(Work::Text("}\\left("));
                                pieces.push(Work::Visit(x));
                                pieces.push(Work::Text("\\right)"));
                                stack.extend(pieces.into_iter().rev());
                                continue;
                            }
                        }
                        pieces.push(Work::Text("{"));
                        wrap(self, a, P_ATOM, &mut pieces);
                        pieces.push(Work::Text("}^{"));
                        pieces.push(Work::Visit(b));
                        pieces.push(Work::Text("}"));
                    }
                },
                Node::XLogY(a, b) => match style {
                    Style::Plain => {
                        pieces.push(Work::Text("xlogy("));
                        pieces.push(Work::Visit(a));
                        pieces.push(Work::Text(", "));
                        pieces.push(Work::Visit(b));
                        pieces.push(Work::Text(")"));
                    }
                    Style::Latex => {
                        wrap(self, a, P_MUL, &mut pieces);
                        pieces.push(Work::Text("\\,\\log\\left("));
                        pieces.push(Work::Visit(b));
                        pieces.push(Work::Text("\\right)"));
                    }
                },
                Node::Call2(f, a, b) => {
                    pieces.push(Work::Owned(match style {
                        Style::Plain => format!("{}(", f.name()),
                        Style::Latex => format!("{}\\left(", latex_func2(f)),
                    }));
                    pieces.push(Work::Visit(a));
                    pieces.push(Work::Text(", "));
                    pieces.push(Work::Visit(b));
                    pieces.push(Work::Text(if style == Style::Latex { "\\right)" } else { ")" }));
                }
                Node::Call(f, a) => match style {
                    Style::Plain => {
                        pieces.push(Work::Owned(format!("{}(", f.name())));
                        pieces.push(Work::Visit(a));
                        pieces.push(Work::Text(")"));
                    }
                    Style::Latex => match f {
                        Func::Exp => {
                            pieces.push(Work::Text("e^{"));
                            pieces.push(Work::Visit(a));
                            pieces.push(Work::Text("}"));
                        }
                        Func::Sqrt => {
                            pieces.push(Work::Text("\\sqrt{"));
                            pieces.push(Work::Visit(a));
                            pieces.push(Work::Text("}"));
                        }
                        Func::Abs => {
                            pieces.push(Work::Text("\\left|"));
                            pieces.push(Work::Visit(a));
                            pieces.push(Work::Text("\\right|"));
                        }
                        _ => {
                            pieces.push(Work::Owned(format!("{}\\left(", latex_func(f))));
                            pieces.push(Work::Visit(a));
                            pieces.push(Work::Text("\\right)"));
                        }
                    },
                },
            }
            stack.extend(pieces.into_iter().rev());
        }
        out
    }
}

fn latex_func2(f: crate::Func2) -> &'static str {
    match f {
        crate::Func2::Atan2 => "\\operatorname{atan2}",
        crate::Func2::Max => "\\max",
        crate::Func2::Min => "\\min",
    }
}

fn latex_func(f: Func) -> &'static str {
    match f {
        Func::Exp => "\\exp",
        Func::Log => "\\log",
        Func::Log10 => "\\log_{10}",
        Func::Sqrt => "\\sqrt",
        Func::Sin => "\\sin",
        Func::Cos => "\\cos",
        Func::Tan => "\\tan",
        Func::Asin => "\\arcsin",
        Func::Acos => "\\arccos",
        Func::Atan => "\\arctan",
        Func::Sinh => "\\sinh",
        Func::Cosh => "\\cosh",
        Func::Tanh => "\\tanh",
        Func::Abs => "\\operatorname{abs}",
        Func::Sign => "\\operatorname{sign}",
        Func::Sigmoid => "\\sigma",
        Func::Softplus => "\\operatorname{softplus}",
        Func::Log1p => "\\operatorname{log1p}",
        Func::Expm1 => "\\operatorname{expm1}",
        Func::Erf => "\\operatorname{erf}",
        Func::Erfc => "\\operatorname{erfc}",
        Func::Relu => "\\operatorname{relu}",
        Func::Step => "\\operatorname{step}",
    }
}

/// Formats a number: shortest round-trip form, `pi` for π.
fn format_number(v: f64, style: Style) -> String {
    if let Some(k) = pi_multiple(v) {
        let pi = if style == Style::Latex { "\\pi" } else { "pi" };
        if k == 1.0 {
            return pi.into();
        }
        let sep = if style == Style::Latex { "\\," } else { "*" };
        return format!("{k}{sep}{pi}");
    }
    let a = v.abs();
    let s = if a != 0.0 && !(1e-4..1e15).contains(&a) { format!("{v:e}") } else { format!("{v}") };
    if style == Style::Latex
        && let Some((m, e)) = s.split_once('e') {
            return format!("{m} \\cdot 10^{{{e}}}");
        }
    s
}

const GREEK: [&str; 24] = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu", "nu",
    "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega", "Gamma",
];

/// `b1` → `b_{1}`, `tau2` → `\tau_{2}`, `x_max` → `x_{max}`, `rate` → `\mathrm{rate}`.
fn latex_name(name: &str) -> String {
    let (stem, sub) = if let Some((s, sub)) = name.split_once('_') {
        (s, Some(sub.to_string()))
    } else {
        let cut = name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        if cut < name.len() && cut > 0 { (&name[..cut], Some(name[cut..].to_string())) } else { (name, None) }
    };
    let stem_tex = if GREEK.contains(&stem) {
        format!("\\{stem}")
    } else if stem.chars().count() == 1 {
        stem.to_string()
    } else {
        format!("\\mathrm{{{stem}}}")
    };
    match sub {
        Some(s) if !s.is_empty() => format!("{stem_tex}_{{{}}}", s.replace('_', "\\_")),
        _ => stem_tex,
    }
}

/// `Some(k)` when `v` is exactly `k*π` for a small positive integer or half-integer `k`.
fn pi_multiple(v: f64) -> Option<f64> {
    (1..=16).map(|i| i as f64 / 2.0).find(|k| v == k * std::f64::consts::PI)
}
