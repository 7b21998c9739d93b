"""`gwas-prs demo` on the bundled cohort (through train and predict), and the outputs it leaves.

The session fixture `demo_run` (tests/conftest.py) copies ingest and qc from
`qc_full_run` into the demo's run folder, so the demo skips them, as it does on a
second run; the demo then simulates the trait, runs the GWAS, the PRS and train,
and predicts for 20 held-out test samples from a VCF.
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
from tests.cli_helpers import invoke

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
    # local mode: prs clumps and scores on the .bed qc kept beside the silver MatrixTable
    assert (
        stages["qc"]["outputs"]["silver_bed"] == "silver/genotypes.plink"
    )  # relative to the run root
    assert stages["prs:disease"]["counts"]["genotypes_from"] == "silver .bed (numpy)"
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
    from gwas_prs.formats.sumstats import read_gwas_ssf, read_gwas_ssf_metadata

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


MODEL_FILES = (
    "model.json", "logistic_model.json", "feature_schema.json", "baselines.json",
    "metrics.json", "report.html",
    "test_predictions.tsv", "feature_importance.tsv", "prs_weights.tsv", "pca_loadings.tsv.gz",
    "prs_distribution.tsv", "ancestry_reference.tsv",
)  # fmt: skip


def test_demo_trains_a_model_and_evaluates_it_on_test(demo_run: tuple[Path, str]) -> None:
    run, output = demo_run
    assert "demo: risk models for 'disease' on 167 held-out test samples" in output
    for label in ("logistic: covariates + PCs", "XGBoost", "oracle (true genetic value)"):
        assert label in output
    assert "predict: 20 samples" in output
    stages = json.loads((run / "manifest.json").read_text())["stages"]
    assert stages["train:disease"]["status"] == "complete"
    folder = run / "gold" / "models" / "disease"
    for name in MODEL_FILES:
        assert (folder / name).stat().st_size > 0, name
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["n"] == {"train": 223, "validation": 167, "test": 167}
    assert set(metrics["models"]) == {
        "covariates",
        "covariates_pcs",
        "covariates_pcs_prs",
        "penalised_logistic",
        "xgboost",
    }
    for model in [*metrics["models"].values(), metrics["oracle"]]:
        for name in ("roc_auc", "pr_auc"):
            m = model[name]
            assert m["ci_low"] <= m["estimate"] <= m["ci_high"]
        assert model["roc_auc"]["estimate"] > 0.6  # the simulated trait is predictable
    # the true genetic value is the ceiling; the PRS adds to covariates + PCs
    oracle = metrics["oracle"]["roc_auc"]["estimate"]
    assert all(m["roc_auc"]["estimate"] < oracle for m in metrics["models"].values())
    delta = metrics["incremental"]["covariates_pcs_prs_vs_covariates_pcs"]["delta_roc_auc"]
    assert delta["estimate"] > 0
    assert 0.5 < metrics["models"]["xgboost"]["calibration"]["slope"] < 2
    groups = set(metrics["by_ancestry"]) | set(metrics["ancestry_groups_skipped"])
    assert {"AFR", "EUR"} <= set(metrics["by_ancestry"]) and groups <= {
        "AFR", "AMR", "EAS", "EUR", "SAS", "other"
    }  # fmt: skip
    # the feature table: target samples only, PRS standardised on train
    features = pd.read_parquet(run / "gold" / "features" / "disease.parquet")
    assert len(features) == 557 and set(features["split"]) == {"train", "validation", "test"}
    train = features[features["split"] == "train"]
    assert abs(train["prs_0.01"].mean()) < 1e-9 and train["prs_0.01"].std(ddof=0) == pytest.approx(
        1
    )
    schema = json.loads((run / "gold" / "features" / "disease.schema.json").read_text())
    roles = {c["name"]: c["role"] for c in schema["columns"]}
    assert roles["PC10"] == "pc" and roles["age"] == "covariate" and roles["label"] == "label"


def test_predict_reproduces_the_test_set_predictions(demo_run: tuple[Path, str]) -> None:
    run, _ = demo_run
    predicted = pd.read_csv(run / "demo_predict" / "predictions.tsv", sep="\t").set_index(
        "sample_id"
    )
    folder = run / "gold" / "models" / "disease"
    train = pd.read_csv(folder / "test_predictions.tsv", sep="\t").set_index("sample_id")
    train = train.loc[predicted.index]
    assert len(predicted) == 20
    # same genotypes, same model: the same probabilities (projection reproduces the PCA)
    assert np.abs(predicted["probability"] - train["probability"]).max() < 1e-6
    for name in ("covariates_pcs", "covariates_pcs_prs"):
        assert np.abs(predicted[f"p_{name}"] - train[f"p_{name}"]).max() < 1e-6
    pcs = pd.read_csv(run / "silver" / "ancestry" / "scores.tsv", sep="\t").set_index("s")
    columns = [f"PC{k}" for k in range(1, 11)]
    assert np.abs(predicted[columns] - pcs.loc[predicted.index, columns]).max().max() < 1e-9
    best = json.loads((folder / "feature_schema.json").read_text())["best_prs_column"]
    scores = pd.read_csv(run / "gold" / "prs" / "disease" / "scores.tsv", sep="\t")
    raw = scores.set_index("sample_id").loc[predicted.index, best]
    assert np.abs(predicted["prs"] - raw).max() < 1e-9
    assert predicted["prs_percentile"].between(0, 100).all()
    assert (predicted["ancestry"] == train["ancestry"]).mean() >= 0.9
    # pgsc_calc's ancestry normalisation: predict applies the models the prs stage fitted
    # (on train) to the projected PCs, and reproduces the prs stage's values
    adjusted = pd.read_csv(
        run / "gold" / "prs" / "disease" / "scores_ancestry_adjusted.tsv", sep="\t"
    ).set_index("sample_id")
    z_columns = [c for c in adjusted.columns if c.endswith(("_Z_norm1", "_Z_norm2"))]
    assert len(z_columns) >= 8  # C+T and the four LD-based methods, two each
    # tolerance: the projected PCs equal the PCA's to 1e-9; the models are linear in them
    assert (
        np.abs(predicted[z_columns] - adjusted.loc[predicted.index, z_columns]).max().max() < 1e-6
    )
    same_group = predicted["ancestry"] == train["ancestry"]
    pct = [c for c in adjusted.columns if c.endswith("_percentile_MostSimilarPop")]
    assert (
        pct
        and np.abs(predicted.loc[same_group, pct] - adjusted.loc[predicted.index[same_group], pct])
        .max()
        .max()
        < 1e-9
    )


def test_predict_refuses_incomplete_or_inconsistent_model_folders(
    demo_run: tuple[Path, str], tmp_path: Path
) -> None:
    run, _ = demo_run
    vcf = run / "demo_predict" / "test_samples.vcf.gz"
    samples = run / "demo_predict" / "test_samples.tsv"
    model = tmp_path / "model"
    shutil.copytree(run / "gold" / "models" / "disease", model)
    out = tmp_path / "p.tsv"
    args = ["predict", "--model", str(model), "--vcf", str(vcf), "--out", str(out)]
    (model / "prs_distribution.tsv").rename(tmp_path / "kept.tsv")
    code, _, errors = invoke(*args, "--samples", str(samples))
    assert code == 2 and "missing prs_distribution.tsv" in errors and errors.count("\n") == 1
    (tmp_path / "kept.tsv").rename(model / "prs_distribution.tsv")
    schema = json.loads((model / "feature_schema.json").read_text())
    schema["model_features"] = schema["model_features"][::-1]
    (model / "feature_schema.json").write_text(json.dumps(schema))
    code, _, errors = invoke(*args, "--samples", str(samples))
    assert code == 2 and "feature schema mismatch" in errors
    shutil.copy(run / "gold" / "models" / "disease" / "feature_schema.json", model)
    no_age = tmp_path / "no_age.tsv"
    pd.read_csv(samples, sep="\t").drop(columns="age").to_csv(no_age, sep="\t", index=False)
    code, _, errors = invoke(*args, "--samples", str(no_age))
    assert code == 2 and "no covariate column 'age'" in errors
    assert not out.exists()


def test_predict_stops_when_no_variant_overlaps(demo_run: tuple[Path, str], tmp_path: Path) -> None:
    from tests.vcf_factory import vcf_lines, write_vcf

    run, _ = demo_run
    records = [("21", 1000 + i, "A", "G") for i in range(4)]
    vcf = write_vcf(tmp_path / "other.vcf", vcf_lines(records=records))
    samples = tmp_path / "samples.tsv"
    samples.write_text("sample_id\tage\tsex\nS1\t40\t0\nS2\t50\t1\nS3\t60\t0\nS4\t70\t1\n")
    out = tmp_path / "p.tsv"
    code, _, errors = invoke(
        "predict", "--model", str(run / "gold" / "models" / "disease"), "--vcf", str(vcf),
        "--samples", str(samples), "--out", str(out),
    )  # fmt: skip
    assert code == 2 and "PRS variants: only 0.0% of" in errors and "--min-overlap" in errors
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_train_twice_gives_identical_metrics(demo_run: tuple[Path, str]) -> None:
    run, _ = demo_run
    metrics = run / "gold" / "models" / "disease" / "metrics.json"
    first = json.loads(metrics.read_text())
    result = runner.invoke(app, ["train", str(run), "--trait", "disease", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert "train: disease" in result.output and "train wall time:" in result.output
    assert json.loads(metrics.read_text()) == first  # same seed → the same numbers


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
