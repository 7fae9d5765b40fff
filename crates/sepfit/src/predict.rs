//! Prediction at new points with confidence and prediction bands ([`NamedFit::predict`]).
//!
//! At a new point `x` the fitted model is `f̂(x) = Σ_j â_j φ_j(x; b̂) + φ₀(x; b̂)`. Its gradient
//! in all parameters `θ = (b, a)` is exact (the formula's symbolic derivatives):
//!
//! ```text
//! g(x) = [ Σ_j â_j ∂φ_j/∂b_k + ∂φ₀/∂b_k  (k = 1…q),   φ_j(x; b̂)  (j = 1…p) ],
//! ```
//!
//! and the delta method gives the standard error of the fitted value and the bands at level
//! `1 − α` with the quantile `c = t_{ν,1−α/2}` (`z_{1−α/2}` with absolute σ):
//!
//! ```text
//! se_fit(x)² = g(x) Cov(θ) g(x)ᵀ,
//! confidence band  f̂(x) ± c · se_fit(x),
//! prediction band  f̂(x) ± c · √(se_fit(x)² + s² σ(x)²),
//! ```
//!
//! `Cov(θ)` the fit's covariance, `s² = χ²/ν` the residual variance (1 with absolute σ) and `σ(x)`
//! the standard deviation of a new observation relative to the fit's weights (1 unless given):
//! lmfit's `eval_uncertainty` (its `dely` and `dely_predicted`), with exact derivatives in place
//! of its central differences.
//!
//! ```
//! use sepfit::{Dataset, NamedOptions, fit_formula};
//! let t: Vec<f64> = (0..30).map(|i| i as f64 * 0.2).collect();
//! let y: Vec<f64> = t.iter().map(|t| 2.0 * (-0.7 * t).exp() + 0.1 + 1e-2 * (7.0 * t).sin()).collect();
//! let data = Dataset::new(vec!["t".into(), "y".into()], vec![t, y]).unwrap();
//! let r = fit_formula("y ~ a*exp(-k*t) + c", &data, &NamedOptions::with_start(&[("k", 1.0)])).unwrap();
//! let grid = Dataset::new(vec!["t".into()], vec![vec![0.5, 1.0, 8.0]]).unwrap();
//! let p = r.predict(&grid, 0.95, None).unwrap();
//! assert!(p.lower[0] < p.fit[0] && p.fit[0] < p.upper[0] && p.pred_upper[0] > p.upper[0]);
//! ```

use crate::intervals::{Distribution, check_level, default_distribution};
use crate::named::{Dataset, NamedFit};
use sepfit_expr::{ExprId, Program};

/// Fitted values at new points with their standard errors and bands.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Prediction {
    /// Confidence level of the bands.
    pub level: f64,
    /// The distribution of the quantile.
    pub distribution: Distribution,
    /// The quantile `c`.
    pub quantile: f64,
    /// The data columns the model was evaluated on, in the order of the formula's columns.
    pub columns: Vec<String>,
    /// Fitted values `f̂(x)`.
    pub fit: Vec<f64>,
    /// Standard errors of the fitted values (delta method).
    pub se_fit: Vec<f64>,
    /// Lower confidence band `f̂ − c·se_fit`.
    pub lower: Vec<f64>,
    /// Upper confidence band.
    pub upper: Vec<f64>,
    /// Lower prediction band `f̂ − c·√(se_fit² + s²σ²)`.
    pub pred_lower: Vec<f64>,
    /// Upper prediction band.
    pub pred_upper: Vec<f64>,
}

/// Why a prediction could not be made.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PredictError {
    /// A column the model needs is not among the new points' columns.
    #[error("the new points have no column `{name}`, which the model needs; their columns: {}", columns.join(", "))]
    MissingColumn {
        /// The column.
        name: String,
        /// The columns given.
        columns: Vec<String>,
    },
    /// A value of a needed column that is not finite.
    #[error("column `{name}` of the new points holds {value} at row {}", row + 1)]
    NonFinite {
        /// The column.
        name: String,
        /// Zero-based row.
        row: usize,
        /// The value.
        value: f64,
    },
    /// Columns of different lengths, or `sigma` of another length.
    #[error("column `{name}` of the new points has {got} rows, expected {expected}")]
    Length {
        /// The column (`sigma` for the standard deviations).
        name: String,
        /// Its length.
        got: usize,
        /// The first column's.
        expected: usize,
    },
    /// The fit has no covariance (singular Jacobian, no degrees of freedom).
    #[error("the fit has no covariance matrix (singular Jacobian or no residual degrees of freedom), so there are no bands")]
    NoCovariance,
    /// A bad level.
    #[error(transparent)]
    Level(#[from] crate::intervals::IntervalError),
    /// The model could not be evaluated.
    #[error("cannot evaluate the model at the new points: {0}")]
    Eval(String),
}

