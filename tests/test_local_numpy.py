"""The numpy paths of Hail local mode against their definitions and the Hail paths.

- LD pruning (gwas_prs.methods.ancestry.prune_local) against a plain one-variant-at-a-time loop and
  against hl.ld_prune itself;
- allele frequencies per population against the Hail aggregation;
- HWE PCA and KING against hl.hwe_normalized_pca and hl.king;
- logistic-regression Wald tests against hl.logistic_regression_rows.

The Hail-backed tests use the bundled chr21+22 cohort with its sample IDs
replaced by a permutation, so that the column order is not the sorted order of
the IDs (``mt.cols()`` is sorted by ID; a .bed export is in column order).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gwas_prs.methods.ancestry.prune_local import prune_rows, standardised_genotypes


def _shuffled_ids(mt: Any) -> Any:
    """The same MatrixTable with IDs whose sorted order differs from the column order."""
    import hail as hl

    n = mt.count_cols()
    mt = mt.add_col_index("_c")
    mt = mt.key_cols_by(s=hl.format("S%05d", (mt._c * 389 + 17) % n)).drop("_c")
    assert mt.s.take(3) != sorted(mt.s.take(3)) or mt.s.take(3)[0] != "S00000"
    return mt


def _pack_bed(g: np.ndarray) -> np.ndarray:
    """ALT counts (-1 missing) → .bed bytes as hl.export_plink writes them (A1 = ALT)."""
    code = np.select([g == 2, g == -1, g == 1], [0, 1, 2], default=3).astype(np.uint8)
    n_variants, n_samples = g.shape
    padded = np.zeros((n_variants, (n_samples + 3) // 4 * 4), dtype=np.uint8)
    padded[:, :n_samples] = code
    quads = padded.reshape(n_variants, -1, 4)
    return (quads[..., 0] | quads[..., 1] << 2 | quads[..., 2] << 4 | quads[..., 3] << 6).astype(
        np.uint8
    )


def _reference_prune(g: np.ndarray, contigs: list[str], pos: np.ndarray, r2: float, window: int):
    """Hail's LocalLDPrune loop, one variant at a time (the definition being reproduced)."""
    kept: list[int] = []
    x, usable = standardised_genotypes(g)
    for i in range(len(pos)):
        if not usable[i]:
            continue
        keep = True
        for j in reversed(kept):
            if contigs[j] != contigs[i] or pos[i] - pos[j] > window:
                break
            if float(x[i] @ x[j]) ** 2 >= r2:
                keep = False
                break
        if keep:
            kept.append(i)
    return kept


def test_blocks_follow_the_one_at_a_time_rule() -> None:
    rng = np.random.default_rng(7)
    n_samples, n = 37, 700
    # LD: each variant copies its predecessor's genotypes with some noise
    g = np.empty((n, n_samples), dtype=np.int8)
    g[0] = rng.integers(0, 3, n_samples)
    for i in range(1, n):
        fresh = rng.integers(0, 3, n_samples)
        g[i] = np.where(rng.random(n_samples) < 0.7, g[i - 1], fresh)
    g[rng.random(g.shape) < 0.03] = -1  # missing calls
    g[10] = 1  # all het: skipped, as in Hail
    g[11] = 0  # monomorphic: skipped
    g[12] = -1  # all missing: skipped
    contigs = ["1"] * 400 + ["2"] * 300
    pos = np.concatenate(
        [np.sort(rng.integers(1, 5_000, 400)), np.sort(rng.integers(1, 5_000, 300))]
    )
    for r2, window, block in ((0.2, 500, 16), (0.5, 2_000, 128), (0.1, 100, 7)):
        got = prune_rows(
            _pack_bed(g), n_samples, np.array(contigs, dtype=object), pos,
            r2=r2, window_bp=window, block=block,
        )  # fmt: skip
        expected = _reference_prune(g, contigs, pos, r2, window)
        assert np.flatnonzero(got).tolist() == expected
        assert not got[[10, 11, 12]].any()


