"""Type stubs of the extension module `sepfit._sepfit` (the Rust binding). Use the `sepfit`
package's API (`sepfit.Model`, `sepfit.curve_fit`, `sepfit.fit_batch`, ...) rather than these."""

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

__version__: str

class SepfitError(ValueError): ...
class FormulaError(SepfitError): ...
class DataError(SepfitError): ...
class ParameterError(SepfitError): ...
class FitError(SepfitError): ...

class ModelInfo:
    formula: str
    columns: List[str]
    used_columns: List[str]
    param_names: List[str]
    linear: List[str]
    nonlinear: List[str]
    response: str
    model: str
    basis: List[str]
    offset: Optional[str]
    derivatives: List[Tuple[str, str]]
    derivatives_latex: List[Tuple[str, str]]
    basis_derivatives: List[Tuple[int, str, str]]
    latex: str
    notes: List[str]

def formula_identifiers(formula: str) -> Tuple[List[str], List[str]]: ...
def parse_model(
    formula: str, columns: Sequence[str], fixed: Sequence[Tuple[str, float]] = ..., force_nonlinear: Sequence[str] = ...
) -> ModelInfo: ...

class FitResult:
    param_names: List[str]
    values: npt.NDArray[np.float64]
    stderr: npt.NDArray[np.float64]
    params: List[Tuple[str, float, float, float, float, bool, bool, Optional[float], Optional[Tuple[float, float]], str]]
    covar: npt.NDArray[np.float64]
    correl: npt.NDArray[np.float64]
    has_covariance: bool
    rss: float
    dof: int
    loss: str
    loss_cost: float
    absolute_sigma: bool
    n: int
    aic: float
    bic: float
    r_squared: float
    residual_std_error: float
    reduced_chi_square: float
    converged: bool
    status: str
    termination: Tuple[str, str]
    iterations: int
    method: str
    residual: npt.NDArray[np.float64]
    weighted_residual: npt.NDArray[np.float64]
    best_fit: npt.NDArray[np.float64]
    response: npt.NDArray[np.float64]
    warnings: List[str]
    notes: List[str]
    formula: str
    solve_s: float
    predict_columns: List[str]
    def summary(self) -> str: ...
    def brief(self) -> str: ...
    def to_json(self) -> str: ...
    def predict(self, columns: Dict[str, npt.NDArray[np.float64]]) -> npt.NDArray[np.float64]: ...

def fit(
    formula: str,
    names: Sequence[str],
    columns: Sequence[npt.NDArray[np.float64]],
    start: Sequence[Tuple[str, float]] = ...,
    fixed: Sequence[Tuple[str, float]] = ...,
    bounds: Sequence[Tuple[str, float, float]] = ...,
    sigma: Optional[str] = None,
    force_nonlinear: Sequence[str] = ...,
    method: str = "varpro",
    max_iterations: Optional[int] = None,
    data_name: str = "data",
) -> FitResult: ...
def fit_batch(
    formula: str,
    names: Sequence[str],
    y: npt.NDArray[np.float64],
    axis: int,
    columns: Sequence[npt.NDArray[np.float64]],
    start: Sequence[Tuple[str, float]] = ...,
    fixed: Sequence[Tuple[str, float]] = ...,
    bounds: Sequence[Tuple[str, float, float]] = ...,
    sigma: Optional[str] = None,
    force_nonlinear: Sequence[str] = ...,
    method: str = "varpro",
    max_iterations: Optional[int] = None,
    threads: Optional[int] = None,
    tol: Optional[float] = None,
    search: Optional[int] = None,
    loss: str = "linear",
    f_scale: Optional[float] = None,
) -> dict: ...

class Prepared:
    """A formula resolved against column names with its options and compiled once."""

    names: List[str]
    def fit(self, columns: Sequence[npt.NDArray[np.float64]], data_name: str = "data") -> FitResult: ...

def prepare(
    formula: str,
    names: Sequence[str],
    start: Sequence[Tuple[str, float]] = ...,
    fixed: Sequence[Tuple[str, float]] = ...,
    bounds: Sequence[Tuple[str, float, float]] = ...,
    sigma: Optional[str] = None,
    force_nonlinear: Sequence[str] = ...,
    method: str = "varpro",
    max_iterations: Optional[int] = None,
    tol: Optional[float] = None,
    search: Optional[int] = None,
    loss: str = "linear",
    f_scale: Optional[float] = None,
    absolute_sigma: bool = False,
    detail: str = "full",
) -> Prepared: ...
def _bench_batch(
    formula: str,
    names: Sequence[str],
    y: npt.NDArray[np.float64],
    columns: Sequence[npt.NDArray[np.float64]],
    start: Sequence[Tuple[str, float]] = ...,
    threads: Optional[int] = None,
    tol: Optional[float] = None,
) -> Tuple[float, npt.NDArray[np.float64]]: ...

class GlobalResult:
    nonlinear_names: List[str]
    nonlinear: List[float]
    nonlinear_std_errors: List[float]
    linear_names: List[str]
    linear: List[float]
    rss: float
    curve_rss: List[float]
    dof: int
    iterations: int
    converged: bool
    status: str
    termination: Tuple[str, str]
    warnings: List[str]
    correlation: Optional[npt.NDArray[np.float64]]
    def summary(self) -> str: ...
    def brief(self) -> str: ...
    def to_json(self) -> str: ...

def fit_global(
    formula: str,
    names: Sequence[str],
    y: npt.NDArray[np.float64],
    columns: Sequence[npt.NDArray[np.float64]],
    start: Sequence[Tuple[str, float]] = ...,
    fixed: Sequence[Tuple[str, float]] = ...,
    bounds: Sequence[Tuple[str, float, float]] = ...,
    max_iterations: Optional[int] = None,
    sigma: Optional[str] = None,
) -> GlobalResult: ...

class Gradient:
    wrt: str
    formula: str
    latex: str
    loss: str
    def eval(self, values: Dict[str, npt.NDArray[np.float64]]) -> Tuple[float, npt.NDArray[np.float64]]: ...
    def emit(self, lang: str = "numpy") -> str: ...

class Derivative:
    kind: str
    wrt: str
    formula: str
    latex: str
    expression: str
    gradient_formula: str
    def eval(self, values: Dict[str, npt.NDArray[np.float64]]) -> List[npt.NDArray[np.float64]]: ...
    def check(self, values: Dict[str, npt.NDArray[np.float64]], directions: int = 8, seed: int = 1) -> float: ...

def compare(small: FitResult, big: FitResult) -> dict: ...
def grad(loss: str, wrt: str, var: str = "") -> Gradient: ...
def jacobian(expr: str, wrt: str, var: str = "") -> Derivative: ...
def hessian(loss: str, wrt: str, var: str = "") -> Derivative: ...
def minimize(
    loss: str,
    wrt: str,
    var: str,
    x0: npt.NDArray[np.float64],
    values: Dict[str, npt.NDArray[np.float64]],
    method: str = "lbfgs",
    max_iterations: Optional[int] = None,
) -> dict: ...
def landscape(
    formula: str,
    names: Sequence[str],
    columns: Sequence[npt.NDArray[np.float64]],
    kx: int,
    ky: int,
    at: Sequence[float],
    xs: Sequence[float],
    ys: Sequence[float],
    sigma: Optional[npt.NDArray[np.float64]] = None,
) -> List[float]: ...
