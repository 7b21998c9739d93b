"""How well polygenic scores predict: incremental R² / AUC over covariates + PCs,
out of sample.

For each score, two models are fitted on one set of samples (``fit_on``) and
evaluated on another (``evaluate_on``): covariates + PCs alone (the baseline), and
covariates + PCs + the standardised score. For a quantitative trait the metric is
the out-of-sample R² of ordinary least squares (1 − SS_res/SS_tot on the evaluated
samples, with the coefficients of the fitted ones); for a binary trait it is the ROC
AUC of an unpenalised logistic regression (scikit-learn). The prs stage fits on
``train`` and evaluates on ``validation`` to choose the threshold, then refits on
``train`` + ``validation`` and reports ``test``: no number called "test" comes from
a model that saw a test sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd


@dataclass(frozen=True)
class ScoreFit:
    """Fit of one score on ``n_fit`` samples, evaluated on ``n`` other samples."""

    metric: float  # R² (quantitative) or ROC AUC (binary) with the score
    baseline: float  # same without the score
    n: int  # evaluated samples
    n_fit: int = 0  # samples the models were fitted on

    @property
    def incremental(self) -> float:
        return self.metric - self.baseline


def _columns(
    covariates: pd.DataFrame, score: pd.Series | None, fit: npt.NDArray[np.bool_]
) -> np.ndarray:
    """Covariates (+ the score standardised with the fitted samples' mean and SD)."""
    parts = [covariates.to_numpy(dtype=float)] if covariates.shape[1] else []
    if score is not None:
        s = score.to_numpy(dtype=float)
        sd = float(s[fit].std()) or 1.0
        parts.append(((s - s[fit].mean()) / sd)[:, None])
    if not parts:
        return np.zeros((len(covariates), 0))
    return np.hstack(parts)


def _r2(x: np.ndarray, y: np.ndarray, fit: np.ndarray, test: np.ndarray) -> float:
    design = np.hstack([np.ones((len(y), 1)), x])
    coef, *_ = np.linalg.lstsq(design[fit], y[fit], rcond=None)
    y_test = y[test]
    total = float(((y_test - y_test.mean()) ** 2).sum())
    residual = float(((y_test - design[test] @ coef) ** 2).sum())
    return 1 - residual / total if total > 0 else float("nan")


def _auc(x: np.ndarray, y: np.ndarray, fit: np.ndarray, test: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y[fit])) < 2 or len(np.unique(y[test])) < 2:
        return float("nan")
    if x.shape[1] == 0:
        return 0.5
    model = LogisticRegression(C=np.inf, max_iter=5000)  # unpenalised
    model.fit(x[fit], y[fit])
    return float(roc_auc_score(y[test], model.decision_function(x[test])))


def fit_score(
    y: pd.Series,
    covariates: pd.DataFrame,
    score: pd.Series,
    *,
    binary: bool,
    fit_on: pd.Series,
    evaluate_on: pd.Series,
) -> ScoreFit:
    """Out-of-sample metric with and without ``score``.

    Parameters
    ----------
    y, covariates, score
        Outcome, covariates (+ PCs) and score of the same samples (one index).
    fit_on, evaluate_on
        Boolean Series on that index: the samples the models are fitted on and
        the samples they are evaluated on. They should not overlap (an overlap
        gives an in-sample, optimistic metric).

    Returns
    -------
    ScoreFit
        ``metric``/``baseline`` (float; NaN when a sample set has a single
        outcome class or a constant outcome), ``n`` (evaluated samples with every
        value present) and ``n_fit``.
    """
    frame = pd.concat([y.rename("_y"), covariates, score.rename("_score")], axis=1)
    frame = frame.assign(
        _fit=fit_on.reindex(frame.index, fill_value=False).astype(bool),
        _eval=evaluate_on.reindex(frame.index, fill_value=False).astype(bool),
    ).dropna()
    fit = frame["_fit"].to_numpy()
    test = frame["_eval"].to_numpy()
    yy = frame["_y"].to_numpy(dtype=float)
    cov = frame[covariates.columns]
    metric_of = _auc if binary else _r2
    if not fit.any() or not test.any():
        nan = float("nan")
        return ScoreFit(metric=nan, baseline=nan, n=int(test.sum()), n_fit=int(fit.sum()))
    return ScoreFit(
        metric=metric_of(_columns(cov, frame["_score"], fit), yy, fit, test),
        baseline=metric_of(_columns(cov, None, fit), yy, fit, test),
        n=int(test.sum()),
        n_fit=int(fit.sum()),
    )


def score_only_metric(y: pd.Series, score: pd.Series, *, binary: bool) -> float:
    """The score alone, no model fitted: ROC AUC of the raw score (binary; a score
    oriented against the outcome gives < 0.5) or its squared Pearson correlation
    with the outcome (quantitative)."""
    from sklearn.metrics import roc_auc_score

    frame = pd.concat([y.rename("y"), score.rename("s")], axis=1).dropna()
    if binary:
        if frame["y"].nunique() < 2:
            return float("nan")
        return float(roc_auc_score(frame["y"], frame["s"]))
    if frame["s"].std() == 0 or frame["y"].std() == 0:
        return float("nan")
    return float(np.corrcoef(frame["y"], frame["s"])[0, 1] ** 2)


def evaluate_thresholds(
    y: pd.Series,
    covariates: pd.DataFrame,
    scores: pd.DataFrame,
    thresholds: Sequence[float],
    *,
    binary: bool,
    fit_on: pd.Series,
    evaluate_on: pd.Series,
) -> pd.DataFrame:
    """One row per score column (see :func:`fit_score`): ``threshold``, ``metric``,
    ``baseline``, ``incremental``, ``n``, ``n_fit``."""
    rows = []
    for column, threshold in zip(scores.columns, thresholds, strict=True):
        fit = fit_score(
            y, covariates, scores[column], binary=binary, fit_on=fit_on, evaluate_on=evaluate_on
        )
        rows.append(
            {
                "threshold": threshold,
                "metric": fit.metric,
                "baseline": fit.baseline,
                "incremental": fit.incremental,
                "n": fit.n,
                "n_fit": fit.n_fit,
            }
        )
    return pd.DataFrame(rows)


def outcome_by_decile(y: pd.Series, score: pd.Series) -> pd.DataFrame:
    """Mean outcome (prevalence for 0/1) per score decile: ``decile``, ``mean``, ``n``
    and ``sd`` (the outcome's standard deviation in the decile, ddof 1)."""
    frame = pd.concat([y.rename("y"), score.rename("s")], axis=1).dropna()
    frame["decile"] = pd.qcut(frame["s"].rank(method="first"), 10, labels=list(range(1, 11)))
    out = frame.groupby("decile", observed=True)["y"].agg(["mean", "size", "std"]).reset_index()
    return out.rename(columns={"size": "n", "std": "sd"})


def high_resolution_thresholds(
    thresholds: Sequence[float], per_decade: int = 5, lowest: float = 1e-8
) -> tuple[float, ...]:
    """The p-value thresholds of the high-resolution plot (as PRSice-2's): ``per_decade``
    log-spaced values (two significant digits) from ``lowest`` to 1, with ``thresholds``,
    sorted and distinct."""
    decades = round(float(-np.log10(lowest)))
    grid = {float(f"{10 ** (-k / per_decade):.2g}") for k in range(decades * per_decade + 1)}
    return tuple(sorted(grid | {float(t) for t in thresholds}))
