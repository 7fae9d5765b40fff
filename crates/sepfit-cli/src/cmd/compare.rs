//! `sepfit compare`: the F test between two nested models on the same data (R's `anova(m1, m2)`).

use super::{CliError, emit};
use crate::cli::{CompareArgs, Format};
use crate::data::read_header;
use anyhow::anyhow;
use sepfit::compare::{NestedTest, nested};
use sepfit::named::{NamedOptions, resolve};
use sepfit::report::{format_number, format_p_value};

pub fn run(args: &CompareArgs) -> Result<(), CliError> {
    let [small, big] = args.model.as_slice() else {
        return Err(anyhow!(
            "--model was given {} time(s): give it twice, the small model first and the big one that nests it second, e.g. --model \"y ~ a*exp(-k*t)\" --model \"y ~ a*exp(-k*t) + c\"",
            args.model.len()
        )
        .into());
    };
    let base = NamedOptions {
        weights: args.weights.clone(),
        absolute_sigma: args.absolute_sigma,
        ..crate::args::named_options(&args.param_opts, args.max_iter)?
    };
    let header = read_header(&args.data)?;
    let names = [params_of(small, &header), params_of(big, &header)];
    let mut fits = Vec::with_capacity(2);
    for (k, model) in [small, big].into_iter().enumerate() {
        // Each model takes the --start, --fix and --bounds entries that name its parameters;
        // an entry that names a parameter of neither model goes to the first, whose fit then
        // says it is unknown.
        let keep = |n: &String| names[k].contains(n) || (k == 0 && !names[1].contains(n));
        let opts = NamedOptions {
            start: base.start.iter().filter(|(n, _)| keep(n)).cloned().collect(),
            fixed: base.fixed.iter().filter(|(n, _)| keep(n)).cloned().collect(),
            bounds: base.bounds.iter().filter(|(n, _, _)| keep(n)).cloned().collect(),
            ..base.clone()
        };
        let (_, _, fit, _) = crate::fitting::prepare_and_fit_with(&args.data, model, &opts, 1)?;
        fits.push(fit);
    }
    let test = nested(&fits[0], &fits[1]).map_err(|e| anyhow!(e))?;
    let data = args.data.display().to_string();
    match args.format {
        Format::Json => {
            let mut v = serde_json::to_value(&test)?;
            v["data"] = serde_json::Value::String(data);
            emit(&format!("{}\n", serde_json::to_string_pretty(&v)?))
        }
        Format::Text => emit(&text(&test, &data)),
    }
}

/// The names of a formula's parameters (empty if it does not parse: its fit reports why).
fn params_of(model: &str, header: &[String]) -> Vec<String> {
    resolve(model, header, &NamedOptions::default()).map(|r| r.formula.params().iter().map(|p| p.name.clone()).collect()).unwrap_or_default()
}

/// R's `anova` table.
fn text(t: &NestedTest, data: &str) -> String {
    let mut s = format!("Analysis of variance: nested models, extra sum of squares F test ({data}, n = {})\n\n", t.n);
    s += &format!("Model 1: {}\nModel 2: {}\n\n", t.small.formula, t.big.formula);
    s += &format!("  {:>7} {:>14} {:>4} {:>14} {:>12} {:>10}\n", "Res.Df", "Res.Sum Sq", "Df", "Sum Sq", "F value", "Pr(>F)");
    s += &format!("1 {:>7} {:>14}\n", t.small.res_df, format_number(t.small.rss));
    s += &format!(
        "2 {:>7} {:>14} {:>4} {:>14} {:>12} {:>10}\n",
        t.big.res_df,
        format_number(t.big.rss),
        t.df,
        format_number(t.sum_sq),
        format_number(t.f),
        format_p_value(t.p_value)
    );
    if let Some(p) = t.chi_square_p {
        s += &format!(
            "\nWith absolute sigma, likelihood-ratio test: chi-square {} on {} df, p = {}\n",
            format_number(t.sum_sq),
            t.df,
            format_p_value(p)
        );
    }
    s
}
