//! Reading CSV data with errors that name the file, row and column.
//!
//! One reader for every command ([`Records`]): RFC 4180 quoting (quoted fields may hold
//! commas, newlines and doubled quotes `""`), a UTF-8 byte-order mark before the header is
//! ignored, lines starting with `#` are comments (before the header and between rows), blank
//! lines are skipped, fields are trimmed of surrounding whitespace. A header of one field that
//! holds `;` or a tab gets a hint that the file is not comma-separated. `batch` has its own
//! block parser for speed (`cmd/batch.rs`) that follows the same rules, using [`record_end`]
//! and [`split_record`] from here for anything quoted.
//!
//! Rows are numbered from 1 among the data rows (the header, comments and blank lines not
//! counted); lines are the file's lines, from 1.

use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// A CSV file read into numeric columns. Cells that are not finite numbers are remembered,
/// and reported only if a column that is actually used holds one.
pub struct CsvData {
    pub path: String,
    pub names: Vec<String>,
    pub columns: Vec<Vec<f64>>,
    /// First bad cell per column: (data row, 1-based; text).
    pub bad: Vec<Option<(usize, String)>>,
    /// File line (1-based) of each first bad cell in `bad` (0 where there is none).
    pub bad_lines: Vec<usize>,
}

/// At most `MAX_ECHO` characters of a field quoted in a message.
pub const MAX_ECHO: usize = 40;

/// A field as quoted in a message: trimmed, lossily decoded, cut to [`MAX_ECHO`] characters
/// with `…` (a 400 MB cell is not echoed whole).
pub fn echo(field: &[u8]) -> String {
    let f = field.trim_ascii();
    // Decode only a prefix: at most 4 bytes a character, and one more to see if it goes on.
    let head = &f[..f.len().min(4 * MAX_ECHO + 4)];
    let s = String::from_utf8_lossy(head);
    let mut out: String = s.chars().take(MAX_ECHO).collect();
    if out.len() < f.len() {
        out.push('…');
    }
    out
}

/// [`echo`] of a string.
pub fn echo_str(s: &str) -> String {
    echo(s.as_bytes())
}

/// Why a cell is not a number the model can use: "an empty cell", "`abc`, which is not a
/// number", "the non-finite value `inf`".
pub fn cell_problem(text: &[u8]) -> String {
    let t = text.trim_ascii();
    if t.is_empty() {
        "an empty cell".to_string()
    } else if std::str::from_utf8(t).ok().and_then(|s| s.parse::<f64>().ok()).is_some() {
        format!("the non-finite value `{}`", echo(t))
    } else {
        format!("`{}`, which is not a number", echo(t))
    }
}

/// Where a row is: "data row 3 (line 5)".
pub fn row_at(row: usize, line: usize) -> String {
    format!("data row {row} (line {line})")
}

/// The end of the record that starts at `start`: the index of its terminating `\n` (outside
/// quotes), or `None` if the bytes end first (the record is incomplete, or is the last one
/// without a newline). A line starting with `#` is a comment and ends at its newline.
pub fn record_end(bytes: &[u8], start: usize) -> Option<usize> {
    if bytes.get(start) == Some(&b'#') {
        return memchr::memchr(b'\n', &bytes[start..]).map(|j| start + j);
    }
    let mut i = start;
    loop {
        if bytes.get(i) == Some(&b'"') {
            // A quoted field: on to the closing quote (`""` is an escaped quote).
            i += 1;
            loop {
                let j = i + memchr::memchr(b'"', &bytes[i..])?;
                if bytes.get(j + 1) == Some(&b'"') {
                    i = j + 2;
                } else {
                    i = j + 1;
                    break;
                }
            }
        }
        let j = i + memchr::memchr2(b',', b'\n', &bytes[i..])?;
        if bytes[j] == b'\n' {
            return Some(j);
        }
        i = j + 1;
    }
}

/// An unterminated quoted field.
#[derive(Debug)]
pub struct Unterminated;

