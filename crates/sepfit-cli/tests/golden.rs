//! Recorded outputs of the `sepfit` binary: every command below is run and its exit code,
//! standard output and standard error are compared byte for byte with the file recorded under
//! `tests/golden/` (timings masked). The set covers `fit` (text and JSON) on the bundled data
//! and on all 27 NIST StRD problems from both certified starts, a global fit, `batch` on 20,000
//! curves (the output file's hash), `model`, `grad` and `minimize` on the gradient gallery, and
//! a few error messages.
//!
//! A deliberate change of output is recorded with `SEPFIT_BLESS=1 cargo test -p sepfit-cli
//! --release --test golden`; the diff of `tests/golden/` then shows what changed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// A scratch directory holding every input; commands run inside it with relative paths, so
/// that the outputs do not depend on where the test runs.
fn workdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sepfit-golden-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Replaces the digits of timings: `, 0.231 ms` at the end of the convergence line, `(0.9 ms)`
/// at the end of the search line, and `"solve_s": 0.000231` / `"seconds": …` in JSON.
fn mask_timings(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for line in s.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let nl = &line[body.len()..];
        if let Some(i) = body.find("\"solve_s\": ") {
            let head = &body[..i + "\"solve_s\": ".len()];
            let tail: String = body[head.len()..].chars().skip_while(|c| c.is_ascii_digit() || ".e-+".contains(*c)).collect();
            out += head;
            out += "<t>";
            out += &tail;
        } else if body.starts_with("Search: ") && body.ends_with(" ms)") {
            let cut = body.rfind(" (").map_or(body.len(), |i| i);
            out += &body[..cut];
            out += " (<t> ms)";
        } else if let Some(i) = body.find("\"seconds\": ") {
            let head = &body[..i + "\"seconds\": ".len()];
            let tail: String = body[head.len()..].chars().skip_while(|c| c.is_ascii_digit() || ".e-+".contains(*c)).collect();
            out += head;
            out += "<t>";
            out += &tail;
        } else if body.ends_with(" ms") && body.contains(" after ") {
            let cut = body.rfind(", ").map_or(body.len(), |i| i);
            out += &body[..cut];
            out += ", <t> ms";
        } else {
            out += body;
        }
        out += nl;
    }
    out
}

struct Case {
    name: String,
    args: Vec<String>,
    /// Output file written by the command whose hash and head are recorded too.
    out_file: Option<String>,
    /// Standard error carries timings or throughput (batch): record its first word per line only.
    stderr_words: bool,
}

fn case(name: &str, args: &[&str]) -> Case {
    Case { name: name.into(), args: args.iter().map(|s| s.to_string()).collect(), out_file: None, stderr_words: false }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn run(dir: &Path, c: &Case) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_sepfit")).args(&c.args).current_dir(dir).output().expect("run sepfit");
    let mut s = String::new();
    let shown: Vec<String> =
        c.args.iter().map(|a| if a.contains([' ', '"', '*', '(', ';', '<', '>']) { format!("'{a}'") } else { a.clone() }).collect();
    writeln!(s, "## {}", c.name).unwrap();
    writeln!(s, "$ sepfit {}", shown.join(" ")).unwrap();
    writeln!(s, "exit: {:?}", o.status.code()).unwrap();
    writeln!(s, "--- stdout").unwrap();
    s += &mask_timings(&String::from_utf8_lossy(&o.stdout));
    writeln!(s, "--- stderr").unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    if c.stderr_words {
        for line in err.lines() {
            writeln!(s, "{}", line.split_whitespace().next().unwrap_or("")).unwrap();
        }
    } else {
        s += &mask_timings(&err);
    }
    if let Some(f) = &c.out_file {
        let bytes = std::fs::read(dir.join(f)).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        writeln!(s, "--- {f}: {} bytes, {} lines, fnv1a {:016x}", bytes.len(), text.lines().count(), fnv1a(&bytes)).unwrap();
        for line in text.lines().take(6) {
            writeln!(s, "{line}").unwrap();
        }
    }
    s
}

