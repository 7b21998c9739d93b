"""``gwas-prs simulate-phenotype``, ``gwas-prs gwas`` and ``gwas-prs prs``."""

from __future__ import annotations

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
from gwas_prs.core.stage_options import GWAS, PRS, SIMULATION

if TYPE_CHECKING:
    from gwas_prs.stages.gwas import GwasResult
    from gwas_prs.stages.prs import PrsResult
    from gwas_prs.stages.simulate_phenotype import SimulationResult

TraitOption = Annotated[
    str,
    typer.Option(
        "--trait", "-t", help="Trait (a column of the phenotype file).", show_default=False
    ),
]
PhenotypesOption = Annotated[
    str | None,
    typer.Option(
        "--phenotypes",
        help="Phenotype file (TSV/CSV): a sample-ID column and one column per trait/covariate.",
    ),
]


def simulate_phenotype(
    run: RunArgument,
    trait: Annotated[
        str,
        typer.Option("--trait", "-t", help=SIMULATION.help("trait"), show_default=False),
    ],
    h2: Annotated[
        float,
        typer.Option("--h2", help=SIMULATION.help("h2")),
    ] = SIMULATION.cli_default("h2"),
    n_causal: Annotated[
        int,
        typer.Option("--n-causal", help=SIMULATION.help("n-causal")),
    ] = SIMULATION.cli_default("n-causal"),
    prevalence: Annotated[
        float,
        typer.Option("--prevalence", help=SIMULATION.help("prevalence")),
    ] = SIMULATION.cli_default("prevalence"),
    quantitative: Annotated[
        bool,
        typer.Option("--quantitative", help=SIMULATION.help("quantitative")),
    ] = SIMULATION.cli_default("quantitative"),
    covariate_effects: Annotated[
        bool,
        typer.Option("--covariate-effects", help=SIMULATION.help("covariate-effects")),
    ] = SIMULATION.cli_default("covariate-effects"),
    seed: Annotated[
        int,
        typer.Option("--seed", help=SIMULATION.help("seed")),
    ] = SIMULATION.cli_default("seed"),
    overwrite: OverwriteOption = False,
    cores: CoresOption = None,
    driver_memory: DriverMemoryOption = None,
    engine: EngineOption = None,
    spark_master: SparkMasterOption = None,
) -> None:
    """Simulate a trait on the QC-passed genotypes, with a known answer.

    Writes RUN/simulated/TRAIT/phenotypes.tsv (use it as --phenotypes for gwas),
    genetic_values.tsv (the true genetic value per sample) and causal_variants.tsv.

    Example: gwas-prs simulate-phenotype runs/demo --trait disease --prevalence 0.2 --covariate-effects
    """
    from gwas_prs.methods.gwas.simulation import SimulationConfig
    from gwas_prs.stages.simulate_phenotype import run_simulate_phenotype

    config = SimulationConfig(
        trait=trait,
        h2=h2,
        n_causal=n_causal,
        prevalence=None if quantitative else prevalence,
        covariate_effects=covariate_effects,
        seed=seed,
    )
    config.validate()
    result = run_simulate_phenotype(
        run,
        config,
        overwrite=overwrite,
        hail=hail_config(
            run,
            "simulate-phenotype",
            cores=cores,
            driver_memory=driver_memory,
            engine=engine,
            spark_master=spark_master,
            seed=seed,
        ),
    )
    print_simulation_summary(result)


def print_simulation_summary(result: SimulationResult) -> None:
    rows = [(k.replace("_", " "), v) for k, v in result.counts.items()]
    console.print(summary_table(f"simulate-phenotype: {result.trait}", rows, ("", "count")))
    print_outputs([(name.replace("_", " "), path) for name, path in result.outputs.items()])


