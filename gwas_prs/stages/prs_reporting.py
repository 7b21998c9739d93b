"""The prs stage's metrics and report: every score evaluated out of sample, per
ancestry group, ancestry-normalised (see :mod:`gwas_prs.stages.prs`)."""

from __future__ import annotations

import html
import json
import logging
from typing import Any

import numpy as np
import pandas as pd

from gwas_prs.core import storage
from gwas_prs.methods.prs.evaluation import (
    evaluate_thresholds,
    fit_score,
    outcome_by_decile,
    score_only_metric,
)

logger = logging.getLogger(__name__)


def evaluate_scores(
    trait: str,
    pheno: Any,
    covariates: tuple[str, ...],
    pc_frame: pd.DataFrame,
    scores: pd.DataFrame,
    thresholds: tuple[float, ...],
) -> dict[str, Any]:
    """Out-of-sample metrics (see :mod:`gwas_prs.methods.prs.evaluation`): fitted on
    train, evaluated on validation (choosing the threshold); refitted on train +
    validation, evaluated on test."""
    binary = pheno.binary[trait]
    design = pheno.frame.reindex(scores.index)[[trait, *covariates]].join(pc_frame)
    score_columns = [f"prs_{t:g}" for t in thresholds]
    method_columns = [
        c for c in scores.columns if c.startswith("prs_") and c not in set(score_columns)
    ]
    role = scores["role"]
    result: dict[str, Any] = {
        "trait": trait,
        "binary": binary,
        "metric": "roc_auc" if binary else "r2",
        "fitted_on": {"validation": ["train"], "test": ["train", "validation"]},
    }
    y = design[trait]
    x = design[[*covariates, *pc_frame.columns]]
    fit_on = {"validation": role == "train", "test": role.isin(["train", "validation"])}
    for part in ("validation", "test"):
        table = evaluate_thresholds(
            y,
            x,
            scores[score_columns],
            thresholds,
            binary=binary,
            fit_on=fit_on[part],
            evaluate_on=role == part,
        )
        result[f"by_threshold_{part}"] = table.to_dict(orient="records")
    validation = pd.DataFrame(result["by_threshold_validation"])
    best = (
        int(np.nanargmax(validation["incremental"].to_numpy()))
        if validation["incremental"].notna().any()
        else len(thresholds) - 1
    )
    best_column = score_columns[best]
    result["best_threshold"] = thresholds[best]
    test = role == "test"

    def summary(column: str, part: str) -> dict[str, Any]:
        """The score's models fitted for ``part`` (see ``fit_on``), evaluated on it."""
        on = role == part
        fit = fit_score(y, x, scores[column], binary=binary, fit_on=fit_on[part], evaluate_on=on)
        alone = score_only_metric(y[on], scores.loc[on, column], binary=binary)
        return {
            "n": fit.n,
            "n_fit": fit.n_fit,
            "with_prs": round(fit.metric, 4),
            "covariates_and_pcs_only": round(fit.baseline, 4),
            "incremental": round(fit.incremental, 4),
            "prs_only": round(alone, 4),
        }

    result["test"] = summary(best_column, "test")
    result["deciles_test"] = outcome_by_decile(y[test], scores.loc[test, best_column]).to_dict(
        orient="records"
    )
    methods: dict[str, Any] = {}
    for column in [best_column, *method_columns]:
        name = "prs_ct" if column == best_column else column
        methods[name] = {
            "score_column": column,
            **{p: summary(column, p) for p in ("validation", "test")},
        }
    result["methods"] = methods
    return result


#: PCs in the ancestry adjustment (pgsc_calc's ``--n_normalization`` default).
ADJUSTMENT_PCS = 4


def write_ancestry_adjusted(
    tmp: str,
    scores: pd.DataFrame,
    metrics: dict[str, Any],
    pcs: pd.DataFrame,
    ancestry: pd.Series | None,
) -> dict[str, Any]:
    """Ancestry-normalised scores as pgsc_calc computes them
    (:mod:`gwas_prs.methods.prs.ancestry_adjust`), fitted on the ``train`` samples and
    applied to every target: ``Z_norm1`` (the PC-predicted mean removed), ``Z_norm2``
    (the PC-predicted variance too) and, with ancestry labels, the percentile and Z
    among the training samples of the sample's own group. Writes
    ``scores_ancestry_adjusted.tsv`` and ``ancestry_adjustment.json``; returns what
    metrics.json records."""
    from gwas_prs.methods.prs.ancestry_adjust import (
        adjust_scores,
        fit_ancestry_adjustment,
        reference_percentiles,
    )

    n_pcs = min(ADJUSTMENT_PCS, pcs.shape[1])
    columns = [str(e["score_column"]) for e in metrics.get("methods", {}).values()]
    train = scores.index[scores["role"] == "train"]
    if n_pcs == 0 or not columns or len(train) < n_pcs + 2:
        return {"skipped": f"needs PCs and at least {n_pcs + 2} training samples"}
    adjustment = fit_ancestry_adjustment(scores.loc[train, columns], pcs, n_pcs)
    adjusted = adjust_scores(adjustment, scores[columns], pcs)
    if ancestry is not None:
        groups = ancestry.reindex(scores.index).fillna("NA").astype(str)
        adjusted = adjusted.join(
            reference_percentiles(
                scores.loc[train, columns], groups.loc[train], scores[columns], groups
            )
        )
    adjusted.insert(0, "role", scores["role"])
    adjusted.index.name = "sample_id"
    storage.write_text_atomic(
        storage.join(tmp, "scores_ancestry_adjusted.tsv"), adjusted.to_csv(sep="\t")
    )
    storage.write_text_atomic(
        storage.join(tmp, "ancestry_adjustment.json"),
        json.dumps(adjustment.to_dict(), indent=2) + "\n",
    )
    return {
        "fitted_on": "train",
        "n_reference": len(train),
        "n_pcs": n_pcs,
        "scores": columns,
        "file": "scores_ancestry_adjusted.tsv",
        "skipped_scores": list(adjustment.skipped_scores),
    }


