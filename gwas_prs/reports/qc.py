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

#: Colours for up to 26 groups (1000 Genomes populations), then recycled.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
    "#e6550d", "#31a354", "#756bb1", "#636363", "#9ecae1", "#fdae6b", "#a1d99b", "#bcbddc",
    "#fdd0a2", "#c7e9c0",
)  # fmt: skip


def histogram_figure(
    edges: Sequence[float] | np.ndarray,
    counts: Sequence[float] | np.ndarray,
    *,
    title: str,
    x_label: str,
    thresholds: Sequence[tuple[float, str]] = (),
    y_log: bool = False,
) -> Any:
    """A histogram from bin edges/counts with vertical threshold lines.

    ``thresholds`` are ``(x, label)`` pairs drawn as red dashed lines.
    """
    from bokeh.models import Label, Span
    from bokeh.plotting import figure

    edges_a = np.asarray(edges, dtype=float)
    counts_a = np.asarray(counts, dtype=float)
    fig = figure(
        title=title,
        width=520,
        height=320,
        x_axis_label=x_label,
        y_axis_label="count",
        y_axis_type="log" if y_log else "linear",
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
        line_color="white",
    )
    for x, label in thresholds:
        fig.add_layout(
            Span(
                location=float(x),
                dimension="height",
                line_color="red",
                line_dash="dashed",
                line_width=2,
            )
        )
        fig.add_layout(
            Label(
                x=float(x),
                y=fig.height - 60,
                y_units="screen",
                text=label,
                text_color="red",
                text_font_size="9pt",
            )
        )
    return fig


def values_histogram(values: pd.Series | np.ndarray, *, bins: int = 50, **kwargs: Any) -> Any:
    """:func:`histogram_figure` of raw per-sample values (NaNs dropped)."""
    array = np.asarray(pd.Series(values).dropna(), dtype=float)
    thresholds = kwargs.get("thresholds", ())
    lo = min([*array.tolist(), *[t for t, _ in thresholds]]) if array.size else 0.0
    hi = max([*array.tolist(), *[t for t, _ in thresholds]]) if array.size else 1.0
    if hi <= lo:
        hi = lo + 1e-6
    counts, edges = np.histogram(array, bins=bins, range=(lo, hi))
    return histogram_figure(edges, counts, **kwargs)


def table_figure(frame: pd.DataFrame, *, title: str) -> Any:
    """A small frame as a bokeh ``DataTable`` with a title."""
    from bokeh.layouts import column
    from bokeh.models import ColumnDataSource, DataTable, Div, TableColumn

    source = ColumnDataSource({c: frame[c].astype(str).tolist() for c in frame.columns})
    columns = [TableColumn(field=c, title=c) for c in frame.columns]
    table = DataTable(
        source=source,
        columns=columns,
        width=900,
        height=min(40 + 28 * len(frame), 600),
        index_position=None,
    )
    return column(Div(text=f"<h3>{title}</h3>"), table)


def pc_scatter(
    scores: pd.DataFrame,
    groups: pd.Series,
    *,
    x: str = "PC1",
    y: str = "PC2",
    title: str | None = None,
) -> Any:
    """Scatter of two PCs, one colour (and legend entry) per group.

    ``scores`` is indexed by sample with columns ``PC1`` …; ``groups`` gives
    each sample's population (missing → ``unknown``).
    """
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.plotting import figure

    labels = groups.reindex(scores.index).astype("string").fillna("unknown")
    fig = figure(
        title=title or f"{x} vs {y}",
        width=720,
        height=560,
        x_axis_label=x,
        y_axis_label=y,
        tools="pan,box_zoom,wheel_zoom,reset,save",
    )
    for index, name in enumerate(sorted(labels.unique())):
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
            color=PALETTE[index % len(PALETTE)],
            legend_label=str(name),
        )
    fig.add_tools(HoverTool(tooltips=[("sample", "@s"), ("group", "@group"), (x, "@x"), (y, "@y")]))
    fig.legend.click_policy = "hide"
    fig.legend.label_text_font_size = "8pt"
    fig.add_layout(fig.legend[0], "right")
    return fig


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
    fig.vbar(x=names, top=[float(v) for v in variance_explained], width=0.8)
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
            thresholds=[(cr, f"min {cr}")],
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
                thresholds=[(low, "mean - k·sd"), (high, "mean + k·sd")],
            )
        )
    hwe_p = thresholds["hwe_p"]
    variant_figs = [
        histogram_figure(
            variant_hists["call_rate"]["edges"], variant_hists["call_rate"]["counts"], title="Variant call rate",
            x_label="call rate", thresholds=[(thresholds["min_variant_call_rate"], "min")], y_log=True,
        ),
        histogram_figure(
            variant_hists["maf"]["edges"], variant_hists["maf"]["counts"], title="Minor allele frequency",
            x_label="MAF", thresholds=[(thresholds["min_maf"], "min")], y_log=True,
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
    parts.append(
        pc_scatter(scores, groups, x="PC1", y="PC2", title="PC1 vs PC2 (given population)")
    )
    if scores.shape[1] >= 4:
        parts.append(
            pc_scatter(scores, groups, x="PC3", y="PC4", title="PC3 vs PC4 (given population)")
        )
    if assigned is not None:
        parts.append(
            pc_scatter(
                scores,
                assigned,
                x="PC1",
                y="PC2",
                title="PC1 vs PC2 (random-forest ancestry group)",
            )
        )
    parts.append(row(scree_plot(variance_explained)))
    return column(*parts)


def save_report(layout: Any, path: str, title: str) -> None:
    """Write ``layout`` as a standalone HTML file with inlined BokehJS."""
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    html = file_html(layout, INLINE, title)
    storage.write_text_atomic(path, html)
