"""Sample QC: call rate, heterozygosity outliers, sex check, KING relatedness.

Expression-level functions (``*_expr``) are column aggregations for
``annotate_cols``; the wrappers take MatrixTables and return Tables or pandas
frames. Nothing here writes.

Definitions
-----------
- **Call rate**: fraction of variants with a called genotype, over all
  variants of the input.
- **Heterozygosity**: the method-of-moments inbreeding coefficient of
  ``plink --het``, ``F = (O_hom - E_hom) / (N - E_hom)``
  (:func:`hail.agg.inbreeding`), on LD-pruned common autosomal SNPs, with the
  expected homozygosity from the allele frequencies of those SNPs. A sample is
  an outlier when ``|F - mean(F)| > het_sd * sd(F)``, the mean and the
  (population, ``ddof=0``) standard deviation being taken over the samples
  that passed the call-rate filter.
- **Sex check** (only when chrX has enough common SNPs): X-chromosome ``F``
  from :func:`hail.impute_sex` (females ``F < 0.2``, males ``F > 0.8``)
  compared with the reported sex; a sample fails when both are known and
  disagree.
- **Relatedness**: KING-robust kinship (:func:`hail.king`, Manichaikul et al.
  2010; what ``plink2 --make-king-table`` computes) on the pruned SNPs. Pairs
  with kinship above the threshold (default ``0.0884 = 2^-3.5``, second
  degree) form a graph; :func:`hail.maximal_independent_set` keeps a maximal
  set of unrelated samples, removing, among equally connected samples, the
  one with the lower call rate (ties by sample ID).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from gwas_prs.methods.chrx import reported_is_female_expr, reported_sex_field
from gwas_prs.methods.dosage import diploid_call_expr, has_dosages

if TYPE_CHECKING:
    import hail as hl

logger = logging.getLogger(__name__)

#: KING kinship cut-offs between degrees of relationship (Manichaikul et al. 2010).
KINSHIP_DEGREES: tuple[tuple[float, str], ...] = (
    (2**-1.5, "duplicate/MZ twin"),
    (2**-2.5, "1st degree"),
    (2**-3.5, "2nd degree"),
    (2**-4.5, "3rd degree"),
)
#: Pairs above this kinship are reported (kept in ``related_pairs``) even when
#: below the removal threshold.
KINSHIP_REPORT_MIN = 0.02


def call_rate_expr(gt: hl.expr.Expression) -> hl.expr.Float64Expression:
    """Fraction of rows with a called genotype (column aggregation, float64)."""
    import hail as hl

    return hl.agg.fraction(hl.is_defined(gt))


def inbreeding_expr(
    gt: hl.expr.CallExpression, af: hl.expr.Float64Expression
) -> hl.expr.StructExpression:
    """``plink --het`` F statistic (column aggregation).

    Returns
    -------
    :class:`hail.StructExpression`
        ``f_stat`` (float64), ``n_called`` (int64), ``expected_homs``
        (float64), ``observed_homs`` (int64).
    """
    import hail as hl

    return hl.agg.inbreeding(gt, af)


def sample_metrics(mt_all: hl.MatrixTable, mt_pruned: hl.MatrixTable) -> pd.DataFrame:
    """Per-sample QC metrics (two column passes: all variants, pruned SNPs).

    Parameters
    ----------
    mt_all : :class:`hail.MatrixTable`
        All variants (``GT``); column key ``s``.
    mt_pruned : :class:`hail.MatrixTable`
        The pruned common SNPs with a row field ``af`` (ALT frequency).

    Returns
    -------
    pandas.DataFrame
        Index ``s``; ``call_rate``, ``n_called``, ``n_het``, ``n_hom_var``
        (over all variants); ``het_f``, ``het_n_called``, ``het_observed_homs``,
        ``het_expected_homs`` (over the pruned SNPs).
    """
    import hail as hl

    # imputed input: a sample's call rate counts its defined dosages (plink2 --mind dosage)
    present = mt_all.DS if has_dosages(mt_all) else mt_all.GT
    cols = mt_all.select_cols(
        call_rate=call_rate_expr(present),
        n_called=hl.agg.count_where(hl.is_defined(present)),
        n_het=hl.agg.count_where(mt_all.GT.is_het()),
        n_hom_var=hl.agg.count_where(mt_all.GT.is_hom_var()),
    ).cols()
    het = mt_pruned.select_cols(het=inbreeding_expr(mt_pruned.GT, mt_pruned.af)).cols()
    het = het.select(
        het_f=het.het.f_stat,
        het_n_called=het.het.n_called,
        het_observed_homs=het.het.observed_homs,
        het_expected_homs=het.het.expected_homs,
    )
    frame = cols.to_pandas().set_index("s")
    het_frame = het.to_pandas().set_index("s")
    return frame.join(het_frame, how="left")


def heterozygosity_outliers(
    f: pd.Series, keep: pd.Series, n_sd: float
) -> tuple[pd.Series, float, float]:
    """Flag ``|F - mean| > n_sd * sd`` with mean/sd over the samples in ``keep``.

    Returns ``(is_outlier, mean, sd)``; samples outside ``keep`` are never flagged.
    """
    values = f[keep].astype(float)
    mean = float(values.mean())
    sd = float(values.std(ddof=0))
    outlier = ((f.astype(float) - mean).abs() > n_sd * sd) & keep
    return outlier.fillna(False).astype(bool), mean, sd


def sex_check(
    mt: hl.MatrixTable,
    *,
    min_x_snps: int = 100,
    max_female_xf: float = 0.2,
    min_male_xf: float = 0.8,
) -> pd.DataFrame | None:
    """Impute sex from chrX and compare with the reported sex, as ``plink2 --check-sex``.

    The inbreeding coefficient F of each sample over the non-PAR chrX SNPs with ALT
    frequency above 0.05 (:func:`hail.impute_sex`: ``F = (O − E) / (N − E)``, O and E
    the observed and expected homozygous calls; haploid male calls count as
    homozygous); F < ``max_female_xf`` → female, F > ``min_male_xf`` → male, between
    them undetermined (missing). The PARs come from the reference genome.

    Returns None (skip) when ``mt`` has fewer than ``min_x_snps`` common SNPs on
    the non-PAR X chromosome. Otherwise a frame indexed by ``s`` with
    ``x_f`` (float64), ``imputed_female`` (boolean), ``reported_female``
    (boolean) and ``sex_mismatch`` (bool: both known and different).

    Warnings
    --------
    An undetermined sex (F between the thresholds) is not a mismatch, as in plink2
    (which reports it as PROBLEM but with SNPSEX 0).
    """
    import hail as hl

    x = mt.filter_rows(mt.locus.in_x_nonpar() & hl.is_snp(mt.alleles[0], mt.alleles[1]))
    n_x = x.count_rows()
    if n_x < min_x_snps:
        logger.info("sex check skipped: %d SNPs on chrX (need %d)", n_x, min_x_snps)
        return None
    # haploid male calls (1000 Genomes, many VCF writers) as homozygous diploid calls, as
    # plink reads them: Hail's inbreeding aggregator takes diploid calls only
    gt = diploid_call_expr(x.GT)
    imputed = hl.impute_sex(
        gt, aaf_threshold=0.05, female_threshold=max_female_xf, male_threshold=min_male_xf
    )
    field = reported_sex_field(list(mt.col))
    cols = mt.cols()
    cols = cols.select(
        x_f=imputed[cols.s].f_stat,
        imputed_female=imputed[cols.s].is_female,
        reported_female=reported_is_female_expr(cols[field]) if field else hl.missing(hl.tbool),
    )
    frame = cols.to_pandas().set_index("s")
    frame["sex_mismatch"] = (
        frame["imputed_female"].notna()
        & frame["reported_female"].notna()
        & (frame["imputed_female"] != frame["reported_female"])
    ).astype(bool)
    return frame


def kinship_degree(phi: float) -> str:
    """Degree of relationship of a KING kinship coefficient."""
    for cut, name in KINSHIP_DEGREES:
        if phi > cut:
            return name
    return "unrelated"


#: Bytes per sample pair of the numpy KING: three N × N float64 count matrices and the
#: float32 products and float64 temporaries beside them.
LOCAL_KING_BYTES_PER_PAIR = 64


def local_king_max_samples() -> int:
    """Largest sample count for the numpy KING on this machine (from the memory
    available, :mod:`gwas_prs.engine.memory`: about 12,000 on a 24 GiB laptop)."""
    from gwas_prs.engine.memory import max_square_samples

    return max_square_samples(LOCAL_KING_BYTES_PER_PAIR)


def local_king_pairs(mt_pruned: hl.MatrixTable, min_kinship: float) -> pd.DataFrame:
    """KING-robust kinship in numpy (Hail local mode), as ``plink2 --make-king-table``.

    The genotypes are exported once as a PLINK .bed; over the variants called
    in both samples, ``phi = 1/2 + (2·(HetHet - 2·IBS0) - Het_i - Het_j) / (4·m)``
    with ``m = min(Het_i, Het_j)`` (Manichaikul et al. 2010, between-family
    estimator; :func:`hail.king` computes the same on BlockMatrices). Count
    matrices come from float32 BLAS products of variant chunks (exact integers),
    accumulated in float64. Returns ``i``, ``j`` (``i < j``), ``kinship``.
    """
    from gwas_prs.formats.plink_bed import exported_bed, read_bed_rows

    with exported_bed(mt_pruned) as (bed, n, prefix):
        with open(prefix + ".fam") as fam:
            ids = np.array([line.split()[1] for line in fam], dtype=object)
        het_het = np.zeros((n, n))
        opposite = np.zeros((n, n))
        het_called = np.zeros((n, n))  # [i, j]: hets of i where j is called
        for a in range(0, bed.shape[0], 4096):
            g = read_bed_rows(bed, a, min(a + 4096, bed.shape[0]), n)
            het = (g == 1).astype(np.float32)
            called = (g >= 0).astype(np.float32)
            het_het += het.T @ het
            opposite += (g == 0).astype(np.float32).T @ (g == 2).astype(np.float32)
            het_called += het.T @ called
    ibs0 = opposite + opposite.T
    smaller = np.minimum(het_called, het_called.T)
    with np.errstate(divide="ignore", invalid="ignore"):
        # Hail's order of operations, so pairs at a threshold fall on the same side
        phi = 0.5 + (2 * (het_het - 2 * ibs0) - het_called - het_called.T) / (4 * smaller)
    rows, cols = np.nonzero(np.triu(phi > min_kinship, k=1))
    first, second = ids[rows], ids[cols]
    swap = second < first
    return pd.DataFrame(
        {
            "i": np.where(swap, second, first).astype(str),
            "j": np.where(swap, first, second).astype(str),
            "kinship": phi[rows, cols].astype(np.float64),
        }
    )


def king_pairs(mt_pruned: hl.MatrixTable, min_kinship: float = KINSHIP_REPORT_MIN) -> pd.DataFrame:
    """KING-robust kinship of every pair with ``phi > min_kinship``.

    In Hail local mode (up to 12,000 samples) computed in numpy
    (:func:`local_king_pairs`), else with :func:`hail.king`.

    Returns
    -------
    pandas.DataFrame
        ``i``, ``j`` (sample IDs, ``i < j``), ``kinship`` (float64), ``degree`` (str).
    """
    import hail as hl

    from gwas_prs.engine.switch import numpy_engine

    n_samples = mt_pruned.count_cols() if numpy_engine() else 0
    if numpy_engine() and n_samples <= local_king_max_samples():
        frame = local_king_pairs(mt_pruned, min_kinship)
    else:
        if numpy_engine():
            logger.info(
                "KING: %d samples are more than the numpy KING fits in this machine's "
                "memory (%d); running hl.king",
                n_samples,
                local_king_max_samples(),
            )
        king = hl.king(mt_pruned.GT)
        pairs = king.filter_entries((king.s_1 < king.s) & (king.phi > min_kinship)).entries()
        pairs = pairs.select(i=pairs.s_1, j=pairs.s, kinship=pairs.phi).key_by()
        pairs = pairs.select("i", "j", "kinship")
        frame = pairs.to_pandas()
    if frame.empty:
        frame = pd.DataFrame(
            {
                "i": pd.Series(dtype=str),
                "j": pd.Series(dtype=str),
                "kinship": pd.Series(dtype=float),
            }
        )
    frame["degree"] = [kinship_degree(float(p)) for p in frame["kinship"]]
    return frame.sort_values(["kinship", "i", "j"], ascending=[False, True, True]).reset_index(
        drop=True
    )


def related_samples_to_remove(
    pairs: pd.DataFrame, call_rate: pd.Series, max_kinship: float
) -> list[str]:
    """Samples to drop so that no remaining pair has kinship above ``max_kinship``.

    Uses :func:`hail.maximal_independent_set`; among samples of equal degree the
    one with the lower call rate is removed (then the larger sample ID).
    """
    import hail as hl

    related = pairs[pairs["kinship"] > max_kinship]
    if related.empty:
        return []
    edges = pd.DataFrame(
        {
            "i_s": related["i"].astype(str).to_numpy(),
            "i_cr": call_rate.reindex(related["i"]).astype(float).to_numpy(),
            "j_s": related["j"].astype(str).to_numpy(),
            "j_cr": call_rate.reindex(related["j"]).astype(float).to_numpy(),
        }
    )
    from gwas_prs.engine.table_io import frame_to_table

    ht = frame_to_table(
        edges, {"i_s": hl.tstr, "i_cr": hl.tfloat64, "j_s": hl.tstr, "j_cr": hl.tfloat64}
    )
    ht = ht.annotate(
        node_i=hl.struct(s=ht.i_s, call_rate=ht.i_cr),
        node_j=hl.struct(s=ht.j_s, call_rate=ht.j_cr),
    )

    def tie_breaker(
        left: hl.expr.StructExpression, right: hl.expr.StructExpression
    ) -> hl.expr.Int32Expression:
        # "larger" nodes are removed first: lower call rate, then larger ID.
        return (
            hl.case()
            .when(left.call_rate < right.call_rate, 1)
            .when(left.call_rate > right.call_rate, -1)
            .when(left.s > right.s, 1)
            .when(left.s < right.s, -1)
            .default(0)
        )

    removed = hl.maximal_independent_set(ht.node_i, ht.node_j, keep=False, tie_breaker=tie_breaker)
    return sorted(str(s) for s in removed.node.s.collect())


def summary_stats(values: pd.Series) -> dict[str, float]:
    """Mean, sd, min, max of a numeric series (for reports)."""
    array = np.asarray(values.dropna(), dtype=float)
    if array.size == 0:
        return {"mean": float("nan"), "sd": float("nan"), "min": float("nan"), "max": float("nan")}
    return {
        "mean": float(array.mean()),
        "sd": float(array.std()),
        "min": float(array.min()),
        "max": float(array.max()),
    }
