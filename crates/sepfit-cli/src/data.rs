//! Reading CSV data with errors that name the file, row and column.

use anyhow::{Context, Result, bail};
use sepfit::problem::Dataset;
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
