//! What a user sees after a fit: [`Summary`] renders a [`NamedFit`] as a one-line
//! [`brief`](Summary::brief), the full text report ([`full`](Summary::full), in the manner of R's
//! `summary.nls`, lmfit's `fit_report` and Ceres' `FullReport`) and JSON
//! ([`to_json`](Summary::to_json)); [`GlobalSummary`] does the same for a global fit. The
//! command-line tool prints these; the Python package returns them.
//!
//! ```
//! use sepfit::{Dataset, NamedOptions, Summary, fit_formula};
//! let t: Vec<f64> = (0..30).map(|i| i as f64 * 0.2).collect();
//! let y: Vec<f64> = t.iter().map(|t| 2.0 * (-0.7 * t).exp() + 0.1 + 1e-3 * (7.0 * t).sin()).collect();
//! let data = Dataset::new(vec!["t".into(), "y".into()], vec![t, y]).unwrap();
//! let opts = NamedOptions { start: vec![("k".into(), 1.0)], ..Default::default() };
//! let r = fit_formula("y ~ a*exp(-k*t) + c", &data, &opts).unwrap();
//! let s = Summary::new(&r, "example");
//! assert!(s.brief().starts_with("Converged"));
//! assert!(s.full().contains("Residual standard error"));
//! assert_eq!(s.to_json()["parameters"][2]["name"], "k"); // linear a, c first, then k
//! ```

use crate::fit::Outcome;
use crate::named::{Bound, NamedFit};
use crate::global::GlobalFit;
use crate::intervals::{Distribution, IntervalMethod, Intervals};
use serde::Serialize;
use serde_json::Value;

/// A number as the reports print it: 7 significant digits, fixed or with an exponent, `NA`
/// for NaN.
pub fn format_number(v: f64) -> String {
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

/// A p value as R prints it (`< 2e-16` below that).
pub fn format_p_value(p: f64) -> String {
    if p.is_nan() {
        "NA".into()
    } else if p < 2e-16 {
        "< 2e-16".into()
    } else {
        format!("{p:.3e}")
    }
}

/// The report of one fit by name. See the module docs.
#[derive(Clone, Debug)]
pub struct Summary<'a> {
    fit: &'a NamedFit,
    data: String,
    repeats: usize,
    intervals: Option<&'a Intervals>,
}

/// One parameter in the JSON report.
#[derive(Serialize)]
struct ParamJson<'a> {
    name: &'a str,
    value: f64,
    std_error: f64,
    t_value: f64,
    p_value: f64,
    linear: bool,
    fixed: bool,
    start: Option<f64>,
    lower: Option<f64>,
    upper: Option<f64>,
    at_bound: Option<Bound>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ci_lower: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ci_upper: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ci_notes: Vec<String>,
}

/// How the intervals in the JSON report were computed.
#[derive(Serialize)]
struct IntervalsJson {
    method: IntervalMethod,
    level: f64,
    distribution: Distribution,
    quantile: f64,
    refits: usize,
}

/// The covariance matrix in the JSON report (θ order).
#[derive(Serialize)]
struct Covariance<'a> {
    parameters: Vec<&'a str>,
    matrix: Option<Vec<Vec<f64>>>,
    absolute_sigma: bool,
}

#[derive(Serialize)]
struct Evaluations {
    residual: usize,
    jacobian: usize,
}

#[derive(Serialize)]
struct Correlation<'a> {
    parameters: Vec<&'a str>,
    matrix: Option<Vec<Vec<f64>>>,
}

#[derive(Serialize)]
struct Timing {
    solve_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    repeats: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    statistic: Option<&'static str>,
}

