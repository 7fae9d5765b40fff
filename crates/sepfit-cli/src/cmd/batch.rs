//! `sepfit batch`: the same model fitted to many curves, each on its own, in parallel.
//!
//! Long CSV is streamed: a reader thread splits the file into curves (contiguous rows with the
//! same `--by` value) and hands chunks of raw rows to the workers, which parse their own rows
//! and fit them, so parsing runs on all cores and memory stays bounded by the chunk size.
//! Results are written in input order to `OUT.partial`, flushed after every chunk, and renamed
//! to `OUT` only when the batch is complete; `--resume` continues from the complete rows of an
//! interrupted `OUT.partial`.

use super::fit::named_options;
use crate::data::parse_number;
use super::{CliError, formula_error};
use crate::cli::BatchArgs;
use anyhow::{Context, anyhow, bail};
use rayon::prelude::*;
use sepfit::batch::{BatchFitter, BatchWorker, CurveResult};
use sepfit::problem::{NamedOptions, ProblemError};
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One curve's raw rows, as read.
struct RawCurve {
    id: String,
    /// The id as it appears in the file (trimmed), for comparisons.
    id_bytes: Vec<u8>,
    /// Data row number (1-based) of its first row.
    first_row: usize,
    rows: Vec<u8>,
}

pub fn run(args: &BatchArgs) -> Result<(), CliError> {
    let t0 = Instant::now();
    if args.by.is_none() && !args.wide {
        return Err(anyhow!("say how curves are laid out: --by COLUMN for long format (one row per point), or --wide (one column per curve)").into());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.unwrap_or(0))
        .build()
        .map_err(|e| anyhow!("cannot start worker threads: {e}"))?;
    let threads = pool.current_num_threads();
    let opts = named_options(&args.param_opts, args.max_iter)?;
    let partial = partial_path(&args.out);
    let summary = pool.install(|| {
        if args.wide { run_wide(args, &opts, &partial) } else { run_long(args, &opts, &partial) }
    })?;
    std::fs::rename(&partial, &args.out)
        .with_context(|| format!("cannot move {} to {}", partial.display(), args.out.display()))?;
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "fitted {} curves ({} skipped as already done, {} failed, {} not converged) in {:.2} s: {:.0} fits/s on {} thread{}; results in {}",
        summary.fitted,
        summary.skipped,
        summary.failed,
        summary.not_converged,
        secs,
        summary.fitted as f64 / secs,
        threads,
        if threads == 1 { "" } else { "s" },
        args.out.display()
    );
    Ok(())
}

#[derive(Default)]
struct Summary {
    fitted: usize,
    skipped: usize,
    failed: usize,
    not_converged: usize,
}

fn partial_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".partial");
    PathBuf::from(s)
}

fn fitter(args: &BatchArgs, names: &[String], opts: &NamedOptions) -> Result<BatchFitter, CliError> {
    if !(args.tol > 0.0 && args.tol < 1.0) {
        return Err(anyhow!("--tol {} must be between 0 and 1, e.g. 1e-12", args.tol).into());
    }
    let mut f = BatchFitter::new(&args.model, names, opts).map_err(|e| match e {
        ProblemError::Formula(d) => formula_error(&args.model, d),
        e => CliError::Other(anyhow!(e)),
    })?;
    f.set_tolerance(args.tol);
    Ok(f)
}

