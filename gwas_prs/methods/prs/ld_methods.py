"""LDpred2 (auto, inf, grid) and lassosum2 from one LD matrix: the prs stage's
LD-based methods, next to clumping + thresholding.

:func:`bed_ld_matrix` builds the LD (correlations of the QC'd genotypes of the
samples the method may see, inside ``window_kb`` windows, per contig, sparse and
banded) from the silver .bed in numpy; the Hail engine builds the same matrix with
BlockMatrix (:func:`gwas_prs.methods.prs.ld_hail.hail_ld_matrix`). :func:`fit_ld_methods`
runs the samplers of :mod:`gwas_prs.methods.prs.ldpred2_local` on it (on the driver,
whatever the engine) and returns one weight vector per method and grid point.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from gwas_prs.core.errors import InputError
from gwas_prs.formats.silver_bed import SilverBed, column_indices, silver_dosage_list
from gwas_prs.methods.prs.ld_score_regression import h2_init_ldsc
from gwas_prs.methods.prs.ldpred2_local import (
    lassosum2,
    ldpred2_auto,
    ldpred2_grid,
    ldpred2_inf,
    seq_log,
)
from gwas_prs.methods.prs.sparse_ld import block_diagonal, windowed_correlation

logger = logging.getLogger(__name__)

#: The methods of ``prs --methods`` (``ct`` is clumping + thresholding).
METHODS = ("ct", "ldpred2-auto", "ldpred2-inf", "ldpred2-grid", "lassosum2")
LD_METHODS = METHODS[1:]


@dataclass(frozen=True)
class LdMethodSettings:
    """Parameters of the LD-based methods (the prs stage's ``--ld-*``/``--ldpred2-*``).

    ``window_kb``: LD window (bigsnpr uses 3 cM; without a genetic map 3000 kb);
    ``chains``: LDpred2-auto chains, with starting p log-spaced in [1e-4, 0.2] (the
    vignette runs 30); ``burn_in``/``num_iter``: sweeps of each chain (and a fifth
    of them for each LDpred2-grid point); ``grid_p``: the p values of LDpred2-grid
    (× h² · (0.7, 1, 1.4), non-sparse; bigsnpr's vignette grid has 168 points).
    """

    window_kb: float = 3000.0
    chains: int = 8
    burn_in: int = 500
    num_iter: int = 500
    seed: int = 42
    grid_p: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0)
    lassosum2_deltas: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0)
    lassosum2_n_lambda: int = 30

    def validate(self) -> None:
        if not self.window_kb > 0:
            raise InputError(f"--ld-window-kb {self.window_kb:g}: must be > 0")
        if self.chains < 1:
            raise InputError(f"--ldpred2-chains {self.chains}: must be 1 or more")
        if self.burn_in < 0 or self.num_iter < 1:
            raise InputError(
                f"--ldpred2-burn-in {self.burn_in} / --ldpred2-iterations {self.num_iter}: "
                "give a burn-in of 0 or more and 1 or more iterations"
            )


@dataclass
class LdMethodFit:
    """Weights of the LD-based methods (see :func:`fit_ld_methods`).

    ``weights``: method → float64 array, ``(m,)`` for ldpred2-auto and ldpred2-inf,
    ``(m, k)`` for the grids (NaN columns: diverged points); ``grids``: method → one
    row per column of its weights (``p``, ``h2``, ``sparse`` for ldpred2-grid;
    ``delta``, ``lambda``, ``converged``, ``diverged``, ``sparsity`` for lassosum2);
    ``auto``: LDpred2-auto's estimates (``h2``, ``h2_interval``, ``p``,
    ``p_interval``, ``chains``, ``chains_kept``, ``h2_init``); ``timings_s``.
    """

    weights: dict[str, npt.NDArray[np.float64]]
    grids: dict[str, pd.DataFrame] = field(default_factory=dict)
    auto: dict[str, Any] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)


def bed_ld_matrix(
    silver: SilverBed,
    rows: npt.NDArray[np.int64],
    samples: list[str],
    window_kb: float,
) -> sp.csr_matrix:
    """Correlations of the ALT dosages of .bed ``rows`` among ``samples``, inside
    ``window_kb`` windows on each contig (0 across contigs), as a sparse banded matrix
    in the order of ``rows`` (which must be in genome order: contig blocks, positions
    ascending). Missing calls are mean-imputed (:func:`windowed_correlation`).

    Memory: the matrix (``m × window``) and one contig's dosages of ``samples``.
    """
    columns = column_indices(silver, samples)
    contigs = silver.variants["chromosome"].to_numpy(dtype=object)[rows]
    positions = silver.variants["position"].to_numpy(dtype=np.int64)[rows]
    blocks = []
    start = 0
    while start < len(rows):
        stop = start
        while stop < len(rows) and contigs[stop] == contigs[start]:
            stop += 1
        dosages = silver_dosage_list(silver, rows[start:stop])[:, columns].T
        blocks.append(windowed_correlation(dosages, positions[start:stop], window_kb))
        start = stop
    return block_diagonal(blocks) if blocks else sp.csr_matrix((0, 0))


#: Bytes per stored correlation while the LD matrix is built (values, indices and the
#: temporaries of the construction; measured ~43 on 8M entries).
BYTES_PER_LD_ENTRY = 48


def ld_entries(contigs: npt.ArrayLike, positions: npt.ArrayLike, window_kb: float) -> int:
    """The number of correlations a windowed LD matrix stores (pairs on one contig within
    ``window_kb``, both orders, diagonal included), from the positions alone."""
    contig = np.asarray(contigs, dtype=object)
    pos = np.asarray(positions, dtype=np.int64)
    radius = int(window_kb * 1000)
    total = 0
    for name in pd.unique(contig):
        p = np.sort(pos[contig == name])
        total += int(
            (np.searchsorted(p, p + radius, "right") - np.searchsorted(p, p - radius, "left")).sum()
        )
    return total


def check_ld_memory(entries: int, window_kb: float, available_bytes: int) -> None:
    """Stop before building an LD matrix that would not fit in half of ``available_bytes``.

    Raises
    ------
    InputError
        One line: the entries and memory needed, a window that fits, ``--methods ct``.
    """
    needed = entries * BYTES_PER_LD_ENTRY
    budget = available_bytes // 2
    if needed <= budget:
        return
    fits = max(int(window_kb * budget / needed), 1)
    raise InputError(
        f"--ld-window-kb {window_kb:g}: the LD of the LDpred2/lassosum2 methods would hold "
        f"{entries:,} correlations (~{needed / 2**30:.1f} GiB, more than half of this "
        f"machine's {available_bytes / 2**30:.0f} GiB); use a narrower window, e.g. "
        f"--ld-window-kb {fits}, or only clumping + thresholding (--methods ct)"
    )


def fit_ld_methods(
    corr: sp.csr_matrix,
    beta: npt.NDArray[np.float64],
    se: npt.NDArray[np.float64],
    n: npt.NDArray[np.float64],
    methods: tuple[str, ...],
    settings: LdMethodSettings,
    ld_sample_size: int | None = None,
) -> LdMethodFit:
    """Run the LD-based ``methods`` on one LD matrix and GWAS (ALT-allele ``beta``,
    ``se``, effective ``n`` per variant, in the order of ``corr``; ``ld_sample_size``:
    the samples ``corr`` comes from, for the LD scores' bias correction).

    h² starts from LD score regression on ``corr``'s LD scores
    (:func:`gwas_prs.methods.prs.ld_score_regression.h2_init_ldsc`, as bigsnpr starts
    from ``snp_ldsc``), floored at ``H2_INIT_FLOOR``; LDpred2-inf and the
    LDpred2-grid's h² values use LDpred2-auto's estimate when auto ran and kept a
    chain, else that starting value.
    """
    weights: dict[str, npt.NDArray[np.float64]] = {}
    result = LdMethodFit(weights)
    h2, ldsc = h2_init_ldsc(beta, se, n, corr, ld_sample_size)
    result.auto["h2_init"] = h2
    result.auto["ldsc"] = {
        "h2": round(ldsc.h2, 6),
        "intercept": round(ldsc.intercept, 6),
        "mean_chi2": round(ldsc.mean_chi2, 6),
        "variants": ldsc.m,
    }
    if "ldpred2-auto" in methods:
        t = time.monotonic()
        auto = ldpred2_auto(
            corr,
            beta,
            se,
            n,
            h2_init=h2,
            vec_p_init=seq_log(1e-4, 0.2, settings.chains),
            burn_in=settings.burn_in,
            num_iter=settings.num_iter,
            seed=settings.seed,
        )
        result.timings_s["ldpred2_auto"] = round(time.monotonic() - t, 3)
        kept = int(auto.keep.sum())
        result.auto.update(
            {
                "h2": auto.h2_est,
                "h2_interval": list(auto.h2_interval),
                "p": auto.p_est,
                "p_interval": list(auto.p_interval),
                "chains": len(auto.keep),
                "chains_kept": kept,
            }
        )
        if kept:
            weights["ldpred2-auto"] = auto.beta
            h2 = float(auto.h2_est)
        else:
            logger.warning("LDpred2-auto: every chain diverged; no ldpred2-auto score")
    if "ldpred2-inf" in methods:
        t = time.monotonic()
        weights["ldpred2-inf"] = ldpred2_inf(corr, beta, se, n, h2)
        result.timings_s["ldpred2_inf"] = round(time.monotonic() - t, 3)
    if "ldpred2-grid" in methods:
        t = time.monotonic()
        params = [(p, round(h2 * f, 6), False) for f in (0.7, 1.0, 1.4) for p in settings.grid_p]
        weights["ldpred2-grid"] = ldpred2_grid(
            corr,
            beta,
            se,
            n,
            params,
            burn_in=max(settings.burn_in // 5, 1),
            num_iter=max(settings.num_iter // 5, 1),
            seed=settings.seed,
        )
        result.grids["ldpred2-grid"] = pd.DataFrame(params, columns=["p", "h2", "sparse"])
        result.timings_s["ldpred2_grid"] = round(time.monotonic() - t, 3)
    if "lassosum2" in methods:
        t = time.monotonic()
        betas, grid = lassosum2(
            corr,
            beta,
            se,
            n,
            deltas=settings.lassosum2_deltas,
            n_lambda=settings.lassosum2_n_lambda,
        )
        weights["lassosum2"] = betas
        result.grids["lassosum2"] = grid
        result.timings_s["lassosum2"] = round(time.monotonic() - t, 3)
    return result
