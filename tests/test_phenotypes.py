"""Phenotype files for gwas/prs: codings, missing values and errors (no JVM)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gwas_prs.core.errors import InputError
from gwas_prs.formats.phenotypes import read_phenotypes


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


# --- issue 14: ambiguous binary codings (8b), non-finite values (11), delimiters (12a) ---


@pytest.mark.parametrize(
    ("column", "values", "line"),
    [
        ("0\n1\n2\n1\n", "0, 1, 2", 4),  # 0/1/2: 0/1 and 1/2 codes mixed
        ("1\n2\n-9\n0\n", "0, 1, 2", 5),  # PLINK 1/2 with a 0/1 control further down
        ("2\n0\n2\nNA\n", "0, 2", 3),  # 0 (a 0/1 control) and 2 (a PLINK case)
    ],
)
def test_mixed_binary_codings_are_refused(
    tmp_path: Path, column: str, values: str, line: int
) -> None:
    rows = column.splitlines()
    path = write(tmp_path, "IID\tT\n" + "".join(f"s{i}\t{v}\n" for i, v in enumerate(rows)))
    with pytest.raises(InputError) as error:
        read_phenotypes(path, ("T",))
    message = str(error.value)
    assert message.startswith(f"{path}:{line}: trait 'T' has the values {values}: ")
    assert "a binary trait must be 0/1, 1/2 (PLINK) or control/case" in message
    decimals = ", ".join(f"{v}.0" for v in values.split(", "))
    assert message.endswith(
        f"; recode it, or for a quantitative trait write the values with a decimal point "
        f"({decimals})"
    )
    assert "\n" not in message


def test_quantitative_columns_with_small_integers_still_work(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "IID\tcount\tdecimal\tdosage\na\t0\t0.0\t0\nb\t1\t1.0\t1\nc\t2\t2.0\t2\nd\t3\t1.0\t1\n",
    )
    table = read_phenotypes(path, ("count", "decimal"))
    assert table.binary == {"count": False, "decimal": False}
    assert table.frame["count"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert table.frame["decimal"].tolist() == [0.0, 1.0, 2.0, 1.0]
    # the library caller may say outright that a trait is quantitative
    forced = read_phenotypes(path, ("dosage",), binary={"dosage": False})
    assert forced.binary == {"dosage": False}
    assert forced.frame["dosage"].tolist() == [0.0, 1.0, 2.0, 1.0]


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("Inf", "trait"),
        ("-inf", "trait"),
        ("infinity", "covariate"),
        ("+INF", "covariate"),
        ("1e999", "covariate"),  # overflows to infinity
    ],
)
def test_non_finite_values_are_refused_with_their_line(
    tmp_path: Path, value: str, kind: str
) -> None:
    bmi, age = (value, "50") if kind == "trait" else ("25.1", value)
    path = write(
        tmp_path,
        "IID\tbmi\tage\n"
        "a\t22.5\t40\n"
        "b\tNA\t41\n"
        "\n"  # a blank line still counts in the file's line numbers
        "c\t30.2\t42\n"
        "d\t27.0\t43\n"
        f"e\t{bmi}\t{age}\n"
        "f\t21.0\t44\n",
    )
    column = "bmi" if kind == "trait" else "age"
    with pytest.raises(InputError) as error:
        read_phenotypes(path, ("bmi",), ("age",))
    assert str(error.value) == (
        f"{path}:7: {kind} '{column}' has the non-finite value '{value}'; use NA for missing values"
    )


def test_nan_text_stays_missing(tmp_path: Path) -> None:
    path = write(tmp_path, "IID\tbmi\tage\na\tnan\t40\nb\t22\tNaN\nc\t23\t41\n")
    table = read_phenotypes(path, ("bmi",), ("age",))
    assert table.missing_counts() == {"bmi": 1, "age": 1}


def test_non_numeric_value_line_counts_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "IID\tT\tage\na\t1\t40\n\nb\t0\told\n")
    with pytest.raises(
        InputError, match=r"pheno\.tsv:4: covariate 'age' has a non-numeric value 'old'"
    ):
        read_phenotypes(path, ("T",), ("age",))


@pytest.mark.parametrize("name", ["pheno.tsv", "pheno.csv", "pheno.txt"])
def test_semicolon_separated_phenotypes_are_read(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, "IID;T;age\na;1;40\nb;0;51\nc;NA;33\n", name)
    table = read_phenotypes(path, ("T",), ("age",))
    assert table.frame.index.tolist() == ["a", "b", "c"]
    assert table.frame["age"].tolist() == [40.0, 51.0, 33.0]
    assert table.binary == {"T": True}


def test_trailing_tab_rows_keep_the_id_column(tmp_path: Path) -> None:
    path = write(tmp_path, "IID\tT\tage\na\t1\t40\t\nb\t0\t51\t\n")
    table = read_phenotypes(path, ("T",), ("age",))
    assert table.frame.index.tolist() == ["a", "b"]
    assert table.frame["T"].tolist() == [1.0, 0.0]
    assert table.frame["age"].tolist() == [40.0, 51.0]


def test_unknown_delimiter_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "IID|T\na|1\n")
    with pytest.raises(InputError) as error:
        read_phenotypes(path, ("T",))
    assert str(error.value).startswith(f"{path}:1: no sample-ID column")
    assert "found 'IID|T'" in str(error.value)
    assert "the header was read as whitespace-separated" in str(error.value)
