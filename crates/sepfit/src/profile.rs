//! Profile-likelihood intervals (R's `confint` on an `nls` fit, lmfit's `conf_interval`).
//!
//! Hold parameter `θᵢ` at a value `v` and re-fit all the others (variable projection makes each
//! re-fit cheap: a held linear parameter moves its term into the offset, a held nonlinear one
//! leaves a smaller projection). With the profiled sum of squares `S(v)`, the fit's `Ŝ` and
//! `s² = Ŝ/ν`, the profile statistic is
//!
//! ```text
//! τ(v) = sign(v − θ̂ᵢ) √((S(v) − Ŝ)/s²),
//! ```
//!
//! (`τ²` is the F statistic of the hypothesis `θᵢ = v` with 1 and ν degrees of freedom), and
//! the interval at level `1 − α` is `{v : |τ(v)| ≤ t_{ν,1−α/2}}`: the ends are the roots of
//! `|τ(v)| = t_{ν,1−α/2}` on either side of `θ̂ᵢ`. With absolute σ, `s² = 1` and the quantile is
//! `z_{1−α/2}` (`τ²` is the likelihood-ratio statistic, χ²₁). This is the interval R's
//! `confint(nls_fit)` computes; R finds the ends by interpolating a spline through `τ` on a grid
//! of points, sepfit finds the roots themselves: a bracket grows from the Wald end (where
//! `|τ| ≈ q` when the model is nearly linear), then Brent's method, each evaluation one re-fit
//! from the nearest previous solution.
//!
//! An end the profile never reaches (the parameter is not bounded by the data on that side) is
//! `±∞` with a note; one beyond a bound of the parameter stops at the bound, with a note.

use crate::fit::Outcome;
use crate::intervals::{IntervalError, IntervalMethod, Intervals, ParamInterval, check_level, default_distribution};
use crate::named::{Dataset, NamedFit, NamedOptions, fit_formula};

/// How far (in standard errors times the quantile) the search for an end goes before it calls
/// the interval open on that side.
const MAX_REACH: f64 = 1e6;

/// Profile-likelihood intervals at confidence `level` of every fitted parameter of `fit`, which
/// was fitted to `data` with `opts` (see the [module docs](self)). The fit must have converged.
///
/// ```
/// use sepfit::{Dataset, NamedOptions, fit_formula, profile::profile_intervals};
/// let t: Vec<f64> = (0..30).map(|i| i as f64 * 0.2).collect();
/// let y: Vec<f64> = t.iter().map(|t| 2.0 * (-0.7 * t).exp() + 0.1 + 1e-2 * (7.0 * t).sin()).collect();
/// let data = Dataset::new(vec!["t".into(), "y".into()], vec![t, y]).unwrap();
/// let opts = NamedOptions::with_start(&[("k", 1.0)]);
/// let r = fit_formula("y ~ a*exp(-k*t) + c", &data, &opts).unwrap();
/// let ci = profile_intervals(&r, &data, &opts, 0.95).unwrap();
/// let (k, w) = (ci.get("k").unwrap(), r.wald_intervals(0.95).unwrap());
/// assert!(k.lower < 0.7 && 0.7 < k.upper);
/// assert!((k.upper - w.get("k").unwrap().upper).abs() < 0.1 * (k.upper - k.lower));
/// ```
pub fn profile_intervals(fit: &NamedFit, data: &Dataset, opts: &NamedOptions, level: f64) -> Result<Intervals, IntervalError> {
    check_level(level)?;
    if fit.fit.loss != crate::Loss::Linear {
        return Err(IntervalError::NotLeastSquares { loss: fit.fit.loss.name() });
    }
    if fit.fit.outcome != Outcome::Converged {
        return Err(IntervalError::NotConverged);
    }
    let distribution = default_distribution(fit);
    let s2 = if fit.absolute_sigma {
        1.0
    } else if fit.fit.dof > 0 {
        fit.fit.rss / fit.fit.dof as f64
    } else {
        return Err(IntervalError::NoDegreesOfFreedom);
    };
    let q = distribution.two_sided_quantile(level);
    let mut prof = Profiler { fit, data, opts, s2, q, refits: 0 };
    let mut params = Vec::new();
    for p in fit.params.iter().filter(|p| !p.fixed) {
        let mut notes = Vec::new();
        let (lo_bound, hi_bound) = p.bounds.unwrap_or((f64::NEG_INFINITY, f64::INFINITY));
        let lower = prof.end(&p.name, p.value, p.std_error, -1.0, lo_bound, &mut notes)?;
        let upper = prof.end(&p.name, p.value, p.std_error, 1.0, hi_bound, &mut notes)?;
        params.push(ParamInterval { name: p.name.clone(), estimate: p.value, lower, upper, notes });
    }
    Ok(Intervals { method: IntervalMethod::Profile, level, distribution, quantile: q, params, refits: prof.refits })
}

