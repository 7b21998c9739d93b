"""``gwas-prs demo``: every stage that exists, on the bundled 1000 Genomes cohort."""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from typing import Annotated

import typer

from gwas_prs.cli.console import console, summary_table
from gwas_prs.cli.hail_options import hail_config
from gwas_prs.cli.ingest_command import print_ingest_summary
from gwas_prs.cli.options import CoresOption, DriverMemoryOption, EngineOption, SparkMasterOption
from gwas_prs.cli.qc_command import print_qc_summary
from gwas_prs.core.run_folder import STATUS_COMPLETE, RunFolder, stage_record
from gwas_prs.engine.hail_context import HailConfig


def bundled_cohort() -> tuple[list[str], str]:
    """Paths of the bundled 1000 Genomes VCFs (chr1..22) and sample panel."""
    folder = files("gwas_prs.data") / "1kg"
    vcfs = [str(folder / f"1KG_phase3_subset_chr{c}.vcf.gz") for c in range(1, 23)]
    return vcfs, str(folder / "samples.panel")


#: The demo's simulated trait: strong enough to show a working PRS on 1,113 samples.
DEMO_TRAIT = "disease"
DEMO_SIMULATION = {
    "h2": 0.8,
    "n_causal": 100,
    "prevalence": 0.3,
    "covariate_effects": True,
    "seed": 42,
}


def _complete(folder: RunFolder, stage: str, overwrite: bool) -> bool:
    record = stage_record(folder, stage)
    done = record is not None and record.status == STATUS_COMPLETE and not overwrite
    if done:
        console.print(f"{stage}: already complete in {folder.root} (use --overwrite to redo it)")
    return done


def demo(
    run: Annotated[
        str, typer.Option("--run", "-r", help="Run folder for the demo.")
    ] = "gwas-prs-demo",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Redo stages that are already complete.")
    ] = False,
    cores: CoresOption = None,
    driver_memory: DriverMemoryOption = None,
    engine: EngineOption = None,
    spark_master: SparkMasterOption = None,
) -> None:
    """Run the pipeline on the bundled 1000 Genomes cohort (1,126 samples, 22 autosomes).

    ingest → qc → simulate-phenotype (a binary trait 'disease', 30% prevalence,
    h² 0.8, 100 causal variants, age/sex effects) → gwas → prs → train, then
    predict on a VCF of 20 held-out test samples (RUN/demo_predict/). Stages
    that are already complete in the run folder are skipped, so running the
    demo twice is cheap; --overwrite redoes them.
    """
    from gwas_prs.cli.gwas_command import (
        print_gwas_summary,
        print_prs_summary,
        print_simulation_summary,
    )
    from gwas_prs.methods.gwas.simulation import SimulationConfig
    from gwas_prs.stages.gwas import GwasConfig, run_gwas
    from gwas_prs.stages.ingest import IngestConfig, run_ingest
    from gwas_prs.stages.prs import PrsConfig, run_prs
    from gwas_prs.stages.qc import QcConfig, run_qc
    from gwas_prs.stages.simulate_phenotype import run_simulate_phenotype

    vcfs, panel = bundled_cohort()
    folder = RunFolder(run)

    def hail(command: str) -> HailConfig:
        return hail_config(
            run,
            command,
            cores=cores,
            driver_memory=driver_memory,
            engine=engine,
            spark_master=spark_master,
            seed=42,
        )

    if not _complete(folder, "ingest", overwrite):
        print_ingest_summary(
            run_ingest(
                IngestConfig(
                    vcfs=tuple(vcfs), run_dir=run, samples_file=panel, overwrite=overwrite
                ),
                hail("ingest"),
            )
        )
    if not _complete(folder, "qc", overwrite):
        print_qc_summary(run_qc(QcConfig(run_dir=run, overwrite=overwrite), hail("qc")))
    phenotypes = folder.simulated_phenotypes(DEMO_TRAIT)
    if not _complete(folder, f"simulate-phenotype:{DEMO_TRAIT}", overwrite):
        config = SimulationConfig(trait=DEMO_TRAIT, **DEMO_SIMULATION)  # type: ignore[arg-type]
        simulated = run_simulate_phenotype(
            run, config, overwrite=True, hail=hail("simulate-phenotype")
        )
        print_simulation_summary(simulated)
    if not _complete(folder, f"gwas:{DEMO_TRAIT}", overwrite):
        gwas_config = GwasConfig(
            run_dir=run,
            phenotypes_file=phenotypes,
            traits=(DEMO_TRAIT,),
            covariates=("age", "sex"),
            overwrite=True,
        )
        print_gwas_summary(run_gwas(gwas_config, hail("gwas")))
    if not _complete(folder, f"prs:{DEMO_TRAIT}", overwrite):
        print_prs_summary(
            run_prs(PrsConfig(run_dir=run, trait=DEMO_TRAIT, overwrite=True), hail("prs"))
        )
    _train_and_predict(folder, overwrite, hail)
    console.print(f"\nDemo run folder: {run}  (manifest: {folder.manifest})", highlight=False)


