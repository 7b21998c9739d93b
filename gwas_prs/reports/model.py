"""Bokeh figures of the ``train`` report. Each function takes aggregated data and
returns a figure; :func:`gwas_prs.reports.gwas.save_html` writes them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#7f7f7f", "#d62728", "#9467bd")


def roc_figure(curves: Mapping[str, pd.DataFrame], title: str) -> Any:
    """ROC curves: ``curves[label]`` has ``fpr`` and ``tpr``; the label should carry the AUC."""
    from bokeh.plotting import figure

    fig = figure(
        title=title, width=520, height=480, x_axis_label="false positive rate",
        y_axis_label="true positive rate", x_range=(0, 1), y_range=(0, 1),
    )  # fmt: skip
    fig.line([0, 1], [0, 1], line_dash="dashed", color="#bbbbbb")
    for colour, (label, points) in zip(PALETTE, curves.items(), strict=False):
        fig.line(points["fpr"].tolist(), points["tpr"].tolist(), legend_label=label, color=colour,
                 line_width=2)  # fmt: skip
    fig.legend.location = "bottom_right"
    return fig


def pr_figure(curves: Mapping[str, pd.DataFrame], prevalence: float, title: str) -> Any:
    """Precision–recall curves (``recall``, ``precision``) with the prevalence as the chance line."""
    from bokeh.plotting import figure

    fig = figure(
        title=title, width=520, height=480, x_axis_label="recall", y_axis_label="precision",
        x_range=(0, 1), y_range=(0, 1.02),
    )  # fmt: skip
    fig.line([0, 1], [prevalence, prevalence], line_dash="dashed", color="#bbbbbb")
    for colour, (label, points) in zip(PALETTE, curves.items(), strict=False):
        fig.line(points["recall"].tolist(), points["precision"].tolist(), legend_label=label,
                 color=colour, line_width=2)  # fmt: skip
    fig.legend.location = "top_right"
    return fig


def calibration_figure(bins: Mapping[str, pd.DataFrame], title: str) -> Any:
    """Reliability diagram: per model, ``mean_predicted`` vs ``observed`` per bin (size ~ ``n``)."""
    from bokeh.plotting import figure

    fig = figure(
        title=title, width=520, height=480, x_axis_label="mean predicted risk",
        y_axis_label="observed fraction of cases", x_range=(0, 1), y_range=(0, 1),
    )  # fmt: skip
    fig.line([0, 1], [0, 1], line_dash="dashed", color="#bbbbbb")
    for colour, (label, frame) in zip(PALETTE, bins.items(), strict=False):
        x = frame["mean_predicted"].tolist()
        y = frame["observed"].tolist()
        fig.line(x, y, color=colour, legend_label=label)
        fig.scatter(x, y, color=colour, size=7, legend_label=label)
    fig.legend.location = "top_left"
    return fig


def importance_figure(importance: pd.DataFrame, title: str, top: int = 20) -> Any:
    """Horizontal bars of ``share`` (of total gain) per ``feature``, largest at the top."""
    from bokeh.plotting import figure

    shown = importance.head(top).iloc[::-1]
    fig = figure(
        title=title, width=520, height=max(240, 22 * len(shown) + 80),
        y_range=shown["feature"].tolist(), x_axis_label="share of total gain",
    )  # fmt: skip
    fig.hbar(y=shown["feature"].tolist(), right=shown["share"].tolist(), height=0.7)
    return fig