def gwas(
    run: RunArgument,
    phenotypes: Annotated[
        str,
        typer.Option(
            "--phenotypes",
            help="Phenotype file (TSV/CSV) with a sample-ID column.",
            show_default=False,
        ),
    ],
    trait: Annotated[
        list[str],
        typer.Option("--trait", "-t", help=GWAS.help("trait"), show_default=False),
    ],
    covariates: Annotated[
        str,
        typer.Option("--covariates", help=GWAS.help("covariates")),
    ] = GWAS.cli_default("covariates"),
    n_pcs: Annotated[
        int,
        typer.Option("--n-pcs", help=GWAS.help("n-pcs")),
    ] = GWAS.cli_default("n-pcs"),
    test: Annotated[
        str,
        typer.Option("--test", help=GWAS.help("test")),
    ] = GWAS.cli_default("test"),
    xchr_model: Annotated[
        int,
        typer.Option("--xchr-model", help=GWAS.help("xchr-model")),
    ] = GWAS.cli_default("xchr-model"),
    split_seed: Annotated[
        int,
        typer.Option("--split-seed", help=GWAS.help("split-seed")),
    ] = GWAS.cli_default("split-seed"),
    overwrite: OverwriteOption = False,
    cores: CoresOption = None,
    driver_memory: DriverMemoryOption = None,
    engine: EngineOption = None,
    spark_master: SparkMasterOption = None,
    seed: SeedOption = None,
) -> None:
    """Genome-wide association on the discovery samples (linear or logistic regression).

    Samples are split per trait into discovery (the GWAS), train, validation and
    test (seeded, stratified by ancestry and label; RUN/gold/splits/TRAIT.tsv).
    Writes RUN/gold/gwas/TRAIT/: sumstats.tsv.gz (GWAS-SSF) + -meta.yaml,
    report.html (the summary page), manhattan.html, qq.html, top_hits.tsv.

    Example: gwas-prs gwas runs/demo --phenotypes pheno.tsv --trait disease --covariates age,sex
    """
    from gwas_prs.stages.gwas import GwasConfig, run_gwas

    config = GwasConfig(
        run_dir=run,
        phenotypes_file=phenotypes,
        traits=tuple(trait),
        covariates=GWAS.parse("covariates", covariates),
        n_pcs=n_pcs,
        test=test,
        xchr_model=xchr_model,
        split_seed=split_seed,
        overwrite=overwrite,
    )
    config.validate()
    result = run_gwas(
        config,
        hail_config(
            run,
            "gwas",
            cores=cores,
            driver_memory=driver_memory,
            engine=engine,
            spark_master=spark_master,
            seed=seed,
        ),
    )
    print_gwas_summary(result)


def print_gwas_summary(result: GwasResult) -> None:
    for trait, info in result.traits.items():
        counts = info["counts"]
        rows: list[tuple[str, object]] = [
            ("discovery samples", counts["discovery_samples"]),
        ]
        if "cases" in counts:
            rows += [
                ("cases", counts["cases"]),
                ("controls", counts["controls"]),
                ("Firth fallback variants", counts["firth_fallback"]),
            ]
        rows += [
            ("variants tested", counts["variants_tested"]),
            ("p < 5e-8", counts["genome_wide_significant"]),
            ("λGC", counts["lambda_gc"]),
        ]
        console.print(summary_table(f"gwas: {trait}", rows, ("", "value")))
        top = info["top"].head(5)
        console.print(
            summary_table(
                f"top hits: {trait}",
                [
                    (
                        f"{r.chromosome}:{r.base_pair_location} {r.other_allele}>{r.effect_allele}",
                        f"{r.beta:.3g}",
                        f"{r.p_value:.2e}",
                    )
                    for r in top.itertuples()
                ],
                ("variant", "beta", "p"),
            )
        )
        print_outputs(
            [
                ("summary statistics", f"{info['dir']}/sumstats.tsv.gz"),
                ("GWAS summary (Manhattan, QQ, top hits)", f"{info['dir']}/report.html"),
                ("Manhattan plot", f"{info['dir']}/manhattan.html"),
                ("QQ plot", f"{info['dir']}/qq.html"),
                ("sample split", info["split"]),
            ]
        )