/// Compares (or with `SEPFIT_BLESS=1` records) every case; reports all differences at once.
fn check(dir: &Path, group: &str, cases: &[Case]) {
    let bless = std::env::var_os("SEPFIT_BLESS").is_some();
    let mut all = String::new();
    for c in cases {
        all += &run(dir, c);
        all += "\n";
    }
    let path = golden_dir().join(format!("{group}.txt"));
    if bless {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, &all).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{} missing; record it with SEPFIT_BLESS=1", path.display()));
    if want != all {
        // Name the first differing case and line.
        let (wl, gl): (Vec<&str>, Vec<&str>) = (want.lines().collect(), all.lines().collect());
        let i = wl.iter().zip(&gl).position(|(a, b)| a != b).unwrap_or(wl.len().min(gl.len()));
        let header = gl[..i.min(gl.len())].iter().rev().find(|l| l.starts_with("$ sepfit")).copied().unwrap_or("");
        panic!(
            "{group}: output differs from {} at line {}\n  in: {header}\n  recorded: {:?}\n  now:      {:?}",
            path.display(),
            i + 1,
            wl.get(i),
            gl.get(i)
        );
    }
}

/// The formulas of the NIST StRD problems, as a user types them.
const NIST: &[(&str, &str)] = &[
    ("Misra1a", "y ~ b1*(1-exp(-b2*x))"),
    ("Chwirut2", "y ~ exp(-b1*x)/(b2+b3*x)"),
    ("Chwirut1", "y ~ exp(-b1*x)/(b2+b3*x)"),
    ("Lanczos3", "y ~ b1*exp(-b2*x) + b3*exp(-b4*x) + b5*exp(-b6*x)"),
    ("Gauss1", "y ~ b1*exp(-b2*x) + b3*exp(-(x-b4)^2/b5^2) + b6*exp(-(x-b7)^2/b8^2)"),
    ("Gauss2", "y ~ b1*exp(-b2*x) + b3*exp(-(x-b4)^2/b5^2) + b6*exp(-(x-b7)^2/b8^2)"),
    ("DanWood", "y ~ b1*x^b2"),
    ("Misra1b", "y ~ b1*(1-(1+b2*x/2)^(-2))"),
    ("Kirby2", "y ~ (b1 + b2*x + b3*x^2)/(1 + b4*x + b5*x^2)"),
    ("Hahn1", "y ~ (b1+b2*x+b3*x^2+b4*x^3)/(1+b5*x+b6*x^2+b7*x^3)"),
    ("Nelson", "log(y) ~ b1 - b2*x1*exp(-b3*x2)"),
    ("MGH17", "y ~ b1 + b2*exp(-x*b4) + b3*exp(-x*b5)"),
    ("Lanczos1", "y ~ b1*exp(-b2*x) + b3*exp(-b4*x) + b5*exp(-b6*x)"),
    ("Lanczos2", "y ~ b1*exp(-b2*x) + b3*exp(-b4*x) + b5*exp(-b6*x)"),
    ("Gauss3", "y ~ b1*exp(-b2*x) + b3*exp(-(x-b4)^2/b5^2) + b6*exp(-(x-b7)^2/b8^2)"),
    ("Misra1c", "y ~ b1*(1-(1+2*b2*x)^(-.5))"),
    ("Misra1d", "y ~ b1*b2*x*((1+b2*x)^(-1))"),
    ("Roszman1", "y ~ b1 - b2*x - atan(b3/(x-b4))/pi"),
    ("ENSO", "y ~ b1 + b2*cos(2*pi*x/12) + b3*sin(2*pi*x/12) + b5*cos(2*pi*x/b4) + b6*sin(2*pi*x/b4) + b8*cos(2*pi*x/b7) + b9*sin(2*pi*x/b7)"),
    ("MGH09", "y ~ b1*(x^2+x*b2) / (x^2+x*b3+b4)"),
    ("Thurber", "y ~ (b1 + b2*x + b3*x^2 + b4*x^3)/(1 + b5*x + b6*x^2 + b7*x^3)"),
    ("BoxBOD", "y ~ b1*(1-exp(-b2*x))"),
    ("Rat42", "y ~ b1/(1+exp(b2-b3*x))"),
    ("MGH10", "y ~ b1*exp(b2/(x+b3))"),
    ("Eckerle4", "y ~ (b1/b2) * exp(-0.5*((x-b3)/b2)^2)"),
    ("Rat43", "y ~ b1 / ((1+exp(b2-b3*x))^(1/b4))"),
    ("Bennett5", "y ~ b1 * (b2+x)^(-1/b3)"),
];

