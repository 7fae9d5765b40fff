//! Reading CSV data with errors that name the file, row and column.

use anyhow::{Context, Result, bail};
use sepfit::named::Dataset;
use std::path::Path;

/// A CSV file read into numeric columns. Cells that are not finite numbers are remembered,
/// and reported only if a column that is actually used holds one.
pub struct CsvData {
    pub path: String,
    pub names: Vec<String>,
    pub columns: Vec<Vec<f64>>,
    /// First bad cell per column: (data row, 1-based; text).
    pub bad: Vec<Option<(usize, String)>>,
}

pub fn read_csv(path: &Path) -> Result<CsvData> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).with_context(|| format!("cannot open data file `{shown}`"))?;
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).trim(csv::Trim::All).comment(Some(b'#')).from_reader(file);
    let headers = rdr.headers().with_context(|| format!("{shown}: cannot read the header row"))?.clone();
    if headers.is_empty() || headers.iter().all(|h| h.is_empty()) {
        bail!("{shown} is empty: expected a header row naming the columns, e.g. `t,y`");
    }
    let names: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for (i, n) in names.iter().enumerate() {
        if n.is_empty() {
            bail!("{shown}: column {} of the header row has no name", i + 1);
        }
        if let Some(j) = names[..i].iter().position(|m| m == n) {
            bail!("{shown}: duplicate column `{n}` (columns {} and {}); column names must be unique", j + 1, i + 1);
        }
    }
    let mut columns = vec![Vec::new(); names.len()];
    let mut bad: Vec<Option<(usize, String)>> = vec![None; names.len()];
    for (r, rec) in rdr.records().enumerate() {
        let row = r + 1;
        let rec = rec.map_err(|e| match e.kind() {
            csv::ErrorKind::UnequalLengths { expected_len, len, .. } => anyhow::anyhow!(
                "{shown}, data row {row}: {len} fields but the header has {expected_len}; every row needs one value per column"
            ),
            _ => anyhow::anyhow!("{shown}, data row {row}: {e}"),
        })?;
        for (c, cell) in rec.iter().enumerate() {
            let v = cell.parse::<f64>().ok().filter(|v| v.is_finite());
            if v.is_none() && bad[c].is_none() {
                bad[c] = Some((row, cell.to_string()));
            }
            columns[c].push(v.unwrap_or(f64::NAN));
        }
    }
    if columns.first().is_none_or(|c| c.is_empty()) {
        bail!("{shown} has a header but no data rows");
    }
    Ok(CsvData { path: shown, names, columns, bad })
}

impl CsvData {
    /// Checks that the named columns hold only finite numbers.
    pub fn check_columns(&self, used: &[&str]) -> Result<()> {
        for name in used {
            let Some(c) = self.names.iter().position(|n| n == name) else {
                bail!("{}: no column `{name}`; columns are: {}", self.path, self.names.join(", "));
            };
            if let Some((row, text)) = &self.bad[c] {
                let what = if text.is_empty() {
                    "an empty cell".to_string()
                } else if text.parse::<f64>().is_ok() {
                    format!("the non-finite value `{text}`")
                } else {
                    format!("`{text}`, which is not a number")
                };
                bail!(
                    "{}, data row {row} (line {}), column `{name}`: {what}; every value the model uses must be a finite number — fix or remove that row",
                    self.path,
                    row + 1
                );
            }
        }
        Ok(())
    }

    /// The data as a [`Dataset`].
    pub fn dataset(&self) -> Result<Dataset> {
        Ok(Dataset::new(self.names.clone(), self.columns.clone())?)
    }
}

