//! # sepfit-plot: the pictures people want from a fit
//!
//! * [`draw_landscape`]: a loss surface over two parameters on log-spaced filled contour levels
//!   with a labelled colour key, and optimiser paths drawn across it.
//! * [`draw_fit`]: data with the fitted curve (and its confidence and prediction bands, when
//!   given), and the residuals in a panel underneath.
//! * [`draw_profiles`]: the profile statistic `τ` of each parameter in a grid of small panels,
//!   with the quantile that defines the intervals and the interval ends (R's
//!   `plot(profile(nls_fit))`).
//!
//! PNG or SVG by the output file's extension. Text uses a bundled DejaVu Sans font, so no system
//! font libraries are needed. Long paths and fine grids are thinned to what the eye can see, so
//! SVG files stay small.
#![deny(missing_docs)]

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

/// Why a picture could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The output file's extension is neither `.png` nor `.svg`.
    #[error("cannot tell the image format of `{0}`: use a file name ending in .png or .svg")]
    Format(String),
    /// Bad input (empty or mismatched data).
    #[error("{0}")]
    Input(String),
    /// The drawing backend failed (e.g. the file cannot be written).
    #[error("cannot draw `{path}`: {message}")]
    Draw {
        /// Output path.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// A polyline drawn over the landscape.
#[derive(Clone, Debug)]
pub struct Trace {
    /// Legend label.
    pub label: String,
    /// Points in data coordinates.
    pub points: Vec<(f64, f64)>,
    /// RGB colour.
    pub color: (u8, u8, u8),
}

/// A loss landscape to draw.
#[derive(Clone, Debug)]
pub struct Landscape<'a> {
    /// Grid along x.
    pub xs: &'a [f64],
    /// Grid along y.
    pub ys: &'a [f64],
    /// Values, `z[j * xs.len() + i]` at `(xs[i], ys[j])`; non-finite values are drawn as the top level.
    pub z: &'a [f64],
    /// x-axis label.
    pub x_label: &'a str,
    /// y-axis label.
    pub y_label: &'a str,
    /// Title.
    pub title: &'a str,
    /// Optimiser paths.
    pub traces: Vec<Trace>,
    /// Start point, marked with a circle.
    pub start: Option<(f64, f64)>,
    /// Optimum, marked with a cross.
    pub optimum: Option<(f64, f64)>,
    /// Image size in pixels.
    pub size: (u32, u32),
}

fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            include_bytes!("../assets/DejaVuSans.ttf"),
        );
    });
}

enum Kind {
    Png,
    Svg,
}

fn kind(out: &Path) -> Result<Kind, PlotError> {
    match out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("png") => Ok(Kind::Png),
        Some("svg") => Ok(Kind::Svg),
        _ => Err(PlotError::Format(out.display().to_string())),
    }
}

fn draw_err(out: &Path, e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw { path: out.display().to_string(), message: e.to_string() }
}

/// Log-spaced levels (every half decade, finer or coarser by the span) covering the finite
/// positive values of `z`, as exponents of 10.
pub fn log_levels(z: &[f64]) -> Vec<f64> {
    let pos = z.iter().copied().filter(|v| v.is_finite() && *v > 0.0);
    let (lo, hi) = pos.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return vec![0.0];
    }
    // Half decades; quarter decades when the loss spans under 3 decades; whole
    // or multiple decades when it spans many.
    let span = hi.log10() - lo.log10();
    let step = if span < 3.0 { 0.25 } else if span <= 12.0 { 0.5 } else { (span / 24.0).ceil() };
    let a = (lo.log10() / step).floor() * step;
    let b = ((hi.log10() / step).ceil() * step).max(a + step);
    let mut v = Vec::new();
    let mut t = a;
    while t <= b + 1e-9 {
        v.push(t);
        t += step;
    }
    v
}

/// The palette: hue from yellow (low loss) to blue (high loss).
fn level_color(i: usize, n: usize) -> RGBColor {
    let h = 0.15 + (0.7 - 0.15) * i as f64 / (n.max(2) - 1) as f64;
    hsv(h, 0.55, 1.0)
}