fn header(f: &BatchFitter) -> String {
    let mut h = String::from("curve");
    for p in f.param_names() {
        h += &format!(",{p},{p}_se");
    }
    h += ",rss,dof,iterations,converged,termination,error\n";
    h
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

fn row(id: &str, r: &CurveResult, n_params: usize) -> String {
    use std::fmt::Write as _;
    let mut s = csv_field(id);
    for i in 0..n_params {
        let v = r.values.get(i).copied().unwrap_or(f64::NAN);
        let e = r.std_errors.get(i).copied().unwrap_or(f64::NAN);
        let _ = write!(s, ",{v},{e}");
    }
    let _ = write!(
        s,
        ",{},{},{},{},{},{}\n",
        r.rss,
        r.dof,
        r.iterations,
        r.converged,
        r.termination,
        csv_field(r.error.as_deref().unwrap_or(""))
    );
    s
}

/// Opens the output: a fresh `.partial`, or (with --resume) the complete rows of an earlier
/// one. Returns the writer and the ids already done, in order.
fn open_output(args: &BatchArgs, partial: &Path, header: &str) -> anyhow::Result<(BufWriter<File>, Vec<String>)> {
    if args.out.exists() && !args.resume {
        // A finished earlier run is simply replaced.
    }
    if partial.exists() && !args.resume {
        bail!(
            "{} exists: an earlier batch was interrupted; continue it with --resume, or delete that file to start over",
            partial.display()
        );
    }
    if args.resume && partial.exists() {
        let mut text = String::new();
        File::open(partial)?.read_to_string(&mut text)?;
        // Keep complete lines only (a kill can leave the last one cut short).
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        let body = &text[..complete];
        let mut lines = body.lines();
        let first = lines.next().unwrap_or("");
        if format!("{first}\n") != header {
            bail!(
                "{} was written for a different model or parameters; delete it to start over",
                partial.display()
            );
        }
        let done: Vec<String> = lines.map(|l| parse_id(l)).collect();
        let mut f = OpenOptions::new().write(true).open(partial)?;
        f.set_len(complete as u64)?;
        f.seek(std::io::SeekFrom::End(0))?;
        return Ok((BufWriter::new(f), done));
    }
    let mut w = BufWriter::new(File::create(partial).with_context(|| format!("cannot create {}", partial.display()))?);
    w.write_all(header.as_bytes())?;
    Ok((w, Vec::new()))
}

fn parse_id(line: &str) -> String {
    if let Some(rest) = line.strip_prefix('"') {
        let mut id = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    id.push('"');
                    chars.next();
                } else {
                    break;
                }
            } else {
                id.push(c);
            }
        }
        id
    } else {
        line.split(',').next().unwrap_or("").to_string()
    }
}

fn progress(total: Option<u64>) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = match total {
        Some(t) => indicatif::ProgressBar::new(t),
        None => indicatif::ProgressBar::new_spinner(),
    };
    let style = match total {
        Some(_) => indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} curves  {per_sec}  eta {eta}"),
        None => indicatif::ProgressStyle::with_template("{spinner} {pos} curves  {per_sec}  {elapsed}"),
    };
    if let Ok(style) = style {
        pb.set_style(style);
    }
    Some(pb)
}

