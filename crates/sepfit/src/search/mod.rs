//! Fits without starting values: a search for the best optimum in the reduced space.
//!
//! Variable projection eliminates the linear parameters `a`, so the loss that matters is the
//! reduced loss `L(b) = ‖W(y − P(b)y)‖²` over the few nonlinear parameters `b`, and one
//! evaluation of it is one small QR. The search:
//!
//! 1. derives a **range** for every nonlinear parameter from the formula's structure and the
//!    data ([`ranges`]: a location lies in its column's range, a rate between the inverse
//!    extent and the inverse spacing of its column, a dimensionless exponent in `[0.01, 100]`,
//!    …); user bounds override it, a parameter whose start is given is held there (or, when
//!    asked, searched locally around it);
//! 2. **samples** `L(b)` at `N` points of a scrambled Sobol sequence (Owen-scrambled, fixed
//!    seed: the result is reproducible) mapped onto those ranges (log-uniform for magnitudes,
//!    both signs unless the model is symmetric under a sign change; uniform for locations).
//!    Exchangeable parameters (the rates of a sum of exponentials, the centre–width pairs of
//!    several peaks) are sampled in one order only ([`symmetry`]);
//! 3. keeps the best **distinct** samples (greedily, in order of loss, at least `0.1·√d` apart in
//!    the unit cube of the `d` searched parameters), **polishes** each with the
//!    Levenberg–Marquardt fit, and returns the best converged result, with how many of the
//!    polished candidates reached the same optimum (RSS equal to 1e-7 relative): a measure
//!    of confidence that it is the global one.
//!
//! Cost: by default `N = 64·2^min(d, 6)` loss evaluations (128 for one parameter, 4,096 from
//! six on) and at most 8 polishing fits. A loss evaluation costs less than one iteration of a
//! fit (no Jacobian), so the search costs a few dozen plain fits; [`SearchOptions::samples`]
//! sets `N`.

pub mod dimensions;
pub mod ranges;
pub mod symmetry;

use crate::error::FitError;
use crate::fit::{Fit, FitOptions, Outcome, fit};
use crate::model::SeparableModel;
use crate::problems::varpro::VarProProblem;
use sepfit_expr::ModelFormula;
use std::time::Instant;

/// How a range is sampled: a value `u ∈ [0, 1)` maps monotonically onto it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RangeKind {
    /// Log-uniform on `[lo, hi]` (`0 < lo < hi`).
    Log,
    /// Log-uniform on `[−hi, −lo]`.
    NegativeLog,
    /// Log-uniform magnitude in `[lo, hi]`, either sign: a quarter of the samples negative.
    SignedLog,
    /// Uniform on `[lo, hi]`.
    Linear,
    /// Uniform on `[lo, hi]` for the middle 60 % of the samples, and beyond either end on a
    /// log scale of the distance, out to `reach`.
    Location,
    /// `1/value` uniform on `[1/hi, 1/lo]` (a period: valleys evenly spaced in frequency).
    Reciprocal,
    /// Held at `lo` (a start that was given).
    Fixed,
}

/// The range searched for one nonlinear parameter, and why.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SearchRange {
    /// Lower end (the magnitude's for the log kinds).
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
    /// How it is sampled.
    pub kind: RangeKind,
    /// For [`RangeKind::Location`]: how far beyond the ends the tails reach.
    pub reach: f64,
    /// Where the range comes from, in words.
    pub why: String,
    /// About how many separate valleys the loss has along this range (1 for most; the
    /// number of cycle counts for a period): the search samples more densely where it is large.
    #[serde(skip)]
    pub cells: f64,
    /// Whether the model is unchanged by this parameter's sign (then the positive one is
    /// reported).
    #[serde(skip)]
    pub sign_free: bool,
}

