"""Fit the curves of a Dask array chunk by chunk: :func:`fit_blocks`.

Each chunk that holds whole curves (the array is rechunked along ``axis`` to one chunk if
needed) is fitted by :func:`sepfit.fit_batch` in the worker that holds it; every curve is
fitted on its own, so the results do not depend on the chunking. Needs the ``[dask]`` extra
(``pip install "sepfit[dask]"``).
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Optional, Tuple, Union

import functools

import numpy as np

from . import Model, _as_model, fit_batch


class BlockFit(NamedTuple):
    """Lazy results of :func:`fit_blocks` (dask arrays; compute them together with
    ``dask.compute(r.values, r.stderr)`` so each chunk is fitted once)."""

    values: Any
    """Estimates, shaped like the input without ``axis``, plus a parameter axis at the end."""
    stderr: Any
    """Standard errors, the same shape."""
    rss: Any
    """Residual sums of squares, shaped like the input without ``axis``."""
    status: Any
    """Status codes (``sepfit.STATUS``), same shape."""
    param_names: list
    """Names along the parameter axis."""


def _fit_block(formula: str, ax: int, kw: dict, cols: dict, yb: np.ndarray) -> np.ndarray:
    """One chunk: estimates, standard errors, RSS and status packed along the last axis."""
    r = fit_batch(formula, yb, axis=ax, **kw, **cols)
    return np.concatenate([r.values, r.stderr, r.rss[..., None], r.status[..., None].astype(np.float64)], axis=-1)


def fit_blocks(
    array: Any,
    model: Union[str, Model],
    axis: int = -1,
    *,
    start: Optional[Mapping[str, float]] = None,
    fix: Optional[Mapping[str, float]] = None,
    bounds: Optional[Mapping[str, Tuple[Optional[float], Optional[float]]]] = None,
    tol: Optional[float] = None,
    method: str = "varpro",
    threads: Optional[int] = None,
    **columns: Any,
) -> BlockFit:
    """Maps :func:`sepfit.fit_batch` over the chunks of ``array`` (curves along ``axis``).

    The other columns (``t=t``) are 1-D numpy arrays shared by every curve. Returns a
    :class:`BlockFit` of lazy dask arrays. ``threads`` is passed to ``fit_batch`` in each task
    (default: all cores of the worker; use 1 with one single-threaded worker per core).
    """
    import dask.array as da

    model = _as_model(model)
    arr = da.asarray(array).astype(np.float64)
    ax = axis % arr.ndim
    if arr.numblocks[ax] != 1:
        arr = arr.rechunk({ax: -1})
    cols = {k: np.asarray(v, dtype=np.float64) for k, v in columns.items()}
    for k, v in cols.items():
        if v.ndim != 1:
            raise ValueError(f"column `{k}` must be 1-D (shared by every curve) for fit_blocks")
    names = model.info([model._response_name(), *cols]).param_names
    p = len(names)
    kw = dict(start=start, fix=fix, bounds=bounds, tol=tol, method=method, threads=threads)

    chunks = tuple(c for i, c in enumerate(arr.chunks) if i != ax) + ((2 * p + 2,),)
    block = functools.partial(_fit_block, model.formula, ax, kw, cols)
    packed = arr.map_blocks(block, drop_axis=ax, new_axis=arr.ndim - 1, chunks=chunks, dtype=np.float64)
    return BlockFit(
        values=packed[..., :p],
        stderr=packed[..., p : 2 * p],
        rss=packed[..., 2 * p],
        status=packed[..., 2 * p + 1].astype(np.int8),
        param_names=list(names),
    )
