"""The ``qc`` stage: bronze → silver (QC-passed genotypes), ancestry, gold frequencies.

:class:`QcConfig` holds and validates the parameters (before any work);
:func:`run_qc` is the stage runner, the only function of the QC modules that
writes.

Order of operations
-------------------
1. **Pruned SNP set** (:mod:`gwas_prs.methods.ancestry.structure`): autosomal bi-allelic SNPs
   with MAF ≥ 0.05 and call rate ≥ ``--min-variant-call-rate`` over all
   samples, LD-pruned (``--prune-r2``, ``--prune-window-kb``); checkpointed.
2. **Sample filters**, in order, each on the samples left by the previous one
   (:mod:`gwas_prs.methods.qc.sample_qc`):
   call rate (all variants) → heterozygosity outliers (F on the pruned SNPs,
   ±``--het-sd`` SD) → sex check (only with chrX) → relatedness (KING on the
   pruned SNPs, maximal independent set keeping the better call rate).
3. **PCA** on the pruned SNPs and the samples that passed (:func:`~gwas_prs.methods.ancestry.structure.hwe_pca`),
   then the random-forest ancestry assignment when samples carry labels.
4. **Variant filters** on the samples that passed, in order call rate → MAF →
   HWE (:mod:`gwas_prs.methods.qc.variant_qc`; exact mid-p test, in controls with
   ``--hwe-controls-only``).
5. Silver MatrixTable, per-population frequencies of its variants
   (:mod:`gwas_prs.methods.qc.frequencies`), reports (:mod:`gwas_prs.reports.qc`).

Outputs
-------
``RUN/silver/genotypes.mt``
    QC-passed samples and variants. Column fields added: ``sample_qc``
    (struct ``call_rate``, ``het_f``), ``pcs`` (array<float64>),
    ``ancestry`` (str, assigned group, missing without labels). Row field
    ``variant_qc`` (struct ``call_rate``, ``AC``, ``AN``, ``AF``, ``maf``,
    ``p_hwe``). Global ``gwas_prs`` (stage, version, parameters JSON).
``RUN/silver/qc/``
    ``sample_qc.tsv`` (every input sample: metrics, ``removed_by``, ``pass``),
    ``variant_qc.ht`` (every input variant: metrics, per-filter flags,
    ``removed_by``), ``variant_qc.parquet`` (the same, partitioned by contig,
    with ``contig``/``position``/``ref``/``alt`` columns),
    ``variant_qc_summary.tsv``, ``filter_counts.tsv``,
    ``report.html``.
``RUN/silver/ancestry/``
    ``pruned_variants.tsv`` (the SNPs used for heterozygosity/KING/PCA),
    ``scores.tsv``, ``loadings.ht`` (with ``pca_af``), ``eigenvalues.tsv``,
    ``related_pairs.tsv`` (pairs with kinship > 0.02, with degree and
    whether the pair is above ``--kinship``), ``assignments.tsv``,
    ``ancestry_model.json``, ``report.html``.
``RUN/gold/frequencies.parquet``
    See :mod:`gwas_prs.methods.qc.frequencies`.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from gwas_prs import __version__
from gwas_prs.core import storage
from gwas_prs.core.errors import InputError
from gwas_prs.core.run_folder import (
    PCA_SCORES,
    InputFile,
    RunFolder,
    check_can_write,
    require_complete,
    stage_run,
)
from gwas_prs.core.stage_options import QC
from gwas_prs.engine import hail_context
from gwas_prs.engine.hail_context import HailConfig
from gwas_prs.engine.hail_errors import hail_errors_as_computation_errors
from gwas_prs.engine.switch import current_engine, stage_runner
from gwas_prs.formats.silver_bed import write_silver_bed

if TYPE_CHECKING:
    import hail as hl


logger = logging.getLogger(__name__)

#: MAF of the SNPs used for heterozygosity, KING and PCA.
PRUNE_MIN_MAF = 0.05
SAMPLE_FILTERS = ("call_rate", "heterozygosity", "sex_check", "relatedness")
ANCESTRY_LABEL_FIELDS = ("super_pop", "pop", "population", "ancestry")


@dataclass(frozen=True)
class QcConfig:
    """Parameters of the qc stage (see ``gwas-prs qc --help``); validated on creation.

    Raises
    ------
    InputError
        A threshold is out of range (the message names the option).
    """

    run_dir: str
    min_sample_call_rate: float = QC.default("min-sample-call-rate")
    het_sd: float = QC.default("het-sd")
    min_variant_call_rate: float = QC.default("min-variant-call-rate")
    min_maf: float = QC.default("min-maf")
    hwe_p: float = QC.default("hwe-p")
    min_info: float = QC.default("min-info")
    max_female_xf: float = QC.default("max-female-xf")
    min_male_xf: float = QC.default("min-male-xf")
    hwe_controls_only: bool = QC.default("hwe-controls-only")
    phenotypes: str | None = None
    trait: str | None = QC.default("trait")
    kinship: float = QC.default("kinship")
    max_removed_fraction: float = QC.default("max-removed-fraction")
    prune_r2: float = QC.default("prune-r2")
    prune_window_kb: int = QC.default("prune-window-kb")
    n_pcs: int = QC.default("n-pcs")
    ancestry_pcs: int = 6
    ancestry_min_probability: float = 0.75
    seed: int = QC.default("seed")
    overwrite: bool = False

    def __post_init__(self) -> None:
        validate_config(self)

    def parameters(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("run_dir")
        out.pop("overwrite")
        out["prune_min_maf"] = PRUNE_MIN_MAF
        out["hwe_test"] = "exact, two-sided, mid-p (plink2 --hwe P midp)"
        return out


def _check_range(
    value: float,
    option: str,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    bad = (
        not isinstance(value, int | float)
        or math.isnan(value)
        or (value <= low if low_open else value < low)
        or (value >= high if high_open else value > high)
    )
    if bad:
        lo = f"({low}" if low_open else f"[{low}"
        hi = f"{high})" if high_open else f"{high}]"
        raise InputError(f"{option} {value}: must be in {lo}, {hi}")


def validate_config(config: QcConfig) -> None:
    """Check every threshold; raise :class:`InputError` naming the option."""
    _check_range(config.min_sample_call_rate, "--min-sample-call-rate", 0.0, 1.0)
    _check_range(config.min_variant_call_rate, "--min-variant-call-rate", 0.0, 1.0)
    _check_range(config.min_maf, "--min-maf", 0.0, 0.5)
    _check_range(config.hwe_p, "--hwe-p", 0.0, 1.0)
    _check_range(config.min_info, "--min-info", 0.0, 1.0)
    _check_range(config.max_female_xf, "--max-female-xf", -1.0, 1.0)
    _check_range(config.min_male_xf, "--min-male-xf", -1.0, 1.0)
    if config.max_female_xf > config.min_male_xf:
        raise InputError(
            f"--max-female-xf {config.max_female_xf} is above --min-male-xf "
            f"{config.min_male_xf}; the female bound must not exceed the male one"
        )
    _check_range(config.max_removed_fraction, "--max-removed-fraction", 0.0, 1.0)
    _check_range(config.kinship, "--kinship", 0.0, 0.5, low_open=True)
    _check_range(config.prune_r2, "--prune-r2", 0.0, 1.0, low_open=True)
    _check_range(config.ancestry_min_probability, "--ancestry-min-probability", 0.0, 1.0)
    if not config.het_sd > 0 or math.isnan(config.het_sd):
        raise InputError(f"--het-sd {config.het_sd}: must be > 0 (number of standard deviations)")
    if config.prune_window_kb < 1:
        raise InputError(f"--prune-window-kb {config.prune_window_kb}: must be ≥ 1")
    if config.n_pcs < 1:
        raise InputError(f"--n-pcs {config.n_pcs}: must be ≥ 1")
    if config.ancestry_pcs < 1:
        raise InputError(f"--ancestry-pcs {config.ancestry_pcs}: must be ≥ 1")
    if config.hwe_controls_only and not (config.phenotypes and config.trait):
        raise InputError(
            "--hwe-controls-only needs --phenotypes FILE and --trait NAME (a binary trait)"
        )
    if not config.hwe_controls_only and (config.phenotypes or config.trait):
        raise InputError(
            "--phenotypes/--trait are used only with --hwe-controls-only; add it or drop them"
        )


@dataclass
class QcResult:
    """What :func:`run_qc` did."""

    run_dir: str
    outputs: dict[str, str]
    counts: dict[str, Any]
    reports: dict[str, str]
    wall_time_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    log_path: str | None = None


def _filter_row(unit: str, name: str, reason: str, before: int, removed: int) -> dict[str, Any]:
    return {
        "unit": unit,
        "filter": name,
        "reason": reason,
        "before": before,
        "removed": removed,
        "after": before - removed,
    }


#: Heterozygosity, KING and PCA on fewer LD-pruned SNPs than this get a warning: on a
#: few short regions, kinship estimates are noise and unrelated pairs look related.
MIN_INDEPENDENT_SNPS = 3_000


def few_independent_snps_warning(n_pruned: int) -> str | None:
    """The warning when ``n_pruned`` < :data:`MIN_INDEPENDENT_SNPS`, else None."""
    if n_pruned >= MIN_INDEPENDENT_SNPS:
        return None
    return (
        f"heterozygosity, KING relatedness and PCA rest on only {n_pruned:,} LD-pruned SNPs "
        f"(fewer than {MIN_INDEPENDENT_SNPS:,}): kinship and F estimates are noisy and "
        "unrelated samples can look related; give more of the genome (all autosomes), or "
        "check the relatedness removals (--kinship, --max-removed-fraction)"
    )


def check_removed_fraction(
    name: str, removed: int, entering: int, max_fraction: float, n_pruned: int
) -> None:
    """Stop (:class:`InputError`) when the sample filter ``name`` would remove more than
    ``max_fraction`` of the ``entering`` samples."""
    if entering == 0 or removed / entering <= max_fraction:
        return
    share = removed / entering
    basis = (
        f"; {'KING' if name == 'relatedness' else 'F'} rests on {n_pruned:,} LD-pruned SNPs"
        + (" (too few: kinship estimates are noise)" if n_pruned < MIN_INDEPENDENT_SNPS else "")
        if name in ("relatedness", "heterozygosity")
        else ""
    )
    option = {
        "call_rate": "--min-sample-call-rate",
        "heterozygosity": "--het-sd",
        "sex_check": "the reported sex column",
        "relatedness": "--kinship",
    }.get(name, "its threshold")
    raise InputError(
        f"qc: the {name} filter would remove {removed:,} of {entering:,} samples "
        f"({share:.1%}), more than --max-removed-fraction {max_fraction:g}{basis}. Check the "
        f"data or {option}, or accept it with --max-removed-fraction {math.ceil(share * 100) / 100:g}"
    )


def many_variants_removed_warning(
    name: str, removed: int, entering: int, max_fraction: float
) -> str | None:
    """The warning when the variant filter ``name`` removed more than ``max_fraction``
    of the ``entering`` variants (None otherwise), for the filters whose large
    removals point at a problem: call rate and HWE (the MAF filter is left out: a
    sequenced panel legitimately loses most of its variants to it). Variants are not a
    stop; the HWE filter gets advice, since in a cohort of several ancestries it fails
    common variants from population structure (the Wahlund effect), not from
    genotyping error."""
    if name == "maf" or entering == 0 or removed / entering <= max_fraction:
        return None
    text = (
        f"the {name} variant filter removed {removed:,} of {entering:,} variants "
        f"({removed / entering:.1%}, more than --max-removed-fraction {max_fraction:g})"
    )
    if name == "hwe":
        text += (
            "; in a cohort of several ancestries HWE fails from population structure, not "
            "genotyping error: use a much lower --hwe-p (e.g. 1e-50), or run qc on each "
            "ancestry group's samples"
        )
    return text


def _select_samples_expr(mt: hl.MatrixTable, samples: list[str]) -> hl.expr.BooleanExpression:
    import hail as hl

    return hl.literal(set(samples), hl.tset(hl.tstr)).contains(mt.s)


@stage_runner("qc")
def run_qc(config: QcConfig, hail: HailConfig | None = None) -> QcResult:
    """Run sample QC, ancestry PCA, variant QC and frequencies (see the module docstring).

    Raises
    ------
    StageNotCompleteError, InputError, OutputExistsError
        Before Hail starts: ingest incomplete, bad phenotype file, outputs exist.
    ComputationError
        Hail failed.
    """
    started = time.monotonic()
    run = RunFolder(config.run_dir)
    ingest_record = require_complete(run, "ingest", needed_by="qc")
    contigs = set(ingest_record.counts.get("variants_per_contig", {}))
    has_x = bool(contigs & {"X", "chrX"}) or not contigs
    trait = None
    inputs: list[InputFile] = []
    if config.hwe_controls_only:
        from gwas_prs.formats.phenotypes import read_binary_trait

        trait = read_binary_trait(str(config.phenotypes), str(config.trait))
        inputs.append(
            InputFile(trait.path, storage.file_size(trait.path), storage.sha256_file(trait.path))
        )
    outputs = [
        run.silver_mt, run.silver_qc, run.silver_ancestry, run.gold_frequencies, run.silver_bed
    ]  # fmt: skip
    check_can_write(run, "qc", outputs, overwrite=config.overwrite)
    parameters = config.parameters()
    hail_config = hail or HailConfig(run_dir=run.root, command="qc", seed=config.seed)
    scratch = storage.join(run.tmp, f"qc-{uuid.uuid4().hex[:8]}")
    notes: list[str] = []
    reports: dict[str, str] = {}
    try:
        with stage_run(
            run,
            "qc",
            parameters=parameters,
            inputs=inputs,
            final_outputs=outputs,
            overwrite=config.overwrite,
            engine=current_engine(),
        ) as stage:
            log_path = hail_context.start_hail(hail_config)
            with hail_errors_as_computation_errors("quality control", log_path):
                _run(config, run, stage, scratch, trait, notes, reports, has_x=has_x)
            stage.record.parameters["notes"] = notes
    finally:
        storage.remove(scratch)
    return QcResult(
        run_dir=run.root,
        outputs={name: run.resolve(path) for name, path in stage.record.outputs.items()},
        counts=dict(stage.counts),
        reports=reports,
        wall_time_s=round(time.monotonic() - started, 3),
        notes=notes,
        log_path=log_path,
    )


def _run(
    config: QcConfig,
    run: RunFolder,
    stage: Any,
    scratch: str,
    trait: Any,
    notes: list[str],
    reports: dict[str, str],
    *,
    has_x: bool = True,
) -> None:
    import hail as hl

    from gwas_prs.engine.switch import numpy_engine
    from gwas_prs.methods.ancestry import structure as ancestry
    from gwas_prs.methods.qc import frequencies, sample_qc, variant_qc
    from gwas_prs.reports import qc as qc_reports

    timings: dict[str, float] = {}
    t = time.monotonic()
    bronze = hl.read_matrix_table(run.bronze_mt)
    if "GT" not in bronze.entry:
        raise InputError(
            f"{run.bronze_mt}: no GT entry field; re-run 'gwas-prs ingest' on VCFs with genotypes"
        )
    n_variants, n_samples = bronze.count()
    meta = bronze.cols().to_pandas()
    meta["s"] = meta["s"].astype(str)
    meta = meta.set_index("s")
    meta_fields = [c for c in meta.columns if c != "gwas_prs"]
    logger.info("qc: %d samples, %d variants in the bronze MatrixTable", n_samples, n_variants)
    if trait is not None:
        known = set(meta.index)
        controls = sorted(s for s, v in trait.is_case.items() if s in known and v is False)
        if not controls:
            raise InputError(
                f"{trait.path}: no control of trait '{trait.trait}' is among the genotyped samples"
            )
        notes.append(f"HWE tested in {len(controls)} controls of '{trait.trait}'")
    if config.min_info > 0 and variant_qc.info_source(bronze) is None:
        raise InputError(
            f"--min-info {config.min_info}: {run.bronze_mt} has neither dosages (DS) nor an "
            "INFO/R2 or INFO/INFO field; imputation quality exists only for imputed input — "
            "drop --min-info"
        )

    # 1. pruned SNP set ---------------------------------------------------
    storage.makedirs(scratch)
    candidates = ancestry.pruning_candidates(
        bronze, min_maf=PRUNE_MIN_MAF, min_call_rate=config.min_variant_call_rate
    )
    pruned, n_candidates = ancestry.ld_pruned(
        candidates,
        r2=config.prune_r2,
        window_bp=config.prune_window_kb * 1000,
        scratch=scratch,
        source=ancestry.genotypes_only(bronze),
    )
    pruned = pruned.checkpoint(storage.join(scratch, "pruned.mt"))
    n_pruned = pruned.count_rows()
    timings["prune_s"] = time.monotonic() - t
    logger.info("qc: %d common SNPs, %d after LD pruning", n_candidates, n_pruned)
    few = few_independent_snps_warning(n_pruned)
    if few:
        logger.warning("qc: %s", few)
        notes.append(few)
    if n_pruned <= config.n_pcs:
        raise InputError(
            f"{run.bronze_mt}: only {n_pruned} LD-pruned common SNPs; too few for {config.n_pcs} PCs "
            "(lower --n-pcs or give more variants)"
        )

    # 2. sample filters -----------------------------------------------------
    t = time.monotonic()
    samples = sample_qc.sample_metrics(bronze, pruned)
    samples.index = samples.index.astype(str)
    samples = meta[meta_fields].join(samples, how="left")
    removed_by = pd.Series(pd.NA, index=samples.index, dtype="string")
    filter_rows: list[dict[str, Any]] = []

    def apply(name: str, failing: pd.Series, reason: str) -> None:
        active = removed_by.isna()
        hits = failing.reindex(samples.index).fillna(False).astype(bool) & active
        check_removed_fraction(
            name, int(hits.sum()), int(active.sum()), config.max_removed_fraction, n_pruned
        )
        removed_by[hits] = name
        filter_rows.append(_filter_row("samples", name, reason, int(active.sum()), int(hits.sum())))

    apply(
        "call_rate",
        samples["call_rate"] < config.min_sample_call_rate - variant_qc.EPSILON,
        f"call rate < {config.min_sample_call_rate}",
    )
    het_outlier, het_mean, het_sd = sample_qc.heterozygosity_outliers(
        samples["het_f"], removed_by.isna(), config.het_sd
    )
    het_bounds = (het_mean - config.het_sd * het_sd, het_mean + config.het_sd * het_sd)
    apply("heterozygosity", het_outlier, f"|F - {het_mean:.4f}| > {config.het_sd} × {het_sd:.4f}")
    samples["het_outlier"] = het_outlier
    # the ingest manifest lists the contigs: no chrX means no pass over the data
    sex = (
        sample_qc.sex_check(
            bronze.filter_cols(
                _select_samples_expr(bronze, list(samples.index[removed_by.isna()]))
            ),
            max_female_xf=config.max_female_xf,
            min_male_xf=config.min_male_xf,
        )
        if has_x
        else None
    )
    if sex is None:
        notes.append("sex check skipped: no (or too few) chrX SNPs in the data")
        filter_rows.append(
            _filter_row(
                "samples", "sex_check", "skipped: no chrX SNPs", int(removed_by.isna().sum()), 0
            )
        )
    else:
        samples = samples.join(sex, how="left")
        apply(
            "sex_check", sex["sex_mismatch"], "imputed sex (chrX F) differs from the reported sex"
        )
    king_samples = list(samples.index[removed_by.isna()])
    t_king = time.monotonic()
    pairs = sample_qc.king_pairs(pruned.filter_cols(_select_samples_expr(pruned, king_samples)))
    timings["king_s"] = time.monotonic() - t_king
    pairs["above_threshold"] = pairs["kinship"] > config.kinship
    to_remove = sample_qc.related_samples_to_remove(pairs, samples["call_rate"], config.kinship)
    pairs["removed"] = [
        (i if i in to_remove else (j if j in to_remove else "")) if above else ""
        for i, j, above in zip(pairs["i"], pairs["j"], pairs["above_threshold"], strict=True)
    ]
    apply(
        "relatedness",
        pd.Series(samples.index.isin(to_remove), index=samples.index),
        f"KING kinship > {config.kinship} with a kept sample",
    )
    samples["removed_by"] = removed_by
    samples["pass"] = removed_by.isna()
    passed = list(samples.index[samples["pass"]])
    timings["sample_qc_s"] = time.monotonic() - t
    logger.info("qc: %d of %d samples pass sample QC", len(passed), n_samples)
    if len(passed) <= config.n_pcs:
        raise InputError(
            f"only {len(passed)} samples pass sample QC; too few for {config.n_pcs} PCs (lower --n-pcs)"
        )

    # 3. PCA and ancestry ---------------------------------------------------
    t = time.monotonic()
    pca_mt = pruned.filter_cols(_select_samples_expr(pruned, passed))
    pca = ancestry.hwe_pca(pca_mt, config.n_pcs)
    tmp_ancestry = stage.temporary_path(run.silver_ancestry)
    storage.makedirs(tmp_ancestry)
    loadings_path = storage.join(tmp_ancestry, "loadings.ht")
    pca.loadings.write(loadings_path, overwrite=True)
    scores = ancestry.scores_frame(pca.scores, config.n_pcs)
    variance = pca.variance_explained
    timings["pca_s"] = time.monotonic() - t
    label_field = next(
        (f for f in ANCESTRY_LABEL_FIELDS if f in meta_fields and meta[f].notna().any()), None
    )
    assignment = None
    if label_field is not None:
        assignment = ancestry.assign_ancestry(
            scores,
            samples[label_field],
            label_field=label_field,
            n_pcs=config.ancestry_pcs,
            min_probability=config.ancestry_min_probability,
            seed=config.seed,
        )
    if assignment is None:
        notes.append("ancestry assignment skipped: the samples carry no population labels")

    # 4. variant QC ----------------------------------------------------------
    t = time.monotonic()
    kept_mt = bronze.filter_cols(_select_samples_expr(bronze, passed))
    hwe_samples = _select_samples_expr(kept_mt, controls) if trait is not None else None
    thresholds = variant_qc.VariantThresholds(
        min_call_rate=config.min_variant_call_rate,
        min_maf=config.min_maf,
        hwe_p=config.hwe_p,
        min_info=config.min_info,
    )
    info_source = variant_qc.info_source(kept_mt)
    stage.counts["imputation_quality"] = info_source
    tmp_qc = stage.temporary_path(run.silver_qc)
    storage.makedirs(tmp_qc)
    vqc_path = storage.join(tmp_qc, "variant_qc.ht")
    variant_qc.variant_qc_table(kept_mt, thresholds, hwe_samples).write(vqc_path, overwrite=True)
    vqc = hl.read_table(vqc_path)
    # the same table as Parquet by contig, for SQL without a JVM (gwas-prs query)
    from gwas_prs.engine.parquet import write_variant_parquet

    write_variant_parquet(vqc, storage.join(tmp_qc, "variant_qc.parquet"))
    vsummary = variant_qc.summarise_variant_qc(vqc)
    before = vsummary["n_variants"]
    hwe_where = f" (controls of {trait.trait})" if trait is not None else ""
    for name, template in variant_qc.VARIANT_FILTERS:
        if name == "info" and config.min_info <= 0:
            continue  # no imputation-quality filter asked for
        reason = template.format(
            min_info=config.min_info,
            info_source=variant_qc.INFO_SOURCES.get(info_source or "", "imputation quality"),
            min_variant_call_rate=config.min_variant_call_rate,
            min_maf=config.min_maf,
            hwe_p=config.hwe_p,
            hwe_where=hwe_where,
        )
        removed = vsummary["removed"][name]
        filter_rows.append(_filter_row("variants", name, reason, before, removed))
        many = many_variants_removed_warning(name, removed, before, config.max_removed_fraction)
        if many:
            logger.warning("qc: %s", many)
            notes.append(many)
        before -= removed
    timings["variant_qc_s"] = time.monotonic() - t

    # 5. silver MatrixTable -------------------------------------------------
    t = time.monotonic()
    col_info = samples.loc[passed, ["call_rate", "het_f"]].copy()
    if assignment is not None:
        col_info["ancestry"] = assignment.assignments.loc[passed, "assigned"].astype("string")
    col_ht = hl.Table.from_pandas(col_info.reset_index(), key="s")
    scores_ht = pca.scores
    silver = kept_mt.annotate_cols(
        sample_qc=hl.struct(call_rate=col_ht[kept_mt.s].call_rate, het_f=col_ht[kept_mt.s].het_f),
        pcs=scores_ht[kept_mt.s].scores,
        # without population labels there is no assignment (a column of a missing type
        # cannot go through from_pandas)
        ancestry=col_ht[kept_mt.s].ancestry if assignment is not None else hl.missing(hl.tstr),
    )
    row = vqc[silver.row_key]
    silver = silver.annotate_rows(
        _pass=row["pass"],
        variant_qc=hl.struct(
            call_rate=row.call_rate, AC=row.AC, AN=row.AN, AF=row.AF, maf=row.maf, p_hwe=row.p_hwe
        ),
    )
    silver = silver.filter_rows(silver._pass).drop("_pass")
    silver = silver.annotate_globals(
        gwas_prs=hl.struct(
            stage="qc",
            version=__version__,
            parameters=json.dumps(config.parameters(), sort_keys=True),
        )
    )
    tmp_silver = stage.temporary_path(run.silver_mt)
    storage.makedirs(storage.join(run.root, "silver"))
    silver.write(tmp_silver, overwrite=True)
    silver = hl.read_matrix_table(tmp_silver)
    n_silver_variants, n_silver_samples = silver.count()
    timings["silver_write_s"] = time.monotonic() - t

    # 6. frequencies -----------------------------------------------------------
    t = time.monotonic()
    groupings = [g for g in frequencies.DEFAULT_GROUPINGS if g in meta_fields]
    if not groupings:
        notes.append(
            "frequencies by population skipped: the samples carry no population labels "
            f"({', '.join(frequencies.DEFAULT_GROUPINGS)}); gold/frequencies.parquet has the "
            "whole cohort only (pass --samples to 'gwas-prs ingest' for per-population parts)"
        )
    tmp_bed = None
    if storage.exists(run.silver_bed):  # from an earlier qc: never left beside a new silver
        storage.remove(run.silver_bed)
    if numpy_engine() and not run.is_remote():
        # the silver genotypes as a PLINK .bed, for the numpy kernels of later stages
        # (association tests, clumping, scoring) and the frequencies below
        tmp_bed = stage.temporary_path(run.silver_bed)
        storage.makedirs(tmp_bed)
        write_silver_bed(silver, tmp_bed + "/genotypes")
        timings["silver_bed_s"] = time.monotonic() - t
    freq = frequencies.cohort_frequencies(
        silver,
        groupings,
        n_silver_samples,
        bed=None if tmp_bed is None else tmp_bed + "/genotypes",
    )
    tmp_freq = stage.temporary_path(run.gold_frequencies)
    storage.makedirs(storage.join(run.root, "gold"))
    storage.write_parquet(tmp_freq, freq, partition_cols=["contig"])
    timings["frequencies_s"] = time.monotonic() - t

    # 7. tables and reports -------------------------------------------------------
    t = time.monotonic()
    filter_counts = pd.DataFrame(filter_rows)
    sample_out = samples.join(scores, how="left")
    if assignment is not None:
        sample_out = sample_out.join(
            assignment.assignments[["assigned", "probability"]].rename(
                columns={"assigned": "ancestry", "probability": "ancestry_probability"}
            ),
            how="left",
        )
    storage.write_table(
        storage.join(tmp_qc, "sample_qc.tsv"),
        sample_out.reset_index(),
        sep="\t",
        index=False,
        na_rep="NA",
    )
    storage.write_table(
        storage.join(tmp_qc, "filter_counts.tsv"), filter_counts, sep="\t", index=False
    )
    vsum_frame = pd.DataFrame(
        [
            {
                "filter": name,
                "removed_in_order": vsummary["removed"][name],
                "failing_alone": vsummary["failing_alone"][name],
            }
            for name, _ in variant_qc.VARIANT_FILTERS
        ]
        + [{"filter": "kept", "removed_in_order": vsummary["kept"], "failing_alone": None}]
    )
    vsum_frame["failing_alone"] = vsum_frame["failing_alone"].astype("Int64")
    storage.write_table(
        storage.join(tmp_qc, "variant_qc_summary.tsv"),
        vsum_frame,
        sep="\t",
        index=False,
        na_rep="NA",
    )
    pruned_frame = (
        pruned.rows()
        .select()
        .to_pandas()
        .assign(
            contig=lambda f: [loc.contig for loc in f["locus"]],
            position=lambda f: [loc.position for loc in f["locus"]],
            ref=lambda f: [a[0] for a in f["alleles"]],
            alt=lambda f: [a[1] for a in f["alleles"]],
        )[["contig", "position", "ref", "alt"]]
    )
    storage.write_table(
        storage.join(tmp_ancestry, "pruned_variants.tsv"), pruned_frame, sep="\t", index=False
    )
    storage.write_table(
        storage.join(tmp_ancestry, PCA_SCORES), scores.reset_index(), sep="\t", index=False
    )
    eigen_frame = pd.DataFrame(
        {
            "pc": [f"PC{i + 1}" for i in range(len(pca.eigenvalues))],
            "eigenvalue": pca.eigenvalues,
            "variance_explained": variance,
        }
    )
    storage.write_table(
        storage.join(tmp_ancestry, "eigenvalues.tsv"), eigen_frame, sep="\t", index=False
    )
    storage.write_table(
        storage.join(tmp_ancestry, "related_pairs.tsv"), pairs, sep="\t", index=False
    )
    model_info: dict[str, Any] = {
        "pca_variants": pca.n_variants,
        "pca_samples": len(passed),
        "total_variance": pca.total_variance,
    }
    if assignment is not None:
        storage.write_table(
            storage.join(tmp_ancestry, "assignments.tsv"),
            assignment.assignments.reset_index(),
            sep="\t",
            index=False,
            na_rep="NA",
        )
        model_info.update(
            {
                "method": "random forest (scikit-learn, 200 trees) on PCs; stratified k-fold cross-validation",
                "label_field": assignment.label_field,
                "n_pcs": assignment.n_pcs,
                "cv_folds": assignment.cv_folds,
                "cv_accuracy": assignment.cv_accuracy,
                "cv_accuracy_sd": assignment.cv_accuracy_sd,
                "min_probability": config.ancestry_min_probability,
                "classes": assignment.classes,
                "confusion": assignment.confusion,
            }
        )
    storage.write_text_atomic(
        storage.join(tmp_ancestry, "ancestry_model.json"), json.dumps(model_info, indent=2) + "\n"
    )

    report_thresholds = {
        "min_sample_call_rate": config.min_sample_call_rate,
        "min_variant_call_rate": config.min_variant_call_rate,
        "min_maf": config.min_maf,
        "hwe_p": config.hwe_p,
    }
    variant_hists = {
        "call_rate": vsummary["hist_call_rate"],
        "maf": vsummary["hist_maf"],
        "log10_p_hwe": vsummary["hist_log10_p_hwe"],
    }
    qc_layout = qc_reports.qc_report(
        samples=samples,
        variant_hists=variant_hists,
        filter_counts=filter_counts,
        thresholds=report_thresholds,
        het_bounds=het_bounds,
        notes=[
            *notes,
            f"HWE: {parameters_hwe_text(trait)}",
            f"pruned SNPs for heterozygosity/KING/PCA: {n_pruned}",
        ],
    )
    qc_reports.save_report(qc_layout, storage.join(tmp_qc, "report.html"), "gwas-prs QC report")
    colour_field = "pop" if "pop" in meta_fields else label_field
    groups = samples[colour_field] if colour_field else pd.Series("unknown", index=samples.index)
    summary_lines = [
        f"{len(passed)} samples, {pca.n_variants} LD-pruned SNPs (r² ≤ {config.prune_r2}, {config.prune_window_kb} kb)",
        "variance explained: " + ", ".join(f"PC{i + 1} {v:.2%}" for i, v in enumerate(variance)),
    ]
    if assignment is not None:
        summary_lines.append(
            f"random-forest assignment of '{assignment.label_field}' from {assignment.n_pcs} PCs: "
            f"{assignment.cv_folds}-fold CV accuracy {assignment.cv_accuracy:.3f} ± {assignment.cv_accuracy_sd:.3f}"
        )
    anc_layout = qc_reports.ancestry_report(
        scores=scores,
        groups=groups,
        variance_explained=variance,
        assigned=assignment.assignments["assigned"] if assignment else None,
        lines=summary_lines,
    )
    qc_reports.save_report(
        anc_layout, storage.join(tmp_ancestry, "report.html"), "gwas-prs ancestry report"
    )
    timings["reports_s"] = time.monotonic() - t

    # 8. publish and count ------------------------------------------------------
    stage.publish(tmp_qc, run.silver_qc, "silver_qc")
    stage.publish(tmp_ancestry, run.silver_ancestry, "silver_ancestry")
    stage.publish(tmp_freq, run.gold_frequencies, "gold_frequencies")
    stage.publish(tmp_silver, run.silver_mt, "silver_mt")
    if tmp_bed is not None:
        stage.publish(tmp_bed, run.silver_bed, "silver_bed")
    reports["qc"] = storage.join(run.silver_qc, "report.html")
    reports["ancestry"] = storage.join(run.silver_ancestry, "report.html")
    sample_removed = {r["filter"]: r["removed"] for r in filter_rows if r["unit"] == "samples"}
    stage.counts.update(
        {
            "samples_in": n_samples,
            "variants_in": n_variants,
            "filters": filter_rows,
            "samples_removed": sample_removed,
            "variants_removed": dict(vsummary["removed"]),
            "variants_failing_each_filter_alone": dict(vsummary["failing_alone"]),
            "samples_out": n_silver_samples,
            "variants_out": n_silver_variants,
            "pruning_candidates": n_candidates,
            "pruned_snps": n_pruned,
            "pca_variants": pca.n_variants,
            "heterozygosity_f_mean": het_mean,
            "heterozygosity_f_sd": het_sd,
            "kinship_pairs_above_0.02": len(pairs),
            "related_pairs": int(pairs["above_threshold"].sum()),
            "pca_eigenvalues": pca.eigenvalues,
            "pca_variance_explained": variance,
            "ancestry_label_field": assignment.label_field if assignment else None,
            "ancestry_cv_accuracy": assignment.cv_accuracy if assignment else None,
            "frequency_rows": len(freq),
            **{k: round(v, 3) for k, v in timings.items()},
        }
    )


def parameters_hwe_text(trait: Any) -> str:
    where = (
        f"controls of '{trait.trait}'" if trait is not None else "all samples that passed sample QC"
    )
    return f"exact test, two-sided, mid-p (as plink2 --hwe P midp), in {where}"
