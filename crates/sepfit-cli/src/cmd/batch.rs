//! `sepfit batch`: the same model fitted to many curves, each on its own, in parallel.
//!
//! Long CSV is streamed: a reader thread cuts the file into blocks of whole records; the
//! workers parse blocks in parallel into pieces of consecutive rows with the same `--by`
//! value, the pieces are joined across block boundaries into curves in file order, and the
//! workers fit them. Parsing runs on all cores and memory stays bounded by a few blocks. The
//! block parser follows the rules of every other reader (`data.rs`: quoting, BOM, `#`
//! comments, blank lines); a block without any `"` takes a fast path that splits at commas.
//!
//! Results are written in input order to `OUT.partial`, flushed after every chunk, and renamed
//! to `OUT` only when the batch is complete; `--resume` continues from the complete rows of an
//! interrupted `OUT.partial`. Beside it, `OUT.partial.meta` records what the rows were computed
//! from (formula, every option that changes results, the input file's path, size and
//! modification time), and a resume with anything different is refused. `OUT.partial.lock`
//! (holding the process id) keeps two runs from writing the same output; a lock whose process
//! is gone is stale and taken over.

use super::{CliError, formula_error};
use crate::args::named_options;
use crate::cli::BatchArgs;
use crate::arrays::CurveArray;
use crate::npy::Dtype;
use crate::data::{Records, cell_problem, column_list, echo, echo_str, parse_number, parse_number_in, record_end, row_at, split_record};
use crate::scan::Delimiters;
use anyhow::{Context, anyhow, bail};
use rayon::prelude::*;
use sepfit::batch::{BatchFitter, BatchWorker, CurveError, CurveResult};
use sepfit::named::{NamedOptions, ProblemError};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, IsTerminal, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The kinds of array input (every lane along the last axis a curve).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ArrayKind {
    Npy,
    Npz,
    Raw,
}

fn is_npy_path(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

/// Whether the data file is an array of curves, and which kind: `--dtype` makes it raw,
/// otherwise the extension says.
fn array_input(args: &BatchArgs) -> Option<ArrayKind> {
    if args.dtype.is_some() {
        return Some(ArrayKind::Raw);
    }
    match args.data.extension().map(|e| e.to_ascii_lowercase()) {
        Some(e) if e == "npy" => Some(ArrayKind::Npy),
        Some(e) if e == "npz" => Some(ArrayKind::Npz),
        _ => None,
    }
}

/// Most worker threads: more than a few per core only costs memory and start-up time.
fn max_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (4 * cores).min(256)
}

pub fn run(args: &BatchArgs) -> Result<(), CliError> {
    let t0 = Instant::now();
    let npy = array_input(args).is_some();
    if npy && (args.by.is_some() || args.wide) {
        return Err(anyhow!("an array file holds the curves along its last axis: drop --by/--wide and give --x").into());
    }
    if !npy && args.x.is_some() {
        return Err(anyhow!("--x is for arrays of curves (.npy, .npz, raw --dtype); a CSV names its x column in the header").into());
    }
    if args.array.is_some() && array_input(args) != Some(ArrayKind::Npz) {
        return Err(anyhow!("--array names an array of a .npz archive; {} is not one", args.data.display()).into());
    }
    if is_npy_path(&args.out) && !npy {
        return Err(anyhow!(
            "--out {}: .npy results are for array inputs (.npy, .npz, raw --dtype), whose curves are numbered; write CSV (the curve ids of a CSV are text)",
            args.out.display()
        )
        .into());
    }
    if args.by.is_none() && !args.wide && !npy {
        return Err(anyhow!("say how curves are laid out: --by COLUMN for long format (one row per point), or --wide (one column per curve)").into());
    }
    let mut want_threads = args.threads.unwrap_or(0);
    if want_threads > max_threads() {
        eprintln!(
            "note: --threads {want_threads} is more than this machine can use; using {} (4 per core, at most 256)",
            max_threads()
        );
        want_threads = max_threads();
    }
    let (loss, f_scale) = crate::args::loss_options(&args.loss)?;
    let opts = NamedOptions { loss, f_scale, ..named_options(&args.param_opts, args.max_iter)? };
    // Before anything is read or fitted: can the output be written at all?
    let mut out = Output::prepare(args)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(want_threads)
        .build()
        .map_err(|e| anyhow!("cannot start worker threads: {e}"))?;
    let threads = pool.current_num_threads();
    let summary = pool.install(|| {
        if npy {
            run_array(args, &opts, &mut out)
        } else if args.wide {
            run_wide(args, &opts, &mut out)
        } else {
            run_long(args, &opts, &mut out)
        }
    })?;
    out.finish()?;
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
    let failed = summary.failed + summary.done_failed;
    let not_converged = summary.not_converged + summary.done_not_converged;
    if failed + not_converged > 0 {
        let total = summary.fitted + summary.skipped;
        let mut parts = Vec::new();
        if failed > 0 {
            parts.push(format!("{failed} of {total} curves failed"));
        }
        if not_converged > 0 {
            parts.push(if failed > 0 { format!("{not_converged} did not converge") } else { format!("{not_converged} of {total} curves did not converge") });
        }
        let see = if is_npy_path(&args.out) {
            format!("their status field in {} says which (write CSV for the reasons in words)", args.out.display())
        } else {
            format!("see the error and termination columns of {}", args.out.display())
        };
        return Err(CliError::Unsuccessful(format!("{}; {see}", parts.join(", "))));
    }
    Ok(())
}

#[derive(Default)]
struct Summary {
    fitted: usize,
    skipped: usize,
    failed: usize,
    not_converged: usize,
    /// Of the rows already done (resume).
    done_failed: usize,
    done_not_converged: usize,
}

fn with_suffix(out: &Path, suffix: &str) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The output files of a run: `OUT`, `OUT.partial`, its `.meta` fingerprint and `.lock`.
/// Dropped before [`Output::finish`] (the batch failed), it removes a `.partial` this run
/// created, unless writing it failed (then it stays, to be resumed); it always removes its lock.
struct Output {
    out: PathBuf,
    partial: PathBuf,
    meta: PathBuf,
    lock: PathBuf,
    resume: bool,
    writer: Option<BufWriter<File>>,
    locked: bool,
    created: bool,
    keep: bool,
    finished: bool,
}