/// The JSON report (keys are written in alphabetical order).
#[derive(Serialize)]
struct FitJson<'a> {
    data: &'a str,
    formula: &'a str,
    method: &'static str,
    /// The loss, where it is not least squares.
    #[serde(skip_serializing_if = "Option::is_none")]
    loss: Option<&'static str>,
    /// The robust cost or Poisson deviance, where the loss is not least squares.
    #[serde(skip_serializing_if = "Option::is_none")]
    loss_cost: Option<f64>,
    n: usize,
    converged: bool,
    status: Outcome,
    termination: crate::Termination,
    termination_message: &'static str,
    parameters: Vec<ParamJson<'a>>,
    rss: f64,
    chi_square: f64,
    dof: usize,
    residual_std_error: f64,
    reduced_chi_square: f64,
    r_squared: f64,
    aic: f64,
    bic: f64,
    iterations: usize,
    evaluations: Evaluations,
    correlation: Correlation<'a>,
    covariance: Covariance<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    confidence_intervals: Option<IntervalsJson>,
    warnings: Vec<String>,
    notes: Vec<&'a String>,
    timing: Timing,
    #[serde(skip_serializing_if = "Option::is_none")]
    search: Option<SearchJson<'a>>,
}

/// The search for starting values, in the JSON report.
#[derive(Serialize)]
struct SearchJson<'a> {
    samples: usize,
    finite_samples: usize,
    screened: usize,
    polished: usize,
    agreeing: usize,
    seconds: f64,
    ranges: Vec<RangeJson<'a>>,
}

#[derive(Serialize)]
struct RangeJson<'a> {
    name: &'a str,
    kind: crate::search::RangeKind,
    lower: f64,
    upper: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    reach: Option<f64>,
    /// For `signed_log`: the smallest magnitude searched (either sign).
    #[serde(skip_serializing_if = "Option::is_none")]
    min_magnitude: Option<f64>,
    why: &'a str,
    start: f64,
}

/// Serialises through a `Value`, whose maps keep their keys sorted, and writes non-finite
/// numbers as `null` (JSON has no NaN).
fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

impl<'a> Summary<'a> {
    /// The report of `fit`, whose data is called `data` (a file name, say).
    pub fn new(fit: &'a NamedFit, data: impl Into<String>) -> Self {
        Summary { fit, data: data.into(), repeats: 1, intervals: None }
    }

    /// Adds confidence intervals (from [`NamedFit::wald_intervals`] or
    /// [`crate::profile::profile_intervals`]) to the reports: a table after the parameters in
    /// [`full`](Self::full), `ci_lower`/`ci_upper` per parameter and `confidence_intervals` in
    /// [`to_json`](Self::to_json).
    pub fn with_intervals(mut self, intervals: &'a Intervals) -> Self {
        self.intervals = Some(intervals);
        self
    }

    /// Says that [`NamedFit::solve_s`] is the median of `repeats` solves (a benchmarking aid).
    pub fn with_repeats(mut self, repeats: usize) -> Self {
        self.repeats = repeats;
        self
    }

    /// One line: outcome, iterations, RSS and the parameters.
    pub fn brief(&self) -> String {
        let f = &self.fit.fit;
        let params: Vec<String> = self.fit.params.iter().map(|p| format!("{} = {}", p.name, format_number(p.value))).collect();
        format!(
            "{} after {} iterations: RSS = {} on {} degrees of freedom; {}",
            f.outcome.headline(),
            f.iterations,
            format_number(f.rss),
            f.dof,
            params.join(", ")
        )
    }