/// A NIST `.dat` file as CSV (header `y,x` or `y,x1,x2`) and the two certified starts as
/// `--start` values for the nonlinear parameters of `formula` (every parameter the formula
/// has; sepfit ignores linear ones only if asked, so starts are given for nonlinear ones).
fn nist_csv(name: &str) -> (String, [Vec<(String, f64)>; 2]) {
    let text = std::fs::read_to_string(repo().join(format!("data/nist/{name}.dat"))).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut starts = [Vec::new(), Vec::new()];
    let mut in_starting = false;
    let mut data_at = None;
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim();
        if t.starts_with("Start 1") {
            in_starting = true;
            continue;
        }
        if in_starting {
            let w: Vec<&str> = t.split_whitespace().collect();
            if w.len() >= 4 && w[0].starts_with('b') && w[1] == "=" {
                starts[0].push((w[0].to_string(), w[2].parse().unwrap()));
                starts[1].push((w[0].to_string(), w[3].parse().unwrap()));
            } else if !starts[0].is_empty() {
                in_starting = false;
            }
        }
        if t.split_whitespace().take(2).eq(["Data:", "y"]) {
            data_at = Some(i + 1);
        }
    }
    let header_cols = lines[data_at.unwrap() - 1].split_whitespace().count() - 1;
    let mut csv = if header_cols == 3 { String::from("y,x1,x2\n") } else { String::from("y,x\n") };
    for l in &lines[data_at.unwrap()..] {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.is_empty() {
            continue;
        }
        csv += &w.join(",");
        csv += "\n";
    }
    (csv, starts)
}

