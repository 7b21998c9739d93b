"""LDpred2 (inf, grid, auto) and lassosum2: polygenic scores from summary statistics and LD.

Numpy/Numba versions of bigsnpr's ``snp_ldpred2_inf``, ``snp_ldpred2_grid``,
``snp_ldpred2_auto`` (Privé, Arbel & Vilhjálmsson 2020, *Bioinformatics*,
"LDpred2: better, faster, stronger"; Privé et al. 2022, *HGG Advances*, for
``shrink_corr`` and ``allow_jump_sign``) and ``snp_lassosum2`` (Privé et al.
2022, *AJHG*, "Identifying and correcting for misspecifications in GWAS
summary statistics and polygenic scores"). The loops are in
:mod:`gwas_prs.methods.prs.ldpred2_numba_fns`; the LD matrix comes from
:func:`gwas_prs.methods.prs.sparse_ld.windowed_correlation`.

Every function is a pure leaf: arrays and numbers in, arrays (or a dataclass)
out, no configuration objects, no files.

Inputs shared by all methods
----------------------------
``corr``
    The variants' correlation matrix in an LD reference, a symmetric
    ``m × m`` scipy sparse matrix with a unit diagonal (banded, e.g. 3 cM or
    3000 kb windows), in the same variant order as the summary statistics and
    for the same (effect) alleles.
``beta``, ``se``
    Marginal GWAS effects and standard errors (length ``m``) on the allele
    scale (per ALT allele; log-odds for a logistic GWAS).
``n``
    The (effective) GWAS sample size, one number or one per variant. For a
    binary trait, bigsnpr recommends ``n_eff = 4 / (1/n_cases + 1/n_controls)``.

The effects are put on the scale of correlations (:func:`scale_sumstats`:
``beta_hat = beta / sqrt(n·se² + beta²)``), every model is fitted on that
scale, and the results are multiplied back by the same ``scale`` so they are
per-allele weights again (to be used with ALT dosages, like the GWAS betas).

Warnings
--------
- Summary statistics and LD must come from the **same ancestry** and the same
  allele coding; a mismatch (or wrong per-variant ``n``, or variants whose
  GWAS was run on far fewer samples) makes the Gibbs samplers diverge or
  over-fit. Divergence is detected (``Σ β² > 2 Σ beta_hat²`` after a sweep)
  and returns NaN effects; LDpred2-auto then drops the chain.
- ``n`` matters: it sets the noise level ``1/n`` of each ``beta_hat``. Using the
  total sample size where many variants were tested on a subset makes their
  effects look more precise than they are.
- An LD matrix with (almost) no off-diagonal correlations (a window of 0, or
  variants in the wrong order) makes the samplers treat correlated variants as
  independent: their signal is counted several times and h² is over-estimated.
- Variants absent from the LD reference, or monomorphic in it (correlation 0
  with all others), should be removed before calling these functions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import cg, minres

from gwas_prs.engine.local_threads import map_blocks
from gwas_prs.methods.prs import ldpred2_numba_fns as fns

logger = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]

#: Lower bound on h² inside LDpred2-auto (bigsnpr ``MIN_H2``).
H2_MIN = 1e-3
#: Default bounds on p in LDpred2-auto (bigsnpr ``p_bounds``).
P_BOUNDS = (1e-5, 1.0)
#: Largest allowed deviation of the diagonal of ``corr`` from 1.
DIAGONAL_TOLERANCE = 1e-6


def seq_log(start: float, stop: float, num: int) -> F64:
    """``num`` values from ``start`` to ``stop``, equally spaced on the log scale
    (bigsnpr/bigstatsr ``seq_log``)."""
    return np.asarray(np.exp(np.linspace(np.log(start), np.log(stop), num)), dtype=np.float64)


def scale_sumstats(beta: npt.ArrayLike, se: npt.ArrayLike, n: npt.ArrayLike) -> tuple[F64, F64]:
    """Marginal effects on the correlation scale, as bigsnpr's LDpred2/lassosum2.

    Computes ``scale = sqrt(n·se² + beta²)`` and ``beta_hat = beta / scale``. For
    a linear regression of a phenotype on one variant, ``beta_hat`` is the
    correlation between the variant and the phenotype (``scale`` = sd(y)/sd(x)),
    so the models can assume standardised genotypes and phenotype.

    Parameters
    ----------
    beta, se : array-like, float64, shape (m,)
        Marginal effects and their standard errors (``se > 0``).
    n : float or array-like, shape (m,)
        (Effective) sample size, one for all variants or one each.

    Returns
    -------
    beta_hat : ndarray, float64, shape (m,)
        Scaled effects, in ``(-1, 1)``.
    scale : ndarray, float64, shape (m,)
        Multiply scaled effects by ``scale`` to get allele-scale effects back.
    """
    b = np.asarray(beta, dtype=np.float64)
    s = np.asarray(se, dtype=np.float64)
    nn = np.broadcast_to(np.asarray(n, dtype=np.float64), b.shape)
    scale = np.sqrt(nn * s * s + b * b)
    return b / scale, scale


def h2_init_from_chi2(
    beta: npt.ArrayLike, se: npt.ArrayLike, n: npt.ArrayLike, mean_ld: float = 1.0
) -> float:
    """A rough starting value of the SNP heritability from the mean χ² statistic.

    Computes ``h2 = (mean(χ²) − 1) · M / (N · mean_ld)`` with ``χ² = (beta/se)²``,
    ``M`` variants and ``N`` the mean sample size, clipped to ``[1e-4, 1]``. This
    is LD score regression with the intercept fixed at 1 and every LD score
    equal to ``mean_ld`` (with ``mean_ld = 1``: no LD, the plain formula).

    bigsnpr initialises LDpred2-auto with ``snp_ldsc2`` (LD score regression);
    use that estimate when you have it. LDpred2-auto only needs a starting value:
    the chains re-estimate h² from the data.

    Returns
    -------
    float
        The heritability starting value.
    """
    b = np.asarray(beta, dtype=np.float64)
    s = np.asarray(se, dtype=np.float64)
    n_mean = float(np.mean(np.broadcast_to(np.asarray(n, dtype=np.float64), b.shape)))
    chi2 = float(np.mean((b / s) ** 2))
    h2 = (chi2 - 1.0) * len(b) / (n_mean * mean_ld)
    return float(np.clip(h2, 1e-4, 1.0))


@dataclass(frozen=True)
class _Problem:
    """Validated inputs: CSR arrays with int64 indices, scaled effects, sample sizes."""

    indptr: npt.NDArray[np.int64]
    indices: npt.NDArray[np.int64]
    data: F64
    beta_hat: F64
    scale: F64
    n: F64

    @property
    def m(self) -> int:
        return len(self.beta_hat)


def _prepare(
    corr: sp.spmatrix | sp.sparray, beta: npt.ArrayLike, se: npt.ArrayLike, n: npt.ArrayLike
) -> _Problem:
    b = np.ascontiguousarray(beta, dtype=np.float64)
    s = np.ascontiguousarray(se, dtype=np.float64)
    if b.ndim != 1 or s.shape != b.shape:
        raise ValueError(f"beta and se must be 1-d of the same length, got {b.shape}, {s.shape}")
    m = len(b)
    if m == 0:
        raise ValueError("no variants")
    if corr.shape != (m, m):
        raise ValueError(f"corr has shape {corr.shape}, expected ({m}, {m}) (one per variant)")
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(s)) and np.all(s > 0)):
        raise ValueError("beta must be finite and se finite and > 0")
    nn = np.ascontiguousarray(np.broadcast_to(np.asarray(n, dtype=np.float64), (m,)))
    if not (np.all(np.isfinite(nn)) and np.all(nn > 0)):
        raise ValueError("n must be finite and > 0")
    csr = sp.csr_matrix(corr, dtype=np.float64)
    csr.sum_duplicates()
    diagonal = csr.diagonal()
    bad = np.flatnonzero(np.abs(diagonal - 1.0) > DIAGONAL_TOLERANCE)
    if len(bad):
        raise ValueError(
            f"corr must have a unit diagonal (a correlation matrix); variant {int(bad[0])} "
            f"has {diagonal[bad[0]]}"
        )
    beta_hat, scale = scale_sumstats(b, s, nn)
    return _Problem(
        indptr=np.ascontiguousarray(csr.indptr, dtype=np.int64),
        indices=np.ascontiguousarray(csr.indices, dtype=np.int64),
        data=np.ascontiguousarray(csr.data, dtype=np.float64),
        beta_hat=np.ascontiguousarray(beta_hat),
        scale=scale,
        n=nn,
    )


def _seeds(seed: int | None, count: int) -> list[int]:
    """``count`` independent 32-bit seeds (one per chain or grid point) from ``seed``."""
    state = np.random.SeedSequence(seed).generate_state(max(count, 1), dtype=np.uint32)
    return [int(v) for v in state[:count]]


def ldpred2_inf(
    corr: sp.spmatrix | sp.sparray,
    beta: npt.ArrayLike,
    se: npt.ArrayLike,
    n: npt.ArrayLike,
    h2: float,
) -> F64:
    """LDpred2-inf: posterior mean effects under the infinitesimal model (bigsnpr
    ``snp_ldpred2_inf``).

    Every variant is causal with scaled effect ``N(0, h2/M)``; the posterior mean
    solves ``(R + diag(M / (N_j · h2))) b = beta_hat`` (conjugate gradients, MINRES
    when the banded ``R`` makes the system indefinite),
    and ``b · scale`` is returned.

    Parameters
    ----------
    corr : scipy sparse matrix, shape (m, m)
        LD correlations (symmetric, unit diagonal).
    beta, se, n : see the module docstring.
    h2 : float
        SNP heritability captured by the ``m`` variants (``> 0``).

    Returns
    -------
    ndarray, float64, shape (m,)
        Effects on the allele scale (weights for ALT dosages).

    Warnings
    --------
    With a small ``h2`` or large ``N`` the added diagonal is small and the
    solution inherits the noise of a banded ``R`` that is not positive
    definite; LDpred2-inf is usually the weakest of the LDpred2 models.
    """
    if not h2 > 0:
        raise ValueError(f"h2 must be > 0, got {h2}")
    problem = _prepare(corr, beta, se, n)
    m = problem.m
    csr = sp.csr_matrix((problem.data, problem.indices, problem.indptr), shape=(m, m))
    system = (csr + sp.diags(m / (h2 * problem.n))).tocsr()
    # Krylov solvers: memory ∝ the matrix (a direct sparse factorisation of a wide LD
    # band fills in and can need many times the matrix's memory). CG for the usual
    # positive definite system, MINRES when the banded R makes it indefinite.
    b = problem.beta_hat
    tol = 1e-12
    solution, info = cg(system, b, rtol=tol, atol=0.0, maxiter=20 * m + 100)
    if info != 0:
        solution, info = minres(system, b, rtol=tol, maxiter=20 * m + 100)
    if info != 0:
        logger.warning("LDpred2-inf: the solver did not converge (%d); no ldpred2-inf score", info)
        return np.full(m, np.nan)
    return np.asarray(solution, dtype=np.float64) * problem.scale


def ldpred2_default_grid(h2: float) -> list[tuple[float, float, bool]]:
    """The LDpred2-grid hyper-parameters of the bigsnpr vignette: ``p`` in 21
    log-spaced values from 1e-5 to 1 (2 significant digits), ``h2 × (0.3, 0.7,
    1, 1.4)``, non-sparse and sparse: 168 ``(p, h2, sparse)`` triples."""
    p_seq = [float(f"{v:.2g}") for v in seq_log(1e-5, 1.0, 21)]
    h2_seq = [round(h2 * f, 4) for f in (0.3, 0.7, 1.0, 1.4)]
    return [(p, h, s) for s in (False, True) for h in h2_seq for p in p_seq]


def ldpred2_grid(
    corr: sp.spmatrix | sp.sparray,
    beta: npt.ArrayLike,
    se: npt.ArrayLike,
    n: npt.ArrayLike,
    params: Sequence[tuple[float, float, bool]] | pd.DataFrame,
    burn_in: int = 50,
    num_iter: int = 100,
    seed: int | None = None,
) -> F64:
    """LDpred2-grid: one Gibbs sampler per ``(p, h2, sparse)`` (bigsnpr ``snp_ldpred2_grid``).

    Prior on each scaled effect: causal with probability ``p``, then
    ``N(0, h2/(M·p))``, else 0. Each grid point runs ``burn_in + num_iter``
    sweeps of the Gibbs sampler from 0 and returns the posterior mean averaged
    over the last ``num_iter`` (see
    :func:`gwas_prs.methods.prs.ldpred2_numba_fns.gibbs_grid`). With ``sparse``,
    effects whose posterior inclusion probability is below ``p`` are exactly 0.
    Grid points run in parallel threads (the local cores).

    Parameters
    ----------
    corr, beta, se, n : see the module docstring.
    params : sequence of (p, h2, sparse), or a DataFrame with columns p, h2, sparse
        The grid; :func:`ldpred2_default_grid` gives bigsnpr's.
    burn_in, num_iter : int
        Sweeps discarded, and averaged (bigsnpr defaults 50 and 100).
    seed : int, optional
        Same seed → same output (each grid point gets its own stream derived
        from ``seed`` and its position). ``None`` draws fresh entropy.

    Returns
    -------
    ndarray, float64, shape (m, len(params))
        Allele-scale effects, one column per grid point; a column of NaN where
        the sampler diverged.

    Warnings
    --------
    The best grid point must be chosen on a validation set independent of the
    GWAS (and of the test set); LDpred2-auto needs none.
    """
    grid = _grid_triples(params)
    problem = _prepare(corr, beta, se, n)
    seeds = _seeds(seed, len(grid))

    def one(index: int) -> F64:
        p, h2, sparse = grid[index]
        return np.asarray(
            fns.gibbs_grid(
                problem.indptr,
                problem.indices,
                problem.data,
                problem.beta_hat,
                problem.n,
                h2,
                p,
                sparse,
                int(burn_in),
                int(num_iter),
                seeds[index],
            )
        )

    columns = list(map_blocks(one, range(len(grid))))
    out = np.column_stack(columns) if columns else np.zeros((problem.m, 0))
    return out * problem.scale[:, None]


def _grid_triples(
    params: Sequence[tuple[float, float, bool]] | pd.DataFrame,
) -> list[tuple[float, float, bool]]:
    if isinstance(params, pd.DataFrame):
        rows = zip(params["p"], params["h2"], params["sparse"], strict=True)
    else:
        rows = (tuple(t) for t in params)  # type: ignore[assignment]
    grid = [(float(p), float(h2), bool(sparse)) for p, h2, sparse in rows]
    for p, h2, _ in grid:
        if not (0 < p <= 1 and h2 > 0):
            raise ValueError(f"grid point p={p}, h2={h2}: need 0 < p <= 1 and h2 > 0")
    return grid


@dataclass(frozen=True)
class LdpredAutoResult:
    """LDpred2-auto chains and their combination (see :func:`ldpred2_auto`).

    ``k`` chains, ``m`` variants, ``T = burn_in + num_iter`` sweeps.

    Attributes
    ----------
    beta : ndarray, float64, (m,)
        Final allele-scale effects: the mean of the kept chains' ``chain_beta``
        (all NaN when no chain is kept).
    keep : ndarray, bool, (k,)
        Chains that pass bigsnpr's filter (``chain_range > 0.95 ×`` the 95th
        percentile of ``chain_range``).
    h2_est, p_est : float
        Median of the sampled h² (p) over the last ``num_iter`` sweeps of all
        kept chains (NaN when none is kept).
    h2_interval, p_interval : tuple of float
        2.5% and 97.5% quantiles of the same pooled samples: a 95% credible interval.
    chain_beta : ndarray, float64, (m, k)
        Each chain's posterior mean effects, allele scale (NaN if it diverged).
    chain_beta_sparse : ndarray, float64, (m, k) or None
        With ``sparse=True``: LDpred2-grid with ``sparse`` at each chain's
        ``(p_est, h2_est)``, allele scale.
    chain_postp : ndarray, float64, (m, k)
        Posterior probabilities of being causal.
    chain_corr_est : ndarray, float64, (m, k)
        Average ``(R_s β)_j``: the "imputed" marginal correlations, comparable to
        the scaled ``beta_hat`` (for QC).
    chain_range : ndarray, float64, (k,)
        ``max − min`` of ``chain_corr_est`` per chain (NaN if diverged).
    chain_h2_est, chain_p_est : ndarray, float64, (k,)
        Per chain, the mean of h² (p) over the last ``num_iter`` sweeps (bigsnpr's
        ``h2_est`` / ``p_est``).
    path_h2, path_p : ndarray, float64, (k, T)
        h² and p after each sweep, burn-in included (NaN after a divergence).
    p_init : ndarray, float64, (k,)
        Starting p of each chain.
    h2_init : float
        Starting h² (the same for all chains).
    sample_beta : ndarray, float64, (k, m, num_iter // report_step) or None
        With ``report_step``: effects sampled every ``report_step`` sweeps after
        burn-in, on the **allele** scale (bigsnpr returns them scaled).
    burn_in, num_iter : int
        As given.
    """

    beta: F64
    keep: npt.NDArray[np.bool_]
    h2_est: float
    h2_interval: tuple[float, float]
    p_est: float
    p_interval: tuple[float, float]
    chain_beta: F64
    chain_beta_sparse: F64 | None
    chain_postp: F64
    chain_corr_est: F64
    chain_range: F64
    chain_h2_est: F64
    chain_p_est: F64
    path_h2: F64
    path_p: F64
    p_init: F64
    h2_init: float
    sample_beta: F64 | None
    burn_in: int
    num_iter: int


def keep_chains(chain_range: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """bigsnpr's recommended LDpred2-auto chain filter (vignette "LDpred2").

    Keeps the chains with ``range > 0.95 · quantile(range, 0.95)``, where
    ``range`` is ``max − min`` of a chain's ``corr_est`` (NaN = diverged, never
    kept; the quantile ignores NaN, linear interpolation as R's default type 7).
    """
    r = np.asarray(chain_range, dtype=np.float64)
    if not np.any(np.isfinite(r)):
        return np.zeros(r.shape, dtype=bool)
    threshold = 0.95 * float(np.nanquantile(r, 0.95))
    with np.errstate(invalid="ignore"):
        return np.asarray(np.isfinite(r) & (r > threshold))


def ldpred2_auto(
    corr: sp.spmatrix | sp.sparray,
    beta: npt.ArrayLike,
    se: npt.ArrayLike,
    n: npt.ArrayLike,
    h2_init: float | None = None,
    vec_p_init: npt.ArrayLike | None = None,
    burn_in: int = 500,
    num_iter: int = 500,
    seed: int | None = None,
    *,
    shrink_corr: float = 0.95,
    allow_jump_sign: bool = False,
    p_bounds: tuple[float, float] = P_BOUNDS,
    report_step: int | None = None,
    sparse: bool = False,
) -> LdpredAutoResult:
    """LDpred2-auto: Gibbs chains that estimate p and h² themselves (bigsnpr
    ``snp_ldpred2_auto``), combined and filtered as the bigsnpr vignette recommends.

    Each chain starts from ``h2_init`` and one value of ``vec_p_init`` and runs
    ``burn_in + num_iter`` sweeps of the LDpred2 Gibbs sampler, drawing after
    every sweep a new ``p ~ Beta(1 + M_c/ℓ, 1 + (M − M_c)/ℓ)`` (``M_c`` non-zero
    effects, ``ℓ`` the mean LD score of ``corr``) clipped to ``p_bounds``, and
    setting ``h2 = max(β'R_sβ, 1e-3)`` with the shrunk correlations ``R_s =
    shrink_corr·R + (1 − shrink_corr)·I`` (see
    :func:`gwas_prs.methods.prs.ldpred2_numba_fns.gibbs_auto`). Chains run in
    parallel threads. Chains that diverged or whose predictions are off scale
    are dropped by :func:`keep_chains`; ``beta`` averages the others.

    Parameters
    ----------
    corr, beta, se, n : see the module docstring.
    h2_init : float, optional
        Starting heritability; bigsnpr uses the LD score regression estimate
        (``snp_ldsc2``). Default: :func:`h2_init_from_chi2` with the mean LD
        score of ``corr`` (a rough value; the chains move away from it).
    vec_p_init : array-like, optional
        Starting p of each chain; default ``seq_log(1e-4, 0.2, 30)`` (30 chains,
        the vignette's). Fewer chains are faster, but the filter needs several.
    burn_in, num_iter : int
        Sweeps discarded, and averaged (the vignette's 500 and 500).
    seed : int, optional
        Same seed → same result (each chain gets its own stream). ``None``
        draws fresh entropy.
    shrink_corr : float
        Multiplier of the off-diagonal correlations (vignette: 0.95; down to
        0.4 with a poorly matched LD reference, at the cost of biased h² and p).
    allow_jump_sign : bool
        ``False`` (vignette) forces an effect through 0 before it changes sign,
        which prevents oscillating, diverging chains.
    p_bounds : (float, float)
        Bounds on p (bigsnpr's default ``(1e-5, 1)``; equal values fix p).
    report_step : int, optional
        Keep the sampled effects every ``report_step`` sweeps after burn-in
        (``sample_beta``), e.g. to get a posterior distribution of each
        individual's score.
    sparse : bool
        Also run sparse LDpred2-grid at each chain's estimates (50 + 100 sweeps),
        as bigsnpr's ``sparse = TRUE``.

    Returns
    -------
    LdpredAutoResult
        Final effects, kept chains, h² and p estimates with 95% intervals, and
        every chain's output.

    Notes
    -----
    bigsnpr's defaults for the R function are ``num_iter = 200``,
    ``allow_jump_sign = TRUE``, ``shrink_corr = 1``, ``vec_p_init = 0.1``; the
    defaults here are the vignette's recommended call instead. bigsnpr's
    ``use_MLE = TRUE`` (a per-variant prior variance depending on allele
    frequency through an estimated alpha, since v1.11.4) is **not**
    implemented: this is ``use_MLE = FALSE`` (alpha = −1, the model of
    v1.10.8, which the vignette suggests when chains do not converge or power
    is low). Chains are not bit-identical to bigsnpr's (different random
    number streams).

    Warnings
    --------
    - The intervals come from the Gibbs samples of the kept chains; they
      assume the LD matches the GWAS population. With ``shrink_corr < 1`` or a
      mismatched LD reference, h² and p are biased.
    - If every chain diverges (``keep`` all false), ``beta`` and the estimates
      are NaN: check ``n``, the allele coding and the ancestry of the LD reference.
    """
    problem = _prepare(corr, beta, se, n)
    m = problem.m
    p_inits = (
        seq_log(1e-4, 0.2, 30)
        if vec_p_init is None
        else np.atleast_1d(np.asarray(vec_p_init, dtype=np.float64))
    )
    if len(p_inits) == 0 or not np.all((p_inits > 0) & (p_inits <= 1)):
        raise ValueError("vec_p_init must be non-empty values in (0, 1]")
    p_min, p_max = float(p_bounds[0]), float(p_bounds[1])
    if not 0 < p_min <= p_max <= 1:
        raise ValueError(f"p_bounds must satisfy 0 < low <= high <= 1, got {p_bounds}")
    if not 0 < shrink_corr <= 1:
        raise ValueError(f"shrink_corr must be in (0, 1], got {shrink_corr}")
    if burn_in < 0 or num_iter < 1:
        raise ValueError("need burn_in >= 0 and num_iter >= 1")
    step = num_iter + 1 if report_step is None else int(report_step)
    if step < 1:
        raise ValueError(f"report_step must be >= 1, got {report_step}")
    mean_ld = float(np.mean(fns.ld_scores(problem.indptr, problem.indices, problem.data)))
    if h2_init is None:
        h2_init = h2_init_from_chi2(beta, se, problem.n, mean_ld=mean_ld)
        logger.info("LDpred2-auto: h2_init %.4g from the mean chi2 statistic", h2_init)
    if not h2_init > 0:
        raise ValueError(f"h2_init must be > 0, got {h2_init}")
    k = len(p_inits)
    seeds = _seeds(seed, 2 * k)

    def chain(index: int) -> tuple[F64, F64, F64, F64, F64, F64, F64 | None]:
        out = fns.gibbs_auto(
            problem.indptr,
            problem.indices,
            problem.data,
            problem.beta_hat,
            problem.n,
            float(p_inits[index]),
            float(h2_init),
            int(burn_in),
            int(num_iter),
            step,
            not allow_jump_sign,
            float(shrink_corr),
            p_min,
            p_max,
            H2_MIN,
            mean_ld,
            seeds[index],
        )
        beta_est, postp, corr_est, path_p, path_h2, samples = (np.asarray(a) for a in out)
        sparse_beta = None
        h2_c = float(np.mean(path_h2[-num_iter:]))
        p_c = float(np.mean(path_p[-num_iter:]))
        if sparse and np.isfinite(h2_c):
            sparse_beta = np.asarray(
                fns.gibbs_grid(
                    problem.indptr,
                    problem.indices,
                    problem.data,
                    problem.beta_hat,
                    problem.n,
                    h2_c,
                    p_c,
                    True,
                    50,
                    100,
                    seeds[k + index],
                )
            )
        elif sparse:
            sparse_beta = np.full(m, np.nan)
        return beta_est, postp, corr_est, path_p, path_h2, samples, sparse_beta

    chains = list(map_blocks(chain, range(k)))
    scale = problem.scale
    chain_beta = np.column_stack([c[0] for c in chains]) * scale[:, None]
    chain_postp = np.column_stack([c[1] for c in chains])
    chain_corr = np.column_stack([c[2] for c in chains])
    path_p = np.vstack([c[3] for c in chains])
    path_h2 = np.vstack([c[4] for c in chains])
    sample_beta = np.stack([c[5] for c in chains]) * scale[None, :, None] if report_step else None
    chain_sparse = (
        np.column_stack([c[6] for c in chains if c[6] is not None]) * scale[:, None]
        if sparse
        else None
    )
    with np.errstate(invalid="ignore"):
        chain_range = np.max(chain_corr, axis=0) - np.min(chain_corr, axis=0)
    keep = keep_chains(chain_range)
    tail_h2 = path_h2[:, -num_iter:]
    tail_p = path_p[:, -num_iter:]
    chain_h2 = np.mean(tail_h2, axis=1)
    chain_p = np.mean(tail_p, axis=1)
    if keep.any():
        final = np.mean(chain_beta[:, keep], axis=1)
        h2_q = np.quantile(tail_h2[keep].ravel(), [0.5, 0.025, 0.975])
        p_q = np.quantile(tail_p[keep].ravel(), [0.5, 0.025, 0.975])
    else:
        logger.warning("LDpred2-auto: no chain kept (all %d diverged or off scale)", k)
        final = np.full(m, np.nan)
        h2_q = p_q = np.full(3, np.nan)
    logger.info(
        "LDpred2-auto: %d of %d chains kept, h2 %.4g [%.4g, %.4g], p %.4g [%.4g, %.4g]",
        int(keep.sum()),
        k,
        *h2_q,
        *p_q,
    )
    return LdpredAutoResult(
        beta=final,
        keep=keep,
        h2_est=float(h2_q[0]),
        h2_interval=(float(h2_q[1]), float(h2_q[2])),
        p_est=float(p_q[0]),
        p_interval=(float(p_q[1]), float(p_q[2])),
        chain_beta=chain_beta,
        chain_beta_sparse=chain_sparse,
        chain_postp=chain_postp,
        chain_corr_est=chain_corr,
        chain_range=chain_range,
        chain_h2_est=chain_h2,
        chain_p_est=chain_p,
        path_h2=path_h2,
        path_p=path_p,
        p_init=p_inits,
        h2_init=float(h2_init),
        sample_beta=sample_beta,
        burn_in=int(burn_in),
        num_iter=int(num_iter),
    )


def lassosum2(
    corr: sp.spmatrix | sp.sparray,
    beta: npt.ArrayLike,
    se: npt.ArrayLike,
    n: npt.ArrayLike,
    deltas: Sequence[float] = (0.001, 0.01, 0.1, 1.0),
    n_lambda: int = 30,
    lambda_min_ratio: float = 0.01,
    maxiter: int = 1000,
    tol: float = 1e-5,
    dfmax: int = 200_000,
) -> tuple[F64, pd.DataFrame]:
    """lassosum2: elastic net on summary statistics over a (delta, lambda) grid
    (bigsnpr ``snp_lassosum2``).

    For each grid point, coordinate descent from 0 minimises, on the scaled effects,

        ``f(b) = b'(R + δ·diag(w))b − 2 b'beta_hat + 2λ Σ_j w_j |b_j|``

    with the penalty factors ``w_j = sqrt(max(N) / N_j)`` (all 1 for a constant
    N). This is lassosum's (Mak et al. 2017) ``b'((1 − s)R + sI)b`` objective with
    ``δ = s / (1 − s)`` (up to the factor ``1 − s``), i.e. an elastic net whose
    L2 part shrinks the LD matrix towards the identity. The lambda path is
    bigsnpr's: ``λ_max = max_j |beta_hat_j / w_j|`` (the smallest λ for which
    b = 0), then ``n_lambda`` values log-spaced from just below ``λ_max`` down to
    ``lambda_min_ratio · λ_max`` (``seq_log(λ_max, ratio·λ_max, n_lambda + 1)``
    without its first value). Deltas run in parallel threads; along each delta's
    path every lambda starts from the previous lambda's solution (a warm start, as
    glmnet; bigsnpr starts every point from zero): fewer sweeps and more converged
    points, the same solutions where both converge (benchmarks/results/*-prs-methods.md).

    Parameters
    ----------
    corr, beta, se, n : see the module docstring.
    deltas : sequence of float
        L2 regularisation values (``> 0``), bigsnpr's ``delta``.
    n_lambda, lambda_min_ratio : int, float
        The L1 path (bigsnpr's ``nlambda`` and ``lambda.min.ratio``).
    maxiter : int
        Maximum sweeps per grid point.
    tol : float
        Converged when no coefficient moves by more than ``tol`` in a sweep.
    dfmax : int
        Stop early when more than ``dfmax`` effects are non-zero.

    Returns
    -------
    betas : ndarray, float64, shape (m, len(deltas) · n_lambda)
        Allele-scale effects, one column per grid point (NaN where diverged).
    grid : pandas.DataFrame
        One row per column of ``betas``, lambda varying fastest (as R's
        ``expand.grid(lambda, delta)``): ``delta``, ``lambda`` (float64),
        ``num_iter`` (sweeps run, int64; bigsnpr reports ``maxiter + 1`` for a
        point that did not converge, here ``maxiter``), ``converged`` (bool:
        stopped by ``tol``; false when diverged, stopped by ``dfmax`` or by
        ``maxiter``), ``diverged`` (bool: the column is NaN), ``sparsity``
        (fraction of zero effects, float64; NaN where diverged).

    Warnings
    --------
    Choose the grid point on a validation set independent of the GWAS. The
    smallest lambdas with the smallest delta are the least regularised and the
    most sensitive to a mismatch between the LD reference and the GWAS: with a
    banded LD matrix (not positive definite) they commonly diverge (NaN
    columns, as in bigsnpr), e.g. 11 of 120 points on 20,000 simulated
    variants with 3000 kb windows; skip them when choosing.
    """
    delta_values = [float(d) for d in deltas]
    if not delta_values or any(not d > 0 for d in delta_values):
        raise ValueError(f"deltas must be non-empty and > 0, got {deltas}")
    if n_lambda < 1 or not 0 < lambda_min_ratio <= 1:
        raise ValueError("need n_lambda >= 1 and 0 < lambda_min_ratio <= 1")
    problem = _prepare(corr, beta, se, n)
    pf = np.sqrt(np.max(problem.n) / problem.n)
    lambda0 = float(np.max(np.abs(problem.beta_hat / pf)))
    lambdas = seq_log(lambda0, lambda_min_ratio * lambda0, n_lambda + 1)[1:]
    grid = [(d, float(lam)) for d in delta_values for lam in lambdas]

    def path(d: int) -> list[tuple[F64, int, bool]]:
        """One delta's lambda path, largest lambda first, each point warm-started from
        the previous one's solution (from zero after a diverged point)."""
        out: list[tuple[F64, int, bool]] = []
        start = np.zeros(len(problem.beta_hat))
        for lam in lambdas:
            b, sweeps, converged = fns.lassosum2_cd(
                problem.indptr,
                problem.indices,
                problem.data,
                problem.beta_hat,
                np.ascontiguousarray(pf * lam),
                np.ascontiguousarray(pf * delta_values[d] + 1.0),
                int(dfmax),
                int(maxiter),
                float(tol),
                start,
            )
            b = np.asarray(b)
            out.append((b, int(sweeps), bool(converged)))
            start = b if np.all(np.isfinite(b)) else np.zeros(len(b))
        return out

    results = [r for one_path in map_blocks(path, range(len(delta_values))) for r in one_path]
    betas = np.column_stack([r[0] for r in results]) * problem.scale[:, None]
    diverged = np.isnan(betas).any(axis=0)
    frame = pd.DataFrame(
        {
            "delta": np.array([g[0] for g in grid], dtype=np.float64),
            "lambda": np.array([g[1] for g in grid], dtype=np.float64),
            "num_iter": np.array([r[1] for r in results], dtype=np.int64),
            "converged": np.array([r[2] for r in results], dtype=bool),
            "diverged": diverged,
            "sparsity": np.where(diverged, np.nan, np.mean(betas == 0, axis=0)),
        }
    )
    return betas, frame