    /// The full text report (what `sepfit fit` prints).
    pub fn full(&self) -> String {
        let r = self.fit;
        let f = &r.fit;
        let mut s = String::new();
        s += &format!("sepfit fit: {} ({} observations)\n", self.data, r.n);
        s += &format!("formula     {}\n", r.source);
        s += &format!("method      {}\n", f.method.description());
        match f.loss {
            crate::Loss::Linear => {}
            crate::Loss::Poisson => {
                s += &format!("loss        poisson (maximum likelihood, {} Fisher-scoring steps)   deviance = {}\n", f.irls_iterations, format_number(f.deviance));
            }
            l => {
                s += &format!(
                    "loss        {} (f_scale = {}, {} reweightings)   cost = {}\n",
                    l.name(),
                    format_number(f.f_scale),
                    f.irls_iterations,
                    format_number(f.loss_cost)
                );
            }
        }
        let lin: Vec<&str> = r.params.iter().filter(|p| p.linear).map(|p| p.name.as_str()).collect();
        let nl: Vec<&str> = r.nonlinear_names();
        let how = if f.method.eliminates_linear() { "eliminated by variable projection" } else { "fitted jointly with the nonlinear ones" };
        s += &format!(
            "linear      {} ({how})\nnonlinear   {}\n\n",
            if lin.is_empty() { "none".to_string() } else { lin.join(", ") },
            if nl.is_empty() { "none".to_string() } else { nl.join(", ") }
        );
        s += &format!(
            "{:<12} {:>15} {:>13} {:>9} {:>10}  {:<10} {}\n",
            "Parameter",
            "Estimate",
            "Std. Error",
            if r.absolute_sigma { "z value" } else { "t value" },
            if r.absolute_sigma { "Pr(>|z|)" } else { "Pr(>|t|)" },
            "start",
            "notes"
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
                notes.push(format!("bounds [{}, {}]", format_number(lo), format_number(hi)));
            }
            match p.bound {
                Bound::Lower => notes.push("AT LOWER BOUND".into()),
                Bound::Upper => notes.push("AT UPPER BOUND".into()),
                Bound::Free => {}
            }
            s += &format!(
                "{:<12} {:>15} {:>13} {:>9} {:>10}  {:<10} {}\n",
                p.name,
                format_number(p.value),
                if p.fixed { "(fixed)".into() } else { format_number(p.std_error) },
                if p.fixed { String::new() } else { format!("{:.3}", p.t_value) },
                if p.fixed { String::new() } else { format_p_value(p.p_value) },
                p.start.map(format_number).unwrap_or_else(|| "-".into()),
                notes.join(", ")
            );
        }
        if let Some(ci) = self.intervals {
            s += &intervals_table(ci);
        }
        if f.loss == crate::Loss::Poisson {
            s += "\nPoisson likelihood: the covariance is the inverse Fisher information, not scaled by the reduced chi-square; z values, normal p values\n";
        } else if r.absolute_sigma {
            s += "\nsigma taken as absolute: the covariance is not scaled by the reduced chi-square; z values, normal p values\n";
        }
        s += &format!("\nResidual standard error: {} on {} degrees of freedom\n", format_number(f.residual_std_error), f.dof);
        s += &format!(
            "RSS (chi-square) = {}   reduced chi-square = {}   R-squared = {}\n",
            format_number(f.rss),
            format_number(f.reduced_chi_square),
            format_number(f.r_squared)
        );
        s += &format!("AIC = {}   BIC = {}   (R's nls convention)\n", format_number(f.aic), format_number(f.bic));
        if let Some(c) = &f.stats.correlation {
            let names = r.theta_names();
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
            f.outcome.headline(),
            f.iterations,
            f.residual_evaluations,
            f.jacobian_evaluations,
            r.solve_s * 1e3
        );
        s += &format!("Termination: {}\n", f.termination.message());
        if let Some(sr) = &r.search {
            s += &format!(
                "Search: {} samples of the reduced loss ({} finite), {} screened, {} polished; {} of {} reached this optimum ({:.3} ms)\n",
                sr.samples,
                sr.finite_samples,
                sr.screened,
                sr.polished,
                sr.agreeing,
                sr.polished,
                sr.seconds * 1e3
            );
            for (name, range) in nl.iter().zip(&sr.ranges) {
                if range.kind != crate::search::RangeKind::Fixed {
                    s += &format!("  {:<10} {} ({})\n", name, range.describe(), range.why);
                }
            }
        }
        for w in r.warning_messages() {
            s += &format!("warning: {w}\n");
        }
        for n in r.all_notes() {
            s += &format!("note: {n}\n");
        }
        s
    }

    /// The JSON report (what `sepfit fit --format json` prints): the fields `data`, `formula`,
    /// `method`, `n`, `converged`, `status` (`converged`, `not_converged`, `degenerate`),
    /// `termination`, `termination_message`, `parameters` (`name`, `value`, `std_error`,
    /// `t_value`, `p_value`, `linear`, `fixed`, `start`, `lower`, `upper`, `at_bound`, and with
    /// intervals `ci_lower`, `ci_upper`, `ci_notes`), `rss`, `chi_square`, `dof`,
    /// `residual_std_error`, `reduced_chi_square`, `r_squared`, `aic`, `bic`, `iterations`,
    /// `evaluations`, `correlation` (`parameters` in θ order and `matrix`), `covariance`
    /// (`parameters`, `matrix`, `absolute_sigma`), with intervals `confidence_intervals`
    /// (`method`, `level`, `distribution`, `quantile`, `refits`), `warnings`, `notes`,
    /// `timing.solve_s` and, when a search for starting values ran, `search` (`samples`,
    /// `finite_samples`, `screened`, `polished`, `agreeing`, `seconds`, and per nonlinear
    /// parameter its `ranges` entry: `name`, `kind`, `lower`, `upper`, `reach`,
    /// `min_magnitude`, `why`, `start`). Numbers that are not finite are `null`.
    pub fn to_json(&self) -> Value {
        let r = self.fit;
        let f = &r.fit;
        let params = r
            .params
            .iter()
            .map(|p| ParamJson {
                name: &p.name,
                value: p.value,
                std_error: p.std_error,
                t_value: p.t_value,
                p_value: p.p_value,
                linear: p.linear,
                fixed: p.fixed,
                start: p.start,
                lower: p.bounds.map(|b| b.0),
                upper: p.bounds.map(|b| b.1),
                at_bound: (p.bound != Bound::Free).then_some(p.bound),
                ci_lower: self.intervals.and_then(|c| c.get(&p.name)).map(|c| c.lower),
                ci_upper: self.intervals.and_then(|c| c.get(&p.name)).map(|c| c.upper),
                ci_notes: self.intervals.and_then(|c| c.get(&p.name)).map(|c| c.notes.clone()).unwrap_or_default(),
            })
            .collect();
        let covariance = f.stats.covariance.as_ref().map(|c| (0..c.nrows()).map(|i| (0..c.ncols()).map(|j| c[(i, j)]).collect()).collect());
        let matrix = f.stats.correlation.as_ref().map(|c| (0..c.nrows()).map(|i| (0..c.ncols()).map(|j| c[(i, j)]).collect()).collect());
        let repeated = self.repeats > 1;
        to_value(&FitJson {
            data: &self.data,
            formula: &r.source,
            method: f.method.description(),
            loss: (f.loss != crate::Loss::Linear).then(|| f.loss.name()),
            loss_cost: (f.loss != crate::Loss::Linear).then_some(f.loss_cost),
            n: r.n,
            converged: f.converged,
            status: f.outcome,
            termination: f.termination,
            termination_message: f.termination.message(),
            parameters: params,
            rss: f.rss,
            chi_square: f.rss,
            dof: f.dof,
            residual_std_error: f.residual_std_error,
            reduced_chi_square: f.reduced_chi_square,
            r_squared: f.r_squared,
            aic: f.aic,
            bic: f.bic,
            iterations: f.iterations,
            evaluations: Evaluations { residual: f.residual_evaluations, jacobian: f.jacobian_evaluations },
            correlation: Correlation { parameters: r.theta_names(), matrix },
            covariance: Covariance { parameters: r.theta_names(), matrix: covariance, absolute_sigma: r.absolute_sigma },
            confidence_intervals: self.intervals.map(|c| IntervalsJson {
                method: c.method,
                level: c.level,
                distribution: c.distribution,
                quantile: c.quantile,
                refits: c.refits,
            }),
            warnings: r.warning_messages(),
            notes: r.all_notes().collect(),
            timing: Timing {
                solve_s: r.solve_s,
                repeats: repeated.then_some(self.repeats),
                statistic: repeated.then_some("median"),
            },
            search: r.search.as_ref().map(|sr| SearchJson {
                samples: sr.samples,
                finite_samples: sr.finite_samples,
                screened: sr.screened,
                polished: sr.polished,
                agreeing: sr.agreeing,
                seconds: sr.seconds,
                ranges: r
                    .nonlinear_names()
                    .into_iter()
                    .zip(&sr.ranges)
                    .zip(&sr.start)
                    .map(|((name, g), &start)| {
                        let (lower, upper) = match g.kind {
                            crate::search::RangeKind::NegativeLog => (-g.hi, -g.lo),
                            crate::search::RangeKind::SignedLog => (-g.hi, g.hi),
                            _ => (g.lo, g.hi),
                        };
                        RangeJson {
                            name,
                            kind: g.kind,
                            lower,
                            upper,
                            reach: (g.kind == crate::search::RangeKind::Location).then_some(g.reach),
                            min_magnitude: (g.kind == crate::search::RangeKind::SignedLog).then_some(g.lo),
                            why: &g.why,
                            start,
                        }
                    })
                    .collect(),
            }),
        })
    }
}

