//! `sepfit compare` against R's `anova(nls(...), nls(...))` (`scripts/compare_reference.R`,
//! `data/reference/compare/anova_R.csv`), and its refusals.

use std::path::PathBuf;
use std::process::{Command, Output};

fn sepfit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sepfit")).args(args).output().expect("run sepfit")
}

fn data(file: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/reference/intervals").join(file).display().to_string()
}

const MM: &str = "rate ~ Vm*conc/(K + conc)";
const MM_LIN: &str = "rate ~ Vm*conc/(K + conc) + b*conc";

#[test]
fn json_matches_r() {
    // R: anova(m1, m2) on Puromycin (treated), F and Pr(>F) (anova_R.csv).
    let o = sepfit(&["compare", &data("puromycin.csv"), "--model", MM, "--model", MM_LIN, "--start", "K=0.05", "--format", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs();
    assert!(rel(v["f"].as_f64().unwrap(), 1.439_820_642_982_241) < 1e-6, "{v}");
    assert!(rel(v["p_value"].as_f64().unwrap(), 0.260_800_812_715_341_3) < 1e-6, "{v}");
    assert!(rel(v["small"]["rss"].as_f64().unwrap(), 1.1954488144393586e3) < 1e-9);
    assert_eq!((v["small"]["res_df"].as_u64(), v["big"]["res_df"].as_u64(), v["df"].as_u64()), (Some(10), Some(9), Some(1)));
}

#[test]
fn text_table_and_weights() {
    // Starts are optional; a start naming a parameter of one model only goes to that model.
    let o = sepfit(&["compare", &data("puromycin_weighted.csv"), "--model", MM, "--model", MM_LIN, "--weights", "w", "--start", "K=0.05"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    for needle in ["Res.Df", "Pr(>F)", "Model 2: rate ~ Vm*conc/(K + conc) + b*conc", "1.9240510", "1.988e-1"] {
        assert!(out.contains(needle), "{needle} not in\n{out}");
    }
}

#[test]
fn refusals_are_clean_errors() {
    let cases: &[(&[&str], &str)] = &[
        (&["--model", MM_LIN, "--model", MM], "give the smaller model first"),
        (&["--model", MM], "give it twice"),
        (&["--model", MM, "--model", MM_LIN, "--model", MM_LIN], "give it twice"),
        (&["--model", MM, "--model", "demand ~ Vm*conc/(K + conc) + b*conc"], "demand"),
        (&["--model", MM, "--model", MM_LIN, "--start", "Kx=1"], "did you mean `K`"),
        (&["--model", MM, "--model", "conc ~ a*rate + b*rate^2 + c"], "different responses"),
    ];
    for (args, needle) in cases {
        let path = data("puromycin.csv");
        let mut all = vec!["compare", path.as_str()];
        all.extend_from_slice(args);
        let o = sepfit(&all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle) && !err.contains("panicked"), "{args:?}: {err}");
    }
}
