"""PLINK 1.9 clumping LD on one machine: banded r² in numpy instead of BlockMatrix jobs.

:func:`gwas_prs.methods.prs.clumping.ld_edges` builds the 3×3 genotype tables of every pair
inside the clumping window from Hail BlockMatrix products: correct on a cluster,
but on one machine each product is several Spark jobs with a fixed cost, so
clumping even a few thousand variants is far slower than ``plink1.9 --clump``.
When Hail runs locally (``local[N]``) the candidates' genotypes are exported
once as a PLINK 1 ``.bed`` (2 bits per genotype, one Hail pass) and
the same tables come from float32 BLAS products of consecutive row chunks
against their window (integer counts, exact below 2^24 samples), with the
``.bed`` memory-mapped so memory stays at one chunk plus its window.

The r² is PLINK 1.9's EM haplotype r², the very expression of
:func:`gwas_prs.methods.prs.clumping.haplotype_r2_expr`, evaluated only where it can
matter: the haplotype frequency ``p11`` lies in ``[x11/n, (x11 + h)/n]`` whatever
the EM does (``h`` double heterozygotes, ``pA`` and ``pB`` do not depend on the
phase), so ``D = p11 - pA·pB`` is bounded and a pair whose bound on r² is
clearly below (above) the threshold is decided without EM. The margin (1e-6
relative) is far above floating-point error, so the edge list is the one the
full EM gives: identical index variants.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from gwas_prs.engine.local_threads import map_blocks
from gwas_prs.formats.plink_bed import exported_bed, read_bed_rows

if TYPE_CHECKING:
    import hail as hl

logger = logging.getLogger(__name__)

#: EM iterations, as :data:`gwas_prs.methods.prs.clumping.EM_ITERATIONS`.
EM_ITERATIONS = 60
#: Relative margin around the r² threshold inside which the EM is run.
BOUND_MARGIN = 1e-6


def locus_windows_np(
    contigs: npt.NDArray[Any], positions: npt.NDArray[np.int64], radius: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Like :func:`hail.linalg.utils.locus_windows`: rows within ``radius`` bp (inclusive).

    Rows must be sorted by locus (contigs contiguous, positions ascending).
    Returns ``starts``, ``stops`` (row ``i``'s window is ``starts[i]:stops[i]``).
    """
    n = len(positions)
    starts = np.empty(n, dtype=np.int64)
    stops = np.empty(n, dtype=np.int64)
    cuts = [0, *(np.flatnonzero(contigs[1:] != contigs[:-1]) + 1).tolist(), n]
    for s, e in itertools.pairwise(cuts):
        pos = positions[s:e]
        starts[s:e] = s + np.searchsorted(pos, pos - radius, side="left")
        stops[s:e] = s + np.searchsorted(pos, pos + radius, side="right")
    return starts, stops