/// The interval table of the text report: one row per fitted parameter, with the notes of any
/// end that is open, on a bound or missing.
fn intervals_table(ci: &Intervals) -> String {
    let how = match ci.method {
        IntervalMethod::Wald => "Wald: estimate +/- quantile * Std. Error",
        IntervalMethod::Profile => "profile likelihood",
    };
    let dist = match ci.distribution {
        Distribution::T { dof } => format!("t({dof}) quantile {:.4}", ci.quantile),
        Distribution::Normal => format!("normal quantile {:.4}", ci.quantile),
    };
    let pct = format!("{}", ci.level * 100.0);
    let mut s = format!("\n{pct}% confidence intervals ({how}; {dist}):\n");
    s += &format!("{:<12} {:>15} {:>15}\n", "Parameter", "lower", "upper");
    for p in &ci.params {
        s += &format!("{:<12} {:>15} {:>15}", p.name, format_number(p.lower), format_number(p.upper));
        if !p.notes.is_empty() {
            s += &format!("  ({})", p.notes.join("; "));
        }
        s += "\n";
    }
    s
}

/// The report of a global fit ([`GlobalFit`]): shared nonlinear parameters, per-curve linear
/// coefficients.
#[derive(Clone, Debug)]
pub struct GlobalSummary<'a> {
    fit: &'a GlobalFit,
    ids: &'a [String],
    data: String,
    by: String,
    formula: String,
    solve_s: f64,
}

