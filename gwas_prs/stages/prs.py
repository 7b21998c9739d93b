"""The ``prs`` stage: clumping + thresholding, scoring, evaluation (gold layer).

:func:`run_prs` (the stage runner):

1. weights — either from this run's GWAS (``RUN/gold/gwas/TRAIT``): clumped with
   PLINK's rule (:mod:`gwas_prs.methods.prs.clumping`) using LD among the *discovery*
   samples, then one weight vector per p-value threshold (index variants with
   ``p <= t``); or from a PGS Catalog scoring file (``--weights``), harmonised
   to the cohort's alleles (:func:`gwas_prs.formats.pgs_catalog.harmonise`);
2. scores every target sample (``train``/``validation``/``test``) for every
   threshold in one pass (:func:`gwas_prs.methods.prs.scoring.polygenic_scores`),
   with the fine grid of the report's high-resolution threshold plot
   (:func:`gwas_prs.methods.prs.evaluation.high_resolution_thresholds`; only the
   ``--thresholds`` go to ``scores.tsv``);
3. picks the threshold with the best incremental R²/AUC over covariates + PCs on
   ``validation`` and reports it on ``test`` (:mod:`gwas_prs.methods.prs.evaluation`);
4. writes ``RUN/gold/prs/TRAIT/``: ``clumps.tsv``, ``weights.txt.gz`` (PGS
   Catalog format, best threshold), ``weights_by_threshold.tsv``,
   ``scores.tsv``, ``metrics.json``, ``report.html``.

With GWAS weights in Hail local mode, when qc kept the silver genotypes as a
.bed (``RUN/silver/genotypes.plink``), the stage starts no Hail: steps 1-2 run
in numpy on the .bed (:mod:`gwas_prs.methods.prs.prs_local`), the summary statistics come
from ``sumstats.tsv.gz`` and the PCs from ``silver/ancestry/scores.tsv`` (both
read back bit-exactly); ``counts.genotypes_from`` says which path ran.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from gwas_prs.core import storage
from gwas_prs.core.errors import ComputationError, InputError, StageNotCompleteError
from gwas_prs.core.run_folder import (
    PRS_CLUMPS,
    PRS_SCORES,
    RunFolder,
    check_can_write,
    require_complete,
    stage_record,
    stage_run,
)
from gwas_prs.core.stage_options import PRS
from gwas_prs.engine.hail_context import (
    HailConfig,
    start_hail,
    total_memory_bytes,
    use_local_cores,
)
from gwas_prs.engine.hail_errors import hail_errors_as_computation_errors
from gwas_prs.engine.switch import current_engine, numpy_engine, stage_runner
from gwas_prs.engine.table_io import frame_to_table, variant_frame_to_table
from gwas_prs.formats.external_sumstats import (
    ExternalSumstats,
    HarmonisedSumstats,
    SampleSize,
    parse_column_mapping,
    read_external_sumstats,
)
from gwas_prs.formats.phenotypes import read_phenotypes
from gwas_prs.formats.silver_bed import (
    SilverBed,
    kept_silver_bed,
    open_silver_bed,
    write_silver_bed,
)
from gwas_prs.methods.prs.clumping import ClumpParameters, candidates_frame, clump_frame
from gwas_prs.methods.prs.evaluation import high_resolution_thresholds
from gwas_prs.methods.prs.ld_methods import (
    LD_METHODS,
    METHODS,
    LdMethodFit,
    LdMethodSettings,
    check_ld_memory,
    ld_entries,
)
from gwas_prs.methods.prs.prs_local import (
    bed_clump_candidates,
    bed_polygenic_scores,
    sumstats_for_clumping,
)
from gwas_prs.methods.prs.scoring import polygenic_scores, threshold_weights_expr
from gwas_prs.stages.features import (
    build_feature_table,
    read_ancestry,
    read_pcs,
    write_feature_table,
)
from gwas_prs.stages.gwas import read_split
from gwas_prs.stages.prs_external import (
    ExternalBase,
    check_external_base,
    harmonise_base,
    sumstats_counts,
    target_split,
    write_match_report,
)
from gwas_prs.stages.prs_ld_methods import (
    bed_ld_method_scores,
    choose_grid_points,
    final_method_columns,
    hail_ld_method_scores,
    ld_variant_frame,
    own_gwas_inputs,
    write_ld_method_weights,
)
from gwas_prs.stages.prs_reporting import (
    evaluate_high_resolution,
    evaluate_scores,
    scores_by_ancestry,
    write_ancestry_adjusted,
    write_report,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrsConfig:
    """Parameters of ``gwas-prs prs``."""

    run_dir: str
    trait: str
    phenotypes_file: str | None = None
    clump: ClumpParameters = field(default_factory=ClumpParameters)
    thresholds: tuple[float, ...] = PRS.default("thresholds")
    methods: tuple[str, ...] = PRS.default("methods")
    ld_window_kb: float = PRS.default("ld-window-kb")
    ldpred2_chains: int = PRS.default("ldpred2-chains")
    ldpred2_burn_in: int = PRS.default("ldpred2-burn-in")
    ldpred2_iterations: int = PRS.default("ldpred2-iterations")
    sampler_seed: int = PRS.default("sampler-seed")
    weights_file: str | None = PRS.default("weights")
    sumstats_file: str | None = PRS.default("sumstats")
    sumstats_format: str = PRS.default("sumstats-format")
    sumstats_columns: str | None = PRS.default("sumstats-columns")
    sumstats_n: float | None = PRS.default("sumstats-n")
    sumstats_cases: float | None = PRS.default("sumstats-cases")
    sumstats_controls: float | None = PRS.default("sumstats-controls")
    covariates: tuple[str, ...] = PRS.default("covariates")
    n_pcs: int = PRS.default("n-pcs")
    split_seed: int = PRS.default("split-seed")
    allow_palindromic: bool = PRS.default("allow-palindromic")
    min_overlap: float = PRS.default("min-overlap")
    allow_build_mismatch: bool = PRS.default("allow-build-mismatch")
    overwrite: bool = False

    @property
    def ld_settings(self) -> LdMethodSettings:
        return LdMethodSettings(
            window_kb=self.ld_window_kb,
            chains=self.ldpred2_chains,
            burn_in=self.ldpred2_burn_in,
            num_iter=self.ldpred2_iterations,
            seed=self.sampler_seed,
        )

    @property
    def ld_methods(self) -> tuple[str, ...]:
        """The LD-based methods asked for (none with ``--weights``)."""
        return () if self.weights_file else tuple(m for m in self.methods if m in LD_METHODS)

    @property
    def sample_size(self) -> SampleSize:
        return SampleSize(
            n=self.sumstats_n, cases=self.sumstats_cases, controls=self.sumstats_controls
        )

    def validate(self) -> None:
        self.clump.validate()
        PRS.check_choice("sumstats-format", self.sumstats_format)
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise InputError(
                f"--methods {','.join(self.methods)}: choose from {', '.join(METHODS)}"
            )
        if "ct" not in self.methods:
            raise InputError(
                f"--methods {','.join(self.methods)}: keep ct (the C+T baseline the model is "
                "compared with)"
            )
        self.ld_settings.validate()
        if self.sumstats_file and self.weights_file:
            raise InputError(
                "--weights and --sumstats: give one base, a scoring file (--weights) or "
                "summary statistics (--sumstats)"
            )
        if not self.sumstats_file:
            given = [
                flag
                for flag, value in (
                    ("--sumstats-columns", self.sumstats_columns),
                    ("--sumstats-n", self.sumstats_n),
                    ("--sumstats-cases", self.sumstats_cases),
                    ("--sumstats-controls", self.sumstats_controls),
                )
                if value is not None
            ]
            if given:
                raise InputError(f"{given[0]} describes --sumstats FILE; give --sumstats too")
        else:
            parse_column_mapping(self.sumstats_columns)
            self.sample_size.validate()
            if self.n_pcs < 0:
                raise InputError(f"--n-pcs {self.n_pcs}: must be 0 or more")
        if not self.thresholds or any(not 0 < t <= 1 for t in self.thresholds):
            raise InputError(
                f"--thresholds {','.join(map(str, self.thresholds))}: each must be in (0, 1]"
            )
        if list(self.thresholds) != sorted(set(self.thresholds)):
            raise InputError("--thresholds: give distinct values in increasing order")
        if not 0 < self.min_overlap <= 1:
            raise InputError(f"--min-overlap {self.min_overlap}: must be in (0, 1]")


@dataclass
class PrsResult:
    trait: str
    output_dir: str
    metrics: dict[str, Any]
    wall_time_s: float = 0.0


@stage_runner("prs")
def run_prs(config: PrsConfig, hail: HailConfig | None = None) -> PrsResult:
    """Stage runner (see the module docstring)."""
    started = time.monotonic()
    config.validate()
    run = RunFolder(config.run_dir)
    base_sumstats: ExternalSumstats | None = None
    if config.sumstats_file:
        phenotypes_file = check_external_base(run, config.trait, config.phenotypes_file)
        covariates, n_pcs = tuple(config.covariates), config.n_pcs
        base_sumstats = read_external_sumstats(
            config.sumstats_file,
            format=config.sumstats_format,
            columns=parse_column_mapping(config.sumstats_columns),
            sample_size=config.sample_size,
        )
        if base_sumstats.genome_build:
            from gwas_prs.formats.pgs_catalog import check_genome_build

            check_genome_build(
                base_sumstats.genome_build,
                _genome_build(run),
                source=config.sumstats_file,
                allow_build_mismatch=config.allow_build_mismatch,
            )
    else:
        gwas = require_complete(run, f"gwas:{config.trait}", needed_by="prs")
        phenotypes_file = config.phenotypes_file or run.resolve(gwas.parameters["phenotypes_file"])
        covariates = tuple(gwas.parameters.get("covariates", []))
        n_pcs = int(gwas.parameters.get("n_pcs", 10))
        if int(gwas.parameters.get("xchr_model", 2)) == 1:
            logger.warning(
                "gwas ran with --xchr-model 1 (males 0/1); the scores count a male's non-PAR "
                "X allele as two copies (plink2 --score's default), so chrX weights of "
                "males are doubled: rerun gwas with --xchr-model 2 for a consistent score"
            )
    pheno = read_phenotypes(phenotypes_file, (config.trait,), covariates)
    external = None
    if config.weights_file:
        from gwas_prs.formats.pgs_catalog import check_genome_build, read_scoring_file

        external = read_scoring_file(config.weights_file)
        check_genome_build(  # before Hail starts; harmonise checks again
            external.genome_build,
            _genome_build(run),
            source=config.weights_file,
            allow_build_mismatch=config.allow_build_mismatch,
        )
    final = run.prs_dir(config.trait)
    finals = [final] if base_sumstats is None else [final, run.split_file(config.trait)]
    check_can_write(run, f"prs:{config.trait}", finals, overwrite=config.overwrite)
    if base_sumstats is None:
        roles = read_split(run, config.trait)
    else:
        roles = target_split(
            pheno.frame,
            config.trait,
            read_pcs(run, 0).index,
            read_ancestry(run),
            config.split_seed,
            source=phenotypes_file,
        )
    thresholds = (1.0,) if external is not None else config.thresholds
    parameters = {
        "trait": config.trait,
        "phenotypes_file": run.stored_path(phenotypes_file),
        "clump_r2": config.clump.r2,
        "clump_kb": config.clump.kb,
        "clump_p1": config.clump.p1,
        "clump_p2": config.clump.p2,
        "thresholds": list(thresholds),
        "weights_file": config.weights_file,
        "allow_palindromic": config.allow_palindromic,
        "min_overlap": config.min_overlap,
        "allow_build_mismatch": config.allow_build_mismatch,
    }
    if config.ld_methods:
        parameters.update(
            {
                "methods": list(config.methods),
                "ld_window_kb": config.ld_window_kb,
                "ldpred2_chains": config.ldpred2_chains,
                "ldpred2_burn_in": config.ldpred2_burn_in,
                "ldpred2_iterations": config.ldpred2_iterations,
                "sampler_seed": config.sampler_seed,
            }
        )
    if base_sumstats is not None:
        # what train and features read from the gwas record of an in-sample GWAS
        parameters.update(
            {
                "sumstats_file": run.stored_path(config.sumstats_file or ""),
                "sumstats_format": base_sumstats.format,
                "sumstats_columns": config.sumstats_columns,
                "sumstats_n": config.sumstats_n,
                "sumstats_cases": config.sumstats_cases,
                "sumstats_controls": config.sumstats_controls,
                "covariates": list(covariates),
                "n_pcs": n_pcs,
                "split_seed": config.split_seed,
                "binary": bool(pheno.binary[config.trait]),
            }
        )
    hail = hail or HailConfig(run_dir=run.root, command="prs")
    silver_bed = kept_silver_bed(run, hail) if external is None else None
    exported = None
    if silver_bed is None and external is None and numpy_engine() and not run.is_remote():
        # the numpy engine on a run whose qc kept no .bed (qc ran on the Hail engine)
        exported, silver_bed = _export_silver_bed(run, hail)
    if silver_bed is not None and config.ld_methods:  # before any work: does the LD fit?
        check_ld_memory(
            ld_entries(
                silver_bed.variants["chromosome"],
                silver_bed.variants["position"],
                config.ld_window_kb,
            ),
            config.ld_window_kb,
            total_memory_bytes(),
        )
    base = None
    if base_sumstats is not None:
        harmonised = None
        if silver_bed is not None:  # up front: a poor match stops before the stage starts
            harmonised = _harmonise_base(
                config,
                base_sumstats,
                silver_bed.variants.rename(columns={"chromosome": "contig"}),
                _genome_build(run),
            )
        base = ExternalBase(base_sumstats, harmonised)
    try:
        return _run_prs(
            run, config, hail, external, base, silver_bed, parameters, thresholds,
            roles, pheno, covariates, n_pcs, phenotypes_file, final, started,
        )  # fmt: skip
    finally:
        if exported is not None:
            storage.remove(exported)


def _finish_ld_methods(
    config: PrsConfig,
    ld: LdScores,
    roles: pd.Series,
    pheno: Any,
    covariates: tuple[str, ...],
    pcs: pd.DataFrame,
    tmp: str,
    genome_build: str,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The grid points chosen on validation, one ``prs_<method>`` column per method,
    their weight files; per-method details for metrics.json."""
    design = pheno.frame[[config.trait, *covariates]].join(pcs)
    chosen, grid_tables = choose_grid_points(
        ld.scores,
        ld.fit,
        roles,
        design[config.trait],
        design[[*covariates, *pcs.columns]],
        binary=bool(pheno.binary[config.trait]),
    )
    frame, method_weights = final_method_columns(ld.scores, ld.weights, ld.names, chosen)
    files = write_ld_method_weights(
        tmp,
        ld.variants,
        method_weights,
        trait=config.trait,
        genome_build=genome_build,
        settings=config.ld_settings,
    )
    details: dict[str, Any] = {}
    for method in method_weights:
        name = method.replace("-", "_")
        entry: dict[str, Any] = {
            "variants": len(ld.variants),
            "nonzero_weights": int((method_weights[method] != 0).sum()),
            "ld_samples": ld.ld_samples,
            "weights_file": f"weights_{name}.txt.gz",
            "time_s": ld.fit.timings_s.get(name),
        }
        if method == "ldpred2-auto":
            entry["estimates"] = ld.fit.auto
            h2 = ld.fit.auto.get("h2")
            if h2 is not None and not 0 < h2 < 1:
                entry["warning"] = (
                    f"LDpred2-auto's h² estimate is {h2:.3g}, outside (0, 1): the GWAS is too "
                    "small or its LD reference does not match it (ancestry, samples); treat "
                    "this score with caution"
                )
                logger.warning("%s", entry["warning"])
        if method in grid_tables:
            entry["grid_validation"] = grid_tables[method]
            point = next(r for r in grid_tables[method] if r["chosen"])
            entry["chosen_point"] = {
                k: v for k, v in point.items() if k in ("p", "h2", "sparse", "delta", "lambda")
            }
        details[f"prs_{name}"] = entry
    for method in config.ld_methods:
        if method not in method_weights:
            logger.warning("%s: no usable weights (every chain or grid point diverged)", method)
    logger.info("LD-based methods: %s; files %s", ", ".join(method_weights), ", ".join(files))
    return frame, details


