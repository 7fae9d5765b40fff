//! `sepfit fit --loss … --f-scale …`: the report names the loss, the JSON carries it and the
//! estimates of the stored scipy reference (`scripts/robust_reference.py`,
//! `scripts/poisson_reference.py`), a bad `--f-scale` is an error naming the flag, and a
//! negative count under `--loss poisson` an error naming its row. `sepfit batch --loss` fits
//! every curve as `sepfit fit --loss` does, with the minimised objective in a `loss_cost`
//! column (least-squares outputs keep their columns).

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

/// The reference's first Poisson problem written as a long CSV of `k` copies (curve ids
/// `c0`, `c1`, …), optionally with one more curve appended.
fn long_poisson(k: usize, extra: Option<(&str, &[(f64, f64)])>) -> (PathBuf, Value) {
    let (dir, v) = reference("poisson");
    let p = v["problems"][0].clone();
    let src = std::fs::read_to_string(dir.join(p["data"].as_str().unwrap())).unwrap();
    let mut lines = src.lines();
    let header = lines.next().unwrap();
    let body: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
    let mut out = format!("curve,{header}\n");
    for c in 0..k {
        for l in &body {
            out += &format!("c{c},{l}\n");
        }
    }
    if let Some((id, rows)) = extra {
        for (t, y) in rows {
            out += &format!("{id},{t},{y}\n");
        }
    }
    let tmp = std::env::temp_dir().join(format!("sepfit_loss_batch_{}_{k}_{}.csv", std::process::id(), extra.is_some()));
    std::fs::write(&tmp, out).unwrap();
    (tmp, p)
}

/// The batch output as (header, rows), fields split at commas (no quoted fields here but the
/// warnings, which come last but two).
fn read_out(path: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines.map(|l| l.split(',').map(String::from).collect()).collect();
    (header, rows)
}