#[test]
fn fit_bundled_and_errors() {
    let dir = workdir("fit");
    std::fs::copy(repo().join("data/seed000.csv"), dir.join("seed000.csv")).unwrap();
    std::fs::copy(repo().join("data/problems/double_exp_1024.csv"), dir.join("double_exp_1024.csv")).unwrap();
    for f in ["puromycin.csv", "puromycin_weighted.csv"] {
        std::fs::copy(repo().join("data/reference/intervals").join(f), dir.join(f)).unwrap();
    }
    let m = "y ~ a1*exp(b1*t1) + a2*exp(b2*t2)";
    let cases = vec![
        case("seed000", &["fit", "seed000.csv", "--model", m, "--start", "b1=0.4, b2=0.6"]),
        case("seed000-json", &["fit", "seed000.csv", "--model", m, "--start", "b1=0.4, b2=0.6", "--format", "json"]),
        case("seed000-kaufman", &["fit", "seed000.csv", "--model", m, "--start", "b1=0.4, b2=0.6", "--method", "kaufman"]),
        case("seed000-full", &["fit", "seed000.csv", "--model", m, "--start", "b1=0.4, b2=0.6", "--method", "full", "--format", "json"]),
        case("seed000-bounds", &["fit", "seed000.csv", "--model", m, "--start", "b1=0.4, b2=0.6", "--bounds", "0<b1<0.42, b2>0"]),
        case("seed000-fix", &["fit", "seed000.csv", "--model", m, "--start", "b1=0.4", "--fix", "b2=1.3"]),
        case("seed000-nonlinear", &["fit", "seed000.csv", "--model", m, "--start", "b1=0.4, b2=0.6, a1=1", "--nonlinear", "a1"]),
        case("seed000-maxiter", &["fit", "seed000.csv", "--model", m, "--start", "b1=0.4, b2=0.6", "--max-iter", "2"]),
        case("seed000-swapped", &["fit", "seed000.csv", "--model", "y ~ a1*exp(b1*t1) + a2*exp(b2*t1)", "--start", "b1=0.1, b2=0.9"]),
        case("double-exp", &["fit", "double_exp_1024.csv", "--model", "y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + c", "--start", "tau1=0.5, tau2=3", "--format", "json"]),
        case("model", &["model", "y ~ a1*exp(-b1*t) + a2*exp(-b2*t) + c", "--columns", "t,y"]),
        case("model-json", &["model", "y ~ a1*exp(-b1*t) + a2*exp(-b2*t) + c", "--columns", "t,y", "--format", "json"]),
        case("model-latex", &["model", "u = exp(-k*t); y ~ a*u + c*u^2", "--columns", "t,y", "--latex"]),
        case("model-data", &["model", m, "--data", "seed000.csv"]),
        case("err-unknown-function", &["model", "y ~ a*exq(-b*t)", "--columns", "t,y"]),
        case("puromycin-ci-profile", &["fit", "puromycin.csv", "--model", "rate ~ Vm*conc/(K + conc)", "--start", "K=0.05", "--ci", "profile"]),
        case("puromycin-weights-ci-wald-json", &["fit", "puromycin_weighted.csv", "--model", "rate ~ Vm*conc/(K + conc)", "--start", "K=0.05", "--weights", "w", "--ci", "wald", "--level", "0.9", "--format", "json"]),
        case("puromycin-absolute-sigma", &["fit", "puromycin_weighted.csv", "--model", "rate ~ Vm*conc/(K + conc)", "--start", "K=0.05", "--weights", "w", "--absolute-sigma", "--ci", "wald"]),
        case("err-absolute-sigma-alone", &["fit", "puromycin.csv", "--model", "rate ~ Vm*conc/(K + conc)", "--start", "K=0.05", "--absolute-sigma"]),
        case("err-level", &["fit", "puromycin.csv", "--model", "rate ~ Vm*conc/(K + conc)", "--start", "K=0.05", "--ci", "wald", "--level", "95"]),
        case("err-missing-start", &["fit", "seed000.csv", "--model", m]),
        case("err-unknown-param", &["fit", "seed000.csv", "--model", m, "--start", "b1=0.4, b2=0.6, c=1"]),
        case("bound-linear", &["fit", "seed000.csv", "--model", m, "--start", "b1=0.4, b2=0.6", "--bounds", "a1>0"]),
        case("err-start-outside", &["fit", "seed000.csv", "--model", m, "--start", "b1=0.4, b2=0.6", "--bounds", "b1>1"]),
        case("err-no-file", &["fit", "nothere.csv", "--model", m, "--start", "b1=0.4, b2=0.6"]),
        case("err-bad-start", &["fit", "seed000.csv", "--model", m, "--start", "b1=x"]),
    ];
    check(&dir, "fit", &cases);
}

#[test]
fn fit_nist() {
    let dir = workdir("nist");
    let mut cases = Vec::new();
    for (name, formula) in NIST {
        let (csv, starts) = nist_csv(name);
        std::fs::write(dir.join(format!("{name}.csv")), csv).unwrap();
        for (s, start) in starts.iter().enumerate() {
            let start: Vec<String> = start.iter().map(|(n, v)| format!("{n}={v}")).collect();
            let file = format!("{name}.csv");
            let start = start.join(", ");
            // Starts for linear parameters are not accepted as such: give only the nonlinear
            // ones, found from `sepfit model`.
            let m = Command::new(env!("CARGO_BIN_EXE_sepfit"))
                .args(["model", formula, "--data", &file, "--format", "json"])
                .current_dir(&dir)
                .output()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&m.stdout).unwrap();
            let nonlinear: Vec<String> = v["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| !p["linear"].as_bool().unwrap())
                .map(|p| p["name"].as_str().unwrap().to_string())
                .collect();
            let start: Vec<&str> = start.split(", ").filter(|a| nonlinear.iter().any(|n| a.starts_with(&format!("{n}=")))).collect();
            let start = start.join(", ");
            let fmt = if s == 0 { "text" } else { "json" };
            cases.push(case(&format!("{name}-{s}"), &["fit", &file, "--model", formula, "--start", &start, "--format", fmt]));
        }
    }
    check(&dir, "nist", &cases);
}

