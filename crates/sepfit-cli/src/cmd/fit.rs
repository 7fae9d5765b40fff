//! `sepfit fit`: one dataset.

use super::{CliError, emit, formula_error};
use crate::cli::{FitArgs, Format, Method};
use crate::data::{CsvData, read_csv, read_labels};
use anyhow::anyhow;
use sepfit::named::{NamedFit, ProblemError};
use sepfit_expr::ModelFormula;
use serde_json::{Value, json};

pub fn run(args: &FitArgs) -> Result<(), CliError> {
    if args.global {
        return run_global(args);
    }
    let method = match args.method {
        Method::Varpro => sepfit::Method::VarPro,
        Method::Kaufman => sepfit::Method::Kaufman,
        Method::Full => sepfit::Method::Full,
    };
    let (data, r, _first) =
        crate::fitting::prepare_and_fit_repeat(&args.data, &args.model, &args.param_opts, &args.nonlinear, method, args.max_iter, args.repeat)?;
    if let Some(out) = &args.plot {
        plot_fit(&data, &r, &args.model, out)?;
    }
    match args.format {
        Format::Json => emit(&format!("{}\n", serde_json::to_string_pretty(&to_json(&r, &data.path, args))?)),
        Format::Text => emit(&to_text(&r, &data.path, args)),
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

fn num(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

fn method_name(args: &FitArgs) -> &'static str {
    match args.method {
        Method::Varpro => "variable projection (exact Golub-Pereyra Jacobian) + Levenberg-Marquardt",
        Method::Kaufman => "variable projection (Kaufman Jacobian) + Levenberg-Marquardt",
        Method::Full => "Levenberg-Marquardt on all parameters jointly",
    }
}

pub fn to_json(r: &NamedFit, path: &str, args: &FitArgs) -> Value {
    let f = &r.fit;
    let params: Vec<Value> = r
        .params
        .iter()
        .map(|p| {
            json!({
                "name": p.name, "value": num(p.value), "std_error": num(p.std_error),
                "t_value": num(p.t_value), "p_value": num(p.p_value), "linear": p.linear, "fixed": p.fixed,
                "start": p.start, "lower": p.bounds.map(|b| num(b.0)), "upper": p.bounds.map(|b| num(b.1)),
                "at_bound": match p.at_bound { -1 => json!("lower"), 1 => json!("upper"), _ => Value::Null },
            })
        })
        .collect();
    let names: Vec<&str> = theta_names(r);
    let correlation = f.stats.correlation.as_ref().map(|c| {
        (0..c.nrows()).map(|i| (0..c.ncols()).map(|j| num(c[(i, j)])).collect::<Vec<_>>()).collect::<Vec<_>>()
    });
    json!({
        "data": path,
        "formula": args.model,
        "method": method_name(args),
        "n": r.n,
        "converged": f.converged,
        "termination": format!("{:?}", f.termination),
        "termination_message": f.termination.message(),
        "parameters": params,
        "rss": num(f.rss),
        "chi_square": num(f.rss),
        "dof": f.dof,
        "residual_std_error": num(f.residual_std_error),
        "reduced_chi_square": num(f.reduced_chi_square),
        "r_squared": num(f.r_squared),
        "aic": num(f.aic),
        "bic": num(f.bic),
        "iterations": f.iterations,
        "evaluations": {"residual": f.residual_evaluations, "jacobian": f.jacobian_evaluations},
        "correlation": {"parameters": names, "matrix": correlation},
        "warnings": warnings(r),
        "notes": r.formula.notes().iter().chain(&r.notes).collect::<Vec<_>>(),
        "timing": if args.repeat > 1 {
            json!({"solve_s": r.solve_s, "repeats": args.repeat, "statistic": "median"})
        } else {
            json!({"solve_s": r.solve_s})
        },
    })
}

/// The fit's warnings, with parameter names.
fn warnings(r: &NamedFit) -> Vec<String> {
    let nl: Vec<&str> = r.params.iter().filter(|p| !p.linear && !p.fixed).map(|p| p.name.as_str()).collect();
    r.fit
        .warnings
        .iter()
        .map(|w| match w {
            sepfit::FitWarning::AtBound { index, upper } => format!(
                "`{}` ended at its {} bound; its standard error ignores the constraint",
                nl.get(*index).copied().unwrap_or("?"),
                if *upper { "upper" } else { "lower" }
            ),
            other => other.to_string(),
        })
        .collect()
}

/// Parameter names in the solver's θ order (nonlinear, then linear).
fn theta_names(r: &NamedFit) -> Vec<&str> {
    let nl = r.params.iter().filter(|p| !p.linear && !p.fixed).map(|p| p.name.as_str());
    let lin = r.params.iter().filter(|p| p.linear).map(|p| p.name.as_str());
    nl.chain(lin).collect()
}

fn g(v: f64) -> String {
    if v.is_nan() {
        "NA".into()
    } else if v == 0.0 || (1e-4..1e6).contains(&v.abs()) {
        let s = format!("{v:.7}");
        let t = format!("{:.*}", 7usize.saturating_sub((v.abs().log10().floor().max(0.0)) as usize), v);
        if t.len() < s.len() { t } else { s }
    } else {
        format!("{v:.6e}")
    }
}

fn pval(p: f64) -> String {
    if p.is_nan() {
        "NA".into()
    } else if p < 2e-16 {
        "< 2e-16".into()
    } else {
        format!("{p:.3e}")
    }
}

pub fn to_text(r: &NamedFit, path: &str, args: &FitArgs) -> String {
    let f = &r.fit;
    let mut s = String::new();
    s += &format!("sepfit fit: {path} ({} observations)\n", r.n);
    s += &format!("formula     {}\n", args.model);
    s += &format!("method      {}\n", method_name(args));
    let lin: Vec<&str> = r.params.iter().filter(|p| p.linear).map(|p| p.name.as_str()).collect();
    let nl: Vec<&str> = r.params.iter().filter(|p| !p.linear && !p.fixed).map(|p| p.name.as_str()).collect();
    s += &format!(
        "linear      {} (eliminated by variable projection)\nnonlinear   {}\n\n",
        if lin.is_empty() { "none".to_string() } else { lin.join(", ") },
        if nl.is_empty() { "none".to_string() } else { nl.join(", ") }
    );
    s += &format!(
        "{:<12} {:>15} {:>13} {:>9} {:>10}  {:<10} {}\n",
        "Parameter", "Estimate", "Std. Error", "t value", "Pr(>|t|)", "start", "notes"
    );
    for p in &r.params {
        let mut notes = Vec::new();
        if p.linear {
            notes.push("linear".to_string());
        }
        if p.fixed {
            notes.push("fixed".to_string());
        }
        if let Some((lo, hi)) = p.bounds {
            notes.push(format!("bounds [{}, {}]", g(lo), g(hi)));
        }
        match p.at_bound {
            -1 => notes.push("AT LOWER BOUND".into()),
            1 => notes.push("AT UPPER BOUND".into()),
            _ => {}
        }
        s += &format!(
            "{:<12} {:>15} {:>13} {:>9} {:>10}  {:<10} {}\n",
            p.name,
            g(p.value),
            if p.fixed { "(fixed)".into() } else { g(p.std_error) },
            if p.fixed { String::new() } else { format!("{:.3}", p.t_value) },
            if p.fixed { String::new() } else { pval(p.p_value) },
            p.start.map(g).unwrap_or_else(|| "-".into()),
            notes.join(", ")
        );
    }
    s += &format!("\nResidual standard error: {} on {} degrees of freedom\n", g(f.residual_std_error), f.dof);
    s += &format!(
        "RSS (chi-square) = {}   reduced chi-square = {}   R-squared = {}\n",
        g(f.rss),
        g(f.reduced_chi_square),
        g(f.r_squared)
    );
    s += &format!("AIC = {}   BIC = {}   (R's nls convention)\n", g(f.aic), g(f.bic));
    if let Some(c) = &f.stats.correlation {
        let names = theta_names(r);
        let mut pairs = Vec::new();
        for i in 0..c.nrows() {
            for j in 0..i {
                if c[(i, j)].abs() > 0.1 {
                    pairs.push(format!("{}~{}: {:+.3}", names[j], names[i], c[(i, j)]));
                }
            }
        }
        if !pairs.is_empty() {
            s += &format!("Correlations above 0.1: {}\n", pairs.join("   "));
        }
    }
    s += &format!(
        "\n{} after {} iterations ({} residual and {} Jacobian evaluations), {:.3} ms\n",
        if f.converged { "Converged" } else { "NOT CONVERGED" },
        f.iterations,
        f.residual_evaluations,
        f.jacobian_evaluations,
        r.solve_s * 1e3
    );
    s += &format!("Termination: {}\n", f.termination.message());
    for w in warnings(r) {
        s += &format!("warning: {w}\n");
    }
    for n in r.formula.notes().iter().chain(&r.notes) {
        s += &format!("note: {n}\n");
    }
    s
}

/// `sepfit fit --global --by COLUMN`: shared nonlinear parameters, per-curve linear ones.
fn run_global(args: &FitArgs) -> Result<(), CliError> {
    let t0 = std::time::Instant::now();
    let by = args.by.as_deref().unwrap_or_default();
    let data = read_csv(&args.data)?;
    let labels = read_labels(&args.data, by)?;
    let names: Vec<String> = data.names.iter().filter(|n| n.as_str() != by).cloned().collect();
    let cols: Vec<&str> = names.iter().map(String::as_str).collect();
    let m = ModelFormula::parse(&args.model, &cols).map_err(|d| formula_error(&args.model, d))?;
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
    let col_data: Vec<&Vec<f64>> = names.iter().map(|n| &data.columns[data.names.iter().position(|x| x == n).unwrap_or(0)]).collect();
    let curves: Vec<Vec<Vec<f64>>> = order
        .iter()
        .map(|id| col_data.iter().map(|c| rows_of[id].iter().map(|&r| c[r]).collect()).collect())
        .collect();
    let opts = crate::args::named_options(&args.param_opts, args.max_iter)?;
    let gf = match sepfit::fit_global(&args.model, &names, &opts, &curves) {
        Ok(v) => v,
        Err(sepfit::GlobalError::Problem(ProblemError::Formula(d))) => return Err(formula_error(&args.model, d)),
        Err(e) => return Err(anyhow!(e).context(format!("cannot fit {}", data.path)).into()),
    };
    let solve_s = t0.elapsed().as_secs_f64();
    match args.format {
        Format::Json => {
            let shared: Vec<Value> = gf
                .nonlinear_names
                .iter()
                .enumerate()
                .map(|(k, n)| json!({"name": n, "value": num(gf.nonlinear[k]), "std_error": num(gf.nonlinear_std_errors[k]), "linear": false}))
                .collect();
            let curves: Vec<Value> = order
                .iter()
                .enumerate()
                .map(|(c, id)| {
                    let lin: serde_json::Map<String, Value> =
                        gf.linear_names.iter().enumerate().map(|(j, n)| (n.clone(), num(gf.linear[c][j]))).collect();
                    json!({"curve": id, "linear": lin, "rss": num(gf.curve_rss[c])})
                })
                .collect();
            let v = json!({
                "data": data.path, "formula": args.model, "global": true, "curves": curves, "n_curves": order.len(),
                "converged": gf.converged, "termination": format!("{:?}", gf.termination),
                "termination_message": gf.termination.message(), "parameters": shared, "rss": num(gf.rss),
                "dof": gf.dof, "residual_std_error": num(gf.residual_std_error), "iterations": gf.iterations,
                "timing": {"solve_s": solve_s},
            });
            emit(&format!("{}\n", serde_json::to_string_pretty(&v)?))
        }
        Format::Text => {
            let mut s = format!("sepfit fit --global: {} ({} curves grouped by `{by}`)\n", data.path, order.len());
            s += &format!("formula     {}\n", args.model);
            s += &format!("shared      {} (nonlinear)\nper curve   {} (linear, eliminated)\n\n", gf.nonlinear_names.join(", "), gf.linear_names.join(", "));
            s += &format!("{:<12} {:>15} {:>13}\n", "Parameter", "Estimate", "Std. Error");
            for (k, n) in gf.nonlinear_names.iter().enumerate() {
                s += &format!("{:<12} {:>15} {:>13}\n", n, g(gf.nonlinear[k]), g(gf.nonlinear_std_errors[k]));
            }
            let shown = order.len().min(20);
            s += &format!("\nlinear coefficients ({} of {} curves shown; --format json lists all):\n{:<12}", shown, order.len(), "curve");
            for n in &gf.linear_names {
                s += &format!(" {:>14}", n);
            }
            s += &format!(" {:>14}\n", "rss");
            for (c, id) in order.iter().take(shown).enumerate() {
                s += &format!("{:<12}", id);
                for j in 0..gf.linear_names.len() {
                    s += &format!(" {:>14}", g(gf.linear[c][j]));
                }
                s += &format!(" {:>14}\n", g(gf.curve_rss[c]));
            }
            s += &format!("\nResidual standard error: {} on {} degrees of freedom\n", g(gf.residual_std_error), gf.dof);
            s += &format!(
                "{} after {} iterations, {:.3} ms\nTermination: {}\n",
                if gf.converged { "Converged" } else { "NOT CONVERGED" },
                gf.iterations,
                solve_s * 1e3,
                gf.termination.message()
            );
            emit(&s)
        }
    }
}
