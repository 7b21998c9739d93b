"""``gwas-prs predict``: score new people with a trained model folder.

:func:`run_predict`:

1. loads and cross-checks the model folder (:func:`gwas_prs.methods.model.artifacts.load_model_bundle`)
   and reads the covariates the models need from ``--samples`` (one row per
   sample; a missing column is named in the error) — before Hail starts;
2. validates the VCFs with the checks of ``ingest`` (:mod:`gwas_prs.formats.vcf_validation`)
   and imports them with Hail (multi-allelics split, symbolic alleles dropped)
   into a temporary MatrixTable in a hidden folder next to ``--out``, removed at the end;
3. harmonises the new variants to the saved PRS weights and PCA loadings
   (:func:`gwas_prs.formats.pgs_catalog.harmonise`: same alleles, swapped REF/ALT,
   strand flips; both sides are VCF alleles on the forward strand of the same
   reference, so palindromic SNPs are kept unflipped) and stops with
   :class:`~gwas_prs.core.errors.InputError` when fewer than ``--min-overlap`` of
   the PRS variants are found;
4. scores the PRS at every threshold the model uses (missing genotypes count
   ``2 × effect_af`` of the training cohort, as in the prs stage) and projects
   the samples onto the saved PCs with :func:`hail.experimental.pc_project`
   (HWE-normalised with the saved ``pca_af``; a variant absent from the VCF
   contributes 0, the normalisation keeps the full variant count);
5. builds the features with the saved standardisation and writes, per sample:
   ``sample_id``, ``probability`` (the model train chose: see its
   ``metrics.json``'s ``chosen``), ``p_MODEL`` for every model train fitted (the
   candidates and the logistic baselines), ``prs`` (raw score at
   the best threshold), ``prs_z`` (standardised as in training),
   ``prs_percentile`` (share of the ``train`` samples with a score ≤ this
   one, in %), ``ancestry`` and ``ancestry_probability`` (QC's random forest,
   refitted on the saved reference), ``PC1`` … — TSV (CSV when ``--out`` ends
   in ``.csv``), written atomically.

On samples of the training run's test part the probabilities equal those in
``test_predictions.tsv`` (to ~1e-12; the PC projection reproduces the PCA scores).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gwas_prs.core import storage
from gwas_prs.core.errors import InputError, OutputExistsError
from gwas_prs.engine.hail_context import HailConfig, start_hail, usable_cores
from gwas_prs.engine.hail_errors import hail_errors_as_computation_errors
from gwas_prs.methods.model.artifacts import ModelBundle, assign_groups, load_model_bundle

if TYPE_CHECKING:
    import hail as hl


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictConfig:
    """Parameters of ``gwas-prs predict``."""

    model_dir: str
    vcfs: tuple[str, ...]
    out: str
    samples_file: str | None = None
    min_overlap: float = 0.5
    overwrite: bool = False

    def validate(self) -> None:
        if not self.vcfs:
            raise InputError("give the genotypes of the new samples with --vcf")
        if not 0 < self.min_overlap <= 1:
            raise InputError(f"--min-overlap {self.min_overlap}: must be in (0, 1]")
        if storage.is_remote(self.out):
            if self.out.endswith("/") or storage.is_dir(self.out):
                raise InputError(f"--out {self.out}: give the path of a file, not a folder")
        else:
            parent = storage.parent(self.out)
            if not os.path.isdir(parent):
                raise InputError(f"--out {self.out}: folder {parent} does not exist")
        if storage.exists(self.out) and not self.overwrite:
            raise OutputExistsError(f"{self.out} exists; pass --overwrite to replace it")
        if self.samples_file and not storage.exists(self.samples_file):
            raise InputError(f"{self.samples_file}: file not found (--samples)")


@dataclass
class PredictResult:
    out: str
    predictions: pd.DataFrame
    prs_match: dict[str, Any]
    pca_match: dict[str, Any]
    wall_time_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def read_covariates(path: str | None, needed: list[str]) -> pd.DataFrame | None:
    """The ``needed`` covariates from ``path`` (index: sample ID), or None when none are needed."""
    from gwas_prs.formats.phenotypes import read_phenotypes

    if not needed:
        return None
    if path is None:
        raise InputError(
            f"the model needs covariates {', '.join(needed)}: give them with --samples FILE "
            "(TSV/CSV with a sample-ID column)"
        )
    try:
        table = read_phenotypes(path, (), tuple(needed))
    except InputError as exc:
        message = str(exc).replace("(--covariates)", "(needed by the model; --samples)")
        raise InputError(message) from None
    return table.frame[needed]


def _harmonise(
    bundle_frame: pd.DataFrame,
    contig: str,
    effect_is_alt: np.ndarray,
    variants: pd.DataFrame,
    *,
    min_overlap: float,
    source: str,
) -> tuple[pd.DataFrame, Any]:
    """Map saved rows onto the new variants; ``row`` in the result indexes ``bundle_frame``."""
    from gwas_prs.formats.pgs_catalog import harmonise

    weights = pd.DataFrame(
        {
            "chr_name": bundle_frame[contig].astype(str),
            "chr_position": bundle_frame["position"].astype("int64"),
            "effect_allele": np.where(effect_is_alt, bundle_frame["alt"], bundle_frame["ref"]),
            "other_allele": np.where(effect_is_alt, bundle_frame["ref"], bundle_frame["alt"]),
            "effect_weight": np.arange(len(bundle_frame), dtype="float64"),  # row number
        }
    )
    result = harmonise(
        weights, variants, allow_palindromic=True, min_overlap=min_overlap, source=source
    )
    frame = result.frame.assign(row=result.frame["effect_weight"].astype("int64"))
    return frame, result


def run_predict(config: PredictConfig, hail: HailConfig | None = None) -> PredictResult:
    """Score the samples of ``config.vcfs`` (see the module docstring)."""
    from gwas_prs.core.reference import reference_contigs
    from gwas_prs.formats.vcf_validation import validate_vcfs
    from gwas_prs.stages.ingest import expand_vcf_paths

    started = time.monotonic()
    config.validate()
    bundle = load_model_bundle(config.model_dir)
    covariates = read_covariates(config.samples_file, bundle.covariates)
    reference = reference_contigs(bundle.schema.get("reference_genome", "GRCh37"))
    paths = expand_vcf_paths(config.vcfs)
    out_dir = storage.parent(config.out)
    scratch = storage.join(out_dir, f".gwas-prs-predict-{uuid.uuid4().hex[:8]}")
    notes: list[str] = []
    try:
        samples, scans = validate_vcfs(
            paths, reference, convert_dir=storage.join(scratch, "bgzf"), workers=usable_cores()
        )
        if covariates is not None:
            absent = [s for s in samples if s not in covariates.index]
            if absent:
                raise InputError(
                    f"{config.samples_file}: no covariates for {len(absent)} of the {len(samples)} "
                    f"VCF samples (e.g. '{absent[0]}'); add a row per sample"
                )
        log = start_hail(
            hail or HailConfig(run_dir=out_dir, command="predict", reference_genome=reference.name)
        )
        with hail_errors_as_computation_errors("scoring the new samples", log):
            raw, pcs, prs_match, pca_match = _score(
                bundle, [s.converted_to or s.path for s in scans], reference, scratch, config
            )
    finally:
        storage.remove(scratch)
    predictions = _predictions(bundle, raw, pcs, covariates)
    text = predictions.to_csv(sep="," if config.out.lower().endswith(".csv") else "\t", index=False)
    storage.write_text_atomic(config.out, text)
    return PredictResult(
        out=config.out,
        predictions=predictions,
        prs_match=prs_match,
        pca_match=pca_match,
        wall_time_s=round(time.monotonic() - started, 3),
        notes=notes,
    )


def _score(
    bundle: ModelBundle, paths: list[str], reference: Any, scratch: str, config: PredictConfig
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any], dict[str, Any]]:
    """Raw PRS per threshold and projected PCs of the new samples (Hail)."""
    import hail as hl

    from gwas_prs.methods.dosage import alt_dosage_expr
    from gwas_prs.stages.ingest import import_vcfs, vcf_genotypes

    mt_path = storage.join(scratch, "genotypes.mt")
    imported = vcf_genotypes(import_vcfs(paths, reference))  # GT, and DS for imputed VCFs
    imported.select_entries(*[f for f in ("GT", "DS") if f in imported.entry]).write(mt_path)
    mt = hl.read_matrix_table(mt_path).select_rows().select_cols()
    rows = mt.rows().to_pandas()
    logger.info("predict: imported %d variants of %d samples", len(rows), mt.count_cols())
    variants = pd.DataFrame(
        {
            "contig": rows["locus"].map(lambda locus: str(locus.contig)),
            "position": rows["locus"].map(lambda locus: int(locus.position)),
            "ref": rows["alleles"].map(lambda a: a[0]),
            "alt": rows["alleles"].map(lambda a: a[1]),
        }
    )
    weights = bundle.prs_weights
    thresholds = [c for c in weights.columns if c.startswith("weight_")]
    prs, prs_result = _harmonise(
        weights, "chromosome", weights["effect_is_alt"].to_numpy(dtype=bool), variants,
        min_overlap=config.min_overlap, source=f"{config.vcfs[0]}: PRS variants",
    )  # fmt: skip
    loadings = bundle.pca_loadings
    pca, pca_result = _harmonise(
        loadings, "contig", np.ones(len(loadings), dtype=bool), variants,
        min_overlap=config.min_overlap, source=f"{config.vcfs[0]}: PCA variants",
    )  # fmt: skip
    # PRS: weights keyed by the new variants; the effect allele's frequency is the training one
    saved = weights.iloc[prs["row"].to_numpy()]
    prs_frame = pd.DataFrame(
        {
            "contig": prs["contig"].astype(str).to_numpy(),
            "position": prs["position"].to_numpy(dtype="int64"),
            "ref": prs["ref"].astype(str).to_numpy(),
            "alt": prs["alt"].astype(str).to_numpy(),
            "effect_is_alt": prs["effect_is_alt"].to_numpy(dtype=bool),
            "effect_af": saved["effect_af"].to_numpy(dtype=float),
        }
    )
    for k, column in enumerate(thresholds):
        prs_frame[f"v{k}"] = saved[column].to_numpy(dtype=float)
    prs_ht = _variant_table(prs_frame, storage.join(scratch, "prs.tsv"), len(thresholds))
    prs_ht = prs_ht.select(
        weights=prs_ht.values, effect_is_alt=prs_ht.effect_is_alt, effect_af=prs_ht.effect_af
    )
    row = prs_ht[mt.row_key]
    scored = mt.annotate_rows(_w=row.weights, _alt=row.effect_is_alt, _af=row.effect_af)
    scored = scored.filter_rows(hl.is_defined(scored._w))
    n_alt = alt_dosage_expr(scored)  # the dosage of an imputed VCF, else the hard call
    dosage = hl.or_else(hl.if_else(scored._alt, n_alt, 2.0 - n_alt), 2.0 * scored._af)
    prs_cols = scored.annotate_cols(_prs=hl.agg.array_sum(scored._w * dosage)).cols()
    # PCs: every saved variant once (pc_project counts them), oriented like the new VCF
    oriented = loadings.copy()
    matched = loadings.index[pca["row"].to_numpy()]
    swap = ~pca["effect_is_alt"].to_numpy(dtype=bool)
    k_columns = [c for c in loadings.columns if c.startswith("loading_")]
    for column, values in (("contig", pca["contig"]), ("position", pca["position"]),
                           ("ref", pca["ref"]), ("alt", pca["alt"])):  # fmt: skip
        oriented.loc[matched, column] = values.to_numpy()
    oriented.loc[matched[swap], "pca_af"] = 1 - loadings.loc[matched[swap], "pca_af"]
    oriented.loc[matched[swap], k_columns] = -loadings.loc[matched[swap], k_columns]
    pca_frame = oriented[["contig", "position", "ref", "alt", "pca_af"]].copy()
    for k, column in enumerate(k_columns):
        pca_frame[f"v{k}"] = oriented[column].to_numpy(dtype=float)
    pca_ht = _variant_table(pca_frame, storage.join(scratch, "pca.tsv"), len(k_columns))
    pca_ht = pca_ht.select(loadings=pca_ht.values, pca_af=pca_ht.pca_af)
    # pass pca_ht's own fields (not a join into mt): pc_project normalises by the row
    # count of the loadings' source, which must be the PCA's variant count
    projected = hl.experimental.pc_project(mt.GT, pca_ht.loadings, pca_ht.pca_af)
    logger.info("predict: scoring and projecting onto the PCs…")
    # one query for both aggregations
    frame = projected.annotate(_prs=prs_cols[projected.s]._prs).to_pandas()
    index = frame["s"].astype(str)
    raw = pd.DataFrame(
        np.vstack(frame["_prs"].to_numpy()),
        index=index,
        columns=[f"prs_{c.removeprefix('weight_')}" for c in thresholds],
    )
    pcs = pd.DataFrame(
        np.vstack(frame["scores"].to_numpy()),
        index=index,
        columns=[f"PC{k + 1}" for k in range(len(k_columns))],
    )
    summary = {
        "prs": {"match_rate": round(prs_result.match_rate, 4), **prs_result.counts},
        "pca": {"match_rate": round(pca_result.match_rate, 4), **pca_result.counts},
    }
    return raw, pcs.reindex(raw.index), summary["prs"], summary["pca"]


def _variant_table(frame: pd.DataFrame, path: str, n_values: int) -> hl.Table:
    """``frame`` (``contig``, ``position``, ``ref``, ``alt``, other columns and
    ``v0`` … as float64) as a Hail Table keyed by ``locus``, ``alleles`` with the
    ``v`` columns gathered in ``values: array<float64>`` (via a TSV: faster than
    :meth:`hail.Table.from_pandas` for thousands of rows with arrays)."""
    import hail as hl

    storage.write_table(path, frame, sep="\t", index=False)
    types = {"contig": hl.tstr, "position": hl.tint32, "ref": hl.tstr, "alt": hl.tstr}
    for column in frame.columns:
        if column not in types:
            types[column] = hl.tbool if frame[column].dtype == bool else hl.tfloat64
    ht = hl.import_table(path, types=types, min_partitions=1)
    ht = ht.annotate(values=hl.array([ht[f"v{k}"] for k in range(n_values)]))
    ht = ht.key_by(locus=hl.locus(ht.contig, ht.position), alleles=[ht.ref, ht.alt])
    return ht.drop("contig", "position", "ref", "alt", *[f"v{k}" for k in range(n_values)])


def _ancestry_adjusted(
    bundle: ModelBundle, raw: pd.DataFrame, pcs: pd.DataFrame, ancestry: pd.Series
) -> pd.DataFrame:
    """pgsc_calc's ancestry normalisation of the new samples' scores, with the models the
    prs stage fitted on the training samples (``<score>_Z_norm1``, ``<score>_Z_norm2``),
    and the percentile and Z among the training samples of the new sample's assigned
    ancestry group (``<score>_percentile_MostSimilarPop``, ``<score>_Z_MostSimilarPop``)."""
    from gwas_prs.methods.prs.ancestry_adjust import (
        AncestryAdjustment,
        adjust_scores,
        reference_percentiles,
    )

    adjustment = AncestryAdjustment.from_dict(bundle.adjustment or {})
    names = [n for n in adjustment.score_names if n in raw.columns]
    aligned_pcs = pcs.reset_index(drop=True).set_axis(raw.index)
    adjusted = adjust_scores(adjustment, raw[names], aligned_pcs)
    reference = bundle.adjustment_reference
    if reference is not None and not (ancestry == "NA").all():
        ref = reference.set_index("sample_id")
        groups = pd.Series(ancestry.to_numpy(), index=raw.index).astype(str)
        adjusted = adjusted.join(
            reference_percentiles(ref[names], ref["group"], raw[names], groups)
        )
    return adjusted


def _predictions(
    bundle: ModelBundle, raw: pd.DataFrame, pcs: pd.DataFrame, covariates: pd.DataFrame | None
) -> pd.DataFrame:

    schema = bundle.schema
    features = pd.DataFrame(index=raw.index)
    for column, params in schema["standardisation"].items():
        features[column] = (raw[column].to_numpy(dtype=float) - params["mean"]) / params["sd"]
    n_pcs = int(schema["n_pcs"])
    for k in range(n_pcs):
        features[f"PC{k + 1}"] = pcs[f"PC{k + 1}"].to_numpy(dtype=float)
    for column in schema["covariates"]:
        features[column] = (
            covariates[column].reindex(raw.index).to_numpy(dtype=float)
            if covariates is not None and column in covariates.columns
            else np.nan
        )
    best = schema["best_prs_column"]
    out = pd.DataFrame({"sample_id": raw.index})
    out["probability"] = bundle.predict_probability(features)  # the model train chose
    for name, probability in bundle.model_probabilities(features).items():
        out[f"p_{name}"] = probability
    out["prs"] = raw[best].to_numpy()
    out["prs_z"] = features[best].to_numpy()
    distribution = bundle.prs_distribution
    out["prs_percentile"] = (
        100.0 * np.searchsorted(distribution, out["prs"], side="right") / len(distribution)
    )
    ancestry = schema.get("ancestry")
    if ancestry is not None and bundle.ancestry_reference is not None:
        groups = assign_groups(
            bundle.ancestry_reference,
            pcs,
            seed=int(ancestry["seed"]),
            min_probability=float(ancestry["min_probability"]),
        )
        out["ancestry"] = groups["ancestry"].to_numpy()
        out["ancestry_probability"] = groups["ancestry_probability"].to_numpy()
    else:
        out["ancestry"] = "NA"
    if bundle.adjustment is not None:
        out = out.join(_ancestry_adjusted(bundle, raw, pcs, out["ancestry"]).reset_index(drop=True))
    for k in range(n_pcs):
        out[f"PC{k + 1}"] = pcs[f"PC{k + 1}"].to_numpy()
    return out
