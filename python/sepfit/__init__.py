"""sepfit: separable nonlinear least squares from formulas, with exact derivatives.

Write the model as a formula; sepfit finds which parameters enter linearly, eliminates them
by variable projection, and fits the rest with Levenberg-Marquardt on exact derivatives. Only
the nonlinear parameters need starting values::

    import numpy as np, sepfit
    t = np.linspace(0, 5, 50)
    y = 3 * np.exp(-0.7 * t) + 0.5
    r = sepfit.Model("y ~ a*exp(-k*t) + c").fit(y, t=t, start={"k": 1.0})
    print(r.params["k"].value, r.params["k"].stderr)

Which identifiers are data columns and which are parameters is decided by the data given to a
fit: every identifier that names a column is data, every other one (except function names and
``pi``) is a parameter.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import warnings
from collections.abc import Mapping as _Mapping  # isinstance against typing.Mapping is slow
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _sepfit
from ._sepfit import DataError, FitError, FormulaError, ParameterError, SepfitError

__version__ = _sepfit.__version__

__all__ = [
    "Model",
    "ModelResult",
    "Parameter",
    "BatchResult",
    "GlobalResult",
    "curve_fit",
    "fit_batch",
    "fit_global",
    "grad",
    "jacobian",
    "hessian",
    "Derivative",
    "minimize",
    "compare",
    "landscape",
    "plot_landscape",
    "SepfitError",
    "FormulaError",
    "DataError",
    "ParameterError",
    "FitError",
    "ConvergenceError",
    "STATUS",
    "ERRORS",
]


class ConvergenceError(FitError, RuntimeError):
    """`curve_fit` did not converge (a `RuntimeError`, as scipy raises, and a `FitError`)."""


#: Names of the status codes of :func:`fit_batch` (``BatchResult.status``).
STATUS = ("converged", "not_converged", "degenerate", "error")
#: Names of the error codes of :func:`fit_batch` (``BatchResult.error``; 0 = no error).
ERRORS = ("ok", "model", "fit", "data")

_SIGMA = "__sigma__"
#: Identifiers taken as independent variables when a model is inspected before it has seen data.
_INDEPENDENT = re.compile(r"^(x|t|time)\d*$")


def _as_float(a: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DataError(f"column `{name}` cannot be read as numbers: {e}") from None
    return arr


def _table_columns(data: Any) -> Dict[str, Any]:
    """Columns of a dict, a pandas DataFrame, a pyarrow Table or a numpy structured array."""
    if data is None:
        return {}
    if isinstance(data, _Mapping):
        return dict(data)
    if hasattr(data, "column_names") and hasattr(data, "column"):  # pyarrow.Table
        return {n: data.column(n).to_numpy() for n in data.column_names}
    if hasattr(data, "columns") and hasattr(data, "__getitem__"):  # pandas / polars DataFrame
        return {str(n): np.asarray(data[n]) for n in data.columns}
    if isinstance(data, np.ndarray) and data.dtype.names:
        return {n: data[n] for n in data.dtype.names}
    raise TypeError(f"data must be a dict of arrays, a pandas DataFrame or a pyarrow Table, not {type(data).__name__}")


def _is_table(x: Any) -> bool:
    return isinstance(x, _Mapping) or hasattr(x, "column_names") or (hasattr(x, "columns") and hasattr(x, "__getitem__") and not isinstance(x, np.ndarray))


@dataclass(frozen=True)
class Parameter:
    """One parameter of a fit."""

    name: str
    value: float
    stderr: float
    tvalue: float
    pvalue: float
    linear: bool
    fixed: bool
    start: Optional[float]
    bounds: Optional[Tuple[float, float]]
    at_bound: Optional[str]

    def __repr__(self) -> str:
        extra = " (linear)" if self.linear else " (fixed)" if self.fixed else ""
        return f"<Parameter {self.name} = {self.value:.7g} ± {self.stderr:.3g}{extra}>"


class Model:
    """A model formula, ``response ~ expression``.

    ``Model("y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + c")``: which identifiers are columns is
    known only with data, so :attr:`param_names` and friends, asked before a fit, take the
    response's identifiers and the identifiers ``x``, ``t``, ``time`` (optionally followed by
    digits: ``t1``, ``x2``) as columns, or the names given as ``independent_vars``. At fit
    time the data's column names decide; the parsed model is cached per set of column names,
    and the model resolved and compiled for a fit is cached per column names and options, so
    fitting a reused ``Model`` again does no parsing and no compilation.
    """

    #: Compiled models kept per Model (one per set of column names and options).
    _PREPARED_MAX = 32

    def __init__(self, formula: str, independent_vars: Optional[Sequence[str]] = None):
        if not isinstance(formula, str):
            raise TypeError("the formula must be a string such as 'y ~ a*exp(-k*t)'")
        self.formula = formula
        lhs, rhs = _sepfit.formula_identifiers(formula)
        self._lhs: Tuple[str, ...] = tuple(lhs)
        self._rhs: Tuple[str, ...] = tuple(rhs)
        if independent_vars is None:
            independent_vars = [n for n in rhs if _INDEPENDENT.match(n)]
        self.independent_vars: Tuple[str, ...] = tuple(independent_vars)
        self._idents = frozenset(self._lhs + self._rhs)
        self._cache: Dict[Tuple[str, ...], Any] = {}
        self._prepared: Dict[Tuple[Any, ...], Any] = {}
        self.info()  # a syntax error shows now, with its caret

    def __getstate__(self):
        return {"formula": self.formula, "independent_vars": self.independent_vars}

    def __setstate__(self, state):
        self.__init__(state["formula"], state["independent_vars"])

    # -- what sepfit sees ------------------------------------------------------------------
    def info(self, columns: Optional[Iterable[str]] = None):
        """The parsed model (`ModelInfo`) for the given column names (default: the guess)."""
        if columns is None:
            columns = list(self._lhs) + [c for c in self.independent_vars if c not in self._lhs]
        key = tuple(sorted(set(columns)))
        info = self._cache.get(key)
        if info is None:
            info = _sepfit.parse_model(self.formula, list(key))
            self._cache[key] = info
        return info

    @property
    def response_columns(self) -> Tuple[str, ...]:
        """Identifiers of the response side (``y`` in ``log(y) ~ ...``)."""
        return self._lhs

    @property
    def identifiers(self) -> Tuple[str, ...]:
        """Every identifier of the formula (columns and parameters), response side first."""
        return self._lhs + tuple(n for n in self._rhs if n not in self._lhs)

    @property
    def param_names(self) -> list:
        """Parameter names: linear ones first, then nonlinear, in order of appearance."""
        return list(self.info().param_names)

    @property
    def linear(self) -> list:
        """Parameters that enter linearly (eliminated by variable projection; no start needed)."""
        return list(self.info().linear)

    @property
    def nonlinear(self) -> list:
        """Parameters that need starting values."""
        return list(self.info().nonlinear)

    @property
    def derivatives(self) -> Dict[str, str]:
        """``{parameter: ∂f/∂parameter}``, exact and simplified."""
        return dict(self.info().derivatives)

    def latex(self) -> str:
        """The model in LaTeX."""
        return self.info().latex

    def __repr__(self) -> str:
        try:
            i = self.info()
            return f"Model({self.formula!r}, linear={list(i.linear)}, nonlinear={list(i.nonlinear)})"
        except SepfitError:
            return f"Model({self.formula!r})"

    def _repr_latex_(self) -> str:
        return f"${self.latex()}$"

    # -- fitting ---------------------------------------------------------------------------
    def _response_name(self) -> str:
        if len(self._lhs) == 1:
            return self._lhs[0]
        if not self._lhs:
            raise FormulaError(f"the formula `{self.formula}` has no response; write `y ~ ...`")
        raise DataError(
            f"the response side of `{self.formula}` uses {', '.join(self._lhs)}; pass them as named columns instead of one array"
        )

    def _gather(self, y: Any, data: Any, columns: Mapping[str, Any]) -> Dict[str, Any]:
        """All data by name: ``data`` (table), keyword columns, and the response ``y``."""
        if y is not None and _is_table(y):
            if data is not None:
                raise TypeError("give the data once: as the first argument or as data=")
            data, y = y, None
        cols = _table_columns(data)
        cols.update(columns)
        if isinstance(y, str):
            if y not in cols:
                raise DataError(f"response column `{y}` is not in the data; columns: {', '.join(cols)}")
            name = self._response_name()
            if y != name:
                cols[name] = cols[y]
        elif y is not None:
            cols[self._response_name()] = y
        return cols

    def fit(
        self,
        y: Any = None,
        data: Any = None,
        *,
        start: Union[None, str, Mapping[str, float]] = None,
        sigma: Any = None,
        absolute_sigma: bool = False,
        bounds: Optional[Mapping[str, Tuple[Optional[float], Optional[float]]]] = None,
        fix: Optional[Mapping[str, float]] = None,
        method: str = "varpro",
        nonlinear: Sequence[str] = (),
        max_iterations: Optional[int] = None,
        nan_policy: Optional[str] = None,
        tol: Optional[float] = None,
        search: Union[None, bool, int] = None,
        loss: str = "linear",
        f_scale: Optional[float] = None,
        **columns: Any,
    ) -> "ModelResult":
        """Fits the model.

        ``y``: the response (array), its column name, or the whole data (dict, DataFrame,
        pyarrow Table); other columns as ``data=`` or as keyword arrays (``t=t``). ``start``:
        starting values of the nonlinear parameters; ``sigma``: per-point standard deviations
        (array or column name); ``absolute_sigma``: take ``sigma`` as absolute (covariance not
        scaled by the reduced χ²); ``bounds``: ``{name: (lo, hi)}`` (a linear parameter stays linear)
        (``None`` for no bound); ``fix``: ``{name: value}``; ``method``: ``'varpro'``
        (default), ``'kaufman'`` or ``'full'``; ``nonlinear``: linear parameters to fit as
        nonlinear (e.g. to bound them); ``nan_policy``: ``None``/``'raise'`` (an error names
        the row and column) or ``'omit'`` (drop rows with a NaN); ``tol``: relative tolerance
        ``ftol = xtol = gtol`` (default ``None``: full precision, 1e-15 with Gauss-Newton
        polishing; scipy's ``curve_fit`` stops at 1.49e-8). ``search``: ``True`` (or a number
        of samples) searches for the best optimum even where starts are given (a multi-start
        around them and over ranges from the formula and the data); parameters without a start
        are searched for in any case. ``loss``: ``'linear'`` (least squares, default), a robust
        loss ``'soft_l1'``, ``'huber'``, ``'cauchy'`` or ``'arctan'`` with scale ``f_scale``
        (scipy's ``least_squares(loss=…, f_scale=…)``: the same optimum, and the covariance
        scipy's ``curve_fit`` reports), or ``'poisson'`` (maximum likelihood for counts
        ``y >= 0``: the Poisson deviance is minimised, standard errors from the Fisher
        information); ``r.loss_cost`` is the robust cost or the deviance.

        The model is parsed and compiled once per set of column names and options and kept
        with this ``Model``: fitting it again (new data, same options) only binds the data.
        Columns are copied once into the library (contiguous or not).
        """
        return self._fit(
            y, data, columns, start, sigma, absolute_sigma, bounds, fix, method, nonlinear, max_iterations, nan_policy, tol, search, loss, f_scale
        )

    def _fit(
        self, y, data, columns, start, sigma, absolute_sigma, bounds, fix, method, nonlinear, max_iterations, nan_policy, tol, search, loss, f_scale, detail="full"
    ) -> "ModelResult":
        """:meth:`fit` with the keywords as arguments; ``detail="covariance"`` (what
        :func:`curve_fit` needs) leaves out fitted values, residuals and tests."""
        cols = self._gather(y, data, columns)
        idents = self._idents
        names = [n for n in cols if n in idents]
        arrays = [_as_float(cols[n], n) for n in names]
        for n, a in zip(names, arrays):
            if a.ndim != 1:
                raise DataError(f"column `{n}` has shape {a.shape}; a fit takes 1-D columns (use fit_batch for many curves)")
        sigma_name = None
        if sigma is not None:
            if isinstance(sigma, str):
                if sigma not in cols:
                    raise DataError(f"sigma column `{sigma}` is not in the data; columns: {', '.join(cols)}")
                sigma = cols[sigma]
            s = _as_float(sigma, "sigma")
            if s.ndim == 0 and arrays:
                s = np.full(len(arrays[0]), float(s))
            names.append(_SIGMA)
            arrays.append(s)
            sigma_name = _SIGMA
        if nan_policy not in (None, "raise", "omit", "propagate"):
            raise ValueError("nan_policy must be None, 'raise' or 'omit'")
        if nan_policy == "propagate":
            raise ValueError("nan_policy='propagate' is not supported; use 'raise' or 'omit'")
        if nan_policy == "omit" and arrays:
            n0 = len(arrays[0])
            if all(len(a) == n0 for a in arrays):
                keep = np.ones(n0, dtype=bool)
                for a in arrays:
                    keep &= ~np.isnan(a)
                if not keep.all():
                    arrays = [a[keep] for a in arrays]
        absolute = bool(absolute_sigma) and sigma is not None
        loss_kw = (str(loss), None if f_scale is None else float(f_scale), absolute)
        prepared = self._prepare(
            names, _starts(start), _pairs(fix), _bounds(bounds), sigma_name, tuple(nonlinear), method, max_iterations, tol, _search(search), loss_kw, detail
        )
        raw = prepared.fit([np.ascontiguousarray(a) for a in arrays])
        return ModelResult(raw, self)

    def _prepare(
        self, names, start, fix, bounds, sigma_name, nonlinear, method, max_iterations, tol, search=None, loss_kw=("linear", None, False), detail="full"
    ):
        """The formula resolved against these column names with these options and compiled
        (`_sepfit.Prepared`), from the cache when this Model has seen them before."""
        key = (tuple(names), tuple(start), tuple(fix), tuple(bounds), sigma_name, nonlinear, method, max_iterations, tol, search, loss_kw, detail)
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = _sepfit.prepare(
                self.formula,
                list(names),
                start=start,
                fixed=fix,
                bounds=bounds,
                sigma=sigma_name,
                force_nonlinear=list(nonlinear),
                method=method,
                max_iterations=max_iterations,
                tol=None if tol is None else float(tol),
                search=search,
                loss=loss_kw[0],
                f_scale=loss_kw[1],
                absolute_sigma=loss_kw[2],
                detail=detail,
            )
            if len(self._prepared) >= self._PREPARED_MAX:
                self._prepared.pop(next(iter(self._prepared)))
            self._prepared[key] = prepared
        return prepared


def _pairs(d: Optional[Mapping[str, float]]) -> list:
    if d is None:
        return []
    if not isinstance(d, _Mapping):
        raise TypeError("give parameters as a dict {name: value}")
    return [(str(k), float(v)) for k, v in d.items()]


def _starts(d: Union[None, str, Mapping[str, float]]) -> list:
    """Starting values: a dict, or None / "auto" (every nonlinear parameter without a start
    is found by a search over ranges derived from the formula and the data)."""
    if isinstance(d, str):
        if d != "auto":
            raise TypeError('start must be a dict {name: value}, None or "auto"')
        return []
    return _pairs(d)


def _search(s: Union[None, bool, int]) -> Optional[int]:
    """`search=`: None/False → None (search only where a start is missing), True → 0 (the
    default number of samples), n → n samples."""
    if s is None or s is False:
        return None
    if s is True:
        return 0
    if isinstance(s, int) and s > 0:
        return int(s)
    raise TypeError("search must be True, False, None or a positive number of samples")


def _bounds(b: Optional[Mapping[str, Any]]) -> list:
    if b is None:
        return []
    if not isinstance(b, _Mapping):
        raise TypeError("bounds must be a dict {name: (lower, upper)} (None for no bound)")
    out = []
    for k, v in b.items():
        lo, hi = v
        out.append((str(k), -np.inf if lo is None else float(lo), np.inf if hi is None else float(hi)))
    return out


#: Models made from formula strings by the functions below (``curve_fit("y ~ ...", ...)``), so
#: that calling them again with the same formula reuses the parsed and compiled model.
_MODELS: Dict[str, Model] = {}
_MODELS_MAX = 64


def _as_model(model: Union[str, Model]) -> Model:
    if isinstance(model, Model):
        return model
    m = _MODELS.get(model) if isinstance(model, str) else None
    if m is None:
        m = Model(model)
        if len(_MODELS) >= _MODELS_MAX:
            _MODELS.pop(next(iter(_MODELS)))
        _MODELS[model] = m
    return m


class ModelResult:
    """The result of :meth:`Model.fit`."""

    def __init__(self, raw, model: Model):
        self._raw = raw
        self.model = model
        self._params: Optional[Dict[str, Parameter]] = None
        self._correl: Optional[np.ndarray] = None

    # The arrays are made from the library's result on first use (a fit whose caller reads
    # only some of them pays for those only).
    @functools.cached_property
    def param_names(self) -> list:
        """Parameter names: the formula's order (linear first, then nonlinear), fixed ones last."""
        return list(self._raw.param_names)

    @functools.cached_property
    def values(self) -> np.ndarray:
        """Estimates in :attr:`param_names` order."""
        return self._raw.values

    @functools.cached_property
    def stderr(self) -> np.ndarray:
        """Standard errors in :attr:`param_names` order."""
        return self._raw.stderr

    @functools.cached_property
    def covar(self) -> np.ndarray:
        """Covariance in :attr:`param_names` order (NaN when the Jacobian is rank deficient)."""
        return self._raw.covar

    @property
    def absolute_sigma(self) -> bool:
        """Whether σ was taken as absolute (covariance not scaled by the reduced χ²)."""
        return self._raw.absolute_sigma

    @property
    def params(self) -> Dict[str, Parameter]:
        """``{name: Parameter}`` in :attr:`param_names` order (built on first use)."""
        if self._params is None:
            self._params = {
                name: Parameter(name, value, float(se), t, p, lin, fixed, start, bounds, at or None)
                for (name, value, _se, t, p, lin, fixed, start, bounds, at), se in zip(self._raw.params, self.stderr)
            }
        return self._params

    @property
    def correl(self) -> np.ndarray:
        """Correlation matrix in :attr:`param_names` order (NaN when not available)."""
        if self._correl is None:
            self._correl = self._raw.correl
        return self._correl

    # Scalars and arrays of the fit.
    rss = property(lambda self: self._raw.rss, doc="Residual sum of squares (weighted: χ²).")
    chisqr = rss
    dof = property(lambda self: self._raw.dof, doc="Degrees of freedom n − p − q.")
    loss = property(lambda self: self._raw.loss, doc="The loss minimised ('linear' for least squares).")
    loss_cost = property(
        lambda self: self._raw.loss_cost,
        doc="The minimised objective of a loss other than least squares: the robust cost ½F²Σρ or the Poisson deviance (NaN for least squares).",
    )
    ndata = property(lambda self: self._raw.n, doc="Number of observations.")
    aic = property(lambda self: self._raw.aic, doc="AIC (R's nls convention).")
    bic = property(lambda self: self._raw.bic, doc="BIC (R's nls convention).")
    r_squared = property(lambda self: self._raw.r_squared)
    redchi = property(lambda self: self._raw.reduced_chi_square, doc="Reduced χ² = rss/dof.")
    residual_std_error = property(lambda self: self._raw.residual_std_error)
    converged = property(lambda self: self._raw.converged)
    status = property(lambda self: self._raw.status, doc="'converged', 'not_converged' or 'degenerate'.")
    iterations = property(lambda self: self._raw.iterations)
    method = property(lambda self: self._raw.method)
    warnings = property(lambda self: list(self._raw.warnings))
    notes = property(lambda self: list(self._raw.notes))
    formula = property(lambda self: self._raw.formula)
    residual = property(lambda self: self._raw.residual, doc="Raw residuals y − f.")
    weighted_residual = property(lambda self: self._raw.weighted_residual, doc="(y − f)/σ.")
    best_fit = property(lambda self: self._raw.best_fit, doc="Fitted values f.")
    data = property(lambda self: self._raw.response, doc="The response values.")

    @property
    def termination(self) -> str:
        """Why the iteration stopped, in words."""
        return self._raw.termination[1]

    @property
    def termination_name(self) -> str:
        return self._raw.termination[0]

    @property
    def best_values(self) -> Dict[str, float]:
        return {n: float(v) for n, v in zip(self.param_names, self.values)}

    def predict(self, data: Any = None, **columns: Any) -> np.ndarray:
        """The fitted model on new values of its columns (keywords, a dict or a DataFrame)."""
        cols = _table_columns(data)
        cols.update(columns)
        needed = self._raw.predict_columns
        arrays = {}
        for n in needed:
            if n in cols:
                arrays[n] = np.ascontiguousarray(_as_float(cols[n], n).ravel())
        return self._raw.predict(arrays)

    eval = predict

    def summary(self) -> str:
        """The full text report (what ``sepfit fit`` prints)."""
        return self._raw.summary()

    fit_report = summary

    def brief(self) -> str:
        return self._raw.brief()

    def to_dict(self) -> dict:
        """The JSON report (what ``sepfit fit --format json`` prints) as a dict."""
        return json.loads(self._raw.to_json())

    def __repr__(self) -> str:
        ps = ", ".join(f"{p.name}={p.value:.6g}±{p.stderr:.2g}" for p in self.params.values())
        return f"<sepfit.ModelResult {self.formula!r}: {self.status} after {self.iterations} iterations, rss={self.rss:.6g}, dof={self.dof}; {ps}>"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{p.name}</td><td>{p.value:.7g}</td><td>{p.stderr:.4g}</td><td>{'linear' if p.linear else 'fixed' if p.fixed else 'nonlinear'}</td></tr>"
            for p in self.params.values()
        )
        import html

        return (
            f"<p><b>sepfit</b> <code>{html.escape(self.formula)}</code>: {self.status}, {self.iterations} iterations, "
            f"RSS = {self.rss:.6g} on {self.dof} dof, AIC = {self.aic:.4f}</p>"
            f"<table><tr><th>parameter</th><th>estimate</th><th>std. error</th><th></th></tr>{rows}</table>"
        )


