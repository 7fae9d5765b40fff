//! End-to-end tests of the `sepfit` binary: outputs on good input, clear errors (exit code 2,
//! no panic) on bad input.

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

fn tmp(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sepfit-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// Noise-free double exponential plus constant.
fn dexp_csv() -> String {
    let mut s = String::from("t,y,s\n");
    for i in 0..40 {
        let t = i as f64 * 0.25;
        let y = 2.0 * (-1.3 * t).exp() + 1.0 * (-0.2 * t).exp() + 0.1;
        s += &format!("{t},{y},0.01\n");
    }
    s
}

fn assert_clean_error(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(o));
    let e = stderr(o);
    assert!(e.contains(needle), "expected {needle:?} in stderr:\n{e}");
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn model_json_has_the_documented_fields() {
    let o = sepfit(&["model", "y ~ a1*exp(-b1*t) + a2*exp(-b2*t) + c", "--columns", "t,y", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["response"], "y");
    let params: Vec<(String, bool)> = v["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p["linear"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        params,
        [("a1", true), ("a2", true), ("c", true), ("b1", false), ("b2", false)]
            .map(|(n, l)| (n.to_string(), l))
    );
    assert_eq!(v["basis"], serde_json::json!(["exp(-b1*t)", "exp(-b2*t)", "1"]));
    assert_eq!(v["derivatives"]["b1"], serde_json::json!(["-t*exp(-b1*t)", "0", "0"]));
    assert_eq!(v["derivatives"]["b2"], serde_json::json!(["0", "-t*exp(-b2*t)", "0"]));
}

#[test]
fn model_text_and_latex() {
    let o = sepfit(&["model", "y ~ b1*(1-exp(-b2*x))", "--columns", "x,y"]);
    let s = stdout(&o);
    assert!(s.contains("φ1 = 1 - exp(-b2*x)"), "{s}");
    assert!(s.contains("∂φ1/∂b2 = x*exp(-b2*x)"), "{s}");
    let o = sepfit(&["model", "y ~ b1*(1-exp(-b2*x))", "--columns", "x,y", "--latex"]);
    assert!(stdout(&o).contains("x\\,e^{-b_{2}\\,x}"), "{}", stdout(&o));
}

#[test]
fn formula_errors_show_a_caret_and_exit_2() {
    let o = sepfit(&["model", "y ~ a*exq(-b*t)", "--columns", "t,y"]);
    assert_clean_error(&o, "did you mean `exp`?");
    assert!(stderr(&o).contains("      ^^^ unknown function"), "{}", stderr(&o));
}

#[test]
fn fit_recovers_noise_free_parameters_and_reports_json() {
    let p = tmp("dexp.csv", &dexp_csv());
    let o = sepfit(&[
        "fit",
        p.to_str().unwrap(),
        "--model",
        "y ~ a1*exp(-b1*t) + a2*exp(-b2*t) + c",
        "--start",
        "b1=1, b2=0.1",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["converged"], true);
    for key in ["termination", "rss", "dof", "residual_std_error", "iterations"] {
        assert!(!v[key].is_null(), "missing {key}");
    }
    assert!(v["timing"]["solve_s"].as_f64().unwrap() > 0.0);
    let get = |n: &str| {
        v["parameters"].as_array().unwrap().iter().find(|p| p["name"] == n).unwrap()["value"].as_f64().unwrap()
    };
    for (n, want) in [("a1", 2.0), ("b1", 1.3), ("a2", 1.0), ("b2", 0.2), ("c", 0.1)] {
        assert!((get(n) - want).abs() < 1e-8, "{n} = {} want {want}", get(n));
    }
    assert_eq!(v["dof"], 35);
    assert!(v["rss"].as_f64().unwrap() < 1e-20);
}

#[test]
fn fit_text_report_names_linear_parameters_and_termination() {
    let p = tmp("dexp2.csv", &dexp_csv());
    let o = sepfit(&["fit", p.to_str().unwrap(), "--model", "y ~ a1*exp(-b1*t) + a2*exp(-b2*t) + c", "--start", "b1=1, b2=0.1", "--sigma", "s"]);
    let s = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(s.contains("linear      a1, a2, c (eliminated by variable projection)"), "{s}");
    assert!(s.contains("Converged after"), "{s}");
    assert!(s.contains("Termination: "), "{s}");
    assert!(s.contains("degrees of freedom"), "{s}");
}

#[test]
fn fixed_parameters_and_bounds() {
    let p = tmp("dexp3.csv", &dexp_csv());
    let o = sepfit(&[
        "fit", p.to_str().unwrap(), "--model", "y ~ a1*exp(-b1*t) + a2*exp(-b2*t) + c",
        "--start", "b1=1", "--fix", "b2=0.2", "--format", "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let b2 = v["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "b2").unwrap().clone();
    assert_eq!(b2["fixed"], true);
    assert_eq!(b2["value"], 0.2);
    // The optimum b1 = 1.3 lies outside [0.5, 1]: the fit ends at the bound and says so.
    let o = sepfit(&[
        "fit", p.to_str().unwrap(), "--model", "y ~ a1*exp(-b1*t) + a2*exp(-b2*t) + c",
        "--start", "b1=0.8, b2=0.3", "--bounds", "0.5<b1<1, 0.01<b2<1",
    ]);
    let s = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(s.contains("AT UPPER BOUND"), "{s}");
    assert!(s.contains("`b1` ended at its upper bound"), "{s}");
}

#[test]
fn bad_inputs_get_clear_errors() {
    let model = "y ~ a1*exp(-b1*t) + c";
    let run = |file: &PathBuf, extra: &[&str]| {
        let mut args = vec!["fit", file.to_str().unwrap(), "--model", model, "--start", "b1=1"];
        args.extend_from_slice(extra);
        sepfit(&args)
    };
    let missing = std::env::temp_dir().join("sepfit-no-such-file.csv");
    assert_clean_error(&run(&missing, &[]), "cannot open data file");
    let p = tmp("text.csv", "t,y\n0,1\n1,abc\n2,3\n3,4\n4,5\n");
    assert_clean_error(&run(&p, &[]), "data row 2 (line 3), column `y`: `abc`, which is not a number");
    let p = tmp("nan.csv", "t,y\n0,1\n1,2\n2,NaN\n3,4\n4,5\n");
    assert_clean_error(&run(&p, &[]), "data row 3 (line 4), column `y`: the non-finite value `NaN`");
    let p = tmp("inf.csv", "t,y\n0,1\ninf,2\n2,3\n3,4\n4,5\n");
    assert_clean_error(&run(&p, &[]), "column `t`: the non-finite value `inf`");
    let p = tmp("few.csv", "t,y\n0,1\n1,2\n");
    assert_clean_error(&run(&p, &[]), "2 observations are fewer than the 3 parameters");
    let p = tmp("dup.csv", "t,y,t\n0,1,0\n1,2,1\n");
    assert_clean_error(&run(&p, &[]), "duplicate column `t`");
    let p = tmp("ok.csv", &dexp_csv());
    assert_clean_error(&run(&p, &["--sigma", "err"]), "no column `err`");
    let p2 = tmp("resp.csv", "t,z\n0,1\n1,2\n2,3\n3,4\n4,5\n");
    assert_clean_error(&run(&p2, &[]), "`y` in the response is not a data column");
    let p3 = tmp("ragged.csv", "t,y\n0,1\n1\n2,3\n");
    assert_clean_error(&run(&p3, &[]), "data row 2: 1 fields but the header has 2");
    let p4 = tmp("empty.csv", "");
    assert_clean_error(&run(&p4, &[]), "empty");
    // No start: the nonlinear parameters are searched for, and the report says so.
    let o = sepfit(&["fit", p.to_str().unwrap(), "--model", "y ~ a1*exp(-b1*t) + a2*exp(-b2*t) + c"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("note: no starting value for `b1`, `b2`: found by a search"), "{out}");
    assert!(out.contains("b1         ±[") && out.contains("(magnitude with the unit of t^-1)"), "{out}");
    // A start for a name that is not a parameter.
    assert_clean_error(&run(&p, &["--start", "b1=1, k=2"]), "`k` (--start) is not a parameter of the model");
    // A parameter that shadows a column.
    assert_clean_error(&run(&p, &["--start", "t=1"]), "parameter `t` shadows the data column `t`");
    // Bounds on a linear parameter are no error: it stays linear (bounded least squares), and
    // here the amplitude 2 ends on its upper bound (crates/sepfit-cli/tests/linear_bounds.rs).
    let o = run(&p, &["--bounds", "0<a1<1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("AT UPPER BOUND"), "{}", String::from_utf8_lossy(&o.stdout));
    // Start outside bounds.
    assert_clean_error(&run(&p, &["--bounds", "2<b1<3"]), "outside its bounds");
    assert_clean_error(&run(&p, &["--start", "b1=x"]), "not a number");
}

#[test]
fn non_convergence_is_reported_not_an_error() {
    let p = tmp("dexp4.csv", &dexp_csv());
    let o = sepfit(&[
        "fit", p.to_str().unwrap(), "--model", "y ~ a1*exp(-b1*t) + a2*exp(-b2*t) + c",
        "--start", "b1=1, b2=0.1", "--max-iter", "1", "--format", "json",
    ]);
    // The report is printed and the exit status says the fit ran but did not converge.
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("did not converge"), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["converged"], false);
    assert_eq!(v["status"], "not_converged");
    assert_eq!(v["termination"], "MaxIterations");
}

fn png_size(path: &std::path::Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&b[12..16], b"IHDR");
    let w = u32::from_be_bytes(b[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(b[20..24].try_into().unwrap());
    (w, h)
}

fn svg_check(path: &std::path::Path, w: u32, h: u32) {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(s.starts_with("<svg"), "not an SVG");
    assert!(s.contains(&format!("width=\"{w}\"")) && s.contains(&format!("height=\"{h}\"")), "size");
    assert!(s.trim_end().ends_with("</svg>"));
    assert!(s.len() < 3_000_000, "SVG is {} bytes", s.len());
}

#[test]
fn landscape_writes_png_and_svg_of_the_requested_size() {
    let p = tmp("land.csv", &dexp_csv());
    let dir = p.parent().unwrap();
    let png = dir.join("land.png");
    let o = sepfit(&[
        "landscape", p.to_str().unwrap(), "--model", "y ~ a1*exp(-b1*t) + a2*exp(-b2*t) + c",
        "--params", "b1,b2", "--start", "b1=1, b2=0.1", "--grid", "60", "--path", "both",
        "--out", png.to_str().unwrap(), "--size", "640x480",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(png_size(&png), (640, 480));
    let svg = dir.join("land.svg");
    let o = sepfit(&[
        "landscape", p.to_str().unwrap(), "--model", "y ~ a1*exp(-b1*t) + a2*exp(-b2*t) + c",
        "--params", "b2,b1", "--start", "b1=1, b2=0.1", "--range", "b1=0.5:2, b2=0.05:0.5",
        "--out", svg.to_str().unwrap(), "--size", "700x500",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    svg_check(&svg, 700, 500);
}

#[test]
fn fit_plot_for_one_and_several_independent_variables() {
    let p = tmp("fitplot.csv", &dexp_csv());
    let dir = p.parent().unwrap();
    let png = dir.join("fit.png");
    let o = sepfit(&["fit", p.to_str().unwrap(), "--model", "y ~ a1*exp(-b1*t) + a2*exp(-b2*t) + c", "--start", "b1=1, b2=0.1", "--plot", png.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(png_size(&png), (900, 700));
    // Two independent variables: observed against fitted.
    let mut s = String::from("u,v,y\n");
    for i in 0..30 {
        let (u, v) = (i as f64 * 0.1, (i % 7) as f64 * 0.3);
        s += &format!("{u},{v},{}\n", 2.0 * (-0.5 * u).exp() + 0.7 * (-1.5 * v).exp());
    }
    let p2 = tmp("multi.csv", &s);
    let svg = dir.join("multi.svg");
    let o = sepfit(&["fit", p2.to_str().unwrap(), "--model", "y ~ a*exp(-k*u) + b*exp(-m*v)", "--start", "k=1, m=1", "--plot", svg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    svg_check(&svg, 900, 700);
    assert!(std::fs::read_to_string(&svg).unwrap().contains("fitted y"));
}

#[test]
fn bad_landscape_requests_get_clear_errors() {
    let p = tmp("land2.csv", &dexp_csv());
    let out = p.parent().unwrap().join("bad.png");
    let run = |extra: &[&str]| {
        let mut a = vec!["landscape", p.to_str().unwrap(), "--model", "y ~ a1*exp(-b1*t) + a2*exp(-b2*t) + c", "--start", "b1=1, b2=0.1", "--out", out.to_str().unwrap()];
        a.extend_from_slice(extra);
        sepfit(&a)
    };
    assert_clean_error(&run(&["--params", "b1,k"]), "`k` is not a nonlinear parameter of the model; choose from: b1, b2");
    assert_clean_error(&run(&["--params", "b1,a1"]), "`a1` enters linearly and is eliminated by variable projection");
    assert_clean_error(&run(&["--params", "b1,b2", "--range", "b1=2:1"]), "is empty");
    assert_clean_error(&run(&["--params", "b1,b1"]), "two different nonlinear parameters");
    let gif = p.parent().unwrap().join("bad.gif");
    let o = sepfit(&["landscape", p.to_str().unwrap(), "--model", "y ~ a1*exp(-b1*t) + a2*exp(-b2*t) + c", "--start", "b1=1, b2=0.1", "--params", "b1,b2", "--out", gif.to_str().unwrap()]);
    assert_clean_error(&o, "use a file name ending in .png or .svg");
}