/// Splits one record (without its final newline) into fields, RFC 4180 style: a field that
/// starts with `"` runs to the closing quote, `""` inside it is one `"`, and anything after
/// the closing quote up to the comma is kept as it is. Fields are trimmed of surrounding
/// whitespace and written one after another into `text`, `ends` marking where each ends.
pub fn split_record(rec: &[u8], text: &mut Vec<u8>, ends: &mut Vec<usize>) -> std::result::Result<(), Unterminated> {
    text.clear();
    ends.clear();
    let rec = rec.strip_suffix(b"\r").unwrap_or(rec);
    let n = rec.len();
    let mut i = 0;
    loop {
        let start = text.len();
        if rec.get(i) == Some(&b'"') {
            i += 1;
            loop {
                let Some(j) = memchr::memchr(b'"', &rec[i..]).map(|j| i + j) else {
                    return Err(Unterminated);
                };
                text.extend_from_slice(&rec[i..j]);
                if rec.get(j + 1) == Some(&b'"') {
                    text.push(b'"');
                    i = j + 2;
                } else {
                    i = j + 1;
                    break;
                }
            }
        }
        let j = memchr::memchr(b',', &rec[i..]).map_or(n, |j| i + j);
        text.extend_from_slice(&rec[i..j]);
        // Trim in place.
        let field = &text[start..];
        let lead = field.iter().take_while(|b| b.is_ascii_whitespace()).count();
        let trail = field[lead..].iter().rev().take_while(|b| b.is_ascii_whitespace()).count();
        let len = field.len() - lead - trail;
        if lead > 0 {
            text.copy_within(start + lead..start + lead + len, start);
        }
        text.truncate(start + len);
        ends.push(text.len());
        if j >= n {
            return Ok(());
        }
        i = j + 1;
    }
}

/// A UTF-8 byte-order mark (Excel's "CSV UTF-8" starts with one).
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Records of a CSV file, one at a time, with their data row and file line numbers. Reads
/// through `BufRead::read_until`, so after [`Records::header`] the inner reader stands
/// exactly after the header's line (`batch` reads on from there in blocks).
pub struct Records<R> {
    inner: R,
    /// The file, for messages.
    pub path: String,
    raw: Vec<u8>,
    text: Vec<u8>,
    ends: Vec<usize>,
    /// Lines read so far.
    lines: usize,
    /// Data rows returned so far.
    rows: usize,
    /// File line of the current record's first line.
    line: usize,
    at_start: bool,
}

impl<R: BufRead> Records<R> {
    pub fn new(inner: R, path: &str) -> Self {
        Records { inner, path: path.to_string(), raw: Vec::new(), text: Vec::new(), ends: Vec::new(), lines: 0, rows: 0, line: 0, at_start: true }
    }

    /// The inner reader, positioned after the last record read.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Lines of the file read so far.
    pub fn lines_read(&self) -> usize {
        self.lines
    }

    /// The next record that is not a comment or blank, split into fields; `false` at the end.
    pub fn next_record(&mut self) -> Result<bool> {
        loop {
            self.raw.clear();
            let got = self.inner.read_until(b'\n', &mut self.raw).with_context(|| format!("{}: read error", self.path))?;
            if got == 0 {
                return Ok(false);
            }
            self.lines += 1;
            self.line = self.lines;
            if std::mem::take(&mut self.at_start) && self.raw.starts_with(BOM) {
                self.raw.drain(..BOM.len());
            }
            if self.raw.first() == Some(&b'#') || self.raw.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            // A quoted field may hold newlines: read on until the record is complete.
            loop {
                let body = self.raw.strip_suffix(b"\n").unwrap_or(&self.raw);
                match split_record(body, &mut self.text, &mut self.ends) {
                    Ok(()) => return Ok(true),
                    Err(Unterminated) => {
                        let before = self.raw.len();
                        let got = self.inner.read_until(b'\n', &mut self.raw).with_context(|| format!("{}: read error", self.path))?;
                        if got == 0 {
                            bail!("{}, line {}: a quoted field (starting with `\"`) is never closed", self.path, self.line);
                        }
                        self.lines += 1;
                        // Only a new quote can close the field: skip the split until one comes.
                        while !self.raw[before..].contains(&b'"') {
                            let b2 = self.raw.len();
                            let got = self.inner.read_until(b'\n', &mut self.raw).with_context(|| format!("{}: read error", self.path))?;
                            if got == 0 {
                                bail!("{}, line {}: a quoted field (starting with `\"`) is never closed", self.path, self.line);
                            }
                            self.lines += 1;
                            if self.raw[b2..].contains(&b'"') {
                                break;
                            }
                        }
                    }
                }
            }
        }
    }