# -- scipy-style -----------------------------------------------------------------------------
#: The keywords of :meth:`Model.fit` that :func:`curve_fit` passes on, with their defaults
#: (read from its signature).
_FIT_OPTIONS = {
    k: inspect.signature(Model.fit).parameters[k].default
    for k in ("fix", "method", "nonlinear", "max_iterations", "tol", "search", "loss", "f_scale")
}

def curve_fit(
    formula: Union[str, Model],
    xdata: Any,
    ydata: Any,
    p0: Optional[Mapping[str, float]] = None,
    sigma: Any = None,
    absolute_sigma: bool = False,
    bounds: Optional[Mapping[str, Tuple[Optional[float], Optional[float]]]] = None,
    nan_policy: Optional[str] = None,
    **kwargs: Any,
) -> Tuple[np.ndarray, np.ndarray]:
    """``popt, pcov`` as ``scipy.optimize.curve_fit`` returns them, for a formula.

    ``xdata``: an array (the formula's one independent variable: ``x``, ``t``, ``time``,
    optionally with digits), a dict ``{name: array}``, or a tuple of arrays (the independent
    variables in order of appearance). ``p0``: starting values of the nonlinear parameters,
    ``{name: value}``. ``popt``/``pcov`` are in the order of ``Model(formula).param_names``
    (linear first, then nonlinear). ``absolute_sigma=False`` scales ``pcov`` by the reduced
    χ², like scipy. Raises :class:`ConvergenceError` (a ``RuntimeError``) if the fit does not
    converge; ``pcov`` is ``inf`` (with a warning) when the Jacobian is rank deficient.
    Other keywords (``fix``, ``method``, ``max_iterations``, ``nonlinear``, ``tol``) go to
    :meth:`Model.fit`; ``tol=1.49e-8`` stops where scipy's ``curve_fit`` does by default (the
    default, full precision, takes a few more evaluations).
    """
    model = _as_model(formula)
    if isinstance(xdata, _Mapping):
        xcols = dict(xdata)
    elif isinstance(xdata, (tuple, list)) and len(xdata) > 0 and np.ndim(xdata[0]) == 1:
        names = model.independent_vars
        if len(names) != len(xdata):
            raise DataError(
                f"xdata has {len(xdata)} arrays but the formula's independent variables look like {list(names)}; pass a dict {{name: array}}"
            )
        xcols = dict(zip(names, xdata))
    else:
        names = model.independent_vars
        if len(names) != 1:
            raise DataError(
                f"cannot tell which identifier of `{model.formula}` xdata is (candidates: {list(names) or 'none'}); pass xdata as a dict {{name: array}}"
            )
        xcols = {names[0]: xdata}
    opt = {k: kwargs.pop(k, d) for k, d in _FIT_OPTIONS.items()}
    r = model._fit(
        ydata, xcols, kwargs, p0, sigma, absolute_sigma, bounds, opt["fix"], opt["method"], opt["nonlinear"], opt["max_iterations"],
        nan_policy, opt["tol"], opt["search"], opt["loss"], opt["f_scale"], detail="covariance",
    )
    if r.status == "not_converged":
        raise ConvergenceError(f"Optimal parameters not found: {r.termination}")
    raw = r._raw
    pcov = raw.covar
    if not raw.has_covariance:
        warnings.warn("Covariance of the parameters could not be estimated (rank-deficient Jacobian)", RuntimeWarning, stacklevel=2)
        pcov = np.full_like(pcov, np.inf)
    return raw.values, pcov