#[derive(Serialize)]
struct SharedJson<'a> {
    name: &'a str,
    value: f64,
    std_error: f64,
    linear: bool,
}

#[derive(Serialize)]
struct CurveJson<'a> {
    curve: &'a str,
    linear: serde_json::Map<String, Value>,
    rss: f64,
}

#[derive(Serialize)]
struct GlobalJson<'a> {
    data: &'a str,
    formula: &'a str,
    global: bool,
    curves: Vec<CurveJson<'a>>,
    n_curves: usize,
    converged: bool,
    status: Outcome,
    termination: crate::Termination,
    termination_message: &'static str,
    parameters: Vec<SharedJson<'a>>,
    rss: f64,
    dof: usize,
    residual_std_error: f64,
    iterations: usize,
    warnings: Vec<String>,
    notes: &'a [String],
    timing: Timing,
}

impl<'a> GlobalSummary<'a> {
    /// The report of `fit` of the curves `ids` in `data`, grouped by the column `by`, with the
    /// formula as typed and the time it took.
    pub fn new(
        fit: &'a GlobalFit,
        ids: &'a [String],
        data: impl Into<String>,
        by: impl Into<String>,
        formula: impl Into<String>,
        solve_s: f64,
    ) -> Self {
        GlobalSummary { fit, ids, data: data.into(), by: by.into(), formula: formula.into(), solve_s }
    }

