//! The elementary functions of the language, written once for both expression graphs: their
//! names, their values (the one scalar definition every evaluator uses, compiled or not), the
//! power `x^y`, and their derivatives as one chain rule that builds into either graph.
//!
//! [`crate::Pool`] (model formulas) and [`crate::matrix::Graph`] (loss formulas) both implement
//! the crate's small graph-builder trait, so `d/da f(a)` is the same expression in both; the compiled model evaluator
//! ([`crate::Program`]), the model's reference evaluator ([`crate::Pool::eval`]) and the matrix
//! evaluator give the same bits for every function and every power.

/// An elementwise function of one argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Func {
    /// e^x
    Exp,
    /// natural logarithm
    Log,
    /// base-10 logarithm
    Log10,
    /// square root
    Sqrt,
    /// sine
    Sin,
    /// cosine
    Cos,
    /// tangent
    Tan,
    /// arcsine
    Asin,
    /// arccosine
    Acos,
    /// arctangent
    Atan,
    /// hyperbolic sine
    Sinh,
    /// hyperbolic cosine
    Cosh,
    /// hyperbolic tangent
    Tanh,
    /// absolute value
    Abs,
    /// sign: -1, 0 or 1 (the derivative of `abs`)
    Sign,
    /// the logistic function `1/(1 + e^(−x))` (also `logistic`), computed without overflow
    Sigmoid,
    /// `log(1 + e^x)`, computed as `max(x, 0) + log1p(e^(−|x|))` (no overflow)
    Softplus,
    /// `log(1 + x)`, accurate for small `x`
    Log1p,
    /// `e^x − 1`, accurate for small `x`
    Expm1,
    /// the error function `erf(x) = 2/√π ∫₀ˣ e^(−t²) dt`
    Erf,
    /// the complementary error function `1 − erf(x)`, accurate where it is small
    Erfc,
    /// `max(x, 0)`; its derivative is taken as `step(x)` (0 at `x = 0`, a subgradient)
    Relu,
    /// the Heaviside step: 1 for `x > 0`, else 0 (the derivative of `relu`; derivative 0)
    Step,
}

/// Every function, for look-up and suggestions.
pub const ALL_FUNCS: [Func; 23] = [
    Func::Exp,
    Func::Log,
    Func::Log10,
    Func::Sqrt,
    Func::Sin,
    Func::Cos,
    Func::Tan,
    Func::Asin,
    Func::Acos,
    Func::Atan,
    Func::Sinh,
    Func::Cosh,
    Func::Tanh,
    Func::Abs,
    Func::Sign,
    Func::Sigmoid,
    Func::Softplus,
    Func::Log1p,
    Func::Expm1,
    Func::Erf,
    Func::Erfc,
    Func::Relu,
    Func::Step,
];

impl Func {
    /// The function's name in formulas.
    pub fn name(self) -> &'static str {
        match self {
            Func::Exp => "exp",
            Func::Log => "log",
            Func::Log10 => "log10",
            Func::Sqrt => "sqrt",
            Func::Sin => "sin",
            Func::Cos => "cos",
            Func::Tan => "tan",
            Func::Asin => "asin",
            Func::Acos => "acos",
            Func::Atan => "atan",
            Func::Sinh => "sinh",
            Func::Cosh => "cosh",
            Func::Tanh => "tanh",
            Func::Abs => "abs",
            Func::Sign => "sign",
            Func::Sigmoid => "sigmoid",
            Func::Softplus => "softplus",
            Func::Log1p => "log1p",
            Func::Expm1 => "expm1",
            Func::Erf => "erf",
            Func::Erfc => "erfc",
            Func::Relu => "relu",
            Func::Step => "step",
        }
    }

    /// Looks a function up by name (`ln` is accepted for `log`).
    pub fn from_name(name: &str) -> Option<Func> {
        match name {
            "ln" => return Some(Func::Log),
            "logistic" => return Some(Func::Sigmoid),
            _ => {}
        }
        ALL_FUNCS.iter().copied().find(|f| f.name() == name)
    }

    /// Applies the function to a number: the language's definition of its value, used by every
    /// evaluator and by constant folding. `exp` is the crate's vectorisable `exp` (within 1 ulp
    /// of `f64::exp`), the same function the compiled evaluator runs over slices.
    #[inline(always)]
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Func::Exp => crate::fast_exp::exp(x),
            Func::Log => x.ln(),
            Func::Log10 => x.log10(),
            Func::Sqrt => x.sqrt(),
            Func::Sin => x.sin(),
            Func::Cos => x.cos(),
            Func::Tan => x.tan(),
            Func::Asin => x.asin(),
            Func::Acos => x.acos(),
            Func::Atan => x.atan(),
            Func::Sinh => x.sinh(),
            Func::Cosh => x.cosh(),
            Func::Tanh => x.tanh(),
            Func::Abs => x.abs(),
            Func::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }
            Func::Sigmoid => {
                // e^(−|x|) never overflows; the two branches are the same function
                let e = crate::fast_exp::exp(-x.abs());
                if x >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) }
            }
            Func::Softplus => x.max(0.0) + crate::fast_exp::exp(-x.abs()).ln_1p(),
            Func::Log1p => x.ln_1p(),
            Func::Expm1 => x.exp_m1(),
            Func::Erf => libm::erf(x),
            Func::Erfc => libm::erfc(x),
            Func::Relu => {
                if x > 0.0 || x.is_nan() { x } else { 0.0 }
            }
            Func::Step => {
                if x > 0.0 {
                    1.0
                } else if x.is_nan() {
                    x
                } else {
                    0.0
                }
            }
        }
    }

    /// Whether a constant argument lies outside the function's (real) domain, with a reason.
    pub fn domain_error(self, x: f64) -> Option<&'static str> {
        match self {
            Func::Log | Func::Log10 if x < 0.0 => Some("the logarithm of a negative number is not real"),
            Func::Log | Func::Log10 if x == 0.0 => Some("the logarithm of zero is -infinity"),
            Func::Sqrt if x < 0.0 => Some("the square root of a negative number is not real"),
            Func::Asin | Func::Acos if x.abs() > 1.0 => Some("asin and acos need an argument in [-1, 1]"),
            Func::Log1p if x < -1.0 => Some("log1p(x) = log(1 + x) needs x ≥ -1"),
            Func::Log1p if x == -1.0 => Some("log1p(-1) = log(0) is -infinity"),
            _ => None,
        }
    }
}