# -- many curves ------------------------------------------------------------------------------
class BatchResult:
    """Results of :func:`fit_batch`: arrays shaped like the response without the fit axis."""

    def __init__(self, d: dict, shape: Tuple[int, ...], model: Model):
        self.model = model
        self.shape = shape
        self.param_names: list = list(d["param_names"])
        self.nonlinear: list = list(d["nonlinear"])
        p = len(self.param_names)
        self.values: np.ndarray = d["values"].reshape(shape + (p,))
        self.stderr: np.ndarray = d["stderr"].reshape(shape + (p,))
        self.rss: np.ndarray = d["rss"].reshape(shape)
        self.loss: str = d["loss"]
        self.loss_cost: np.ndarray = d["loss_cost"].reshape(shape)
        self.dof: np.ndarray = d["dof"].reshape(shape)
        self.iterations: np.ndarray = d["iterations"].reshape(shape)
        self.converged: np.ndarray = d["converged"].reshape(shape)
        self.status: np.ndarray = d["status"].reshape(shape)
        self.error: np.ndarray = d["error"].reshape(shape)
        self._messages = d["messages"]
        self._warnings = d["warnings"]

    def index(self, name: str) -> int:
        """Position of parameter ``name`` along the last axis of :attr:`values`."""
        try:
            return self.param_names.index(name)
        except ValueError:
            raise KeyError(f"`{name}` is not a parameter; parameters: {', '.join(self.param_names)}") from None

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[..., self.index(name)]

    def _unravel(self, flat: int) -> Tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(flat, self.shape)) if self.shape else ()

    @property
    def messages(self) -> Dict[Tuple[int, ...], str]:
        """``{curve index: why it could not be fitted}`` for the curves with an error."""
        return {self._unravel(c): m for c, m in self._messages}

    @property
    def warnings(self) -> Dict[Tuple[int, ...], str]:
        return {self._unravel(c): m for c, m in self._warnings}

    def summary(self) -> str:
        n = int(np.prod(self.shape)) if self.shape else 1
        counts = ", ".join(f"{int((self.status == i).sum())} {s}" for i, s in enumerate(STATUS))
        lines = [f"sepfit fit_batch: {n} curves of `{self.model.formula}` ({counts})"]
        ok = self.status == 0
        for i, name in enumerate(self.param_names):
            v = self.values[..., i][ok]
            if v.size:
                lines.append(f"  {name:<10} median {np.median(v):.7g}   IQR [{np.percentile(v, 25):.7g}, {np.percentile(v, 75):.7g}]")
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        counts = ", ".join(f"{int((self.status == i).sum())} {s}" for i, s in enumerate(STATUS))
        return f"<sepfit.BatchResult {self.model.formula!r}: shape {self.shape}, params {self.param_names}; {counts}>"

    def to_xarray(self):
        """An ``xarray.Dataset`` with one variable per parameter (and ``<name>_stderr``)."""
        import xarray as xr

        dims = [f"dim_{i}" for i in range(len(self.shape))]
        vars_ = {}
        for i, n in enumerate(self.param_names):
            vars_[n] = (dims, self.values[..., i])
            vars_[f"{n}_stderr"] = (dims, self.stderr[..., i])
        for n in ("rss", "converged", "status", "error", "iterations"):
            vars_[n] = (dims, getattr(self, n))
        return xr.Dataset(vars_, attrs={"formula": self.model.formula})


