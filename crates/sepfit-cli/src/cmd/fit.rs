//! `sepfit fit`: one dataset.

use super::{CliError, emit, formula_error};
use crate::cli::{CiMethod, FitArgs, Format, Method};
use crate::data::{CsvData, read_csv, read_labels};
use anyhow::anyhow;
use sepfit::named::{NamedFit, NamedOptions};
use sepfit::{GlobalSummary, Outcome, Summary};
use sepfit_expr::ModelFormula;

pub fn run(args: &FitArgs) -> Result<(), CliError> {
    if args.global {
        return run_global(args);
    }
    if let Some(by) = &args.by {
        return Err(anyhow!(
            "--by {by} groups the rows into curves only for a global fit: add --global to share the nonlinear parameters across curves, or use `sepfit batch --by {by}` to fit each curve on its own (without --by, all rows are one dataset)"
        )
        .into());
    }
    if let Some(out) = &args.plot {
        check_plot_path(out, "--plot")?;
    }
    if let Some(out) = &args.profile_plot {
        if args.ci != Some(CiMethod::Profile) {
            return Err(anyhow!(
                "--profile-plot {} draws the profiles traced for the profile intervals: add --ci profile (or drop --profile-plot)",
                out.display()
            )
            .into());
        }
        check_plot_path(out, "--profile-plot")?;
    }
    let method = match args.method {
        Method::Varpro => sepfit::Method::VarPro,
        Method::Kaufman => sepfit::Method::Kaufman,
        Method::Full => sepfit::Method::Full,
    };
    if !(args.level > 0.0 && args.level < 1.0) {
        return Err(anyhow!("--level {}: give a confidence level strictly between 0 and 1, e.g. 0.95", args.level).into());
    }
    for out in [&args.predictions, &args.residuals].into_iter().flatten() {
        check_table_path(out, if Some(out) == args.predictions.as_ref() { "--predictions" } else { "--residuals" })?;
    }
    let (loss, f_scale) = crate::args::loss_options(&args.loss)?;
    let opts = NamedOptions {
        force_nonlinear: args.nonlinear.clone(),
        method,
        weights: args.weights.clone(),
        absolute_sigma: args.absolute_sigma,
        loss,
        f_scale,
        ..crate::args::named_options(&args.param_opts, args.max_iter)?
    };
    let (data, dataset, r, _first) = crate::fitting::prepare_and_fit_with(&args.data, &args.model, &opts, args.repeat)?;
    let (mut traces, mut profile_error) = (None, None);
    let intervals = match args.ci {
        None => None,
        Some(CiMethod::Wald) => Some(r.wald_intervals(args.level).map_err(|e| anyhow!(e))?),
        // With --profile-plot the intervals come with the traces (the same intervals).
        Some(CiMethod::Profile) if args.profile_plot.is_some() => {
            match sepfit::profile::profile_traces(&r, &dataset, &opts, args.level, PROFILE_POINTS_PER_SIDE) {
                Ok(t) => {
                    let ci = t.intervals.clone();
                    traces = Some(t);
                    Some(ci)
                }
                Err(e) => {
                    eprintln!("warning: no profile intervals: {e}");
                    profile_error = Some(e);
                    None
                }
            }
        }
        Some(CiMethod::Profile) => match sepfit::profile::profile_intervals(&r, &dataset, &opts, args.level) {
            Ok(ci) => Some(ci),
            // The report still comes: the fit is printed, the intervals said to be missing.
            Err(e) => {
                eprintln!("warning: no profile intervals: {e}");
                None
            }
        },
    };
    let mut summary = Summary::new(&r, data.path.as_str()).with_repeats(args.repeat);
    if let Some(ci) = &intervals {
        summary = summary.with_intervals(ci);
    }
    match args.format {
        Format::Json => emit(&format!("{}\n", serde_json::to_string_pretty(&summary.to_json())?))?,
        Format::Text => emit(&summary.full())?,
    }
    if let Some(out) = &args.residuals {
        write_residuals(&dataset, &r, out)?;
    }
    if let (Some(grid), Some(out)) = (&args.predict, &args.predictions) {
        write_predictions(grid, &r, &opts, args.level, out)?;
    }
    // The picture after the report: a failure to draw it does not lose the fit.
    if let Some(out) = &args.plot {
        plot_fit(&data, &r, &args.model, args.level, out)?;
    }
    if let Some(out) = &args.profile_plot {
        match &traces {
            Some(t) => plot_profiles(t, &args.model, out)?,
            None => {
                let why = profile_error.map_or_else(|| "the profile could not be traced".to_string(), |e| e.to_string());
                return Err(anyhow!("--profile-plot {}: nothing drawn: {why}", out.display()).into());
            }
        }
    }
    unsuccessful(r.fit.outcome)
}

