//! `--plot` with confidence and prediction bands and `--profile-plot` (R's
//! `plot(profile(nls_fit))`) on Puromycin: files written, flags checked before the fit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PUROMYCIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/reference/intervals/puromycin.csv");
const MODEL: &str = "rate ~ Vm*conc/(K + conc)";

fn sepfit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sepfit")).args(args).output().expect("run sepfit")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A folder of its own for each call (the tests run in parallel).
fn tmp_dir() -> PathBuf {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("sepfit-plots-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn puromycin(extra: &[&str]) -> Output {
    let mut a = vec!["fit", PUROMYCIN, "--model", MODEL, "--start", "K=0.05"];
    a.extend_from_slice(extra);
    sepfit(&a)
}

fn non_empty(p: &Path) -> Vec<u8> {
    let b = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert!(b.len() > 1000, "{} has {} bytes", p.display(), b.len());
    b
}

#[test]
fn plot_and_profile_plot_write_pictures() {
    let dir = tmp_dir();
    let (png, svg) = (dir.join("x.png"), dir.join("x.svg"));
    let o = puromycin(&["--ci", "profile", "--plot", png.to_str().unwrap(), "--profile-plot", svg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("note:"), "{}", stderr(&o));
    assert!(non_empty(&png).starts_with(b"\x89PNG"));
    let text = String::from_utf8(non_empty(&svg)).unwrap();
    assert!(text.contains("<svg") && text.contains("95% interval") && text.contains("Vm"), "profile svg");
    // The printed intervals are those without --profile-plot.
    let plain = puromycin(&["--ci", "profile"]);
    let untimed = |o: &Output| String::from_utf8_lossy(&o.stdout).lines().filter(|l| !l.starts_with("Converged after")).collect::<Vec<_>>().join("\n");
    assert_eq!(untimed(&o), untimed(&plain));
}

#[test]
fn plot_draws_the_bands_at_the_level() {
    let dir = tmp_dir();
    let svg = dir.join("fit.svg");
    let o = puromycin(&["--plot", svg.to_str().unwrap(), "--level", "0.9"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(non_empty(&svg)).unwrap();
    assert!(text.contains("90% confidence band") && text.contains("90% prediction band"), "legend entries");
}

#[test]
fn profile_plot_needs_ci_profile() {
    let dir = tmp_dir();
    let svg = dir.join("x.svg");
    for extra in [&[][..], &["--ci", "wald"][..]] {
        let mut a = vec!["--profile-plot", svg.to_str().unwrap()];
        a.extend_from_slice(extra);
        let o = puromycin(&a);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains("--profile-plot") && e.contains("--ci profile"), "{e}");
        assert!(o.stdout.is_empty(), "refused before the fit");
        assert!(!svg.exists());
    }
    let o = puromycin(&["--ci", "profile", "--profile-plot", dir.join("x.jpeg").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--profile-plot") && stderr(&o).contains(".png or .svg"), "{}", stderr(&o));
}

/// No residual degrees of freedom: the curve is drawn, the bands skipped with a note.
#[test]
fn plot_without_degrees_of_freedom_skips_the_bands() {
    let dir = tmp_dir();
    let data = dir.join("three.csv");
    std::fs::write(&data, "x,y\n0,1\n1,2.5\n2,2\n").unwrap();
    let png = dir.join("three.png");
    let o = sepfit(&["fit", data.to_str().unwrap(), "--model", "y ~ a + b*x + c*x^2", "--plot", png.to_str().unwrap()]);
    let e = stderr(&o);
    assert!(e.contains("note: --plot") && e.contains("no confidence or prediction band"), "{e}");
    non_empty(&png);
}
