"""GWAS-SSF summary statistics: write, sidecar, read back (pandas only, no JVM)."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from gwas_prs.core.errors import InputError
from gwas_prs.formats.sumstats import (
    SumstatsMetadata,
    read_gwas_ssf,
    read_gwas_ssf_metadata,
    write_gwas_ssf,
)

MANDATORY = [
    "chromosome",
    "base_pair_location",
    "effect_allele",
    "other_allele",
    "beta",
    "standard_error",
    "effect_allele_frequency",
    "p_value",
]


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "chromosome": ["2", "X", "10", "chr1", "1", "MT"],
            "base_pair_location": [500, 30, 7, 200, 100, 9],
            "effect_allele": ["A", "C", "G", "T", "AC", "G"],
            "other_allele": ["G", "T", "A", "C", "A", "A"],
            "beta": [0.1, -0.25, 0.3, 1.2345678901234567e-5, -2.0, 0.0],
            "standard_error": [0.01, 0.02, 0.03, 0.5, 0.1, 1.0],
            "effect_allele_frequency": [0.1, 0.2, np.nan, 0.4, 0.5, 0.6],
            "p_value": [1e-300, 0.0, 0.5, 0.9, 3.2e-8, 1.0],
            "neg_log_10_p_value": [300.0, 400.3, 0.30103, 0.0457575, 7.49485, 0.0],
            "rsid": ["rs2", None, "rs10", "rs1b", "rs1a", "rsMT"],
            "n": [100, 100, 99, 100, 100, 98],
        }
    )


META = SumstatsMetadata(
    genome_assembly="GRCh38",
    trait_description="simulated height",
    sample_size=100,
    sample_ancestry=("EUR", "AFR"),
    sample_ancestry_category=("European", "African"),
    test="wald",
    covariates=("age", "sex"),
    n_pcs=2,
    lambda_gc=1.0123,
    versions={"gwas-prs": "0.1.0", "hail": "0.2.139"},
    parameters={"trait": "height"},
    date_modified=dt.date(2026, 11, 22),
)


def test_file_layout_order_and_missing_values(tmp_path: Path) -> None:
    path = str(tmp_path / "sumstats.tsv.gz")
    assert write_gwas_ssf(_frame(), path, META) == path
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    assert lines[0].split("\t") == [*MANDATORY, "neg_log_10_p_value", "rsid", "n"]
    rows = [line.split("\t") for line in lines[1:]]
    # sorted by chromosome code (X=23, MT=25) then position; chr prefix dropped
    assert [(r[0], r[1]) for r in rows] == [
        ("1", "100"),
        ("1", "200"),
        ("2", "500"),
        ("10", "7"),
        ("23", "30"),
        ("25", "9"),
    ]
    assert rows[3][6] == "NA"  # missing frequency
    assert rows[4][9] == "NA"  # missing rsid
    # exact float text; p below the smallest double rebuilt from -log10 p
    assert float(rows[1][4]) == 1.2345678901234567e-05
    assert rows[2][7] == "1e-300"
    assert rows[4][7] == "5.01187e-401"
    assert not list(tmp_path.glob("*.tmp-*"))


def test_round_trip(tmp_path: Path) -> None:
    path = str(tmp_path / "sumstats.tsv.gz")
    write_gwas_ssf(_frame(), path, META)
    back = read_gwas_ssf(path)
    assert list(back.columns) == [*MANDATORY, "neg_log_10_p_value", "rsid", "n"]
    assert back["chromosome"].tolist() == ["1", "1", "2", "10", "X", "MT"]
    assert back["base_pair_location"].tolist() == [100, 200, 500, 7, 30, 9]
    assert back["base_pair_location"].dtype == np.int64
    assert back["effect_allele"].tolist() == ["AC", "T", "A", "G", "C", "G"]
    assert back["beta"].tolist() == [-2.0, 1.2345678901234567e-5, 0.1, 0.3, -0.25, 0.0]
    assert back["p_value"].tolist() == [3.2e-8, 0.9, 1e-300, 0.5, 0.0, 1.0]
    assert back["neg_log_10_p_value"].iloc[4] == 400.3
    assert math.isnan(back["effect_allele_frequency"].iloc[3])
    assert back["rsid"].isna().tolist() == [False, False, False, False, True, False]
    assert str(back["n"].dtype) == "Int64"
    assert back["n"].tolist() == [100, 100, 100, 99, 100, 98]


def test_sidecar_contents_and_md5(tmp_path: Path) -> None:
    path = str(tmp_path / "sumstats.tsv.gz")
    write_gwas_ssf(_frame(), path, META)
    md5 = hashlib.md5(Path(path).read_bytes()).hexdigest()
    with open(path + "-meta.yaml", encoding="utf-8") as handle:
        meta = yaml.safe_load(handle)
    assert meta == {
        "date_metadata_last_modified": dt.date(2026, 11, 22),
        "trait_description": ["simulated height"],
        "genome_assembly": "GRCh38",
        "coordinate_system": "1-based",
        "genotyping_technology": ["Whole genome sequencing"],
        "samples": [
            {
                "sample_size": 100,
                "sample_ancestry": ["EUR", "AFR"],
                "sample_ancestry_category": ["European", "African"],
                "case_control_study": False,
            }
        ],
        "data_file_name": "sumstats.tsv.gz",
        "file_type": "GWAS-SSF v1.0",
        "data_file_md5sum": md5,
        "analysis_software": "gwas-prs 0.1.0; hail 0.2.139",
        "adjusted_covariates": ["age", "sex", "PC1", "PC2"],
        "is_harmonised": False,
        "is_sorted": True,
        "gwas_prs": {
            "effect_size": "beta",
            "test": "wald",
            "covariates": ["age", "sex"],
            "n_pcs": 2,
            "lambda_gc": 1.0123,
            "versions": {"gwas-prs": "0.1.0", "hail": "0.2.139"},
            "trait": "height",
        },
    }
    assert read_gwas_ssf_metadata(path) == meta
    # same table, same bytes (no timestamp or name in the gzip header)
    again = str(tmp_path / "again.tsv.gz")
    write_gwas_ssf(_frame(), again, META)
    assert hashlib.md5(Path(again).read_bytes()).hexdigest() == md5


def test_binary_trait_writes_odds_ratio_and_ci(tmp_path: Path) -> None:
    path = str(tmp_path / "binary.tsv.gz")
    meta = SumstatsMetadata(
        genome_assembly="GRCh37",
        trait_description="disease",
        sample_size=50,
        case_count=20,
        control_count=30,
        effect_size="odds_ratio",
    )
    frame = _frame().drop(columns=["neg_log_10_p_value"]).iloc[[0]]
    write_gwas_ssf(frame, path, meta)
    back = read_gwas_ssf(path)
    assert list(back.columns) == [
        *MANDATORY[:4],
        "odds_ratio",
        *MANDATORY[5:],
        "ci_lower",
        "ci_upper",
        "beta",
        "rsid",
        "n",
        "neg_log_10_p_value",
    ]
    assert back["odds_ratio"].iloc[0] == np.exp(0.1)
    assert back["ci_upper"].iloc[0] == np.exp(0.1 + 1.959963984540054 * 0.01)
    assert back["ci_lower"].iloc[0] == pytest.approx(math.exp(0.1 - 1.959963984540054 * 0.01))
    assert back["beta"].iloc[0] == 0.1
    sample = read_gwas_ssf_metadata(path)["samples"][0]
    assert sample["case_control_study"] is True
    assert (sample["case_count"], sample["control_count"]) == (20, 30)


def test_reader_derives_beta_and_p_from_alternatives(tmp_path: Path) -> None:
    path = tmp_path / "other.tsv"
    path.write_text(
        "chromosome\tbase_pair_location\teffect_allele\tother_allele\todds_ratio\t"
        "standard_error\teffect_allele_frequency\tneg_log_10_p_value\n"
        "23\t5\tA\tG\t2.0\t0.1\t0.3\t#NA\n"
        "1\t5\tA\tG\t1.0\t0.1\t0.3\t2\n"
    )
    back = read_gwas_ssf(str(path))
    assert back["chromosome"].tolist() == ["X", "1"]
    assert back["beta"].iloc[1] == 0.0
    assert back["beta"].iloc[0] == math.log(2.0)
    assert math.isnan(back["p_value"].iloc[0])
    assert back["p_value"].iloc[1] == pytest.approx(0.01)


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text(
        "chromosome\tbase_pair_location\teffect_allele\tother_allele\tbeta\t"
        "effect_allele_frequency\tp_value\n1\t5\tA\tG\t0.1\t0.3\t0.5\n"
    )
    with pytest.raises(InputError, match=r"bad\.tsv:1: no column 'standard_error'"):
        read_gwas_ssf(str(path))


def test_non_numeric_value_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text(
        "\t".join(MANDATORY) + "\n1\t5\tA\tG\t0.1\t0.2\t0.3\t0.5\n1\t6\tA\tG\tbig\t0.2\t0.3\t0.5\n"
    )
    with pytest.raises(InputError, match=r"bad\.tsv:3: beta is 'big', not a number"):
        read_gwas_ssf(str(path))


def test_empty_and_absent_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    with pytest.raises(InputError, match=r"empty\.tsv:1: the file is empty"):
        read_gwas_ssf(str(empty))
    with pytest.raises(InputError, match="not found"):
        read_gwas_ssf(str(tmp_path / "absent.tsv.gz"))


def test_unknown_contig_is_refused(tmp_path: Path) -> None:
    frame = _frame()
    frame.loc[0, "chromosome"] = "GL000192.1"
    with pytest.raises(InputError, match=r"contig\(s\) GL000192.1 cannot be written"):
        write_gwas_ssf(frame, str(tmp_path / "x.tsv.gz"), META)
    assert not list(tmp_path.iterdir())