#[test]
fn batch_poisson_matches_reference_and_reports_deviance() {
    // A sparse curve whose maximum-likelihood model touches 0 at a zero count (the fit cannot
    // converge without a bound): reported not converged, never as a success.
    let t: Vec<f64> = (0..20).map(|i| i as f64 * 0.5).collect();
    let counts = [9.0, 6.0, 5.0, 3.0, 2.0, 2.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    let sparse: Vec<(f64, f64)> = t.iter().copied().zip(counts).collect();
    let (data, p) = long_poisson(3, Some(("sparse", &sparse)));
    let out = std::env::temp_dir().join(format!("sepfit_loss_batch_out_{}.csv", std::process::id()));
    let run = |extra: &[&str]| {
        bin()
            .arg("batch")
            .arg(&data)
            .args(["--model", p["formula"].as_str().unwrap(), "--by", "curve", "--out"])
            .arg(&out)
            .args(start_args(&p))
            .args(extra)
            .output()
            .unwrap()
    };
    let res = run(&["--loss", "poisson"]);
    let err = String::from_utf8_lossy(&res.stderr).to_string();
    // One curve did not converge: exit status 1, said on stderr.
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert!(err.contains("1 of 4 curves did not converge"), "{err}");
    let (header, rows) = read_out(&out);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no {name} in {header:?}"));
    assert_eq!(header[col("rss") + 1], "loss_cost");
    let dev = p["deviance"].as_f64().unwrap();
    for r in &rows[..3] {
        assert_eq!(r[col("status")], "converged", "{r:?}");
        for (k, want) in p["estimates"].as_object().unwrap() {
            let (got, want) = (r[col(k)].parse::<f64>().unwrap(), want.as_f64().unwrap());
            // The batch's default tolerance (1e-12) leaves a few 1e-6 relative.
            assert!((got - want).abs() <= 1e-5 * want.abs(), "{k} = {got}, reference {want}");
        }
        let got: f64 = r[col("loss_cost")].parse().unwrap();
        assert!((got - dev).abs() <= 1e-7 * dev, "deviance {got} vs {dev}");
    }
    let last = &rows[3];
    assert_eq!(last[0], "sparse");
    assert_eq!(last[col("converged")], "false", "{last:?}");
    assert!(last.join(",").contains("Poisson mean"), "{last:?}");

    // With the background bounded at 0 the same curve converges, on the bound.
    let res = run(&["--loss", "poisson", "--bounds", "c>=0"]);
    assert_eq!(res.status.code(), Some(0), "{}", String::from_utf8_lossy(&res.stderr));
    let (_, rows) = read_out(&out);
    assert_eq!(rows[3][col("status")], "converged", "{:?}", rows[3]);
    assert_eq!(rows[3][col("c")].parse::<f64>().unwrap(), 0.0);

    // Least squares keeps its columns; a scale without a robust loss is refused by name.
    let res = run(&[]);
    assert_eq!(res.status.code(), Some(0));
    let (header, _) = read_out(&out);
    assert!(!header.iter().any(|h| h == "loss_cost"), "{header:?}");
    let res = run(&["--loss", "poisson", "--f-scale", "2"]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(err.contains("--f-scale") && err.contains("poisson"), "{err}");
    let _ = std::fs::remove_file(&data);
    let _ = std::fs::remove_file(&out);
}

#[test]
fn batch_robust_loss_equals_single_fit() {
    let (dir, v) = reference("robust");
    let p = &v["problems"][0];
    let src = dir.join(p["data"].as_str().unwrap());
    let fs = p["f_scale"].as_f64().unwrap().to_string();
    let text = std::fs::read_to_string(&src).unwrap();
    let mut lines = text.lines();
    let mut long = format!("curve,{}\n", lines.next().unwrap());
    for l in lines.filter(|l| !l.trim().is_empty()) {
        long += &format!("only,{l}\n");
    }
    let data = std::env::temp_dir().join(format!("sepfit_loss_robust_{}.csv", std::process::id()));
    let out = std::env::temp_dir().join(format!("sepfit_loss_robust_out_{}.csv", std::process::id()));
    std::fs::write(&data, long).unwrap();
    let res = bin()
        .arg("batch")
        .arg(&data)
        .args(["--model", p["formula"].as_str().unwrap(), "--by", "curve", "--tol", "1e-15", "--loss", "soft_l1", "--f-scale", &fs, "--out"])
        .arg(&out)
        .args(start_args(p))
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(0), "{}", String::from_utf8_lossy(&res.stderr));
    let (header, rows) = read_out(&out);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let refit = &p["fits"]["soft_l1"];
    for (k, want) in refit["estimates"].as_object().unwrap() {
        let (got, want) = (rows[0][col(k)].parse::<f64>().unwrap(), want.as_f64().unwrap());
        assert!((got - want).abs() <= 1e-6 * want.abs(), "{k} = {got}, scipy {want}");
    }
    for (k, want) in refit["std_errors"].as_object().unwrap() {
        let (got, want) = (rows[0][col(&format!("{k}_se"))].parse::<f64>().unwrap(), want.as_f64().unwrap());
        assert!((got - want).abs() <= 1e-4 * want, "{k}_se = {got}, scipy {want}");
    }
    let cost: f64 = rows[0][col("loss_cost")].parse().unwrap();
    let want = refit["cost"].as_f64().unwrap();
    assert!((cost - want).abs() <= 1e-8 * want, "cost {cost} vs scipy {want}");
    let _ = std::fs::remove_file(&data);
    let _ = std::fs::remove_file(&out);
}

#[test]
fn poisson_statistics_are_z_and_profiles_are_refused() {
    let (dir, v) = reference("poisson");
    let p = &v["problems"][0];
    let src = dir.join(p["data"].as_str().unwrap());
    let run = |ci: &str| {
        bin().arg("fit").arg(&src).args(["--model", p["formula"].as_str().unwrap()]).args(start_args(p)).args(["--loss", "poisson", "--ci", ci]).output().unwrap()
    };
    // The Fisher information is absolute: z values and normal quantiles.
    let out = run("wald");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("z value") && text.contains("normal quantile 1.9600"), "{text}");
    assert!(text.contains("inverse Fisher information"), "{text}");
    // Profiles are built on the sum of squares: refused for this loss, with the way out.
    let out = run("profile");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not for the poisson loss") && err.contains("--ci wald"), "{err}");
}
