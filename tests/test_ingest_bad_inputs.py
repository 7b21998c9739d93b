"""The bad-input corpus: every mistake is one line naming the file, exit code 2,
nothing in the run folder that looks complete, and no JVM started."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gwas_prs.cli.app import app
from tests.vcf_factory import HEADER, RECORDS, SAMPLES, vcf_lines, write_vcf

runner = CliRunner()


def _truncated_gzip(tmp: Path) -> list[Path]:
    path = tmp / "truncated.vcf.gz"
    data = gzip.compress(("\n".join(vcf_lines(records=RECORDS * 50)) + "\n").encode())
    path.write_bytes(data[: len(data) // 2])
    return [path]


def _missing_fileformat(tmp: Path) -> list[Path]:
    return [write_vcf(tmp / "nofileformat.vcf", vcf_lines(header=HEADER[1:]))]


def _missing_chrom_line(tmp: Path) -> list[Path]:
    lines = vcf_lines()
    return [
        write_vcf(tmp / "nochrom.vcf", [line for line in lines if not line.startswith("#CHROM")])
    ]


def _ragged_line(tmp: Path) -> list[Path]:
    lines = vcf_lines()
    lines[-2] = lines[-2].rsplit("\t", 1)[0]
    return [write_vcf(tmp / "ragged.vcf.gz", lines, "gzip")]


def _non_integer_pos(tmp: Path) -> list[Path]:
    records = list(RECORDS)
    records[3] = ("22", "16O50075", "A", "G")
    return [write_vcf(tmp / "badpos.vcf", vcf_lines(records=records))]


def _unknown_contig(tmp: Path) -> list[Path]:
    records = [*RECORDS, ("chrUn_gl000220", 1000, "A", "G")]
    return [write_vcf(tmp / "contig.vcf.bgz", vcf_lines(records=records), "bgzf")]


def _position_beyond_contig(tmp: Path) -> list[Path]:
    records = [*RECORDS, ("21", 48129896, "A", "G")]
    return [write_vcf(tmp / "beyond.vcf", vcf_lines(records=records))]


def _duplicate_sample(tmp: Path) -> list[Path]:
    return [write_vcf(tmp / "dupsample.vcf", vcf_lines(samples=("S1", "S2", "S1", "S4")))]


def _mismatched_samples(tmp: Path) -> list[Path]:
    first = write_vcf(tmp / "a.vcf", vcf_lines())
    second = write_vcf(tmp / "b.vcf", vcf_lines(samples=("S1", "S3", "S2", "S4")))
    return [first, second]


def _no_gt(tmp: Path) -> list[Path]:
    header = [*HEADER, '##FORMAT=<ID=DS,Number=1,Type=Float,Description="Dosage">']
    return [write_vcf(tmp / "nogt.vcf", vcf_lines(header=header, fmt="DS"))]


def _empty_file(tmp: Path) -> list[Path]:
    path = tmp / "empty.vcf.gz"
    path.write_bytes(b"")
    return [path]


def _directory(tmp: Path) -> list[Path]:
    path = tmp / "adir.vcf"
    path.mkdir()
    return [path]


def _text_file(tmp: Path) -> list[Path]:
    path = tmp / "notes.vcf"
    path.write_text("sample\tpop\nHG00096\tGBR\n")
    return [path]


def _header_only(tmp: Path) -> list[Path]:
    return [write_vcf(tmp / "headeronly.vcf", vcf_lines(records=[]))]


def _missing_file(tmp: Path) -> list[Path]:
    return [tmp / "does-not-exist.vcf.gz"]


def _samples_without_format(tmp: Path) -> list[Path]:
    lines = [*HEADER, "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"])]
    lines.append("\t".join(["21", "9411239", "rs1", "G", "A", "50", "PASS", "."]))
    return [write_vcf(tmp / "sitesonly.vcf", lines)]


#: (name, builder, the file named in the message, expected fragment of the message)
CORPUS: list[tuple[str, Callable[[Path], list[Path]], int, str]] = [
    ("truncated gzip", _truncated_gzip, 0, "truncated or corrupt"),
    (
        "missing ##fileformat",
        _missing_fileformat,
        0,
        ":1: missing the '##fileformat=VCF' header line",
    ),
    ("missing #CHROM", _missing_chrom_line, 0, ":5: data line before the '#CHROM' header line"),
    ("ragged line", _ragged_line, 0, ":10: 12 tab-separated columns, expected 13"),
    ("non-integer POS", _non_integer_pos, 0, ":9: POS '16O50075' is not a positive integer"),
    ("unknown contig", _unknown_contig, 0, ":12: contig 'chrUn_gl000220' is not in GRCh37"),
    ("POS beyond contig end", _position_beyond_contig, 0, ":12: POS 48129896 is outside contig 21"),
    ("duplicate sample", _duplicate_sample, 0, ":5: duplicate sample ID 'S1' (columns 10 and 12)"),
    ("mismatched samples", _mismatched_samples, 1, "samples differ from"),
    ("no GT in FORMAT", _no_gt, 0, ":7: FORMAT 'DS' does not start with GT"),
    ("empty file", _empty_file, 0, ": the file is empty"),
    ("directory", _directory, 0, ": is a directory, not a VCF file"),
    ("non-VCF text file", _text_file, 0, ":1: missing the '##fileformat=VCF' header line"),
    ("header but no records", _header_only, 0, ": the VCF has a header but no variant records"),
    ("missing file", _missing_file, 0, ": no such file"),
    ("no FORMAT/samples", _samples_without_format, 0, ":5: no FORMAT column and no samples"),
]


@pytest.mark.parametrize(
    ("name", "build", "culprit", "fragment"), CORPUS, ids=[c[0] for c in CORPUS]
)
def test_bad_vcf_is_one_clear_line_exit_2(
    no_jvm: None,
    tmp_path: Path,
    name: str,
    build: Callable[[Path], list[Path]],
    culprit: int,
    fragment: str,
) -> None:
    inputs = build(tmp_path)
    run = tmp_path / "run"
    result = runner.invoke(app, ["ingest", *map(str, inputs), "--run", str(run)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    error_lines = [line for line in lines if line.startswith("error: ")]
    assert len(error_lines) == 1, result.output
    message = error_lines[0]
    assert message.startswith(f"error: {inputs[culprit]}"), message
    assert fragment in message, message
    assert "Traceback" not in result.output and "java" not in result.output.lower()
    assert not (run / "bronze" / "genotypes.mt").exists()
    if (run / "manifest.json").exists():
        stages = json.loads((run / "manifest.json").read_text())["stages"]
        assert stages.get("ingest", {}).get("status") != "complete"


def test_glob_matching_nothing(no_jvm: None, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["ingest", str(tmp_path / "chr*.vcf.gz"), "--run", str(tmp_path / "run")]
    )
    assert result.exit_code == 2
    assert f"error: {tmp_path}/chr*.vcf.gz: the pattern matches no file" in result.output


def test_same_file_twice(no_jvm: None, tmp_path: Path) -> None:
    path = write_vcf(tmp_path / "a.vcf", vcf_lines())
    result = runner.invoke(app, ["ingest", str(path), str(path), "--run", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "given twice" in result.output


def test_unknown_reference_genome(no_jvm: None, tmp_path: Path) -> None:
    path = write_vcf(tmp_path / "a.vcf", vcf_lines())
    result = runner.invoke(
        app, ["ingest", str(path), "--run", str(tmp_path / "run"), "--reference-genome", "hg19"]
    )
    assert result.exit_code == 2
    assert (
        "error: reference genome 'hg19' is not supported; use one of GRCh37, GRCh38"
        in result.output
    )


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("pop\tsuper_pop\nGBR\tEUR\n", ":1: no sample-ID column"),
        ("sample\tpop\nS1\tGBR\nS2\tFIN\nS1\tGBR\n", ":4: sample 'S1' appears again (lines 2, 4)"),
        ("", ":1: the sample metadata file is empty"),
        ("sample\tpop\nX1\tGBR\n", "none of its 1 sample IDs are in the VCFs"),
    ],
    ids=["no id column", "duplicate id", "empty", "no overlap"],
)
def test_bad_sample_metadata(no_jvm: None, tmp_path: Path, content: str, fragment: str) -> None:
    vcf = write_vcf(tmp_path / "a.vcf", vcf_lines())
    samples = tmp_path / "samples.tsv"
    samples.write_text(content)
    result = runner.invoke(
        app, ["ingest", str(vcf), "--samples", str(samples), "--run", str(tmp_path / "run")]
    )
    assert result.exit_code == 2, result.output
    assert f"error: {samples}" in result.output
    assert fragment in result.output


def test_sample_ids_are_checked_before_hail(no_jvm: None, tmp_path: Path) -> None:
    """Samples in the VCF agree with the metadata: the check passes and only then would Hail start."""
    vcf = write_vcf(tmp_path / "a.vcf", vcf_lines())
    samples = tmp_path / "samples.csv"
    samples.write_text("IID,age\nS1,40\nS2,51\nS3,NA\nS9,33\n")
    with pytest.raises(AssertionError, match="must not start a JVM"):
        runner.invoke(
            app,
            ["ingest", str(vcf), "--samples", str(samples), "--run", str(tmp_path / "run")],
            catch_exceptions=False,
        )
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["stages"]["ingest"]["status"] == "failed"
    assert SAMPLES[0] == "S1"