def _genome_build(run: RunFolder) -> str:
    """The reference genome the run was ingested on (prs needs the record, not bronze)."""
    record = stage_record(run, "ingest")
    if record is None:
        raise StageNotCompleteError(
            f"{run.root}: 'prs' needs the 'ingest' stage, which has not run; run 'gwas-prs ingest' first"
        )
    return str(record.parameters.get("reference_genome", "GRCh37"))


def _export_silver_bed(run: RunFolder, hail: HailConfig) -> tuple[str, SilverBed]:
    """The silver genotypes as a temporary .bed under ``RUN/tmp`` (removed by the caller)."""
    log = start_hail(hail)
    import hail as hl

    folder = storage.join(run.tmp, f"prs-bed-{uuid.uuid4().hex[:8]}")
    storage.makedirs(folder)
    try:
        with hail_errors_as_computation_errors("exporting the silver genotypes", log):
            mt = hl.read_matrix_table(run.silver_mt)
            n_variants, n_samples = mt.count()
            write_silver_bed(mt, storage.join(folder, "genotypes"))
        bed = open_silver_bed(folder, n_samples, n_variants)
        if bed is None:  # pragma: no cover - just written with this shape
            raise ComputationError(
                f"{folder}: the exported silver .bed does not match the silver genotypes"
            )
    except BaseException:
        storage.remove(folder)  # a failed or interrupted export leaves nothing behind
        raise
    return folder, bed


