"""How well risk models discriminate and how well they are calibrated, with bootstrap CIs.

All functions take numpy arrays (``y`` 0/1, one score per sample) and return
Python numbers or frames; nothing here fits a risk model or writes.

Discrimination
--------------
:func:`roc_auc` is the Mann–Whitney form of the area under the ROC curve: the
probability that a random case scores above a random control, ties counting
one half (``(R₁ − n₁(n₁+1)/2) / (n₁ n₀)`` with mid-ranks ``R₁`` of the cases).
:func:`average_precision` is the PR-AUC as scikit-learn's
``average_precision_score`` defines it: ``Σₖ (Rₖ − Rₖ₋₁) Pₖ`` over the distinct
score thresholds from high to low (step-wise, no interpolation).

Uncertainty
-----------
:func:`bootstrap_indices` draws ``n_boot`` resamples of the test samples with
replacement (seeded; resamples holding a single class are redrawn-free: they
are dropped and their number reported). Every model is evaluated on the *same*
resamples, so the CI of a difference between two models (ΔAUC) is a paired
bootstrap. CIs are the 2.5 and 97.5 percentiles.

Calibration
-----------
:func:`calibration` gives the Brier score ``mean((p − y)²)``, the calibration
intercept (calibration-in-the-large: ``a`` in ``logit P(y=1) = a + logit(p)``,
0 when the mean risk is right) and slope (``b`` in ``logit P(y=1) = a' + b·logit(p)``,
1 when the spread of risks is right; < 1 means over-confident predictions), both
by maximum likelihood (Newton–Raphson), and reliability bins (deciles of ``p``:
mean predicted vs observed fraction).

Warning
-------
With few test cases the CIs are wide; groups with fewer than
``min_group_size`` samples or ``min_group_class`` cases or controls are not
evaluated (:func:`metrics_by_group` says which and why).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

Metric = Callable[[np.ndarray, np.ndarray], float]


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney U / (n₁ n₀), ties = ½); NaN for one class."""
    from scipy.stats import rankdata

    y = np.asarray(y, dtype=bool)
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(np.asarray(score, dtype=float))
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """PR-AUC as average precision (scikit-learn's definition); NaN without cases."""
    y = np.asarray(y, dtype=float)
    score = np.asarray(score, dtype=float)
    if y.sum() == 0:
        return float("nan")
    order = np.argsort(-score, kind="mergesort")
    s, t = score[order], y[order]
    last_of_tie = np.r_[np.diff(s) != 0, True]
    tps = np.cumsum(t)[last_of_tie]
    total = np.arange(1, len(t) + 1)[last_of_tie]
    precision = tps / total
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


METRICS: dict[str, Metric] = {"roc_auc": roc_auc, "pr_auc": average_precision}


def bootstrap_indices(y: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """``(m, n)`` resample indices (with replacement), keeping those with both classes.

    ``m ≤ n_boot``: resamples with a single class are dropped (rare unless the
    test set has very few cases).
    """
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), size=(n_boot, len(y)))
    cases = y[idx].sum(axis=1)
    keep = (cases > 0) & (cases < len(y))
    return idx[keep]


def _interval(values: np.ndarray) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def estimate_with_ci(
    metric: Metric, y: np.ndarray, score: np.ndarray, idx: np.ndarray
) -> dict[str, float]:
    """``{"estimate", "ci_low", "ci_high"}`` of ``metric`` on ``y``/``score``."""
    boot = np.array([metric(y[i], score[i]) for i in idx])
    low, high = _interval(boot)
    return {"estimate": metric(y, score), "ci_low": low, "ci_high": high}


def paired_difference(
    metric: Metric, y: np.ndarray, a: np.ndarray, b: np.ndarray, idx: np.ndarray
) -> dict[str, float]:
    """``metric(a) − metric(b)`` with a paired-bootstrap 95% CI (same resamples for both)."""
    boot = np.array([metric(y[i], a[i]) - metric(y[i], b[i]) for i in idx])
    low, high = _interval(boot)
    return {"estimate": metric(y, a) - metric(y, b), "ci_low": low, "ci_high": high}


