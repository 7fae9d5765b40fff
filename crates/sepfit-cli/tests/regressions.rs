//! Regression tests of `sepfit fit`: options that used to be ignored or reinterpreted, errors
//! blamed on the wrong thing, and exit statuses that did not tell a failed fit from a good one.

use std::path::PathBuf;
use std::process::{Command, Output};

fn sepfit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sepfit")).args(args).output().expect("run sepfit")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A file of its own for each call (the tests run in parallel).
fn tmp(name: &str, content: &str) -> PathBuf {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("sepfit-regressions-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// Two decays with a background, with curve labels for `--by`.
fn csv() -> String {
    let mut s = String::from("well,t,y\n");
    for w in 0..3 {
        for i in 0..30 {
            let t = i as f64 * 0.3;
            let y = (2.0 + w as f64) * (-1.1 * t).exp() + 0.7 * (-0.2 * t).exp() + 0.05 * ((i * 7 + w) as f64).sin() * 0.01;
            s += &format!("w{w},{t},{y}\n");
        }
    }
    s
}

const MODEL: &str = "y ~ a1*exp(-k1*t) + a2*exp(-k2*t)";

fn fit(extra: &[&str]) -> Output {
    let p = tmp("wells.csv", &csv());
    let mut args = vec!["fit", p.to_str().unwrap(), "--model", MODEL, "--start", "k1=1, k2=0.1"];
    args.extend_from_slice(extra);
    sepfit(&args)
}

fn assert_error(o: &Output, code: i32, needle: &str) {
    assert_eq!(o.status.code(), Some(code), "stdout: {}\nstderr: {}", stdout(o), stderr(o));
    assert!(stderr(o).contains(needle), "expected {needle:?} in:\n{}", stderr(o));
    assert!(!stderr(o).contains("panicked"), "{}", stderr(o));
}

/// `--by` without `--global` used to pool every curve into one fit without a word.
#[test]
fn by_without_global_is_an_error() {
    assert_error(&fit(&["--by", "well"]), 2, "only for a global fit");
}

/// `--global` used to ignore `--plot`, `--method` and `--nonlinear`; a `--by` column used in the
/// formula became a parameter.
#[test]
fn global_refuses_what_it_would_ignore() {
    assert_error(&fit(&["--global", "--by", "well", "--plot", "x.png"]), 2, "--plot is not supported with --global");
    assert_error(&fit(&["--global", "--by", "well", "--method", "full"]), 2, "--method is not supported with --global");
    assert_error(&fit(&["--global", "--by", "well", "--nonlinear", "a1"]), 2, "--nonlinear is not supported with --global");
    let p = tmp("wells.csv", &csv());
    let o = sepfit(&["fit", p.to_str().unwrap(), "--model", "y ~ a*exp(-k*t) + well", "--start", "k=1", "--global", "--by", "well"]);
    assert_error(&o, 2, "`well` is the --by column");
}

/// A bad `--plot` path is found before the fit, and a picture that cannot be drawn no longer
/// throws the report away.
#[test]
fn plot_paths_are_checked_first() {
    let o = fit(&["--plot", "fit.jpeg"]);
    assert_error(&o, 2, "use a file name ending in .png or .svg");
    assert!(stdout(&o).is_empty());
    let o = fit(&["--plot", "/nonexistent-folder/fit.png"]);
    assert_error(&o, 2, "does not exist");
}

/// `--fix K2=0.3` (for `k2`) used to be accepted, leaving `k2` free; bounds on a fixed parameter
/// moved to another one, and with none left the fit panicked.
#[test]
fn names_in_options_are_checked() {
    assert_error(&fit(&["--fix", "K2=0.3"]), 2, "`K2` (--fix) is not a parameter of the model (did you mean `k2`?)");
    assert_error(&fit(&["--fix", "k2=0.3", "--bounds", "0.35<k2<0.45"]), 2, "`k2` is held fixed");
    let p = tmp("wells.csv", &csv());
    let o = sepfit(&["fit", p.to_str().unwrap(), "--model", "y ~ a1*exp(-k1*t)", "--bounds", "0<k1<10", "--fix", "k1=0.5"]);
    assert_error(&o, 2, "`k1` is held fixed");
}

/// `--bounds 'nan<k<5'` used to drop the bound; negative values needed `=`.
#[test]
fn bounds_are_read_as_written() {
    assert_error(&fit(&["--bounds", "nan<k1<5"]), 2, "`nan` in `nan<k1<5` is not a number");
    let o = fit(&["--bounds", "-5<k1<5", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let k1 = v["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "k1").unwrap().clone();
    assert_eq!((k1["lower"].as_f64(), k1["upper"].as_f64()), (Some(-5.0), Some(5.0)));
}

/// A start for a linear parameter is not dropped silently.
#[test]
fn a_start_for_a_linear_parameter_is_noted() {
    let o = fit(&["--start", "a1=3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("note: `a1` enters linearly"), "{}", stdout(&o));
}

/// `log(0)` in the data was blamed on the starting values.
#[test]
fn a_bad_row_is_named() {
    let p = tmp("log0.csv", "t,y\n0,2.1\n1,1.3\n2,0.84\n3,0.55\n4,0.37\n");
    let o = sepfit(&["fit", p.to_str().unwrap(), "--model", "y ~ a*exp(-k*t) + c*log(t)", "--start", "k=1"]);
    assert_error(&o, 2, "at row 1 of the data");
}

/// A degenerate stop (two identical basis functions) exits 1 with status `degenerate`, not
/// "Converged" with exit 0.
#[test]
fn a_degenerate_fit_exits_1() {
    let p = tmp("wells.csv", &csv());
    let o = sepfit(&["fit", p.to_str().unwrap(), "--model", "y ~ a*exp(b*t) + c*exp(b*t)", "--start", "b=-1", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((v["converged"].as_bool(), v["status"].as_str()), (Some(false), Some("degenerate")));
    assert!(stderr(&o).contains("degenerate point"), "{}", stderr(&o));
}

/// A square system (as many observations as parameters) is fitted, without standard errors.
#[test]
fn a_square_system_is_fitted() {
    let p = tmp("rosen.csv", "e1,e2,y\n1,0,0\n0,1,1\n");
    let o = sepfit(&["fit", p.to_str().unwrap(), "--model", "y ~ e1*10*(x1^2 - x2) + e2*x1", "--start", "x1=-1.2, x2=1", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["dof"], 0);
    for p in v["parameters"].as_array().unwrap() {
        assert!((p["value"].as_f64().unwrap() - 1.0).abs() < 1e-8, "{p}");
        assert!(p["std_error"].is_null(), "{p}");
    }
    assert!(v["warnings"][0].as_str().unwrap().contains("no residual degrees of freedom"), "{}", v["warnings"]);
}
