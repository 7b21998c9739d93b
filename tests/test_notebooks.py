"""The notebooks in notebooks/ run top to bottom against the demo run (no JVM in the kernel),
and their HTML export (nbconvert) works offline: no script from a CDN (BokehJS is
inlined) and, where Debian's ``chromium`` is installed, every bokeh figure draws in
headless Chromium with the network blocked (:mod:`tests.browser`; set
``GWAS_PRS_SCREENSHOTS=DIR`` for screenshots)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser import SKIP_REASON, cdn_script_references, render_pages
from tests.conftest import REPO

pytestmark = pytest.mark.slow
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def execute_notebook(path: Path, run: Path) -> tuple[list[str], Any]:
    """Execute ``path`` with GWAS_PRS_RUN=run; returns the text outputs of its cells and
    the executed notebook."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    old = os.environ.get("GWAS_PRS_RUN")
    os.environ["GWAS_PRS_RUN"] = str(run)
    try:
        NotebookClient(
            notebook,
            timeout=300,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        ).execute()
    finally:
        if old is None:
            os.environ.pop("GWAS_PRS_RUN")
        else:
            os.environ["GWAS_PRS_RUN"] = old
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") + str(output.get("data", {}).get("text/plain", "")))
    return texts, notebook


def export_html(notebook: Any, path: Path) -> tuple[str, list[str]]:
    """The executed notebook as nbconvert's HTML (the lab template), written to ``path``;
    also the template's own network scripts (require.js, MathJax, mermaid: not the
    notebook's, and offline they simply do not load)."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter()
    html, _ = exporter.from_notebook_node(notebook)
    path.write_text(html, encoding="utf-8")
    return html, [exporter.require_js_url, exporter.mathjax_url, exporter.mermaid_js_url]


def test_there_are_three_notebooks() -> None:
    assert [p.stem for p in NOTEBOOKS] == ["01_cohort_qc", "02_gwas_results", "03_prs_and_model"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_the_demo_run(
    notebook: Path, demo_run: tuple[Path, str], tmp_path: Path
) -> None:
    texts, executed = execute_notebook(notebook, demo_run[0])
    joined = "\n".join(texts)
    assert "views: samples, variants, frequencies, sumstats" in joined
    if notebook.stem == "03_prs_and_model":
        assert "best threshold:" in joined and "ROC AUC" in joined
        # the models' readable labels, not the prediction columns' names
        assert "logistic: covariates + PCs" in joined and "oracle (true genetic value)" in joined
    page = tmp_path / f"{notebook.stem}.html"
    html, template_scripts = export_html(executed, page)
    assert cdn_script_references(html, allowed=template_scripts) == []
    if notebook.stem == "03_prs_and_model":
        assert "logistic: covariates + PCs (0." in html  # the legend entries
        assert not re.search(r"p_(covariates|xgboost|penalised)\w* \(0\.", html)
    if SKIP_REASON is not None:
        pytest.skip(f"exported, not rendered: {SKIP_REASON}")
    shots = os.environ.get("GWAS_PRS_SCREENSHOTS") or None
    (result,) = render_pages(
        [page], screenshot_dir=shots, names=[notebook.stem], allowed_scripts=template_scripts
    )
    assert result.problems() == [], result
    assert result.drawn == {"01_cohort_qc": 3, "02_gwas_results": 2}.get(notebook.stem, 3)