impl Output {
    /// Checks that `--out` can be written and takes the lock, before any data is read.
    fn prepare(args: &BatchArgs) -> anyhow::Result<Output> {
        let out = args.out.clone();
        let shown = out.display();
        if out.as_os_str().is_empty() {
            bail!("--out is empty: name the output file, e.g. --out results.csv");
        }
        if out.is_dir() {
            bail!("--out {shown} is a directory: name a file, e.g. --out {}", out.join("results.csv").display());
        }
        let dir = match out.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            bail!("cannot write --out {shown}: the directory {} does not exist", dir.display());
        }
        if let (Ok(a), Ok(b)) = (out.canonicalize(), args.data.canonicalize())
            && a == b
        {
            bail!("--out {shown} is the data file itself: name another file");
        }
        let partial = with_suffix(&out, ".partial");
        for p in [&partial] {
            if p.is_dir() {
                bail!("{} is a directory: remove it or choose another --out", p.display());
            }
        }
        let mut o = Output {
            meta: with_suffix(&out, ".partial.meta"),
            lock: with_suffix(&out, ".partial.lock"),
            out,
            partial,
            resume: args.resume,
            writer: None,
            locked: false,
            created: false,
            keep: false,
            finished: false,
        };
        o.take_lock()?;
        Ok(o)
    }

    fn take_lock(&mut self) -> anyhow::Result<()> {
        for attempt in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&self.lock) {
                Ok(mut f) => {
                    self.locked = true;
                    writeln!(f, "{}", std::process::id()).with_context(|| format!("cannot write {}", self.lock.display()))?;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&self.lock).unwrap_or_default();
                    let pid: Option<u32> = text.trim().parse().ok();
                    match pid.map(|p| (p, process_alive(p))) {
                        Some((p, Some(false))) if attempt == 0 => {
                            eprintln!("note: removing the stale lock {} of process {p}, which is no longer running", self.lock.display());
                            let _ = std::fs::remove_file(&self.lock);
                        }
                        Some((p, Some(true))) => bail!(
                            "another sepfit batch (process {p}) is writing {}: wait for it to finish or choose another --out (its lock is {})",
                            self.out.display(),
                            self.lock.display()
                        ),
                        _ => bail!(
                            "{} exists: another sepfit batch may be writing {}; if none is running, delete that file",
                            self.lock.display(),
                            self.out.display()
                        ),
                    }
                }
                Err(e) => bail!("cannot write --out {}: cannot create {}: {e}", self.out.display(), self.lock.display()),
            }
        }
        bail!("cannot take the lock {}; if no sepfit batch is running, delete it", self.lock.display())
    }

    /// The bytes of an existing `.partial`, if there is one.
    fn read_partial(&self) -> anyhow::Result<Option<Vec<u8>>> {
        match std::fs::read(&self.partial) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => bail!("cannot read {}: {e}", self.partial.display()),
        }
    }

    /// Continues an interrupted `.partial` holding `count` complete results that end at byte
    /// `end`: refused without --resume, without the fingerprint or with another one, or when
    /// its header is not this run's (`header_matches`); otherwise cut to `end` and opened for
    /// appending.
    fn resume_at(&mut self, fingerprint: &str, header_matches: bool, count: usize, end: usize) -> anyhow::Result<()> {
        let pshown = self.partial.display().to_string();
        if !self.resume {
            bail!(
                "{pshown} exists with {count} results: an earlier batch was interrupted; continue it with --resume, or delete that file to start over"
            );
        }
        let mshown = self.meta.display();
        let recorded = match std::fs::read_to_string(&self.meta) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "cannot resume: {pshown} has no fingerprint {mshown} saying which model, options and data it was computed with; delete {pshown} to start over"
            ),
            Err(e) => bail!("cannot resume: cannot read {mshown}: {e}"),
        };
        let diffs = fingerprint_diff(&recorded, fingerprint);
        if !diffs.is_empty() {
            bail!(
                "cannot resume: {pshown} was computed with other settings: {}; rerun with the original ones, or delete {pshown} and {mshown} to start over",
                diffs.join("; ")
            );
        }
        if !header_matches {
            bail!("cannot resume: the header of {pshown} is not this model's; delete it and {mshown} to start over");
        }
        let mut f = OpenOptions::new().write(true).open(&self.partial).with_context(|| format!("cannot open {pshown}"))?;
        f.set_len(end as u64).with_context(|| format!("cannot truncate {pshown}"))?;
        f.seek(std::io::SeekFrom::End(0)).with_context(|| format!("cannot write {pshown}"))?;
        self.writer = Some(BufWriter::new(f));
        Ok(())
    }

    /// Opens `.partial` for the rows: a fresh one (header written), or with --resume the
    /// complete rows of an earlier one with the same fingerprint. Returns those rows (without
    /// their newlines).
    fn open(&mut self, header: &[u8], fingerprint: &str) -> anyhow::Result<Vec<Vec<u8>>> {
        let existing = self.read_partial()?;
        // Keep complete lines only: a kill can leave the last one cut short, even inside a
        // multi-byte character.
        let mut rows: Vec<&[u8]> = Vec::new();
        let mut complete = 0;
        if let Some(b) = &existing {
            while let Some(j) = record_end(b, complete) {
                if j > complete {
                    rows.push(&b[complete..j]);
                }
                complete = j + 1;
            }
        }
        if rows.len() <= 1 {
            // Empty or header only: nothing was done (e.g. killed before the first chunk).
            return self.create(header, fingerprint).map(|()| Vec::new());
        }
        self.resume_at(fingerprint, [rows[0], b"\n"].concat() == header, rows.len() - 1, complete)?;
        Ok(rows[1..].iter().map(|r| r.to_vec()).collect())
    }

    /// As [`open`](Self::open) for `.npy` results of records of `record_len` bytes after
    /// `header` (a structured array's header, which names the fields and the shape): returns
    /// the complete records of an interrupted run (resume) that wrote the same header.
    fn open_npy(&mut self, header: &[u8], record_len: usize, fingerprint: &str) -> anyhow::Result<Vec<Vec<u8>>> {
        let existing = self.read_partial()?.unwrap_or_default();
        let complete = existing.len().saturating_sub(header.len()) / record_len;
        if complete == 0 {
            // Nothing was done (killed before the first chunk).
            return self.create(header, fingerprint).map(|()| Vec::new());
        }
        let end = header.len() + complete * record_len;
        self.resume_at(fingerprint, &existing[..header.len()] == header, complete, end)?;
        Ok(existing[header.len()..end].chunks_exact(record_len).map(<[u8]>::to_vec).collect())
    }

    fn create(&mut self, header: &[u8], fingerprint: &str) -> anyhow::Result<()> {
        std::fs::write(&self.meta, fingerprint).with_context(|| format!("cannot write {}", self.meta.display()))?;
        let f = File::create(&self.partial).with_context(|| format!("cannot create {}", self.partial.display()))?;
        self.created = true;
        self.writer = Some(BufWriter::new(f));
        self.write(header)
    }

    /// Appends and flushes; a failure keeps the `.partial` for a later --resume.
    fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let w = self.writer.as_mut().expect("the output is open");
        if let Err(e) = w.write_all(bytes).and_then(|()| w.flush()) {
            self.keep = true;
            bail!(
                "cannot write results to {}: {e}; the complete rows written so far stay there: continue with --resume once the problem is fixed",
                self.partial.display()
            );
        }
        Ok(())
    }

    /// The batch is complete: `.partial` becomes `OUT`.
    fn finish(&mut self) -> anyhow::Result<()> {
        if let Some(mut w) = self.writer.take()
            && let Err(e) = w.flush()
        {
            self.keep = true;
            bail!("cannot write results to {}: {e}", self.partial.display());
        }
        std::fs::rename(&self.partial, &self.out)
            .with_context(|| format!("cannot move {} to {}", self.partial.display(), self.out.display()))?;
        self.finished = true;
        let _ = std::fs::remove_file(&self.meta);
        Ok(())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if !self.finished && self.created && !self.keep {
            self.writer = None;
            let _ = std::fs::remove_file(&self.partial);
            let _ = std::fs::remove_file(&self.meta);
        }
        if self.locked {
            let _ = std::fs::remove_file(&self.lock);
        }
    }
}

