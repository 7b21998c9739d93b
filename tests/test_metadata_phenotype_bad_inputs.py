"""Bad sample sheets, phenotype files and covariates (issue 14), no JVM.

- sample sheets whose rows end in a tab (spreadsheet exports) keep the named ID column;
- semicolon-separated sheets are read, an unknown delimiter is named;
- a phenotype column mixing the 0/1 and 1/2 codings is refused, not taken as quantitative;
- non-finite phenotype/covariate values are refused with their line;
- a collinear or constant covariate is refused by ``gwas`` before Hail starts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import gwas_prs.stages.gwas as gwas_stage
from gwas_prs.cli.app import app
from gwas_prs.core.errors import InputError
from gwas_prs.formats.sample_metadata import read_sample_metadata
from gwas_prs.stages.gwas import check_covariates_independent
from tests.cli_helpers import invoke
from tests.vcf_factory import vcf_lines, write_vcf


def write(tmp_path: Path, text: str, name: str = "samples.tsv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# --- 8a: data rows ending in a tab ---


def test_trailing_tab_rows_with_repeated_values_are_read(tmp_path: Path) -> None:
    """Rows with one field more than the header (the last empty): pandas took the first
    column as the index and the ID column shifted onto 'pop', whose repeats crashed."""
    path = write(
        tmp_path,
        "sample\tpop\tsuper_pop\nS1\tGBR\tEUR\t\nS2\tGBR\tEUR\t\nS3\tFIN\tEUR\t\n",
    )
    metadata = read_sample_metadata(path)
    assert metadata.id_column == "sample"
    assert metadata.frame.index.tolist() == ["S1", "S2", "S3"]
    assert metadata.fields == ["pop", "super_pop"]
    assert metadata.frame["pop"].tolist() == ["GBR", "GBR", "FIN"]
    assert metadata.frame["super_pop"].tolist() == ["EUR", "EUR", "EUR"]


def test_trailing_tab_rows_with_unique_values_keep_the_id_column(tmp_path: Path) -> None:
    """Unique values: before, the IDs were silently taken from the next column."""
    path = write(tmp_path, "sample\tage\tsex\nS1\t40\t0\t\nS2\t51\t1\t\nS3\t33\t1\n")
    metadata = read_sample_metadata(path)
    assert metadata.frame.index.tolist() == ["S1", "S2", "S3"]
    assert metadata.frame["age"].tolist() == [40, 51, 33]
    assert metadata.frame["sex"].tolist() == [0, 1, 1]


def test_trailing_tab_rows_with_the_id_column_not_first(tmp_path: Path) -> None:
    path = write(tmp_path, "pop\tIID\nGBR\tS1\t\nGBR\tS2\t\n")
    metadata = read_sample_metadata(path)
    assert metadata.id_column == "IID"
    assert metadata.frame.index.tolist() == ["S1", "S2"]
    assert metadata.frame["pop"].tolist() == ["GBR", "GBR"]


def test_an_extra_value_beyond_the_header_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "sample\tpop\nS1\tGBR\t\nS2\tFIN\tEUR\n")
    with pytest.raises(InputError) as error:
        read_sample_metadata(path)
    assert str(error.value) == (
        f"{path}:3: 3 fields but the header names 2 columns (extra value 'EUR'); "
        "name the column in the header or remove the value"
    )


def test_ingest_reads_a_trailing_tab_sheet(no_jvm: None, tmp_path: Path) -> None:
    """The sheet's IDs are the VCF's samples: the check passes and only then would Hail start."""
    vcf = write_vcf(tmp_path / "a.vcf", vcf_lines())
    samples = write(tmp_path, "IID\tpop\nS1\tGBR\t\nS2\tGBR\t\nS3\tFIN\t\nS4\tFIN\t\n")
    with pytest.raises(AssertionError, match="must not start a JVM"):
        CliRunner().invoke(
            app,
            ["ingest", str(vcf), "--samples", samples, "--run", str(tmp_path / "run")],
            catch_exceptions=False,
        )


# --- 12a: delimiters ---


@pytest.mark.parametrize("name", ["samples.tsv", "samples.csv", "samples.txt"])
def test_semicolon_separated_sheet_is_read(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, "sample;pop;age\nS1;GBR;40\nS2;FIN;51\n", name)
    metadata = read_sample_metadata(path)
    assert metadata.frame.index.tolist() == ["S1", "S2"]
    assert metadata.fields == ["pop", "age"]
    assert metadata.frame["age"].tolist() == [40, 51]


def test_unknown_delimiter_is_named_by_ingest(no_jvm: None, tmp_path: Path) -> None:
    vcf = write_vcf(tmp_path / "a.vcf", vcf_lines())
    samples = write(tmp_path, "sample|pop\nS1|GBR\n")
    code, _, errors = invoke(
        "ingest", str(vcf), "--samples", samples, "--run", str(tmp_path / "run")
    )
    assert code == 2
    assert errors.startswith(f"error: {samples}:1: no sample-ID column (looked for sample, ")
    assert "found 'sample|pop'; the header was read as whitespace-separated" in errors
    assert errors.count("\n") == 1


# --- gwas through the CLI: phenotypes (8b, 11) and covariates (12b), no Hail ---


@pytest.fixture()
def qc_done(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run folder whose manifest says qc is complete; Hail must not start."""
    run = tmp_path / "run"
    run.mkdir()
    qc = {"status": "complete", "started": "2026-01-01T00:00:00", "parameters": {"n_pcs": 10}}
    manifest = {"manifest_version": 2, "run": str(run), "stages": {"qc": qc}}
    (run / "manifest.json").write_text(json.dumps(manifest))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("this test must not start a JVM")

    monkeypatch.setattr(gwas_stage, "start_hail", refuse)
    return run


