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

from gwas_prs.methods.chrx import (
    annotate_x_sex,
    reported_is_female_expr,
    reported_sex_field,
    x_alt_frequency_expr,
)
from gwas_prs.methods.dosage import alt_dosage_expr, has_dosages

if TYPE_CHECKING:
    import hail as hl

logger = logging.getLogger(__name__)

#: Variant filters, in the order they are applied (name, reason template).
VARIANT_FILTERS: tuple[tuple[str, str], ...] = (
    ("info", "{info_source} < {min_info}"),
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
    #: imputation quality (0: no filter)
    min_info: float = 0.0


#: Where the imputation quality comes from (see :func:`info_expr`).
INFO_SOURCES = {
    "R2": "INFO/R2",
    "INFO": "INFO/INFO",
    "mach_r2": "MaCH r² of the dosages",
}


def info_source(mt: hl.MatrixTable) -> str | None:
    """``R2`` or ``INFO`` (a float field of the VCF's INFO), ``mach_r2`` (dosages
    without one), or None (hard calls only: no imputation quality)."""
    import hail as hl

    info = mt.row.get("info")
    if info is not None and isinstance(info.dtype, hl.tstruct):
        for name in ("R2", "INFO"):
            if name in info.dtype and info.dtype[name] in (hl.tfloat64, hl.tfloat32):
                return name
    return "mach_r2" if has_dosages(mt) else None


def mach_r2_expr(dosage: hl.expr.Float64Expression) -> hl.expr.Float64Expression:
    """MaCH r² (row aggregation): the variance of the ALT dosages over the samples
    with one, divided by ``2p(1 − p)`` with ``p`` their mean / 2 — the ratio of the
    observed to the expected dosage variance (plink2's ``--mach-r2-filter`` metric for
    unphased dosages). Missing for a monomorphic variant (plink2's NaN)."""
    import hail as hl

    mean = hl.agg.mean(dosage)
    variance = hl.agg.mean(dosage * dosage) - mean * mean
    p = mean / 2
    return hl.or_missing((p > 0) & (p < 1), variance / (2 * p * (1 - p)))


def info_expr(mt: hl.MatrixTable, source: str | None) -> hl.expr.Float64Expression:
    """The imputation quality of each row from ``source`` (:func:`info_source`)."""
    import hail as hl

    if source in ("R2", "INFO"):
        return hl.float64(mt.info[source])
    if source == "mach_r2":
        return mach_r2_expr(alt_dosage_expr(mt))
    return hl.missing(hl.tfloat64)


def call_rate_expr(gt: hl.expr.Expression) -> hl.expr.Float64Expression:
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
    dosage: hl.expr.Float64Expression | None = None,
) -> dict[str, hl.expr.Expression]:
    """Row aggregations of variant QC (for ``annotate_rows``).

    With ``dosage`` (imputed input: the ALT dosage ``DS``), the call rate counts
    defined dosages and ``AF`` is the mean dosage / 2, as plink2 computes
    ``--geno dosage`` and ``--maf`` on dosage data (:func:`variant_qc_table` counts a
    male's non-PAR X dosage as one allele); HWE and ``AC``/``AN`` use the hard calls
    ``gt``.

    Returns
    -------
    dict
        ``call_rate`` (float64), ``n_called`` (int64), ``AC`` (int32, ALT
        allele count of the hard calls), ``AN`` (int32), ``AF`` (float64, ALT
        allele frequency; missing when nothing is called), ``p_hwe`` (float64,
        exact mid-p).
    """
    import hail as hl

    stats = hl.agg.call_stats(gt, alleles)
    present = gt if dosage is None else dosage
    af = (
        hl.or_missing(stats.AN > 0, stats.AC[1] / stats.AN)
        if dosage is None
        else hl.agg.mean(dosage) / 2
    )
    return {
        "call_rate": call_rate_expr(present),
        "n_called": hl.agg.count_where(hl.is_defined(present)),
        "AC": stats.AC[1],
        "AN": stats.AN,
        "AF": af,
        "p_hwe": hwe_expr(gt, hwe_samples).p_value,
    }


