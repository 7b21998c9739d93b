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
from gwas_prs.reports.html import format_number
from gwas_prs.reports.prs import method_label

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


def evaluate_high_resolution(
    trait: str,
    pheno: Any,
    covariates: tuple[str, ...],
    pc_frame: pd.DataFrame,
    scores: pd.DataFrame,
    roles: pd.Series,
    variants: dict[str, int],
) -> list[dict[str, Any]]:
    """The report's high-resolution threshold plot: every threshold of the grid
    (``variants``: ``{threshold: index variants with p ≤ it}``, the ``prs_T`` columns of
    ``scores``) fitted on train and evaluated on validation, as the threshold choice.
    A threshold with the variants of the previous one has its (identical) score's
    values; one without variants has none (``None``)."""
    binary = pheno.binary[trait]
    design = pheno.frame.reindex(scores.index)[[trait, *covariates]].join(pc_frame)
    role = roles.reindex(scores.index)
    y = design[trait]
    x = design[[*covariates, *pc_frame.columns]]
    fit_on, evaluate_on = role == "train", role == "validation"
    records: list[dict[str, Any]] = []
    previous: tuple[int, dict[str, Any]] | None = None
    for label, count in variants.items():
        record: dict[str, Any] = {"threshold": float(label), "variants": int(count)}
        if count == 0:  # null in metrics.json
            record.update(metric=None, baseline=None, incremental=None)
        elif previous is not None and previous[0] == count:
            record.update({k: previous[1][k] for k in ("metric", "baseline", "incremental")})
        else:
            fit = fit_score(
                y, x, scores[f"prs_{label}"], binary=binary, fit_on=fit_on,
                evaluate_on=evaluate_on,
            )  # fmt: skip
            record.update(
                metric=round(fit.metric, 4), baseline=round(fit.baseline, 4),
                incremental=round(fit.incremental, 4),
            )  # fmt: skip
        records.append(record)
        previous = (int(count), record)
    return records


