"""``gwas-prs prs --sumstats``: an external GWAS as the base, every labelled sample a target
(issue 17), on the bundled demo cohort.

The external GWAS is ``plink2 --glm`` on one half of the demo's samples (the other half
is the target cohort and the only one in the phenotype file given to ``prs``):

    plink2 --bfile RUN/silver/genotypes.plink/genotypes --keep discovery.txt \\
        --pheno pheno.tsv --pheno-name disease --covar pheno.tsv --covar-name age,sex \\
        --glm hide-covar firth-fallback --out ext

and the stage's scores must equal ``plink2 --score`` with the weights it wrote
(``weights_by_threshold.tsv``) on the target samples:

    plink2 --bfile … --keep targets.txt --score w.tsv 1 2 header cols=+scoresums \\
        --score-col-nums 3-11 --out s
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.cli_helpers import invoke
from tests.conftest import have_programs

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not have_programs("plink2"), reason="needs plink2"),
]


def _plink2(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["plink2", *args, "--threads", "1", "--memory", "2000"],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_prs_on_external_sumstats_scores_every_target_like_plink2(
    demo_run: tuple[Path, str], tmp_path: Path
) -> None:
    demo = demo_run[0]
    run = tmp_path / "run"
    shutil.copytree(demo, run, ignore=shutil.ignore_patterns("tmp", "logs"))
    for later in ("gwas", "prs", "splits", "models", "features"):  # keep qc's frequencies
        shutil.rmtree(run / "gold" / later, ignore_errors=True)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["stages"] = {
        k: v for k, v in manifest["stages"].items() if k in ("ingest", "qc", "simulate-phenotype")
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    phenotypes = pd.read_csv(
        run / "simulated" / "disease" / "phenotypes.tsv", sep="\t", dtype={"sample_id": str}
    )
    bed = run / "silver" / "genotypes.plink" / "genotypes"
    fam = pd.read_csv(f"{bed}.fam", sep=r"\s+", header=None, dtype=str)
    rng = np.random.default_rng(3)
    in_cohort = phenotypes[phenotypes["sample_id"].isin(fam[1])].reset_index(drop=True)
    discovery = rng.random(len(in_cohort)) < 0.5
    work = tmp_path / "plink"
    work.mkdir()
    pheno = in_cohort.rename(columns={"sample_id": "IID"})
    pheno["disease"] = pheno["disease"] + 1  # plink2: 1 = control, 2 = case
    pheno.to_csv(work / "pheno.tsv", sep="\t", index=False)
    (work / "discovery.txt").write_text("\n".join(in_cohort.loc[discovery, "sample_id"]) + "\n")
    _plink2(
        "--bfile", str(bed), "--keep", "discovery.txt", "--pheno", "pheno.tsv",
        "--pheno-name", "disease", "--covar", "pheno.tsv", "--covar-name", "age,sex",
        "--glm", "hide-covar", "firth-fallback", "--out", "ext", cwd=work,
    )  # fmt: skip
    sumstats = work / "ext.disease.glm.logistic.hybrid"
    targets = in_cohort[~discovery]
    target_file = tmp_path / "targets.tsv"
    targets.to_csv(target_file, sep="\t", index=False)
    n_cases = int(in_cohort.loc[discovery, "disease"].sum())
    n_controls = int(discovery.sum()) - n_cases

    code, out, errors = invoke(
        "prs", str(run), "--trait", "disease", "--sumstats", str(sumstats),
        "--phenotypes", str(target_file), "--covariates", "age,sex",
        "--sumstats-cases", str(n_cases), "--sumstats-controls", str(n_controls),
    )  # fmt: skip
    assert code == 0, errors + out
    prs = run / "gold" / "prs" / "disease"
    metrics = json.loads((prs / "metrics.json").read_text())
    counts = metrics["counts"]
    assert counts["sumstats"]["format"] == "plink2"
    # the same .bed: every variant is found; A/T and C/G SNPs are dropped (the default)
    categories = counts["sumstats"]["categories"]
    assert categories["not_found"] == categories["allele_mismatch"] == 0, categories
    assert categories["flip"] == categories["flip_swap"] == 0, categories
    kept_or_dropped = ("match", "swap", "palindromic_dropped", "missing_statistics", "duplicate")
    assert sum(categories[c] for c in kept_or_dropped) == counts["sumstats"]["rows"], categories
    assert categories["palindromic_dropped"] > 0
    assert counts["ld_samples"].startswith("train (")
    # every labelled sample is a target: no discovery role, 40/30/30
    split = pd.read_csv(run / "gold" / "splits" / "disease.tsv", sep="\t", dtype=str)
    assert set(split["sample_id"]) == set(targets["sample_id"])
    fractions = split["role"].value_counts(normalize=True)
    assert set(fractions.index) == {"train", "validation", "test"}
    assert abs(fractions["train"] - 0.4) < 0.02 and abs(fractions["test"] - 0.3) < 0.02
    assert metrics["fitted_on"]["test"] == ["train", "validation"]

    weights = pd.read_csv(prs / "weights_by_threshold.tsv", sep="\t", dtype={"chromosome": str})
    # the same fileset with unique IDs CHR:POS:REF:ALT (multi-allelic sites share a position)
    bim = pd.read_csv(f"{bed}.bim", sep="\t", header=None, dtype={0: str})
    bim[1] = bim[0] + ":" + bim[3].astype(str) + ":" + bim[5] + ":" + bim[4]
    bim.to_csv(work / "g.bim", sep="\t", header=False, index=False)
    for ext in (".bed", ".fam"):
        (work / f"g{ext}").symlink_to(f"{bed}{ext}")
    scores = pd.read_csv(prs / "scores.tsv", sep="\t", dtype={"sample_id": str}).set_index(
        "sample_id"
    )
    (work / "targets.txt").write_text("\n".join(scores.index) + "\n")
    ld_weights = pd.read_csv(prs / "weights_ld_methods.tsv", sep="\t", dtype={"chromosome": str})
    assert {
        f"prs_{m}" for m in ("ldpred2_auto", "ldpred2_inf", "ldpred2_grid", "lassosum2")
    } <= set(scores.columns)
    for name, table in (("ct", weights), ("ld", ld_weights)):
        _check_against_plink2_score(table, scores, work, name)
    assert set(metrics["methods"]) == {
        "prs_ct", "prs_ldpred2_auto", "prs_ldpred2_inf", "prs_ldpred2_grid", "prs_lassosum2"
    }  # fmt: skip
    auto = metrics["methods"]["prs_ldpred2_auto"]
    assert auto["ld_samples"].startswith("train (") and auto["estimates"]["chains_kept"] >= 1
    # 6,088 variants, a GWAS of ~560 samples and LD from ~220: h² is barely identified
    # here (its recovery is tested on simulated data in test_ldpred2.py); it is reported
    assert auto["estimates"]["h2"] > 0 and len(auto["estimates"]["h2_interval"]) == 2
    assert (prs / "weights_ldpred2_auto.txt.gz").stat().st_size > 0
    # per ancestry group on test: the 1000 Genomes super-populations, in the report too
    groups = metrics["by_ancestry_test"]["groups"]
    assert set(groups) | set(metrics["by_ancestry_test"]["skipped"]) >= {"EUR", "AFR"}
    for entry in groups.values():
        assert set(entry["models"]) == set(metrics["methods"])
        assert 0 <= entry["models"]["prs_ct"]["roc_auc"]["estimate"] <= 1
    # pgsc_calc's ancestry normalisation, fitted on train (equality with pgscatalog-calc
    # itself: tests/test_ancestry_adjust.py): Z_norm1 has mean 0, SD 1 in the reference
    adjusted = pd.read_csv(prs / "scores_ancestry_adjusted.tsv", sep="\t").set_index("sample_id")
    z = adjusted.loc[adjusted["role"] == "train", "prs_ldpred2_auto_Z_norm1"]
    assert abs(z.mean()) < 1e-9 and abs(z.std(ddof=0) - 1) < 1e-9  # by construction
    assert "prs_ct_percentile_MostSimilarPop" not in adjusted  # named by score column
    assert {"prs_lassosum2_Z_norm2", "prs_lassosum2_percentile_MostSimilarPop"} <= set(adjusted)
    report = (prs / "report.html").read_text()
    assert "By ancestry group" in report and "Methods (models fitted on train" in report

    # below --min-overlap: one line, exit 2, the completed stage left as it was
    moved = work / "moved.tsv"
    glm = pd.read_csv(sumstats, sep="\t", dtype=str)
    shift = np.arange(len(glm)) % 10 != 0  # 90% of the rows at positions the cohort lacks
    glm.loc[shift, "POS"] = (glm.loc[shift, "POS"].astype(int) + 1).astype(str)
    glm.to_csv(moved, sep="\t", index=False)
    code, _, errors = invoke(
        "prs", str(run), "--trait", "disease", "--sumstats", str(moved),
        "--phenotypes", str(target_file), "--overwrite",
    )  # fmt: skip
    assert code == 2 and errors.count("\n") == 1, errors
    assert "not found" in errors and "--min-overlap" in errors
    assert json.loads((prs / "metrics.json").read_text()) == metrics


def _check_against_plink2_score(
    weights: pd.DataFrame, scores: pd.DataFrame, work: Path, name: str
) -> None:
    """``plink2 --score`` of every ``weight_*`` column equals the stage's ``prs_*`` column."""
    weights = weights.copy()
    weights.insert(
        0,
        "id",
        weights["chromosome"] + ":" + weights["position"].astype(str) + ":" + weights["ref"]
        + ":" + weights["alt"],
    )  # fmt: skip
    columns = [c for c in weights.columns if c.startswith("weight_")]
    weights[["id", "alt", *columns]].to_csv(work / f"{name}.tsv", sep="\t", index=False)
    _plink2(
        "--bfile", "g", "--keep", "targets.txt", "--score", f"{name}.tsv", "1", "2", "header",
        "cols=+scoresums", "--score-col-nums", f"3-{2 + len(columns)}", "--out", name, cwd=work,
    )  # fmt: skip
    theirs = pd.read_csv(work / f"{name}.sscore", sep="\t", dtype={"IID": str}).set_index("IID")
    assert len(theirs) == len(scores)
    for k, column in enumerate(columns):
        ours = scores.loc[theirs.index, f"prs_{column.removeprefix('weight_')}"].to_numpy()
        sums = theirs[f"SCORE{k + 1}_SUM"].to_numpy()
        # plink2 prints 6 significant digits: relative 1e-5 of the largest sum
        assert np.abs(ours - sums).max() <= 1e-5 * max(1.0, np.abs(sums).max()), column