impl SearchRange {
    /// The value at `u ∈ [0, 1)`.
    pub fn value(&self, u: f64) -> f64 {
        let (lo, hi) = (self.lo, self.hi);
        let log = |t: f64| lo * (hi / lo).powf(t);
        match self.kind {
            RangeKind::Log => log(u),
            RangeKind::NegativeLog => -log(1.0 - u),
            RangeKind::SignedLog if u < 0.25 => -log(1.0 - u / 0.25),
            RangeKind::SignedLog => log((u - 0.25) / 0.75),
            RangeKind::Linear => lo + u * (hi - lo),
            RangeKind::Location => {
                let g = (0.01 * (hi - lo)).max(hi.abs().max(lo.abs()) * 1e-6).max(f64::MIN_POSITIVE);
                let tail = |t: f64| g * (self.reach.max(2.0 * g) / g).powf(t);
                if u < 0.2 {
                    lo - tail((0.2 - u) / 0.2)
                } else if u > 0.8 {
                    hi + tail((u - 0.8) / 0.2)
                } else {
                    lo + (u - 0.2) / 0.6 * (hi - lo)
                }
            }
            RangeKind::Reciprocal => 1.0 / (1.0 / lo - u * (1.0 / lo - 1.0 / hi)),
            RangeKind::Fixed => lo,
        }
    }

    /// A point inside the range (its middle in the sampling scale).
    pub fn middle(&self) -> f64 {
        match self.kind {
            RangeKind::SignedLog => self.value(0.625),
            _ => self.value(0.5),
        }
    }

    /// The range as text, e.g. `log-uniform in [0.001, 30]`.
    pub fn describe(&self) -> String {
        let f = |v: f64| crate::report::format_number(v);
        match self.kind {
            RangeKind::Log => format!("[{}, {}], log scale", f(self.lo), f(self.hi)),
            RangeKind::NegativeLog => format!("[{}, {}], log scale", f(-self.hi), f(-self.lo)),
            RangeKind::SignedLog => format!("±[{}, {}], log scale", f(self.lo), f(self.hi)),
            RangeKind::Linear => format!("[{}, {}]", f(self.lo), f(self.hi)),
            RangeKind::Location => {
                format!("[{}, {}], and beyond out to ±{} on a log scale", f(self.lo), f(self.hi), f(self.reach))
            }
            RangeKind::Reciprocal => format!("[{}, {}], uniform in 1/value", f(self.lo), f(self.hi)),
            RangeKind::Fixed => format!("held at its start {}", f(self.lo)),
        }
    }
}

/// Options of the search.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchOptions {
    /// Loss evaluations (Sobol samples); `None`: `64·2^min(d, 6)` for `d` searched parameters.
    pub samples: Option<usize>,
    /// Distinct samples screened by a short fit (at most `screen_iterations` iterations).
    pub screened: usize,
    /// Iteration limit of a screening fit.
    pub screen_iterations: usize,
    /// The best screened candidates polished by a full fit (at least 1).
    pub candidates: usize,
    /// Seed of the scrambled Sobol sequence.
    pub seed: u32,
    /// The lighter default sample count of a batch (`16·2^d`, at least 64).
    pub per_curve: bool,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions { samples: None, screened: 32, screen_iterations: 12, candidates: 8, seed: 0x005e_9f17, per_curve: false }
    }
}

impl SearchOptions {
    /// The lighter search a batch runs on every curve without starts: `16·2^d` samples (at
    /// least 64), 4 screened, 2 polished.
    pub fn per_curve() -> Self {
        SearchOptions { samples: None, screened: 4, screen_iterations: 12, candidates: 2, seed: 0x005e_9f17, per_curve: true }
    }

    /// The number of samples for the searched `ranges`: `64·2^min(d, 6)` for `d` of them, and
    /// up to 4,096 where the loss has many valleys along some (periods: `Π cells`).
    pub fn samples_for(&self, ranges: &[SearchRange]) -> usize {
        let free: Vec<&SearchRange> = ranges.iter().filter(|r| r.kind != RangeKind::Fixed).collect();
        let base = if self.per_curve { (16usize << free.len().min(6)).max(64) } else { 64usize << free.len().min(6) };
        let cells: f64 = free.iter().map(|r| r.cells.max(1.0)).product();
        let dense = if cells > 1.0 { (cells.min(4096.0)) as usize } else { 0 };
        self.samples.unwrap_or(base.max(dense)).clamp(1, 1 << 16)
    }
}