@pytest.mark.slow
def test_numpy_pruning_equals_hail_ld_prune(chr21_22_run: Path) -> None:
    """hl.ld_prune on one partition (no boundary pairs) keeps exactly the numpy set."""
    import hail as hl

    from gwas_prs.methods.ancestry.structure import (
        genotypes_only,
        ld_pruned,
        local_pruned_rows,
        pruning_candidates,
    )

    bronze = hl.read_matrix_table(str(chr21_22_run / "bronze" / "genotypes.mt"))
    candidates = pruning_candidates(bronze, min_maf=0.05, min_call_rate=0.95)
    candidates = candidates.naive_coalesce(1).add_row_index("row")
    candidates = candidates.checkpoint(hl.utils.new_temp_file("candidates", "mt"))
    ours, n_candidates = local_pruned_rows(candidates, r2=0.2, window_bp=500_000)
    kept = hl.ld_prune(candidates.GT, r2=0.2, bp_window_size=500_000)
    theirs = candidates.filter_rows(hl.is_defined(kept[candidates.row_key])).row.collect()
    theirs_rows = {int(r.row) for r in theirs}
    assert 200 < len(ours) < candidates.count_rows() == n_candidates
    assert ours == theirs_rows  # tolerance: none, the same set of variants

    # qc's path: ld_pruned on the unevaluated candidate filter of bronze (no checkpoint)
    lazy = pruning_candidates(bronze, min_maf=0.05, min_call_rate=0.95)
    expected = [(r.locus, r.alleles) for r in sorted(theirs, key=lambda r: r.row)]
    for source in (None, genotypes_only(bronze)):  # kept rows taken from either
        pruned, n_lazy = ld_pruned(lazy, r2=0.2, window_bp=500_000, scratch="unused", source=source)
        assert n_lazy == n_candidates
        assert [(r.locus, r.alleles) for r in pruned.rows().collect()] == expected


@pytest.mark.slow
def test_numpy_frequencies_equal_the_hail_aggregation(chr21_22_run: Path) -> None:
    import hail as hl
    import pandas as pd

    from gwas_prs.methods.qc import frequencies

    mt = _shuffled_ids(hl.read_matrix_table(str(chr21_22_run / "bronze" / "genotypes.mt")))
    mt = mt.filter_rows(mt.locus.position % 7 == 0)  # a few hundred variants are enough
    # some missing calls, and one sample without a population
    mt = mt.annotate_entries(GT=hl.or_missing(hl.rand_bool(0.98, seed=3), mt.GT))
    first = mt.s.take(1)[0]
    mt = mt.annotate_cols(pop=hl.or_missing(mt.s != first, mt.pop))
    mt = mt.checkpoint(hl.utils.new_temp_file("freq", "mt"))
    groupings = ["super_pop", "pop"]
    hail_frame = frequencies.frequencies_frame(
        frequencies.frequencies_table(mt, groupings),
        groupings,
        frequencies.group_sizes(mt, groupings),
        mt.count_cols(),
    )
    numpy_frame = frequencies.local_frequencies_frame(mt, groupings)
    assert len(numpy_frame) == len(hail_frame) > 1000
    for column in ("AC", "AN", "n_samples", "position"):
        assert (numpy_frame[column].to_numpy() == hail_frame[column].to_numpy()).all(), column
    for column in ("contig", "ref", "alt", "grouping", "group"):
        assert numpy_frame[column].tolist() == hail_frame[column].tolist(), column
    assert numpy_frame["rsid"].fillna("").tolist() == hail_frame["rsid"].fillna("").tolist()
    pd.testing.assert_series_equal(numpy_frame["AF"], hail_frame["AF"])  # exact: same ratios


