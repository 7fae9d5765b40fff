//! `sepfit fit --loss … --f-scale …`: the report names the loss, the JSON carries it and the
//! estimates of the stored scipy reference (`scripts/robust_reference.py`,
//! `scripts/poisson_reference.py`), a bad `--f-scale` is an error naming the flag, and a
//! negative count under `--loss poisson` an error naming its row.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sepfit"))
}

fn reference(sub: &str) -> (PathBuf, Value) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/reference").join(sub);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap();
    (dir, v)
}

fn start_args(p: &Value) -> Vec<String> {
    let s: Vec<String> = p["start"].as_object().unwrap().iter().map(|(k, v)| format!("{k}={}", v.as_f64().unwrap())).collect();
    vec!["--start".into(), s.join(",")]
}

fn param(v: &Value, name: &str) -> f64 {
    v["parameters"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()["value"].as_f64().unwrap()
}

#[test]
fn robust_loss_is_named_and_matches_reference() {
    let (dir, v) = reference("robust");
    let p = &v["problems"][0];
    let data = dir.join(p["data"].as_str().unwrap());
    let fs = p["f_scale"].as_f64().unwrap().to_string();
    let base = |fmt: &str| {
        let mut c = bin();
        c.arg("fit").arg(&data).args(["--model", p["formula"].as_str().unwrap()]).args(start_args(p));
        c.args(["--loss", "huber", "--f-scale", &fs, "--format", fmt]);
        c.output().unwrap()
    };
    let out = base("text");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.lines().any(|l| l.starts_with("loss") && l.contains("huber")), "{text}");
    let out = base("json");
    assert_eq!(out.status.code(), Some(0));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["loss"], "huber");
    for (k, want) in p["fits"]["huber"]["estimates"].as_object().unwrap() {
        let (got, want) = (param(&j, k), want.as_f64().unwrap());
        assert!((got - want).abs() <= 1e-6 * want.abs(), "{k} = {got}, scipy {want}");
    }
}

#[test]
fn bad_f_scale_names_the_flag() {
    let (dir, v) = reference("robust");
    let p = &v["problems"][0];
    for bad in ["0", "-1", "nan", "inf"] {
        let out = bin()
            .arg("fit")
            .arg(dir.join(p["data"].as_str().unwrap()))
            .args(["--model", p["formula"].as_str().unwrap()])
            .args(start_args(p))
            .args(["--loss", "cauchy", "--f-scale", bad])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{bad}");
        assert!(err.contains("--f-scale"), "{bad}: {err}");
    }
}

#[test]
fn unknown_loss_is_an_error() {
    let (dir, v) = reference("robust");
    let p = &v["problems"][0];
    let out = bin().arg("fit").arg(dir.join(p["data"].as_str().unwrap())).args(["--model", p["formula"].as_str().unwrap()]).args(start_args(p)).args(["--loss", "l2"]).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--loss"));
}

#[test]
fn poisson_reports_deviance_and_rejects_negative_counts() {
    let (dir, v) = reference("poisson");
    let p = &v["problems"][0];
    let src = dir.join(p["data"].as_str().unwrap());
    let out = bin().arg("fit").arg(&src).args(["--model", p["formula"].as_str().unwrap()]).args(start_args(p)).args(["--loss", "poisson"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.lines().any(|l| l.starts_with("loss") && l.contains("poisson") && l.contains("deviance")), "{text}");

    // Row 3 of the data (the header is not a row) made negative.
    let mut lines: Vec<String> = std::fs::read_to_string(&src).unwrap().lines().map(String::from).collect();
    let x = lines[3].split(',').next().unwrap().to_string();
    lines[3] = format!("{x},-2");
    let tmp = std::env::temp_dir().join(format!("sepfit_loss_negative_{}.csv", std::process::id()));
    std::fs::write(&tmp, lines.join("\n") + "\n").unwrap();
    let out = bin().arg("fit").arg(&tmp).args(["--model", p["formula"].as_str().unwrap()]).args(start_args(p)).args(["--loss", "poisson"]).output().unwrap();
    let _ = std::fs::remove_file(&tmp);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(err.contains("row 3") && err.contains("-2"), "{err}");
}
