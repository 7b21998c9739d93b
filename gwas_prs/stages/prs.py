"""The ``prs`` stage: clumping + thresholding, scoring, evaluation (gold layer).

:func:`run_prs` (the stage runner):

1. weights — either from this run's GWAS (``RUN/gold/gwas/TRAIT``): clumped with
   PLINK's rule (:mod:`gwas_prs.methods.prs.clumping`) using LD among the *discovery*
   samples, then one weight vector per p-value threshold (index variants with
   ``p <= t``); or from a PGS Catalog scoring file (``--weights``), harmonised
   to the cohort's alleles (:func:`gwas_prs.formats.pgs_catalog.harmonise`);
2. scores every target sample (``train``/``validation``/``test``) for every
   threshold in one pass (:func:`gwas_prs.methods.prs.scoring.polygenic_scores`);
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
from gwas_prs.engine.hail_context import HailConfig, start_hail, use_local_cores
from gwas_prs.engine.hail_errors import hail_errors_as_computation_errors
from gwas_prs.engine.switch import current_engine, numpy_engine, stage_runner
from gwas_prs.engine.table_io import frame_to_table, variant_frame_to_table
from gwas_prs.formats.phenotypes import read_phenotypes
from gwas_prs.formats.silver_bed import (
    SilverBed,
    kept_silver_bed,
    open_silver_bed,
    write_silver_bed,
)
from gwas_prs.methods.prs.clumping import ClumpParameters, candidates_frame, clump_frame
from gwas_prs.methods.prs.evaluation import evaluate_thresholds, fit_score, outcome_by_decile
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

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrsConfig:
    """Parameters of ``gwas-prs prs``."""

    run_dir: str
    trait: str
    phenotypes_file: str | None = None
    clump: ClumpParameters = field(default_factory=ClumpParameters)
    thresholds: tuple[float, ...] = PRS.default("thresholds")
    weights_file: str | None = PRS.default("weights")
    allow_palindromic: bool = PRS.default("allow-palindromic")
    min_overlap: float = PRS.default("min-overlap")
    allow_build_mismatch: bool = PRS.default("allow-build-mismatch")
    overwrite: bool = False

    def validate(self) -> None:
        self.clump.validate()
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
    gwas = require_complete(run, f"gwas:{config.trait}", needed_by="prs")
    phenotypes_file = config.phenotypes_file or run.resolve(gwas.parameters["phenotypes_file"])
    covariates = tuple(gwas.parameters.get("covariates", []))
    n_pcs = int(gwas.parameters.get("n_pcs", 10))
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
    check_can_write(run, f"prs:{config.trait}", [final], overwrite=config.overwrite)
    roles = read_split(run, config.trait)
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
    hail = hail or HailConfig(run_dir=run.root, command="prs")
    silver_bed = kept_silver_bed(run, hail) if external is None else None
    exported = None
    if silver_bed is None and external is None and numpy_engine() and not run.is_remote():
        # the numpy engine on a run whose qc kept no .bed (qc ran on the Hail engine)
        exported, silver_bed = _export_silver_bed(run, hail)
    try:
        return _run_prs(
            run, config, hail, external, silver_bed, parameters, thresholds, roles, pheno,
            covariates, n_pcs, phenotypes_file, final, started,
        )  # fmt: skip
    finally:
        if exported is not None:
            storage.remove(exported)


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
        final_outputs=[final],
        overwrite=config.overwrite,
        engine=current_engine(),
    ) as stage:
        tmp = stage.temporary_path(final)
        storage.makedirs(tmp)
        if silver_bed is not None:  # the numpy engine: on the silver .bed (qc's, or exported)
            use_local_cores(hail)
            scored, counts, timings = _scores_from_bed(run, config, silver_bed, roles, tmp)
            genome_build = _genome_build(run)
        else:
            scored, counts, timings, genome_build = _scores_with_hail(
                run, config, external, roles, tmp, hail
            )
        t = time.monotonic()
        score_frame = pd.DataFrame(
            np.vstack(list(scored["scores"])),
            index=scored.index,
            columns=[f"prs_{t:g}" for t in thresholds],
        )
        score_frame.insert(0, "role", roles.reindex(score_frame.index))
        score_frame.index.name = "sample_id"
        storage.write_text_atomic(storage.join(tmp, PRS_SCORES), score_frame.to_csv(sep="\t"))
        pcs = read_pcs(run, n_pcs)
        metrics = _evaluate(config.trait, pheno, covariates, pcs, score_frame, thresholds)
        metrics["counts"] = counts
        if external is None:
            _write_best_weights(config, tmp, metrics["best_threshold"], genome_build)
        storage.write_text_atomic(
            storage.join(tmp, "metrics.json"), json.dumps(metrics, indent=2) + "\n"
        )
        _report(config.trait, metrics, pheno, score_frame, storage.join(tmp, "report.html"))
        stage.publish(tmp, final, "prs")
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
    run: RunFolder, config: PrsConfig, silver: SilverBed, roles: pd.Series, tmp: str
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, float]]:
    """Steps 1-2 in numpy on the silver .bed (see :mod:`gwas_prs.methods.prs.prs_local`)."""
    t = time.monotonic()
    bed_weights, bed_rows, counts = _weights_from_bed(run, config, silver, roles, tmp)
    timings = {"weights_s": time.monotonic() - t}
    t = time.monotonic()
    targets = [str(s) for s, r in roles.items() if r in ("train", "validation", "test")]
    scored = bed_polygenic_scores(silver, bed_rows, bed_weights, targets)
    timings["scoring_s"] = time.monotonic() - t
    counts["genotypes_from"] = "silver .bed (numpy)"
    return scored, counts, timings


def _scores_with_hail(
    run: RunFolder,
    config: PrsConfig,
    external: Any,
    roles: pd.Series,
    tmp: str,
    hail: HailConfig,
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, float], str]:
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
        if external is None:
            weights, effect_is_alt, counts = _weights_from_gwas(run, config, mt, tmp)
        else:
            weights, effect_is_alt, counts = _weights_from_file(config, mt, external, tmp)
        timings = {"weights_s": time.monotonic() - t}  # clumping (or harmonisation)
        t = time.monotonic()
        target = mt.filter_cols(hl.literal({"train", "validation", "test"}).contains(mt._role))
        scores_ht = polygenic_scores(target, weights(target), effect_is_alt(target))
        scored = scores_ht.to_pandas().set_index("s")
        timings["scoring_s"] = time.monotonic() - t
    counts["genotypes_from"] = "Hail"
    return scored, counts, timings, str(hl.default_reference().name)


def _weights_from_bed(
    run: RunFolder, config: PrsConfig, silver: SilverBed, roles: pd.Series, tmp: str
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], dict[str, Any]]:
    """Clumping on the silver .bed: per-threshold weights of the index variants and their .bed rows."""
    frame = sumstats_for_clumping(
        storage.join(run.gwas_dir(config.trait), "sumstats.tsv.gz"),
        silver.variants["chromosome"].unique().tolist(),
    )
    discovery = [str(s) for s, r in roles.items() if r == "discovery"]
    candidates, rows = bed_clump_candidates(silver, frame, discovery, config.clump)
    clumped = candidates_frame(candidates)
    index, counts = _write_clump_files(config, clumped, tmp)
    weights = index[[f"weight_{t:g}" for t in config.thresholds]].to_numpy(dtype=np.float64)
    return weights, rows[clumped["index_variant"].to_numpy(dtype=bool)], counts


def _write_clump_files(
    config: PrsConfig, frame: pd.DataFrame, tmp: str
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Write clumps.tsv and weights_by_threshold.tsv; return the index variants (with a
    ``weight_T`` column per threshold T) and counts."""
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
    for t in config.thresholds:
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
    }
    return index, counts