@pytest.mark.slow
def test_numpy_logistic_wald_equals_hail(chr21_22_run: Path, tmp_path: Path) -> None:
    """local_wald_table against hl.logistic_regression_rows(test='wald') on the same data:
    seeded binary trait, two covariates (one missing for some samples), 2% missing calls."""
    import hail as hl

    from gwas_prs.methods.gwas.association import TraitSpec, _hail_logistic_table, local_wald_table

    mt = _shuffled_ids(hl.read_matrix_table(str(chr21_22_run / "bronze" / "genotypes.mt")))
    mt = mt.filter_rows(mt.locus.position % 5 == 0)  # ~450 variants
    mt = mt.annotate_entries(GT=hl.or_missing(hl.rand_bool(0.98, seed=11), mt.GT))
    mt = mt.annotate_cols(
        age=hl.rand_norm(50, 10, seed=1),
        sex=hl.or_missing(hl.rand_bool(0.97, seed=2), hl.float64(hl.rand_bool(0.5, seed=3))),
    )
    liability = hl.agg.sum(hl.or_else(mt.GT.n_alt_alleles(), 0) * hl.rand_norm(0, 0.02, seed=4))
    mt = mt.annotate_cols(y=hl.float64(liability + 0.03 * (mt.age - 50) > 0.3))
    mt = mt.checkpoint(hl.utils.new_temp_file("logistic", "mt"))
    trait = TraitSpec("y", binary=True)
    ours = local_wald_table(mt, trait, "y", ["age", "sex"]).collect()
    theirs = _hail_logistic_table(mt, trait, "y", ["age", "sex"], "wald").collect()
    assert len(ours) == len(theirs) > 300
    assert [(r.locus, r.alleles) for r in ours] == [(r.locus, r.alleles) for r in theirs]
    assert [r._ok for r in ours] == [r._ok for r in theirs]
    good = [(a, b) for a, b in zip(ours, theirs, strict=True) if b._ok]
    assert len(good) > 300 and ours[0].n == theirs[0].n
    beta = np.array([[a.beta, b.beta] for a, b in good])
    se = np.array([[a.standard_error, b.standard_error] for a, b in good])
    p = np.array([[a.p_value, b.p_value] for a, b in good])
    # tolerance: both stop when a Newton step is < 1e-6, so the fits agree to ~1e-7
    assert np.abs(beta[:, 0] - beta[:, 1]).max() < 1e-6
    assert np.abs(se[:, 0] - se[:, 1]).max() < 1e-6
    assert np.abs(np.log10(p[:, 0]) - np.log10(p[:, 1])).max() < 1e-5

    # the gwas stage reads the .bed qc kept instead of exporting the tested samples
    from gwas_prs.formats.plink_bed import export_bed
    from gwas_prs.formats.silver_bed import open_silver_bed

    folder = tmp_path / "silver_bed"
    folder.mkdir()
    export_bed(mt, str(folder / "genotypes"), varid=hl.str("."))
    silver = open_silver_bed(str(folder), mt.count_cols(), mt.count_rows())
    from_silver = local_wald_table(mt, trait, "y", ["age", "sex"], silver).collect()
    assert [(r.locus, r.alleles, r.n, r._ok) for r in from_silver] == [
        (r.locus, r.alleles, r.n, r._ok) for r in ours
    ]
    for field in ("beta", "standard_error", "p_value", "alt_af"):
        a = np.array([r[field] for r in from_silver], dtype=float)
        b = np.array([r[field] for r in ours], dtype=float)
        # tolerance: the same genotypes in the same sample order; the Newton fits
        # may differ in the last bits (BLAS blocking), nothing more
        assert np.allclose(a, b, rtol=1e-9, atol=0, equal_nan=True), field


@pytest.mark.slow
def test_numpy_pca_and_king_equal_hail(chr21_22_run: Path) -> None:
    """Scores per sample (up to sign) and eigenvalues vs hl.hwe_normalized_pca; kinship
    per pair vs hl.king; sample IDs out of sorted order."""
    import hail as hl

    from gwas_prs.methods.ancestry.pca_local import local_hwe_pca
    from gwas_prs.methods.ancestry.structure import pruning_candidates
    from gwas_prs.methods.qc.sample_qc import local_king_pairs

    bronze = _shuffled_ids(hl.read_matrix_table(str(chr21_22_run / "bronze" / "genotypes.mt")))
    mt = pruning_candidates(bronze, min_maf=0.05, min_call_rate=0.95)
    mt = mt.filter_rows(mt.locus.position % 3 == 0)
    mt = mt.checkpoint(hl.utils.new_temp_file("pca", "mt"))
    values, _, scores, _, _ = local_hwe_pca(mt, 4)
    hail_values, hail_scores, _ = hl.hwe_normalized_pca(mt.GT, k=4)
    # tolerance: the same matrix; Lanczos vs exact eigendecomposition, ~1e-10 apart
    assert np.allclose(values, hail_values, rtol=1e-8)
    ours = {r.s: np.array(r.scores) for r in scores.collect()}
    theirs = {r.s: np.array(r.scores) for r in hail_scores.collect()}
    a = np.array([ours[s] for s in sorted(ours)])
    b = np.array([theirs[s] for s in sorted(ours)])
    signs = np.sign((a * b).sum(axis=0))
    assert np.abs(a * signs - b).max() < 1e-6

    pairs = local_king_pairs(mt, 0.02)
    king = hl.king(mt.GT)
    king = king.filter_entries((king.s_1 < king.s) & (king.phi > 0.02)).entries()
    expected = {(r.s_1, r.s): r.phi for r in king.collect()}
    found = {
        (min(i, j), max(i, j)): k for i, j, k in zip(pairs.i, pairs.j, pairs.kinship, strict=True)
    }
    assert len(expected) > 10 and set(found) == set(expected)
    assert max(abs(found[k] - expected[k]) for k in expected) < 1e-9