/// What the search did.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SearchReport {
    /// The range of every nonlinear parameter.
    pub ranges: Vec<SearchRange>,
    /// Loss evaluations made.
    pub samples: usize,
    /// Of those, where the loss was finite (inside the bounds, model defined).
    pub finite_samples: usize,
    /// Distinct samples screened by a short fit.
    pub screened: usize,
    /// Candidates polished by a full fit.
    pub polished: usize,
    /// Of those, how many reached the optimum returned (RSS equal to 1e-7 relative).
    pub agreeing: usize,
    /// The start the returned fit was polished from.
    pub start: Vec<f64>,
    /// Seconds spent (sampling and polishing).
    pub seconds: f64,
}

/// The search's result: the best fit and the report.
#[derive(Clone, Debug)]
pub struct Searched {
    /// The best polished fit.
    pub fit: Fit,
    /// What was searched.
    pub report: SearchReport,
}

/// Why a search could not run.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// More parameters to search than the sequence has dimensions.
    #[error("a search over {got} nonlinear parameters is not supported (at most {max}); give starting values for some of them")]
    TooManyParameters {
        /// Parameters to search.
        got: usize,
        /// The most supported.
        max: usize,
    },
    /// No sample had a finite loss and no candidate could be polished.
    #[error("no point of the search ranges gave a finite loss ({samples} tried); give starting values or bounds")]
    NothingFinite {
        /// Samples tried.
        samples: usize,
    },
    /// The fit could not run at all.
    #[error(transparent)]
    Fit(#[from] FitError),
}

/// The search ranges of a formula's nonlinear parameters on its data: structure
/// ([`ranges`]), then sign symmetry, then user bounds, then starts (`Some` where given:
/// held there, or searched within a factor of 10 / a quarter of the structural width around
/// it when `around_starts`).
pub fn ranges_for(
    formula: &ModelFormula,
    columns: &[&[f64]],
    response: &[f64],
    start: &[Option<f64>],
    lower: &[f64],
    upper: &[f64],
    around_starts: bool,
) -> Vec<SearchRange> {
    let mut r = ranges::structural_ranges(formula, columns, response);
    let mid: Vec<f64> = r.iter().map(SearchRange::middle).collect();
    let sym = symmetry::sign_symmetric(formula, columns, &mid);
    for (k, range) in r.iter_mut().enumerate() {
        if sym[k] {
            range.sign_free = true;
            if range.kind == RangeKind::SignedLog {
                range.kind = RangeKind::Log;
                range.why.push_str("; its sign does not matter");
            }
        }
        let (l, u) = (lower.get(k).copied().unwrap_or(f64::NEG_INFINITY), upper.get(k).copied().unwrap_or(f64::INFINITY));
        apply_bounds(range, l, u);
        match start.get(k).copied().flatten() {
            Some(s) if around_starts => {
                let sign_free = range.sign_free;
                around(range, s);
                range.sign_free = sign_free;
            }
            Some(s) => *range = SearchRange { lo: s, hi: s, kind: RangeKind::Fixed, reach: 0.0, cells: 1.0, sign_free: false, why: "start given".into() },
            None => {}
        }
    }
    r
}