/// How `x^y` is computed for an exponent `y`; see [`pow`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowKind {
    /// An integer exponent of magnitude at most 64: repeated multiplication (`f64::powi`; `x*x`
    /// for 2), so negative bases work.
    Powi(i32),
    /// `y = 0.5`: `sqrt(x)`.
    Sqrt,
    /// Any other exponent: `f64::powf`.
    Powf,
}

impl PowKind {
    /// The method for exponent `y`.
    #[inline(always)]
    pub fn of(y: f64) -> PowKind {
        if y == y.trunc() && y.abs() <= 64.0 {
            PowKind::Powi(y as i32)
        } else if y == 0.5 {
            PowKind::Sqrt
        } else {
            PowKind::Powf
        }
    }

    /// `x^y` by this method (`y` is only read by [`PowKind::Powf`]).
    #[inline(always)]
    pub fn apply(self, x: f64, y: f64) -> f64 {
        match self {
            PowKind::Powi(2) => x * x,
            PowKind::Powi(k) => x.powi(k),
            PowKind::Sqrt => x.sqrt(),
            PowKind::Powf => x.powf(y),
        }
    }
}

/// `x^y` as the language defines it, for every `y`: integer exponents up to 64 in magnitude by
/// repeated multiplication (so negative bases work), `x^0.5 = sqrt(x)`, otherwise `powf`. Every
/// evaluator and constant folding in both graphs use it; the compiled evaluator specialises a
/// constant exponent by the same [`PowKind`], so it gives the same bits.
#[inline(always)]
pub fn pow(x: f64, y: f64) -> f64 {
    PowKind::of(y).apply(x, y)
}

/// `xlogy(x, y) = x*log(y)`, except that it is 0 where `x = 0`, whatever `y` (also `0`, `inf`,
/// negative or NaN): the language's function `xlogy`. It is the derivative of a power in its
/// exponent, `∂(u^v)/∂v = xlogy(u^v, u)`, which is then 0 where `u^v` is 0 (`0^v` for `v > 0`),
/// not `0*log(0) = NaN`.
#[inline(always)]
pub fn xlogy(x: f64, y: f64) -> f64 {
    if x == 0.0 { 0.0 } else { x * y.ln() }
}

/// An elementwise function of two arguments (scalars broadcast).
///
/// | `f(a, b)`     | value                                  | `∂f/∂a`              | `∂f/∂b`                |
/// |---------------|----------------------------------------|----------------------|------------------------|
/// | `atan2(a, b)` | the angle of the point `(b, a)`, in `[−π, π]` | `b/(a^2 + b^2)` | `−a/(a^2 + b^2)`     |
/// | `max(a, b)`   | the larger; NaN if either is NaN       | `step(a − b)`        | `1 − step(a − b)`      |
/// | `min(a, b)`   | the smaller; NaN if either is NaN      | `step(b − a)`        | `1 − step(b − a)`      |
///
/// `max` and `min` are not differentiable where `a = b`: there the derivative taken (a
/// subgradient) is that of the **second** argument, `∂/∂a = 0`, `∂/∂b = 1`, so `max(x, 0)` has
/// the derivative of `relu(x)` (0 at `x = 0`). `atan2` is not differentiable at `(0, 0)`; its
/// derivative there is NaN (`0/0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Func2 {
    /// `atan2(y, x)`: the four-quadrant arctangent of `y/x`
    Atan2,
    /// `max(a, b)` elementwise
    Max,
    /// `min(a, b)` elementwise
    Min,
}