def paired_difference_se(
    metric: Metric, y: np.ndarray, a: np.ndarray, b: np.ndarray, idx: np.ndarray
) -> float:
    """Bootstrap standard error (SD over the resamples ``idx``, ddof 1) of ``metric(a) − metric(b)``."""
    boot = np.array([metric(y[i], a[i]) - metric(y[i], b[i]) for i in idx])
    boot = boot[np.isfinite(boot)]
    return float(np.std(boot, ddof=1)) if len(boot) > 1 else float("nan")


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))


def _logistic_mle(
    y: np.ndarray, x: np.ndarray, offset: np.ndarray, iterations: int = 100
) -> np.ndarray:
    """Coefficients of ``logit P(y=1) = offset + x β`` by Newton–Raphson."""
    beta = np.zeros(x.shape[1])
    for _ in range(iterations):
        eta = offset + x @ beta
        p = 1 / (1 + np.exp(-eta))
        w = p * (1 - p)
        gradient = x.T @ (y - p)
        hessian = (x * w[:, None]).T @ x
        step = np.linalg.solve(hessian + 1e-12 * np.eye(len(beta)), gradient)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-12:
            break
    return beta


def calibration(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> dict[str, Any]:
    """Brier score, calibration intercept and slope, reliability bins (see the module docstring).

    Returns ``{"brier", "intercept", "slope", "bins": [{"bin", "mean_predicted",
    "observed", "n"}, …]}`` with bins at the deciles of ``p`` (ties kept together).
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    lp = _logit(p)
    ones = np.ones((len(y), 1))
    intercept = float(_logistic_mle(y, ones, lp)[0])
    slope = float(_logistic_mle(y, np.hstack([ones, lp[:, None]]), np.zeros(len(y)))[1])
    frame = pd.DataFrame({"p": p, "y": y})
    frame["bin"] = pd.qcut(frame["p"], n_bins, labels=False, duplicates="drop")
    bins = (
        frame.groupby("bin")
        .agg(mean_predicted=("p", "mean"), observed=("y", "mean"), n=("y", "size"))
        .reset_index()
    )
    return {
        "brier": float(np.mean((p - y) ** 2)),
        "intercept": intercept,
        "slope": slope,
        "bins": [
            {"bin": int(b) + 1, "mean_predicted": float(m), "observed": float(o), "n": int(n)}
            for b, m, o, n in zip(
                bins["bin"], bins["mean_predicted"], bins["observed"], bins["n"], strict=True
            )
        ],
    }


def discrimination(
    y: np.ndarray, scores: Mapping[str, np.ndarray], idx: np.ndarray
) -> dict[str, dict[str, dict[str, float]]]:
    """ROC-AUC and PR-AUC with CIs for every score: ``{name: {"roc_auc": {...}, "pr_auc": {...}}}``."""
    return {
        name: {m: estimate_with_ci(f, y, score, idx) for m, f in METRICS.items()}
        for name, score in scores.items()
    }


def metrics_by_group(
    y: np.ndarray,
    groups: np.ndarray,
    scores: Mapping[str, np.ndarray],
    *,
    n_boot: int,
    seed: int,
    min_group_size: int = 20,
    min_group_class: int = 5,
) -> tuple[dict[str, Any], dict[str, str]]:
    """ROC-AUC/PR-AUC (with CIs) per group; also the groups skipped and why."""
    evaluated: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for group in sorted(pd.unique(groups).tolist()):
        mask = groups == group
        yy = y[mask]
        cases = int(yy.sum())
        controls = len(yy) - cases
        if len(yy) < min_group_size:
            skipped[str(group)] = f"{len(yy)} test samples (fewer than {min_group_size})"
            continue
        if min(cases, controls) < min_group_class:
            skipped[str(group)] = (
                f"{cases} cases and {controls} controls (fewer than {min_group_class} of one class)"
            )
            continue
        idx = bootstrap_indices(yy, n_boot, seed)
        evaluated[str(group)] = {
            "n": len(yy),
            "cases": cases,
            "models": discrimination(yy, {k: v[mask] for k, v in scores.items()}, idx),
        }
    return evaluated, skipped


def roc_points(y: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    """The ROC curve: ``fpr``, ``tpr`` (scikit-learn's ``roc_curve``)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, score)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr})


def pr_points(y: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    """The precision–recall curve: ``recall``, ``precision``."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(y, score)
    return pd.DataFrame({"recall": recall, "precision": precision})