fn run_long(args: &BatchArgs, opts: &NamedOptions, partial: &Path) -> Result<Summary, CliError> {
    let by = args.by.as_deref().unwrap_or_default();
    let path = args.data.display().to_string();
    let file = File::open(&args.data).with_context(|| format!("cannot open data file `{path}`"))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    if reader.read_until(b'\n', &mut line).context("cannot read the header row")? == 0 {
        return Err(anyhow!("{path} is empty: expected a header row").into());
    }
    let header_line = String::from_utf8_lossy(&line).trim_end().to_string();
    let names: Vec<String> = header_line.split(',').map(|s| s.trim().trim_matches('"').to_string()).collect();
    let by_idx = names
        .iter()
        .position(|n| n == by)
        .ok_or_else(|| anyhow!("{path}: no column `{by}` to group curves by; columns are: {}", names.join(", ")))?;
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(anyhow!("{path}: duplicate column `{n}`; column names must be unique").into());
        }
    }
    // The fitter sees the numeric columns (all but the curve column).
    let num_names: Vec<String> = names.iter().enumerate().filter(|(i, _)| *i != by_idx).map(|(_, n)| n.clone()).collect();
    let f = fitter(args, &num_names, opts)?;
    let used: Vec<usize> = {
        let m = &f.resolved().formula;
        let mut u = m.used_columns();
        if let Some(s) = &args.param_opts.sigma {
            if let Some(i) = num_names.iter().position(|n| n == s) {
                u.push(i);
            }
        }
        u
    };
    // Map numeric column index → field index in the file.
    let field_of: Vec<usize> = (0..names.len()).filter(|&i| i != by_idx).collect();
    let head = header(&f);
    let (mut out, done) = open_output(args, partial, &head)?;
    let n_params = f.param_names().len();
    let pb = progress(None);
    let mut summary = Summary { skipped: done.len(), ..Default::default() };
    let chunk = args.chunk.max(1);
    let result: Result<(), CliError> = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<RawCurve>, String>>(2);
        let path2 = path.clone();
        scope.spawn(move || {
            let mut seen: HashSet<String> = HashSet::new();
            let mut batch: Vec<RawCurve> = Vec::with_capacity(chunk);
            let mut skip = done.len();
            let mut done_iter = done.into_iter();
            let emit = |c: RawCurve| -> Result<bool, String> {
                if !seen.insert(c.id.clone()) {
                    return Err(format!(
                        "{path2}: rows of curve `{}` appear in two separate blocks (again at data row {}); sort the file by `{by}`",
                        c.id, c.first_row
                    ));
                }
                if skip > 0 {
                    skip -= 1;
                    let expect = done_iter.next().unwrap_or_default();
                    if expect != c.id {
                        return Err(format!(
                            "cannot resume: the output has curve `{expect}` where the data has `{}`; delete the .partial file to start over",
                            c.id
                        ));
                    }
                    return Ok(true);
                }
                batch.push(c);
                if batch.len() >= chunk && tx.send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(chunk)))).is_err() {
                    return Ok(false);
                }
                Ok(true)
            };
            match split_curves(reader, by_idx, &path2, emit) {
                Ok(true) => {
                    if !batch.is_empty() {
                        let _ = tx.send(Ok(batch));
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
        for msg in rx {
            let batch = msg.map_err(|e| CliError::Other(anyhow!(e)))?;
            // Each worker parses, fits and formats its curves' output rows.
            let results: Vec<(bool, bool, String)> = batch
                .par_iter()
                .map_init(BatchWorker::default, |worker, c| {
                    let r = match parse_rows(c, &field_of, &used, &num_names) {
                        Ok(cols) => {
                            let refs: Vec<&[f64]> = cols.iter().map(|v| v.as_slice()).collect();
                            f.fit_curve(worker, &refs)
                        }
                        Err(e) => CurveResult { termination: "error".into(), error: Some(e), rss: f64::NAN, ..Default::default() },
                    };
                    (r.error.is_some(), r.converged, row(&c.id, &r, n_params))
                })
                .collect();
            let mut text = String::with_capacity(results.iter().map(|r| r.2.len()).sum());
            for (failed, converged, line) in &results {
                summary.fitted += 1;
                if *failed {
                    summary.failed += 1;
                } else if !converged {
                    summary.not_converged += 1;
                }
                text += line;
            }
            out.write_all(text.as_bytes()).and_then(|()| out.flush()).context("cannot write results")?;
            if let Some(pb) = &pb {
                pb.inc(batch.len() as u64);
            }
        }
        Ok(())
    });
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    result?;
    out.flush().context("cannot write results")?;
    Ok(summary)
}