def pheno_file(tmp_path: Path, columns: dict[str, list[object]], n: int = 40) -> str:
    frame = pd.DataFrame({"IID": [f"S{i}" for i in range(n)], **columns})
    path = tmp_path / "pheno.tsv"
    frame.to_csv(path, sep="\t", index=False)
    return str(path)


def test_gwas_refuses_a_mixed_binary_coding(qc_done: Path, tmp_path: Path) -> None:
    path = pheno_file(tmp_path, {"T": [0, 1, 2, 1] * 10})
    code, _, errors = invoke("gwas", str(qc_done), "--phenotypes", path, "--trait", "T")
    assert code == 2
    assert errors == (
        f"error: {path}:4: trait 'T' has the values 0, 1, 2: a binary trait must be 0/1, "
        "1/2 (PLINK) or control/case; recode it, or for a quantitative trait write the "
        "values with a decimal point (0.0, 1.0, 2.0)\n"
    )


def test_gwas_refuses_a_non_finite_value(qc_done: Path, tmp_path: Path) -> None:
    bmi: list[object] = [20.0 + i for i in range(40)]
    bmi[5] = "Inf"
    path = pheno_file(tmp_path, {"bmi": bmi})
    code, _, errors = invoke("gwas", str(qc_done), "--phenotypes", path, "--trait", "bmi")
    assert code == 2
    assert errors == (
        f"error: {path}:7: trait 'bmi' has the non-finite value 'Inf'; use NA for missing values\n"
    )


def test_gwas_refuses_a_collinear_covariate_before_hail(qc_done: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    age = rng.integers(20, 80, 40)
    path = pheno_file(
        tmp_path, {"T": [0, 1] * 20, "age": age, "sex": [0, 1, 1, 0] * 10, "age2": 2 * age + 1}
    )
    code, _, errors = invoke(
        "gwas", str(qc_done), "--phenotypes", path, "--trait", "T", "--covariates", "age,sex,age2"
    )
    assert code == 2
    assert errors == (
        f"error: {path}: covariate 'age2' is a linear combination of 'age' (and the intercept) "
        "over the 40 phenotyped samples; drop it from --covariates\n"
    )


# --- 12b: the check itself ---


def design(n: int = 60, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(55, 8, n).round(1),
            "sex": rng.integers(0, 2, n).astype(float),
            "bmi": rng.normal(27, 4, n),
            "PC1": rng.normal(0, 0.02, n),
            "PC2": rng.normal(0, 0.02, n),
        },
        index=[f"S{i}" for i in range(n)],
    )
    return frame


