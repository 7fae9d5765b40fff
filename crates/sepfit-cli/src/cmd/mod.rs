//! Subcommands.

pub mod batch;
pub mod fit;
pub mod grad;
pub mod landscape;
pub mod minimize;
pub mod model;

use sepfit_expr::Diagnostic;

/// An error to report to the user.
pub enum CliError {
    /// A formula error, rendered with its source.
    Formula { source: String, diagnostic: Diagnostic },
    /// Anything else.
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