def haplotype_r2(t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """PLINK 1.9 EM r² from 3×3 genotype counts ``t[:, 3a+b]`` (numpy twin of
    :func:`gwas_prs.methods.prs.clumping.haplotype_r2_expr`; NaN for a monomorphic variant)."""
    x11 = 2 * t[:, 8] + t[:, 7] + t[:, 5]
    x10 = 2 * t[:, 6] + t[:, 7] + t[:, 3]
    x01 = 2 * t[:, 2] + t[:, 5] + t[:, 1]
    x00 = 2 * t[:, 0] + t[:, 1] + t[:, 3]
    h = t[:, 4]
    n = x11 + x10 + x01 + x00 + 2 * h
    with np.errstate(divide="ignore", invalid="ignore"):
        p11, p10 = (x11 + h / 2) / n, (x10 + h / 2) / n
        p01, p00 = (x01 + h / 2) / n, (x00 + h / 2) / n
        em = np.flatnonzero(h > 0)
        if len(em):
            e11, e10, e01, e00 = x11[em], x10[em], x01[em], x00[em]
            eh, en = h[em], n[em]
            q11, q10, q01, q00 = p11[em], p10[em], p01[em], p00[em]
            for _ in range(EM_ITERATIONS):
                coupled = q11 * q00
                total = coupled + q10 * q01
                f = np.where(total > 0, coupled / np.where(total > 0, total, 1.0), 0.5)
                q11 = (e11 + f * eh) / en
                q10 = (e10 + (1 - f) * eh) / en
                q01 = (e01 + (1 - f) * eh) / en
                q00 = (e00 + f * eh) / en
            p11[em], p10[em], p01[em] = q11, q10, q01
        plain = np.flatnonzero(h == 0)
        p11[plain], p10[plain], p01[plain] = (
            x11[plain] / n[plain],
            x10[plain] / n[plain],
            x01[plain] / n[plain],
        )
        p_a = p11 + p10
        p_b = p11 + p01
        d = p11 - p_a * p_b
        return np.asarray(d * d / (p_a * (1 - p_a) * p_b * (1 - p_b)))


def r2_edges_from_tables(t: npt.NDArray[np.float64], r2: float) -> npt.NDArray[np.bool_]:
    """Which pairs (rows of 3×3 tables ``t``) have EM r² ``>= r2``; EM only where needed."""
    x11 = 2 * t[:, 8] + t[:, 7] + t[:, 5]
    x10 = 2 * t[:, 6] + t[:, 7] + t[:, 3]
    x01 = 2 * t[:, 2] + t[:, 5] + t[:, 1]
    x00 = 2 * t[:, 0] + t[:, 1] + t[:, 3]
    h = t[:, 4]
    n = x11 + x10 + x01 + x00 + 2 * h
    with np.errstate(divide="ignore", invalid="ignore"):
        p_a = (x11 + x10 + h) / n
        p_b = (x11 + x01 + h) / n
        denominator = p_a * (1 - p_a) * p_b * (1 - p_b)
        d_lo = x11 / n - p_a * p_b
        d_hi = (x11 + h) / n - p_a * p_b
        high = np.maximum(d_lo * d_lo, d_hi * d_hi) / denominator
        low = np.where((d_lo <= 0) & (d_hi >= 0), 0.0, np.minimum(d_lo * d_lo, d_hi * d_hi))
        low = low / denominator
    valid = denominator > 1e-12
    sure = valid & (low >= r2 * (1 + BOUND_MARGIN))
    unsure = np.flatnonzero(valid & ~sure & (high >= r2 * (1 - BOUND_MARGIN)))
    result = sure.copy()
    if len(unsure):
        result[unsure] = haplotype_r2(t[unsure]) >= r2
    return result


#: Relative margin of the screen that discards pairs before the exact r² (well above
#: the rounding of its float64 arithmetic; the exact test uses :data:`BOUND_MARGIN`).
SCREEN_MARGIN = 1e-3


def _tables(
    t11: npt.NDArray[np.float64],
    dh_ab: npt.NDArray[np.float64],
    dh_ba: npt.NDArray[np.float64],
    dd: npt.NDArray[np.float64],
    hc_ab: npt.NDArray[np.float64],
    dc_ab: npt.NDArray[np.float64],
    hc_ba: npt.NDArray[np.float64],
    dc_ba: npt.NDArray[np.float64],
    total: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """3×3 genotype tables (cells ``t[3a+b]``) from the pair products and margins."""
    t21 = (dh_ab - t11) / 2
    t12 = (dh_ba - t11) / 2
    t22 = (dd - t11 - 2 * t12 - 2 * t21) / 4
    a1, b1 = hc_ab, hc_ba
    a2, b2 = (dc_ab - a1) / 2, (dc_ba - b1) / 2
    t10 = a1 - t11 - t12
    t20 = a2 - t21 - t22
    t01 = b1 - t11 - t21
    t02 = b2 - t12 - t22
    t00 = total - a1 - a2 - t01 - t02
    return np.stack([t00, t01, t02, t10, t11, t12, t20, t21, t22], axis=1)


def banded_edges(
    bed: npt.NDArray[np.uint8],
    n_samples: int,
    starts: npt.NDArray[np.int64],
    stops: npt.NDArray[np.int64],
    r2: float,
    chunk: int | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Pairs ``i < j < stops[i]`` of .bed rows with PLINK 1.9 r² ``>= r2`` (chunked BLAS).

    Rows are taken ``chunk`` at a time (default: the median forward window, so
    the products cover about twice the in-window pairs) against their window,
    the chunks spread over the cores (:func:`gwas_prs.engine.local_threads.map_blocks`).

    Chunks without missing calls take a screened path: the largest r² any
    phasing allows needs only ``D·Dᵀ`` and ``H·Hᵀ`` (``x11 = (DD - HH)/2``,
    ``h = HH``, allele frequencies from each variant's own counts), so two
    products and a few operations on the chunk discard the pairs that cannot
    reach ``r2``; the full tables (two more dot products per pair) and the exact
    test of :func:`r2_edges_from_tables` run on the survivors only. Chunks with
    missing calls use the margins among samples called at both variants.
    """
    del starts  # pairs are enumerated forwards: j in (i, stops[i])
    n = len(stops)
    forward = stops - np.arange(n)
    if chunk is None:
        chunk = int(np.clip(np.median(forward) if n else 128, 64, 2048))

    def edges_of(a: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], int]:
        return _chunk_edges(bed, n_samples, stops, a, min(a + chunk, n), r2)

    found = list(map_blocks(edges_of, range(0, n, chunk)))
    pairs_total = sum(f[2] for f in found)
    found_i = [f[0] for f in found if len(f[0])]
    found_j = [f[1] for f in found if len(f[1])]
    n_edges = sum(len(f) for f in found_i)
    logger.info("clumping LD: %d pairs in windows, %d with r2 >= %s", pairs_total, n_edges, r2)
    if not found_i:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    return np.concatenate(found_i).astype(np.int64), np.concatenate(found_j).astype(np.int64)


def standardised_dosages(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Rows of ALT dosages (NaN = missing) mean-imputed, centred and scaled to unit
    norm (a constant row is all 0), so that a product of two rows is their Pearson r."""
    called = ~np.isnan(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(called, values, 0.0).sum(axis=1) / called.sum(axis=1)
    centred = np.where(called, values - mean[:, None], 0.0)
    norm = np.sqrt(np.square(centred).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = centred / norm[:, None]
    return np.where(np.isfinite(out), out, 0.0)


def banded_dosage_edges(
    dosage_rows: Callable[[int, int], npt.NDArray[np.float64]],
    stops: npt.NDArray[np.int64],
    r2: float,
    chunk: int | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Pairs ``i < j < stops[i]`` whose dosage r² (the squared Pearson correlation of the
    mean-imputed ALT dosages, as plink2 computes r² on dosage data) is ``>= r2``.

    ``dosage_rows(a, b)`` gives rows ``a:b`` (NaN = missing) of the LD samples; each
    chunk of rows is read with its forward window, the chunks spread over the cores."""
    n = len(stops)
    forward = stops - np.arange(n)
    if chunk is None:
        chunk = int(np.clip(np.median(forward) if n else 128, 64, 2048))

    def edges_of(a: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        b = min(a + chunk, n)
        stop = int(stops[a:b].max()) if b > a else b
        x = standardised_dosages(dosage_rows(a, stop))
        r = x[: b - a] @ x.T  # rows a:b against a:stop
        i, j = np.nonzero(r * r >= r2)
        i, j = i + a, j + a
        keep = (j > i) & (j < stops[i])
        return i[keep].astype(np.int64), j[keep].astype(np.int64)

    found = list(map_blocks(edges_of, range(0, n, chunk)))
    found_i = [f[0] for f in found if len(f[0])]
    found_j = [f[1] for f in found if len(f[1])]
    logger.info("clumping LD (dosages): %d pairs with r2 >= %s", sum(len(f) for f in found_i), r2)
    if not found_i:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    return np.concatenate(found_i), np.concatenate(found_j)


def _chunk_edges(
    bed: npt.NDArray[np.uint8],
    n_samples: int,
    stops: npt.NDArray[np.int64],
    a: int,
    b: int,
    r2: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], int]:
    """Edges ``(i, j)`` of :func:`banded_edges` with ``a <= i < b``, and the number of
    in-window pairs examined."""
    empty = np.zeros(0, dtype=np.int64)
    stop = int(stops[a:b].max())
    if stop <= a + 1:
        return empty, empty, 0
    g = read_bed_rows(bed, a, stop, n_samples)
    called = g >= 0
    dos = np.where(called, g, 0).astype(np.float32)
    het = (g == 1).astype(np.float32)
    m = b - a
    rows = np.arange(a, b)[:, None]
    cols = np.arange(a, stop)[None, :]
    in_window = (cols > rows) & (cols < stops[a:b][:, None])
    n_pairs = int(in_window.sum())
    if called.all():
        dd = dos[:m] @ dos.T  # float32 products of 0/1/2 counts: exact integers
        hh = het[:m] @ het.T
        ii, kk = _screened_pairs(dd, hh, dos, m, in_window, n_samples, r2)
        if len(ii) == 0:
            return empty, empty, n_pairs
        het_count = het.sum(axis=1, dtype=np.float64)
        dos_count = dos.sum(axis=1, dtype=np.float64)
        dh = dos[:m] @ het.T
        hd = het[:m] @ dos.T
        tables = _tables(
            hh[ii, kk].astype(np.float64),
            dh[ii, kk].astype(np.float64),
            hd[ii, kk].astype(np.float64),
            dd[ii, kk].astype(np.float64),
            het_count[ii],
            dos_count[ii],
            het_count[kk],
            dos_count[kk],
            np.full(len(ii), float(n_samples)),
        )
    else:
        ii, kk = np.nonzero(in_window)
        if len(ii) == 0:
            return empty, empty, n_pairs

        def pick(
            left: npt.NDArray[np.float32], right: npt.NDArray[np.float32]
        ) -> npt.NDArray[np.float64]:
            return np.asarray((left[:m] @ right.T)[ii, kk], dtype=np.float64)

        cal = called.astype(np.float32)
        tables = _tables(
            pick(het, het),
            pick(dos, het),
            pick(het, dos),
            pick(dos, dos),
            pick(het, cal),
            pick(dos, cal),
            pick(cal, het),
            pick(cal, dos),
            pick(cal, cal),
        )
    keep = r2_edges_from_tables(tables, r2)
    return (a + ii[keep]).astype(np.int64), (a + kk[keep]).astype(np.int64), n_pairs


def _screened_pairs(
    dd: npt.NDArray[np.float32],
    hh: npt.NDArray[np.float32],
    dos: npt.NDArray[np.float32],
    m: int,
    in_window: npt.NDArray[np.bool_],
    n_samples: int,
    r2: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """In-window pairs (row ``i`` of the chunk, column ``k``) whose r² bound can reach
    ``r2`` when no call is missing.

    With ``x11 = (DD - HH)/2`` and ``h = HH`` the bound of
    :func:`r2_edges_from_tables` is ``(|DD - 4N pA pB| + HH)² / (4N)² /
    (pA qA pB qB)``, so a pair can reach ``r2`` only if ``|DD - 4N pA pB| + HH >=
    4N sqrt(r2 (1 - margin)) sqrt(pA qA pB qB)``: a handful of float32 operations
    on the chunk (the margin dwarfs their rounding).
    """
    four_n = 4.0 * n_samples
    p = dos.sum(axis=1, dtype=np.float64) / (2.0 * n_samples)
    q = np.sqrt(np.clip(p * (1 - p), 0.0, None))
    centred = np.subtract(
        dd, np.multiply.outer((four_n * p[:m]).astype(np.float32), p.astype(np.float32))
    )
    np.abs(centred, out=centred)
    centred += hh
    scale = four_n * np.sqrt(r2 * (1 - SCREEN_MARGIN))
    bound = np.multiply.outer((scale * q[:m]).astype(np.float32), q.astype(np.float32))
    reach = centred >= bound
    reach &= in_window
    reach &= np.multiply.outer(q[:m] > 1e-6, q > 1e-6)  # monomorphic: r² undefined
    ii, kk = np.nonzero(reach)
    return ii.astype(np.int64), kk.astype(np.int64)


def local_ld_edges(
    mt: hl.MatrixTable,
    contigs: npt.NDArray[Any],
    positions: npt.NDArray[np.int64],
    radius_kb: int,
    r2: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Clumping LD edges of the rows of ``mt`` (``GT``), exported once as a local .bed.

    ``contigs``/``positions`` are the rows' loci in row order. Returns row-index
    pairs ``i < j`` within ``radius_kb`` with PLINK 1.9 r² ``>= r2``.
    """
    starts, stops = locus_windows_np(contigs, positions, radius_kb * 1000)
    with exported_bed(mt) as (bed, n_samples, _):
        return banded_edges(bed, n_samples, starts, stops, r2)
