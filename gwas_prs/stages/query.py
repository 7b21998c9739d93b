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
                          population (see :mod:`gwas_prs.methods.qc.frequencies`)
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

The connection is read-only toward the file system: after the views are set up,
DuckDB's external access is switched off and its configuration locked
(``enable_external_access=false``, ``lock_configuration=true``), so SQL can
neither write files (``COPY … TO``, ``EXPORT DATABASE``, ``ATTACH``) nor read any
file other than the run's outputs (``read_csv('/etc/passwd')``), and cannot undo
the lock. With external access off DuckDB cannot read the views' files itself,
so, before the lock,

- the Parquet outputs are registered as :mod:`pyarrow.dataset` datasets (read by
  pyarrow, lazily: DuckDB pushes projections and filters into the scan), and
- the TSV outputs (sample-, clump- and trait-sized; ``sumstats`` is one row per
  variant and trait) are read by DuckDB's CSV reader into in-memory tables, only
  for the views a query names (:func:`run_query`; all of them when it names none).

:func:`connect` with ``read_only=False`` gives plain DuckDB views over the files
and no lock; only ``gwas-prs export`` uses it, for its own ``COPY`` statements.
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gwas_prs.core.errors import InputError

#: the file that makes a folder a run folder (:data:`gwas_prs.core.run_folder.MANIFEST_NAME`)
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class View:
    name: str
    description: str
    files: tuple[str, ...]
    sql: str  # SELECT … producing the view (DuckDB reading the files)
    #: how the locked connection serves it: "tsv" (read into a table) or "parquet"
    #: (a pyarrow dataset), with the trait taken from each file name by ``trait_pattern``
    kind: str = "tsv"
    trait_pattern: str | None = None
    base: str | None = None  # the folder of a hive-partitioned Parquet dataset


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

    def add(name: str, description: str, files: list[str], sql: str, **kind: Any) -> None:
        if files:
            views.append(View(name, description, tuple(files), sql, **kind))

    files = [p for p in [f"{r}/silver/qc/sample_qc.tsv"] if os.path.isfile(p)]
    add(
        "samples",
        "sample QC, PCs and ancestry (every input sample)",
        files,
        _tsv(files, None, "'s': 'VARCHAR'"),
    )
    for name, description, base in (
        ("variants", "variant QC (every input variant)", f"{r}/silver/qc/variant_qc.parquet"),
        ("frequencies", "allele frequencies per population", f"{r}/gold/frequencies.parquet"),
    ):
        files = _parquet_files(base)
        add(
            name,
            description,
            files,
            _parquet(files, None, hive=True),
            kind="parquet",
            base=base if os.path.isdir(base) else None,
        )
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
        kind="parquet",
        trait_pattern="/features/([^/]+)\\.parquet$",
    )
    files = sorted(glob.glob(f"{r}/gold/models/*/test_predictions.tsv"))
    add(
        "predictions",
        "held-out predictions of the models",
        files,
        _tsv(files, "/models/([^/]+)/test_predictions"),
    )
    return views


def _arrow_dataset(files: Iterable[str], *, base: str | None) -> Any:
    """A lazy pyarrow dataset over Parquet ``files`` (hive-partitioned under ``base``),
    typed like DuckDB's ``read_parquet(union_by_name=true, hive_types={contig: VARCHAR})``."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    files = list(files)
    schema = pa.unify_schemas(
        [pq.read_schema(f) for f in files], promote_options="permissive"
    ).remove_metadata()
    # pandas categoricals come back dictionary-encoded; DuckDB's reader gives their values
    schema = pa.schema(
        [f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in schema]
    )
    if base is None:
        return ds.dataset(files, schema=schema, format="parquet")
    keys = sorted(
        {
            part.split("=", 1)[0]
            for f in files
            for part in os.path.relpath(os.path.dirname(f), base).split(os.sep)
            if "=" in part
        }
    )
    keys = [k for k in keys if k not in schema.names]
    partitioning = ds.partitioning(pa.schema([(k, pa.string()) for k in keys]), flavor="hive")
    for key in keys:
        schema = schema.append(pa.field(key, pa.string()))
    return ds.dataset(
        files,
        schema=schema,
        format="parquet",
        partitioning=partitioning,
        partition_base_dir=base,
    )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _serve_locked(con: Any, view: View) -> None:
    """Make ``view`` readable on a connection that will lose file access (see the module
    docstring): a table read now (TSV) or a view over registered pyarrow datasets (Parquet)."""
    if view.kind == "tsv":
        con.execute(f"CREATE TABLE {_quote(view.name)} AS {view.sql}")
        return
    if view.trait_pattern is None:
        source = f"_gwas_prs_{view.name}"
        con.register(source, _arrow_dataset(view.files, base=view.base))
        con.execute(f"CREATE VIEW {_quote(view.name)} AS SELECT * FROM {_quote(source)}")
        return
    parts = []
    for index, path in enumerate(view.files):
        source = f"_gwas_prs_{view.name}_{index}"
        con.register(source, _arrow_dataset([path], base=None))
        match = re.search(view.trait_pattern, path)
        trait = (match.group(1) if match else "").replace("'", "''")
        parts.append(f"SELECT *, '{trait}' AS trait FROM {_quote(source)}")
    con.execute(f"CREATE VIEW {_quote(view.name)} AS {' UNION ALL BY NAME '.join(parts)}")


def _lock(con: Any) -> None:
    """No file access from now on (no COPY/ATTACH/read_csv/extensions), and no way back."""
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def connect(
    run_dir: str, *, read_only: bool = True, only: Iterable[str] | None = None
) -> tuple[Any, list[View]]:
    """An in-memory DuckDB connection with the run's views (all of them are returned).

    ``read_only`` (the default): the connection cannot touch the file system — SQL can
    neither write nor read any file (see the module docstring). ``read_only=False``:
    plain views over the files and full DuckDB, for trusted SQL only (``export``).
    ``only``: set up only these views (names), e.g. the ones a query mentions; the
    others stay out of the connection.

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
    wanted = None if only is None else set(only)
    con = duckdb.connect(":memory:")
    try:
        for view in views:
            if wanted is not None and view.name not in wanted:
                continue
            if read_only:
                _serve_locked(con, view)
            else:
                con.execute(f"CREATE VIEW {_quote(view.name)} AS {view.sql}")
        if read_only:
            _lock(con)
    except BaseException:
        con.close()
        raise
    return con, views


