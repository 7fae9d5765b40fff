//! NIST StRD nonlinear regression reference problems: parser and harness.
//!
//! The `.dat` files (public domain) list two starting points, certified
//! parameter values with standard deviations, the certified residual sum of
//! squares, and the data columns `y x₁ [x₂ …]`. Accuracy is measured by the
//! log relative error `LRE = −log₁₀(|x − c|/|c|)`, capped at [`LRE_CAP`].

use sepfit::{Fit, FitError, FitOptions, fit};
use sepfit::SeparableModel;

/// Builds a model from the data columns of a problem.
pub type ModelMaker = dyn Fn(&[Vec<f64>]) -> Box<dyn SeparableModel>;

/// Upper cap of [`lre`] (the certified values carry 11 significant digits).
pub const LRE_CAP: f64 = 11.0;

/// A parsed NIST StRD problem.
#[derive(Debug, Clone, PartialEq)]
pub struct NistProblem {
    /// Parameter values of "Start 1", in certified order `b1, b2, …`.
    pub start1: Vec<f64>,
    /// Parameter values of "Start 2".
    pub start2: Vec<f64>,
    /// Certified parameter values.
    pub certified: Vec<f64>,
    /// Certified standard deviations of the parameters.
    pub certified_sd: Vec<f64>,
    /// Certified residual sum of squares.
    pub certified_rss: f64,
    /// Observations `y`.
    pub y: Vec<f64>,
    /// Predictors per observation (`x[i]` has one entry per predictor column).
    pub x: Vec<Vec<f64>>,
}

/// Error parsing a NIST `.dat` file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NistParseError {
    /// No parameter lines (`b1 = …`) were found.
    #[error("no parameter lines ('b1 = start1 start2 certified sd') found")]
    NoParameters,
    /// A parameter line could not be read.
    #[error("line {line}: cannot read parameter line '{text}'")]
    BadParameterLine {
        /// 1-based line number.
        line: usize,
        /// The text.
        text: String,
    },
    /// No data block was found.
    #[error("no data block ('Data:  y  x') found")]
    NoData,
    /// No "Residual Sum of Squares" line.
    #[error("no 'Residual Sum of Squares' line found")]
    NoRss,
    /// A data line has a non-numeric entry or the wrong number of columns.
    #[error("line {line}: bad data line '{text}'")]
    BadDataLine {
        /// 1-based line number.
        line: usize,
        /// The text.
        text: String,
    },
}

/// Parses the text of a NIST StRD nonlinear regression `.dat` file.
pub fn parse_nist(text: &str) -> Result<NistProblem, NistParseError> {
    let mut p = NistProblem {
        start1: vec![],
        start2: vec![],
        certified: vec![],
        certified_sd: vec![],
        certified_rss: f64::NAN,
        y: vec![],
        x: vec![],
    };
    let mut in_data = false;
    let mut ncols = 0;
    for (ln, line) in text.lines().enumerate() {
        let toks: Vec<&str> = line.split_whitespace().collect();
        if in_data {
            if toks.is_empty() {
                continue;
            }
            let vals: Result<Vec<f64>, _> = toks.iter().map(|t| t.parse::<f64>()).collect();
            match vals {
                Ok(v) if v.len() == ncols => {
                    p.y.push(v[0]);
                    p.x.push(v[1..].to_vec());
                }
                _ => return Err(NistParseError::BadDataLine { line: ln + 1, text: line.to_string() }),
            }
            continue;
        }
        if toks.len() >= 3 && toks[0] == "Data:" && toks[1] == "y" {
            in_data = true;
            ncols = toks.len() - 1;
            continue;
        }
        if toks.len() >= 2 && toks[0].starts_with('b') && toks[1] == "=" && toks[0][1..].parse::<usize>().is_ok() {
            let nums: Vec<f64> = toks[2..].iter().filter_map(|t| t.parse::<f64>().ok()).collect();
            if nums.len() != 4 {
                return Err(NistParseError::BadParameterLine { line: ln + 1, text: line.to_string() });
            }
            p.start1.push(nums[0]);
            p.start2.push(nums[1]);
            p.certified.push(nums[2]);
            p.certified_sd.push(nums[3]);
            continue;
        }
        if line.trim_start().starts_with("Residual Sum of Squares:") {
            p.certified_rss = toks.last().and_then(|t| t.parse().ok()).ok_or(NistParseError::NoRss)?;
        }
    }
    if p.certified.is_empty() {
        return Err(NistParseError::NoParameters);
    }
    if p.y.is_empty() {
        return Err(NistParseError::NoData);
    }
    if p.certified_rss.is_nan() {
        return Err(NistParseError::NoRss);
    }
    Ok(p)
}

