//! End-to-end regressions: `grad` on non-finite constants returns (an error), `--check` fails
//! on NaN with exit 1, shared subexpressions print once, `model` says "did you mean `~`?" and
//! notes a misspelt column.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn sepfit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sepfit")).args(args).output().expect("run sepfit")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn non_finite_constants_are_errors_not_hangs() {
    for (f, v) in [("x + 1e308*10/0", "x"), ("1e300*1e300*2/.0", "")] {
        let t0 = Instant::now();
        let mut args = vec!["grad", f, "--wrt", "x"];
        if !v.is_empty() {
            args.extend(["--var", v]);
        }
        let o = sepfit(&args);
        assert!(t0.elapsed() < Duration::from_secs(10));
        assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
        assert!(text(&o).1.contains("overflows to infinity") && text(&o).1.contains('^'), "{}", text(&o).1);
    }
}

#[test]
fn check_fails_on_nan() {
    let dir = std::env::temp_dir().join(format!("sepfit-expr-reg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let at = dir.join("x.json");
    std::fs::write(&at, r#"{"x": [-1, 4]}"#).unwrap();
    for f in ["sum(sqrt(x))", "sqrt(x)"] {
        let o = sepfit(&["grad", f, "--wrt", "x", "--var", "x: n", "--at", at.to_str().unwrap(), "--check"]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
        assert!(out.contains("FAILED") && !out.contains(": ok"), "{out}");
        assert!(err.starts_with("warning: the derivative check failed"), "{err}");
    }
}

#[test]
fn shared_subexpressions_print_once() {
    let mut f = "u1 = sin(x)".to_string();
    for i in 2..=20 {
        f += &format!("; u{i} = sin(u{})*u{}", i - 1, i - 1);
    }
    f += "; u20";
    let o = sepfit(&["grad", &f, "--wrt", "x", "--var", "x"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.len() < 50_000, "{} bytes", out.len());
    assert!(out.contains("  t1 = "), "{out}");
}

#[test]
fn equals_for_tilde() {
    let o = sepfit(&["model", "y = a*exp(-k*t)", "--columns", "t,y"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(err.contains("did you mean `~`?") && err.contains("  |   ^ "), "{err}");
}

#[test]
fn misspelt_column_note() {
    let o = sepfit(&["model", "y ~ a*exp(-k*tt)", "--columns", "t,y"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("note: `tt` is not a data column") && out.contains("did you mean the column `t`?"), "{out}");
}
