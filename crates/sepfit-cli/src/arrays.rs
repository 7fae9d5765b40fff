//! Arrays of curves in binary files, read without parsing text: NumPy `.npy` (`numpy.save`),
//! `.npz` (`numpy.savez`, stored or deflated members) and raw float32/float64 with the shape
//! given on the command line. Every lane along the last axis is a curve.
//!
//! `.npy`, raw files and the stored members of `.npz` files are memory-mapped: nothing is read
//! before a curve is fitted, and a curve's values are decoded into the fitting thread's buffer
//! (no copy of the whole array; the operating system pages the file in). A deflated `.npz`
//! member is inflated into memory. The file must not be truncated while sepfit reads it (a
//! memory-mapped file that shrinks underneath a reader is a fault, not an error).

use crate::npy::{Dtype, parse_header};
use anyhow::{Context, anyhow, bail};
use std::fs::File;
use std::path::Path;

/// The bytes an array lives in.
enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// An array of curves: `shape` with the curves along its last axis, row-major.
pub struct CurveArray {
    bytes: Bytes,
    offset: usize,
    dtype: Dtype,
    /// The whole shape, the last axis the points of a curve.
    pub shape: Vec<usize>,
}

fn map(path: &Path) -> anyhow::Result<Bytes> {
    let shown = path.display();
    let file = File::open(path).with_context(|| format!("cannot open `{shown}`"))?;
    let len = file.metadata().with_context(|| format!("cannot read `{shown}`"))?.len();
    if len == 0 {
        bail!("`{shown}` is empty");
    }
    // SAFETY: the map is only read; the module docs say that the file must not be truncated
    // while it is read (as for every memory-mapped reader).
    let m = unsafe { memmap2::Mmap::map(&file) }.with_context(|| format!("cannot map `{shown}` into memory"))?;
    Ok(Bytes::Mapped(m))
}

impl CurveArray {
    /// A `.npy` file.
    pub fn open_npy(path: &Path) -> anyhow::Result<CurveArray> {
        let bytes = map(path)?;
        let h = parse_header(bytes.as_slice()).with_context(|| format!("{} is not a .npy array sepfit can read", path.display()))?;
        Ok(CurveArray { bytes, offset: h.data_offset, dtype: h.dtype, shape: h.shape })
    }

    /// The array `name` of a `.npz` file, or its only array (or the one called `y`) when `name`
    /// is `None`.
    pub fn open_npz(path: &Path, name: Option<&str>) -> anyhow::Result<CurveArray> {
        let shown = path.display().to_string();
        let file = File::open(path).with_context(|| format!("cannot open `{shown}`"))?;
        let mut zip = zip::ZipArchive::new(file).map_err(|e| anyhow!("{shown} is not a .npz archive (numpy.savez): {e}"))?;
        let members: Vec<String> = zip.file_names().filter_map(|n| n.ok()?.strip_suffix(".npy").map(str::to_string)).collect();
        let pick = match name {
            Some(n) => {
                if !members.iter().any(|m| m == n) {
                    bail!("{shown} has no array `{n}`; it holds {}", list(&members));
                }
                n.to_string()
            }
            None => match members.as_slice() {
                [only] => only.clone(),
                _ if members.iter().any(|m| m == "y") => "y".to_string(),
                [] => bail!("{shown} holds no arrays"),
                _ => bail!("{shown} holds several arrays ({}); say which holds the curves with --array NAME", list(&members)),
            },
        };
        let mut member = zip.by_name(&format!("{pick}.npy")).map_err(|e| anyhow!("{shown}: cannot read array `{pick}`: {e}"))?;
        let what = format!("array `{pick}` of {shown}");
        let stored = member.compression() == zip::CompressionMethod::Stored;
        let (bytes, start) = if stored {
            let start = usize::try_from(member.data_start().ok_or_else(|| anyhow!("{what}: no data offset"))?)?;
            drop(member);
            (map(path)?, start)
        } else {
            let mut v = Vec::with_capacity(usize::try_from(member.size()).unwrap_or(0).min(1 << 32));
            std::io::Read::read_to_end(&mut member, &mut v).map_err(|e| anyhow!("{what}: cannot inflate it: {e}"))?;
            (Bytes::Owned(v), 0)
        };
        let h = parse_header(&bytes.as_slice()[start..]).with_context(|| format!("{what} is not a .npy array sepfit can read"))?;
        Ok(CurveArray { bytes, offset: start + h.data_offset, dtype: h.dtype, shape: h.shape })
    }

