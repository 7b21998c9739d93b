"""Bokeh figures of the QC and ancestry reports.

Every function takes aggregated data (histogram bins, small pandas frames)
and *returns* a bokeh model; :func:`save_report` is the one helper that turns
models into a standalone HTML file (resources inlined, so it opens offline),
and only the stage runner calls it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from gwas_prs.core import storage
from gwas_prs.reports.html import html_block, html_table, standalone_html
from gwas_prs.reports.palette import PRIMARY, SIGNIFICANT_LINE, TEXT, population_colour


def _threshold_layers(
    fig: Any, thresholds: Sequence[tuple[float, str]], x_start: float, x_end: float, y: float
) -> None:
    """A red dashed line per threshold with its label at height ``y`` (data units),
    written towards the middle of the plot so that it stays on screen."""
    from bokeh.models import Label, Span

    middle = (x_start + x_end) / 2
    for x, label in thresholds:
        fig.add_layout(
            Span(location=float(x), dimension="height", line_color=SIGNIFICANT_LINE,
                 line_dash="dashed", line_width=2)
        )  # fmt: skip
        inward_right = float(x) <= middle
        fig.add_layout(
            Label(
                x=float(x), y=y, text=label, text_color=SIGNIFICANT_LINE, text_font_size="9pt",
                text_align="left" if inward_right else "right",
                x_offset=4 if inward_right else -4, background_fill_color="white",
                background_fill_alpha=0.8,
            )
        )  # fmt: skip


def _x_range(lo: float, hi: float, thresholds: Sequence[tuple[float, str]]) -> tuple[float, float]:
    lo = min([lo, *[float(t) for t, _ in thresholds]])
    hi = max([hi, *[float(t) for t, _ in thresholds]])
    pad = 0.04 * ((hi - lo) or max(abs(hi), 1.0))
    return lo - pad, hi + pad


def _note_figure(
    *,
    title: str,
    x_label: str,
    note: str,
    x_start: float,
    x_end: float,
    thresholds: Sequence[tuple[float, str]],
    value: float | None = None,
) -> Any:
    """The figure of a histogram whose values are all equal (or in one bin): the
    threshold lines, a marker at ``value`` and ``note`` in words instead of one bar."""
    from bokeh.models import Label, Range1d
    from bokeh.plotting import figure

    fig = figure(
        title=title, width=520, height=320, x_axis_label=x_label, y_axis_label="count",
        x_range=Range1d(x_start, x_end), y_range=Range1d(0, 1), tools="save",
    )  # fmt: skip
    fig.yaxis.visible = False
    fig.ygrid.visible = False
    if value is not None:
        fig.scatter([value], [0.3], size=12, marker="diamond", color=PRIMARY)
    fig.add_layout(
        Label(x=(x_start + x_end) / 2, y=0.55, text=note, text_align="center",
              text_font_size="11pt", text_color=TEXT, background_fill_color="white",
              background_fill_alpha=0.9)
    )  # fmt: skip
    _threshold_layers(fig, thresholds, x_start, x_end, 0.85)
    return fig


def histogram_figure(
    edges: Sequence[float] | np.ndarray,
    counts: Sequence[float] | np.ndarray,
    *,
    title: str,
    x_label: str,
    thresholds: Sequence[tuple[float, str]] = (),
    y_log: bool = False,
    unit: str = "variants",
) -> Any:
    """A histogram from bin edges/counts with labelled vertical threshold lines.

    ``thresholds`` are ``(x, label)`` pairs drawn as red dashed lines, the label next
    to each; the x-range always includes them. When every value falls in one bin the
    figure says so ("all 25,132 variants: 0.98 ≤ call rate ≤ 1") instead of drawing
    one bar."""
    from bokeh.models import Range1d
    from bokeh.plotting import figure

    edges_a = np.asarray(edges, dtype=float)
    counts_a = np.asarray(counts, dtype=float)
    x_start, x_end = _x_range(float(edges_a[0]), float(edges_a[-1]), thresholds)
    filled = np.flatnonzero(counts_a > 0)
    if len(filled) <= 1:
        total = int(counts_a.sum())
        if len(filled):
            lo, hi = edges_a[filled[0]], edges_a[filled[0] + 1]
            note = f"all {total:,} {unit}: {lo:.3g} ≤ {x_label} ≤ {hi:.3g}"
        else:
            note = f"no {unit}"
        return _note_figure(
            title=title, x_label=x_label, note=note, x_start=x_start, x_end=x_end,
            thresholds=thresholds,
        )  # fmt: skip
    top_count = float(counts_a.max())
    y_range = Range1d(0.5, top_count * 6) if y_log else Range1d(0, top_count * 1.22)
    fig = figure(
        title=title,
        width=520,
        height=320,
        x_axis_label=x_label,
        y_axis_label="count",
        y_axis_type="log" if y_log else "linear",
        x_range=Range1d(x_start, x_end),
        y_range=y_range,
        tools="pan,box_zoom,wheel_zoom,reset,save",
    )
    bottom = 0.5 if y_log else 0.0
    top = np.where(counts_a > 0, counts_a, bottom) if y_log else counts_a
    fig.quad(
        left=edges_a[:-1],
        right=edges_a[1:],
        top=top,
        bottom=bottom,
        fill_alpha=0.7,
        fill_color=PRIMARY,
        line_color="white",
    )
    label_y = top_count * 2.5 if y_log else top_count * 1.1
    _threshold_layers(fig, thresholds, x_start, x_end, label_y)
    return fig


def values_histogram(
    values: pd.Series | np.ndarray, *, bins: int = 50, unit: str = "samples", **kwargs: Any
) -> Any:
    """:func:`histogram_figure` of raw per-sample values (NaNs dropped); when all values
    are equal, a figure that says so ("all 1,126 samples: call rate = 1")."""
    array = np.asarray(pd.Series(values).dropna(), dtype=float)
    thresholds = kwargs.get("thresholds", ())
    if array.size and array.min() == array.max():
        value = float(array[0])
        x_start, x_end = _x_range(value, value, thresholds)
        return _note_figure(
            title=kwargs["title"], x_label=kwargs["x_label"],
            note=f"all {array.size:,} {unit}: {kwargs['x_label']} = {value:.4g}",
            x_start=x_start, x_end=x_end, thresholds=thresholds, value=value,
        )  # fmt: skip
    lo = float(array.min()) if array.size else 0.0
    hi = float(array.max()) if array.size else 1.0
    counts, edges = np.histogram(array, bins=bins, range=(lo, hi) if hi > lo else None)
    return histogram_figure(edges, counts, unit=unit, **kwargs)


def table_figure(frame: pd.DataFrame, *, title: str) -> Any:
    """A small frame as a plain HTML table (every column as wide as its text; numbers
    right-aligned with thousands separators) under a title."""
    return html_block(f"<h3>{title}</h3>" + html_table(frame))


def pc_scatter(
    scores: pd.DataFrame,
    groups: pd.Series,
    *,
    x: str = "PC1",
    y: str = "PC2",
    title: str | None = None,
    variance_explained: Sequence[float] | None = None,
) -> Any:
    """Scatter of two PCs, one colour (and legend entry) per group; the colours are
    the populations' (:mod:`gwas_prs.reports.palette`), the axes say the share of
    variance of each PC when ``variance_explained`` (PC1 first) is given.

    ``scores`` is indexed by sample with columns ``PC1`` …; ``groups`` gives
    each sample's population (missing → ``unknown``).
    """
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.plotting import figure

    labels = groups.reindex(scores.index).astype("string").fillna("unknown")
    fig = figure(
        title=title or f"{x} vs {y}",
        width=660,
        height=560,
        x_axis_label=pc_axis_label(x, variance_explained),
        y_axis_label=pc_axis_label(y, variance_explained),
        tools="pan,box_zoom,wheel_zoom,reset,save",
    )
    for name in sorted(labels.unique()):
        mask = (labels == name).to_numpy()
        source = ColumnDataSource(
            {
                "x": scores.loc[mask, x].to_numpy(),
                "y": scores.loc[mask, y].to_numpy(),
                "s": scores.index[mask].tolist(),
                "group": [name] * int(mask.sum()),
            }
        )
        fig.scatter(
            "x",
            "y",
            source=source,
            size=5,
            alpha=0.7,
            color=population_colour(name),
            legend_label=str(name),
        )
    fig.add_tools(HoverTool(tooltips=[("sample", "@s"), ("group", "@group"), (x, "@x"), (y, "@y")]))
    fig.legend.click_policy = "hide"
    fig.legend.label_text_font_size = "8pt"
    fig.add_layout(fig.legend[0], "right")
    return fig


def pc_axis_label(pc: str, variance_explained: Sequence[float] | None) -> str:
    """``PC1 (12.3% of variance)`` (``PC1`` without the variances or past their end)."""
    index = int(pc.removeprefix("PC")) - 1 if pc.removeprefix("PC").isdigit() else -1
    if variance_explained is None or not 0 <= index < len(variance_explained):
        return pc
    return f"{pc} ({float(variance_explained[index]):.1%} of variance)"


def scree_plot(variance_explained: Sequence[float], *, title: str = "Scree plot") -> Any:
    """Bars of the proportion of variance explained per PC."""
    from bokeh.plotting import figure

    names = [f"PC{i + 1}" for i in range(len(variance_explained))]
    fig = figure(
        x_range=names,
        title=title,
        width=620,
        height=320,
        y_axis_label="proportion of variance explained",
        tools="save",
    )
    fig.vbar(x=names, top=[float(v) for v in variance_explained], width=0.8, color=PRIMARY)
    return fig


def text_block(title: str, lines: Sequence[str]) -> Any:
    """A heading with a list of lines (notes, parameters)."""
    from bokeh.models import Div

    items = "".join(f"<li>{line}</li>" for line in lines)
    return Div(text=f"<h3>{title}</h3><ul>{items}</ul>", width=900)


def qc_report(
    *,
    samples: pd.DataFrame,
    variant_hists: Mapping[str, Mapping[str, Sequence[float]]],
    filter_counts: pd.DataFrame,
    thresholds: Mapping[str, float],
    het_bounds: tuple[float, float] | None,
    notes: Sequence[str],
) -> Any:
    """The QC report layout: filter table, sample and variant histograms.

    ``samples`` has ``call_rate`` and ``het_f`` per sample; ``variant_hists``
    maps ``call_rate``/``maf``/``log10_p_hwe`` to ``{"edges", "counts"}``.
    """
    from bokeh.layouts import column, gridplot
    from bokeh.models import Div

    cr = thresholds["min_sample_call_rate"]
    sample_figs = [
        values_histogram(
            samples["call_rate"],
            title="Sample call rate",
            x_label="call rate",
            thresholds=[(cr, f"min call rate {cr:g}")],
            y_log=True,
        ),
    ]
    if het_bounds is not None and samples["het_f"].notna().any():
        low, high = het_bounds
        sample_figs.append(
            values_histogram(
                samples["het_f"],
                title="Heterozygosity (inbreeding F, pruned SNPs)",
                x_label="F",
                thresholds=[(low, f"mean − k·SD = {low:.3f}"), (high, f"mean + k·SD = {high:.3f}")],
            )
        )
    hwe_p = thresholds["hwe_p"]
    variant_figs = [
        histogram_figure(
            variant_hists["call_rate"]["edges"], variant_hists["call_rate"]["counts"], title="Variant call rate",
            x_label="call rate", thresholds=[(thresholds["min_variant_call_rate"], f"min call rate {thresholds['min_variant_call_rate']:g}")], y_log=True,
        ),
        histogram_figure(
            variant_hists["maf"]["edges"], variant_hists["maf"]["counts"], title="Minor allele frequency",
            x_label="MAF", thresholds=[(thresholds["min_maf"], f"min MAF {thresholds['min_maf']:g}")], y_log=True,
        ),
        histogram_figure(
            variant_hists["log10_p_hwe"]["edges"], variant_hists["log10_p_hwe"]["counts"], title="HWE exact test (mid-p)",
            x_label="-log10 p", thresholds=[(-float(np.log10(hwe_p)), f"p = {hwe_p:g}")], y_log=True,
        ),
    ]  # fmt: skip
    return column(
        Div(text="<h1>gwas-prs QC report</h1>"),
        table_figure(filter_counts, title="Samples and variants removed, by filter (in order)"),
        Div(text="<h2>Samples</h2>"),
        gridplot([sample_figs], toolbar_location="right"),
        Div(text="<h2>Variants (samples that passed QC)</h2>"),
        gridplot([variant_figs[:2], variant_figs[2:]], toolbar_location="right"),
        text_block("Notes", notes),
    )


def ancestry_report(
    *,
    scores: pd.DataFrame,
    groups: pd.Series,
    variance_explained: Sequence[float],
    assigned: pd.Series | None,
    lines: Sequence[str],
) -> Any:
    """The ancestry report: PC1–PC2 and PC3–PC4 by population, scree plot, notes."""
    from bokeh.layouts import column, row
    from bokeh.models import Div

    parts: list[Any] = [Div(text="<h1>gwas-prs ancestry report</h1>"), text_block("Summary", lines)]
    given = [
        pc_scatter(scores, groups, x="PC1", y="PC2", title="PC1 vs PC2 (given population)",
                   variance_explained=variance_explained)
    ]  # fmt: skip
    if scores.shape[1] >= 4:
        given.append(
            pc_scatter(scores, groups, x="PC3", y="PC4", title="PC3 vs PC4 (given population)",
                       variance_explained=variance_explained)
        )  # fmt: skip
    parts.append(row(*given))
    last = [scree_plot(variance_explained)]
    if assigned is not None:
        last.insert(
            0,
            pc_scatter(
                scores, assigned, x="PC1", y="PC2",
                title="PC1 vs PC2 (random-forest ancestry group)",
                variance_explained=variance_explained,
            ),
        )  # fmt: skip
    parts.append(row(*last))
    return column(*parts)


def save_report(layout: Any, path: str, title: str) -> None:
    """Write ``layout`` as a standalone HTML file with inlined BokehJS."""
    storage.write_text_atomic(path, standalone_html(layout, title))
