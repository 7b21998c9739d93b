"""Phenotype files for gwas/prs: codings, missing values and errors (no JVM)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gwas_prs.errors import InputError
from gwas_prs.phenotypes import read_phenotypes


def write(tmp_path: Path, text: str, name: str = "pheno.tsv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_codings_missing_values_and_kinds(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "IID\tplink\tcc\theight\tage\n"
        "a\t1\tcontrol\t170.5\t40\n"
        "b\t2\tcase\tNA\t51\n"
        "c\t-9\t\t180\t-9\n"
        "d\t2\tCASE\t165\t33\n",
    )
    table = read_phenotypes(path, ("plink", "cc", "height"), ("age",))
    assert table.binary == {"plink": True, "cc": True, "height": False}
    assert table.codings == {"plink": "1/2", "cc": "case/control"}
    frame = table.frame
    assert frame["plink"].tolist()[:2] == [0.0, 1.0] and np.isnan(frame.loc["c", "plink"])
    assert frame.loc[["a", "b", "d"], "cc"].tolist() == [0.0, 1.0, 1.0] and np.isnan(
        frame.loc["c", "cc"]
    )
    assert np.isnan(frame.loc["b", "height"]) and frame.loc["c", "height"] == 180.0
    assert np.isnan(frame.loc["c", "age"])
    assert table.missing_counts() == {"plink": 1, "cc": 1, "height": 1, "age": 1}


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        ("IID\tT\na\t1\n", (("X",), ()), "no trait column 'X' (--trait); columns: T"),
        ("IID\tT\tage\na\t1\t40\nb\t0\t41\n", (("T",), ("sex",)), "no covariate column 'sex'"),
        (
            "IID\tT\tage\na\t1\told\nb\t0\t41\n",
            (("T",), ("age",)),
            ":2: covariate 'age' has a non-numeric value 'old'",
        ),
        ("IID\tT\na\t1.5\nb\tabc\n", (("T",), ()), ":3: trait 'T' has a non-numeric value 'abc'"),
        ("IID\tT\na\t1\nb\t1\n", (("T",), ()), "binary trait 'T' needs both cases and controls"),
        ("IID\tT\na\tNA\nb\t-9\n", (("T",), ()), "trait 'T' has no values (all missing)"),
        ("IID\tT\na\t1\na\t0\n", (("T",), ()), "sample 'a' appears more than once"),
        ("name\tT\na\t1\n", (("T",), ()), ":1: no sample-ID column"),
    ],
)
def test_errors_name_the_file_and_the_column(
    tmp_path: Path, text: str, args: tuple, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as error:
        read_phenotypes(path, *args)
    assert str(error.value).startswith(path)
    assert message in str(error.value)