def _batch_inputs(model: Model, y: Any, axis: int, sigma: Any, data: Any, columns: Mapping[str, Any]):
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 0:
        raise DataError("y must be an array with the curves along `axis`")
    ax = axis % y.ndim
    cols = _table_columns(data)
    cols.update(columns)
    resp = model._response_name()
    idents = set(model.identifiers)
    names = [resp]
    arrays = []
    for n, a in cols.items():
        if n in idents and n != resp:
            names.append(n)
            arrays.append(_as_float(a, n))
    if sigma is not None:
        s = _as_float(sigma, "sigma")
        if s.ndim == 0:
            s = np.full(y.shape[ax], float(s))
        names.append(_SIGMA)
        arrays.append(s)
    return y, ax, names, arrays


def fit_batch(
    model: Union[str, Model],
    y: Any,
    axis: int = -1,
    *,
    start: Union[None, str, Mapping[str, float]] = None,
    sigma: Any = None,
    threads: Optional[int] = None,
    tol: Optional[float] = None,
    fix: Optional[Mapping[str, float]] = None,
    bounds: Optional[Mapping[str, Tuple[Optional[float], Optional[float]]]] = None,
    method: str = "varpro",
    nonlinear: Sequence[str] = (),
    max_iterations: Optional[int] = None,
    data: Any = None,
    search: Union[None, bool, int] = None,
    loss: str = "linear",
    f_scale: Optional[float] = None,
    **columns: Any,
) -> BatchResult:
    """Fits every curve of ``y`` (any N-D array, the curves along ``axis``) on its own.

    Other columns are 1-D arrays shared by every curve (``t=t``) or arrays shaped like ``y``
    (one lane per curve); ``sigma`` likewise. The fits run in parallel on all cores
    (``threads=N``: a pool of N threads) with the GIL released. A curve that is contiguous
    along ``axis`` is read in place; a strided one is copied first (so ``axis=-1`` on a
    C-ordered array copies nothing). ``tol``: relative tolerance (default 1e-12, as
    ``sepfit batch``; 1e-15 gives a single fit's full precision). A curve that cannot be
    fitted never raises: its ``status`` is 3 (``'error'``), ``error`` > 0 and
    ``messages`` says why. ``loss``, ``f_scale``: as for :meth:`Model.fit` (``'poisson'`` for
    photon counts); ``loss_cost`` holds each curve's robust cost or deviance.
    """
    model = _as_model(model)
    y, ax, names, arrays = _batch_inputs(model, y, axis, sigma, data, columns)
    d = _sepfit.fit_batch(
        model.formula,
        names,
        y,
        ax,
        arrays,
        start=_starts(start),
        fixed=_pairs(fix),
        bounds=_bounds(bounds),
        sigma=_SIGMA if sigma is not None else None,
        force_nonlinear=list(nonlinear),
        method=method,
        max_iterations=max_iterations,
        threads=threads,
        tol=tol,
        search=_search(search),
        loss=str(loss),
        f_scale=None if f_scale is None else float(f_scale),
    )
    return BatchResult(d, y.shape[:ax] + y.shape[ax + 1 :], model)


