"""Bokeh figures of the prs report, after PRSice-2's: the bar plot of the incremental
fit per p-value threshold (with the number of variants on each bar), the
high-resolution threshold plot, the score's distribution in cases and controls and by
ancestry group, and the outcome by score decile with 95% confidence intervals; one
panel per PRS method when there are several.

Each function takes aggregated data (small pandas frames) and returns a figure or a
layout; :mod:`gwas_prs.stages.prs_reporting` assembles the page and writes it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from gwas_prs.reports import palette
from gwas_prs.reports.html import format_number, format_p

#: Readable names of the score columns' methods
METHOD_LABELS = {
    "ct": "C+T",
    "ldpred2_auto": "LDpred2-auto",
    "ldpred2_inf": "LDpred2-inf",
    "ldpred2_grid": "LDpred2-grid",
    "lassosum2": "lassosum2",
}


#: Smallest ancestry group drawn in the distributions (a density of fewer is noise)
MIN_GROUP = 20


def method_label(name: str) -> str:
    """``prs_ldpred2_auto`` → ``LDpred2-auto``; ``prs_0.001`` → ``C+T (p ≤ 0.001)``."""
    key = name.removeprefix("prs_")
    if key in METHOD_LABELS:
        return METHOD_LABELS[key]
    try:
        return f"C+T (p ≤ {float(key):g})"
    except ValueError:
        return key


def delta_label(binary: bool) -> str:
    """The y-axis of the threshold plots."""
    return f"Δ{'ROC-AUC' if binary else 'R²'} over covariates + PCs, validation"


def empty_threshold_notes(
    variants: Mapping[str, int], smallest_p: float | None, n_index: int | None = None
) -> list[str]:
    """Why a threshold's score is empty: one sentence per threshold without variants."""
    notes = []
    for label, count in variants.items():
        if count:
            continue
        where = f" among the {n_index:,} index variants" if n_index else ""
        smallest = (
            f" (the smallest p{where} is {format_p(smallest_p)})" if smallest_p is not None else ""
        )
        notes.append(
            f"p ≤ {label}: no index variant reaches this threshold{smallest}, so the score "
            "is 0 for every sample and adds nothing over covariates + PCs."
        )
    return notes


def threshold_bar_figure(
    by_threshold: pd.DataFrame,
    variants: Mapping[str, int],
    *,
    binary: bool,
    best: float | None,
    title: str,
    width: int = 660,
    height: int = 400,
) -> Any:
    """Bars of ``incremental`` per ``threshold`` (the best in orange), each labelled
    with its number of variants ("none" where no variant reaches the threshold)."""
    from bokeh.models import ColumnDataSource, HoverTool, LabelSet, Range1d
    from bokeh.plotting import figure

    labels = [f"{t:g}" for t in by_threshold["threshold"]]
    values = by_threshold["incremental"].astype(float).fillna(0.0).to_numpy()
    counts = [int(variants.get(label, 0)) for label in labels]
    text = [f"{c:,}" if c else "none" for c in counts]
    colours = [
        palette.HIGHLIGHT if best is not None and np.isclose(t, best) else palette.PRIMARY
        for t in by_threshold["threshold"]
    ]
    low = min(0.0, float(values.min(initial=0.0)))
    high = max(0.0, float(values.max(initial=0.0)))
    span = (high - low) or 0.01
    source = ColumnDataSource(
        {
            "x": labels,
            "top": values,
            "colour": colours,
            "text": text,
            "variants": counts,
            "label_y": np.maximum(values, 0.0),
        }
    )
    fig = figure(
        x_range=labels,
        y_range=Range1d(low - 0.05 * span if low < 0 else 0.0, high + 0.15 * span),
        title=title,
        width=width,
        height=height,
        x_axis_label="p-value threshold (variants in the score on each bar)",
        y_axis_label=delta_label(binary),
        tools="save,hover",
        tooltips=[("threshold", "@x"), ("variants", "@variants"), ("Δ", "@top{0.0000}")],
    )
    fig.vbar(x="x", top="top", width=0.8, color="colour", source=source)
    fig.add_layout(
        LabelSet(
            x="x", y="label_y", text="text", source=source, text_align="center",
            text_font_size="8pt", y_offset=3,
        )
    )  # fmt: skip
    fig.select_one(HoverTool).mode = "vline"
    fig.xgrid.visible = False
    return fig


