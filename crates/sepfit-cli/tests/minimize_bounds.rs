//! `sepfit minimize --bounds` (L-BFGS with projection onto the box) against SciPy's solutions
//! of the same problems (`scripts/minimize_bounds_reference.py`, stored under
//! `data/reference/minimize_bounds/`): non-negative least squares (`scipy.optimize.nnls`), a
//! box-constrained logistic regression and an ill-conditioned box quadratic (L-BFGS-B).

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn sepfit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sepfit")).args(args).output().expect("run sepfit")
}

fn reference(name: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../data/reference/minimize_bounds/{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn at_file(name: &str, values: &Value) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sepfit-minimize-bounds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{name}.json"));
    std::fs::write(&p, values.to_string()).unwrap();
    p
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn bounded_minima_equal_scipy() {
    for name in ["nnls", "box_logistic", "box_quadratic"] {
        let r = reference(name);
        let (loss, var, wrt, bounds) = (r["loss"].as_str().unwrap(), r["var"].as_str().unwrap(), r["wrt"].as_str().unwrap(), r["bounds"].as_str().unwrap());
        let at = at_file(name, &r["values"]);
        let o = sepfit(&["minimize", loss, "--wrt", wrt, "--var", var, "--at", at.to_str().unwrap(), "--bounds", bounds, "--format", "json"]);
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        let out: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(out["converged"], true, "{name}");
        assert_eq!(out["method"], "lbfgs with bounds (projected)");
        let (got, want) = (floats(&out["solution"][wrt]), floats(&r["solution"][wrt]));
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "{name}: {wrt}[{i}] = {g}, SciPy {w}");
        }
        // Entries SciPy puts on a bound are exactly on it here (the projection).
        let (lo, hi) = match name {
            "nnls" => (0.0, f64::INFINITY),
            "box_logistic" => (-0.5, 0.5),
            _ => (0.0, 1.0),
        };
        let on_bound = want.iter().filter(|w| **w == lo || **w == hi).count();
        assert!(on_bound > 0, "{name}: the reference has an active bound");
        for (g, w) in got.iter().zip(&want) {
            if *w == lo || *w == hi {
                assert_eq!(g, w, "{name}: an active bound is held exactly");
            }
            assert!(*g >= lo && *g <= hi, "{name}: {g} outside [{lo}, {hi}]");
        }
    }
}

#[test]
fn bounds_that_do_not_apply_are_errors() {
    let r = reference("nnls");
    let at = at_file("nnls-errors", &r["values"]);
    let at = at.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut a = vec!["minimize", "norm2(X*w - y)^2", "--wrt", "w", "--var", "X: n x d, w: d, y: n", "--at", at];
        a.extend_from_slice(extra);
        sepfit(&a)
    };
    for (extra, needle) in [
        (&["--bounds", "y>=0"][..], "not minimised over"),
        (&["--bounds", "w>=0", "--method", "gd"][..], "--method lbfgs"),
        (&["--bounds", "w>=0", "--bounds", "w<=1"][..], "more than once"),
        (&["--bounds", "2<w<1"][..], "w"),
    ] {
        let o = run(extra);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stderr).contains(needle), "{extra:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    // A loss unbounded below inside the box (w ≥ 0, 0 − sum(w)) is not a success: exit 1.
    let o = run(&["--bounds", "w>=0"]);
    assert!(o.status.success());
    let o = sepfit(&["minimize", "0 - sum(w)", "--wrt", "w", "--var", "w: d", "--at", at, "--bounds", "w>=0"]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unbounded"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = sepfit(&["minimize", "0 - sum(w)", "--wrt", "w", "--var", "w: d", "--at", at, "--bounds", "0<=w<=3"]);
    assert!(o.status.success(), "bounded on both sides: the corner w = 3");
    // A start outside the bounds is moved onto them, with a note.
    let mut v = r["values"].clone();
    v["w"] = serde_json::json!([-1.0, 0.5, 0.5, 0.5, 0.5, 0.5]);
    let at2 = at_file("nnls-outside", &v);
    let o = sepfit(&["minimize", "norm2(X*w - y)^2", "--wrt", "w", "--var", "X: n x d, w: d, y: n", "--at", at2.to_str().unwrap(), "--bounds", "w>=0"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("outside its --bounds"));
}
