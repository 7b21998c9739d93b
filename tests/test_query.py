"""`gwas-prs query` over the demo run: views, numbers checked against pandas, errors (no JVM)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from tests.cli_helpers import invoke

pytestmark = pytest.mark.slow  # the demo run


def sumstats(run: Path) -> pd.DataFrame:
    with gzip.open(run / "gold" / "gwas" / "disease" / "sumstats.tsv.gz", "rt") as handle:
        return pd.read_csv(handle, sep="\t", dtype={"chromosome": str}, na_values=["NA"])


def test_views_and_their_row_counts(demo_run: tuple[Path, str], no_jvm: None) -> None:
    from gwas_prs.stages.query import table_counts

    run = demo_run[0]
    counts = {name: rows for name, rows, _, _ in table_counts(str(run))}
    assert list(counts) == [
        "samples",
        "variants",
        "frequencies",
        "sumstats",
        "splits",
        "clumps",
        "scores",
        "features",
        "predictions",
    ]
    assert counts["samples"] == 1126  # every input sample
    assert counts["variants"] == 25132  # every bi-allelic variant entering variant QC
    assert counts["sumstats"] == len(sumstats(run)) == 6088
    assert counts["frequencies"] == len(pd.read_parquet(run / "gold" / "frequencies.parquet"))
    assert counts["scores"] == len(
        pd.read_csv(run / "gold" / "prs" / "disease" / "scores.tsv", sep="\t")
    )
    assert counts["features"] == 557  # train + validation + test samples (tests/test_demo.py)
    assert counts["predictions"] == 167  # the test part
    code, out, _ = invoke("query", str(run), "--tables")
    assert code == 0 and "sumstats" in out and "6,088" in out


def test_locked_views_equal_the_plain_views(demo_run: tuple[Path, str], no_jvm: None) -> None:
    """The query connection has no file access (issue 14); its views, served from pyarrow
    datasets and in-memory tables, hold the same rows as DuckDB reading the files."""
    from gwas_prs.stages.query import connect

    run = demo_run[0]
    manifest = (run / "manifest.json").read_bytes()
    locked, views = connect(str(run))
    plain, _ = connect(str(run), read_only=False)
    try:
        for view in views:
            order = "ORDER BY ALL"
            got = locked.execute(f"SELECT * FROM {view.name} {order}").df()
            expected = plain.execute(f"SELECT * FROM {view.name} {order}").df()
            assert len(got) > 0, view.name
            pd.testing.assert_frame_equal(got, expected, obj=view.name)
    finally:
        locked.close()
        plain.close()
    code, _, errors = invoke("query", str(run), f"COPY samples TO '{run / 'manifest.json'}'")
    assert code == 2 and errors.startswith("error: SQL error: Permission Error")
    assert (run / "manifest.json").read_bytes() == manifest


def test_query_numbers_match_pandas(
    demo_run: tuple[Path, str], tmp_path: Path, no_jvm: None
) -> None:
    from gwas_prs.stages.query import run_query

    run = demo_run[0]
    frame = sumstats(run)
    got = run_query(
        str(run),
        "SELECT chromosome, count(*) AS n, min(p_value) AS best FROM sumstats "
        "WHERE p_value < 1e-3 GROUP BY chromosome ORDER BY chromosome",
    ).set_index("chromosome")
    hits = frame[frame.p_value < 1e-3]
    expected = hits.groupby("chromosome").agg(n=("p_value", "size"), best=("p_value", "min"))
    assert got["n"].to_dict() == expected["n"].to_dict()
    assert (got["best"] - expected.loc[got.index, "best"]).abs().max() < 1e-15
    # the top hit's EUR frequency, through the frequencies view and through pandas
    top = frame.sort_values("p_value").iloc[0]
    af = run_query(
        str(run),
        "SELECT f.AF FROM sumstats s JOIN frequencies f ON f.contig = s.chromosome "
        "AND f.position = s.base_pair_location AND f.ref = s.other_allele AND f.alt = s.effect_allele "
        "WHERE f.grouping = 'super_pop' AND f.\"group\" = 'EUR' ORDER BY s.p_value LIMIT 1",
    )["AF"].iloc[0]
    freq = pd.read_parquet(run / "gold" / "frequencies.parquet")
    row = freq[
        (freq.position == top.base_pair_location)
        & (freq.alt == top.effect_allele)
        & (freq.group == "EUR")
        & (freq.contig.astype(str) == top.chromosome)
    ]
    assert af == pytest.approx(float(row.AF.iloc[0]), abs=1e-12)
    # passed samples per ancestry group, from the samples view and from the TSV
    qc = pd.read_csv(run / "silver" / "qc" / "sample_qc.tsv", sep="\t")
    out = tmp_path / "out" / "groups.csv"
    code, _, _ = invoke(
        "query",
        str(run),
        "SELECT ancestry, count(*) AS n FROM samples WHERE pass GROUP BY 1 ORDER BY 1",
        "--csv",
        str(out),
    )
    assert code == 0
    written = pd.read_csv(out).set_index("ancestry")["n"].to_dict()
    assert written == qc[qc["pass"]].groupby("ancestry").size().to_dict()


def test_query_errors_are_one_line(
    demo_run: tuple[Path, str], tmp_path: Path, no_jvm: None
) -> None:
    code, _, errors = invoke("query", str(demo_run[0]), "SELECT nope FROM sumstats")
    assert code == 2 and errors.count("\n") == 1
    assert errors.startswith('error: SQL error: Binder Error: Referenced column "nope" not found')
    code, _, errors = invoke("query", str(tmp_path), "SELECT 1")
    assert code == 2 and f"{tmp_path}: no outputs to query" in errors
