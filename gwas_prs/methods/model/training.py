"""Fitting the risk models: XGBoost with a seeded hyper-parameter search, logistic baselines.

XGBoost (:func:`fit_xgboost`)
-----------------------------
Binary logistic objective, ``tree_method="hist"``, on the ``train`` part:

1. ``n_trials`` parameter sets are drawn from :data:`SEARCH_SPACE` with a
   seeded generator (randomised search);
2. each is scored by stratified ``folds``-fold cross-validation on ``train``
   (:func:`xgboost.cv` with seeded folds; each fold early-stops on its held-out
   part's log loss, at most :data:`MAX_ROUNDS` rounds, patience
   :data:`EARLY_STOPPING_ROUNDS`); the score is the mean held-out ROC-AUC at
   the stopping round;
3. the best set is refitted on the whole ``train`` part, early-stopped on the
   ``validation`` part (log loss); the booster is cut at its best iteration.

Class imbalance: ``scale_pos_weight = controls / cases`` of ``train``. Weighting
the cases by ``w`` multiplies the fitted odds by ``w``, so the reported
probability is ``sigmoid(margin − log w)`` (the prior correction, stored as
``logit_offset``); without it the probabilities would be too high on average.
Same seed, same data and same thread count give the same model.

Baselines (:func:`fit_logistic_baseline`)
-----------------------------------------
scikit-learn ``LogisticRegression`` without penalty on standardised inputs
(mean/SD of ``train``; missing values replaced by the ``train`` mean). The fit
is stored as plain numbers (:class:`LogisticBaseline`) so ``predict`` needs no
pickle.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gwas_prs.core.errors import EnvironmentSetupError, InputError
from gwas_prs.core.stage_options import TRAIN

logger = logging.getLogger(__name__)

DEVICES: tuple[str, ...] = TRAIN.choices("device")
MAX_ROUNDS = 400
EARLY_STOPPING_ROUNDS = 25
#: Randomised search space: (kind, low, high); ``log`` draws log-uniformly, ``int`` uniformly.
SEARCH_SPACE: dict[str, tuple[str, float, float]] = {
    "max_depth": ("int", 2, 5),
    "learning_rate": ("log", 0.02, 0.3),
    "min_child_weight": ("log", 1.0, 20.0),
    "subsample": ("uniform", 0.6, 1.0),
    "colsample_bytree": ("uniform", 0.5, 1.0),
    "reg_lambda": ("log", 0.1, 10.0),
    "reg_alpha": ("log", 1e-3, 1.0),
}


def _gpu_present() -> tuple[bool, str]:
    from gwas_prs.core.processes import find_program, run_command

    if find_program("nvidia-smi") is None:
        return False, "no NVIDIA GPU driver found (nvidia-smi is not installed)"
    result = run_command(["nvidia-smi", "-L"], check=False, timeout=30, what="list the GPUs")
    gpus = [line for line in result.stdout.splitlines() if line.startswith("GPU ")]
    if result.returncode != 0 or not gpus:
        return False, "nvidia-smi lists no GPU"
    return True, gpus[0]


def resolve_device(device: str) -> str:
    """``cpu``, ``cuda`` or ``auto`` → the XGBoost device to use.

    Raises
    ------
    EnvironmentSetupError
        ``cuda`` on a machine without a usable GPU, or an XGBoost build without CUDA.
    """
    if device not in DEVICES:
        raise InputError(f"--device {device}: choose one of {', '.join(DEVICES)}")
    if device == "cpu":
        return "cpu"
    import xgboost

    built_with_cuda = bool(xgboost.build_info().get("USE_CUDA", False))
    present, detail = _gpu_present() if built_with_cuda else (False, "")
    if built_with_cuda and present:
        logger.info("training on the GPU (%s)", detail)
        return "cuda"
    reason = detail if built_with_cuda else "this XGBoost build has no CUDA support"
    if device == "auto":
        logger.info("--device auto: no usable GPU (%s); training on the CPU", reason)
        return "cpu"
    raise EnvironmentSetupError(
        f"--device cuda: {reason}; run on a machine with an NVIDIA GPU and CUDA-enabled "
        "XGBoost (pip wheels for Linux x86_64 have it), or use --device cpu / --device auto"
    )


def sample_parameters(rng: np.random.Generator) -> dict[str, float | int]:
    """One draw from :data:`SEARCH_SPACE`."""
    out: dict[str, float | int] = {}
    for name, (kind, low, high) in SEARCH_SPACE.items():
        if kind == "int":
            out[name] = int(rng.integers(int(low), int(high) + 1))
        elif kind == "log":
            out[name] = float(math.exp(rng.uniform(math.log(low), math.log(high))))
        else:
            out[name] = float(rng.uniform(low, high))
    return out


@dataclass
class XgbFit:
    """The fitted booster and how it was chosen."""

    booster: Any
    params: dict[str, Any]
    best_iteration: int
    cv_roc_auc: float
    scale_pos_weight: float
    trials: list[dict[str, Any]] = field(default_factory=list)

    @property
    def logit_offset(self) -> float:
        return -math.log(self.scale_pos_weight)

    def probability(self, x: pd.DataFrame) -> np.ndarray:
        return xgb_probability(self.booster, x, self.logit_offset)


def xgb_probability(booster: Any, x: pd.DataFrame, logit_offset: float) -> np.ndarray:
    """``sigmoid(margin + logit_offset)`` for the rows of ``x`` (columns in the booster's order)."""
    import xgboost as xgb

    names = list(booster.feature_names or x.columns)
    matrix = xgb.DMatrix(x[names].to_numpy(dtype=float), feature_names=names, missing=np.nan)
    margin = booster.predict(matrix, output_margin=True)
    return np.asarray(1.0 / (1.0 + np.exp(-(margin.astype(float) + logit_offset))))


def fit_xgboost(
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    x_valid: pd.DataFrame,
    y_valid: np.ndarray,
    *,
    folds: int,
    n_trials: int,
    seed: int,
    device: str = "cpu",
    nthread: int = 1,
) -> XgbFit:
    """Randomised CV search on ``train``, refit early-stopped on ``validation`` (module docstring)."""
    import xgboost as xgb
    from sklearn.model_selection import StratifiedKFold

    names = list(x_train.columns)
    cases = int(y_train.sum())
    controls = len(y_train) - cases
    if min(cases, controls) < folds:
        raise InputError(
            f"the train part has {cases} cases and {controls} controls: too few for --folds {folds}"
        )
    spw = controls / cases
    dtrain = xgb.DMatrix(x_train.to_numpy(dtype=float), label=y_train, feature_names=names)
    dvalid = xgb.DMatrix(x_valid.to_numpy(dtype=float), label=y_valid, feature_names=names)
    base = {
        "objective": "binary:logistic",
        "tree_method": "hist",
        "device": device,
        "eval_metric": ["auc", "logloss"],  # early stopping uses the last one
        "scale_pos_weight": spw,
        "seed": seed,
        "nthread": nthread,
        "verbosity": 0,
    }
    splits = list(
        StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(
            np.zeros(len(y_train)), y_train
        )
    )
    rng = np.random.default_rng(seed)
    trials: list[dict[str, Any]] = []
    for trial in range(n_trials):
        params = sample_parameters(rng)
        history = xgb.cv(
            {**base, **params},
            dtrain,
            num_boost_round=MAX_ROUNDS,
            folds=splits,
            early_stopping_rounds=EARLY_STOPPING_ROUNDS,
            verbose_eval=False,
        )
        score = float(history["test-auc-mean"].iloc[-1])
        trials.append({"trial": trial, **params, "rounds": len(history), "cv_roc_auc": score})
        logger.debug("trial %d: CV ROC-AUC %.4f (%d rounds)", trial, score, len(history))
    best = max(trials, key=lambda t: (t["cv_roc_auc"], -t["trial"]))
    chosen = {k: best[k] for k in SEARCH_SPACE}
    logger.info(
        "best of %d trials: CV ROC-AUC %.4f (%s)",
        n_trials,
        best["cv_roc_auc"],
        ", ".join(f"{k}={v:.3g}" for k, v in chosen.items()),
    )
    booster = xgb.train(
        {**base, **chosen},
        dtrain,
        num_boost_round=MAX_ROUNDS,
        evals=[(dvalid, "validation")],
        early_stopping_rounds=EARLY_STOPPING_ROUNDS,
        verbose_eval=False,
    )
    best_iteration = int(booster.best_iteration)
    booster = booster[: best_iteration + 1]
    return XgbFit(
        booster=booster,
        params={**{k: v for k, v in base.items() if k != "nthread"}, **chosen},
        best_iteration=best_iteration,
        cv_roc_auc=float(best["cv_roc_auc"]),
        scale_pos_weight=spw,
        trials=trials,
    )


def feature_importance(booster: Any, names: list[str]) -> pd.DataFrame:
    """Total gain per feature (0 for unused ones), largest first: ``feature``, ``gain``, ``share``."""
    gain = booster.get_score(importance_type="total_gain")
    frame = pd.DataFrame({"feature": names, "gain": [float(gain.get(n, 0.0)) for n in names]})
    total = frame["gain"].sum()
    frame["share"] = frame["gain"] / total if total > 0 else 0.0
    return frame.sort_values(["gain", "feature"], ascending=[False, True]).reset_index(drop=True)


@dataclass
class LogisticBaseline:
    """An unpenalised logistic regression stored as numbers.

    ``p = sigmoid(intercept + Σ coef_j (x_j − mean_j) / sd_j)``, missing ``x_j`` → ``mean_j``.
    """

    name: str
    description: str
    features: list[str]
    mean: list[float]
    sd: list[float]
    coef: list[float]
    intercept: float

    def probability(self, x: pd.DataFrame) -> np.ndarray:
        if not self.features:
            return np.full(len(x), 1.0 / (1.0 + math.exp(-self.intercept)))
        values = x[self.features].to_numpy(dtype=float)
        mean = np.asarray(self.mean)
        values = np.where(np.isnan(values), mean, values)
        z = (values - mean) / np.asarray(self.sd)
        return np.asarray(1.0 / (1.0 + np.exp(-(self.intercept + z @ np.asarray(self.coef)))))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogisticBaseline:
        return cls(**data)


def fit_logistic_baseline(
    name: str, description: str, x: pd.DataFrame, y: np.ndarray
) -> LogisticBaseline:
    """Fit :class:`LogisticBaseline` on ``x`` (the train part); no features → intercept only."""
    from sklearn.linear_model import LogisticRegression

    features = list(x.columns)
    prevalence = float(np.mean(y))
    if not features:
        return LogisticBaseline(
            name, description, [], [], [], [], math.log(prevalence / (1 - prevalence))
        )
    values = x.to_numpy(dtype=float)
    mean = np.nanmean(values, axis=0)
    values = np.where(np.isnan(values), mean, values)
    sd = values.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    model = LogisticRegression(C=np.inf, max_iter=10_000, tol=1e-10)
    model.fit((values - mean) / sd, y)
    return LogisticBaseline(
        name=name,
        description=description,
        features=features,
        mean=[float(v) for v in mean],
        sd=[float(v) for v in sd],
        coef=[float(v) for v in model.coef_[0]],
        intercept=float(model.intercept_[0]),
    )