fn apply_bounds(r: &mut SearchRange, l: f64, u: f64) {
    let log_kind = matches!(r.kind, RangeKind::Log | RangeKind::SignedLog | RangeKind::NegativeLog);
    if l.is_finite() && u.is_finite() {
        *r = if r.kind == RangeKind::Reciprocal && l > 0.0 {
            SearchRange { lo: l, hi: u, why: "the bounds given; uniform in frequency".into(), ..r.clone() }
        } else if l > 0.0 && u / l >= 20.0 {
            SearchRange { lo: l, hi: u, kind: RangeKind::Log, reach: 0.0, cells: 1.0, sign_free: false, why: "the bounds given".into() }
        } else if u < 0.0 && l / u >= 20.0 {
            SearchRange { lo: -u, hi: -l, kind: RangeKind::NegativeLog, reach: 0.0, cells: 1.0, sign_free: false, why: "the bounds given".into() }
        } else {
            SearchRange { lo: l, hi: u, kind: RangeKind::Linear, reach: 0.0, cells: 1.0, sign_free: false, why: "the bounds given".into() }
        };
        return;
    }
    if log_kind && l >= 0.0 {
        let lo = r.lo.max(l).max(f64::MIN_POSITIVE);
        let hi = if r.hi > lo { r.hi } else { lo * 100.0 };
        *r = SearchRange { lo, hi, kind: RangeKind::Log, reach: 0.0, cells: 1.0, sign_free: false, why: format!("{}, cut at the lower bound", r.why) };
    } else if log_kind && u <= 0.0 {
        let lo = r.lo.max(-u).max(f64::MIN_POSITIVE);
        let hi = if r.hi > lo { r.hi } else { lo * 100.0 };
        *r = SearchRange { lo, hi, kind: RangeKind::NegativeLog, reach: 0.0, cells: 1.0, sign_free: false, why: format!("{}, cut at the upper bound", r.why) };
    } else if !log_kind && (l.is_finite() || u.is_finite()) {
        let width = (r.hi - r.lo).max(f64::MIN_POSITIVE);
        let (lo, hi) = (r.lo.max(l), r.hi.min(u));
        let (lo, hi) = if lo < hi { (lo, hi) } else if l.is_finite() { (l, l + width) } else { (u - width, u) };
        r.lo = lo;
        r.hi = hi;
        r.why.push_str(", cut at the bounds");
    }
}

fn around(r: &mut SearchRange, s: f64) {
    let log_kind = matches!(r.kind, RangeKind::Log | RangeKind::SignedLog | RangeKind::NegativeLog | RangeKind::Reciprocal);
    *r = if log_kind && s != 0.0 {
        let (lo, hi) = (s.abs() / 10.0, s.abs() * 10.0);
        let kind = if s > 0.0 { RangeKind::Log } else { RangeKind::NegativeLog };
        SearchRange { lo, hi, kind, reach: 0.0, cells: 1.0, sign_free: false, why: "within a factor of 10 of the start given".into() }
    } else {
        let half = if log_kind { 1.0 } else { 0.25 * (r.hi - r.lo).abs().max(s.abs() * 0.1).max(f64::MIN_POSITIVE) };
        SearchRange { lo: s - half, hi: s + half, kind: RangeKind::Linear, reach: 0.0, cells: 1.0, sign_free: false, why: "around the start given".into() }
    };
}

/// The largest loss that is "the same" as `rss` for a refit that should land on the same
/// optimum (a relabelling, a sign flip): 1e-10 relative, or, for a fit exact to rounding,
/// residuals of a thousand rounding errors of the weighted data, `(1000·ε)²·‖Wy‖²`.
pub fn same_loss_limit(rss: f64, y: &[f64], sigma: Option<&[f64]>) -> f64 {
    let yy: f64 = match sigma {
        Some(s) => y.iter().zip(s).map(|(v, s)| (v / s) * (v / s)).sum(),
        None => y.iter().map(|v| v * v).sum(),
    };
    rss * (1.0 + 1e-10) + (1e3 * f64::EPSILON).powi(2) * yy.min(f64::MAX) + f64::MIN_POSITIVE
}

/// Exchangeable blocks of `formula` near the middle of `ranges` (see [`symmetry`]).
pub fn exchangeable_blocks(formula: &ModelFormula, columns: &[&[f64]], ranges: &[SearchRange]) -> Vec<Vec<Vec<usize>>> {
    let mid: Vec<f64> = ranges.iter().map(SearchRange::middle).collect();
    symmetry::exchangeable_blocks(formula, columns, &mid)
}

/// Exchangeable blocks of `formula` near the parameter point `b`: groups of blocks of
/// nonlinear-parameter indices, aligned, that swap without changing the model.
pub fn exchangeable_blocks_at(formula: &ModelFormula, columns: &[&[f64]], b: &[f64]) -> Vec<Vec<Vec<usize>>> {
    symmetry::exchangeable_blocks(formula, columns, b)
}