def scores_by_ancestry(
    trait: str, pheno: Any, scores: pd.DataFrame, metrics: dict[str, Any], ancestry: Any
) -> dict[str, Any]:
    """Per ancestry group on test: n, cases and the ROC-AUC/PR-AUC (bootstrap 95% CIs)
    of each method's score alone (no model fitted); small groups are listed as skipped."""
    from gwas_prs.methods.model.evaluation import metrics_by_group

    test = scores.index[scores["role"] == "test"]
    y = pheno.frame[trait].reindex(test)
    test = test[y.notna().to_numpy()]
    groups = (
        ancestry.reindex(test).fillna("NA").astype(str).to_numpy()
        if ancestry is not None
        else np.full(len(test), "all")
    )
    columns = {
        name: str(entry["score_column"]) for name, entry in metrics.get("methods", {}).items()
    }
    evaluated, skipped = metrics_by_group(
        pheno.frame[trait].reindex(test).to_numpy(dtype=float),
        groups,
        {name: scores.loc[test, column].to_numpy(dtype=float) for name, column in columns.items()},
        n_boot=1000,
        seed=42,
    )
    return {"groups": evaluated, "skipped": skipped}


def write_report(
    trait: str, metrics: dict[str, Any], pheno: Any, scores: pd.DataFrame, path: str
) -> None:
    from gwas_prs.reports.gwas import decile_figure, save_html, threshold_bar_figure

    metric = "AUC" if metrics["binary"] else "R²"
    validation = pd.DataFrame(metrics["by_threshold_validation"])
    deciles = pd.DataFrame(metrics["deciles_test"])
    t = metrics["test"]
    table = (
        f"<p>Best threshold (validation; models fitted on train): p ≤ {metrics['best_threshold']:g}. "
        f"Test set (n = {t['n']}; models refitted on train + validation, n = {t.get('n_fit', '—')}): "
        f"{metric} with PRS {t['with_prs']}, covariates + PCs only {t['covariates_and_pcs_only']}, "
        f"incremental {t['incremental']}, PRS alone {t['prs_only']}.</p>"
    )
    methods = metrics.get("methods", {})
    if len(methods) > 1:
        rows = "".join(
            f"<tr><td>{html.escape(column.removeprefix('prs_'))}</td>"
            + "".join(
                f"<td style='text-align:right'>{entry[part][key]}</td>"
                for part in ("validation", "test")
                if part in entry
                for key in ("with_prs", "incremental")
            )
            + f"<td style='text-align:right'>{entry['test']['prs_only']}</td>"
            + f"<td>{html.escape(str(entry.get('warning', '')))}</td></tr>"
            for column, entry in methods.items()
            if "validation" in entry
        )
        table += (
            f"<h3>Methods (models fitted on train for validation, on train + validation for "
            f"test)</h3><table><tr><th>method</th><th>validation {metric}</th>"
            f"<th>validation Δ{metric}</th><th>test {metric}</th><th>test Δ{metric}</th>"
            f"<th>test {metric}, PRS alone</th><th>note</th></tr>{rows}</table>"
        )
    by_ancestry = metrics.get("by_ancestry_test", {})
    if by_ancestry.get("groups"):
        names = list(next(iter(by_ancestry["groups"].values()))["models"])
        head = "".join(
            f"<th>{html.escape(n.removeprefix('prs_'))} ROC-AUC</th>"
            f"<th>{html.escape(n.removeprefix('prs_'))} PR-AUC</th>"
            for n in names
        )
        body = ""
        for group, entry in by_ancestry["groups"].items():
            cells = "".join(
                f"<td style='text-align:right'>{ci_cell(entry['models'][n]['roc_auc'])}</td>"
                f"<td style='text-align:right'>{ci_cell(entry['models'][n]['pr_auc'])}</td>"
                for n in names
            )
            body += (
                f"<tr><td>{html.escape(group)}</td><td style='text-align:right'>{entry['n']:,}</td>"
                f"<td style='text-align:right'>{entry['cases']:,}</td>{cells}</tr>"
            )
        skipped = "; ".join(f"{g}: {why}" for g, why in by_ancestry.get("skipped", {}).items())
        table += (
            "<h3>By ancestry group (test; each score alone)</h3><table><tr><th>group</th>"
            f"<th>n</th><th>cases</th>{head}</tr>{body}</table>"
            + (f"<p>Not evaluated: {html.escape(skipped)}</p>" if skipped else "")
        )
    figures = [
        threshold_bar_figure(
            validation,
            "incremental",
            f"{trait}: incremental {metric} over covariates + PCs (validation)",
        ),
        decile_figure(
            deciles,
            "prevalence" if metrics["binary"] else f"mean {trait}",
            f"{trait} by PRS decile (test)",
        ),
    ]
    save_html(figures, path, f"{trait} polygenic score", table)


def ci_cell(value: dict[str, Any]) -> str:
    """``0.712 (0.65–0.77)`` from ``{"estimate", "ci_low", "ci_high"}``."""
    estimate = value.get("estimate")
    low, high = value.get("ci_low"), value.get("ci_high")
    if estimate is None:
        return "—"
    if low is None or high is None:
        return f"{estimate:.3f}"
    return f"{estimate:.3f} ({low:.2f}–{high:.2f})"
