"""The qc stage on the bundled 1000 Genomes cohort, and its agreement with PLINK 2.

One module-scoped fixture runs ingest + qc once (all 22 autosomes: the pruned
set is only ~3,000 SNPs, and fewer chromosomes would make PCA and KING too
noisy to be a meaningful comparison); every test reads its outputs.

Reference commands (see also tests/README.md); ``P`` is a PLINK 1 fileset
written by :func:`hail.export_plink` from the bronze MatrixTable restricted to
the samples/variants named in each test::

    # variant filters, each on its own and together (samples that passed sample QC, all variants)
    plink2 --bfile P --geno 0.05 --write-snplist --out geno
    plink2 --bfile P --maf 0.01 --write-snplist --out maf
    plink2 --bfile P --hwe 1e-6 midp --write-snplist --out hwe
    plink2 --bfile P --geno 0.05 --maf 0.01 --hwe 1e-6 midp --write-snplist --out all
    # PCA (samples that passed sample QC, the pruned SNPs of silver/ancestry/pruned_variants.tsv)
    plink2 --bfile P --pca 10 --out pca
    # KING (samples entering the relatedness step, the pruned SNPs)
    plink2 --bfile P --make-king-table --out king

All plink2 calls add ``--threads 1 --memory 2000`` (shared CI machines).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import have_programs

pytestmark = pytest.mark.slow

SKIP_NO_PLINK2 = pytest.mark.skipif(
    not have_programs("plink2"), reason="plink2 is not installed (CI installs it)"
)


@pytest.fixture(scope="module")
def qc_run(qc_full_run: dict[str, Any]) -> dict[str, Any]:
    """ingest + qc of the whole bundled cohort, once per session (tests/conftest.py)."""
    return qc_full_run


def _plink_fileset(
    run_dir: str, samples: list[str], variants: pd.DataFrame | None, name: str
) -> str:
    """Export the bronze genotypes of ``samples`` (and ``variants`` if given) as PLINK 1 files."""
    import hail as hl

    mt = hl.read_matrix_table(f"{run_dir}/bronze/genotypes.mt")
    mt = mt.filter_cols(hl.literal(set(samples)).contains(mt.s))
    if variants is not None:
        keys = {
            f"{c}:{p}:{r}:{a}"
            for c, p, r, a in variants[["contig", "position", "ref", "alt"]].itertuples(index=False)
        }
        vid = hl.variant_str(mt.locus, mt.alleles)
        mt = mt.filter_rows(hl.literal(keys).contains(vid))
    out = f"{run_dir}/tmp/plink-{name}"
    hl.export_plink(mt, out, ind_id=mt.s, varid=hl.variant_str(mt.locus, mt.alleles))
    return out


def _plink2(*args: str) -> None:
    from gwas_prs.core.processes import run_command

    run_command(
        ["plink2", "--threads", "1", "--memory", "2000", *args], what="compute reference values"
    )


def _sample_qc(run_dir: str) -> pd.DataFrame:
    return pd.read_csv(f"{run_dir}/silver/qc/sample_qc.tsv", sep="\t", dtype={"s": str}).set_index(
        "s"
    )


def test_outputs_and_counts(qc_run: dict[str, Any]) -> None:
    import hail as hl

    run_dir = qc_run["run_dir"]
    counts = qc_run["result"].counts
    manifest = json.loads(Path(run_dir, "manifest.json").read_text())
    assert manifest["stages"]["qc"]["status"] == "complete"
    assert manifest["stages"]["qc"]["counts"]["filters"] == counts["filters"]
    # every removal is counted, in order, and the counts chain exactly
    samples = [f for f in counts["filters"] if f["unit"] == "samples"]
    variants = [f for f in counts["filters"] if f["unit"] == "variants"]
    assert [f["filter"] for f in samples] == [
        "call_rate",
        "heterozygosity",
        "sex_check",
        "relatedness",
    ]
    assert [f["filter"] for f in variants] == ["call_rate", "maf", "hwe"]
    assert samples[0]["before"] == counts["samples_in"] == 1126
    assert variants[0]["before"] == counts["variants_in"] == 25132
    for steps in (samples, variants):
        for a, b in itertools.pairwise(steps):
            assert b["before"] == a["after"]
    assert samples[-1]["after"] == counts["samples_out"]
    assert variants[-1]["after"] == counts["variants_out"]
    assert samples[2]["reason"].startswith("skipped")  # no chrX in the bundled data
    silver = hl.read_matrix_table(f"{run_dir}/silver/genotypes.mt")
    assert silver.count() == (counts["variants_out"], counts["samples_out"])
    assert len(silver.pcs.take(1)[0]) == 10
    sample_qc = _sample_qc(run_dir)
    assert len(sample_qc) == 1126
    assert int(sample_qc["pass"].sum()) == counts["samples_out"]
    removed = sample_qc["removed_by"].value_counts().to_dict()
    assert removed == {k: v for k, v in counts["samples_removed"].items() if v}
    for name in ("report.html",):
        assert Path(run_dir, "silver", "qc", name).stat().st_size > 100_000  # bokeh inlined
        assert Path(run_dir, "silver", "ancestry", name).stat().st_size > 100_000
    loadings = hl.read_table(f"{run_dir}/silver/ancestry/loadings.ht")
    assert loadings.count() == counts["pca_variants"]
    assert set(loadings.row) >= {"locus", "alleles", "loadings", "pca_af"}


def test_variance_explained_and_ancestry(qc_run: dict[str, Any]) -> None:
    counts = qc_run["result"].counts
    variance = counts["pca_variance_explained"]
    assert variance == sorted(variance, reverse=True)
    assert 0 < sum(variance) < 1
    # continental structure dominates the 1000 Genomes data: PC1 explains several percent
    assert variance[0] > 0.03
    # random-forest super-population assignment from 6 PCs: near-perfect for 5 continents
    assert counts["ancestry_label_field"] == "super_pop"
    assert (
        counts["ancestry_cv_accuracy"] >= 0.95
    )  # tolerance: 1000 Genomes AMR overlaps EUR a little


def test_frequencies(qc_run: dict[str, Any]) -> None:
    run_dir = qc_run["run_dir"]
    counts = qc_run["result"].counts
    freq = pd.read_parquet(f"{run_dir}/gold/frequencies.parquet")
    # the partition column comes back categorical; group on plain strings
    # (categorical keys would make groupby build the full cartesian product)
    freq["contig"] = freq["contig"].astype(str)
    overall = freq[freq["grouping"] == "all"]
    assert len(overall) == counts["variants_out"]
    assert (overall["n_samples"] == counts["samples_out"]).all()
    assert set(freq.loc[freq["grouping"] == "super_pop", "group"]) == {
        "AFR",
        "AMR",
        "EAS",
        "EUR",
        "SAS",
    }
    sample_qc = _sample_qc(run_dir)
    pops = sample_qc.loc[sample_qc["pass"], "pop"].value_counts()
    assert pops.size == 12  # the bundled subset holds 12 of the 26 populations
    sizes = freq[freq["grouping"] == "pop"].groupby("group")["n_samples"].first()
    assert sizes.to_dict() == pops.to_dict()
    # the super-population ALT counts add up to the overall count, exactly
    by_super = (
        freq[freq["grouping"] == "super_pop"]
        .groupby(["contig", "position", "ref", "alt"], observed=True)[["AC", "AN"]]
        .sum()
    )
    joined = overall.set_index(["contig", "position", "ref", "alt"])[["AC", "AN"]].join(
        by_super, rsuffix="_sp"
    )
    assert (joined["AC"] == joined["AC_sp"]).all()
    assert (joined["AN"] == joined["AN_sp"]).all()


@pytest.mark.reference
@SKIP_NO_PLINK2
def test_variant_filters_match_plink2(qc_run: dict[str, Any]) -> None:
    import hail as hl

    run_dir = qc_run["run_dir"]
    counts = qc_run["result"].counts
    sample_qc = _sample_qc(run_dir)
    fileset = _plink_fileset(run_dir, list(sample_qc.index[sample_qc["pass"]]), None, "variants")
    n_total = counts["variants_in"]
    kept: dict[str, set[str]] = {}
    for name, flags in {
        "call_rate": ["--geno", "0.05"],
        "maf": ["--maf", "0.01"],
        "hwe": ["--hwe", "1e-6", "midp"],
        "all": ["--geno", "0.05", "--maf", "0.01", "--hwe", "1e-6", "midp"],
    }.items():
        _plink2("--bfile", fileset, *flags, "--write-snplist", "--out", f"{fileset}-{name}")
        kept[name] = set(Path(f"{fileset}-{name}.snplist").read_text().split())
    alone = counts["variants_failing_each_filter_alone"]
    # exact agreement (tolerance 0) per filter on its own ...
    assert n_total - len(kept["call_rate"]) == alone["call_rate"]
    assert n_total - len(kept["maf"]) == alone["maf"]
    assert n_total - len(kept["hwe"]) == alone["hwe"]
    # ... and the very same set of variants kept by all filters together
    vqc = hl.read_table(f"{run_dir}/silver/qc/variant_qc.ht")
    vqc = vqc.filter(vqc["pass"])
    hail_kept = set(vqc.aggregate(hl.agg.collect(hl.variant_str(vqc.locus, vqc.alleles))))
    assert hail_kept == kept["all"]
    assert len(hail_kept) == counts["variants_out"]


@pytest.mark.reference
@SKIP_NO_PLINK2
def test_pca_matches_plink2(qc_run: dict[str, Any]) -> None:
    run_dir = qc_run["run_dir"]
    sample_qc = _sample_qc(run_dir)
    pruned = pd.read_csv(
        f"{run_dir}/silver/ancestry/pruned_variants.tsv", sep="\t", dtype={"contig": str}
    )
    fileset = _plink_fileset(run_dir, list(sample_qc.index[sample_qc["pass"]]), pruned, "pca")
    _plink2("--bfile", fileset, "--pca", "10", "--out", f"{fileset}-pca")
    plink = pd.read_csv(f"{fileset}-pca.eigenvec", sep="\t").rename(columns={"#IID": "IID"})
    plink = plink.set_index(plink["IID"].astype(str))
    hail_scores = pd.read_csv(
        f"{run_dir}/silver/ancestry/scores.tsv", sep="\t", dtype={"s": str}
    ).set_index("s")
    joined = hail_scores.join(plink, rsuffix="_plink", how="inner")
    assert len(joined) == len(hail_scores)
    correlations = [
        abs(np.corrcoef(joined[f"PC{k}"], joined[f"PC{k}_plink"])[0, 1]) for k in range(1, 5)
    ]
    print("PCA |r| PC1..PC4 vs plink2:", correlations)
    for r in correlations:
        assert r >= 0.99  # tolerance from the issue: |Pearson r| ≥ 0.99 per PC (sign is arbitrary)


@pytest.mark.reference
@SKIP_NO_PLINK2
def test_king_matches_plink2(qc_run: dict[str, Any]) -> None:
    run_dir = qc_run["run_dir"]
    sample_qc = _sample_qc(run_dir)
    entering = sample_qc.index[sample_qc["pass"] | (sample_qc["removed_by"] == "relatedness")]
    pruned = pd.read_csv(
        f"{run_dir}/silver/ancestry/pruned_variants.tsv", sep="\t", dtype={"contig": str}
    )
    fileset = _plink_fileset(run_dir, list(entering), pruned, "king")
    _plink2("--bfile", fileset, "--make-king-table", "--out", f"{fileset}-king")
    kin0 = pd.read_csv(f"{fileset}-king.kin0", sep="\t").rename(columns={"#IID1": "IID1"})
    kin0["i"] = kin0[["IID1", "IID2"]].astype(str).min(axis=1)
    kin0["j"] = kin0[["IID1", "IID2"]].astype(str).max(axis=1)
    plink: pd.Series = kin0.set_index(["i", "j"])["KINSHIP"]
    hail_table = pd.read_csv(
        f"{run_dir}/silver/ancestry/related_pairs.tsv", sep="\t", dtype={"i": str, "j": str}
    )
    hail_pairs: pd.Series = hail_table.set_index(["i", "j"])["kinship"]
    # pairs above 0.02 in either tool
    above = hail_pairs.index.union(plink.index[(plink > 0.02).to_numpy()])
    assert len(above) > 0
    hail_values = hail_pairs.reindex(above)
    assert hail_values.notna().all(), "a pair above 0.02 in plink2 is missing from Hail's pairs"
    plink_values = plink.reindex(above)
    r = float(np.corrcoef(hail_values, plink_values)[0, 1])
    max_diff = float((hail_values - plink_values).abs().max())
    print(f"KING: {len(above)} pairs > 0.02, r = {r:.6f}, max |diff| = {max_diff:.2e}")
    assert r >= 0.99  # tolerance from the issue: r ≥ 0.99 over pairs above 0.02
    assert max_diff < 1e-3  # same estimator (KING-robust); plink2 prints 4 significant digits
    # the same pairs exceed the removal threshold
    assert set(hail_pairs.index[(hail_pairs > 0.0884).to_numpy()]) == set(
        plink.index[(plink > 0.0884).to_numpy()]
    )


def test_hwe_in_controls_uses_only_the_controls(qc_run: dict[str, Any]) -> None:
    import hail as hl

    from gwas_prs.methods.qc.variant_qc import VariantThresholds, variant_qc_table

    mt = hl.read_matrix_table(f"{qc_run['run_dir']}/silver/genotypes.mt")
    mt = mt.filter_rows(mt.locus.contig == "22")
    is_control = mt.super_pop == "EUR"  # stands in for the controls of a binary trait
    ht = variant_qc_table(mt, VariantThresholds(), hwe_samples=is_control)
    controls = mt.filter_cols(mt.super_pop == "EUR")
    expected = controls.annotate_rows(p=hl.agg.hardy_weinberg_test(controls.GT).p_value).rows()
    joined = ht.annotate(expected=expected[ht.key].p)
    worst = joined.aggregate(hl.agg.max(hl.abs(joined.p_hwe - joined.expected)))
    assert worst < 1e-12  # same computation on the same genotypes: equal up to rounding
    # the other metrics still use every sample
    assert ht.aggregate(hl.agg.max(ht.AN)) == 2 * mt.count_cols()


@pytest.mark.reference
@SKIP_NO_PLINK2
def test_call_rate_filters_match_plink2_with_missing_genotypes(qc_run: dict[str, Any]) -> None:
    """The bundled calls are complete, so mask some (seeded) to exercise --geno/--mind.

    ``plink2 --bfile P --geno 0.05 --write-snplist`` and
    ``plink2 --bfile P --mind 0.03 --write-samples`` on chr22 with 0-7% missing calls.
    """
    import hail as hl

    from gwas_prs.methods.qc.sample_qc import call_rate_expr
    from gwas_prs.methods.qc.variant_qc import EPSILON, VariantThresholds, variant_qc_table

    run_dir = qc_run["run_dir"]
    mt = hl.read_matrix_table(f"{run_dir}/bronze/genotypes.mt")
    mt = mt.filter_rows(mt.locus.contig == "22").select_entries("GT")
    mt = mt.annotate_rows(p_row=hl.rand_unif(0.0, 0.05, seed=1))
    mt = mt.annotate_cols(p_col=hl.rand_unif(0.0, 0.02, seed=2))
    mt = mt.annotate_entries(
        GT=hl.or_missing(hl.rand_unif(0.0, 1.0, seed=3) >= mt.p_row + mt.p_col, mt.GT)
    )
    mt = mt.checkpoint(f"{run_dir}/tmp/masked.mt")
    n_variants, n_samples = mt.count()
    ht = variant_qc_table(mt, VariantThresholds(min_call_rate=0.95))
    hail_variants_removed = ht.aggregate(hl.agg.count_where(ht.fail_call_rate))
    rates = mt.annotate_cols(cr=call_rate_expr(mt.GT)).cols().cr.collect()
    hail_samples_removed = sum(r < 0.97 - EPSILON for r in rates)
    out = f"{run_dir}/tmp/plink-masked"
    hl.export_plink(mt, out, ind_id=mt.s, varid=hl.variant_str(mt.locus, mt.alleles))
    _plink2("--bfile", out, "--geno", "0.05", "--write-snplist", "--out", f"{out}-geno")
    _plink2("--bfile", out, "--mind", "0.03", "--write-samples", "--out", f"{out}-mind")
    plink_variants_kept = len(Path(f"{out}-geno.snplist").read_text().split())
    plink_samples_kept = len(Path(f"{out}-mind.id").read_text().splitlines()) - 1  # header line
    print(
        f"masked chr22: variants removed hail {hail_variants_removed} plink2 {n_variants - plink_variants_kept}; "
        f"samples removed hail {hail_samples_removed} plink2 {n_samples - plink_samples_kept}"
    )
    assert 0 < hail_variants_removed < n_variants  # the masking makes the filter bite
    assert 0 < hail_samples_removed < n_samples
    assert n_variants - plink_variants_kept == hail_variants_removed  # tolerance 0
    assert n_samples - plink_samples_kept == hail_samples_removed  # tolerance 0


def test_sex_check_flags_mismatches_on_simulated_chrx(hail_context: None) -> None:
    """The bundled data have no chrX; simulate one (Balding-Nichols) with 40 males."""
    import hail as hl

    from gwas_prs.methods.qc.sample_qc import sex_check

    mt = hl.balding_nichols_model(1, 100, 600, reference_genome="GRCh37")
    mt = mt.key_cols_by(s=hl.str(mt.sample_idx))
    mt = mt.key_rows_by(
        locus=hl.locus("X", 3_000_000 + 1000 * mt.locus.position, "GRCh37"), alleles=mt.alleles
    )
    male = mt.sample_idx < 40
    mt = mt.annotate_entries(GT=hl.if_else(male, hl.call(mt.GT[0], mt.GT[0]), mt.GT))
    # samples 0 and 99 are reported with the wrong sex; 98 has no reported sex
    reported = hl.case().when(mt.sample_idx == 98, hl.missing(hl.tstr))
    swapped = (mt.sample_idx == 0) | (mt.sample_idx == 99)
    reported = reported.when((mt.sample_idx < 40) != swapped, "male")
    mt = mt.annotate_cols(gender=reported.default("female"))
    frame = sex_check(mt)
    assert frame is not None
    assert sorted(frame.index[frame["sex_mismatch"]]) == ["0", "99"]
    assert int((frame["imputed_female"] == False).sum()) == 40  # noqa: E712  (nullable boolean column)
    assert (
        sex_check(mt.filter_rows(mt.locus.position < 3_050_000)) is None
    )  # < 100 chrX SNPs: skipped


@pytest.mark.slow
def test_qc_without_sample_metadata(hail_context: None, bundled_1kg: dict, tmp_path: Path) -> None:
    """Ingest without --samples (the metadata is optional): qc completes, skips the
    per-population parts and says so (it used to fail inside Hail, exit 5)."""
    import hail as hl

    from gwas_prs.stages.ingest import IngestConfig, run_ingest
    from gwas_prs.stages.qc import QcConfig, run_qc

    run_dir = str(tmp_path / "run")
    run_ingest(IngestConfig(vcfs=(str(bundled_1kg["vcfs"][21]),), run_dir=run_dir))
    # one chromosome: KING on ~140 pruned SNPs calls half the samples related (noise),
    # which qc refuses by default (tests/test_qc_guards.py); accepted here
    result = run_qc(QcConfig(run_dir=run_dir, max_removed_fraction=1.0))
    # accepted: qc completes, removes what KING flagged, and its notes keep the warning
    assert result.counts["samples_removed"]["relatedness"] > 0.1 * result.counts["samples_in"]
    assert any("LD-pruned SNPs (fewer than 3,000)" in n for n in result.notes)
    assert "ancestry assignment skipped: the samples carry no population labels" in result.notes
    assert any(n.startswith("frequencies by population skipped") for n in result.notes)
    silver = hl.read_matrix_table(f"{run_dir}/silver/genotypes.mt")
    assert silver.ancestry.dtype == hl.tstr
    assert silver.aggregate_cols(hl.agg.count_where(hl.is_defined(silver.ancestry))) == 0
    assert silver.count_cols() == result.counts["samples_out"] > 0
    freq = pd.read_parquet(f"{run_dir}/gold/frequencies.parquet")
    assert set(freq["grouping"]) == {"all"}
    assert len(freq) == result.counts["variants_out"]
    assert not (Path(run_dir) / "silver" / "ancestry" / "assignments.tsv").exists()
