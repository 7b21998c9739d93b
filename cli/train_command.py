"""``gwas-prs train`` and ``gwas-prs predict``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from gwas_prs.cli.console import console, print_outputs, summary_table
from gwas_prs.cli.hail_options import hail_config
from gwas_prs.cli.options import (
    CoresOption,
    DriverMemoryOption,
    EngineOption,
    OverwriteOption,
    RunArgument,
    SparkMasterOption,
)
from gwas_prs.core.stage_options import TRAIN

if TYPE_CHECKING:
    from gwas_prs.stages.predict import PredictResult
    from gwas_prs.stages.train import TrainResult


def train(
    run: RunArgument,
    trait: Annotated[
        str,
        typer.Option(
            "--trait", "-t", help="Binary trait (as given to gwas and prs).", show_default=False
        ),
    ],
    phenotypes: Annotated[
        str | None,
        typer.Option(
            "--phenotypes",
            help="Phenotype file with the trait and covariates [default: the file gwas used].",
            show_default=False,
        ),
    ] = None,
    device: Annotated[
        str,
        typer.Option("--device", help=TRAIN.help("device")),
    ] = TRAIN.cli_default("device"),
    folds: Annotated[
        int,
        typer.Option("--folds", help=TRAIN.help("folds")),
    ] = TRAIN.cli_default("folds"),
    n_trials: Annotated[
        int,
        typer.Option("--n-trials", help=TRAIN.help("n-trials")),
    ] = TRAIN.cli_default("n-trials"),
    seed: Annotated[
        int,
        typer.Option("--seed", help=TRAIN.help("seed")),
    ] = TRAIN.cli_default("seed"),
    features: Annotated[
        str,
        typer.Option("--features", help=TRAIN.help("features")),
    ] = TRAIN.cli_default("features"),
    overwrite: OverwriteOption = False,
    cores: CoresOption = None,
    driver_memory: DriverMemoryOption = None,
    engine: EngineOption = None,
    spark_master: SparkMasterOption = None,
) -> None:
    """Train a risk model on every PRS column + PCs + covariates and evaluate it on held-out samples.

    Uses the split of the gwas stage. Two candidates are tuned on 'train': a
    penalised (L2) logistic regression, C by cross-validation, and XGBoost
    (randomised cross-validated search, early stopping on 'validation', never
    decreasing in a PRS). The one with the higher validation PR-AUC is chosen
    (XGBoost only when higher by more than one bootstrap SE; the chosen model is
    what 'gwas-prs predict' uses); both are refitted on train +
    validation, as are three logistic baselines: covariates only, covariates +
    PCs, covariates + PCs + the best PRS. 'test' is used once, for the metrics:
    ROC-AUC and PR-AUC with bootstrap 95% CIs, paired differences against the
    baselines, per ancestry group, and for a simulated trait the oracle (the
    true genetic value), the ceiling of any model.

    Writes RUN/gold/features/TRAIT.parquet (if missing) and RUN/gold/models/TRAIT/:
    model.json (XGBoost), logistic_model.json, metrics.json, report.html,
    test_predictions.tsv, feature_schema.json and what 'gwas-prs predict' needs.

    Example: gwas-prs train runs/demo --trait disease
    """
    from gwas_prs.stages.train import TrainConfig, run_train

    config = TrainConfig(
        run_dir=run,
        trait=trait,
        phenotypes_file=phenotypes,
        device=device,
        folds=folds,
        n_trials=n_trials,
        seed=seed,
        features=TRAIN.parse("features", features),
        overwrite=overwrite,
    )
    config.validate()
    result = run_train(
        config,
        hail_config(
            run,
            "train",
            cores=cores,
            driver_memory=driver_memory,
            engine=engine,
            spark_master=spark_master,
            seed=seed,
        ),
    )
    print_train_summary(result)


def _ci(metric: dict[str, float]) -> str:
    return f"{metric['estimate']:.3f} [{metric['ci_low']:.3f}, {metric['ci_high']:.3f}]"


def model_rows(metrics: dict[str, Any]) -> list[tuple[str, str, str]]:
    """One row per model (and the oracle): label (the chosen one marked), ROC-AUC [CI], PR-AUC [CI]."""
    chosen = metrics.get("chosen")
    rows = [
        (m["label"] + (" (chosen)" if name == chosen else ""), _ci(m["roc_auc"]), _ci(m["pr_auc"]))
        for name, m in metrics["models"].items()
    ]
    if metrics.get("oracle"):
        oracle = metrics["oracle"]
        rows.append((oracle["label"], _ci(oracle["roc_auc"]), _ci(oracle["pr_auc"])))
    return rows


def selection_line(metrics: dict[str, Any]) -> str:
    """``chosen: MODEL by validation PR-AUC (…)``; empty for metrics without a choice."""
    chosen = metrics.get("chosen")
    if not chosen:
        return ""
    models = metrics["models"]
    candidates = dict(metrics["selection"]["candidates"])
    baseline = metrics["selection"].get("baseline")
    if baseline:
        candidates[baseline["name"]] = baseline
    values = ", ".join(
        f"{models[name]['label'] if name in models else name} {v['pr_auc']:.3f}"
        for name, v in candidates.items()
    )
    if baseline and chosen == baseline["name"]:
        values += "; the simpler baseline is within 1 SE of the best"
    return (
        f"chosen: {models[chosen]['label']} — by {metrics['chosen_by']} ({values}); refitted on "
        f"{metrics['selection']['refitted_on']}; 'gwas-prs predict' reports it as probability"
    )


def print_train_summary(result: TrainResult) -> None:
    metrics = result.metrics
    n, cases = metrics["n"], metrics["cases"]
    console.print(
        summary_table(
            f"train: {result.trait} — test set, {n['test']} samples, {cases['test']} cases "
            f"(95% bootstrap CIs)",
            model_rows(metrics),
            ("model", "ROC-AUC", "PR-AUC"),
        )
    )
    line = selection_line(metrics)
    if line:
        console.print(line, highlight=False)
    chosen = metrics.get("chosen", "xgboost")
    delta = metrics["incremental"]["covariates_pcs_prs_vs_covariates_pcs"]["delta_roc_auc"]
    versus = metrics["incremental"].get(f"{chosen}_vs_covariates_pcs_prs")
    cal = metrics["models"][chosen]["calibration"]
    console.print(
        f"PRS adds ΔROC-AUC {_ci(delta)} over covariates + PCs"
        + (
            f"; chosen model vs covariates + PCs + best PRS: ΔPR-AUC {_ci(versus['delta_pr_auc'])}"
            if versus
            else ""
        )
        + f"; calibration of the chosen model: intercept {cal['intercept']:.2f}, slope "
        f"{cal['slope']:.2f}, Brier {cal['brier']:.3f}; tuned on {n['train']} samples "
        f"({cases['train']} cases), chosen on {n['validation']}, device {result.device}",
        highlight=False,
    )
    for warning in metrics.get("warnings", []):
        console.print(f"warning: {warning}", highlight=False)
    for group, m in metrics.get("by_ancestry", {}).items():
        model = m["models"].get(chosen)
        if model:
            console.print(
                f"ancestry group {group} ({m['n']} samples, {m['cases']} cases): chosen model "
                f"ROC-AUC {_ci(model['roc_auc'])}, PR-AUC {_ci(model['pr_auc'])}",
                highlight=False,
            )
    for group, why in metrics["ancestry_groups_skipped"].items():
        console.print(f"ancestry group {group}: not evaluated ({why})", highlight=False)
    print_outputs(
        [
            ("report", result.outputs["report"]),
            ("metrics", result.outputs["metrics"]),
            ("test predictions", result.outputs["test_predictions"]),
            ("model (for gwas-prs predict --model)", result.output_dir),
            ("feature table", result.features_path),
        ]
    )
    console.print(f"train wall time: {result.wall_time_s:.1f} s", highlight=False)


def predict(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="Model folder written by train: RUN/gold/models/TRAIT.",
            show_default=False,
        ),
    ],
    vcf: Annotated[
        list[str],
        typer.Option(
            "--vcf",
            help="VCF(s) of the new samples (.vcf, .vcf.gz, .vcf.bgz; repeat or use a glob).",
            show_default=False,
        ),
    ],
    out: Annotated[
        str,
        typer.Option(
            "--out",
            help="Output table (TSV; CSV if it ends in .csv), local or gs://.",
            show_default=False,
        ),
    ],
    samples: Annotated[
        str | None,
        typer.Option(
            "--samples",
            help="TSV/CSV with a sample-ID column and the covariates the model uses (e.g. age, sex).",
            show_default=False,
        ),
    ] = None,
    min_overlap: Annotated[
        float,
        typer.Option(
            "--min-overlap", help="Stop when fewer PRS/PCA variants than this fraction are found."
        ),
    ] = 0.5,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out.")] = False,
    cores: CoresOption = None,
    driver_memory: DriverMemoryOption = None,
    engine: EngineOption = None,
    spark_master: SparkMasterOption = None,
) -> None:
    """Score new samples with a trained model: risk probability, PRS, percentile, ancestry.

    The VCF gets the checks of ingest, its variants are matched to the model's
    PRS weights and PCA loadings (REF/ALT swaps and strand flips handled; the
    match rate is reported), the samples are projected onto the saved PCs and
    get the features of training (same standardisation). Writes one row per
    sample: probability (the model train chose), p_MODEL for every model train
    fitted (candidates and baselines), prs, prs_z, prs_percentile (in the training distribution),
    ancestry, PCs.

    Example: gwas-prs predict --model runs/demo/gold/models/disease --vcf new.vcf.gz --samples new.tsv --out risk.tsv
    """
    from gwas_prs.core import storage
    from gwas_prs.stages.predict import PredictConfig, run_predict

    config = PredictConfig(
        model_dir=model,
        vcfs=tuple(vcf),
        out=out,
        samples_file=samples,
        min_overlap=min_overlap,
        overwrite=overwrite,
    )
    config.validate()
    out_dir = storage.parent(out)
    result = run_predict(
        config,
        hail_config(
            out_dir,
            "predict",
            cores=cores,
            driver_memory=driver_memory,
            engine=engine,
            spark_master=spark_master,
        ),
    )
    print_predict_summary(result)


def print_predict_summary(result: PredictResult, limit: int = 25) -> None:
    frame = result.predictions
    rows = [
        (
            r.sample_id,
            f"{r.probability:.3f}",
            f"{r.p_covariates_pcs_prs:.3f}" if hasattr(r, "p_covariates_pcs_prs") else "",
            f"{r.prs_z:+.2f}",
            f"{r.prs_percentile:.0f}",
            r.ancestry,
        )
        for r in frame.head(limit).itertuples()
    ]
    console.print(
        summary_table(
            f"predict: {len(frame)} samples",
            rows,
            ("sample", "P(model)", "P(logistic + PRS)", "PRS (z)", "PRS pct", "ancestry"),
        )
    )
    if len(frame) > limit:
        console.print(f"… {len(frame) - limit} more in {result.out}", highlight=False)
    console.print(
        f"variants matched: PRS {result.prs_match['match_rate']:.1%}, "
        f"PCA {result.pca_match['match_rate']:.1%}; wall time {result.wall_time_s:.1f} s",
        highlight=False,
    )
    print_outputs([("predictions", result.out)])
