"""Metrics, calibration, baselines, XGBoost search and ancestry refit, checked against
independent implementations (scipy, scikit-learn, statsmodels); no Hail."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gwas_prs.methods.model import evaluation as ev
from tests.cli_helpers import invoke


def _data(n: int = 300, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    score = rng.normal(size=n) + 0.8 * y
    score = np.round(score, 1)  # ties on purpose
    return y.astype(int), score


def test_roc_auc_is_the_mann_whitney_statistic() -> None:
    from scipy.stats import mannwhitneyu
    from sklearn.metrics import roc_auc_score

    y, score = _data()
    u = mannwhitneyu(score[y == 1], score[y == 0]).statistic
    expected = u / ((y == 1).sum() * (y == 0).sum())
    assert ev.roc_auc(y, score) == pytest.approx(expected, abs=1e-12)  # same statistic
    assert ev.roc_auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert np.isnan(ev.roc_auc(np.zeros(5), np.arange(5.0)))


def test_average_precision_matches_scikit_learn_with_ties() -> None:
    from sklearn.metrics import average_precision_score

    for seed in (1, 2, 3):
        y, score = _data(seed=seed)
        expected = average_precision_score(y, score)
        assert ev.average_precision(y, score) == pytest.approx(expected, abs=1e-12)


def test_bootstrap_ci_is_seeded_and_paired() -> None:
    y, score = _data()
    idx = ev.bootstrap_indices(y, 500, seed=7)
    again = ev.bootstrap_indices(y, 500, seed=7)
    assert np.array_equal(idx, again)
    ci = ev.estimate_with_ci(ev.roc_auc, y, score, idx)
    assert ci["ci_low"] < ci["estimate"] < ci["ci_high"]
    same = ev.paired_difference(ev.roc_auc, y, score, score, idx)
    assert same == {"estimate": 0.0, "ci_low": 0.0, "ci_high": 0.0}


def test_calibration_intercept_and_slope_match_statsmodels() -> None:
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.9, 400)
    y = (rng.random(400) < np.clip(p * 1.2, 0, 1)).astype(float)
    result = ev.calibration(y, p)
    logit = np.log(p / (1 - p))
    # statsmodels GLM (binomial, logit link), offset = logit(p): calibration-in-the-large
    glm = sm.GLM(y, np.ones((400, 1)), family=sm.families.Binomial(), offset=logit).fit()
    assert result["intercept"] == pytest.approx(glm.params[0], abs=1e-8)
    slope = sm.Logit(y, sm.add_constant(logit)).fit(disp=0).params[1]
    assert result["slope"] == pytest.approx(slope, abs=1e-8)
    assert result["brier"] == pytest.approx(np.mean((p - y) ** 2), abs=1e-15)
    assert sum(b["n"] for b in result["bins"]) == 400 and len(result["bins"]) == 10


def test_logistic_baseline_matches_statsmodels_logit() -> None:
    import statsmodels.api as sm

    from gwas_prs.methods.model.training import fit_logistic_baseline

    rng = np.random.default_rng(5)
    x = pd.DataFrame({"age": rng.uniform(30, 75, 300), "prs": rng.normal(size=300)})
    eta = -3 + 0.04 * x["age"] + 0.9 * x["prs"]
    y = (rng.random(300) < 1 / (1 + np.exp(-eta))).astype(int).to_numpy()
    baseline = fit_logistic_baseline("m", "m", x, y)
    reference = sm.Logit(y, sm.add_constant(x.to_numpy())).fit(disp=0)
    expected = reference.predict(sm.add_constant(x.to_numpy()))
    # unpenalised ML on standardised inputs = the same model; lbfgs converges to ~1e-7
    assert np.max(np.abs(baseline.probability(x) - expected)) < 1e-5
    with_missing = x.copy()
    with_missing.loc[0, "age"] = np.nan  # missing → the train mean
    assert np.isfinite(baseline.probability(with_missing)).all()


def test_xgboost_search_is_deterministic() -> None:
    from gwas_prs.methods.model.training import fit_xgboost

    rng = np.random.default_rng(11)
    x = pd.DataFrame(rng.normal(size=(240, 4)), columns=["a", "b", "c", "d"])
    y = (rng.random(240) < 1 / (1 + np.exp(-(x["a"] - 1)))).astype(int).to_numpy()
    fits = [
        fit_xgboost(x[:160], y[:160], x[160:], y[160:], folds=3, n_trials=3, seed=4)
        for _ in range(2)
    ]
    assert fits[0].trials == fits[1].trials
    p0, p1 = (f.probability(x[160:]) for f in fits)
    assert np.array_equal(p0, p1)
    # the prior correction undoes scale_pos_weight: mean risk close to the prevalence
    assert fits[0].scale_pos_weight == pytest.approx((y[:160] == 0).sum() / y[:160].sum())
    assert abs(p0.mean() - y[160:].mean()) < 0.1


def test_ancestry_refit_reproduces_the_qc_forest() -> None:
    """assign_groups on new samples = what QC's assign_ancestry gives unlabelled samples."""
    from gwas_prs.methods.ancestry.structure import assign_ancestry
    from gwas_prs.methods.model.artifacts import assign_groups

    rng = np.random.default_rng(2)
    centres = {"AFR": (0.1, 0.0), "EUR": (-0.05, 0.08), "EAS": (-0.05, -0.08)}
    rows, labels = [], []
    for group, (a, b) in centres.items():
        rows.append(rng.normal([a, b, 0], 0.02, size=(30, 3)))
        labels += [group] * 30
    new = rng.normal(0, 0.06, size=(15, 3))
    pcs = pd.DataFrame(
        np.vstack([*rows, new]),
        columns=["PC1", "PC2", "PC3"],
        index=[f"s{i}" for i in range(105)],
    )
    label = pd.Series(labels + [None] * 15, index=pcs.index)
    qc = assign_ancestry(pcs, label, label_field="pop", n_pcs=2, seed=9)
    assert qc is not None
    reference = pcs.iloc[:90, :2].assign(label=labels).reset_index(drop=True)
    ours = assign_groups(reference, pcs.iloc[90:], seed=9, min_probability=0.75)
    expected = qc.assignments.iloc[90:]
    assert list(ours["ancestry"]) == list(expected["assigned"])
    assert np.allclose(ours["ancestry_probability"], expected["probability"], atol=1e-12)


def test_train_device_cuda_without_gpu_is_a_one_line_setup_error(no_jvm: None) -> None:
    from gwas_prs.methods.model.training import _gpu_present

    if _gpu_present()[0]:
        pytest.skip("this machine has a GPU")
    code, _, errors = invoke("train", "no-such-run", "--trait", "disease", "--device", "cuda")
    assert code == 3
    assert errors.count("\n") == 1 and "--device cuda:" in errors and "--device cpu" in errors


def test_train_and_predict_refuse_bad_options(no_jvm: None, tmp_path: object) -> None:
    code, _, errors = invoke("train", "r", "--trait", "t", "--features", "prs,height")
    assert code == 2 and "--features prs,height: choose from prs,pcs,covariates" in errors
    code, _, errors = invoke("train", "r", "--trait", "t", "--folds", "1")
    assert code == 2 and "--folds 1" in errors
    code, _, errors = invoke(
        "predict", "--model", "nowhere", "--vcf", "x.vcf", "--out", f"{tmp_path}/p.tsv"
    )
    assert code == 2 and "nowhere: model folder not found" in errors
