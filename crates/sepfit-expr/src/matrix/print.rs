//! Printing matrix expressions: ASCII (re-readable by the parser, `2*X'*(X*w - y)`), plain
//! Unicode (`2·Xᵀ·(X·w − y)`, `‖x − a‖₂`) and LaTeX. Named definitions print as their names.
//! The printer walks the graph with an explicit stack, never a recursion.

use super::graph::{Graph, MId, MNode, ONE, rc};
use crate::func::Func;
use crate::shape::Shape;
use std::collections::HashMap;

/// How to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// ASCII the parser reads back: `2*X'*(X*w - y)`.
    Ascii,
    /// Plain Unicode: `2·Xᵀ·(X·w − y)`.
    Unicode,
    /// LaTeX: `2\,X^\top\left(X\,w - y\right)`.
    Latex,
}

const P_ADD: u8 = 1;
const P_MUL: u8 = 2;
const P_NEG: u8 = 3;
const P_POW: u8 = 4;
const P_POST: u8 = 5;
const P_ATOM: u8 = 6;

enum W {
    V(MId),
    T(String),
}

/// `v/π` when it is a small multiple of 1/2 (so `6.283…` prints as `2*pi`).
fn pi_multiple(v: f64) -> Option<f64> {
    let k = v / std::f64::consts::PI;
    let k2 = (2.0 * k).round();
    (v != 0.0 && k2.abs() <= 64.0 && (2.0 * k - k2).abs() < 1e-14 * k2.abs().max(1.0) && (k2 / 2.0) * std::f64::consts::PI == v)
        .then_some(k2 / 2.0)
}

fn num(v: f64, style: Style) -> String {
    if let Some(k) = pi_multiple(v) {
        let pi = match style {
            Style::Ascii => "pi",
            Style::Unicode => "π",
            Style::Latex => "\\pi",
        };
        let mul = match style {
            Style::Ascii => "*",
            Style::Unicode => "",
            Style::Latex => "\\,",
        };
        return match k {
            1.0 => pi.to_string(),
            -1.0 => format!("{}{pi}", if style == Style::Unicode { "−" } else { "-" }),
            k => format!("{}{mul}{pi}", num_plain(k, style)),
        };
    }
    num_plain(v, style)
}

fn num_plain(v: f64, style: Style) -> String {
    let s = if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v}") };
    if style == Style::Unicode { s.replace('-', "−") } else { s }
}

fn superscript(k: i64) -> Option<String> {
    if !(2..=9).contains(&k) {
        return None;
    }
    Some(["", "", "²", "³", "⁴", "⁵", "⁶", "⁷", "⁸", "⁹"][k as usize].to_string())
}

fn latex_name(n: &str) -> String {
    let split = n.find(|c: char| c.is_ascii_digit()).filter(|&i| i > 0 && n[i..].chars().all(|c| c.is_ascii_digit()));
    match split {
        Some(i) => format!("{}_{{{}}}", &n[..i], &n[i..]),
        None if n.chars().count() > 1 => format!("\\mathrm{{{n}}}"),
        None => n.to_string(),
    }
}

impl Graph {
    fn prec(&self, id: MId, root: MId, names: &HashMap<MId, String>, style: Style) -> u8 {
        if id != root && names.contains_key(&id) {
            return P_ATOM;
        }
        match self.node(id) {
            MNode::Const(v) => {
                if v.get() < 0.0 {
                    P_NEG
                } else if pi_multiple(v.get()).is_some_and(|k| k != 1.0) {
                    P_MUL
                } else {
                    P_ATOM
                }
            }
            MNode::Fill(v) if v.get() < 0.0 => P_NEG,
            MNode::Fill(v) if v.get() != 1.0 => P_MUL,
            MNode::Add(..) | MNode::Sub(..) => P_ADD,
            MNode::Div(_, b) if style == Style::Latex && self.shape(b) == Shape::Scalar => P_ATOM,
            MNode::Mul(..) | MNode::Div(..) | MNode::MatMul(..) => P_MUL,
            MNode::Neg(_) => P_NEG,
            MNode::Pow(..) => P_POW,
            MNode::Transpose(_) => P_POST,
            MNode::Inv(_) | MNode::Pinv(_) if style != Style::Ascii => P_POST,
            MNode::MatPow(..) => P_POW,
            MNode::Kron(..) if style != Style::Ascii => P_MUL,
            _ => P_ATOM,
        }
    }

