//! `sepfit batch` (and the readers of `fit` and `model --data`) on hostile input, found by
//! external testing and fuzzing: resume fingerprints, locks, BOM, quoting, comments,
//! semicolons, non-UTF-8 ids, wide headers, long lines, huge cells, thread counts, outputs
//! that cannot be written, float formatting.
//!
//! `SEPFIT_BIN=/path/to/sepfit` runs these against another binary (e.g. an older build, to
//! see them fail there).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    match std::env::var_os("SEPFIT_BIN") {
        Some(b) => Command::new(b),
        None => Command::new(env!("CARGO_BIN_EXE_sepfit")),
    }
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sepfit-robust-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const MODEL: &str = "y ~ a*exp(-k*t) + c";

/// Long CSV rows of curve `id` (`a*exp(-k*t) + c`, 24 points).
fn curve_rows(id: &str, c: usize) -> String {
    let k = 0.4 + (c % 37) as f64 * 0.03;
    let mut s = String::new();
    for i in 0..24 {
        let t = i as f64 * 0.2;
        let y = 3.0 * (-k * t).exp() + 0.2 + 1e-3 * ((c * 24 + i) as f64 * 0.7).sin();
        s += &format!("{id},{t},{y}\n");
    }
    s
}

fn long_csv(n: usize) -> String {
    let mut s = String::from("curve,t,y\n");
    for c in 0..n {
        s += &curve_rows(&format!("c{c}"), c);
    }
    s
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn batch(data: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut a = vec!["batch", s(data), "--by", "curve", "--model", MODEL, "--start", "k=1", "--out", s(out)];
    a.extend_from_slice(extra);
    bin().args(&a).output().unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a batch and kills it (SIGKILL) once some rows are on disk: an interrupted
/// `.partial` with its fingerprint and a stale lock.
fn interrupted(data: &Path, out: &Path, extra: &[&str]) {
    let partial = PathBuf::from(format!("{}.partial", s(out)));
    let mut a = vec!["batch", s(data), "--by", "curve", "--model", MODEL, "--start", "k=1", "--threads", "1", "--chunk", "16", "--out", s(out)];
    a.extend_from_slice(extra);
    let mut child = bin().args(&a).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let t0 = Instant::now();
    let mut killed = false;
    while t0.elapsed() < Duration::from_secs(60) {
        if std::fs::read(&partial).is_ok_and(|b| b.iter().filter(|&&c| c == b'\n').count() > 100) {
            child.kill().unwrap();
            killed = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.wait();
    assert!(killed, "the batch finished before it could be interrupted");
}

#[test]
fn resume_refuses_other_model_options_or_data() {
    let d = dir("fingerprint");
    let data = d.join("in.csv");
    std::fs::write(&data, long_csv(8000)).unwrap();
    let full = d.join("full.csv");
    let o = batch(&data, &full, &["--threads", "1"]);
    assert!(o.status.success(), "{}", err(&o));
    let out = d.join("out.csv");
    interrupted(&data, &out, &[]);
    let partial = d.join("out.csv.partial");
    let meta = d.join("out.csv.partial.meta");
    let saved = (std::fs::read(&partial).unwrap(), std::fs::read(&meta).expect("a fingerprint beside the .partial"));
    let other_data = d.join("copy.csv");
    std::fs::copy(&data, &other_data).unwrap();
    // Same parameter names (a, c, k), other computation.
    let cases: &[(&str, &[&str], &str)] = &[
        ("y ~ a*exp(-t/k) + c", &[], "formula"),
        (MODEL, &["--start", "k=2"], "--start"),
        (MODEL, &["--bounds", "0<k<10"], "--bounds"),
        (MODEL, &["--fix", "c=0.2"], "--fix"),
        (MODEL, &["--tol", "1e-10"], "--tol"),
        (MODEL, &["--max-iter", "50"], "--max-iter"),
    ];
    for (model, extra, what) in cases {
        std::fs::write(&partial, &saved.0).unwrap();
        std::fs::write(&meta, &saved.1).unwrap();
        let mut a = vec!["batch", s(&data), "--by", "curve", "--model", model, "--out", s(&out), "--resume"];
        if extra.first() != Some(&"--start") {
            a.extend_from_slice(&["--start", "k=1"]);
        }
        a.extend_from_slice(extra);
        let o = bin().args(&a).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{extra:?} must be refused: {}", err(&o));
        assert!(err(&o).contains("cannot resume") && err(&o).contains(what), "{extra:?}: {}", err(&o));
        assert_eq!(std::fs::read(&partial).unwrap(), saved.0, "a refused resume leaves the .partial alone");
    }
    // Another input file (same content, other path).
    let o = batch(&other_data, &out, &["--resume"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("data file"), "{}", err(&o));
    // The same settings resume, byte-identically (the dead process's lock is stale).
    let o = batch(&data, &out, &["--resume"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(err(&o).contains("skipped as already done"), "{}", err(&o));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&full).unwrap());
    assert!(!partial.exists() && !meta.exists() && !d.join("out.csv.partial.lock").exists());
}

#[test]
fn empty_or_header_only_partial_means_nothing_was_done() {
    let d = dir("empty-partial");
    let data = d.join("in.csv");
    std::fs::write(&data, long_csv(30)).unwrap();
    let out = d.join("out.csv");
    let partial = d.join("out.csv.partial");
    for content in [&b""[..], b"curve,a,a_se,c,c_se,k,k_se,rss,dof,iterations,converged,status,termination,warnings,error\n", b"curve,a,a_s"] {
        for resume in [false, true] {
            std::fs::write(&partial, content).unwrap();
            let o = batch(&data, &out, if resume { &["--resume"] } else { &[] });
            assert!(o.status.success(), "{:?} resume={resume}: {}", String::from_utf8_lossy(content), err(&o));
            assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 31);
        }
    }
}

#[test]
fn partial_cut_inside_a_utf8_character_resumes() {
    let d = dir("utf8-cut");
    let data = d.join("in.csv");
    let mut text = String::from("curve,t,y\n");
    for c in 0..8000 {
        text += &curve_rows(&format!("café{c}"), c);
    }
    std::fs::write(&data, text).unwrap();
    let full = d.join("full.csv");
    let o = batch(&data, &full, &["--threads", "1"]);
    assert!(o.status.success(), "{}", err(&o));
    let out = d.join("out.csv");
    interrupted(&data, &out, &[]);
    // Cut the output inside the `é` of row 51's id (a kill in the middle of a write).
    let full_bytes = std::fs::read(&full).unwrap();
    let row51 = full_bytes.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(50).unwrap().0 + 1;
    let cut = row51 + "caf".len() + 1; // first byte of the two-byte `é`
    std::fs::write(d.join("out.csv.partial"), &full_bytes[..cut]).unwrap();
    let o = batch(&data, &out, &["--resume"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(err(&o).contains("fitted 7950 curves (50 skipped"), "{}", err(&o));
    assert_eq!(std::fs::read(&out).unwrap(), full_bytes);
}

#[test]
fn a_running_batch_holds_a_lock_and_stale_locks_are_taken_over() {
    let d = dir("lock");
    let data = d.join("in.csv");
    std::fs::write(&data, long_csv(40_000)).unwrap();
    let full = d.join("full.csv");
    let out = d.join("out.csv");
    let partial = d.join("out.csv.partial");
    let mut first = bin()
        .args(["batch", s(&data), "--by", "curve", "--model", MODEL, "--start", "k=1", "--threads", "1", "--chunk", "16", "--out", s(&out)])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !partial.exists() && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let second = batch(&data, &out, &[]);
    let running = first.try_wait().unwrap().is_none();
    assert!(running, "the first batch finished too soon for this test");
    assert_eq!(second.status.code(), Some(2), "{}", err(&second));
    assert!(err(&second).contains("another sepfit batch (process"), "{}", err(&second));
    assert!(first.wait().unwrap().success());
    let o = batch(&data, &full, &["--threads", "1"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&full).unwrap(), "the second run did not touch the first's output");
    // A lock of a process that is gone is stale.
    std::fs::write(d.join("out.csv.partial.lock"), "4000000000\n").unwrap();
    let o = batch(&data, &out, &["--threads", "1"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(err(&o).contains("stale lock"), "{}", err(&o));
    // One that cannot be read: the user is told what to delete.
    std::fs::write(d.join("out.csv.partial.lock"), "?").unwrap();
    let o = batch(&data, &out, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("out.csv.partial.lock exists") && err(&o).contains("delete that file"), "{}", err(&o));
}

#[test]
fn byte_order_mark_is_not_part_of_the_first_column() {
    let d = dir("bom");
    let data = d.join("in.csv");
    std::fs::write(&data, format!("\u{FEFF}{}", long_csv(5))).unwrap();
    let out = d.join("out.csv");
    let o = batch(&data, &out, &[]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 6);
    // model --data: `t` is a column, not a parameter.
    let tdata = d.join("t.csv");
    std::fs::write(&tdata, "\u{FEFF}t,y\n0,1\n1,0.5\n2,0.25\n3,0.125\n").unwrap();
    let o = bin().args(["model", "y ~ a*exp(-k*t)", "--data", s(&tdata), "--format", "json"]).output().unwrap();
    assert!(o.status.success(), "{}", err(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let params: Vec<&str> = v["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(params, ["a", "k"]);
    let o = bin().args(["fit", s(&tdata), "--model", "y ~ a*exp(-k*t)", "--start", "k=1"]).output().unwrap();
    assert!(o.status.success(), "{}", err(&o));
    // Wide format too.
    let wide = d.join("w.csv");
    std::fs::write(&wide, "\u{FEFF}t,s1\n0,1\n1,0.5\n2,0.25\n3,0.125\n").unwrap();
    let o = bin().args(["batch", s(&wide), "--wide", "--model", "y ~ a*exp(-k*t)", "--start", "k=1", "--out", s(&d.join("w_out.csv"))]).output().unwrap();
    assert!(o.status.success(), "{}", err(&o));
}

#[test]
fn quoted_ids_comments_and_row_numbers() {
    let d = dir("quoted");
    let plain = d.join("plain.csv");
    std::fs::write(&plain, long_csv(4)).unwrap();
    let quoted = d.join("quoted.csv");
    let ids = ["\"a,1\"", "\"say \"\"hi\"\"\"", "\"two\nlines\"", "plain"];
    let mut text = String::from("# exported by a lab instrument\n# second comment\ncurve,t,y\n");
    for (c, id) in ids.iter().enumerate() {
        text += &curve_rows(id, c);
        text += "# between curves\n";
    }
    std::fs::write(&quoted, &text).unwrap();
    let (po, qo) = (d.join("p.csv"), d.join("q.csv"));
    let o = batch(&plain, &po, &[]);
    assert!(o.status.success(), "{}", err(&o));
    let o = batch(&quoted, &qo, &[]);
    assert!(o.status.success(), "{}", err(&o));
    let p = std::fs::read_to_string(&po).unwrap();
    let q = std::fs::read_to_string(&qo).unwrap();
    // Same numbers; the ids as written, quoted where CSV needs it.
    let strip = |l: &str| l.rsplitn(13, ',').take(12).collect::<Vec<_>>().join(",");
    let (pl, ql): (Vec<&str>, Vec<&str>) = (p.lines().collect(), q.split_inclusive('\n').map(|l| l.trim_end()).collect());
    assert_eq!(ql[1].split(',').take(2).collect::<Vec<_>>().join(","), "\"a,1\"");
    assert!(q.contains("\n\"say \"\"hi\"\"\",") && q.contains("\n\"two\nlines\","), "{q}");
    assert_eq!(strip(pl[1]), strip(ql[1]));
    assert_eq!(strip(pl[4]), strip(q.lines().last().unwrap()));
    // A bad cell after comments and a two-line record: data row and file line numbers.
    let bad = text.replacen("plain,0.2,", "plain,0.2,x", 1).replacen("plain,0.4,", "plain,0.4,,", 1);
    std::fs::write(&quoted, &bad).unwrap();
    let o = batch(&quoted, &qo, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let q = std::fs::read_to_string(&qo).unwrap();
    // Curve `plain` starts at data row 73; its second row is on line 104: the header on line 3,
    // curves of 24 rows (the third's on two lines each) and a comment after each.
    let want = format!("data row 74 (line {}), column `y`: `x", 3 + 24 + 1 + 24 + 1 + 48 + 1 + 2);
    assert!(q.lines().last().unwrap().contains(&want), "{want} in {q}");
    assert!(err(&o).contains("1 of 4 curves failed"), "{}", err(&o));
    // The row with an extra field is reported too (after the first bad one, so fix that).
    std::fs::write(&quoted, text.replacen("plain,0.4,", "plain,0.4,,", 1)).unwrap();
    let o = batch(&quoted, &qo, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let last = std::fs::read_to_string(&qo).unwrap().lines().last().unwrap().to_string();
    assert!(last.contains("data row 75: 4 fields but the header has 3 (line 105)"), "{last}");
}

#[test]
fn quoted_ids_across_block_boundaries() {
    let d = dir("quoted-blocks");
    let n = 3000;
    let (mut plain, mut quoted) = (String::from("curve,t,y\n"), String::from("curve,t,y\n"));
    for c in 0..n {
        plain += &curve_rows(&format!("c{c}"), c);
        quoted += &curve_rows(&format!("\"c{c}\""), c);
    }
    assert!(quoted.len() > 2 << 20);
    let (p, q) = (d.join("p.csv"), d.join("q.csv"));
    std::fs::write(&p, plain).unwrap();
    std::fs::write(&q, quoted).unwrap();
    let (po, qo) = (d.join("po.csv"), d.join("qo.csv"));
    assert!(batch(&p, &po, &[]).status.success());
    let o = batch(&q, &qo, &[]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(std::fs::read(&po).unwrap(), std::fs::read(&qo).unwrap());
}

#[test]
fn semicolon_files_get_a_hint() {
    let d = dir("semicolon");
    let data = d.join("in.csv");
    std::fs::write(&data, "curve;t;y\na;0;1,5\na;1;0,75\n").unwrap();
    let o = batch(&data, &d.join("o.csv"), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("semicolon-separated"), "{}", err(&o));
    let o = bin().args(["fit", s(&data), "--model", "y ~ a*t + b"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("semicolon-separated"), "{}", err(&o));
    let o = bin().args(["model", "y ~ a*t + b", "--data", s(&data)]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("semicolon-separated"), "{}", err(&o));
    std::fs::write(&data, "t\ty\n0\t1\n").unwrap();
    let o = bin().args(["fit", s(&data), "--model", "y ~ a*t + b"]).output().unwrap();
    assert!(err(&o).contains("tab-separated"), "{}", err(&o));
}

#[test]
fn ids_are_compared_as_bytes() {
    let d = dir("latin1");
    let data = d.join("in.csv");
    let mut bytes = b"curve,t,y\n".to_vec();
    // `café` and `cafè` in Latin-1: different bytes, the same after lossy decoding.
    for (c, id) in [&b"caf\xe9"[..], b"caf\xe8"].iter().enumerate() {
        for line in curve_rows("ID", c).lines() {
            bytes.extend_from_slice(id);
            bytes.extend_from_slice(line.strip_prefix("ID").unwrap().as_bytes());
            bytes.push(b'\n');
        }
    }
    std::fs::write(&data, bytes).unwrap();
    let out = d.join("out.csv");
    let o = batch(&data, &out, &[]);
    assert!(o.status.success(), "{}", err(&o));
    let result = std::fs::read(&out).unwrap();
    let lines: Vec<&[u8]> = result.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[1].starts_with(b"caf\xe9,") && lines[2].starts_with(b"caf\xe8,"), "the ids as they are in the file");
}

#[test]
fn a_batch_that_fails_leaves_nothing_to_resume() {
    let d = dir("fail-clean");
    let data = d.join("in.csv");
    let mut text = long_csv(3);
    text += &curve_rows("c0", 0);
    std::fs::write(&data, &text).unwrap();
    let out = d.join("out.csv");
    let o = batch(&data, &out, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("curve `c0` are not contiguous: it has data rows 1–24 (lines 2–25) and again data rows 73–96 (lines 74–97)"), "{}", err(&o));
    assert!(!d.join("out.csv.partial").exists() && !d.join("out.csv.partial.lock").exists());
    std::fs::write(&data, long_csv(3)).unwrap();
    let o = batch(&data, &out, &[]);
    assert!(o.status.success(), "the fixed file runs without --resume: {}", err(&o));
}

#[test]
fn outputs_are_checked_before_fitting() {
    let d = dir("outdir");
    let data = d.join("in.csv");
    std::fs::write(&data, long_csv(20)).unwrap();
    let o = batch(&data, &d, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("is a directory") && !err(&o).contains("fitted"), "{}", err(&o));
    let o = batch(&data, &d.join("no/such/dir/out.csv"), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("does not exist") && !err(&o).contains("fitted"), "{}", err(&o));
    // Checked before the data is read, too.
    let o = batch(&d.join("missing.csv"), &d, &[]);
    assert!(err(&o).contains("is a directory"), "{}", err(&o));
}

#[test]
fn absurd_thread_counts_are_capped() {
    let d = dir("threads");
    let data = d.join("in.csv");
    std::fs::write(&data, long_csv(20)).unwrap();
    let out = d.join("out.csv");
    let mut child = bin()
        .args(["batch", s(&data), "--by", "curve", "--model", MODEL, "--start", "k=1", "--threads", "100000", "--out", s(&out)])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("--threads 100000 did not finish in 20 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", err(&o));
    assert!(err(&o).contains("--threads 100000 is more than this machine can use"), "{}", err(&o));
}

#[test]
fn tiny_and_huge_values_are_written_short() {
    let d = dir("floats");
    let data = d.join("in.csv");
    let mut s_ = String::from("curve,t,y\n");
    for i in 0..24 {
        let t = i as f64 * 0.2;
        s_ += &format!("tiny,{t},{:e}\n", 1.9e-200 * (-0.7 * t).exp() * (1.0 + 1e-3 * (i as f64).sin()));
    }
    for i in 0..24 {
        let t = i as f64 * 0.2;
        s_ += &format!("huge,{t},{:e}\n", 3e140 * (-0.7 * t).exp() * (1.0 + 1e-3 * (i as f64).sin()));
    }
    std::fs::write(&data, s_).unwrap();
    let out = d.join("out.csv");
    let o = bin().args(["batch", s(&data), "--by", "curve", "--model", "y ~ a*exp(-k*t)", "--start", "k=1", "--out", s(&out)]).output().unwrap();
    assert!(o.status.code().is_some(), "{}", err(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    for l in text.lines().skip(1) {
        let fields: Vec<&str> = l.split(',').collect();
        for f in &fields[1..6] {
            assert!(f.len() <= 24, "{f} in {l}");
            f.parse::<f64>().unwrap();
        }
        // Integers stay integers.
        assert_eq!(fields[6], "22", "dof: {l}");
        assert!(fields[7].parse::<usize>().is_ok(), "iterations: {l}");
    }
    assert!(text.contains("e-200") && text.contains("e140"), "{text}");
}

#[test]
fn long_lines_and_huge_cells_are_linear_and_not_echoed_whole() {
    let d = dir("long");
    let data = d.join("in.csv");
    let cell = "9".repeat(64 << 20) + "x";
    let mut text = long_csv(2);
    text += &format!("c2,0,{cell}\n");
    text += &curve_rows("c2", 2);
    std::fs::write(&data, &text).unwrap();
    let out = d.join("out.csv");
    let t0 = Instant::now();
    let o = batch(&data, &out, &[]);
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(secs < 5.0, "a 64 MB line took {secs:.1} s");
    let result = std::fs::read_to_string(&out).unwrap();
    assert!(result.len() < 4000, "the output echoes the whole cell: {} bytes", result.len());
    assert!(result.contains(&format!("`{}…`, which is not a number", "9".repeat(40))), "{result}");
    // fit: the message quotes the cell's start only.
    let fdata = d.join("f.csv");
    std::fs::write(&fdata, format!("t,y\n0,1\n1,{cell}\n2,3\n")).unwrap();
    let o = bin().args(["fit", s(&fdata), "--model", "y ~ a*t + b"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stderr.len() < 1000, "{} bytes of error", o.stderr.len());
    assert!(err(&o).contains("data row 2 (line 3), column `y`"), "{}", err(&o));
}

#[test]
fn a_header_of_100000_columns_is_read_in_linear_time() {
    let d = dir("wide-header");
    let data = d.join("in.csv");
    let n = 100_000;
    let names: Vec<String> = (0..n).map(|i| format!("x{i}")).collect();
    let mut text = format!("curve,{},t,y\n", names.join(","));
    for c in 0..3 {
        for line in curve_rows(&format!("c{c}"), c).lines() {
            let (id, rest) = line.split_once(',').unwrap();
            text += &format!("{id},{},{rest}\n", vec!["0"; n].join(","));
        }
    }
    std::fs::write(&data, &text).unwrap();
    let t0 = Instant::now();
    let o = batch(&data, &d.join("out.csv"), &[]);
    assert!(o.status.success(), "{}", err(&o));
    let secs = t0.elapsed().as_secs_f64();
    assert!(secs < 3.0, "batch: {secs:.1} s");
    let t0 = Instant::now();
    let o = bin().args(["model", MODEL, "--data", s(&data)]).output().unwrap();
    assert!(o.status.success(), "{}", err(&o));
    let secs = t0.elapsed().as_secs_f64();
    assert!(secs < 3.0, "model --data: {secs:.1} s");
    assert!(String::from_utf8_lossy(&o.stdout).contains("nonlinear parameters (1, need starting values): k"));
    // A duplicate at the end is found (with a hash map, not by comparing every pair).
    std::fs::write(&data, format!("curve,{},x5\n", names.join(","))).unwrap();
    let t0 = Instant::now();
    let o = bin().args(["model", MODEL, "--data", s(&data)]).output().unwrap();
    assert!(err(&o).contains("duplicate column `x5` (columns 7 and 100002)"), "{}", err(&o));
    assert!(t0.elapsed().as_secs_f64() < 3.0);
}

#[test]
fn wide_format_errors_name_the_cell() {
    let d = dir("wide-errors");
    let data = d.join("w.csv");
    std::fs::write(&data, "# comment\nt,s1,s2\n0,1,1\n1,0.5,\n2,0.25,0.3\n3,0.125,0.1,9\n").unwrap();
    let o = bin().args(["batch", s(&data), "--wide", "--model", "y ~ a*exp(-k*t)", "--start", "k=1", "--out", s(&d.join("o.csv"))]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("data row 4: 4 fields but the header has 3 (line 6)"), "{}", err(&o));
    std::fs::write(&data, "# comment\nt,s1,s2\n0,1,1\n1,0.5,\n2,0.25,0.3\n3,0.125,0.1\n").unwrap();
    let out = d.join("o.csv");
    let o = bin().args(["batch", s(&data), "--wide", "--model", "y ~ a*exp(-k*t)", "--start", "k=1", "--out", s(&out)]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("data row 2 (line 4), column `s2`: an empty cell"), "{text}");
}

#[test]
fn fit_counts_lines_after_comments() {
    let d = dir("fit-lines");
    let data = d.join("in.csv");
    std::fs::write(&data, "# comment\nt,y\n0,1\n1,abc\n2,3\n").unwrap();
    let o = bin().args(["fit", s(&data), "--model", "y ~ a*t + b"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("data row 2 (line 4), column `y`: `abc`, which is not a number"), "{}", err(&o));
}

/// Without starts (`--start auto`, or learned from the first curves) every curve reaches the
/// optimum a good start gives.
#[test]
fn batch_without_starts_and_with_learned_starts() {
    let d = dir("auto");
    let data = d.join("in.csv");
    std::fs::write(&data, long_csv(40)).unwrap();
    let run = |out: &str, start: &str, extra: &[&str]| {
        let out = d.join(out);
        let mut a = vec!["batch", s(&data), "--by", "curve", "--model", MODEL, "--start", start, "--out", s(&out)];
        a.extend_from_slice(extra);
        let o = bin().args(&a).output().unwrap();
        assert!(o.status.success(), "{}", err(&o));
        let text = std::fs::read_to_string(&out).unwrap();
        let mut lines = text.lines();
        let header: Vec<String> = lines.next().unwrap().split(',').map(str::to_string).collect();
        let col = |n: &str| header.iter().position(|h| h == n).unwrap();
        let (rss, k, conv) = (col("rss"), col("k"), col("converged"));
        lines
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[rss].parse::<f64>().unwrap(), f[k].parse::<f64>().unwrap(), f[conv] == "true")
            })
            .collect::<Vec<_>>()
    };
    let given = run("given.csv", "k=1", &[]);
    for (name, extra) in [("auto.csv", &[][..]), ("learned.csv", &["--learn-starts", "3"][..])] {
        let got = run(name, "auto", extra);
        assert_eq!(got.len(), 40);
        for (c, (g, r)) in given.iter().zip(&got).enumerate() {
            assert!(r.2, "{name}: curve {c} did not converge");
            assert!((r.0 - g.0).abs() <= 1e-9 * g.0, "{name}: curve {c}: rss {} vs {}", r.0, g.0);
            assert!((r.1 - g.1).abs() <= 1e-6 * g.1, "{name}: curve {c}: k {} vs {}", r.1, g.1);
        }
    }
}

/// A `.npy` array in, the same bytes out as the same curves in long CSV; bad arrays and a
/// missing --x are clear errors.
#[test]
fn npy_input_gives_the_same_rows_as_csv() {
    let d = dir("npy");
    let (n, len) = (30usize, 24usize);
    let mut vals = Vec::new();
    let mut csv = String::from("curve,t,y\n");
    for c in 0..n {
        for line in curve_rows(&c.to_string(), c).lines() {
            let f: Vec<&str> = line.split(',').collect();
            vals.push(f[2].parse::<f64>().unwrap());
            csv += &format!("{line}\n");
        }
    }
    let mut h = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': (3, 10, {len}), }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(h.len() as u16).to_le_bytes());
    bytes.extend_from_slice(h.as_bytes());
    bytes.extend(vals.iter().flat_map(|v| v.to_le_bytes()));
    let (npy, csv_path) = (d.join("in.npy"), d.join("in.csv"));
    std::fs::write(&npy, &bytes).unwrap();
    std::fs::write(&csv_path, csv).unwrap();
    let (o1, o2) = (d.join("a.csv"), d.join("b.csv"));
    let o = bin().args(["batch", s(&npy), "--model", MODEL, "--x", "t=0:0.2", "--start", "k=1", "--out", s(&o1)]).output().unwrap();
    assert!(o.status.success(), "{}", err(&o));
    let o = batch(&csv_path, &o2, &[]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(std::fs::read(&o1).unwrap(), std::fs::read(&o2).unwrap());
    let fails = |extra: &[&str], needle: &str| {
        let mut a = vec!["batch", s(&npy), "--model", MODEL, "--start", "k=1", "--out", s(&o1)];
        a.extend_from_slice(extra);
        let o = bin().args(&a).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", err(&o));
        assert!(err(&o).contains(needle), "expected {needle:?} in {}", err(&o));
    };
    fails(&[], "--x");
    fails(&["--x", "t"], "should look like");
    fails(&["--x", "y=0:1"], "not `y`");
    fails(&["--x", "t=0:0.2", "--wide"], "drop --by/--wide");
    std::fs::write(&npy, &bytes[..bytes.len() - 5]).unwrap();
    fails(&["--x", "t=0:0.2"], "cut short");
}
