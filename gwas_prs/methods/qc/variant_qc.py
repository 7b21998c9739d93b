"""Variant QC: call rate, minor allele frequency, Hardy-Weinberg equilibrium.

Expression-level functions (``*_expr``) build Hail aggregations to be used in
``annotate_rows``; :func:`variant_qc_table` is the thin MatrixTable wrapper the
stage runner uses. Nothing here writes.

Hardy-Weinberg test flavour
---------------------------
The HWE p-value is Hail's exact test (:func:`hail.agg.hardy_weinberg_test`,
Wigginton et al. 2005 / Levene-Haldane distribution), **two-sided with the
mid-p correction**. It agrees with ``plink2 --hwe P midp`` (PLINK 2 without
``midp`` reports the plain exact p-value, which is larger by half the
probability of the observed table). A variant fails when ``p < --hwe-p``,
like PLINK, which removes variants with p below the threshold.

Thresholds follow PLINK's direction: a variant is kept when
``call_rate >= min_call_rate`` (``plink2 --geno 1-min_call_rate`` removes
missingness above the threshold) and ``maf >= min_maf`` (``plink2 --maf``
removes MAF below the threshold).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import hail as hl

logger = logging.getLogger(__name__)

#: Variant filters, in the order they are applied (name, reason template).
VARIANT_FILTERS: tuple[tuple[str, str], ...] = (
    ("call_rate", "variant call rate < {min_variant_call_rate}"),
    ("maf", "minor allele frequency < {min_maf}"),
    ("hwe", "HWE exact mid-p < {hwe_p}{hwe_where}"),
)
#: Floating-point slack for threshold comparisons (frequencies are ratios of
#: integers; ``0.95 * 20`` must count as ``19/20``).
EPSILON = 1e-12


@dataclass(frozen=True)
class VariantThresholds:
    """Thresholds of variant QC (validated by :class:`gwas_prs.stages.qc.QcConfig`)."""

    min_call_rate: float = 0.95
    min_maf: float = 0.01
    hwe_p: float = 1e-6


def call_rate_expr(gt: hl.expr.CallExpression) -> hl.expr.Float64Expression:
    """Fraction of columns with a called genotype (row aggregation, float64)."""
    import hail as hl

    return hl.agg.fraction(hl.is_defined(gt))


def maf_expr(af: hl.expr.Float64Expression) -> hl.expr.Float64Expression:
    """Minor allele frequency ``min(af, 1 - af)`` from the ALT allele frequency."""
    import hail as hl

    return hl.min(af, 1.0 - af)


def hwe_expr(
    gt: hl.expr.CallExpression, in_sample: hl.expr.BooleanExpression | None = None
) -> hl.expr.StructExpression:
    """Two-sided exact HWE test with mid-p correction (row aggregation).

    Parameters
    ----------
    gt : :class:`hail.CallExpression`
    in_sample : :class:`hail.BooleanExpression`, optional
        Column condition restricting the test (controls of a binary trait).

    Returns
    -------
    :class:`hail.StructExpression`
        ``het_freq_hwe`` (float64), ``p_value`` (float64).
    """
    import hail as hl

    if in_sample is None:
        return hl.agg.hardy_weinberg_test(gt)
    return hl.agg.filter(hl.coalesce(in_sample, False), hl.agg.hardy_weinberg_test(gt))


def variant_qc_exprs(
    gt: hl.expr.CallExpression,
    alleles: hl.expr.ArrayExpression,
    hwe_samples: hl.expr.BooleanExpression | None = None,
) -> dict[str, hl.expr.Expression]:
    """Row aggregations of variant QC (for ``annotate_rows``).

    Returns
    -------
    dict
        ``call_rate`` (float64), ``n_called`` (int64), ``AC`` (int32, ALT
        allele count), ``AN`` (int32), ``AF`` (float64, ALT allele frequency;
        missing when nothing is called), ``p_hwe`` (float64, exact mid-p).
    """
    import hail as hl

    stats = hl.agg.call_stats(gt, alleles)
    return {
        "call_rate": call_rate_expr(gt),
        "n_called": hl.agg.count_where(hl.is_defined(gt)),
        "AC": stats.AC[1],
        "AN": stats.AN,
        "AF": hl.or_missing(stats.AN > 0, stats.AC[1] / stats.AN),
        "p_hwe": hwe_expr(gt, hwe_samples).p_value,
    }


def variant_filter_exprs(
    row: hl.Table | hl.expr.StructExpression, thresholds: VariantThresholds
) -> dict[str, hl.expr.BooleanExpression]:
    """Per-filter failure flags (each on its own, booleans, never missing).

    ``fail_call_rate``, ``fail_maf`` (missing AF counts as failing: nothing
    called), ``fail_hwe`` (missing p, e.g. no called controls, counts as
    passing, like PLINK).
    """
    import hail as hl

    maf = maf_expr(row.AF)
    return {
        "fail_call_rate": row.call_rate < thresholds.min_call_rate - EPSILON,
        "fail_maf": hl.coalesce(maf < thresholds.min_maf - EPSILON, True),
        "fail_hwe": hl.coalesce(row.p_hwe < thresholds.hwe_p, False),
    }


def first_failed_filter_expr(
    row: hl.Table | hl.expr.StructExpression,
) -> hl.expr.StringExpression:
    """Name of the first filter (in :data:`VARIANT_FILTERS` order) a row fails, or missing."""
    import hail as hl

    out = hl.missing(hl.tstr)
    for name, _ in reversed(VARIANT_FILTERS):
        out = hl.if_else(row[f"fail_{name}"], name, out)
    return out


def variant_qc_table(
    mt: hl.MatrixTable,
    thresholds: VariantThresholds,
    hwe_samples: hl.expr.BooleanExpression | None = None,
) -> hl.Table:
    """Per-variant QC metrics and filter decisions, as a Table (not written).

    Parameters
    ----------
    mt : :class:`hail.MatrixTable`
        Genotypes (``GT``) of the samples that passed sample QC.
    thresholds : :class:`VariantThresholds`
    hwe_samples : :class:`hail.BooleanExpression`, optional
        Column expression of ``mt``: the samples the HWE test uses (controls).

    Returns
    -------
    :class:`hail.Table`
        Keyed by ``locus``, ``alleles``; fields of :func:`variant_qc_exprs`
        plus ``maf`` (float64), ``fail_call_rate``, ``fail_maf``, ``fail_hwe``
        (bool, each filter on its own), ``removed_by`` (str: the first filter
        failed in the order call rate → MAF → HWE; missing when kept) and
        ``pass`` (bool).

    Warnings
    --------
    Filters are per variant, so the set of kept variants does not depend on
    their order; only the attribution in ``removed_by`` does.
    """
    import hail as hl

    mt = mt.select_rows(**variant_qc_exprs(mt.GT, mt.alleles, hwe_samples))
    ht = mt.rows()
    ht = ht.annotate(maf=maf_expr(ht.AF))
    ht = ht.annotate(**variant_filter_exprs(ht, thresholds))
    ht = ht.annotate(removed_by=first_failed_filter_expr(ht))
    return ht.annotate(**{"pass": hl.is_missing(ht.removed_by)})


def summarise_variant_qc(ht: hl.Table, n_bins: int = 50) -> dict[str, Any]:
    """One pass over a :func:`variant_qc_table`: counts and histograms.

    Returns
    -------
    dict
        ``n_variants``; ``removed`` (first-failed filter → count);
        ``failing_alone`` (filter → count of variants failing it on its own);
        ``kept``; ``hist_call_rate``, ``hist_maf``, ``hist_log10_p_hwe``
        (``bin_edges``, ``bin_freq`` of :func:`hail.agg.hist`).
    """
    import hail as hl

    neg_log_p = -hl.log10(hl.max(ht.p_hwe, 1e-300))
    result = ht.aggregate(
        hl.struct(
            n_variants=hl.agg.count(),
            removed=hl.agg.filter(hl.is_defined(ht.removed_by), hl.agg.counter(ht.removed_by)),
            failing_alone=hl.struct(
                **{name: hl.agg.count_where(ht[f"fail_{name}"]) for name, _ in VARIANT_FILTERS}
            ),
            kept=hl.agg.count_where(ht["pass"]),
            hist_call_rate=hl.agg.hist(ht.call_rate, 0.0, 1.0, n_bins),
            hist_maf=hl.agg.hist(ht.maf, 0.0, 0.5, n_bins),
            hist_log10_p_hwe=hl.agg.hist(neg_log_p, 0.0, 30.0, n_bins),
        )
    )
    return {
        "n_variants": int(result.n_variants),
        "removed": {name: int(result.removed.get(name, 0)) for name, _ in VARIANT_FILTERS},
        "failing_alone": {k: int(v) for k, v in result.failing_alone.items()},
        "kept": int(result.kept),
        "hist_call_rate": {
            "edges": list(result.hist_call_rate.bin_edges),
            "counts": list(result.hist_call_rate.bin_freq),
        },
        "hist_maf": {
            "edges": list(result.hist_maf.bin_edges),
            "counts": list(result.hist_maf.bin_freq),
        },
        "hist_log10_p_hwe": {
            "edges": list(result.hist_log10_p_hwe.bin_edges),
            "counts": list(result.hist_log10_p_hwe.bin_freq),
        },
    }
