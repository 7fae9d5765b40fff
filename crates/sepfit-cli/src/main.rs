//! The `sepfit` command-line tool.

mod args;
mod arrays;
mod cli;
mod cmd;
mod data;
mod fitting;
mod npy;
mod scan;
mod values;

use clap::Parser;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: `sepfit batch` allocates per curve on one thread
/// and frees on another, where glibc's arenas lock and consolidate.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its number in `mimalloc.h`, v2 and v3 alike; the crate
/// exposes no constants for options, by design).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory is returned to the system only after 10 s unused (mimalloc's default is 1 s):
/// `sepfit batch` frees each round's curves and allocates the next round's as fast, and with the
/// default the same pages went back and were faulted in (and zeroed) again. Measured on 100,000
/// long-CSV curves: 2,126 → 324 page faults (`perf stat -e page-faults`); peak memory 136 MB.
fn keep_freed_pages() {
    // SAFETY: called first thing in `main`, before any other thread exists (options are not
    // thread safe); the option number is mimalloc's own.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10_000) }
}

fn main() -> ExitCode {
    keep_freed_pages();
    let args = cli::Cli::parse();
    let result = match args.command {
        cli::Command::Model(a) => cmd::model::run(&a),
        cli::Command::Fit(a) => cmd::fit::run(&a),
        cli::Command::Landscape(a) => cmd::landscape::run(&a),
        cli::Command::Batch(a) => cmd::batch::run(&a),
        cli::Command::Grad(a) => cmd::grad::run(&a),
        cli::Command::Minimize(a) => cmd::minimize::run(&a),
        cli::Command::Compare(a) => cmd::compare::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(cmd::CliError::Formula { source, diagnostic }) => {
            eprint!("{}", diagnostic.render(&source));
            ExitCode::from(2)
        }
        Err(cmd::CliError::Unsuccessful(msg)) => {
            eprintln!("warning: {msg}");
            ExitCode::from(1)
        }
        Err(cmd::CliError::Other(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