def _run_prs(
    run: RunFolder,
    config: PrsConfig,
    hail: HailConfig,
    external: Any,
    base: ExternalBase | None,
    silver_bed: SilverBed | None,
    parameters: dict[str, Any],
    thresholds: tuple[float, ...],
    roles: pd.Series,
    pheno: Any,
    covariates: tuple[str, ...],
    n_pcs: int,
    phenotypes_file: str,
    final: str,
    started: float,
) -> PrsResult:
    with stage_run(
        run,
        f"prs:{config.trait}",
        parameters=parameters,
        final_outputs=[final] if base is None else [final, run.split_file(config.trait)],
        overwrite=config.overwrite,
        engine=current_engine(),
    ) as stage:
        tmp = stage.temporary_path(final)
        storage.makedirs(tmp)
        if base is not None:  # no discovery: the split is this stage's own
            split_file = run.split_file(config.trait)
            split_tmp = stage.temporary_path(split_file)
            split_frame = roles.dropna().rename("role").rename_axis("sample_id").reset_index()
            storage.write_text_atomic(split_tmp, split_frame.to_csv(sep="\t", index=False))
        if silver_bed is not None:  # the numpy engine: on the silver .bed (qc's, or exported)
            use_local_cores(hail)
            scored, counts, timings, ld = _scores_from_bed(
                run, config, silver_bed, roles, tmp, base
            )
            genome_build = _genome_build(run)
        else:
            scored, counts, timings, genome_build, ld = _scores_with_hail(
                run, config, external, base, roles, tmp, hail
            )
        t = time.monotonic()
        # the configured thresholds, and the high-resolution grid around them (report only)
        grid = _scored_thresholds(config) if external is None else thresholds
        all_scores = pd.DataFrame(
            np.vstack(list(scored["scores"])),
            index=scored.index,
            columns=[f"prs_{t:g}" for t in grid],
        )
        score_frame = all_scores[[f"prs_{t:g}" for t in thresholds]].copy()
        pcs = read_pcs(run, n_pcs)
        ld_metrics: dict[str, Any] = {}
        if ld is not None:
            method_frame, ld_metrics = _finish_ld_methods(
                config, ld, roles, pheno, covariates, pcs, tmp, genome_build
            )
            score_frame = score_frame.join(method_frame)
        score_frame.insert(0, "role", roles.reindex(score_frame.index))
        score_frame.index.name = "sample_id"
        storage.write_text_atomic(storage.join(tmp, PRS_SCORES), score_frame.to_csv(sep="\t"))
        metrics = evaluate_scores(config.trait, pheno, covariates, pcs, score_frame, thresholds)
        high_resolution = counts.pop("variants_per_threshold_high_resolution", None)
        if high_resolution is not None:
            metrics["high_resolution_validation"] = evaluate_high_resolution(
                config.trait, pheno, covariates, pcs, all_scores, roles, high_resolution
            )
        metrics["ancestry_adjustment"] = write_ancestry_adjusted(
            tmp, score_frame, metrics, pcs, read_ancestry(run)
        )
        if pheno.binary[config.trait]:
            metrics["by_ancestry_test"] = scores_by_ancestry(
                config.trait, pheno, score_frame, metrics, read_ancestry(run)
            )
        if ld_metrics:
            for method, extra in ld_metrics.items():
                metrics["methods"][method].update(extra)
        metrics["counts"] = counts
        if external is None:
            _write_best_weights(config, tmp, metrics["best_threshold"], genome_build)
        storage.write_text_atomic(
            storage.join(tmp, "metrics.json"), json.dumps(metrics, indent=2) + "\n"
        )
        write_report(
            config.trait, metrics, pheno, score_frame, storage.join(tmp, "report.html"),
            ancestry=read_ancestry(run),
        )  # fmt: skip
        stage.publish(tmp, final, "prs")
        if base is not None:
            stage.publish(split_tmp, split_file, "split")
        # the feature table for train, from the frames in hand (nothing read back)
        features = build_feature_table(
            trait=config.trait,
            scores=score_frame,
            roles=roles,
            label=pheno.frame[config.trait],
            covariates=pheno.frame[list(covariates)],
            pcs=pcs,
            ancestry=read_ancestry(run),
            binary=pheno.binary[config.trait],
            best_threshold=metrics["best_threshold"],
            sources={
                # relative to the run folder where inside it (a moved run keeps them)
                "scores": run.stored_path(run.prs_scores(config.trait)),
                "phenotypes": run.stored_path(phenotypes_file),
                "pcs": run.stored_path(run.pca_scores),
                "splits": run.stored_path(run.split_file(config.trait)),
            },
        )
        write_feature_table(features, run)
        timings["evaluation_reports_s"] = time.monotonic() - t
        stage.counts.update(
            {
                **counts,
                "best_threshold": metrics["best_threshold"],
                "test": metrics["test"],
                **{k: round(v, 3) for k, v in timings.items()},
            }
        )
    return PrsResult(config.trait, final, metrics, round(time.monotonic() - started, 3))