def mentioned_views(sql: str, views: Iterable[View]) -> list[str]:
    """The views whose name appears in ``sql`` as a word (all of them if none does)."""
    names = [v.name for v in views]
    found = [
        n for n in names if re.search(rf"(?<![\w$]){re.escape(n)}(?![\w$])", sql, re.IGNORECASE)
    ]
    return found or names


def _sql_error(exc: Exception, views: Iterable[View]) -> InputError:
    import duckdb

    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    if isinstance(exc, duckdb.PermissionException):
        return InputError(
            f"SQL error: {first}; a query reads only the run's views (see --tables) and "
            "writes no files — use --csv FILE to save a result"
        )
    names = ", ".join(v.name for v in views)
    return InputError(f"SQL error: {first}; views: {names} (see --tables)")


NO_SQL = (
    "no SQL statement given; pass a SQL statement, e.g. "
    'gwas-prs query RUN "SELECT * FROM samples LIMIT 5", or --tables to list the views'
)


def run_query(run_dir: str, sql: str) -> Any:
    """Run ``sql`` over the run's views (read-only, see :func:`connect`) and return a
    pandas DataFrame (the result of the last statement).

    Raises
    ------
    InputError
        The SQL is empty or fails (the message is DuckDB's first line), or there is
        nothing to query.
    """
    import duckdb

    if not sql.strip():
        raise InputError(NO_SQL)
    views = discover_views(run_dir) if os.path.isdir(run_dir) else []
    con, views = connect(run_dir, only=mentioned_views(sql, views))
    try:
        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as exc:
            raise _sql_error(exc, views) from None
        if not statements:  # only comments
            raise InputError(NO_SQL)
        try:
            result = con.execute(sql)
            if result is None:
                raise InputError(NO_SQL)
            return result.df()
        except duckdb.Error as exc:
            raise _sql_error(exc, views) from None
    finally:
        con.close()


def table_counts(run_dir: str) -> list[tuple[str, int, str, int]]:
    """``(view, rows, description, files)`` for every view."""
    con, views = connect(run_dir)
    try:
        return [
            (
                v.name,
                int(con.execute(f"SELECT count(*) FROM {_quote(v.name)}").fetchone()[0]),
                v.description,
                len(v.files),
            )
            for v in views
        ]
    finally:
        con.close()


def _is_gwas_prs_manifest(path: str) -> bool:
    """``path`` is a ``manifest.json`` written by gwas-prs (a JSON object with
    ``stages``), or one too damaged to tell (then the folder is treated as a run)."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.loads(handle.read(10_000_000))
    except (OSError, UnicodeDecodeError, ValueError):
        return os.path.isfile(path)
    return isinstance(data, dict) and "stages" in data


def enclosing_run_folder(path: str) -> str | None:
    """The run folder (a folder holding gwas-prs's ``manifest.json``) that ``path`` is or
    lies inside, after resolving symlinks and relative parts; None if there is none."""
    current = os.path.realpath(path)
    while True:
        if _is_gwas_prs_manifest(os.path.join(current, MANIFEST)):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def contained_run_folder(path: str) -> str | None:
    """A run folder somewhere below the folder ``path`` (the first one found), or None.

    Walks ``path`` (symlinks not followed) and stops at the first manifest.
    """
    root = os.path.realpath(path)
    if not os.path.isdir(root):
        return None
    for folder, _dirs, files in os.walk(root):
        if MANIFEST in files and _is_gwas_prs_manifest(os.path.join(folder, MANIFEST)):
            return folder
    return None


def is_within(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or lies inside it (both already resolved)."""
    return os.path.commonpath([path, folder]) == folder


def check_csv_target(csv: str, run_dir: str) -> None:
    """Refuse a ``--csv`` file inside the queried run folder or any other run folder.

    Raises
    ------
    InputError
        ``csv`` lies inside a run folder (after resolving symlinks).
    """
    target = os.path.realpath(csv)
    run = None if "://" in run_dir else os.path.realpath(run_dir)
    inside = run if run is not None and is_within(target, run) else enclosing_run_folder(target)
    if inside is not None:
        raise InputError(
            f"--csv {csv}: lies inside the run folder {inside}; gwas-prs query writes nothing "
            "into a run folder — choose a --csv path outside it"
        )
    if os.path.isdir(target):
        raise InputError(f"--csv {csv}: is a folder; give the path of a CSV file to write")