#: Test-split samples written to the demo's predict VCF.
DEMO_PREDICT_SAMPLES = 20


def _train_and_predict(
    folder: RunFolder, overwrite: bool, hail: Callable[[str], HailConfig]
) -> None:
    """train, then predict on a VCF of held-out test samples; print the final tables."""
    import json

    from gwas_prs.cli.train_command import model_rows, print_predict_summary, print_train_summary
    from gwas_prs.stages.predict import PredictConfig, run_predict
    from gwas_prs.stages.train import TrainConfig, run_train

    if not _complete(folder, f"train:{DEMO_TRAIT}", overwrite):
        print_train_summary(
            run_train(
                TrainConfig(run_dir=folder.root, trait=DEMO_TRAIT, overwrite=True), hail("train")
            )
        )
    model = folder.models_dir(DEMO_TRAIT)
    vcf, samples = write_demo_predict_inputs(folder, model, DEMO_PREDICT_SAMPLES, hail("predict"))
    result = run_predict(
        PredictConfig(
            model_dir=model,
            vcfs=(vcf,),
            out=folder.path("demo_predict", "predictions.tsv"),
            samples_file=samples,
            overwrite=True,
        ),
        hail("predict"),
    )
    with open(f"{model}/metrics.json", encoding="utf-8") as handle:
        metrics = json.load(handle)
    console.print()
    console.print(
        summary_table(
            f"demo: risk models for '{DEMO_TRAIT}' on {metrics['n']['test']} held-out test samples",
            model_rows(metrics),
            ("model", "ROC-AUC [95% CI]", "PR-AUC [95% CI]"),
        )
    )
    print_predict_summary(result)


def write_demo_predict_inputs(
    folder: RunFolder, model: str, n: int, hail: HailConfig
) -> tuple[str, str]:
    """A bgzipped VCF of the first ``n`` test samples (from the bronze genotypes) and
    their covariates, in RUN/demo_predict/; reused when already there."""
    import os

    import pandas as pd

    out = folder.path("demo_predict")
    vcf = f"{out}/test_samples.vcf.gz"
    covariates = f"{out}/test_samples.tsv"
    if os.path.exists(vcf) and os.path.exists(covariates):
        return vcf, covariates
    from gwas_prs.engine.hail_context import start_hail

    start_hail(hail)
    import hail as hl

    tests = pd.read_csv(f"{model}/test_predictions.tsv", sep="\t", dtype={"sample_id": str})
    chosen = sorted(tests["sample_id"])[:n]
    os.makedirs(out, exist_ok=True)
    mt = hl.read_matrix_table(folder.bronze_mt)
    mt = mt.filter_cols(hl.literal(set(chosen)).contains(mt.s)).select_cols()
    mt = mt.select_rows("rsid", "qual", "filters").select_entries("GT").select_globals()
    hl.export_vcf(mt, f"{out}/.test_samples.vcf.bgz")
    os.replace(f"{out}/.test_samples.vcf.bgz", vcf)
    phenotypes = pd.read_csv(
        folder.simulated_phenotypes(DEMO_TRAIT), sep="\t", dtype={"sample_id": str}
    )
    phenotypes = phenotypes[phenotypes["sample_id"].isin(chosen)][["sample_id", "age", "sex"]]
    phenotypes.to_csv(covariates, sep="\t", index=False)
    return vcf, covariates