def prs(
    run: RunArgument,
    trait: TraitOption,
    phenotypes: PhenotypesOption = None,
    clump_r2: Annotated[
        float,
        typer.Option("--clump-r2", help=PRS.help("clump-r2")),
    ] = PRS.cli_default("clump-r2"),
    clump_kb: Annotated[
        int,
        typer.Option("--clump-kb", help=PRS.help("clump-kb")),
    ] = PRS.cli_default("clump-kb"),
    clump_p1: Annotated[
        float,
        typer.Option("--clump-p1", help=PRS.help("clump-p1")),
    ] = PRS.cli_default("clump-p1"),
    clump_p2: Annotated[
        float,
        typer.Option("--clump-p2", help=PRS.help("clump-p2")),
    ] = PRS.cli_default("clump-p2"),
    thresholds: Annotated[
        str,
        typer.Option("--thresholds", help=PRS.help("thresholds")),
    ] = PRS.cli_default("thresholds"),
    weights: Annotated[
        str | None,
        typer.Option("--weights", help=PRS.help("weights")),
    ] = PRS.cli_default("weights"),
    methods: Annotated[
        str,
        typer.Option("--methods", help=PRS.help("methods")),
    ] = PRS.cli_default("methods"),
    ld_window_kb: Annotated[
        float,
        typer.Option("--ld-window-kb", help=PRS.help("ld-window-kb")),
    ] = PRS.cli_default("ld-window-kb"),
    ldpred2_chains: Annotated[
        int,
        typer.Option("--ldpred2-chains", help=PRS.help("ldpred2-chains")),
    ] = PRS.cli_default("ldpred2-chains"),
    ldpred2_burn_in: Annotated[
        int,
        typer.Option("--ldpred2-burn-in", help=PRS.help("ldpred2-burn-in")),
    ] = PRS.cli_default("ldpred2-burn-in"),
    ldpred2_iterations: Annotated[
        int,
        typer.Option("--ldpred2-iterations", help=PRS.help("ldpred2-iterations")),
    ] = PRS.cli_default("ldpred2-iterations"),
    sampler_seed: Annotated[
        int,
        typer.Option("--sampler-seed", help=PRS.help("sampler-seed")),
    ] = PRS.cli_default("sampler-seed"),
    sumstats: Annotated[
        str | None,
        typer.Option("--sumstats", help=PRS.help("sumstats"), show_default=False),
    ] = PRS.cli_default("sumstats"),
    sumstats_format: Annotated[
        str,
        typer.Option("--sumstats-format", help=PRS.help("sumstats-format")),
    ] = PRS.cli_default("sumstats-format"),
    sumstats_columns: Annotated[
        str | None,
        typer.Option("--sumstats-columns", help=PRS.help("sumstats-columns"), show_default=False),
    ] = PRS.cli_default("sumstats-columns"),
    sumstats_n: Annotated[
        float | None,
        typer.Option("--sumstats-n", help=PRS.help("sumstats-n"), show_default=False),
    ] = PRS.cli_default("sumstats-n"),
    sumstats_cases: Annotated[
        float | None,
        typer.Option("--sumstats-cases", help=PRS.help("sumstats-cases"), show_default=False),
    ] = PRS.cli_default("sumstats-cases"),
    sumstats_controls: Annotated[
        float | None,
        typer.Option("--sumstats-controls", help=PRS.help("sumstats-controls"), show_default=False),
    ] = PRS.cli_default("sumstats-controls"),
    covariates: Annotated[
        str,
        typer.Option("--covariates", help=PRS.help("covariates")),
    ] = PRS.cli_default("covariates"),
    n_pcs: Annotated[
        int,
        typer.Option("--n-pcs", help=PRS.help("n-pcs")),
    ] = PRS.cli_default("n-pcs"),
    split_seed: Annotated[
        int,
        typer.Option("--split-seed", help=PRS.help("split-seed")),
    ] = PRS.cli_default("split-seed"),
    allow_palindromic: Annotated[
        bool,
        typer.Option("--allow-palindromic", help=PRS.help("allow-palindromic")),
    ] = PRS.cli_default("allow-palindromic"),
    min_overlap: Annotated[
        float,
        typer.Option("--min-overlap", help=PRS.help("min-overlap")),
    ] = PRS.cli_default("min-overlap"),
    allow_build_mismatch: Annotated[
        bool,
        typer.Option("--allow-build-mismatch", help=PRS.help("allow-build-mismatch")),
    ] = PRS.cli_default("allow-build-mismatch"),
    overwrite: OverwriteOption = False,
    cores: CoresOption = None,
    driver_memory: DriverMemoryOption = None,
    engine: EngineOption = None,
    spark_master: SparkMasterOption = None,
    seed: SeedOption = None,
) -> None:
    """Polygenic scores: clumping + thresholding (PLINK's rule), LDpred2-auto/-inf/-grid
    and lassosum2 (bigsnpr's methods, on one in-sample LD), scored on the target samples.

    The base is this run's GWAS (LD among its discovery samples), a PGS Catalog
    scoring file (--weights), or an external GWAS (--sumstats: GWAS-SSF, plink2
    --glm, REGENIE or any table with --sumstats-columns; every labelled sample is
    then a target, LD among the training samples). The evaluation models are
    fitted on train; the threshold with the best incremental R²/AUC over
    covariates + PCs on validation is reported on test (models refitted on
    train + validation).
    Writes RUN/gold/prs/TRAIT/: clumps.tsv, weights.txt.gz (PGS Catalog format),
    weights_by_threshold.tsv, weights_<method>.txt.gz, scores.tsv,
    scores_ancestry_adjusted.tsv, metrics.json, report.html.

    Example: gwas-prs prs runs/demo --trait disease

    Example: gwas-prs prs runs/cohort --trait T2D --sumstats t2d.glm.logistic.hybrid --phenotypes pheno.tsv --covariates age,sex --sumstats-cases 50000 --sumstats-controls 400000
    """
    from gwas_prs.methods.prs.clumping import ClumpParameters
    from gwas_prs.stages.prs import PrsConfig, run_prs

    config = PrsConfig(
        run_dir=run,
        trait=trait,
        phenotypes_file=phenotypes,
        clump=ClumpParameters(r2=clump_r2, kb=clump_kb, p1=clump_p1, p2=clump_p2),
        thresholds=PRS.parse("thresholds", thresholds),
        methods=PRS.parse("methods", methods),
        ld_window_kb=ld_window_kb,
        ldpred2_chains=ldpred2_chains,
        ldpred2_burn_in=ldpred2_burn_in,
        ldpred2_iterations=ldpred2_iterations,
        sampler_seed=sampler_seed,
        weights_file=weights,
        sumstats_file=sumstats,
        sumstats_format=sumstats_format,
        sumstats_columns=sumstats_columns,
        sumstats_n=sumstats_n,
        sumstats_cases=sumstats_cases,
        sumstats_controls=sumstats_controls,
        covariates=PRS.parse("covariates", covariates),
        n_pcs=n_pcs,
        split_seed=split_seed,
        allow_palindromic=allow_palindromic,
        min_overlap=min_overlap,
        allow_build_mismatch=allow_build_mismatch,
        overwrite=overwrite,
    )
    config.validate()
    result = run_prs(
        config,
        hail_config(
            run,
            "prs",
            cores=cores,
            driver_memory=driver_memory,
            engine=engine,
            spark_master=spark_master,
            seed=seed,
        ),
    )
    print_prs_summary(result)