fn hsv(h: f64, s: f64, v: f64) -> RGBColor {
    let i = (h * 6.0).floor();
    let f = h * 6.0 - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - f * s), v * (1.0 - (1.0 - f) * s));
    let (r, g, b) = match (i as i64).rem_euclid(6) {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    };
    RGBColor((r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8)
}

/// Keeps at most `max` points of a polyline, always the first and last.
fn thin(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max < 2 {
        return points.to_vec();
    }
    let step = (points.len() - 1) as f64 / (max - 1) as f64;
    (0..max).map(|i| points[((i as f64 * step).round() as usize).min(points.len() - 1)]).collect()
}

/// Draws a loss landscape. See the crate docs.
pub fn draw_landscape(l: &Landscape<'_>, out: &Path) -> Result<(), PlotError> {
    let (nx, ny) = (l.xs.len(), l.ys.len());
    if nx < 2 || ny < 2 || l.z.len() != nx * ny {
        return Err(PlotError::Input(format!(
            "a landscape needs at least a 2×2 grid with one value per point (got {nx}×{ny} and {} values)",
            l.z.len()
        )));
    }
    fonts();
    match kind(out)? {
        Kind::Png => {
            let root = BitMapBackend::new(out, l.size).into_drawing_area();
            landscape_on(&root, l).map_err(|e| draw_err(out, e))?;
            root.present().map_err(|e| draw_err(out, e))
        }
        Kind::Svg => {
            let root = SVGBackend::new(out, l.size).into_drawing_area();
            landscape_on(&root, l).map_err(|e| draw_err(out, e))?;
            root.present().map_err(|e| draw_err(out, e))
        }
    }
}

