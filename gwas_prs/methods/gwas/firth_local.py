"""Firth-penalised logistic regression in numpy, one variant at a time: the
plink2-compatible statistic of ``gwas --test firth`` (Wald with Firth fallback).

``plink2 --glm firth-fallback`` reports, for a variant re-fitted with Firth's
penalty, a Wald statistic from the penalised fit: ``z = b_x / se`` with ``se``
from the inverse Fisher information at the penalised estimates, and
``p = 2·Φ(−|z|)``. Hail's Firth test is a penalised likelihood-ratio test on the
same estimates; its p-values differ from plink2's where the two statistics
disagree (small samples, rare variants: exactly the rows that fall back). This
module fits the penalised model itself so every row can match plink2.

The model: ``logit P(y = 1) = C·b_c + x·b_x``; Firth's penalty adds
``½·log|X'WX|`` to the log-likelihood (Jeffreys prior). Newton steps on the
modified score ``U* = X'(y − π + h(½ − π))`` (``h``: the hat matrix's diagonal),
each step capped at ``MAX_STEP`` in every coordinate and halved (at most
``MAX_HALVINGS`` times) while the penalised log-likelihood decreases, as
``logistf`` and plink2 do; converged when ``max |Δ| < TOLERANCE``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import erfc, expit

logger = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]

MAX_ITERATIONS = 100
MAX_HALVINGS = 10
MAX_STEP = 5.0
TOLERANCE = 1e-7


@dataclass
class FirthResults:
    """Per variant: ``beta``, ``standard_error``, ``z``, ``p_value`` (float64, NaN
    where the fit failed), ``converged`` (bool), ``iterations`` (int64)."""

    beta: F64
    standard_error: F64
    z: F64
    p_value: F64
    converged: npt.NDArray[np.bool_]
    iterations: npt.NDArray[np.int64]


def _penalised_loglik(design: F64, y: F64, b: F64) -> tuple[float, F64, F64]:
    """Penalised log-likelihood, π and the Fisher information at ``b``."""
    eta = design @ b
    mu = expit(eta)
    w = mu * (1.0 - mu)
    fisher = design.T @ (design * w[:, None])
    sign, logdet = np.linalg.slogdet(fisher)
    # log π and log(1 − π) from η without underflow
    loglik = float(np.sum(y * -np.logaddexp(0.0, -eta) + (1.0 - y) * -np.logaddexp(0.0, eta)))
    return (loglik + 0.5 * logdet if sign > 0 else -np.inf), mu, fisher


def firth_fit(design: F64, y: F64, start: F64 | None = None) -> tuple[F64, F64, bool, int]:
    """Fit one Firth-penalised logistic model.

    Parameters
    ----------
    design : ndarray, shape (n, m)
        Intercept, covariates and (last) the tested dosage.
    y : ndarray, shape (n,)
        0/1 outcomes.
    start : ndarray, shape (m,), optional
        Starting coefficients (default zeros).

    Returns
    -------
    beta : ndarray, shape (m,)
    covariance : ndarray, shape (m, m)
        Inverse Fisher information at ``beta`` (NaN when singular).
    converged : bool
    iterations : int
    """
    m = design.shape[1]
    b = np.zeros(m) if start is None else np.array(start, dtype=np.float64)
    current, mu, fisher = _penalised_loglik(design, y, b)
    for iteration in range(1, MAX_ITERATIONS + 1):
        try:
            inverse = np.asarray(np.linalg.inv(fisher), dtype=np.float64)
        except np.linalg.LinAlgError:
            return b, np.full((m, m), np.nan), False, iteration
        w = mu * (1.0 - mu)
        hat = w * np.einsum("ij,jk,ik->i", design, inverse, design)
        score = design.T @ (y - mu + hat * (0.5 - mu))
        delta = inverse @ score
        largest = float(np.abs(delta).max())
        if not np.isfinite(largest):
            return b, np.full((m, m), np.nan), False, iteration
        if largest < TOLERANCE:
            return b, inverse, True, iteration
        if largest > MAX_STEP:
            delta *= MAX_STEP / largest
        for _ in range(MAX_HALVINGS + 1):
            candidate = b + delta
            value, mu_c, fisher_c = _penalised_loglik(design, y, candidate)
            if value >= current - 1e-12:
                break
            delta = delta / 2.0
        b, current, mu, fisher = candidate, value, mu_c, fisher_c
    try:
        inverse = np.asarray(np.linalg.inv(fisher), dtype=np.float64)
    except np.linalg.LinAlgError:
        inverse = np.full((m, m), np.nan)
    return b, inverse, False, MAX_ITERATIONS


def firth_wald_rows(
    dosages: F64, y: npt.ArrayLike, covariates: npt.ArrayLike, start: F64 | None = None
) -> FirthResults:
    """Firth-penalised logistic regression of ``y`` on ``covariates`` (intercept
    first) and each row of ``dosages``, with plink2's Wald statistic.

    Parameters
    ----------
    dosages : ndarray, shape (variants, n)
        ALT dosages; NaN (missing) is replaced by the row's mean (as Hail and plink2
        do for missing genotypes of the samples tested).
    y : array, shape (n,)
        0/1 outcomes.
    covariates : array, shape (n, k)
        Intercept column first, then the covariates.
    start : ndarray, shape (k,), optional
        Starting covariate coefficients (e.g. the null model's); the dosage's starts at 0.

    Returns
    -------
    FirthResults
        ``beta``/``standard_error``/``z``/``p_value`` of the dosage's coefficient,
        ``z = beta / se`` with ``se = sqrt((X'WX)⁻¹)`` at the penalised estimates and
        ``p = 2·Φ(−|z|)`` (``plink2 --glm firth``'s Z_STAT and P); NaN where the fit
        did not converge.
    """
    x = np.asarray(dosages, dtype=np.float64)
    outcome = np.asarray(y, dtype=np.float64)
    base = np.asarray(covariates, dtype=np.float64)
    k = base.shape[1]
    n_var = x.shape[0]
    out = FirthResults(
        beta=np.full(n_var, np.nan),
        standard_error=np.full(n_var, np.nan),
        z=np.full(n_var, np.nan),
        p_value=np.full(n_var, np.nan),
        converged=np.zeros(n_var, dtype=bool),
        iterations=np.zeros(n_var, dtype=np.int64),
    )
    first = np.zeros(k + 1)
    if start is not None:
        first[:k] = start
    for row in range(n_var):
        values = x[row].copy()
        missing = np.isnan(values)
        if missing.all():
            continue
        values[missing] = values[~missing].mean()
        design = np.column_stack([base, values])
        b, covariance, converged, iterations = firth_fit(design, outcome, first)
        out.iterations[row] = iterations
        if not converged:
            continue
        se = float(np.sqrt(covariance[k, k])) if covariance[k, k] > 0 else np.nan
        z = b[k] / se
        out.beta[row] = b[k]
        out.standard_error[row] = se
        out.z[row] = z
        out.p_value[row] = float(erfc(abs(z) / np.sqrt(2.0)))
        out.converged[row] = True
    return out
