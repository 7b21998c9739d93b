"""The ``train`` report: HTML tables from ``metrics.json`` (:func:`summary_html`) and bokeh
figures (two per row, legends under the plots, each model in its colour of
:data:`gwas_prs.reports.palette.MODEL_COLOURS`). Each function takes aggregated data and
returns HTML or a figure; :func:`gwas_prs.reports.gwas.save_html` writes them."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

import pandas as pd

from gwas_prs.reports import palette
from gwas_prs.reports.html import MISSING

#: Width of each of the two figures of a row (two fill the page)
FIGURE_WIDTH = 660


def _colour(colours: Mapping[str, str] | None, label: str, index: int) -> str:
    if colours and label in colours:
        return colours[label]
    return palette.OTHER_COLOURS[index % len(palette.OTHER_COLOURS)]


def _legend_below(fig: Any) -> None:
    """The legend under the plot, off the curves (two columns)."""
    legend = fig.legend[0]
    legend.ncols = 2
    legend.label_text_font_size = "9pt"
    legend.spacing = 2
    legend.click_policy = "hide"
    fig.add_layout(legend, "below")


def roc_figure(
    curves: Mapping[str, pd.DataFrame], title: str, colours: Mapping[str, str] | None = None
) -> Any:
    """ROC curves: ``curves[label]`` has ``fpr`` and ``tpr``; the label should carry the AUC;
    ``colours`` maps a label to its model's colour (:func:`palette.model_colour`)."""
    from bokeh.plotting import figure

    fig = figure(
        title=title, width=FIGURE_WIDTH, height=620, x_axis_label="false positive rate",
        y_axis_label="true positive rate", x_range=(0, 1), y_range=(0, 1),
    )  # fmt: skip
    fig.line([0, 1], [0, 1], line_dash="dashed", color=palette.REFERENCE_LINE)
    for index, (label, points) in enumerate(curves.items()):
        fig.line(points["fpr"].tolist(), points["tpr"].tolist(), legend_label=label,
                 color=_colour(colours, label, index), line_width=2)  # fmt: skip
    _legend_below(fig)
    return fig


def pr_figure(
    curves: Mapping[str, pd.DataFrame],
    prevalence: float,
    title: str,
    colours: Mapping[str, str] | None = None,
) -> Any:
    """Precision–recall curves (``recall``, ``precision``) with the prevalence as the chance
    line; the legend sits under the plot (it covered the curves at the top right)."""
    from bokeh.plotting import figure

    fig = figure(
        title=title, width=FIGURE_WIDTH, height=620, x_axis_label="recall",
        y_axis_label="precision", x_range=(0, 1), y_range=(0, 1.02),
    )  # fmt: skip
    fig.line([0, 1], [prevalence, prevalence], line_dash="dashed", color=palette.REFERENCE_LINE)
    for index, (label, points) in enumerate(curves.items()):
        fig.line(points["recall"].tolist(), points["precision"].tolist(), legend_label=label,
                 color=_colour(colours, label, index), line_width=2)  # fmt: skip
    _legend_below(fig)
    return fig


def calibration_figure(
    bins: Mapping[str, pd.DataFrame], title: str, colours: Mapping[str, str] | None = None
) -> Any:
    """Reliability diagram: per model, ``mean_predicted`` vs ``observed`` per bin (size ~ ``n``)."""
    from bokeh.plotting import figure

    fig = figure(
        title=title, width=FIGURE_WIDTH, height=620, x_axis_label="mean predicted risk",
        y_axis_label="observed fraction of cases", x_range=(0, 1), y_range=(0, 1),
    )  # fmt: skip
    fig.line([0, 1], [0, 1], line_dash="dashed", color=palette.REFERENCE_LINE)
    for index, (label, frame) in enumerate(bins.items()):
        x = frame["mean_predicted"].tolist()
        y = frame["observed"].tolist()
        colour = _colour(colours, label, index)
        fig.line(x, y, color=colour, legend_label=label)
        fig.scatter(x, y, color=colour, size=7, legend_label=label)
    _legend_below(fig)
    return fig


