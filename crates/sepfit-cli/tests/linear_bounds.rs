//! `sepfit fit --bounds` on a linear parameter: it stays linear (bounded least squares inside
//! variable projection), the report says it ended on its bound, the fit converges (exit 0),
//! and the JSON carries the bound.

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sepfit"))
}

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/reference/nnls/exp_drift.csv")
}

const MODEL: &str = "y ~ a*exp(-k*t) + c + d*t";

#[test]
fn linear_parameter_on_its_bound_is_reported() {
    // Unbounded, the drift d is negative.
    let out = bin().arg("fit").arg(data()).args(["--model", MODEL, "--start", "k=0.5", "--format", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d_free = v["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "d").unwrap()["value"].as_f64().unwrap();
    assert!(d_free < 0.0, "{d_free}");

    let out = bin().arg("fit").arg(data()).args(["--model", MODEL, "--start", "k=0.5", "--bounds", "d>=0"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let d_line = text.lines().find(|l| l.starts_with("d ")).unwrap_or_else(|| panic!("{text}"));
    assert!(d_line.contains("linear") && d_line.contains("AT LOWER BOUND") && d_line.contains("bounds [0.0000000, inf]"), "{d_line}");
    assert!(text.contains("`d` ended at its lower bound"), "{text}");

    let out = bin().arg("fit").arg(data()).args(["--model", MODEL, "--start", "k=0.5", "--bounds", "d>=0", "--format", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let params = v["parameters"].as_array().unwrap();
    let d = params.iter().find(|p| p["name"] == "d").unwrap();
    assert_eq!(d["value"].as_f64(), Some(0.0));
    assert_eq!(d["linear"], true);
    assert_eq!(d["at_bound"], "lower");
    assert_eq!(d["lower"].as_f64(), Some(0.0));
    let c = params.iter().find(|p| p["name"] == "c").unwrap();
    assert!(c["at_bound"].is_null(), "{c}");
    // The same optimum with --method full.
    let out = bin()
        .arg("fit")
        .arg(data())
        .args(["--model", MODEL, "--start", "k=0.5", "--bounds", "d>=0", "--method", "full", "--format", "json"])
        .output()
        .unwrap();
    let w: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rss = |v: &serde_json::Value| v["rss"].as_f64().unwrap();
    assert!((rss(&w) - rss(&v)).abs() <= 1e-9 * rss(&v), "{} vs {}", rss(&w), rss(&v));
}

#[test]
fn empty_linear_bounds_are_an_error() {
    let out = bin().arg("fit").arg(data()).args(["--model", MODEL, "--start", "k=0.5", "--bounds", "2<d<1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`d`") && err.contains("no room"), "{err}");
}
