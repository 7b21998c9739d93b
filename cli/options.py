"""Option aliases shared by several commands, declared once.

Use them as parameter annotations::

    def qc(run: RunArgument, overwrite: OverwriteOption = False) -> None: ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gwas_prs.core.stage_options import INGEST

RunArgument = Annotated[
    str,
    typer.Argument(
        help="Run folder (local path or gs://bucket/prefix) created by 'gwas-prs ingest'.",
        show_default=False,
    ),
]
RunOption = Annotated[
    str,
    typer.Option(
        "--run",
        "-r",
        help="Run folder to write into (created if missing; local path or gs://…).",
        show_default=False,
    ),
]
OverwriteOption = Annotated[
    bool,
    typer.Option(
        "--overwrite", help="Replace this stage's existing outputs (later stages are marked stale)."
    ),
]
SeedOption = Annotated[
    int | None,
    typer.Option("--seed", help="Fixed seed for Hail's random functions (reproducible runs)."),
]
CoresOption = Annotated[
    int | None,
    typer.Option("--cores", min=1, help="Cores for Hail local mode [default: all usable cores]."),
]
DriverMemoryOption = Annotated[
    str | None,
    typer.Option(
        "--driver-memory",
        help="JVM heap for Hail local mode, e.g. 8g [default: 70% of RAM, at most 6g].",
        show_default=False,
    ),
]
EngineOption = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help=(
            "auto, local or hail: 'local' runs the numpy kernels on this machine, 'hail' Hail's "
            "distributed methods (what a cluster runs), 'auto' local when Spark runs locally "
            "and the run folder is local [default: $GWAS_PRS_ENGINE, else auto]."
        ),
        show_default=False,
    ),
]
SparkMasterOption = Annotated[
    str | None,
    typer.Option(
        "--spark-master",
        help=(
            "Spark master URL: local[N], spark://HOST:PORT (a standalone cluster; the run "
            "folder must be on storage every worker reads, e.g. gs:// or a shared disk) or "
            "yarn (Dataproc, set by 'gwas-prs dataproc submit'). A non-local master runs the "
            "Hail engine [default: $GWAS_PRS_SPARK_MASTER, else local mode]."
        ),
        show_default=False,
    ),
]
ReferenceGenomeOption = Annotated[
    str,
    typer.Option("--reference-genome", help=INGEST.help("reference-genome")),
]
DryRunOption = Annotated[
    bool,
    typer.Option("--dry-run", help="Print the exact commands that would run, and run nothing."),
]
SamplesFileOption = Annotated[
    Path | None,
    typer.Option(
        "--samples",
        help="Sample metadata (TSV/CSV or the 1000 Genomes panel) with a sample-ID column.",
        show_default=False,
    ),
]
VerboseOption = Annotated[
    bool,
    typer.Option("--verbose", "-v", help="Show debug messages."),
]
ClusterNameArgument = Annotated[
    str,
    typer.Argument(
        help="Dataproc cluster name: lowercase letters, digits and hyphens, starting with a letter.",
        show_default=False,
    ),
]
RegionOption = Annotated[
    str | None,
    typer.Option(
        "--region",
        help="Google Cloud region of the cluster, e.g. us-central1 [default: gcloud config get-value dataproc/region].",
        show_default=False,
    ),
]
ProjectOption = Annotated[
    str | None,
    typer.Option(
        "--project",
        help="Google Cloud project [default: gcloud config get-value project].",
        show_default=False,
    ),
]