/// Bi-exponential decays with a background, deterministic pseudo-random noise: 20,000 curves
/// of 64 points (long CSV), plus a small wells file for a global fit.
fn flim_csv(curves: usize, points: usize) -> String {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut s = String::with_capacity(curves * points * 24);
    s += "curve,t,y\n";
    for c in 0..curves {
        let tau1 = 0.3 + 0.4 * uniform();
        let tau2 = 2.0 + 2.0 * uniform();
        let f = 0.3 + 0.4 * uniform();
        for i in 0..points {
            let t = i as f64 * 10.0 / points as f64;
            let clean = 1000.0 * (f * (-t / tau1).exp() + (1.0 - f) * (-t / tau2).exp()) + 10.0;
            // Approximately Poisson: Gaussian with variance = mean (sum of 12 uniforms − 6).
            let z: f64 = (0..12).map(|_| uniform()).sum::<f64>() - 6.0;
            let y = (clean + z * clean.sqrt()).round();
            writeln!(s, "c{c},{t},{y}").unwrap();
        }
    }
    s
}

#[test]
fn batch_and_global() {
    let dir = workdir("batch");
    std::fs::write(dir.join("flim.csv"), flim_csv(20_000, 64)).unwrap();
    std::fs::write(dir.join("wells.csv"), flim_csv(6, 40)).unwrap();
    let model = "y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + bg";
    let mut b = case("batch", &["batch", "flim.csv", "--by", "curve", "--model", model, "--start", "tau1=0.5, tau2=3", "--out", "results.csv"]);
    b.out_file = Some("results.csv".into());
    b.stderr_words = true;
    let mut b1 = case("batch-1thread", &["batch", "flim.csv", "--by", "curve", "--model", model, "--start", "tau1=0.5, tau2=3", "--out", "results1.csv", "--threads", "1"]);
    b1.out_file = Some("results1.csv".into());
    b1.stderr_words = true;
    let cases = vec![
        b,
        b1,
        case("global", &["fit", "wells.csv", "--model", "y ~ a1*exp(-t/k1) + a2*exp(-t/k2) + c", "--start", "k1=0.5, k2=3", "--global", "--by", "curve"]),
        case("global-json", &["fit", "wells.csv", "--model", "y ~ a1*exp(-t/k1) + a2*exp(-t/k2) + c", "--start", "k1=0.5, k2=3", "--global", "--by", "curve", "--format", "json"]),
    ];
    check(&dir, "batch", &cases);
}

