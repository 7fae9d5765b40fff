//! `sepfit fit`: one dataset.

use super::{CliError, emit, formula_error};
use crate::cli::{FitArgs, Format, Method};
use crate::data::{CsvData, read_csv, read_labels};
use anyhow::anyhow;
use sepfit::named::NamedFit;
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
        check_plot_path(out)?;
    }
    let method = match args.method {
        Method::Varpro => sepfit::Method::VarPro,
        Method::Kaufman => sepfit::Method::Kaufman,
        Method::Full => sepfit::Method::Full,
    };
    let (data, r, _first) =
        crate::fitting::prepare_and_fit_repeat(&args.data, &args.model, &args.param_opts, &args.nonlinear, method, args.max_iter, args.repeat)?;
    let summary = Summary::new(&r, data.path.as_str()).with_repeats(args.repeat);
    match args.format {
        Format::Json => emit(&format!("{}\n", serde_json::to_string_pretty(&summary.to_json())?))?,
        Format::Text => emit(&summary.full())?,
    }
    // The picture after the report: a failure to draw it does not lose the fit.
    if let Some(out) = &args.plot {
        plot_fit(&data, &r, &args.model, out)?;
    }
    unsuccessful(r.fit.outcome)
}

/// Checks a `--plot` path before the fit: a known image extension and a folder that exists.
fn check_plot_path(out: &std::path::Path) -> Result<(), CliError> {
    let ext = out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    if !matches!(ext.as_deref(), Some("png" | "svg")) {
        return Err(anyhow!("--plot {}: cannot tell the image format; use a file name ending in .png or .svg", out.display()).into());
    }
    let dir = out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    if !dir.is_dir() {
        return Err(anyhow!("--plot {}: the folder {} does not exist", out.display(), dir.display()).into());
    }
    if out.is_dir() {
        return Err(anyhow!("--plot {}: is a folder; give a file name ending in .png or .svg", out.display()).into());
    }
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

/// Data, fitted curve and residuals. With one independent column on the right-hand side the
/// curve is evaluated on a fine grid of it; otherwise observed against fitted.
fn plot_fit(data: &CsvData, r: &NamedFit, model: &str, out: &std::path::Path) -> Result<(), CliError> {
    let m = &r.formula;
    let rhs_cols: Vec<usize> = {
        let pool = m.pool();
        let syms = pool.free_symbols(m.rhs());
        m.used_columns()
            .into_iter()
            .filter(|&c| pool.find_symbol(&m.columns()[c]).is_some_and(|s| syms.contains(&s)))
            .collect()
    };
    let columns: Vec<&[f64]> = data.columns.iter().map(|c| c.as_slice()).collect();
    let fm = sepfit::FormulaModel::new(m.clone(), &columns).map_err(|e| anyhow!(e))?;
    let x_name;
    let (x, curve) = if rhs_cols.len() == 1 {
        let xc = rhs_cols[0];
        x_name = m.columns()[xc].clone();
        let xv = &data.columns[xc];
        let (lo, hi) = xv.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        let grid: Vec<f64> = (0..800).map(|i| lo + (hi - lo) * i as f64 / 799.0).collect();
        let used = m.used_columns();
        let cols: Vec<Vec<f64>> = used.iter().map(|&u| if u == xc { grid.clone() } else { vec![0.0; grid.len()] }).collect();
        let refs: Vec<&[f64]> = cols.iter().map(|c| c.as_slice()).collect();
        let cy = fm.predict(&r.fit.linear, &r.fit.nonlinear, &refs).map_err(|e| anyhow!(e))?;
        (Some(xv.as_slice()), Some((grid, cy)))
    } else {
        x_name = String::new();
        (None, None)
    };
    let y_label = m.print(m.lhs());
    let title = format!("sepfit: {model}");
    let pic = sepfit_plot::FitPicture {
        x,
        observed: &r.response,
        fitted: &r.fit.fitted,
        curve,
        x_label: &x_name,
        y_label: &y_label,
        title: &title,
        size: (900, 700),
    };
    sepfit_plot::draw_fit(&pic, out).map_err(|e| anyhow!(e))?;
    Ok(())
}

/// `sepfit fit --global --by COLUMN`: shared nonlinear parameters, per-curve linear ones.
fn run_global(args: &FitArgs) -> Result<(), CliError> {
    let t0 = std::time::Instant::now();
    let by = args.by.as_deref().unwrap_or_default();
    for (flag, given) in [("--plot", args.plot.is_some()), ("--method", args.method != Method::Varpro), ("--nonlinear", !args.nonlinear.is_empty())] {
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