def _scores_from_bed(
    run: RunFolder,
    config: PrsConfig,
    silver: SilverBed,
    roles: pd.Series,
    tmp: str,
    base: ExternalBase | None = None,
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, float], LdScores | None]:
    """Steps 1-2 in numpy on the silver .bed (see :mod:`gwas_prs.methods.prs.prs_local`)."""
    t = time.monotonic()
    bed_weights, bed_rows, counts = _weights_from_bed(run, config, silver, roles, tmp, base)
    timings = {"weights_s": time.monotonic() - t}
    t = time.monotonic()
    targets = [str(s) for s, r in roles.items() if r in ("train", "validation", "test")]
    scored = bed_polygenic_scores(silver, bed_rows, bed_weights, targets)
    timings["scoring_s"] = time.monotonic() - t
    counts["genotypes_from"] = "silver .bed (numpy)"
    ld = None
    if config.ld_methods:
        t = time.monotonic()
        order = silver.variants[["chromosome", "position", "ref", "alt"]]
        harmonised = _ld_inputs(run, config, base, order, _genome_build(run))
        variants = ld_variant_frame(harmonised, order)
        ld_role = "discovery" if base is None else "train"
        ld_samples = [str(s) for s, r in roles.items() if r == ld_role]
        frame, fit, weights, names, ld_timings = bed_ld_method_scores(
            silver, variants, ld_samples, targets, config.ld_methods, config.ld_settings
        )
        ld = LdScores(frame, fit, weights, names, variants, f"{ld_role} ({len(ld_samples)})")
        timings.update({k: v for k, v in ld_timings.items() if k.endswith("_s")})
        timings["ld_methods_s"] = time.monotonic() - t
        counts["ld_nonzero"] = int(ld_timings["ld_nonzero"])
    return scored, counts, timings, ld


