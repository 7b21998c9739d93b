"""Polygenic scores for many p-value thresholds in one pass.

:func:`threshold_weights_expr` turns one effect size and p-value per variant
into an array of weights, one per threshold (the effect where ``p <= t``,
else 0). :func:`polygenic_scores` sums ``weight × dosage`` over variants in a
single aggregation producing an array per sample, so scoring 9 thresholds costs
one pass over the genotypes.

Missing genotypes are mean-imputed with the effect-allele frequency of the
scored samples, as PLINK 2 ``--score`` does by default; scores are sums
(``SCORE_SUM`` in PLINK's ``cols=+scoresums``), not averages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gwas_prs.core.stage_options import PRS
from gwas_prs.methods.dosage import alt_dosage_expr

DEFAULT_THRESHOLDS: tuple[float, ...] = PRS.default("thresholds")


def threshold_weights_expr(beta: Any, p_value: Any, thresholds: Sequence[float]) -> Any:
    """``array<float64>``: ``beta`` where ``p_value <= t`` else 0, for each threshold ``t``."""
    import hail as hl

    return hl.array([hl.if_else(p_value <= t, beta, 0.0) for t in thresholds])


def effect_dosage_expr(alt: Any, effect_is_alt: Any, effect_af: Any) -> Any:
    """Copies of the effect allele from the ALT dosage ``alt`` (float64); missing →
    ``2 × effect_af`` (mean imputation)."""
    import hail as hl

    dosage = hl.if_else(effect_is_alt, alt, 2.0 - alt)
    return hl.or_else(dosage, 2.0 * effect_af)


def polygenic_scores(mt: Any, weights: Any, effect_is_alt: Any) -> Any:
    """Per-sample score arrays.

    Parameters
    ----------
    mt : :class:`hail.MatrixTable`
        Target genotypes (``GT``; ``DS`` when present, :mod:`gwas_prs.methods.dosage`);
        only rows with weights are used.
    weights : :class:`hail.ArrayNumericExpression`
        Row-indexed weights, one per threshold (missing rows are skipped).
    effect_is_alt : :class:`hail.BooleanExpression`
        Row-indexed: the weight is for the ALT allele (else for REF).

    Returns
    -------
    :class:`hail.Table` keyed by ``s`` with ``scores`` (array<float64>, one sum
    per threshold) and ``n_variants`` (int64, variants scored).
    """
    import hail as hl

    mt = mt.annotate_rows(_w=weights, _effect_is_alt=effect_is_alt)
    mt = mt.filter_rows(hl.is_defined(mt._w))
    alt_af = hl.agg.mean(alt_dosage_expr(mt)) / 2
    mt = mt.annotate_rows(_effect_af=hl.if_else(mt._effect_is_alt, alt_af, 1 - alt_af))
    dosage = effect_dosage_expr(alt_dosage_expr(mt), mt._effect_is_alt, mt._effect_af)
    mt = mt.annotate_cols(scores=hl.agg.array_sum(mt._w * dosage), n_variants=hl.agg.count())
    return mt.cols().select("scores", "n_variants")
