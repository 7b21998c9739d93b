"""``gwas-prs export``: a layer of a run as Parquet (by contig), VCF or PLINK."""

from __future__ import annotations

from typing import Annotated

import typer

from gwas_prs.cli.console import console, summary_table
from gwas_prs.cli.hail_options import hail_config
from gwas_prs.cli.options import (
    CoresOption,
    DriverMemoryOption,
    RunArgument,
    SparkMasterOption,
)

ExportOverwriteOption = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Replace OUT if it is a previous export (it holds .gwas-prs-export.json); "
        "never any other folder.",
    ),
]


def export(
    run: RunArgument,
    layer: Annotated[
        str,
        typer.Option("--layer", help="bronze (imported), silver (QC-passed) or gold (results)."),
    ],
    out: Annotated[
        str,
        typer.Option(
            "--out",
            "-o",
            help=(
                "Folder to create with the exported files (outside any run folder); local or "
                "gs://BUCKET/PREFIX."
            ),
            show_default=False,
        ),
    ],
    format: Annotated[
        str,
        typer.Option("--format", help="parquet, vcf (bgzipped + tabix) or plink (.bed/.bim/.fam)."),
    ] = "parquet",
    overwrite: ExportOverwriteOption = False,
    cores: CoresOption = None,
    driver_memory: DriverMemoryOption = None,
    spark_master: SparkMasterOption = None,
) -> None:
    """Export a layer of a run folder for other tools.

    Parquet: per-variant data partitioned by contig (genotypes as one row per
    variant × sample, variant QC, summary statistics), per-sample tables as
    single files. VCF and PLINK: the bronze or silver genotypes. The folder
    OUT appears only when complete, holds a .gwas-prs-export.json marker, and
    may not be, lie inside or contain a run folder. The gold layer starts no JVM.
    RUN and OUT may be local or gs:// (on a cluster, both must be gs://).

    Example: gwas-prs export runs/demo --layer silver --format plink --out exports/silver-plink
    """
    from gwas_prs.stages.export import ExportConfig, run_export

    config = ExportConfig(run_dir=run, layer=layer, format=format, out=out, overwrite=overwrite)
    config.validate()
    result = run_export(
        config,
        hail_config(
            run, "export", cores=cores, driver_memory=driver_memory, spark_master=spark_master
        ),
    )
    rows = [(name, n, path) for name, (path, n) in result.tables.items()]
    console.print(
        summary_table(
            f"export: {layer} as {format} → {result.out}", rows, ("table", "rows", "path")
        ),
        soft_wrap=True,
    )
