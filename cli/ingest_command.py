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
            help="Genotypes: VCF files (.vcf, .vcf.gz, .vcf.bgz; GT and/or DS/GP dosages) or "
            "quoted globs such as 'data/chr*.vcf.gz'; BGEN 1.2/1.3 files (.bgen, 8-bit); one "
            "PLINK 1 fileset (PREFIX or PREFIX.bed); or one Hail MatrixTable (.mt).",
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
    hard_call_threshold: Annotated[
        float,
        typer.Option("--hard-call-threshold", help=INGEST.help("hard-call-threshold")),
    ] = INGEST.cli_default("hard-call-threshold"),
    bgen_sample: Annotated[
        Path | None,
        typer.Option("--bgen-sample", help=INGEST.help("bgen-sample"), show_default=False),
    ] = None,
    overwrite: OverwriteOption = False,
    cores: CoresOption = None,
    driver_memory: DriverMemoryOption = None,
    engine: EngineOption = None,
    spark_master: SparkMasterOption = None,
    seed: SeedOption = None,
) -> None:
    """Import genotypes (VCF, BGEN, PLINK 1, MatrixTable) into the run's bronze MatrixTable.

    Every file is checked first (header, samples, columns, contigs, positions,
    gzip integrity; the .bim/.fam/.bed sizes; the BGEN variant headers and its
    .sample) and any mistake is reported as FILE:LINE before Hail starts.
    Multi-allelic sites are split, symbolic alleles dropped, contigs normalised
    to the reference, and sample metadata joined. Imputed dosages (VCF DS or GP,
    BGEN) are kept as DS, with hard calls (GT) derived by --hard-call-threshold.

    VCFS are files or quoted globs; all must list the same samples.

    Examples:
      gwas-prs ingest 'data/chr*.vcf.gz' --samples data/samples.panel --run runs/cohort
      gwas-prs ingest 'imputed/chr*.bgen' --bgen-sample imputed/chr1.sample --run runs/ukb
      gwas-prs ingest data/cohort.bed --run runs/plink
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
        hard_call_threshold=hard_call_threshold,
        bgen_sample=str(bgen_sample) if bgen_sample else None,
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
    kind = counts.get("input_format", "vcf")
    rows: list[tuple[str, object]] = [("samples", counts["samples"])]
    if kind == "vcf":
        rows += [
            ("VCF records read", counts["records_read"]),
            ("multi-allelic records split", counts["multiallelic_records"]),
            ("ALT alleles", counts["alt_alleles"]),
        ]
    else:
        label = {"plink": ".bim variants read", "bgen": "BGEN variants read"}.get(kind)
        if label and counts.get("records_read") is not None:
            rows.append((label, counts["records_read"]))
    for reason, n in dropped.items():
        rows.append((f"dropped: {reason.replace('_', ' ')} alleles", n))
    if counts.get("skipped_unknown_contig_records"):
        rows.append(
            ("dropped: records on unknown contigs", counts["skipped_unknown_contig_records"])
        )
    rows.append(("variants written (bi-allelic)", counts["variants"]))
    rows.append(("contigs", len(counts["variants_per_contig"])))
    if counts.get("dosages"):
        rows.append(("entry fields", "GT (hard calls), DS (dosages)"))
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
