//! `sepfit fit`: one dataset.

use super::CliError;
use crate::cli::FitArgs;

pub fn run(_args: &FitArgs) -> Result<(), CliError> {
    Err(CliError::Other(anyhow::anyhow!("`sepfit fit` is not wired up yet")))
}
