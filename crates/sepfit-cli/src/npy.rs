//! NumPy `.npy` arrays (format versions 1–3): what Python users save with `np.save`. Only
//! floating-point arrays in C order are read (`<f8`, `<f4`, and their big-endian forms); the
//! values come back as `f64`, row-major, with the shape.

use anyhow::{Context, anyhow, bail};
use std::path::Path;

/// A `.npy` array: its shape and its values in C (row-major) order.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    /// The shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<f64>,
}

/// Reads a `.npy` file.
pub fn read(path: &Path) -> anyhow::Result<NpyArray> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    parse(&bytes).with_context(|| format!("{} is not a .npy array sepfit can read", path.display()))
}

/// Parses the bytes of a `.npy` file.
pub fn parse(bytes: &[u8]) -> anyhow::Result<NpyArray> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        bail!("it does not start with the .npy magic bytes (save it with numpy.save)");
    }
    let major = bytes[6];
    let (len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                bail!("the header is cut short");
            }
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        v => bail!("format version {v} is not supported (1, 2 and 3 are)"),
    };
    let header = bytes.get(start..start + len).ok_or_else(|| anyhow!("the header is cut short"))?;
    let header = std::str::from_utf8(header).map_err(|_| anyhow!("the header is not text"))?;
    let descr = dict_value(header, "descr").ok_or_else(|| anyhow!("the header has no 'descr'"))?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let fortran = dict_value(header, "fortran_order").ok_or_else(|| anyhow!("the header has no 'fortran_order'"))?;
    if fortran.trim() != "False" {
        bail!("the array is in Fortran order; save a C-ordered copy (numpy.ascontiguousarray)");
    }
    let shape_text = dict_value(header, "shape").ok_or_else(|| anyhow!("the header has no 'shape'"))?;
    let shape: Vec<usize> = shape_text
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| anyhow!("the shape `{shape_text}` is not a tuple of sizes")))
        .collect::<anyhow::Result<_>>()?;
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| anyhow!("the shape {shape:?} is too large"))?;
    let body = &bytes[start + len..];
    let (width, convert): (usize, fn(&[u8]) -> f64) = match descr {
        "<f8" => (8, |b| f64::from_le_bytes(b.try_into().expect("8 bytes"))),
        ">f8" => (8, |b| f64::from_be_bytes(b.try_into().expect("8 bytes"))),
        "<f4" => (4, |b| f64::from(f32::from_le_bytes(b.try_into().expect("4 bytes")))),
        ">f4" => (4, |b| f64::from(f32::from_be_bytes(b.try_into().expect("4 bytes")))),
        other => bail!("its dtype is `{other}`; sepfit reads float64 (<f8) and float32 (<f4) arrays (convert with .astype(float))"),
    };
    let need = count.checked_mul(width).ok_or_else(|| anyhow!("the shape {shape:?} is too large"))?;
    if body.len() < need {
        bail!("the data are cut short: the shape {shape:?} needs {need} bytes, the file holds {}", body.len());
    }
    let data = body[..need].chunks_exact(width).map(convert).collect();
    Ok(NpyArray { shape, data })
}

/// The text of `key`'s value in the header's Python dict literal.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'")).or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = &header[at + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') { rest.find(')')? + 1 } else { rest.find([',', '}']).unwrap_or(rest.len()) };
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, body: &[u8]) -> Vec<u8> {
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn reads_f8_and_f4_in_c_order() {
        let vals = [1.0f64, 2.5, -3.0, 4.0, 5.0, 6.0];
        let body: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let a = parse(&npy("<f8", "(2, 3)", &body)).unwrap();
        assert_eq!(a.shape, [2, 3]);
        assert_eq!(a.data, vals);
        let body: Vec<u8> = vals.iter().flat_map(|v| (*v as f32).to_le_bytes()).collect();
        let a = parse(&npy("<f4", "(6,)", &body)).unwrap();
        assert_eq!((a.shape, a.data), (vec![6], vals.to_vec()));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let body = [0u8; 48];
        assert!(parse(b"not an array").unwrap_err().to_string().contains("magic"));
        assert!(parse(&npy("<i8", "(6,)", &body)).unwrap_err().to_string().contains("float64"));
        assert!(parse(&npy("<f8", "(7,)", &body)).unwrap_err().to_string().contains("cut short"));
        let f = npy("<f8", "(6,)", &body);
        let s = String::from_utf8_lossy(&f).replace("False", "True ");
        assert!(parse(s.as_bytes()).is_err());
        assert!(parse(&npy("<f8", "(99999999999999999999,)", &body)).is_err());
        // Cut anywhere: an error, never a panic.
        let good = npy("<f8", "(6,)", &body);
        for cut in 0..good.len() {
            let _ = parse(&good[..cut]);
        }
    }
}
