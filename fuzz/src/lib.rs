//! Oracles shared by the fuzz targets (`fuzz_targets/*.rs`). Every check panics on a failure,
//! which libFuzzer reports as a crash; the panic message says which oracle failed and why.

pub mod loss;
pub mod model;

/// A small deterministic generator (xorshift64*), seeded from the fuzz input.
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }
    pub fn u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.u64() % n.max(1) as u64) as usize
    }
    /// A value for the bit-exactness oracles: mostly ordinary numbers, sometimes the awkward ones.
    pub fn wild(&mut self) -> f64 {
        const SPECIAL: [f64; 16] = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            2.0,
            1e300,
            -1e300,
            1e-300,
            5e-324,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            709.8,
            -745.2,
            3.0,
        ];
        match self.below(8) {
            0 => SPECIAL[self.below(SPECIAL.len())],
            1 => self.range(-50.0, 50.0).round(),
            2 => self.range(-1e6, 1e6),
            _ => self.range(-3.0, 3.0),
        }
    }
}

/// FNV-1a: the seed of the random values, so that an input always gives the same case.
pub fn hash(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Equal bits, or both NaN.
pub fn same_bits(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Checks a diagnostic's span against its source: inside the text, on character boundaries,
/// and the rendering starts with `error: `.
pub fn check_diagnostic(d: &sepfit_expr::Diagnostic, src: &str, what: &str) {
    let (s, e) = (d.span.start, d.span.end);
    assert!(s <= e && e <= src.len(), "{what}: span {s}..{e} outside the text ({} bytes) {src:?}: {}", src.len(), d.message);
    assert!(
        src.is_char_boundary(s) && src.is_char_boundary(e),
        "{what}: span {s}..{e} not on character boundaries of {src:?}: {}",
        d.message
    );
    let text = d.render(src);
    assert!(text.starts_with("error: "), "{what}: rendering does not start with `error: `: {text:?}");
}