    /// One line: outcome, iterations, RSS and the shared parameters.
    pub fn brief(&self) -> String {
        let g = self.fit;
        let params: Vec<String> =
            g.nonlinear_names.iter().zip(&g.nonlinear).map(|(n, v)| format!("{n} = {}", format_number(*v))).collect();
        format!(
            "{} after {} iterations: RSS = {} over {} curves; {}",
            g.outcome.headline(),
            g.iterations,
            format_number(g.rss),
            self.ids.len(),
            params.join(", ")
        )
    }

    /// The full text report (what `sepfit fit --global` prints; the first 20 curves' linear
    /// coefficients).
    pub fn full(&self) -> String {
        let g = self.fit;
        let n_curves = self.ids.len();
        let mut s = format!("sepfit fit --global: {} ({} curves grouped by `{}`)\n", self.data, n_curves, self.by);
        s += &format!("formula     {}\n", self.formula);
        s += &format!(
            "shared      {} (nonlinear)\nper curve   {} (linear, eliminated)\n\n",
            g.nonlinear_names.join(", "),
            g.linear_names.join(", ")
        );
        s += &format!("{:<12} {:>15} {:>13}\n", "Parameter", "Estimate", "Std. Error");
        for (k, n) in g.nonlinear_names.iter().enumerate() {
            s += &format!("{:<12} {:>15} {:>13}\n", n, format_number(g.nonlinear[k]), format_number(g.nonlinear_std_errors[k]));
        }
        let shown = n_curves.min(20);
        s += &format!("\nlinear coefficients ({shown} of {n_curves} curves shown; --format json lists all):\n{:<12}", "curve");
        for n in &g.linear_names {
            s += &format!(" {n:>14}");
        }
        s += &format!(" {:>14}\n", "rss");
        for (c, id) in self.ids.iter().take(shown).enumerate() {
            s += &format!("{id:<12}");
            for j in 0..g.linear_names.len() {
                s += &format!(" {:>14}", format_number(g.linear[c][j]));
            }
            s += &format!(" {:>14}\n", format_number(g.curve_rss[c]));
        }
        s += &format!("\nResidual standard error: {} on {} degrees of freedom\n", format_number(g.residual_std_error), g.dof);
        s += &format!(
            "{} after {} iterations, {:.3} ms\nTermination: {}\n",
            g.outcome.headline(),
            g.iterations,
            self.solve_s * 1e3,
            g.termination.message()
        );
        for w in g.warning_messages() {
            s += &format!("warning: {w}\n");
        }
        for n in &g.notes {
            s += &format!("note: {n}\n");
        }
        s
    }

    /// The JSON report (what `sepfit fit --global --format json` prints).
    pub fn to_json(&self) -> Value {
        let g = self.fit;
        let curves = self
            .ids
            .iter()
            .enumerate()
            .map(|(c, id)| CurveJson {
                curve: id,
                linear: g.linear_names.iter().enumerate().map(|(j, n)| (n.clone(), to_value(&g.linear[c][j]))).collect(),
                rss: g.curve_rss[c],
            })
            .collect();
        let parameters = g
            .nonlinear_names
            .iter()
            .enumerate()
            .map(|(k, n)| SharedJson { name: n, value: g.nonlinear[k], std_error: g.nonlinear_std_errors[k], linear: false })
            .collect();
        to_value(&GlobalJson {
            data: &self.data,
            formula: &self.formula,
            global: true,
            curves,
            n_curves: self.ids.len(),
            converged: g.converged,
            status: g.outcome,
            termination: g.termination,
            termination_message: g.termination.message(),
            parameters,
            rss: g.rss,
            dof: g.dof,
            residual_std_error: g.residual_std_error,
            iterations: g.iterations,
            warnings: g.warning_messages(),
            notes: &g.notes,
            timing: Timing { solve_s: self.solve_s, repeats: None, statistic: None },
        })
    }
}