    /// `(X, k)` when `id` is the product of `k ≥ 2` factors `Xᵀ` (none of them named), printed
    /// `(X·X)ᵀ`.
    fn transposed_power(&self, id: MId, names: &HashMap<MId, String>) -> Option<(MId, usize)> {
        let fs = self.chain(id);
        let first = fs[0];
        let MNode::Transpose(x) = self.node(first) else { return None };
        if matches!(self.node(x), MNode::Inv(_)) || names.contains_key(&first) {
            return None;
        }
        let inner = |g: &Self, f: MId| g.node(f) == MNode::Transpose(x) && !names.contains_key(&f);
        let interior_named = {
            let mut stack = vec![id];
            let mut named = false;
            while let Some(t) = stack.pop() {
                if let MNode::MatMul(a, b) = self.node(t) {
                    named |= t != id && names.contains_key(&t);
                    stack.push(a);
                    stack.push(b);
                }
            }
            named
        };
        (fs.len() >= 2 && fs.iter().all(|f| inner(self, *f)) && !interior_named).then_some((x, fs.len()))
    }

    /// `(v, B)` when `id = v .* B` (or `B .* v`) prints as `diag(v)·B`: `v` a column, `B` a matrix of the result's
    /// shape, `id` an operand of a matrix product.
    fn row_scaling(&self, id: MId, root: MId, names: &HashMap<MId, String>, parent_is_matmul: &[MId]) -> Option<(MId, MId)> {
        let MNode::Mul(a, b) = self.node(id) else { return None };
        let ok = |v: MId, m: MId| {
            (id == root || !names.contains_key(&id))
                && parent_is_matmul.contains(&id)
                && matches!(self.shape(v), Shape::Vector(_))
                && matches!(self.shape(m), Shape::Matrix(_, c) if c != ONE)
                && self.shape(m) == self.shape(id)
        };
        if ok(a, b) {
            Some((a, b))
        } else if ok(b, a) {
            Some((b, a))
        } else {
            None
        }
    }

