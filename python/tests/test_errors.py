"""Bad formulas, options and data raise the documented exceptions (ValueError subclasses)."""

import numpy as np
import pytest

import sepfit

T = np.linspace(0, 4, 30)
Y = 2 * np.exp(-0.8 * T) + 0.1


def test_formula_error_has_a_caret():
    with pytest.raises(sepfit.FormulaError) as e:
        sepfit.Model("y ~ a*exq(-b*t)").fit(Y, t=T, start={"b": 1})
    msg = str(e.value)
    assert "unknown function `exq`" in msg and "^^^" in msg and "did you mean `exp`" in msg
    assert isinstance(e.value, ValueError) and isinstance(e.value, sepfit.SepfitError)
    assert type(e.value).__module__ == "sepfit" and type(e.value).__name__ == "FormulaError"
    with pytest.raises(sepfit.FormulaError, match=r"\^"):
        sepfit.Model("y ~ a*exp(-b*t")
    with pytest.raises(ValueError):
        sepfit.curve_fit("y ~ a*(", T, Y)


def test_parameter_errors():
    m = sepfit.Model("y ~ a*exp(-k*t) + c")
    # A missing start is no longer an error: the library searches for it (main's search).
    searched, given = m.fit(Y, t=T), m.fit(Y, t=T, start={"k": 1.0})
    assert searched.converged
    np.testing.assert_allclose(searched.values, given.values, rtol=1e-8)
    auto = m.fit(Y, t=T, start="auto")
    np.testing.assert_array_equal(auto.values, searched.values)
    with pytest.raises(TypeError, match="auto"):
        m.fit(Y, t=T, start="automatic")
    # search=True from a start: the same optimum, and the report says a search ran.
    s = m.fit(Y, t=T, start={"k": 50.0}, search=True)
    np.testing.assert_allclose(s.values, given.values, rtol=1e-8)
    assert "Search:" in s.summary()
    with pytest.raises(TypeError, match="search"):
        m.fit(Y, t=T, search=-3)
    with pytest.raises(sepfit.ParameterError, match="did you mean `k`"):
        m.fit(Y, t=T, start={"kk": 1.0, "k": 1.0})
    # A bound on a linear parameter is no error: it stays linear (bounded least squares inside
    # variable projection), and here the amplitude 2 ends on its upper bound.
    bounded = m.fit(Y, t=T, start={"k": 1.0}, bounds={"a": (0, 1)})
    assert bounded.params["a"].value == 1.0 and bounded.params["a"].at_bound == "upper"
    assert bounded.params["a"].linear
    with pytest.raises(sepfit.ParameterError, match="outside its bounds"):
        m.fit(Y, t=T, start={"k": 5.0}, bounds={"k": (0, 1)})
    with pytest.raises(sepfit.ParameterError, match="method"):
        m.fit(Y, t=T, start={"k": 1.0}, method="newton")


def test_data_errors_name_row_and_column():
    m = sepfit.Model("y ~ a*exp(-k*t) + c")
    t = T.copy()
    t[7] = np.inf
    with pytest.raises(sepfit.DataError, match=r"column `t` holds inf at row 8"):
        m.fit(Y, t=t, start={"k": 1.0})
    with pytest.raises(sepfit.DataError, match="rows"):
        m.fit(Y, t=T[:-1], start={"k": 1.0})
    with pytest.raises(sepfit.DataError, match="response `log\\(y\\)` is"):
        sepfit.Model("log(y) ~ a - k*t").fit(Y - 1, t=T)
    with pytest.raises(sepfit.DataError):
        m.fit(Y, t=np.ones((3, 10)), start={"k": 1.0})
    with pytest.raises(sepfit.DataError, match="xdata"):
        sepfit.curve_fit("y ~ a*exp(-k*u)", T, Y, p0={"k": 1})


def test_fit_errors():
    with pytest.raises(sepfit.FitError):
        sepfit.Model("y ~ a*exp(-k*t) + c").fit(Y[:2], t=T[:2], start={"k": 1.0})
    with pytest.raises(sepfit.ConvergenceError) as e:
        sepfit.curve_fit("y ~ a*exp(-k*t) + c", T, Y + 0.01 * np.sin(9 * T), p0={"k": 1.0}, max_iterations=1)
    assert isinstance(e.value, RuntimeError)


def test_batch_marks_failures_without_raising():
    y = np.tile(Y, (3, 1))
    y[1, 3] = np.nan
    r = sepfit.fit_batch("y ~ a*exp(-k*t) + c", y, t=T, start={"k": 1.0})
    assert r.status.tolist() == [0, 3, 0] and r.error.tolist() == [0, 1, 0]
    assert "row 4" in r.messages[(1,)]
    assert np.isnan(r.values[1]).all() and not r.converged[1]
