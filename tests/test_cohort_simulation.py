"""simulate-cohort: a tiny msprime cohort (60 samples x 2,000 SNPs, ~3 s, no JVM),
and the numpy clumping LD (gwas_prs.methods.ld_local) against its full-EM definition."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gwas_prs.core.processes import run_command
from tests.cli_helpers import invoke
from tests.conftest import have_programs

pytest.importorskip("msprime")


@pytest.fixture(scope="module")
def tiny_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cohort") / "tiny"
    code, stdout, errors = invoke(
        "simulate-cohort", "--out", str(out), "--samples", "60", "--variants", "2000",
        "--seed", "5", "--n-causal", "20",
    )  # fmt: skip
    assert code == 0, errors
    assert "cases of 'disease'" in stdout
    return out


def test_counts_populations_and_files(tiny_cohort: Path) -> None:
    from gwas_prs.core.reference import reference_contigs
    from gwas_prs.formats.vcf_validation import validate_vcfs

    panel = pd.read_csv(tiny_cohort / "samples.panel", sep="\t")
    assert list(panel.columns) == ["sample", "pop", "super_pop", "gender"]
    assert panel["pop"].value_counts().to_dict() == {"YRI": 20, "CEU": 20, "CHB": 20}
    assert set(panel["super_pop"]) == {"AFR", "EUR", "EAS"}
    pheno = pd.read_csv(tiny_cohort / "phenotypes.tsv", sep="\t")
    assert list(pheno.sample_id) == list(panel["sample"])
    assert pheno.disease.sum() == 12  # 20% prevalence of 60
    vcfs = [str(tiny_cohort / f"chr{c}.vcf.bgz") for c in (1, 2)]
    samples, scans = validate_vcfs(vcfs, reference_contigs("GRCh37"))
    assert samples == tuple(panel["sample"])
    assert [s.records for s in scans] == [1000, 1000]
    assert all(s.compression == "bgzf" and s.multiallelic_records == 0 for s in scans)
    with gzip.open(vcfs[0], "rt") as handle:
        rows = [line.split("\t") for line in handle if not line.startswith("#")]
    positions = [int(r[1]) for r in rows]
    assert positions == sorted(set(positions))
    alt = np.array([[g.count("1") for g in r[9:]] for r in rows]).mean(axis=1) / 2
    assert ((alt >= 1 / 120) & (alt <= 1 - 1 / 120)).all()  # polymorphic in the cohort


@pytest.mark.skipif(not have_programs("bcftools"), reason="bcftools is not installed")
def test_bcftools_reads_the_vcfs(tiny_cohort: Path) -> None:
    result = run_command(["bcftools", "view", "-H", str(tiny_cohort / "chr2.vcf.bgz")])
    assert len(result.stdout.splitlines()) == 1000


def test_same_seed_same_files(tiny_cohort: Path, tmp_path: Path) -> None:
    code, _, errors = invoke(
        "simulate-cohort", "--out", str(tmp_path), "--samples", "60", "--variants", "2000",
        "--seed", "5", "--n-causal", "20",
    )  # fmt: skip
    assert code == 0, errors
    for name in ("chr1.vcf.bgz", "chr2.vcf.bgz", "samples.panel", "phenotypes.tsv"):
        assert (tmp_path / name).read_bytes() == (tiny_cohort / name).read_bytes()


def test_without_msprime_exit_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "msprime", None)
    code, _, errors = invoke("simulate-cohort", "--out", str(tmp_path / "x"))
    assert code == 3
    assert "pip install 'gwas-prs[simulate]'" in errors


def test_bounded_em_gives_the_full_em_edges() -> None:
    """r2_edges_from_tables (EM only near the threshold) == haplotype_r2 >= r2 everywhere."""
    from gwas_prs.methods.ld_local import haplotype_r2, r2_edges_from_tables

    rng = np.random.default_rng(3)
    # genotype pairs from correlated haplotypes: the whole range of r² incl. ~0.1
    n, pairs = 200, 4000
    tables = np.zeros((pairs, 9))
    for k in range(pairs):
        rho = rng.uniform(0, 1)
        hap = rng.random((2 * n, 2)) < rng.uniform(0.05, 0.6, size=2)
        hap[:, 1] = np.where(rng.random(2 * n) < rho, hap[:, 0], hap[:, 1])
        g = hap.reshape(n, 2, 2).sum(axis=1)
        np.add.at(tables[k], 3 * g[:, 0] + g[:, 1], 1)
    full = haplotype_r2(tables)
    for r2 in (0.1, 0.2, 0.5, 0.8):
        assert (r2_edges_from_tables(tables, r2) == (full >= r2)).all()
    assert ((full > 0.05) & (full < 0.2)).sum() > 100  # near-threshold pairs exercised
