"""`gwas-prs demo` on the bundled cohort (all 22 autosomes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gwas_prs.cli.app import app

pytestmark = pytest.mark.slow


def test_demo_ingests_the_bundled_cohort_and_skips_when_complete(
    hail_context: None, tmp_path: Path
) -> None:
    runner = CliRunner()
    run = tmp_path / "demo"
    first = runner.invoke(app, ["demo", "--run", str(run)])
    assert first.exit_code == 0, first.output
    assert "variants written (bi-allelic)" in first.output and "25,132" in first.output
    assert f"Demo run folder: {run}" in first.output
    counts = json.loads((run / "manifest.json").read_text())["stages"]["ingest"]["counts"]
    assert counts["samples"] == 1126
    assert counts["records_read"] == 24_640
    assert counts["multiallelic_records"] == 496
    assert counts["variants"] == 25_132
    assert len(counts["variants_per_contig"]) == 22
    second = runner.invoke(app, ["demo", "--run", str(run)])
    assert second.exit_code == 0
    assert "ingest: already complete" in second.output