class GlobalResult:
    """Result of :func:`fit_global`: shared nonlinear parameters, per-curve linear ones."""

    def __init__(self, raw, shape: Tuple[int, ...], model: Model):
        self._raw = raw
        self.model = model
        self.shape = shape
        self.linear_names: list = list(raw.linear_names)
        self.nonlinear_names: list = list(raw.nonlinear_names)
        self.param_names: list = self.linear_names + self.nonlinear_names
        nc = int(np.prod(shape)) if shape else 1
        p, q = len(self.linear_names), len(self.nonlinear_names)
        lin = np.asarray(raw.linear, dtype=np.float64).reshape(nc, p)
        nl = np.asarray(raw.nonlinear, dtype=np.float64)
        nlse = np.asarray(raw.nonlinear_std_errors, dtype=np.float64)
        self.shared: Dict[str, float] = dict(zip(self.nonlinear_names, nl.tolist()))
        self.shared_stderr: Dict[str, float] = dict(zip(self.nonlinear_names, nlse.tolist()))
        values = np.concatenate([lin, np.broadcast_to(nl, (nc, q))], axis=1)
        stderr = np.concatenate([np.full((nc, p), np.nan), np.broadcast_to(nlse, (nc, q))], axis=1)
        self.values: np.ndarray = values.reshape(shape + (p + q,))
        self.stderr: np.ndarray = stderr.reshape(shape + (p + q,))
        self.rss: np.ndarray = np.asarray(raw.curve_rss).reshape(shape)
        self.total_rss: float = raw.rss
        self.dof: int = raw.dof
        self.converged: bool = raw.converged
        self.status: str = raw.status
        self.termination: str = raw.termination[1]
        self.iterations: int = raw.iterations
        self.warnings: list = list(raw.warnings)
        self.correl = raw.correlation

    def index(self, name: str) -> int:
        return self.param_names.index(name)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[..., self.index(name)]

    def summary(self) -> str:
        """The full text report (what ``sepfit fit --global`` prints)."""
        return self._raw.summary()

    fit_report = summary

    def to_dict(self) -> dict:
        return json.loads(self._raw.to_json())

    def __repr__(self) -> str:
        s = ", ".join(f"{n}={self.shared[n]:.6g}±{self.shared_stderr[n]:.2g}" for n in self.nonlinear_names)
        return f"<sepfit.GlobalResult {self.model.formula!r}: {self.status}, {self.shape} curves, shared {s}, rss={self.total_rss:.6g}>"


