//! Tokens of the formula language.

use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::span::Span;

/// A token kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// A number literal.
    Num(f64),
    /// An identifier.
    Ident(String),
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// `*`
    Star,
    /// `/`
    Slash,
    /// `^`
    Caret,
    /// `.*`
    DotStar,
    /// `./`
    DotSlash,
    /// `.^`
    DotCaret,
    /// `'` (transpose)
    Quote,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// `~`
    Tilde,
    /// `=`
    Eq,
    /// `;` or a newline between statements
    Semi,
    /// End of input.
    Eof,
}

impl Tok {
    /// How the token is written, for messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Num(v) => format!("number `{v}`"),
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Plus => "`+`".into(),
            Tok::Minus => "`-`".into(),
            Tok::Star => "`*`".into(),
            Tok::Slash => "`/`".into(),
            Tok::Caret => "`^`".into(),
            Tok::DotStar => "`.*`".into(),
            Tok::DotSlash => "`./`".into(),
            Tok::DotCaret => "`.^`".into(),
            Tok::Quote => "`'`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Tilde => "`~`".into(),
            Tok::Eq => "`=`".into(),
            Tok::Semi => "`;`".into(),
            Tok::Eof => "end of formula".into(),
        }
    }
}

/// A token with its source span.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    /// What it is.
    pub tok: Tok,
    /// Where it is.
    pub span: Span,
}

/// Splits `src` into tokens, ending with [`Tok::Eof`].
pub fn lex(src: &str) -> Result<Vec<Token>, Diagnostic> {
    let bytes = src.as_bytes();
    let mut out = Vec::with_capacity(src.len() / 2 + 1);
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let single = |t: Tok| Token { tok: t, span: Span::new(start, start + 1) };
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'+' => out.push(single(Tok::Plus)),
            b'-' => out.push(single(Tok::Minus)),
            b'*' => {
                if bytes.get(i + 1) == Some(&b'*') {
                    out.push(Token { tok: Tok::Caret, span: Span::new(i, i + 2) });
                    i += 2;
                    continue;
                }
                out.push(single(Tok::Star))
            }
            b'/' => out.push(single(Tok::Slash)),
            b'^' => out.push(single(Tok::Caret)),
            b'\'' => out.push(single(Tok::Quote)),
            b'(' => out.push(single(Tok::LParen)),
            b')' => out.push(single(Tok::RParen)),
            b',' => out.push(single(Tok::Comma)),
            b'~' => out.push(single(Tok::Tilde)),
            b'=' => out.push(single(Tok::Eq)),
            b';' => out.push(single(Tok::Semi)),
            b'.' if matches!(bytes.get(i + 1), Some(b'*' | b'/' | b'^')) => {
                let t = match bytes[i + 1] {
                    b'*' => Tok::DotStar,
                    b'/' => Tok::DotSlash,
                    _ => Tok::DotCaret,
                };
                out.push(Token { tok: t, span: Span::new(i, i + 2) });
                i += 2;
                continue;
            }
            b'0'..=b'9' | b'.' => {
                let (tok, end) = lex_number(src, i)?;
                out.push(Token { tok, span: Span::new(i, end) });
                i = end;
                continue;
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('\u{fffd}');
                if ch.is_alphabetic() || ch == '_' {
                    let mut end = i;
                    for (off, ch) in src[i..].char_indices() {
                        if ch.is_alphanumeric() || ch == '_' {
                            end = i + off + ch.len_utf8();
                        } else {
                            break;
                        }
                    }
                    out.push(Token { tok: Tok::Ident(src[i..end].to_string()), span: Span::new(i, end) });
                    i = end;
                    continue;
                }
                let span = Span::new(i, i + ch.len_utf8());
                let mut d = Diagnostic::new(
                    DiagnosticKind::UnexpectedCharacter,
                    span,
                    format!("unexpected character `{ch}`"),
                    "not part of the formula language",
                );
                d = match ch {
                    '[' | '{' => d.hint("use `(` and `)` for grouping"),
                    ']' | '}' => d.hint("use `(` and `)` for grouping"),
                    '×' | '·' => d.hint("write multiplication as `*`"),
                    '−' => d.hint("write minus as `-`"),
                    _ => d.hint(
                        "formulas use numbers, names, `+ - * / ^`, `.* ./ .^`, `'`, parentheses, `,`, `~`, `=` and `;`",
                    ),
                };
                return Err(d);
            }
        }
        i += 1;
    }
    out.push(Token { tok: Tok::Eof, span: Span::at(src.len()) });
    Ok(out)
}

fn lex_number(src: &str, start: usize) -> Result<(Tok, usize), Diagnostic> {
    let b = src.as_bytes();
    let mut i = start;
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - s
    };
    let int_digits = digits(&mut i);
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' && !matches!(b.get(i + 1), Some(b'*' | b'/' | b'^')) {
        i += 1;
        frac_digits = digits(&mut i);
    }
    if int_digits == 0 && frac_digits == 0 {
        return Err(Diagnostic::new(
            DiagnosticKind::BadNumber,
            Span::new(start, i.max(start + 1)),
            "a lone `.` is not a number",
            "expected digits",
        )
        .hint("write a decimal number such as `0.5` or `.5`"));
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        let mut k = j;
        if digits(&mut k) == 0 {
            return Err(Diagnostic::new(
                DiagnosticKind::BadNumber,
                Span::new(start, j.max(i + 1)),
                "number has an exponent marker but no exponent",
                "exponent digits missing",
            )
            .hint("write e.g. `1e-3` or `2.5E4`"));
        }
        i = k;
    }
    if i < b.len() && b[i] == b'.' && !matches!(b.get(i + 1), Some(b'*' | b'/' | b'^')) {
        let mut j = i + 1;
        while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
            j += 1;
        }
        return Err(Diagnostic::new(
            DiagnosticKind::BadNumber,
            Span::new(start, j),
            "malformed number",
            "more than one decimal point",
        ));
    }
    let text = &src[start..i];
    let v: f64 = text.parse().map_err(|_| {
        Diagnostic::new(DiagnosticKind::BadNumber, Span::new(start, i), "malformed number", "cannot read this number")
    })?;
    if !v.is_finite() {
        return Err(Diagnostic::new(
            DiagnosticKind::BadNumber,
            Span::new(start, i),
            format!("number `{text}` is too large for double precision"),
            "overflows to infinity",
        ));
    }
    Ok((Tok::Num(v), i))
}
