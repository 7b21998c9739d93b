"""LDpred2 (inf, grid, auto), lassosum2 and the banded LD matrix, against independent
computations (numpy, scikit-learn) on small simulated data with LD.

Genotypes: haplotypes from a Markov chain along the variants (each allele copies
its left neighbour with probability ``rho``, else is drawn afresh with the
variant's frequency), two haplotypes per sample, so neighbouring variants are
correlated about ``rho^distance``. No Hail, no files; numba compiles (or loads
from its cache) the kernels once per session.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
import scipy.sparse as sp

from gwas_prs.methods.prs.ld_score_regression import (
    H2_INIT_FLOOR,
    h2_init_ldsc,
    ld_score_regression,
    ld_scores,
)
from gwas_prs.methods.prs.ldpred2_local import (
    h2_init_from_chi2,
    keep_chains,
    lassosum2,
    ldpred2_auto,
    ldpred2_default_grid,
    ldpred2_grid,
    ldpred2_inf,
    scale_sumstats,
    seq_log,
)
from gwas_prs.methods.prs.sparse_ld import block_diagonal, windowed_correlation

F64 = npt.NDArray[np.float64]
SPACING = 10_000  # bp between neighbouring simulated variants


def simulate_dosages(rng: np.random.Generator, n: int, m: int, rho: float = 0.9) -> F64:
    """``n × m`` ALT dosages with Markov LD along the variants."""
    freq = rng.uniform(0.05, 0.5, m)
    hap = np.empty((2 * n, m))
    hap[:, 0] = rng.random(2 * n) < freq[0]
    for j in range(1, m):
        copy = rng.random(2 * n) < rho
        hap[:, j] = np.where(copy, hap[:, j - 1], rng.random(2 * n) < freq[j])
    return hap[:n] + hap[n:]


def marginal_ols(x: F64, y: F64) -> tuple[F64, F64]:
    """Per-variant OLS of ``y`` on each column of ``x`` with an intercept: beta, se."""
    xc = x - x.mean(axis=0)
    yc = y - y.mean()
    sxx = (xc * xc).sum(axis=0)
    beta = xc.T @ yc / sxx
    rss = (yc @ yc) - beta * beta * sxx
    se = np.sqrt(rss / (len(y) - 2) / sxx)
    return beta, se


@pytest.fixture(scope="module")
def cohort() -> dict[str, F64]:
    """5000 GWAS + 2000 test samples × 300 variants, y = Gβ + ε with h² = 0.3
    (60 causal variants), marginal OLS betas on the GWAS samples."""
    rng = np.random.default_rng(20240601)
    n_gwas, n_test, m = 5000, 2000, 300
    g = simulate_dosages(rng, n_gwas + n_test, m)
    beta_true = np.zeros(m)
    causal = rng.choice(m, 60, replace=False)
    beta_true[causal] = rng.normal(size=60)
    value = g @ beta_true
    factor = np.sqrt(0.3) / value[:n_gwas].std()
    beta_true *= factor
    value *= factor
    y = value + rng.normal(scale=np.sqrt(0.7), size=n_gwas + n_test)
    beta, se = marginal_ols(g[:n_gwas], y[:n_gwas])
    return {
        "g_gwas": g[:n_gwas],
        "g_test": g[n_gwas:],
        "value_test": value[n_gwas:],
        "beta_true": beta_true,
        "beta": beta,
        "se": se,
        "positions": np.arange(m, dtype=np.float64) * SPACING,
    }


# --- windowed_correlation ------------------------------------------------------------


def test_windowed_correlation_equals_corrcoef_inside_the_window() -> None:
    rng = np.random.default_rng(1)
    n, m = 400, 150
    x = simulate_dosages(rng, n, m, rho=0.8)
    x[rng.random((n, m)) < 0.02] = np.nan  # missing calls → mean-imputed
    x[:, 7] = 1.0  # monomorphic
    positions = np.sort(rng.integers(0, 2_000_000, m)).astype(np.float64)
    window_kb = 150.0
    corr = windowed_correlation(x, positions, window_kb, block_size=16)  # many blocks

    imputed = np.where(np.isnan(x), np.nanmean(x, axis=0), x)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.corrcoef(imputed, rowvar=False)
    expected[7, :] = expected[:, 7] = 0.0
    np.fill_diagonal(expected, 1.0)
    inside = np.abs(positions[:, None] - positions[None, :]) <= 1000 * window_kb
    dense = corr.toarray()
    assert isinstance(corr, sp.csr_matrix) and corr.dtype == np.float64
    # same numbers as np.corrcoef to rounding (BLAS vs numpy summation): 1e-12
    np.testing.assert_allclose(dense[inside], expected[inside], rtol=0, atol=1e-12)
    assert np.all(dense[~inside] == 0.0)  # nothing stored outside the window
    assert np.array_equal(dense, dense.T)  # bit-for-bit symmetric
    assert np.all(np.diag(dense) == 1.0)
    # the stored pattern is the window (minus the monomorphic variant's zeros)
    assert corr.nnz == inside.sum() - 2 * (inside[7].sum() - 1)


def test_windowed_correlation_checks_and_block_diagonal() -> None:
    rng = np.random.default_rng(2)
    x = simulate_dosages(rng, 100, 30)
    with pytest.raises(ValueError, match="sorted"):
        windowed_correlation(x, np.arange(30)[::-1] * 1000.0, 10)
    a = windowed_correlation(x[:, :20], np.arange(20) * 1000.0, 5)
    b = windowed_correlation(x[:, 20:], np.arange(10) * 1000.0, 5)
    both = block_diagonal([a, b])
    assert both.shape == (30, 30)
    expected = np.zeros((30, 30))
    expected[:20, :20] = a.toarray()
    expected[20:, 20:] = b.toarray()
    assert np.array_equal(both.toarray(), expected)  # exact: only placement


# --- scaling -------------------------------------------------------------------------


def test_scale_sumstats_and_h2_init() -> None:
    beta = np.array([0.1, -0.2, 0.05])
    se = np.array([0.01, 0.02, 0.03])
    beta_hat, scale = scale_sumstats(beta, se, 1000)
    expected_scale = np.sqrt(1000 * se**2 + beta**2)
    np.testing.assert_allclose(scale, expected_scale, rtol=1e-15)
    np.testing.assert_allclose(beta_hat * scale, beta, rtol=1e-15)
    chi2 = np.mean((beta / se) ** 2)
    # (mean chi2 - 1) M / (N l): 1e-12 relative
    assert h2_init_from_chi2(beta, se, 1000, mean_ld=2.0) == pytest.approx(
        min(1.0, (chi2 - 1) * 3 / (1000 * 2.0)), rel=1e-12
    )
    assert h2_init_from_chi2(beta * 0, se, 1000) == 1e-4  # clipped below
    np.testing.assert_allclose(seq_log(1e-4, 0.2, 30)[[0, -1]], [1e-4, 0.2], rtol=1e-12)
    grid = ldpred2_default_grid(0.2)  # the vignette's 21 p × 4 h2 × 2 sparse
    assert len(grid) == 168 and grid[0] == (1e-5, 0.06, False) and grid[-1] == (1.0, 0.28, True)


# --- lassosum2 vs scikit-learn ---------------------------------------------------------


def test_lassosum2_equals_sklearn_elastic_net() -> None:
    """lassosum2 on an individual-level problem is scikit-learn's ElasticNet.

    Let ``X`` be the ``n × m`` genotypes standardised with the population sd
    (mean 0, ``X'X/n`` has a unit diagonal), ``y`` standardised, ``R = X'X/n``
    (= :func:`windowed_correlation` with a window covering everything) and
    ``b̂ = X'y/n``. scikit-learn's ElasticNet (no intercept) minimises

        ``1/(2n)·||y − Xb||² + α·ρ·||b||₁ + ½·α·(1 − ρ)·||b||²``
        ``= ½·(b'Rb − 2b'b̂) + αρ||b||₁ + ½α(1 − ρ)||b||² + const``,

    i.e., times 2, ``b'(R + α(1 − ρ)I)b − 2b'b̂ + 2αρ||b||₁``: lassosum2's
    objective ``b'(R + δI)b − 2b'b̂ + 2λ||b||₁`` with ``λ = αρ`` and
    ``δ = α(1 − ρ)``, so ``α = λ + δ`` and ``ρ = λ / (λ + δ)``.

    To hand lassosum2 exactly ``b̂`` (its scaled effects are
    ``beta / sqrt(n·se² + beta²)``) we pass ``beta = b̂`` and
    ``se = sqrt((1 − b̂²)/n)``, for which the scale is 1. (lassosum's ``s``
    is ``δ/(1 + δ)``: ``(1 − s)R + sI ∝ R + δI``.)
    """
    from sklearn.linear_model import ElasticNet

    rng = np.random.default_rng(3)
    n, m = 2000, 60
    g = simulate_dosages(rng, n, m, rho=0.85)
    x = (g - g.mean(axis=0)) / g.std(axis=0)
    effects = np.zeros(m)
    effects[rng.choice(m, 10, replace=False)] = rng.normal(scale=0.2, size=10)
    y = x @ effects + rng.normal(size=n)
    y = (y - y.mean()) / y.std()
    beta_hat = x.T @ y / n
    corr = windowed_correlation(g, np.arange(m) * 1000.0, 1e6)
    np.testing.assert_allclose(corr.toarray(), x.T @ x / n, atol=1e-12)  # same R
    se = np.sqrt((1 - beta_hat**2) / n)

    betas, grid = lassosum2(
        corr, beta_hat, se, n, deltas=(0.01, 0.1, 1.0), n_lambda=10, tol=1e-12, maxiter=100_000
    )
    assert betas.shape == (m, 30) and len(grid) == 30
    assert grid["converged"].all() and not grid["diverged"].any()
    # lambda path: log-spaced from just below max|b̂| to 1% of it, lambda fastest
    lam0 = np.max(np.abs(beta_hat))
    np.testing.assert_allclose(
        grid["lambda"].to_numpy()[:10], seq_log(lam0, 0.01 * lam0, 11)[1:], rtol=1e-12
    )
    for col in (2, 13, 19, 25, 29):  # (λ, δ) points from sparse to dense
        lam, delta = float(grid["lambda"][col]), float(grid["delta"][col])
        model = ElasticNet(
            alpha=lam + delta,
            l1_ratio=lam / (lam + delta),
            fit_intercept=False,
            tol=1e-14,
            max_iter=1_000_000,
        ).fit(x, y)
        # both converged far below this: the two optima of a strongly convex problem
        np.testing.assert_allclose(betas[:, col], model.coef_, rtol=0, atol=1e-6)
    assert (betas[:, 0] != 0).sum() <= 2  # the largest lambda keeps (almost) nothing


# --- LDpred2-inf and -grid -------------------------------------------------------------


def test_ldpred2_inf_equals_dense_solve(cohort: dict[str, F64]) -> None:
    g, beta, se = cohort["g_gwas"], cohort["beta"], cohort["se"]
    corr = windowed_correlation(g, cohort["positions"], 300)
    n = np.linspace(4000, 5000, len(beta))  # N per variant
    h2 = 0.3
    got = ldpred2_inf(corr, beta, se, n, h2)
    scale = np.sqrt(n * se**2 + beta**2)
    m = len(beta)
    dense = corr.toarray() + np.diag(m / (n * h2))
    expected = np.linalg.solve(dense, beta / scale) * scale
    # direct sparse solve vs LAPACK on a well-conditioned system: 1e-8 relative to max |b|
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-8 * np.abs(expected).max())


def test_ldpred2_grid_p1_approaches_inf_and_is_reproducible(cohort: dict[str, F64]) -> None:
    """With p = 1 every variant is causal with prior N(0, h2/M): the Gibbs sampler
    targets the Gaussian posterior whose mean is LDpred2-inf's solution, and
    its (Rao-Blackwellised) average converges to it as the sweeps grow."""
    g, beta, se = cohort["g_gwas"], cohort["beta"], cohort["se"]
    corr = windowed_correlation(g, cohort["positions"], 1e6)  # full LD: PSD R
    n, h2 = 5000, 0.3
    inf = ldpred2_inf(corr, beta, se, n, h2)
    grid = [(1.0, h2, False)] * 4
    runs = ldpred2_grid(corr, beta, se, n, grid, burn_in=100, num_iter=1000, seed=11)
    average = runs.mean(axis=1)
    # The 4 columns are independent chains: their spread measures the Monte
    # Carlo error. The average's error must be of that size (≤ 4 standard
    # errors in RMS), and small against the effects themselves (≤ 5%).
    mc_se = np.sqrt(np.mean(runs.var(axis=1, ddof=1)) / 4)
    rms = np.sqrt(np.mean((average - inf) ** 2))
    assert rms <= 4 * mc_se
    assert np.linalg.norm(average - inf) <= 0.05 * np.linalg.norm(inf)
    again = ldpred2_grid(corr, beta, se, n, grid, burn_in=100, num_iter=1000, seed=11)
    assert np.array_equal(runs, again)  # same seed, same numbers (bit for bit)
    other = ldpred2_grid(corr, beta, se, n, grid[:1], burn_in=100, num_iter=1000, seed=12)
    assert not np.array_equal(other[:, 0], runs[:, 0])
    sparse_cols = ldpred2_grid(corr, beta, se, n, [(0.05, h2, True)], seed=1)
    assert (sparse_cols == 0).mean() > 0.3  # sparse: exact zeros


# --- LDpred2-auto --------------------------------------------------------------------


def test_ldpred2_auto_recovers_h2_and_p() -> None:
    """Summary statistics simulated directly from the LDpred2 likelihood,
    ``b̂ ~ N(Rβ, R/N)`` (exact for standardised genotypes and phenotype when h² is
    small, and fast), with R the correlation of 3000 simulated reference
    genotypes, 100 causal of 400 variants (p = 0.25), effects scaled to
    ``β'Rβ = h² = 0.3`` and N = 10000. The 95% interval of h² from the kept chains
    must cover 0.3, and p must be of the right order (in 10 replicates of this
    simulation with other seeds, both intervals covered the truth every time)."""
    rng = np.random.default_rng(4)
    m, n, h2, n_causal = 400, 10_000, 0.3, 100
    g = simulate_dosages(rng, 3000, m)
    corr = windowed_correlation(g, np.arange(m) * float(SPACING), 1e6)
    r = corr.toarray()
    effects = np.zeros(m)
    effects[rng.choice(m, n_causal, replace=False)] = rng.normal(size=n_causal)
    effects *= np.sqrt(h2 / (effects @ r @ effects))
    root = np.linalg.cholesky(r + 1e-10 * np.eye(m))
    beta_hat = r @ effects + root @ rng.normal(size=m) / np.sqrt(n)
    se = np.sqrt((1 - beta_hat**2) / n)  # scale = 1: beta_hat passes unchanged

    result = ldpred2_auto(
        corr, beta_hat, se, n, h2_init=0.1, vec_p_init=seq_log(1e-3, 0.2, 4), seed=5,
        burn_in=300, num_iter=300, report_step=50, sparse=True,
    )  # fmt: skip
    assert result.keep.sum() >= 3
    lo, hi = result.h2_interval
    assert lo <= h2 <= hi  # the 95% credible interval covers the simulated h²
    assert hi - lo < 0.15  # and is informative
    p_lo, p_hi = result.p_interval
    assert p_lo <= n_causal / m <= p_hi  # p = 0.25 (10 of 10 simulations covered it)
    assert 0.05 <= result.p_est <= 0.8
    assert result.chain_beta.shape == (m, 4) and result.path_h2.shape == (4, 600)
    assert result.sample_beta is not None and result.sample_beta.shape == (4, m, 6)
    np.testing.assert_allclose(  # beta = mean of the kept chains (1e-15)
        result.beta, result.chain_beta[:, result.keep].mean(axis=1), rtol=1e-15
    )
    assert np.corrcoef(result.beta, effects)[0, 1] > 0.5
    assert result.chain_beta_sparse is not None and result.chain_beta_sparse.shape == (m, 4)
    # sparse re-run at each chain's (p_est, h2_est): exact zeros, where the averages have none
    assert (result.chain_beta_sparse == 0).mean() > 0.05 and np.all(result.chain_beta != 0)
    again = ldpred2_auto(
        corr, beta_hat, se, n, h2_init=0.1, vec_p_init=seq_log(1e-3, 0.2, 4), seed=5,
        burn_in=300, num_iter=300, report_step=50,
    )  # fmt: skip
    assert np.array_equal(result.chain_beta, again.chain_beta)  # reproducible


def test_keep_chains_drops_diverged_and_off_scale_chains() -> None:
    # bigsnpr: keep range > 0.95 · quantile(range, 0.95) (type 7, NaN removed)
    ranges = np.array([0.40, 0.41, np.nan, 0.405, 0.10, 0.39])
    threshold = 0.95 * np.quantile(ranges[np.isfinite(ranges)], 0.95)
    assert threshold == pytest.approx(0.95 * (0.405 + 0.8 * (0.41 - 0.405)), rel=1e-12)
    assert keep_chains(ranges).tolist() == [True, True, False, True, False, True]
    assert not keep_chains(np.array([np.nan, np.nan])).any()


def test_ldpred2_auto_drops_a_diverging_chain(cohort: dict[str, F64]) -> None:
    """A chain made to diverge (LD whose correlations are flipped in sign: an
    allele-coding mismatch between LD and GWAS, sampled with jumps of sign
    allowed and no shrinkage) returns NaN and is not kept."""
    g, beta, se = cohort["g_gwas"], cohort["beta"], cohort["se"]
    corr = windowed_correlation(g, cohort["positions"], 1e6)
    flipped = corr.copy()
    flipped.data = -flipped.data
    flipped.setdiag(1.0)
    result = ldpred2_auto(
        flipped, beta, se, 5000, h2_init=0.3, vec_p_init=[0.5], seed=1,
        burn_in=50, num_iter=50, shrink_corr=1.0, allow_jump_sign=True,
    )  # fmt: skip
    assert np.isnan(result.chain_beta).all() and not result.keep.any()
    assert np.isnan(result.beta).all() and np.isnan(result.h2_est)


# --- prediction ----------------------------------------------------------------------


def test_scaled_back_betas_predict_better_than_marginal(cohort: dict[str, F64]) -> None:
    """Sanity: on independent samples, the scores of LDpred2-auto/inf and of
    lassosum2 (best grid point chosen on half of the test samples, checked on
    the other half) correlate with the true genetic value more than the
    marginal-beta score does."""
    g, beta, se = cohort["g_gwas"], cohort["beta"], cohort["se"]
    corr = windowed_correlation(g, cohort["positions"], 300)  # ~30 neighbours each side
    test, value = cohort["g_test"], cohort["value_test"]

    def r(weights: F64, rows: slice = slice(None)) -> float:
        return float(np.corrcoef(test[rows] @ weights, value[rows])[0, 1])

    marginal = r(beta)
    auto = ldpred2_auto(
        corr, beta, se, 5000, vec_p_init=seq_log(1e-2, 0.3, 4), seed=7,
        burn_in=200, num_iter=200,
    )  # fmt: skip
    assert r(auto.beta) > marginal + 0.05
    assert r(ldpred2_inf(corr, beta, se, 5000, auto.h2_est)) > marginal
    betas, grid = lassosum2(corr, beta, se, 5000, n_lambda=10)
    validation, held_out = slice(0, 1000), slice(1000, None)
    usable = ~grid["diverged"].to_numpy() & np.any(betas != 0, axis=0)
    scores = [r(betas[:, k], validation) if usable[k] else -1.0 for k in range(len(grid))]
    best = int(np.argmax(scores))
    assert r(betas[:, best], held_out) > r(beta, held_out)


def test_ld_memory_check_stops_before_a_matrix_that_cannot_fit() -> None:
    """The entry count from positions alone equals the built matrix's, and a window whose
    LD would not fit in half the memory stops in one line with a window that does."""
    from gwas_prs.core.errors import InputError
    from gwas_prs.methods.prs.ld_methods import (
        BYTES_PER_LD_ENTRY,
        check_ld_memory,
        ld_entries,
    )

    rng = np.random.default_rng(5)
    positions = np.sort(rng.choice(2_000_000, size=300, replace=False))
    dosages = rng.binomial(2, 0.3, size=(50, 300)).astype(float)
    corr = windowed_correlation(dosages, positions, window_kb=100)
    contigs = np.array(["1"] * 300, dtype=object)
    assert ld_entries(contigs, positions, 100) == corr.nnz  # exact: the same windows
    two = np.array(["1"] * 150 + ["2"] * 150, dtype=object)
    assert ld_entries(two, positions, 1e6) == 2 * 150 * 150  # never across contigs
    check_ld_memory(corr.nnz, 100, 4 * corr.nnz * BYTES_PER_LD_ENTRY)  # fits: silent
    with pytest.raises(InputError) as info:
        check_ld_memory(corr.nnz, 100, corr.nnz * BYTES_PER_LD_ENTRY)
    message = str(info.value)
    assert "\n" not in message and "--ld-window-kb 50," in message and "--methods ct" in message


# --- LD score regression (LDpred2-auto's starting h²) -----------------------------------


def test_ld_score_regression_recovers_h2_and_intercept() -> None:
    """Noise-free χ² = a + N h² l / M is recovered exactly (1e-10); on summary
    statistics simulated as b̂ ~ N(Rβ, R/N) under an infinitesimal model (every one
    of 1500 variants causal, h² = 0.3, N = 10000), LDSC with the intercept fixed at
    1 (LDpred2-auto's start) is within 0.1 of the truth (seeds 0-9 of this
    simulation gave 0.30-0.39; a free intercept gave -0.25-0.89 at this size, which
    is why the start fixes it)."""
    rng = np.random.default_rng(11)
    ell = rng.uniform(1, 30, 5000)
    exact = ld_score_regression(1.1 + 20_000 * 0.4 * ell / 5000, ell, 20_000)
    assert exact.h2 == pytest.approx(0.4, rel=1e-10)
    assert exact.intercept == pytest.approx(1.1, rel=1e-10)
    fixed = ld_score_regression(1.0 + 20_000 * 0.4 * ell / 5000, ell, 20_000, intercept=1.0)
    assert fixed.h2 == pytest.approx(0.4, rel=1e-10) and fixed.intercept == 1.0

    m, n, h2 = 1500, 10_000, 0.3
    g = simulate_dosages(rng, 3000, m, rho=0.8)
    corr = windowed_correlation(g, np.arange(m) * float(SPACING), 2e5)
    r = corr.toarray()
    effects = rng.normal(size=m)
    effects *= np.sqrt(h2 / (effects @ r @ effects))
    root = np.linalg.cholesky(r + 1e-8 * np.eye(m))
    beta_hat = r @ effects + root @ rng.normal(size=m) / np.sqrt(n)
    se = np.full(m, 1 / np.sqrt(n))
    start, fit = h2_init_ldsc(beta_hat, se, n, corr, n_ld=3000)
    assert abs(fit.h2 - h2) < 0.1 and fit.intercept == 1.0
    assert start == pytest.approx(float(np.clip(fit.h2, H2_INIT_FLOOR, 1)), rel=1e-15)
    scores = ld_scores(corr, n_ld=3000)
    squared = corr.toarray() ** 2  # the bias-corrected band sums (1e-12)
    np.testing.assert_allclose(
        scores, np.where(corr.toarray() != 0, squared - (1 - squared) / 2998, 0).sum(1), rtol=1e-12
    )
    null_start, _ = h2_init_ldsc(rng.normal(size=m) / np.sqrt(n), se, n, corr)
    assert null_start >= H2_INIT_FLOOR  # no signal: the floor, not ~0