/// Whether process `pid` is a running sepfit: `None` where `/proc` cannot tell.
fn process_alive(pid: u32) -> Option<bool> {
    let me = std::fs::read_to_string("/proc/self/comm").ok()?;
    if pid == std::process::id() {
        return Some(true);
    }
    match std::fs::read_to_string(format!("/proc/{pid}/comm")) {
        Ok(comm) => Some(comm == me),
        Err(_) => Some(false),
    }
}

/// What the rows of a batch depend on, one `key=value` a line (values in Rust's `{:?}`
/// notation, so they fit on one line and compare exactly).
fn fingerprint(args: &BatchArgs, opts: &NamedOptions) -> String {
    let mut start = opts.start.clone();
    start.sort_by(|a, b| a.0.cmp(&b.0));
    let mut fixed = opts.fixed.clone();
    fixed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut bounds = opts.bounds.clone();
    bounds.sort_by(|a, b| a.0.cmp(&b.0));
    let data = args.data.canonicalize().unwrap_or_else(|_| args.data.clone());
    let md = std::fs::metadata(&args.data).ok();
    let mtime = md
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or("unknown".to_string(), |d| format!("{}.{:09}", d.as_secs(), d.subsec_nanos()));
    let layout = match (&args.by, args.wide) {
        (_, true) => "wide".to_string(),
        (Some(b), _) => format!("long, --by {b:?}"),
        (None, false) => "long".to_string(),
    };
    let mut s = String::new();
    let mut kv = |k: &str, v: String| {
        s += k;
        s.push('=');
        s += &v;
        s.push('\n');
    };
    kv("fingerprint", "sepfit batch 1".into());
    kv("formula", format!("{:?}", args.model));
    kv("layout", layout);
    kv("--start", format!("{start:?}"));
    kv("--fix", format!("{fixed:?}"));
    kv("--bounds", format!("{bounds:?}"));
    kv("--sigma", format!("{:?}", opts.sigma));
    kv("--nonlinear", format!("{:?}", opts.force_nonlinear));
    kv("--search", format!("{:?}", opts.search.as_ref().map(|s| s.samples)));
    kv("--learn-starts", format!("{:?}", args.learn_starts));
    kv("--x", format!("{:?}", args.x));
    kv("--array", format!("{:?}", args.array));
    kv("--dtype", format!("{:?}", args.dtype));
    kv("--shape", format!("{:?}", args.shape));
    kv("method", format!("{:?}", opts.method));
    kv("--max-iter", format!("{:?}", args.max_iter));
    // Only where given, so that least-squares runs of earlier versions still resume.
    if opts.loss != sepfit::Loss::Linear {
        kv("--loss", opts.loss.name().to_string());
    }
    if let Some(fs) = opts.f_scale {
        kv("--f-scale", format!("{fs:?}"));
    }
    kv("--tol", format!("{:?}", args.tol));
    kv("data file", format!("{:?}", data.display().to_string()));
    kv("data size", md.map_or("unknown".into(), |m| m.len().to_string()));
    kv("data modified", mtime);
    s
}

