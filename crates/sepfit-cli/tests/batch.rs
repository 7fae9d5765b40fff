//! `sepfit batch` and `sepfit fit --global`: bad curves mixed with good ones, wide format,
//! resume after the process is killed mid-run.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sepfit"))
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sepfit-batch-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Long CSV of `n` curves `a*exp(-k*t) + c` with 48 points each; k varies by curve.
fn long_csv(n: usize, bad: &[usize]) -> String {
    let mut s = String::from("curve,t,y\n");
    for c in 0..n {
        let k = 0.4 + (c % 37) as f64 * 0.03;
        for i in 0..48 {
            let t = i as f64 * 0.1;
            let y = 3.0 * (-k * t).exp() + 0.2 + 1e-3 * ((c * 48 + i) as f64 * 0.7).sin();
            if bad.contains(&c) && i == 5 {
                s += &format!("c{c},{t},oops\n");
            } else {
                s += &format!("c{c},{t},{y}\n");
            }
        }
    }
    s
}

const MODEL: &str = "y ~ a*exp(-k*t) + c";

#[test]
fn bad_curves_are_recorded_and_the_rest_go_on() {
    let d = dir("bad");
    let data = d.join("in.csv");
    std::fs::write(&data, long_csv(50, &[3, 17])).unwrap();
    let out = d.join("out.csv");
    let o = bin()
        .args(["batch", data.to_str().unwrap(), "--by", "curve", "--model", MODEL, "--start", "k=1", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    // Exit 1: the batch ran to the end, but not every curve could be fitted.
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("fitted 50 curves") && err.contains("2 failed"), "{err}");
    assert!(err.contains("warning: 2 of 50 curves failed"), "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "curve,a,a_se,c,c_se,k,k_se,rss,dof,iterations,converged,status,termination,warnings,error");
    assert_eq!(lines.len(), 51);
    for (c, l) in lines[1..].iter().enumerate() {
        assert!(l.starts_with(&format!("c{c},")), "order: {l}");
        if c == 3 || c == 17 {
            assert!(l.contains("`oops`, which is not a number"), "{l}");
            assert!(l.contains(",false,error,error,,"), "{l}");
        } else {
            let k: f64 = l.split(',').nth(5).unwrap().parse().unwrap();
            let want = 0.4 + (c % 37) as f64 * 0.03;
            assert!((k - want).abs() < 1e-3, "curve {c}: k = {k}");
            assert!(l.contains(",true,converged,"), "{l}");
        }
    }
    assert!(!d.join("out.csv.partial").exists());
}

/// More than a block of the reader (1 MiB): curves that straddle block boundaries are joined,
/// in order, and a bad cell in a straddling curve is reported with its data row number.
#[test]
fn curves_across_block_boundaries() {
    let d = dir("blocks");
    let data = d.join("in.csv");
    let n = 1500;
    let text = long_csv(n, &[]);
    // The curve whose rows cross the first 1 MiB boundary, and a row of it after the boundary.
    let header_len = text.find('\n').unwrap() + 1;
    let boundary = header_len + (1 << 20);
    let (row_at, _) = text[header_len..].match_indices('\n').enumerate().find(|(_, (i, _))| header_len + i >= boundary).unwrap();
    let bad_row = row_at + 2; // a data row (1-based) just after the boundary
    let bad_curve = (bad_row - 1) / 48;
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let t = lines[bad_row].split(',').nth(1).unwrap().to_string();
    lines[bad_row] = format!("c{bad_curve},{t},oops");
    std::fs::write(&data, lines.join("\n") + "\n").unwrap();
    assert!(std::fs::metadata(&data).unwrap().len() > 2 << 20, "the file spans several blocks");
    let out = d.join("out.csv");
    let o = bin()
        .args(["batch", data.to_str().unwrap(), "--by", "curve", "--model", MODEL, "--start", "k=1", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let result = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<&str> = result.lines().skip(1).collect();
    assert_eq!(rows.len(), n);
    for (c, l) in rows.iter().enumerate() {
        assert!(l.starts_with(&format!("c{c},")), "order: {l}");
        if c == bad_curve {
            // Data row N is line N + 1 of the file (after the header).
            assert!(l.contains(&format!("data row {bad_row} (line {}), column `y`: `oops`, which is not a number", bad_row + 1)), "{l}");
        } else {
            let k: f64 = l.split(',').nth(5).unwrap().parse().unwrap();
            let want = 0.4 + (c % 37) as f64 * 0.03;
            assert!((k - want).abs() < 1e-3, "curve {c}: k = {k}");
            let dof: usize = l.split(',').nth(8).unwrap().parse().unwrap();
            assert_eq!(dof, 48 - 3, "curve {c} has all its 48 rows: {l}");
        }
    }
}

#[test]
fn wide_format() {
    let d = dir("wide");
    let data = d.join("wide.csv");
    let mut s = String::from("t,s1,s2,s3\n");
    for i in 0..40 {
        let t = i as f64 * 0.1;
        s += &format!("{t},{},{},{}\n", 2.0 * (-0.5 * t).exp(), 1.0 * (-1.5 * t).exp(), if i == 3 { "x".into() } else { format!("{}", (-t).exp()) });
    }
    std::fs::write(&data, s).unwrap();
    let out = d.join("out.csv");
    let o = bin()
        .args(["batch", data.to_str().unwrap(), "--wide", "--model", "y ~ a*exp(-k*t)", "--start", "k=1", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    let k = |l: &str| l.split(',').nth(3).unwrap().parse::<f64>().unwrap();
    assert!(lines[1].starts_with("s1,") && (k(lines[1]) - 0.5).abs() < 1e-9);
    assert!(lines[2].starts_with("s2,") && (k(lines[2]) - 1.5).abs() < 1e-9);
    assert!(lines[3].starts_with("s3,") && lines[3].contains("data row 4 (line 5), column `s3`: `x`, which is not a number"), "{}", lines[3]);
}

#[test]
fn resume_after_kill_matches_an_uninterrupted_run() {
    let d = dir("resume");
    let data = d.join("in.csv");
    std::fs::write(&data, long_csv(6000, &[10])).unwrap();
    let full = d.join("full.csv");
    let args = |out: &PathBuf| -> Vec<String> {
        ["batch", data.to_str().unwrap(), "--by", "curve", "--model", MODEL, "--start", "k=1", "--threads", "1", "--chunk", "64", "--out", out.to_str().unwrap()]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let o = bin().args(args(&full)).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "curve 10 fails: {}", String::from_utf8_lossy(&o.stderr));
    // Interrupted run: kill it once some results are on disk.
    let out = d.join("out.csv");
    let partial = d.join("out.csv.partial");
    let mut child = bin().args(args(&out)).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let t0 = Instant::now();
    let mut killed = false;
    while t0.elapsed() < Duration::from_secs(60) {
        if std::fs::read_to_string(&partial).is_ok_and(|s| s.lines().count() > 200) {
            child.kill().unwrap();
            killed = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.wait();
    assert!(killed, "the batch finished before it could be interrupted");
    assert!(!out.exists(), "the final file must not exist after an interruption");
    // Simulate a kill in the middle of a write: a truncated last line.
    let mut s = std::fs::read_to_string(&partial).unwrap();
    s.push_str("c9999,1.2");
    std::fs::write(&partial, s).unwrap();
    // Without --resume it refuses to clobber the partial output.
    let o = bin().args(args(&out)).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume"));
    let mut a = args(&out);
    a.push("--resume".into());
    let o = bin().args(&a).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("skipped as already done"), "{err}");
    // The failed curve was in the part done before the kill: still counted.
    assert!(err.contains("1 of 6000 curves failed"), "{err}");
    assert!(!partial.exists());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), std::fs::read_to_string(&full).unwrap());
}

#[test]
fn unsorted_curves_are_an_error() {
    let d = dir("unsorted");
    let data = d.join("in.csv");
    std::fs::write(&data, "curve,t,y\na,0,1\na,1,0.5\nb,0,1\na,2,0.25\n").unwrap();
    let o = bin()
        .args(["batch", data.to_str().unwrap(), "--by", "curve", "--model", MODEL, "--start", "k=1", "--out", d.join("o.csv").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("the rows of curve `a` are not contiguous: it has data rows 1–2 (lines 2–3) and again data row 4 (line 5); the rows of a curve must be contiguous"),
        "{err}"
    );
    assert!(!d.join("o.csv.partial").exists(), "a failed batch leaves no .partial behind");
}

#[test]
fn global_fit_from_the_command_line() {
    let d = dir("global");
    let data = d.join("g.csv");
    let mut s = String::from("well,t,y\n");
    for (c, (a1, a2)) in [(2.0, 0.5), (1.0, 1.5), (0.3, 2.2)].iter().enumerate() {
        for i in 0..80 {
            let t = i as f64 * 0.07;
            s += &format!("w{c},{t},{}\n", a1 * (-1.7f64 * t).exp() + a2 * (-0.35f64 * t).exp());
        }
    }
    std::fs::write(&data, s).unwrap();
    let o = bin()
        .args(["fit", data.to_str().unwrap(), "--model", "y ~ a1*exp(-k1*t) + a2*exp(-k2*t)", "--start", "k1=2.5, k2=0.2", "--global", "--by", "well", "--format", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["n_curves"], 3);
    assert_eq!(v["converged"], true);
    let k1 = v["parameters"][0]["value"].as_f64().unwrap();
    assert!((k1 - 1.7).abs() < 1e-9, "{k1}");
    assert!((v["curves"][2]["linear"]["a2"].as_f64().unwrap() - 2.2).abs() < 1e-9);
}
