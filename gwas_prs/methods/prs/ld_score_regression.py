"""LD score regression (Bulik-Sullivan et al. 2015) on an in-memory sparse LD matrix:
the SNP heritability LDpred2-auto starts from, as bigsnpr's ``snp_ldsc`` gives it.

Kernels on arrays; the prs stage calls them through
:func:`gwas_prs.methods.prs.ld_methods.fit_ld_methods`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

logger = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]

#: LDpred2-auto's starting h² is at least this: chains started near 0 can stay at a
#: degenerate fixed point (almost no variant included, h² ≈ 0) on a low-powered GWAS.
H2_INIT_FLOOR = 0.01


def ld_scores(corr: sp.spmatrix, n_ld: float | None = None) -> F64:
    """Per-variant LD scores ``l_j = Σ_k r̃²_jk`` over the stored band of ``corr``
    (diagonal included), with the unbiased ``r̃² = r² − (1 − r²)/(n_ld − 2)`` of
    LDSC when ``n_ld`` (the samples the correlations come from) is given.

    Returns
    -------
    ndarray, float64, shape (m,)
        LD scores (≥ 1 for a variant whose only stored entry is its diagonal).
    """
    csr = sp.csr_matrix(corr, dtype=np.float64)  # no copy when already float64 CSR
    r2 = csr.data * csr.data
    if n_ld is not None and n_ld > 2:
        r2 = r2 - (1.0 - r2) / (n_ld - 2.0)
    # row sums over the stored band, sharing the matrix's index arrays (no second LD)
    return np.asarray(
        sp.csr_matrix((r2, csr.indices, csr.indptr), shape=csr.shape).sum(axis=1),
        dtype=np.float64,
    ).ravel()


@dataclass(frozen=True)
class LdscResult:
    """``h2``: SNP heritability (``slope · M / N``; may be ≤ 0 when there is no
    signal); ``intercept``: the regression's intercept (≈ 1 without confounding);
    ``mean_chi2``; ``m`` variants; ``n`` mean sample size."""

    h2: float
    intercept: float
    mean_chi2: float
    m: int
    n: float


def ld_score_regression(
    chi2: npt.ArrayLike,
    ld_score: npt.ArrayLike,
    n: npt.ArrayLike,
    intercept: float | None = None,
    iterations: int = 3,
) -> LdscResult:
    """LD score regression: ``E[χ²_j] = a + N h² l_j / M``, with the intercept ``a``
    free (``intercept=None``) or fixed.

    Weighted least squares with LDSC's weights, re-estimated ``iterations`` times:
    ``w_j = 1 / (max(l_j, 1) · (a + N h² l_j / M)²)`` (the first factor down-weights
    variants tagged many times, the second the heteroscedasticity of χ² under the
    model), starting from ``a = 1`` and the aggregate estimate of h².

    Parameters
    ----------
    chi2 : array, shape (m,)
        Association χ² statistics (``(beta/se)²``).
    ld_score : array, shape (m,)
        LD scores of the same variants (:func:`ld_scores`), from the same LD the
        methods use (the window limits what is counted).
    n : array or float
        Sample size per variant (effective N for binary traits).
    intercept : float, optional
        Fix the intercept (1: no confounding, as LDSC's ``--intercept-h2 1``);
        default free.

    Returns
    -------
    LdscResult
        h² on the scale of the GWAS (observed scale for a binary trait with
        effective N), the intercept and the inputs' summary.

    Warnings
    --------
    With a few thousand variants or a GWAS without signal the estimate is noisy and
    can be negative; bigsnpr uses it only as the starting value of LDpred2-auto
    (floored at :data:`H2_INIT_FLOOR` by :func:`h2_init_ldsc`).
    """
    x2 = np.asarray(chi2, dtype=np.float64)
    ell = np.asarray(ld_score, dtype=np.float64)
    nn = np.broadcast_to(np.asarray(n, dtype=np.float64), x2.shape)
    keep = np.isfinite(x2) & np.isfinite(ell) & np.isfinite(nn)
    x2, ell, nn = x2[keep], ell[keep], nn[keep]
    m = int(x2.size)
    n_mean = float(nn.mean()) if m else float("nan")
    mean_chi2 = float(x2.mean()) if m else float("nan")
    if m < 3 or not np.ptp(ell) > 0:
        h2 = (mean_chi2 - 1.0) * m / (n_mean * float(ell.mean())) if m else float("nan")
        return LdscResult(float(h2), 1.0, mean_chi2, m, n_mean)
    fixed = intercept is not None
    a = 1.0 if intercept is None else float(intercept)
    h2 = float(np.clip((mean_chi2 - a) * m / (n_mean * ell.mean()), 0.0, 1.0))
    slope_x = nn * ell / m
    for _ in range(max(iterations, 1)):
        expected = np.maximum(a + nn * float(np.clip(h2, 0.0, 1.0)) * ell / m, 1.0)
        root = np.sqrt(1.0 / (np.maximum(ell, 1.0) * expected * expected))
        if fixed:
            h2 = float(np.sum(root * slope_x * root * (x2 - a)) / np.sum((root * slope_x) ** 2))
        else:
            design = np.column_stack([np.ones(m), slope_x]) * root[:, None]
            coef, *_ = np.linalg.lstsq(design, x2 * root, rcond=None)
            a, h2 = float(coef[0]), float(coef[1])
    return LdscResult(h2, a, mean_chi2, m, n_mean)


def h2_init_ldsc(
    beta: npt.ArrayLike,
    se: npt.ArrayLike,
    n: npt.ArrayLike,
    corr: sp.spmatrix,
    n_ld: float | None = None,
) -> tuple[float, LdscResult]:
    """LDpred2-auto's starting h²: :func:`ld_score_regression` on the GWAS and the
    LD scores of ``corr``, with the intercept fixed at 1, clipped to
    ``[H2_INIT_FLOOR, 1]``. A free intercept is too noisy on the few thousand
    variants of a small study to start from (and the chains re-estimate h²).

    Returns the starting value and the regression's result (for metrics.json).
    """
    b = np.asarray(beta, dtype=np.float64)
    s = np.asarray(se, dtype=np.float64)
    result = ld_score_regression((b / s) ** 2, ld_scores(corr, n_ld), n, intercept=1.0)
    start = (
        float(np.clip(result.h2, H2_INIT_FLOOR, 1.0)) if np.isfinite(result.h2) else H2_INIT_FLOOR
    )
    logger.info(
        "LD score regression: h2 %.4g, intercept %.4g (mean chi2 %.4g, %d variants); "
        "LDpred2 starts from h2 %.4g",
        result.h2,
        result.intercept,
        result.mean_chi2,
        result.m,
        start,
    )
    return start, result