/// Log relative error of `x` against the certified `c`, in `[0, LRE_CAP]`
/// (absolute error if `c = 0`; 0 for non-finite `x`).
pub fn lre(x: f64, c: f64) -> f64 {
    if !x.is_finite() {
        return 0.0;
    }
    if x == c {
        return LRE_CAP;
    }
    let rel = if c == 0.0 { x.abs() } else { ((x - c) / c).abs() };
    (-rel.log10()).clamp(0.0, LRE_CAP)
}

/// Where the separable parameters sit in the certified order `b1, b2, …` (0-based).
#[derive(Debug, Clone, PartialEq)]
pub struct ParamMap {
    /// `linear[j]` = certified index of linear parameter `a_j`.
    pub linear: Vec<usize>,
    /// `nonlinear[k]` = certified index of nonlinear parameter `b_k`.
    pub nonlinear: Vec<usize>,
}

/// Outcome of one NIST run.
#[derive(Debug, Clone)]
pub struct NistOutcome {
    /// The fit.
    pub fit: Fit,
    /// Estimates in certified order.
    pub params: Vec<f64>,
    /// Standard errors in certified order.
    pub std_errors: Vec<f64>,
    /// LRE of each parameter.
    pub lre_params: Vec<f64>,
    /// LRE of each standard error.
    pub lre_std_errors: Vec<f64>,
    /// LRE of the residual sum of squares.
    pub lre_rss: f64,
}

impl NistOutcome {
    /// Smallest parameter LRE.
    pub fn min_lre_params(&self) -> f64 {
        self.lre_params.iter().cloned().fold(f64::INFINITY, f64::min)
    }
    /// Smallest standard-error LRE.
    pub fn min_lre_std_errors(&self) -> f64 {
        self.lre_std_errors.iter().cloned().fold(f64::INFINITY, f64::min)
    }
}

/// Fits `problem` from start 1 or 2 (`start` ∈ {1, 2}) with a model built by
/// `make_model(x)`, mapping separable parameters to certified order with `map`.
/// `options.start` and `options.linear_start` are overwritten from the NIST start.
pub fn run_nist(
    problem: &NistProblem,
    make_model: &ModelMaker,
    map: &ParamMap,
    options: &FitOptions,
    start: usize,
) -> Result<NistOutcome, FitError> {
    let s = if start == 2 { &problem.start2 } else { &problem.start1 };
    let mut opts = options.clone();
    opts.start = map.nonlinear.iter().map(|&i| s[i]).collect();
    opts.linear_start = Some(map.linear.iter().map(|&i| s[i]).collect());
    let mut model = make_model(&problem.x);
    let f = fit(&mut *model, &problem.y, &opts)?;
    let m = problem.certified.len();
    let mut params = vec![f64::NAN; m];
    let mut se = vec![f64::NAN; m];
    for (k, &i) in map.nonlinear.iter().enumerate() {
        params[i] = f.nonlinear[k];
        se[i] = f.stats.std_errors[f.nonlinear_index(k)];
    }
    for (j, &i) in map.linear.iter().enumerate() {
        params[i] = f.linear[j];
        se[i] = f.stats.std_errors[f.linear_index(j)];
    }
    let lre_params = params.iter().zip(&problem.certified).map(|(x, c)| lre(*x, *c)).collect();
    let lre_std_errors = se.iter().zip(&problem.certified_sd).map(|(x, c)| lre(*x, *c)).collect();
    let lre_rss = lre(f.rss, problem.certified_rss);
    Ok(NistOutcome { fit: f, params, std_errors: se, lre_params, lre_std_errors, lre_rss })
}