@dataclass
class LdScores:
    """The LD-based methods' candidate scores (one column per method / grid point),
    the fit, the weights (``variants`` × ``names``) and the LD samples."""

    scores: pd.DataFrame
    fit: LdMethodFit
    weights: npt.NDArray[np.float64]
    names: list[str]
    variants: pd.DataFrame
    ld_samples: str


def _ld_inputs(
    run: RunFolder,
    config: PrsConfig,
    base: ExternalBase | None,
    order: pd.DataFrame,
    genome_build: str,
) -> HarmonisedSumstats:
    """The summary statistics of the LD-based methods on the cohort's variants."""
    variants = order.rename(columns={"chromosome": "contig"})
    if base is None:
        return own_gwas_inputs(
            storage.join(run.gwas_dir(config.trait), "sumstats.tsv.gz"), variants
        )
    return base.harmonised or _harmonise_base(config, base.sumstats, variants, genome_build)


def _scores_with_hail(
    run: RunFolder,
    config: PrsConfig,
    external: Any,
    base: ExternalBase | None,
    roles: pd.Series,
    tmp: str,
    hail: HailConfig,
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, float], str, LdScores | None]:
    """Steps 1-2 on the silver MatrixTable; also returns the genome build."""
    log = start_hail(hail)
    import hail as hl

    with hail_errors_as_computation_errors("building the polygenic score", log):
        mt = hl.read_matrix_table(run.silver_mt)
        role_frame = roles.rename("role").rename_axis("s").reset_index()
        role_frame["s"] = role_frame["s"].astype(str)
        role_ht = frame_to_table(role_frame, {"s": hl.tstr, "role": hl.tstr}, key=["s"])
        mt = mt.annotate_cols(_role=role_ht[mt.s].role)
        t = time.monotonic()
        if base is not None:
            weights, effect_is_alt, counts = _weights_from_external_sumstats(
                config, mt, base.sumstats, tmp
            )
        elif external is None:
            weights, effect_is_alt, counts = _weights_from_gwas(run, config, mt, tmp)
        else:
            weights, effect_is_alt, counts = _weights_from_file(config, mt, external, tmp)
        timings = {"weights_s": time.monotonic() - t}  # clumping (or harmonisation)
        t = time.monotonic()
        target = mt.filter_cols(hl.literal({"train", "validation", "test"}).contains(mt._role))
        scores_ht = polygenic_scores(target, weights(target), effect_is_alt(target))
        scored = scores_ht.to_pandas().set_index("s")
        timings["scoring_s"] = time.monotonic() - t
        ld = None
        if config.ld_methods:
            t = time.monotonic()
            order = _cohort_variants(mt).rename(columns={"contig": "chromosome"})
            genome_build = str(mt.locus.dtype.reference_genome.name)
            harmonised = _ld_inputs(run, config, base, order, genome_build)
            variants = ld_variant_frame(harmonised, order)
            check_ld_memory(
                ld_entries(variants["chromosome"], variants["position"], config.ld_window_kb),
                config.ld_window_kb,
                total_memory_bytes(),
            )
            ld_role = "discovery" if base is None else "train"
            frame, fit, weights, names, ld_timings = hail_ld_method_scores(
                mt, variants, ld_role, config.ld_methods, config.ld_settings
            )
            n_ld = int((roles == ld_role).sum())
            ld = LdScores(frame, fit, weights, names, variants, f"{ld_role} ({n_ld})")
            timings.update({k: v for k, v in ld_timings.items() if k.endswith("_s")})
            timings["ld_methods_s"] = time.monotonic() - t
            counts["ld_nonzero"] = int(ld_timings["ld_nonzero"])
    counts["genotypes_from"] = "Hail"
    return scored, counts, timings, str(hl.default_reference().name), ld


