"""Fitting the risk models: penalised logistic regression and XGBoost, chosen on validation.

Two candidate models are tuned on ``train`` and compared on ``validation``
(:func:`choose_model`); both are then refitted on ``train + validation`` with the
tuned hyper-parameters (:func:`refit_logistic`, :func:`refit_xgboost`), and the
chosen one is what ``predict`` uses.

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

Monotone constraints: every feature named in ``increasing`` (the stage passes all
``prs_*`` columns) gets ``monotone_constraints = 1``: a higher PRS never lowers
the predicted risk (in the search, the fit and the refit).

Class imbalance: ``scale_pos_weight = controls / cases`` of ``train``. Weighting
the cases by ``w`` multiplies the fitted odds by ``w``, so the reported
probability is ``sigmoid(margin − log w)`` (the prior correction, stored as
``logit_offset``); without it the probabilities would be too high on average.
Same seed, same data and same thread count give the same model.

Penalised logistic regression (:func:`fit_penalised_logistic`)
--------------------------------------------------------------
scikit-learn ``LogisticRegression`` with an L2 penalty (``lbfgs``; the intercept
is not penalised) on standardised inputs (mean/SD with ``ddof=0`` of the rows it
is fitted on; missing values replaced by that mean). ``C`` is the value of
:data:`C_GRID` with the lowest mean held-out log loss in the same seeded
stratified ``folds``-fold split of ``train`` (scaler refitted inside each fold;
ties → the smaller ``C``). Log loss rather than PR-AUC: it is a proper score,
so it also keeps the probabilities calibrated, and it does not go flat for
strong penalties the way a ranking metric does.

Baselines (:func:`fit_logistic_baseline`)
-----------------------------------------
The same regression without penalty (``C = ∞``). Every logistic fit is stored
as plain numbers (:class:`LogisticBaseline`) so ``predict`` needs no pickle.

Model choice (:func:`choose_model`)
-----------------------------------
By PR-AUC on ``validation`` (the KPI), with the one-standard-error rule: the
penalised logistic (the simpler, first of :data:`CANDIDATES`) is kept unless
XGBoost's validation PR-AUC is higher by more than :data:`SIMPLER_WITHIN_SE`
bootstrap standard error of the paired difference (the stage passes ``se``; with
``se = 0`` it is the plain best, ties → the simpler). Why: XGBoost's validation
score is optimistic (its number of trees was early-stopped on the same samples)
and a few hundred validation samples are noisy; on simulated traits that are
linear in the PRS, plain argmax picked XGBoost in 2 of 15 seeds and it then
trailed the logistic baselines on test by 0.02–0.04 PR-AUC.

Then the C+T baseline (:data:`FALLBACK_BASELINE`, fitted on train) is compared on
validation with the chosen candidate by the same rule (:func:`prefer_baseline`): the
baseline, the simplest model, is used unless the candidate with every feature is
better by more than one SE of the paired difference: with a few hundred training
samples and many PRS features the extra features are mostly noise.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
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
#: Inverse penalty strengths tried for the penalised logistic regression.
C_GRID: tuple[float, ...] = tuple(float(c) for c in np.logspace(-4, 4, 17))
#: The candidate models, in tie-break order (simplest first).
CANDIDATES: tuple[str, ...] = ("penalised_logistic", "xgboost")
#: The C+T baseline (covariates + PCs + best PRS, unpenalised): chosen instead of the
#: candidate :func:`choose_model` picked when that one is not better on validation.
FALLBACK_BASELINE = "covariates_pcs_prs"
#: Every model ``predict`` may use (``feature_schema.json``'s ``chosen_model``).
CHOSEN_MODELS: tuple[str, ...] = (*CANDIDATES, FALLBACK_BASELINE)
#: What :func:`choose_model` compares (on ``validation``).
SELECTION_METRIC = "pr_auc"
#: :func:`choose_model` keeps the simpler candidate unless the other one is better by
#: more than this many standard errors (bootstrap, paired) of the difference.
SIMPLER_WITHIN_SE = 1.0


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
    """The fitted booster and how it was chosen.

    ``rows`` names the parts it was fitted on (``train``, or ``train + validation``
    for a refit); ``best_iteration`` is the last tree kept (so ``best_iteration + 1``
    trees).
    """

    booster: Any
    params: dict[str, Any]
    best_iteration: int
    cv_roc_auc: float
    scale_pos_weight: float
    trials: list[dict[str, Any]] = field(default_factory=list)
    increasing: list[str] = field(default_factory=list)
    rows: str = "train"

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


def monotone_constraints(names: Sequence[str], increasing: Sequence[str]) -> str:
    """XGBoost's ``monotone_constraints`` string: ``1`` for ``increasing`` features, else ``0``."""
    unknown = sorted(set(increasing) - set(names))
    if unknown:
        raise InputError(f"monotone constraint on unknown features: {', '.join(unknown)}")
    wanted = set(increasing)
    return "(" + ",".join("1" if n in wanted else "0" for n in names) + ")"


