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
from gwas_prs.run_folder import STATUS_COMPLETE, RunFolder, stage_record


def bundled_cohort() -> tuple[list[str], str]:
    """Paths of the bundled 1000 Genomes VCFs (chr1..22) and sample panel."""
    folder = files("gwas_prs.data") / "1kg"
    vcfs = [str(folder / f"1KG_phase3_subset_chr{c}.vcf.gz") for c in range(1, 23)]
    return vcfs, str(folder / "samples.panel")


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
    """Run ingest and qc on the bundled 1000 Genomes cohort (1,126 samples, 22 autosomes).

    Stages that are already complete in the run folder are skipped, so running
    the demo twice is cheap; --overwrite redoes them.
    """
    from gwas_prs.ingest import IngestConfig, run_ingest

    vcfs, panel = bundled_cohort()
    folder = RunFolder(run)
    record = stage_record(folder, "ingest")
    if record is not None and record.status == STATUS_COMPLETE and not overwrite:
        console.print(f"ingest: already complete in {run} (use --overwrite to redo it)")
    else:
        result = run_ingest(
            IngestConfig(vcfs=tuple(vcfs), run_dir=run, samples_file=panel, overwrite=overwrite),
            hail_config(run, "ingest", cores=cores, driver_memory=driver_memory),
        )
        print_ingest_summary(result)
    from gwas_prs.qc_stage import QcConfig, run_qc

    record = stage_record(folder, "qc")
    if record is not None and record.status == STATUS_COMPLETE and not overwrite:
        console.print(f"qc: already complete in {run} (use --overwrite to redo it)")
    else:
        qc_result = run_qc(
            QcConfig(run_dir=run, overwrite=overwrite),
            hail_config(run, "qc", cores=cores, driver_memory=driver_memory),
        )
        print_qc_summary(qc_result)
    console.print(f"\nDemo run folder: {run}  (manifest: {folder.manifest})", highlight=False)
