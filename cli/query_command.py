"""``gwas-prs query``: SQL (DuckDB) over a run folder's outputs, no JVM."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gwas_prs.cli.console import console, summary_table
from gwas_prs.cli.options import RunArgument


def query(
    run: RunArgument,
    sql: Annotated[
        str | None,
        typer.Argument(
            help='SQL over the run\'s views, e.g. "SELECT trait, count(*) FROM sumstats GROUP BY trait".',
            show_default=False,
        ),
    ] = None,
    csv: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            help="Write the whole result to this CSV file instead of printing.",
            show_default=False,
        ),
    ] = None,
    tables: Annotated[
        bool, typer.Option("--tables", help="List the views with their row counts and sources.")
    ] = False,
    max_rows: Annotated[
        int, typer.Option("--max-rows", min=1, help="Rows printed (use --csv for all).")
    ] = 50,
) -> None:
    """Query a run folder with SQL (DuckDB): the local equivalent of a data lake.

    Views, named after what they hold (present when the stage has run):
    samples (sample QC, PCs, ancestry), variants (variant QC), frequencies
    (per population), sumstats (GWAS-SSF, all traits, with a trait column),
    splits, clumps, scores (PRS), features and predictions (train).
    No JVM is started.

    The SQL cannot read or write files (COPY, ATTACH, read_csv… fail): it sees
    the views only; --csv FILE saves a result, outside any run folder.

    Example: gwas-prs query runs/demo "SELECT chromosome, count(*) AS hits FROM sumstats WHERE p_value < 1e-5 GROUP BY 1"
    """
    from gwas_prs.core.errors import InputError
    from gwas_prs.stages.query import NO_SQL, check_csv_target, run_query, table_counts

    if sql is not None and not sql.strip():
        sql = None  # "" or blanks: no statement (an error unless --tables)
    if csv is not None:
        check_csv_target(str(csv), run)  # before any work: never into a run folder
    if tables:
        rows = table_counts(run)
        console.print(
            summary_table(f"views in {run}", rows, ("view", "rows", "holds", "files")),
            soft_wrap=True,
        )
        if sql is None:
            return
    if sql is None:
        raise InputError(NO_SQL)
    frame = run_query(run, sql)
    if csv is not None:
        from gwas_prs.core import storage

        with storage.atomic_writer(str(csv)) as handle:
            frame.to_csv(handle, index=False)
        console.print(
            f"{len(frame):,} rows × {frame.shape[1]} columns written to {csv}", highlight=False
        )
        return
    from rich.table import Table

    table = Table(show_header=True, header_style="bold")
    for column in frame.columns:
        table.add_column(
            str(column), justify="right" if frame[column].dtype.kind in "iuf" else "left"
        )
    for row in frame.head(max_rows).itertuples(index=False):
        table.add_row(*[_cell(v) for v in row])
    console.print(table, soft_wrap=True)
    shown = min(len(frame), max_rows)
    note = f" (first {shown} shown; --csv FILE writes all)" if shown < len(frame) else ""
    console.print(f"{len(frame):,} row(s){note}", highlight=False)


def _cell(value: object) -> str:
    import math

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NA"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
