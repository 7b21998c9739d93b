"""`gwas-prs export`: row counts of the Parquet/VCF/PLINK exports equal the MatrixTables'."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.cli_helpers import invoke
from tests.conftest import have_programs

pytestmark = pytest.mark.slow


def test_bronze_parquet_and_vcf_round_trip(chr21_22_run: Path, tmp_path: Path) -> None:
    import hail as hl

    mt = hl.read_matrix_table(str(chr21_22_run / "bronze" / "genotypes.mt"))
    n_variants, n_samples = mt.count()
    out = tmp_path / "bronze-parquet"
    code, stdout, errors = invoke(
        "export", str(chr21_22_run), "--layer", "bronze", "--format", "parquet", "--out", str(out)
    )
    assert code == 0, errors
    assert sorted(p.name for p in (out / "genotypes").glob("contig=*")) == [
        "contig=21",
        "contig=22",
    ]
    genotypes = pd.read_parquet(out / "genotypes", columns=["contig", "n_alt", "sample_id"])
    assert len(genotypes) == n_variants * n_samples  # one row per entry
    # ALT dosage sums agree with Hail's
    expected = mt.aggregate_entries(hl.agg.sum(mt.GT.n_alt_alleles()))
    assert int(genotypes.n_alt.sum()) == expected
    samples = pd.read_parquet(out / "samples.parquet")
    assert len(samples) == n_samples and {"s", "super_pop"} <= set(samples.columns)
    assert f"{n_variants * n_samples:,}" in stdout
    assert not list(tmp_path.glob(".*partial*"))
    marker = json.loads((out / ".gwas-prs-export.json").read_text())
    assert (marker["layer"], marker["format"]) == ("bronze", "parquet")
    assert marker["tables"]["genotypes"]["rows"] == n_variants * n_samples
    # refuses to overwrite; VCF
    assert invoke("export", str(chr21_22_run), "--layer", "bronze", "--out", str(out))[0] == 2
    vcf = tmp_path / "bronze-vcf"
    code, _, errors = invoke(
        "export", str(chr21_22_run), "--layer", "bronze", "--format", "vcf", "--out", str(vcf)
    )
    assert code == 0, errors
    with gzip.open(vcf / "genotypes.vcf.bgz", "rt") as handle:
        lines = [line for line in handle if not line.startswith("##")]
    assert len(lines) - 1 == n_variants and len(lines[0].split("\t")) == 9 + n_samples
    assert (vcf / "genotypes.vcf.bgz.tbi").exists()


def test_silver_plink_and_gold_parquet(demo_run: tuple[Path, str], tmp_path: Path) -> None:
    import hail as hl

    run = demo_run[0]
    mt = hl.read_matrix_table(str(run / "silver" / "genotypes.mt"))
    n_variants, n_samples = mt.count()
    out = tmp_path / "silver-plink"
    code, _, errors = invoke(
        "export", str(run), "--layer", "silver", "--format", "plink", "--out", str(out)
    )
    assert code == 0, errors
    bim = pd.read_csv(out / "genotypes.bim", sep="\t", header=None)
    fam = pd.read_csv(out / "genotypes.fam", sep=r"\s+", header=None)
    assert (len(bim), len(fam)) == (n_variants, n_samples) == (6088, 1113)
    if have_programs("plink2"):
        # plink2 --bfile OUT/genotypes --freq --threads 1 reads the fileset back
        subprocess.run(
            [
                "plink2",
                "--bfile",
                str(out / "genotypes"),
                "--freq",
                "--threads",
                "1",
                "--memory",
                "2000",
                "--out",
                str(tmp_path / "freq"),
            ],
            check=True,
            capture_output=True,
        )
        freq = pd.read_csv(tmp_path / "freq.afreq", sep="\t")
        assert len(freq) == n_variants
    # gold: no JVM needed
    gold = tmp_path / "gold"
    code, _, errors = invoke("export", str(run), "--layer", "gold", "--out", str(gold))
    assert code == 0, errors
    sumstats = pd.read_parquet(gold / "sumstats")
    assert len(sumstats) == 6088 and set(sumstats.trait) == {"disease"}
    assert json.loads((gold / ".gwas-prs-export.json").read_text())["layer"] == "gold"
    # the run folder is never a target (issue 14): not even with --overwrite
    code, _, errors = invoke(
        "export", str(run), "--layer", "gold", "--out", str(run), "--overwrite"
    )
    assert code == 2 and "is the run folder" in errors
    assert (run / "manifest.json").exists() and (run / "silver" / "genotypes.mt").exists()
    assert len(list((gold / "sumstats").glob("chromosome=*"))) == 22
    scores = pd.read_parquet(gold / "scores.parquet")
    assert len(scores) == len(
        pd.read_csv(run / "gold" / "prs" / "disease" / "scores.tsv", sep="\t")
    )
    code, _, errors = invoke(
        "export", str(run), "--layer", "gold", "--format", "vcf", "--out", str(tmp_path / "x")
    )
    assert code == 2 and "the gold layer holds no genotypes" in errors
