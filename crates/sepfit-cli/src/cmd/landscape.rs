//! `sepfit landscape`: the reduced loss over two nonlinear parameters, with the optimiser's path.

use crate::fitting::prepare_and_fit;
use super::{CliError, emit};
use crate::cli::{LandscapeArgs, PathKind};
use anyhow::{Context, anyhow, bail};
use sepfit::FormulaModel;
use sepfit::landscape::{reduced_loss_grid, step_search_descent};
use sepfit_plot::{Landscape, Trace, draw_landscape};
use std::time::Instant;

pub fn run(args: &LandscapeArgs) -> Result<(), CliError> {
    let t0 = Instant::now();
    let size = parse_size(&args.size)?;
    if args.grid < 2 || args.grid > 2000 {
        return Err(anyhow!("--grid {} must be between 2 and 2000 points per axis", args.grid).into());
    }
    let (data, r) = prepare_and_fit(&args.data, &args.model, &args.param_opts, &[], sepfit::Method::VarPro, 1000)?;
    let nl: Vec<&str> = r.params.iter().filter(|p| !p.linear && !p.fixed).map(|p| p.name.as_str()).collect();
    if args.params.len() != 2 || args.params[0] == args.params[1] {
        return Err(anyhow!("--params needs two different nonlinear parameters, e.g. --params {}", nl.join(",")).into());
    }
    let mut axes = [0usize; 2];
    for (a, name) in args.params.iter().enumerate() {
        axes[a] = match nl.iter().position(|n| n == name) {
            Some(k) => k,
            None if r.params.iter().any(|p| p.linear && &p.name == name) => {
                return Err(anyhow!(
                    "`{name}` enters linearly and is eliminated by variable projection, so it is not an axis of the landscape; choose from the nonlinear parameters: {}",
                    nl.join(", ")
                )
                .into());
            }
            None => {
                return Err(anyhow!("`{name}` is not a nonlinear parameter of the model; choose from: {}", nl.join(", ")).into());
            }
        };
    }
    let (kx, ky) = (axes[0], axes[1]);
    let b_opt: Vec<f64> = r.fit.nonlinear.clone();
    let b_start: Vec<f64> = r.params.iter().filter(|p| !p.linear && !p.fixed).map(|p| p.start.unwrap_or(f64::NAN)).collect();
    // The model on the data, for the grid and the descent.
    let columns: Vec<&[f64]> = data.columns.iter().map(|c| c.as_slice()).collect();
    let mut model = FormulaModel::new(r.formula.clone(), &columns).map_err(|e| anyhow!(e))?;
    let y = model.response().to_vec();
    let sigma: Option<Vec<f64>> = args
        .param_opts
        .sigma
        .as_ref()
        .map(|s| data.names.iter().position(|n| n == s).map(|i| data.columns[i].clone()).unwrap_or_default());
    let lm_path: Vec<Vec<f64>> = std::iter::once(b_start.clone()).chain(r.fit.path.iter().cloned()).collect();
    let gd = if matches!(args.path, PathKind::Gd | PathKind::Both) {
        // Step lengths scale with the distance from start to optimum (seed: 0.001 on a 1.35 box).
        let dist = (0..nl.len()).map(|k| (b_opt[k] - b_start[k]).powi(2)).sum::<f64>().sqrt().max(1e-6);
        Some(
            step_search_descent(&mut model, &y, sigma.as_deref(), &b_start, dist / 500.0, args.gd_iterations)
                .map_err(|e| anyhow!(e).context("gradient descent"))?,
        )
    } else {
        None
    };
    // Ranges: given, or around the start, the paths and the optimum.
    let given = parse_ranges(&args.range)?;
    for (name, _, _) in &given {
        if !args.params.contains(name) {
            bail_cli(format!("--range names `{name}`, which is not one of --params {}", args.params.join(",")))?;
        }
    }
    let mut ranges = [(0.0, 0.0); 2];
    for a in 0..2 {
        let k = axes[a];
        ranges[a] = match given.iter().find(|(n, _, _)| n == &args.params[a]) {
            Some(&(_, lo, hi)) => (lo, hi),
            None => {
                let mut vals: Vec<f64> = lm_path.iter().map(|b| b[k]).collect();
                vals.push(b_opt[k]);
                if let Some(g) = &gd {
                    vals.extend(g.points.iter().map(|b| b[k]));
                }
                let (lo, hi) = vals.iter().filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
                let span = (hi - lo).max(0.5 * b_opt[k].abs()).max(1e-3);
                (lo - 0.25 * span, hi + 0.25 * span)
            }
        };
    }
    let lin = |(lo, hi): (f64, f64)| -> Vec<f64> { (0..args.grid).map(|i| lo + (hi - lo) * i as f64 / (args.grid - 1) as f64).collect() };
    let (xs, ys) = (lin(ranges[0]), lin(ranges[1]));
    let t_grid = Instant::now();
    let grid = reduced_loss_grid(&model, &y, sigma.as_deref(), &b_opt, (kx, ky), &xs, &ys).map_err(|e| anyhow!(e))?;
    let grid_s = t_grid.elapsed().as_secs_f64();
    let mut traces = Vec::new();
    if matches!(args.path, PathKind::Lm | PathKind::Both) {
        traces.push(Trace {
            label: format!("Levenberg-Marquardt ({} steps)", r.fit.path.len()),
            points: lm_path.iter().map(|b| (b[kx], b[ky])).collect(),
            color: (0, 0, 0),
        });
    }
    if let Some(g) = &gd {
        traces.push(Trace {
            label: format!("gradient descent ({} steps)", g.points.len() - 1),
            points: g.points.iter().map(|b| (b[kx], b[ky])).collect(),
            color: (200, 30, 120),
        });
    }
    let title = format!("reduced loss ‖y − P(b)y‖²: {}", args.model);
    let pic = Landscape {
        xs: &grid.xs,
        ys: &grid.ys,
        z: &grid.z,
        x_label: &args.params[0],
        y_label: &args.params[1],
        title: &title,
        traces,
        start: Some((b_start[kx], b_start[ky])),
        optimum: Some((b_opt[kx], b_opt[ky])),
        size,
    };
    draw_landscape(&pic, &args.out).map_err(|e| anyhow!(e))?;
    emit(&format!(
        "wrote {} ({}×{} grid over {} ∈ [{:.4}, {:.4}], {} ∈ [{:.4}, {:.4}]; grid {:.3} s, total {:.3} s)\n",
        args.out.display(),
        args.grid,
        args.grid,
        args.params[0],
        ranges[0].0,
        ranges[0].1,
        args.params[1],
        ranges[1].0,
        ranges[1].1,
        grid_s,
        t0.elapsed().as_secs_f64()
    ))
}

