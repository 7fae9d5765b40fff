//! From what the user typed to library options: the values of `--start`, `--fix` and
//! `--bounds` (parsed by clap through [`Assignments`] and [`BoundList`], beside their
//! definitions in `cli.rs`), and the named options of a fit.

use crate::cli::ParamArgs;
use anyhow::{Context, anyhow, bail};
use crate::cmd::CliError;
use sepfit::named::{NamedOptions, ProblemError};
use sepfit::search::SearchOptions;

/// `name=value` pairs of one `--start` or `--fix` flag, e.g. `"b1=1, b2=0.5"`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Assignments(pub Vec<(String, f64)>);

/// Bounds of one `--bounds` flag, e.g. `"0<b1<10, b2>0"`: `(name, lower, upper)`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BoundList(pub Vec<(String, f64, f64)>);

/// Clap value parser of `--start` and `--fix`.
pub fn assignments(s: &str) -> Result<Assignments, String> {
    parse_assignments(s).map(Assignments).map_err(|e| format!("{e:#}"))
}

/// Clap value parser of `--start`: assignments, or `auto` (no starting values: every
/// nonlinear parameter is searched for).
pub fn start_assignments(s: &str) -> Result<Assignments, String> {
    if s.trim() == "auto" {
        return Ok(Assignments::default());
    }
    assignments(s)
}

/// Clap value parser of `--bounds`.
pub fn bound_list(s: &str) -> Result<BoundList, String> {
    parse_bounds(s).map(BoundList).map_err(|e| format!("{e:#}"))
}

/// Named options from the repeatable `--start`, `--fix` and `--bounds` flags and `--sigma`.
pub fn named_options(params: &ParamArgs, max_iter: usize) -> anyhow::Result<NamedOptions> {
    Ok(NamedOptions {
        start: params.start.iter().flat_map(|a| a.0.iter().cloned()).collect(),
        fixed: params.fix.iter().flat_map(|a| a.0.iter().cloned()).collect(),
        bounds: params.bounds.iter().flat_map(|b| b.0.iter().cloned()).collect(),
        sigma: params.sigma.clone(),
        max_iterations: Some(max_iter),
        search: params.search.map(|n| SearchOptions { samples: (n > 0).then_some(n), ..SearchOptions::default() }),
        ..Default::default()
    })
}

/// The loss and its scale from `--loss` and `--f-scale`: an unknown loss, a scale that is not
/// positive and finite, or a scale given to a loss that has none, is an error naming the flag.
pub fn loss_options(a: &crate::cli::LossArgs) -> anyhow::Result<(sepfit::Loss, Option<f64>)> {
    let loss: sepfit::Loss = a.loss.parse().map_err(|e| anyhow!("--loss: {e}"))?;
    loss.check_scale(a.f_scale).map_err(|e| match e {
        sepfit::loss::ScaleError::Unused { .. } => anyhow!("--f-scale {e}: drop --f-scale"),
        _ => anyhow!("--f-scale {e}"),
    })?;
    Ok((loss, a.f_scale))
}

/// Parses `"b1=1, b2=0.5"`.
fn parse_assignments(s: &str) -> anyhow::Result<Vec<(String, f64)>> {
    let mut out = Vec::new();
    for item in s.split([',', ';']).map(str::trim).filter(|i| !i.is_empty()) {
        let (name, value) = item
            .split_once('=')
            .with_context(|| format!("`{item}` should look like `name=value`, e.g. \"b1=1, b2=0.5\""))?;
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() {
            bail!("`{item}` has no parameter name before `=`");
        }
        let v: f64 = value.parse().map_err(|_| anyhow!("the value of `{name}` is `{value}`, which is not a number"))?;
        if !v.is_finite() {
            bail!("the value of `{name}` must be finite, got `{value}`");
        }
        out.push((name.to_string(), v));
    }
    Ok(out)
}

