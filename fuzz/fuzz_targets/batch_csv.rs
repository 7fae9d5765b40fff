//! The batch CSV reader: bytes → a CSV file → `sepfit batch`, in process.
//!
//! The reader lives in the binary crate `sepfit-cli` (no library to link against), so this
//! target compiles the CLI's own source files as modules (`#[path]`) and calls
//! `cmd::batch::run` exactly as `main` does. Oracles: no panic (a panic would be exit code 101
//! of the binary), no hang (libFuzzer's `-timeout`), and a run that reports success (exit 0 or
//! 1) has renamed its output into place.
//!
//! Input: byte 0 chooses the layout and options, the rest is the file. With bit 3 set the rest
//! is split at the first NUL byte into the data file and an interrupted run's `OUT.partial`,
//! and the run resumes from it.
#![no_main]
#![allow(dead_code, unused_imports)]

#[path = "../../crates/sepfit-cli/src/args.rs"]
mod args;
#[path = "../../crates/sepfit-cli/src/arrays.rs"]
mod arrays;
#[path = "../../crates/sepfit-cli/src/cli.rs"]
mod cli;
#[path = "../../crates/sepfit-cli/src/cmd/mod.rs"]
mod cmd;
#[path = "../../crates/sepfit-cli/src/data.rs"]
mod data;
#[path = "../../crates/sepfit-cli/src/fitting.rs"]
mod fitting;
#[path = "../../crates/sepfit-cli/src/npy.rs"]
mod npy;
#[path = "../../crates/sepfit-cli/src/scan.rs"]
mod scan;
#[path = "../../crates/sepfit-cli/src/values.rs"]
mod values;

use clap::Parser;
use std::path::PathBuf;

const MODELS: [&str; 4] = ["y ~ a*exp(-k*t) + c", "y ~ a + b*t", "y ~ a*exp(-t/tau1) + b*exp(-t/tau2) + bg", "y ~ a*t^k"];
const STARTS: [&str; 4] = ["k=1", "", "tau1=0.5, tau2=3", "k=1"];

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("sepfit-fuzz-batch-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&d);
    d
}

/// Runs `sepfit batch` on the bytes as `main` would; returns the exit code it would give.
pub fn run_batch(data: &[u8]) -> Option<u8> {
    let (&head, rest) = data.split_first()?;
    let d = dir();
    for entry in std::fs::read_dir(&d).ok()?.flatten() {
        let _ = std::fs::remove_file(entry.path());
    }
    let (csv, partial) = if head & 8 != 0 {
        match rest.iter().position(|&b| b == 0) {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, Some(&b""[..])),
        }
    } else {
        (rest, None)
    };
    let data_path = d.join("data.csv");
    let out = d.join("out.csv");
    std::fs::write(&data_path, csv).ok()?;
    if let Some(p) = partial {
        std::fs::write(d.join("out.csv.partial"), p).ok()?;
    }
    let k = ((head >> 1) & 3) as usize;
    let wide = head & 1 != 0;
    let mut argv: Vec<String> = vec!["sepfit".into(), "batch".into(), data_path.display().to_string()];
    let model = MODELS[k].to_string();
    argv.extend(["--model".into(), model]);
    if !STARTS[k].is_empty() {
        argv.extend(["--start".into(), STARTS[k].into()]);
    }
    if wide {
        argv.push("--wide".into());
    } else {
        argv.extend(["--by".into(), "curve".into()]);
    }
    argv.extend(["--out".into(), out.display().to_string()]);
    argv.extend(["--threads".into(), if head & 16 != 0 { "2" } else { "1" }.into()]);
    if partial.is_some() {
        argv.push("--resume".into());
    }
    if head & 32 != 0 {
        argv.extend(["--chunk".into(), "2".into()]);
    }
    if head & 64 != 0 {
        argv.extend(["--max-iter".into(), "3".into()]);
    }
    let cli = cli::Cli::try_parse_from(&argv).expect("the fuzz target's own arguments parse");
    let cli::Command::Batch(args) = cli.command else { unreachable!() };
    let code = match cmd::batch::run(&args) {
        Ok(()) => 0,
        Err(cmd::CliError::Unsuccessful(_)) => 1,
        Err(_) => 2,
    };
    if code < 2 {
        assert!(out.exists(), "batch reported exit {code} but wrote no {}", out.display());
        assert!(!d.join("out.csv.partial").exists(), "batch reported exit {code} but left out.csv.partial");
    }
    Some(code)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = run_batch(data);
});
