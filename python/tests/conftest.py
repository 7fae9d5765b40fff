"""Shared helpers: the repository's bundled data."""

import csv
import pathlib
import re

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
HERE = pathlib.Path(__file__).resolve().parent


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def _numeric(tokens):
    try:
        [float(t) for t in tokens]
        return True
    except ValueError:
        return False


def read_nist(name):
    """A NIST StRD file: data (y, x), starts and certified values and standard deviations."""
    text = (DATA / "nist" / f"{name}.dat").read_text()
    params = {}
    for m in re.finditer(r"^\s*(b\d+)\s*=\s*" + r"\s+".join([r"([-+0-9.Ee]+)"] * 4) + r"\s*$", text, re.M):
        params[m.group(1)] = tuple(float(v) for v in m.group(2, 3, 4, 5))
    lines = text.splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip().startswith("Data:"))
    rows = [l.split() for l in lines[start + 1 :] if len(l.split()) == 2 and _numeric(l.split())]
    y = np.array([float(r[0]) for r in rows])
    x = np.array([float(r[1]) for r in rows])
    rss = float(re.search(r"Residual Sum of Squares:\s+(\S+)", text).group(1))
    return {"x": x, "y": y, "params": params, "rss": rss}


def flim(n, seed=1, t_points=256):
    """FLIM-like curves as scripts/make_flim.py makes them: (n, T) Poisson counts and t."""
    rng = np.random.default_rng(seed)
    t = np.arange(t_points) * 0.05
    tau1 = rng.uniform(0.3, 0.8, n)[:, None]
    tau2 = rng.uniform(2.0, 4.0, n)[:, None]
    a1 = rng.uniform(200, 800, n)[:, None]
    a2 = rng.uniform(100, 400, n)[:, None]
    bg = rng.uniform(2, 10, n)[:, None]
    lam = a1 * np.exp(-t / tau1) + a2 * np.exp(-t / tau2) + bg
    return t, rng.poisson(lam).astype(np.float64)


FLIM_MODEL = "y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + bg"
FLIM_START = {"tau1": 0.5, "tau2": 3.0}


@pytest.fixture(scope="session")
def seed000():
    return read_csv(DATA / "seed000.csv")