/// The text values of one column (e.g. curve names), read separately from the numbers.
pub fn read_labels(path: &Path, column: &str) -> Result<Vec<String>> {
    let shown = path.display().to_string();
    let mut rdr = csv::ReaderBuilder::new().trim(csv::Trim::All).comment(Some(b'#')).from_path(path)
        .with_context(|| format!("cannot open data file `{shown}`"))?;
    let headers = rdr.headers().with_context(|| format!("{shown}: cannot read the header row"))?.clone();
    let idx = headers
        .iter()
        .position(|h| h == column)
        .with_context(|| format!("{shown}: no column `{column}`; columns are: {}", headers.iter().collect::<Vec<_>>().join(", ")))?;
    let mut out = Vec::new();
    for (r, rec) in rdr.records().enumerate() {
        let rec = rec.with_context(|| format!("{shown}, data row {}", r + 1))?;
        out.push(rec.get(idx).unwrap_or("").to_string());
    }
    Ok(out)
}

/// Parses a CSV number field (surrounding ASCII whitespace allowed) into a finite `f64`;
/// `None` if it is not a finite number.
///
/// Plain decimals (`-12.75`, `806`, `0.05`: at most 19 digits, 22 of them decimals)
/// take Clinger's fast path: the digits as an integer `m < 2^53` and `10^d` (`d ≤ 22`) are
/// both exact doubles, so `m / 10^d` is one correctly rounded division, the same value as
/// `str::parse`. Anything else (exponents, more digits, `inf`, …) goes to `str::parse`.
#[inline]
pub fn parse_number(field: &[u8]) -> Option<f64> {
    // Surrounding whitespace is rare: trim only when an end byte is not a digit.
    let f = match (field.first(), field.last()) {
        (Some(a), Some(b)) if a.is_ascii_digit() && b.is_ascii_digit() => field,
        _ => field.trim_ascii(),
    };
    let (neg, b) = match f.first() {
        Some(b'-') => (true, &f[1..]),
        Some(b'+') => (false, &f[1..]),
        _ => (false, f),
    };
    // Digits, an optional '.', digits; nothing else.
    let mut m: u64 = 0;
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        m = m.wrapping_mul(10).wrapping_add((b[i] - b'0') as u64);
        i += 1;
    }
    let int_digits = i;
    let mut decimals = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            m = m.wrapping_mul(10).wrapping_add((b[i] - b'0') as u64);
            i += 1;
        }
        decimals = i - start;
    }
    let digits = int_digits + decimals;
    // At most 19 digits in all: `m` is exact (no wrap-around).
    if i == b.len() && digits > 0 && digits <= 19 && m < (1u64 << 53) && decimals <= 22 {
        const POW10: [f64; 23] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
            1e20, 1e21, 1e22,
        ];
        let v = if decimals == 0 { m as f64 } else { m as f64 / POW10[decimals] };
        return Some(if neg { -v } else { v });
    }
    parse_slow(f)
}

/// Everything [`parse_number`]'s fast path does not take.
#[cold]
fn parse_slow(f: &[u8]) -> Option<f64> {
    std::str::from_utf8(f).ok()?.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::parse_number;

    /// The fast path gives exactly `str::parse`'s value; other inputs fall back or fail.
    #[test]
    fn parse_number_matches_std() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut cases: Vec<String> = vec![
            "0", "-0", "+1", "0.05", "12.75", " 806 ", "1.", ".5", "-.5", "9007199254740991", "9007199254740993",
            "12345678901234567890", "0.1234567890123456789012", "1e5", "-2.5E-3", "inf", "NaN", "", ".", "-", "1.2.3",
            "abc", "1,5", "00012.500", "0.0000000000000000000001",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        for _ in 0..200_000 {
            let r = next();
            let int = r % 10u64.pow((r >> 60) as u32 % 17 + 1);
            let dec = (r >> 8) % 23;
            let s = int.to_string();
            let text = if dec as usize >= s.len() {
                format!("0.{}{}", "0".repeat(dec as usize - s.len()), s)
            } else if dec == 0 {
                s
            } else {
                format!("{}.{}", &s[..s.len() - dec as usize], &s[s.len() - dec as usize..])
            };
            cases.push(if r & 1 == 1 { format!("-{text}") } else { text });
        }
        for c in &cases {
            let want = c.trim().parse::<f64>().ok().filter(|v| v.is_finite());
            let got = parse_number(c.as_bytes());
            assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits), "`{c}`: {got:?} vs {want:?}");
        }
    }
}
