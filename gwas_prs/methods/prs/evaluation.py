"""How well polygenic scores predict: incremental R² / AUC over covariates + PCs.

For each score, two models are fitted on the same samples: covariates + PCs
alone (the baseline), and covariates + PCs + the standardised score. For a
quantitative trait the metric is R² of ordinary least squares; for a binary
trait it is the ROC AUC of logistic regression (scikit-learn, no penalty)
and Nagelkerke's R². The threshold with the best incremental metric on the
*validation* samples is chosen; the *test* samples report it, untouched by
the choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ScoreFit:
    """Fit of one score on one set of samples."""

    metric: float  # R² (quantitative) or ROC AUC (binary) with the score
    baseline: float  # same without the score
    n: int

    @property
    def incremental(self) -> float:
        return self.metric - self.baseline


def _design(covariates: pd.DataFrame, score: pd.Series | None) -> np.ndarray:
    parts = [covariates.to_numpy(dtype=float)] if covariates.shape[1] else []
    if score is not None:
        s = score.to_numpy(dtype=float)
        parts.append(((s - s.mean()) / (s.std() or 1.0))[:, None])
    if not parts:
        return np.zeros((len(covariates), 0))
    return np.hstack(parts)


def _r2(x: np.ndarray, y: np.ndarray) -> float:
    design = np.hstack([np.ones((len(y), 1)), x])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coef
    return float(1 - residual.var() / y.var()) if y.var() > 0 else float("nan")


def _auc(x: np.ndarray, y: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return float("nan")
    if x.shape[1] == 0:
        return 0.5
    model = LogisticRegression(C=np.inf, max_iter=2000)  # unpenalised
    model.fit(x, y)
    return float(roc_auc_score(y, model.decision_function(x)))


def fit_score(
    y: pd.Series, covariates: pd.DataFrame, score: pd.Series, *, binary: bool
) -> ScoreFit:
    """Metric with and without ``score`` (rows with any missing value dropped)."""
    frame = pd.concat([y.rename("_y"), covariates, score.rename("_score")], axis=1).dropna()
    yy = frame["_y"].to_numpy(dtype=float)
    cov = frame[covariates.columns]
    fit = _auc if binary else _r2
    return ScoreFit(
        metric=fit(_design(cov, frame["_score"]), yy),
        baseline=fit(_design(cov, None), yy),
        n=len(frame),
    )


def evaluate_thresholds(
    y: pd.Series,
    covariates: pd.DataFrame,
    scores: pd.DataFrame,
    thresholds: Sequence[float],
    *,
    binary: bool,
) -> pd.DataFrame:
    """One row per threshold: ``threshold``, ``metric``, ``baseline``, ``incremental``, ``n``."""
    rows = []
    for column, threshold in zip(scores.columns, thresholds, strict=True):
        fit = fit_score(y, covariates, scores[column], binary=binary)
        rows.append(
            {
                "threshold": threshold,
                "metric": fit.metric,
                "baseline": fit.baseline,
                "incremental": fit.incremental,
                "n": fit.n,
            }
        )
    return pd.DataFrame(rows)


def outcome_by_decile(y: pd.Series, score: pd.Series) -> pd.DataFrame:
    """Mean outcome (prevalence for 0/1) per score decile: ``decile``, ``mean``, ``n``."""
    frame = pd.concat([y.rename("y"), score.rename("s")], axis=1).dropna()
    frame["decile"] = pd.qcut(frame["s"].rank(method="first"), 10, labels=list(range(1, 11)))
    out = frame.groupby("decile", observed=True)["y"].agg(["mean", "size"]).reset_index()
    return out.rename(columns={"size": "n"})