/// Held values traced on each side of an estimate for `--profile-plot` (besides the interval end).
const PROFILE_POINTS_PER_SIDE: usize = 10;

/// Checks a picture path (`flag` is `--plot` or `--profile-plot`) before the fit: a known image
/// extension and a folder that exists.
fn check_plot_path(out: &std::path::Path, flag: &str) -> Result<(), CliError> {
    let ext = out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    if !matches!(ext.as_deref(), Some("png" | "svg")) {
        return Err(anyhow!("{flag} {}: cannot tell the image format; use a file name ending in .png or .svg", out.display()).into());
    }
    let dir = out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    if !dir.is_dir() {
        return Err(anyhow!("{flag} {}: the folder {} does not exist", out.display(), dir.display()).into());
    }
    if out.is_dir() {
        return Err(anyhow!("{flag} {}: is a folder; give a file name ending in .png or .svg", out.display()).into());
    }
    Ok(())
}

/// Checks an output table path before the fit: `.csv` (or `.json` for predictions) in a folder
/// that exists.
fn check_table_path(out: &std::path::Path, flag: &str) -> Result<(), CliError> {
    let ext = out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let json_ok = flag == "--predictions";
    if !(ext.as_deref() == Some("csv") || (json_ok && ext.as_deref() == Some("json"))) {
        let what = if json_ok { ".csv or .json" } else { ".csv" };
        return Err(anyhow!("{flag} {}: give a file name ending in {what}", out.display()).into());
    }
    let dir = out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    if !dir.is_dir() {
        return Err(anyhow!("{flag} {}: the folder {} does not exist", out.display(), dir.display()).into());
    }
    Ok(())
}

/// A number in a CSV table: shortest round-trip form, `NA` for NaN.
fn csv_number(v: f64) -> String {
    if v.is_nan() { "NA".into() } else { format!("{v:?}") }
}

/// `--residuals OUT.csv`: per point the columns the model uses, observed, fitted, residual and
/// weighted residual.
fn write_residuals(data: &sepfit::Dataset, r: &NamedFit, out: &std::path::Path) -> Result<(), CliError> {
    let f = &r.fit;
    let cols: Vec<(&String, &[f64])> = r.formula.used_columns().into_iter().map(|i| &r.formula.columns()[i]).filter_map(|n| data.column(n).map(|c| (n, c))).collect();
    let mut s = String::new();
    for (n, _) in &cols {
        s += &format!("{},", crate::data::echo_str(n));
    }
    s += "observed,fitted,residual,weighted_residual\n";
    for i in 0..r.n {
        for (_, c) in &cols {
            s += &format!("{},", csv_number(c[i]));
        }
        s += &format!("{},{},{},{}\n", csv_number(r.response[i]), csv_number(f.fitted[i]), csv_number(f.residuals[i]), csv_number(f.weighted_residuals[i]));
    }
    std::fs::write(out, s).map_err(|e| anyhow!("--residuals {}: cannot write: {e}", out.display()))?;
    Ok(())
}

