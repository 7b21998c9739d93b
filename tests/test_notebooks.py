"""The notebooks in notebooks/ run top to bottom against the demo run (no JVM in the kernel)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def execute_notebook(path: Path, run: Path) -> list[str]:
    """Execute ``path`` with GWAS_PRS_RUN=run; returns the text outputs of its cells."""
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
    return texts


def test_there_are_three_notebooks() -> None:
    assert [p.stem for p in NOTEBOOKS] == ["01_cohort_qc", "02_gwas_results", "03_prs_and_model"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_the_demo_run(notebook: Path, demo_run: tuple[Path, str]) -> None:
    texts = execute_notebook(notebook, demo_run[0])
    joined = "\n".join(texts)
    assert "views: samples, variants, frequencies, sumstats" in joined
    if notebook.stem == "03_prs_and_model":
        assert "best threshold:" in joined and "ROC AUC" in joined
