//! The batch CSV fuzz target's seed inputs (`fuzz/corpus/batch_csv/seed-*`), run through the
//! real `sepfit batch` binary on stable: every one must end with exit code 0, 1 or 2 (never a
//! panic, 101) within a few seconds. The input format is the fuzz target's
//! (`fuzz/fuzz_targets/batch_csv.rs`): byte 0 chooses the layout and options (bit 0 `--wide`,
//! bits 1–2 the model, bit 3 `--resume` with the rest split at the first NUL into the data and
//! `OUT.partial`, bit 4 two threads, bit 5 `--chunk 2`, bit 6 `--max-iter 3`), the rest is the file.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MODELS: [&str; 4] = ["y ~ a*exp(-k*t) + c", "y ~ a + b*t", "y ~ a*exp(-t/tau1) + b*exp(-t/tau2) + bg", "y ~ a*t^k"];
const STARTS: [&str; 4] = ["k=1", "", "tau1=0.5, tau2=3", "k=1"];

fn run(name: &str, input: &[u8]) {
    let (&head, rest) = input.split_first().expect("empty seed");
    let d = std::env::temp_dir().join(format!("sepfit-fuzzseed-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let (csv, partial) = if head & 8 != 0 {
        match rest.iter().position(|&b| b == 0) {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, Some(&b""[..])),
        }
    } else {
        (rest, None)
    };
    let data = d.join("data.csv");
    let out = d.join("out.csv");
    std::fs::write(&data, csv).unwrap();
    if let Some(p) = partial {
        std::fs::write(d.join("out.csv.partial"), p).unwrap();
    }
    let k = ((head >> 1) & 3) as usize;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sepfit"));
    cmd.arg("batch").arg(&data).args(["--model", MODELS[k]]);
    if !STARTS[k].is_empty() {
        cmd.args(["--start", STARTS[k]]);
    }
    if head & 1 != 0 {
        cmd.arg("--wide");
    } else {
        cmd.args(["--by", "curve"]);
    }
    cmd.arg("--out").arg(&out).args(["--threads", if head & 16 != 0 { "2" } else { "1" }]);
    if partial.is_some() {
        cmd.arg("--resume");
    }
    if head & 32 != 0 {
        cmd.args(["--chunk", "2"]);
    }
    if head & 64 != 0 {
        cmd.args(["--max-iter", "3"]);
    }
    let t0 = Instant::now();
    let o = cmd.stdin(Stdio::null()).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    let code = o.status.code();
    assert!(matches!(code, Some(0..=2)), "{name}: exit {code:?}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    assert!(t0.elapsed() < Duration::from_secs(20), "{name}: took {:?}", t0.elapsed());
    if matches!(code, Some(0 | 1)) {
        assert!(out.exists() && !d.join("out.csv.partial").exists(), "{name}: exit {code:?} without the output in place");
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn batch_fuzz_seeds_exit_cleanly() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/batch_csv");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("seed-") {
            run(&name, &std::fs::read(&p).unwrap());
            n += 1;
        }
    }
    assert!(n >= 5, "only {n} seeds in {}", dir.display());
}
