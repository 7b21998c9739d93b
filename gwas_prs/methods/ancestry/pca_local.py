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
component's largest-magnitude loading is made positive.

Above :data:`EXACT_MAX_SAMPLES` samples, or when the Gram matrix would not fit in the
machine's memory (:mod:`gwas_prs.engine.memory`), the top eigenpairs come from a
randomized subspace iteration instead (Halko, Martinsson & Tropp 2011, Algorithm 4.4;
the approach of ``plink2 --pca approx``): an N × (k + :data:`OVERSAMPLING`) random
block, :data:`POWER_ITERATIONS` passes of ``XᵀX`` over the .bed with a QR after each,
then the exact eigendecomposition of the small projected matrix. Memory N × (k + 10);
checked against the exact decomposition (|r| ≥ 0.999 per PC on the top PCs).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from gwas_prs.formats.plink_bed import exported_bed, read_bed_rows

if TYPE_CHECKING:
    import hail as hl

logger = logging.getLogger(__name__)

#: Above this many samples the randomized decomposition replaces the exact one (an
#: N³ eigendecomposition: minutes at 20,000 samples on 2 cores; plink2 suggests
#: ``--pca approx`` above 5,000 samples too).
EXACT_MAX_SAMPLES = 5_000
#: Bytes per sample pair of the exact path (the Gram matrix, LAPACK's copy, the vectors).
EXACT_BYTES_PER_PAIR = 24
#: Extra columns of the random block and passes of the randomized decomposition.
OVERSAMPLING = 10
POWER_ITERATIONS = 10
CHUNK_VARIANTS = 4096
#: ``method`` values of :func:`local_hwe_pca`.
PCA_METHODS = ("auto", "exact", "randomized")


def use_exact_pca(n_samples: int) -> bool:
    """Whether ``method="auto"`` decomposes the Gram matrix exactly for ``n_samples``."""
    from gwas_prs.engine.memory import max_square_samples

    return n_samples <= min(EXACT_MAX_SAMPLES, max_square_samples(EXACT_BYTES_PER_PAIR))


def randomized_top_eigenpairs(
    gram_times: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]],
    n: int,
    k: int,
    *,
    seed: int = 0,
    oversampling: int = OVERSAMPLING,
    iterations: int = POWER_ITERATIONS,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Top-``k`` eigenvalues (descending) and eigenvectors (n × k) of a symmetric
    positive semi-definite n × n matrix ``A`` known only through ``gram_times(Q) = A·Q``
    (randomized subspace iteration with a Rayleigh–Ritz step)."""
    width = min(n, k + oversampling)
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, width)))
    for _ in range(iterations):
        q, _ = np.linalg.qr(gram_times(q))
    projected = q.T @ gram_times(q)
    values, small = np.linalg.eigh((projected + projected.T) / 2)
    order = np.argsort(values)[::-1][:k]
    return values[order], q @ small[:, order]


def local_hwe_pca(
    mt: hl.MatrixTable, k: int, *, method: str = "auto", seed: int = 0
) -> tuple[list[float], float, hl.Table, hl.Table, int]:
    """``(eigenvalues, total_variance, scores_ht, loadings_ht, n_variants)`` like
    :func:`gwas_prs.methods.ancestry.structure.hwe_pca` (tables keyed as Hail's: ``s`` → ``scores``;
    ``locus``, ``alleles`` → ``loadings``, ``pca_af``). ``method``: ``exact``,
    ``randomized`` or ``auto`` (:func:`use_exact_pca`); ``seed`` seeds the random block."""
    import hail as hl

    if method not in PCA_METHODS:
        raise ValueError(f"method {method!r}: choose one of {', '.join(PCA_METHODS)}")
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

        def standardised(a: int, b: int) -> npt.NDArray[np.float64]:
            g = read_bed_rows(bed, a, b, n_samples)
            p = af[a:b, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                x = np.where(g >= 0, (g - 2 * p) / np.sqrt(2 * p * (1 - p) * n_variants), 0.0)
            return np.where(keep[a:b, None], x, 0.0)

        exact = method == "exact" or (method == "auto" and use_exact_pca(n_samples))
        if exact:
            gram = np.zeros((n_samples, n_samples))
            for a in range(0, n_rows, CHUNK_VARIANTS):
                x = standardised(a, min(a + CHUNK_VARIANTS, n_rows))
                gram += x.T @ x
            total = float(np.trace(gram))
            values, vectors = np.linalg.eigh(gram)
            order = np.argsort(values)[::-1][:k]
            values, vectors = values[order], vectors[:, order]
            del gram
        else:
            total = 0.0
            for a in range(0, n_rows, CHUNK_VARIANTS):
                total += float(np.square(standardised(a, min(a + CHUNK_VARIANTS, n_rows))).sum())

            def gram_times(q: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
                out = np.zeros_like(q)
                for a in range(0, n_rows, CHUNK_VARIANTS):
                    x = standardised(a, min(a + CHUNK_VARIANTS, n_rows))
                    out += x.T @ (x @ q)
                return out

            values, vectors = randomized_top_eigenpairs(gram_times, n_samples, k, seed=seed)
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
        "PCA (numpy, %s): %d samples x %d variants, top eigenvalue %.4g",
        "exact" if exact else "randomized",
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
