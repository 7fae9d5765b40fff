//! Command-line definitions: what the user typed, as plain data.

use crate::args::{self, Assignments, BoundList};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Fit nonlinear models with exact derivatives.
#[derive(Parser, Debug)]
#[command(name = "sepfit", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show what sepfit sees in a model formula: response, linear and nonlinear parameters,
    /// basis functions and their exact derivatives.
    Model(ModelArgs),
    /// Fit a model formula to one dataset (CSV with a header row).
    Fit(FitArgs),
    /// Draw the variable-projection loss over two nonlinear parameters with the optimiser's path.
    Landscape(LandscapeArgs),
    /// Fit the same model to many curves, each on its own, in parallel.
    Batch(BatchArgs),
    /// Derive the exact gradient of a loss written in vectors and matrices; evaluate and check it.
    Grad(GradArgs),
    /// Minimise a loss with its derived gradient (L-BFGS or gradient descent).
    Minimize(MinimizeArgs),
    /// Compare two nested models fitted to the same data: the extra sum of squares F test
    /// (R's anova(m1, m2) on two nls fits).
    Compare(CompareArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct ModelArgs {
    /// The model formula, e.g. "y ~ a1*exp(-b1*t) + c".
    pub formula: String,
    /// Data column names, comma separated (every other identifier is a parameter).
    #[arg(long, value_delimiter = ',', required_unless_present = "data")]
    pub columns: Vec<String>,
    /// Read the column names from this CSV file's header instead of --columns.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Print expressions as LaTeX.
    #[arg(long)]
    pub latex: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Parameter options shared by `fit`, `landscape` and `batch`.
#[derive(Args, Debug)]
pub struct ParamArgs {
    /// Starting values of the nonlinear parameters, e.g. "b1=1, b2=0.5" (linear ones need none;
    /// those without one are searched for, and "auto" searches for all; may repeat).
    #[arg(long, value_parser = args::start_assignments, allow_hyphen_values = true)]
    pub start: Vec<Assignments>,
    /// Hold parameters fixed, e.g. "b2=0.3" (may repeat).
    #[arg(long, value_parser = args::assignments, allow_hyphen_values = true)]
    pub fix: Vec<Assignments>,
    /// Box bounds, e.g. "0<b1<10, b2>0" or "-5<k<5" (may repeat); a linear parameter stays
    /// linear (e.g. "a2>=0": bounded least squares inside variable projection).
    #[arg(long, value_parser = args::bound_list, allow_hyphen_values = true)]
    pub bounds: Vec<BoundList>,
    /// Column of per-point standard deviations (weights 1/sigma^2).
    #[arg(long)]
    pub sigma: Option<String>,
    /// Search for the best optimum: sample the reduced loss at N points (default: 64·2^d for d
    /// searched parameters) over ranges from the formula and the data, polish the best
    /// candidates. Parameters without --start are always searched; with --search, those with
    /// a start are searched around it (a local multi-start).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "0")]
    pub search: Option<usize>,
}

/// The loss options shared by `fit` and `batch`.
#[derive(Args, Debug)]
pub struct LossArgs {
    /// Loss minimised: linear (least squares), the robust soft_l1, huber, cauchy, arctan
    /// (scipy's least_squares semantics, scale --f-scale), or poisson (maximum likelihood for
    /// counts y >= 0).
    #[arg(long, default_value = "linear")]
    pub loss: String,
    /// Scale of the robust losses (scipy's f_scale): residuals up to about this count as inliers.
    #[arg(long, allow_hyphen_values = true)]
    pub f_scale: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// Variable projection with the exact Golub–Pereyra Jacobian (default).
    Varpro,
    /// Variable projection with Kaufman's approximate Jacobian.
    Kaufman,
    /// All parameters fitted jointly by Levenberg–Marquardt (for comparison).
    Full,
}

#[derive(Args, Debug)]
pub struct FitArgs {
    /// CSV file with a header row; formula identifiers refer to its column names.
    pub data: PathBuf,
    /// The model formula, e.g. "y ~ a1*exp(-b1*t) + c".
    #[arg(long)]
    pub model: String,
    #[command(flatten)]
    pub param_opts: ParamArgs,
    /// Fit these parameters as nonlinear even though they enter linearly (e.g. to bound them).
    #[arg(long, value_delimiter = ',')]
    pub nonlinear: Vec<String>,
    /// Fitting method.
    #[arg(long, value_enum, default_value_t = Method::Varpro)]
    pub method: Method,
    /// Maximum number of iterations.
    #[arg(long, default_value_t = 1000)]
    pub max_iter: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also draw the data, the fitted curve and the residuals to this file (.png or .svg); with
    /// one independent variable, the confidence and prediction bands at --level behind the curve.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// With --ci profile: draw the profile of every parameter (signed root of the profile
    /// statistic against the held value, ±quantile and the interval ends; R's
    /// plot(profile(fit))) to this file (.png or .svg).
    #[arg(long)]
    pub profile_plot: Option<PathBuf>,
    /// Global fit: curves (rows grouped by --by) share the nonlinear parameters, each has its own
    /// linear coefficients.
    #[arg(long, requires = "by")]
    pub global: bool,
    /// Column that names the curve of each row (with --global).
    #[arg(long)]
    pub by: Option<String>,
    /// Benchmarking aid: solve this many times in the process (data read once) and report the
    /// median `timing.solve_s`, the time of a warm solve, with the first in `first_solve_s`.
    #[arg(long, default_value_t = 1, hide = true)]
    pub repeat: usize,
    /// Confidence intervals of every parameter: `wald` (estimate ± t·SE) or `profile` (where the
    /// profiled sum of squares crosses its F quantile, as R's confint on an nls fit).
    #[arg(long, value_enum)]
    pub ci: Option<CiMethod>,
    /// Confidence level of --ci and of the --predict bands.
    #[arg(long, default_value_t = 0.95)]
    pub level: f64,
    /// Column of per-point weights 1/sigma^2 (R's nls weights=); not with --sigma.
    #[arg(long, conflicts_with = "sigma")]
    pub weights: Option<String>,
    /// Take --sigma (or --weights) as absolute standard deviations (scipy's absolute_sigma=True):
    /// the covariance is not rescaled by the reduced chi-square.
    #[arg(long)]
    pub absolute_sigma: bool,
    #[command(flatten)]
    pub loss: LossArgs,
    /// CSV of new points (columns named as in the formula) at which to predict, with confidence
    /// and prediction bands at --level; written to --predictions.
    #[arg(long, requires = "predictions")]
    pub predict: Option<PathBuf>,
    /// Where --predict writes its table: .csv or .json (columns x…, fit, se_fit, lower, upper,
    /// pred_lower, pred_upper).
    #[arg(long, requires = "predict")]
    pub predictions: Option<PathBuf>,
    /// Write the observed, fitted, residual and weighted residual value of every point to this CSV.
    #[arg(long)]
    pub residuals: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CiMethod {
    /// estimate ± t_{dof,1-α/2}·SE (normal quantile with --absolute-sigma).
    Wald,
    /// Profile likelihood: re-fit with the parameter held, find where the F statistic crosses
    /// its quantile.
    Profile,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PathKind {
    /// The Levenberg–Marquardt iterates of the fit.
    Lm,
    /// Gradient descent with a simple step search (many small normalised steps; it shows how
    /// slowly steepest descent follows a curved valley).
    Gd,
    /// Both.
    Both,
    /// No path.
    None,
}

#[derive(Args, Debug)]
pub struct LandscapeArgs {
    /// CSV file with a header row.
    pub data: PathBuf,
    /// The model formula.
    #[arg(long)]
    pub model: String,
    /// The two nonlinear parameters on the axes, e.g. "b1,b2".
    #[arg(long, value_delimiter = ',', required = true)]
    pub params: Vec<String>,
    /// Axis ranges, e.g. "b1=0:1.35, b2=0:1.35" (default: around the start, path and optimum).
    #[arg(long, default_value = "")]
    pub range: String,
    /// Grid points per axis.
    #[arg(long, default_value_t = 200)]
    pub grid: usize,
    /// Starting values (the paths start here), fixed values, bounds, weights.
    #[command(flatten)]
    pub param_opts: ParamArgs,
    /// Which optimiser path to draw.
    #[arg(long, value_enum, default_value_t = PathKind::Lm)]
    pub path: PathKind,
    /// Gradient-descent iterations (with --path gd or both).
    #[arg(long, default_value_t = 5000)]
    pub gd_iterations: usize,
    /// Output image (.png or .svg).
    #[arg(long)]
    pub out: PathBuf,
    /// Image size in pixels, e.g. 900x700.
    #[arg(long, default_value = "900x700")]
    pub size: String,
}

#[derive(Args, Debug)]
#[command(after_help = "Exit status: 0 when every curve was fitted and converged; 1 when the batch ran to the end \
and wrote its output but some curves failed (bad data, failed fit) or did not converge: the counts are printed as a \
warning, each such curve's row says why in its termination and error columns; 2 when the batch could not run \
(bad options, formula, data layout, or output).\n\n\
Data: comma-separated, RFC 4180 quoting (\"a,b\" and doubled quotes), a UTF-8 byte-order mark is ignored, lines \
starting with # are comments, blank lines are skipped. Rows are numbered from 1 among the data rows (line numbers \
count every line of the file).\n\n\
Output: written to OUT.partial (with OUT.partial.meta, the fingerprint of the model, options and data file, and \
OUT.partial.lock while running) and renamed to OUT when complete; --resume continues an interrupted OUT.partial only \
with the same formula, options and unchanged data file.")]
pub struct BatchArgs {
    /// CSV file: long format (one row per point, curves named by --by) or, with --wide, one
    /// column of x and one column per curve.
    pub data: PathBuf,
    /// The model formula. With --wide, call the curve values `y`.
    #[arg(long)]
    pub model: String,
    /// Starting values (used for every curve), fixed values, bounds, weights (long format).
    #[command(flatten)]
    pub param_opts: ParamArgs,
    /// Long format: the column naming each row's curve (rows of a curve must be contiguous).
    #[arg(long, conflicts_with = "wide")]
    pub by: Option<String>,
    /// Without starting values: learn starts from the first N curves of the run (each searched
    /// fully), then fit every curve from the learned start with the lowest loss on it; a curve
    /// that does not converge from it is searched on its own. Much faster than searching every
    /// curve when the curves are alike; results then depend on the curves learned from.
    #[arg(long, value_name = "N")]
    pub learn_starts: Option<usize>,
    /// Wide format: the first column is x, every other column is a curve.
    #[arg(long)]
    pub wide: bool,
    /// With an array of curves (`.npy`, `.npz` or a raw file with --dtype; the curves along
    /// its last axis, in C order, as `numpy.save` writes them): the independent variable,
    /// `NAME=START:STEP` (e.g. "t=0:0.05") or `NAME=FILE.npy` (a 1-D array). Curves are
    /// numbered by their flat index.
    #[arg(long, value_name = "NAME=SPEC")]
    pub x: Option<String>,
    /// With a `.npz` archive of several arrays: the one holding the curves (default: its only
    /// array, or the one named `y`).
    #[arg(long, value_name = "NAME")]
    pub array: Option<String>,
    /// The data file is raw binary values without a header, of this type: f64 or f32
    /// (little-endian), f64be or f32be; give its --shape.
    #[arg(long, value_name = "TYPE", requires = "shape")]
    pub dtype: Option<String>,
    /// The shape of a raw --dtype file, the points of a curve last, e.g. 256x256x128.
    #[arg(long, value_name = "DIMS", requires = "dtype")]
    pub shape: Option<String>,
    /// Output file: CSV, one row per curve in input order; or, when it ends in `.npy` (array
    /// inputs only), a NumPy structured array shaped like the input without its last axis,
    /// with float64 fields NAME, NAME_se for every parameter, rss, (with a --loss other than
    /// linear) loss_cost, dof, iterations, converged (1 or 0) and status (0 converged, 1 not
    /// converged, 2 degenerate, 3 error).
    #[arg(long)]
    pub out: PathBuf,
    /// Continue an interrupted run, skipping curves already written (refused if the formula,
    /// an option that changes results, or the data file differ from the interrupted run's).
    #[arg(long)]
    pub resume: bool,
    /// Worker threads (default: all cores; at most 4 per core and 256).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Maximum iterations per curve.
    #[arg(long, default_value_t = 200)]
    pub max_iter: usize,
    #[command(flatten)]
    pub loss: LossArgs,
    /// Relative tolerance of each fit (on the sum of squares, the step and the gradient). With the
    /// default 1e-12 the estimates lie within a few 1e-6 (relative) of the fully converged ones
    /// (measured on 2,000 FLIM curves, about 1e-4 standard errors); 1e-15 gives the full
    /// precision of `sepfit fit` (Gauss–Newton polishing included) at about half the speed.
    #[arg(long, default_value_t = sepfit::batch::DEFAULT_BATCH_TOL)]
    pub tol: f64,
    /// Curves handed to the workers at a time.
    #[arg(long, default_value_t = 4096, hide = true)]
    pub chunk: usize,
}

#[derive(Args, Debug)]
pub struct GradArgs {
    /// The loss, e.g. "norm2(X*w - y)^2" or "z = X*w; J = sum(log(1 + exp(z)) - y.*z)"; it
    /// may start with a minus sign ("-sum(y.*log(p))").
    #[arg(allow_hyphen_values = true)]
    pub formula: String,
    /// The variable(s) to differentiate with respect to, comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub wrt: Vec<String>,
    /// Variable declarations, e.g. "X: n x d, w: d, y: n, s" (a bare name is a scalar).
    #[arg(long = "var", default_value = "")]
    pub var: String,
    /// Values: a JSON file {"X": [[1, 2], [3, 4]], "w": [1, 2], "s": 0.5}, or a CSV file whose
    /// columns are vectors named by the header; may repeat (undeclared variables take their
    /// shapes from here).
    #[arg(long)]
    pub at: Vec<PathBuf>,
    /// Compare the gradient with central differences along random directions (needs --at).
    #[arg(long, requires = "at")]
    pub check: bool,
    /// Random directions for --check.
    #[arg(long, default_value_t = 8)]
    pub directions: usize,
    /// Also the Hessian of a scalar loss in each (vector or scalar) variable of --wrt, in matrix
    /// notation (`2·Xᵀ·X` for least squares); --check compares it with differences of the gradient.
    #[arg(long)]
    pub hessian: bool,
    /// Print formulas as LaTeX.
    #[arg(long)]
    pub latex: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Instead of the report, write code that computes the loss and its gradient(s): `numpy`
    /// writes a self-contained Python function `loss_and_grad(<variables>)` returning
    /// `(value, grad_<w>, ...)`, with the printed formula's shared subexpressions as locals.
    #[arg(long, value_enum, conflicts_with_all = ["hessian", "check", "latex"])]
    pub emit: Option<EmitLang>,
}

/// A language for `sepfit grad --emit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EmitLang {
    /// A Python function on numpy arrays.
    Numpy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MinMethod {
    /// L-BFGS with a strong-Wolfe line search.
    Lbfgs,
    /// Gradient descent: backtracking, or a fixed step with --step.
    Gd,
    /// Newton's method with the exact (derived) Hessian and a backtracking line search; where
    /// the Hessian is not positive definite a Levenberg shift `H + μI` makes the step a descent
    /// direction. Its variables must be vectors or scalars.
    Newton,
}

#[derive(Args, Debug)]
pub struct MinimizeArgs {
    /// The loss (it may start with a minus sign).
    #[arg(allow_hyphen_values = true)]
    pub formula: String,
    /// The variables to minimise over, comma separated (the others stay at their values).
    #[arg(long, value_delimiter = ',', required = true)]
    pub wrt: Vec<String>,
    /// Values (JSON, or CSV columns as vectors; may repeat): starting values of the --wrt
    /// variables and the data.
    #[arg(long, required = true)]
    pub at: Vec<PathBuf>,
    /// Variable declarations, e.g. "X: n x d, w: d, y: n".
    #[arg(long = "var", default_value = "")]
    pub var: String,
    /// Method.
    #[arg(long, value_enum, default_value_t = MinMethod::Lbfgs)]
    pub method: MinMethod,
    /// Fixed step of gradient descent (--method gd only; default: backtracking). L-BFGS
    /// chooses its steps by a line search and rejects --step.
    #[arg(long)]
    pub step: Option<f64>,
    /// Maximum number of iterations.
    #[arg(long, default_value_t = 1000)]
    pub max_iter: usize,
    /// Stop when the gradient norm is at most this (with --bounds: the projected gradient's).
    #[arg(long, default_value_t = 1e-8)]
    pub grad_tol: f64,
    /// Box bounds on --wrt variables, applied to every entry, e.g. "w>=0" or "0<=p<=1, s>0"
    /// (L-BFGS with projection; --method lbfgs only). May repeat.
    #[arg(long, value_parser = crate::args::bound_list, allow_hyphen_values = true)]
    pub bounds: Vec<crate::args::BoundList>,
    /// Report every iterate (loss, gradient norm, ‖x‖, step).
    #[arg(long)]
    pub trace: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Args, Debug)]
#[command(after_help = "F = ((RSS1 - RSS2)/(p2 - p1)) / (RSS2/(n - p2)) with Pr(>F) from the F(p2 - p1, n - p2) \
distribution, as R's anova(m1, m2). Refused (exit 2) when the fits' data, response or weights differ, the second \
model has no more free parameters than the first, its sum of squares is larger (not nested, or a worse local \
optimum), or a fit did not converge.")]
pub struct CompareArgs {
    /// CSV file with a header row; both formulas refer to its column names.
    pub data: PathBuf,
    /// The two model formulas: give --model twice, the small model first, then the big model
    /// that nests it, e.g. --model "rate ~ Vm*conc/(K + conc)" --model "rate ~ Vm*conc/(K + conc) + b*conc".
    #[arg(long, required = true)]
    pub model: Vec<String>,
    /// Starting values, fixed values and bounds (each model takes the entries naming its
    /// parameters), sigma, search.
    #[command(flatten)]
    pub param_opts: ParamArgs,
    /// Column of per-point weights 1/sigma^2 (R's nls weights=); not with --sigma.
    #[arg(long, conflicts_with = "sigma")]
    pub weights: Option<String>,
    /// Take --sigma (or --weights) as absolute standard deviations: adds the likelihood-ratio
    /// (chi-square) test beside the F test.
    #[arg(long)]
    pub absolute_sigma: bool,
    /// Maximum number of iterations of each fit.
    #[arg(long, default_value_t = 1000)]
    pub max_iter: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}
