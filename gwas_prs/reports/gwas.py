"""Bokeh figures for GWAS and PRS results.

Every function takes aggregated data (pandas) and returns a figure; the stage
runners save them (:func:`save_html`). Large GWAS results are thinned before
plotting: every variant with p < 1e-3 is kept, the rest are sampled so a
Manhattan plot of millions of variants stays a few MB.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from gwas_prs.core import storage


def thin_for_plot(
    frame: pd.DataFrame,
    p_column: str = "p_value",
    keep_below: float = 1e-3,
    max_rest: int = 50_000,
    seed: int = 0,
) -> pd.DataFrame:
    """All variants with p < ``keep_below`` plus at most ``max_rest`` others (seeded sample)."""
    strong = frame[frame[p_column] < keep_below]
    rest = frame[~(frame[p_column] < keep_below)]
    if len(rest) > max_rest:
        rest = rest.sample(n=max_rest, random_state=seed)
    return pd.concat([strong, rest]).sort_index()


def manhattan_figure(frame: pd.DataFrame, title: str, threshold: float = 5e-8) -> Any:
    """Manhattan plot: ``chromosome``, ``base_pair_location``, ``p_value`` columns."""
    from bokeh.models import ColumnDataSource, HoverTool, Span
    from bokeh.plotting import figure

    data = frame.copy()
    data["chrom_order"] = data["chromosome"].map(_chrom_rank)
    data = data.sort_values(["chrom_order", "base_pair_location"])
    offsets: dict[str, float] = {}
    ticks: list[float] = []
    labels: dict[float, str] = {}
    offset = 0.0
    for chrom, part in data.groupby("chrom_order", sort=True):
        name = str(part["chromosome"].iloc[0])
        offsets[name] = offset
        span = float(part["base_pair_location"].max())
        ticks.append(offset + span / 2)
        labels[offset + span / 2] = name
        offset += span * 1.02
        del chrom
    data["x"] = data["base_pair_location"] + data["chromosome"].astype(str).map(offsets)
    data["logp"] = -np.log10(data["p_value"].clip(lower=1e-300))
    data["colour"] = np.where(data["chrom_order"] % 2 == 0, "#1f77b4", "#7f7f7f")
    source = ColumnDataSource(
        data[["x", "logp", "colour", "chromosome", "base_pair_location", "p_value"]]
    )
    fig = figure(
        title=title,
        width=1000,
        height=380,
        x_axis_label="chromosome",
        y_axis_label="-log10 p",
        tools="pan,wheel_zoom,box_zoom,reset,save",
    )
    fig.scatter("x", "logp", color="colour", size=3, source=source)
    fig.add_layout(
        Span(location=-np.log10(threshold), dimension="width", line_color="red", line_dash="dashed")
    )
    fig.xaxis.ticker = ticks
    fig.xaxis.major_label_overrides = labels
    fig.add_tools(
        HoverTool(tooltips=[("variant", "@chromosome:@base_pair_location"), ("p", "@p_value")])
    )
    return fig


def qq_figure(p_values: Sequence[float] | np.ndarray, title: str, lambda_gc: float) -> Any:
    """QQ plot of observed vs expected -log10 p, with λGC in the title."""
    from bokeh.plotting import figure

    p = np.sort(np.asarray(p_values, dtype=float))
    p = p[np.isfinite(p) & (p > 0)]
    expected = -np.log10((np.arange(1, len(p) + 1) - 0.5) / max(len(p), 1))
    observed = -np.log10(p)
    if len(p) > 20_000:  # keep the tail, thin the bulk
        keep = np.unique(
            np.concatenate([np.arange(2000), np.linspace(0, len(p) - 1, 18_000).astype(int)])
        )
        expected, observed = expected[keep], observed[keep]
    fig = figure(
        title=f"{title} (λGC = {lambda_gc:.3f})",
        width=450,
        height=450,
        x_axis_label="expected -log10 p",
        y_axis_label="observed -log10 p",
    )
    fig.scatter(expected, observed, size=3)
    top = float(max(expected.max(initial=1), observed.max(initial=1)))
    fig.line([0, top], [0, top], color="red", line_dash="dashed")
    return fig


def threshold_bar_figure(metrics: pd.DataFrame, metric: str, title: str) -> Any:
    """Bar chart of ``metric`` per p-value threshold (``threshold`` column), best in orange."""
    from bokeh.plotting import figure

    labels = [f"{t:g}" for t in metrics["threshold"]]
    values = metrics[metric].astype(float).tolist()
    best = int(np.nanargmax(values)) if len(values) and np.isfinite(values).any() else -1
    colours = ["#ff7f0e" if i == best else "#1f77b4" for i in range(len(values))]
    fig = figure(
        x_range=labels,
        title=title,
        width=600,
        height=350,
        x_axis_label="p-value threshold",
        y_axis_label=metric,
    )
    fig.vbar(x=labels, top=values, width=0.8, color=colours)
    return fig


def decile_figure(deciles: pd.DataFrame, ylabel: str, title: str) -> Any:
    """Mean outcome (``mean``) per PRS decile (``decile`` 1..10)."""
    from bokeh.plotting import figure

    fig = figure(title=title, width=500, height=350, x_axis_label="PRS decile", y_axis_label=ylabel)
    fig.vbar(
        x=deciles["decile"].astype(float).tolist(),
        top=deciles["mean"].astype(float).tolist(),
        width=0.8,
    )
    return fig


def save_html(figures: Sequence[Any], path: str, title: str, tables_html: str = "") -> str:
    """Save figures (a column) and optional HTML tables to one standalone HTML file."""
    from bokeh.embed import file_html
    from bokeh.layouts import column
    from bokeh.models import Div
    from bokeh.resources import INLINE

    items = [Div(text=f"<h1>{title}</h1>{tables_html}"), *figures]
    html = file_html(column(*items), INLINE, title)
    storage.write_text_atomic(path, html)
    return path


def _chrom_rank(name: Any) -> int:
    text = str(name).removeprefix("chr")
    if text.isdigit():
        return int(text)
    return {"X": 23, "Y": 24, "XY": 25, "M": 26, "MT": 26}.get(text, 27)