/// Parses the used numeric columns of one curve's rows; unused columns stay empty. One pass
/// over the bytes splits fields and lines; numbers go through [`parse_number`].
fn parse_rows(c: &RawCurve, field_of: &[usize], used: &[usize], names: &[String]) -> Result<Vec<Vec<f64>>, String> {
    let rows = &c.rows[..];
    let n_lines = memchr::memchr_iter(b'\n', rows).count() + 1;
    let mut cols: Vec<Vec<f64>> = vec![Vec::new(); field_of.len()];
    for &u in used {
        cols[u].reserve(n_lines);
    }
    let mut want = vec![usize::MAX; field_of.iter().max().map_or(0, |m| m + 1)];
    for &u in used {
        want[field_of[u]] = u;
    }
    let n = rows.len();
    let mut i = 0;
    let mut k = 0;
    while i < n {
        if rows[i] == b'\n' {
            i += 1;
            continue;
        }
        let mut fi = 0;
        let mut fstart = i;
        loop {
            let mut j = fstart;
            while j < n && rows[j] != b',' && rows[j] != b'\n' {
                j += 1;
            }
            if let Some(&u) = want.get(fi) {
                if u != usize::MAX {
                    match parse_number(&rows[fstart..j]) {
                        Some(v) => cols[u].push(v),
                        None => {
                            let text = String::from_utf8_lossy(&rows[fstart..j]);
                            return Err(format!(
                                "data row {}, column `{}`: `{}` is not a finite number",
                                c.first_row + k,
                                names[u],
                                text.trim()
                            ));
                        }
                    }
                }
            }
            fi += 1;
            if j >= n || rows[j] == b'\n' {
                i = j + 1;
                break;
            }
            fstart = j + 1;
        }
        if fi < want.len() {
            return Err(format!("data row {}: {fi} fields, fewer than the header's", c.first_row + k));
        }
        k += 1;
    }
    Ok(cols)
}

/// Block size of [`split_curves`].
const BLOCK: usize = 1 << 20;

/// Splits a long CSV (after its header) into curves, contiguous rows with the same value in
/// field `by_idx`, and hands each complete curve to `emit` (which returns `false` to stop).
/// The file is read in blocks; lines are found with `memchr`, and a curve's rows are copied
/// once per block, not line by line. Blank lines are skipped. Returns `Ok(false)` if `emit`
/// asked to stop.
fn split_curves<R: Read>(
    mut input: R,
    by_idx: usize,
    path: &str,
    mut emit: impl FnMut(RawCurve) -> Result<bool, String>,
) -> Result<bool, String> {
    // `buf[..filled]` holds unread bytes; the buffer is zeroed only when it grows.
    let mut buf: Vec<u8> = vec![0; 2 * BLOCK];
    let mut filled = 0;
    let mut cur: Option<RawCurve> = None;
    // The raw (untrimmed) id field of the current curve: equal raw bytes mean the same curve
    // without trimming each row's field.
    let mut cur_raw: Vec<u8> = Vec::new();
    // Row bytes of the previous curve, to size the next one's buffer.
    let mut last_len = 0;
    let mut row = 0usize;
    let mut eof = false;
    while !eof {
        if buf.len() < filled + BLOCK {
            buf.resize(filled + BLOCK, 0);
        }
        let mut got = 0;
        while got < BLOCK {
            match input.read(&mut buf[filled + got..filled + BLOCK]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(k) => got += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("{path}: read error: {e}")),
            }
        }
        filled += got;
        let data = &buf[..filled];
        let mut pos = 0;
        // Start of the current curve's rows in `data` not yet copied to it.
        let mut seg = 0;
        let mut newlines = memchr::memchr_iter(b'\n', data);
        loop {
            let end = match newlines.next() {
                Some(i) => i + 1,
                None if eof && pos < filled => filled,
                None => break,
            };
            let line = &data[pos..end];
            row += 1;
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                if let Some(c) = cur.as_mut() {
                    c.rows.extend_from_slice(&data[seg..pos]);
                }
                seg = end;
                pos = end;
                continue;
            }
            let raw = raw_field(line, by_idx);
            let same = cur.is_some() && same_bytes(&cur_raw, raw);
            if !same {
                let id = trim_id(raw);
                if cur.as_ref().is_none_or(|c| !same_bytes(&c.id_bytes, id)) {
                    let id_bytes = id.to_vec();
                    if let Some(mut c) = cur.take() {
                        c.rows.extend_from_slice(&data[seg..pos]);
                        last_len = c.rows.len();
                        if !emit(c)? {
                            return Ok(false);
                        }
                    }
                    cur = Some(RawCurve {
                        id: String::from_utf8_lossy(&id_bytes).into_owned(),
                        id_bytes,
                        first_row: row,
                        rows: Vec::with_capacity(last_len + last_len / 8),
                    });
                    seg = pos;
                }
                cur_raw.clear();
                cur_raw.extend_from_slice(raw);
            }
            pos = end;
        }
        if let Some(c) = cur.as_mut() {
            c.rows.extend_from_slice(&data[seg..pos]);
        }
        buf.copy_within(pos..filled, 0);
        filled -= pos;
    }
    match cur {
        Some(c) => emit(c),
        None => Ok(true),
    }
}

