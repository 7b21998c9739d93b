"""``gwas-prs simulate-cohort``: a coalescent-simulated cohort for benchmarks and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gwas_prs.cli.console import console, print_outputs, summary_table


def simulate_cohort(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for chrK.vcf.bgz, samples.panel, phenotypes.tsv.")
    ],
    samples: Annotated[int, typer.Option("--samples", help="Number of diploid samples.")] = 1000,
    variants: Annotated[
        int, typer.Option("--variants", help="Number of bi-allelic SNPs (MAF >= 1%), exactly.")
    ] = 20_000,
    populations: Annotated[
        int, typer.Option("--populations", help="Populations (1-3: YRI/AFR, CEU/EUR, CHB/EAS).")
    ] = 3,
    chromosomes: Annotated[
        int, typer.Option("--chromosomes", help="Chromosomes the SNPs are split over (1-22).")
    ] = 2,
    seed: Annotated[int, typer.Option("--seed", help="Seed: same seed, same files.")] = 42,
    n_causal: Annotated[
        int, typer.Option("--n-causal", help="Causal variants of the simulated 'disease' trait.")
    ] = 200,
) -> None:
    """Simulate a cohort with realistic LD and population structure (msprime).

    An out-of-Africa coalescent simulation (three populations: split times,
    bottleneck, growth, migration) of SAMPLES diploid genomes, trimmed to exactly
    VARIANTS common bi-allelic SNPs over CHROMOSOMES chromosomes, written as
    bgzipped VCFs with a 1000 Genomes-style sample panel and a phenotype file with
    a liability-threshold binary trait 'disease' (20% cases) and age/sex
    covariates. Needs msprime: pip install 'gwas-prs[simulate]'.

    Example: gwas-prs simulate-cohort --out cohorts/small --samples 1000 --variants 20000

    then: gwas-prs ingest 'cohorts/small/chr*.vcf.bgz' --samples cohorts/small/samples.panel --run runs/small
    """
    from gwas_prs.stages.simulate_cohort import CohortConfig, require_msprime
    from gwas_prs.stages.simulate_cohort import simulate_cohort as simulate

    config = CohortConfig(
        out=str(out),
        samples=samples,
        variants=variants,
        populations=populations,
        chromosomes=chromosomes,
        seed=seed,
        n_causal=min(n_causal, variants),
    )
    config.validate()
    require_msprime()  # exit 3 with the install line before any work
    with console.status("simulating") as status:
        result = simulate(config, progress=lambda message: status.update(message))
    console.print(
        summary_table(
            "simulate-cohort",
            [
                ("samples", result.samples),
                ("populations", populations),
                ("variants", result.variants),
                ("chromosomes", chromosomes),
                ("cases of 'disease'", result.cases),
            ],
        )
    )
    print_outputs(
        [
            ("VCFs", str(out / "chr*.vcf.bgz")),
            ("panel", result.panel),
            ("phenotypes", result.phenotypes),
        ]
    )
