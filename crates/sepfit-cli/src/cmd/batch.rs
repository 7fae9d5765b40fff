//! `sepfit batch`: the same model fitted to many curves, each on its own, in parallel.
//!
//! Long CSV is streamed: a reader thread cuts the file into blocks of whole lines; the workers
//! parse blocks in parallel into pieces of consecutive rows with the same `--by` value, the
//! pieces are joined across block boundaries into curves in file order, and the workers fit
//! them. Parsing runs on all cores and memory stays bounded by a few blocks.
//! Results are written in input order to `OUT.partial`, flushed after every chunk, and renamed
//! to `OUT` only when the batch is complete; `--resume` continues from the complete rows of an
//! interrupted `OUT.partial`.

use crate::args::named_options;
use crate::data::parse_number;
use super::{CliError, formula_error};
use crate::cli::BatchArgs;
use anyhow::{Context, anyhow, bail};
use rayon::prelude::*;
use sepfit::batch::{BatchFitter, BatchWorker, CurveResult};
use sepfit::named::{NamedOptions, ProblemError};
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

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
        ProblemError::Formula { text, diagnostic } => formula_error(&text, diagnostic),
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
    let shape = Shape { by_idx, field_of: &field_of, used: &used, names: &num_names };
    let result: Result<(), CliError> = std::thread::scope(|scope| {
        // The reader only cuts the file into blocks of whole lines; workers parse them.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<u8>, String>>(BLOCKS_PER_ROUND);
        let path2 = path.clone();
        scope.spawn(move || {
            if let Err(e) = read_blocks(reader, &tx) {
                let _ = tx.send(Err(format!("{path2}: read error: {e}")));
            }
        });
        let mut st = Stitch { pending: None, row_base: 0, seen: HashSet::new(), skip: done.len(), done: done.into_iter() };
        // Up to BLOCKS_PER_ROUND blocks; `true` once the reader is done.
        let recv_round = || -> Result<(Vec<Vec<u8>>, bool), CliError> {
            let mut blocks = Vec::with_capacity(BLOCKS_PER_ROUND);
            while blocks.len() < BLOCKS_PER_ROUND {
                match rx.recv() {
                    Ok(Ok(b)) => blocks.push(b),
                    Ok(Err(e)) => return Err(CliError::Other(anyhow!(e))),
                    Err(_) => return Ok((blocks, true)),
                }
            }
            Ok((blocks, false))
        };
        let parse_all = |blocks: &[Vec<u8>]| -> Vec<ParsedBlock> { blocks.par_iter().map(|b| parse_block(b, &shape)).collect() };
        let (blocks, mut eof) = recv_round()?;
        let mut parsed = parse_all(&blocks);
        drop(blocks);
        loop {
            let mut curves = Vec::new();
            for pb in parsed {
                st.add(pb, &shape, &path, by, &mut curves).map_err(|e| CliError::Other(anyhow!(e)))?;
            }
            if eof {
                if let Some(c) = st.pending.take() {
                    st.finish(c, &path, by, &mut curves).map_err(|e| CliError::Other(anyhow!(e)))?;
                }
            }
            let (next_blocks, next_eof) = if eof { (Vec::new(), true) } else { recv_round()? };
            // Fit and write these curves while the next round's blocks are parsed.
            let (written, next_parsed) = rayon::join(
                || -> Result<(), CliError> {
                    for group in curves.chunks(chunk) {
                        // Each worker fits its curves and formats their output rows.
                        let results: Vec<(bool, bool, String)> = group
                            .par_iter()
                            .map_init(BatchWorker::default, |worker, c| {
                                let r = match &c.error {
                                    None => {
                                        let refs: Vec<&[f64]> = c.cols.iter().map(|v| v.as_slice()).collect();
                                        f.fit_curve(worker, &refs)
                                    }
                                    Some(e) => CurveResult {
                                        termination: "error".into(),
                                        error: Some(e.clone()),
                                        rss: f64::NAN,
                                        ..Default::default()
                                    },
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
                            pb.inc(group.len() as u64);
                        }
                    }
                    Ok(())
                },
                || parse_all(&next_blocks),
            );
            written?;
            if eof {
                break;
            }
            parsed = next_parsed;
            eof = next_eof;
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

/// Blocks of the file parsed per round (each about [`BLOCK`] bytes).
const BLOCKS_PER_ROUND: usize = 8;

/// Size of the blocks the reader cuts the file into (at line ends).
const BLOCK: usize = 1 << 20;

/// Reads `input` (after its header) in blocks of whole lines of about [`BLOCK`] bytes and
/// sends them in order; stops quietly if the receiver has gone.
fn read_blocks<R: Read>(mut input: R, tx: &std::sync::mpsc::SyncSender<Result<Vec<u8>, String>>) -> std::io::Result<()> {
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let mut buf = Vec::with_capacity(BLOCK + carry.len() + 4096);
        buf.append(&mut carry);
        let start = buf.len();
        buf.resize(start + BLOCK, 0);
        let mut got = 0;
        let mut eof = false;
        while got < BLOCK {
            match input.read(&mut buf[start + got..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(k) => got += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(start + got);
        if !eof {
            // Keep the partial last line for the next block.
            match memchr::memrchr(b'\n', &buf) {
                Some(i) => carry.extend_from_slice(&buf[i + 1..]),
                None => {
                    // A line longer than the block: read on.
                    carry = buf;
                    continue;
                }
            }
            let keep = buf.len() - carry.len();
            buf.truncate(keep);
        }
        if !buf.is_empty() && tx.send(Ok(buf)).is_err() {
            return Ok(());
        }
        if eof {
            return Ok(());
        }
    }
}

/// Where things are in a row of the long CSV.
struct Shape<'a> {
    /// Field of the curve id.
    by_idx: usize,
    /// Field of each numeric column.
    field_of: &'a [usize],
    /// Numeric columns the fit uses.
    used: &'a [usize],
    /// Names of the numeric columns.
    names: &'a [String],
}

/// A problem with one row, reported with its data row number once that is known.
enum RowError {
    Number { col: usize, text: String },
    FewFields(usize),
}

/// The rows of one curve within one block (a curve may go on in the next block).
struct Piece {
    /// The id (trimmed) and the id field as it stands in the file.
    id: Vec<u8>,
    raw_id: Vec<u8>,
    /// Line of the block (0-based, blank lines counted) where the piece starts.
    first_line: usize,
    /// Used numeric columns (others empty).
    cols: Vec<Vec<f64>>,
    /// The first bad row: its line in the block and the problem.
    error: Option<(usize, RowError)>,
}

struct ParsedBlock {
    pieces: Vec<Piece>,
    /// Lines in the block (blank ones included), for data row numbers.
    lines: usize,
}

/// Parses a block of whole lines into pieces of consecutive rows with the same id: one pass
/// over each line splits the fields, numbers go through [`parse_number`].
fn parse_block(bytes: &[u8], shape: &Shape<'_>) -> ParsedBlock {
    let mut want = vec![usize::MAX; shape.field_of.iter().max().map_or(0, |m| m + 1)];
    for &u in shape.used {
        want[shape.field_of[u]] = u;
    }
    let ncols = shape.field_of.len();
    // This line's numbers, by numeric column, until its curve is known.
    let mut slot = vec![0.0; ncols];
    let mut pieces: Vec<Piece> = Vec::new();
    let mut line_no = 0;
    let n = bytes.len();
    let mut i = 0;
    while i < n {
        let this = line_no;
        line_no += 1;
        let line_start = i;
        let mut id_raw: &[u8] = b"";
        let mut problem: Option<RowError> = None;
        let mut fi = 0;
        let mut fstart = i;
        // One pass over the line: fields end at ',' or at the end of the line.
        let line_end = loop {
            let j = field_end(bytes, fstart);
            if fi == shape.by_idx {
                id_raw = &bytes[fstart..j];
            }
            if let Some(&u) = want.get(fi) {
                if u != usize::MAX {
                    match parse_number(&bytes[fstart..j]) {
                        Some(v) => slot[u] = v,
                        None => {
                            if problem.is_none() {
                                let text = String::from_utf8_lossy(&bytes[fstart..j]).trim().to_string();
                                problem = Some(RowError::Number { col: u, text });
                            }
                        }
                    }
                }
            }
            fi += 1;
            if j >= n || bytes[j] == b'\n' {
                break j;
            }
            fstart = j + 1;
        };
        i = line_end + 1;
        if fi == 1 && bytes[line_start..line_end].iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let same = pieces.last().is_some_and(|p| same_bytes(&p.raw_id, id_raw) || same_bytes(&p.id, trim_id(id_raw)));
        if !same {
            let size = pieces.last().map_or(256, |p| p.cols.iter().map(Vec::len).max().unwrap_or(0) + 8);
            let mut cols = vec![Vec::new(); ncols];
            for &u in shape.used {
                cols[u].reserve(size);
            }
            pieces.push(Piece { id: trim_id(id_raw).to_vec(), raw_id: id_raw.to_vec(), first_line: this, cols, error: None });
        }
        let piece = pieces.last_mut().expect("a piece was just pushed");
        if problem.is_none() && fi < want.len() {
            problem = Some(RowError::FewFields(fi));
        }
        match problem {
            None => {
                for &u in shape.used {
                    piece.cols[u].push(slot[u]);
                }
            }
            Some(e) => {
                if piece.error.is_none() {
                    piece.error = Some((this, e));
                }
            }
        }
    }
    ParsedBlock { pieces, lines: line_no }
}

/// The index of the first `,` or `\n` at or after `i` (or `bytes.len()`). Eight bytes at a
/// time while they are there (fields are short): a byte `b` of the word `x` is a delimiter
/// when `x ^ 0x2c…` or `x ^ 0x0a…` has a zero byte there (the usual "has zero byte" test,
/// `(v − 0x01…) & !v & 0x80…`, whose lowest set bit marks the first zero byte exactly).
#[inline]
fn field_end(bytes: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let hit = zero_byte(x ^ (ONES * b',' as u64)) | zero_byte(x ^ (ONES * b'\n' as u64));
        if hit != 0 {
            return i + (hit.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < bytes.len() && bytes[i] != b',' && bytes[i] != b'\n' {
        i += 1;
    }
    i
}

/// A complete curve, ready to fit.
struct Curve {
    id: String,
    id_bytes: Vec<u8>,
    /// Data row number (1-based) of its first row.
    first_row: usize,
    cols: Vec<Vec<f64>>,
    /// Why it cannot be fitted, if it cannot.
    error: Option<String>,
}

/// Joins the pieces of consecutive blocks into curves, in file order: checks that a curve's
/// rows are contiguous and, on resume, skips the curves already in the output.
struct Stitch {
    /// The last curve seen: it may go on in the next block.
    pending: Option<Curve>,
    /// Data rows before the next block.
    row_base: usize,
    seen: HashSet<String>,
    /// Curves still to skip (resume) and their expected ids.
    skip: usize,
    done: std::vec::IntoIter<String>,
}

impl Stitch {
    fn add(&mut self, pb: ParsedBlock, shape: &Shape<'_>, path: &str, by: &str, out: &mut Vec<Curve>) -> Result<(), String> {
        let base = self.row_base;
        let message = |line: usize, e: &RowError| match e {
            RowError::Number { col, text } => {
                format!("data row {}, column `{}`: `{text}` is not a finite number", base + line + 1, shape.names[*col])
            }
            RowError::FewFields(k) => format!("data row {}: {k} fields, fewer than the header's", base + line + 1),
        };
        for piece in pb.pieces {
            if let Some(c) = self.pending.as_mut().filter(|c| c.id_bytes == piece.id) {
                for (dst, src) in c.cols.iter_mut().zip(piece.cols) {
                    dst.extend_from_slice(&src);
                }
                if c.error.is_none() {
                    c.error = piece.error.as_ref().map(|(l, e)| message(*l, e));
                }
                continue;
            }
            if let Some(c) = self.pending.take() {
                self.finish(c, path, by, out)?;
            }
            self.pending = Some(Curve {
                id: String::from_utf8_lossy(&piece.id).into_owned(),
                first_row: base + piece.first_line + 1,
                error: piece.error.as_ref().map(|(l, e)| message(*l, e)),
                id_bytes: piece.id,
                cols: piece.cols,
            });
        }
        self.row_base += pb.lines;
        Ok(())
    }

    /// A curve is complete: check it, then queue it (or skip it on resume).
    fn finish(&mut self, c: Curve, path: &str, by: &str, out: &mut Vec<Curve>) -> Result<(), String> {
        if !self.seen.insert(c.id.clone()) {
            return Err(format!(
                "{path}: rows of curve `{}` appear in two separate blocks (again at data row {}); sort the file by `{by}`",
                c.id, c.first_row
            ));
        }
        if self.skip > 0 {
            self.skip -= 1;
            let expect = self.done.next().unwrap_or_default();
            if expect != c.id {
                return Err(format!(
                    "cannot resume: the output has curve `{expect}` where the data has `{}`; delete the .partial file to start over",
                    c.id
                ));
            }
            return Ok(());
        }
        out.push(c);
        Ok(())
    }
}

/// Byte-wise equality without a `memcmp` call (ids are short and compared on every row).
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
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

#[cfg(test)]
mod tests {
    use super::field_end;

    /// The word-at-a-time search finds the same delimiter as a byte loop, wherever it is.
    #[test]
    fn field_end_matches_a_byte_loop() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let alphabet = b"0123456789.-e ,\n\"a\x80\xff\x2b\x0b";
        for len in 0..60 {
            for _ in 0..200 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        alphabet[(seed % alphabet.len() as u64) as usize]
                    })
                    .collect();
                for start in 0..=len {
                    let naive = (start..len).find(|&i| bytes[i] == b',' || bytes[i] == b'\n').unwrap_or(len);
                    assert_eq!(field_end(&bytes, start), naive, "{bytes:?} from {start}");
                }
            }
        }
    }
}