/// Byte-wise equality without a `memcmp` call (ids are short and compared on every row).
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Field `idx` of a CSV line as it stands (up to the next comma or the end of the line).
fn raw_field(line: &[u8], idx: usize) -> &[u8] {
    let mut start = 0;
    for _ in 0..idx {
        match line[start..].iter().position(|&b| b == b',') {
            Some(i) => start += i + 1,
            None => return b"",
        }
    }
    let end = line[start..].iter().position(|&b| b == b',').map_or(line.len(), |i| start + i);
    &line[start..end]
}

/// A curve id without surrounding whitespace and quotes.
fn trim_id(field: &[u8]) -> &[u8] {
    let f = field.trim_ascii();
    let f = f.strip_prefix(b"\"").unwrap_or(f);
    f.strip_suffix(b"\"").unwrap_or(f)
}

fn run_wide(args: &BatchArgs, opts: &NamedOptions, partial: &Path) -> Result<Summary, CliError> {
    let path = args.data.display().to_string();
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(&args.data)
        .with_context(|| format!("cannot open data file `{path}`"))?;
    let names: Vec<String> = rdr.headers().with_context(|| format!("{path}: cannot read the header"))?.iter().map(String::from).collect();
    if names.len() < 2 {
        return Err(anyhow!("{path}: wide format needs an x column and at least one curve column").into());
    }
    let mut x = Vec::new();
    let mut ys: Vec<Vec<f64>> = vec![Vec::new(); names.len() - 1];
    for (r, rec) in rdr.records().enumerate() {
        let rec = rec.with_context(|| format!("{path}, data row {}", r + 1))?;
        let xv: f64 = rec.get(0).unwrap_or("").parse().ok().filter(|v: &f64| v.is_finite()).ok_or_else(|| {
            anyhow!("{path}, data row {}, column `{}`: `{}` is not a finite number", r + 1, names[0], rec.get(0).unwrap_or(""))
        })?;
        x.push(xv);
        for (j, y) in ys.iter_mut().enumerate() {
            // A bad cell only fails its own curve.
            y.push(rec.get(j + 1).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN));
        }
    }
    let fit_names = vec![names[0].clone(), "y".to_string()];
    let f = fitter(args, &fit_names, opts)?;
    let head = header(&f);
    let (mut out, done) = open_output(args, partial, &head)?;
    for (k, id) in done.iter().enumerate() {
        if names.get(k + 1) != Some(id) {
            return Err(anyhow!("cannot resume: the output has curve `{id}` where the data has `{}`", names.get(k + 1).map_or("", |s| s)).into());
        }
    }
    let start = done.len();
    let curves: Vec<Vec<Vec<f64>>> = ys[start..].iter().map(|y| vec![x.clone(), y.clone()]).collect();
    let pb = progress(Some(curves.len() as u64));
    let n_params = f.param_names().len();
    let mut summary = Summary { skipped: start, ..Default::default() };
    for (ci, chunk) in curves.chunks(args.chunk.max(1)).enumerate() {
        let results = f.fit_all(chunk);
        let mut text = String::new();
        for (k, r) in results.iter().enumerate() {
            summary.fitted += 1;
            if r.error.is_some() {
                summary.failed += 1;
            } else if !r.converged {
                summary.not_converged += 1;
            }
            text += &row(&names[1 + start + ci * args.chunk.max(1) + k], r, n_params);
        }
        out.write_all(text.as_bytes()).and_then(|()| out.flush()).context("cannot write results")?;
        if let Some(pb) = &pb {
            pb.inc(chunk.len() as u64);
        }
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    Ok(summary)
}
