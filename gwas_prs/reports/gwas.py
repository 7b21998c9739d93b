"""Bokeh figures and the summary page of GWAS results.

Every function takes aggregated data (pandas) and returns a figure, a layout or HTML
text; the stage runner writes them (:func:`gwas_prs.reports.html.write_html`). Large
GWAS results are thinned before plotting: every variant with p < 1e-3 is kept, the
rest are sampled so a Manhattan plot of millions of variants stays a few MB.

The summary page (:func:`gwas_report`, ``gold/gwas/TRAIT/report.html``) puts together
what FUMA's and LocusZoom's summaries show: N (cases/controls), λGC, the Manhattan
plot with the genome-wide (5e-8) and suggestive (1e-5) lines, the QQ plot with its
95% band, and the top hits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import numpy as np
import pandas as pd

from gwas_prs.reports import palette
from gwas_prs.reports.html import PAGE_WIDTH, format_p, html_block, html_table

#: Genome-wide significance and the suggestive line of Manhattan plots
GENOME_WIDE = 5e-8
SUGGESTIVE = 1e-5
#: Pixels per character of an axis label (11 px sans-serif digits, rounded up) and the
#: least gap between two chromosome labels
LABEL_CHAR_PX = 7.0
LABEL_GAP_PX = 6.0


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


def sample_size_text(n: int | None, cases: int | None = None, controls: int | None = None) -> str:
    """``N = 556 (190 cases, 366 controls)``; empty without ``n``."""
    if n is None:
        return ""
    text = f"N = {n:,}"
    if cases is not None and controls is not None:
        text += f" ({cases:,} cases, {controls:,} controls)"
    return text


def _title(title: str, n: int | None, cases: int | None, controls: int | None, lam: Any) -> str:
    parts = [p for p in (sample_size_text(n, cases, controls),) if p]
    if lam is not None and np.isfinite(lam):
        parts.append(f"λGC = {float(lam):.3f}")
    return f"{title} ({', '.join(parts)})" if parts else title


def genome_positions(frame: pd.DataFrame, gap: float = 0.01) -> tuple[pd.Series, pd.DataFrame]:
    """Cumulative x of each variant (chromosomes in order, each spanning its observed
    positions, ``gap`` × the total span between two) and one row per chromosome:
    ``chromosome``, ``start``, ``end``, ``centre``, ``index`` (its order)."""
    chrom = frame["chromosome"].astype(str)
    pos = frame["base_pair_location"].astype(float)
    extent = (
        pd.DataFrame({"chromosome": chrom, "pos": pos})
        .groupby("chromosome")["pos"]
        .agg(["min", "max"])
    )
    extent = extent.loc[sorted(extent.index, key=_chrom_rank)]
    widths = (extent["max"] - extent["min"]).clip(lower=1.0)
    spacer = gap * float(widths.sum())
    starts = np.concatenate([[0.0], np.cumsum(widths.to_numpy() + spacer)[:-1]])
    layout = pd.DataFrame(
        {
            "chromosome": extent.index.astype(str),
            "start": starts,
            "end": starts + widths.to_numpy(),
            "index": np.arange(len(extent)),
        }
    )
    layout["centre"] = (layout["start"] + layout["end"]) / 2
    shift = pd.Series(starts - extent["min"].to_numpy(), index=extent.index)
    return pos + chrom.map(shift), layout.reset_index(drop=True)


def chromosome_labels(
    centres: Sequence[float], names: Sequence[str], x_start: float, x_end: float, frame_px: float
) -> dict[float, str]:
    """The chromosome labels that fit: from the left, a label is kept when it does not
    come within :data:`LABEL_GAP_PX` of the last kept one on an axis ``frame_px`` wide
    (so chromosomes 21 and 22 never print as "2122"); chromosome 1 and the last one
    are always tried first and last."""
    scale = frame_px / max(x_end - x_start, 1e-9)
    kept: dict[float, str] = {}
    last_right = -np.inf
    for centre, name in zip(centres, names, strict=True):
        half = LABEL_CHAR_PX * len(str(name)) / 2
        px = (float(centre) - x_start) * scale
        if px - half >= last_right + LABEL_GAP_PX:
            kept[float(centre)] = str(name)
            last_right = px + half
    return kept


def manhattan_figure(
    frame: pd.DataFrame,
    title: str,
    threshold: float = GENOME_WIDE,
    *,
    suggestive: float | None = SUGGESTIVE,
    n: int | None = None,
    cases: int | None = None,
    controls: int | None = None,
    lambda_gc: float | None = None,
    width: int = PAGE_WIDTH,
    height: int = 420,
) -> Any:
    """Manhattan plot of ``chromosome``, ``base_pair_location``, ``p_value``.

    The y-range always includes the genome-wide line (``threshold``, red) and the
    ``suggestive`` line (blue), so both are on screen when no variant reaches them;
    the title carries N (cases/controls) and λGC when given."""
    from bokeh.models import ColumnDataSource, HoverTool, Label, Range1d, Span
    from bokeh.plotting import figure

    data = frame[frame["p_value"].notna()].copy()
    x, chroms = genome_positions(data)
    data["x"] = x
    data["logp"] = -np.log10(data["p_value"].astype(float).clip(lower=1e-300))
    order = dict(zip(chroms["chromosome"], chroms["index"], strict=True))
    colours = palette.CHROMOSOME_COLOURS
    data["colour"] = [
        colours[order[c] % len(colours)] for c in data["chromosome"].astype(str).to_numpy()
    ]
    lines = [(threshold, palette.SIGNIFICANT_LINE, f"p = {threshold:g}")]
    if suggestive is not None:
        lines.append((suggestive, palette.SUGGESTIVE_LINE, f"p = {suggestive:g}"))
    top = max([float(data["logp"].max()) if len(data) else 0.0] + [-np.log10(t) for t, *_ in lines])
    frame_px = width - 90
    x_start = float(chroms["start"].min()) if len(chroms) else 0.0
    x_end = float(chroms["end"].max()) if len(chroms) else 1.0
    pad = 0.005 * (x_end - x_start)
    fig = figure(
        title=_title(title, n, cases, controls, lambda_gc),
        frame_width=frame_px,
        frame_height=height - 90,
        x_axis_label="chromosome",
        y_axis_label="−log10 p",
        x_range=Range1d(x_start - pad, x_end + pad),
        y_range=Range1d(0, top * 1.08 + 0.2),
        tools="pan,xwheel_zoom,box_zoom,reset,save",
    )
    source = ColumnDataSource(
        data[["x", "logp", "colour", "chromosome", "base_pair_location", "p_value"]]
    )
    fig.scatter("x", "logp", color="colour", size=3.5, source=source)
    for value, colour, text in lines:
        y = float(-np.log10(value))
        fig.add_layout(
            Span(
                location=y, dimension="width", line_color=colour, line_dash="dashed", line_width=1.5
            )
        )
        fig.add_layout(
            Label(x=x_start, y=y, text=text, text_color=colour, text_font_size="9pt", y_offset=2)
        )
    labels = chromosome_labels(
        chroms["centre"].tolist(),
        chroms["chromosome"].tolist(),
        x_start - pad,
        x_end + pad,
        frame_px,
    )
    fig.xaxis.ticker = list(labels)
    fig.xaxis.major_label_overrides = labels
    fig.xgrid.visible = False
    fig.add_tools(
        HoverTool(tooltips=[("variant", "@chromosome:@base_pair_location"), ("p", "@p_value")])
    )
    return fig


def qq_band(n: int, ranks: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The ``level`` band of −log10 of the ``ranks``-th smallest of ``n`` uniform
    p-values (the j-th order statistic is Beta(j, n − j + 1)): (lower, upper)."""
    from scipy.stats import beta

    j = np.asarray(ranks, dtype=float)
    alpha = (1 - level) / 2
    # a larger p (the 1 - alpha quantile) gives the lower -log10 bound
    lower = -np.log10(beta.ppf(1 - alpha, j, n - j + 1))
    upper = -np.log10(beta.ppf(alpha, j, n - j + 1))
    return lower, upper