/// `--predict GRID.csv --predictions OUT`: the fit at the grid's points with confidence and
/// prediction bands, as CSV or JSON. The grid's `--sigma` column (or `--weights`, as
/// 1/sqrt(w)), if it has one, sets the standard deviation of a new observation for the
/// prediction band; otherwise it is 1 on the fit's scale of sigma.
fn write_predictions(grid: &std::path::Path, r: &NamedFit, opts: &NamedOptions, level: f64, out: &std::path::Path) -> Result<(), CliError> {
    let g = read_csv(grid)?;
    let points = sepfit::Dataset::new(g.names.clone(), g.columns.clone()).map_err(|e| anyhow!(e).context(format!("--predict {}", grid.display())))?;
    let sigma: Option<Vec<f64>> = match (&opts.sigma, &opts.weights) {
        (Some(s), _) => points.column(s).map(|c| c.to_vec()),
        (None, Some(w)) => points.column(w).map(|c| c.iter().map(|w| 1.0 / w.sqrt()).collect()),
        _ => None,
    };
    let p = r.predict(&points, level, sigma.as_deref()).map_err(|e| anyhow!(e).context(format!("--predict {}", grid.display())))?;
    let json = out.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let text = if json {
        let mut m = serde_json::Map::new();
        for name in &p.columns {
            m.insert(name.clone(), serde_json::to_value(points.column(name).unwrap_or_default())?);
        }
        for (k, v) in [("fit", &p.fit), ("se_fit", &p.se_fit), ("lower", &p.lower), ("upper", &p.upper), ("pred_lower", &p.pred_lower), ("pred_upper", &p.pred_upper)] {
            m.insert(k.into(), serde_json::to_value(v)?);
        }
        m.insert("level".into(), level.into());
        m.insert("quantile".into(), p.quantile.into());
        m.insert("distribution".into(), serde_json::to_value(p.distribution)?);
        format!("{}\n", serde_json::to_string_pretty(&serde_json::Value::Object(m))?)
    } else {
        let mut s = String::new();
        for name in &p.columns {
            s += &format!("{},", crate::data::echo_str(name));
        }
        s += "fit,se_fit,lower,upper,pred_lower,pred_upper\n";
        for i in 0..p.fit.len() {
            for name in &p.columns {
                s += &format!("{},", csv_number(points.column(name).map_or(f64::NAN, |c| c[i])));
            }
            s += &[p.fit[i], p.se_fit[i], p.lower[i], p.upper[i], p.pred_lower[i], p.pred_upper[i]].map(csv_number).join(",");
            s += "\n";
        }
        s
    };
    std::fs::write(out, text).map_err(|e| anyhow!("--predictions {}: cannot write: {e}", out.display()))?;
    Ok(())
}

/// Exit 1 for a fit that ran but did not converge or stopped at a degenerate point.
fn unsuccessful(outcome: Outcome) -> Result<(), CliError> {
    match outcome {
        Outcome::Converged => Ok(()),
        Outcome::NotConverged => Err(CliError::Unsuccessful("the fit did not converge (exit status 1); see the report".into())),
        _ => Err(CliError::Unsuccessful(
            "the fit stopped at a degenerate point: some parameters are not determined by the data (exit status 1); see the report".into(),
        )),
    }
}

/// What `--plot` draws besides the data: with one independent column `x` (its index among the
/// data's columns), the fitted curve on an even grid of 800 points over the range of `x`, and
/// the bands there (`Err` says why there are none).
struct CurvePlot {
    x_col: usize,
    grid: Vec<f64>,
    curve: Vec<f64>,
    bands: Result<sepfit_plot::Bands, String>,
}

/// The independent column of `r`'s right-hand side if there is exactly one (an index into the
/// formula's columns, which are the data's).
fn single_x(r: &NamedFit) -> Option<usize> {
    let m = &r.formula;
    let pool = m.pool();
    let syms = pool.free_symbols(m.rhs());
    let rhs: Vec<usize> =
        m.used_columns().into_iter().filter(|&c| pool.find_symbol(&m.columns()[c]).is_some_and(|s| syms.contains(&s))).collect();
    if rhs.len() == 1 { Some(rhs[0]) } else { None }
}

/// The curve of `--plot` on its grid and its confidence and prediction bands at `level`, from
/// [`NamedFit::predict`] (the function behind `--predict`) at the grid: `lower, upper` and
/// `pred_lower, pred_upper` with a new observation's σ = 1 on the fit's scale. The other used
/// columns (the response, weights) are 0 on the grid; they do not enter the curve.
fn curve_plot(data: &CsvData, r: &NamedFit, level: f64) -> Result<Option<CurvePlot>, CliError> {
    let Some(xc) = single_x(r) else { return Ok(None) };
    let m = &r.formula;
    let columns: Vec<&[f64]> = data.columns.iter().map(|c| c.as_slice()).collect();
    let fm = sepfit::FormulaModel::new(m.clone(), &columns).map_err(|e| anyhow!(e))?;
    let xv = &data.columns[xc];
    let (lo, hi) = xv.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let grid: Vec<f64> = (0..800).map(|i| lo + (hi - lo) * i as f64 / 799.0).collect();
    let used = m.used_columns();
    let cols: Vec<Vec<f64>> = used.iter().map(|&u| if u == xc { grid.clone() } else { vec![0.0; grid.len()] }).collect();
    let refs: Vec<&[f64]> = cols.iter().map(|c| c.as_slice()).collect();
    let curve = fm.predict(&r.fit.linear, &r.fit.nonlinear, &refs).map_err(|e| anyhow!(e))?;
    let bands = grid_bands(r, &used.iter().map(|&u| m.columns()[u].clone()).collect::<Vec<_>>(), cols, level);
    Ok(Some(CurvePlot { x_col: xc, grid, curve, bands }))
}

