"""Numba inner loops of LDpred2 (grid, auto) and lassosum2 over a CSR correlation matrix.

These are the loops of bigsnpr's ``src/ldpred2.cpp``, ``src/ldpred2-auto.cpp`` and
``src/lassosum2.cpp`` (Privé et al. 2020, 2022), written anew for a scipy CSR
matrix given as its three arrays ``indptr``, ``indices``, ``data``. The public,
documented entry points are in :mod:`gwas_prs.methods.prs.ldpred2_local`; these
functions do no argument checking.

Conventions shared by all of them:

- ``R`` is **symmetric with a unit diagonal** (a correlation matrix), so column
  ``j`` is row ``j`` of the CSR arrays, and the residual of variant ``j`` is
  ``beta_hat[j] - (R @ beta)[j] + beta[j]``.
- ``beta_hat`` are the *scaled* marginal effects (``beta / sqrt(n·se² + beta²)``,
  correlations between the standardised variant and phenotype); the results are
  on that scale too.
- ``R @ beta`` is kept up to date incrementally (``dotprods += shift · R[:, j]``)
  only when ``beta[j]`` changes, which is what makes a sweep cheap for sparse
  solutions.
- Divergence is declared, as in bigsnpr, when a sweep ends with ``Σ beta² >
  2 Σ beta_hat²``; the function then returns NaN effects.
- Random numbers come from Numba's implementation of NumPy's legacy generator
  (``np.random.random``, ``np.random.normal``, ``np.random.beta``; Mersenne
  Twister), seeded with ``np.random.seed(seed)`` at the start of each call.
  Numba keeps that state per thread, so the same ``seed`` gives the same output
  whatever thread the call runs on.

All functions are ``nogil``, so independent chains or grid points can run in
threads.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@numba.njit(cache=True, nogil=True)
def ld_scores(indptr: I64, indices: I64, data: F64) -> F64:
    """Sum of squared correlations of each variant (its LD score, diagonal included)."""
    m = len(indptr) - 1
    out = np.zeros(m)
    for j in range(m):
        total = 0.0
        for k in range(indptr[j], indptr[j + 1]):
            total += data[k] * data[k]
        out[j] = total
    return out


@numba.njit(cache=True, nogil=True)
def _add_column(indptr: I64, indices: I64, data: F64, dotprods: F64, j: int, shift: float) -> None:
    """``dotprods += shift * R[:, j]`` (column = row for a symmetric matrix)."""
    for k in range(indptr[j], indptr[j + 1]):
        dotprods[indices[k]] += shift * data[k]


@numba.njit(cache=True, nogil=True)
def gibbs_grid(
    indptr: I64,
    indices: I64,
    data: F64,
    beta_hat: F64,
    n_vec: F64,
    h2: float,
    p: float,
    sparse: bool,
    burn_in: int,
    num_iter: int,
    seed: int,
) -> F64:
    """LDpred2-grid Gibbs sampler for one ``(p, h2, sparse)`` (bigsnpr ``ldpred2_gibbs_one``).

    Prior on each scaled effect: ``beta_j ~ p·N(0, h2/(m·p)) + (1-p)·δ0``. For
    each sweep and each variant ``j``: the residual ``r = beta_hat_j − (Rβ)_j +
    β_j``; with ``C1 = h2·n_j/(m·p)``, ``C2 = 1/(1 + 1/C1)``, the conditional
    posterior is ``N(C2·r, C2/n_j)`` with probability ``postp = 1 / (1 +
    (1-p)/p · sqrt(1 + C1) · exp(-(C2 r)²/(2 C2/n_j)))``, else 0. The estimate
    averages ``postp · C2 · r`` (the conditional mean, Rao-Blackwellised) over
    the ``num_iter`` sweeps after ``burn_in``. With ``sparse``, a variant whose
    ``postp < p`` is set to 0 and contributes 0 to the average.

    Returns the averaged effects (float64, length m), all NaN on divergence.
    """
    np.random.seed(seed)
    m = len(beta_hat)
    curr = np.zeros(m)
    avg = np.zeros(m)
    dotprods = np.zeros(m)
    h2_per_var = h2 / (m * p)
    inv_odd_p = (1.0 - p) / p
    gap0 = 2.0 * np.sum(beta_hat * beta_hat)
    for k in range(-burn_in, num_iter):
        gap = 0.0
        for j in range(m):
            res = beta_hat[j] - (dotprods[j] - curr[j])
            c1 = h2_per_var * n_vec[j]
            c2 = 1.0 / (1.0 + 1.0 / c1)
            c3 = c2 * res
            c4 = c2 / n_vec[j]
            postp = 1.0 / (1.0 + inv_odd_p * np.sqrt(1.0 + c1) * np.exp(-c3 * c3 / c4 / 2.0))
            diff = -curr[j]
            if sparse and postp < p:
                curr[j] = 0.0
            else:
                if postp > np.random.random():
                    curr[j] = np.random.normal(c3, np.sqrt(c4))
                    diff += curr[j]
                    gap += curr[j] * curr[j]
                else:
                    curr[j] = 0.0
                if k >= 0:
                    avg[j] += c3 * postp
            if diff != 0.0:
                _add_column(indptr, indices, data, dotprods, j, diff)
        if gap > gap0:
            avg[:] = np.nan
            return avg
    return avg / num_iter


@numba.njit(cache=True, nogil=True)
def gibbs_auto(
    indptr: I64,
    indices: I64,
    data: F64,
    beta_hat: F64,
    n_vec: F64,
    p_init: float,
    h2_init: float,
    burn_in: int,
    num_iter: int,
    report_step: int,
    no_jump_sign: bool,
    shrink_corr: float,
    p_min: float,
    p_max: float,
    h2_min: float,
    mean_ld: float,
    seed: int,
) -> tuple[F64, F64, F64, F64, F64, F64]:
    """One LDpred2-auto chain (bigsnpr ``ldpred2_gibbs_auto`` with ``use_mle = FALSE``).

    As :func:`gibbs_grid`, with ``p`` and ``h2`` re-estimated after every sweep:

    - the off-diagonal correlations are shrunk: ``R_s = shrink_corr·R + (1 −
      shrink_corr)·I`` (residual ``beta_hat_j − shrink_corr·((Rβ)_j − β_j)``);
    - ``h2 = max(β' R_s β, h2_min)``, tracked incrementally;
    - ``p ~ Beta(1 + n_causal/mean_ld, 1 + (m − n_causal)/mean_ld)`` clipped to
      ``[p_min, p_max]``, where ``n_causal`` is the number of non-zero effects
      of the sweep;
    - the prior variance of a causal scaled effect is ``h2/(m·p)`` (the earlier
      LDpred2-auto model, alpha = −1: bigsnpr's ``use_MLE = TRUE`` estimates an
      allele-frequency dependence instead; not implemented here);
    - with ``no_jump_sign``, a sampled effect of the opposite sign to the
      current one is set to 0 instead (it must go through 0 to change sign).

    Returns ``(beta_est, postp_est, corr_est, path_p, path_h2, sample_beta)``:
    posterior means of the scaled effects and of the inclusion probabilities,
    the average of ``(R_s β)_j`` (bigsnpr's ``corr_est``), the ``p`` and ``h2``
    after each of the ``burn_in + num_iter`` sweeps (NaN after a divergence), and
    the sampled effects every ``report_step`` sweeps after burn-in
    (``m × (num_iter // report_step)``).
    """
    np.random.seed(seed)
    m = len(beta_hat)
    curr = np.zeros(m)
    dotprods = np.zeros(m)
    avg_beta = np.zeros(m)
    avg_postp = np.zeros(m)
    avg_corr = np.zeros(m)
    n_report = num_iter // report_step
    sample_beta = np.zeros((m, n_report))
    ind_report = 0
    next_reported = burn_in + report_step - 1
    total = burn_in + num_iter
    path_p = np.full(total, np.nan)
    path_h2 = np.full(total, np.nan)
    cur_h2 = 0.0
    h2 = max(h2_init, h2_min)
    p = min(max(p_min, p_init), p_max)
    sigma2 = h2 / (m * p)
    gap0 = 2.0 * np.sum(beta_hat * beta_hat)
    for k in range(total):
        inv_odd_p = (1.0 - p) / p
        gap = 0.0
        n_causal = 0
        for j in range(m):
            dotprod = dotprods[j]
            prev = curr[j]
            res = beta_hat[j] - shrink_corr * (dotprod - prev)
            c1 = sigma2 * n_vec[j]
            c2 = 1.0 / (1.0 + 1.0 / c1)
            c3 = c2 * res
            c4 = c2 / n_vec[j]
            postp = 1.0 / (1.0 + inv_odd_p * np.sqrt(1.0 + c1) * np.exp(-c3 * c3 / c4 / 2.0))
            dotprod_shrunk = shrink_corr * dotprod + (1.0 - shrink_corr) * prev
            if k >= burn_in:
                avg_postp[j] += postp
                avg_beta[j] += c3 * postp
                avg_corr[j] += dotprod_shrunk
            diff = -prev
            if postp > np.random.random():
                sampled = np.random.normal(c3, np.sqrt(c4))
                if no_jump_sign and sampled * prev < 0.0:
                    curr[j] = 0.0
                else:
                    curr[j] = sampled
                    diff += sampled
                    n_causal += 1
                    gap += sampled * sampled
            else:
                curr[j] = 0.0
            if diff != 0.0:
                cur_h2 += diff * (2.0 * dotprod_shrunk + diff)
                _add_column(indptr, indices, data, dotprods, j, diff)
        if gap > gap0:
            avg_beta[:] = np.nan
            avg_postp[:] = np.nan
            avg_corr[:] = np.nan
            break
        p = np.random.beta(1.0 + n_causal / mean_ld, 1.0 + (m - n_causal) / mean_ld)
        p = min(max(p_min, p), p_max)
        h2 = max(cur_h2, h2_min)
        sigma2 = h2 / (m * p)
        path_p[k] = p
        path_h2[k] = h2
        if k == next_reported and ind_report < n_report:
            for i in range(m):
                sample_beta[i, ind_report] = curr[i]
            ind_report += 1
            next_reported += report_step
    return (
        avg_beta / num_iter,
        avg_postp / num_iter,
        avg_corr / num_iter,
        path_p,
        path_h2,
        sample_beta,
    )


@numba.njit(cache=True, nogil=True)
def lassosum2_cd(
    indptr: I64,
    indices: I64,
    data: F64,
    beta_hat: F64,
    lambdas: F64,
    delta_plus_one: F64,
    dfmax: int,
    maxiter: int,
    tol: float,
    start: F64,
) -> tuple[F64, int, bool]:
    """lassosum2 coordinate descent for one ``(lambda, delta)`` (bigsnpr ``lassosum2``),
    from ``start`` (zeros: bigsnpr's start; a previous lambda's solution: a warm start).

    Minimises ``β'(R + diag(δ))β − 2 β'beta_hat + 2 Σ_j λ_j |β_j|`` (``δ_j =
    delta_plus_one[j] − 1``) by cyclic coordinate descent from β = 0:
    ``β_j ← S(beta_hat_j − (Rβ)_j + β_j, λ_j) / (1 + δ_j)`` with the soft
    threshold ``S(u, λ) = sign(u)·max(|u| − λ, 0)``. Stops after the first sweep
    in which no coefficient moved by more than ``tol``, when more than ``dfmax``
    coefficients are non-zero, or after ``maxiter`` sweeps.

    Returns ``(beta, sweeps, converged)``; ``beta`` is all NaN on divergence.
    """
    m = len(beta_hat)
    curr = start.copy()
    dotprods = np.zeros(m)
    for j in range(m):
        if curr[j] != 0.0:
            _add_column(indptr, indices, data, dotprods, j, curr[j])
    gap0 = 2.0 * np.sum(beta_hat * beta_hat)
    for k in range(maxiter):
        conv = True
        df = 0
        gap = 0.0
        for j in range(m):
            u = beta_hat[j] - (dotprods[j] - curr[j])
            if u > lambdas[j]:
                new = (u - lambdas[j]) / delta_plus_one[j]
            elif u < -lambdas[j]:
                new = (u + lambdas[j]) / delta_plus_one[j]
            else:
                new = 0.0
            if new != 0.0:
                gap += new * new
                df += 1
            shift = new - curr[j]
            if shift != 0.0:
                if abs(shift) > tol:
                    conv = False
                curr[j] = new
                _add_column(indptr, indices, data, dotprods, j, shift)
        if gap > gap0:
            curr[:] = np.nan
            return curr, k + 1, False
        if conv:
            return curr, k + 1, True
        if df > dfmax:
            return curr, k + 1, False
    return curr, maxiter, False