def print_prs_summary(result: PrsResult) -> None:
    metrics = result.metrics
    name = "AUC" if metrics["binary"] else "R²"
    rows = [
        (f"p ≤ {r['threshold']:g}", f"{r['metric']:.3f}", f"{r['incremental']:+.3f}")
        for r in metrics["by_threshold_validation"]
    ]
    console.print(
        summary_table(
            f"prs: {result.trait} (validation)",
            rows,
            ("threshold", name, f"Δ{name} vs covariates+PCs"),
        )
    )
    methods = metrics.get("methods", {})
    if len(methods) > 1:
        console.print(
            summary_table(
                f"prs: {result.trait} by method (test; models fitted on train + validation)",
                [
                    (
                        column.removeprefix("prs_"),
                        entry["test"]["with_prs"],
                        f"{entry['test']['incremental']:+.3f}",
                        entry["test"]["prs_only"],
                    )
                    for column, entry in methods.items()
                ],
                ("method", f"{name} covariates + PCs + PRS", f"Δ{name}", f"{name} PRS alone"),
            )
        )
    test = metrics["test"]
    console.print(
        summary_table(
            f"prs: {result.trait} (test, best threshold p ≤ {metrics['best_threshold']:g})",
            [
                (f"{name} covariates + PCs", test["covariates_and_pcs_only"]),
                (f"{name} covariates + PCs + PRS", test["with_prs"]),
                (f"incremental {name}", test["incremental"]),
                (f"{name} PRS alone", test["prs_only"]),
                ("test samples", test["n"]),
            ],
            ("", "value"),
        )
    )
    print_outputs(
        [
            ("report", f"{result.output_dir}/report.html"),
            ("weights (PGS Catalog format)", f"{result.output_dir}/weights.txt.gz"),
            ("scores", f"{result.output_dir}/scores.tsv"),
            ("metrics", f"{result.output_dir}/metrics.json"),
        ]
    )
