"""``gwas-prs ingest``: VCFs → ``RUN/bronze/genotypes.mt``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gwas_prs.cli.console import console, print_outputs, summary_table
from gwas_prs.cli.hail_options import hail_config
from gwas_prs.cli.options import (
    CoresOption,
    DriverMemoryOption,
    EngineOption,
    OverwriteOption,
    ReferenceGenomeOption,
    RunOption,
    SamplesFileOption,
    SeedOption,
    SparkMasterOption,
)
from gwas_prs.core.stage_options import INGEST

if TYPE_CHECKING:
    from gwas_prs.stages.ingest import IngestResult


def ingest(
    vcfs: Annotated[
        list[str],
        typer.Argument(
            help="VCF files (.vcf, .vcf.gz, .vcf.bgz) or quoted globs such as 'data/chr*.vcf.gz'.",
            show_default=False,
        ),
    ],
    run: RunOption,
    samples: SamplesFileOption = None,
    sample_id_column: Annotated[
        str | None,
        typer.Option("--sample-id-column", help=INGEST.help("sample-id-column")),
    ] = INGEST.cli_default("sample-id-column"),
    reference_genome: ReferenceGenomeOption = INGEST.cli_default("reference-genome"),
    keep_symbolic: Annotated[
        bool,
        typer.Option("--keep-symbolic", help=INGEST.help("keep-symbolic")),
    ] = INGEST.cli_default("keep-symbolic"),
    skip_unknown_contigs: Annotated[
        bool,
        typer.Option("--skip-unknown-contigs", help=INGEST.help("skip-unknown-contigs")),
    ] = INGEST.cli_default("skip-unknown-contigs"),
    overwrite: OverwriteOption = False,
    cores: CoresOption = None,
    driver_memory: DriverMemoryOption = None,
    engine: EngineOption = None,
    spark_master: SparkMasterOption = None,
    seed: SeedOption = None,
) -> None:
    """Import VCFs into the run's bronze MatrixTable.

    Every file is checked first (header, samples, columns, contigs, positions,
    gzip integrity) and any mistake is reported as FILE:LINE before Hail starts.
    Multi-allelic sites are split, symbolic alleles dropped, contigs normalised
    to the reference, and sample metadata joined.

    VCFS are files or quoted globs; all must list the same samples.

    Example: gwas-prs ingest 'data/chr*.vcf.gz' --samples data/samples.panel --run runs/cohort
    """
    from gwas_prs.stages.ingest import IngestConfig, run_ingest

    config = IngestConfig(
        vcfs=tuple(vcfs),
        run_dir=run,
        samples_file=str(samples) if samples else None,
        sample_id_column=sample_id_column,
        reference_genome=reference_genome,
        keep_symbolic=keep_symbolic,
        skip_unknown_contigs=skip_unknown_contigs,
        overwrite=overwrite,
    )
    result = run_ingest(
        config,
        hail_config(
            run,
            "ingest",
            cores=cores,
            driver_memory=driver_memory,
            engine=engine,
            spark_master=spark_master,
            seed=seed,
            reference_genome=reference_genome,
        ),
    )
    print_ingest_summary(result)


def print_ingest_summary(result: IngestResult) -> None:
    """The ingest summary table, notes and output paths."""
    counts = result.counts
    dropped = counts.get("dropped_alleles", {})
    rows: list[tuple[str, object]] = [
        ("samples", counts["samples"]),
        ("VCF records read", counts["records_read"]),
        ("multi-allelic records split", counts["multiallelic_records"]),
        ("ALT alleles", counts["alt_alleles"]),
    ]
    for reason, n in dropped.items():
        rows.append((f"dropped: {reason.replace('_', ' ')} alleles", n))
    if counts.get("skipped_unknown_contig_records"):
        rows.append(
            ("dropped: records on unknown contigs", counts["skipped_unknown_contig_records"])
        )
    rows.append(("variants written (bi-allelic)", counts["variants"]))
    rows.append(("contigs", len(counts["variants_per_contig"])))
    if counts.get("samples_without_metadata") is not None:
        rows.append(("samples without metadata", counts["samples_without_metadata"]))
        rows.append(("metadata rows without a sample", counts["metadata_rows_without_sample"]))
    rows.append(("wall time (s)", round(result.wall_time_s, 1)))
    console.print(summary_table("ingest", rows, ("", "count")))
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    print_outputs(
        [
            ("bronze MatrixTable", result.output),
            ("manifest", str(Path(result.run_dir) / "manifest.json")),
            ("Hail log", result.log_path or "(Hail was already running)"),
        ]
    )