/// Every function of two arguments, for look-up.
pub const ALL_FUNCS2: [Func2; 3] = [Func2::Atan2, Func2::Max, Func2::Min];

impl Func2 {
    /// The function's name in formulas.
    pub fn name(self) -> &'static str {
        match self {
            Func2::Atan2 => "atan2",
            Func2::Max => "max",
            Func2::Min => "min",
        }
    }

    /// Looks a function of two arguments up by name.
    pub fn from_name(name: &str) -> Option<Func2> {
        ALL_FUNCS2.iter().copied().find(|f| f.name() == name)
    }

    /// Applies the function: the language's definition of its value, used by every evaluator
    /// and by constant folding. `max` and `min` return NaN if either argument is NaN (unlike
    /// `f64::max`), and the second argument at a tie.
    #[inline(always)]
    pub fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            Func2::Atan2 => a.atan2(b),
            Func2::Max => {
                if a > b || a.is_nan() { a } else { b }
            }
            Func2::Min => {
                if a < b || a.is_nan() { a } else { b }
            }
        }
    }

    /// The partial derivatives `(∂f/∂a, ∂f/∂b)` of `fab = f(a, b)`, built in `g` (see the
    /// table on [`Func2`]); the chain rule multiplies them by the derivatives of `a` and `b`
    /// (forward mode) or by the adjoint of `fab` (reverse mode).
    pub(crate) fn partials<G: Build>(self, g: &mut G, a: G::Id, b: G::Id, _fab: G::Id) -> (G::Id, G::Id) {
        match self {
            Func2::Atan2 => {
                let two = g.constant(2.0);
                let a2 = g.pow(a, two);
                let b2 = g.pow(b, two);
                let r2 = g.add(a2, b2);
                let da = g.div(b, r2);
                let q = g.div(a, r2);
                let db = g.neg(q);
                (da, db)
            }
            Func2::Max | Func2::Min => {
                let diff = if self == Func2::Max { g.sub(a, b) } else { g.sub(b, a) };
                let s = g.call(Func::Step, diff);
                let one = g.constant(1.0);
                let r = g.sub(one, s);
                (s, r)
            }
        }
    }
}

/// The graph operations a derivative rule needs; implemented by [`crate::Pool`] and
/// [`crate::matrix::Graph`], whose constructors simplify as they build.
pub(crate) trait Build {
    /// A node of the graph.
    type Id: Copy;
    /// A scalar constant.
    fn constant(&mut self, v: f64) -> Self::Id;
    /// `a + b`
    fn add(&mut self, a: Self::Id, b: Self::Id) -> Self::Id;
    /// `a - b`
    fn sub(&mut self, a: Self::Id, b: Self::Id) -> Self::Id;
    /// `a * b` (elementwise)
    fn mul(&mut self, a: Self::Id, b: Self::Id) -> Self::Id;
    /// `a / b` (elementwise)
    fn div(&mut self, a: Self::Id, b: Self::Id) -> Self::Id;
    /// `a ^ b` (elementwise)
    fn pow(&mut self, a: Self::Id, b: Self::Id) -> Self::Id;
    /// `-a`
    fn neg(&mut self, a: Self::Id) -> Self::Id;
    /// `f(a)` (elementwise)
    fn call(&mut self, f: Func, a: Self::Id) -> Self::Id;
}