@pytest.mark.slow
def test_randomized_pca_equals_exact_on_the_top_pcs(chr21_22_run: Path) -> None:
    """The randomized decomposition (``plink2 --pca approx``'s approach, used above
    5,000 samples) against the exact one on the same matrix: 1,126 samples of five
    super-populations, so PCs 1-4 carry structure and the rest is noise."""
    import hail as hl

    from gwas_prs.methods.ancestry.pca_local import local_hwe_pca
    from gwas_prs.methods.ancestry.structure import pruning_candidates

    bronze = hl.read_matrix_table(str(chr21_22_run / "bronze" / "genotypes.mt"))
    mt = pruning_candidates(bronze, min_maf=0.05, min_call_rate=0.95)
    mt = mt.checkpoint(hl.utils.new_temp_file("pca", "mt"))
    exact = local_hwe_pca(mt, 10, method="exact")
    randomized = local_hwe_pca(mt, 10, method="randomized")
    assert exact[1] == pytest.approx(randomized[1], rel=1e-12)  # the same total variance
    # tolerance: the issue's |r| >= 0.999 per PC on the top (structured) PCs
    np.testing.assert_allclose(randomized[0][:4], exact[0][:4], rtol=1e-3)
    a = {r.s: np.array(r.scores) for r in exact[2].collect()}
    b = {r.s: np.array(r.scores) for r in randomized[2].collect()}
    x = np.array([a[s] for s in sorted(a)])
    y = np.array([b[s] for s in sorted(a)])
    for pc in range(4):
        assert abs(np.corrcoef(x[:, pc], y[:, pc])[0, 1]) >= 0.999, pc


def test_logistic_wald_rows_match_statsmodels() -> None:
    """Batched Newton fits vs statsmodels.Logit, variant by variant (no JVM).

    Reference: statsmodels.api.Logit(y, [1, covariates, x]).fit() per variant, missing
    genotypes replaced by the mean of the called ones (Hail's rule)."""
    import statsmodels.api as sm

    from gwas_prs.methods.gwas.logistic_local import logistic_wald_rows

    rng = np.random.default_rng(5)
    n, n_var = 400, 60
    covariates = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n)])
    af = rng.uniform(0.05, 0.5, n_var)
    g = rng.binomial(2, af[:, None], size=(n_var, n)).astype(np.int8)
    g[rng.random(g.shape) < 0.02] = -1
    eta = -1.0 + 0.4 * covariates[:, 1] + 0.8 * np.where(g[0] >= 0, g[0], 1)
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    fit = logistic_wald_rows(_pack_bed(g), n, y, covariates, block=16)
    assert fit.converged.all() and not fit.exploded.any()
    for v in range(n_var):
        x = g[v].astype(float)
        x[g[v] < 0] = x[g[v] >= 0].mean()
        ref = sm.Logit(y, np.column_stack([covariates, x])).fit(disp=0, tol=1e-12)
        # tolerance: Newton stops at steps < 1e-6, so beta/se agree to ~1e-7
        assert abs(fit.beta[v] - ref.params[-1]) < 1e-6
        assert abs(fit.standard_error[v] - ref.bse[-1]) < 1e-6
        assert abs(np.log10(fit.p_value[v]) - np.log10(ref.pvalues[-1])) < 1e-5
    assert fit.p_value[0] < 1e-3  # the simulated effect is found


