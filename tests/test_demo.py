"""`gwas-prs demo` through prs on the bundled cohort, and the gwas/prs outputs it leaves.

The session fixture `demo_run` (tests/conftest.py) copies ingest and qc from
`qc_full_run` into the demo's run folder, so the demo skips them, as it does on a
second run; the demo then simulates the trait, runs the GWAS and the PRS.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gwas_prs.cli.app import app

pytestmark = pytest.mark.slow
runner = CliRunner()


def test_demo_skips_complete_stages_and_reports_the_prs(demo_run: tuple[Path, str]) -> None:
    run, output = demo_run
    assert "ingest: already complete" in output and "qc: already complete" in output
    assert "gwas: disease" in output and "prs: disease (test, best threshold" in output
    assert f"Demo run folder: {run}" in output
    stages = json.loads((run / "manifest.json").read_text())["stages"]
    for stage in ("simulate-phenotype:disease", "gwas:disease", "prs:disease"):
        assert stages[stage]["status"] == "complete"
    metrics = json.loads((run / "gold" / "prs" / "disease" / "metrics.json").read_text())
    # the simulated trait (h2 0.8, 100 causal variants) is predicted on held-out samples
    assert metrics["binary"] is True and metrics["metric"] == "roc_auc"
    assert metrics["test"]["prs_only"] > 0.6
    assert metrics["test"]["incremental"] > 0
    assert len(metrics["by_threshold_validation"]) == 9


def test_split_is_disjoint_stratified_and_recorded(demo_run: tuple[Path, str]) -> None:
    run, _ = demo_run
    split = pd.read_csv(run / "gold" / "splits" / "disease.tsv", sep="\t")
    assert split.sample_id.is_unique and len(split) == 1113  # QC-passed samples
    fractions = split.role.value_counts(normalize=True)
    assert fractions["discovery"] == pytest.approx(0.5, abs=0.01)
    assert fractions["test"] == pytest.approx(0.15, abs=0.01)
    pheno = pd.read_csv(run / "simulated" / "disease" / "phenotypes.tsv", sep="\t")
    merged = split.merge(pheno, on="sample_id")
    prevalence = merged.groupby("role")["disease"].mean()
    assert prevalence.max() - prevalence.min() < 0.03  # stratified by label
    scores = pd.read_csv(run / "gold" / "prs" / "disease" / "scores.tsv", sep="\t")
    assert set(scores.role) == {"train", "validation", "test"}  # the GWAS samples are never scored
    assert not set(scores.sample_id) & set(split.sample_id[split.role == "discovery"])


def test_gwas_outputs_are_gwas_ssf(demo_run: tuple[Path, str]) -> None:
    from gwas_prs.sumstats_format import read_gwas_ssf, read_gwas_ssf_metadata

    run, _ = demo_run
    folder = run / "gold" / "gwas" / "disease"
    with gzip.open(folder / "sumstats.tsv.gz", "rt") as handle:
        header = handle.readline().rstrip("\n").split("\t")
    assert header[:8] == [
        "chromosome",
        "base_pair_location",
        "effect_allele",
        "other_allele",
        "odds_ratio",
        "standard_error",
        "effect_allele_frequency",
        "p_value",
    ]
    table = read_gwas_ssf(str(folder / "sumstats.tsv.gz"))
    assert len(table) == 6088  # QC-passed variants
    meta = read_gwas_ssf_metadata(str(folder / "sumstats.tsv.gz"))
    assert meta["file_type"] == "GWAS-SSF v1.0" and meta["genome_assembly"] == "GRCh37"
    lam = meta["gwas_prs"]["lambda_gc"]
    assert 0.8 < lam < 1.3
    for name in ("manhattan.html", "qq.html", "top_hits.tsv"):
        assert (folder / name).stat().st_size > 1000


def test_external_weights_reproduce_the_best_threshold(
    demo_run: tuple[Path, str], tmp_path: Path
) -> None:
    """prs --weights on the PGS Catalog file prs wrote gives the same scores."""
    run = tmp_path / "run"  # a copy: the shared demo run stays as the demo left it
    shutil.copytree(demo_run[0], run, ignore=shutil.ignore_patterns("silver", "bronze"))
    (run / "silver").symlink_to(demo_run[0] / "silver")
    folder = run / "gold" / "prs" / "disease"
    metrics = json.loads((folder / "metrics.json").read_text())
    first = pd.read_csv(folder / "scores.tsv", sep="\t").set_index("sample_id")
    best = first[f"prs_{metrics['best_threshold']:g}"]
    weights = run / "best_weights.txt.gz"
    shutil.copy(folder / "weights.txt.gz", weights)
    result = runner.invoke(
        app, ["prs", str(run), "--trait", "disease", "--weights", str(weights), "--overwrite"]
    )
    assert result.exit_code == 0, result.output
    again = pd.read_csv(folder / "scores.tsv", sep="\t").set_index("sample_id")["prs_1"]
    assert np.abs(again.loc[best.index] - best).max() < 1e-9
    counts = json.loads((run / "manifest.json").read_text())["stages"]["prs:disease"]["counts"]
    assert (
        counts["match_rate"] == 1.0 and counts["categories"]["match"] == counts["weights_in_file"]
    )


def test_gwas_refuses_unknown_trait_without_starting_hail(demo_run: tuple[Path, str]) -> None:
    run, _ = demo_run
    pheno = run / "simulated" / "disease" / "phenotypes.tsv"
    result = runner.invoke(app, ["gwas", str(run), "--phenotypes", str(pheno), "--trait", "height"])
    assert result.exit_code == 2
    assert (
        f"error: {pheno}: no trait column 'height' (--trait); columns: disease" not in result.output
    )
    assert (
        "no trait column 'height'" in result.output
        and "columns: age, sex, disease" in result.output
    )