/// Parses `"0<b1<10, b2>0, b3<=5"`.
fn parse_bounds(s: &str) -> anyhow::Result<Vec<(String, f64, f64)>> {
    let mut out = Vec::new();
    for item in s.split([',', ';']).map(str::trim).filter(|i| !i.is_empty()) {
        let norm = item.replace("<=", "<").replace(">=", ">");
        let bad = || anyhow!("cannot read `{item}`; write e.g. \"0<b1<10, b2>0, b3<5\"");
        let num = |t: &str| -> anyhow::Result<f64> {
            let t = t.trim();
            match t {
                "inf" | "+inf" | "Inf" => Ok(f64::INFINITY),
                "-inf" | "-Inf" => Ok(f64::NEG_INFINITY),
                _ => match t.parse::<f64>() {
                    Ok(v) if !v.is_nan() => Ok(v),
                    _ => Err(anyhow!("`{t}` in `{item}` is not a number")),
                },
            }
        };
        let ident = |t: &str| -> anyhow::Result<String> {
            let t = t.trim();
            if !t.is_empty() && t.chars().all(|c| c.is_alphanumeric() || c == '_') && !t.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                Ok(t.to_string())
            } else {
                Err(bad())
            }
        };
        let lt: Vec<&str> = norm.split('<').collect();
        let gt: Vec<&str> = norm.split('>').collect();
        let (name, lo, hi) = match (lt.len(), gt.len()) {
            (3, 1) => (ident(lt[1])?, num(lt[0])?, num(lt[2])?),
            (1, 3) => (ident(gt[1])?, num(gt[2])?, num(gt[0])?),
            (2, 1) => match ident(lt[0]) {
                Ok(n) => (n, f64::NEG_INFINITY, num(lt[1])?),
                Err(_) => (ident(lt[1])?, num(lt[0])?, f64::INFINITY),
            },
            (1, 2) => match ident(gt[0]) {
                Ok(n) => (n, num(gt[1])?, f64::INFINITY),
                Err(_) => (ident(gt[1])?, f64::NEG_INFINITY, num(gt[0])?),
            },
            _ => return Err(bad()),
        };
        out.push((name, lo, hi));
    }
    Ok(out)
}


/// The CLI's flag for a library option name.
fn flag(option: &str) -> &'static str {
    match option {
        "start" => "--start",
        "fixed" => "--fix",
        "bounds" => "--bounds",
        "force_nonlinear" => "--nonlinear",
        "sigma" => "--sigma",
        "weights" => "--weights",
        "absolute_sigma" => "--absolute-sigma",
        _ => "an option",
    }
}

/// A library error as the CLI says it: option names become flags, formula errors keep their
/// source for the caret, and everything else says which file could not be fitted.
pub fn problem_error(e: ProblemError, data: &str) -> CliError {
    let msg = match e {
        ProblemError::Formula { text, diagnostic } => return CliError::Formula { source: text, diagnostic },
        ProblemError::MissingStart { names } => format!(
            "starting values are needed for the nonlinear parameter{} {}; e.g. --start \"{}\" (linear parameters need none)",
            if names.len() == 1 { "" } else { "s" },
            names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
            names.iter().map(|n| format!("{n}=1")).collect::<Vec<_>>().join(", ")
        ),
        ProblemError::UnknownParameter { name, option, known, suggestion } => format!(
            "`{name}` ({}) is not a parameter of the model{}; its parameters are: {}",
            flag(option),
            suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(),
            known.join(", ")
        ),
        ProblemError::SigmaAndWeights => "give either --sigma (standard deviations) or --weights (1/sigma^2), not both".to_string(),
        ProblemError::AbsoluteSigmaWithoutSigma => {
            "--absolute-sigma takes the standard deviations of --sigma (or --weights) as absolute, but neither was given".to_string()
        }
        other => other.to_string(),
    };
    CliError::Other(anyhow!(msg).context(format!("cannot fit {data}")))
}