    /// The header: its column names, checked (not empty, named, unique, comma-separated).
    pub fn header(&mut self) -> Result<Vec<String>> {
        if !self.next_record()? {
            bail!("{} is empty: expected a header row naming the columns, e.g. `t,y`", self.path);
        }
        let names: Vec<String> = (0..self.len()).map(|i| String::from_utf8_lossy(self.field(i)).into_owned()).collect();
        check_header(&self.path, &names)?;
        Ok(names)
    }

    /// The next data row; `false` at the end. Its number is [`Records::row`].
    pub fn next_row(&mut self) -> Result<bool> {
        let more = self.next_record()?;
        if more {
            self.rows += 1;
        }
        Ok(more)
    }

    /// Data row number (1-based) of the current row.
    pub fn row(&self) -> usize {
        self.rows
    }

    /// File line (1-based) where the current record starts.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Fields in the current record.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Field `i` of the current record (trimmed, unquoted).
    pub fn field(&self, i: usize) -> &[u8] {
        let a = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[a..self.ends[i]]
    }
}

/// Checks a header's names: at least one, each named, unique (in linear time), and a hint
/// when the file looks semicolon- or tab-separated.
pub fn check_header(path: &str, names: &[String]) -> Result<()> {
    if names.is_empty() || names.iter().all(|h| h.is_empty()) {
        bail!("{path} is empty: expected a header row naming the columns, e.g. `t,y`");
    }
    if names.len() == 1 {
        let h = &names[0];
        let sep = if h.contains(';') { Some(("semicolon", ';')) } else if h.contains('\t') { Some(("tab", '\t')) } else { None };
        if let Some((what, c)) = sep {
            bail!(
                "{path}: the header `{}` is one field holding {what}s: the file looks {what}-separated; sepfit reads comma-separated files (with a decimal point): export or convert it to commas, e.g. `tr '{}' ','` (after changing decimal commas to points)",
                echo_str(h),
                if c == '\t' { "\\t" } else { ";" }
            );
        }
    }
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(names.len());
    for (i, n) in names.iter().enumerate() {
        if n.is_empty() {
            bail!("{path}: column {} of the header row has no name", i + 1);
        }
        if let Some(j) = seen.insert(n.as_str(), i) {
            bail!("{path}: duplicate column `{}` (columns {} and {}); column names must be unique", echo_str(n), j + 1, i + 1);
        }
    }
    Ok(())
}

/// Opens a data file for [`Records`].
pub fn open_records(path: &Path) -> Result<Records<BufReader<std::fs::File>>> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).with_context(|| format!("cannot open data file `{shown}`"))?;
    Ok(Records::new(BufReader::with_capacity(1 << 16, file), &shown))
}

/// The column names of a data file (its header row), e.g. for `model --data`.
pub fn read_header(path: &Path) -> Result<Vec<String>> {
    open_records(path)?.header()
}

/// "data row 2: 1 fields but the header has 2 (line 3); …"
fn unequal(shown: &str, row: usize, line: usize, len: usize, expected: usize) -> anyhow::Error {
    anyhow::anyhow!(
        "{shown}, data row {row}: {len} fields but the header has {expected} (line {line}); every row needs one value per column"
    )
}

pub fn read_csv(path: &Path) -> Result<CsvData> {
    let mut rdr = open_records(path)?;
    let shown = rdr.path.clone();
    let names = rdr.header()?;
    let mut columns = vec![Vec::new(); names.len()];
    let mut bad: Vec<Option<(usize, String)>> = vec![None; names.len()];
    let mut bad_lines = vec![0; names.len()];
    while rdr.next_row()? {
        let row = rdr.row();
        if rdr.len() != names.len() {
            return Err(unequal(&shown, row, rdr.line(), rdr.len(), names.len()));
        }
        for (c, col) in columns.iter_mut().enumerate() {
            let cell = rdr.field(c);
            let v = parse_number(cell);
            if v.is_none() && bad[c].is_none() {
                bad[c] = Some((row, String::from_utf8_lossy(cell).into_owned()));
                bad_lines[c] = rdr.line();
            }
            col.push(v.unwrap_or(f64::NAN));
        }
    }
    if columns.first().is_none_or(|c| c.is_empty()) {
        bail!("{shown} has a header but no data rows");
    }
    Ok(CsvData { path: shown, names, columns, bad, bad_lines })
}

