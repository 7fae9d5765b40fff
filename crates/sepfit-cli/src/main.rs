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

fn main() -> ExitCode {
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