/// Whether `b` orders every pair of its values strictly as `reference` does: then no
/// relabelling by [`relabel`] can change it, whatever the exchangeable groups (a cheap test
/// that spares finding them after a fit that kept the start's order).
pub fn same_order(b: &[f64], reference: &[f64]) -> bool {
    b.len() == reference.len()
        && (0..b.len()).all(|i| {
            (i + 1..b.len()).all(|j| {
                (b[i] < b[j] && reference[i] < reference[j]) || (b[i] > b[j] && reference[i] > reference[j])
            })
        })
}

/// `b` with the blocks of each exchangeable group relabelled so that their lead parameters
/// are in the order of `reference`'s (the start's); `None` when already so.
pub fn relabel(b: &[f64], reference: &[f64], groups: &[Vec<Vec<usize>>]) -> Option<Vec<f64>> {
    let mut out = b.to_vec();
    for group in groups {
        let mut by_ref: Vec<&Vec<usize>> = group.iter().collect();
        by_ref.sort_by(|x, y| reference[x[0]].total_cmp(&reference[y[0]]));
        let mut by_val: Vec<&Vec<usize>> = group.iter().collect();
        by_val.sort_by(|x, y| b[x[0]].total_cmp(&b[y[0]]));
        for (dst, src) in by_ref.iter().zip(&by_val) {
            for (&k, &l) in dst.iter().zip(src.iter()) {
                out[k] = b[l];
            }
        }
    }
    (out != b).then_some(out)
}

/// Indices of the best `k` samples (`scored`: `(loss, index)` sorted by loss) that lie at least
/// `0.1·√d` apart in the unit cube of the `d` searched parameters, taken greedily in order of loss.
pub fn distinct_best(points: &[(Vec<f64>, Vec<f64>)], scored: &[(f64, usize)], d: usize, k: usize) -> Vec<usize> {
    let radius = 0.1 * (d as f64).sqrt();
    let mut picked: Vec<usize> = Vec::new();
    for &(_, i) in scored {
        if picked.len() >= k {
            break;
        }
        let ui = &points[i].0;
        let far = picked.iter().all(|&j| ui.iter().zip(&points[j].0).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt() > radius);
        if far {
            picked.push(i);
        }
    }
    picked
}

/// `b` with the blocks of each exchangeable group ordered by ascending lead parameter.
fn ascending(b: &[f64], groups: &[Vec<Vec<usize>>]) -> Vec<f64> {
    let mut out = b.to_vec();
    for group in groups {
        let mut vals: Vec<Vec<f64>> = group.iter().map(|blk| blk.iter().map(|&k| b[k]).collect()).collect();
        vals.sort_by(|x, y| x[0].total_cmp(&y[0]));
        for (blk, v) in group.iter().zip(&vals) {
            for (&k, &x) in blk.iter().zip(v) {
                out[k] = x;
            }
        }
    }
    out
}

/// The Sobol points of the search, mapped onto `ranges` and folded into one order of each
/// exchangeable group: `(unit coordinates of the searched parameters, parameter vector)`.
pub fn sample_points(ranges: &[SearchRange], blocks: &[Vec<Vec<usize>>], n: usize, seed: u32) -> Vec<(Vec<f64>, Vec<f64>)> {
    let free: Vec<usize> = (0..ranges.len()).filter(|&k| ranges[k].kind != RangeKind::Fixed).collect();
    let mut out = Vec::with_capacity(n);
    let mut u = vec![0.5; ranges.len()];
    for i in 0..n {
        for (d, &k) in free.iter().enumerate() {
            // Half a cell's jitter is already in the Owen scrambling; f32 resolution suffices.
            u[k] = f64::from(sobol_burley::sample(i as u32, d as u32, seed));
        }
        for group in blocks {
            // Blocks whose parameters are all searched are ordered by their lead's `u`.
            if group.iter().any(|blk| blk.iter().any(|&k| ranges[k].kind == RangeKind::Fixed)) {
                continue;
            }
            let mut vals: Vec<Vec<f64>> = group.iter().map(|blk| blk.iter().map(|&k| u[k]).collect()).collect();
            vals.sort_by(|a, b| a[0].total_cmp(&b[0]));
            for (blk, v) in group.iter().zip(&vals) {
                for (&k, &x) in blk.iter().zip(v) {
                    u[k] = x;
                }
            }
        }
        let b: Vec<f64> = ranges.iter().zip(&u).map(|(r, &t)| r.value(t)).collect();
        out.push((free.iter().map(|&k| u[k]).collect(), b));
    }
    out
}

