"""Build :class:`gwas_prs.engine.hail_context.HailConfig` from the shared CLI options."""

from __future__ import annotations

from gwas_prs.engine.hail_context import HailConfig


def hail_config(
    run_dir: str,
    command: str,
    *,
    cores: int | None = None,
    driver_memory: str | None = None,
    seed: int | None = None,
    reference_genome: str = "GRCh37",
    verbose: bool = False,
    engine: str | None = None,
    spark_master: str | None = None,
) -> HailConfig:
    return HailConfig(
        run_dir=run_dir,
        command=command,
        cores=cores,
        driver_memory=driver_memory,
        seed=seed,
        reference_genome=reference_genome,
        quiet=not verbose,
        engine=engine,
        master=spark_master,
    )
