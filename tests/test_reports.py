"""The figures of the reports (no JVM, tiny frames built here): the elements issue 20
asked for are in the bokeh models (lines inside the ranges, the QQ band, labelled
thresholds, legends off the curves, one palette)."""

from __future__ import annotations

import itertools
import json
import re
from html import escape
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gwas_prs.reports import palette
from tests.conftest import REPO

#: GRCh37 lengths of chromosomes 1-22 (Mb, rounded)
GRCH37_MB = (249, 243, 198, 191, 181, 171, 159, 146, 141, 136, 135, 134, 115, 107, 103, 90,
             81, 78, 59, 63, 48, 51)  # fmt: skip


def _sumstats(max_logp: float = 3.0, per_chrom: int = 40, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for chrom, mb in enumerate(GRCH37_MB, start=1):
        pos = np.sort(rng.integers(1, mb * 1_000_000, per_chrom))
        p = 10 ** -rng.uniform(0, max_logp, per_chrom)
        rows.append(
            pd.DataFrame({"chromosome": str(chrom), "base_pair_location": pos, "p_value": p})
        )
    return pd.concat(rows, ignore_index=True)


def _renderers(fig: Any, glyph: str) -> list[Any]:
    return [r for r in fig.renderers if type(r.glyph).__name__ == glyph]


def _layers(fig: Any, kind: str) -> list[Any]:
    return [a for a in fig.center + fig.above + fig.below if type(a).__name__ == kind]


def _walk(model: Any, kind: str) -> list[Any]:
    return [m for m in model.references() if getattr(type(m), "__view_model__", "") == kind]


# --- GWAS ---------------------------------------------------------------------


def test_manhattan_keeps_both_lines_in_range_and_says_n_and_lambda() -> None:
    from gwas_prs.reports.gwas import manhattan_figure

    fig = manhattan_figure(
        _sumstats(max_logp=3.0), "T", n=1234, cases=400, controls=834, lambda_gc=1.0213
    )
    spans = sorted(s.location for s in _layers(fig, "Span"))
    assert spans == pytest.approx([-np.log10(1e-5), -np.log10(5e-8)])
    # nothing reaches p = 1e-3 here, yet the genome-wide line is on screen
    assert fig.y_range.start == 0 and fig.y_range.end > -np.log10(5e-8)
    assert "N = 1,234 (400 cases, 834 controls)" in fig.title.text
    assert "λGC = 1.021" in fig.title.text
    assert {label.text for label in _layers(fig, "Label")} == {"p = 5e-08", "p = 1e-05"}


def test_manhattan_chromosome_labels_do_not_collide() -> None:
    from gwas_prs.reports.gwas import LABEL_CHAR_PX, LABEL_GAP_PX, manhattan_figure

    for width in (600, 1000, 1360):
        fig = manhattan_figure(_sumstats(), "T", width=width)
        labels = fig.xaxis[0].major_label_overrides
        assert list(labels) == fig.xaxis[0].ticker.ticks
        start, end = fig.x_range.start, fig.x_range.end
        px = sorted(
            ((x - start) / (end - start) * fig.frame_width, text) for x, text in labels.items()
        )
        for (a, text_a), (b, text_b) in itertools.pairwise(px):
            half = LABEL_CHAR_PX * (len(text_a) + len(text_b)) / 2
            assert b - a >= half + LABEL_GAP_PX, (width, text_a, text_b)
        assert labels[min(labels)] == "1"
        if width == 600:  # too narrow for all: 21 and 22 not side by side ("2122")
            assert len(labels) < 22 and not {"21", "22"} <= set(labels.values())
    assert len(labels) == 22  # the page width shows every chromosome


def test_qq_diagonal_stops_at_the_largest_expected_and_has_the_band() -> None:
    from gwas_prs.reports.gwas import qq_band, qq_figure

    rng = np.random.default_rng(3)
    p = np.concatenate([rng.uniform(size=999), [1e-12]])  # one strong hit
    fig = qq_figure(p, "T", 1.0, n=1000)
    expected_max = -np.log10(0.5 / 1000)
    (diagonal,) = _renderers(fig, "Line")
    assert list(diagonal.data_source.data["x"]) == pytest.approx([0, expected_max])
    assert list(diagonal.data_source.data["y"]) == pytest.approx([0, expected_max])
    assert fig.y_range.end >= 12  # the strong hit is on screen
    (band,) = _renderers(fig, "VArea")
    x = np.asarray(band.data_source.data["x"])
    lower = np.asarray(band.data_source.data["y1"])
    upper = np.asarray(band.data_source.data["y2"])
    assert len(x) == 1000 and np.all(lower <= x) and np.all(x <= upper)
    # one p-value: the band is the uniform's 2.5% and 97.5% quantiles
    lo, hi = qq_band(1, np.array([1]))
    assert lo[0] == pytest.approx(-np.log10(0.975)) and hi[0] == pytest.approx(-np.log10(0.025))
    assert "λGC = 1.000" in fig.title.text and "N = 1,000" in fig.title.text


def test_the_gwas_summary_page_has_everything_together() -> None:
    from gwas_prs.reports.gwas import gwas_report
    from gwas_prs.reports.html import standalone_html

    frame = _sumstats().assign(
        other_allele="A", effect_allele="G", beta=0.1, standard_error=0.05,
        effect_allele_frequency=0.3, n=1234,
    )  # fmt: skip
    top = frame.sort_values("p_value").head(3)
    layout = gwas_report(
        frame, frame["p_value"].to_numpy(), trait="T", lambda_gc=1.02, n=1234, cases=400,
        controls=834, top=top, binary=True, facts={"covariates": "age, sex"},
    )  # fmt: skip
    assert len(_walk(layout, "Figure")) == 2  # Manhattan and QQ
    text = " ".join(d.text for d in _walk(layout, "Div"))
    for part in ("GWAS summary", "<th>λGC</th><td class='num'>1.020</td>", "400", "834",
                 "Top 3 variants", "age, sex", f"{top.iloc[0]['chromosome']}:"):  # fmt: skip
        assert part in text, part
    assert "cdn.bokeh.org" not in standalone_html(layout, "T")


# --- QC -----------------------------------------------------------------------


def test_qc_filter_table_is_a_plain_html_table() -> None:
    from gwas_prs.reports.qc import table_figure

    reason = "KING kinship > 0.0884 with a kept sample"
    frame = pd.DataFrame(
        {"unit": ["samples", "variants"], "filter": ["relatedness", "maf"],
         "reason": [reason, "minor allele frequency < 0.01"], "before": [1125, 25132],
         "removed": [12, 18438], "after": [1113, 6694]}
    )  # fmt: skip
    block = table_figure(frame, title="filters")
    assert type(block).__name__ == "Div"  # no DataTable with equal-width columns
    assert f"<td>{escape(reason)}</td>" in block.text  # the whole reason
    for number in ("25,132", "18,438", "1,113"):
        assert f"<td class='num'>{number}</td>" in block.text
    assert "text-align:right" in block.text


def test_qc_threshold_lines_are_labelled_and_in_range() -> None:
    from gwas_prs.reports.qc import histogram_figure

    fig = histogram_figure(
        [0.0, 0.5, 1.0], [3, 4], title="t", x_label="x", thresholds=[(1.2, "min 1.2")]
    )
    (span,) = _layers(fig, "Span")
    (label,) = _layers(fig, "Label")
    assert label.x == span.location == 1.2 and label.text == "min 1.2"
    assert fig.x_range.start < 0 and fig.x_range.end > 1.2  # the line is on screen
    assert label.text_align == "right"  # written towards the middle, not off the edge
    assert fig.y_range.start < label.y < fig.y_range.end


def test_a_histogram_of_equal_values_says_so() -> None:
    from gwas_prs.reports.qc import histogram_figure, values_histogram

    fig = values_histogram(
        pd.Series([1.0] * 1126), title="Sample call rate", x_label="call rate",
        thresholds=[(0.97, "min 0.97")],
    )  # fmt: skip
    assert not _renderers(fig, "Quad")  # no single bar
    texts = [label.text for label in _layers(fig, "Label")]
    assert "all 1,126 samples: call rate = 1" in texts and "min 0.97" in texts
    one_bin = histogram_figure(
        np.linspace(0, 1, 51), [0] * 49 + [25132], title="Variant call rate", x_label="call rate"
    )
    assert not _renderers(one_bin, "Quad")
    assert "all 25,132 variants: 0.98 ≤ call rate ≤ 1" in [
        x.text for x in _layers(one_bin, "Label")
    ]
    two = values_histogram(pd.Series([0.9, 1.0]), title="t", x_label="x")
    assert _renderers(two, "Quad")


def test_pc_axes_show_the_share_of_variance() -> None:
    from gwas_prs.reports.qc import pc_scatter

    scores = pd.DataFrame({"PC1": [0.1, -0.2], "PC2": [0.0, 0.3]}, index=["a", "b"])
    fig = pc_scatter(
        scores, pd.Series(["EUR", "AFR"], index=["a", "b"]), variance_explained=[0.1234, 0.051]
    )
    assert fig.xaxis[0].axis_label == "PC1 (12.3% of variance)"
    assert fig.yaxis[0].axis_label == "PC2 (5.1% of variance)"


# --- model --------------------------------------------------------------------


def test_model_report_legends_off_the_curves_widths_and_dashes() -> None:
    from gwas_prs.reports.html import PAGE_WIDTH
    from gwas_prs.reports.model import models_table_html, pr_figure, roc_figure

    points = pd.DataFrame({"recall": [0, 0.5, 1], "precision": [1, 0.6, 0.3],
                           "fpr": [0, 0.3, 1], "tpr": [0, 0.7, 1]})  # fmt: skip
    curves = {"XGBoost (0.60)": points, "logistic: covariates only (0.50)": points}
    colours = {"XGBoost (0.60)": palette.model_colour("xgboost")}
    for fig in (pr_figure(curves, 0.3, "PR", colours), roc_figure(curves, "ROC", colours)):
        (legend,) = fig.legend
        assert legend in fig.below and legend not in fig.center  # outside the plot area
        assert 2 * fig.width >= PAGE_WIDTH - 100  # two per row fill the page
        assert _renderers(fig, "Line")[1].glyph.line_color == palette.MODEL_COLOURS["xgboost"]
    ci = {"estimate": 0.7, "ci_low": 0.6, "ci_high": 0.8}
    metrics = {
        "models": {"xgboost": {"label": "XGBoost", "fitted_on": "train", "roc_auc": ci,
                               "pr_auc": ci, "calibration": {"brier": 0.2, "intercept": 0.1,
                                                             "slope": 0.9}}},
        "oracle": {"label": "oracle (true genetic value)", "roc_auc": ci, "pr_auc": ci},
    }  # fmt: skip
    html = models_table_html(metrics)
    oracle = html[html.index("oracle") :]
    assert oracle.count("<td>—</td>") == 4 and "<td></td>" not in html


# --- PRS ----------------------------------------------------------------------

VARIANTS = {"5e-08": 0, "1e-05": 1, "0.0001": 3, "1": 5847}


def test_prs_threshold_bars_name_the_axis_and_count_variants() -> None:
    from gwas_prs.reports.prs import empty_threshold_notes, threshold_bar_figure

    table = pd.DataFrame({"threshold": [5e-8, 1e-5, 1e-4, 1.0],
                          "incremental": [0.0, 0.04, 0.125, 0.03]})  # fmt: skip
    fig = threshold_bar_figure(table, VARIANTS, binary=True, best=1e-4, title="t")
    assert fig.yaxis[0].axis_label == "ΔROC-AUC over covariates + PCs, validation"
    (labels,) = _layers(fig, "LabelSet")
    assert labels.source.data["text"] == ["none", "1", "3", "5,847"]
    assert fig.y_range.end > 0.125  # room for the label above the tallest bar
    (bars,) = _renderers(fig, "VBar")
    assert bars.data_source.data["colour"][2] == palette.HIGHLIGHT  # the chosen threshold
    quantitative = threshold_bar_figure(table, VARIANTS, binary=False, best=None, title="t")
    assert quantitative.yaxis[0].axis_label == "ΔR² over covariates + PCs, validation"
    (note,) = empty_threshold_notes(VARIANTS, 1.507e-7, 5847)
    assert "p ≤ 5e-08: no index variant" in note and "1.51e-07" in note and "5,847" in note


def test_prs_high_resolution_plot() -> None:
    from gwas_prs.methods.prs.evaluation import high_resolution_thresholds
    from gwas_prs.reports.prs import high_resolution_figure

    configured = (5e-8, 1e-5, 1e-4, 1e-3, 0.01, 0.05, 0.1, 0.5, 1.0)
    grid = high_resolution_thresholds(configured)
    assert set(configured) <= set(grid) and len(grid) > 4 * len(configured)
    assert list(grid) == sorted(set(grid)) and grid[0] == 1e-8 and grid[-1] == 1.0
    records = pd.DataFrame(
        {"threshold": grid, "variants": [max(0, k - 5) for k in range(len(grid))]}
    )
    records["incremental"] = np.where(
        records["variants"] > 0, np.linspace(0, 0.1, len(grid)), np.nan
    )
    fig = high_resolution_figure(records, binary=True, configured=configured, best=1e-4, title="t")
    assert type(fig.x_scale).__name__ == "LogScale"
    grid_points = _renderers(fig, "Scatter")[0]
    assert len(grid_points.data_source.data["threshold"]) == int((records["variants"] > 0).sum())


def test_prs_deciles_have_intervals_and_ticks_1_to_10() -> None:
    from gwas_prs.reports.prs import decile_figure, decile_intervals

    deciles = pd.DataFrame({"decile": range(1, 11), "mean": [0.5] * 10, "n": [10] * 10,
                            "sd": [0.5] * 10})  # fmt: skip
    wilson = decile_intervals(deciles, binary=True)
    assert wilson["low"].iloc[0] == pytest.approx(0.2366, abs=1e-4)  # Wilson, 5 of 10
    assert wilson["high"].iloc[0] == pytest.approx(0.7634, abs=1e-4)
    normal = decile_intervals(deciles, binary=False)
    assert normal["high"].iloc[0] == pytest.approx(0.5 + 1.959964 * 0.5 / np.sqrt(10))
    fig = decile_figure(deciles, "prevalence", "t")
    assert list(fig.xaxis[0].ticker.ticks) == list(range(1, 11))
    (whisker,) = _layers(fig, "Whisker")
    assert (whisker.lower, whisker.upper) == ("low", "high")


def test_prs_panels_show_cases_controls_and_ancestry_in_the_shared_colours() -> None:
    from gwas_prs.reports.prs import method_panel

    index = [f"s{i}" for i in range(60)]
    rng = np.random.default_rng(0)
    score = pd.Series(rng.normal(size=60), index=index)
    label = pd.Series([0, 1] * 30, index=index)
    ancestry = pd.Series(["EUR", "AFR", "EAS"] * 20, index=index)
    deciles = pd.DataFrame({"decile": range(1, 11), "mean": 0.3, "n": 6, "sd": 0.4})
    cases, by_group, decile = method_panel(
        "LDpred2-auto", score, label, ancestry, deciles, trait="T", binary=True
    )
    colours = {r.glyph.line_color for r in _renderers(cases, "Step")}
    assert colours == {palette.CASE_COLOUR, palette.CONTROL_COLOUR}
    legend = {item.label["value"].split(" (")[0]: item for item in by_group.legend[0].items}
    for group in ("EUR", "AFR", "EAS"):
        assert legend[group].renderers[0].glyph.line_color == palette.population_colour(group)
    assert by_group.legend[0] in by_group.below
    assert decile.title.text.startswith("LDpred2-auto")


# --- one palette --------------------------------------------------------------

_HEX = re.compile(r"#[0-9a-fA-F]{6}\b")


def test_one_colour_per_population_everywhere() -> None:
    from gwas_prs.reports.qc import pc_scatter

    colours = palette.POPULATION_COLOURS
    assert len(colours) == 31 and len(set(colours.values())) == 31  # 5 + 26, all distinct
    assert palette.population_colour("EUR") == palette.SUPER_POPULATION_COLOURS["EUR"]
    assert palette.population_colour("NA") == palette.MISSING_COLOUR
    assert palette.population_colour("my-group") == palette.population_colour("my-group")
    # by name, not by the order in which groups appear
    scores = pd.DataFrame({"PC1": [0.0, 1.0, 2.0], "PC2": [0.0, 1.0, 2.0]}, index=["a", "b", "c"])
    for names in (["EUR", "AFR", "SAS"], ["SAS", "EUR", "CEU"]):
        fig = pc_scatter(scores, pd.Series(names, index=scores.index))
        for r in fig.renderers:
            group = r.data_source.data["group"][0]
            assert r.glyph.fill_color == palette.population_colour(group)
    # no module or notebook keeps a palette of its own
    sources = [REPO / "gwas_prs" / "stages" / name for name in ("prs_reporting.py", "train.py")]
    sources += [p for p in (REPO / "gwas_prs" / "reports").glob("*.py") if p.name != "palette.py"]
    for path in sources:
        assert not _HEX.findall(path.read_text()), path
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        code = "\n".join(
            "".join(c["source"]) for c in json.loads(path.read_text())["cells"]
            if c["cell_type"] == "code"
        )  # fmt: skip
        assert re.search(r"from gwas_prs\.reports\.(palette|qc|gwas) import", code), path
        assert not _HEX.findall(code), path
        assert "output_notebook(INLINE" in code, path  # BokehJS inlined, not from the CDN


def test_cdn_references_are_found() -> None:
    from bokeh.embed import file_html
    from bokeh.plotting import figure
    from bokeh.resources import CDN, INLINE

    from tests.browser import cdn_script_references, expected_figures

    fig = figure()
    fig.scatter([1], [1])
    online, offline = file_html(fig, CDN, "t"), file_html(fig, INLINE, "t")
    assert any("cdn.bokeh.org" in url for url in cdn_script_references(online))
    assert cdn_script_references(offline) == []
    assert expected_figures(offline) == 1
    assert expected_figures(json.dumps(offline)) == 1  # escaped inside a JS string too


def test_the_high_resolution_grid_is_evaluated_like_the_threshold_choice() -> None:
    from types import SimpleNamespace

    from gwas_prs.stages.prs_reporting import evaluate_high_resolution

    rng = np.random.default_rng(5)
    index = [f"s{i}" for i in range(300)]
    signal = rng.normal(size=300)
    y = (signal + rng.normal(size=300) > 0).astype(float)
    pheno = SimpleNamespace(
        binary={"T": True}, frame=pd.DataFrame({"T": y, "age": rng.normal(size=300)}, index=index)
    )
    roles = pd.Series(["train", "validation"] * 150, index=index)
    scores = pd.DataFrame(
        {"prs_1e-05": 0.0, "prs_0.001": signal, "prs_0.01": signal, "prs_1": rng.normal(size=300)},
        index=index,
    )
    variants = {"1e-05": 0, "0.001": 4, "0.01": 4, "1": 9}
    records = evaluate_high_resolution(
        "T", pheno, ("age",), pd.DataFrame(index=index), scores, roles, variants
    )
    assert [r["variants"] for r in records] == [0, 4, 4, 9]
    assert records[0]["incremental"] is None  # no variant: nothing to evaluate (null in JSON)
    assert records[1] == {**records[2], "threshold": 0.001}  # same variants, same score
    assert records[1]["incremental"] > 0.2 > records[3]["incremental"]
