"""The ``train`` stage: an XGBoost risk model and logistic baselines, evaluated once on ``test``.

:func:`run_train` (the stage runner, manifest stage ``train:TRAIT``):

1. checks its inputs before any work: the ``gwas``/``prs`` stages of the trait are
   complete, the trait is binary, ``--device`` is usable (``cuda`` without a GPU
   stops here with :class:`~gwas_prs.core.errors.EnvironmentSetupError`);
2. reads the feature table (:mod:`gwas_prs.stages.features`; built and written when
   missing, or when ``--phenotypes`` names another file than the table's);
3. fits XGBoost on ``train`` (randomised CV search, early stopping on
   ``validation``, :func:`gwas_prs.methods.model.training.fit_xgboost`) and two logistic
   baselines on ``train``: covariates + PCs, and covariates + PCs + the PRS at
   the threshold the prs stage chose on validation;
4. evaluates every model on the untouched ``test`` part
   (:mod:`gwas_prs.methods.model.evaluation`): ROC-AUC and PR-AUC with bootstrap 95%
   CIs, ΔAUC of the PRS (paired bootstrap), calibration, per ancestry group;
   for a simulated trait also the oracle (the true genetic value);
5. writes ``RUN/gold/models/TRAIT/``: ``model.json``, ``feature_schema.json``,
   ``baselines.json``, ``metrics.json``, ``report.html``,
   ``test_predictions.tsv``, ``feature_importance.tsv`` and what ``predict``
   needs (:mod:`gwas_prs.methods.model.artifacts`).

``metrics.json`` holds only results (no timings), so the same seed gives the
same file.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

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
    write_feature_table,
)

logger = logging.getLogger(__name__)

BOOTSTRAP_RESAMPLES = 1000
MODEL_LABELS = {
    "covariates_pcs": "logistic: covariates + PCs",
    "covariates_pcs_prs": "logistic: covariates + PCs + best PRS",
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
    gwas = require_complete(run, f"gwas:{config.trait}", needed_by="train")
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
    features = table.feature_columns(config.features)
    if not features:
        raise InputError(
            f"--features {','.join(config.features)}: the feature table has no such columns "
            f"(covariates: {', '.join(table.schema['covariates']) or 'none'})"
        )
    best = table.schema.get("best_threshold")
    best_column = f"prs_{best:g}" if best is not None else ""
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
        ANCESTRY_REFERENCE,
        add_effect_frequencies,
        ancestry_reference,
        pca_loadings_frame,
        prs_weights_frame,
    )

    scores = pd.read_csv(run.prs_scores(trait), sep="\t", dtype={"sample_id": str}).set_index(
        "sample_id"
    )
    targets = list(scores.index)  # the samples the prs stage scored (and imputed with)
    weights = prs_weights_frame(run.prs_dir(trait), table.schema["thresholds"])
    weights = add_effect_frequencies(weights, run.silver_mt, targets)
    weights.to_csv(storage.join(tmp, "prs_weights.tsv"), sep="\t", index=False)
    pca_loadings_frame(run.pca_loadings).to_csv(
        storage.join(tmp, "pca_loadings.tsv.gz"), sep="\t", index=False
    )
    train = table.frame.index[table.frame["split"] == "train"]
    distribution = np.sort(scores.loc[train, best_column].to_numpy(dtype=float))
    pd.DataFrame({"prs": distribution}).to_csv(
        storage.join(tmp, "prs_distribution.tsv"), sep="\t", index=False
    )
    reference = ancestry_reference(run.silver_ancestry)
    if reference is not None:
        reference[0].to_csv(storage.join(tmp, ANCESTRY_REFERENCE), sep="\t", index=False)


def _oracle(run: RunFolder, trait: str, samples: pd.Index) -> pd.Series | None:
    path = run.simulated_genetic_values(trait)
    if not storage.exists(path):
        return None
    frame = pd.read_csv(path, sep="\t", dtype={"sample_id": str}).set_index("sample_id")
    values = frame["genetic_value"].reindex(samples)
    return None if values.isna().any() else values


def _fit_and_evaluate(
    run: RunFolder,
    config: TrainConfig,
    device: str,
    table: FeatureTable,
    features: list[str],
    best_column: str,
    tmp: str,
) -> tuple[dict[str, Any], dict[str, str]]:
    from gwas_prs.methods.model import evaluation as ev
    from gwas_prs.methods.model.artifacts import SCHEMA_FORMAT, ancestry_reference
    from gwas_prs.methods.model.training import (
        feature_importance,
        fit_logistic_baseline,
        fit_xgboost,
    )

    frame = table.frame
    parts = {role: frame[frame["split"] == role] for role in ("train", "validation", "test")}
    y = {role: part["label"].to_numpy(dtype=int) for role, part in parts.items()}
    for role, labels in y.items():
        if len(labels) == 0 or labels.min() == labels.max():
            raise InputError(
                f"{run.root}: the {role} part of '{config.trait}' has {len(labels)} samples "
                "and a single class; the model cannot be fitted or evaluated"
            )
    logger.info(
        "train: %d train / %d validation / %d test samples, %d features, %d trials × %d folds",
        len(y["train"]), len(y["validation"]), len(y["test"]), len(features),
        config.n_trials, config.folds,
    )  # fmt: skip
    xgb_fit = fit_xgboost(
        parts["train"][features],
        y["train"],
        parts["validation"][features],
        y["validation"],
        folds=config.folds,
        n_trials=config.n_trials,
        seed=config.seed,
        device=device,
        # one thread for small data: faster than several (sync overhead) and reproducible
        nthread=1 if len(y["train"]) < 20_000 else usable_cores(),
    )
    base_columns = table.columns_with_role("covariate") + table.columns_with_role("pc")
    baselines = [
        fit_logistic_baseline(
            "covariates_pcs", MODEL_LABELS["covariates_pcs"], parts["train"][base_columns],
            y["train"],
        ),
        fit_logistic_baseline(
            "covariates_pcs_prs", MODEL_LABELS["covariates_pcs_prs"],
            parts["train"][[*base_columns, best_column]], y["train"],
        ),
    ]  # fmt: skip
    test = parts["test"]
    probabilities = {b.name: b.probability(test) for b in baselines}
    probabilities["xgboost"] = xgb_fit.probability(test[features])
    oracle = _oracle(run, config.trait, test.index)
    scores = dict(probabilities)
    if oracle is not None:
        scores["oracle"] = oracle.to_numpy(dtype=float)
    yt = y["test"]
    idx = ev.bootstrap_indices(yt, BOOTSTRAP_RESAMPLES, config.seed)
    discrimination = ev.discrimination(yt, scores, idx)
    models: dict[str, Any] = {}
    for name, p in probabilities.items():
        models[name] = {
            "label": MODEL_LABELS[name],
            **discrimination[name],
            "calibration": ev.calibration(yt, p),
        }
    incremental = {
        f"{a}_vs_{b}": {
            f"delta_{m}": ev.paired_difference(f, yt, scores[a], scores[b], idx)
            for m, f in ev.METRICS.items()
        }
        for a, b in (("covariates_pcs_prs", "covariates_pcs"), ("xgboost", "covariates_pcs"))
    }
    by_group, skipped = ev.metrics_by_group(
        yt, test["ancestry"].to_numpy(dtype=str), scores, n_boot=BOOTSTRAP_RESAMPLES,
        seed=config.seed,
    )  # fmt: skip
    importance = feature_importance(xgb_fit.booster, features)
    metrics: dict[str, Any] = {
        "trait": config.trait,
        "n": {role: len(labels) for role, labels in y.items()},
        "cases": {role: int(labels.sum()) for role, labels in y.items()},
        "features": features,
        "best_threshold": table.schema["best_threshold"],
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
        "xgboost": {
            "params": xgb_fit.params,
            "best_iteration": xgb_fit.best_iteration,
            "cv_roc_auc": xgb_fit.cv_roc_auc,
            "scale_pos_weight": xgb_fit.scale_pos_weight,
            "logit_offset": xgb_fit.logit_offset,
            "trials": xgb_fit.trials,
        },
    }
    # --- files -------------------------------------------------------------------
    xgb_fit.booster.save_model(storage.join(tmp, "model.json"))
    reference = ancestry_reference(run.silver_ancestry)
    qc = require_complete(run, "qc", needed_by="train")
    ingest = require_complete(run, "ingest", needed_by="train")
    schema = {
        **table.schema,
        "format": SCHEMA_FORMAT,
        "model_features": features,
        "feature_groups": list(config.features),
        "best_prs_column": best_column,
        "raw_prs_best": table.schema["standardisation"][best_column],
        "logit_offset": xgb_fit.logit_offset,
        "reference_genome": ingest.parameters.get("reference_genome", "GRCh37"),
        "pca_variants": int(qc.counts.get("pca_variants", 0)),
        "ancestry": (
            {**reference[1], "seed": int(qc.parameters.get("seed", 0))}
            if reference is not None
            else None
        ),
        "models": {
            "xgboost": "p_xgboost",
            "covariates_pcs": "p_covariates_pcs",
            "covariates_pcs_prs": "p_covariates_pcs_prs",
        },
    }
    storage.write_text_atomic(
        storage.join(tmp, "feature_schema.json"), json.dumps(schema, indent=2) + "\n"
    )
    storage.write_text_atomic(
        storage.join(tmp, "baselines.json"),
        json.dumps({"models": [b.to_dict() for b in baselines]}, indent=2) + "\n",
    )
    storage.write_text_atomic(
        storage.join(tmp, "metrics.json"), json.dumps(metrics, indent=2) + "\n"
    )
    predictions = pd.DataFrame(
        {
            "sample_id": test.index,
            "split": test["split"].to_numpy(),
            "ancestry": test["ancestry"].to_numpy(),
            "label": yt,
            **{f"p_{name}": p for name, p in probabilities.items()},
        }
    )
    if oracle is not None:
        predictions["genetic_value"] = oracle.to_numpy()
    predictions.to_csv(storage.join(tmp, "test_predictions.tsv"), sep="\t", index=False)
    importance.to_csv(storage.join(tmp, "feature_importance.tsv"), sep="\t", index=False)
    _report(config.trait, metrics, yt, scores, importance, storage.join(tmp, "report.html"))
    outputs = {
        "model": "model.json",
        "metrics": "metrics.json",
        "report": "report.html",
        "test_predictions": "test_predictions.tsv",
        "feature_schema": "feature_schema.json",
    }
    return metrics, outputs


def _ci_text(metric: dict[str, float]) -> str:
    return f"{metric['estimate']:.3f} [{metric['ci_low']:.3f}, {metric['ci_high']:.3f}]"


def _report(
    trait: str,
    metrics: dict[str, Any],
    y: np.ndarray,
    scores: dict[str, np.ndarray],
    importance: pd.DataFrame,
    path: str,
) -> None:
    from gwas_prs.methods.model import evaluation as ev
    from gwas_prs.reports.gwas import save_html
    from gwas_prs.reports.model import (
        calibration_figure,
        importance_figure,
        pr_figure,
        roc_figure,
    )

    rows = []
    all_models = {
        **metrics["models"],
        **({"oracle": metrics["oracle"]} if metrics["oracle"] else {}),
    }
    for m in all_models.values():
        cal = m.get("calibration")
        rows.append(
            f"<tr><td>{m['label']}</td><td>{_ci_text(m['roc_auc'])}</td><td>{_ci_text(m['pr_auc'])}</td>"
            + (
                f"<td>{cal['brier']:.3f}</td><td>{cal['intercept']:.2f}</td><td>{cal['slope']:.2f}</td>"
                if cal
                else "<td></td><td></td><td></td>"
            )
            + "</tr>"
        )
    delta = metrics["incremental"]["covariates_pcs_prs_vs_covariates_pcs"]["delta_roc_auc"]
    skipped = "".join(
        f"<li>{group}: not evaluated ({why})</li>"
        for group, why in metrics["ancestry_groups_skipped"].items()
    )
    html = (
        f"<p>Test set: {metrics['n']['test']} samples, {metrics['cases']['test']} cases "
        f"(never used for fitting or tuning). 95% CIs from {metrics['bootstrap']['valid']} "
        "bootstrap resamples.</p><table border='1' cellpadding='4'><tr><th>model</th>"
        "<th>ROC-AUC [95% CI]</th><th>PR-AUC [95% CI]</th><th>Brier</th>"
        "<th>calibration intercept</th><th>calibration slope</th></tr>"
        + "".join(rows)
        + f"</table><p>Incremental value of the PRS (ΔROC-AUC, paired bootstrap): {_ci_text(delta)}</p>"
        + (f"<ul>{skipped}</ul>" if skipped else "")
    )
    labels = {name: MODEL_LABELS[name] for name in scores}
    roc = {
        f"{labels[n]} ({all_models[n]['roc_auc']['estimate']:.3f})": ev.roc_points(y, s)
        for n, s in scores.items()
    }
    pr = {
        f"{labels[n]} ({all_models[n]['pr_auc']['estimate']:.3f})": ev.pr_points(y, s)
        for n, s in scores.items()
    }
    bins = {labels[n]: pd.DataFrame(m["calibration"]["bins"]) for n, m in metrics["models"].items()}
    figures = [
        roc_figure(roc, f"{trait}: ROC curves (test)"),
        pr_figure(pr, float(np.mean(y)), f"{trait}: precision–recall curves (test)"),
        calibration_figure(bins, f"{trait}: calibration (test, deciles of predicted risk)"),
        importance_figure(importance, f"{trait}: XGBoost feature importance (gain)"),
    ]
    save_html(figures, path, f"{trait} risk model", html)