def high_resolution_figure(
    records: pd.DataFrame,
    *,
    binary: bool,
    configured: Sequence[float],
    best: float | None,
    title: str,
    width: int = 660,
    height: int = 400,
) -> Any:
    """PRSice-2's high-resolution plot: the incremental fit (validation) at every
    threshold of the fine grid (``threshold``, ``variants``, ``incremental``; log x),
    the ``--thresholds`` as larger points, the chosen one in orange."""
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.plotting import figure

    data = records[records["variants"] > 0].copy()
    data["configured"] = [any(np.isclose(t, c) for c in configured) for t in data["threshold"]]
    fig = figure(
        title=title,
        width=width,
        height=height,
        x_axis_type="log",
        x_axis_label="p-value threshold",
        y_axis_label=delta_label(binary),
        tools="pan,wheel_zoom,box_zoom,reset,save",
    )
    source = ColumnDataSource(data[["threshold", "incremental", "variants"]])
    fig.line("threshold", "incremental", source=source, color=palette.SECONDARY)
    points = fig.scatter(
        "threshold", "incremental", source=source, size=5, color=palette.PRIMARY,
        legend_label="grid",
    )  # fmt: skip
    chosen = data[data["configured"]]
    fig.scatter(
        chosen["threshold"].to_numpy(), chosen["incremental"].to_numpy(), size=10,
        color=palette.PRIMARY, fill_alpha=0.25, legend_label="--thresholds",
    )  # fmt: skip
    if best is not None and (np.isclose(data["threshold"], best)).any():
        row = data[np.isclose(data["threshold"], best)].iloc[0]
        fig.scatter(
            [row["threshold"]], [row["incremental"]], size=12, color=palette.HIGHLIGHT,
            legend_label=f"chosen (p ≤ {best:g})",
        )  # fmt: skip
    fig.add_tools(
        HoverTool(
            renderers=[points],
            tooltips=[("p ≤", "@threshold"), ("variants", "@variants"),
                      ("Δ", "@incremental{0.0000}")],
        )
    )  # fmt: skip
    fig.legend.location = "top_left"
    fig.legend.label_text_font_size = "8pt"
    return fig


