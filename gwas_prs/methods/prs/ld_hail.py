"""The LD matrix of the LD-based PRS methods on the Hail engine (BlockMatrix).

:func:`hail_ld_matrix` is the Hail counterpart of
:func:`gwas_prs.methods.prs.ld_methods.bed_ld_matrix`: the same correlations (ALT
dosages, missing calls mean-imputed, population moments over all samples), inside
the same windows (:func:`hail.linalg.utils.locus_windows`, which never crosses a
contig), computed as a windowed ``X Xᵀ`` of the standardised genotypes with
``BlockMatrix.sparsify_row_intervals`` (only blocks that meet a window are computed),
then collected to the driver as a scipy sparse matrix for the samplers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from gwas_prs.methods.dosage import alt_dosage_expr

if TYPE_CHECKING:
    import hail as hl


def standardised_dosage_expr(mt: hl.MatrixTable) -> hl.MatrixTable:
    """``mt`` with the entry field ``_std``: ``(x − mean) / sqrt(N · var)`` of the ALT
    dosage ``x`` (mean-imputed; mean and population variance over all ``N`` columns
    after imputation), 0 for a monomorphic variant, so that ``Σ_s _std_i _std_j`` is
    the Pearson correlation of variants ``i`` and ``j``."""
    import hail as hl

    n_cols = mt.count_cols()

    def dosage_of(m: hl.MatrixTable) -> hl.Float64Expression:
        return alt_dosage_expr(m)

    dosage = dosage_of(mt)
    mt = mt.annotate_rows(
        _called=hl.agg.count_where(hl.is_defined(dosage)),
        _sum=hl.agg.sum(dosage),
        _sumsq=hl.agg.sum(dosage * dosage),
    )
    dosage = dosage_of(mt)
    mean = mt._sum / mt._called
    variance = (mt._sumsq + (n_cols - mt._called) * mean * mean) / n_cols - mean * mean
    std = hl.if_else(
        variance > 1e-12,
        (hl.or_else(dosage, mean) - mean) / hl.sqrt(variance * n_cols),
        0.0,
    )
    return mt.annotate_entries(_std=std)


def hail_ld_matrix(mt: hl.MatrixTable, window_kb: float, block_size: int = 1024) -> sp.csr_matrix:
    """Windowed correlations of the rows of ``mt`` (the variants, in key order) over its
    columns (the LD samples), as a CSR matrix with a unit diagonal.

    Memory on the driver: the band (``variants × window`` entries).
    """
    import hail as hl
    from hail.linalg import BlockMatrix

    mt = standardised_dosage_expr(mt.select_entries(*[f for f in ("GT", "DS") if f in mt.entry]))
    m = mt.count_rows()
    if m == 0:
        return sp.csr_matrix((0, 0))
    starts, stops = hl.linalg.utils.locus_windows(mt.locus, radius=int(window_kb * 1000))
    x = BlockMatrix.from_entry_expr(mt._std, block_size=block_size)
    band = (x @ x.T).sparsify_row_intervals(
        [int(v) for v in starts], [int(v) for v in stops], blocks_only=True
    )
    entries = band.entries().to_pandas()
    i = entries["i"].to_numpy(dtype=np.int64)
    j = entries["j"].to_numpy(dtype=np.int64)
    inside = (j >= np.asarray(starts)[i]) & (j < np.asarray(stops)[i]) & (i != j)
    values = entries["entry"].to_numpy(dtype=np.float64)[inside]
    off = sp.coo_matrix((values, (i[inside], j[inside])), shape=(m, m))
    return (off + sp.identity(m, format="coo")).tocsr()
