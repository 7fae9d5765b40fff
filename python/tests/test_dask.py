"""sepfit.dask.fit_blocks on a real two-process distributed.LocalCluster."""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import dask  # noqa: E402

import sepfit  # noqa: E402
import sepfit.dask as sd  # noqa: E402
from conftest import FLIM_MODEL, FLIM_START, flim  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1", dashboard_address=None)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_fit_blocks_on_two_workers(client):
    t, y = flim(400, seed=21)
    cube = y.reshape(20, 20, t.size)
    ref = sepfit.fit_batch(FLIM_MODEL, cube, start=FLIM_START, t=t)
    # chunked along the curves and (needing a rechunk) along the decay axis
    for chunks in [(5, 20, -1), (10, 7, 64)]:
        d = da.from_array(cube, chunks=chunks)
        r = sd.fit_blocks(d, FLIM_MODEL, axis=-1, start=FLIM_START, t=t, threads=1)
        assert r.param_names == ref.param_names
        with distributed.get_task_stream(client) as ts:
            values, stderr, rss, status = dask.compute(r.values, r.stderr, r.rss, r.status)
        workers = {task["worker"] for task in ts.data}
        assert len(workers) == 2, workers
        assert values.shape == (20, 20, 5)
        assert np.array_equal(values, ref.values)  # bit-identical, whatever the chunks
        assert np.array_equal(stderr, ref.stderr)
        assert np.array_equal(rss, ref.rss)
        assert np.array_equal(status, ref.status)


def test_fit_blocks_other_axis(client):
    t, y = flim(40, seed=22)
    ref = sepfit.fit_batch(FLIM_MODEL, y, start=FLIM_START, t=t)
    d = da.from_array(np.ascontiguousarray(y.T), chunks=(50, 10))
    r = sd.fit_blocks(d, FLIM_MODEL, axis=0, start=FLIM_START, t=t)
    assert np.array_equal(r.values.compute(), ref.values)