impl CsvData {
    /// Only the columns `keep` (indices, in that order), with their bad-cell records.
    pub fn keep_columns(mut self, keep: &[usize]) -> CsvData {
        CsvData {
            names: keep.iter().map(|&i| std::mem::take(&mut self.names[i])).collect(),
            columns: keep.iter().map(|&i| std::mem::take(&mut self.columns[i])).collect(),
            bad: keep.iter().map(|&i| self.bad[i].take()).collect(),
            bad_lines: keep.iter().map(|&i| self.bad_lines[i]).collect(),
            path: self.path,
        }
    }

    /// Checks that the named columns hold only finite numbers.
    pub fn check_columns(&self, used: &[&str]) -> Result<()> {
        let index: HashMap<&str, usize> = if used.len() > 8 {
            self.names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect()
        } else {
            HashMap::new()
        };
        for name in used {
            let c = if index.is_empty() { self.names.iter().position(|n| n == name) } else { index.get(name).copied() };
            let Some(c) = c else {
                bail!("{}: no column `{name}`; columns are: {}", self.path, column_list(&self.names));
            };
            if let Some((row, text)) = &self.bad[c] {
                bail!(
                    "{}, {}, column `{name}`: {}; every value the model uses must be a finite number — fix or remove that row",
                    self.path,
                    row_at(*row, self.bad_lines[c]),
                    cell_problem(text.as_bytes())
                );
            }
        }
        Ok(())
    }

}

/// The columns a formula can refer to: those whose names occur in its text (a superset of the
/// ones it uses), and `extra` (e.g. the `--sigma` column). Parsing a formula against a header
/// of 100,000 columns costs time quadratic in the columns (the expression pool looks symbols up
/// one by one); against these few it does not, and the formula means the same.
pub fn columns_in_formula(names: &[String], formula: &str, extra: Option<&str>) -> Vec<usize> {
    (0..names.len()).filter(|&i| formula.contains(names[i].as_str()) || extra == Some(names[i].as_str())).collect()
}

/// Column names for a message: all of them, or the first 20 and how many more.
pub fn column_list(names: &[String]) -> String {
    let mut s = names.iter().take(20).map(|n| echo_str(n)).collect::<Vec<_>>().join(", ");
    if names.len() > 20 {
        s += &format!(", … ({} in all)", names.len());
    }
    s
}

/// The text values of one column (e.g. curve names), read separately from the numbers.
pub fn read_labels(path: &Path, column: &str) -> Result<Vec<String>> {
    let mut rdr = open_records(path)?;
    let shown = rdr.path.clone();
    let names = rdr.header()?;
    let idx = names
        .iter()
        .position(|h| h == column)
        .with_context(|| format!("{shown}: no column `{column}`; columns are: {}", column_list(&names)))?;
    let mut out = Vec::new();
    while rdr.next_row()? {
        if rdr.len() != names.len() {
            return Err(unequal(&shown, rdr.row(), rdr.line(), rdr.len(), names.len()));
        }
        out.push(String::from_utf8_lossy(rdr.field(idx)).into_owned());
    }
    Ok(out)
}

/// The powers of ten that are exact doubles.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21,
    1e22,
];

/// Parses a CSV number field (surrounding ASCII whitespace allowed) into a finite `f64`;
/// `None` if it is not a finite number.
///
/// Plain decimals (`-12.75`, `806`, `0.05`: at most 19 digits, 22 of them decimals)
/// take Clinger's fast path: the digits as an integer `m < 2^53` and `10^d` (`d ≤ 22`) are
/// both exact doubles, so `m / 10^d` is one correctly rounded division, the same value as
/// `str::parse`. Anything else (exponents, more digits, `inf`, …) goes to `fast-float2`
/// (Eisel–Lemire, correctly rounded like `str::parse`, without its UTF-8 check); non-finite
/// values are refused.
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
        let v = if decimals == 0 { m as f64 } else { m as f64 / POW10[decimals] };
        return Some(if neg { -v } else { v });
    }
    parse_slow(f)
}

