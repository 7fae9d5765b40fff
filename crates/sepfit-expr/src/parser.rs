//! A Pratt parser with spans, an explicit nesting limit, and loops for operator chains, so that
//! neither 50,000 nested parentheses nor a megabyte-long sum can overflow the stack.
//!
//! Precedence, loosest first: `~`; `+ -`; `* / .* ./`; unary `- +`; `^ .^` (right-associative);
//! postfix `'`; calls and atoms. Hence `-x^2 = -(x^2)`, `2^-1 = 0.5`, `a/b*c = (a/b)*c`.

use crate::ast::{Ast, AstId, AstKind, BinOp, Parsed, Statement};
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::lexer::{Tok, Token, lex};
use crate::span::Span;

/// Maximum nesting of parentheses, calls, unary operators and `^` chains.
pub const MAX_DEPTH: usize = 200;

struct Parser<'a> {
    toks: Vec<Token>,
    pos: usize,
    ast: Ast,
    depth: usize,
    /// Open parentheses (span of `(`), to report the unclosed one.
    open: Vec<Span>,
    src: &'a str,
}

/// Parses a formula text: `stmt (';' stmt)*`, where a statement is `name = expr`,
/// `lhs ~ rhs` or an expression.
pub fn parse(src: &str) -> Result<Parsed, Diagnostic> {
    if src.trim().is_empty() {
        return Err(Diagnostic::new(DiagnosticKind::EmptyFormula, Span::at(0), "the formula is empty", "nothing here")
            .hint("write a model such as `y ~ a*exp(-b*t) + c`"));
    }
    let toks = lex(src)?;
    let mut p = Parser { toks, pos: 0, ast: Ast::default(), depth: 0, open: Vec::new(), src };
    let mut statements = Vec::new();
    loop {
        while p.peek() == &Tok::Semi {
            p.pos += 1;
        }
        if p.peek() == &Tok::Eof {
            break;
        }
        let st = p.statement()?;
        statements.push(st);
        match p.peek() {
            Tok::Semi => continue,
            Tok::Eof => break,
            _ => return Err(p.unexpected_after_expression()),
        }
    }
    if statements.is_empty() {
        return Err(Diagnostic::new(DiagnosticKind::EmptyFormula, Span::at(0), "the formula is empty", "nothing here")
            .hint("write a model such as `y ~ a*exp(-b*t) + c`"));
    }
    Ok(Parsed { ast: p.ast, statements })
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].tok
    }
    fn peek_span(&self) -> Span {
        self.toks[self.pos].span
    }
    fn bump(&mut self) -> Token {
        let t = self.toks[self.pos].clone();
        if t.tok != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    fn statement(&mut self) -> Result<(Statement, Span), Diagnostic> {
        let start = self.peek_span();
        // Definition: IDENT '=' expr
        if let Tok::Ident(name) = self.peek().clone()
            && self.toks.get(self.pos + 1).map(|t| &t.tok) == Some(&Tok::Eq) {
                let name_span = self.bump().span;
                self.bump();
                if matches!(self.peek(), Tok::Semi | Tok::Eof) {
                    return Err(Diagnostic::new(
                        DiagnosticKind::UnexpectedEnd,
                        self.peek_span(),
                        format!("definition of `{name}` has no value"),
                        "expected an expression",
                    ));
                }
                let value = self.expr()?;
                let span = start.to(self.ast.span(value));
                return Ok((Statement::Define { name, name_span, value }, span));
            }
        if self.peek() == &Tok::Tilde {
            return Err(Diagnostic::new(
                DiagnosticKind::EmptySide,
                self.peek_span(),
                "the left-hand side of `~` is empty",
                "response expected before `~`",
            )
            .hint("name the response column first, as in `y ~ a*exp(-b*t)`"));
        }
        let lhs = self.expr()?;
        if self.peek() == &Tok::Tilde {
            let tilde = self.bump().span;
            if matches!(self.peek(), Tok::Semi | Tok::Eof) {
                return Err(Diagnostic::new(
                    DiagnosticKind::EmptySide,
                    tilde,
                    "the right-hand side of `~` is empty",
                    "model expected after `~`",
                )
                .hint("write the model after `~`, as in `y ~ a*exp(-b*t)`"));
            }
            let rhs = self.expr()?;
            if self.peek() == &Tok::Tilde {
                return Err(Diagnostic::new(
                    DiagnosticKind::MissingTilde,
                    self.peek_span(),
                    "a model formula has exactly one `~`",
                    "second `~`",
                ));
            }
            let span = start.to(self.ast.span(rhs));
            return Ok((Statement::Model { lhs, rhs, tilde }, span));
        }
        let span = start.to(self.ast.span(lhs));
        Ok((Statement::Expr(lhs), span))
    }

    fn unexpected_after_expression(&self) -> Diagnostic {
        let t = &self.toks[self.pos];
        match &t.tok {
            Tok::RParen => Diagnostic::new(
                DiagnosticKind::UnmatchedParenthesis,
                t.span,
                "unmatched closing parenthesis",
                "no `(` opens this",
            )
            .hint("remove this `)` or add the `(` it should close"),
            Tok::Eq => Diagnostic::new(
                DiagnosticKind::UnexpectedToken,
                t.span,
                "unexpected `=`",
                "definitions are written `name = expression;`",
            )
            .hint("a model uses `~` between response and model: `y ~ a*x + b`"),
            Tok::LParen | Tok::Ident(_) | Tok::Num(_) => Diagnostic::new(
                DiagnosticKind::UnexpectedToken,
                t.span,
                format!("expected an operator before {}", t.tok.describe()),
                "missing operator",
            )
            .hint("multiplication must be written out: `2*x`, not `2x` or `2 x`"),
            other => Diagnostic::new(
                DiagnosticKind::UnexpectedToken,
                t.span,
                format!("unexpected {}", other.describe()),
                "not expected here",
            ),
        }
    }

    fn enter(&mut self, span: Span) -> Result<(), Diagnostic> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Diagnostic::new(
                DiagnosticKind::TooDeep,
                span,
                format!("formula is nested more than {MAX_DEPTH} levels deep"),
                "too deep",
            )
            .hint("define intermediate quantities with `name = expression;` to flatten the formula"));
        }
        Ok(())
    }

    /// expr := term (('+'|'-') term)*
    fn expr(&mut self) -> Result<AstId, Diagnostic> {
        let mut lhs = self.term()?;
        loop {
            let op = match self.peek() {
                Tok::Plus => BinOp::Add,
                Tok::Minus => BinOp::Sub,
                _ => return Ok(lhs),
            };
            let op_span = self.bump().span;
            let rhs = self.operand_after(op_span, op.symbol(), Self::term)?;
            let span = self.ast.span(lhs).to(self.ast.span(rhs));
            lhs = self.ast.push(AstKind::Binary(op, lhs, rhs), span);
        }
    }

    /// term := unary (('*'|'/'|'.*'|'./') unary)*
    fn term(&mut self) -> Result<AstId, Diagnostic> {
        let mut lhs = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Star => BinOp::Mul,
                Tok::Slash => BinOp::Div,
                Tok::DotStar => BinOp::ElemMul,
                Tok::DotSlash => BinOp::ElemDiv,
                _ => return Ok(lhs),
            };
            let op_span = self.bump().span;
            let rhs = self.operand_after(op_span, op.symbol(), Self::unary)?;
            let span = self.ast.span(lhs).to(self.ast.span(rhs));
            lhs = self.ast.push(AstKind::Binary(op, lhs, rhs), span);
        }
    }

    /// Parses the right operand of an operator, turning a missing operand into a clear error.
    fn operand_after(
        &mut self,
        op_span: Span,
        op: &str,
        f: fn(&mut Self) -> Result<AstId, Diagnostic>,
    ) -> Result<AstId, Diagnostic> {
        match self.peek() {
            Tok::Eof | Tok::Semi | Tok::Tilde | Tok::RParen | Tok::Comma => {
                let what = self.peek().describe();
                Err(Diagnostic::new(
                    DiagnosticKind::UnexpectedEnd,
                    op_span,
                    format!("operator `{op}` has no right operand"),
                    format!("expected an operand after this, found {what}"),
                )
                .hint(format!("remove the trailing `{op}` or complete the expression")))
            }
            _ => f(self),
        }
    }

    /// unary := ('-'|'+') unary | power
    fn unary(&mut self) -> Result<AstId, Diagnostic> {
        match self.peek() {
            Tok::Minus | Tok::Plus => {
                let t = self.bump();
                self.enter(t.span)?;
                let inner = self.operand_after(t.span, if t.tok == Tok::Minus { "-" } else { "+" }, Self::unary)?;
                self.depth -= 1;
                let span = t.span.to(self.ast.span(inner));
                let kind = if t.tok == Tok::Minus { AstKind::Neg(inner) } else { AstKind::Pos(inner) };
                Ok(self.ast.push(kind, span))
            }
            _ => self.power(),
        }
    }

    /// power := postfix (('^'|'.^') unary)?   (right-associative; the exponent may be signed)
    fn power(&mut self) -> Result<AstId, Diagnostic> {
        let base = self.postfix()?;
        let op = match self.peek() {
            Tok::Caret => BinOp::Pow,
            Tok::DotCaret => BinOp::ElemPow,
            _ => return Ok(base),
        };
        let op_span = self.bump().span;
        self.enter(op_span)?;
        let exp = self.operand_after(op_span, op.symbol(), Self::unary)?;
        self.depth -= 1;
        let span = self.ast.span(base).to(self.ast.span(exp));
        Ok(self.ast.push(AstKind::Binary(op, base, exp), span))
    }

    /// postfix := atom ("'")*
    fn postfix(&mut self) -> Result<AstId, Diagnostic> {
        let mut a = self.atom()?;
        while self.peek() == &Tok::Quote {
            let q = self.bump().span;
            let span = self.ast.span(a).to(q);
            a = self.ast.push(AstKind::Transpose(a), span);
        }
        Ok(a)
    }

    fn atom(&mut self) -> Result<AstId, Diagnostic> {
        let t = self.bump();
        match t.tok {
            Tok::Num(v) => Ok(self.ast.push(AstKind::Num(v), t.span)),
            Tok::Ident(name) => {
                if self.peek() == &Tok::LParen {
                    let lp = self.bump().span;
                    self.enter(lp)?;
                    self.open.push(lp);
                    let mut args = Vec::new();
                    if self.peek() != &Tok::RParen {
                        loop {
                            if matches!(self.peek(), Tok::Comma) {
                                return Err(Diagnostic::new(
                                    DiagnosticKind::UnexpectedToken,
                                    self.peek_span(),
                                    format!("missing argument in call to `{name}`"),
                                    "expected an argument before `,`",
                                ));
                            }
                            args.push(self.expr()?);
                            if self.peek() == &Tok::Comma {
                                self.bump();
                                continue;
                            }
                            break;
                        }
                    }
                    let rp = self.close_paren()?;
                    self.depth -= 1;
                    let span = t.span.to(rp);
                    Ok(self.ast.push(AstKind::Call { name, name_span: t.span, args }, span))
                } else {
                    Ok(self.ast.push(AstKind::Ident(name), t.span))
                }
            }
            Tok::LParen => {
                self.enter(t.span)?;
                self.open.push(t.span);
                if self.peek() == &Tok::RParen {
                    return Err(Diagnostic::new(
                        DiagnosticKind::UnexpectedToken,
                        t.span.to(self.peek_span()),
                        "empty parentheses",
                        "expected an expression inside",
                    ));
                }
                let inner = self.expr()?;
                let rp = self.close_paren()?;
                self.depth -= 1;
                Ok(self.ast.push(AstKind::Paren(inner), t.span.to(rp)))
            }
            Tok::RParen => Err(Diagnostic::new(
                DiagnosticKind::UnmatchedParenthesis,
                t.span,
                "unexpected `)`",
                "expected an operand here",
            )),
            Tok::Eof => Err(self.unexpected_end(t.span)),
            other => {
                let d = Diagnostic::new(
                    DiagnosticKind::UnexpectedToken,
                    t.span,
                    format!("expected an operand, found {}", other.describe()),
                    "operand expected",
                );
                Err(match other {
                    Tok::Star | Tok::Slash | Tok::Caret => d.hint("an operator needs an operand on each side"),
                    Tok::Tilde => d.hint("`~` separates the response from the model, as in `y ~ a*x`"),
                    _ => d,
                })
            }
        }
    }

    fn unexpected_end(&self, span: Span) -> Diagnostic {
        if let Some(open) = self.open.last() {
            return self.unclosed(*open);
        }
        Diagnostic::new(DiagnosticKind::UnexpectedEnd, span, "formula ends too early", "expected an operand")
    }

    fn unclosed(&self, open: Span) -> Diagnostic {
        let _ = self.src;
        Diagnostic::new(
            DiagnosticKind::UnclosedParenthesis,
            open,
            "unclosed parenthesis",
            "this `(` is never closed",
        )
        .hint("add the missing `)`")
    }

    fn close_paren(&mut self) -> Result<Span, Diagnostic> {
        let open = self.open.pop().unwrap_or_default();
        match self.peek() {
            Tok::RParen => Ok(self.bump().span),
            Tok::Eof | Tok::Semi | Tok::Tilde => Err(self.unclosed(open)),
            _ => {
                let t = &self.toks[self.pos];
                Err(Diagnostic::new(
                    DiagnosticKind::UnexpectedToken,
                    t.span,
                    format!("expected `)` or an operator, found {}", t.tok.describe()),
                    "unexpected here",
                )
                .hint("multiplication must be written out: `2*x`, not `2x`"))
            }
        }
    }
}
