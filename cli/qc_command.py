"""``gwas-prs qc``: bronze → silver genotypes, QC tables, ancestry PCA, gold frequencies."""

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
    RunArgument,
    SeedOption,
    SparkMasterOption,
)
from gwas_prs.core.stage_options import QC

if TYPE_CHECKING:
    from gwas_prs.stages.qc import QcResult


def qc(
    run: RunArgument,
    min_sample_call_rate: Annotated[
        float,
        typer.Option("--min-sample-call-rate", help=QC.help("min-sample-call-rate")),
    ] = QC.cli_default("min-sample-call-rate"),
    het_sd: Annotated[
        float,
        typer.Option("--het-sd", help=QC.help("het-sd")),
    ] = QC.cli_default("het-sd"),
    min_variant_call_rate: Annotated[
        float,
        typer.Option("--min-variant-call-rate", help=QC.help("min-variant-call-rate")),
    ] = QC.cli_default("min-variant-call-rate"),
    min_maf: Annotated[
        float,
        typer.Option("--min-maf", help=QC.help("min-maf")),
    ] = QC.cli_default("min-maf"),
    max_female_xf: Annotated[
        float,
        typer.Option("--max-female-xf", help=QC.help("max-female-xf")),
    ] = QC.cli_default("max-female-xf"),
    min_male_xf: Annotated[
        float,
        typer.Option("--min-male-xf", help=QC.help("min-male-xf")),
    ] = QC.cli_default("min-male-xf"),
    hwe_p: Annotated[
        float,
        typer.Option("--hwe-p", help=QC.help("hwe-p")),
    ] = QC.cli_default("hwe-p"),
    min_info: Annotated[
        float,
        typer.Option("--min-info", help=QC.help("min-info")),
    ] = QC.cli_default("min-info"),
    hwe_controls_only: Annotated[
        bool,
        typer.Option("--hwe-controls-only", help=QC.help("hwe-controls-only")),
    ] = QC.cli_default("hwe-controls-only"),
    phenotypes: Annotated[
        Path | None,
        typer.Option(
            "--phenotypes",
            help="Phenotype TSV/CSV with a sample-ID column (for --hwe-controls-only).",
            show_default=False,
        ),
    ] = None,
    trait: Annotated[
        str | None,
        typer.Option("--trait", help=QC.help("trait"), show_default=False),
    ] = QC.cli_default("trait"),
    kinship: Annotated[
        float,
        typer.Option("--kinship", help=QC.help("kinship")),
    ] = QC.cli_default("kinship"),
    max_removed_fraction: Annotated[
        float,
        typer.Option("--max-removed-fraction", help=QC.help("max-removed-fraction")),
    ] = QC.cli_default("max-removed-fraction"),
    prune_r2: Annotated[
        float,
        typer.Option("--prune-r2", help=QC.help("prune-r2")),
    ] = QC.cli_default("prune-r2"),
    prune_window_kb: Annotated[
        int,
        typer.Option("--prune-window-kb", help=QC.help("prune-window-kb")),
    ] = QC.cli_default("prune-window-kb"),
    n_pcs: Annotated[
        int,
        typer.Option("--n-pcs", help=QC.help("n-pcs")),
    ] = QC.cli_default("n-pcs"),
    overwrite: OverwriteOption = False,
    cores: CoresOption = None,
    driver_memory: DriverMemoryOption = None,
    engine: EngineOption = None,
    spark_master: SparkMasterOption = None,
    # Hail's seed, and qc's own (QcConfig.seed, the pipeline file's qc.seed) when given
    seed: SeedOption = None,
) -> None:
    """Sample and variant QC, relatedness, ancestry PCA and population frequencies.

    Samples: call rate, heterozygosity outliers, sex check (when chrX is
    present), KING relatedness. Ancestry: HWE-normalised PCA on LD-pruned
    common SNPs, random-forest ancestry groups when samples carry population
    labels. Variants (on the samples that passed): call rate, MAF, HWE.
    Thresholds are checked before any work.

    Example: gwas-prs qc runs/cohort --min-maf 0.05 --n-pcs 10
    """
    from gwas_prs.stages.qc import QcConfig, run_qc

    config = QcConfig(
        run_dir=run,
        min_sample_call_rate=min_sample_call_rate,
        het_sd=het_sd,
        min_variant_call_rate=min_variant_call_rate,
        min_maf=min_maf,
        hwe_p=hwe_p,
        max_female_xf=max_female_xf,
        min_male_xf=min_male_xf,
        min_info=min_info,
        hwe_controls_only=hwe_controls_only,
        phenotypes=str(phenotypes) if phenotypes else None,
        trait=trait,
        kinship=kinship,
        max_removed_fraction=max_removed_fraction,
        prune_r2=prune_r2,
        prune_window_kb=prune_window_kb,
        n_pcs=n_pcs,
        seed=seed if seed is not None else QC.default("seed"),
        overwrite=overwrite,
    )
    result = run_qc(
        config,
        hail_config(
            run,
            "qc",
            cores=cores,
            driver_memory=driver_memory,
            engine=engine,
            spark_master=spark_master,
            seed=seed,
        ),
    )
    print_qc_summary(result)


def print_qc_summary(result: QcResult) -> None:
    """The qc summary table (removals per filter, PCA, ancestry), notes and outputs."""
    counts = result.counts
    rows: list[tuple[str, object, object, object]] = []
    for item in counts["filters"]:
        rows.append(
            (f"{item['unit']}: {item['filter']}", item["reason"], item["removed"], item["after"])
        )
    console.print(
        summary_table(
            "qc: removed by each filter (in order)", rows, ("filter", "reason", "removed", "left")
        )
    )
    variance = counts.get("pca_variance_explained") or []
    info: list[tuple[str, object]] = [
        ("samples in → out", f"{counts['samples_in']:,} → {counts['samples_out']:,}"),
        ("variants in → out", f"{counts['variants_in']:,} → {counts['variants_out']:,}"),
        ("LD-pruned common SNPs (het/KING/PCA)", counts["pruned_snps"]),
        ("related pairs (kinship above threshold)", counts["related_pairs"]),
        ("PCA variance explained (PC1–PC4)", ", ".join(f"{v:.2%}" for v in variance[:4])),
    ]
    if counts.get("ancestry_cv_accuracy") is not None:
        info.append(
            (
                f"ancestry ({counts['ancestry_label_field']}) CV accuracy",
                round(counts["ancestry_cv_accuracy"], 4),
            )
        )
    info.append(("wall time (s)", round(result.wall_time_s, 1)))
    console.print(summary_table("qc", info, ("", "value")))
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    print_outputs(
        [
            ("silver MatrixTable", result.outputs.get("silver_mt", "")),
            ("QC tables", result.outputs.get("silver_qc", "")),
            ("ancestry", result.outputs.get("silver_ancestry", "")),
            ("frequencies", result.outputs.get("gold_frequencies", "")),
            ("QC report", result.reports.get("qc", "")),
            ("ancestry report", result.reports.get("ancestry", "")),
            ("manifest", str(Path(result.run_dir) / "manifest.json")),
            ("Hail log", result.log_path or "(Hail was already running)"),
        ]
    )