def _table(head: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    """An HTML table (class ``report``) whose columns from ``numeric_from`` are numbers."""

    def cells(values: list[str], tag: str) -> str:
        return "".join(
            f"<{tag}{' class=num' if i >= numeric_from else ''}>{v}</{tag}>"
            for i, v in enumerate(values)
        )

    body = "".join(f"<tr>{cells(r, 'td')}</tr>" for r in rows)
    return f"<table class='report'><tr>{cells(head, 'th')}</tr>{body}</table>"


def report_html(metrics: dict[str, Any]) -> str:
    """The report's text: the choice, every method, per ancestry group."""
    metric = "AUC" if metrics["binary"] else "R²"
    t = metrics["test"]
    text = (
        f"<p>Best threshold (validation; models fitted on train): p ≤ {metrics['best_threshold']:g}. "
        f"Test set (n = {t['n']:,}; models refitted on train + validation, n = {t.get('n_fit', '—')}): "
        f"{metric} with PRS {t['with_prs']}, covariates + PCs only {t['covariates_and_pcs_only']}, "
        f"incremental {t['incremental']}, PRS alone {t['prs_only']}.</p>"
    )
    methods = metrics.get("methods", {})
    if len(methods) > 1:
        rows = [
            [html.escape(method_label(column))]
            + [
                format_number(entry[part][key])
                for part in ("validation", "test")
                for key in ("with_prs", "incremental")
            ]
            + [format_number(entry["test"]["prs_only"]), html.escape(str(entry.get("warning", "")))]
            for column, entry in methods.items()
            if "validation" in entry
        ]
        text += (
            "<h3>Methods (models fitted on train for validation, on train + validation for "
            "test)</h3>"
            + _table(
                ["method", f"validation {metric}", f"validation Δ{metric}", f"test {metric}",
                 f"test Δ{metric}", f"test {metric}, PRS alone", "note"],
                rows,
            )
        )  # fmt: skip
    by_ancestry = metrics.get("by_ancestry_test", {})
    if by_ancestry.get("groups"):
        names = list(next(iter(by_ancestry["groups"].values()))["models"])
        head = ["group", "n", "cases"] + [
            f"{html.escape(method_label(n))} {m}" for n in names for m in ("ROC-AUC", "PR-AUC")
        ]
        rows = [
            [html.escape(group), f"{entry['n']:,}", f"{entry['cases']:,}"]
            + [ci_cell(entry["models"][n][m]) for n in names for m in ("roc_auc", "pr_auc")]
            for group, entry in by_ancestry["groups"].items()
        ]
        skipped = "; ".join(f"{g}: {why}" for g, why in by_ancestry.get("skipped", {}).items())
        text += (
            "<h3>By ancestry group (test; each score alone)</h3>"
            + _table(head, rows)
            + (f"<p>Not evaluated: {html.escape(skipped)}</p>" if skipped else "")
        )
    return text


def write_report(
    trait: str,
    metrics: dict[str, Any],
    pheno: Any,
    scores: pd.DataFrame,
    path: str,
    ancestry: pd.Series | None = None,
) -> None:
    """``report.html``: the tables of :func:`report_html`, the threshold bar plot and the
    high-resolution plot (validation), and per method the score's distribution in cases
    vs controls and by ``ancestry`` group and its decile plot (test)."""
    from bokeh.layouts import column, row

    from gwas_prs.reports.html import html_block, write_html
    from gwas_prs.reports.prs import (
        empty_threshold_notes,
        high_resolution_figure,
        method_label,
        method_panel,
        threshold_bar_figure,
    )

    binary = bool(metrics["binary"])
    counts = metrics.get("counts", {})
    variants = counts.get("variants_per_threshold", {})
    best = metrics.get("best_threshold")
    validation = pd.DataFrame(metrics["by_threshold_validation"])
    plots: list[Any] = [
        threshold_bar_figure(
            validation, variants, binary=binary, best=best,
            title=f"{trait}: C+T by p-value threshold (validation)",
        )
    ]  # fmt: skip
    high_resolution = metrics.get("high_resolution_validation")
    if high_resolution:
        plots.append(
            high_resolution_figure(
                pd.DataFrame(high_resolution), binary=binary,
                configured=validation["threshold"].tolist(), best=best,
                title=f"{trait}: C+T, high-resolution threshold plot (validation)",
            )
        )  # fmt: skip
    notes = empty_threshold_notes(
        variants, counts.get("smallest_index_p"), counts.get("index_variants")
    )
    parts: list[Any] = [
        html_block(f"<h1>{html.escape(trait)} polygenic score</h1>" + report_html(metrics)),
        row(*plots),
    ]
    if notes:
        parts.append(html_block("<ul>" + "".join(f"<li>{n}</li>" for n in notes) + "</ul>"))
    label = pheno.frame.get(trait)
    role = scores["role"]
    train, test = role == "train", role == "test"
    parts.append(
        html_block(
            "<h2>Score distributions (target samples) and deciles (test)</h2><p>Each score "
            "standardised to the mean and SD of the training samples.</p>"
        )
    )
    for name, entry in metrics.get("methods", {}).items():
        values = scores[str(entry["score_column"])].astype(float)
        sd = float(values[train].std()) or 1.0
        standardised = (values - float(values[train].mean())) / sd
        y = label.reindex(scores.index) if label is not None else pd.Series(np.nan, scores.index)
        deciles = outcome_by_decile(y[test], values[test])
        title = f"C+T (p ≤ {best:g})" if name == "prs_ct" else method_label(name)
        heading = title + (", the threshold chosen on validation" if name == "prs_ct" else "")
        panel = method_panel(title, standardised, y, ancestry, deciles, trait=trait, binary=binary)
        parts.append(column(html_block(f"<h3>{html.escape(heading)}</h3>"), row(*panel)))
    write_html(column(*parts), path, f"{trait} polygenic score")


def ci_cell(value: dict[str, Any]) -> str:
    """``0.712 (0.65–0.77)`` from ``{"estimate", "ci_low", "ci_high"}``."""
    estimate = value.get("estimate")
    low, high = value.get("ci_low"), value.get("ci_high")
    if estimate is None:
        return "—"
    if low is None or high is None:
        return f"{estimate:.3f}"
    return f"{estimate:.3f} ({low:.2f}–{high:.2f})"
