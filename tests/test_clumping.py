"""Clumping: the greedy rule (no JVM) and identical index variants to plink1.9 --clump."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gwas_prs.core.errors import InputError
from gwas_prs.core.processes import run_command
from gwas_prs.methods.prs.clumping import ClumpParameters, greedy_clump
from tests.conftest import common_variants_with_ids, have_programs


def test_greedy_clump_follows_plinks_rule() -> None:
    # variants 0..5 in genome order; LD edges 0-1, 1-2, 3-4
    p = np.array([0.01, 0.001, 0.02, 0.5, 0.04, 0.3])
    i = np.array([0, 1, 3])
    j = np.array([1, 2, 4])
    result = greedy_clump(p, i, j, ClumpParameters(p1=1.0, p2=1.0))
    # 1 (lowest p) absorbs 0 and 2; 4 absorbs 3; 5 has no partner
    assert result.is_index.tolist() == [False, True, False, False, True, True]
    assert result.clump.tolist() == [1, 1, 1, 4, 4, 5]
    strict = greedy_clump(p, i, j, ClumpParameters(p1=0.015, p2=0.03))
    # only p <= p1 can be an index; only p <= p2 joins a clump
    assert strict.is_index.tolist() == [False, True, False, False, False, False]
    assert strict.clump.tolist() == [1, 1, 1, -1, -1, -1]


def test_ties_are_broken_in_genome_order() -> None:
    result = greedy_clump(np.array([0.1, 0.1]), np.array([0]), np.array([1]), ClumpParameters())
    assert result.is_index.tolist() == [True, False]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (ClumpParameters(r2=0.0), "--clump-r2 0.0: must be in (0, 1]"),
        (ClumpParameters(kb=0), "--clump-kb 0: must be a positive number"),
        (ClumpParameters(p1=2.0), "--clump-p1 2.0: must be in (0, 1]"),
    ],
)
def test_invalid_parameters(params: ClumpParameters, message: str) -> None:
    with pytest.raises(InputError) as error:
        params.validate()
    assert str(error.value).startswith(message)


@pytest.mark.slow
@pytest.mark.reference
@pytest.mark.skipif(
    not have_programs("plink1.9"), reason="plink1.9 is not installed (CI installs it)"
)
@pytest.mark.parametrize("missing_calls", [False, True], ids=["complete", "1pct-missing"])
def test_index_variants_identical_to_plink19(
    chr21_22_run: Path, tmp_path: Path, missing_calls: bool, record_property: Any
) -> None:
    """Same genotypes (chr21+22, 1,126 samples), same p-values, same parameters.

    Reference: plink1.9 --bfile g --clump assoc.tsv --clump-p1 1 --clump-p2 1
               --clump-r2 0.1 --clump-kb 250 --out c      (index SNPs in c.clumped)
    p-values: linear regression of a seeded simulated trait (20 causal variants,
    effect 0.3 per allele, N(0,1) noise) on each variant, by Hail.
    """
    import hail as hl
    import pandas as pd

    from gwas_prs.methods.prs.clumping import clump_variants

    mt = common_variants_with_ids(chr21_22_run)
    mt = mt.add_row_index().add_col_index()
    if missing_calls:  # ~1% of calls missing: r² over the samples called at both variants
        mt = mt.annotate_entries(
            GT=hl.or_missing((mt.row_idx * 7919 + mt.col_idx * 104729) % 97 != 0, mt.GT)
        )
    noise = np.random.default_rng(7).normal(size=mt.count_cols())
    causal = hl.literal(set(range(0, 2000, 100)), dtype=hl.tset(hl.tint64))
    mt = mt.annotate_cols(
        y=hl.literal(noise.tolist())[hl.int32(mt.col_idx)]
        + hl.agg.filter(causal.contains(mt.row_idx), hl.agg.sum(0.3 * mt.GT.n_alt_alleles()))
    )
    gwas = hl.linear_regression_rows(y=mt.y, x=mt.GT.n_alt_alleles(), covariates=[1.0])
    mt = mt.annotate_rows(p=gwas[mt.row_key].p_value)
    mt = mt.checkpoint(str(tmp_path / "mt.mt"))

    clumped = clump_variants(mt, mt.p, ClumpParameters(r2=0.1, kb=250, p1=1.0, p2=1.0))
    index = clumped.filter(clumped.index_variant)
    ours = {
        f"{r.locus.contig}:{r.locus.position}:{r.alleles[0]}:{r.alleles[1]}"
        for r in index.collect()
    }

    hl.export_plink(mt, str(tmp_path / "g"), ind_id=mt.s, varid=mt.varid)
    rows = mt.rows().key_by()
    # every digit of the p-values (Hail's export keeps 5 significant digits by default)
    rows.select(SNP=rows.varid, P=hl.format("%.17g", rows.p)).export(str(tmp_path / "assoc.tsv"))
    plink = [
        "plink1.9",
        "--bfile",
        "g",
        "--clump",
        "assoc.tsv",
        "--clump-p1",
        "1",
        "--clump-p2",
        "1",
    ]
    run_command([*plink, "--clump-r2", "0.1", "--clump-kb", "250", "--out", "c"], cwd=str(tmp_path))
    theirs = set(pd.read_csv(tmp_path / "c.clumped", sep=r"\s+").SNP)
    assert len(theirs) > 500  # a real test: hundreds of clumps
    record_property("index_variants_gwas_prs", len(ours))
    record_property("index_variants_plink19", len(theirs))
    assert ours == theirs  # identical index-variant sets (no tolerance)


def _gwas_p_values(mt: Any, tmp_path: Path) -> Any:
    """``mt`` with a seeded GWAS p-value per variant (``p``), checkpointed."""
    import hail as hl

    mt = mt.add_row_index().add_col_index()
    noise = np.random.default_rng(7).normal(size=mt.count_cols())
    causal = hl.literal(set(range(0, 2000, 100)), dtype=hl.tset(hl.tint64))
    mt = mt.annotate_cols(
        y=hl.literal(noise.tolist())[hl.int32(mt.col_idx)]
        + hl.agg.filter(causal.contains(mt.row_idx), hl.agg.sum(0.3 * mt.GT.n_alt_alleles()))
    )
    gwas = hl.linear_regression_rows(y=mt.y, x=mt.GT.n_alt_alleles(), covariates=[1.0])
    mt = mt.annotate_rows(p=gwas[mt.row_key].p_value, beta=gwas[mt.row_key].beta)
    return mt.checkpoint(str(tmp_path / "mt.mt"))


#: sha256 of the index flags and clump owners that Hail clumping gave on chr21+22 with
#: r2 0.1, 250 kb, p1 = p2 = 0.5 before it became windowed per contig (genome-wide edges).
CLUMPS_BEFORE = "d281592d3f995e24981e60475d1168a1f29b47717ce76dc05bca7a53e8add086"


@pytest.mark.slow
def test_hail_clumping_is_per_contig_banded_and_unchanged(
    chr21_22_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record_property: Any
) -> None:
    """Same clumps as the genome-wide computation; LD only inside each contig's windows."""
    import hashlib
    import time

    import hail as hl
    from hail.linalg import BlockMatrix
    from hail.linalg.utils import locus_windows

    from gwas_prs.methods.prs import clumping
    from gwas_prs.methods.prs.clumping import clump_candidates, greedy_clump, ld_edges

    mt = _gwas_p_values(common_variants_with_ids(chr21_22_run), tmp_path)
    params = ClumpParameters(r2=0.1, kb=250, p1=0.5, p2=0.5)
    bands: list[tuple[int, int]] = []  # (rows, entries kept) of each banded product
    original = BlockMatrix.sparsify_row_intervals

    def recording(self: Any, starts: Any, stops: Any, blocks_only: bool = False) -> Any:
        bands.append((len(starts), int(sum(b - a for a, b in zip(starts, stops, strict=True)))))
        return original(self, starts, stops, blocks_only=blocks_only)

    monkeypatch.setattr(BlockMatrix, "sparsify_row_intervals", recording)
    t = time.monotonic()
    ours = clump_candidates(mt, mt.p, params, {"beta": mt.beta})
    record_property("hail_clumping_s", round(time.monotonic() - t, 1))
    print(f"hail clumping: {time.monotonic() - t:.1f} s")
    own = list(bands)
    n = len(ours.p_values)
    assert n > 300 and ours.result.is_index.sum() < n  # LD did absorb variants
    digest = hashlib.sha256(
        ours.result.is_index.tobytes() + ours.result.clump.tobytes()
    ).hexdigest()
    record_property("clumps_sha256", digest)
    print(f"clumps: {digest} ({n} candidates, {int(ours.result.is_index.sum())} index)")
    assert digest == CLUMPS_BEFORE

    # the genome-wide computation over the same candidates gives the same clumps
    candidates = mt.filter_rows(mt.p <= 0.5)
    whole = greedy_clump(ours.p_values, *ld_edges(candidates, params), params)
    assert (whole.is_index == ours.result.is_index).all()
    assert (whole.clump == ours.result.clump).all()

    # LD was computed per contig, each product sparsified to that contig's windows
    per_contig = candidates.aggregate_rows(hl.agg.counter(candidates.locus.contig))
    assert sorted({rows for rows, _ in own}) == sorted(per_contig.values())
    for contig, count in per_contig.items():
        rows = candidates.filter_rows(candidates.locus.contig == contig)
        starts, stops = locus_windows(rows.locus, params.kb * 1000)
        window = int((stops - starts).sum())
        assert window < count * count / 4  # a band, far from contig²
        assert all(kept == window for rows_, kept in own if rows_ == count)
    assert clumping.CLUMP_BLOCK_SIZE <= 512
