"""Ancestry: the pruned SNP set, HWE-normalised PCA, random-forest ancestry groups.

Functions return Hail Tables/MatrixTables, Python values or pandas frames;
nothing here writes.

The pruned SNP set (used for heterozygosity, KING and PCA)
----------------------------------------------------------
Autosomal bi-allelic SNPs with MAF ≥ ``min_maf`` (0.05) and call rate ≥
``min_call_rate`` (the variant call-rate threshold), computed over all input
samples, then LD-pruned with :func:`hail.ld_prune`'s rule (no pair of kept SNPs
within 500 kb with r² ≥ 0.2 by default; greedy in genomic order, close to but
not identical to ``plink --indep-pairwise``). In Hail local mode the rule runs
in numpy on one .bed export (:mod:`gwas_prs.methods.ancestry.prune_local`, one "partition" per
contig); on a cluster :func:`hail.ld_prune` itself.

PCA
---
:func:`hail.hwe_normalized_pca` on the QC-passed samples: each variant's
genotypes ``x`` become ``(x - 2p) / sqrt(2p(1-p) m)`` (missing → 0), with
``p`` the ALT frequency in those samples and ``m`` the number of
non-monomorphic variants; the same standardisation as ``plink2 --pca``.
Loadings are kept with the frequencies ``pca_af`` so new samples can be
projected: ``score_k = Σ_v loading_vk · (x_v - 2 pca_af_v) / sqrt(2 pca_af_v (1 - pca_af_v) m)``
(missing genotypes contribute 0), which reproduces the scores of the samples
the PCA was fitted on (as gnomAD's ``pc_project`` does).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import hail as hl

logger = logging.getLogger(__name__)


def pruning_candidates_expr(
    mt: hl.MatrixTable, *, min_maf: float, min_call_rate: float
) -> hl.expr.BooleanExpression:
    """Row condition of SNPs eligible for pruning: autosomal bi-allelic SNP,
    MAF ≥ ``min_maf``, call rate ≥ ``min_call_rate`` (over ``mt``'s columns).

    Returns a :class:`hail.BooleanExpression` that aggregates over columns
    (use it in ``annotate_rows`` then filter).
    """
    import hail as hl

    stats = hl.agg.call_stats(mt.GT, mt.alleles)
    af = hl.or_missing(stats.AN > 0, stats.AC[1] / stats.AN)
    call_rate = hl.agg.fraction(hl.is_defined(mt.GT))
    return (
        mt.locus.in_autosome()
        & (hl.len(mt.alleles) == 2)
        & hl.is_snp(mt.alleles[0], mt.alleles[1])
        & hl.coalesce(hl.min(af, 1 - af) >= min_maf, False)
        & (call_rate >= min_call_rate)
    )


def genotypes_only(mt: hl.MatrixTable) -> hl.MatrixTable:
    """``mt`` with entries ``GT`` only and no row, column or global fields."""
    return mt.select_entries("GT").select_rows().select_cols().select_globals()


def pruning_candidates(
    mt: hl.MatrixTable, *, min_maf: float, min_call_rate: float
) -> hl.MatrixTable:
    """:func:`genotypes_only` of ``mt`` restricted to :func:`pruning_candidates_expr`;
    the input of :func:`ld_pruned`."""
    mt = genotypes_only(mt)
    return mt.filter_rows(pruning_candidates_expr(mt, min_maf=min_maf, min_call_rate=min_call_rate))


def ld_pruned(
    candidates: hl.MatrixTable,
    *,
    r2: float,
    window_bp: int,
    scratch: str,
    source: hl.MatrixTable | None = None,
) -> tuple[hl.MatrixTable, int]:
    """LD-prune ``candidates`` with :func:`hail.ld_prune`'s rule.

    In Hail local mode the rule runs in numpy (:func:`local_pruned_rows`) on one
    .bed export of ``candidates``, which may be an unevaluated filter of a larger
    MatrixTable: the export is the pass that evaluates it. The kept rows are then
    selected by key, from ``source`` when given (the :func:`genotypes_only`
    MatrixTable ``candidates`` was filtered from: the filter is not evaluated a
    second time), else from ``candidates``. On a cluster ``candidates`` is first
    checkpointed under ``scratch`` (:func:`hail.ld_prune` reads it several times).

    Returns
    -------
    (:class:`hail.MatrixTable`, int)
        The kept SNPs, entries ``GT``, with row field ``af`` (float64, ALT
        frequency over ``candidates``' columns), not yet evaluated: checkpoint
        it, it is read several times (heterozygosity, KING, PCA). Then the
        number of candidates.
    """
    import hail as hl

    from gwas_prs.engine.switch import numpy_engine

    if numpy_engine():
        kept_keys, n_candidates = local_pruned_keys(candidates, r2=r2, window_bp=window_bp)
        # by key, not by row index: an index on an unevaluated filter costs a pass
        pruned = (candidates if source is None else source).semi_join_rows(kept_keys)
    else:
        from gwas_prs.core import storage

        candidates = candidates.checkpoint(storage.join(scratch, "candidates.mt"))
        n_candidates = candidates.count_rows()
        kept = hl.ld_prune(candidates.GT, r2=r2, bp_window_size=window_bp)
        pruned = candidates.filter_rows(hl.is_defined(kept[candidates.row_key]))
    stats = hl.agg.call_stats(pruned.GT, pruned.alleles)
    return pruned.annotate_rows(af=stats.AC[1] / stats.AN), n_candidates


def local_pruned_keys(
    candidates: hl.MatrixTable, *, r2: float, window_bp: int
) -> tuple[hl.Table, int]:
    """:func:`local_pruned_rows` as a Hail Table of the kept rows' keys (``locus``,
    ``alleles``), and the number of rows of ``candidates``."""
    from gwas_prs.engine.table_io import variant_frame_to_table

    kept_rows, n_candidates, variants = _local_pruned(candidates, r2=r2, window_bp=window_bp)
    kept = variants.iloc[sorted(kept_rows)]
    table = variant_frame_to_table(
        kept,
        {},
        candidates.locus.dtype.reference_genome,
        columns=("contig", "position", "ref", "alt"),
    )
    return table, n_candidates


def local_pruned_rows(
    candidates: hl.MatrixTable, *, r2: float, window_bp: int
) -> tuple[set[int], int]:
    """Row indices of ``candidates`` kept by :func:`hail.ld_prune`'s rule, computed in
    numpy on one .bed export (:mod:`gwas_prs.methods.ancestry.prune_local`; Hail local mode), and
    the number of rows of ``candidates``."""
    kept_rows, n_candidates, _ = _local_pruned(candidates, r2=r2, window_bp=window_bp)
    return kept_rows, n_candidates


def _local_pruned(
    candidates: hl.MatrixTable, *, r2: float, window_bp: int
) -> tuple[set[int], int, pd.DataFrame]:
    """Kept row indices, number of rows, and the rows' .bim (contig, position, ref, alt…)."""
    from gwas_prs.formats.plink_bed import exported_bed, read_bim
    from gwas_prs.methods.ancestry.prune_local import prune_rows

    with exported_bed(candidates) as (bed, n_samples, prefix):
        bim = read_bim(prefix)
        kept = prune_rows(
            bed,
            n_samples,
            bim["contig"].to_numpy(dtype=object),
            bim["position"].to_numpy(dtype=np.int64),
            r2=r2,
            window_bp=window_bp,
        )
    return {int(i) for i in np.flatnonzero(kept)}, len(bim), bim


@dataclass
class PcaResult:
    """What :func:`hwe_pca` returns.

    Attributes
    ----------
    eigenvalues:
        The ``k`` largest eigenvalues.
    total_variance:
        Trace of the standardised genotype matrix's Gram matrix (sum of all
        eigenvalues), the denominator of ``variance_explained``.
    scores:
        :class:`hail.Table` keyed by ``s`` with ``scores: array<float64>``.
    loadings:
        :class:`hail.Table` keyed by ``locus``, ``alleles`` with
        ``loadings: array<float64>`` and ``pca_af: float64``.
    n_variants:
        Variants used (non-monomorphic in the samples).
    """

    eigenvalues: list[float]
    total_variance: float
    scores: hl.Table
    loadings: hl.Table
    n_variants: int

    @property
    def variance_explained(self) -> list[float]:
        return [float(e) / self.total_variance for e in self.eigenvalues]


def hwe_pca(mt: hl.MatrixTable, k: int) -> PcaResult:
    """HWE-normalised PCA with loadings and the allele frequencies used.

    ``mt`` holds the pruned SNPs and the samples to analyse. The total variance
    is computed in the same standardisation (an extra pass over ``mt``). In Hail
    local mode the same decomposition is computed in numpy
    (:mod:`gwas_prs.methods.ancestry.pca_local`: exact up to 5,000 samples, randomized
    above), much faster on one machine.
    """
    import hail as hl

    from gwas_prs.engine.switch import numpy_engine
    from gwas_prs.methods.ancestry.pca_local import local_hwe_pca

    if numpy_engine():
        eigenvalues, total, scores, loadings, n_variants = local_hwe_pca(mt, k)
        return with_sign_convention(PcaResult(eigenvalues, total, scores, loadings, n_variants))
    stats = hl.agg.call_stats(mt.GT, mt.alleles)
    mt = mt.annotate_rows(pca_af=stats.AC[1] / stats.AN, _n=stats.AN / 2)
    mt = mt.filter_rows((mt.pca_af > 0) & (mt.pca_af < 1))
    standardised = hl.or_else((mt.GT.n_alt_alleles() - 2 * mt.pca_af) ** 2, 0.0) / (
        2 * mt.pca_af * (1 - mt.pca_af)
    )
    totals = mt.aggregate_entries(hl.struct(sum_sq=hl.agg.sum(standardised)))
    n_variants = mt.count_rows()
    eigenvalues, scores, loadings = hl.hwe_normalized_pca(mt.GT, k=k, compute_loadings=True)
    loadings = loadings.annotate(pca_af=mt.rows()[loadings.key].pca_af)
    total = float(totals.sum_sq) / max(n_variants, 1)
    return with_sign_convention(
        PcaResult(
            eigenvalues=[float(e) for e in eigenvalues],
            total_variance=total,
            scores=scores,
            loadings=loadings,
            n_variants=int(n_variants),
        )
    )


def with_sign_convention(result: PcaResult) -> PcaResult:
    """Each PC's sign fixed so that the sample with the largest |score| scores positive.

    An eigenvector's sign is arbitrary, and numpy and Hail pick different ones;
    without a convention the two engines' PCs (and everything fitted on them, such
    as the random-forest ancestry assignment) would differ. Scores and loadings are
    flipped together, so projections of new samples stay consistent.
    """
    import hail as hl

    k = len(result.eigenvalues)
    matrix = np.array(result.scores.aggregate(hl.agg.collect(result.scores.scores)), dtype=float)
    if matrix.size == 0:
        return result
    largest = np.argmax(np.abs(matrix), axis=0)
    signs = np.sign(matrix[largest, np.arange(k)])
    signs[signs == 0] = 1.0
    if np.all(signs > 0):
        return result
    flip = hl.literal([float(x) for x in signs])
    scores = result.scores.annotate(
        scores=hl.range(k).map(lambda i: result.scores.scores[i] * flip[i])
    )
    loadings = result.loadings.annotate(
        loadings=hl.range(k).map(lambda i: result.loadings.loadings[i] * flip[i])
    )
    return dataclasses.replace(result, scores=scores, loadings=loadings)


def scores_frame(scores: hl.Table, k: int) -> pd.DataFrame:
    """PCA scores as a frame indexed by ``s`` with columns ``PC1`` … ``PCk``."""
    frame = scores.to_pandas()
    matrix = np.vstack(frame["scores"].to_numpy()) if len(frame) else np.zeros((0, k))
    out = pd.DataFrame(matrix, columns=[f"PC{i + 1}" for i in range(matrix.shape[1])])
    out.index = pd.Index(frame["s"].astype(str), name="s")
    return out


@dataclass
class AncestryAssignment:
    """Random-forest ancestry groups from PCs.

    Attributes
    ----------
    assignments:
        Index ``s``; ``label`` (given population, may be missing),
        ``assigned`` (the predicted group, or ``"other"`` when the best class
        probability is below ``min_probability``), ``probability`` (of the
        predicted class; out-of-fold for labelled samples).
    cv_accuracy:
        Mean accuracy of stratified k-fold cross-validation on the labelled
        samples (predicted class, before the ``other`` cut-off).
    cv_folds, n_pcs, label_field, classes:
        How it was done.
    """

    assignments: pd.DataFrame
    cv_accuracy: float
    cv_accuracy_sd: float
    cv_folds: int
    n_pcs: int
    label_field: str
    classes: list[str] = field(default_factory=list)
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)


