"""Logistic-regression Wald tests in numpy, many variants at a time (Hail local mode).

:func:`hail.logistic_regression_rows` fits one small model per variant in the
JVM, several times slower than ``plink2 --glm`` on the same data on one machine.
There the same fits are faster as batched linear algebra: the genotypes come from
one PLINK .bed export and each block of variants is fitted together, with the
Fisher information of every variant in a block from one BLAS product.

The model, per variant: ``logit P(y = 1) = C·b_c + x·b_x`` with ``C`` the
covariates (intercept first) and ``x`` the ALT dosage, missing dosages
replaced by the mean of the called ones. The fit is Hail's Newton-Raphson
(``LogisticRegressionModel.fit``), step by step: start from the null model's
coefficients with ``b_x = 0``; at most 25 times solve ``F·Δ = U`` (Fisher
information, score); stop with ``converged`` when ``max |Δ| < 1e-6`` (that last
step is not applied), else take it. A singular ``F`` or a NaN step marks the
variant ``exploded``. Standard errors are ``sqrt(diag(F⁻¹))`` at the final
coefficients, ``z = b_x / se`` and ``p = 2·Φ(-|z|)``, computed as
``erfc(|z|/√2)`` (accurate far into the tail).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import numpy.typing as npt

from gwas_prs.core.errors import ComputationError
from gwas_prs.engine.local_threads import map_blocks
from gwas_prs.formats.plink_bed import read_bed_rows

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

MAX_ITERATIONS = 25
TOLERANCE = 1e-6
#: Variants fitted together.
BLOCK = 2048
#: Bytes per variant × sample that one Wald block holds while it is fitted (the
#: decoded genotypes, the dosage, fitted probabilities, weights, the design products).
WALD_BYTES_PER_ENTRY = 64

#: What :func:`wald_block` returns for B variants: ``beta``, ``se`` (float64),
#: ``converged``, ``exploded`` (bool), ``iterations`` (int64), each of length B.
WaldBlock: TypeAlias = tuple[
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.bool_],
    npt.NDArray[np.bool_],
    npt.NDArray[np.int64],
]


@dataclass
class WaldResults:
    """Per variant, in .bed row order: ``beta``, ``standard_error``, ``z``,
    ``p_value`` (float64, NaN where the fit did not converge), ``converged``,
    ``exploded`` (bool), ``iterations`` (int) and ``alt_af`` (mean dosage / 2
    over the called genotypes of the samples fitted)."""

    beta: npt.NDArray[np.float64]
    standard_error: npt.NDArray[np.float64]
    z: npt.NDArray[np.float64]
    p_value: npt.NDArray[np.float64]
    converged: npt.NDArray[np.bool_]
    exploded: npt.NDArray[np.bool_]
    iterations: npt.NDArray[np.int64]
    alt_af: npt.NDArray[np.float64]


def _sigmoid(eta: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    from scipy.special import expit

    return np.asarray(expit(eta), dtype=np.float64)


def null_fit(
    y: npt.NDArray[np.float64], covariates: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Coefficients of the covariates-only model (Hail's null fit, from the
    intercept-only start). Raises :class:`ComputationError` if it fails."""
    k = covariates.shape[1]
    b = np.zeros(k)
    mean = y.mean()
    b[0] = np.log(mean / (1 - mean))
    for _ in range(MAX_ITERATIONS + 1):
        mu = _sigmoid(covariates @ b)
        score = covariates.T @ (y - mu)
        fisher = covariates.T @ (covariates * (mu * (1 - mu))[:, None])
        try:
            delta = np.linalg.solve(fisher, score)
        except np.linalg.LinAlgError:
            break
        if np.abs(delta).max() < TOLERANCE:
            return b
        b = b + delta
    raise ComputationError(
        "the logistic null model (covariates only) did not converge; check the covariates "
        "for collinearity or perfect separation"
    )


