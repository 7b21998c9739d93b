"""The ``train`` stage: a risk model chosen on validation, and its baselines, evaluated once on ``test``.

:func:`run_train` (the stage runner, manifest stage ``train:TRAIT``):

1. checks its inputs before any work: the ``gwas``/``prs`` stages of the trait are
   complete, the trait is binary (a quantitative trait is refused: the stage fits
   classifiers only), ``--device`` is usable (``cuda`` without a GPU stops here with
   :class:`~gwas_prs.core.errors.EnvironmentSetupError`);
2. reads the feature table (:mod:`gwas_prs.stages.features`; built and written when
   missing, or when ``--phenotypes`` names another file than the table's); the
   model inputs are every ``prs_*`` column of the table (all C+T thresholds and any
   LDpred2/lassosum2 score), the PCs and the covariates (:func:`model_features`,
   narrowed by ``--features``);
3. tunes two candidates on ``train`` (:mod:`gwas_prs.methods.model.training`):
   an L2-penalised logistic regression (standardised inputs, ``C`` by stratified
   CV) and XGBoost (randomised CV search, early stopping on ``validation``,
   monotone increasing in every PRS feature); **chooses** by PR-AUC on
   ``validation`` with the one-standard-error rule (XGBoost only when it beats the
   logistic model by more than one paired-bootstrap SE;
   :func:`~gwas_prs.methods.model.training.choose_model`); refits both on
   ``train + validation`` (XGBoost with the number of trees early stopping
   found) and fits three logistic baselines on the same samples: covariates only,
   covariates + PCs, covariates + PCs + the PRS the prs stage chose (the C+T
   baseline);
4. evaluates every model on the untouched ``test`` part
   (:mod:`gwas_prs.methods.model.evaluation`): ROC-AUC and PR-AUC with bootstrap 95%
   CIs, paired-bootstrap differences of every model against the covariates-only
   and the C+T baseline, calibration, per ancestry group; for a simulated trait
   also the oracle (the true genetic value). When the chosen model's test PR-AUC
   is below a baseline's, ``metrics.json`` (``warnings``), the report and the
   summary say so;
5. writes ``RUN/gold/models/TRAIT/``: ``model.json`` (XGBoost),
   ``logistic_model.json`` (penalised logistic), ``feature_schema.json`` (with
   ``chosen_model``: what ``predict`` reports as ``probability``),
   ``baselines.json``, ``metrics.json``, ``report.html``,
   ``test_predictions.tsv`` (``probability`` = the chosen model, ``p_<model>``
   for each), ``feature_importance.tsv`` and what ``predict`` needs
   (:mod:`gwas_prs.methods.model.artifacts`).

``metrics.json`` records the choice: ``chosen`` (the model's name),
``chosen_by`` (``"validation PR-AUC"``) and ``selection`` (the validation
PR-AUC and ROC-AUC of both candidates, the reason, the chosen model against
the baselines on test).

``metrics.json`` holds only results (no timings), so the same seed gives the
same file.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gwas_prs.core import storage
from gwas_prs.core.errors import InputError
from gwas_prs.core.run_folder import (
    RunFolder,
    check_can_write,
    require_complete,
    stage_run,
)
from gwas_prs.core.stage_options import TRAIN
from gwas_prs.engine.hail_context import HailConfig, start_hail, usable_cores
from gwas_prs.engine.hail_errors import hail_errors_as_computation_errors
from gwas_prs.engine.switch import current_engine, stage_runner
from gwas_prs.stages.features import (
    FEATURE_GROUPS,
    FeatureTable,
    feature_table_from_run,
    read_feature_table,
    trait_source_record,
    write_feature_table,
)

if TYPE_CHECKING:
    from gwas_prs.methods.model.training import LogisticBaseline, XgbFit

logger = logging.getLogger(__name__)

BOOTSTRAP_RESAMPLES = 1000
MODEL_LABELS = {
    "covariates": "logistic: covariates only",
    "covariates_pcs": "logistic: covariates + PCs",
    "covariates_pcs_prs": "logistic: covariates + PCs + best PRS",
    "penalised_logistic": "penalised logistic (L2), all features",
    "xgboost": "XGBoost",
    "oracle": "oracle (true genetic value)",
}


@dataclass(frozen=True)
class TrainConfig:
    """Parameters of ``gwas-prs train``."""

    run_dir: str
    trait: str
    phenotypes_file: str | None = None
    device: str = TRAIN.default("device")
    folds: int = TRAIN.default("folds")
    n_trials: int = TRAIN.default("n-trials")
    seed: int = TRAIN.default("seed")
    features: tuple[str, ...] = TRAIN.default("features")
    overwrite: bool = False

    def validate(self) -> None:
        TRAIN.check_choice("device", self.device)
        if self.folds < 2:
            raise InputError(f"--folds {self.folds}: need at least 2 folds")
        if self.n_trials < 1:
            raise InputError(f"--n-trials {self.n_trials}: need at least 1 trial")
        unknown = [f for f in self.features if f not in FEATURE_GROUPS]
        if unknown or not self.features:
            raise InputError(
                f"--features {','.join(self.features)}: choose from {','.join(FEATURE_GROUPS)}"
            )
        if len(set(self.features)) != len(self.features):
            raise InputError(f"--features {','.join(self.features)}: a group is given twice")


@dataclass
class TrainResult:
    trait: str
    output_dir: str
    metrics: dict[str, Any]
    device: str
    features_path: str
    wall_time_s: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)


def _features(
    run: RunFolder, trait: str, phenotypes_file: str, explicit: bool
) -> tuple[FeatureTable, str]:

    table = read_feature_table(run, trait)
    if table is None or (
        explicit and table.schema["sources"]["phenotypes"] != run.stored_path(phenotypes_file)
    ):
        table = feature_table_from_run(run, trait, phenotypes_file)
        write_feature_table(table, run)
    return table, run.features_file(trait)


@stage_runner("train")
def run_train(config: TrainConfig, hail: HailConfig | None = None) -> TrainResult:
    """Stage runner (see the module docstring)."""
    from gwas_prs.methods.model.training import resolve_device

    started = time.monotonic()
    config.validate()
    device = resolve_device(config.device)  # before anything else: no GPU → stop now
    run = RunFolder(config.run_dir)
    gwas = trait_source_record(run, config.trait, needed_by="train")  # gwas, or prs --sumstats
    require_complete(run, f"prs:{config.trait}", needed_by="train")
    if not gwas.parameters.get("binary", True):
        raise InputError(
            f"--trait {config.trait}: a quantitative trait; train fits a classifier of a binary trait"
        )
    final = run.models_dir(config.trait)
    check_can_write(run, f"train:{config.trait}", [final], overwrite=config.overwrite)
    phenotypes_file = config.phenotypes_file or run.resolve(gwas.parameters["phenotypes_file"])
    table, table_path = _features(
        run, config.trait, phenotypes_file, explicit=config.phenotypes_file is not None
    )
    features = model_features(table, config.features)
    if not features:
        raise InputError(
            f"--features {','.join(config.features)}: the feature table has no such columns "
            f"(covariates: {', '.join(table.schema['covariates']) or 'none'})"
        )
    best_column = best_prs_column(table)
    if best_column not in table.frame.columns:
        raise InputError(f"{run.prs_dir(config.trait)}/metrics.json: no best threshold recorded")
    parameters = {
        "trait": config.trait,
        "phenotypes_file": run.stored_path(phenotypes_file),
        "device": device,
        "folds": config.folds,
        "n_trials": config.n_trials,
        "seed": config.seed,
        "features": list(config.features),
    }
    with stage_run(
        run,
        f"train:{config.trait}",
        parameters=parameters,
        final_outputs=[final],
        overwrite=config.overwrite,
        engine=current_engine(),
    ) as stage:
        tmp = stage.temporary_path(final)
        storage.makedirs(tmp)
        log = start_hail(hail or HailConfig(run_dir=run.root, command="train"))
        with hail_errors_as_computation_errors("exporting the PRS weights and PCA loadings", log):
            _export_prediction_inputs(run, config.trait, table, best_column, tmp)
        metrics, outputs = _fit_and_evaluate(run, config, device, table, features, best_column, tmp)
        stage.publish(tmp, final, "models")
        stage.counts.update(
            {
                "train": metrics["n"]["train"],
                "validation": metrics["n"]["validation"],
                "test": metrics["n"]["test"],
                "chosen_model": metrics["chosen"],
                **{
                    f"{name}_roc_auc": round(m["roc_auc"]["estimate"], 4)
                    for name, m in metrics["models"].items()
                },
            }
        )
    return TrainResult(
        trait=config.trait,
        output_dir=final,
        metrics=metrics,
        device=device,
        features_path=table_path,
        wall_time_s=round(time.monotonic() - started, 3),
        outputs={name: storage.join(final, path) for name, path in outputs.items()},
    )


def _export_prediction_inputs(
    run: RunFolder, trait: str, table: FeatureTable, best_column: str, tmp: str
) -> None:
    from gwas_prs.methods.model.artifacts import (
        ADJUSTMENT_REFERENCE,
        ANCESTRY_ADJUSTMENT,
        ANCESTRY_REFERENCE,
        add_effect_frequencies,
        ancestry_reference,
        pca_loadings_frame,
        prs_weights_frame,
    )

    scores = storage.read_table(
        run.prs_scores(trait), sep="\t", dtype={"sample_id": str}
    ).set_index("sample_id")
    targets = list(scores.index)  # the samples the prs stage scored (and imputed with)
    weights = prs_weights_frame(
        run.prs_dir(trait), table.schema["thresholds"], table.schema.get("prs_methods", ())
    )
    weights = add_effect_frequencies(weights, run.silver_mt, targets)
    storage.write_table(storage.join(tmp, "prs_weights.tsv"), weights, sep="\t", index=False)
    storage.write_table(
        storage.join(tmp, "pca_loadings.tsv.gz"),
        pca_loadings_frame(run.pca_loadings),
        sep="\t",
        index=False,
    )
    train = table.frame.index[table.frame["split"] == "train"]
    distribution = np.sort(scores.loc[train, best_column].to_numpy(dtype=float))
    storage.write_table(
        storage.join(tmp, "prs_distribution.tsv"),
        pd.DataFrame({"prs": distribution}),
        sep="\t",
        index=False,
    )
    reference = ancestry_reference(run.silver_ancestry)
    if reference is not None:
        storage.write_table(
            storage.join(tmp, ANCESTRY_REFERENCE), reference[0], sep="\t", index=False
        )
    adjustment = storage.join(run.prs_dir(trait), ANCESTRY_ADJUSTMENT)
    if storage.exists(adjustment):  # the prs stage's; predict applies it to new samples
        storage.copy_file(adjustment, storage.join(tmp, ANCESTRY_ADJUSTMENT))
        fitted = json.loads(storage.read_text(adjustment))
        columns = [s["score"] for s in fitted.get("scores", []) if s.get("score") in scores.columns]
        frame = scores.loc[train, columns].copy()
        frame.insert(0, "group", table.frame.loc[train, "ancestry"].astype(str).to_numpy())
        frame.insert(0, "sample_id", frame.index.astype(str))
        storage.write_table(storage.join(tmp, ADJUSTMENT_REFERENCE), frame, sep="\t", index=False)


def _oracle(run: RunFolder, trait: str, samples: pd.Index) -> pd.Series | None:
    path = run.simulated_genetic_values(trait)
    if not storage.exists(path):
        return None
    frame = storage.read_table(path, sep="\t", dtype={"sample_id": str}).set_index("sample_id")
    values = frame["genetic_value"].reindex(samples)
    return None if values.isna().any() else values


@dataclass
class FittedModels:
    """What :func:`fit_and_evaluate` returns: the final models, ``metrics.json`` and the test scores."""

    metrics: dict[str, Any]
    xgboost: XgbFit
    logistic: LogisticBaseline
    baselines: list[LogisticBaseline]
    test: pd.DataFrame
    y_test: np.ndarray
    #: P(case) on ``test`` of every fitted model (by name), and the oracle's score.
    probabilities: dict[str, np.ndarray]
    scores: dict[str, np.ndarray]
    importance: pd.DataFrame

    @property
    def chosen(self) -> str:
        return str(self.metrics["chosen"])


def model_features(table: FeatureTable, groups: tuple[str, ...]) -> list[str]:
    """The model inputs, in table order: every ``prs_*`` column the table has (C+T
    thresholds, ``prs_ldpred2_auto``, ``prs_lassosum2`` …) when ``prs`` is among
    ``groups``, and the PCs/covariates of ``pcs``/``covariates``."""
    roles = {FEATURE_GROUPS[g] for g in groups}
    out = []
    for column in table.schema["columns"]:
        name, role = column["name"], column["role"]
        if role in ("id", "split", "ancestry", "label"):
            continue
        is_prs = role == "prs" or name.startswith("prs_")
        if (is_prs and "prs" in roles) or (not is_prs and role in roles):
            out.append(name)
    return out


def best_prs_column(table: FeatureTable) -> str:
    """The PRS column of the C+T baseline: the schema's ``best_prs_column``, else
    ``prs_<best_threshold>`` (the threshold the prs stage chose on validation); ``""`` if none."""
    named = table.schema.get("best_prs_column")
    if named:
        return str(named)
    best = table.schema.get("best_threshold")
    return f"prs_{best:g}" if best is not None else ""


def _validation_scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from gwas_prs.methods.model import evaluation as ev

    return {"pr_auc": ev.average_precision(y, p), "roc_auc": ev.roc_auc(y, p)}


def fit_and_evaluate(
    table: FeatureTable,
    config: TrainConfig,
    device: str,
    features: list[str],
    best_column: str,
    oracle: pd.Series | None = None,
) -> FittedModels:
    """Tune, choose, refit and evaluate every model (no files; see the module docstring).

    ``oracle``: the true genetic value of the ``test`` samples (a simulated trait), or None.
    """
    from gwas_prs.methods.model import evaluation as ev
    from gwas_prs.methods.model.training import (
        CANDIDATES,
        FALLBACK_BASELINE,
        SELECTION_METRIC,
        SIMPLER_WITHIN_SE,
        choose_model,
        feature_importance,
        fit_logistic_baseline,
        fit_penalised_logistic,
        fit_xgboost,
        prefer_baseline,
        refit_logistic,
        refit_xgboost,
    )

    frame = table.frame
    parts = {role: frame[frame["split"] == role] for role in ("train", "validation", "test")}
    y = {role: part["label"].to_numpy(dtype=int) for role, part in parts.items()}
    for role, labels in y.items():
        if len(labels) == 0 or labels.min() == labels.max():
            raise InputError(
                f"{config.run_dir}: the {role} part of '{config.trait}' has {len(labels)} samples "
                "and a single class; the model cannot be fitted or evaluated"
            )
    prs_features = [f for f in features if f.startswith("prs_")]
    logger.info(
        "train: %d train / %d validation / %d test samples, %d features (%d PRS), "
        "%d trials × %d folds",
        len(y["train"]), len(y["validation"]), len(y["test"]), len(features), len(prs_features),
        config.n_trials, config.folds,
    )  # fmt: skip
    # one thread for small data: faster than several (sync overhead) and reproducible
    nthread = 1 if len(y["train"]) < 20_000 else usable_cores()
    train, valid = parts["train"], parts["validation"]
    # --- candidates: tuned on train, compared on validation ------------------------
    xgb_tuned = fit_xgboost(
        train[features], y["train"], valid[features], y["validation"], folds=config.folds,
        n_trials=config.n_trials, seed=config.seed, device=device, nthread=nthread,
        increasing=prs_features,
    )  # fmt: skip
    penalised = fit_penalised_logistic(
        "penalised_logistic", MODEL_LABELS["penalised_logistic"], train[features], y["train"],
        folds=config.folds, seed=config.seed,
    )  # fmt: skip
    p_valid = {
        "penalised_logistic": penalised.probability(valid[features]),
        "xgboost": xgb_tuned.probability(valid[features]),
    }
    validation = {name: _validation_scores(y["validation"], p) for name, p in p_valid.items()}
    # the paired bootstrap SE of the difference: XGBoost must beat the simpler model by more
    vidx = ev.bootstrap_indices(y["validation"], BOOTSTRAP_RESAMPLES, config.seed)
    difference = validation["xgboost"]["pr_auc"] - validation["penalised_logistic"]["pr_auc"]
    se = ev.paired_difference_se(
        ev.average_precision, y["validation"], p_valid["xgboost"],
        p_valid["penalised_logistic"], vidx,
    )  # fmt: skip
    candidate = choose_model(validation, se=se)
    covariates = table.columns_with_role("covariate")
    base_columns = covariates + table.columns_with_role("pc")
    baseline_inputs = {
        "covariates": covariates,
        "covariates_pcs": base_columns,
        "covariates_pcs_prs": [*base_columns, best_column],
    }
    # the C+T baseline on train, for validation: used instead when it is not worse
    fallback = fit_logistic_baseline(
        FALLBACK_BASELINE, MODEL_LABELS[FALLBACK_BASELINE],
        train[baseline_inputs[FALLBACK_BASELINE]], y["train"],
    )  # fmt: skip
    p_fallback = fallback.probability(valid)
    fallback_validation = _validation_scores(y["validation"], p_fallback)
    fallback_se = ev.paired_difference_se(
        ev.average_precision, y["validation"], p_valid[candidate], p_fallback, vidx
    )
    chosen = prefer_baseline(
        {**validation, FALLBACK_BASELINE: fallback_validation}, candidate, se=fallback_se
    )
    reason = (
        f"{candidate}: validation PR-AUC penalised_logistic "
        f"{validation['penalised_logistic']['pr_auc']:.4f}, xgboost "
        f"{validation['xgboost']['pr_auc']:.4f} (difference {difference:+.4f}, "
        f"{SIMPLER_WITHIN_SE:g} SE = {SIMPLER_WITHIN_SE * se:.4f}): "
        + (
            "XGBoost is better by more than the margin"
            if candidate == "xgboost"
            else "XGBoost is not better by more than the margin, the simpler model is kept"
        )
        + (
            f"; the C+T baseline's validation PR-AUC {fallback_validation['pr_auc']:.4f} is "
            + (
                f"within {SIMPLER_WITHIN_SE:g} SE ({SIMPLER_WITHIN_SE * fallback_se:.4f}) of "
                f"it, so predict uses the simpler baseline ({FALLBACK_BASELINE})"
                if chosen == FALLBACK_BASELINE
                else f"lower by more than {SIMPLER_WITHIN_SE:g} SE "
                f"({SIMPLER_WITHIN_SE * fallback_se:.4f})"
            )
        )
    )
    logger.info("train: chose %s", reason)
    # --- final models: refitted on train + validation ------------------------------
    both = pd.concat([train, valid])
    y_both = both["label"].to_numpy(dtype=int)
    xgb_fit = refit_xgboost(xgb_tuned, both[features], y_both, nthread=nthread)
    logistic = refit_logistic(penalised.model, both[features], y_both)
    baselines = [
        fit_logistic_baseline(name, _label(name, covariates), both[columns], y_both)
        for name, columns in baseline_inputs.items()
    ]
    # --- test ----------------------------------------------------------------------
    test = parts["test"]
    probabilities = {b.name: b.probability(test) for b in baselines}
    probabilities["penalised_logistic"] = logistic.probability(test)
    probabilities["xgboost"] = xgb_fit.probability(test[features])
    scores = dict(probabilities)
    if oracle is not None:
        scores["oracle"] = oracle.reindex(test.index).to_numpy(dtype=float)
    yt = y["test"]
    idx = ev.bootstrap_indices(yt, BOOTSTRAP_RESAMPLES, config.seed)
    discrimination = ev.discrimination(yt, scores, idx)
    fitted_on = "train + validation"
    models: dict[str, Any] = {
        name: {
            "label": _label(name, covariates),
            **discrimination[name],
            "calibration": ev.calibration(yt, p),
            "fitted_on": fitted_on,
            "chosen": name == chosen,
        }
        for name, p in probabilities.items()
    }
    pairs = [("covariates_pcs_prs", "covariates_pcs"), ("xgboost", "covariates_pcs")]
    pairs += [(m, "covariates") for m in probabilities if m != "covariates"]
    pairs += [(m, "covariates_pcs_prs") for m in CANDIDATES]
    incremental = {
        f"{a}_vs_{b}": {
            f"delta_{m}": ev.paired_difference(f, yt, scores[a], scores[b], idx)
            for m, f in ev.METRICS.items()
        }
        for a, b in dict.fromkeys(pairs)
    }
    by_group, skipped = ev.metrics_by_group(
        yt, test["ancestry"].to_numpy(dtype=str), scores, n_boot=BOOTSTRAP_RESAMPLES,
        seed=config.seed,
    )  # fmt: skip
    importance = feature_importance(xgb_fit.booster, features)
    versus = _versus_baselines(chosen, models, incremental)
    warnings: list[str] = versus.pop("warnings")
    selection = {
        "metric": SELECTION_METRIC,
        "split": "validation",
        "candidates": validation,
        "rule": (
            f"the highest validation PR-AUC; {CANDIDATES[0]} (the simpler model) unless "
            f"xgboost is higher by more than {SIMPLER_WITHIN_SE:g} bootstrap SE of the "
            "paired difference; then the C+T baseline (covariates + PCs + best PRS, "
            "fitted on train) instead unless that choice is higher by more than "
            f"{SIMPLER_WITHIN_SE:g} bootstrap SE of their paired difference"
        ),
        "candidate": candidate,
        "baseline": {"name": FALLBACK_BASELINE, **fallback_validation, "se": fallback_se},
        "difference": {"xgboost_minus_penalised_logistic": difference, "se": se},
        "reason": reason,
        "refitted_on": fitted_on,
        "test_vs_baselines": versus,
    }
    metrics: dict[str, Any] = {
        "trait": config.trait,
        "n": {role: len(labels) for role, labels in y.items()},
        "cases": {role: int(labels.sum()) for role, labels in y.items()},
        "features": features,
        "prs_features": prs_features,
        "best_threshold": table.schema.get("best_threshold"),
        "best_prs_column": best_column,
        "chosen": chosen,
        "chosen_by": "validation PR-AUC",
        "selection": selection,
        "warnings": warnings,
        "models": models,
        "oracle": (
            {"label": MODEL_LABELS["oracle"], **discrimination["oracle"]}
            if oracle is not None
            else None
        ),
        "incremental": incremental,
        "by_ancestry": by_group,
        "ancestry_groups_skipped": skipped,
        "bootstrap": {"resamples": BOOTSTRAP_RESAMPLES, "valid": len(idx), "seed": config.seed},
        "penalised_logistic": {
            "penalty": "l2",
            "C": penalised.C,
            "cv_metric": "log loss",
            "cv": penalised.cv,
            "intercept": logistic.intercept,
            "coefficients": dict(zip(logistic.features, logistic.coef, strict=True)),
        },
        "xgboost": {
            "params": xgb_fit.params,
            "best_iteration": xgb_fit.best_iteration,
            "n_trees": xgb_fit.best_iteration + 1,
            "monotone_increasing": prs_features,
            "cv_roc_auc": xgb_fit.cv_roc_auc,
            "scale_pos_weight": xgb_fit.scale_pos_weight,
            "logit_offset": xgb_fit.logit_offset,
            "trials": xgb_fit.trials,
        },
    }
    for warning in warnings:
        logger.warning("train: %s", warning)
    return FittedModels(
        metrics=metrics,
        xgboost=xgb_fit,
        logistic=logistic,
        baselines=baselines,
        test=test,
        y_test=yt,
        probabilities=probabilities,
        scores=scores,
        importance=importance,
    )


def _label(name: str, covariates: list[str]) -> str:
    if name == "covariates" and not covariates:
        return "logistic: intercept only (no covariates)"
    return MODEL_LABELS[name]


def _versus_baselines(
    chosen: str, models: dict[str, Any], incremental: dict[str, Any]
) -> dict[str, Any]:
    """The chosen model against the covariates-only and C+T baselines on test (paired
    bootstrap ΔPR-AUC/ΔROC-AUC), and a warning for each baseline it does not beat."""
    out: dict[str, Any] = {"warnings": []}
    for baseline in ("covariates", "covariates_pcs_prs"):
        if chosen == baseline:
            out[baseline] = {"same_model": True}
            continue
        delta = incremental[f"{chosen}_vs_{baseline}"]
        out[baseline] = delta
        d = delta["delta_pr_auc"]
        if d["estimate"] < 0:
            significance = (
                "the 95% CI excludes 0"
                if d["ci_high"] < 0
                else "within noise: the 95% CI includes 0"
            )
            out["warnings"].append(
                f"the chosen model ({models[chosen]['label']}) has a lower test PR-AUC than "
                f"the baseline '{models[baseline]['label']}': Δ {d['estimate']:+.4f} "
                f"[{d['ci_low']:+.3f}, {d['ci_high']:+.3f}] ({significance})"
            )
    return out


def model_schema(
    table: FeatureTable,
    fitted: FittedModels,
    features: list[str],
    groups: tuple[str, ...],
    best_column: str,
    *,
    reference_genome: str,
    pca_variants: int,
    ancestry: dict[str, Any] | None,
) -> dict[str, Any]:
    """``feature_schema.json``: the feature table's schema plus what ``predict`` needs
    (``model_features``, ``chosen_model``, XGBoost's ``logit_offset``, …)."""
    from gwas_prs.methods.model.artifacts import SCHEMA_FORMAT

    return {
        **table.schema,
        "format": SCHEMA_FORMAT,
        "model_features": features,
        "feature_groups": list(groups),
        "best_prs_column": best_column,
        "raw_prs_best": table.schema["standardisation"][best_column],
        "logit_offset": fitted.xgboost.logit_offset,
        "chosen_model": fitted.chosen,
        "reference_genome": reference_genome,
        "pca_variants": pca_variants,
        "ancestry": ancestry,
        "models": {name: f"p_{name}" for name in fitted.probabilities},
    }


def _fit_and_evaluate(
    run: RunFolder,
    config: TrainConfig,
    device: str,
    table: FeatureTable,
    features: list[str],
    best_column: str,
    tmp: str,
) -> tuple[dict[str, Any], dict[str, str]]:
    from gwas_prs.methods.model.artifacts import ancestry_reference, model_files

    test_index = table.frame.index[table.frame["split"] == "test"]
    oracle = _oracle(run, config.trait, test_index)
    fitted = fit_and_evaluate(table, config, device, features, best_column, oracle)
    metrics = fitted.metrics
    reference = ancestry_reference(run.silver_ancestry)
    qc = require_complete(run, "qc", needed_by="train")
    ingest = require_complete(run, "ingest", needed_by="train")
    schema = model_schema(
        table,
        fitted,
        features,
        config.features,
        best_column,
        reference_genome=ingest.parameters.get("reference_genome", "GRCh37"),
        pca_variants=int(qc.counts.get("pca_variants", 0)),
        ancestry=(
            {**reference[1], "seed": int(qc.parameters.get("seed", 0))}
            if reference is not None
            else None
        ),
    )
    files = model_files(
        schema=schema,
        booster=fitted.xgboost.booster,
        logistic=fitted.logistic,
        baselines=fitted.baselines,
    )
    for name, content in files.items():
        with storage.atomic_writer(storage.join(tmp, name)) as handle:
            handle.write(content)
    storage.write_text_atomic(
        storage.join(tmp, "metrics.json"), json.dumps(metrics, indent=2) + "\n"
    )
    test, yt = fitted.test, fitted.y_test
    predictions = pd.DataFrame(
        {
            "sample_id": test.index,
            "split": test["split"].to_numpy(),
            "ancestry": test["ancestry"].to_numpy(),
            "label": yt,
            "probability": fitted.probabilities[fitted.chosen],
            **{f"p_{name}": p for name, p in fitted.probabilities.items()},
        }
    )
    if oracle is not None:
        predictions["genetic_value"] = oracle.reindex(test.index).to_numpy()
    storage.write_table(
        storage.join(tmp, "test_predictions.tsv"), predictions, sep="\t", index=False
    )
    storage.write_table(
        storage.join(tmp, "feature_importance.tsv"), fitted.importance, sep="\t", index=False
    )
    write_report(
        config.trait, metrics, yt, fitted.scores, fitted.importance,
        storage.join(tmp, "report.html"),
    )  # fmt: skip
    outputs = {
        "model": "model.json",
        "logistic_model": "logistic_model.json",
        "metrics": "metrics.json",
        "report": "report.html",
        "test_predictions": "test_predictions.tsv",
        "feature_schema": "feature_schema.json",
    }
    return metrics, outputs


def write_report(
    trait: str,
    metrics: dict[str, Any],
    y: np.ndarray,
    scores: dict[str, np.ndarray],
    importance: pd.DataFrame,
    path: str,
) -> None:
    """``report.html``: the tables of :func:`gwas_prs.reports.model.summary_html` and the
    ROC, precision–recall, calibration and importance figures."""
    from bokeh.layouts import row

    from gwas_prs.methods.model import evaluation as ev
    from gwas_prs.reports.gwas import save_html
    from gwas_prs.reports.model import (
        calibration_figure,
        importance_figure,
        pr_figure,
        roc_figure,
        summary_html,
    )
    from gwas_prs.reports.palette import model_colour

    all_models = {
        **metrics["models"],
        **({"oracle": metrics["oracle"]} if metrics["oracle"] else {}),
    }
    labels = {name: all_models[name]["label"] for name in scores}
    roc_labels = {n: f"{labels[n]} ({all_models[n]['roc_auc']['estimate']:.3f})" for n in scores}
    pr_labels = {n: f"{labels[n]} ({all_models[n]['pr_auc']['estimate']:.3f})" for n in scores}
    roc = {roc_labels[n]: ev.roc_points(y, s) for n, s in scores.items()}
    pr = {pr_labels[n]: ev.pr_points(y, s) for n, s in scores.items()}
    colours = {
        **{roc_labels[n]: model_colour(n) for n in scores},
        **{pr_labels[n]: model_colour(n) for n in scores},
        **{m["label"]: model_colour(n) for n, m in all_models.items()},
    }
    bins = {m["label"]: pd.DataFrame(m["calibration"]["bins"]) for m in metrics["models"].values()}
    figures = [
        row(
            roc_figure(roc, f"{trait}: ROC curves (test)", colours),
            pr_figure(pr, float(np.mean(y)), f"{trait}: precision–recall curves (test)", colours),
        ),
        row(
            calibration_figure(
                bins, f"{trait}: calibration (test, deciles of predicted risk)", colours
            ),
            importance_figure(importance, f"{trait}: XGBoost feature importance (gain)"),
        ),
    ]
    save_html(figures, path, f"{trait} risk model", summary_html(metrics))
