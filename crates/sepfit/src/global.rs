//! Global fits by name: all curves share the nonlinear parameters `b`, each has its own linear
//! coefficients `a_c` ([`fit_global`]). The problem itself, variable projection with multiple
//! right-hand sides, is [`crate::problems::global::GlobalProblem`].

use crate::error::FitError;
use crate::fit::{FitWarning, Outcome};
use crate::formula::CompiledFormula;
use crate::model::{ModelError, SeparableModel};
use crate::named::{NamedOptions, ProblemError, resolve};
use crate::problems::global::GlobalProblem;
use crate::solvers::lm::{self, LeastSquaresProblem, LmOptions, Termination};
use crate::search;
use crate::stats;
use faer::Mat;

/// The result of a global fit.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct GlobalFit {
    /// Nonlinear parameter names.
    pub nonlinear_names: Vec<String>,
    /// Shared nonlinear parameters.
    pub nonlinear: Vec<f64>,
    /// Their standard errors (from the full problem's covariance, linear coefficients of every
    /// curve accounted for).
    pub nonlinear_std_errors: Vec<f64>,
    /// Their correlation matrix.
    pub correlation: Option<Mat<f64>>,
    /// Linear parameter names.
    pub linear_names: Vec<String>,
    /// Per-curve linear coefficients, `linear[c][j]`.
    pub linear: Vec<Vec<f64>>,
    /// Residual sum of squares over all curves.
    pub rss: f64,
    /// Per-curve residual sums of squares.
    pub curve_rss: Vec<f64>,
    /// Degrees of freedom `Σ n_c − q − p·C`.
    pub dof: usize,
    /// Residual standard error.
    pub residual_std_error: f64,
    /// LM iterations.
    pub iterations: usize,
    /// Termination.
    pub termination: Termination,
    /// How the fit ended (as for a single fit: degenerate when the basis or the Jacobian of the
    /// shared parameters is rank deficient).
    pub outcome: Outcome,
    /// `outcome == Outcome::Converged`.
    pub converged: bool,
    /// Warnings, as for a single fit (parameter indices are of the shared nonlinear ones).
    pub warnings: Vec<FitWarning>,
    /// Remarks (e.g. that the shared parameters' starts were found by a search).
    pub notes: Vec<String>,
}

impl GlobalFit {
    /// The warnings in words, naming the parameters.
    pub fn warning_messages(&self) -> Vec<String> {
        self.warnings.iter().map(|w| w.message_with(|k| self.nonlinear_names.get(k).cloned().unwrap_or_default())).collect()
    }
}

