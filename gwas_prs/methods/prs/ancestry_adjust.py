"""Ancestry-normalised polygenic scores, as pgsc_calc computes them.

The PGS Catalog Calculator (pgsc_calc, its ``ancestry_analysis`` step; the
``pgs_adjust`` function of the ``pgscatalog-calc`` package) reports three
ancestry-aware versions of each score, all fitted on a reference panel that has
genetic PCs (1000 Genomes / HGDP projected into one PCA space with the targets):

- ``Z_norm1`` (Khera et al. 2019, doi:10.1161/CIRCULATIONAHA.118.035658): the score
  minus the mean predicted from the PCs by a linear regression fitted in the
  reference, over the SD of the reference residuals;
- ``Z_norm2`` (Khan et al. 2022, doi:10.1038/s41591-022-01869-1): the score minus
  a PC-predicted mean, over the square root of a PC-predicted variance
  (log-linear in the PCs), so that neither the mean nor the spread of the score
  depends on ancestry;
- the percentile (and Z) of the raw score among the reference samples of the
  target's most similar reference population ("empirical" method).

:func:`fit_ancestry_adjustment` fits the first two on reference samples,
:func:`adjust_scores` applies them to any samples (targets, or the reference
itself), and :func:`reference_percentiles` computes the third. The population
assignment that the percentiles need (pgsc_calc's ``compare_ancestry``: a random
forest on the PCs, by default) is not done here: the caller gives the labels.

The numbers follow pgsc_calc 0.3 (``pgscatalog.calc.lib._ancestry.tools``) step
for step, with its defaults (``std_pcs=True``, ``norm_centerpgs=True``,
``norm2_2step=False``), and the test suite checks them against that function to
1e-6. The functions here are numpy/pandas/scikit-learn/scipy only (no Hail).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gwas_prs.core.errors import InputError

#: The variance models of ``Z_norm2``: pgsc_calc's default joint (full-likelihood)
#: fit of the mean and the log-variance, or its ``norm2_2step`` model (the Gamma
#: regression of the squared ``Z_norm1`` residuals, used as it is).
VARIANCE_MODELS = ("full_likelihood", "two_step")

#: Format version of :meth:`AncestryAdjustment.to_dict`.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class LinearPredictor:
    """``intercept + coef · x`` on the standardised PCs (``coef[i]`` goes with PC i+1)."""

    intercept: float
    coef: tuple[float, ...]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The linear predictor of each row of ``x`` (samples × PCs, standardised)."""
        return self.intercept + x @ np.asarray(self.coef, dtype=float)

    def to_dict(self) -> dict[str, Any]:
        return {"intercept": self.intercept, "coef": list(self.coef)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LinearPredictor:
        return cls(intercept=float(d["intercept"]), coef=tuple(float(c) for c in d["coef"]))


@dataclass(frozen=True)
class ScoreAdjustment:
    """The fitted models of one score (see :func:`fit_ancestry_adjustment`)."""

    score: str
    #: reference mean of the raw score, subtracted before every model (pgsc_calc's ``pgs_offset``)
    offset: float
    #: OLS of the centred score on the standardised PCs (the ``Z_norm1`` mean)
    mean: LinearPredictor
    #: SD (ddof 0) of the reference residuals of ``mean`` (the ``Z_norm1`` denominator)
    residual_sd: float
    #: scikit-learn ``GammaRegressor`` (log link, L2 penalty 1) of the squared centred
    #: ``mean`` residuals: log of the variance; ``Z_norm2``'s variance in the two-step
    #: model, and the starting point of the full-likelihood fit
    gamma_log_variance: LinearPredictor
    #: the ``Z_norm2`` mean and log-variance: the full-likelihood fit, or ``mean`` and
    #: ``gamma_log_variance`` for the two-step model
    norm2_mean: LinearPredictor
    norm2_log_variance: LinearPredictor
    #: whether scipy's BFGS reported success for the full-likelihood fit (True for two-step)
    converged: bool
    #: scipy's message for the full-likelihood fit ("" for two-step)
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "offset": self.offset,
            "mean": self.mean.to_dict(),
            "residual_sd": self.residual_sd,
            "gamma_log_variance": self.gamma_log_variance.to_dict(),
            "norm2_mean": self.norm2_mean.to_dict(),
            "norm2_log_variance": self.norm2_log_variance.to_dict(),
            "converged": self.converged,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScoreAdjustment:
        return cls(
            score=str(d["score"]),
            offset=float(d["offset"]),
            mean=LinearPredictor.from_dict(d["mean"]),
            residual_sd=float(d["residual_sd"]),
            gamma_log_variance=LinearPredictor.from_dict(d["gamma_log_variance"]),
            norm2_mean=LinearPredictor.from_dict(d["norm2_mean"]),
            norm2_log_variance=LinearPredictor.from_dict(d["norm2_log_variance"]),
            converged=bool(d["converged"]),
            message=str(d["message"]),
        )


@dataclass(frozen=True)
class AncestryAdjustment:
    """Everything :func:`adjust_scores` needs, fitted by :func:`fit_ancestry_adjustment`.

    ``to_dict()`` gives plain JSON types (floats kept exactly by ``json``), and
    ``from_dict(to_dict())`` gives an equal object, so a model folder can store it.
    """

    pc_columns: tuple[str, ...]  # "PC1".."PCk"
    pc_means: tuple[float, ...]  # reference mean of each PC
    pc_sds: tuple[float, ...]  # reference SD (ddof 0) of each PC
    n_reference: int  # reference samples the models were fitted on
    variance_model: str  # one of VARIANCE_MODELS
    scores: tuple[ScoreAdjustment, ...]  # one per score that has variance
    skipped_scores: tuple[str, ...] = ()  # scores constant in the reference (NaN outputs)

    @property
    def n_pcs(self) -> int:
        return len(self.pc_columns)

    @property
    def score_names(self) -> tuple[str, ...]:
        """Every score: the fitted ones, then the skipped ones."""
        return tuple(s.score for s in self.scores) + self.skipped_scores

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "method": "pgsc_calc ancestry normalisation (Z_norm1, Z_norm2)",
            "pc_columns": list(self.pc_columns),
            "pc_means": list(self.pc_means),
            "pc_sds": list(self.pc_sds),
            "n_reference": self.n_reference,
            "variance_model": self.variance_model,
            "scores": [s.to_dict() for s in self.scores],
            "skipped_scores": list(self.skipped_scores),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AncestryAdjustment:
        version = d.get("format_version")
        if version != FORMAT_VERSION:
            raise InputError(
                f"ancestry adjustment model has format_version {version!r}, expected "
                f"{FORMAT_VERSION}; refit it with this version of gwas-prs"
            )
        return cls(
            pc_columns=tuple(str(c) for c in d["pc_columns"]),
            pc_means=tuple(float(x) for x in d["pc_means"]),
            pc_sds=tuple(float(x) for x in d["pc_sds"]),
            n_reference=int(d["n_reference"]),
            variance_model=str(d["variance_model"]),
            scores=tuple(ScoreAdjustment.from_dict(s) for s in d["scores"]),
            skipped_scores=tuple(str(s) for s in d.get("skipped_scores", ())),
        )


def _pc_columns(n_pcs: int) -> tuple[str, ...]:
    return tuple(f"PC{i + 1}" for i in range(n_pcs))


def _pc_matrix(pcs: pd.DataFrame, columns: Sequence[str], index: pd.Index, what: str) -> np.ndarray:
    """The PCs of the samples of ``index``, as a float matrix; one-line errors."""
    missing = [c for c in columns if c not in pcs.columns]
    if missing:
        raise InputError(
            f"{what} PCs lack column(s) {', '.join(missing)}; need {columns[0]}..{columns[-1]}"
        )
    absent = index.difference(pcs.index)
    if len(absent):
        raise InputError(
            f"{what} PCs lack {len(absent)} sample(s) that have scores, e.g. {absent[0]!r}"
        )
    x = pcs.loc[index, list(columns)].to_numpy(dtype=float)
    if not np.isfinite(x).all():
        bad = index[~np.isfinite(x).all(axis=1)]
        raise InputError(
            f"{what} PCs are missing or not finite for {len(bad)} sample(s), e.g. {bad[0]!r}"
        )
    return x


def _split(theta: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean coefficients, log-variance coefficients), each intercept first."""
    return theta[: k + 1], theta[k + 1 :]


def _negative_log_likelihood(theta: np.ndarray, design: np.ndarray, y: np.ndarray) -> float:
    """−log L (up to a constant) of y ~ N(design·β_mu, exp(design·β_var))."""
    beta_mu, beta_var = _split(theta, design.shape[1] - 1)
    var = np.exp(design @ beta_var)
    resid = y - design @ beta_mu
    return float(np.sum(np.log(np.sqrt(var)) + 0.5 * resid**2 / var))


def _negative_log_likelihood_gradient(
    theta: np.ndarray, design: np.ndarray, y: np.ndarray
) -> np.ndarray:
    beta_mu, beta_var = _split(theta, design.shape[1] - 1)
    var = np.exp(design @ beta_var)
    resid = y - design @ beta_mu
    d_mu = -resid / var
    d_log_var = 0.5 - 0.5 * resid**2 / var
    return np.concatenate([design.T @ d_mu, design.T @ d_log_var])


def _full_likelihood_fit(
    x: np.ndarray, y: np.ndarray, initial: np.ndarray
) -> tuple[LinearPredictor, LinearPredictor, bool, str]:
    """pgsc_calc's ``fullLL_fit``: BFGS (analytic gradient, ≤1000 iterations) of the
    joint Gaussian likelihood with mean linear and variance log-linear in the PCs."""
    from scipy import optimize

    design = np.hstack([np.ones((len(y), 1)), x])
    result = optimize.minimize(
        fun=_negative_log_likelihood,
        x0=initial,
        method="BFGS",
        jac=_negative_log_likelihood_gradient,
        args=(design, y),
        options={"maxiter": 1000},
    )
    beta_mu, beta_var = _split(np.asarray(result.x, dtype=float), x.shape[1])
    return (
        LinearPredictor(float(beta_mu[0]), tuple(float(b) for b in beta_mu[1:])),
        LinearPredictor(float(beta_var[0]), tuple(float(b) for b in beta_var[1:])),
        bool(result.success),
        str(result.message),
    )


def fit_ancestry_adjustment(
    reference_scores: pd.DataFrame,
    reference_pcs: pd.DataFrame,
    n_pcs: int = 4,
    *,
    variance_model: str = "full_likelihood",
) -> AncestryAdjustment:
    """Fit pgsc_calc's ancestry normalisation of each score on reference samples.

    For each score column ``s`` of ``reference_scores`` (``n`` reference samples,
    normally the unrelated ones: pgsc_calc fits on ``Unrelated`` reference
    samples and applies the models to all), with ``x`` the first ``n_pcs`` PCs:

    1. the PCs are standardised with their reference mean and SD (ddof 0), and
       the score is centred on its reference mean (``offset``);
    2. **mean model** (``Z_norm1``): ordinary least squares of the centred score
       on the standardised PCs, with intercept (scikit-learn ``LinearRegression``);
       ``residual_sd`` is the SD (ddof 0) of its reference residuals ``r``;
    3. **Gamma variance model**: scikit-learn ``GammaRegressor(max_iter=1000)``
       (log link, its default L2 penalty ``alpha=1`` on the slopes) of
       ``(r − mean(r))²`` on the standardised PCs;
    4. **full-likelihood model** (``variance_model="full_likelihood"``, pgsc_calc's
       default): the centred score ~ Normal(``a + b·x``, ``exp(c + d·x)``), fitted
       by maximum likelihood with scipy's BFGS (analytic gradient, at most 1000
       iterations), started from the OLS and Gamma coefficients. With
       ``variance_model="two_step"`` (pgsc_calc's ``norm2_2step=True``) the OLS
       and Gamma models are used as they are.

    Parameters
    ----------
    reference_scores : pandas.DataFrame
        One column per score (the raw sums), indexed by sample.
    reference_pcs : pandas.DataFrame
        Columns ``PC1``..``PC{n_pcs}`` (others are ignored), indexed by sample;
        every sample of ``reference_scores`` must be in it.
    n_pcs : int
        Number of PCs in the models (pgsc_calc's ``--n_normalization``, default 4).
    variance_model : str
        ``"full_likelihood"`` (default) or ``"two_step"``.

    Returns
    -------
    AncestryAdjustment
        ``pc_columns`` (tuple of str), ``pc_means``/``pc_sds`` (tuples of float),
        ``n_reference`` (int), ``variance_model`` (str), ``scores``
        (tuple of :class:`ScoreAdjustment`: ``offset``, ``mean``, ``residual_sd``,
        ``gamma_log_variance``, ``norm2_mean``, ``norm2_log_variance`` — the
        linear predictors being on the standardised PCs — and ``converged``/
        ``message`` of the BFGS fit) and ``skipped_scores`` (tuple of str).

    Warns
    -----
    UserWarning
        A score with zero variance in the reference is skipped (its adjusted
        columns are NaN), as pgsc_calc does; the full-likelihood fit of a score
        did not converge (BFGS ``success`` is False; the last iterate is used, as
        pgsc_calc does).

    Raises
    ------
    InputError
        ``n_pcs`` < 1; fewer reference samples than ``n_pcs + 2`` (the variance
        of the residuals is then undefined); a PC column or a sample missing from
        ``reference_pcs``; a missing or non-finite PC or score value; a PC that is
        constant in the reference; an unknown ``variance_model``.
    """
    if variance_model not in VARIANCE_MODELS:
        raise InputError(
            f"variance_model {variance_model!r} is not one of {', '.join(VARIANCE_MODELS)}"
        )
    if n_pcs < 1:
        raise InputError(f"n_pcs must be at least 1, got {n_pcs}")
    if reference_scores.shape[1] == 0:
        raise InputError("reference_scores has no score columns")
    if reference_scores.columns.duplicated().any():
        raise InputError("reference_scores has duplicated score columns")
    n = len(reference_scores)
    if n < n_pcs + 2:
        raise InputError(
            f"ancestry adjustment with {n_pcs} PCs needs at least {n_pcs + 2} reference "
            f"samples, got {n}"
        )
    columns = _pc_columns(n_pcs)
    raw_x = _pc_matrix(reference_pcs, columns, reference_scores.index, "reference")
    pc_means = raw_x.mean(axis=0)
    pc_sds = raw_x.std(axis=0)
    constant = [c for c, sd in zip(columns, pc_sds, strict=True) if not sd > 0]
    if constant:
        raise InputError(f"reference PC(s) {', '.join(constant)} are constant; use fewer PCs")
    x = (raw_x - pc_means) / pc_sds

    from sklearn.linear_model import GammaRegressor, LinearRegression

    fitted: list[ScoreAdjustment] = []
    skipped: list[str] = []
    for name in reference_scores.columns:
        score = str(name)
        y_raw = reference_scores[name].to_numpy(dtype=float)
        if not np.isfinite(y_raw).all():
            raise InputError(
                f"reference score {score!r} is missing or not finite for "
                f"{int((~np.isfinite(y_raw)).sum())} sample(s)"
            )
        if np.var(y_raw) == 0:
            warnings.warn(
                f"score {score!r} has zero variance in the reference; its ancestry-adjusted "
                "values are NaN",
                UserWarning,
                stacklevel=2,
            )
            skipped.append(score)
            continue
        offset = float(y_raw.mean())
        y = y_raw - offset
        ols = LinearRegression().fit(x, y)
        mean = LinearPredictor(float(ols.intercept_), tuple(float(b) for b in ols.coef_))
        resid = y - ols.predict(x)
        residual_sd = float(resid.std())
        squared = (resid - resid.mean()) ** 2
        if not (squared > 0).all():
            raise InputError(
                f"score {score!r}: a reference sample lies exactly on the PC regression; the "
                "Gamma variance model needs positive squared residuals"
            )
        gamma = GammaRegressor(max_iter=1000).fit(x, squared)
        gamma_lv = LinearPredictor(float(gamma.intercept_), tuple(float(b) for b in gamma.coef_))
        if variance_model == "two_step":
            norm2_mean, norm2_lv, converged, message = mean, gamma_lv, True, ""
        else:
            initial = np.concatenate(
                [[ols.intercept_], ols.coef_, [gamma.intercept_], gamma.coef_]
            ).astype(float)
            norm2_mean, norm2_lv, converged, message = _full_likelihood_fit(x, y, initial)
            if not converged:
                warnings.warn(
                    f"score {score!r}: the full-likelihood mean+variance fit did not converge "
                    f"({message}); Z_norm2 uses its last iterate",
                    UserWarning,
                    stacklevel=2,
                )
        fitted.append(
            ScoreAdjustment(
                score=score,
                offset=offset,
                mean=mean,
                residual_sd=residual_sd,
                gamma_log_variance=gamma_lv,
                norm2_mean=norm2_mean,
                norm2_log_variance=norm2_lv,
                converged=converged,
                message=message,
            )
        )
    return AncestryAdjustment(
        pc_columns=columns,
        pc_means=tuple(float(m) for m in pc_means),
        pc_sds=tuple(float(s) for s in pc_sds),
        n_reference=n,
        variance_model=variance_model,
        scores=tuple(fitted),
        skipped_scores=tuple(skipped),
    )


def adjust_scores(
    adjustment: AncestryAdjustment, scores: pd.DataFrame, pcs: pd.DataFrame
) -> pd.DataFrame:
    """Ancestry-normalised scores of any samples, with a fitted :class:`AncestryAdjustment`.

    With ``x`` the sample's PCs standardised with the reference means and SDs and
    ``y`` its raw score minus the reference mean (``offset``), exactly as
    pgsc_calc's ``pgs_adjust``:

    - ``Z_norm1 = (y − mean(x)) / residual_sd``: the residual of the reference
      OLS of the score on the PCs, in units of the reference residual SD; in the
      reference it has mean 0 and SD 1 and is uncorrelated with the PCs;
    - ``Z_norm2 = (y − norm2_mean(x)) / sqrt(exp(norm2_log_variance(x)))``: the
      full-likelihood mean and variance (or, for the two-step model, the OLS
      residual over the square root of the Gamma-predicted variance); its spread,
      too, no longer depends on the PCs.

    Parameters
    ----------
    adjustment : AncestryAdjustment
        From :func:`fit_ancestry_adjustment` (or ``AncestryAdjustment.from_dict``).
    scores : pandas.DataFrame
        Raw scores, indexed by sample, with a column for every score the
        adjustment was fitted on (other columns are ignored).
    pcs : pandas.DataFrame
        The samples' PCs in the reference PCA space (``PC1``..``PCk``), indexed by
        sample; every sample of ``scores`` must be in it.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``scores``; for every score ``s`` (in fitting order, then the
        skipped ones) the float64 columns ``s_Z_norm1`` and ``s_Z_norm2``. NaN
        where the raw score is NaN, and everywhere for a score skipped at fitting
        (zero reference variance).

    Warnings
    --------
    The models extrapolate linearly (the variance log-linearly) in the PCs:
    samples far outside the reference PC cloud (pgsc_calc flags them with a
    Mahalanobis test in its population comparison) get unreliable values.

    Raises
    ------
    InputError
        A score column, PC column or sample missing from ``pcs``; a missing or
        non-finite PC.
    """
    names = adjustment.score_names
    missing = [s for s in names if s not in scores.columns]
    if missing:
        raise InputError(
            f"scores lack column(s) fitted in the ancestry adjustment: {', '.join(missing)}"
        )
    x = _pc_matrix(pcs, adjustment.pc_columns, scores.index, "target")
    x = (x - np.asarray(adjustment.pc_means)) / np.asarray(adjustment.pc_sds)
    by_name = {s.score: s for s in adjustment.scores}
    out: dict[str, np.ndarray] = {}
    for name in names:
        model = by_name.get(name)
        if model is None:
            nan = np.full(len(scores), np.nan)
            out[f"{name}_Z_norm1"], out[f"{name}_Z_norm2"] = nan, nan.copy()
            continue
        y = scores[name].to_numpy(dtype=float) - model.offset
        out[f"{name}_Z_norm1"] = (y - model.mean.predict(x)) / model.residual_sd
        out[f"{name}_Z_norm2"] = (y - model.norm2_mean.predict(x)) / np.sqrt(
            np.exp(model.norm2_log_variance.predict(x))
        )
    return pd.DataFrame(out, index=scores.index, dtype=float)


#: A score within this relative distance of a reference score ties with it (the same
#: sum computed in another order, e.g. by predict, differs in the last bits).
TIE_RTOL = 1e-9


def _snap_to_reference(sorted_reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` with each one within :data:`TIE_RTOL` (relative to its size plus the
    reference's spread) of a reference score replaced by that score."""
    n = len(sorted_reference)
    at = np.searchsorted(sorted_reference, values)
    below = sorted_reference[np.clip(at - 1, 0, n - 1)]
    above = sorted_reference[np.clip(at, 0, n - 1)]
    nearest = np.where(np.abs(values - below) <= np.abs(above - values), below, above)
    tolerance = TIE_RTOL * (np.abs(values) + float(np.std(sorted_reference)))
    close = np.isfinite(values) & (np.abs(nearest - values) <= tolerance)
    return np.where(close, nearest, values)


def _percentile_of_score(sorted_reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """scipy.stats.percentileofscore(reference, v, kind="rank") for each v (NaN → NaN),
    a v within :data:`TIE_RTOL` of a reference score counted as tied with it."""
    values = _snap_to_reference(sorted_reference, values)
    n = len(sorted_reference)
    left = np.searchsorted(sorted_reference, values, side="left")
    right = np.searchsorted(sorted_reference, values, side="right")
    pct = (left + right + (right > left)) * (50.0 / n)
    return np.where(np.isnan(values), np.nan, pct)


def reference_percentiles(
    reference_scores: pd.DataFrame,
    reference_groups: pd.Series,
    scores: pd.DataFrame,
    groups: pd.Series,
) -> pd.DataFrame:
    """Each sample's score relative to the reference samples of its most similar population.

    pgsc_calc's "empirical" adjustment: for each reference population ``p``, the
    samples assigned to ``p`` (for targets, pgsc_calc's ``MostSimilarPop``; for
    reference samples, their own label) are placed in the distribution of the raw
    score among the (unrelated) reference samples labelled ``p``:

    - ``s_percentile_MostSimilarPop``: ``scipy.stats.percentileofscore(ref_p, v)``
      with its default ``kind="rank"``: 100 × (#ref < v + #ref ≤ v + [any ties]) /
      (2 n_p), in 0..100;
    - ``s_Z_MostSimilarPop``: ``(v − mean(ref_p)) / sd(ref_p)`` with the SD of ddof 0.

    Parameters
    ----------
    reference_scores : pandas.DataFrame
        Raw scores of the reference samples (one column per score), indexed by
        sample.
    reference_groups : pandas.Series
        Population label of each reference sample (same index).
    scores : pandas.DataFrame
        Raw scores of the samples to place (targets, or the reference itself);
        a column for each score of ``reference_scores``.
    groups : pandas.Series
        Most similar reference population of each sample of ``scores`` (same index).

    Returns
    -------
    pandas.DataFrame
        Indexed like ``scores``; for each score ``s`` the float64 columns
        ``s_percentile_MostSimilarPop`` and ``s_Z_MostSimilarPop``. NaN for a
        sample whose group has no reference samples or whose score is NaN, and
        for every sample of a score that has zero variance in the reference (as
        pgsc_calc, which skips such scores).

    Warns
    -----
    UserWarning
        Some samples' groups are not reference populations (their values are NaN).

    Raises
    ------
    InputError
        A score column missing from ``scores``; group labels not covering every
        sample; a missing or non-finite reference score or a missing reference label.
    """
    missing = [str(c) for c in reference_scores.columns if c not in scores.columns]
    if missing:
        raise InputError(f"scores lack column(s) {', '.join(missing)} of the reference scores")
    if reference_scores.index.difference(reference_groups.index).size:
        raise InputError("reference_groups lacks a label for some reference samples")
    if scores.index.difference(groups.index).size:
        raise InputError("groups lacks a label for some samples of scores")
    ref_labels = reference_groups.loc[reference_scores.index]
    if ref_labels.isna().any():
        raise InputError(
            f"{int(ref_labels.isna().sum())} reference sample(s) have no population label"
        )
    labels = groups.loc[scores.index]
    populations = pd.unique(ref_labels)
    unmatched = ~labels.isin(populations)
    if unmatched.any():
        warnings.warn(
            f"{int(unmatched.sum())} sample(s) are assigned to a population with no reference "
            f"samples (e.g. {labels[unmatched].iloc[0]!r}); their percentiles are NaN",
            UserWarning,
            stacklevel=2,
        )
    out: dict[str, np.ndarray] = {}
    for name in reference_scores.columns:
        ref = reference_scores[name].to_numpy(dtype=float)
        if not np.isfinite(ref).all():
            raise InputError(f"reference score {name!r} is missing or not finite for some samples")
        values = scores[name].to_numpy(dtype=float)
        pct = np.full(len(scores), np.nan)
        z = np.full(len(scores), np.nan)
        if np.var(ref) > 0:
            for pop in populations:
                dist = ref[(ref_labels == pop).to_numpy()]
                here = (labels == pop).to_numpy()
                pct[here] = _percentile_of_score(np.sort(dist), values[here])
                z[here] = (values[here] - dist.mean()) / dist.std()
        out[f"{name}_percentile_MostSimilarPop"] = pct
        out[f"{name}_Z_MostSimilarPop"] = z
    return pd.DataFrame(out, index=scores.index, dtype=float)
