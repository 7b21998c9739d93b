"""Every HTML report of the demo run opened in headless Chromium with the network
blocked (:mod:`tests.browser`): no page references a script on the network, and every
bokeh figure draws its canvas. Skipped where Debian's ``chromium`` is not installed.

Set ``GWAS_PRS_SCREENSHOTS=DIR`` to keep a full-page screenshot of each page."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser import SKIP_REASON, render_pages

pytestmark = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")

REPORTS = (
    "silver/qc/report.html",
    "silver/ancestry/report.html",
    "gold/gwas/disease/report.html",
    "gold/gwas/disease/manhattan.html",
    "gold/gwas/disease/qq.html",
    "gold/prs/disease/report.html",
    "gold/models/disease/report.html",
)
#: bokeh figures per page (QC: 2 sample + 3 variant histograms; ancestry: 3 PC plots and
#: the scree plot; GWAS: Manhattan + QQ; PRS: bars + high resolution + 3 per method)
FIGURES = {"silver/qc/report.html": 5, "silver/ancestry/report.html": 4,
           "gold/gwas/disease/report.html": 2, "gold/prs/disease/report.html": 2 + 3 * 5,
           "gold/models/disease/report.html": 4}  # fmt: skip


def screenshot_dir() -> str | None:
    return os.environ.get("GWAS_PRS_SCREENSHOTS") or None


@pytest.mark.slow
def test_every_report_renders_offline(demo_run: tuple[Path, str]) -> None:
    run, _ = demo_run
    pages = [run / page for page in REPORTS]
    names = [page.removesuffix(".html").replace("/", "_") for page in REPORTS]
    results = render_pages(pages, screenshot_dir=screenshot_dir(), names=names)
    for page, result in zip(REPORTS, results, strict=True):
        assert result.problems() == [], (page, result)
        assert result.drawn == FIGURES.get(page, 1), (page, result)


def test_a_page_that_loads_bokehjs_from_the_cdn_fails(tmp_path: Path) -> None:
    """The check itself: offline, a CDN page draws nothing and says why; INLINE draws."""
    from bokeh.embed import file_html
    from bokeh.plotting import figure
    from bokeh.resources import CDN, INLINE

    fig = figure()
    fig.scatter([1, 2], [3, 4])
    online, offline = tmp_path / "cdn.html", tmp_path / "inline.html"
    online.write_text(file_html(fig, CDN, "cdn"))
    offline.write_text(file_html(fig, INLINE, "inline"))
    cdn, inline = render_pages([online, offline], settle_s=3)
    problems = " ".join(cdn.problems())
    assert "references scripts on the network" in problems and "cdn.bokeh.org" in problems
    assert "made network requests" in problems  # blocked: BokehJS never arrives
    assert "0 of 1 bokeh figures rendered" in problems
    assert inline.problems() == [] and inline.drawn == 1