def _weights_from_gwas(
    run: RunFolder, config: PrsConfig, mt: Any, tmp: str
) -> tuple[Any, Any, dict[str, Any]]:
    import hail as hl

    sumstats = hl.read_table(storage.join(run.gwas_dir(config.trait), "sumstats.ht"))
    discovery = mt.filter_cols(mt._role == "discovery")
    row = sumstats[discovery.row_key]
    frame = clump_frame(discovery, row.p_value, config.clump, values={"beta": row.beta})
    index, counts = _write_clump_files(config, frame, tmp)
    index_ht = variant_frame_to_table(
        index,
        {"p": hl.tfloat64, "beta": hl.tfloat64},
        mt.locus.dtype.reference_genome,
        columns=("chromosome", "position", "ref", "alt"),
    )

    def weights(target: Any) -> Any:
        row = index_ht[target.row_key]
        return hl.or_missing(
            hl.is_defined(row), threshold_weights_expr(row.beta, row.p, config.thresholds)
        )

    def effect_is_alt(target: Any) -> Any:
        return hl.bool(True)

    return weights, effect_is_alt, counts


def _write_best_weights(config: PrsConfig, tmp: str, best: float, genome_build: str) -> None:
    """The index variants with ``p <= best`` as a PGS Catalog scoring file."""
    from gwas_prs.formats.pgs_catalog import ScoringMetadata, write_scoring_file

    table = pd.read_csv(
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

    rows = mt.rows().select().to_pandas()
    variants = pd.DataFrame(
        {
            "contig": rows["locus"].map(lambda locus: locus.contig),
            "position": rows["locus"].map(lambda locus: locus.position),
            "ref": rows["alleles"].map(lambda a: a[0]),
            "alt": rows["alleles"].map(lambda a: a[1]),
        }
    )
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
    ht = hl.Table.from_pandas(
        pd.DataFrame(
            {
                "contig": kept["contig"].astype(str),
                "position": kept["position"].astype("int32"),
                "ref": kept["ref"].astype(str),
                "alt": kept["alt"].astype(str),
                "weight": kept["effect_weight"].astype(float),
                "effect_is_alt": kept["effect_is_alt"].astype(bool),
            }
        )
    )
    ht = ht.key_by(locus=hl.locus(ht.contig, ht.position), alleles=[ht.ref, ht.alt]).select(
        "weight", "effect_is_alt"
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


def _evaluate(
    trait: str,
    pheno: Any,
    covariates: tuple[str, ...],
    pc_frame: pd.DataFrame,
    scores: pd.DataFrame,
    thresholds: tuple[float, ...],
) -> dict[str, Any]:
    binary = pheno.binary[trait]
    design = pheno.frame.reindex(scores.index)[[trait, *covariates]].join(pc_frame)
    score_columns = [c for c in scores.columns if c.startswith("prs_")]
    result: dict[str, Any] = {
        "trait": trait,
        "binary": binary,
        "metric": "roc_auc" if binary else "r2",
    }
    for role in ("validation", "test"):
        part = scores["role"] == role
        table = evaluate_thresholds(
            design.loc[part, trait],
            design.loc[part, [*covariates, *pc_frame.columns]],
            scores.loc[part, score_columns],
            thresholds,
            binary=binary,
        )
        result[f"by_threshold_{role}"] = table.to_dict(orient="records")
    validation = pd.DataFrame(result["by_threshold_validation"])
    best = (
        int(np.nanargmax(validation["incremental"].to_numpy()))
        if validation["incremental"].notna().any()
        else len(thresholds) - 1
    )
    best_column = score_columns[best]
    result["best_threshold"] = thresholds[best]
    test = scores["role"] == "test"
    fit = fit_score(
        design.loc[test, trait],
        design.loc[test, [*covariates, *pc_frame.columns]],
        scores.loc[test, best_column],
        binary=binary,
    )
    prs_only = fit_score(
        design.loc[test, trait], design.loc[test, []], scores.loc[test, best_column], binary=binary
    )
    result["test"] = {
        "n": fit.n,
        "with_prs": round(fit.metric, 4),
        "covariates_and_pcs_only": round(fit.baseline, 4),
        "incremental": round(fit.incremental, 4),
        "prs_only": round(prs_only.metric, 4),
    }
    result["deciles_test"] = outcome_by_decile(
        design.loc[test, trait], scores.loc[test, best_column]
    ).to_dict(orient="records")
    return result


def _report(
    trait: str, metrics: dict[str, Any], pheno: Any, scores: pd.DataFrame, path: str
) -> None:
    from gwas_prs.reports.gwas import decile_figure, save_html, threshold_bar_figure

    metric = "AUC" if metrics["binary"] else "R²"
    validation = pd.DataFrame(metrics["by_threshold_validation"])
    deciles = pd.DataFrame(metrics["deciles_test"])
    t = metrics["test"]
    table = (
        f"<p>Best threshold (validation): p ≤ {metrics['best_threshold']:g}. Test set (n = {t['n']}): "
        f"{metric} with PRS {t['with_prs']}, covariates + PCs only {t['covariates_and_pcs_only']}, "
        f"incremental {t['incremental']}, PRS alone {t['prs_only']}.</p>"
    )
    figures = [
        threshold_bar_figure(
            validation,
            "incremental",
            f"{trait}: incremental {metric} over covariates + PCs (validation)",
        ),
        decile_figure(
            deciles,
            "prevalence" if metrics["binary"] else f"mean {trait}",
            f"{trait} by PRS decile (test)",
        ),
    ]
    save_html(figures, path, f"{trait} polygenic score", table)