def qq_figure(
    p_values: Sequence[float] | np.ndarray,
    title: str,
    lambda_gc: float,
    *,
    n: int | None = None,
    width: int = 560,
    height: int = 520,
) -> Any:
    """QQ plot of observed vs expected −log10 p with the 95% band of the null and the
    diagonal up to the largest expected value; λGC (and N) in the title."""
    from bokeh.models import Range1d
    from bokeh.plotting import figure

    p = np.sort(np.asarray(p_values, dtype=float))
    p = p[np.isfinite(p) & (p > 0)]
    m = len(p)
    ranks = np.arange(1, m + 1)
    if m > 20_000:  # keep the tail, thin the bulk
        ranks = np.unique(np.concatenate([np.arange(1, 2001), np.linspace(1, m, 18_000)]))
        ranks = ranks.astype(int)
    expected = -np.log10((ranks - 0.5) / max(m, 1))
    observed = -np.log10(p[ranks - 1]) if m else np.zeros(0)
    lower, upper = qq_band(m, ranks) if m else (np.zeros(0), np.zeros(0))
    e_max = float(expected.max(initial=1.0))
    y_max = float(max(observed.max(initial=1.0), upper.max(initial=1.0), e_max))
    fig = figure(
        title=_title(title, n, None, None, lambda_gc),
        width=width,
        height=height,
        x_axis_label="expected −log10 p",
        y_axis_label="observed −log10 p",
        x_range=Range1d(0, e_max * 1.05),
        y_range=Range1d(0, y_max * 1.05),
        tools="pan,wheel_zoom,box_zoom,reset,save",
    )
    fig.varea(
        x=expected,
        y1=lower,
        y2=upper,
        fill_color=palette.REFERENCE_LINE,
        fill_alpha=0.45,
        legend_label="95% band under the null",
    )
    fig.line([0, e_max], [0, e_max], color=palette.SIGNIFICANT_LINE, line_dash="dashed")
    fig.scatter(expected, observed, size=3.5, color=palette.PRIMARY)
    fig.legend.location = "top_left"
    return fig


