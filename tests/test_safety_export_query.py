"""`gwas-prs query` and `gwas-prs export` never damage a run folder (issue 14); no JVM.

The run folders here are built by hand: a ``manifest.json`` plus one tiny file per
view of :mod:`gwas_prs.stages.query`, so every view exists and no stage (no Hail) runs.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from tests.cli_helpers import invoke

VIEWS = {
    "samples": 4,
    "variants": 3,
    "frequencies": 6,
    "sumstats": 3,
    "splits": 4,
    "clumps": 2,
    "scores": 3,
    "features": 3,
    "predictions": 2,
}


def fake_run(root: Path) -> Path:
    """A run folder with one small output per view (see ``VIEWS`` for the row counts)."""
    root.mkdir(parents=True)
    manifest = {
        "manifest_version": 1,
        "run": str(root),
        "stages": {"qc": {"stage": "qc", "status": "complete"}},
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    qc = root / "silver" / "qc"
    qc.mkdir(parents=True)
    (qc / "sample_qc.tsv").write_text(
        "s\tcall_rate\tremoved_by\tpass\tPC1\tancestry\n"
        "HG00096\t0.99\tNA\ttrue\t0.1\tEUR\n"
        "HG00097\t0.98\tNA\ttrue\t0.2\tEUR\n"
        "NA18486\t0.90\tcall_rate\tfalse\tNA\tNA\n"
        "00123\t0.99\tNA\ttrue\t-0.3\tAFR\n"
    )
    variants = pd.DataFrame(
        {
            "contig": ["21", "21", "22"],
            "position": [100, 200, 300],
            "ref": ["A", "C", "G"],
            "alt": ["G", "T", "A"],
            "call_rate": [0.99, 0.97, 0.5],
            "removed_by": pd.Categorical([None, None, "call_rate"]),
        }
    )
    variants.to_parquet(qc / "variant_qc.parquet", partition_cols=["contig"], index=False)
    gold = root / "gold"
    frequencies = pd.DataFrame(
        {
            "contig": ["21", "21", "21", "21", "22", "22"],
            "position": [100, 100, 200, 200, 300, 300],
            "ref": ["A", "A", "C", "C", "G", "G"],
            "alt": ["G", "G", "T", "T", "A", "A"],
            "grouping": ["super_pop"] * 6,
            "group": ["EUR", "AFR"] * 3,
            "AF": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        }
    )
    gold.mkdir()
    frequencies.to_parquet(gold / "frequencies.parquet", partition_cols=["contig"], index=False)
    gwas = gold / "gwas" / "disease"
    gwas.mkdir(parents=True)
    with gzip.open(gwas / "sumstats.tsv.gz", "wt") as handle:
        handle.write(
            "chromosome\tbase_pair_location\teffect_allele\tother_allele\tbeta\tstandard_error\tp_value\n"
            "21\t100\tG\tA\t0.5\t0.1\t1e-6\n"
            "21\t200\tT\tC\t-0.1\t0.2\t0.6\n"
            "22\t300\tA\tG\tNA\tNA\tNA\n"
        )
    (gold / "splits").mkdir()
    (gold / "splits" / "disease.tsv").write_text(
        "s\trole\nHG00096\tdiscovery\nHG00097\ttrain\nNA18486\tvalidation\n00123\ttest\n"
    )
    prs = gold / "prs" / "disease"
    prs.mkdir(parents=True)
    (prs / "clumps.tsv").write_text(
        "chromosome\tbase_pair_location\tindex\tp_value\n21\t100\ttrue\t1e-6\n21\t200\tfalse\t0.6\n"
    )
    (prs / "scores.tsv").write_text(
        "s\tprs_0.001\tprs_1\nHG00096\t0.5\t0.1\nHG00097\t-0.5\t0.2\n00123\t0.0\t0.3\n"
    )
    (gold / "features").mkdir()
    pd.DataFrame(
        {
            "s": ["HG00096", "HG00097", "00123"],
            "prs": [0.5, -0.5, 0.0],
            "label": [1, 0, 1],
            "split": pd.Categorical(["train", "validation", "test"]),  # dictionary-encoded
        }
    ).to_parquet(gold / "features" / "disease.parquet", index=False)
    model = gold / "models" / "disease"
    model.mkdir(parents=True)
    (model / "test_predictions.tsv").write_text(
        "s\tlabel\tprobability\n00123\t1\t0.7\nHG00097\t0\t0.2\n"
    )
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return fake_run(tmp_path / "run")


# ---------------------------------------------------------------- query: the views


def test_every_view_returns_the_same_rows_on_the_locked_connection(run: Path) -> None:
    from gwas_prs.stages.query import connect

    locked, views = connect(str(run))
    open_, _ = connect(str(run), read_only=False)
    try:
        assert [v.name for v in views] == list(VIEWS)
        for name, rows in VIEWS.items():
            got = locked.execute(f"SELECT * FROM {name}").df()
            expected = open_.execute(f"SELECT * FROM {name}").df()
            assert len(got) == rows, name
            pd.testing.assert_frame_equal(got, expected, obj=name)
        # the column types the views promise: sample IDs and contigs are text
        assert locked.execute("SELECT s FROM samples WHERE s = '00123'").fetchone() == ("00123",)
        assert locked.execute("SELECT DISTINCT trait FROM sumstats").fetchall() == [("disease",)]
        assert locked.execute("SELECT DISTINCT trait FROM features").fetchall() == [("disease",)]
        assert locked.execute(
            "SELECT count(*) FROM frequencies f JOIN sumstats s ON f.contig = s.chromosome "
            "AND f.position = s.base_pair_location WHERE f.contig = '22'"
        ).fetchone() == (2,)
        # filters on the partition column still work on the lazily scanned Parquet views
        assert locked.execute("SELECT count(*) FROM variants WHERE contig = '21'").fetchone() == (
            2,
        )
    finally:
        locked.close()
        open_.close()


def test_tables_and_query_through_the_cli(run: Path, tmp_path: Path, no_jvm: None) -> None:
    code, out, errors = invoke("query", str(run), "--tables")
    assert code == 0, errors
    for name in VIEWS:
        assert name in out
    code, out, errors = invoke(
        "query", str(run), "SELECT ancestry, count(*) AS n FROM samples WHERE pass GROUP BY 1"
    )
    assert code == 0, errors
    assert "EUR" in out
    target = tmp_path / "results" / "groups.csv"
    code, _, errors = invoke(
        "query", str(run), "SELECT * FROM scores ORDER BY s", "--csv", str(target)
    )
    assert code == 0, errors
    assert list(pd.read_csv(target, dtype={"s": str}).s) == ["00123", "HG00096", "HG00097"]


# ---------------------------------------------------------------- query: no file access


@pytest.mark.parametrize(
    "sql",
    [
        "COPY (SELECT 1 AS x) TO '{run}/manifest.json' (FORMAT JSON)",
        "COPY (SELECT 1 AS x) TO '{run}/manifest.json' (FORMAT CSV, USE_TMP_FILE false)",
        "COPY samples TO '{run}/silver/qc/sample_qc.tsv' (DELIMITER '\t', USE_TMP_FILE false)",
        "COPY (SELECT 7 AS a) TO '{run}/gold/features/disease.parquet' "
        "(FORMAT PARQUET, USE_TMP_FILE false)",
        "EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{run}/manifest.json' (FORMAT CSV)",
        "EXPORT DATABASE '{run}/silver'",
        "ATTACH '{run}/manifest.json' AS m",
        "ATTACH '{run}/gold/new.duckdb' AS m; CREATE TABLE m.t AS SELECT 1",
        "SELECT 1; COPY (SELECT 1) TO '{run}/manifest.json'",
    ],
)
def test_sql_that_writes_files_fails_and_leaves_the_run_untouched(
    run: Path, sql: str, no_jvm: None
) -> None:
    before = snapshot(run)
    code, _, errors = invoke("query", str(run), sql.format(run=run))
    assert code == 2
    assert errors.count("\n") == 1 and errors.startswith("error: SQL error: "), errors
    assert snapshot(run) == before  # the manifest's bytes and every stage output unchanged
    assert not (run / "gold" / "new.duckdb").exists()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv_auto('{secret}')",
        "SELECT * FROM read_text('{secret}')",
        "SELECT * FROM '{secret}'",
        "SELECT * FROM glob('{outside}/*')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "INSTALL httpfs",
        "SET enable_external_access = true",
        "RESET enable_external_access",
        "SET lock_configuration = false",
    ],
)
def test_sql_that_reads_outside_files_fails(
    run: Path, tmp_path: Path, sql: str, no_jvm: None
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.csv"
    secret.write_text("password\nhunter2\n")
    code, out, errors = invoke("query", str(run), sql.format(secret=secret, outside=outside))
    assert code == 2
    assert errors.count("\n") == 1 and errors.startswith("error: SQL error: "), errors
    assert "hunter2" not in out and "secret.csv" not in out and "root:" not in out


def test_copy_on_the_library_connection_fails(run: Path, tmp_path: Path) -> None:
    import duckdb

    from gwas_prs.stages.query import connect

    before = snapshot(run)
    con, _ = connect(str(run))
    try:
        with pytest.raises(duckdb.Error):
            con.execute(f"COPY samples TO '{tmp_path / 'x.csv'}'")
        with pytest.raises(duckdb.Error):
            con.execute("SET enable_external_access = true")
        assert con.execute("SELECT count(*) FROM samples").fetchone() == (4,)
    finally:
        con.close()
    assert not (tmp_path / "x.csv").exists() and snapshot(run) == before


# ---------------------------------------------------------------- query: --csv and empty SQL


def test_csv_inside_a_run_folder_is_refused(run: Path, tmp_path: Path, no_jvm: None) -> None:
    other = fake_run(tmp_path / "other")
    before, before_other = snapshot(run), snapshot(other)
    for target in (
        run / "silver" / "qc" / "sample_qc.tsv",
        run / "manifest.json",
        run / "new" / "folder" / "result.csv",
        other / "gold" / "result.csv",
    ):
        code, _, errors = invoke("query", str(run), "SELECT * FROM samples", "--csv", str(target))
        assert code == 2 and errors.count("\n") == 1, errors
        assert errors.startswith(f"error: --csv {target}: lies inside the run folder "), errors
        assert "--csv" in errors and "outside" in errors
    assert snapshot(run) == before and snapshot(other) == before_other
    assert not (run / "new").exists()


def test_csv_through_a_symlink_or_relative_path_is_refused(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_jvm: None
) -> None:
    link = tmp_path / "link"
    link.symlink_to(run / "silver")
    before = snapshot(run)
    code, _, errors = invoke("query", str(run), "SELECT 1", "--csv", str(link / "qc" / "x.csv"))
    assert code == 2 and "lies inside the run folder" in errors
    monkeypatch.chdir(run / "silver")
    code, _, errors = invoke("query", "..", "SELECT 1", "--csv", "qc/sample_qc.tsv")
    assert code == 2 and "lies inside the run folder" in errors
    assert snapshot(run) == before


@pytest.mark.parametrize("sql", ["", "   ", "\n\t", "/* only a comment */"])
def test_empty_sql_is_one_line(run: Path, sql: str, no_jvm: None) -> None:
    code, _, errors = invoke("query", str(run), sql)
    assert code == 2 and errors.count("\n") == 1, errors
    assert "pass a SQL statement" in errors and "--tables" in errors


def test_empty_sql_in_the_library(run: Path) -> None:
    from gwas_prs.core.errors import InputError
    from gwas_prs.stages.query import run_query

    for sql in ("", " \n", "-- a comment\n", ";"):
        with pytest.raises(InputError, match="pass a SQL statement"):
            run_query(str(run), sql)


def test_empty_sql_with_tables_lists_the_tables(run: Path, no_jvm: None) -> None:
    code, out, errors = invoke("query", str(run), "", "--tables")
    assert code == 0, errors
    assert "sumstats" in out


# ---------------------------------------------------------------- export: never into a run


def export(run: Path | str, out: Path | str, *extra: str) -> tuple[int, str, str]:
    return invoke("export", str(run), "--layer", "gold", "--out", str(out), *extra)


def test_gold_export_writes_a_marker_and_overwrite_replaces_only_exports(
    run: Path, tmp_path: Path, no_jvm: None
) -> None:
    out = tmp_path / "exports" / "gold"
    code, stdout, errors = export(run, out)
    assert code == 0, errors
    assert "sumstats" in stdout and "scores" in stdout
    assert len(pd.read_parquet(out / "sumstats")) == 3
    assert len(list((out / "sumstats").glob("chromosome=*"))) == 2
    assert len(pd.read_parquet(out / "scores.parquet")) == 3
    marker = json.loads((out / ".gwas-prs-export.json").read_text())
    assert marker["layer"] == "gold" and marker["format"] == "parquet"
    assert marker["run"] == os.path.realpath(run) and marker["created"]
    # the marker is not part of what Parquet readers see
    assert len(pd.read_parquet(out / "sumstats")) == 3
    # without --overwrite: refused; with it: replaced (it is an export)
    code, _, errors = export(run, out)
    assert code == 2 and "pass --overwrite" in errors
    (out / "stale.txt").write_text("from the previous export")
    code, _, errors = export(run, out, "--overwrite")
    assert code == 0, errors
    assert not (out / "stale.txt").exists() and (out / ".gwas-prs-export.json").exists()
    assert not list(out.parent.glob(".*partial*"))


def test_overwrite_refuses_a_folder_that_is_not_an_export(
    run: Path, tmp_path: Path, no_jvm: None
) -> None:
    out = tmp_path / "my-analysis"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    code, _, errors = export(run, out, "--overwrite")
    assert code == 2
    assert errors == (
        f"error: {out} exists and is not a gwas-prs export (no .gwas-prs-export.json); "
        "choose another --out or remove it yourself\n"
    )
    assert (out / "notes.txt").read_text() == "precious"
    file_out = tmp_path / "result.parquet"
    file_out.write_bytes(b"not an export")
    code, _, errors = export(run, file_out, "--overwrite")
    assert code == 2 and "is not a gwas-prs export" in errors
    assert file_out.read_bytes() == b"not an export"


def test_export_into_the_run_folder_is_refused(run: Path, tmp_path: Path, no_jvm: None) -> None:
    before = snapshot(run)
    code, _, errors = export(run, run, "--overwrite")
    assert code == 2 and errors.count("\n") == 1, errors
    assert errors.startswith(f"error: --out {run}: is the run folder {os.path.realpath(run)}")
    for out in (run / "silver", run / "exports" / "gold", run / "gold" / "gwas"):
        code, _, errors = export(run, out, "--overwrite")
        assert code == 2 and errors.count("\n") == 1, errors
        assert "lies inside the run folder" in errors, errors
    assert snapshot(run) == before
    assert not (run / "exports").exists()
    assert not [p for p in run.rglob(".*partial*")]


def test_export_into_another_run_folder_or_over_one_is_refused(
    run: Path, tmp_path: Path, no_jvm: None
) -> None:
    other = fake_run(tmp_path / "projects" / "other")
    before = snapshot(other)
    code, _, errors = export(run, other / "gold" / "export", "--overwrite")
    assert code == 2 and f"lies inside the run folder {os.path.realpath(other)}" in errors
    # OUT contains a run folder: the parent of RUN; a folder holding another run (not an
    # export, so refused as such, also without --overwrite); an "export" holding a run
    code, _, errors = export(run, tmp_path, "--overwrite")
    assert code == 2 and errors.count("\n") == 1, errors
    assert f"contains the run folder {os.path.realpath(run)}" in errors, errors
    for extra in (("--overwrite",), ()):
        code, _, errors = export(run, tmp_path / "projects", *extra)
        assert code == 2 and "is not a gwas-prs export" in errors, errors
    (tmp_path / "projects" / ".gwas-prs-export.json").write_text("{}")
    code, _, errors = export(run, tmp_path / "projects", "--overwrite")
    assert code == 2 and errors.count("\n") == 1, errors
    assert f"contains the run folder {os.path.realpath(other)}" in errors, errors
    assert snapshot(other) == before
    assert (run / "manifest.json").exists()


def test_export_through_a_symlink_or_relative_path_is_refused(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_jvm: None
) -> None:
    before = snapshot(run)
    link = tmp_path / "shortcut"
    link.symlink_to(run)
    code, _, errors = export(run, link, "--overwrite")
    assert code == 2 and "is the run folder" in errors, errors
    code, _, errors = export(link, run, "--overwrite")
    assert code == 2 and "is the run folder" in errors, errors
    monkeypatch.chdir(run / "gold")
    code, _, errors = export("..", ".", "--overwrite")
    assert code == 2 and "lies inside the run folder" in errors, errors
    code, _, errors = export(".", "../..", "--overwrite")
    assert code == 2 and "contains the run folder" in errors, errors
    assert snapshot(run) == before


def test_export_of_a_folder_without_manifest_still_protects_it(
    tmp_path: Path, no_jvm: None
) -> None:
    """The RUN argument itself is protected even when it has no manifest.json."""
    run = fake_run(tmp_path / "run")
    (run / "manifest.json").unlink()
    before = snapshot(run)
    code, _, errors = export(run, run, "--overwrite")
    assert code == 2 and "is the run folder" in errors
    code, _, errors = export(run, run / "gold" / "x", "--overwrite")
    assert code == 2 and "lies inside the run folder" in errors
    code, _, errors = export(run, tmp_path, "--overwrite")
    assert code == 2 and "contains the run folder" in errors
    assert snapshot(run) == before
