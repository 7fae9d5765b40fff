//! Reading the data a formula needs and fitting it by name: what `fit` and `landscape` share.

use crate::args::{named_options, problem_error};
use crate::cli::ParamArgs;
use crate::cmd::CliError;
use crate::data::{CsvData, columns_in_formula, read_csv};
use sepfit::named::{Dataset, NamedFit, NamedOptions, fit_resolved, resolve};

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
    let opts = NamedOptions {
        force_nonlinear: nonlinear.to_vec(),
        method,
        ..named_options(params, max_iter)?
    };
    let (data, _, r, first) = prepare_and_fit_with(path, model, &opts, repeat)?;
    Ok((data, r, first))
}

/// [`prepare_and_fit_repeat`] with the named options given (e.g. with `weights` and
/// `absolute_sigma`, which only `fit` takes); also returns the dataset that was fitted (the
/// columns the formula and the `sigma` or `weights` column refer to), for re-fits such as
/// profile intervals.
pub fn prepare_and_fit_with(
    path: &std::path::Path,
    model: &str,
    opts: &NamedOptions,
    repeat: usize,
) -> Result<(CsvData, Dataset, NamedFit, f64), CliError> {
    let sigma = opts.sigma.as_deref();
    let data = read_csv(path)?;
    // The formula is parsed once, against the columns it can refer to (those named in its
    // text: a wide header costs nothing then); that says which columns must be numbers.
    let mut keep = columns_in_formula(&data.names, model, sigma);
    if let Some(w) = opts.weights.as_deref() {
        keep.extend(columns_in_formula(&data.names, "", Some(w)));
        keep.sort_unstable();
        keep.dedup();
    }
    let data = data.keep_columns(&keep);
    let names = data.names.clone();
    let resolved = resolve(model, &names, opts).map_err(|e| problem_error(e, &data.path))?;
    let m = &resolved.formula;
    let mut used: Vec<&str> = m.used_columns().iter().map(|&i| names[i].as_str()).collect();
    used.extend(sigma);
    used.extend(opts.weights.as_deref());
    data.check_columns(&used)?;
    let dataset = Dataset::new(names, data.columns.clone()).map_err(|e| problem_error(e, &data.path))?;
    let mut times = Vec::with_capacity(repeat.max(1));
    let mut last = None;
    for _ in 0..repeat.max(1) {
        let r = fit_resolved(&resolved, &dataset, opts).map_err(|e| problem_error(e, &data.path))?;
        times.push(r.solve_s);
        last = Some(r);
    }
    let first = times[0];
    let mut r = last.expect("at least one solve");
    times.sort_by(f64::total_cmp);
    r.solve_s = times[times.len() / 2];
    Ok((data, dataset, r, first))
}
