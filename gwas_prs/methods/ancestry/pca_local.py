"""HWE-normalised PCA in numpy when Hail runs locally (same definition as Hail's).

:func:`hail.hwe_normalized_pca` runs a distributed blocked Lanczos: the right
tool on a cluster, but on one machine its many Spark jobs, each with a fixed cost,
make it slow even for a few thousand SNPs. Here the pruned genotypes are exported
once as a PLINK .bed and the same matrix is built in chunks,

    X[v, s] = (g[v, s] - 2 p_v) / sqrt(2 p_v (1 - p_v) M)   (0 where g is missing),

``p_v`` the ALT frequency among called genotypes and ``M`` the number of
variants with ``0 < p_v < 1``; the sample Gram matrix ``XᵀX`` (N × N) is
accumulated chunk by chunk and eigendecomposed exactly (LAPACK ``eigh``):
eigenvalues = the top-k eigenvalues of ``XᵀX`` (Hail's), scores = ``V·√λ``,
loadings = ``X·V/√λ`` (Hail's ``U``). Signs are arbitrary in both; here each
component's largest-magnitude loading is made positive. Used for N up to
:data:`MAX_SAMPLES` (memory N² × 8 bytes).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from gwas_prs.formats.plink_bed import exported_bed, read_bed_rows

if TYPE_CHECKING:
    import hail as hl

logger = logging.getLogger(__name__)

#: Largest sample count for the numpy path (Gram matrix 20k² × 8 B = 3.2 GB).
MAX_SAMPLES = 20_000
CHUNK_VARIANTS = 4096


def local_hwe_pca(mt: hl.MatrixTable, k: int) -> tuple[list[float], float, hl.Table, hl.Table, int]:
    """``(eigenvalues, total_variance, scores_ht, loadings_ht, n_variants)`` like
    :func:`gwas_prs.methods.ancestry.structure.hwe_pca` (tables keyed as Hail's: ``s`` → ``scores``;
    ``locus``, ``alleles`` → ``loadings``, ``pca_af``)."""
    import hail as hl

    with exported_bed(mt) as (bed, n_samples, _):
        n_rows = bed.shape[0]
        af = np.zeros(n_rows)
        for a in range(0, n_rows, CHUNK_VARIANTS):
            g = read_bed_rows(bed, a, min(a + CHUNK_VARIANTS, n_rows), n_samples)
            called = (g >= 0).sum(axis=1)
            alt = np.where(g >= 0, g, 0).sum(axis=1, dtype=np.int64)
            with np.errstate(divide="ignore", invalid="ignore"):
                af[a : a + len(g)] = alt / (2.0 * called)
        keep = (af > 0) & (af < 1)
        n_variants = int(keep.sum())
        gram = np.zeros((n_samples, n_samples))

        def standardised(a: int, b: int) -> npt.NDArray[np.float64]:
            g = read_bed_rows(bed, a, b, n_samples)
            p = af[a:b, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                x = np.where(g >= 0, (g - 2 * p) / np.sqrt(2 * p * (1 - p) * n_variants), 0.0)
            return np.where(keep[a:b, None], x, 0.0)

        for a in range(0, n_rows, CHUNK_VARIANTS):
            x = standardised(a, min(a + CHUNK_VARIANTS, n_rows))
            gram += x.T @ x
        total = float(np.trace(gram))
        values, vectors = np.linalg.eigh(gram)
        order = np.argsort(values)[::-1][:k]
        values, vectors = values[order], vectors[:, order]
        root = np.sqrt(np.clip(values, 0, None))
        loadings = np.zeros((n_rows, k))
        for a in range(0, n_rows, CHUNK_VARIANTS):
            b = min(a + CHUNK_VARIANTS, n_rows)
            with np.errstate(divide="ignore", invalid="ignore"):
                loadings[a:b] = (standardised(a, b) @ vectors) / np.where(root > 0, root, 1.0)
    signs = np.sign(loadings[np.abs(loadings).argmax(axis=0), np.arange(k)])
    signs[signs == 0] = 1.0
    loadings *= signs
    scores = vectors * root * signs
    logger.info(
        "PCA (numpy): %d samples x %d variants, top eigenvalue %.4g",
        n_samples,
        n_variants,
        values[0],
    )

    # the .bed columns are in column order; mt.cols() is sorted by sample ID
    cols = mt.add_col_index("_pca_i").cols().select("_pca_i")
    scores_ht = cols.select(
        scores=hl.literal(scores.tolist(), dtype=hl.tarray(hl.tarray(hl.tfloat64)))[
            hl.int32(cols._pca_i)
        ]
    )
    rows = mt.rows().select().add_index("_pca_i")
    index = hl.int32(rows._pca_i)
    loadings_ht = rows.select(
        loadings=hl.literal(loadings.tolist(), dtype=hl.tarray(hl.tarray(hl.tfloat64)))[index],
        pca_af=hl.literal(af.tolist(), dtype=hl.tarray(hl.tfloat64))[index],
        _keep=hl.literal(keep.tolist(), dtype=hl.tarray(hl.tbool))[index],
    )
    loadings_ht = loadings_ht.filter(loadings_ht._keep).drop("_keep")
    return [float(v) for v in values], total, scores_ht, loadings_ht, n_variants