type DrawResult<T, DB> = Result<T, DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn landscape_on<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, l: &Landscape<'_>) -> DrawResult<(), DB> {
    root.fill(&WHITE)?;
    let (w, _h) = l.size;
    let (main, key) = root.split_horizontally(w.saturating_sub(120).max(200));
    let (nx, ny) = (l.xs.len(), l.ys.len());
    let levels = log_levels(l.z);
    let top = *levels.last().unwrap_or(&0.0);
    // log10 of the loss; non-finite or non-positive values sit above the top level.
    let lz: Vec<f64> = l
        .z
        .iter()
        .map(|v| if v.is_finite() && *v > 0.0 { v.log10() } else if *v == 0.0 { levels[0] - 1.0 } else { top + 1.0 })
        .collect();
    let (x0, x1) = (l.xs[0], l.xs[nx - 1]);
    let (y0, y1) = (l.ys[0], l.ys[ny - 1]);
    let mut chart = ChartBuilder::on(&main)
        .caption(l.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    // Grid coordinates → data coordinates (the grid is uniform).
    let dx = (x1 - x0) / (nx - 1) as f64;
    let dy = (y1 - y0) / (ny - 1) as f64;
    let to_data = |p: &geo_types::Coord<f64>| (x0 + p.x * dx, y0 + p.y * dy);
    // Filled bands: paint sublevel sets {lz ≤ t} from the highest level down.
    let n_bands = levels.len() + 1;
    chart.plotting_area().fill(&level_color(n_bands - 1, n_bands))?;
    let neg: Vec<f64> = lz.iter().map(|v| -v).collect();
    let builder = contour::ContourBuilder::new(nx, ny, true);
    let thresholds: Vec<f64> = levels.iter().rev().map(|t| -t).collect();
    if let Ok(contours) = builder.contours(&neg, &thresholds) {
        for (k, c) in contours.iter().enumerate() {
            let band = levels.len() - 1 - k; // band index of {lz ≤ levels[band]}
            let color = level_color(band, n_bands);
            for poly in c.geometry() {
                let pts: Vec<(f64, f64)> = poly.exterior().0.iter().map(to_data).collect();
                if pts.len() >= 3 {
                    chart.draw_series(std::iter::once(Polygon::new(pts, color.filled())))?;
                }
            }
        }
    }
    // Contour lines on top (exact even where a band has holes).
    if let Ok(lines) = builder.lines(&lz, &levels) {
        for line in &lines {
            for ls in line.geometry() {
                let pts: Vec<(f64, f64)> = ls.0.iter().map(to_data).collect();
                chart.draw_series(std::iter::once(PathElement::new(pts, RGBColor(90, 90, 90).stroke_width(1))))?;
            }
        }
    }
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(l.x_label)
        .y_desc(l.y_label)
        .axis_desc_style(("sans-serif", 18))
        .label_style(("sans-serif", 14))
        .draw()?;
    for t in &l.traces {
        let c = RGBColor(t.color.0, t.color.1, t.color.2);
        let pts = thin(&t.points, 1500);
        chart
            .draw_series(std::iter::once(PathElement::new(pts.clone(), c.stroke_width(3))))?
            .label(&t.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
        if t.points.len() <= 60 {
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
        }
    }
    if let Some(s) = l.start {
        chart
            .draw_series(std::iter::once(Circle::new(s, 7, BLACK.stroke_width(2))))?
            .label("start")
            .legend(|(x, y)| Circle::new((x + 10, y), 6, BLACK.stroke_width(2)));
    }
    if let Some(o) = l.optimum {
        chart
            .draw_series(std::iter::once(Cross::new(o, 8, RED.stroke_width(3))))?
            .label("optimum")
            .legend(|(x, y)| Cross::new((x + 10, y), 6, RED.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    // Colour key: one box per band, labelled with log10 of the level.
    let lo = levels[0] - 0.5;
    let hi = top + 0.5;
    let mut kc = ChartBuilder::on(&key)
        .margin_top(45)
        .margin_bottom(57)
        .margin_right(10)
        .y_label_area_size(50)
        .caption("log10 loss", ("sans-serif", 14))
        .build_cartesian_2d(0.0..1.0, lo..hi)?;
    kc.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(levels.len().min(12) + 1)
        .y_label_formatter(&|v| format!("{v:.1}"))
        .label_style(("sans-serif", 13))
        .draw()?;
    let mut edges = vec![lo];
    edges.extend(levels.iter().copied());
    edges.push(hi);
    kc.draw_series((0..n_bands).map(|b| {
        Rectangle::new([(0.0, edges[b]), (1.0, edges[b + 1])], level_color(b, n_bands).filled())
    }))?;
    Ok(())
}

/// Data, fitted values and residuals to draw.
#[derive(Clone, Debug)]
pub struct FitPicture<'a> {
    /// Independent variable of each observation; `None` for models with several (then the
    /// picture shows observed against fitted, and residuals against fitted).
    pub x: Option<&'a [f64]>,
    /// Observed response.
    pub observed: &'a [f64],
    /// Fitted response at the observations.
    pub fitted: &'a [f64],
    /// The fitted curve on a fine grid of x, when there is one independent variable.
    pub curve: Option<(Vec<f64>, Vec<f64>)>,
    /// Confidence and prediction bands on the grid of `curve` (drawn behind it); ignored
    /// without a curve.
    pub bands: Option<Bands>,
    /// x-axis label.
    pub x_label: &'a str,
    /// Response label.
    pub y_label: &'a str,
    /// Title.
    pub title: &'a str,
    /// Image size in pixels.
    pub size: (u32, u32),
}

/// Confidence and prediction bands of a fitted curve at a level, one value per point of the
/// curve's grid: the confidence band `f̂ ± c·se_fit` and the wider prediction band
/// `f̂ ± c·√(se_fit² + s²σ²)` (computed by `sepfit`'s `NamedFit::predict`).
#[derive(Clone, Debug, PartialEq)]
pub struct Bands {
    /// Confidence level, e.g. 0.95 (for the legend).
    pub level: f64,
    /// Lower confidence band.
    pub lower: Vec<f64>,
    /// Upper confidence band.
    pub upper: Vec<f64>,
    /// Lower prediction band.
    pub pred_lower: Vec<f64>,
    /// Upper prediction band.
    pub pred_upper: Vec<f64>,
}

/// A level as a percentage for a legend: 0.95 → `95`, 0.975 → `97.5`.
fn percent(level: f64) -> String {
    format!("{}", (level * 1e6).round() / 1e4)
}

/// Draws data with the fitted curve and a residual panel underneath.
pub fn draw_fit(f: &FitPicture<'_>, out: &Path) -> Result<(), PlotError> {
    let n = f.observed.len();
    if n == 0 || f.fitted.len() != n || f.x.is_some_and(|x| x.len() != n) {
        return Err(PlotError::Input(format!(
            "observed ({n}), fitted ({}) and x values must have the same, non-zero length",
            f.fitted.len()
        )));
    }
    if let (Some(b), Some((cx, _))) = (&f.bands, &f.curve) {
        let m = cx.len();
        if [&b.lower, &b.upper, &b.pred_lower, &b.pred_upper].iter().any(|v| v.len() != m) {
            return Err(PlotError::Input(format!("the bands must have one value per point of the curve's grid ({m})")));
        }
    }
    fonts();
    match kind(out)? {
        Kind::Png => {
            let root = BitMapBackend::new(out, f.size).into_drawing_area();
            fit_on(&root, f).map_err(|e| draw_err(out, e))?;
            root.present().map_err(|e| draw_err(out, e))
        }
        Kind::Svg => {
            let root = SVGBackend::new(out, f.size).into_drawing_area();
            fit_on(&root, f).map_err(|e| draw_err(out, e))?;
            root.present().map_err(|e| draw_err(out, e))
        }
    }
}

fn range(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = v.filter(|x| x.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    if !lo.is_finite() {
        return (-1.0, 1.0);
    }
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 0.5 * lo.abs().max(1.0) };
    (lo - pad, hi + pad)
}

/// The closed outline of a band: along `hi` over `x`, back along `lo`; `None` unless every
/// value is finite.
fn band_polygon(x: &[f64], lo: &[f64], hi: &[f64]) -> Option<Vec<(f64, f64)>> {
    if x.len() < 2 || x.iter().chain(lo).chain(hi).any(|v| !v.is_finite()) {
        return None;
    }
    let upper = thin(&x.iter().copied().zip(hi.iter().copied()).collect::<Vec<_>>(), 1000);
    let lower = thin(&x.iter().copied().zip(lo.iter().copied()).collect::<Vec<_>>(), 1000);
    Some(upper.into_iter().chain(lower.into_iter().rev()).collect())
}

fn fit_on<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, f: &FitPicture<'_>) -> DrawResult<(), DB> {
    root.fill(&WHITE)?;
    let h = f.size.1;
    let (upper, lower) = root.split_vertically((h as f64 * 0.68) as u32);
    let resid: Vec<f64> = f.observed.iter().zip(f.fitted).map(|(o, p)| o - p).collect();
    // Horizontal axis: x, or the fitted values.
    let hx: Vec<f64> = match f.x {
        Some(x) => x.to_vec(),
        None => f.fitted.to_vec(),
    };
    let x_label = if f.x.is_some() { f.x_label.to_string() } else { format!("fitted {}", f.y_label) };
    let (xa, xb) = range(hx.iter().copied().chain(f.curve.iter().flat_map(|c| c.0.iter().copied())));
    let bands = f.bands.as_ref().filter(|_| f.curve.is_some());
    let band_values = bands.iter().flat_map(|b| b.pred_lower.iter().chain(&b.pred_upper).chain(&b.lower).chain(&b.upper).copied());
    let (ya, yb) = range(f.observed.iter().chain(f.fitted).copied().chain(f.curve.iter().flat_map(|c| c.1.iter().copied())).chain(band_values));
    let mut top = ChartBuilder::on(&upper)
        .caption(f.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(xa..xb, ya..yb)?;
    top.configure_mesh()
        .light_line_style(RGBColor(235, 235, 235))
        .y_desc(if f.x.is_some() { f.y_label.to_string() } else { format!("observed {}", f.y_label) })
        .axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 13))
        .draw()?;
    let blue = RGBColor(31, 119, 180);
    if let (Some(b), Some((cx, _))) = (bands, &f.curve) {
        // Behind the curve: the prediction band lighter, the confidence band darker over it.
        let pct = percent(b.level);
        for (lo, hi, alpha, what) in [(&b.pred_lower, &b.pred_upper, 0.13, "prediction"), (&b.lower, &b.upper, 0.3, "confidence")] {
            let Some(poly) = band_polygon(cx, lo, hi) else { continue };
            let fill = RED.mix(alpha);
            top.draw_series(std::iter::once(Polygon::new(poly, fill.filled())))?
                .label(format!("{pct}% {what} band"))
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], fill.filled()));
        }
    }
    if let Some((cx, cy)) = &f.curve {
        let pts = thin(&cx.iter().copied().zip(cy.iter().copied()).collect::<Vec<_>>(), 2000);
        top.draw_series(std::iter::once(PathElement::new(pts, RED.stroke_width(2))))?
            .label("fit")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    } else {
        // Observed against fitted: the identity line.
        top.draw_series(std::iter::once(PathElement::new(vec![(xa, xa), (xb, xb)], RED.stroke_width(2))))?
            .label("observed = fitted")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    }
    let step = (f.observed.len() / 5000).max(1);
    top.draw_series(hx.iter().zip(f.observed).step_by(step).map(|(&x, &y)| Circle::new((x, y), 3, blue.filled())))?
        .label("data")
        .legend(move |(x, y)| Circle::new((x + 10, y), 3, blue.filled()));
    top.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()?;
    let (ra, rb) = range(resid.iter().copied().chain([0.0]));
    let mut bot = ChartBuilder::on(&lower)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(xa..xb, ra..rb)?;
    bot.configure_mesh()
        .light_line_style(RGBColor(235, 235, 235))
        .x_desc(x_label)
        .y_desc("residual")
        .axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 13))
        .draw()?;
    bot.draw_series(std::iter::once(PathElement::new(vec![(xa, 0.0), (xb, 0.0)], BLACK.stroke_width(1))))?;
    bot.draw_series(hx.iter().zip(&resid).step_by(step).map(|(&x, &r)| Circle::new((x, r), 3, blue.filled())))?;
    Ok(())
}