/// The gradient gallery (`docs/gallery.md`): printed gradients in text and JSON, and values
/// with checks at a few points; `minimize` on two losses.
#[test]
fn grad_and_minimize() {
    let dir = workdir("grad");
    let gallery: &[(&str, &str, &str)] = &[
        ("norm2(x - a)", "x: n, a: n", "x"),
        ("(x - a)/norm2(x - a)", "x: n, a: n", "x"),
        ("norm2(x)^2", "x: n", "x"),
        ("normF(X)^2", "X: m x n", "X"),
        ("normF(X)", "X: m x n", "X"),
        ("normF(X - A)^2", "X: m x n, A: m x n", "X"),
        ("normF(A*X - B)^2", "A: m x n, X: n x p, B: m x p", "X"),
        ("normF(X*A - B)^2", "X: m x n, A: n x p, B: m x p", "X"),
        ("norm2(X*w - y)^2", "X: n x d, w: d, y: n", "w"),
        ("z = sum((X*P).*X, 2); J = sum(z./y - log(z))", "X: n x m, P: m x m, y: n", "P"),
        ("z = exp(-(x - b').^2/2)*a; J = sum(log(1 + exp(z)) - y.*z)", "x: n, b: m, a: m, y: n", "a"),
        ("z = exp(-(x - b').^2/2)*a; J = sum(log(1 + exp(z)) - y.*z)", "x: n, b: m, a: m, y: n", "b"),
        ("z1 = a1*w1*w2; z2 = a2*w1 + a3*w2^2; J = z1*exp(z1*z2)", "a1, a2, a3, w1, w2", "w1"),
        ("sum((log(y) - log(X*w + b)).^2)", "X: n x p, w: p, y: n, b: scalar", "w"),
        ("sum((log(y) - log(X*w + b)).^2)", "X: n x p, w: p, y: n, b: scalar", "b"),
        ("z = X*w + w0; J = sum((y - 1./z).^2)", "X: n x d, w: d, w0: scalar, y: n", "w"),
        ("x^2/4 + 1 - cos(2*pi*x)", "x: scalar", "x"),
        ("0.5*sum(b.*w.^2)", "b: 2, w: 2", "w"),
        ("sum((y - exp(-x*a')*b).^2)", "x: n, a: d, b: d, y: n", "a"),
    ];
    let mut cases = Vec::new();
    for (i, (loss, var, wrt)) in gallery.iter().enumerate() {
        cases.push(case(&format!("g{i}"), &["grad", loss, "--wrt", wrt, "--var", var]));
        cases.push(case(&format!("g{i}-json"), &["grad", loss, "--wrt", wrt, "--var", var, "--format", "json"]));
        cases.push(case(&format!("g{i}-latex"), &["grad", loss, "--wrt", wrt, "--var", var, "--latex"]));
    }
    std::fs::write(dir.join("reg.json"), r#"{"X": [[1, 2], [3, 4], [5, 7], [0.5, -1]], "w": [0.5, -0.25], "y": [1, 2, 2.5, 0.1]}"#).unwrap();
    std::fs::write(dir.join("p7.json"), r#"{"X": [[1, 0.5], [0.2, 1], [1, -1]], "P": [[1, 0.1], [0.1, 2]], "y": [1, 2, 0.5]}"#).unwrap();
    std::fs::write(dir.join("p5.json"), r#"{"x": 0.3}"#).unwrap();
    std::fs::write(dir.join("p1.json"), r#"{"a1": 0.5, "a2": -0.3, "a3": 0.2, "w1": 0.7, "w2": -0.4}"#).unwrap();
    let reg = ["norm2(X*w - y)^2", "--wrt", "w", "--var", "X: n x d, w: d, y: n", "--at", "reg.json"];
    let with = |head: &[&str], extra: &[&str]| -> Vec<String> { head.iter().chain(extra).map(|s| s.to_string()).collect() };
    let mut push = |name: &str, args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        cases.push(case(name, &refs));
    };
    push("reg-at", with(&["grad"], &reg));
    push("reg-at-json", with(&["grad"], &[&reg[..], &["--check", "--format", "json"]].concat()));
    push("p7-at", with(&["grad", "z = sum((X*P).*X, 2); J = sum(z./y - log(z))", "--wrt", "P", "--var", "X: n x m, P: m x m, y: n", "--at", "p7.json", "--check"], &[]));
    push("p1-at", with(&["grad", "z1 = a1*w1*w2; z2 = a2*w1 + a3*w2^2; J = z1*exp(z1*z2)", "--wrt", "w1,w2", "--var", "a1, a2, a3, w1, w2", "--at", "p1.json", "--check", "--format", "json"], &[]));
    push("min-reg", with(&["minimize"], &reg));
    push("min-reg-json", with(&["minimize"], &[&reg[..], &["--format", "json"]].concat()));
    push("min-reg-gd", with(&["minimize"], &[&reg[..], &["--method", "gd", "--max-iter", "50"]].concat()));
    push("min-p5", with(&["minimize", "x^2/4 + 1 - cos(2*pi*x)", "--wrt", "x", "--var", "x: scalar", "--at", "p5.json", "--trace"], &[]));
    push("min-p5-gd", with(&["minimize", "x^2/4 + 1 - cos(2*pi*x)", "--wrt", "x", "--var", "x: scalar", "--at", "p5.json", "--method", "gd", "--step", "0.01", "--format", "json"], &[]));
    push("err-grad-syntax", with(&["grad", "norm2(X*w - y", "--wrt", "w", "--var", "X: n x d, w: d, y: n"], &[]));
    push("err-grad-shape", with(&["grad", "X*y", "--wrt", "y", "--var", "X: n x d, y: n"], &[]));
    check(&dir, "grad", &cases);
}