fn bail_cli(msg: String) -> anyhow::Result<()> {
    bail!(msg)
}

fn parse_size(s: &str) -> anyhow::Result<(u32, u32)> {
    let (w, h) = s.split_once(['x', 'X']).with_context(|| format!("--size `{s}` should look like 900x700"))?;
    let w: u32 = w.trim().parse().with_context(|| format!("--size: bad width in `{s}`"))?;
    let h: u32 = h.trim().parse().with_context(|| format!("--size: bad height in `{s}`"))?;
    if !(200..=8000).contains(&w) || !(200..=8000).contains(&h) {
        bail!("--size {w}x{h}: width and height must be between 200 and 8000 pixels");
    }
    Ok((w, h))
}

/// Parses `"b1=0:1.35, b2=0:1.35"`.
fn parse_ranges(s: &str) -> anyhow::Result<Vec<(String, f64, f64)>> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, r) = item.split_once('=').with_context(|| format!("--range: `{item}` should look like `b1=0:1.35`"))?;
        let (lo, hi) = r.split_once(':').with_context(|| format!("--range: `{item}` should look like `b1=0:1.35`"))?;
        let lo: f64 = lo.trim().parse().map_err(|_| anyhow!("--range: `{}` in `{item}` is not a number", lo.trim()))?;
        let hi: f64 = hi.trim().parse().map_err(|_| anyhow!("--range: `{}` in `{item}` is not a number", hi.trim()))?;
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            bail!("--range: `{item}` is empty; the lower end must be below the upper end");
        }
        out.push((name.trim().to_string(), lo, hi));
    }
    Ok(out)
}
