"""``gwas-prs demo``: every stage that exists, on the bundled 1000 Genomes cohort."""

from __future__ import annotations

from importlib.resources import files
from typing import Annotated

import typer

from gwas_prs.cli.console import console
from gwas_prs.cli.hail_options import hail_config
from gwas_prs.cli.ingest_command import print_ingest_summary
from gwas_prs.cli.options import CoresOption, DriverMemoryOption
from gwas_prs.cli.qc_command import print_qc_summary
from gwas_prs.hail_context import HailConfig
from gwas_prs.run_folder import STATUS_COMPLETE, RunFolder, stage_record


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
) -> None:
    """Run the pipeline on the bundled 1000 Genomes cohort (1,126 samples, 22 autosomes).

    ingest → qc → simulate-phenotype (a binary trait 'disease', 30% prevalence,
    h² 0.8, 100 causal variants, age/sex effects) → gwas → prs. Stages that are
    already complete in the run folder are skipped, so running the demo twice
    is cheap; --overwrite redoes them.
    """
    from gwas_prs.cli.gwas_command import (
        print_gwas_summary,
        print_prs_summary,
        print_simulation_summary,
    )
    from gwas_prs.gwas_stage import GwasConfig, run_gwas
    from gwas_prs.ingest import IngestConfig, run_ingest
    from gwas_prs.prs_stage import PrsConfig, run_prs
    from gwas_prs.qc_stage import QcConfig, run_qc
    from gwas_prs.simulation import SimulationConfig, run_simulate_phenotype

    vcfs, panel = bundled_cohort()
    folder = RunFolder(run)

    def hail(command: str) -> HailConfig:
        return hail_config(run, command, cores=cores, driver_memory=driver_memory, seed=42)

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
    phenotypes = folder.path("simulated", DEMO_TRAIT, "phenotypes.tsv")
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
    console.print(f"\nDemo run folder: {run}  (manifest: {folder.manifest})", highlight=False)