/// Errors of a global fit.
#[derive(Debug, thiserror::Error)]
pub enum GlobalError {
    /// Options or formula problem.
    #[error(transparent)]
    Problem(#[from] ProblemError),
    /// No curves were given.
    #[error("no curves to fit")]
    NoCurves,
    /// A curve's independent variable differs from the first curve's.
    #[error("curve {curve} has different values of `{column}` from curve 0; a global fit needs the same `{column}` for every curve")]
    DifferentColumn {
        /// Zero-based curve index.
        curve: usize,
        /// The column.
        column: String,
    },
    /// A curve has another number of points than the first.
    #[error("curve {curve} has {got} points but curve 0 has {expected}; a global fit needs the same points for every curve")]
    DifferentLength {
        /// Zero-based curve index.
        curve: usize,
        /// Its points.
        got: usize,
        /// The first curve's.
        expected: usize,
    },
    /// A curve's data cannot be used by the model.
    #[error("curve {curve}: {source}")]
    Curve {
        /// Zero-based curve index.
        curve: usize,
        /// What is wrong.
        source: crate::formula::FormulaModelError,
    },
    /// The solver could not run.
    #[error(transparent)]
    Fit(#[from] FitError),
}

/// The start of a global fit without given starts: the summed reduced loss of all curves at
/// the search's Sobol points ([`search::sample_points`]), the best distinct points polished by
/// Levenberg–Marquardt, the end with the lowest loss among those that converged (the fit then
/// runs from it). `None` if no point gave a finite loss.
fn global_search<M: SeparableModel + ?Sized>(
    prob: &mut GlobalProblem<'_, M>,
    ranges: &[search::SearchRange],
    blocks: &[Vec<Vec<usize>>],
    sopts: &search::SearchOptions,
    lm_opts: &LmOptions,
    resolved: &crate::named::Resolved,
) -> Option<Vec<f64>> {
    let d = ranges.iter().filter(|r| r.kind != search::RangeKind::Fixed).count();
    let points = search::sample_points(ranges, blocks, if d == 0 { 1 } else { sopts.samples_for(ranges) }, sopts.seed);
    let inside = |b: &[f64]| b.iter().enumerate().all(|(k, v)| v.is_finite() && resolved.lower[k] <= *v && *v <= resolved.upper[k]);
    let mut r = vec![0.0; prob.n_residuals()];
    let mut scored: Vec<(f64, usize)> = Vec::new();
    for (i, (_, b)) in points.iter().enumerate() {
        if inside(b) && prob.residuals(b, &mut r).is_ok() {
            let l: f64 = r.iter().map(|v| v * v).sum();
            if l.is_finite() {
                scored.push((l, i));
            }
        }
    }
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    let picked = search::distinct_best(&points, &scored, d, sopts.candidates.max(1));
    let mut best: Option<(bool, f64, Vec<f64>)> = None;
    for i in picked {
        let Ok(rep) = lm::levenberg_marquardt(prob, &points[i].1, lm_opts) else { continue };
        let ok = rep.termination.is_converged();
        let better = match &best {
            None => true,
            Some((bok, bcost, _)) => (ok && !bok) || (ok == *bok && rep.cost < *bcost),
        };
        if better && rep.cost.is_finite() {
            best = Some((ok, rep.cost, rep.x));
        }
    }
    best.map(|(_, _, x)| x)
}

/// Fits all curves with shared nonlinear parameters. `curves[c][j]` is column `j` (in the order
/// of `column_names`) of curve `c`, owned (`Vec<Vec<f64>>`) or borrowed (`Vec<&[f64]>`); every
/// curve must have the same values in the columns the model's right-hand side uses (a common
/// time axis, say), and only its response differs. With `opts.sigma` naming a column, rows are
/// weighted by `1/σ`; that column too must be the same for every curve (one QR of the weighted
/// basis serves them all).
pub fn fit_global<C, S>(formula: &str, column_names: &[String], opts: &NamedOptions, curves: &[C]) -> Result<GlobalFit, GlobalError>
where
    C: AsRef<[S]>,
    S: AsRef<[f64]>,
{
    let resolved = resolve(formula, column_names, opts)?;
    let sigma = match &opts.sigma {
        None => None,
        Some(s) => Some(column_names.iter().position(|c| c == s).ok_or_else(|| ProblemError::MissingSigmaColumn {
            name: s.clone(),
            columns: column_names.to_vec(),
        })?),
    };
    let m = &resolved.formula;
    let first: Vec<&[f64]> = curves.first().ok_or(GlobalError::NoCurves)?.as_ref().iter().map(AsRef::as_ref).collect();
    if first.len() != column_names.len() {
        return Err(ProblemError::from(crate::formula::FormulaModelError::ColumnCount {
            expected: column_names.len(),
            got: first.len(),
        })
        .into());
    }
    // Columns the right-hand side uses (and the weights) must agree across curves.
    let mut shared: Vec<usize> = resolved.compiled.rhs_columns();
    shared.extend(sigma);
    for (ci, c) in curves.iter().enumerate() {
        let c = c.as_ref();
        for &col in &shared {
            if c.get(col).map(AsRef::as_ref) != Some(first[col]) {
                return Err(GlobalError::DifferentColumn { curve: ci, column: column_names[col].clone() });
            }
        }
    }
    let mut model = CompiledFormula::bind(&resolved.compiled, &first).map_err(ProblemError::from)?;
    let mut ys = Vec::with_capacity(curves.len());
    let mut cols: Vec<&[f64]> = Vec::with_capacity(first.len());
    for (ci, c) in curves.iter().enumerate() {
        cols.clear();
        cols.extend(c.as_ref().iter().map(AsRef::as_ref));
        model.set_data(&cols).map_err(|source| GlobalError::Curve { curve: ci, source })?;
        if let Some(y0) = ys.first().map(Vec::len)
            && model.response().len() != y0
        {
            return Err(GlobalError::DifferentLength { curve: ci, got: model.response().len(), expected: y0 });
        }
        ys.push(model.response().to_vec());
    }
    model.set_data(&first).map_err(ProblemError::from)?;
    let weights = match sigma {
        None => None,
        Some(s) => {
            let sd = first[s];
            let n = model.n_obs();
            if sd.len() != n {
                let name = column_names[s].clone();
                return Err(ProblemError::SigmaLength { name, got: sd.len(), expected: n }.into());
            }
            if let Some(index) = sd.iter().position(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(FitError::BadSigma { index, value: sd[index] }.into());
            }
            Some(sd.iter().map(|v| 1.0 / v).collect::<Vec<f64>>())
        }
    };
    let (n, p, q) = (model.n_obs(), model.n_linear(), model.n_nonlinear());
    let nc = curves.len();
    if n * nc <= q + p * nc {
        return Err(FitError::TooFewObservations { n: n * nc, params: q + p * nc }.into());
    }
    // Starts not given (or a search asked for): ranges from the formula and the first curve.
    let searching = opts.search.is_some() || resolved.given.iter().any(|g| !g);
    let search_ranges = searching.then(|| {
        let starts: Vec<Option<f64>> = resolved.start.iter().zip(&resolved.given).map(|(s, g)| g.then_some(*s)).collect();
        let ranges = search::ranges_for(m, &first, &ys[0], &starts, &resolved.lower, &resolved.upper, opts.search.is_some());
        let blocks = search::exchangeable_blocks(m, &first, &ranges);
        (ranges, blocks)
    });
    let mut prob = GlobalProblem::new(&mut model, ys, false);
    if let Some(w) = weights {
        prob = prob.with_weights(w);
    }
    let lm_opts = LmOptions {
        lower: resolved.options.lm.lower.clone(),
        upper: resolved.options.lm.upper.clone(),
        max_iterations: resolved.options.lm.max_iterations,
        ..LmOptions::default()
    };
    let start = match &search_ranges {
        None => resolved.start.clone(),
        Some((ranges, blocks)) => {
            let sopts = opts.search.clone().unwrap_or_default();
            global_search(&mut prob, ranges, blocks, &sopts, &lm_opts, &resolved).unwrap_or_else(|| resolved.start.clone())
        }
    };
    let mut notes = Vec::new();
    if searching {
        let missing: Vec<String> =
            resolved.nonlinear.iter().zip(&resolved.given).filter(|(_, g)| !**g).map(|(n, _)| format!("`{n}`")).collect();
        notes.push(if missing.is_empty() {
            "the start was chosen by a search of the summed reduced loss of all curves".to_string()
        } else {
            format!(
                "no starting value for {}: found by a search of the summed reduced loss of all curves over ranges from the formula and the first curve",
                missing.join(", ")
            )
        });
    }
    let rep = match lm::levenberg_marquardt(&mut prob, &start, &lm_opts) {
        Err(lm::LmError::NonFiniteAtStart) => {
            return Err(FitError::NonFiniteAtStart(ModelError::new("the model cannot be evaluated at the start")).into());
        }
        r => r.map_err(FitError::from)?,
    };
    let mut r = vec![0.0; prob.n_residuals()];
    prob.residuals(&rep.x, &mut r).map_err(FitError::NonFiniteAtStart)?;
    let curve_rss = prob.curve_rss();
    let rss: f64 = curve_rss.iter().sum();
    let linear = (0..nc).map(|c| prob.linear(c).to_vec()).collect();
    // Covariance of b: with Kaufman's Jacobian J_K = −P⊥ ∂f/∂b, s²(J_Kᵀ J_K)⁻¹ is exactly the
    // b-block of the full problem's covariance (Schur complement over all the a_c).
    prob.set_kaufman(true);
    let rows = prob.n_residuals();
    let mut jk = vec![0.0; rows * q];
    prob.jacobian(&rep.x, &mut jk).map_err(FitError::NonFiniteAtStart)?;
    let jm = Mat::from_fn(rows, q, |i, k| jk[k * rows + i]);
    let dof = n * nc - q - p * nc;
    let st = stats::param_stats_n(jm.as_ref(), n * nc, rss, dof, &rep.x);
    let basis_rank = prob.basis_rank();
    let mut warnings = Vec::new();
    if !rep.termination.is_converged() {
        warnings.push(FitWarning::NotConverged(rep.termination));
    }
    if p > 0 && basis_rank < p {
        warnings.push(FitWarning::RankDeficientBasis { rank: basis_rank, p, eliminated: true });
    }
    if st.rank < q {
        warnings.push(FitWarning::SingularJacobian { rank: st.rank, params: q });
    } else if st.condition_number > 1e10 {
        warnings.push(FitWarning::IllConditioned { condition_number: st.condition_number });
    }
    for k in 0..q {
        if rep.at_lower[k] && lm_opts.lower.is_some() {
            warnings.push(FitWarning::AtBound { index: k, upper: false });
        }
        if rep.at_upper[k] && lm_opts.upper.is_some() {
            warnings.push(FitWarning::AtBound { index: k, upper: true });
        }
    }
    let outcome = if !rep.termination.is_converged() {
        Outcome::NotConverged
    } else if (p > 0 && basis_rank < p) || st.rank < q {
        Outcome::Degenerate
    } else {
        Outcome::Converged
    };
    Ok(GlobalFit {
        nonlinear_names: resolved.nonlinear.clone(),
        nonlinear: rep.x.clone(),
        nonlinear_std_errors: st.std_errors,
        correlation: st.correlation,
        linear_names: m.linear_params().map(|p| p.name.clone()).collect(),
        linear,
        rss,
        curve_rss,
        dof,
        residual_std_error: (rss / dof as f64).sqrt(),
        iterations: rep.iterations,
        termination: rep.termination,
        outcome,
        converged: outcome == Outcome::Converged,
        warnings,
        notes,
    })
}