def importance_figure(importance: pd.DataFrame, title: str, top: int = 20) -> Any:
    """Horizontal bars of ``share`` (of total gain) per ``feature``, largest at the top."""
    from bokeh.plotting import figure

    shown = importance.head(top).iloc[::-1]
    fig = figure(
        title=title, width=FIGURE_WIDTH, height=max(300, 24 * len(shown) + 100),
        y_range=shown["feature"].tolist(), x_axis_label="share of total gain",
    )  # fmt: skip
    fig.hbar(y=shown["feature"].tolist(), right=shown["share"].tolist(), height=0.7,
             color=palette.PRIMARY)  # fmt: skip
    return fig


# --- tables ----------------------------------------------------------------------

_TABLE = "<table class='report'>"


def _ci(metric: Mapping[str, float]) -> str:
    return f"{metric['estimate']:.3f} [{metric['ci_low']:.3f}, {metric['ci_high']:.3f}]"


def _delta(metric: Mapping[str, float]) -> str:
    return f"{metric['estimate']:+.3f} [{metric['ci_low']:+.3f}, {metric['ci_high']:+.3f}]"


def _row(cells: list[str], header: bool = False) -> str:
    tag = "th" if header else "td"
    return "<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>"


def _labels(metrics: Mapping[str, Any]) -> dict[str, str]:
    labels = {name: str(m["label"]) for name, m in metrics["models"].items()}
    if metrics.get("oracle"):
        labels["oracle"] = str(metrics["oracle"]["label"])
    return labels


def selection_html(metrics: Mapping[str, Any]) -> str:
    """Which model was chosen, by what, on which values; warnings when it trails a baseline."""
    chosen = metrics.get("chosen")
    if not chosen:
        return ""
    labels = _labels(metrics)
    selection = metrics.get("selection", {})
    values = ", ".join(
        f"{escape(labels.get(name, name))} {v['pr_auc']:.3f} (ROC-AUC {v['roc_auc']:.3f})"
        for name, v in selection.get("candidates", {}).items()
    )
    text = (
        f"<p><b>Chosen model (used by predict): {escape(labels.get(chosen, chosen))}</b>, "
        f"by {escape(str(metrics.get('chosen_by', '')))}: {values}; refitted on "
        f"{escape(str(selection.get('refitted_on', 'train + validation')))}.</p>"
    )
    warnings = metrics.get("warnings") or []
    if warnings:
        text += (
            "<p style='color:#b00'><b>Warning:</b></p><ul style='color:#b00'>"
            + "".join(f"<li>{escape(w)}</li>" for w in warnings)
            + "</ul>"
        )
    return text


def models_table_html(metrics: Mapping[str, Any]) -> str:
    """Every model (and the oracle) on test: ROC-AUC, PR-AUC with CIs, calibration."""
    rows = [
        _row(
            ["model", "fitted on", "ROC-AUC [95% CI]", "PR-AUC [95% CI]", "Brier",
             "calibration intercept", "calibration slope"],
            header=True,
        )
    ]  # fmt: skip
    models = dict(metrics["models"])
    if metrics.get("oracle"):
        models["oracle"] = metrics["oracle"]
    for name, m in models.items():
        label = escape(str(m["label"])) + (
            " <b>(chosen)</b>" if name == metrics.get("chosen") else ""
        )
        cal = m.get("calibration")
        rows.append(
            _row(
                [
                    label,
                    escape(str(m.get("fitted_on") or MISSING)),
                    _ci(m["roc_auc"]),
                    _ci(m["pr_auc"]),
                ]
                + (
                    [f"{cal['brier']:.3f}", f"{cal['intercept']:.2f}", f"{cal['slope']:.2f}"]
                    if cal
                    else [MISSING, MISSING, MISSING]
                )
            )
        )
    return _TABLE + "".join(rows) + "</table>"


