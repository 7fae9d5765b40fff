//! The syntax tree: an arena of nodes, each with its span. Children always precede their parent
//! in the arena, so every pass over the tree is a loop, never a recursion.

use crate::span::Span;

/// Index of a node in an [`Ast`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AstId(pub u32);

/// A binary operator as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*` (elementwise in model formulas; matrix product in matrix expressions)
    Mul,
    /// `/`
    Div,
    /// `^`
    Pow,
    /// `.*`
    ElemMul,
    /// `./`
    ElemDiv,
    /// `.^`
    ElemPow,
}

impl BinOp {
    /// The operator's source text.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Pow => "^",
            BinOp::ElemMul => ".*",
            BinOp::ElemDiv => "./",
            BinOp::ElemPow => ".^",
        }
    }
}

/// A syntax node.
#[derive(Clone, Debug, PartialEq)]
pub enum AstKind {
    /// A number literal.
    Num(f64),
    /// A name.
    Ident(String),
    /// Unary minus.
    Neg(AstId),
    /// Unary plus (kept so spans stay faithful).
    Pos(AstId),
    /// A binary operation.
    Binary(BinOp, AstId, AstId),
    /// Postfix transpose `x'`.
    Transpose(AstId),
    /// `name(args)`; the name's span is kept separately.
    Call {
        /// Function name.
        name: String,
        /// Span of the name.
        name_span: Span,
        /// Arguments.
        args: Vec<AstId>,
    },
    /// Parenthesised expression (kept for spans).
    Paren(AstId),
}

/// A syntax node with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct AstNode {
    /// What it is.
    pub kind: AstKind,
    /// Where it is in the source.
    pub span: Span,
}

/// An arena of syntax nodes.
#[derive(Clone, Debug, Default)]
pub struct Ast {
    /// Nodes; children precede parents.
    pub nodes: Vec<AstNode>,
}

impl Ast {
    /// Adds a node and returns its id.
    pub fn push(&mut self, kind: AstKind, span: Span) -> AstId {
        self.nodes.push(AstNode { kind, span });
        AstId((self.nodes.len() - 1) as u32)
    }

    /// The node at `id`.
    pub fn get(&self, id: AstId) -> &AstNode {
        &self.nodes[id.0 as usize]
    }

    /// The span of `id`.
    pub fn span(&self, id: AstId) -> Span {
        self.nodes[id.0 as usize].span
    }
}

/// One statement of a formula text.
#[derive(Clone, Debug, PartialEq)]
pub enum Statement {
    /// `name = expr`
    Define {
        /// Defined name.
        name: String,
        /// Span of the name.
        name_span: Span,
        /// Its value.
        value: AstId,
    },
    /// `lhs ~ rhs`
    Model {
        /// Response expression.
        lhs: AstId,
        /// Model expression.
        rhs: AstId,
        /// Span of `~`.
        tilde: Span,
    },
    /// A bare expression.
    Expr(AstId),
}

/// A parsed formula text: statements separated by `;`.
#[derive(Clone, Debug, Default)]
pub struct Parsed {
    /// Node arena shared by all statements.
    pub ast: Ast,
    /// Statements in source order.
    pub statements: Vec<(Statement, Span)>,
}
