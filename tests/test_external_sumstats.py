"""External summary statistics (issue 17): each format read to the same harmonised
table, every match-report category, the --min-overlap stop.

The base file is real ``plink2 --glm`` output (PLINK v2.00a3.5, Debian's plink2):

    plink2 --vcf t.vcf --pheno p.tsv --glm allow-no-covars --out o

on genotypes and phenotypes written by the test; the same statistics are then written
as REGENIE, GWAS-SSF (with its sidecar) and a generic TSV, and every file must give
the same harmonised table.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gwas_prs.core.errors import InputError
from gwas_prs.formats.external_sumstats import (
    SampleSize,
    harmonise_sumstats,
    parse_column_mapping,
    read_external_sumstats,
)
from tests.conftest import have_programs

pytestmark = pytest.mark.skipif(not have_programs("plink2"), reason="needs plink2")

#: (position, ref, alt) of the genotyped variants
VARIANTS = [
    (1000, "A", "G"),
    (1100, "C", "T"),
    (1200, "G", "A"),
    (1300, "T", "C"),
    (1400, "A", "T"),
    (1500, "G", "T"),
]


def _plink2_glm(tmp: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(1)
    n = 300
    freqs = [0.3, 0.7, 0.4, 0.2, 0.35, 0.5]
    g = np.column_stack([rng.binomial(2, f, size=n) for f in freqs])
    lines = [
        "##fileformat=VCFv4.2",
        "##contig=<ID=21>",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT"])
        + "\t"
        + "\t".join(f"s{i}" for i in range(n)),
    ]
    codes = ["0/0", "0/1", "1/1"]
    for j, (pos, ref, alt) in enumerate(VARIANTS):
        lines.append(
            f"21\t{pos}\trs{j}\t{ref}\t{alt}\t.\tPASS\t.\tGT\t"
            + "\t".join(codes[x] for x in g[:, j])
        )
    (tmp / "t.vcf").write_text("\n".join(lines) + "\n")
    y = g[:, 0] * 0.5 - g[:, 1] * 0.3 + rng.normal(size=n)
    with open(tmp / "p.tsv", "w") as handle:
        handle.write("#IID\ty\tb\n")
        for i in range(n):
            handle.write(f"s{i}\t{y[i]:.6f}\t{2 if y[i] > 0.2 else 1}\n")
    subprocess.run(
        ["plink2", "--vcf", str(tmp / "t.vcf"), "--pheno", str(tmp / "p.tsv"), "--glm",
         "allow-no-covars", "--threads", "1", "--memory", "1000", "--out", str(tmp / "o")],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return tmp / "o.y.glm.linear", tmp / "o.b.glm.logistic.hybrid"


def _other(frame: pd.DataFrame) -> pd.Series:
    return frame["REF"].where(frame["A1"] == frame["ALT"], frame["ALT"])


def _write_other_formats(linear: Path, tmp: Path) -> dict[str, Path]:
    glm = pd.read_csv(linear, sep="\t", dtype=str)
    other = _other(glm)
    regenie = pd.DataFrame(
        {
            "CHROM": glm["#CHROM"], "GENPOS": glm["POS"], "ID": glm["ID"], "ALLELE0": other,
            "ALLELE1": glm["A1"], "A1FREQ": "0.3", "N": glm["OBS_CT"], "TEST": "ADD",
            "BETA": glm["BETA"], "SE": glm["SE"], "CHISQ": "1",
            "LOG10P": (-np.log10(glm["P"].astype(float))).map(repr),
        }
    )  # fmt: skip
    paths = {"regenie": tmp / "base.regenie"}
    regenie.to_csv(paths["regenie"], sep=" ", index=False)
    ssf = pd.DataFrame(
        {
            "chromosome": glm["#CHROM"], "base_pair_location": glm["POS"],
            "effect_allele": glm["A1"], "other_allele": other, "beta": glm["BETA"],
            "standard_error": glm["SE"], "effect_allele_frequency": "0.3",
            "p_value": glm["P"], "n": glm["OBS_CT"], "rsid": glm["ID"],
        }
    )  # fmt: skip
    paths["gwas-ssf"] = tmp / "base.tsv"
    ssf.to_csv(paths["gwas-ssf"], sep="\t", index=False)
    (tmp / "base.tsv-meta.yaml").write_text("genome_assembly: GRCh37\nsample_size: 300\n")
    generic = pd.DataFrame(
        {"SNP": glm["ID"], "CHR": glm["#CHROM"], "BP": glm["POS"], "A1": glm["A1"], "A2": other,
         "BETA": glm["BETA"], "SE": glm["SE"], "P": glm["P"], "N": glm["OBS_CT"]}
    )  # fmt: skip
    paths["tsv"] = tmp / "base.csv"
    generic.to_csv(paths["tsv"], index=False)
    return paths


def _cohort() -> pd.DataFrame:
    """The target cohort: rs0 as in the file, rs1 as in the file (plink2's A1 may be
    REF: a swap), rs2 on the other strand (G/A → C/T: a flip), rs3 absent, rs4 an A/T
    SNP (palindromic), rs5 with other alleles (G/C: an allele mismatch)."""
    rows = [
        ("21", 1000, "A", "G"),
        ("21", 1100, "C", "T"),
        ("21", 1200, "C", "T"),
        ("21", 1400, "A", "T"),
        ("21", 1500, "G", "C"),
    ]
    return pd.DataFrame(rows, columns=["contig", "position", "ref", "alt"])


def test_every_format_gives_the_same_harmonised_table(tmp_path: Path) -> None:
    linear, _ = _plink2_glm(tmp_path)
    paths = {"plink2": linear, **_write_other_formats(linear, tmp_path)}
    columns = parse_column_mapping(
        "chr=CHR,pos=BP,effect_allele=A1,other_allele=A2,beta=BETA,se=SE,p=P,n=N,id=SNP"
    )
    tables = {}
    for name, path in paths.items():
        read = read_external_sumstats(str(path), columns=columns if name == "tsv" else None)
        assert read.format == name
        tables[name] = harmonise_sumstats(read, _cohort(), min_overlap=0.3)
    expected = tables["plink2"]
    glm = pd.read_csv(linear, sep="\t")
    a1_is_alt = (glm["A1"] == glm["ALT"]).to_numpy()
    # the categories: rs0 match/swap by A1, rs1 likewise, rs2 a strand flip, rs3 not found,
    # rs4 palindromic (dropped by default), rs5 an allele mismatch
    cats = expected.counts
    assert cats["not_found"] == 1 and cats["palindromic_dropped"] == 1
    assert cats["allele_mismatch"] == 1
    assert cats["flip"] + cats["flip_swap"] == 1
    assert cats["match"] + cats["swap"] == 2
    frame = expected.frame.set_index("position")
    assert list(frame.index) == [1000, 1100, 1200]
    assert frame.loc[1200, "category"] == ("flip" if a1_is_alt[2] else "flip_swap")
    # beta per ALT allele: negated where plink2's A1 was REF
    for row, position in enumerate((1000, 1100, 1200)):
        sign = 1.0 if a1_is_alt[row] else -1.0
        assert frame.loc[position, "beta"] == pytest.approx(sign * glm["BETA"].iloc[row], abs=1e-12)
        assert frame.loc[position, "n"] == 300
    for name, table in tables.items():
        pd.testing.assert_frame_equal(
            table.frame, expected.frame, check_exact=False, rtol=1e-9, obj=name
        )  # -log10 p round trip of the REGENIE file: 1e-9 relative
        assert table.counts == expected.counts, name
    assert read_external_sumstats(str(paths["gwas-ssf"])).genome_build == "GRCh37"


def test_binary_trait_odds_ratios_and_effective_n(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, logistic = _plink2_glm(tmp_path)
    glm = pd.read_csv(logistic, sep="\t")
    read = read_external_sumstats(str(logistic))
    assert "give --sumstats-cases and --sumstats-controls" in caplog.text  # total N only
    assert read.format == "plink2" and read.binary
    assert np.allclose(read.frame["beta"], np.log(glm["OR"]), atol=1e-12)
    assert np.allclose(read.frame["se"], glm["LOG(OR)_SE"], atol=1e-12)
    assert (read.frame["n"] == glm["OBS_CT"]).all()
    given = read_external_sumstats(str(logistic), sample_size=SampleSize(cases=100, controls=200))
    assert given.frame["n"].iloc[0] == pytest.approx(4 / (1 / 100 + 1 / 200), abs=1e-9)


def test_missing_statistics_duplicates_and_the_overlap_stop(tmp_path: Path) -> None:
    text = (
        "CHR\tBP\tA1\tA2\tBETA\tSE\tP\n"
        "21\t1000\tG\tA\t0.1\t0.05\t0.04\n"
        "21\t1000\tA\tG\t-0.1\t0.05\t0.04\n"  # the same variant again, alleles swapped
        "21\t1100\tT\tC\tNA\t0.05\t0.5\n"  # no beta
        "21\t1200\tA\tG\t0.2\t0.05\t0.001\n"
        "21\t9999\tA\tG\t0.2\t0.05\t0.001\n"
    )
    path = tmp_path / "mine.tsv"
    path.write_text(text)
    mapping = parse_column_mapping(
        "chr=CHR,pos=BP,effect_allele=A1,other_allele=A2,beta=BETA,se=SE,p=P"
    )
    with pytest.raises(InputError, match=r"no sample size.*--sumstats-n"):
        read_external_sumstats(str(path), columns=mapping)
    read = read_external_sumstats(str(path), columns=mapping, sample_size=SampleSize(n=5000))
    assert read.counts == {"rows_read": 5, "missing_statistics": 1, "duplicate": 1}
    cohort = pd.DataFrame(
        [("21", 1000, "A", "G"), ("21", 1200, "C", "T")],
        columns=["contig", "position", "ref", "alt"],
    )
    table = harmonise_sumstats(read, cohort, min_overlap=0.5)
    assert table.counts["match"] == 1 and table.counts["flip"] == 1  # A/G → T/C: effect = alt
    assert table.counts["not_found"] == 1
    assert list(table.frame["beta"]) == [0.1, 0.2]
    with pytest.raises(InputError) as info:
        harmonise_sumstats(read, cohort.iloc[:1], min_overlap=0.9)
    assert info.value.exit_code == 2
    message = str(info.value)
    assert "\n" not in message and "--min-overlap" in message and "not found 2" in message
    with pytest.raises(InputError, match="unknown key 'beta_se'"):
        parse_column_mapping("chr=CHR,beta_se=SE")
    with pytest.raises(InputError, match="--sumstats-columns: also name"):
        read_external_sumstats(str(path), columns={"chr": "CHR"}, sample_size=SampleSize(n=1))
