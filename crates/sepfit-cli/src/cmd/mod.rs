//! Subcommands.

pub mod batch;
pub mod compare;
pub mod fit;
pub mod grad;
pub mod landscape;
pub mod minimize;
pub mod model;

use sepfit_expr::Diagnostic;

/// An error to report to the user, or a run whose result is not a success.
///
/// Exit codes (documented in the README): 0 the job ran and succeeded (a fit converged);
/// 1 it ran but did not succeed — a fit that did not converge or stopped at a degenerate
/// point, a loss unbounded below, a batch with failed curves — and its report says why;
/// 2 it could not run (bad input, options, formula or data).
pub enum CliError {
    /// A formula error, rendered with its source (exit 2).
    Formula { source: String, diagnostic: Diagnostic },
    /// The job ran and its report has been printed, but it did not succeed (exit 1); the
    /// message goes to standard error as a `warning:` line.
    Unsuccessful(String),
    /// Anything else (exit 2).
    Other(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError::Other(e.into())
    }
}

/// Wraps a formula diagnostic with its source text.
pub fn formula_error(source: &str, diagnostic: Diagnostic) -> CliError {
    CliError::Formula { source: source.to_string(), diagnostic }
}

/// Writes to standard output; a closed pipe (`sepfit ... | head`) is not an error.
pub fn emit(text: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Other(e.into())),
        _ => Ok(()),
    }
}