/// [`parse_number`] of the field `bytes[a..b]`, reading a short field (at most eight bytes
/// after its sign, with eight bytes readable from where its digits start) as one 64-bit word:
/// the `.` is found and squeezed out, the digits are checked and shifted to the top of the
/// word, and two-, four- and eight-digit groups are combined by three multiplications
/// (Lemire's method), with no branch per digit. The integer `m < 10^8` and `10^d`, `d ≤ 7`,
/// are exact doubles, so `m / 10^d` is correctly rounded: the same value as `str::parse`.
/// Anything else goes to [`parse_number`].
#[inline(always)]
pub fn parse_number_in(bytes: &[u8], a: usize, b: usize) -> Option<f64> {
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    let neg = bytes.get(a) == Some(&b'-');
    let s = a + usize::from(neg);
    let len = b.wrapping_sub(s);
    if let Some(word) = bytes.get(s..s + 8)
        && (1..=8).contains(&len)
    {
        let x = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        let keep = u64::MAX >> (64 - 8 * len);
        let x = x & keep;
        // The first '.', if any (exact for the lowest zero byte of x ^ '.').
        let v = (x ^ 0x2E2E_2E2E_2E2E_2E2E) & keep;
        let dots = v.wrapping_sub(0x0101_0101_0101_0101) & !v & 0x8080_8080_8080_8080 & keep;
        let (digits, k, decimals) = if dots == 0 {
            (x, len, 0)
        } else {
            let p = (dots.trailing_zeros() / 8) as usize;
            let below = (1u64 << (8 * p)) - 1;
            ((x & below) | ((x >> 8) & !below), len - 1, len - 1 - p)
        };
        if k > 0 {
            // The k digits at the top of the word, '0's below them (leading zeros).
            let w = (digits << (64 - 8 * k)) | ((ZEROS >> 1) >> (8 * k - 1));
            // Every byte a digit: neither below '0' nor above '9'.
            if (w.wrapping_add(0x4646_4646_4646_4646) | w.wrapping_sub(ZEROS)) & 0x8080_8080_8080_8080 == 0 {
                let mut m = w.wrapping_sub(ZEROS);
                m = m.wrapping_mul(10).wrapping_add(m >> 8) & 0x00FF_00FF_00FF_00FF;
                m = m.wrapping_mul(100).wrapping_add(m >> 16) & 0x0000_FFFF_0000_FFFF;
                m = m.wrapping_mul(10000).wrapping_add(m >> 32);
                let m = (m & 0xFFFF_FFFF) as f64;
                let v = if decimals == 0 { m } else { m / POW10[decimals] };
                return Some(if neg { -v } else { v });
            }
        }
    }
    parse_number(&bytes[a..b])
}

/// Everything [`parse_number`]'s fast path does not take.
#[cold]
fn parse_slow(f: &[u8]) -> Option<f64> {
    fast_float2::parse::<f64, _>(f).ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::{parse_number, parse_number_in};

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
            "abc", "1,5", "00012.500", "0.0000000000000000000001", "12345678", "1234567.8", ".1234567", "-12345678",
            "1234567.", "-.", "--1", "1-2", "1..2", "..", "0.05", "731", "99999999", "1e1", "1 2", "12\t", "/", ":", "0x10",
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
        // Short strings of digits and the bytes around them in numbers.
        let alphabet = b"0123456789000.-+ e/:";
        for _ in 0..100_000 {
            let r = next();
            let len = (r % 11) as usize;
            let c: String = (0..len).map(|k| alphabet[((r >> (4 + 5 * k)) % alphabet.len() as u64) as usize] as char).collect();
            cases.push(c);
        }
        for c in &cases {
            let want = c.trim().parse::<f64>().ok().filter(|v| v.is_finite());
            let got = parse_number(c.as_bytes());
            assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits), "`{c}`: {got:?} vs {want:?}");
            // In a buffer: at its end, and followed by more fields (the word read runs on).
            for after in ["", ",", ",12.5,7\n", "\n0,0.05,731\n", "9999999999"] {
                let buf = format!("x,{c}{after}");
                let got = parse_number_in(buf.as_bytes(), 2, 2 + c.len());
                assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits), "`{c}` before `{after}`: {got:?} vs {want:?}");
            }
        }
    }
}