    /// A raw file of `dtype` values (no header) of the given `shape`; its size must match.
    pub fn open_raw(path: &Path, dtype: Dtype, shape: &[usize]) -> anyhow::Result<CurveArray> {
        let bytes = map(path)?;
        let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| anyhow!("--shape {shape:?} is too large"))?;
        let need = count.checked_mul(dtype.width()).ok_or_else(|| anyhow!("--shape {shape:?} is too large"))?;
        let have = bytes.as_slice().len();
        if have != need {
            bail!(
                "{} holds {have} bytes, but --shape {} of {}-byte values needs {need}; check --shape and --dtype",
                path.display(),
                shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x"),
                dtype.width()
            );
        }
        Ok(CurveArray { bytes, offset: 0, dtype, shape: shape.to_vec() })
    }

    /// Points per curve (the last axis), 0 for a scalar.
    pub fn curve_len(&self) -> usize {
        self.shape.last().copied().unwrap_or(0)
    }

    /// Number of curves (the product of the leading axes).
    pub fn curves(&self) -> usize {
        self.shape.split_last().map_or(0, |(_, lead)| lead.iter().product())
    }

    /// Curve `j`'s values, decoded into `out` (cleared first).
    pub fn curve_into(&self, j: usize, out: &mut Vec<f64>) {
        let (len, w) = (self.curve_len(), self.dtype.width());
        let at = self.offset + j * len * w;
        out.clear();
        self.dtype.decode_into(&self.bytes.as_slice()[at..at + len * w], out);
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() { "none".to_string() } else { names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ") }
}

/// A `--shape` value: sizes separated by `x`, `,` or spaces (`256x256x128`), each at least 1.
pub fn parse_shape(s: &str) -> anyhow::Result<Vec<usize>> {
    let dims: Vec<usize> = s
        .split(|c: char| c == 'x' || c == 'X' || c == ',' || c == '×' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<usize>().map_err(|_| anyhow!("--shape {s:?}: `{t}` is not a size; write e.g. --shape 256x256x128")))
        .collect::<anyhow::Result<_>>()?;
    if dims.is_empty() || dims.contains(&0) {
        bail!("--shape {s:?} needs one or more sizes of at least 1, the curves' points last, e.g. 256x256x128");
    }
    Ok(dims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_shape("256x256x128").unwrap(), [256, 256, 128]);
        assert_eq!(parse_shape("4, 3").unwrap(), [4, 3]);
        assert_eq!(parse_shape("7").unwrap(), [7]);
        for bad in ["", "x", "3x0", "3xa", "-1"] {
            assert!(parse_shape(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn raw_files_are_read_lane_by_lane_and_sizes_checked() {
        let dir = std::env::temp_dir().join(format!("sepfit-raw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.f32");
        let vals: Vec<f32> = (0..12).map(|i| i as f32 * 0.5).collect();
        std::fs::write(&p, vals.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
        let a = CurveArray::open_raw(&p, Dtype::F32Le, &[3, 4]).unwrap();
        assert_eq!((a.curves(), a.curve_len()), (3, 4));
        let mut out = Vec::new();
        a.curve_into(2, &mut out);
        assert_eq!(out, [4.0, 4.5, 5.0, 5.5]);
        let e = CurveArray::open_raw(&p, Dtype::F64Le, &[3, 4]).err().unwrap().to_string();
        assert!(e.contains("48 bytes") && e.contains("96"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
