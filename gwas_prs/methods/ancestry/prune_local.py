"""LD pruning on one machine: :func:`hail.ld_prune`'s rule in numpy.

:func:`hail.ld_prune` runs in two steps. First, within each Spark partition, a
greedy pass in genomic order keeps a variant unless its r² with a variant
*already kept* on the same contig, at most ``window_bp`` before it, is
``>= r2``. Then the r² of every pair of kept variants inside the window is
recomputed with BlockMatrix products, and a maximal independent set of the
pairs still above the threshold (those that met across a partition boundary)
is removed. On one machine the second step is several Spark jobs with a fixed
cost each, and the first is a JVM loop over bit-packed genotypes, so the whole
pruning is slow on one machine.

Here the candidates' genotypes are exported once as a PLINK .bed and the
first step is applied to each contig as a whole (one "partition" per contig),
so there are no partition boundaries and no second step: the kept set is
exactly what :func:`hail.ld_prune` returns when each contig is one partition
(tested), and differs from a many-partition Hail run only where Hail's
boundary pairs were resolved by the independent set.

The r is Hail's: genotypes (ALT counts) centred on the mean of the called
genotypes, missing genotypes set to that mean, scaled to unit length; r is the
dot product of two such vectors, in float64. Variants that are all hom-ref,
all het, all hom-alt or all missing are never kept (Hail drops them too).
Pairs are compared in blocks with BLAS: each block of consecutive variants
against the kept variants in the window before it, then the block against
itself, where the greedy order is followed one variant at a time. Contigs are
independent and run side by side on the cores.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import numpy as np
import numpy.typing as npt

from gwas_prs.engine.local_threads import map_blocks
from gwas_prs.formats.plink_bed import read_bed_rows

logger = logging.getLogger(__name__)

#: Variants per block (the block-against-itself product is BLOCK² × samples).
BLOCK = 128


def standardised_genotypes(
    g: npt.NDArray[np.int8],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Hail's LD-pruning vectors of ALT counts ``g`` (rows = variants, -1 = missing).

    Returns ``(x, usable)``: ``x[v]`` is ``g[v]`` centred on the mean of its
    called genotypes, missing entries 0, scaled to unit length; ``usable`` is
    False for variants Hail skips (all hom-ref, all het, all hom-alt or all
    missing), whose rows of ``x`` are 0.
    """
    called = g >= 0
    n_called = called.sum(axis=1)
    dosage = np.where(called, g, 0).astype(np.float64)
    total = dosage.sum(axis=1)
    squares = (dosage * dosage).sum(axis=1)
    usable = (
        (n_called > 0)
        & (total != 0)  # all hom-ref
        & ~((total == n_called) & (squares == n_called))  # all het
        & (total != 2 * n_called)  # all hom-alt
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(n_called > 0, total / np.maximum(n_called, 1), 0.0)
        centred = np.where(called, dosage - mean[:, None], 0.0)
        length = np.sqrt((centred * centred).sum(axis=1))
        x = centred / np.where(length > 0, length, 1.0)[:, None]
    x[~usable] = 0.0
    return x, usable


def prune_rows(
    bed: npt.NDArray[np.uint8],
    n_samples: int,
    contigs: npt.NDArray[Any],
    positions: npt.NDArray[np.int64],
    *,
    r2: float,
    window_bp: int,
    block: int = BLOCK,
) -> npt.NDArray[np.bool_]:
    """Which rows of a .bed (sorted by locus) :func:`hail.ld_prune`'s greedy rule keeps.

    Parameters
    ----------
    bed, n_samples
        The memory-mapped .bed of :func:`gwas_prs.methods.ld_local.exported_bed`.
    contigs, positions
        The rows' loci, in row order (contigs contiguous, positions ascending).
    r2, window_bp
        A variant is dropped when its r² with a kept variant of the same contig
        at most ``window_bp`` before it is ``>= r2``.

    Returns
    -------
    numpy.ndarray of bool, one per row: True for the variants kept.
    """
    n = len(positions)
    kept = np.zeros(n, dtype=bool)
    cuts = [0, *(np.flatnonzero(contigs[1:] != contigs[:-1]) + 1).tolist(), n]

    def prune_contig(bounds: tuple[int, int]) -> tuple[list[int], int]:
        start, end = bounds
        return _prune_contig(bed, n_samples, positions, start, end, r2, window_bp, block)

    compared = 0
    # contigs are independent: they run side by side on the cores
    for kept_rows, pairs in map_blocks(prune_contig, itertools.pairwise(cuts)):
        kept[kept_rows] = True
        compared += pairs
    logger.info(
        "LD pruning (numpy): %d of %d variants kept (r2 < %s within %d kb; %d pairs compared)",
        int(kept.sum()),
        n,
        r2,
        window_bp // 1000,
        compared,
    )
    return kept


def _prune_contig(
    bed: npt.NDArray[np.uint8],
    n_samples: int,
    positions: npt.NDArray[np.int64],
    start: int,
    end: int,
    r2: float,
    window_bp: int,
    block: int,
) -> tuple[list[int], int]:
    """The greedy rule over rows ``start:end`` (one contig): kept rows, pairs compared."""
    kept: list[int] = []
    compared = 0
    # kept variants of this contig that may still be in a later block's window
    window_pos = np.zeros(0, dtype=np.int64)
    window_x = np.zeros((0, n_samples))
    for a in range(start, end, block):
        b = min(a + block, end)
        x, usable = standardised_genotypes(read_bed_rows(bed, a, b, n_samples))
        pos = positions[a:b]
        inside = window_pos >= pos[0] - window_bp
        window_pos, window_x = window_pos[inside], window_x[inside]
        if len(window_pos):
            r = x @ window_x.T
            near = (pos[:, None] - window_pos[None, :]) <= window_bp
            blocked = ((r * r >= r2) & near).any(axis=1)
            compared += len(pos) * len(window_pos)
        else:
            blocked = np.zeros(len(pos), dtype=bool)
        within = x @ x.T
        within *= within
        compared += len(pos) * (len(pos) - 1) // 2
        chosen: list[int] = []
        for i in range(len(pos)):
            if not usable[i] or blocked[i]:
                continue
            if chosen:
                earlier = np.asarray(chosen)
                near_i = (pos[i] - pos[earlier]) <= window_bp
                if (within[i, earlier][near_i] >= r2).any():
                    continue
            chosen.append(i)
        if chosen:
            idx = np.asarray(chosen)
            kept.extend((a + idx).tolist())
            window_pos = np.concatenate([window_pos, pos[idx]])
            window_x = np.vstack([window_x, x[idx]])
    return kept, compared