    /// Prints `root`; nodes named in `names` (other than `root` itself) print as their names.
    pub fn render(&self, root: MId, style: Style, names: &HashMap<MId, String>) -> String {
        let (lp, rp) = if style == Style::Latex { ("\\left(", "\\right)") } else { ("(", ")") };
        let t = |s: &str| W::T(s.to_string());
        let mut out = String::new();
        // operands of matrix products (where a row scaling prints as `diag(v)·B`)
        let parent_is_matmul: Vec<MId> = {
            let reach = self.reachable(&[root]);
            let mut v = Vec::new();
            for (i, r) in reach.iter().enumerate() {
                if let (true, MNode::MatMul(a, b)) = (*r, self.node(MId(i as u32))) {
                    v.push(a);
                    v.push(b);
                }
            }
            v.sort();
            v.dedup();
            v
        };
        let parent_is_matmul = parent_is_matmul.as_slice();
        let mut stack = vec![W::V(root)];
        while let Some(w) = stack.pop() {
            let id = match w {
                W::T(s) => {
                    out.push_str(&s);
                    continue;
                }
                W::V(id) => id,
            };
            if id != root
                && let Some(n) = names.get(&id) {
                    out.push_str(&if style == Style::Latex { latex_name(n) } else { n.clone() });
                    continue;
                }
            let prec = |c: MId| self.prec(c, root, names, style);
            let wrap = |p: &mut Vec<W>, c: MId, need: bool| {
                if need {
                    p.push(t(lp));
                    p.push(W::V(c));
                    p.push(t(rp));
                } else {
                    p.push(W::V(c));
                }
            };
            let mut p: Vec<W> = Vec::new();
            let func = |p: &mut Vec<W>, name: &str, a: MId| {
                match style {
                    Style::Latex => p.push(W::T(format!("{name}\\left("))),
                    _ => p.push(W::T(format!("{name}("))),
                }
                p.push(W::V(a));
                p.push(t(rp));
            };
            match self.node(id) {
                MNode::Const(v) => p.push(W::T(num(v.get(), style))),
                MNode::Fill(v) => {
                    let (r, c) = rc(self.shape(id));
                    let dims = if c == ONE {
                        self.dim_name(r)
                    } else {
                        format!("{}, {}", self.dim_name(r), self.dim_name(c))
                    };
                    let ones = match style {
                        Style::Latex => format!("\\mathbf{{1}}_{{{}}}", dims.replace(", ", "\\times ")),
                        _ => format!("ones({dims})"),
                    };
                    if v.get() == 1.0 {
                        p.push(W::T(ones));
                    } else {
                        let mul = match style {
                            Style::Ascii => "*",
                            Style::Unicode => "·",
                            Style::Latex => "\\,",
                        };
                        p.push(W::T(format!("{}{mul}{ones}", num(v.get(), style))));
                    }
                }
                MNode::Eye(d) => p.push(W::T(match style {
                    Style::Ascii => format!("eye({})", self.dim_name(d)),
                    _ => "I".into(),
                })),
                MNode::Var(k) => {
                    let n = &self.vars[k as usize].name;
                    p.push(W::T(if style == Style::Latex { latex_name(n) } else { n.clone() }));
                }
                MNode::Add(a, b) | MNode::Sub(a, b) => {
                    let is_sub = matches!(self.node(id), MNode::Sub(..));
                    wrap(&mut p, a, false);
                    p.push(t(match (is_sub, style) {
                        (false, _) => " + ",
                        (true, Style::Unicode) => " − ",
                        (true, _) => " - ",
                    }));
                    let pb = prec(b);
                    wrap(&mut p, b, pb == P_NEG || (is_sub && pb <= P_ADD));
                }
                MNode::Neg(a) => {
                    p.push(t(if style == Style::Unicode { "−" } else { "-" }));
                    let pa = prec(a);
                    wrap(&mut p, a, pa <= P_ADD || pa == P_NEG);
                }
                MNode::Div(a, b) if style == Style::Latex && self.shape(b) == Shape::Scalar => {
                    p.push(t("\\frac{"));
                    p.push(W::V(a));
                    p.push(t("}{"));
                    p.push(W::V(b));
                    p.push(t("}"));
                }
                // v .* B with v a column and B a matrix, as a factor of a matrix product, is
                // diag(v)·B (the Cookbook's `Xᵀ·diag(p.*(1 − p))·X`)
                MNode::Mul(..) if self.row_scaling(id, root, names, parent_is_matmul).is_some() => {
                    let (v, m) = self.row_scaling(id, root, names, parent_is_matmul).unwrap_or((id, id));
                    let dname = if style == Style::Latex { "\\operatorname{diag}\\left(" } else { "diag(" };
                    p.push(t(dname));
                    p.push(W::V(v));
                    p.push(t(rp));
                    p.push(t(match style {
                        Style::Ascii => "*",
                        Style::Unicode => "·",
                        Style::Latex => "\\,",
                    }));
                    let pm = prec(m);
                    wrap(&mut p, m, pm < P_MUL || (pm == P_MUL && !matches!(self.node(m), MNode::MatMul(..))));
                }
                // Xᵀ·Xᵀ·Xᵀ = (X·X·X)ᵀ: a power of one transposed matrix
                MNode::MatMul(..) if self.transposed_power(id, names).is_some() => {
                    let (x, k) = self.transposed_power(id, names).unwrap_or((id, 0));
                    let (op, tr) = match style {
                        Style::Ascii => ("*", "'"),
                        Style::Unicode => ("·", "ᵀ"),
                        Style::Latex => ("\\,", "^\\top"),
                    };
                    let wrapped = prec(x) < P_ATOM;
                    p.push(t(lp));
                    for i in 0..k {
                        if i > 0 {
                            p.push(t(op));
                        }
                        wrap(&mut p, x, wrapped);
                    }
                    p.push(t(rp));
                    p.push(t(tr));
                }
                n @ (MNode::Mul(a, b) | MNode::Div(a, b) | MNode::MatMul(a, b)) => {
                    let scalar_op = self.shape(a) == Shape::Scalar || self.shape(b) == Shape::Scalar;
                    let op = match (n, style, scalar_op) {
                        (MNode::Div(..), Style::Latex, _) if self.shape(b) != Shape::Scalar => " \\oslash ",
                        (MNode::MatMul(..), Style::Ascii, _) | (MNode::Mul(..), Style::Ascii, true) => "*",
                        (MNode::MatMul(..), Style::Unicode, _) | (MNode::Mul(..), Style::Unicode, true) => "·",
                        (MNode::MatMul(..), Style::Latex, _) | (MNode::Mul(..), Style::Latex, true) => "\\,",
                        (MNode::Mul(..), Style::Latex, false) => " \\odot ",
                        (MNode::Mul(..), _, false) => ".*",
                        (MNode::Div(..), Style::Latex, false) => " \\oslash ",
                        (MNode::Div(..), _, true) if self.shape(b) == Shape::Scalar => "/",
                        _ => "./",
                    };
                    let (pa, pb) = (prec(a), prec(b));
                    // `(X*P).*X`: a matrix product inside an elementwise one keeps its parentheses
                    let mixed = |x: MId| {
                        let (xm, nm) = (matches!(self.node(x), MNode::MatMul(..)), matches!(n, MNode::MatMul(..)));
                        prec(x) == P_MUL && !names.contains_key(&x) && xm != nm && !scalar_op
                            && !(nm && self.row_scaling(x, root, names, parent_is_matmul).is_some())
                    };
                    // `A ⊗ B` as a factor of any other product keeps its parentheses
                    let kron = |x: MId| style != Style::Ascii && matches!(self.node(x), MNode::Kron(..)) && !names.contains_key(&x);
                    wrap(&mut p, a, pa < P_MUL || mixed(a) || kron(a));
                    p.push(t(op));
                    let assoc = match (n, self.node(b)) {
                        _ if pb != P_MUL => true,
                        (MNode::MatMul(..), MNode::MatMul(..)) => true,
                        (MNode::MatMul(..), MNode::Mul(..)) => self.row_scaling(b, root, names, parent_is_matmul).is_some(),
                        // `a .* s*x` would read back as `(a .* s)*x`, a matrix product (and so
                        // would a scalar `*` further into the right operand): a product on the
                        // right keeps its parentheses unless `a` is a scalar
                        (MNode::Mul(..), MNode::Mul(..)) => self.shape(a) == Shape::Scalar,
                        (MNode::Mul(x, _), MNode::MatMul(..) | MNode::Div(..)) => self.shape(x) == Shape::Scalar,
                        _ => false,
                    };
                    let is_div = matches!(n, MNode::Div(..));
                    wrap(&mut p, b, pb < P_MUL || pb == P_NEG || (pb == P_MUL && (is_div || !assoc)) || kron(b));
                }
                MNode::Pow(a, b) => {
                    let pa = prec(a);
                    let scalar = self.shape(id) == Shape::Scalar;
                    let k = self.as_const(b).filter(|v| v.fract() == 0.0).map(|v| v as i64);
                    let base_paren = pa <= P_POW;
                    match style {
                        Style::Unicode if scalar && k.and_then(superscript).is_some() => {
                            wrap(&mut p, a, base_paren);
                            p.push(W::T(k.and_then(superscript).unwrap_or_default()));
                        }
                        Style::Latex => {
                            if base_paren {
                                wrap(&mut p, a, true);
                            } else {
                                p.push(t("{"));
                                p.push(W::V(a));
                                p.push(t("}"));
                            }
                            p.push(t(if scalar { "^{" } else { "^{\\circ " }));
                            p.push(W::V(b));
                            p.push(t("}"));
                        }
                        _ => {
                            wrap(&mut p, a, base_paren);
                            p.push(t(if scalar { "^" } else { ".^" }));
                            let pb = prec(b);
                            wrap(&mut p, b, pb < P_ATOM);
                        }
                    }
                }
                // X⁻ᵀ: the transposed inverse, as the Cookbook writes it
                MNode::Transpose(inv) if style != Style::Ascii && matches!(self.node(inv), MNode::Inv(_)) && !names.contains_key(&inv) => {
                    let MNode::Inv(a) = self.node(inv) else { unreachable!() };
                    let need = prec(a) < P_ATOM;
                    if style == Style::Latex && !need {
                        p.push(t("{"));
                        p.push(W::V(a));
                        p.push(t("}^{-\\top}"));
                    } else {
                        wrap(&mut p, a, need);
                        p.push(t(if style == Style::Latex { "^{-\\top}" } else { "⁻ᵀ" }));
                    }
                }
                MNode::Transpose(a) => {
                    let need = prec(a) < P_ATOM;
                    match style {
                        Style::Latex if !need => {
                            p.push(t("{"));
                            p.push(W::V(a));
                            p.push(t("}^\\top"));
                        }
                        _ => {
                            wrap(&mut p, a, need);
                            p.push(t(match style {
                                Style::Ascii => "'",
                                Style::Unicode => "ᵀ",
                                Style::Latex => "^\\top",
                            }));
                        }
                    }
                }
                MNode::Inv(a) if style != Style::Ascii => {
                    let need = prec(a) < P_ATOM;
                    if style == Style::Latex && !need {
                        p.push(t("{"));
                        p.push(W::V(a));
                        p.push(t("}^{-1}"));
                    } else {
                        wrap(&mut p, a, need);
                        p.push(t(if style == Style::Latex { "^{-1}" } else { "⁻¹" }));
                    }
                }
                MNode::Norm2(a) | MNode::NormF(a) if style != Style::Ascii => {
                    let f = matches!(self.node(id), MNode::NormF(_));
                    if style == Style::Latex {
                        p.push(t("\\left\\|"));
                        p.push(W::V(a));
                        p.push(t(if f { "\\right\\|_F" } else { "\\right\\|_2" }));
                    } else {
                        p.push(t("‖"));
                        p.push(W::V(a));
                        p.push(t(if f { "‖_F" } else { "‖₂" }));
                    }
                }
                // X³, X^{3}, X^3
                MNode::MatPow(a, k) => {
                    let need = prec(a) < P_ATOM;
                    match style {
                        Style::Unicode if superscript(k as i64).is_some() => {
                            wrap(&mut p, a, need);
                            p.push(W::T(superscript(k as i64).unwrap_or_default()));
                        }
                        Style::Latex if !need => {
                            p.push(t("{"));
                            p.push(W::V(a));
                            p.push(W::T(format!("}}^{{{k}}}")));
                        }
                        Style::Latex => {
                            wrap(&mut p, a, true);
                            p.push(W::T(format!("^{{{k}}}")));
                        }
                        _ => {
                            wrap(&mut p, a, need);
                            p.push(W::T(format!("^{k}")));
                        }
                    }
                }
                // X⁺, X^{+}
                MNode::Pinv(a) if style != Style::Ascii => {
                    let need = prec(a) < P_ATOM;
                    if style == Style::Latex && !need {
                        p.push(t("{"));
                        p.push(W::V(a));
                        p.push(t("}^{+}"));
                    } else {
                        wrap(&mut p, a, need);
                        p.push(t(if style == Style::Latex { "^{+}" } else { "⁺" }));
                    }
                }
                // A ⊗ B
                MNode::Kron(a, b) if style != Style::Ascii => {
                    wrap(&mut p, a, prec(a) <= P_MUL);
                    p.push(t(if style == Style::Latex { " \\otimes " } else { " ⊗ " }));
                    wrap(&mut p, b, prec(b) <= P_MUL);
                }
                MNode::Kron(a, b) | MNode::KronSumA(a, b) | MNode::KronSumB(a, b) => {
                    let kron = matches!(self.node(id), MNode::Kron(..));
                    p.push(t(match (style, kron) {
                        (Style::Latex, _) => "\\operatorname{kronsum}\\left(",
                        (_, true) => "kron(",
                        _ => "kronsum(",
                    }));
                    p.push(W::V(a));
                    p.push(t(", "));
                    p.push(W::V(b));
                    p.push(t(match self.node(id) {
                        MNode::KronSumA(..) => ", 1",
                        MNode::KronSumB(..) => ", 2",
                        _ => "",
                    }));
                    p.push(t(rp));
                }
                MNode::XLogY(a, b) => {
                    p.push(t(if style == Style::Latex { "\\operatorname{xlogy}\\left(" } else { "xlogy(" }));
                    p.push(W::V(a));
                    p.push(t(", "));
                    p.push(W::V(b));
                    p.push(t(rp));
                }
                MNode::Call2(f, a, b) => {
                    p.push(t(match (style, f) {
                        (Style::Latex, crate::Func2::Atan2) => "\\operatorname{atan2}\\left(",
                        (Style::Latex, crate::Func2::Max) => "\\max\\left(",
                        (Style::Latex, crate::Func2::Min) => "\\min\\left(",
                        (_, crate::Func2::Atan2) => "atan2(",
                        (_, crate::Func2::Max) => "max(",
                        (_, crate::Func2::Min) => "min(",
                    }));
                    p.push(W::V(a));
                    p.push(t(", "));
                    p.push(W::V(b));
                    p.push(t(rp));
                }
                MNode::Call(f, a) => match (style, f) {
                    (Style::Latex, Func::Sqrt) => {
                        p.push(t("\\sqrt{"));
                        p.push(W::V(a));
                        p.push(t("}"));
                    }
                    (Style::Latex, Func::Abs) => {
                        p.push(t("\\left|"));
                        p.push(W::V(a));
                        p.push(t("\\right|"));
                    }
                    (Style::Latex, Func::Exp | Func::Log | Func::Sin | Func::Cos | Func::Tan | Func::Sinh | Func::Cosh | Func::Tanh) => {
                        func(&mut p, &format!("\\{}", f.name()), a)
                    }
                    (Style::Latex, _) => func(&mut p, &format!("\\operatorname{{{}}}", f.name()), a),
                    _ => func(&mut p, f.name(), a),
                },
                n => {
                    let (name, a) = match n {
                        MNode::Sum(a) | MNode::SumRows(a) | MNode::SumCols(a) => ("sum", a),
                        MNode::Norm2(a) => ("norm2", a),
                        MNode::NormF(a) => ("normF", a),
                        MNode::Trace(a) => ("tr", a),
                        MNode::DiagM(a) | MNode::DiagV(a) => ("diag", a),
                        MNode::Inv(a) => ("inv", a),
                        MNode::Det(a) => ("det", a),
                        MNode::LogDet(a) => ("logdet", a),
                        MNode::LogSumExp(a) => ("logsumexp", a),
                        MNode::Softmax(a) => ("softmax", a),
                        MNode::LogSumExpDim(a, _) => ("logsumexp", a),
                        MNode::SoftmaxDim(a, _) => ("softmax", a),
                        MNode::Pinv(a) => ("pinv", a),
                        _ => ("?", id),
                    };
                    let suffix = match n {
                        MNode::SumRows(_) | MNode::LogSumExpDim(_, 1) | MNode::SoftmaxDim(_, 1) => ", 1",
                        MNode::SumCols(_) | MNode::LogSumExpDim(_, _) | MNode::SoftmaxDim(_, _) => ", 2",
                        _ => "",
                    };
                    let name = match (style, name) {
                        (Style::Latex, "det") => "\\det".to_string(),
                        (Style::Latex, "logdet") => "\\log\\det".to_string(),
                        (Style::Latex, n) => format!("\\operatorname{{{n}}}"),
                        (_, n) => n.to_string(),
                    };
                    match style {
                        Style::Latex => p.push(W::T(format!("{name}\\left("))),
                        _ => p.push(W::T(format!("{name}("))),
                    }
                    p.push(W::V(a));
                    p.push(W::T(format!("{suffix}{rp}")));
                }
            }
            for w in p.into_iter().rev() {
                stack.push(w);
            }
        }
        out
    }
}
