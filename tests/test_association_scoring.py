"""GWAS and polygenic scores against PLINK 2 on the bundled chr21+22.

References (run by the tests, on the same genotypes exported with hl.export_plink):
  plink2 --bfile g --pheno pheno.tsv --pheno-name T --covar pheno.tsv --covar-name age,sex
         --glm hide-covar [no-firth] --out o
  plink2 --bfile g --score w.tsv 1 2 header cols=+scoresums --score-col-nums 3-5 --out s
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gwas_prs.core.processes import run_command
from gwas_prs.methods.gwas.association import lambda_gc
from tests.conftest import common_variants_with_ids, have_programs

needs_plink2 = pytest.mark.skipif(
    not have_programs("plink2"), reason="plink2 is not installed (CI installs it)"
)


def test_lambda_gc_of_uniform_p_values_is_one() -> None:
    p = (np.arange(1, 100_001) - 0.5) / 100_000
    assert lambda_gc(p) == pytest.approx(1.0, abs=1e-3)
    assert lambda_gc([1e-300, float("nan")]) > 100


@pytest.fixture(scope="module")
def plink_inputs(chr21_22_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    import hail as hl

    from gwas_prs.methods.gwas.simulation import SimulationConfig, simulate_trait

    out = tmp_path_factory.mktemp("plink")
    mt = common_variants_with_ids(chr21_22_run)
    full = mt.checkpoint(str(out / "full.mt"))
    hl.export_plink(full, str(out / "full"), ind_id=full.s, fam_id=full.s, varid=full.varid)
    # ~1% missing calls, deterministic, to exercise mean imputation in scoring
    mt = full.add_row_index().add_col_index()
    mt = mt.annotate_entries(
        GT=hl.or_missing((mt.row_idx * 7919 + mt.col_idx * 104729) % 97 != 0, mt.GT)
    )
    mt = mt.checkpoint(str(out / "g.mt"))
    quantitative = simulate_trait(
        mt,
        SimulationConfig(
            "height", h2=0.5, n_causal=50, prevalence=None, covariate_effects=True, seed=3
        ),
        sex_field="gender",
    )
    binary = simulate_trait(
        mt, SimulationConfig("disease", h2=0.6, n_causal=50, prevalence=0.3, seed=4)
    )
    pheno = quantitative.phenotypes.merge(binary.phenotypes, on="sample_id")
    hl.export_plink(mt, str(out / "g"), ind_id=mt.s, fam_id=mt.s, varid=mt.varid)
    plink_pheno = pheno.rename(columns={"sample_id": "IID"}).assign(FID=pheno.sample_id)
    plink_pheno["disease"] = plink_pheno["disease"] + 1  # PLINK codes controls 1, cases 2
    plink_pheno[["FID", "IID", "height", "disease", "age", "sex"]].to_csv(
        out / "pheno.tsv", sep="\t", index=False
    )
    return {"mt": mt, "full": full, "pheno": pheno, "dir": out, "causal": quantitative.causal}


def _annotated(mt, pheno: pd.DataFrame):  # type: ignore[no-untyped-def]
    import hail as hl

    table = hl.Table.from_pandas(
        pheno.astype({"height": float, "disease": float, "age": float, "sex": float}),
        key="sample_id",
    )
    return mt.annotate_cols(ph=table[mt.s])


@pytest.mark.slow
@pytest.mark.reference
@needs_plink2
def test_linear_gwas_matches_plink2(plink_inputs: dict, record_property: Any) -> None:
    from gwas_prs.methods.gwas.association import TraitSpec, association_tests

    mt = _annotated(plink_inputs["full"], plink_inputs["pheno"])
    mt = mt.annotate_cols(height=mt.ph.height, age=mt.ph.age, sex=mt.ph.sex)
    results = association_tests(
        mt, [TraitSpec("height", False)], {"height": "height"}, ["age", "sex"]
    )
    ours = (
        results["height"]
        .annotate(varid=plink_inputs["full"].rows()[results["height"].key].varid)
        .to_pandas()
    )
    d = plink_inputs["dir"]
    run_command(
        [
            "plink2",
            "--bfile",
            "full",
            "--pheno",
            "pheno.tsv",
            "--pheno-name",
            "height",
            "--covar",
            "pheno.tsv",
            "--covar-name",
            "age,sex",
            "--glm",
            "hide-covar",
            "--out",
            "o",
        ],
        cwd=str(d),
    )
    theirs = pd.read_csv(d / "o.height.glm.linear", sep="\t")
    merged = ours.merge(theirs, left_on="varid", right_on="ID")
    assert len(merged) == len(ours) == 620  # common variants (MAF > 1%) of chr21+22
    # plink2 2.00a3.5 reports the minor allele as A1: orient its betas to ALT
    plink_beta = np.where(merged.A1 == merged.ALT, merged.BETA, -merged.BETA)
    r = np.corrcoef(merged.beta, plink_beta)[0, 1]
    assert r >= 0.9999  # issue 4 tolerance
    assert (merged.OBS_CT == 1126).all()
    delta = np.abs(np.log10(merged.p_value.astype(float)) - np.log10(merged.P))
    record_property("beta_pearson_r", float(r))
    record_property("max_delta_log10_p", float(delta.max()))
    assert delta.max() <= 0.01  # issue 4 tolerance on -log10 p


@pytest.mark.slow
@pytest.mark.reference
@needs_plink2
def test_scores_match_plink2(plink_inputs: dict, record_property: Any) -> None:
    import hail as hl

    from gwas_prs.methods.prs.scoring import polygenic_scores

    mt = plink_inputs["mt"]
    rows = mt.rows().select("varid").to_pandas()
    rng = np.random.default_rng(11)
    rows = rows.iloc[rng.choice(len(rows), size=400, replace=False)].sort_index()
    rows["effect_is_alt"] = rng.random(len(rows)) < 0.5
    rows["effect_allele"] = np.where(
        rows.effect_is_alt, rows.varid.str.split(":").str[3], rows.varid.str.split(":").str[2]
    )
    # small weights keep sums below 0.1, so plink2's 6 significant digits resolve 1e-6
    weights = rng.normal(0, 0.001, size=(len(rows), 3))
    weights[rng.random(weights.shape) < 0.3] = 0.0
    for k in range(3):
        rows[f"w{k}"] = weights[:, k]
    d = plink_inputs["dir"]
    rows[["varid", "effect_allele", "w0", "w1", "w2"]].to_csv(d / "w.tsv", sep="\t", index=False)
    plink = ["plink2", "--bfile", "g", "--score", "w.tsv", "1", "2", "header", "cols=+scoresums"]
    run_command([*plink, "--score-col-nums", "3-5", "--out", "s"], cwd=str(d))
    theirs = pd.read_csv(d / "s.sscore", sep="\t").set_index("IID")
    table = hl.Table.from_pandas(rows[["varid", "effect_is_alt", "w0", "w1", "w2"]], key="varid")
    w = table[mt.varid]
    scores = (
        polygenic_scores(mt, hl.array([w.w0, w.w1, w.w2]), w.effect_is_alt)
        .to_pandas()
        .set_index("s")
    )
    ours = np.vstack(scores.loc[theirs.index, "scores"].to_numpy())
    worst = max(
        float(np.abs(ours[:, k] - theirs[f"SCORE{k + 1}_SUM"].to_numpy()).max()) for k in range(3)
    )
    record_property("max_abs_score_difference", worst)
    assert worst <= 1e-6  # issue 4 tolerance


@pytest.mark.slow
@pytest.mark.reference
@needs_plink2
def test_logistic_wald_matches_plink2(plink_inputs: dict, record_property: Any) -> None:
    """plink2 --bfile full --pheno pheno.tsv --pheno-name disease --covar pheno.tsv
    --covar-name age,sex --glm no-firth hide-covar --out b   (Wald, no Firth fallback)"""
    from gwas_prs.methods.gwas.association import TraitSpec, association_tests

    mt = _annotated(plink_inputs["full"], plink_inputs["pheno"])
    mt = mt.annotate_cols(disease=mt.ph.disease, age=mt.ph.age, sex=mt.ph.sex)
    results = association_tests(
        mt, [TraitSpec("disease", True)], {"disease": "disease"}, ["age", "sex"], test="wald"
    )
    ours = (
        results["disease"]
        .annotate(varid=plink_inputs["full"].rows()[results["disease"].key].varid)
        .to_pandas()
    )
    d = plink_inputs["dir"]
    plink = ["plink2", "--bfile", "full", "--pheno", "pheno.tsv", "--pheno-name", "disease"]
    run_command(
        [
            *plink,
            "--covar",
            "pheno.tsv",
            "--covar-name",
            "age,sex",
            "--glm",
            "no-firth",
            "hide-covar",
            "--out",
            "b",
        ],
        cwd=str(d),
    )
    theirs = pd.read_csv(d / "b.disease.glm.logistic", sep="\t")
    merged = ours.merge(theirs, left_on="varid", right_on="ID")
    merged = merged[np.isfinite(merged.P.astype(float)) & merged.p_value.notna()]
    assert len(merged) > 600
    plink_beta = np.log(merged.OR.astype(float)) * np.where(merged.A1 == merged.ALT, 1, -1)
    assert np.corrcoef(merged.beta.astype(float), plink_beta)[0, 1] >= 0.9999  # issue 4 tolerance
    delta = np.abs(np.log10(merged.p_value.astype(float)) - np.log10(merged.P.astype(float)))
    record_property(
        "beta_pearson_r", float(np.corrcoef(merged.beta.astype(float), plink_beta)[0, 1])
    )
    record_property("max_delta_log10_p", float(delta.max()))
    assert delta.max() <= 0.01  # issue 4 tolerance on -log10 p