impl Func {
    /// The chain rule for `fa = f(a)`: `d * f'(a)`, built in `g`, where `d` is the derivative of
    /// `a` (forward mode, model formulas) or the adjoint of `fa` (reverse mode, loss formulas).
    /// `None` where `f' = 0` (`sign`).
    ///
    /// | `f(a)`      | `d * f'(a)`                                   |
    /// |-------------|-----------------------------------------------|
    /// | `exp(a)`    | `d*exp(a)`                                    |
    /// | `log(a)`    | `d/a`; `log10(a)`: `d/(log(10)*a)`            |
    /// | `sqrt(a)`   | `d/(2*sqrt(a))`                               |
    /// | `sin, cos, tan` | `d*cos(a)`, `-(d*sin(a))`, `d/cos(a)^2`   |
    /// | `asin, acos, atan` | `d/sqrt(1-a^2)`, `-(d/sqrt(1-a^2))`, `d/(1+a^2)` |
    /// | `sinh, cosh, tanh` | `d*cosh(a)`, `d*sinh(a)`, `d*(1-tanh(a)^2)` |
    /// | `abs(a)`    | `d*sign(a)`; `sign(a)`, `step(a)`: none        |
    /// | `sigmoid(a)` | `d*sigmoid(a)*(1 - sigmoid(a))`              |
    /// | `softplus(a)` | `d*sigmoid(a)`                              |
    /// | `log1p(a)`, `expm1(a)` | `d/(1 + a)`, `d*exp(a)`            |
    /// | `erf(a)`, `erfc(a)` | `±d*(2/√π)*exp(-a^2)`                 |
    /// | `relu(a)`   | `d*step(a)` (the subgradient 0 at `a = 0`)     |
    pub(crate) fn chain<G: Build>(self, g: &mut G, a: G::Id, fa: G::Id, d: G::Id) -> Option<G::Id> {
        Some(match self {
            Func::Exp => g.mul(d, fa),
            Func::Log => g.div(d, a),
            Func::Log10 => {
                let l10 = g.constant(std::f64::consts::LN_10);
                let den = g.mul(l10, a);
                g.div(d, den)
            }
            Func::Sqrt => {
                let two = g.constant(2.0);
                let den = g.mul(two, fa);
                g.div(d, den)
            }
            Func::Sin => {
                let c = g.call(Func::Cos, a);
                g.mul(d, c)
            }
            Func::Cos => {
                let s = g.call(Func::Sin, a);
                let m = g.mul(d, s);
                g.neg(m)
            }
            Func::Tan => {
                let c = g.call(Func::Cos, a);
                let two = g.constant(2.0);
                let c2 = g.pow(c, two);
                g.div(d, c2)
            }
            Func::Asin | Func::Acos => {
                let two = g.constant(2.0);
                let a2 = g.pow(a, two);
                let one = g.constant(1.0);
                let r = g.sub(one, a2);
                let sq = g.call(Func::Sqrt, r);
                let q = g.div(d, sq);
                if self == Func::Acos { g.neg(q) } else { q }
            }
            Func::Atan => {
                let two = g.constant(2.0);
                let a2 = g.pow(a, two);
                let one = g.constant(1.0);
                let den = g.add(one, a2);
                g.div(d, den)
            }
            Func::Sinh => {
                let c = g.call(Func::Cosh, a);
                g.mul(d, c)
            }
            Func::Cosh => {
                let s = g.call(Func::Sinh, a);
                g.mul(d, s)
            }
            Func::Tanh => {
                let two = g.constant(2.0);
                let t2 = g.pow(fa, two);
                let one = g.constant(1.0);
                let r = g.sub(one, t2);
                g.mul(d, r)
            }
            Func::Abs => {
                let sg = g.call(Func::Sign, a);
                g.mul(d, sg)
            }
            Func::Sign | Func::Step => return None,
            Func::Sigmoid => {
                let one = g.constant(1.0);
                let r = g.sub(one, fa);
                let p = g.mul(fa, r);
                g.mul(d, p)
            }
            Func::Softplus => {
                let s = g.call(Func::Sigmoid, a);
                g.mul(d, s)
            }
            Func::Log1p => {
                let one = g.constant(1.0);
                let den = g.add(one, a);
                g.div(d, den)
            }
            Func::Expm1 => {
                let e = g.call(Func::Exp, a);
                g.mul(d, e)
            }
            Func::Erf | Func::Erfc => {
                let two = g.constant(2.0);
                let a2 = g.pow(a, two);
                let na2 = g.neg(a2);
                let e = g.call(Func::Exp, na2);
                let k = g.constant(std::f64::consts::FRAC_2_SQRT_PI);
                let ke = g.mul(k, e);
                let m = g.mul(d, ke);
                if self == Func::Erfc { g.neg(m) } else { m }
            }
            Func::Relu => {
                let s = g.call(Func::Step, a);
                g.mul(d, s)
            }
        })
    }
}

/// The closest known function name to `name`, if one is close enough to be a likely typo.
pub fn suggest(name: &str) -> Option<&'static str> {
    let lower = name.to_lowercase();
    if let Some(f) = Func::from_name(&lower) {
        return Some(f.name());
    }
    let aliases: [(&str, &str); 6] =
        [("arctan", "atan"), ("ln", "log"), ("exponential", "exp"), ("sqr", "sqrt"), ("arcsin", "asin"), ("arccos", "acos")];
    if let Some((_, f)) = aliases.iter().find(|(a, _)| *a == lower) {
        return Some(f);
    }
    let mut best: Option<(usize, &'static str)> = None;
    for f in ALL_FUNCS {
        let d = edit_distance(&lower, f.name());
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, f.name()));
        }
    }
    best.filter(|(d, n)| *d <= 1 + n.len() / 4).map(|(_, n)| n)
}

/// Levenshtein distance between two short strings.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len() > 64 || b.len() > 64 {
        return usize::MAX / 2;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}
