//! NumPy `.npy` arrays (format versions 1–3): what Python users save with `np.save`. Only
//! floating-point arrays in C order are read (`<f8`, `<f4`, and their big-endian forms); the
//! values come back as `f64`, row-major, with the shape. Results are written as structured
//! arrays of `f8` fields ([`structured_header`]).

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

/// The element type of an array file: float64 or float32, little- or big-endian.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F64Le,
    F64Be,
    F32Le,
    F32Be,
}

impl Dtype {
    /// Bytes per value.
    pub fn width(self) -> usize {
        match self {
            Dtype::F64Le | Dtype::F64Be => 8,
            Dtype::F32Le | Dtype::F32Be => 4,
        }
    }

    /// The dtype of a `.npy` `descr` (`<f8`, `>f4`, …; `=`/`|` mean this machine's order,
    /// little-endian here).
    pub fn from_descr(descr: &str) -> Option<Dtype> {
        match descr {
            "<f8" | "=f8" | "f8" | "<d" => Some(Dtype::F64Le),
            ">f8" | ">d" => Some(Dtype::F64Be),
            "<f4" | "=f4" | "f4" | "<f" => Some(Dtype::F32Le),
            ">f4" | ">f" => Some(Dtype::F32Be),
            _ => None,
        }
    }

    /// The dtype of a `--dtype` value: `f64`, `f32` (little-endian), `f64be`, `f32be`.
    pub fn from_flag(s: &str) -> Option<Dtype> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f64" | "f8" | "float64" | "f64le" | "<f8" => Some(Dtype::F64Le),
            "f64be" | ">f8" => Some(Dtype::F64Be),
            "f32" | "f4" | "float32" | "f32le" | "<f4" => Some(Dtype::F32Le),
            "f32be" | ">f4" => Some(Dtype::F32Be),
            _ => None,
        }
    }

    /// Appends the values encoded in `bytes` (a whole number of elements) to `out`.
    pub fn decode_into(self, bytes: &[u8], out: &mut Vec<f64>) {
        match self {
            Dtype::F64Le => out.extend(bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))),
            Dtype::F64Be => out.extend(bytes.chunks_exact(8).map(|b| f64::from_be_bytes(b.try_into().expect("8 bytes")))),
            Dtype::F32Le => out.extend(bytes.chunks_exact(4).map(|b| f64::from(f32::from_le_bytes(b.try_into().expect("4 bytes"))))),
            Dtype::F32Be => out.extend(bytes.chunks_exact(4).map(|b| f64::from(f32::from_be_bytes(b.try_into().expect("4 bytes"))))),
        }
    }
}

/// What the header of a `.npy` file says: the shape, the element type and where the data
/// start (checked to be all there).
#[derive(Clone, Debug, PartialEq)]
pub struct NpyHeader {
    pub shape: Vec<usize>,
    pub dtype: Dtype,
    pub data_offset: usize,
}

/// Parses the bytes of a `.npy` file.
pub fn parse(bytes: &[u8]) -> anyhow::Result<NpyArray> {
    let h = parse_header(bytes)?;
    let count: usize = h.shape.iter().product();
    let mut data = Vec::with_capacity(count);
    h.dtype.decode_into(&bytes[h.data_offset..h.data_offset + count * h.dtype.width()], &mut data);
    Ok(NpyArray { shape: h.shape, data })
}

/// Parses the header of a `.npy` file held in `bytes` and checks that its data are all there.
pub fn parse_header(bytes: &[u8]) -> anyhow::Result<NpyHeader> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        bail!("it does not start with the .npy magic bytes (save it with numpy.save)");
    }
    let major = bytes[6];
    let (len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 => {
            if bytes.len() < 12 {
                bail!("the header is cut short");
            }
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        v => bail!("format version {v} is not supported (1, 2 and 3 are)"),
    };
    let header = bytes.get(start..start.saturating_add(len)).ok_or_else(|| anyhow!("the header is cut short"))?;
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
    let dtype = Dtype::from_descr(descr).ok_or_else(|| {
        anyhow!("its dtype is `{descr}`; sepfit reads float64 (<f8) and float32 (<f4) arrays (convert with .astype(float))")
    })?;
    let data_offset = start + len;
    let need = count.checked_mul(dtype.width()).ok_or_else(|| anyhow!("the shape {shape:?} is too large"))?;
    let have = bytes.len() - data_offset;
    if have < need {
        bail!("the data are cut short: the shape {shape:?} needs {need} bytes, the file holds {have}");
    }
    Ok(NpyHeader { shape, dtype, data_offset })
}

/// The header of a `.npy` file (format 1.0, or 2.0 when longer than 64 KiB; 3.0 for
/// non-ASCII field names) holding a structured array of `f8` fields named `fields`, of
/// `shape`, padded so that the data start at a multiple of 64 bytes, as `numpy.save` does.
pub fn structured_header(fields: &[String], shape: &[usize]) -> Vec<u8> {
    let descr: Vec<String> = fields.iter().map(|f| format!("('{}', '<f8')", f.replace('\\', "\\\\").replace('\'', "\\'"))).collect();
    let shape_text = match shape {
        [d] => format!("({d},)"),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut h = format!("{{'descr': [{}], 'fortran_order': False, 'shape': {shape_text}, }}", descr.join(", "));
    let ascii = h.is_ascii();
    let pre = if !ascii || h.len() + 11 > u16::MAX as usize { 12 } else { 10 };
    while (pre + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY".to_vec();
    if pre == 10 {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&[if ascii { 2 } else { 3 }, 0]);
        out.extend_from_slice(&(h.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(h.as_bytes());
    out
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