def variant_filter_exprs(
    row: hl.Table | hl.expr.StructExpression, thresholds: VariantThresholds
) -> dict[str, hl.expr.BooleanExpression]:
    """Per-filter failure flags (each on its own, booleans, never missing).

    ``fail_info`` (imputation quality below ``min_info``; missing quality, e.g. a
    monomorphic variant, passes, as in plink2), ``fail_call_rate``, ``fail_maf``
    (missing AF counts as failing: nothing
    called), ``fail_hwe`` (missing p, e.g. no called controls, counts as
    passing, like PLINK).
    """
    import hail as hl

    maf = maf_expr(row.AF)
    return {
        "fail_info": hl.coalesce(row.info_score < thresholds.min_info - EPSILON, False)
        if thresholds.min_info > 0
        else hl.bool(False),
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


def hwe_in_sample_expr(
    mt: hl.MatrixTable, hwe_samples: hl.expr.BooleanExpression | None
) -> hl.expr.BooleanExpression | None:
    """The genotypes the HWE test counts: ``hwe_samples`` (all when None) and, on the
    non-PAR X, only females (the reported sex; diploid calls when ``mt`` has no sex
    column), as ``plink2 --hwe`` does: a male's single X is no genotype to test."""
    import hail as hl

    field = reported_sex_field(list(mt.col))
    if field is None:
        x_ok = ~mt.locus.in_x_nonpar() | hl.coalesce(mt.GT.ploidy == 2, False)
    else:
        female = hl.coalesce(reported_is_female_expr(mt[field]), False)
        x_ok = ~mt.locus.in_x_nonpar() | female
    return x_ok if hwe_samples is None else hl.coalesce(hwe_samples, False) & x_ok


def variant_qc_table(
    mt: hl.MatrixTable,
    thresholds: VariantThresholds,
    hwe_samples: hl.expr.BooleanExpression | None = None,
) -> hl.Table:
    """Per-variant QC metrics and filter decisions, as a Table (not written).

    Parameters
    ----------
    mt : :class:`hail.MatrixTable`
        Genotypes (``GT``; ``DS`` for imputed input, see :func:`variant_qc_exprs`) of
        the samples that passed sample QC.
    thresholds : :class:`VariantThresholds`
    hwe_samples : :class:`hail.BooleanExpression`, optional
        Column expression of ``mt``: the samples the HWE test uses (controls); on
        the non-PAR X only their females (:func:`hwe_in_sample_expr`).

    Returns
    -------
    :class:`hail.Table`
        Keyed by ``locus``, ``alleles``; fields of :func:`variant_qc_exprs`
        plus ``info_score`` (float64, the imputation quality of :func:`info_source`;
        missing for hard-called input), ``maf`` (float64), ``fail_info``,
        ``fail_call_rate``, ``fail_maf``, ``fail_hwe``
        (bool, each filter on its own), ``removed_by`` (str: the first filter
        failed in the order INFO → call rate → MAF → HWE; missing when kept) and
        ``pass`` (bool).

    Warnings
    --------
    Filters are per variant, so the set of kept variants does not depend on
    their order; only the attribution in ``removed_by`` does.
    """
    import hail as hl

    dosage = None
    x_af: dict[str, hl.expr.Expression] = {}
    if has_dosages(mt):  # a male's non-PAR X dosage is one allele (his sex is known)
        mt = annotate_x_sex(mt)
        dosage = alt_dosage_expr(mt)
        x_af["_x_af"] = hl.or_missing(mt.locus.in_x_nonpar(), x_alt_frequency_expr(mt))
    mt = mt.select_rows(
        **variant_qc_exprs(mt.GT, mt.alleles, hwe_in_sample_expr(mt, hwe_samples), dosage),
        info_score=info_expr(mt, info_source(mt)),
        **x_af,
    )
    ht = mt.rows()
    if x_af:
        ht = ht.annotate(AF=hl.or_else(ht._x_af, ht.AF)).drop("_x_af")
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