def _class_counts(y: np.ndarray, what: str, folds: int = 1) -> tuple[int, int]:
    cases = int(np.sum(y))
    controls = len(y) - cases
    if min(cases, controls) < max(folds, 1):
        needed = f"too few for --folds {folds}" if folds > 1 else "both classes are needed"
        raise InputError(f"the {what} has {cases} cases and {controls} controls: {needed}")
    return cases, controls


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
    increasing: Sequence[str] = (),
) -> XgbFit:
    """Randomised CV search on ``train``, refit early-stopped on ``validation`` (module docstring).

    ``increasing``: features the prediction must never decrease in (monotone constraints).
    """
    import xgboost as xgb
    from sklearn.model_selection import StratifiedKFold

    names = list(x_train.columns)
    cases, controls = _class_counts(y_train, "train part", folds)
    spw = controls / cases
    dtrain = xgb.DMatrix(x_train.to_numpy(dtype=float), label=y_train, feature_names=names)
    dvalid = xgb.DMatrix(x_valid.to_numpy(dtype=float), label=y_valid, feature_names=names)
    base: dict[str, Any] = {
        "objective": "binary:logistic",
        "tree_method": "hist",
        "device": device,
        "eval_metric": ["auc", "logloss"],  # early stopping uses the last one
        "scale_pos_weight": spw,
        "seed": seed,
        "nthread": nthread,
        "verbosity": 0,
    }
    if increasing:
        base["monotone_constraints"] = monotone_constraints(names, increasing)
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
        increasing=list(increasing),
    )