def wald_block(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    covariates: npt.NDArray[np.float64],
    b_null: npt.NDArray[np.float64],
) -> WaldBlock:
    """Fit ``B`` variants at once. ``x``: B × samples dosages (already imputed; one
    contiguous row per variant, which keeps the per-variant sums fast).

    Returns ``beta, se, converged, exploded, iterations`` (arrays of length B).
    """
    from scipy.special import expit

    n, k = covariates.shape
    m = k + 1
    n_var = x.shape[0]
    cc = (covariates[:, :, None] * covariates[:, None, :]).reshape(n, k * k)
    b = np.zeros((n_var, m))
    b[:, :k] = b_null
    converged = np.zeros(n_var, dtype=bool)
    exploded = np.zeros(n_var, dtype=bool)
    iterations = np.ones(n_var, dtype=np.int64)
    fisher = np.zeros((n_var, m, m))
    score = np.zeros((n_var, m))

    def update(idx: npt.NDArray[np.int64]) -> None:
        """Score and Fisher information of the variants ``idx`` at their ``b``."""
        xs = x if len(idx) == n_var else x[idx]
        coef = b[idx]
        eta = coef[:, :k] @ covariates.T
        eta += xs * coef[:, k : k + 1]
        mu = expit(eta, out=eta)
        w = mu * (1 - mu)
        resid = np.subtract(y[None, :], mu, out=mu)
        score[idx, :k] = resid @ covariates
        score[idx, k] = np.einsum("ij,ij->i", xs, resid)
        wx = w * xs
        fisher[idx, :k, :k] = (w @ cc).reshape(len(idx), k, k)
        cross = wx @ covariates
        fisher[idx, :k, k] = cross
        fisher[idx, k, :k] = cross
        fisher[idx, k, k] = np.einsum("ij,ij->i", wx, xs)

    active = np.arange(n_var)
    update(active)
    while len(active):
        delta = np.full((len(active), m), np.nan)
        try:
            delta = np.linalg.solve(fisher[active], score[active][:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            for pos, v in enumerate(active):  # a singular matrix in the block: one by one
                with contextlib.suppress(np.linalg.LinAlgError):
                    delta[pos] = np.linalg.solve(fisher[v], score[v])
        bad = ~np.isfinite(delta).all(axis=1)
        exploded[active[bad]] = True
        done = ~bad & (np.abs(np.where(np.isfinite(delta), delta, 0.0)).max(axis=1) < TOLERANCE)
        converged[active[done]] = True
        step = ~bad & ~done & (iterations[active] < MAX_ITERATIONS)
        stopped = ~bad & ~done & ~step  # ran out of iterations
        iterations[active[stopped]] += 1
        moving = active[step]
        iterations[moving] += 1
        b[moving] += delta[step]
        if len(moving):
            update(moving)
        active = moving
    beta = np.full(n_var, np.nan)
    se = np.full(n_var, np.nan)
    ok = np.flatnonzero(converged)
    if len(ok):
        try:
            inverse = np.linalg.inv(fisher[ok])
            diag = inverse[:, k, k]
        except np.linalg.LinAlgError:
            diag = np.array([_inverse_last(fisher[v], k) for v in ok])
        with np.errstate(invalid="ignore"):
            se[ok] = np.sqrt(diag)
        beta[ok] = b[ok, k]
    return beta, se, converged, exploded, iterations


def _inverse_last(matrix: npt.NDArray[np.float64], k: int) -> float:
    try:
        return float(np.linalg.inv(matrix)[k, k])
    except np.linalg.LinAlgError:
        return float("nan")


def logistic_wald_rows(
    bed: npt.NDArray[np.uint8],
    n_samples: int,
    y: npt.NDArray[np.float64],
    covariates: npt.NDArray[np.float64],
    *,
    block: int = BLOCK,
    columns: npt.NDArray[np.int64] | None = None,
    dosage_rows: Callable[[int, int], npt.NDArray[np.float64]] | None = None,
) -> WaldResults:
    """Wald test of every variant (row) of a .bed against a 0/1 trait.

    Parameters
    ----------
    bed, n_samples
        From :func:`gwas_prs.methods.ld_local.exported_bed` or
        :func:`gwas_prs.formats.silver_bed.open_silver_bed`.
    y
        0/1 trait of the fitted samples, in .fam order or ``columns`` order (no
        missing values).
    covariates
        Samples × k design matrix, intercept column first (no missing values).
    columns
        The .bed columns of the samples to fit, in the order of ``y``; default
        every sample.
    dosage_rows
        ``(first, stop) →`` ALT dosages (rows × every .bed column, NaN missing) to
        test instead of the .bed's hard calls (imputed cohorts:
        :func:`gwas_prs.formats.silver_bed.silver_dosage_rows`).

    Returns
    -------
    :class:`WaldResults`; see the module docstring for the fit.
    """
    from scipy.special import erfc

    from gwas_prs.engine.local_threads import local_cores
    from gwas_prs.engine.memory import rows_per_block

    n_rows = bed.shape[0]
    # every worker holds a block's dosages, weights and Fisher products at once
    block = rows_per_block(len(y), WALD_BYTES_PER_ENTRY, local_cores(), block)
    b_null = null_fit(y, covariates)
    out = {
        name: np.full(n_rows, np.nan)
        for name in ("beta", "standard_error", "z", "p_value", "alt_af")
    }
    converged = np.zeros(n_rows, dtype=bool)
    exploded = np.zeros(n_rows, dtype=bool)
    iterations = np.zeros(n_rows, dtype=np.int64)

    def fit(a: int) -> tuple[int, WaldBlock, npt.NDArray[np.float64]]:
        b = min(a + block, n_rows)
        if dosage_rows is None:
            g = read_bed_rows(bed, a, b, n_samples)  # variants × samples
            if columns is not None:
                g = g[:, columns]
            called = g >= 0
            dosage = np.where(called, g, 0).astype(np.float64)
        else:
            values = dosage_rows(a, b)
            if columns is not None:
                values = values[:, columns]
            called = ~np.isnan(values)
            dosage = np.where(called, values, 0.0)
        n_called = called.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = dosage.sum(axis=1) / n_called
        x = np.where(called, dosage, mean[:, None])
        return a, wald_block(x, y, covariates, b_null), mean

    for a, (beta, se, conv, expl, iters), mean in map_blocks(fit, range(0, n_rows, block)):
        b = a + len(beta)
        out["beta"][a:b], out["standard_error"][a:b] = beta, se
        out["alt_af"][a:b] = mean / 2
        converged[a:b], exploded[a:b], iterations[a:b] = conv, expl, iters
    with np.errstate(divide="ignore", invalid="ignore"):
        out["z"] = out["beta"] / out["standard_error"]
        out["p_value"] = erfc(np.abs(out["z"]) / np.sqrt(2.0))
    logger.info(
        "logistic Wald (numpy): %d variants, %d converged, %d exploded",
        n_rows,
        int(converged.sum()),
        int(exploded.sum()),
    )
    return WaldResults(
        beta=out["beta"],
        standard_error=out["standard_error"],
        z=out["z"],
        p_value=out["p_value"],
        converged=converged,
        exploded=exploded,
        iterations=iterations,
        alt_af=out["alt_af"],
    )


def design_matrix(frame: pd.DataFrame, covariates: list[str]) -> npt.NDArray[np.float64]:
    """Samples × (1 + covariates) float64 matrix, intercept first."""
    columns = [np.ones(len(frame))] + [frame[c].to_numpy(dtype=np.float64) for c in covariates]
    return np.column_stack(columns)
