"""The ``simulate-phenotype`` stage: a simulated trait with a known answer, written to
``RUN/simulated/TRAIT/`` (the method is :mod:`gwas_prs.methods.gwas.simulation`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gwas_prs.engine.switch import current_engine, stage_runner
from gwas_prs.methods.gwas.simulation import SimulationConfig, simulate_trait

if TYPE_CHECKING:
    from gwas_prs.engine.hail_context import HailConfig


@dataclass
class SimulationResult:
    """What :func:`run_simulate_phenotype` wrote."""

    trait: str
    phenotypes_file: str
    outputs: dict[str, str]
    counts: dict[str, Any]


@stage_runner("simulate-phenotype")
def run_simulate_phenotype(
    run_dir: str,
    config: SimulationConfig,
    *,
    overwrite: bool = False,
    hail: HailConfig | None = None,
) -> SimulationResult:
    """Stage runner: simulate ``config.trait`` on the QC-passed genotypes.

    Writes ``RUN/simulated/TRAIT/`` with ``phenotypes.tsv`` (``sample_id``,
    the trait, ``age``/``sex`` with covariate effects), ``genetic_values.tsv``
    and ``causal_variants.tsv``; the manifest stage is ``simulate-phenotype:TRAIT``.
    """
    from gwas_prs.core import storage
    from gwas_prs.core.run_folder import RunFolder, require_complete, stage_run
    from gwas_prs.engine.hail_context import HailConfig, start_hail
    from gwas_prs.engine.hail_errors import hail_errors_as_computation_errors

    config.validate()
    run = RunFolder(run_dir)
    require_complete(run, "qc", needed_by="simulate-phenotype")
    final = run.simulated_dir(config.trait)
    parameters = {
        "trait": config.trait,
        "h2": config.h2,
        "n_causal": config.n_causal,
        "prevalence": config.prevalence,
        "covariate_effects": config.covariate_effects,
        "seed": config.seed,
    }
    with stage_run(
        run,
        f"simulate-phenotype:{config.trait}",
        parameters=parameters,
        final_outputs=[final],
        overwrite=overwrite,
        engine=current_engine(),
    ) as stage:
        log = start_hail(
            hail or HailConfig(run_dir=run.root, command="simulate-phenotype", seed=config.seed)
        )
        import hail as hl

        with hail_errors_as_computation_errors("simulating the phenotype", log):
            mt = hl.read_matrix_table(run.silver_mt)
            sex_field = "gender" if "gender" in mt.col else ("sex" if "sex" in mt.col else None)
            simulated = simulate_trait(mt, config, sex_field=sex_field)
        tmp = stage.temporary_path(final)
        storage.makedirs(tmp)
        outputs = {
            "phenotypes": storage.join(tmp, "phenotypes.tsv"),
            "genetic_values": storage.join(tmp, "genetic_values.tsv"),
            "causal_variants": storage.join(tmp, "causal_variants.tsv"),
        }
        storage.write_text_atomic(
            outputs["phenotypes"], simulated.phenotypes.to_csv(sep="\t", index=False)
        )
        storage.write_text_atomic(
            outputs["genetic_values"], simulated.genetic_values.to_csv(sep="\t", index=False)
        )
        storage.write_text_atomic(
            outputs["causal_variants"], simulated.causal.to_csv(sep="\t", index=False)
        )
        stage.publish(tmp, final, "simulated")
        counts: dict[str, Any] = {
            "samples": len(simulated.phenotypes),
            "causal_variants": len(simulated.causal),
        }
        if config.binary:
            counts["cases"] = int(simulated.phenotypes[config.trait].sum())
            counts["controls"] = counts["samples"] - counts["cases"]
        stage.counts.update(counts)
    final_outputs = {k: storage.join(final, v.rpartition("/")[2]) for k, v in outputs.items()}
    return SimulationResult(config.trait, final_outputs["phenotypes"], final_outputs, counts)