/// One parameter's profile to draw (see [`draw_profiles`]).
#[derive(Clone, Debug)]
pub struct ProfilePanel<'a> {
    /// The parameter's name (the panel's title and x label).
    pub name: &'a str,
    /// Held values `v`, increasing.
    pub values: &'a [f64],
    /// The signed root of the profile statistic at each of `values`.
    pub tau: &'a [f64],
    /// The estimate (`τ = 0`), marked.
    pub estimate: f64,
    /// The interval's lower end: a vertical line where finite.
    pub lower: f64,
    /// The interval's upper end.
    pub upper: f64,
}

/// Profiles of several parameters, one panel each, in a grid.
#[derive(Clone, Debug)]
pub struct ProfilePicture<'a> {
    /// One panel per parameter.
    pub panels: Vec<ProfilePanel<'a>>,
    /// The quantile `q` of the intervals: horizontal lines at `τ = ±q`.
    pub quantile: f64,
    /// The confidence level (for the legend).
    pub level: f64,
    /// Title over all panels.
    pub title: &'a str,
    /// Size of one panel in pixels.
    pub panel_size: (u32, u32),
}

/// Columns and rows of a grid of `n` panels: as square as it can be, wider than tall.
pub fn panel_grid(n: usize) -> (usize, usize) {
    let cols = (1..=n.max(1)).find(|c| c * c >= n).unwrap_or(1);
    (cols, n.max(1).div_ceil(cols))
}

