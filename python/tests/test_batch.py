"""fit_batch: N-D arrays, results identical to fitting each curve alone, the GIL released,
threads; fit_global."""

import threading
import time

import numpy as np
import pytest

import sepfit
from conftest import FLIM_MODEL, FLIM_START, flim


def test_cube_equals_each_curve_alone():
    t, y = flim(24, seed=5)
    cube = y.reshape(4, 6, t.size)  # a FLIM image (Y, X, T)
    r = sepfit.fit_batch(FLIM_MODEL, cube, axis=-1, start=FLIM_START, t=t)
    assert r.values.shape == (4, 6, 5) and r.stderr.shape == (4, 6, 5) and r.rss.shape == (4, 6)
    assert r.param_names == ["a1", "a2", "bg", "tau1", "tau2"]
    assert r.converged.all() and (r.status == 0).all() and (r.error == 0).all()
    i = r.index("tau1")
    assert np.array_equal(r["tau1"], r.values[..., i])
    for iy in range(4):
        for ix in range(6):
            one = sepfit.fit_batch(FLIM_MODEL, cube[iy, ix], start=FLIM_START, t=t)
            assert one.values.shape == (5,)
            assert np.array_equal(one.values, r.values[iy, ix])  # bit-identical
            assert np.array_equal(one.stderr, r.stderr[iy, ix])
            assert one.rss == r.rss[iy, ix]
    # close to a full-precision single fit
    s = sepfit.Model(FLIM_MODEL).fit(cube[1, 2], t=t, start=FLIM_START)
    np.testing.assert_allclose(r.values[1, 2], s.values, rtol=1e-4)
    assert "converged" in r.summary() and "BatchResult" in repr(r)


def test_strided_axis_and_threads_give_identical_numbers():
    t, y = flim(30, seed=6)
    base = sepfit.fit_batch(FLIM_MODEL, y, start=FLIM_START, t=t)
    # the curves along axis 0 of a C-ordered (T, N) array: strided lanes, copied per curve
    tr = np.ascontiguousarray(y.T)
    r0 = sepfit.fit_batch(FLIM_MODEL, tr, axis=0, start=FLIM_START, t=t)
    assert np.array_equal(r0.values, base.values)
    r1 = sepfit.fit_batch(FLIM_MODEL, y, start=FLIM_START, t=t, threads=1)
    r3 = sepfit.fit_batch(FLIM_MODEL, y, start=FLIM_START, t=t, threads=3)
    assert np.array_equal(r1.values, base.values) and np.array_equal(r3.values, base.values)
    # per-curve columns (shaped like y) equal shared ones
    rt = sepfit.fit_batch(FLIM_MODEL, y, start=FLIM_START, t=np.broadcast_to(t, y.shape))
    assert np.array_equal(rt.values, base.values)
    # a tighter tolerance reproduces a single fit closely
    tight = sepfit.fit_batch(FLIM_MODEL, y[:3], start=FLIM_START, t=t, tol=1e-15)
    single = sepfit.Model(FLIM_MODEL).fit(y[0], t=t, start=FLIM_START)
    np.testing.assert_allclose(tight.values[0], single.values, rtol=1e-9)


def test_batch_sigma_and_bounds():
    t, y = flim(8, seed=7)
    sig = np.sqrt(np.maximum(y, 1.0))
    r = sepfit.fit_batch(FLIM_MODEL, y, start=FLIM_START, t=t, sigma=sig, bounds={"tau1": (0.1, 1.0)})
    assert r.converged.all()
    one = sepfit.fit_batch(FLIM_MODEL, y[3], start=FLIM_START, t=t, sigma=sig[3], bounds={"tau1": (0.1, 1.0)})
    assert np.array_equal(one.values, r.values[3])


def test_gil_is_released_during_a_batch():
    t, y = flim(2000, seed=8)
    # size the batch to about a second on this machine
    t0 = time.perf_counter()
    sepfit.fit_batch(FLIM_MODEL, y, start=FLIM_START, t=t)
    per = (time.perf_counter() - t0) / y.shape[0]
    n = int(min(max(1.0 / max(per, 1e-7), 2000), 400000))
    reps = int(np.ceil(n / y.shape[0]))
    big = np.tile(y, (reps, 1))
    count = [0]
    stop = threading.Event()

    def counter():
        while not stop.is_set():
            count[0] += 1

    th = threading.Thread(target=counter)
    th.start()
    time.sleep(0.05)
    before = count[0]
    t0 = time.perf_counter()
    r = sepfit.fit_batch(FLIM_MODEL, big, start=FLIM_START, t=t)
    elapsed = time.perf_counter() - t0
    during = count[0] - before
    stop.set()
    th.join()
    assert r.converged.mean() > 0.99
    assert elapsed > 0.2
    # With the GIL held the counter could not run during the call at all.
    assert during > 10000, (during, elapsed)


def test_fit_global_shares_the_rates():
    rng = np.random.default_rng(11)
    t = np.linspace(0, 6, 80)
    amps = rng.uniform(0.5, 2.0, (3, 4, 2))
    y = amps[..., :1] * np.exp(-2.0 * t) + amps[..., 1:] * np.exp(-0.3 * t) + 1e-3 * rng.standard_normal((3, 4, t.size))
    g = sepfit.fit_global("y ~ a1*exp(-k1*t) + a2*exp(-k2*t)", y, start={"k1": 1.5, "k2": 0.2}, t=t)
    assert g.converged
    assert g.shared["k1"] == pytest.approx(2.0, rel=1e-2) and g.shared["k2"] == pytest.approx(0.3, rel=1e-2)
    assert g.values.shape == (3, 4, 4) and g.rss.shape == (3, 4)
    assert np.allclose(g["a1"], amps[..., 0], rtol=2e-2)
    assert (g.values[..., g.index("k1")] == g.shared["k1"]).all()
    assert "shared      k1, k2 (nonlinear)" in g.summary()
    assert g.to_dict()["n_curves"] == 12
    # the same data along another axis
    g0 = sepfit.fit_global("y ~ a1*exp(-k1*t) + a2*exp(-k2*t)", np.moveaxis(y, -1, 0), axis=0, start={"k1": 1.5, "k2": 0.2}, t=t)
    assert g0.shared == g.shared


def test_to_xarray():
    xr = pytest.importorskip("xarray")
    t, y = flim(6, seed=9)
    ds = sepfit.fit_batch(FLIM_MODEL, y.reshape(2, 3, -1), start=FLIM_START, t=t).to_xarray()
    assert isinstance(ds, xr.Dataset) and ds["tau1"].shape == (2, 3)