@pytest.fixture(scope="module")
def silver_like(chr21_22_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """chr21+22 common variants with shuffled IDs, ~2% missing calls and seeded
    p-values/effects, checkpointed and kept as a .bed the way qc keeps silver."""
    import hail as hl

    from gwas_prs.formats.plink_bed import export_bed
    from gwas_prs.formats.silver_bed import open_silver_bed

    mt = _shuffled_ids(hl.read_matrix_table(str(chr21_22_run / "bronze" / "genotypes.mt")))
    mt = hl.variant_qc(mt)
    mt = mt.filter_rows(hl.min(mt.variant_qc.AF) > 0.02).drop("variant_qc")
    mt = mt.annotate_entries(GT=hl.or_missing(hl.rand_bool(0.98, seed=21), mt.GT))
    mt = mt.annotate_rows(
        p_value=hl.rand_unif(0, 1, seed=22) ** 3, beta=hl.rand_norm(0, 0.1, seed=23)
    )
    folder = tmp_path_factory.mktemp("silver_bed")
    mt = mt.checkpoint(str(folder / "silver.mt"))
    cwd = os.getcwd()
    try:  # a relative prefix, as under a relative --run folder
        os.chdir(folder)
        export_bed(mt, "genotypes", varid=hl.str("."))
    finally:
        os.chdir(cwd)
    ids = mt.s.collect()  # column order
    silver = open_silver_bed(str(folder), len(ids), mt.count_rows())
    assert silver is not None
    assert open_silver_bed(str(folder), len(ids) + 1, mt.count_rows()) is None  # wrong shape
    return {"mt": mt, "bed": silver, "ids": ids}


@pytest.mark.slow
def test_bed_clumping_equals_the_hail_path(silver_like: dict) -> None:
    """prs_local.bed_clump_candidates (subset of the kept .bed) against
    clumping.clump_candidates (a fresh export of the discovery samples)."""
    import hail as hl

    from gwas_prs.engine.table_io import variant_table_to_frame
    from gwas_prs.methods.prs.clumping import ClumpParameters, clump_candidates
    from gwas_prs.methods.prs.prs_local import bed_clump_candidates

    mt, silver, ids = silver_like["mt"], silver_like["bed"], silver_like["ids"]
    discovery = ids[1::2]  # every other sample, not in sorted order
    params = ClumpParameters(r2=0.1, kb=250, p1=0.5, p2=0.5)
    hail_mt = mt.filter_cols(hl.literal(set(discovery)).contains(mt.s))
    theirs = clump_candidates(hail_mt, hail_mt.p_value, params, {"beta": hail_mt.beta})
    rows = mt.rows()
    sumstats = variant_table_to_frame(rows, {"p_value": rows.p_value, "beta": rows.beta})
    ours, bed_rows = bed_clump_candidates(silver, sumstats, discovery, params)
    assert 300 < len(ours.p_values) == len(theirs.p_values) < len(sumstats)
    assert (ours.positions == theirs.positions).all() and ours.alt == theirs.alt
    assert (ours.p_values == theirs.p_values).all()  # exact: both carry every digit
    assert (ours.values["beta"] == theirs.values["beta"]).all()
    assert (ours.result.is_index == theirs.result.is_index).all()  # tolerance: none
    assert (ours.result.clump == theirs.result.clump).all()
    assert ours.result.is_index.sum() < len(ours.p_values)  # LD did absorb variants
    assert (silver.variants["position"].to_numpy()[bed_rows] == ours.positions).all()


@pytest.mark.slow
@pytest.mark.parametrize("effect_size", ["odds_ratio", "beta"])
def test_sumstats_file_reads_back_bit_exact(
    silver_like: dict, tmp_path: Path, effect_size: str
) -> None:
    """The prs stage reads sumstats.tsv.gz (no Hail) instead of sumstats.ht: after
    write_gwas_ssf → sumstats_for_clumping every p-value and beta is the same float."""
    from gwas_prs.core.errors import InputError
    from gwas_prs.engine.table_io import variant_table_to_frame
    from gwas_prs.formats.sumstats import SumstatsMetadata, write_gwas_ssf
    from gwas_prs.methods.prs.prs_local import sumstats_for_clumping

    rows = silver_like["mt"].rows()
    expected = variant_table_to_frame(rows, {"p_value": rows.p_value, "beta": rows.beta})
    expected.loc[3, "p_value"] = 4.9e-324  # the smallest subnormal survives too
    expected.loc[5, ["p_value", "beta"]] = np.nan  # an untested variant
    frame = expected.rename(
        columns={
            "position": "base_pair_location",
            "ref": "other_allele",
            "alt": "effect_allele",
        }
    ).assign(standard_error=0.1, effect_allele_frequency=0.3)
    path = str(tmp_path / "sumstats.tsv.gz")
    write_gwas_ssf(frame, path, SumstatsMetadata("GRCh37", "disease", 100, effect_size=effect_size))
    contigs = silver_like["bed"].variants["chromosome"].unique().tolist()
    ours = sumstats_for_clumping(path, contigs)
    pd.testing.assert_frame_equal(ours, expected, check_exact=True)  # tolerance: none
    with pytest.raises(InputError, match=r"sumstats.tsv.gz:\d+: chromosome 2\d is not in"):
        sumstats_for_clumping(path, [contigs[0]])


@pytest.mark.slow
def test_bed_scores_equal_hail_polygenic_scores(silver_like: dict) -> None:
    """prs_local.bed_polygenic_scores against scoring.polygenic_scores: same weights
    (3 thresholds, ALT effects), same mean imputation of the missing calls."""
    import hail as hl

    from gwas_prs.methods.prs.prs_local import bed_polygenic_scores
    from gwas_prs.methods.prs.scoring import polygenic_scores

    mt, silver, ids = silver_like["mt"], silver_like["bed"], silver_like["ids"]
    rng = np.random.default_rng(5)
    rows = np.sort(rng.choice(len(silver.variants), size=300, replace=False))
    weights = rng.normal(0, 0.1, size=(len(rows), 3))
    weights[rng.random(weights.shape) < 0.3] = 0.0
    targets = ids[::2]
    ours = bed_polygenic_scores(silver, rows, weights, targets)

    mt = mt.add_row_index("_r")
    table = hl.literal(
        {int(r): w.tolist() for r, w in zip(rows, weights, strict=True)},
        dtype=hl.tdict(hl.tint64, hl.tarray(hl.tfloat64)),
    )
    target = mt.filter_cols(hl.literal(set(targets)).contains(mt.s))
    theirs = polygenic_scores(target, table.get(target._r), hl.bool(True)).to_pandas()
    theirs = theirs.set_index("s")
    assert list(ours.index) == list(theirs.index) == sorted(targets)
    a, b = np.vstack(list(ours["scores"])), np.vstack(list(theirs["scores"]))
    assert np.abs(a - b).max() < 1e-12  # tolerance: summation order only
    assert (ours["n_variants"].to_numpy() == theirs["n_variants"].to_numpy()).all()


@pytest.mark.slow
def test_bed_ld_matrix_equals_the_hail_blockmatrix_ld(silver_like: dict) -> None:
    """The LD of the LDpred2/lassosum2 methods: numpy on the .bed
    (ld_methods.bed_ld_matrix) against Hail's windowed BlockMatrix
    (ld_hail.hail_ld_matrix), on chr21+22 with ~2% missing calls, LD samples out of
    sorted order, a 500 kb window (so that windows end inside contigs)."""
    import hail as hl

    from gwas_prs.methods.prs.ld_hail import hail_ld_matrix
    from gwas_prs.methods.prs.ld_methods import bed_ld_matrix

    mt, silver, ids = silver_like["mt"], silver_like["bed"], silver_like["ids"]
    samples = ids[1::2]
    every = mt.filter_rows(mt.locus.position % 4 != 0)  # rows of the .bed, not all of them
    kept = every.rows().select().collect()
    positions = {(r.locus.contig, r.locus.position, r.alleles[0], r.alleles[1]) for r in kept}
    keys = zip(
        silver.variants["chromosome"],
        silver.variants["position"],
        silver.variants["ref"],
        silver.variants["alt"],
        strict=True,
    )
    rows = np.array([k for k, key in enumerate(keys) if key in positions], dtype=np.int64)
    ours = bed_ld_matrix(silver, rows, samples, window_kb=500).toarray()
    hail_mt = every.filter_cols(hl.literal(set(samples)).contains(every.s))
    theirs = hail_ld_matrix(hail_mt, window_kb=500, block_size=256).toarray()
    assert ours.shape == theirs.shape and ours.shape[0] == len(kept) > 300
    # the same band: nothing stored outside a window or across chr21/chr22
    assert ((ours != 0) == (np.abs(theirs) > 0)).mean() > 0.999
    # tolerance: the same mean-imputed moments, summed in another order (BlockMatrix)
    assert np.abs(ours - theirs).max() < 1e-10
    assert np.count_nonzero(ours) < 0.5 * ours.size  # banded, not dense