/// The keys whose values differ between two fingerprints, with both values.
fn fingerprint_diff(recorded: &str, now: &str) -> Vec<String> {
    let parse = |t: &str| -> Vec<(String, String)> {
        t.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let (old, new) = (parse(recorded), parse(now));
    let old_map: HashMap<&str, &str> = old.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut diffs = Vec::new();
    for (k, v) in &new {
        match old_map.get(k.as_str()) {
            Some(o) if o == v => {}
            Some(o) => diffs.push(format!("{k} was {} and is now {}", echo_long(o), echo_long(v))),
            None => diffs.push(format!("{k} is not recorded (now {})", echo_long(v))),
        }
    }
    diffs
}

/// A value shown in a message, cut to 80 characters.
fn echo_long(s: &str) -> String {
    if s.chars().count() <= 80 { s.to_string() } else { s.chars().take(80).collect::<String>() + "…" }
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

/// Whether rows carry a `loss_cost` field (after `rss`): for every loss but least squares.
fn with_loss_cost(f: &BatchFitter) -> bool {
    f.loss() != sepfit::Loss::Linear
}

fn header(f: &BatchFitter) -> Vec<u8> {
    let mut h = String::from("curve");
    for p in f.param_names() {
        h += &format!(",{p},{p}_se");
    }
    h += ",rss";
    if with_loss_cost(f) {
        h += ",loss_cost";
    }
    h += ",dof,iterations,converged,status,termination,warnings,error\n";
    h.into_bytes()
}

/// A CSV field, quoted when it has to be.
fn push_field(out: &mut Vec<u8>, s: &[u8]) {
    if s.iter().any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r')) || s.first().is_some_and(|b| b.is_ascii_whitespace() || *b == b'#') || s.last().is_some_and(u8::is_ascii_whitespace) {
        out.push(b'"');
        for &b in s {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(s);
    }
}

/// A float, shortest round-trip: the digits of Rust's `{}` (an integral value without `.0`),
/// but with an exponent where ryu uses one (below 1e-5, from 1e16) and that is shorter:
/// `1.9e-200` rather than 218 characters.
fn push_f64(out: &mut Vec<u8>, v: f64, buf: &mut ryu::Buffer) {
    let s = buf.format(v).as_bytes();
    if let Some(p) = s.iter().position(|&b| b == b'e') {
        let (neg, mant) = match s[..p].strip_prefix(b"-") {
            Some(m) => (true, m),
            None => (false, &s[..p]),
        };
        let exp: i64 = std::str::from_utf8(&s[p + 1..]).ok().and_then(|e| e.parse().ok()).unwrap_or(0);
        let digits: Vec<u8> = mant.iter().copied().filter(|&b| b != b'.').collect();
        let d = digits.len() as i64;
        let plain_len = if exp >= 0 { (exp + 1).max(d) + i64::from(d > exp + 1) } else { 1 + 1 + (-exp - 1) + d };
        if plain_len <= s.len() as i64 - i64::from(neg) {
            if neg {
                out.push(b'-');
            }
            if exp >= 0 {
                let int = (exp + 1) as usize;
                if digits.len() <= int {
                    out.extend_from_slice(&digits);
                    out.resize(out.len() + int - digits.len(), b'0');
                } else {
                    out.extend_from_slice(&digits[..int]);
                    out.push(b'.');
                    out.extend_from_slice(&digits[int..]);
                }
            } else {
                out.extend_from_slice(b"0.");
                out.resize(out.len() + (-exp - 1) as usize, b'0');
                out.extend_from_slice(&digits);
            }
            return;
        }
        out.extend_from_slice(s);
    } else {
        out.extend_from_slice(s.strip_suffix(b".0").unwrap_or(s));
    }
}

fn row(f: &BatchFitter, id: &[u8], r: &CurveResult, n_params: usize) -> Vec<u8> {
    let mut s = Vec::with_capacity(64 + 48 * n_params);
    let mut buf = ryu::Buffer::new();
    push_field(&mut s, id);
    for i in 0..n_params {
        s.push(b',');
        push_f64(&mut s, r.values.get(i).copied().unwrap_or(f64::NAN), &mut buf);
        s.push(b',');
        push_f64(&mut s, r.std_errors.get(i).copied().unwrap_or(f64::NAN), &mut buf);
    }
    s.push(b',');
    push_f64(&mut s, r.rss, &mut buf);
    if with_loss_cost(f) {
        s.push(b',');
        push_f64(&mut s, r.loss_cost, &mut buf);
    }
    let termination = r.termination.map_or("error", |t| t.name());
    let _ = write!(s, ",{},{},{},{},{},", r.dof, r.iterations, r.converged, r.status(), termination);
    push_field(&mut s, f.warning_messages(r).as_bytes());
    s.push(b',');
    push_field(&mut s, r.error.as_ref().map(|e| e.to_string()).unwrap_or_default().as_bytes());
    s.push(b'\n');
    s
}

/// The fields of a `.npy` result record (all float64).
fn npy_fields(f: &BatchFitter) -> Vec<String> {
    let mut v = Vec::new();
    for p in f.param_names() {
        v.push(p.clone());
        v.push(format!("{p}_se"));
    }
    v.push("rss".into());
    if with_loss_cost(f) {
        v.push("loss_cost".into());
    }
    v.extend(["dof", "iterations", "converged", "status"].map(String::from));
    v
}

/// The `status` field of a `.npy` record: 0 converged, 1 not converged, 2 degenerate, 3 error.
fn status_code(r: &CurveResult) -> f64 {
    match r.status() {
        "converged" => 0.0,
        "not_converged" => 1.0,
        "degenerate" => 2.0,
        _ => 3.0,
    }
}

/// A curve's `.npy` record: the fields of [`npy_fields`], little-endian float64.
fn record(f: &BatchFitter, r: &CurveResult, n_params: usize) -> Vec<u8> {
    let mut s = Vec::with_capacity(8 * (2 * n_params + 6));
    for i in 0..n_params {
        s.extend_from_slice(&r.values.get(i).copied().unwrap_or(f64::NAN).to_le_bytes());
        s.extend_from_slice(&r.std_errors.get(i).copied().unwrap_or(f64::NAN).to_le_bytes());
    }
    s.extend_from_slice(&r.rss.to_le_bytes());
    if with_loss_cost(f) {
        s.extend_from_slice(&r.loss_cost.to_le_bytes());
    }
    for v in [r.dof as f64, r.iterations as f64, f64::from(u8::from(r.converged)), status_code(r)] {
        s.extend_from_slice(&v.to_le_bytes());
    }
    s
}

/// A record already in a `.npy` output (resume): whether it failed or did not converge.
fn done_record(rec: &[u8]) -> (bool, bool) {
    let code = rec.len().checked_sub(8).map_or(3.0, |at| f64::from_le_bytes(rec[at..].try_into().expect("8 bytes")));
    let failed = code == 3.0;
    (failed, !failed && code != 0.0 && code != 2.0)
}

/// How each curve's result is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RowFormat {
    Csv,
    Npy,
}

/// A row already in the output (resume): its id, and whether it failed or did not converge.
fn done_row(line: &[u8]) -> (Vec<u8>, bool, bool) {
    let (mut text, mut ends) = (Vec::new(), Vec::new());
    if split_record(line, &mut text, &mut ends).is_err() || ends.len() < 6 {
        return (line.to_vec(), false, false);
    }
    let field = |i: usize| &text[if i == 0 { 0 } else { ends[i - 1] }..ends[i]];
    let n = ends.len();
    let failed = !field(n - 1).is_empty();
    let converged = field(n - 5) == b"true";
    (field(0).to_vec(), failed, !failed && !converged)
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

/// Fits the curves of one group in parallel and formats their rows: (failed, converged, row).
fn fit_group(f: &BatchFitter, group: &[Curve], n_params: usize) -> Vec<(bool, bool, Vec<u8>)> {
    group
        .par_iter()
        .map_init(BatchWorker::default, |worker, c| {
            let r = match &c.error {
                None => {
                    let refs: Vec<&[f64]> = c.cols.iter().map(|v| v.as_slice()).collect();
                    f.fit_curve(worker, &refs)
                }
                Some(e) => failed_curve(e),
            };
            (r.error.is_some(), r.converged, row(f, &c.id_bytes, &r, n_params))
        })
        .collect()
}

fn failed_curve(e: &str) -> CurveResult {
    CurveResult::failed(CurveError::Data(e.to_string()))
}

/// Writes a group's rows and counts them.
fn write_group(out: &mut Output, summary: &mut Summary, results: &[(bool, bool, Vec<u8>)]) -> anyhow::Result<()> {
    let mut text = Vec::with_capacity(results.iter().map(|r| r.2.len()).sum());
    for (failed, converged, line) in results {
        summary.fitted += 1;
        if *failed {
            summary.failed += 1;
        } else if !converged {
            summary.not_converged += 1;
        }
        text.extend_from_slice(line);
    }
    out.write(&text)
}

/// Opens the output for this fitter's rows; returns the ids already done (resume) and counts
/// the failures among them.
fn open_rows(args: &BatchArgs, opts: &NamedOptions, out: &mut Output, f: &BatchFitter, summary: &mut Summary) -> anyhow::Result<Vec<Vec<u8>>> {
    let done = out.open(&header(f), &fingerprint(args, opts))?;
    summary.skipped = done.len();
    Ok(done
        .iter()
        .map(|l| {
            let (id, failed, nc) = done_row(l);
            summary.done_failed += usize::from(failed);
            summary.done_not_converged += usize::from(nc);
            id
        })
        .collect())
}

fn run_long(args: &BatchArgs, opts: &NamedOptions, out: &mut Output) -> Result<Summary, CliError> {
    let by = args.by.as_deref().unwrap_or_default();
    let path = args.data.display().to_string();
    let file = File::open(&args.data).with_context(|| format!("cannot open data file `{path}`"))?;
    let mut records = Records::new(BufReader::with_capacity(1 << 20, file), &path);
    let names = records.header()?;
    let header_lines = records.lines_read();
    let reader = records.into_inner();
    let by_idx = names
        .iter()
        .position(|n| n == by)
        .ok_or_else(|| anyhow!("{path}: no column `{}` to group curves by; columns are: {}", echo_str(by), column_list(&names)))?;
    // The fitter sees the numeric columns the formula can refer to (not the curve column).
    let field_of: Vec<usize> = crate::data::columns_in_formula(&names, &args.model, args.param_opts.sigma.as_deref())
        .into_iter()
        .filter(|&i| i != by_idx)
        .collect();
    let num_names: Vec<String> = field_of.iter().map(|&i| names[i].clone()).collect();
    let mut f = fitter(args, &num_names, opts)?;
    let mut to_learn = args.learn_starts.unwrap_or(0);
    let used: Vec<usize> = {
        let m = &f.resolved().formula;
        let mut u = m.used_columns();
        if let Some(s) = &args.param_opts.sigma
            && let Some(i) = num_names.iter().position(|n| n == s)
        {
            u.push(i);
        }
        u
    };
    let mut summary = Summary::default();
    let done = open_rows(args, opts, out, &f, &mut summary)?;
    let n_params = f.param_names().len();
    let pb = progress(None);
    let chunk = args.chunk.max(1);
    let shape = Shape { by_idx, n_fields: names.len(), field_of: &field_of, used: &used, names: &num_names };
    let result: Result<(), CliError> = std::thread::scope(|scope| {
        // The reader only cuts the file into blocks of whole records; workers parse them.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<u8>, String>>(BLOCKS_PER_ROUND);
        // Parsed blocks go back to the reader to be filled again (no fresh pages to fault in).
        let (back_tx, back_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let path2 = path.clone();
        scope.spawn(move || {
            if let Err(e) = read_blocks(reader, &tx, &back_rx) {
                let _ = tx.send(Err(format!("{path2}: read error: {e}")));
            }
        });
        let mut st = Stitch {
            pending: None,
            row_base: 0,
            line_base: header_lines,
            seen: HashMap::new(),
            skip: done.len(),
            done: done.into_iter(),
        };
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
        let give_back = |blocks: Vec<Vec<u8>>| {
            for b in blocks {
                // The reader may be done: then the buffer is just dropped.
                let _ = back_tx.send(b);
            }
        };
        give_back(blocks);
        // One list of curves for every round (growing it anew each round faulted fresh pages in).
        let mut curves: Vec<Curve> = Vec::new();
        loop {
            curves.clear();
            for pb in parsed {
                st.add(pb, &shape, &path, by, &mut curves).map_err(|e| CliError::Other(anyhow!(e)))?;
            }
            if eof && let Some(c) = st.pending.take() {
                st.finish(c, &path, by, &mut curves).map_err(|e| CliError::Other(anyhow!(e)))?;
            }
            if to_learn > 0 {
                let sample: Vec<Vec<&[f64]>> = curves
                    .iter()
                    .filter(|c| c.error.is_none())
                    .take(to_learn)
                    .map(|c| c.cols.iter().map(|v| v.as_slice()).collect())
                    .collect();
                if !sample.is_empty() || eof {
                    f.learn_starts(&sample);
                    to_learn = 0;
                }
            }
            let f = &f;
            let (next_blocks, next_eof) = if eof { (Vec::new(), true) } else { recv_round()? };
            // Fit and write these curves while the next round's blocks are parsed.
            let (written, next_parsed) = rayon::join(
                || -> Result<(), CliError> {
                    for group in curves.chunks(chunk) {
                        let results = fit_group(f, group, n_params);
                        write_group(out, &mut summary, &results)?;
                        if let Some(pb) = &pb {
                            pb.inc(group.len() as u64);
                        }
                    }
                    Ok(())
                },
                || parse_all(&next_blocks),
            );
            written?;
            give_back(next_blocks);
            if eof {
                break;
            }
            parsed = next_parsed;
            eof = next_eof;
        }
        if st.skip > 0 {
            return Err(anyhow!(
                "cannot resume: the output has {} more curves than the data; delete the .partial file to start over",
                st.skip
            )
            .into());
        }
        Ok(())
    });
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    result?;
    Ok(summary)
}

/// Blocks of the file parsed per round (each about [`BLOCK`] bytes).
const BLOCKS_PER_ROUND: usize = 8;

/// Size of the blocks the reader cuts the file into (at record ends).
const BLOCK: usize = 1 << 20;

/// Reads `input` (after its header) in blocks of whole records of about [`BLOCK`] bytes and
/// sends them in order, filling the buffers that come back on `back` before allocating new
/// ones; stops quietly if the receiver has gone. A record longer than a block grows the buffer
/// geometrically (linear time however long the line).
fn read_blocks<R: Read>(
    mut input: R,
    tx: &std::sync::mpsc::SyncSender<Result<Vec<u8>, String>>,
    back: &std::sync::mpsc::Receiver<Vec<u8>>,
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(BLOCK + BLOCK / 4);
    loop {
        let want = BLOCK.max(buf.len());
        // Appended after the carried-over record, into the spare capacity (no zero-filling);
        // fewer bytes than asked for means the end of the input.
        let got = (&mut input).take(want as u64).read_to_end(&mut buf)?;
        let eof = got < want;
        let cut = if eof { buf.len() } else { last_record_cut(&buf) };
        if cut == 0 && !eof {
            // One record longer than the buffer: read on.
            continue;
        }
        // Room for a block after the cut-off record (a record is rarely a quarter block long), so
        // that a buffer that comes back is filled again without reallocating.
        let mut next = back.try_recv().unwrap_or_else(|_| Vec::with_capacity(BLOCK + BLOCK / 4 + (buf.len() - cut)));
        next.clear();
        next.extend_from_slice(&buf[cut..]);
        buf.truncate(cut);
        if !buf.is_empty() && tx.send(Ok(buf)).is_err() {
            return Ok(());
        }
        if eof {
            return Ok(());
        }
        buf = next;
    }
}

/// Where the complete records of `buf` end (0 if none does): after its last newline, or with
/// quotes in the buffer, after the last newline outside quotes.
fn last_record_cut(buf: &[u8]) -> usize {
    if memchr::memchr(b'"', buf).is_none() {
        return memchr::memrchr(b'\n', buf).map_or(0, |i| i + 1);
    }
    let mut cut = 0;
    while let Some(j) = record_end(buf, cut) {
        cut = j + 1;
    }
    cut
}

/// Where things are in a row of the long CSV.
struct Shape<'a> {
    /// Field of the curve id.
    by_idx: usize,
    /// Fields of the header.
    n_fields: usize,
    /// Field of each numeric column.
    field_of: &'a [usize],
    /// Numeric columns the fit uses.
    used: &'a [usize],
    /// Names of the numeric columns.
    names: &'a [String],
}

/// A problem with one row, reported with its data row number once that is known.
enum RowError {
    /// A cell of a used column, and what is wrong with it.
    Number { col: usize, what: String },
    /// Not as many fields as the header.
    Fields(usize),
}

/// Where in a block (0-based data row and line, from the block's start).
#[derive(Clone, Copy)]
struct At {
    row: usize,
    line: usize,
}

/// The rows of one curve within one block (a curve may go on in the next block).
struct Piece {
    /// The id (trimmed, unquoted).
    id: Vec<u8>,
    first: At,
    last: At,
    /// Used numeric columns (others empty).
    cols: Vec<Vec<f64>>,
    /// The first bad row and the problem.
    error: Option<(At, RowError)>,
}

struct ParsedBlock {
    pieces: Vec<Piece>,
    /// Data rows and lines in the block.
    rows: usize,
    lines: usize,
    /// A quoted field never closed (at the end of the file).
    unterminated: Option<At>,
}

/// Starts a piece for the curve `id` at row `at`, its used columns sized like the last piece's.
fn new_piece(pieces: &mut Vec<Piece>, shape: &Shape<'_>, id: &[u8], at: At) {
    let size = pieces.last().map_or(256, |p| p.cols.iter().map(Vec::len).max().unwrap_or(0) + 8);
    let mut cols = vec![Vec::new(); shape.field_of.len()];
    for &u in shape.used {
        cols[u].reserve(size);
    }
    pieces.push(Piece { id: id.to_vec(), first: at, last: at, cols, error: None });
}

/// Adds a parsed row to the pieces of a block.
#[inline]
fn push_row(pieces: &mut Vec<Piece>, shape: &Shape<'_>, slot: &[f64], id: &[u8], problem: Option<RowError>, at: At) {
    if !pieces.last().is_some_and(|p| same_bytes(&p.id, id)) {
        new_piece(pieces, shape, id, at);
    }
    let piece = pieces.last_mut().expect("a piece was just pushed");
    piece.last = at;
    match problem {
        None => {
            for &u in shape.used {
                piece.cols[u].push(slot[u]);
            }
        }
        Some(e) => {
            if piece.error.is_none() {
                piece.error = Some((at, e));
            }
        }
    }
}

/// What a field of a long-CSV row is for ([`parse_block`]), besides a numeric column's index:
/// nothing the fit uses, or the curve id.
const FIELD_UNUSED: usize = usize::MAX;
const FIELD_ID: usize = usize::MAX - 1;

/// Parses a block of whole records into pieces of consecutive rows with the same id. Without
/// a `"` in the block, one pass over each line splits the fields at commas ([`Delimiters`]),
/// each field's role looked up by its position; otherwise each record goes through
/// [`split_record`]. Numbers go through [`parse_number_in`] (unquoted) or [`parse_number`]. A
/// row's id is compared with the current piece's as the bytes stand in the block (then
/// trimmed), and a row's problem is put into words only when there is one.
fn parse_block(bytes: &[u8], shape: &Shape<'_>) -> ParsedBlock {
    if memchr::memchr(b'"', bytes).is_some() {
        return parse_block_quoted(bytes, shape);
    }
    // Field k holds numeric column role[k], the id, or nothing the fit uses.
    let mut role = vec![FIELD_UNUSED; shape.n_fields];
    for &u in shape.used {
        role[shape.field_of[u]] = u;
    }
    if let Some(r) = role.get_mut(shape.by_idx) {
        *r = FIELD_ID;
    }
    // This line's numbers, by numeric column, until its curve is known.
    let mut slot = vec![0.0; shape.field_of.len()];
    let mut pieces: Vec<Piece> = Vec::with_capacity(256);
    // The id of the last piece as it stands in the block.
    let mut piece_raw: &[u8] = b"";
    let (mut rows, mut lines) = (0, 0);
    let n = bytes.len();
    let mut delims = Delimiters::new(bytes, 0);
    let mut i = 0;
    while i < n {
        let line = lines;
        lines += 1;
        let line_start = i;
        if bytes[i] == b'#' {
            // A comment line.
            i = memchr::memchr(b'\n', &bytes[i..]).map_or(n, |j| i + j) + 1;
            delims.seek(i.min(n));
            continue;
        }
        let mut id: &[u8] = b"";
        // The first unreadable number: its column and where its field is.
        let mut bad: Option<(usize, usize, usize)> = None;
        let mut fi = 0;
        let mut fstart = i;
        // One pass over the line: fields end at ',' or at the end of the line.
        let line_end = loop {
            let j = delims.next_end();
            match role.get(fi) {
                Some(&FIELD_ID) => id = &bytes[fstart..j],
                Some(&u) if u != FIELD_UNUSED => match parse_number_in(bytes, fstart, j) {
                    Some(v) => slot[u] = v,
                    None => {
                        bad = bad.or(Some((u, fstart, j)));
                    }
                },
                _ => {}
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
        let at = At { row: rows, line };
        rows += 1;
        if !pieces.last().is_some_and(|p| same_bytes(piece_raw, id) || same_bytes(&p.id, id.trim_ascii())) {
            new_piece(&mut pieces, shape, id.trim_ascii(), at);
            piece_raw = id;
        }
        let piece = pieces.last_mut().expect("a piece was just pushed");
        piece.last = at;
        if fi == shape.n_fields && bad.is_none() {
            for &u in shape.used {
                piece.cols[u].push(slot[u]);
            }
        } else if piece.error.is_none() {
            let e = match bad {
                Some((col, a, b)) if fi == shape.n_fields => RowError::Number { col, what: cell_problem(&bytes[a..b]) },
                _ => RowError::Fields(fi),
            };
            piece.error = Some((at, e));
        }
    }
    ParsedBlock { pieces, rows, lines, unterminated: None }
}

/// [`parse_block`] for a block with quotes: record by record, RFC 4180.
#[cold]
fn parse_block_quoted(bytes: &[u8], shape: &Shape<'_>) -> ParsedBlock {
    let mut slot = vec![0.0; shape.field_of.len()];
    let mut pieces: Vec<Piece> = Vec::new();
    let (mut text, mut ends) = (Vec::new(), Vec::new());
    let (mut rows, mut lines) = (0, 0);
    let n = bytes.len();
    let mut i = 0;
    while i < n {
        let end = record_end(bytes, i).unwrap_or(n);
        let rec = &bytes[i..end];
        let line = lines;
        lines += 1 + memchr::memchr_iter(b'\n', rec).count();
        i = end + 1;
        if rec.first() == Some(&b'#') || rec.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let at = At { row: rows, line };
        rows += 1;
        if split_record(rec, &mut text, &mut ends).is_err() {
            return ParsedBlock { pieces, rows, lines, unterminated: Some(at) };
        }
        let field = |k: usize| &text[if k == 0 { 0 } else { ends[k - 1] }..ends[k]];
        let mut problem = None;
        for &u in shape.used {
            let fi = shape.field_of[u];
            if fi >= ends.len() {
                continue;
            }
            match parse_number(field(fi)) {
                Some(v) => slot[u] = v,
                None => {
                    if problem.is_none() {
                        problem = Some(RowError::Number { col: u, what: cell_problem(field(fi)) });
                    }
                }
            }
        }
        if ends.len() != shape.n_fields {
            problem = Some(RowError::Fields(ends.len()));
        }
        let id: &[u8] = if shape.by_idx < ends.len() { field(shape.by_idx) } else { b"" };
        push_row(&mut pieces, shape, &slot, id, problem, at);
    }
    ParsedBlock { pieces, rows, lines, unterminated: None }
}

/// A complete curve, ready to fit.
struct Curve {
    id_bytes: Vec<u8>,
    /// Data row and file line (1-based) of its first and last rows.
    first: (usize, usize),
    last: (usize, usize),
    cols: Vec<Vec<f64>>,
    /// Why it cannot be fitted, if it cannot.
    error: Option<String>,
}

/// (data row, file line) of a curve's first and of its last row.
type RowSpan = ((usize, usize), (usize, usize));

/// Joins the pieces of consecutive blocks into curves, in file order: checks that a curve's
/// rows are contiguous and, on resume, skips the curves already in the output.
struct Stitch {
    /// The last curve seen: it may go on in the next block.
    pending: Option<Curve>,
    /// Data rows and file lines before the next block.
    row_base: usize,
    line_base: usize,
    /// Every curve so far (by the bytes of its id): where its rows were.
    seen: HashMap<Vec<u8>, RowSpan>,
    /// Curves still to skip (resume) and their expected ids.
    skip: usize,
    done: std::vec::IntoIter<Vec<u8>>,
}

impl Stitch {
    fn add(&mut self, pb: ParsedBlock, shape: &Shape<'_>, path: &str, by: &str, out: &mut Vec<Curve>) -> Result<(), String> {
        let (rb, lb) = (self.row_base, self.line_base);
        let abs = |a: At| (rb + a.row + 1, lb + a.line + 1);
        let message = |a: At, e: &RowError| {
            let (row, line) = abs(a);
            match e {
                RowError::Number { col, what } => format!("{}, column `{}`: {what}", row_at(row, line), echo_str(&shape.names[*col])),
                RowError::Fields(k) => format!("data row {row}: {k} fields but the header has {} (line {line})", shape.n_fields),
            }
        };
        if let Some(a) = pb.unterminated {
            let (row, line) = abs(a);
            return Err(format!("{path}, {}: a quoted field (starting with `\"`) is never closed", row_at(row, line)));
        }
        for piece in pb.pieces {
            if let Some(c) = self.pending.as_mut().filter(|c| c.id_bytes == piece.id) {
                for (dst, src) in c.cols.iter_mut().zip(piece.cols) {
                    dst.extend_from_slice(&src);
                }
                if c.error.is_none() {
                    c.error = piece.error.as_ref().map(|(a, e)| message(*a, e));
                }
                c.last = abs(piece.last);
                continue;
            }
            if let Some(c) = self.pending.take() {
                self.finish(c, path, by, out)?;
            }
            self.pending = Some(Curve {
                first: abs(piece.first),
                last: abs(piece.last),
                error: piece.error.as_ref().map(|(a, e)| message(*a, e)),
                id_bytes: piece.id,
                cols: piece.cols,
            });
        }
        self.row_base += pb.rows;
        self.line_base += pb.lines;
        Ok(())
    }

    /// A curve is complete: check it, then queue it (or skip it on resume).
    fn finish(&mut self, c: Curve, path: &str, by: &str, out: &mut Vec<Curve>) -> Result<(), String> {
        if let Some(&(first, last)) = self.seen.get(&c.id_bytes) {
            let range = |what: &str, a: usize, b: usize| if a == b { format!("{what} {a}") } else { format!("{what}s {a}–{b}") };
            return Err(format!(
                "{path}: the rows of curve `{}` are not contiguous: it has {} ({}) and again {} ({}); the rows of a curve must be contiguous: sort the file by `{}`, keeping each curve's rows in order",
                echo(&c.id_bytes),
                range("data row", first.0, last.0),
                range("line", first.1, last.1),
                range("data row", c.first.0, c.last.0),
                range("line", c.first.1, c.last.1),
                echo_str(by)
            ));
        }
        self.seen.insert(c.id_bytes.clone(), (c.first, c.last));
        if self.skip > 0 {
            self.skip -= 1;
            let expect = self.done.next().unwrap_or_default();
            if expect != c.id_bytes {
                return Err(format!(
                    "cannot resume: the output has curve `{}` where the data has `{}`; delete the .partial file to start over",
                    echo(&expect),
                    echo(&c.id_bytes)
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

/// Wide format: read in one pass into rows of numbers (8 bytes a cell, about the size of the
/// text; rows are kept apart so that no reallocation copies them all), then fitted a chunk of
/// curves at a time.
fn run_wide(args: &BatchArgs, opts: &NamedOptions, out: &mut Output) -> Result<Summary, CliError> {
    let mut rdr = crate::data::open_records(&args.data)?;
    let path = rdr.path.clone();
    let names = rdr.header()?;
    if names.len() < 2 {
        return Err(anyhow!("{path}: wide format needs an x column and at least one curve column").into());
    }
    let n = names.len() - 1;
    let fit_names = vec![names[0].clone(), "y".to_string()];
    let mut f = fitter(args, &fit_names, opts)?;
    let mut x = Vec::new();
    let mut vals: Vec<Vec<f64>> = Vec::new();
    let mut bad: Vec<Option<String>> = vec![None; n];
    while rdr.next_row()? {
        let (row, line) = (rdr.row(), rdr.line());
        if rdr.len() != names.len() {
            return Err(anyhow!(
                "{path}, data row {row}: {} fields but the header has {} (line {line}); every row needs one value per column",
                rdr.len(),
                names.len()
            )
            .into());
        }
        let xv = parse_number(rdr.field(0)).ok_or_else(|| {
            anyhow!("{path}, {}, column `{}`: {}; the x column must hold finite numbers", row_at(row, line), echo_str(&names[0]), cell_problem(rdr.field(0)))
        })?;
        x.push(xv);
        let mut vals_row = Vec::with_capacity(n);
        for (j, b) in bad.iter_mut().enumerate() {
            let cell = rdr.field(j + 1);
            match parse_number(cell) {
                Some(v) => vals_row.push(v),
                None => {
                    vals_row.push(f64::NAN);
                    // A bad cell only fails its own curve.
                    if b.is_none() {
                        *b = Some(format!("{}, column `{}`: {}", row_at(row, line), echo_str(&names[j + 1]), cell_problem(cell)));
                    }
                }
            }
        }
        vals.push(vals_row);
    }
    if x.is_empty() {
        return Err(anyhow!("{path} has a header but no data rows").into());
    }
    let mut summary = Summary::default();
    let done = open_rows(args, opts, out, &f, &mut summary)?;
    for (k, id) in done.iter().enumerate() {
        if names.get(k + 1).map(|s| s.as_bytes()) != Some(id.as_slice()) {
            return Err(anyhow!(
                "cannot resume: the output has curve `{}` where the data has `{}`",
                echo(id),
                names.get(k + 1).map_or(String::new(), |s| echo_str(s))
            )
            .into());
        }
    }
    let start = done.len();
    if let Some(k) = args.learn_starts {
        let ys: Vec<Vec<f64>> =
            (start..n).filter(|&j| bad[j].is_none()).take(k).map(|j| vals.iter().map(|r| r[j]).collect()).collect();
        let sample: Vec<Vec<&[f64]>> = ys.iter().map(|y| vec![x.as_slice(), y.as_slice()]).collect();
        f.learn_starts(&sample);
    }
    fit_indexed(&f, args, out, &mut summary, start..n, RowFormat::Csv, |worker, y, j| {
        let r = match &bad[j] {
            Some(e) => failed_curve(e),
            None => {
                y.clear();
                y.extend(vals.iter().map(|r| r[j]));
                f.fit_curve(worker, &[x.as_slice(), y.as_slice()])
            }
        };
        (r, names[j + 1].as_bytes().to_vec())
    })?;
    Ok(summary)
}

/// Fits curves `range` (by index) in chunks of `--chunk`, in parallel, and writes their rows
/// (or `.npy` records) in order: `fit_one(worker, buffer, j)` gives curve `j`'s result and id
/// (`buffer` is the thread's own, for the curve's values). The wide and array layouts, whose
/// curves are at hand by index, share it.
fn fit_indexed<F>(
    f: &BatchFitter,
    args: &BatchArgs,
    out: &mut Output,
    summary: &mut Summary,
    range: std::ops::Range<usize>,
    format: RowFormat,
    fit_one: F,
) -> Result<(), CliError>
where
    F: Fn(&mut BatchWorker, &mut Vec<f64>, usize) -> (CurveResult, Vec<u8>) + Sync,
{
    let pb = progress(Some(range.len() as u64));
    let n_params = f.param_names().len();
    let chunk = args.chunk.max(1);
    let mut j0 = range.start;
    while j0 < range.end {
        let j1 = (j0 + chunk).min(range.end);
        let results: Vec<(bool, bool, Vec<u8>)> = (j0..j1)
            .into_par_iter()
            .map_init(
                || (BatchWorker::default(), Vec::new()),
                |(worker, buf), j| {
                    let (r, id) = fit_one(worker, buf, j);
                    let bytes = match format {
                        RowFormat::Csv => row(f, &id, &r, n_params),
                        RowFormat::Npy => record(f, &r, n_params),
                    };
                    (r.error.is_some(), r.converged, bytes)
                },
            )
            .collect();
        write_group(out, summary, &results)?;
        if let Some(pb) = &pb {
            pb.inc((j1 - j0) as u64);
        }
        j0 = j1;
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    Ok(())
}

/// The independent variable of a `.npy` batch: `NAME=START:STEP` or `NAME=FILE.npy`.
fn npy_x(spec: &str, len: usize) -> anyhow::Result<(String, Vec<f64>)> {
    let (name, what) = spec
        .split_once('=')
        .ok_or_else(|| anyhow!("--x {spec:?} should look like \"t=0:0.05\" (start:step) or \"t=times.npy\""))?;
    let name = name.trim().to_string();
    let what = what.trim();
    if name.is_empty() || name == "y" {
        bail!("--x needs the name the formula uses for the independent variable (not `y`, the curve values), e.g. \"t=0:0.05\"");
    }
    if let Some((a, b)) = what.split_once(':') {
        let (a, b): (f64, f64) = (
            a.trim().parse().map_err(|_| anyhow!("--x: the start `{a}` is not a number"))?,
            b.trim().parse().map_err(|_| anyhow!("--x: the step `{b}` is not a number"))?,
        );
        if !(a.is_finite() && b.is_finite()) {
            bail!("--x: start and step must be finite");
        }
        return Ok((name, (0..len).map(|i| a + b * i as f64).collect()));
    }
    let arr = crate::npy::read(Path::new(what))?;
    if arr.shape.len() != 1 || arr.shape[0] != len {
        bail!("--x {what}: shape {:?}, but the curves have {len} points (a 1-D array of {len} values is needed)", arr.shape);
    }
    if let Some(i) = arr.data.iter().position(|v| !v.is_finite()) {
        bail!("--x {what}: value {} (index {i}) is not finite", arr.data[i]);
    }
    Ok((name, arr.data))
}

/// An array of curves (`.npy`, `.npz`, raw): every lane along the last axis is a curve, decoded
/// into the fitting thread's buffer when it is fitted (the file is memory-mapped).
fn run_array(args: &BatchArgs, opts: &NamedOptions, out: &mut Output) -> Result<Summary, CliError> {
    let arr = match array_input(args) {
        Some(ArrayKind::Npz) => CurveArray::open_npz(&args.data, args.array.as_deref())?,
        Some(ArrayKind::Raw) => {
            let d = args.dtype.as_deref().unwrap_or_default();
            let dtype = Dtype::from_flag(d).ok_or_else(|| anyhow!("--dtype {d:?}: say f64 or f32 (little-endian), f64be or f32be"))?;
            let shape = crate::arrays::parse_shape(args.shape.as_deref().unwrap_or_default())?;
            CurveArray::open_raw(&args.data, dtype, &shape)?
        }
        _ => CurveArray::open_npy(&args.data)?,
    };
    let path = args.data.display().to_string();
    if arr.shape.is_empty() {
        return Err(anyhow!("{path} is a scalar; it needs the curves along its last axis").into());
    }
    let (len, n) = (arr.curve_len(), arr.curves());
    if len == 0 || n == 0 {
        return Err(anyhow!("{path} has shape {:?}: no curves to fit", arr.shape).into());
    }
    let spec = args.x.as_deref().ok_or_else(|| anyhow!("give the independent variable of the curves, e.g. --x \"t=0:0.05\" or --x \"t=times.npy\""))?;
    let (xname, x) = npy_x(spec, len)?;
    let mut f = fitter(args, &[xname, "y".to_string()], opts)?;
    let mut summary = Summary::default();
    let format = if is_npy_path(&args.out) { RowFormat::Npy } else { RowFormat::Csv };
    let start = match format {
        RowFormat::Csv => {
            let done = open_rows(args, opts, out, &f, &mut summary)?;
            for (k, id) in done.iter().enumerate() {
                if id.as_slice() != k.to_string().as_bytes() {
                    return Err(anyhow!("cannot resume: the output has curve `{}` where the array has curve {k}", echo(id)).into());
                }
            }
            done.len()
        }
        RowFormat::Npy => {
            let fields = npy_fields(&f);
            let header = crate::npy::structured_header(&fields, &arr.shape[..arr.shape.len() - 1]);
            let done = out.open_npy(&header, 8 * fields.len(), &fingerprint(args, opts))?;
            summary.skipped = done.len();
            for rec in &done {
                let (failed, nc) = done_record(rec);
                summary.done_failed += usize::from(failed);
                summary.done_not_converged += usize::from(nc);
            }
            done.len()
        }
    };
    if start > n {
        return Err(anyhow!("cannot resume: the output has {start} curves, the array {n}").into());
    }
    if let Some(k) = args.learn_starts {
        let ys: Vec<Vec<f64>> = (start..n)
            .take(k)
            .map(|j| {
                let mut y = Vec::new();
                arr.curve_into(j, &mut y);
                y
            })
            .collect();
        let sample: Vec<Vec<&[f64]>> = ys.iter().map(|y| vec![x.as_slice(), y.as_slice()]).collect();
        f.learn_starts(&sample);
    }
    fit_indexed(&f, args, out, &mut summary, start..n, format, |worker, y, j| {
        arr.curve_into(j, y);
        (f.fit_curve(worker, &[x.as_slice(), y.as_slice()]), j.to_string().into_bytes())
    })?;
    Ok(summary)
}

/// Parser throughput on a long CSV with columns `curve,t,y` (a measurement, not a test):
/// `SEPFIT_PARSE_FILE=flim.csv cargo test --release -p sepfit-cli --bin sepfit parse_throughput -- --ignored --nocapture`.
#[cfg(test)]
mod throughput {
    use super::{BLOCK, Shape, last_record_cut, parse_block};
    use std::time::Instant;

    #[test]
    #[ignore = "a measurement: needs SEPFIT_PARSE_FILE"]
    fn parse_throughput() {
        let Ok(path) = std::env::var("SEPFIT_PARSE_FILE") else { return };
        let bytes = std::fs::read(path).expect("the file reads");
        let body = &bytes[memchr::memchr(b'\n', &bytes).expect("a header") + 1..];
        let mut blocks = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            let cut = if rest.len() <= BLOCK { rest.len() } else { last_record_cut(&rest[..BLOCK]) };
            blocks.push(&rest[..cut]);
            rest = &rest[cut..];
        }
        let names = vec!["t".to_string(), "y".to_string()];
        let shape = Shape { by_idx: 0, n_fields: 3, field_of: &[1, 2], used: &[0, 1], names: &names };
        for pass in 0..5 {
            let t0 = Instant::now();
            let mut rows = 0;
            for b in &blocks {
                rows += parse_block(b, &shape).rows;
            }
            let s = t0.elapsed().as_secs_f64();
            println!("pass {pass}: {rows} rows, {:.0} MB/s", body.len() as f64 / s / 1e6);
        }
    }
}