/// The bands of `r` at the points `cols` (columns `names`), or why there are none.
fn grid_bands(r: &NamedFit, names: &[String], cols: Vec<Vec<f64>>, level: f64) -> Result<sepfit_plot::Bands, String> {
    if !r.absolute_sigma && r.fit.dof == 0 {
        return Err("the fit has no residual degrees of freedom".into());
    }
    let points = sepfit::Dataset::new(names.to_vec(), cols).map_err(|e| e.to_string())?;
    let p = r.predict(&points, level, None).map_err(|e| e.to_string())?;
    if [&p.lower, &p.upper, &p.pred_lower, &p.pred_upper].iter().any(|v| v.iter().any(|x| !x.is_finite())) {
        return Err("the bands are not finite on the whole grid".into());
    }
    Ok(sepfit_plot::Bands { level, lower: p.lower, upper: p.upper, pred_lower: p.pred_lower, pred_upper: p.pred_upper })
}

/// Data, fitted curve and residuals. With one independent column on the right-hand side the
/// curve is evaluated on a fine grid of it, with its bands at `level` behind it; otherwise
/// observed against fitted.
fn plot_fit(data: &CsvData, r: &NamedFit, model: &str, level: f64, out: &std::path::Path) -> Result<(), CliError> {
    let m = &r.formula;
    let cp = curve_plot(data, r, level)?;
    let (x_name, x, curve, bands) = match cp {
        Some(c) => {
            let bands = match c.bands {
                Ok(b) => Some(b),
                Err(why) => {
                    eprintln!("note: --plot {} shows no confidence or prediction band: {why}", out.display());
                    None
                }
            };
            (m.columns()[c.x_col].clone(), Some(data.columns[c.x_col].as_slice()), Some((c.grid, c.curve)), bands)
        }
        None => (String::new(), None, None, None),
    };
    let y_label = m.print(m.lhs());
    let title = format!("sepfit: {model}");
    let pic = sepfit_plot::FitPicture {
        x,
        observed: &r.response,
        fitted: &r.fit.fitted,
        curve,
        bands,
        x_label: &x_name,
        y_label: &y_label,
        title: &title,
        size: (900, 700),
    };
    sepfit_plot::draw_fit(&pic, out).map_err(|e| anyhow!(e))?;
    Ok(())
}

/// `--profile-plot`: one panel per parameter with its traced profile.
fn plot_profiles(t: &sepfit::profile::ProfileTraces, model: &str, out: &std::path::Path) -> Result<(), CliError> {
    let panels = t
        .traces
        .iter()
        .map(|p| sepfit_plot::ProfilePanel { name: &p.name, values: &p.values, tau: &p.tau, estimate: p.estimate, lower: p.lower, upper: p.upper })
        .collect();
    let title = format!("profiles: {model}");
    let pic = sepfit_plot::ProfilePicture { panels, quantile: t.intervals.quantile, level: t.intervals.level, title: &title, panel_size: (420, 340) };
    sepfit_plot::draw_profiles(&pic, out).map_err(|e| anyhow!(e).context(format!("--profile-plot {}", out.display())))?;
    Ok(())
}