def fit_global(
    model: Union[str, Model],
    y: Any,
    axis: int = -1,
    *,
    start: Union[None, str, Mapping[str, float]] = None,
    fix: Optional[Mapping[str, float]] = None,
    bounds: Optional[Mapping[str, Tuple[Optional[float], Optional[float]]]] = None,
    max_iterations: Optional[int] = None,
    sigma: Any = None,
    data: Any = None,
    **columns: Any,
) -> GlobalResult:
    """One fit of all curves of ``y`` (along ``axis``) with shared nonlinear parameters and
    per-curve linear coefficients (variable projection with multiple right-hand sides). The
    other columns are 1-D, the same for every curve; so is ``sigma`` (per-point standard
    deviations, or one number), which weights every curve's rows by ``1/sigma``."""
    model = _as_model(model)
    y, ax, names, arrays = _batch_inputs(model, y, axis, sigma, data, columns)
    shape = y.shape[:ax] + y.shape[ax + 1 :]
    y2 = np.ascontiguousarray(np.moveaxis(y, ax, -1).reshape(-1, y.shape[ax]))
    for n, a in zip(names[1:], arrays):
        if a.ndim != 1:
            raise DataError(f"column `{n}` has shape {a.shape}; a global fit needs 1-D columns shared by every curve")
    raw = _sepfit.fit_global(
        model.formula,
        names,
        y2,
        [np.ascontiguousarray(a) for a in arrays],
        start=_starts(start),
        fixed=_pairs(fix),
        bounds=_bounds(bounds),
        max_iterations=max_iterations,
        sigma=_SIGMA if sigma is not None else None,
    )
    return GlobalResult(raw, shape, model)