/// The profile of one parameter traced on a grid: `τ(v)` (signed, see the [module docs](self))
/// at held values `v` from the interval's lower end (and a bit beyond) to its upper end (and a
/// bit beyond), with the estimate (`τ = 0`) and the interval ends themselves among the points.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ProfileTrace {
    /// The parameter.
    pub name: String,
    /// Its estimate `θ̂ᵢ`.
    pub estimate: f64,
    /// The lower end of its profile interval (`−∞` or NaN where there is none, see
    /// [`ParamInterval`]).
    pub lower: f64,
    /// The upper end.
    pub upper: f64,
    /// Held values `v`, increasing.
    pub values: Vec<f64>,
    /// `τ(v) = sign(v − θ̂ᵢ) √((S(v) − Ŝ)/s²)` at each of `values`.
    pub tau: Vec<f64>,
}

/// Profile traces of every fitted parameter ([`profile_traces`]) with the intervals they were
/// traced about.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ProfileTraces {
    /// The profile intervals ([`profile_intervals`]); their `quantile` is the `q` with
    /// `|τ| = q` at the ends.
    pub intervals: Intervals,
    /// One trace per fitted parameter, in the order of `intervals.params`.
    pub traces: Vec<ProfileTrace>,
    /// Re-fits made for the traces (beyond the intervals' own).
    pub refits: usize,
}

/// How far beyond an interval end the trace goes, as a fraction of the distance from the
/// estimate to that end.
const TRACE_BEYOND: f64 = 0.15;

/// The profile statistic of every fitted parameter traced on a grid, for R's
/// `plot(profile(nls_fit))`: the [profile intervals](profile_intervals) at `level`, then for
/// each parameter `θᵢ` and each side the re-fits with `θᵢ` held at `points_per_side` evenly
/// spaced values `θ̂ᵢ ± h·k/points_per_side` (`k = 1…points_per_side`), out to
/// `h = 1.15·|end − θ̂ᵢ|` (not past a bound of `θᵢ`; where the side has no finite end, out to
/// `2·q·SE(θᵢ)`), plus the end itself, each re-fit started from the previous solution on the way
/// out (the same re-fit the intervals use). The estimate is a point with `τ = 0`. A point whose
/// re-fit fails is left out. Errors as [`profile_intervals`]; `points_per_side` is at least 1.
///
/// ```
/// use sepfit::{Dataset, NamedOptions, fit_formula, profile::profile_traces};
/// let t: Vec<f64> = (0..30).map(|i| i as f64 * 0.2).collect();
/// let y: Vec<f64> = t.iter().map(|t| 2.0 * (-0.7 * t).exp() + 0.1 + 1e-2 * (7.0 * t).sin()).collect();
/// let data = Dataset::new(vec!["t".into(), "y".into()], vec![t, y]).unwrap();
/// let opts = NamedOptions::with_start(&[("k", 1.0)]);
/// let r = fit_formula("y ~ a*exp(-k*t) + c", &data, &opts).unwrap();
/// let p = profile_traces(&r, &data, &opts, 0.95, 10).unwrap();
/// let k = p.traces.iter().find(|t| t.name == "k").unwrap();
/// let q = p.intervals.quantile;
/// let at_upper = k.values.iter().position(|&v| v == k.upper).unwrap();
/// assert!((k.tau[at_upper] - q).abs() < 1e-6 * q);
/// ```
pub fn profile_traces(
    fit: &NamedFit,
    data: &Dataset,
    opts: &NamedOptions,
    level: f64,
    points_per_side: usize,
) -> Result<ProfileTraces, IntervalError> {
    let intervals = profile_intervals(fit, data, opts, level)?;
    let s2 = if fit.absolute_sigma { 1.0 } else { fit.fit.rss / fit.fit.dof as f64 };
    let mut prof = Profiler { fit, data, opts, s2, q: intervals.quantile, refits: 0 };
    let n = points_per_side.max(1);
    let mut traces = Vec::new();
    for ci in &intervals.params {
        let Some(p) = fit.param(&ci.name) else { continue };
        let (lo_bound, hi_bound) = p.bounds.unwrap_or((f64::NEG_INFINITY, f64::INFINITY));
        let mut points = vec![(ci.estimate, 0.0)];
        for (sgn, end, bound) in [(-1.0, ci.lower, lo_bound), (1.0, ci.upper, hi_bound)] {
            points.extend(prof.trace_side(&ci.name, ci.estimate, p.std_error, sgn, end, bound, n)?);
        }
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (values, tau) = points.into_iter().unzip();
        traces.push(ProfileTrace { name: ci.name.clone(), estimate: ci.estimate, lower: ci.lower, upper: ci.upper, values, tau });
    }
    let refits = prof.refits;
    Ok(ProfileTraces { intervals, traces, refits })
}