/// The search a formula fit runs: ranges from the formula and the data ([`ranges_for`]),
/// exchangeable blocks, then [`search`]. Parameters with a start (`Some`) are held there, or,
/// with `around_starts`, searched around it — and then a second search over the formula's own
/// ranges (as if no start were given) runs too, and the better of the two is returned: a local
/// multi-start that can still leave a wrong valley.
#[allow(clippy::too_many_arguments)]
pub fn search_formula<M: SeparableModel + ?Sized>(
    model: &mut M,
    formula: &ModelFormula,
    columns: &[&[f64]],
    y: &[f64],
    options: &FitOptions,
    starts: &[Option<f64>],
    around_starts: bool,
    search_opts: &SearchOptions,
) -> Result<Searched, SearchError> {
    let (lower, upper) = bounds_of(options, starts.len());
    let ranges = ranges_for(formula, columns, y, starts, &lower, &upper, around_starts);
    let blocks = exchangeable_blocks(formula, columns, &ranges);
    let given: Option<Vec<f64>> = starts.iter().copied().collect();
    let extra: Vec<Vec<f64>> = given.into_iter().collect();
    let first = search(model, y, options, &ranges, &blocks, search_opts, &extra);
    if !(around_starts && starts.iter().any(Option::is_some)) {
        return first;
    }
    let free = vec![None; starts.len()];
    let wide = ranges_for(formula, columns, y, &free, &lower, &upper, false);
    let second = search(model, y, options, &wide, &blocks, search_opts, &[]);
    match (first, second) {
        (Ok(a), Ok(b)) => Ok(if is_better(&b.fit, &a.fit) { b } else { a }),
        (Ok(a), Err(_)) => Ok(a),
        (Err(_), Ok(b)) => Ok(b),
        (Err(e), Err(_)) => Err(e),
    }
}

fn bounds_of(options: &FitOptions, q: usize) -> (Vec<f64>, Vec<f64>) {
    let lower = options.lm.lower.clone().unwrap_or_else(|| vec![f64::NEG_INFINITY; q]);
    let upper = options.lm.upper.clone().unwrap_or_else(|| vec![f64::INFINITY; q]);
    (lower, upper)
}

/// Whether fit `a` is better than `b`: converged before not, then the lower loss.
pub fn is_better(a: &Fit, b: &Fit) -> bool {
    let (ca, cb) = (a.outcome == Outcome::Converged, b.outcome == Outcome::Converged);
    let (la, lb) = (a.objective(), b.objective());
    if ca != cb { ca } else { la < lb || (lb.is_nan() && !la.is_nan()) }
}