def _weights_from_bed(
    run: RunFolder,
    config: PrsConfig,
    silver: SilverBed,
    roles: pd.Series,
    tmp: str,
    base: ExternalBase | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], dict[str, Any]]:
    """Clumping on the silver .bed: per-threshold weights of the index variants and their
    .bed rows. LD among the discovery samples (this run's GWAS) or, with external
    summary statistics, among the training samples."""
    match_counts: dict[str, Any] | None = None
    if base is None:
        frame = sumstats_for_clumping(
            storage.join(run.gwas_dir(config.trait), "sumstats.tsv.gz"),
            silver.variants["chromosome"].unique().tolist(),
        )
        ld_role = "discovery"
    else:
        harmonised = base.harmonised or _harmonise_base(
            config,
            base.sumstats,
            silver.variants.rename(columns={"chromosome": "contig"}),
            _genome_build(run),
        )
        write_match_report(tmp, base.sumstats, harmonised)
        frame = harmonised.frame.rename(columns={"contig": "chromosome"})
        match_counts = sumstats_counts(base.sumstats, harmonised)
        ld_role = "train"
    ld_samples = [str(s) for s, r in roles.items() if r == ld_role]
    candidates, rows = bed_clump_candidates(silver, frame, ld_samples, config.clump)
    clumped = candidates_frame(candidates)
    index, counts = _write_clump_files(config, clumped, tmp)
    counts["ld_samples"] = f"{ld_role} ({len(ld_samples)})"
    if match_counts is not None:
        counts["sumstats"] = match_counts
    weights = index[[f"weight_{t:g}" for t in _scored_thresholds(config)]].to_numpy(
        dtype=np.float64
    )
    return weights, rows[clumped["index_variant"].to_numpy(dtype=bool)], counts


