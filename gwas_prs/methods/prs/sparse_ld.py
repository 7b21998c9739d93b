"""Banded LD (Pearson correlation) matrices for LDpred2 and lassosum2, in scipy CSR.

LDpred2 and lassosum2 (:mod:`gwas_prs.methods.prs.ldpred2_local`) take the SNP
correlation matrix ``R`` of an LD reference as a sparse matrix: only pairs of
variants close to each other on one chromosome are stored, everything else is
taken as 0. bigsnpr builds it with ``snp_cor(G, size = 3 / 1000, infos.pos =
genetic positions in cM)``, i.e. a **3 cM** window. Without a genetic map this
project uses physical distance instead: ``window_kb`` kilobases (the default the
PRS stage uses is 3000 kb, about 3 cM at the genome-wide average of roughly
1 cM per Mb; recombination hot and cold spots make the two differ locally).

:func:`windowed_correlation` computes one contig, block by block (memory in
``variants × window``, never the dense ``variants²`` matrix), and
:func:`block_diagonal` puts contigs together (no LD between contigs).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

#: Kilobases of the default LD window (≈ LDpred2's 3 cM without a genetic map).
DEFAULT_WINDOW_KB = 3000.0
#: A variant whose (mean-imputed) dosage standard deviation is at most this is monomorphic.
MONOMORPHIC_SD = 1e-10
#: Columns of the dosage matrix standardised at a time when computing moments.
_MOMENT_CHUNK = 2048


def _column_moments(
    x: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-column mean over the called (non-NaN) samples and the population standard
    deviation of the mean-imputed column (divisor ``n_samples``), chunk by chunk."""
    n, m = x.shape
    means = np.zeros(m)
    sds = np.zeros(m)
    for a in range(0, m, _MOMENT_CHUNK):
        b = min(a + _MOMENT_CHUNK, m)
        block = np.asarray(x[:, a:b], dtype=np.float64)
        called = ~np.isnan(block)
        count = called.sum(axis=0)
        total = np.where(called, block, 0.0).sum(axis=0)
        mean = np.divide(total, count, out=np.zeros(b - a), where=count > 0)
        centred = np.where(called, block - mean, 0.0)
        means[a:b] = mean
        sds[a:b] = np.sqrt((centred * centred).sum(axis=0) / n)
    return means, sds