def assign_ancestry(
    pcs: pd.DataFrame,
    labels: pd.Series,
    *,
    label_field: str,
    n_pcs: int = 6,
    min_probability: float = 0.75,
    folds: int = 5,
    seed: int = 0,
) -> AncestryAssignment | None:
    """Train a random forest on the labelled samples' first ``n_pcs`` PCs
    (gnomAD-style) and assign every sample.

    Labelled samples get out-of-fold predictions (so their probabilities are
    honest); unlabelled ones get the model fitted on all labelled samples.
    Returns None when fewer than two groups have at least ``folds`` labelled
    samples.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    n_pcs = min(n_pcs, pcs.shape[1])
    x = pcs.iloc[:, :n_pcs].to_numpy(dtype=float)
    y_all = labels.reindex(pcs.index)
    labelled = y_all.notna().to_numpy()
    counts = y_all[labelled].astype(str).value_counts()
    usable = counts[counts >= folds].index
    labelled &= y_all.astype(str).isin(usable).to_numpy()
    if len(usable) < 2:
        logger.info(
            "ancestry assignment skipped: fewer than two labelled groups with %d samples", folds
        )
        return None
    y = y_all[labelled].astype(str).to_numpy()
    from gwas_prs.engine.local_threads import local_cores

    # the trees are seeded one by one from random_state: n_jobs does not change the result
    forest = RandomForestClassifier(
        n_estimators=200, random_state=seed, n_jobs=local_cores(), min_samples_leaf=1
    )
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    oof_proba = cross_val_predict(forest, x[labelled], y, cv=cv, method="predict_proba")
    classes = sorted(set(y))
    oof_pred = np.array(classes)[oof_proba.argmax(axis=1)]
    fold_accuracy = []
    for _, test in cv.split(x[labelled], y):
        fold_accuracy.append(float((oof_pred[test] == y[test]).mean()))
    forest.fit(x[labelled], y)
    proba = forest.predict_proba(x)
    proba[labelled] = oof_proba
    best = proba.argmax(axis=1)
    assigned = np.array(forest.classes_)[best]
    probability = proba[np.arange(len(best)), best]
    assigned = np.where(probability >= min_probability, assigned, "other")
    frame = pd.DataFrame(
        {"label": y_all.astype("string"), "assigned": assigned, "probability": probability},
        index=pcs.index,
    )
    confusion: dict[str, dict[str, int]] = {}
    for true, pred in zip(y, oof_pred, strict=True):
        confusion.setdefault(true, {}).setdefault(str(pred), 0)
        confusion[true][str(pred)] += 1
    return AncestryAssignment(
        assignments=frame,
        cv_accuracy=float(np.mean(fold_accuracy)),
        cv_accuracy_sd=float(np.std(fold_accuracy)),
        cv_folds=folds,
        n_pcs=n_pcs,
        label_field=label_field,
        classes=[str(c) for c in forest.classes_],
        confusion=confusion,
    )