def differences_table_html(metrics: Mapping[str, Any]) -> str:
    """Paired-bootstrap differences (``incremental``): ΔROC-AUC and ΔPR-AUC with CIs."""
    labels = _labels(metrics)
    rows = [_row(["model", "compared with", "ΔROC-AUC [95% CI]", "ΔPR-AUC [95% CI]"], header=True)]
    for key, delta in metrics.get("incremental", {}).items():
        a, _, b = key.partition("_vs_")
        rows.append(
            _row(
                [escape(labels.get(a, a)), escape(labels.get(b, b)),
                 _delta(delta["delta_roc_auc"]), _delta(delta["delta_pr_auc"])]
            )
        )  # fmt: skip
    return _TABLE + "".join(rows) + "</table>"


def ancestry_table_html(metrics: Mapping[str, Any]) -> str:
    """Per ancestry group of the test set: n, cases, and every model's ROC-AUC and PR-AUC
    with CIs (``by_ancestry``); groups too small to evaluate are listed with the reason."""
    labels = _labels(metrics)
    by_group = metrics.get("by_ancestry") or {}
    skipped = metrics.get("ancestry_groups_skipped") or {}
    rows = [
        _row(
            ["ancestry", "n", "cases", "model", "ROC-AUC [95% CI]", "PR-AUC [95% CI]"], header=True
        )
    ]
    for group, result in by_group.items():
        models = result["models"]
        span = len(models)
        for k, (name, m) in enumerate(models.items()):
            head = (
                f"<td rowspan='{span}'>{escape(group)}</td><td rowspan='{span}'>{result['n']}</td>"
                f"<td rowspan='{span}'>{result['cases']}</td>"
                if k == 0
                else ""
            )
            label = escape(labels.get(name, name))
            if name == metrics.get("chosen"):
                label += " <b>(chosen)</b>"
            rows.append(
                f"<tr>{head}<td>{label}</td><td>{_ci(m['roc_auc'])}</td>"
                f"<td>{_ci(m['pr_auc'])}</td></tr>"
            )
    for group, why in skipped.items():
        rows.append(
            f"<tr><td>{escape(group)}</td><td colspan='5'>not evaluated ({escape(why)})</td></tr>"
        )
    return _TABLE + "".join(rows) + "</table>"


def coefficients_table_html(metrics: Mapping[str, Any]) -> str:
    """The penalised logistic model's coefficients (per SD of each input), largest first."""
    fit = metrics.get("penalised_logistic")
    if not fit:
        return ""
    coefficients = sorted(fit["coefficients"].items(), key=lambda item: (-abs(item[1]), item[0]))
    rows = [_row(["feature", "log-odds per SD"], header=True)]
    rows += [_row([escape(name), f"{value:+.4f}"]) for name, value in coefficients]
    return (
        f"<h2>Penalised logistic regression (L2, C = {fit['C']:.3g}, chosen by CV "
        f"{escape(str(fit.get('cv_metric', '')))})</h2>" + _TABLE + "".join(rows) + "</table>"
    )


def summary_html(metrics: Mapping[str, Any]) -> str:
    """The report's text: the choice, every model on test, differences, per-ancestry table."""
    n, cases = metrics["n"], metrics["cases"]
    return (
        f"<p>Test set: {n['test']} samples, {cases['test']} cases (never used for fitting, "
        f"tuning or choosing). 95% CIs from {metrics['bootstrap']['valid']} bootstrap "
        "resamples; differences are paired (same resamples).</p>"
        + selection_html(metrics)
        + "<h2>Models on the test set</h2>"
        + models_table_html(metrics)
        + "<h2>Differences (paired bootstrap)</h2>"
        + differences_table_html(metrics)
        + "<h2>By ancestry group (test set)</h2>"
        + ancestry_table_html(metrics)
        + coefficients_table_html(metrics)
    )