# -- gradients of losses ----------------------------------------------------------------------
def _float_arrays(values: Dict[str, Any]) -> Dict[str, np.ndarray]:
    """The values as contiguous float64 arrays, as the loss evaluators take them."""
    return {k: np.ascontiguousarray(np.asarray(v, dtype=np.float64)) for k, v in values.items()}


class Gradient:
    """An exact gradient of a loss in vectors and matrices (:func:`grad`)."""

    def __init__(self, raw):
        self._raw = raw
        self.wrt: str = raw.wrt
        self.formula: str = raw.formula
        self.latex: str = raw.latex
        self.loss: str = raw.loss

    def __call__(self, **values: Any) -> Tuple[float, np.ndarray]:
        """``(loss, gradient)`` at the given values (gradient shaped like ``values[wrt]``)."""
        vals = _float_arrays(values)
        shape = vals[self.wrt].shape if self.wrt in vals else None
        value, g = self._raw.eval(vals)
        g = np.asarray(g)
        if shape is not None:
            g = g.reshape(shape)
        return float(value), g

    def emit(self, lang: str = "numpy") -> str:
        """Python source of ``loss_and_grad(<variables>) -> (value, gradient)`` on numpy arrays,
        written from the printed formula (shared subexpressions as local variables); needs the
        declarations ``var``. ``exec`` it, or save it as a module."""
        return self._raw.emit(lang)

    def scipy(self, **values: Any):
        """``fun(x) -> (loss, gradient)`` for ``scipy.optimize.minimize(fun, x0, jac=True)``."""

        def fun(x: np.ndarray):
            return self(**{**values, self.wrt: x})

        return fun

    def __repr__(self) -> str:
        return f"<sepfit.Gradient ∇_{self.wrt} {self.loss} = {self.formula}>"


def grad(loss: str, wrt: str = "w", var: str = "") -> Gradient:
    """The exact gradient of ``loss`` with respect to ``wrt``; ``var`` declares the shapes,
    e.g. ``grad("sum((X*w - y).^2)", wrt="w", var="X: n x d, w: d, y: n")``."""
    return Gradient(_sepfit.grad(loss, wrt, var))


class Derivative:
    """An exact Jacobian of a vector expression (:func:`jacobian`) or Hessian of a scalar loss
    (:func:`hessian`) in matrix notation, with respect to one variable."""

    def __init__(self, raw):
        self._raw = raw
        self.kind: str = raw.kind
        self.wrt: str = raw.wrt
        self.formula: str = raw.formula
        self.latex: str = raw.latex
        self.expression: str = raw.expression
        #: The gradient of a Hessian's loss (empty for a Jacobian).
        self.gradient_formula: str = raw.gradient_formula

    def __call__(self, **values: Any):
        """At the given values: ``(value, jacobian)`` for a Jacobian (``value`` a vector, the
        Jacobian ``len(value) × size(wrt)``, a matrix variable's entries column by column), or
        ``(loss, gradient, hessian)`` for a Hessian (the gradient shaped like ``values[wrt]``)."""
        vals = _float_arrays(values)
        out = [np.asarray(a) for a in self._raw.eval(vals)]
        size = vals[self.wrt].size if self.wrt in vals else None
        if self.kind == "hessian":
            value, g, h = out
            if self.wrt in vals:
                g = g.reshape(vals[self.wrt].shape)
            if size is not None:
                h = h.reshape(size, size)
            return float(value.reshape(-1)[0]), g, h
        value, j = out
        value = value.reshape(-1)
        if size is not None:
            j = j.reshape(value.size, size)
        return value, j

    def check(self, directions: int = 8, seed: int = 1, **values: Any) -> float:
        """The largest relative error against Richardson central differences (of the
        expression for a Jacobian, of the gradient for a Hessian) along ``directions`` random
        directions at the values: about 1e-10 or less when the derivative is right."""
        return self._raw.check(_float_arrays(values), directions, seed)

    def __repr__(self) -> str:
        what = f"∂f/∂{self.wrt}" if self.kind == "jacobian" else f"∇²_{self.wrt}"
        return f"<sepfit.Derivative {what} {self.expression} = {self.formula}>"


