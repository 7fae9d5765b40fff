//! Errors as values: a message, a source span, hints, rendered with a caret under the source.

use crate::span::Span;
use std::fmt;

/// What class of problem a [`Diagnostic`] reports. Stable for programs that match on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiagnosticKind {
    /// The formula is empty or only whitespace.
    EmptyFormula,
    /// A character that is not part of the language.
    UnexpectedCharacter,
    /// A malformed or out-of-range number literal.
    BadNumber,
    /// A token where another was expected (e.g. an operator with no right operand).
    UnexpectedToken,
    /// The input ended where an operand or `)` was expected.
    UnexpectedEnd,
    /// An opening parenthesis without its closing one.
    UnclosedParenthesis,
    /// A closing parenthesis without an opening one.
    UnmatchedParenthesis,
    /// A model formula without `~`, or with more than one.
    MissingTilde,
    /// One side of `~` is empty.
    EmptySide,
    /// A call to a function sepfit does not know.
    UnknownFunction,
    /// A function called with the wrong number of arguments.
    WrongArity,
    /// Something that is not a function was called.
    NotAFunction,
    /// A name that is both a parameter and a data column, or shadows a constant.
    Shadowing,
    /// A constant argument outside a function's domain (`log(-1)`, `sqrt(-2)`, `1/0`).
    DomainError,
    /// The left-hand side uses something other than data columns.
    BadResponse,
    /// Operand shapes do not fit the operation.
    ShapeMismatch,
    /// Construct not allowed in this kind of formula (e.g. transpose in a model formula).
    NotAllowedHere,
    /// Nesting deeper than the parser accepts.
    TooDeep,
    /// More parameters than one formula may have ([`crate::model::MAX_PARAMS`]).
    TooManyParameters,
    /// A definition problem (`name = expr;`): redefinition, or use of an undefined name.
    BadDefinition,
}

/// A problem with a formula: what is wrong, where, and how to fix it.
///
/// Render it against the source with [`Diagnostic::render`]:
///
/// ```
/// let err = sepfit_expr::ModelFormula::parse("y ~ a*exq(-b*t)", &["t", "y"]).unwrap_err();
/// let text = err.render("y ~ a*exq(-b*t)");
/// assert!(text.contains("unknown function `exq`"));
/// assert!(text.contains("did you mean `exp`"));
/// ```
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct Diagnostic {
    /// The class of problem.
    pub kind: DiagnosticKind,
    /// The offending source text.
    pub span: Span,
    /// One-line description.
    pub message: String,
    /// Short label written under the caret.
    pub label: String,
    /// Suggestions for fixing it.
    pub hints: Vec<String>,
}

impl Diagnostic {
    /// A diagnostic with no hints.
    pub fn new(kind: DiagnosticKind, span: Span, message: impl Into<String>, label: impl Into<String>) -> Self {
        Diagnostic { kind, span, message: message.into(), label: label.into(), hints: Vec::new() }
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    /// Renders the diagnostic with the source line and a caret under the span.
    ///
    /// Long lines (a 1 MB formula) are clipped to a window around the span.
    pub fn render(&self, source: &str) -> String {
        let mut out = String::new();
        out.push_str(&format!("error: {}\n", self.message));
        let start = floor_char(source, self.span.start.min(source.len()));
        let end = floor_char(source, self.span.end.min(source.len()).max(start));
        // Find the line containing `start`.
        let line_start = source[..start].rfind('\n').map(|i| i + 1).unwrap_or(0);
        let line_end = source[start..].find('\n').map(|i| start + i).unwrap_or(source.len());
        let line_no = source[..line_start].matches('\n').count() + 1;
        let end = end.min(line_end);
        // Clip to a window of at most ~60 characters either side.
        const WIN: usize = 60;
        let before: Vec<(usize, char)> = source[line_start..start].char_indices().collect();
        let (win_start, lead) = if before.len() > WIN {
            (line_start + before[before.len() - WIN].0, "...")
        } else {
            (line_start, "")
        };
        let after_chars = source[end..line_end].chars().count();
        let (win_end, trail) = if after_chars > WIN {
            let off: usize = source[end..line_end].chars().take(WIN).map(char::len_utf8).sum();
            (end + off, "...")
        } else {
            (line_end, "")
        };
        let span_chars = source[start..end].chars().count();
        let (span_chars, win_end, trail) = if span_chars > 2 * WIN {
            let off: usize = source[start..end].chars().take(2 * WIN).map(char::len_utf8).sum();
            (2 * WIN, start + off, "...")
        } else {
            (span_chars, win_end, trail)
        };
        let gutter = line_no.to_string();
        let pad = " ".repeat(gutter.len());
        let text = format!("{lead}{}{trail}", &source[win_start..win_end]);
        let col = lead.len() + source[win_start..start].chars().count();
        out.push_str(&format!("{pad} |\n{gutter} | {text}\n"));
        let carets = "^".repeat(span_chars.max(1));
        let label = if self.label.is_empty() { String::new() } else { format!(" {}", self.label) };
        out.push_str(&format!("{pad} | {}{carets}{label}\n", " ".repeat(col)));
        for h in &self.hints {
            out.push_str(&format!("{pad} = help: {h}\n"));
        }
        out
    }
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Displays a diagnostic together with its source.
pub struct WithSource<'a>(pub &'a Diagnostic, pub &'a str);

impl fmt::Display for WithSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.render(self.1))
    }
}
