//! Reading the data a formula needs and fitting it by name: what `fit` and `landscape` share.

use crate::args::named_options;
use crate::cli::ParamArgs;
use crate::cmd::{CliError, formula_error};
use crate::data::{CsvData, read_csv};
use anyhow::anyhow;
use sepfit::named::{NamedFit, NamedOptions, ProblemError, fit_formula};
use sepfit_expr::ModelFormula;

/// Reads the CSV, checks the columns the model uses, and fits by name.
pub fn prepare_and_fit(
    path: &std::path::Path,
    model: &str,
    params: &ParamArgs,
    nonlinear: &[String],
    method: sepfit::Method,
    max_iter: usize,
) -> Result<(CsvData, NamedFit), CliError> {
    prepare_and_fit_repeat(path, model, params, nonlinear, method, max_iter, 1).map(|(d, r, _)| (d, r))
}

/// [`prepare_and_fit`], solving `repeat` times (at least once) on the data read once; the
/// result's `solve_s` is the median solve time, and the first solve's time is returned too.
pub fn prepare_and_fit_repeat(
    path: &std::path::Path,
    model: &str,
    params: &ParamArgs,
    nonlinear: &[String],
    method: sepfit::Method,
    max_iter: usize,
    repeat: usize,
) -> Result<(CsvData, NamedFit, f64), CliError> {
    let sigma = params.sigma.as_deref();
    let data = read_csv(path)?;
    let cols: Vec<&str> = data.names.iter().map(String::as_str).collect();
    let opts = NamedOptions {
        force_nonlinear: nonlinear.to_vec(),
        method,
        ..named_options(params, max_iter)?
    };
    // Which columns does the model use? Parse once against the header for that.
    let m = ModelFormula::parse(model, &cols).map_err(|d| formula_error(model, d))?;
    let mut used: Vec<&str> = m.used_columns().iter().map(|&i| cols[i]).collect();
    if let Some(s) = sigma {
        used.push(s);
    }
    data.check_columns(&used)?;
    let dataset = data.dataset()?;
    let mut times = Vec::with_capacity(repeat.max(1));
    let mut last = None;
    for _ in 0..repeat.max(1) {
        match fit_formula(model, &dataset, &opts) {
            Ok(r) => {
                times.push(r.solve_s);
                last = Some(r);
            }
            Err(ProblemError::Formula(d)) => return Err(formula_error(model, d)),
            Err(e) => return Err(anyhow!(e).context(format!("cannot fit {}", data.path)).into()),
        }
    }
    let first = times[0];
    let mut r = last.expect("at least one solve");
    times.sort_by(f64::total_cmp);
    r.solve_s = times[times.len() / 2];
    Ok((data, r, first))
}