struct Profiler<'a> {
    fit: &'a NamedFit,
    data: &'a Dataset,
    opts: &'a NamedOptions,
    s2: f64,
    q: f64,
    refits: usize,
}

impl Profiler<'_> {
    /// `|τ(v)|` with `name` held at `v`, re-fitting from the starts `warm` (name, value) of the
    /// other nonlinear parameters; updates `warm` to the solution. `None` if the re-fit fails.
    fn tau(&mut self, name: &str, v: f64, warm: &mut [(String, f64)]) -> Result<Option<f64>, IntervalError> {
        let mut o = self.opts.clone();
        o.fixed.push((name.to_string(), v));
        o.bounds.retain(|(n, _, _)| n != name);
        o.force_nonlinear.retain(|n| n != name);
        o.start = warm.iter().filter(|(n, _)| n != name).cloned().collect();
        // Every other parameter starts warm: a local re-fit, no search.
        o.search = None;
        self.refits += 1;
        let Ok(r) = fit_formula(&self.fit.source, self.data, &o) else { return Ok(None) };
        if !r.fit.termination.is_converged() || !r.fit.rss.is_finite() {
            return Ok(None);
        }
        let best = self.fit.fit.rss;
        let d = r.fit.rss - best;
        if d < -1e-9 * best.max(f64::MIN_POSITIVE) {
            return Err(IntervalError::BetterFit { name: name.to_string(), value: v, rss: r.fit.rss, best_rss: best });
        }
        for (n, val) in warm.iter_mut() {
            if let Some(e) = r.param(n) {
                *val = e.value;
            }
        }
        Ok(Some((d.max(0.0) / self.s2).sqrt()))
    }

    /// The signed profile of `name` (estimate `est`, standard error `se`) on side `sgn` at `n`
    /// evenly spaced held values out to a bit beyond the interval end `end` (not beyond
    /// `bound`), and at `end` itself when it is finite: `(v, τ(v))`, re-fits that fail left out.
    #[allow(clippy::too_many_arguments)]
    fn trace_side(&mut self, name: &str, est: f64, se: f64, sgn: f64, end: f64, bound: f64, n: usize) -> Result<Vec<(f64, f64)>, IntervalError> {
        let room = (bound - est).abs();
        let scale = if se.is_finite() && se > 0.0 { se } else { est.abs().max(1.0) * 1e-3 };
        let reach = if end.is_finite() { (end - est).abs() * (1.0 + TRACE_BEYOND) } else { 2.0 * self.q * scale };
        let reach = reach.min(room);
        if reach.is_nan() || reach <= 0.0 {
            return Ok(Vec::new());
        }
        let mut hs: Vec<f64> = (1..=n).map(|k| reach * k as f64 / n as f64).collect();
        // The end itself, exactly (not est + h, which may round).
        let end_h = if end.is_finite() { Some((end - est).abs()) } else { None };
        if let Some(h) = end_h {
            hs.push(h);
        }
        hs.sort_by(f64::total_cmp);
        hs.dedup();
        let mut warm: Vec<(String, f64)> =
            self.fit.nonlinear_names().iter().filter(|n| **n != name).map(|n| (n.to_string(), self.fit.param(n).map_or(1.0, |p| p.value))).collect();
        let mut out = Vec::with_capacity(hs.len());
        for h in hs {
            let v = if Some(h) == end_h { end } else if h >= room { bound } else { est + sgn * h };
            if let Some(t) = self.tau(name, v, &mut warm)? {
                out.push((v, sgn * t));
            }
        }
        Ok(out)
    }

    /// One end of the interval of `name` (estimate `est`, standard error `se`) on side `sgn`
    /// (−1 below, +1 above), not beyond `bound`.
    fn end(&mut self, name: &str, est: f64, se: f64, sgn: f64, bound: f64, notes: &mut Vec<String>) -> Result<f64, IntervalError> {
        let q = self.q;
        let side = if sgn < 0.0 { "lower" } else { "upper" };
        // The other nonlinear parameters start where the fit ended.
        let mut warm: Vec<(String, f64)> =
            self.fit.nonlinear_names().iter().filter(|n| **n != name).map(|n| (n.to_string(), self.fit.param(n).map_or(1.0, |p| p.value))).collect();
        let scale = if se.is_finite() && se > 0.0 { se } else { est.abs().max(1.0) * 1e-3 };
        let room = (bound - est).abs();
        let at = |h: f64| if h >= room { bound } else { est + sgn * h };
        // Grow a bracket [h_in, h_out] with |τ(h_in)| < q ≤ |τ(h_out)|.
        let (mut h_in, mut tau_in) = (0.0, 0.0);
        let mut h = q * scale;
        let mut failures = 0;
        let h_out;
        let tau_out;
        loop {
            let hh = h.min(room);
            let v = at(hh);
            match self.tau(name, v, &mut warm)? {
                None => {
                    failures += 1;
                    if failures > 12 || hh - h_in <= 1e-12 * scale {
                        notes.push(format!("the {side} end was not found: re-fits with {name} held beyond {v} failed"));
                        return Ok(f64::NAN);
                    }
                    h = h_in + 0.5 * (hh - h_in);
                }
                Some(t) if t >= q => {
                    (h_out, tau_out) = (hh, t);
                    break;
                }
                Some(t) => {
                    if hh >= room {
                        notes.push(format!("the profile stays below the level up to the {side} bound {bound}: the interval stops there"));
                        return Ok(bound);
                    }
                    if hh > MAX_REACH * q * scale {
                        notes.push(format!("the profile stays below the level out to {v}: the data do not bound {name} on this side"));
                        return Ok(sgn * f64::INFINITY);
                    }
                    (h_in, tau_in) = (hh, t);
                    // τ is nearly linear in h: aim at q, by at least 1.2 and at most 4 times.
                    let ratio = if t > 0.0 { (q / t).clamp(1.2, 4.0) } else { 4.0 };
                    h = hh * ratio;
                }
            }
        }
        // Brent's method on f(h) = τ(h) − q in [h_in, h_out].
        let f = |p: &mut Self, h: f64, warm: &mut [(String, f64)]| -> Result<Option<f64>, IntervalError> {
            Ok(p.tau(name, at(h), warm)?.map(|t| t - q))
        };
        let tol = 1e-11 * scale + 4.0 * f64::EPSILON * est.abs();
        let root = brent(h_in, tau_in - q, h_out, tau_out - q, tol, |h| f(self, h, &mut warm))?;
        match root {
            Some(h) => Ok(at(h)),
            None => {
                notes.push(format!("the {side} end was not found: a re-fit inside the bracket failed"));
                Ok(f64::NAN)
            }
        }
    }
}