def _standardised(
    block: npt.NDArray[np.float64],
    means: npt.NDArray[np.float64],
    sds: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Columns centred and scaled to unit (population) variance; missing → 0 (the mean),
    monomorphic columns → all 0."""
    block = np.asarray(block, dtype=np.float64)
    polymorphic = sds > MONOMORPHIC_SD
    inverse = np.divide(1.0, sds, out=np.zeros_like(sds), where=polymorphic)
    z = (block - means) * inverse
    z[np.isnan(z)] = 0.0
    return z


def windowed_correlation(
    dosages: npt.ArrayLike,
    positions: npt.ArrayLike,
    window_kb: float = DEFAULT_WINDOW_KB,
    *,
    block_size: int | None = None,
) -> sp.csr_matrix:
    """Pearson correlations between the variants (columns) of ``dosages`` within
    ``window_kb`` kilobases, as a banded sparse matrix.

    Computes ``R[i, j] = corr(dosages[:, i], dosages[:, j])`` for every pair with
    ``|positions[i] - positions[j]| <= 1000 * window_kb`` (inclusive, as
    :func:`hail.linalg.utils.locus_windows`); pairs farther apart are not stored
    (implicitly 0). Missing dosages (NaN) are replaced by the variant's mean over
    the called samples before correlating, and correlations use all samples (as
    ``np.corrcoef`` on the mean-imputed matrix, and bigsnpr's ``snp_cor`` on
    imputed genotypes).

    The product is taken ``block_size`` variants at a time against their forward
    window (standardised on the fly), so memory is the result (``variants ×
    window``) plus one ``samples × (block + window)`` block; the dense
    ``variants²`` matrix is never formed.

    Parameters
    ----------
    dosages : array-like, float64, shape (n_samples, n_variants)
        ALT dosages (0..2), NaN for a missing call. A memory-mapped array works
        (only column blocks are read).
    positions : array-like, int or float, shape (n_variants,)
        Base-pair positions of the variants of **one contig**, sorted ascending
        (ties allowed). Use :func:`block_diagonal` to combine contigs.
    window_kb : float
        Half-width of the window in kilobases. Default 3000 kb, the project's
        physical stand-in for LDpred2's recommended 3 cM window.
    block_size : int, optional
        Variants per block; default: the median forward window, clipped to 64..1024.

    Returns
    -------
    scipy.sparse.csr_matrix, float64, shape (n_variants, n_variants)
        Symmetric (bit-for-bit: ``R[i, j]`` and ``R[j, i]`` are the same number),
        diagonal exactly 1, sorted indices, explicit zeros removed. A
        monomorphic variant (or one with no called sample) has correlation 0
        with every other variant and 1 on the diagonal.

    Warnings
    --------
    - Positions must be those of one contig and sorted; they are checked, and a
      ``ValueError`` is raised otherwise (an unsorted input would silently drop
      real LD pairs, and LDpred2 would then double-count correlated signals).
    - Mean imputation shrinks the correlations of a variant with many missing
      calls towards 0; filter such variants (call rate) first.
    - A window far smaller than LD blocks (e.g. ``window_kb=0``) gives an almost
      diagonal matrix: LDpred2/lassosum2 then treat correlated variants as
      independent and over-count their signal.
    - The banded matrix is in general **not** positive semi-definite; LDpred2 is
      robust to this (bigsnpr uses the same windows), a Cholesky factorisation is not.
    """
    x = np.asarray(dosages)
    if x.ndim != 2:
        raise ValueError(f"dosages must be 2-dimensional (samples × variants), got {x.shape}")
    n, m = x.shape
    pos = np.asarray(positions, dtype=np.float64)
    if pos.shape != (m,):
        raise ValueError(f"positions has shape {pos.shape}, expected ({m},) (one per column)")
    if m and (np.any(np.isnan(pos)) or np.any(np.diff(pos) < 0)):
        raise ValueError("positions must be sorted ascending (one contig, no NaN)")
    if window_kb < 0:
        raise ValueError(f"window_kb must be >= 0, got {window_kb}")
    if n < 2 and m:
        raise ValueError(f"at least 2 samples are needed to correlate, got {n}")
    radius = 1000.0 * float(window_kb)
    starts = np.searchsorted(pos, pos - radius, side="left").astype(np.int64)
    stops = np.searchsorted(pos, pos + radius, side="right").astype(np.int64)
    widths = stops - starts
    nnz = int(widths.sum())
    index_dtype = np.int32 if nnz < np.iinfo(np.int32).max else np.int64
    indptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(widths, out=indptr[1:])
    indices = (np.repeat(starts - indptr[:-1], widths) + np.arange(nnz)).astype(index_dtype)
    data = np.zeros(nnz, dtype=np.float64)
    data[indptr[:-1] + (np.arange(m) - starts)] = 1.0  # diagonal
    if block_size is None:
        forward = stops - np.arange(m)
        block_size = int(np.clip(np.median(forward) if m else 64, 64, 1024))
    means, sds = _column_moments(x)
    for a in range(0, m, block_size):
        b = min(a + block_size, m)
        stop = int(stops[a:b].max())
        if stop <= a + 1:
            continue
        z = _standardised(x[:, a:stop], means[a:stop], sds[a:stop])
        product = (z[:, : b - a].T @ z) / n  # rows a..b against columns a..stop
        rows = np.arange(a, b)[:, None]
        cols = np.arange(a, stop)[None, :]
        in_window = (cols > rows) & (cols < stops[a:b][:, None])
        ii, kk = np.nonzero(in_window)
        i = a + ii
        j = a + kk
        values = product[ii, kk]
        data[indptr[i] + (j - starts[i])] = values  # upper triangle, row i
        data[indptr[j] + (i - starts[j])] = values  # the mirror, row j
    corr = sp.csr_matrix((data, indices, indptr.astype(index_dtype)), shape=(m, m))
    corr.eliminate_zeros()
    corr.has_sorted_indices = True
    return corr


def block_diagonal(mats: Sequence[sp.spmatrix | sp.sparray]) -> sp.csr_matrix:
    """Correlation matrices of several contigs as one block-diagonal CSR matrix.

    Parameters
    ----------
    mats : sequence of sparse matrices
        One square matrix per contig, in the order the variants are listed (the
        order of the summary statistics passed to LDpred2/lassosum2).

    Returns
    -------
    scipy.sparse.csr_matrix, float64
        ``sum(sizes) × sum(sizes)``, with ``mats[k]`` on the diagonal and 0 (not
        stored) between contigs.
    """
    if not mats:
        raise ValueError("block_diagonal needs at least one matrix")
    for k, mat in enumerate(mats):
        if mat.shape[0] != mat.shape[1]:
            raise ValueError(f"matrix {k} is not square: {mat.shape}")
    out = sp.block_diag(list(mats), format="csr", dtype=np.float64)
    out.sort_indices()
    return sp.csr_matrix(out)