def test_independent_covariates_pass() -> None:
    frame = design()
    frame.loc["S3", "bmi"] = np.nan  # incomplete rows are left out, as the regression does
    frame["PC2"] = frame["PC2"].astype("Float64")  # Hail's to_pandas gives nullable floats
    frame.loc["S4", "PC2"] = pd.NA
    check_covariates_independent(frame, ("age", "sex", "bmi"), ("PC1", "PC2"), samples="samples")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda f: f.assign(age2=f["age"]),
            "covariate 'age2' is a linear combination of 'age'",
        ),
        (
            lambda f: f.assign(age2=f["age"] * 12 - 3),
            "covariate 'age2' is a linear combination of 'age' (and the intercept)",
        ),
        (
            lambda f: f.assign(age2=f["age"] + 2 * f["bmi"]),
            "covariate 'age2' is a linear combination of 'age' and 'bmi'",
        ),
        (
            lambda f: f.assign(age2=f["PC1"] * 3 + f["sex"]),
            "covariate 'age2' is a linear combination of PC1 and 'sex'",
        ),
        (lambda f: f.assign(age2=7.0), "covariate 'age2' is constant (7)"),
        (
            lambda f: f.assign(age2=np.where(f["age"] > 55, 5.0, np.nan)),
            "covariate 'age2' is constant (5)",  # constant over the samples with a value
        ),
    ],
    ids=["copy", "affine", "combination", "with a PC", "constant", "constant where present"],
)
def test_collinear_covariate_is_named(
    make: Callable[[pd.DataFrame], pd.DataFrame], message: str
) -> None:
    frame = make(design())
    with pytest.raises(InputError) as error:
        check_covariates_independent(
            frame,
            ("age", "sex", "bmi", "age2"),
            ("PC1", "PC2"),
            samples="discovery samples of 'T'",
            source="pheno.tsv",
        )
    text = str(error.value)
    n = int(frame[["age", "sex", "bmi", "age2"]].notna().all(axis=1).sum())
    assert text == (
        f"pheno.tsv: {message} over the {n} discovery samples of 'T'; drop it from --covariates"
    )


def test_a_dependent_pc_points_at_n_pcs() -> None:
    frame = design().assign(PC2=lambda f: f["PC1"] * -2)
    with pytest.raises(
        InputError, match=r"^PC2 is a linear combination of PC1 over the 60 samples; lower --n-pcs$"
    ):
        check_covariates_independent(frame, ("age",), ("PC1", "PC2"), samples="samples")


def test_too_few_complete_samples() -> None:
    frame = design(n=3)
    with pytest.raises(InputError, match="only 3 samples have a value for every covariate"):
        check_covariates_independent(frame, ("age", "sex", "bmi"), ("PC1",), samples="samples")
    frame["age"] = np.nan
    with pytest.raises(InputError, match="none of the 3 samples has a value for every covariate"):
        check_covariates_independent(frame, ("age", "sex"), (), samples="samples")


def test_gwas_stage_checks_the_discovery_samples_with_the_pcs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The late check (after the split) sees the discovery samples with a trait value, the
    covariates and the PCs — through the helper the stage calls."""
    frame = design(n=20)
    frame["T"] = [0.0, 1.0] * 10
    frame.loc["S0", "T"] = np.nan
    roles = pd.Series(["discovery", "test"] * 10, index=frame.index)
    seen: dict[str, object] = {}

    def record(design: pd.DataFrame, covariates: object, pcs: object, **kwargs: object) -> None:
        seen.update(index=list(design.index), covariates=covariates, pcs=pcs, **kwargs)

    monkeypatch.setattr(gwas_stage, "check_covariates_independent", record)
    gwas_stage.check_discovery_design(
        frame[["T", "age", "sex"]], frame[["PC1", "PC2"]], roles, "T", ("age", "sex"), "p.tsv"
    )
    assert seen["index"] == [f"S{i}" for i in range(2, 20, 2)]
    assert seen["covariates"] == ("age", "sex")
    assert seen["pcs"] == ["PC1", "PC2"]
    assert seen["samples"] == "discovery samples of 'T'"
    assert seen["source"] == "p.tsv"
