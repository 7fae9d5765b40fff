//! # sepfit-plot: the pictures people want from a fit
//!
//! * [`draw_landscape`]: a loss surface over two parameters on log-spaced filled contour levels
//!   with a labelled colour key, and optimiser paths drawn across it.
//! * [`draw_fit`]: data with the fitted curve, and the residuals in a panel underneath.
//!
//! PNG or SVG by the output file's extension. Text uses a bundled DejaVu Sans font, so no system
//! font libraries are needed. Long paths and fine grids are thinned to what the eye can see, so
//! SVG files stay small.
#![deny(missing_docs)]

use plotters::coord::Shift;
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
    /// x-axis label.
    pub x_label: &'a str,
    /// Response label.
    pub y_label: &'a str,
    /// Title.
    pub title: &'a str,
    /// Image size in pixels.
    pub size: (u32, u32),
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
    let (ya, yb) = range(f.observed.iter().chain(f.fitted).copied().chain(f.curve.iter().flat_map(|c| c.1.iter().copied())));
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