/// Brent's root finder (zeroin) on `[a, b]` with `f(a) = fa`, `f(b) = fb` of opposite signs
/// (or zero), to an absolute tolerance `tol`; `Ok(None)` if an evaluation fails.
fn brent<E>(
    mut a: f64,
    mut fa: f64,
    mut b: f64,
    mut fb: f64,
    tol: f64,
    mut f: impl FnMut(f64) -> Result<Option<f64>, E>,
) -> Result<Option<f64>, E> {
    if fa == 0.0 {
        return Ok(Some(a));
    }
    if fb == 0.0 {
        return Ok(Some(b));
    }
    let (mut c, mut fc) = (a, fa);
    let mut d = b - a;
    let mut e = d;
    for _ in 0..200 {
        if (fb > 0.0) == (fc > 0.0) {
            (c, fc) = (a, fa);
            d = b - a;
            e = d;
        }
        if fc.abs() < fb.abs() {
            (a, b, c) = (b, c, b);
            (fa, fb, fc) = (fb, fc, fb);
        }
        let tol1 = 2.0 * f64::EPSILON * b.abs() + 0.5 * tol;
        let xm = 0.5 * (c - b);
        if xm.abs() <= tol1 || fb == 0.0 {
            return Ok(Some(b));
        }
        if e.abs() >= tol1 && fa.abs() > fb.abs() {
            let s = fb / fa;
            let (mut p, mut qq);
            if a == c {
                p = 2.0 * xm * s;
                qq = 1.0 - s;
            } else {
                let (q0, r) = (fa / fc, fb / fc);
                p = s * (2.0 * xm * q0 * (q0 - r) - (b - a) * (r - 1.0));
                qq = (q0 - 1.0) * (r - 1.0) * (s - 1.0);
            }
            if p > 0.0 {
                qq = -qq;
            }
            p = p.abs();
            if 2.0 * p < (3.0 * xm * qq - (tol1 * qq).abs()).min((e * qq).abs()) {
                e = d;
                d = p / qq;
            } else {
                d = xm;
                e = d;
            }
        } else {
            d = xm;
            e = d;
        }
        (a, fa) = (b, fb);
        b += if d.abs() > tol1 { d } else { tol1.copysign(xm) };
        fb = match f(b)? {
            Some(v) => v,
            None => return Ok(None),
        };
    }
    Ok(Some(b))
}