def refit_xgboost(fit: XgbFit, x: pd.DataFrame, y: np.ndarray, *, nthread: int = 1) -> XgbFit:
    """``fit``'s parameters on new rows (``train + validation``), with the number of trees
    early stopping found (``best_iteration + 1``) and ``scale_pos_weight`` of these rows."""
    import xgboost as xgb

    names = list(fit.booster.feature_names or x.columns)
    cases, controls = _class_counts(y, "train + validation parts")
    spw = controls / cases
    params = {**fit.params, "scale_pos_weight": spw, "nthread": nthread}
    matrix = xgb.DMatrix(x[names].to_numpy(dtype=float), label=y, feature_names=names)
    booster = xgb.train(params, matrix, num_boost_round=fit.best_iteration + 1, verbose_eval=False)
    return XgbFit(
        booster=booster,
        params={k: v for k, v in params.items() if k != "nthread"},
        best_iteration=fit.best_iteration,
        cv_roc_auc=fit.cv_roc_auc,
        scale_pos_weight=spw,
        trials=fit.trials,
        increasing=list(fit.increasing),
        rows="train + validation",
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
    """A logistic regression stored as numbers (unpenalised baseline or penalised model).

    ``p = sigmoid(intercept + Σ coef_j (x_j − mean_j) / sd_j)``, missing ``x_j`` → ``mean_j``.
    ``penalty`` is ``none`` (``C`` = None) or ``l2`` (with its inverse strength ``C``).
    """

    name: str
    description: str
    features: list[str]
    mean: list[float]
    sd: list[float]
    coef: list[float]
    intercept: float
    penalty: str = "none"
    C: float | None = None

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


def _standardise(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, SD (ddof=0; 1 for a constant column) and the standardised values (NaN → mean)."""
    with np.errstate(all="ignore"):
        mean = np.nanmean(values, axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)  # an all-missing column
    values = np.where(np.isnan(values), mean, values)
    sd = values.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    return mean, sd, (values - mean) / sd


def _logistic(c: float, tol: float = 1e-10) -> Any:
    """lbfgs, L2 (``l1_ratio = 0``, the default) with inverse strength ``c``; ``c = ∞``: no penalty."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=10_000, tol=tol)


def _fit_logistic(
    name: str, description: str, x: pd.DataFrame, y: np.ndarray, c: float
) -> LogisticBaseline:
    features = list(x.columns)
    penalty = "none" if math.isinf(c) else "l2"
    stored_c = None if math.isinf(c) else float(c)
    if not features:
        prevalence = float(np.mean(y))
        intercept = math.log(prevalence / (1 - prevalence))
        return LogisticBaseline(name, description, [], [], [], [], intercept, penalty, stored_c)
    from threadpoolctl import threadpool_limits

    mean, sd, z = _standardise(x.to_numpy(dtype=float))
    with threadpool_limits(limits=1):  # a few columns: one BLAS thread is fastest
        model = _logistic(c).fit(z, y)
    return LogisticBaseline(
        name=name,
        description=description,
        features=features,
        mean=[float(v) for v in mean],
        sd=[float(v) for v in sd],
        coef=[float(v) for v in model.coef_[0]],
        intercept=float(model.intercept_[0]),
        penalty=penalty,
        C=stored_c,
    )


def fit_logistic_baseline(
    name: str, description: str, x: pd.DataFrame, y: np.ndarray
) -> LogisticBaseline:
    """Fit :class:`LogisticBaseline` on ``x`` (the train part); no features → intercept only."""
    return _fit_logistic(name, description, x, y, math.inf)


@dataclass
class PenalisedFit:
    """The L2-penalised logistic regression with the ``C`` chosen by CV, and the CV table."""

    model: LogisticBaseline
    C: float
    cv: list[dict[str, float]]

    def probability(self, x: pd.DataFrame) -> np.ndarray:
        return self.model.probability(x)


def fit_penalised_logistic(
    name: str,
    description: str,
    x: pd.DataFrame,
    y: np.ndarray,
    *,
    folds: int,
    seed: int,
    c_grid: Sequence[float] = C_GRID,
) -> PenalisedFit:
    """``C`` by stratified CV on ``x``/``y`` (lowest held-out log loss), then one fit on all of it."""
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    if x.shape[1] == 0:
        raise InputError("the penalised logistic regression needs at least one feature")
    _class_counts(y, "train part", folds)
    values = x.to_numpy(dtype=float)
    splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(values, y))
    folds_data = []
    for fit_rows, held_rows in splits:
        mean, sd, z = _standardise(values[fit_rows])
        held = (np.where(np.isnan(values[held_rows]), mean, values[held_rows]) - mean) / sd
        folds_data.append((z, y[fit_rows], held, np.asarray(y[held_rows], dtype=float)))
    cv: list[dict[str, float]] = []
    with threadpool_limits(limits=1):  # a few columns: one BLAS thread is fastest
        for c in c_grid:
            losses = []
            for z, y_fit, held, y_held in folds_data:
                model = _logistic(float(c), tol=1e-8).fit(z, y_fit)
                p = np.clip(model.predict_proba(held)[:, 1], 1e-15, 1 - 1e-15)
                losses.append(-np.mean(y_held * np.log(p) + (1 - y_held) * np.log(1 - p)))
            cv.append({"C": float(c), "cv_log_loss": float(np.mean(losses))})
    best = min(cv, key=lambda row: (row["cv_log_loss"], row["C"]))
    logger.info("penalised logistic: C=%.3g (CV log loss %.4f)", best["C"], best["cv_log_loss"])
    model = _fit_logistic(name, description, x, y, best["C"])
    return PenalisedFit(model=model, C=best["C"], cv=cv)


def refit_logistic(model: LogisticBaseline, x: pd.DataFrame, y: np.ndarray) -> LogisticBaseline:
    """The same model (features, penalty, ``C``) fitted on new rows (``train + validation``)."""
    c = math.inf if model.C is None else float(model.C)
    return _fit_logistic(model.name, model.description, x[model.features], y, c)


def choose_model(
    validation: Mapping[str, Mapping[str, float]],
    metric: str = SELECTION_METRIC,
    *,
    se: float = 0.0,
    within_se: float = SIMPLER_WITHIN_SE,
) -> str:
    """The simplest candidate (in :data:`CANDIDATES` order) whose validation ``metric`` is
    within ``within_se × se`` of the best one (the one-standard-error rule; ``se = 0``:
    the best, ties → the simpler). NaN counts as the worst value."""
    if not validation:
        raise InputError("no candidate model to choose from")
    order = {name: k for k, name in enumerate(CANDIDATES)}
    names = sorted(validation, key=lambda name: order.get(name, len(order)))

    def value(name: str) -> float:
        v = float(validation[name][metric])
        return v if math.isfinite(v) else -math.inf

    best = max(value(name) for name in names)
    margin = within_se * se if math.isfinite(se) else 0.0
    return next(name for name in names if value(name) >= best - margin)


def prefer_baseline(
    validation: Mapping[str, Mapping[str, float]],
    chosen: str,
    baseline: str = FALLBACK_BASELINE,
    metric: str = SELECTION_METRIC,
    *,
    se: float = 0.0,
    within_se: float = SIMPLER_WITHIN_SE,
) -> str:
    """``baseline`` when its validation ``metric`` is within ``within_se × se`` of
    ``chosen``'s (``se``: the bootstrap SE of their paired difference; the
    one-standard-error rule again, the baseline being the simplest model; ``se = 0``:
    at least as good, ties → the baseline; NaN counts as the worst value), else
    ``chosen``."""
    if baseline not in validation:
        return chosen

    def value(name: str) -> float:
        v = float(validation[name][metric])
        return v if math.isfinite(v) else -math.inf

    margin = within_se * se if math.isfinite(se) else 0.0
    return baseline if value(baseline) >= value(chosen) - margin else chosen