def top_hits_html(top: pd.DataFrame, *, binary: bool) -> str:
    """The top hits as an HTML table (OR = exp(beta) for a binary trait)."""
    shown = pd.DataFrame(
        {
            "variant": [
                f"{c}:{p:,}"
                for c, p in zip(top["chromosome"], top["base_pair_location"], strict=True)
            ],
            "alleles": [
                f"{o}>{e}" for o, e in zip(top["other_allele"], top["effect_allele"], strict=True)
            ],
            "EAF": top["effect_allele_frequency"].to_numpy(dtype=float),
            "beta": top["beta"].to_numpy(dtype=float),
        }
    )
    if binary:
        shown["OR"] = np.exp(top["beta"].to_numpy(dtype=float))
    shown["SE"] = top["standard_error"].to_numpy(dtype=float)
    shown["p"] = top["p_value"].to_numpy(dtype=float)
    if "n" in top:
        shown["n"] = top["n"].to_numpy()
    three = {c: (lambda v: f"{float(v):.3f}") for c in ("EAF", "beta", "OR", "SE") if c in shown}
    return html_table(
        shown,
        formats={**three, "p": format_p},
        headers={"beta": "beta (log OR)" if binary else "beta", "alleles": "other>effect"},
    )


def gwas_report(
    plotted: pd.DataFrame,
    p_values: Sequence[float] | np.ndarray,
    *,
    trait: str,
    lambda_gc: float,
    n: int,
    cases: int | None,
    controls: int | None,
    top: pd.DataFrame,
    binary: bool,
    facts: Mapping[str, Any],
) -> Any:
    """The GWAS summary page: the facts (``label: value``; N, cases/controls and λGC
    first), the Manhattan plot, the QQ plot and the top hits (``top``) side by side."""
    from bokeh.layouts import column, row

    p = np.asarray(p_values, dtype=float)
    rows = [("N (discovery samples)", f"{n:,}")]
    if cases is not None and controls is not None:
        rows += [("cases", f"{cases:,}"), ("controls", f"{controls:,}")]
    rows += [
        ("λGC", f"{lambda_gc:.3f}"),
        ("variants tested", f"{int(np.isfinite(p).sum()):,}"),
        (f"genome-wide significant (p < {GENOME_WIDE:g})", f"{int((p < GENOME_WIDE).sum()):,}"),
        (f"suggestive (p < {SUGGESTIVE:g})", f"{int((p < SUGGESTIVE).sum()):,}"),
        *((str(k), str(v)) for k, v in facts.items()),
    ]
    facts_html = (
        "<table class='report'>"
        + "".join(
            f"<tr><th>{escape(k)}</th><td{_num_class(v)}>{escape(v)}</td></tr>" for k, v in rows
        )
        + "</table>"
    )
    qq = qq_figure(p, f"{trait}: QQ plot", lambda_gc, n=n)
    return column(
        html_block(f"<h1>{trait}: GWAS summary</h1>{facts_html}"),
        manhattan_figure(
            plotted, f"{trait}: Manhattan plot", n=n, cases=cases, controls=controls,
            lambda_gc=lambda_gc,
        ),
        row(
            qq,
            html_block(
                f"<h3>Top {len(top)} variants</h3>" + top_hits_html(top, binary=binary),
                width=PAGE_WIDTH - qq.width - 20,
            ),
        ),
        html_block(
            "<p>Files in this folder: sumstats.tsv.gz (GWAS-SSF) with its -meta.yaml, "
            "top_hits.tsv, manhattan.html and qq.html (the two plots alone).</p>"
        ),
    )  # fmt: skip


def save_html(figures: Sequence[Any], path: str, title: str, tables_html: str = "") -> str:
    """Save figures (a column) and optional HTML tables to one standalone HTML file."""
    from bokeh.layouts import column

    from gwas_prs.reports.html import write_html

    items = [html_block(f"<h1>{title}</h1>{tables_html}"), *figures]
    return write_html(column(*items), path, title)


def _num_class(text: str) -> str:
    """`` class='num'`` for a number (right-aligned), else nothing."""
    return " class='num'" if text.replace(",", "").replace(".", "", 1).isdigit() else ""


def _chrom_rank(name: Any) -> int:
    text = str(name).removeprefix("chr")
    if text.isdigit():
        return int(text)
    return {"X": 23, "Y": 24, "XY": 25, "M": 26, "MT": 26}.get(text, 27)