def density_lines(values: pd.Series | np.ndarray, bins: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Shared bin edges of ``values`` (NaNs dropped)."""
    array = np.asarray(pd.Series(values).dropna(), dtype=float)
    if array.size == 0 or array.min() == array.max():
        centre = float(array[0]) if array.size else 0.0
        return np.linspace(centre - 1, centre + 1, bins + 1), array
    return np.histogram_bin_edges(array, bins=bins), array


def distribution_figure(
    values: pd.Series,
    groups: pd.Series,
    colours: Mapping[str, str],
    *,
    title: str,
    x_label: str,
    min_n: int = 1,
    width: int = 440,
    height: int = 420,
) -> Any:
    """The density of ``values`` in each group of at least ``min_n`` samples (one step
    line each, shared bins), with the group's n in the legend."""
    from bokeh.plotting import figure

    edges, _ = density_lines(values)
    fig = figure(
        title=title, width=width, height=height, x_axis_label=x_label, y_axis_label="density",
        tools="pan,wheel_zoom,box_zoom,reset,save",
    )  # fmt: skip
    labels = groups.reindex(values.index).astype("string").fillna("NA")
    for name in sorted(labels.unique(), key=str):
        part = values[(labels == name).to_numpy()].dropna().to_numpy(dtype=float)
        if part.size < max(min_n, 1):
            continue
        density, _ = np.histogram(part, bins=edges, density=True)
        fig.step(
            edges[:-1], density, mode="after", color=colours.get(str(name), palette.SECONDARY),
            line_width=2, legend_label=f"{name} (n = {part.size:,})",
        )  # fmt: skip
    if fig.legend:  # below the plot, off the curves
        legend = fig.legend[0]
        legend.label_text_font_size = "8pt"
        legend.click_policy = "hide"
        legend.ncols = 2 if len(legend.items) > 2 else len(legend.items)
        legend.spacing = 2
        legend.padding = 4
        fig.add_layout(legend, "below")
    return fig


def decile_intervals(deciles: pd.DataFrame, *, binary: bool, z: float = 1.959964) -> pd.DataFrame:
    """``low``/``high`` 95% limits per decile: Wilson's interval for a prevalence
    (``binary``), mean ± z·SD/√n otherwise."""
    out = deciles.copy()
    n = out["n"].to_numpy(dtype=float)
    mean = out["mean"].to_numpy(dtype=float)
    if binary:
        denominator = 1 + z**2 / n
        centre = (mean + z**2 / (2 * n)) / denominator
        half = z * np.sqrt(mean * (1 - mean) / n + z**2 / (4 * n**2)) / denominator
        out["low"], out["high"] = centre - half, centre + half
    else:
        sd = out["sd"].to_numpy(dtype=float) if "sd" in out else np.full(len(out), np.nan)
        half = z * sd / np.sqrt(n)
        out["low"], out["high"] = mean - half, mean + half
    return out


def decile_figure(
    deciles: pd.DataFrame,
    ylabel: str,
    title: str,
    *,
    binary: bool = True,
    width: int = 440,
    height: int = 360,
) -> Any:
    """Mean outcome (``mean``) per PRS decile (``decile`` 1..10, ``n``, ``sd``) with 95%
    confidence intervals (:func:`decile_intervals`), ticks 1–10."""
    from bokeh.models import ColumnDataSource, FixedTicker, Range1d, Whisker
    from bokeh.plotting import figure

    data = decile_intervals(deciles, binary=binary)
    data["decile"] = data["decile"].astype(int)
    source = ColumnDataSource(data[["decile", "mean", "low", "high", "n"]])
    high = float(np.nanmax(data["high"].to_numpy(dtype=float), initial=1.0))
    low = float(np.nanmin(data["low"].to_numpy(dtype=float), initial=0.0))
    fig = figure(
        title=title, width=width, height=height, x_axis_label="PRS decile (test)",
        y_axis_label=ylabel, x_range=Range1d(0.4, 10.6),
        y_range=Range1d(min(0.0, low) if binary else low - 0.05 * abs(low), high * 1.05),
        tools="save,hover", tooltips=[("decile", "@decile"), ("n", "@n"), ("mean", "@mean{0.000}"),
                                      ("95% CI", "@low{0.000} – @high{0.000}")],
    )  # fmt: skip
    fig.vbar(x="decile", top="mean", width=0.7, source=source, color=palette.PRIMARY, alpha=0.6)
    fig.add_layout(
        Whisker(source=source, base="decile", lower="low", upper="high", line_color=palette.TEXT)
    )
    fig.xaxis.ticker = FixedTicker(ticks=list(range(1, 11)))
    fig.xgrid.visible = False
    return fig


def method_panel(
    title: str,
    standardised: pd.Series,
    label: pd.Series | None,
    ancestry: pd.Series | None,
    deciles: pd.DataFrame,
    *,
    trait: str,
    binary: bool,
) -> list[Any]:
    """One method's figures (``title`` its name): distribution in cases vs controls
    (binary trait; all target samples otherwise), by ancestry group, and the decile plot."""
    x_label = "score (SD units, standardised on train)"
    figures = []
    if binary and label is not None:
        outcome = label.reindex(standardised.index).map({1: "cases", 0: "controls"})
        figures.append(
            distribution_figure(
                standardised, outcome,
                {"cases": palette.CASE_COLOUR, "controls": palette.CONTROL_COLOUR},
                title=f"{title}: cases vs controls", x_label=x_label,
            )
        )  # fmt: skip
    else:
        figures.append(
            distribution_figure(
                standardised, pd.Series("target samples", index=standardised.index),
                {"target samples": palette.PRIMARY}, title=f"{title}: distribution",
                x_label=x_label,
            )
        )  # fmt: skip
    if ancestry is not None:
        groups = ancestry.reindex(standardised.index).astype("string").fillna("NA")
        figures.append(
            distribution_figure(
                standardised, groups, palette.population_colours(groups.unique()),
                title=f"{title}: by ancestry group (n ≥ {MIN_GROUP})", x_label=x_label,
                min_n=MIN_GROUP,
            )
        )  # fmt: skip
    figures.append(
        decile_figure(
            deciles, "prevalence (95% CI)" if binary else f"mean {trait} (95% CI)",
            f"{title}: {trait} by score decile", binary=binary,
        )
    )  # fmt: skip
    return figures


def counts_line(variants: Mapping[str, int]) -> str:
    """``p ≤ 5e-08: none, 1e-05: 1, …``."""
    return ", ".join(f"{k}: {format_number(v) if v else 'none'}" for k, v in variants.items())
