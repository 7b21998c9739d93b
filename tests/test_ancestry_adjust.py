"""Ancestry-normalised PRS (gwas_prs.methods.prs.ancestry_adjust) against pgsc_calc.

The reference implementation is ``pgs_adjust`` of the ``pgscatalog-calc`` package
(pgsc_calc's ancestry step). Every released pgscatalog-calc (0.1–0.3.1) pins
``numpy<2``, which gwas-prs cannot install (it needs numpy>=2), so it is not in the
``test`` extras: the comparison tests run where it was installed without its
dependencies (``uv pip install --no-deps pgscatalog-calc==0.3.1``; its ancestry
module imports only numpy, pandas, scikit-learn and scipy) and are skipped
elsewhere. The other tests check the same definitions independently (statsmodels
OLS, the likelihood's stationarity, scipy's percentileofscore) and always run.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gwas_prs.core.errors import InputError
from gwas_prs.methods.prs.ancestry_adjust import (
    AncestryAdjustment,
    adjust_scores,
    fit_ancestry_adjustment,
    reference_percentiles,
)

N_PCS = 4
SCORES = ["PGS1", "PGS2"]
POPULATIONS = np.array(["AFR", "EUR", "EAS"])
#: population centres in PC space (PC units of ~0.01, as PLINK/fastPCA report them)
CENTRES = np.array([[0, 0, 0, 0], [6, -2, 1, 0], [-3, 5, -1, 2]], dtype=float)


def _draw(
    rng: np.random.Generator, n: int, prefix: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """Scores whose mean *and* SD depend on the PCs, for 3 shifted populations."""
    pop = rng.integers(0, 3, n)
    pcs = CENTRES[pop] + rng.normal(size=(n, N_PCS))
    mean1 = 10 + 0.8 * pcs[:, 0] - 0.5 * pcs[:, 1]
    sd1 = np.exp(0.2 + 0.12 * pcs[:, 0] + 0.08 * pcs[:, 1])
    mean2 = -3 + 0.3 * pcs[:, 1]
    sd2 = np.exp(-0.5 + 0.1 * pcs[:, 1])
    index = pd.Index([f"{prefix}{i}" for i in range(n)], name="IID")
    scores = pd.DataFrame(
        {
            "PGS1": mean1 + sd1 * rng.normal(size=n),
            "PGS2": mean2 + sd2 * rng.normal(size=n),
        },
        index=index,
    )
    pc_frame = pd.DataFrame(pcs * 0.01, index=index, columns=[f"PC{i + 1}" for i in range(N_PCS)])
    return scores, pc_frame, pd.Series(POPULATIONS[pop], index=index, name="pop")


@pytest.fixture(scope="module")
def data() -> dict[str, pd.DataFrame | pd.Series]:
    rng = np.random.default_rng(17)
    ref_scores, ref_pcs, ref_pop = _draw(rng, 600, "ref")
    target_scores, target_pcs, target_pop = _draw(rng, 200, "tgt")
    # pgsc_calc fits on the unrelated reference samples and applies to all of them
    unrelated = pd.Series(rng.random(600) > 0.1, index=ref_scores.index, name="Unrelated")
    # an extra PC column that the models must ignore
    ref_pcs["PC5"] = rng.normal(size=600)
    target_pcs["PC5"] = rng.normal(size=200)
    return {
        "ref_scores": ref_scores,
        "ref_pcs": ref_pcs,
        "ref_pop": ref_pop,
        "unrelated": unrelated,
        "target_scores": target_scores,
        "target_pcs": target_pcs,
        "target_pop": target_pop,
    }


def _fit(data: dict, variance_model: str = "full_likelihood") -> AncestryAdjustment:
    train = data["unrelated"]
    return fit_ancestry_adjustment(
        data["ref_scores"][train],
        data["ref_pcs"][train],
        N_PCS,
        variance_model=variance_model,
    )


# -- against pgscatalog-calc's own pgs_adjust ------------------------------------------


@pytest.mark.parametrize("variance_model", ["full_likelihood", "two_step"])
def test_z_norm_equals_pgscatalog_calc(data: dict, variance_model: str) -> None:
    tools = pytest.importorskip(
        "pgscatalog.calc.lib._ancestry.tools",
        reason="pgscatalog-calc pins numpy<2; install it with --no-deps to compare",
    )
    # pgsc_calc's layout: one frame per dataset with score, PC, label and training columns
    ref_df = pd.concat(
        [
            data["ref_scores"],
            data["ref_pcs"],
            data["ref_pop"].rename("SuperPop"),
            data["unrelated"],
        ],
        axis=1,
    )
    target_df = pd.concat(
        [data["target_scores"], data["target_pcs"], data["target_pop"].rename("MostSimilarPop")],
        axis=1,
    )
    ref_out, target_out, _ = tools.pgs_adjust(
        ref_df,
        target_df,
        SCORES,
        "SuperPop",
        "MostSimilarPop",
        use_method=["empirical", "mean", "mean+var"],
        norm2_2step=variance_model == "two_step",
        ref_train_col="Unrelated",
        n_pcs=N_PCS,
    )
    adjustment = _fit(data, variance_model)
    assert all(s.converged for s in adjustment.scores)
    ours_ref = adjust_scores(adjustment, data["ref_scores"], data["ref_pcs"])
    ours_target = adjust_scores(adjustment, data["target_scores"], data["target_pcs"])
    assert list(ours_target.columns) == [f"{s}_{z}" for s in SCORES for z in ("Z_norm1", "Z_norm2")]
    for ours, theirs in ((ours_ref, ref_out), (ours_target, target_out)):
        assert ours.index.equals(theirs.index)
        for score in SCORES:
            for z in ("Z_norm1", "Z_norm2"):
                np.testing.assert_allclose(
                    ours[f"{score}_{z}"], theirs[f"{z}|{score}"], rtol=0, atol=1e-6
                )

    # the percentiles within the most similar population ("empirical")
    train = data["unrelated"]
    for scores, groups, theirs in (
        (data["target_scores"], data["target_pop"], target_out),
        (data["ref_scores"], data["ref_pop"], ref_out),
    ):
        ours = reference_percentiles(
            data["ref_scores"][train], data["ref_pop"][train], scores, groups
        )
        for score in SCORES:
            for col in ("percentile_MostSimilarPop", "Z_MostSimilarPop"):
                np.testing.assert_allclose(
                    ours[f"{score}_{col}"], theirs[f"{col}|{score}"], rtol=0, atol=1e-9
                )


def test_constant_score_is_nan_like_pgscatalog_calc(data: dict) -> None:
    tools = pytest.importorskip(
        "pgscatalog.calc.lib._ancestry.tools",
        reason="pgscatalog-calc pins numpy<2; install it with --no-deps to compare",
    )
    ref_scores = data["ref_scores"].assign(PGS0=1.0)
    target_scores = data["target_scores"].assign(PGS0=1.0)
    _, target_out, _ = tools.pgs_adjust(
        pd.concat([ref_scores, data["ref_pcs"], data["ref_pop"].rename("SuperPop")], axis=1),
        pd.concat([target_scores, data["target_pcs"], data["target_pop"].rename("P")], axis=1),
        [*SCORES, "PGS0"],
        "SuperPop",
        "P",
        use_method=["mean", "mean+var"],
        n_pcs=N_PCS,
    )
    with pytest.warns(UserWarning, match="'PGS0' has zero variance"):
        adjustment = fit_ancestry_adjustment(ref_scores, data["ref_pcs"], N_PCS)
    ours = adjust_scores(adjustment, target_scores, data["target_pcs"])
    assert ours["PGS0_Z_norm1"].isna().all() and ours["PGS0_Z_norm2"].isna().all()
    assert target_out["Z_norm1|PGS0"].isna().all() and target_out["Z_norm2|PGS0"].isna().all()
    np.testing.assert_allclose(ours["PGS1_Z_norm2"], target_out["Z_norm2|PGS1"], atol=1e-6)


# -- the same definitions, checked independently (always run) ------------------------


def test_z_norm1_is_the_standardised_ols_residual(data: dict) -> None:
    sm = pytest.importorskip("statsmodels.api")
    train = data["unrelated"]
    ref_scores, ref_pcs = data["ref_scores"][train], data["ref_pcs"][train]
    adjustment = _fit(data)
    ours = adjust_scores(adjustment, data["target_scores"], data["target_pcs"])
    pc_cols = [f"PC{i + 1}" for i in range(N_PCS)]
    for score in SCORES:
        ols = sm.OLS(ref_scores[score], sm.add_constant(ref_pcs[pc_cols])).fit()
        sd = np.sqrt(ols.ssr / ols.nobs)  # ddof 0, as pgsc_calc
        predicted = ols.predict(sm.add_constant(data["target_pcs"][pc_cols]))
        expected = (data["target_scores"][score] - predicted) / sd
        np.testing.assert_allclose(ours[f"{score}_Z_norm1"], expected, rtol=0, atol=1e-9)
        # not merely the standardised raw score: the PCs moved the mean
        raw = (data["target_scores"][score] - ref_scores[score].mean()) / ref_scores[score].std(
            ddof=0
        )
        assert np.abs(ours[f"{score}_Z_norm1"] - raw).max() > 0.5
        assert np.abs(ours[f"{score}_Z_norm2"] - ours[f"{score}_Z_norm1"]).max() > 0.05


def _log_likelihood(theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import norm

    design = np.hstack([np.ones((len(y), 1)), x])
    k = design.shape[1]
    mean, log_var = design @ theta[:k], design @ theta[k:]
    return float(norm.logpdf(y, loc=mean, scale=np.exp(log_var / 2)).sum())


def test_z_norm2_is_the_maximum_likelihood_mean_and_variance(data: dict) -> None:
    train = data["unrelated"]
    ref_scores = data["ref_scores"][train]
    full = _fit(data)
    two_step = _fit(data, "two_step")
    raw_x = data["ref_pcs"][train][list(full.pc_columns)].to_numpy()
    x = (raw_x - raw_x.mean(axis=0)) / raw_x.std(axis=0)
    np.testing.assert_allclose(full.pc_means, raw_x.mean(axis=0), rtol=1e-12)
    for model, two in zip(full.scores, two_step.scores, strict=True):
        y = ref_scores[model.score].to_numpy() - model.offset
        theta = np.concatenate(
            [
                [model.norm2_mean.intercept],
                model.norm2_mean.coef,
                [model.norm2_log_variance.intercept],
                model.norm2_log_variance.coef,
            ]
        )
        # a stationary point of the (independently written) Gaussian log-likelihood…
        step = 1e-6
        gradient = [
            (_log_likelihood(theta + step * e, x, y) - _log_likelihood(theta - step * e, x, y))
            / (2 * step)
            for e in np.eye(len(theta))
        ]
        assert np.abs(gradient).max() < 1e-3
        # …that is better than the two-step model it starts from
        theta_two = np.concatenate(
            [
                [two.norm2_mean.intercept],
                two.norm2_mean.coef,
                [two.norm2_log_variance.intercept],
                two.norm2_log_variance.coef,
            ]
        )
        assert _log_likelihood(theta, x, y) > _log_likelihood(theta_two, x, y)
        assert two.norm2_mean == model.mean and two.norm2_log_variance == model.gamma_log_variance

    # in the reference, Z_norm2 has SD ≈ 1 in every population; Z_norm1 does not
    adjusted = adjust_scores(full, data["ref_scores"], data["ref_pcs"])
    by_pop = adjusted.groupby(data["ref_pop"]).std(ddof=0)
    assert np.abs(by_pop["PGS1_Z_norm2"] - 1).max() < 0.15
    assert np.abs(by_pop["PGS1_Z_norm1"] - 1).max() > 0.3
    in_ref = adjusted[train]
    assert abs(in_ref["PGS1_Z_norm1"].mean()) < 1e-12
    assert in_ref["PGS1_Z_norm1"].std(ddof=0) == pytest.approx(1, abs=1e-12)


def test_percentiles_match_scipy(data: dict) -> None:
    from scipy.stats import percentileofscore

    ref_scores = data["ref_scores"].round(1)  # ties, to exercise kind="rank"
    targets = data["target_scores"].round(1)
    groups = data["target_pop"].copy()
    groups.iloc[:3] = "SAS"  # no reference samples: NaN and a warning
    with pytest.warns(UserWarning, match="3 sample"):
        ours = reference_percentiles(ref_scores, data["ref_pop"], targets, groups)
    assert ours.iloc[:3].isna().all().all()
    for i in range(3, len(targets)):
        pop = groups.iloc[i]
        dist = ref_scores.loc[data["ref_pop"] == pop, "PGS1"]
        value = targets["PGS1"].iloc[i]
        assert ours["PGS1_percentile_MostSimilarPop"].iloc[i] == pytest.approx(
            percentileofscore(dist, value), abs=1e-12
        )
        assert ours["PGS1_Z_MostSimilarPop"].iloc[i] == pytest.approx(
            (value - dist.mean()) / dist.std(ddof=0), abs=1e-12
        )


# -- serialisation and errors ---------------------------------------------------------


@pytest.mark.parametrize("variance_model", ["full_likelihood", "two_step"])
def test_round_trip_is_exact(data: dict, variance_model: str) -> None:
    adjustment = _fit(data, variance_model)
    text = json.dumps(adjustment.to_dict(), allow_nan=False)
    restored = AncestryAdjustment.from_dict(json.loads(text))
    assert restored == adjustment
    pd.testing.assert_frame_equal(
        adjust_scores(restored, data["target_scores"], data["target_pcs"]),
        adjust_scores(adjustment, data["target_scores"], data["target_pcs"]),
        check_exact=True,
    )


def test_errors_are_one_line(data: dict) -> None:
    ref_scores, ref_pcs = data["ref_scores"], data["ref_pcs"]
    cases = [
        (
            lambda: fit_ancestry_adjustment(ref_scores.iloc[:5], ref_pcs, N_PCS),
            "at least 6 reference samples, got 5",
        ),
        (
            lambda: fit_ancestry_adjustment(ref_scores, ref_pcs.drop(columns="PC3"), N_PCS),
            "lack column",
        ),
        (lambda: fit_ancestry_adjustment(ref_scores, ref_pcs.iloc[1:], N_PCS), "lack 1 sample"),
        (
            lambda: fit_ancestry_adjustment(
                ref_scores, ref_pcs.mask(ref_pcs.index.to_series() == "ref3"), N_PCS
            ),
            "not finite for 1 sample",
        ),
        (
            lambda: fit_ancestry_adjustment(ref_scores, ref_pcs, N_PCS, variance_model="x"),
            "variance_model",
        ),
        (
            lambda: fit_ancestry_adjustment(ref_scores, ref_pcs.assign(PC2=0.0), N_PCS),
            "PC2 are constant",
        ),
    ]
    adjustment = fit_ancestry_adjustment(ref_scores, ref_pcs, N_PCS)
    cases += [
        (
            lambda: adjust_scores(
                adjustment, data["target_scores"], data["target_pcs"].drop(columns="PC4")
            ),
            "PC4",
        ),
        (
            lambda: adjust_scores(
                adjustment, data["target_scores"].drop(columns="PGS2"), data["target_pcs"]
            ),
            "PGS2",
        ),
        (
            lambda: AncestryAdjustment.from_dict({**adjustment.to_dict(), "format_version": 99}),
            "format_version",
        ),
    ]
    for call, match in cases:
        with pytest.raises(InputError, match=match) as info:
            call()
        assert "\n" not in str(info.value)
