//! `atan2`, `max`, `min` end to end: a `fit` formula using them recovers the parameters the data
//! were made with (with and without starting values), and `grad` prints and checks their
//! derivatives.

use std::process::Command;

fn sepfit(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sepfit")).args(args).output().expect("run sepfit")
}

#[test]
fn fit_and_grad_with_atan2_max_min() {
    let dir = std::env::temp_dir().join(format!("sepfit-f2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("d.csv");
    let mut s = String::from("t,y\n");
    for i in 0..30 {
        let t = 0.1 + 0.2 * f64::from(i);
        s.push_str(&format!("{t},{}\n", 2.0 * t.atan2(1.5) + (0.7 * t).max(1.0) - (0.5 * t).min(0.8)));
    }
    std::fs::write(&csv, s).unwrap();
    let model = "y ~ a*atan2(t, b) + max(c*t, 1) - min(0.5*t, 0.8)";
    for start in [None, Some("b=1,c=0.5")] {
        let mut args = vec!["fit", "--model", model, csv.to_str().unwrap(), "--format", "json"];
        if let Some(s) = start {
            args.extend(["--start", s]);
        }
        let o = sepfit(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let text = v.to_string();
        for (name, want) in [("a", 2.0), ("b", 1.5), ("c", 0.7)] {
            let est = v["parameters"].as_array().and_then(|ps| ps.iter().find(|p| p["name"] == name)).and_then(|p| p["value"].as_f64());
            let est = est.unwrap_or_else(|| panic!("no estimate of {name} in {text}"));
            assert!((est - want).abs() < 1e-7, "{name} = {est}, want {want} (start {start:?})");
        }
    }
    let o = sepfit(&["grad", "sum(atan2(y, x)) + sum(min(x, 2*y))", "--wrt", "x", "--var", "x: n, y: n", "--at", dir.join("v.json").to_str().unwrap()]);
    assert!(!o.status.success()); // no such file: an error, not a panic
    std::fs::write(dir.join("v.json"), r#"{"x": [0.5, -1.2, 2.0], "y": [0.3, 0.8, -0.4]}"#).unwrap();
    let o = sepfit(&["grad", "sum(atan2(y, x)) + sum(min(x, 2*y))", "--wrt", "x", "--var", "x: n, y: n", "--at", dir.join("v.json").to_str().unwrap(), "--check"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("∇_x J      = step(2·y − x) − y./(y.^2 + x.^2)"), "{out}");
    assert!(out.contains("against central differences") && out.trim_end().ends_with("ok"), "{out}");
}
