"""sepfit.compare: the nested-model F test against R's anova(nls(...), nls(...)), whose values
scripts/compare_reference.R stored in data/reference/compare/anova_R.csv."""
import csv

import numpy as np
import pytest

import sepfit
from conftest import HERE, read_csv

REF = HERE.parent.parent / "data" / "reference"


def anova_rows():
    with open(REF / "compare" / "anova_R.csv", newline="") as f:
        return {(r["pair"], r["model"].strip()): r for r in csv.DictReader(f)}


MM = "rate ~ Vm*conc/(K + conc)"
PAIRS = [
    ("puromycin", "puromycin.csv", MM, {"K": 0.05}, MM + " + b*conc", {"K": 0.05}),
    ("bod", "bod.csv", "demand ~ A*(1 - exp(-exp(lrc)*Time))", {"lrc": -1.0},
     "demand ~ A*(1 - exp(-exp(lrc)*Time)) + c0", {"lrc": -1.0}),
]


@pytest.mark.parametrize("name,file,small,s_start,big,b_start", PAIRS)
def test_compare_equals_r_anova(name, file, small, s_start, big, b_start):
    data = read_csv(REF / "intervals" / file)
    r1 = sepfit.Model(small).fit(start=s_start, **data)
    r2 = sepfit.Model(big).fit(start=b_start, **data)
    t = sepfit.compare(r1, r2)
    ref = anova_rows()
    big_row = ref[(name, "2")]
    assert t["small"]["res_df"] == int(ref[(name, "1")]["res_df"])
    assert t["big"]["res_df"] == int(big_row["res_df"])
    assert t["df"] == int(big_row["df"])
    for key, col in (("sum_sq", "sumsq"), ("f", "F"), ("p_value", "p")):
        want = float(big_row[col])
        assert abs(t[key] - want) <= 1e-6 * abs(want), (key, t[key], want)
    assert abs(t["big"]["rss"] - float(big_row["rss"])) <= 1e-9 * float(big_row["rss"])
    assert t["chi_square_p"] is None
    assert t["n"] == len(next(iter(data.values())))


def test_compare_refuses_what_is_not_nested():
    data = read_csv(REF / "intervals" / "puromycin.csv")
    r1 = sepfit.Model(MM).fit(start={"K": 0.05}, **data)
    r2 = sepfit.Model(MM + " + b*conc").fit(start={"K": 0.05}, **data)
    with pytest.raises(sepfit.ParameterError, match="smaller model first"):
        sepfit.compare(r2, r1)
    other = dict(data, rate=data["rate"] * 1.01)
    r3 = sepfit.Model(MM + " + b*conc").fit(start={"K": 0.05}, **other)
    with pytest.raises(sepfit.ParameterError):
        sepfit.compare(r1, r3)
    with pytest.raises(TypeError):
        sepfit.compare(r1, "not a fit")
