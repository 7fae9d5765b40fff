//! Shapes carried by every expression node.
//!
//! Model formulas are written per observation: data columns have shape `Vector(Dim::Obs)`,
//! parameters are scalars, and arithmetic broadcasts a scalar over a vector. The loss language
//! adds declared vectors and matrices with symbolic dimensions on the same representation.

use std::fmt;

/// One dimension of a shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    /// The number of observations (rows of the data).
    Obs,
    /// A symbolic dimension, by index into the pool's dimension names.
    Sym(u32),
    /// A known size.
    Fixed(usize),
}

/// The shape of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shape {
    /// A single number.
    Scalar,
    /// A column vector.
    Vector(Dim),
    /// A matrix with rows × columns.
    Matrix(Dim, Dim),
}

impl Shape {
    /// Whether this is a scalar.
    pub fn is_scalar(self) -> bool {
        matches!(self, Shape::Scalar)
    }

    /// The shape of an elementwise operation on `self` and `other` with scalar broadcasting,
    /// or `None` if they do not fit.
    pub fn broadcast(self, other: Shape) -> Option<Shape> {
        match (self, other) {
            (Shape::Scalar, s) | (s, Shape::Scalar) => Some(s),
            (a, b) if a == b => Some(a),
            _ => None,
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Obs => f.write_str("n"),
            Dim::Sym(i) => write!(f, "d{i}"),
            Dim::Fixed(k) => write!(f, "{k}"),
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Scalar => f.write_str("scalar"),
            Shape::Vector(d) => write!(f, "vector of length {d}"),
            Shape::Matrix(r, c) => write!(f, "{r}×{c} matrix"),
        }
    }
}
