//! R's self-starting model datasets fitted with **no starting values**: the search finds the
//! optimum R's `nls` reaches with its hand-written self-start functions (`SSmicmen`,
//! `SSasympOrig`, `SSlogis`, `SSasymp`, `SSbiexp`). Data and R's results come from
//! `scripts/make_selfstart_reference.R` (stored, so the test runs without R).

use sepfit::named::{NamedOptions, fit_formula};

mod support;
use support::reference::read_dataset as read_csv;

#[test]
fn selfstart_datasets_reach_r_optimum_without_starts() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let refs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("data/reference/selfstart_nls.json")).unwrap()).unwrap();
    let mut bad = Vec::new();
    for (name, r) in refs.as_object().unwrap() {
        let data = read_csv(&root.join(format!("data/selfstart/{name}.csv")));
        let formula = r["formula"].as_str().unwrap();
        let fit = fit_formula(formula, &data, &NamedOptions::default()).unwrap();
        let rss_r = r["rss"].as_f64().unwrap();
        let rel = (fit.fit.rss - rss_r) / rss_r;
        // Estimates by name; the two exponentials of SSbiexp are exchangeable, so they are
        // compared as (amplitude, log-rate) pairs sorted by log-rate.
        let mut want: Vec<(String, f64)> = r["params"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_f64().unwrap())).collect();
        let mut got: Vec<(String, f64)> = want.iter().map(|(k, _)| (k.clone(), fit.param(k).unwrap().value)).collect();
        if name == "indometh1" {
            for v in [&mut want, &mut got] {
                let get = |v: &Vec<(String, f64)>, k: &str| v.iter().find(|(n, _)| n == k).unwrap().1;
                let mut pairs = [(get(v, "lrc1"), get(v, "A1")), (get(v, "lrc2"), get(v, "A2"))];
                pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
                *v = vec![("lrc_slow".into(), pairs[0].0), ("A_slow".into(), pairs[0].1), ("lrc_fast".into(), pairs[1].0), ("A_fast".into(), pairs[1].1)];
            }
        }
        let worst = want.iter().zip(&got).map(|((_, w), (_, g))| ((g - w) / w).abs()).fold(0.0, f64::max);
        println!(
            "{name:<20} converged {:<5} RSS {:.10e} (R {:.10e}, rel {:+.1e}); worst parameter rel. diff {:.1e}; search {} of {} agree",
            fit.fit.converged,
            fit.fit.rss,
            rss_r,
            rel,
            worst,
            fit.search.as_ref().map_or(0, |s| s.agreeing),
            fit.search.as_ref().map_or(0, |s| s.polished)
        );
        if !fit.fit.converged || rel.abs() > 1e-6 || worst > 1e-4 {
            bad.push(format!("{name}: rss {} vs R {rss_r}, params {got:?} vs {want:?}", fit.fit.rss));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
