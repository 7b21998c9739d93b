"""The prs stage's metrics are out of sample (issue 17): checked against statsmodels
fitted independently on the same samples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.metrics import roc_auc_score

from gwas_prs.methods.prs.evaluation import evaluate_thresholds, fit_score, score_only_metric


def _cohort(
    binary: bool, n: int = 600, seed: int = 7
) -> tuple[pd.Series, pd.DataFrame, pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    index = pd.Index([f"s{i}" for i in range(n)], name="sample_id")
    covariates = pd.DataFrame(
        {"age": rng.normal(50, 10, n), "PC1": rng.normal(size=n)}, index=index
    )
    genetic = rng.normal(size=n)
    scores = pd.DataFrame(
        {"prs_0.01": genetic + rng.normal(scale=1.5, size=n), "prs_1": rng.normal(size=n)},
        index=index,
    )
    liability = 0.02 * (covariates["age"] - 50) + 0.8 * genetic + rng.normal(size=n)
    y = (liability > 0.5).astype(float) if binary else liability
    roles = pd.Series(
        rng.choice(["train", "validation", "test"], size=n, p=[0.5, 0.25, 0.25]), index=index
    )
    return y.rename("trait"), covariates, scores, roles


@pytest.mark.parametrize("binary", [True, False])
def test_metrics_come_from_models_that_never_saw_the_evaluated_samples(binary: bool) -> None:
    y, covariates, scores, roles = _cohort(binary)
    fit_on = roles.isin(["train", "validation"])
    test = roles == "test"
    got = fit_score(
        y, covariates, scores["prs_0.01"], binary=binary, fit_on=fit_on, evaluate_on=test
    )

    # independent: statsmodels fitted on the fitting samples only, predicted on test
    score = scores["prs_0.01"]
    z = (score - score[fit_on].mean()) / score[fit_on].std(ddof=0)
    with_prs = sm.add_constant(pd.concat([covariates, z.rename("z")], axis=1))
    without = sm.add_constant(covariates)
    if binary:
        full = sm.Logit(y[fit_on], with_prs[fit_on]).fit(disp=0)
        base = sm.Logit(y[fit_on], without[fit_on]).fit(disp=0)
        expected = roc_auc_score(y[test], full.predict(with_prs[test]))
        expected_base = roc_auc_score(y[test], base.predict(without[test]))
    else:
        full = sm.OLS(y[fit_on], with_prs[fit_on]).fit()
        base = sm.OLS(y[fit_on], without[fit_on]).fit()
        total = ((y[test] - y[test].mean()) ** 2).sum()
        expected = 1 - ((y[test] - full.predict(with_prs[test])) ** 2).sum() / total
        expected_base = 1 - ((y[test] - base.predict(without[test])) ** 2).sum() / total
    assert got.metric == pytest.approx(expected, abs=1e-6)  # same fitted model, same samples
    assert got.baseline == pytest.approx(expected_base, abs=1e-6)
    assert (got.n, got.n_fit) == (int(test.sum()), int(fit_on.sum()))

    # the in-sample number (fitted on the test samples themselves) is a different one
    in_sample = fit_score(y, covariates, score, binary=binary, fit_on=test, evaluate_on=test)
    assert abs(in_sample.metric - got.metric) > 1e-4


def test_threshold_table_and_score_alone() -> None:
    y, covariates, scores, roles = _cohort(True)
    table = evaluate_thresholds(
        y,
        covariates,
        scores,
        (0.01, 1.0),
        binary=True,
        fit_on=roles == "train",
        evaluate_on=roles == "validation",
    )
    assert list(table["threshold"]) == [0.01, 1.0]
    assert list(table["n"]) == [int((roles == "validation").sum())] * 2
    # the informative score adds to covariates; the noise score adds (almost) nothing
    assert table["incremental"].iloc[0] > 0.05 > abs(table["incremental"].iloc[1])
    test = roles == "test"
    assert score_only_metric(y[test], scores.loc[test, "prs_0.01"], binary=True) == pytest.approx(
        roc_auc_score(y[test], scores.loc[test, "prs_0.01"]), abs=1e-12
    )