/// `sepfit fit --global --by COLUMN`: shared nonlinear parameters, per-curve linear ones.
fn run_global(args: &FitArgs) -> Result<(), CliError> {
    let t0 = std::time::Instant::now();
    let by = args.by.as_deref().unwrap_or_default();
    for (flag, given) in [
        ("--plot", args.plot.is_some()),
        ("--profile-plot", args.profile_plot.is_some()),
        ("--method", args.method != Method::Varpro),
        ("--nonlinear", !args.nonlinear.is_empty()),
        ("--ci", args.ci.is_some()),
        ("--weights", args.weights.is_some()),
        ("--absolute-sigma", args.absolute_sigma),
        ("--loss", args.loss.loss != "linear"),
        ("--f-scale", args.loss.f_scale.is_some()),
        ("--predict", args.predict.is_some()),
        ("--residuals", args.residuals.is_some()),
    ] {
        if given {
            return Err(anyhow!("{flag} is not supported with --global (a global fit uses variable projection over all curves); drop {flag}").into());
        }
    }
    let data = read_csv(&args.data)?;
    let labels = read_labels(&args.data, by)?;
    let names: Vec<String> = data.names.iter().filter(|n| n.as_str() != by).cloned().collect();
    let cols: Vec<&str> = names.iter().map(String::as_str).collect();
    let m = ModelFormula::parse(&args.model, &cols).map_err(|d| formula_error(&args.model, d))?;
    if m.params().iter().any(|p| p.name == by) {
        return Err(anyhow!(
            "`{by}` is the --by column that names the curves; it cannot also appear in the formula (there it would be a parameter)"
        )
        .into());
    }
    let used: Vec<&str> = m.used_columns().iter().map(|&i| cols[i]).collect();
    data.check_columns(&used)?;
    // Group rows by curve, in order of first appearance.
    let mut order: Vec<String> = Vec::new();
    let mut rows_of: std::collections::HashMap<String, Vec<usize>> = std::collections::HashMap::new();
    for (r, l) in labels.iter().enumerate() {
        rows_of.entry(l.clone()).or_insert_with(|| {
            order.push(l.clone());
            Vec::new()
        }).push(r);
    }
    let col_data: Vec<&Vec<f64>> = data.names.iter().zip(&data.columns).filter(|(n, _)| n.as_str() != by).map(|(_, c)| c).collect();
    let curves: Vec<Vec<Vec<f64>>> = order
        .iter()
        .map(|id| col_data.iter().map(|c| rows_of[id].iter().map(|&r| c[r]).collect()).collect())
        .collect();
    let opts = crate::args::named_options(&args.param_opts, args.max_iter)?;
    let gf = match sepfit::fit_global(&args.model, &names, &opts, &curves) {
        Ok(v) => v,
        Err(sepfit::GlobalError::Problem(e)) => return Err(crate::args::problem_error(e, &data.path)),
        Err(e) => return Err(anyhow!(e).context(format!("cannot fit {}", data.path)).into()),
    };
    let solve_s = t0.elapsed().as_secs_f64();
    let summary = GlobalSummary::new(&gf, &order, data.path.as_str(), by, args.model.as_str(), solve_s);
    match args.format {
        Format::Json => emit(&format!("{}\n", serde_json::to_string_pretty(&summary.to_json())?))?,
        Format::Text => emit(&summary.full())?,
    }
    unsuccessful(gf.outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn puromycin() -> CsvData {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/reference/intervals/puromycin.csv");
        read_csv(std::path::Path::new(path)).unwrap()
    }

    /// The bands handed to the picture are `predict`'s at the curve's grid, and the curve is
    /// `predict`'s fit there.
    #[test]
    fn plot_bands_are_predict_at_the_grid() {
        let data = puromycin();
        let ds = sepfit::Dataset::new(data.names.clone(), data.columns.clone()).unwrap();
        let r = sepfit::fit_formula("rate ~ Vm*conc/(K + conc)", &ds, &NamedOptions::with_start(&[("K", 0.05)])).unwrap();
        let Ok(Some(c)) = curve_plot(&data, &r, 0.9) else { panic!("no curve") };
        assert_eq!(data.names[c.x_col], "conc");
        assert_eq!(c.grid.len(), 800);
        let b = c.bands.unwrap();
        let p = r.predict(&sepfit::Dataset::new(vec!["conc".into()], vec![c.grid.clone()]).unwrap(), 0.9, None).unwrap();
        assert_eq!((b.lower, b.upper, b.pred_lower, b.pred_upper, b.level), (p.lower, p.upper, p.pred_lower, p.pred_upper, 0.9));
        for (a, f) in c.curve.iter().zip(&p.fit) {
            assert!((a - f).abs() <= 1e-12 * f.abs(), "curve {a} against predict's fit {f}");
        }
    }

    /// No bands without residual degrees of freedom: two points, two parameters.
    #[test]
    fn no_bands_without_degrees_of_freedom() {
        let data = CsvData { path: "two.csv".into(), names: vec!["x".into(), "y".into()], columns: vec![vec![1.0, 2.0], vec![1.0, 3.0]], bad: vec![None, None], bad_lines: vec![0, 0] };
        let ds = sepfit::Dataset::new(data.names.clone(), data.columns.clone()).unwrap();
        let r = sepfit::fit_formula("y ~ a + b*x", &ds, &NamedOptions::default()).unwrap();
        let Ok(Some(c)) = curve_plot(&data, &r, 0.95) else { panic!("no curve") };
        assert!(c.bands.unwrap_err().contains("degrees of freedom"));
    }
}
