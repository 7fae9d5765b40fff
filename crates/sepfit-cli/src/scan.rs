//! Finding the field and record ends of unquoted CSV text, 64 bytes at a time.
//!
//! [`Delimiters`] classifies each 64-byte window of a buffer once: a bit per byte, set where
//! the byte is `,` or `\n` (SSE2 compares and `movemask` on x86-64, where SSE2 is always
//! there; eight bytes at a time with word arithmetic elsewhere). Each delimiter is then one
//! trailing-zero count and one bit clear, however short the fields are, instead of a search
//! started anew at every field.
//!
//! ```text
//! bytes   0 , 0 . 0 5 , 7 3 1 \n 0 , …
//! mask    0 1 0 0 0 0 1 0 0 0 1  0 1 …   next() → 1, 6, 10, 12, …
//! ```

/// The positions of `,` and `\n` in a buffer, in order. See the module docs.
pub struct Delimiters<'a> {
    bytes: &'a [u8],
    /// Start of the current window (a multiple of 64).
    base: usize,
    /// The delimiters of the current window not yet returned, a bit per byte.
    mask: u64,
}

impl<'a> Delimiters<'a> {
    /// The delimiters of `bytes` at or after `start`.
    pub fn new(bytes: &'a [u8], start: usize) -> Self {
        let mut d = Delimiters { bytes, base: 0, mask: 0 };
        d.seek(start);
        d
    }

    /// Continues from position `pos` (forgets the delimiters before it).
    pub fn seek(&mut self, pos: usize) {
        self.base = pos & !63;
        self.mask = window_mask(self.bytes, self.base) & (!0u64 << (pos - self.base));
    }

    /// The position of the next `,` or `\n`, or the buffer's length when there is none.
    #[inline(always)]
    pub fn next_end(&mut self) -> usize {
        while self.mask == 0 {
            self.base += 64;
            if self.base >= self.bytes.len() {
                self.base = self.bytes.len() & !63;
                return self.bytes.len();
            }
            self.mask = window_mask(self.bytes, self.base);
        }
        let p = self.base + self.mask.trailing_zeros() as usize;
        self.mask &= self.mask - 1;
        p
    }
}

/// The delimiter bits of `bytes[base..base + 64]` (bits past the end are clear).
#[inline(always)]
fn window_mask(bytes: &[u8], base: usize) -> u64 {
    match bytes.get(base..base + 64) {
        Some(w) => full_window(w.try_into().expect("64 bytes")),
        None => bytes.get(base..).unwrap_or_default().iter().enumerate().fold(0, |m, (k, &b)| m | (u64::from(b == b',' || b == b'\n') << k)),
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn full_window(w: &[u8; 64]) -> u64 {
    use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8};
    // SAFETY: SSE2 is part of the x86-64 baseline, so these instructions exist on every
    // x86-64 machine; `w` has 64 bytes, so the unaligned loads at 16k (k < 4) are in bounds.
    unsafe {
        let (comma, newline) = (_mm_set1_epi8(b',' as i8), _mm_set1_epi8(b'\n' as i8));
        let mut m = 0u64;
        for k in 0..4 {
            let v = _mm_loadu_si128(w.as_ptr().add(16 * k).cast::<__m128i>());
            let hit = _mm_or_si128(_mm_cmpeq_epi8(v, comma), _mm_cmpeq_epi8(v, newline));
            m |= u64::from(_mm_movemask_epi8(hit) as u16) << (16 * k);
        }
        m
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn full_window(w: &[u8; 64]) -> u64 {
    full_window_words(w)
}

/// [`full_window`] with word arithmetic, eight bytes at a time (the non-x86 path, tested
/// everywhere).
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline(always)]
fn full_window_words(w: &[u8; 64]) -> u64 {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    // High bit of each byte that is zero, exactly (no borrow between bytes).
    let zero = |v: u64| !(((v & LOW7) + LOW7) | v | LOW7);
    let mut m = 0u64;
    for (k, c) in w.chunks_exact(8).enumerate() {
        let x = u64::from_le_bytes(c.try_into().expect("eight bytes"));
        let hit = zero(x ^ (0x0101_0101_0101_0101 * u64::from(b','))) | zero(x ^ (0x0101_0101_0101_0101 * u64::from(b'\n')));
        // Gather the eight high bits into one byte.
        let bits = ((hit >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56;
        m |= bits << (8 * k);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::{Delimiters, full_window, full_window_words};

    /// The two window classifiers agree on every byte value in every position.
    #[test]
    fn window_classifiers_agree() {
        for b in 0..=255u8 {
            for k in 0..64 {
                let mut w = [b'x'; 64];
                w[k] = b;
                w[(k * 7 + 3) % 64] = b',';
                assert_eq!(full_window(&w), full_window_words(&w), "byte {b} at {k}");
            }
        }
    }

    /// Every delimiter in order, from any start, on random text with short and long fields.
    #[test]
    fn delimiters_match_a_byte_loop() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let alphabet = b"0123456789.,,\n-e \"a\x80\xff\x2b\x0b\x2c\x0a";
        for len in [0, 1, 7, 63, 64, 65, 127, 128, 129, 200, 1000] {
            for _ in 0..20 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        alphabet[(seed % alphabet.len() as u64) as usize]
                    })
                    .collect();
                for start in (0..=len).step_by(7) {
                    let want: Vec<usize> = (start..len).filter(|&i| bytes[i] == b',' || bytes[i] == b'\n').collect();
                    let mut d = Delimiters::new(&bytes, start);
                    let got: Vec<usize> = std::iter::from_fn(|| Some(d.next_end()).filter(|&p| p < len)).collect();
                    assert_eq!(got, want, "{bytes:?} from {start}");
                    assert_eq!(d.next_end(), len, "the end again");
                }
                // Seeking forward mid-stream.
                let mut d = Delimiters::new(&bytes, 0);
                for pos in (0..=len).step_by(13) {
                    d.seek(pos);
                    let want = (pos..len).find(|&i| bytes[i] == b',' || bytes[i] == b'\n').unwrap_or(len);
                    assert_eq!(d.next_end(), want, "seek {pos}");
                }
            }
        }
    }
}