def _scored_thresholds(config: PrsConfig) -> tuple[float, ...]:
    """The thresholds scored in the one pass: ``--thresholds`` (``scores.tsv``, the
    choice) and the high-resolution grid of the report's threshold plot."""
    return high_resolution_thresholds(config.thresholds)


def _harmonise_base(
    config: PrsConfig, base: ExternalSumstats, variants: pd.DataFrame, cohort_build: str
) -> HarmonisedSumstats:
    return harmonise_base(
        base,
        variants,
        cohort_build,
        allow_palindromic=config.allow_palindromic,
        min_overlap=config.min_overlap,
        allow_build_mismatch=config.allow_build_mismatch,
    )


def _write_clump_files(
    config: PrsConfig, frame: pd.DataFrame, tmp: str
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Write clumps.tsv and weights_by_threshold.tsv (``--thresholds``); return the index
    variants (with a ``weight_T`` column per scored threshold T, see
    :func:`_scored_thresholds`) and counts."""
    columns = [
        "chromosome",
        "position",
        "ref",
        "alt",
        "p",
        "beta",
        "index_variant",
        "clump_index",
        "clump_size",
    ]
    storage.write_text_atomic(
        storage.join(tmp, PRS_CLUMPS), frame[columns].to_csv(sep="\t", index=False)
    )
    index = frame[frame["index_variant"]].copy()
    for t in _scored_thresholds(config):
        index[f"weight_{t:g}"] = np.where(index["p"] <= t, index["beta"], 0.0)
    by_threshold = index[
        ["chromosome", "position", "ref", "alt", "p", "beta"]
        + [f"weight_{t:g}" for t in config.thresholds]
    ]
    storage.write_text_atomic(
        storage.join(tmp, "weights_by_threshold.tsv"), by_threshold.to_csv(sep="\t", index=False)
    )
    counts = {
        "clump_candidates": len(frame),
        "index_variants": len(index),
        "variants_per_threshold": {
            f"{t:g}": int((index["p"] <= t).sum()) for t in config.thresholds
        },
        "smallest_index_p": float(index["p"].min()) if len(index) else None,
        "variants_per_threshold_high_resolution": {
            f"{t:g}": int((index["p"] <= t).sum()) for t in _scored_thresholds(config)
        },
    }
    return index, counts


def _weights_from_gwas(
    run: RunFolder, config: PrsConfig, mt: Any, tmp: str
) -> tuple[Any, Any, dict[str, Any]]:
    import hail as hl

    sumstats = hl.read_table(storage.join(run.gwas_dir(config.trait), "sumstats.ht"))
    return _clumped_weights(config, mt, sumstats, "discovery", tmp)


def _weights_from_external_sumstats(
    config: PrsConfig, mt: Any, base: ExternalSumstats, tmp: str
) -> tuple[Any, Any, dict[str, Any]]:
    """C+T weights from external summary statistics, LD among the training samples."""
    import hail as hl

    variants = _cohort_variants(mt)
    harmonised = _harmonise_base(config, base, variants, str(mt.locus.dtype.reference_genome.name))
    write_match_report(tmp, base, harmonised)
    sumstats = variant_frame_to_table(
        harmonised.frame[["contig", "position", "ref", "alt", "p_value", "beta"]],
        {"p_value": hl.tfloat64, "beta": hl.tfloat64},
        mt.locus.dtype.reference_genome,
    )
    weights, effect_is_alt, counts = _clumped_weights(config, mt, sumstats, "train", tmp)
    counts["sumstats"] = sumstats_counts(base, harmonised)
    return weights, effect_is_alt, counts


def _cohort_variants(mt: Any) -> pd.DataFrame:
    """``contig``, ``position``, ``ref``, ``alt`` of every row of ``mt``."""
    rows = mt.rows().select().to_pandas()
    return pd.DataFrame(
        {
            "contig": rows["locus"].map(lambda locus: locus.contig),
            "position": rows["locus"].map(lambda locus: locus.position),
            "ref": rows["alleles"].map(lambda a: a[0]),
            "alt": rows["alleles"].map(lambda a: a[1]),
        }
    )


def _clumped_weights(
    config: PrsConfig, mt: Any, sumstats: Any, ld_role: str, tmp: str
) -> tuple[Any, Any, dict[str, Any]]:
    """Clumping with LD among the ``ld_role`` samples; per-threshold weight expressions."""
    import hail as hl

    ld_mt = mt.filter_cols(mt._role == ld_role)
    row = sumstats[ld_mt.row_key]
    frame = clump_frame(ld_mt, row.p_value, config.clump, values={"beta": row.beta})
    index, counts = _write_clump_files(config, frame, tmp)
    counts["ld_samples"] = f"{ld_role} ({ld_mt.count_cols()})"
    index_ht = variant_frame_to_table(
        index,
        {"p": hl.tfloat64, "beta": hl.tfloat64},
        mt.locus.dtype.reference_genome,
        columns=("chromosome", "position", "ref", "alt"),
    )

    def weights(target: Any) -> Any:
        row = index_ht[target.row_key]
        return hl.or_missing(
            hl.is_defined(row),
            threshold_weights_expr(row.beta, row.p, _scored_thresholds(config)),
        )

    def effect_is_alt(target: Any) -> Any:
        return hl.bool(True)

    return weights, effect_is_alt, counts


def _write_best_weights(config: PrsConfig, tmp: str, best: float, genome_build: str) -> None:
    """The index variants with ``p <= best`` as a PGS Catalog scoring file."""
    from gwas_prs.formats.pgs_catalog import ScoringMetadata, write_scoring_file

    table = storage.read_table(
        storage.join(tmp, "weights_by_threshold.tsv"), sep="\t", dtype={"chromosome": str}
    )
    chosen = table[table["p"] <= best]
    frame = pd.DataFrame(
        {
            "chr_name": chosen["chromosome"],
            "chr_position": chosen["position"],
            "effect_allele": chosen["alt"],
            "other_allele": chosen["ref"],
            "effect_weight": chosen["beta"],
        }
    )
    metadata = ScoringMetadata(
        pgs_name=f"gwas-prs_{config.trait}_CT_p{best:g}",
        trait_reported=config.trait,
        genome_build=genome_build,
        extra={
            "clumping": f"r2={config.clump.r2},kb={config.clump.kb},p1={config.clump.p1},p2={config.clump.p2}",
            "p_value_threshold": f"{best:g}",
        },
    )
    write_scoring_file(frame, storage.join(tmp, "weights.txt.gz"), metadata)


def _weights_from_file(
    config: PrsConfig, mt: Any, external: Any, tmp: str
) -> tuple[Any, Any, dict[str, Any]]:
    import hail as hl

    from gwas_prs.formats.pgs_catalog import harmonise

    variants = _cohort_variants(mt)
    harmonised = harmonise(
        external.frame,
        variants,
        allow_palindromic=config.allow_palindromic,
        min_overlap=config.min_overlap,
        source=config.weights_file or "weights",
        weights_build=external.genome_build,
        cohort_build=str(hl.default_reference().name),
        allow_build_mismatch=config.allow_build_mismatch,
    )
    kept = harmonised.frame
    storage.write_text_atomic(
        storage.join(tmp, "harmonised_weights.tsv"), kept.to_csv(sep="\t", index=False)
    )
    # declared types (an int32 position for hl.locus), not hl.Table.from_pandas's guesses
    ht = variant_frame_to_table(
        kept.assign(weight=kept["effect_weight"]),
        {"weight": hl.tfloat64, "effect_is_alt": hl.tbool},
        mt.locus.dtype.reference_genome,
    )
    ht = ht.distinct()
    counts = {
        "weights_in_file": harmonised.n_total,
        "match_rate": round(harmonised.match_rate, 4),
        "categories": harmonised.counts,
    }

    def weights(target: Any) -> Any:
        row = ht[target.row_key]
        return hl.or_missing(hl.is_defined(row), hl.array([row.weight]))

    def effect_is_alt(target: Any) -> Any:
        return ht[target.row_key].effect_is_alt

    return weights, effect_is_alt, counts