impl NamedFit {
    /// The fitted model at the new points in `points` (columns named as the formula's data
    /// columns; others are ignored) with confidence and prediction bands at `level` (see the
    /// [module docs](crate::predict)). `sigma` gives the standard deviations of new observations
    /// on the scale of the fit's σ (default 1) for the prediction band.
    pub fn predict(&self, points: &Dataset, level: f64, sigma: Option<&[f64]>) -> Result<Prediction, PredictError> {
        check_level(level)?;
        let m = &self.formula;
        let pool = m.pool();
        let (p, q) = (m.basis().len(), m.nonlinear_params().count());
        let mut outs: Vec<ExprId> = m.basis().to_vec();
        outs.extend(m.offset());
        outs.extend(m.basis_derivatives().iter().map(|&(_, _, e)| e));
        outs.extend(m.offset_derivatives().iter().map(|&(_, e)| e));
        // The data columns the outputs refer to, in the formula's column order.
        let mut free: Vec<_> = outs.iter().flat_map(|&e| pool.free_symbols(e)).collect();
        free.sort_unstable();
        free.dedup();
        let (mut names, mut syms) = (Vec::new(), Vec::new());
        for name in m.columns() {
            if let Some(s) = pool.find_symbol(name)
                && free.contains(&s)
            {
                names.push(name.clone());
                syms.push(s);
            }
        }
        let mut cols: Vec<&[f64]> = Vec::new();
        for name in &names {
            let c = points
                .column(name)
                .ok_or_else(|| PredictError::MissingColumn { name: name.clone(), columns: points.names().to_vec() })?;
            if let Some((row, &value)) = c.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(PredictError::NonFinite { name: name.clone(), row, value });
            }
            cols.push(c);
        }
        let n = cols.first().map_or_else(|| points.columns().first().map_or(0, |c| c.len()), |c| c.len());
        for (name, c) in names.iter().zip(&cols) {
            if c.len() != n {
                return Err(PredictError::Length { name: name.clone(), got: c.len(), expected: n });
            }
        }
        if let Some(s) = sigma
            && s.len() != n
        {
            return Err(PredictError::Length { name: "sigma".into(), got: s.len(), expected: n });
        }
        let cov = self.fit.stats.covariance.as_ref().ok_or(PredictError::NoCovariance)?;
        let prog = Program::new(pool, &outs, &m.nonlinear_syms(), &syms).map_err(|e| PredictError::Eval(e.to_string()))?;
        let mut bufs = vec![vec![0.0; n]; prog.n_outputs()];
        {
            let mut o: Vec<&mut [f64]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
            prog.run(&mut prog.workspace(), &self.fit.nonlinear, &cols, &mut o).map_err(|e| PredictError::Eval(e.to_string()))?;
        }
        let (a, has_offset) = (&self.fit.linear, m.offset().is_some());
        let d0 = p + usize::from(has_offset);
        let dof0 = d0 + m.basis_derivatives().len();
        let distribution = default_distribution(self);
        let c = distribution.two_sided_quantile(level);
        let s2 = if self.absolute_sigma { 1.0 } else { self.fit.reduced_chi_square };
        let mut out = Prediction {
            level,
            distribution,
            quantile: c,
            columns: names,
            fit: vec![0.0; n],
            se_fit: vec![0.0; n],
            lower: vec![0.0; n],
            upper: vec![0.0; n],
            pred_lower: vec![0.0; n],
            pred_upper: vec![0.0; n],
        };
        let mut g = vec![0.0; q + p];
        for i in 0..n {
            let mut f = if has_offset { bufs[p][i] } else { 0.0 };
            g.iter_mut().for_each(|v| *v = 0.0);
            for j in 0..p {
                f += a[j] * bufs[j][i];
                g[q + j] = bufs[j][i];
            }
            for (l, &(j, k, _)) in m.basis_derivatives().iter().enumerate() {
                g[k] += a[j] * bufs[d0 + l][i];
            }
            for (l, &(k, _)) in m.offset_derivatives().iter().enumerate() {
                g[k] += bufs[dof0 + l][i];
            }
            let mut var = 0.0;
            for r in 0..q + p {
                for s in 0..q + p {
                    var += g[r] * cov[(r, s)] * g[s];
                }
            }
            let se = var.max(0.0).sqrt();
            let sig = sigma.map_or(1.0, |s| s[i]);
            let pred = (var.max(0.0) + s2 * sig * sig).sqrt();
            out.fit[i] = f;
            out.se_fit[i] = se;
            out.lower[i] = f - c * se;
            out.upper[i] = f + c * se;
            out.pred_lower[i] = f - c * pred;
            out.pred_upper[i] = f + c * pred;
        }
        Ok(out)
    }
}