/// Height of the title strip over the panels.
const TITLE_H: u32 = 40;

/// Draws the profile of each parameter: `τ(v)` against the held value `v` (a line through the
/// traced points, which are marked), horizontal dashed lines at `τ = ±q`, vertical lines at the
/// interval ends and a cross at the estimate. The panels are laid out by [`panel_grid`].
pub fn draw_profiles(p: &ProfilePicture<'_>, out: &Path) -> Result<(), PlotError> {
    if p.panels.is_empty() {
        return Err(PlotError::Input("no profiles to draw".into()));
    }
    if let Some(b) = p.panels.iter().find(|b| b.values.len() != b.tau.len()) {
        return Err(PlotError::Input(format!("profile of {}: {} values but {} τ", b.name, b.values.len(), b.tau.len())));
    }
    let (cols, rows) = panel_grid(p.panels.len());
    let size = (p.panel_size.0 * cols as u32, p.panel_size.1 * rows as u32 + TITLE_H);
    fonts();
    match kind(out)? {
        Kind::Png => {
            let root = BitMapBackend::new(out, size).into_drawing_area();
            profiles_on(&root, p, (cols, rows)).map_err(|e| draw_err(out, e))?;
            root.present().map_err(|e| draw_err(out, e))
        }
        Kind::Svg => {
            let root = SVGBackend::new(out, size).into_drawing_area();
            profiles_on(&root, p, (cols, rows)).map_err(|e| draw_err(out, e))?;
            root.present().map_err(|e| draw_err(out, e))
        }
    }
}

