"""The train stage's model choice on simulated feature tables (no run folder, no JVM):
penalised logistic vs monotone XGBoost chosen on validation, refitted on train +
validation, every model and baseline on test, the saved bundle and the report."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gwas_prs.stages.features import FeatureTable, build_feature_table
from gwas_prs.stages.train import FittedModels, TrainConfig

#: C+T thresholds of the simulated table; the PRS at 0.01 is the least noisy (the "best").
THRESHOLDS = (1e-4, 0.01, 0.5)
NOISE = {1e-4: 1.5, 0.01: 0.4, 0.5: 1.0}
#: How far below the C+T baseline (test PR-AUC) the chosen model may land on a
#: linear truth: the penalised model is the baseline's model with a little
#: shrinkage and two more noisy PRS columns, or XGBoost where it validated better.
TOLERANCE = 0.02


def simulated_table(
    n: int = 3000, seed: int = 3, split: tuple[float, float] = (0.5, 0.2), nonlinear: bool = False
) -> tuple[FeatureTable, pd.Series]:
    """A feature table whose truth is linear (on the logit scale) in the genetic value;
    the PRS columns are the genetic value plus noise. Also the genetic value (oracle).
    ``nonlinear``: the risk also jumps for older men (an interaction no linear model has)."""
    rng = np.random.default_rng(seed)
    ids = pd.Index([f"s{i:05d}" for i in range(n)], name="sample_id")
    g = rng.normal(size=n)
    age = rng.uniform(30, 75, n)
    sex = rng.integers(0, 2, n).astype(float)
    ancestry = pd.Series(np.where(rng.random(n) < 0.7, "EUR", "AFR"), index=ids)
    pcs = pd.DataFrame(
        {
            "PC1": np.where(ancestry == "EUR", -0.05, 0.1) + rng.normal(0, 0.02, n),
            "PC2": rng.normal(0, 0.02, n),
            "PC3": rng.normal(0, 0.02, n),
        },
        index=ids,
    )
    eta = -1.3 + 1.1 * g + 0.03 * (age - 52) + 0.3 * sex + 3.0 * pcs["PC1"].to_numpy()
    if nonlinear:
        eta = eta - 1.5 + 3.5 * ((age > 60) & (sex == 1))
    label = pd.Series((rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int), index=ids)
    scores = pd.DataFrame(
        {f"prs_{t:g}": 5 + 2 * (g + rng.normal(0, NOISE[t], n)) for t in THRESHOLDS}, index=ids
    )
    u = rng.random(n)
    roles = pd.Series(
        np.where(u < split[0], "train", np.where(u < split[0] + split[1], "validation", "test")),
        index=ids,
    )
    table = build_feature_table(
        trait="disease",
        scores=scores,
        roles=roles,
        label=label,
        covariates=pd.DataFrame({"age": age, "sex": sex}, index=ids),
        pcs=pcs,
        ancestry=ancestry,
        binary=True,
        best_threshold=0.01,
        sources={},
    )
    return table, pd.Series(g, index=ids)


def _config() -> TrainConfig:
    return TrainConfig(run_dir="unused", trait="disease", folds=3, n_trials=3, seed=11)


def _fit(table: FeatureTable, oracle: pd.Series | None) -> FittedModels:
    import gwas_prs.stages.train as train

    features = train.model_features(table, ("prs", "pcs", "covariates"))
    saved = train.BOOTSTRAP_RESAMPLES
    train.BOOTSTRAP_RESAMPLES = 200  # fewer resamples: fast, same code
    try:
        return train.fit_and_evaluate(
            table, _config(), "cpu", features, train.best_prs_column(table), oracle
        )
    finally:
        train.BOOTSTRAP_RESAMPLES = saved


@pytest.fixture(scope="module")
def fitted() -> tuple[FeatureTable, FittedModels]:
    """The linear truth (the penalised logistic should win)."""
    table, oracle = simulated_table()
    return table, _fit(table, oracle)


@pytest.fixture(scope="module")
def fitted_nonlinear() -> tuple[FeatureTable, FittedModels]:
    """The truth with an interaction (XGBoost should win)."""
    table, _ = simulated_table(seed=5, nonlinear=True)
    return table, _fit(table, None)


def test_every_prs_column_pc_and_covariate_is_a_model_input() -> None:
    from gwas_prs.stages.train import best_prs_column, model_features

    table, _ = simulated_table(n=200)
    # a Bayesian score next to the C+T ones (the prs stage will add such columns)
    frame = table.frame.assign(prs_ldpred2_auto=np.arange(len(table.frame), dtype=float))
    columns = [*table.schema["columns"], {"name": "prs_ldpred2_auto", "role": "prs"}]
    wide = FeatureTable(frame=frame, schema={**table.schema, "columns": columns})
    assert model_features(wide, ("prs", "pcs", "covariates")) == [
        "prs_0.0001", "prs_0.01", "prs_0.5", "PC1", "PC2", "PC3", "age", "sex", "prs_ldpred2_auto",
    ]  # fmt: skip
    assert model_features(wide, ("pcs",)) == ["PC1", "PC2", "PC3"]
    assert best_prs_column(wide) == "prs_0.01"
    named = FeatureTable(frame=frame, schema={**wide.schema, "best_prs_column": "prs_ldpred2_auto"})
    assert best_prs_column(named) == "prs_ldpred2_auto"


def test_choose_model_takes_the_best_validation_pr_auc_and_breaks_ties_to_the_simpler() -> None:
    from gwas_prs.methods.model.training import choose_model

    def values(a: float, b: float) -> dict[str, dict[str, float]]:
        return {"penalised_logistic": {"pr_auc": a}, "xgboost": {"pr_auc": b}}

    assert choose_model(values(0.60, 0.62)) == "xgboost"
    assert choose_model(values(0.63, 0.62)) == "penalised_logistic"
    assert choose_model(values(0.62, 0.62)) == "penalised_logistic"  # tie → the simpler
    assert choose_model(values(math.nan, 0.5)) == "xgboost"
    # the one-SE rule: XGBoost must be better by more than one SE of the difference
    assert choose_model(values(0.60, 0.62), se=0.03) == "penalised_logistic"
    assert choose_model(values(0.60, 0.62), se=0.01) == "xgboost"
    assert choose_model(values(0.60, 0.62), se=0.01, within_se=3) == "penalised_logistic"


def test_the_ct_baseline_replaces_a_candidate_that_is_not_better_on_validation() -> None:
    from gwas_prs.methods.model.training import prefer_baseline

    def values(candidate: float, baseline: float) -> dict[str, dict[str, float]]:
        return {"xgboost": {"pr_auc": candidate}, "covariates_pcs_prs": {"pr_auc": baseline}}

    assert prefer_baseline(values(0.62, 0.60), "xgboost") == "xgboost"
    assert prefer_baseline(values(0.60, 0.62), "xgboost") == "covariates_pcs_prs"
    assert prefer_baseline(values(0.62, 0.62), "xgboost") == "covariates_pcs_prs"  # tie
    assert prefer_baseline(values(0.62, math.nan), "xgboost") == "xgboost"
    assert prefer_baseline({"xgboost": {"pr_auc": 0.5}}, "xgboost") == "xgboost"
    # the one-SE rule: the candidate must be better by more than one SE of the difference
    assert prefer_baseline(values(0.62, 0.60), "xgboost", se=0.03) == "covariates_pcs_prs"
    assert prefer_baseline(values(0.62, 0.60), "xgboost", se=0.01) == "xgboost"


def _expected_choice(metrics: dict[str, Any]) -> str:
    """The best validation PR-AUC; the penalised logistic when XGBoost is within one SE."""
    from gwas_prs.methods.model.training import SIMPLER_WITHIN_SE

    candidates = metrics["selection"]["candidates"]
    best = max(candidates, key=lambda name: candidates[name]["pr_auc"])
    difference = metrics["selection"]["difference"]
    assert difference["xgboost_minus_penalised_logistic"] == pytest.approx(
        candidates["xgboost"]["pr_auc"] - candidates["penalised_logistic"]["pr_auc"], abs=1e-15
    )
    margin = SIMPLER_WITHIN_SE * difference["se"]
    assert 0 < margin < 0.1
    if best == "xgboost" and difference["xgboost_minus_penalised_logistic"] <= margin:
        best = "penalised_logistic"
    assert metrics["selection"]["candidate"] == best
    baseline = metrics["selection"]["baseline"]
    margin = SIMPLER_WITHIN_SE * baseline["se"]
    return baseline["name"] if baseline["pr_auc"] >= candidates[best]["pr_auc"] - margin else best


@pytest.mark.parametrize("case", ["fitted", "fitted_nonlinear"])
def test_the_chosen_model_has_the_best_validation_pr_auc(
    case: str, request: pytest.FixtureRequest
) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score, roc_auc_score

    table, result = request.getfixturevalue(case)
    metrics = result.metrics
    candidates = metrics["selection"]["candidates"]
    assert set(candidates) == {"penalised_logistic", "xgboost"}
    assert metrics["chosen"] == _expected_choice(metrics)
    assert metrics["chosen_by"] == "validation PR-AUC"
    # linear truth → a logistic model (there the C+T baseline on the best PRS is within
    # one SE of the penalised logistic on validation, so the simpler one is kept); an
    # interaction → XGBoost, by more than one SE over both
    expected = {"fitted": "covariates_pcs_prs", "fitted_nonlinear": "xgboost"}[case]
    assert metrics["chosen"] == expected
    assert [n for n, m in metrics["models"].items() if m["chosen"]] == [metrics["chosen"]]
    # the validation value of the logistic candidate, recomputed independently: its C, fitted on train
    frame, features = table.frame, metrics["features"]
    train, valid = frame[frame["split"] == "train"], frame[frame["split"] == "validation"]
    mean, sd = train[features].mean(), train[features].std(ddof=0)
    model = LogisticRegression(C=metrics["penalised_logistic"]["C"], tol=1e-12, max_iter=10_000)
    model.fit((train[features] - mean) / sd, train["label"])
    p = model.predict_proba((valid[features] - mean) / sd)[:, 1]
    assert candidates["penalised_logistic"]["pr_auc"] == pytest.approx(
        average_precision_score(valid["label"], p), abs=1e-6
    )
    assert candidates["penalised_logistic"]["roc_auc"] == pytest.approx(
        roc_auc_score(valid["label"], p), abs=1e-6
    )


def test_the_chosen_model_is_as_good_as_the_ct_baseline_on_a_nonlinear_truth(
    fitted_nonlinear: tuple[FeatureTable, FittedModels],
) -> None:
    _, result = fitted_nonlinear
    models = result.metrics["models"]
    chosen = models[result.metrics["chosen"]]["pr_auc"]["estimate"]
    assert chosen >= models["covariates_pcs_prs"]["pr_auc"]["estimate"] - TOLERANCE
    assert result.metrics["oracle"] is None and result.metrics["warnings"] == []


def test_the_chosen_model_is_as_good_as_the_ct_baseline_on_a_linear_truth(
    fitted: tuple[FeatureTable, FittedModels],
) -> None:
    _, result = fitted
    metrics = result.metrics
    models = metrics["models"]
    assert list(models) == [
        "covariates", "covariates_pcs", "covariates_pcs_prs", "penalised_logistic", "xgboost",
    ]  # fmt: skip
    chosen = models[metrics["chosen"]]["pr_auc"]["estimate"]
    baseline = models["covariates_pcs_prs"]["pr_auc"]["estimate"]
    assert chosen >= baseline - TOLERANCE
    assert chosen > models["covariates"]["pr_auc"]["estimate"] + 0.1  # the PRS matters here
    # every model and the oracle on test, with CIs; paired differences against both baselines
    for m in [*models.values(), metrics["oracle"]]:
        for name in ("roc_auc", "pr_auc"):
            assert m[name]["ci_low"] <= m[name]["estimate"] <= m[name]["ci_high"]
    for name in ("covariates_pcs", "covariates_pcs_prs", "penalised_logistic", "xgboost"):
        assert f"{name}_vs_covariates" in metrics["incremental"]
    for name in ("penalised_logistic", "xgboost"):
        delta = metrics["incremental"][f"{name}_vs_covariates_pcs_prs"]["delta_pr_auc"]
        expected = models[name]["pr_auc"]["estimate"] - baseline
        assert delta["estimate"] == pytest.approx(expected, abs=1e-12)
    versus = metrics["selection"]["test_vs_baselines"]
    assert set(versus) == {"covariates", "covariates_pcs_prs"}
    if metrics["chosen"] == "covariates_pcs_prs":
        assert versus["covariates_pcs_prs"] == {"same_model": True}
    below = versus["covariates_pcs_prs"].get("delta_pr_auc", {"estimate": 0.0})["estimate"] < 0
    assert any("lower test PR-AUC" in w for w in metrics["warnings"]) == below
    # the final models are refitted on train + validation; XGBoost with the early-stopped trees
    assert {m["fitted_on"] for m in models.values()} == {"train + validation"}
    assert result.xgboost.booster.num_boosted_rounds() == metrics["xgboost"]["n_trees"]
    assert metrics["xgboost"]["monotone_increasing"] == ["prs_0.0001", "prs_0.01", "prs_0.5"]
    assert json.loads(json.dumps(metrics)) == metrics  # JSON-able as written


def test_penalised_logistic_equals_scikit_learn_with_the_same_c() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from gwas_prs.methods.model.training import C_GRID, fit_penalised_logistic, refit_logistic

    rng = np.random.default_rng(8)
    x = pd.DataFrame(
        {
            "age": rng.uniform(30, 75, 400),
            "prs": rng.normal(size=400),
            "pc": rng.normal(0, 0.02, 400),
        }
    )
    eta = -3 + 0.04 * x["age"] + 0.7 * x["prs"]
    y = (rng.random(400) < 1 / (1 + np.exp(-eta))).astype(int).to_numpy()
    new = pd.DataFrame(
        {"age": rng.uniform(30, 75, 50), "prs": rng.normal(size=50), "pc": rng.normal(0, 0.02, 50)}
    )
    fit = fit_penalised_logistic("m", "m", x, y, folds=4, seed=5)
    assert fit.model.penalty == "l2" and fit.model.C == fit.C and fit.C in C_GRID
    # scikit-learn on its own: StandardScaler (ddof 0) + LogisticRegression(C), another solver
    reference = make_pipeline(
        StandardScaler(), LogisticRegression(C=fit.C, solver="newton-cholesky", tol=1e-12)
    ).fit(x, y)
    assert np.max(np.abs(fit.probability(new) - reference.predict_proba(new)[:, 1])) < 1e-6
    # C is the grid value with the lowest held-out log loss in the same stratified folds
    folds = StratifiedKFold(n_splits=4, shuffle=True, random_state=5).split(x, y)
    splits = list(folds)
    losses = {}
    for c in C_GRID:
        held = []
        for fit_rows, held_rows in splits:
            model = make_pipeline(StandardScaler(), LogisticRegression(C=c, tol=1e-10))
            model.fit(x.iloc[fit_rows], y[fit_rows])
            held.append(log_loss(y[held_rows], model.predict_proba(x.iloc[held_rows])[:, 1]))
        losses[c] = float(np.mean(held))
    best_c = min(losses, key=lambda c: (losses[c], c))
    assert best_c == fit.C
    for row in fit.cv:
        assert row["cv_log_loss"] == pytest.approx(losses[row["C"]], abs=1e-6)
    # the refit on more rows keeps C and the features
    both = pd.concat([x, new])
    y_both = np.r_[y, (rng.random(50) < 0.3).astype(int)]
    again = refit_logistic(fit.model, both, y_both)
    assert again.C == fit.C and again.features == ["age", "prs", "pc"]
    direct = make_pipeline(
        StandardScaler(), LogisticRegression(C=fit.C, solver="newton-cholesky", tol=1e-12)
    ).fit(both, y_both)
    assert np.max(np.abs(again.probability(new) - direct.predict_proba(new)[:, 1])) < 1e-6


def test_xgboost_never_lowers_the_risk_when_a_prs_rises() -> None:
    from gwas_prs.methods.model.training import fit_xgboost, refit_xgboost

    rng = np.random.default_rng(21)
    n = 900
    x = pd.DataFrame(
        {"prs_a": rng.normal(size=n), "prs_b": rng.normal(size=n), "age": rng.uniform(30, 75, n)}
    )
    # a U-shaped effect of prs_a: an unconstrained model follows it down and up
    eta = -1 + 0.8 * (x["prs_a"] ** 2) + 0.6 * x["prs_b"] + 0.02 * (x["age"] - 50)
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int).to_numpy()
    args = (x[:600], y[:600], x[600:], y[600:])
    constrained = fit_xgboost(*args, folds=3, n_trials=2, seed=1, increasing=["prs_a", "prs_b"])
    free = fit_xgboost(*args, folds=3, n_trials=2, seed=1)
    assert constrained.params["monotone_constraints"] == "(1,1,0)"
    refit = refit_xgboost(constrained, x, y)
    assert refit.params["monotone_constraints"] == "(1,1,0)"
    grid = np.linspace(-3, 3, 61)
    rows = x.sample(40, random_state=2)
    worst_free = 0.0
    for feature in ("prs_a", "prs_b"):
        for _, row in rows.iterrows():
            sweep = pd.DataFrame([row] * len(grid)).assign(**{feature: grid})
            for model in (constrained, refit):
                steps = np.diff(model.probability(sweep))
                assert steps.min() >= -1e-12, feature
            worst_free = min(worst_free, float(np.diff(free.probability(sweep)).min()))
    assert worst_free < -0.01  # without the constraint the check would fail


def _write_bundle(folder: Path, table: FeatureTable, result: FittedModels, chosen: str) -> None:
    """The model folder train writes, with placeholder PRS weights, loadings and distribution."""
    from dataclasses import replace

    from gwas_prs.methods.model.artifacts import model_files
    from gwas_prs.stages.train import model_schema

    folder.mkdir(exist_ok=True)
    metrics = {**result.metrics, "chosen": chosen}
    schema = model_schema(
        table,
        replace(result, metrics=metrics),
        result.metrics["features"],
        ("prs", "pcs", "covariates"),
        "prs_0.01",
        reference_genome="GRCh37",
        pca_variants=2,
        ancestry=None,
    )
    files = model_files(
        schema=schema,
        booster=result.xgboost.booster,
        logistic=result.logistic,
        baselines=result.baselines,
    )
    for name, content in files.items():
        (folder / name).write_bytes(content)
    weights = pd.DataFrame(
        {"chromosome": ["1", "1"], "position": [100, 200], "ref": ["A", "C"], "alt": ["G", "T"],
         "effect_is_alt": [True, True], "effect_af": [0.2, 0.4]}
    )  # fmt: skip
    for t in THRESHOLDS:
        weights[f"weight_{t:g}"] = [0.1, -0.2]
    weights.to_csv(folder / "prs_weights.tsv", sep="\t", index=False)
    loadings = pd.DataFrame(
        {"contig": ["1", "1"], "position": [100, 200], "ref": ["A", "C"], "alt": ["G", "T"],
         "pca_af": [0.2, 0.4], "loading_1": [0.1, 0.2], "loading_2": [0.3, 0.1],
         "loading_3": [0.0, 0.5]}
    )  # fmt: skip
    loadings.to_csv(folder / "pca_loadings.tsv.gz", sep="\t", index=False)
    pd.DataFrame({"prs": [1.0, 2.0, 3.0]}).to_csv(
        folder / "prs_distribution.tsv", sep="\t", index=False
    )


def test_the_saved_bundle_predicts_what_train_evaluated(
    fitted: tuple[FeatureTable, FittedModels], tmp_path: Path
) -> None:
    from gwas_prs.core.errors import InputError
    from gwas_prs.methods.model.artifacts import LOGISTIC_MODEL, load_model_bundle

    table, result = fitted
    test = result.test
    for chosen in ("penalised_logistic", "xgboost"):
        folder = tmp_path / chosen
        _write_bundle(folder, table, result, chosen)
        bundle = load_model_bundle(str(folder))
        assert bundle.chosen == chosen
        # predict builds a frame of the model's features (no split/label columns)
        features = test[bundle.features]
        p = bundle.predict_probability(features)
        assert np.max(np.abs(p - result.probabilities[chosen])) < 1e-12
        every = bundle.model_probabilities(features)
        assert set(every) == set(result.probabilities)
        for name, values in every.items():
            assert np.max(np.abs(values - result.probabilities[name])) < 1e-12, name
        assert bundle.covariates == ["age", "sex"]
    (tmp_path / "penalised_logistic" / LOGISTIC_MODEL).unlink()
    with pytest.raises(InputError, match=f"missing {LOGISTIC_MODEL}, the chosen model"):
        load_model_bundle(str(tmp_path / "penalised_logistic"))
    # an XGBoost-chosen folder without the logistic file (written before the choice) still loads
    (tmp_path / "xgboost" / LOGISTIC_MODEL).unlink()
    assert load_model_bundle(str(tmp_path / "xgboost")).logistic is None


def test_the_report_shows_the_choice_and_the_per_ancestry_table(
    fitted: tuple[FeatureTable, FittedModels], tmp_path: Path
) -> None:
    from gwas_prs.reports.model import ancestry_table_html, summary_html
    from gwas_prs.stages.train import write_report

    _, result = fitted
    metrics: dict[str, Any] = result.metrics
    by_group = metrics["by_ancestry"]
    assert set(by_group) == {"AFR", "EUR"}
    table = ancestry_table_html(metrics)
    assert "<th>ancestry</th><th>n</th><th>cases</th><th>model</th>" in table
    for group, values in by_group.items():
        assert f"<td rowspan='6'>{group}</td><td rowspan='6'>{values['n']}</td>" in table
        assert f"<td rowspan='6'>{values['cases']}</td>" in table
        chosen = values["models"][metrics["chosen"]]
        for name in ("roc_auc", "pr_auc"):
            m = chosen[name]
            assert f"{m['estimate']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]" in table
    skipped = ancestry_table_html({**metrics, "ancestry_groups_skipped": {"SAS": "3 test samples"}})
    assert "<td>SAS</td><td colspan='5'>not evaluated (3 test samples)</td>" in skipped
    html = summary_html(metrics)
    assert "By ancestry group (test set)" in html and table in html
    assert "Chosen model (used by predict)" in html and "validation PR-AUC" in html
    assert "<td>prs_0.01</td>" in html  # the penalised model's coefficients
    path = tmp_path / "report.html"
    write_report("disease", metrics, result.y_test, result.scores, result.importance, str(path))
    text = path.read_text()
    assert "By ancestry group (test set)" in text and "rowspan" in text


def test_a_bundle_whose_chosen_model_is_the_ct_baseline_predicts_with_it(
    fitted: tuple[FeatureTable, FittedModels],
) -> None:
    """predict's ModelBundle: with ``chosen_model = covariates_pcs_prs`` the probability
    is the baseline's (exactly), and model_files accepts that choice."""
    from gwas_prs.methods.model.artifacts import ModelBundle, model_files

    _, result = fitted
    schema = {"chosen_model": "covariates_pcs_prs", "logit_offset": result.xgboost.logit_offset}
    files = model_files(
        schema=schema, booster=result.xgboost.booster, logistic=result.logistic,
        baselines=result.baselines,
    )  # fmt: skip
    assert json.loads(files["feature_schema.json"])["chosen_model"] == "covariates_pcs_prs"
    bundle = ModelBundle(
        folder="", schema=schema, booster=result.xgboost.booster, baselines=result.baselines,
        prs_weights=pd.DataFrame(), pca_loadings=pd.DataFrame(), prs_distribution=np.zeros(1),
        ancestry_reference=None, logistic=result.logistic,
    )  # fmt: skip
    np.testing.assert_array_equal(
        bundle.predict_probability(result.test), result.probabilities["covariates_pcs_prs"]
    )
    with pytest.raises(ValueError, match="chosen_model must be one of"):
        model_files(
            schema={**schema, "chosen_model": "oracle"}, booster=result.xgboost.booster,
            logistic=result.logistic, baselines=result.baselines,
        )  # fmt: skip
