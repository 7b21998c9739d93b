"""SQL over a run folder's outputs (DuckDB; no JVM): ``gwas-prs query``.

Each output the stages write becomes a view named after what it holds; views
exist only for the files present, so a run that stopped after ``qc`` has
``samples``, ``variants`` and ``frequencies`` only.

========================  ===================================================
view                      source (one row per …)
========================  ===================================================
``samples``               ``silver/qc/sample_qc.tsv`` — every input sample:
                          QC metrics, ``removed_by``, ``pass``, PCs, ancestry
``variants``              ``silver/qc/variant_qc.parquet`` — every input
                          variant: metrics, per-filter flags, ``removed_by``
``frequencies``           ``gold/frequencies.parquet`` — QC-passed variant ×
                          population (see :mod:`gwas_prs.frequencies`)
``sumstats``              ``gold/gwas/*/sumstats.tsv.gz`` (GWAS-SSF), with a
                          ``trait`` column; ``beta`` and ``odds_ratio`` both
                          present when traits differ in type
``splits``                ``gold/splits/*.tsv`` — sample × trait role
``clumps``                ``gold/prs/*/clumps.tsv`` — clumped variant × trait
``scores``                ``gold/prs/*/scores.tsv`` — target sample × trait,
                          one ``prs_<threshold>`` column per threshold
``features``              ``gold/features/*.parquet`` (train stage)
``predictions``           ``gold/models/*/test_predictions.tsv`` (train stage)
========================  ===================================================
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import Any

from gwas_prs.errors import InputError


@dataclass(frozen=True)
class View:
    name: str
    description: str
    files: tuple[str, ...]
    sql: str  # SELECT … producing the view


def _list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def _tsv(paths: list[str], trait_pattern: str | None, types: str = "") -> str:
    trait = f", regexp_extract(filename, '{trait_pattern}', 1) AS trait" if trait_pattern else ""
    exclude = " EXCLUDE (filename)" if trait_pattern else ""
    extra = f", types={{{types}}}" if types else ""
    return (
        f"SELECT *{exclude}{trait} FROM read_csv({_list(paths)}, delim='\\t', header=true, "
        f"nullstr=['NA', ''], union_by_name=true, filename={'true' if trait_pattern else 'false'}"
        f"{extra})"
    )


def _parquet(paths: list[str], trait_pattern: str | None, hive: bool = False) -> str:
    trait = f", regexp_extract(filename, '{trait_pattern}', 1) AS trait" if trait_pattern else ""
    exclude = " EXCLUDE (filename)" if trait_pattern else ""
    return (
        f"SELECT *{exclude}{trait} FROM read_parquet({_list(paths)}, union_by_name=true, "
        f"hive_partitioning={'true' if hive else 'false'}, "
        f"{'hive_types={contig: VARCHAR}, ' if hive else ''}"
        f"filename={'true' if trait_pattern else 'false'})"
    )


def _parquet_files(path: str) -> list[str]:
    """The files of a Parquet dataset: a file, or a (hive-partitioned) folder."""
    if os.path.isfile(path):
        return [path]
    return sorted(glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True))


def discover_views(run_dir: str) -> list[View]:
    """The views available in ``run_dir`` (see the module docstring)."""
    r = run_dir.rstrip("/")
    views: list[View] = []

    def add(name: str, description: str, files: list[str], sql: str) -> None:
        if files:
            views.append(View(name, description, tuple(files), sql))

    files = [p for p in [f"{r}/silver/qc/sample_qc.tsv"] if os.path.isfile(p)]
    add(
        "samples",
        "sample QC, PCs and ancestry (every input sample)",
        files,
        _tsv(files, None, "'s': 'VARCHAR'"),
    )
    files = _parquet_files(f"{r}/silver/qc/variant_qc.parquet")
    add("variants", "variant QC (every input variant)", files, _parquet(files, None, hive=True))
    files = _parquet_files(f"{r}/gold/frequencies.parquet")
    add("frequencies", "allele frequencies per population", files, _parquet(files, None, hive=True))
    files = sorted(glob.glob(f"{r}/gold/gwas/*/sumstats.tsv.gz"))
    add(
        "sumstats",
        "GWAS summary statistics (GWAS-SSF), all traits",
        files,
        _tsv(files, "/gwas/([^/]+)/sumstats", "'chromosome': 'VARCHAR'"),
    )
    files = sorted(glob.glob(f"{r}/gold/splits/*.tsv"))
    add(
        "splits",
        "discovery/train/validation/test roles",
        files,
        _tsv(files, "/splits/([^/]+)\\.tsv$"),
    )
    files = sorted(glob.glob(f"{r}/gold/prs/*/clumps.tsv"))
    add(
        "clumps",
        "LD clumps (index and clumped variants)",
        files,
        _tsv(files, "/prs/([^/]+)/clumps", "'chromosome': 'VARCHAR'"),
    )
    files = sorted(glob.glob(f"{r}/gold/prs/*/scores.tsv"))
    add(
        "scores",
        "polygenic scores of the target samples",
        files,
        _tsv(files, "/prs/([^/]+)/scores"),
    )
    files = sorted(glob.glob(f"{r}/gold/features/*.parquet"))
    add(
        "features",
        "model features (PRS, PCs, covariates, label, split)",
        files,
        _parquet(files, "/features/([^/]+)\\.parquet$"),
    )
    files = sorted(glob.glob(f"{r}/gold/models/*/test_predictions.tsv"))
    add(
        "predictions",
        "held-out predictions of the models",
        files,
        _tsv(files, "/models/([^/]+)/test_predictions"),
    )
    return views


def connect(run_dir: str) -> tuple[Any, list[View]]:
    """An in-memory DuckDB connection with the run's views.

    Raises
    ------
    InputError
        ``run_dir`` does not exist or holds no outputs to query.
    """
    import duckdb

    if not os.path.isdir(run_dir):
        raise InputError(f"{run_dir}: no such run folder")
    views = discover_views(run_dir)
    if not views:
        raise InputError(
            f"{run_dir}: no outputs to query (run at least 'gwas-prs qc', or 'gwas-prs run PIPELINE.yaml')"
        )
    con = duckdb.connect(":memory:")
    for view in views:
        con.execute(f"CREATE VIEW {view.name} AS {view.sql}")
    return con, views


def run_query(run_dir: str, sql: str) -> Any:
    """Run ``sql`` over the run's views and return a pandas DataFrame.

    Raises
    ------
    InputError
        The SQL fails (the message is DuckDB's first line) or there is nothing to query.
    """
    import duckdb

    con, views = connect(run_dir)
    try:
        return con.execute(sql).df()
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"SQL error: {first}; views: {', '.join(v.name for v in views)} (see --tables)"
        ) from None
    finally:
        con.close()


def table_counts(run_dir: str) -> list[tuple[str, int, str, int]]:
    """``(view, rows, description, files)`` for every view."""
    con, views = connect(run_dir)
    try:
        return [
            (
                v.name,
                int(con.execute(f"SELECT count(*) FROM {v.name}").fetchone()[0]),
                v.description,
                len(v.files),
            )
            for v in views
        ]
    finally:
        con.close()