fn profiles_on<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, p: &ProfilePicture<'_>, (cols, rows): (usize, usize)) -> DrawResult<(), DB> {
    root.fill(&WHITE)?;
    let (head, body) = root.split_vertically(TITLE_H);
    head.titled(p.title, ("sans-serif", 20))?;
    let areas = body.split_evenly((rows, cols));
    let q = p.quantile;
    let blue = RGBColor(31, 119, 180);
    let grey = RGBColor(110, 110, 110);
    let pct = percent(p.level);
    for (k, (panel, area)) in p.panels.iter().zip(&areas).enumerate() {
        let finite: Vec<(f64, f64)> = panel.values.iter().copied().zip(panel.tau.iter().copied()).filter(|(v, t)| v.is_finite() && t.is_finite()).collect();
        let ends = [panel.lower, panel.upper, panel.estimate].into_iter().filter(|v| v.is_finite());
        let (xa, xb) = range(finite.iter().map(|p| p.0).chain(ends));
        let (ya, yb) = range(finite.iter().map(|p| p.1).chain([-q, q]));
        let mut chart = ChartBuilder::on(area)
            .caption(panel.name, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(xa..xb, ya..yb)?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(235, 235, 235))
            .x_desc(panel.name)
            .y_desc("τ")
            .x_labels(5)
            .axis_desc_style(("sans-serif", 15))
            .label_style(("sans-serif", 12))
            .draw()?;
        let first = k == 0;
        for (j, level) in [q, -q].into_iter().enumerate() {
            let s = chart.draw_series(std::iter::once(DashedPathElement::new(vec![(xa, level), (xb, level)], 6, 4, grey.stroke_width(1))))?;
            if first && j == 0 {
                s.label(format!("τ = ±{q:.4}")).legend(move |(x, y)| DashedPathElement::new(vec![(x, y), (x + 20, y)], 6, 4, grey.stroke_width(1)));
            }
        }
        let mut labelled = false;
        for end in [panel.lower, panel.upper].into_iter().filter(|v| v.is_finite()) {
            let s = chart.draw_series(std::iter::once(PathElement::new(vec![(end, ya), (end, yb)], RED.stroke_width(1))))?;
            if first && !labelled {
                s.label(format!("{pct}% interval")).legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(1)));
                labelled = true;
            }
        }
        chart.draw_series(std::iter::once(PathElement::new(finite.clone(), blue.stroke_width(2))))?;
        if finite.len() <= 200 {
            chart.draw_series(finite.iter().map(|&pt| Circle::new(pt, 2, blue.filled())))?;
        }
        if panel.estimate.is_finite() {
            chart.draw_series(std::iter::once(Cross::new((panel.estimate, 0.0), 5, BLACK.stroke_width(2))))?;
        }
        if first {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 12))
                .position(SeriesLabelPosition::UpperLeft)
                .draw()?;
        }
    }
    Ok(())
}
