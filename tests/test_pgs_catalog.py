"""PGS Catalog scoring files and allele harmonisation (pandas only, no JVM)."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import pandas as pd
import pytest

from gwas_prs.core.errors import InputError
from gwas_prs.formats.pgs_catalog import (
    CATEGORIES,
    ScoringMetadata,
    harmonise,
    read_scoring_file,
    write_scoring_file,
)

# A header block modelled on a PGS Catalog format 2.0 harmonised download.
CATALOG_FILE = """\
###PGS CATALOG SCORING FILE - see https://www.pgscatalog.org/downloads/#dl_ftp_scoring for additional information
#format_version=2.0
##POLYGENIC SCORE (PGS) INFORMATION
#pgs_id=PGS999999
#pgs_name=TEST_PRS3
#trait_reported=Example trait
#trait_mapped=example disease
#trait_efo=EFO_0000000
#genome_build=GRCh37
#variants_number=3
#weight_type=NR
##SOURCE INFORMATION
#pgp_id=PGP999999
#citation=Doe J et al. Journal (2020). doi:10.0000/example
#license=PGS obtained from the Catalog should be cited appropriately
##HARMONIZATION DETAILS
#HmPOS_build=GRCh38
#HmPOS_date=2024-01-01
#HmPOS_match_chr={"True": null, "False": null}
#HmPOS_match_pos={"True": null, "False": null}
rsID\tchr_name\tchr_position\teffect_allele\tother_allele\teffect_weight\tallelefrequency_effect\tis_interaction\thm_source\thm_rsID\thm_chr\thm_pos\thm_inferOtherAllele
rs1\t1\t1000\tA\tG\t0.25\t0.1\tFalse\tENSEMBL\trs1\t1\t2000\t
rs2\t2\t3000\tc\tt\t-1.5e-3\t0.2\tFalse\tENSEMBL\trs2\t2\t4000\t
rs3\t3\t5000\tT\tC\t2\t\tTrue\tENSEMBL\trs3\t3\t6000\t
"""


def test_reads_a_catalog_header_block(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "PGS999999_hmPOS_GRCh38.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(CATALOG_FILE)
    with caplog.at_level(logging.WARNING):
        scoring = read_scoring_file(str(path))
    assert scoring.header == {
        "format_version": "2.0",
        "pgs_id": "PGS999999",
        "pgs_name": "TEST_PRS3",
        "trait_reported": "Example trait",
        "trait_mapped": "example disease",
        "trait_efo": "EFO_0000000",
        "genome_build": "GRCh37",
        "variants_number": "3",
        "weight_type": "NR",
        "pgp_id": "PGP999999",
        "citation": "Doe J et al. Journal (2020). doi:10.0000/example",
        "license": "PGS obtained from the Catalog should be cited appropriately",
        "HmPOS_build": "GRCh38",
        "HmPOS_date": "2024-01-01",
        "HmPOS_match_chr": '{"True": null, "False": null}',
        "HmPOS_match_pos": '{"True": null, "False": null}',
    }
    assert scoring.genome_build == "GRCh38"
    frame = scoring.frame
    # harmonised positions are preferred; the interaction term is dropped
    assert frame["chr_name"].tolist() == ["1", "2"]
    assert frame["chr_position"].tolist() == [2000, 4000]
    assert frame["effect_allele"].tolist() == ["A", "C"]
    assert frame["other_allele"].tolist() == ["G", "T"]
    assert frame["effect_weight"].tolist() == [0.25, -1.5e-3]
    assert frame["allelefrequency_effect"].tolist() == [0.1, 0.2]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "dropping 1 interaction term(s)" in messages
    assert "variants_number" not in messages
    assert frame["reported_chr_position"].tolist() == ["1000", "3000"]


def test_variants_number_mismatch_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "w.txt"
    path.write_text("#variants_number=5\n" + COLUMNS + "rs1\t1\t10\tA\tG\t0.1\n")
    with caplog.at_level(logging.WARNING):
        read_scoring_file(str(path))
    assert "header says variants_number=5 but 1 variant rows were read" in caplog.text


@pytest.mark.parametrize("name", ["weights.txt", "weights.txt.gz"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    frame = pd.DataFrame(
        {
            "rsID": ["rs1", None, "rs3"],
            "chr_name": ["1", "2", "X"],
            "chr_position": [100, 200, 300],
            "effect_allele": ["A", "C", "TTG"],
            "other_allele": ["G", "T", "T"],
            "effect_weight": [0.1, -2.5e-7, 1.0000000000000002],
            "allelefrequency_effect": [0.5, None, 0.25],
        }
    )
    meta = ScoringMetadata(
        pgs_name="gwas_prs_height_p5e-08",
        trait_reported="height",
        genome_build="GRCh38",
        extra={"p_threshold": "5e-08", "clump_r2": "0.1"},
    )
    path = str(tmp_path / name)
    assert write_scoring_file(frame, path, meta) == path
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:  # type: ignore[operator]
        lines = handle.read().splitlines()
    assert lines[0].startswith("###PGS CATALOG SCORING FILE")
    assert lines[1] == "#format_version=2.0"
    assert "#variants_number=3" in lines
    assert lines[lines.index("#p_threshold=5e-08") - 1] == "##SOURCE INFORMATION"
    assert lines[-4].split("\t") == [
        "rsID",
        "chr_name",
        "chr_position",
        "effect_allele",
        "other_allele",
        "effect_weight",
        "allelefrequency_effect",
    ]
    assert lines[-2] == "\t2\t200\tC\tT\t-2.5e-07\t"
    back = read_scoring_file(path)
    assert back.header == {
        "format_version": "2.0",
        "pgs_id": "NR",
        "pgs_name": "gwas_prs_height_p5e-08",
        "trait_reported": "height",
        "trait_mapped": "",
        "trait_efo": "",
        "genome_build": "GRCh38",
        "variants_number": "3",
        "weight_type": "beta",
        "p_threshold": "5e-08",
        "clump_r2": "0.1",
    }
    assert list(back.frame.columns) == lines[-4].split("\t")
    assert back.frame["rsID"].isna().tolist() == [False, True, False]
    assert back.frame["chr_name"].tolist() == ["1", "2", "X"]
    assert back.frame["chr_position"].tolist() == [100, 200, 300]
    assert back.frame["effect_allele"].tolist() == ["A", "C", "TTG"]
    assert back.frame["effect_weight"].tolist() == [0.1, -2.5e-7, 1.0000000000000002]
    assert back.frame["allelefrequency_effect"].isna().tolist() == [False, True, False]


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bad.txt"
    path.write_text(text)
    return str(path)


COLUMNS = "rsID\tchr_name\tchr_position\teffect_allele\tother_allele\teffect_weight\n"


def test_non_numeric_weight_names_its_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "#pgs_id=X\n#genome_build=GRCh37\n"
        + COLUMNS
        + "rs1\t1\t10\tA\tG\t0.1\nrs2\t1\t20\tA\tG\tx1\n",
    )
    with pytest.raises(InputError, match=r"bad\.txt:5: effect_weight 'x1' is not a number"):
        read_scoring_file(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"bad\.txt:1: the scoring file is empty"),
        ("#pgs_id=X\n#genome_build=GRCh37\n", r"bad\.txt:2: the scoring file is empty"),
        ("#pgs_id=X\n" + COLUMNS, r"bad\.txt:2: no variants after the column header"),
        (
            "rsID\teffect_allele\teffect_weight\nrs1\tA\t0.1\n",
            r"has only rsIDs; positions are required",
        ),
        ("chr_name\tchr_position\teffect_allele\n1\t5\tA\n", "no effect_weight column"),
        ("chr_name\tchr_position\teffect_weight\n1\t5\t0.1\n", "no effect_allele column"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        read_scoring_file(_write(tmp_path, text))


# One weight row per category (and the chr prefix on one side only).
WEIGHTS = pd.DataFrame(
    {
        "chr_name": ["1", "chr1", "1", "1", "1", "1", "1", "2", "1", "1"],
        "chr_position": [10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
        "effect_allele": ["A", "G", "C", "T", "A", "A", "G", "A", "G", "c"],
        "other_allele": ["G", "A", "T", "C", "T", "G", "T", "C", None, "g"],
        "effect_weight": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
    }
)
VARIANTS = pd.DataFrame(
    {
        "contig": ["chr1"] * 9,
        "position": [10, 20, 30, 40, 50, 60, 70, 70, 90],
        "ref": ["G", "G", "A", "A", "A", "G", "G", "G", "C"],
        "alt": ["A", "A", "G", "G", "T", "T", "C", "T", "G"],
    }
)


def test_every_category() -> None:
    result = harmonise(WEIGHTS, VARIANTS, min_overlap=0.0)
    assert result.counts == {
        "match": 1,  # 10: A/G on G>A
        "swap": 2,  # 20: G/A on G>A; 70: G/T at the multi-allelic site, row G>T
        "flip": 1,  # 30: C/T = complement of G/A on A>G
        "flip_swap": 1,  # 40: T/C = complement of A/G on A>G, effect on REF
        "palindromic_dropped": 2,  # 50: A/T on A>T; 90: G, no other allele, on C>G
        "allele_mismatch": 1,  # 60: A/G on G>T
        "not_found": 2,  # 80 (chromosome 2), 100 (no cohort row)
    }
    assert list(result.counts) == list(CATEGORIES)
    assert result.n_total == 10
    assert result.match_rate == 0.5
    frame = result.frame
    assert list(frame.columns) == [
        "contig",
        "position",
        "ref",
        "alt",
        "effect_allele",
        "effect_weight",
        "effect_is_alt",
        "category",
    ]
    assert frame["contig"].tolist() == ["chr1"] * 5
    assert frame["position"].tolist() == [10, 20, 30, 40, 70]
    assert frame["alt"].tolist() == ["A", "A", "G", "G", "T"]
    assert frame["category"].tolist() == ["match", "swap", "flip", "flip_swap", "swap"]
    assert frame["effect_is_alt"].tolist() == [True, False, True, False, False]
    assert frame["effect_allele"].tolist() == ["A", "G", "G", "A", "G"]
    assert frame["effect_weight"].tolist() == [0.1, 0.2, 0.3, 0.4, 0.7]
    assert frame["effect_is_alt"].dtype == bool


def test_allow_palindromic_keeps_them_unflipped() -> None:
    result = harmonise(WEIGHTS, VARIANTS, min_overlap=0.0, allow_palindromic=True)
    assert result.counts["palindromic_dropped"] == 0
    assert (result.counts["match"], result.counts["swap"]) == (2, 3)
    kept = result.frame.set_index("position")
    # 50: effect A is the REF of A>T; 90: effect G is the ALT of C>G
    assert kept.loc[50, "category"] == "swap"
    assert bool(kept.loc[50, "effect_is_alt"]) is False
    assert kept.loc[50, "effect_allele"] == "A"
    assert kept.loc[90, "category"] == "match"
    assert bool(kept.loc[90, "effect_is_alt"]) is True
    assert result.match_rate == 0.7


def test_palindromic_effect_on_ref_is_a_swap() -> None:
    weights = pd.DataFrame(
        {
            "chr_name": ["1"],
            "chr_position": [5],
            "effect_allele": ["T"],
            "other_allele": ["A"],
            "effect_weight": [1.0],
        }
    )
    variants = pd.DataFrame({"contig": ["1"], "position": [5], "ref": ["T"], "alt": ["A"]})
    with pytest.raises(InputError):
        harmonise(weights, variants)
    result = harmonise(weights, variants, allow_palindromic=True)
    assert result.frame["category"].tolist() == ["swap"]
    assert result.frame["effect_is_alt"].tolist() == [False]


def test_multi_allelic_picks_the_matching_row() -> None:
    weights = pd.DataFrame(
        {
            "chr_name": ["3", "3"],
            "chr_position": [7, 7],
            "effect_allele": ["C", "AT"],
            "other_allele": ["A", "A"],
            "effect_weight": [0.5, -0.5],
        }
    )
    variants = pd.DataFrame(
        {
            "contig": ["chr3", "chr3", "chr3"],
            "position": [7, 7, 7],
            "ref": ["A", "A", "A"],
            "alt": ["G", "AT", "C"],
        }
    )
    result = harmonise(weights, variants)
    assert result.frame["alt"].tolist() == ["C", "AT"]
    assert result.frame["category"].tolist() == ["match", "match"]
    assert result.match_rate == 1.0


def test_indel_strand_flip_uses_the_reverse_complement() -> None:
    weights = pd.DataFrame(
        {
            "chr_name": ["1"],
            "chr_position": [9],
            "effect_allele": ["TG"],  # reverse complement of CA
            "other_allele": ["T"],  # complement of A
            "effect_weight": [1.0],
        }
    )
    variants = pd.DataFrame({"contig": ["1"], "position": [9], "ref": ["A"], "alt": ["CA"]})
    result = harmonise(weights, variants)
    assert result.frame["category"].tolist() == ["flip"]


def test_min_overlap_error_message() -> None:
    n = 1000
    weights = pd.DataFrame(
        {
            "chr_name": ["1"] * n,
            "chr_position": range(1, n + 1),
            "effect_allele": ["A"] * 80 + ["G"] * 40 + ["A"] * 880,
            "other_allele": ["G"] * 80 + ["A"] * 40 + ["G"] * 880,
            "effect_weight": [0.1] * n,
        }
    )
    variants = pd.DataFrame(
        {"contig": ["1"] * 120, "position": range(1, 121), "ref": ["G"] * 120, "alt": ["A"] * 120}
    )
    with pytest.raises(InputError) as error:
        harmonise(
            weights,
            variants,
            source="PGS000001.txt.gz",
            weights_build="GRCh38",
            cohort_build="GRCh37",
            allow_build_mismatch=True,
        )
    assert str(error.value) == (
        "PGS000001.txt.gz: only 12.0% of 1,000 weights match the cohort (match 80, swap 40, "
        "flip 0, flip swap 0, palindromic dropped 0, allele mismatch 0, not found 880); "
        "check the genome build (file says GRCh38, cohort is GRCh37) or lower --min-overlap"
    )
    assert harmonise(weights, variants, min_overlap=0.1).match_rate == 0.12


def test_weights_read_from_file_harmonise(tmp_path: Path) -> None:
    path = tmp_path / "w.txt"
    path.write_text(COLUMNS + "rs1\tchr1\t10\ta\tg\t0.1\nrs2\t1\t\tA\tG\t0.2\n")
    scoring = read_scoring_file(str(path))
    result = harmonise(scoring.frame, VARIANTS, min_overlap=0.0)
    assert result.counts["match"] == 1
    assert result.counts["not_found"] == 1  # no position


def test_inferred_other_allele_is_used_when_single(tmp_path: Path) -> None:
    path = tmp_path / "hm.txt"
    path.write_text(
        "#genome_build=GRCh37\n#HmPOS_build=GRCh38\n"
        "rsID\tchr_name\teffect_allele\teffect_weight\thm_chr\thm_pos\thm_inferOtherAllele\n"
        "rs1\t1\tA\t0.1\t1\t10\tG\n"
        "rs2\t1\tC\t0.2\t1\t20\tA/T\n"
    )
    scoring = read_scoring_file(str(path))
    assert scoring.frame["other_allele"].isna().tolist() == [False, True]
    assert scoring.frame["other_allele"].iloc[0] == "G"
    assert scoring.frame["chr_position"].tolist() == [10, 20]
    assert scoring.genome_build == "GRCh38"


def test_missing_alleles_never_match() -> None:
    weights = pd.DataFrame(
        {
            "chr_name": ["1", "1"],
            "chr_position": [5, 6],
            "effect_allele": [None, "A"],
            "other_allele": [None, "G"],
            "effect_weight": [1.0, 2.0],
        }
    )
    variants = pd.DataFrame(
        {"contig": ["1", "1"], "position": [5, 6], "ref": ["G", "G"], "alt": ["", "A"]}
    )
    result = harmonise(weights, variants)
    assert result.counts["allele_mismatch"] == 1
    assert result.frame["position"].tolist() == [6]


# --- issue 14 (8c): swapped duplicate variants, genome build of the file vs the cohort ---


@pytest.mark.parametrize(
    ("second", "shown"),
    [
        ("rs1b\t1\t1000\tG\tA\t-0.2\n", "effect G, other A, weight -0.2"),  # swapped
        ("rs1b\tchr1\t1000\tc\tt\t0.3\n", "effect C, other T, weight 0.3"),  # swapped, other strand
    ],
    ids=["swap", "strand-flipped swap"],
)
def test_duplicate_variant_with_swapped_effect_alleles_is_refused(
    tmp_path: Path, second: str, shown: str
) -> None:
    path = _write(
        tmp_path,
        "#pgs_id=X\n#genome_build=GRCh37\n"
        + COLUMNS
        + "rs0\t1\t500\tA\tC\t0.05\n"
        + "rs1\t1\t1000\tA\tG\t0.25\n"
        + "rs2\t2\t2000\tT\tC\t0.1\n"
        + second,
    )
    with pytest.raises(InputError) as error:
        read_scoring_file(path)
    assert str(error.value) == (
        f"{path}:7: variant 1:1000 appears twice with swapped effect alleles "
        f"(line 5: effect A, other G, weight 0.25; line 7: {shown}); "
        "the score would add both weights — keep one line"
    )


def test_exact_duplicates_and_multi_allelic_rows_are_still_read(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        COLUMNS
        + "rs1\t1\t1000\tA\tG\t0.25\n"
        + "rs1\t1\t1000\tA\tG\t0.25\n"  # same effect allele twice: documented, weights add up
        + "rs2\t1\t2000\tC\tA\t0.1\n"
        + "rs2b\t1\t2000\tT\tA\t0.2\n"  # another ALT at a multi-allelic site
        + "rs3\t1\t3000\tG\t\t0.1\n"
        + "rs3b\t1\t3000\tA\t\t0.3\n"  # no other allele: cannot tell, kept
        + "rs4\t1\t4000\tA\tT\t0.1\n"
        + "rs4\t1\t4000\tA\tT\t0.1\n",  # a palindromic SNP repeated as it is
    )
    assert len(read_scoring_file(path).frame) == 8


def test_palindromic_duplicate_with_swapped_alleles_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, COLUMNS + "rs4\tchr2\t4000\tA\tT\t0.1\nrs4\t2\t4000\tT\tA\t0.1\n")
    with pytest.raises(
        InputError, match=r"bad\.txt:3: variant chr2:4000 appears twice with swapped"
    ):
        read_scoring_file(path)


ONE_VARIANT = pd.DataFrame(
    {
        "chr_name": ["1"],
        "chr_position": [10],
        "effect_allele": ["A"],
        "other_allele": ["G"],
        "effect_weight": [0.1],
    }
)


def test_genome_build_mismatch_is_refused_even_with_full_overlap() -> None:
    with pytest.raises(InputError) as error:
        harmonise(
            ONE_VARIANT,
            VARIANTS,
            source="PGS000001.txt.gz",
            weights_build="GRCh38",
            cohort_build="GRCh37",
        )
    assert str(error.value) == (
        "PGS000001.txt.gz: the scoring file's positions are on GRCh38 (#genome_build / "
        "#HmPOS_build) but the cohort is on GRCh37; use the file harmonised to GRCh37 "
        "(PGS Catalog …_hmPOS_GRCh37.txt.gz) or pass --allow-build-mismatch"
    )


def test_allow_build_mismatch_warns_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        result = harmonise(
            ONE_VARIANT,
            VARIANTS,
            weights_build="hg38",
            cohort_build="GRCh37",
            allow_build_mismatch=True,
        )
    assert result.match_rate == 1.0
    assert "GRCh38" in caplog.text and "GRCh37" in caplog.text


@pytest.mark.parametrize("build", ["GRCh37", "hg19", "GRCh37/hg19", "grch37", "b37", "GRCh37.p13"])
def test_genome_build_aliases_agree(build: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        result = harmonise(ONE_VARIANT, VARIANTS, weights_build=build, cohort_build="GRCh37")
    assert result.match_rate == 1.0
    assert caplog.text == ""


@pytest.mark.parametrize("build", ["NR", "", None])
def test_unreported_build_only_warns(build: str | None, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        result = harmonise(ONE_VARIANT, VARIANTS, weights_build=build, cohort_build="GRCh37")
    assert result.match_rate == 1.0
    if build == "NR":
        assert "genome build is not reported" in caplog.text


def test_build_mismatch_read_from_the_file_header(tmp_path: Path) -> None:
    path = _write(tmp_path, "#pgs_id=X\n#genome_build=hg38\n" + COLUMNS + "rs1\t1\t10\tA\tG\t0.1\n")
    scoring = read_scoring_file(path)
    with pytest.raises(InputError, match=r"positions are on GRCh38 .* the cohort is on GRCh37"):
        harmonise(
            scoring.frame,
            VARIANTS,
            source=path,
            weights_build=scoring.genome_build,
            cohort_build="GRCh37",
        )