/// Searches the reduced loss of `model` over `ranges` and polishes the best distinct
/// candidates with [`fit`] under `options` (its start is replaced by each candidate's; its
/// bounds, weights and tolerances are kept). `starts` are polished first as candidates of
/// their own (e.g. the user's start).
pub fn search<M: SeparableModel + ?Sized>(
    model: &mut M,
    y: &[f64],
    options: &FitOptions,
    ranges: &[SearchRange],
    blocks: &[Vec<Vec<usize>>],
    search: &SearchOptions,
    starts: &[Vec<f64>],
) -> Result<Searched, SearchError> {
    let t0 = Instant::now();
    let d = ranges.iter().filter(|r| r.kind != RangeKind::Fixed).count();
    const MAX_DIMS: usize = 256;
    if d > MAX_DIMS {
        return Err(SearchError::TooManyParameters { got: d, max: MAX_DIMS });
    }
    let n = if d == 0 { 0 } else { search.samples_for(ranges) };
    let (lower, upper) = (options.lm.lower.clone(), options.lm.upper.clone());
    let inside = |b: &[f64]| {
        b.iter().enumerate().all(|(k, v)| {
            v.is_finite()
                && lower.as_ref().is_none_or(|l| l.get(k).is_none_or(|l| *v >= *l))
                && upper.as_ref().is_none_or(|u| u.get(k).is_none_or(|u| *v <= *u))
        })
    };
    let points = sample_points(ranges, blocks, n, search.seed);
    let mut scored: Vec<(f64, usize)> = Vec::with_capacity(n);
    {
        let mut prob = VarProProblem::compact_for(model, y, options)?;
        for (i, (_, b)) in points.iter().enumerate() {
            if !inside(b) {
                continue;
            }
            if prob.project(b).is_ok() {
                let l = prob.rss();
                if l.is_finite() {
                    scored.push((l, i));
                }
            }
        }
    }
    let finite = scored.len();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    let picked = distinct_best(&points, &scored, d, search.screened.max(search.candidates).max(1));
    // Screen: a few iterations from each distinct sample; the best ends are polished fully.
    let mut screen_opts = options.clone();
    screen_opts.lm.max_iterations = search.screen_iterations.clamp(1, options.lm.max_iterations.max(1));
    screen_opts.detail = crate::fit::Detail::Lean;
    let mut screened: Vec<(f64, Vec<f64>)> = Vec::new();
    for &i in &picked {
        let c = &points[i].1;
        if let Ok(f) = fit(model, y, &FitOptions { start: c.clone(), ..screen_opts.clone() })
            && f.objective().is_finite()
            && inside(&f.nonlinear)
        {
            // In the sampling order of exchangeable blocks (ascending leads), which the
            // polished result is labelled by.
            let b = ascending(&f.nonlinear, blocks);
            screened.push((f.objective(), b));
        }
    }
    screened.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut candidates: Vec<Vec<f64>> = starts.iter().filter(|s| inside(s)).cloned().collect();
    let given = candidates.len();
    for (rss, b) in screened {
        if candidates.len() >= given + search.candidates.max(1) {
            break;
        }
        // Screened ends that reached the same point are polished once.
        let same = candidates[given..].iter().any(|c| {
            c.iter().zip(&b).all(|(u, v)| (u - v).abs() <= 1e-6 * (u.abs() + v.abs()).max(1e-300))
        });
        if !same && rss.is_finite() {
            candidates.push(b);
        }
    }
    if d == 0 && candidates.is_empty() {
        candidates.push(ranges.iter().map(|r| r.lo).collect());
    }
    let mut fits: Vec<(Vec<f64>, Fit)> = Vec::new();
    for c in candidates {
        if let Ok(f) = fit(model, y, &FitOptions { start: c.clone(), ..options.clone() }) {
            fits.push((c, f));
        }
    }
    let polished = fits.len();
    let Some(best) = (0..fits.len()).reduce(|i, j| if is_better(&fits[j].1, &fits[i].1) { j } else { i }) else {
        return Err(SearchError::NothingFinite { samples: n });
    };
    let best_loss = fits[best].1.objective();
    let agreeing = fits
        .iter()
        .filter(|(_, f)| f.outcome == Outcome::Converged && (f.objective() - best_loss).abs() <= 1e-7 * best_loss.abs() + f64::MIN_POSITIVE)
        .count();
    let (mut start, mut fit) = fits.swap_remove(best);
    // A parameter whose sign does not matter that ended negative: report the positive twin
    // (it fits as well; the linear coefficients take the sign).
    let flips: Vec<usize> =
        (0..ranges.len()).filter(|&k| ranges[k].sign_free && fit.nonlinear[k] < 0.0).collect();
    if !flips.is_empty() {
        let mut twin = fit.nonlinear.clone();
        flips.iter().for_each(|&k| twin[k] = -twin[k]);
        if inside(&twin)
            && let Ok(g) = self::fit(model, y, &FitOptions { start: twin.clone(), ..options.clone() })
            && g.outcome == Outcome::Converged
            && g.objective() <= same_loss_limit(fit.objective(), y, options.sigma.as_deref())
        {
            (start, fit) = (twin, g);
        }
    }
    let report = SearchReport {
        ranges: ranges.to_vec(),
        samples: n,
        finite_samples: finite,
        screened: picked.len(),
        polished,
        agreeing,
        start,
        seconds: t0.elapsed().as_secs_f64(),
    };
    Ok(Searched { fit, report })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_order_implies_no_relabelling() {
        // Every grouping of 4 parameters into exchangeable singletons or pairs.
        let groups: Vec<Vec<Vec<Vec<usize>>>> = vec![
            vec![vec![vec![0], vec![1], vec![2], vec![3]]],
            vec![vec![vec![0, 1], vec![2, 3]]],
            vec![vec![vec![1, 0], vec![3, 2]]],
            vec![vec![vec![0], vec![3]], vec![vec![1], vec![2]]],
        ];
        let mut state = 7u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let (mut kept, mut moved) = (0, 0);
        for _ in 0..2000 {
            let b: Vec<f64> = (0..4).map(|_| next()).collect();
            let r: Vec<f64> = (0..4).map(|_| next()).collect();
            if same_order(&b, &r) {
                kept += 1;
                for g in &groups {
                    assert_eq!(relabel(&b, &r, g), None, "b {b:?} reference {r:?} groups {g:?}");
                }
            } else if groups.iter().any(|g| relabel(&b, &r, g).is_some()) {
                moved += 1;
            }
        }
        assert!(kept > 10 && moved > 100, "kept {kept}, moved {moved}");
        assert!(same_order(&[0.5, 3.0], &[0.4, 2.9]) && !same_order(&[3.0, 0.5], &[0.4, 2.9]) && !same_order(&[1.0, 1.0], &[0.0, 2.0]));
    }

    #[test]
    fn range_maps_are_monotone_and_inside() {
        let kinds = [RangeKind::Log, RangeKind::NegativeLog, RangeKind::SignedLog, RangeKind::Linear, RangeKind::Location, RangeKind::Reciprocal];
        for kind in kinds {
            let r = SearchRange { lo: 0.5, hi: 20.0, kind, reach: 1000.0, why: String::new(), cells: 1.0, sign_free: false };
            let vals: Vec<f64> = (0..1000).map(|i| r.value(i as f64 / 1000.0)).collect();
            assert!(vals.windows(2).all(|w| w[0] <= w[1]), "{kind:?} is not monotone");
            let (a, b) = (vals[0], vals[999]);
            match kind {
                RangeKind::Log => assert!(a >= 0.5 && b <= 20.0),
                RangeKind::NegativeLog => assert!(a >= -20.0 && b <= -0.5),
                RangeKind::SignedLog => assert!(a >= -20.0 && b <= 20.0 && vals.iter().all(|v| v.abs() >= 0.5 - 1e-12)),
                RangeKind::Linear => assert!(a >= 0.5 && b <= 20.0),
                RangeKind::Location => assert!(a < 0.5 - 100.0 && b > 20.0 + 100.0 && a >= 0.5 - 1000.0 && b <= 1020.0),
                RangeKind::Reciprocal => assert!(a >= 0.5 - 1e-12 && b <= 20.0),
                RangeKind::Fixed => {}
            }
        }
    }

    #[test]
    fn exchangeable_samples_come_in_one_order() {
        let r = SearchRange { lo: 0.1, hi: 10.0, kind: RangeKind::Log, reach: 0.0, cells: 1.0, sign_free: false, why: String::new() };
        let pts = sample_points(&[r.clone(), r.clone(), r], &[vec![vec![0], vec![1], vec![2]]], 256, 7);
        assert!(pts.iter().all(|(_, b)| b[0] <= b[1] && b[1] <= b[2]));
    }
}
