"""pandas → Hail tables honour the declared column types (:mod:`gwas_prs.engine.table_io`).

``hl.locus`` requires an int32 position; a frame's position column arrives as
int64 (``hl.Table.from_pandas`` would keep it int64 → ``TypecheckFailure``), nullable
Int64, objects, or whole-number floats (after a merge introduced NaN elsewhere).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from gwas_prs.core.errors import InputError

POSITIONS = {
    "int64": pd.Series([100, 200, 300], dtype="int64"),
    "Int64": pd.Series([100, 200, 300], dtype="Int64"),
    "float64": pd.Series([100.0, 200.0, 300.0]),
    "object": pd.Series([np.int64(100), 200, 300], dtype=object),
    "str": pd.Series(["100", "200", "300"]),
}


def _frame(position: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "chromosome": ["21", "21", "22"],
            "position": position,
            "ref": ["A", "C", "G"],
            "alt": ["G", "T", "A"],
            "p": [1e-300, 0.5, np.nan],
            "beta": [1.2345678901234567e-5, -0.25, 3.0],
        }
    )


@pytest.mark.slow
@pytest.mark.parametrize("dtype", list(POSITIONS))
def test_variant_frame_to_table_gives_an_int32_locus(hail_context: None, dtype: str) -> None:
    """The prs stage's own path for GWAS weights (``variant_frame_to_table``)."""
    import hail as hl

    from gwas_prs.engine.table_io import variant_frame_to_table

    table = variant_frame_to_table(
        _frame(POSITIONS[dtype]),
        {"p": hl.tfloat64, "beta": hl.tfloat64},
        "GRCh37",
        columns=("chromosome", "position", "ref", "alt"),
    )
    assert table.locus.dtype == hl.tlocus("GRCh37")
    rows = table.collect()
    assert [(r.locus.contig, r.locus.position, r.alleles) for r in rows] == [
        ("21", 100, ["A", "G"]),
        ("21", 200, ["C", "T"]),
        ("22", 300, ["G", "A"]),
    ]
    assert [r.beta for r in rows] == [1.2345678901234567e-5, -0.25, 3.0]  # every digit
    assert rows[0].p == 1e-300 and rows[2].p is None


@pytest.mark.slow
def test_frame_to_table_declared_types_with_missing_values(hail_context: None) -> None:
    import hail as hl

    from gwas_prs.engine.table_io import frame_to_table

    frame = pd.DataFrame(
        {
            "s": ["a", "b", None],
            "n": pd.Series([1.0, np.nan, 3.0]),  # ints made float by a missing value
            "big": pd.Series([2**40, None, 5], dtype="Int64"),
            "flag": [True, None, False],
            "x": [0.1, np.nan, 2.5],
        }
    )
    types: dict[str, Any] = {
        "s": hl.tstr,
        "n": hl.tint32,
        "big": hl.tint64,
        "flag": hl.tbool,
        "x": hl.tfloat64,
    }
    table = frame_to_table(frame, types, key=["s"])
    assert dict(table.row.dtype) == types
    rows = {r.s: (r.n, r.big, r.flag, r.x) for r in table.collect()}
    assert rows == {
        "a": (1, 2**40, True, 0.1),
        "b": (None, None, None, None),
        None: (3, 5, False, 2.5),
    }


@pytest.mark.slow
@pytest.mark.parametrize("value", [1.5, 2**31, "x"])
def test_frame_to_table_refuses_values_that_do_not_fit(hail_context: None, value: Any) -> None:
    import hail as hl

    from gwas_prs.engine.table_io import frame_to_table

    frame = pd.DataFrame({"position": pd.Series([1, value], dtype=object)})
    with pytest.raises(InputError) as info:
        frame_to_table(frame, {"position": hl.tint32})
    assert str(info.value) == f"column 'position': {value!r} is not a whole number that fits int32"


@pytest.mark.slow
def test_table_to_frame_reads_nan_and_infinity(hail_context: None) -> None:
    """Hail writes NaN (the mean of no values) as 'NaN' and ∞ as 'Infinity'; both come
    back as floats (a PRS variant with no called genotype once crashed train)."""
    import hail as hl

    from gwas_prs.engine.table_io import table_to_frame

    ht = hl.utils.range_table(3)
    x = hl.if_else(ht.idx == 1, hl.float64(float("nan")), 1.5)
    ht = ht.annotate(x=hl.if_else(ht.idx == 2, hl.float64(float("inf")), x))
    values = table_to_frame(ht, {"x": ht.x})["x"].to_numpy()
    assert values[0] == 1.5 and np.isnan(values[1]) and values[2] == np.inf
