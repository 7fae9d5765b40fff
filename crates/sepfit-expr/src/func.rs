//! Elementary functions of the language.

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
}

/// Every function, for look-up and suggestions.
pub const ALL_FUNCS: [Func; 15] = [
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
        }
    }

    /// Looks a function up by name (`ln` is accepted for `log`).
    pub fn from_name(name: &str) -> Option<Func> {
        if name == "ln" {
            return Some(Func::Log);
        }
        ALL_FUNCS.iter().copied().find(|f| f.name() == name)
    }

    /// Applies the function to a number.
    #[inline(always)]
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Func::Exp => x.exp(),
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
        }
    }

    /// Whether a constant argument lies outside the function's (real) domain, with a reason.
    pub fn domain_error(self, x: f64) -> Option<&'static str> {
        match self {
            Func::Log | Func::Log10 if x < 0.0 => Some("the logarithm of a negative number is not real"),
            Func::Log | Func::Log10 if x == 0.0 => Some("the logarithm of zero is -infinity"),
            Func::Sqrt if x < 0.0 => Some("the square root of a negative number is not real"),
            Func::Asin | Func::Acos if x.abs() > 1.0 => Some("asin and acos need an argument in [-1, 1]"),
            _ => None,
        }
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
