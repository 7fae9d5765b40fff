//! The random matrix-expression generator shared by the matrix property tests: expression
//! text over `A: n×m`, `B: m×k`, `x: m`, `y: n`, `s` scalar of any requested shape, from a
//! stream of random choices (so proptest shrinks the stream).
#![allow(dead_code)]

use sepfit_expr::matrix::Mat;

/// A dimension: 1, or one of the symbolic sizes n, m, k.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum D {
    One,
    N,
    M,
    K,
}

pub const DIMS: [D; 4] = [D::One, D::N, D::M, D::K];

/// Builds expression text from a stream of random choices.
pub struct Gen<'a> {
    pub choices: &'a [u32],
    pub at: usize,
    /// Also `logdet`/`inv`/`det` of positive definite matrices (small sizes only: an n×n LU).
    pub spd: bool,
    /// Also the functions added with issue 14 (softmax, logsumexp, sigmoid, ...; softmax and
    /// logsumexp along columns and rows too).
    pub extra: bool,
}

impl Gen<'_> {
    pub fn pick(&mut self, k: usize) -> usize {
        let c = self.choices[self.at % self.choices.len()] as usize;
        self.at += 1;
        c % k
    }

    /// A leaf vector (column) of the given length.
    pub fn vector(&mut self, d: D) -> String {
        match d {
            D::One => "s".into(),
            D::N => ["y", "(A*x)"][self.pick(2)].into(),
            D::M => ["x", "(A'*y)"][self.pick(2)].into(),
            D::K => "(B'*x)".into(),
        }
    }

    /// A leaf of shape r×c: a variable or its transpose, else an outer product of vectors.
    pub fn leaf(&mut self, r: D, c: D) -> String {
        let vars: &[&str] = match (r, c) {
            (D::One, D::One) => &["s", "0.5", "2"],
            (D::N, D::M) => &["A"],
            (D::M, D::N) => &["A'"],
            (D::M, D::K) => &["B"],
            (D::K, D::M) => &["B'"],
            (D::M, D::One) => &["x"],
            (D::One, D::M) => &["x'"],
            (D::N, D::One) => &["y"],
            (D::One, D::N) => &["y'"],
            _ => &[],
        };
        if !vars.is_empty() && self.pick(4) != 0 {
            return vars[self.pick(vars.len())].to_string();
        }
        match (r, c) {
            (r, D::One) => self.vector(r),
            (D::One, c) => format!("{}'", self.vector(c)),
            (r, c) => format!("({}*{}')", self.vector(r), self.vector(c)),
        }
    }

    /// A strictly positive expression of shape r×c.
    pub fn positive(&mut self, r: D, c: D, depth: u32) -> String {
        let e = self.expr(r, c, depth);
        match self.pick(3) {
            0 => format!("(1 + ({e}).^2)"),
            1 => format!("sqrt(1 + ({e}).^2)"),
            _ => format!("exp(({e})./(1 + ({e}).^2))"),
        }
    }

    /// An expression of shape r×c.
    pub fn expr(&mut self, r: D, c: D, depth: u32) -> String {
        if depth == 0 || self.pick(5) == 0 {
            return self.leaf(r, c);
        }
        let d = depth - 1;
        let scalar = r == D::One && c == D::One;
        let kinds = match (scalar, self.spd) {
            (false, _) => 10,
            (true, false) => 14,
            (true, true) => 17,
        };
        match self.pick(kinds) {
            0 => format!("({} + {})", self.expr(r, c, d), self.expr(r, c, d)),
            1 => format!("({} - {})", self.expr(r, c, d), self.expr(r, c, d)),
            2 => format!("({} .* {})", self.expr(r, c, d), self.expr(r, c, d)),
            3 => format!("({} ./ {})", self.expr(r, c, d), self.positive(r, c, d)),
            4 => {
                let q = DIMS[self.pick(4)];
                format!("({} * {})", self.expr(r, q, d), self.expr(q, c, d))
            }
            5 => format!("({})'", self.expr(c, r, d)),
            6 => format!("({} * {})", self.expr(D::One, D::One, d), self.expr(r, c, d)),
            7 => {
                // broadcasting: a column against a row (`y - x'`), or a scalar against anything
                if r != D::One && c != D::One {
                    format!("({} - {})", self.expr(r, D::One, d), self.expr(D::One, c, d))
                } else {
                    format!("({} + {})", self.expr(D::One, D::One, d), self.expr(r, c, d))
                }
            }
            8 if self.extra => {
                let e = self.expr(r, c, d);
                match self.pick(15) {
                    12 => format!("softmax({e}, {})", 1 + self.pick(2)),
                    13 if c == D::One => {
                        let q = DIMS[self.pick(4)];
                        format!("(logsumexp({}, 2) .* {e})", self.expr(r, q, d))
                    }
                    14 if r == D::One => {
                        let q = DIMS[self.pick(4)];
                        format!("(logsumexp({}, 1) .* {e})", self.expr(q, c, d))
                    }
                    // a positive second argument keeps atan2 off its branch cut (x < 0,
                    // y = 0), where an exact 0 in one form and ±1e-17 in an equal form give
                    // ±π: a discontinuity, not a derivative or a print to check
                    9 => format!("atan2({e}, {})", self.positive(r, c, d)),
                    10 => format!("max({e}, {})", self.expr(r, c, d)),
                    11 => format!("min({}, {e})", self.expr(D::One, D::One, d)),
                    0 => format!("sigmoid({e})"),
                    1 => format!("softplus({e})"),
                    2 => format!("log1p(({e}).^2)"),
                    3 => format!("expm1(({e})./(1 + ({e}).^2))"),
                    4 => format!("erf({e})"),
                    5 => format!("erfc({e})"),
                    6 => format!("relu({e})"),
                    7 if c == D::One && r != D::One => format!("softmax({e})"),
                    _ => {
                        let (p, q) = (DIMS[self.pick(4)], DIMS[self.pick(4)]);
                        let inner = self.expr(p, q, d);
                        format!("(logsumexp({inner}) * {e})")
                    }
                }
            }
            8 => {
                let e = self.expr(r, c, d);
                match self.pick(3) {
                    0 => format!("exp(({e})./(1 + ({e}).^2))"),
                    1 => format!("log(1 + ({e}).^2)"),
                    _ => format!("sqrt(2 + ({e}).^2)"),
                }
            }
            9 => format!("-{}", self.expr(r, c, d)),
            10 => {
                let (p, q) = (DIMS[self.pick(4)], DIMS[self.pick(4)]);
                format!("sum({})", self.expr(p, q, d))
            }
            11 => {
                let p = DIMS[1 + self.pick(3)];
                format!("norm2({})", self.expr(p, D::One, d))
            }
            12 => {
                let (p, q) = (DIMS[self.pick(4)], DIMS[self.pick(4)]);
                format!("normF({})", self.expr(p, q, d))
            }
            14..=16 => {
                // a symmetric positive definite S = diag(1 + u.^2) + E·Eᵀ, through logdet, inv, det
                let p = DIMS[1 + self.pick(3)];
                let q = DIMS[self.pick(4)];
                let (u, e) = (self.expr(p, D::One, d.min(2)), self.expr(p, q, d.min(2)));
                let spd = format!("(diag(1 + ({u}).^2) + ({e})*({e})')");
                match self.pick(3) {
                    0 => format!("logdet({spd})"),
                    1 => format!("tr(inv({spd}) * {})", self.expr(p, p, d.min(2))),
                    _ => format!("log(det({spd}))"),
                }
            }
            _ => {
                // trace of a square product
                let (p, q) = (DIMS[1 + self.pick(3)], DIMS[self.pick(4)]);
                format!("tr({} * {})", self.expr(p, q, d), self.expr(q, p, d))
            }
        }
    }
}

pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
    pub fn mat(&mut self, r: usize, c: usize) -> Mat {
        Mat { rows: r, cols: c, data: (0..r * c).map(|_| self.next()).collect() }
    }
}