def jacobian(expr: str, wrt: str, var: str = "") -> Derivative:
    """The exact Jacobian of the vector expression ``expr`` with respect to ``wrt`` (a vector,
    a scalar, or a matrix whose entries are the columns, column by column), e.g.
    ``jacobian("tanh(W*x + b)", "W", var="W: m x n, x: n, b: m").formula`` is
    ``(xᵀ ⊗ I).*(1 − tanh(W·x + b).^2)``."""
    return Derivative(_sepfit.jacobian(expr, wrt, var))


def hessian(loss: str, wrt: str, var: str = "") -> Derivative:
    """The exact Hessian of the scalar ``loss`` with respect to the vector or scalar ``wrt``,
    e.g. ``hessian("norm2(X*w - y)^2", "w", var="X: n x d, w: d, y: n").formula`` is
    ``2·Xᵀ·X``."""
    return Derivative(_sepfit.hessian(loss, wrt, var))


def minimize(loss: str, wrt: str = "w", x0: Any = None, var: str = "", method: str = "lbfgs", max_iterations: Optional[int] = None, **values: Any) -> dict:
    """Minimizes ``loss`` over ``wrt`` from ``x0`` with L-BFGS (``method='lbfgs'``) or
    gradient descent (``'gd'``) on the exact gradient; returns ``{'x', 'fun', 'grad_norm',
    'iterations', 'converged', 'message'}``."""
    if x0 is None:
        raise ValueError("minimize needs x0")
    vals = _float_arrays(values)
    x0 = np.asarray(x0, dtype=np.float64)
    out = _sepfit.minimize(loss, wrt, var, np.ascontiguousarray(x0), vals, method, max_iterations)
    out["x"] = np.asarray(out["x"]).reshape(x0.shape)
    return out


def compare(small: "ModelResult", big: "ModelResult") -> dict:
    """The F test between two nested fits on the same data, as R's ``anova(small, big)``:
    ``F = ((RSS_small - RSS_big)/df) / (RSS_big/res_df_big)`` with ``df`` the number of extra
    free parameters. Returns ``{'n', 'df', 'sum_sq', 'f', 'p_value', 'chi_square_p', 'small',
    'big'}`` (each model: ``formula``, ``params``, ``res_df``, ``rss``); ``chi_square_p`` is the
    likelihood-ratio test's p-value when both fits used absolute sigma, else None. Raises
    :class:`ParameterError` when the fits are not comparable (other data or weights, the big
    model not bigger, a larger RSS for the big model, a fit that did not converge)."""
    for r, what in ((small, "small"), (big, "big")):
        if not isinstance(r, ModelResult):
            raise TypeError(f"compare: `{what}` must be the result of Model.fit, got {type(r).__name__}")
    return _sepfit.compare(small._raw, big._raw)


# -- loss landscape ---------------------------------------------------------------------------
def landscape(
    model: Union[str, Model],
    data: Any = None,
    params: Tuple[str, str] = ("b1", "b2"),
    *,
    start: Union[None, str, Mapping[str, float]] = None,
    ranges: Optional[Mapping[str, Tuple[float, float]]] = None,
    grid: int = 100,
    sigma: Any = None,
    **columns: Any,
) -> Dict[str, np.ndarray]:
    """The variable-projection loss ``‖y − P(b)y‖²`` over a grid of two nonlinear parameters
    (other nonlinear parameters held at their fitted values). Returns ``{'x', 'y', 'z',
    'params', 'fit'}`` with ``z[j, i]`` the loss at ``(x[i], y[j])``; default ranges are a box
    around the start and the optimum."""
    model = _as_model(model)
    r = model.fit(data, start=start, sigma=sigma, **columns)
    px, py_ = params
    nl = [n for n in r.param_names if not r.params[n].linear and not r.params[n].fixed]
    for p in params:
        if p not in nl:
            raise ParameterError(f"`{p}` is not a nonlinear parameter; nonlinear: {', '.join(nl)}")
    best = r.best_values
    ranges = dict(ranges or {})

    def rng(p):
        if p in ranges:
            return ranges[p]
        vals = [best[p]] + ([start[p]] if start and p in start else [])
        lo, hi = min(vals), max(vals)
        w = max(hi - lo, 0.5 * abs(best[p]), 1e-3)
        return lo - 0.5 * w, hi + 0.5 * w

    xs = np.linspace(*rng(px), grid)
    ys = np.linspace(*rng(py_), grid)
    cols = model._gather(data, None, columns)
    idents = set(model.identifiers)
    names = [n for n in cols if n in idents]
    arrays = [np.ascontiguousarray(_as_float(cols[n], n)) for n in names]
    at = [best[n] for n in nl]
    s = None if sigma is None else np.ascontiguousarray(_as_float(sigma, "sigma"))
    z = _sepfit.landscape(model.formula, names, arrays, nl.index(px), nl.index(py_), at, xs, ys, s)
    return {"x": xs, "y": ys, "z": np.asarray(z).reshape(len(ys), len(xs)), "params": params, "fit": r}


def plot_landscape(land: Dict[str, Any], ax=None, levels: int = 30):
    """Draws :func:`landscape`'s grid with matplotlib (log-spaced contour levels)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    if ax is None:
        _, ax = plt.subplots()
    z = np.asarray(land["z"])
    finite = z[np.isfinite(z) & (z > 0)]
    lv = np.geomspace(finite.min(), finite.max(), levels) if finite.size else levels
    cs = ax.contourf(land["x"], land["y"], z, levels=lv, norm=LogNorm() if finite.size else None)
    ax.figure.colorbar(cs, ax=ax, label="reduced loss")
    r = land.get("fit")
    if r is not None:
        ax.plot(r.best_values[land["params"][0]], r.best_values[land["params"][1]], "r*", ms=12)
    ax.set_xlabel(land["params"][0])
    ax.set_ylabel(land["params"][1])
    return ax
