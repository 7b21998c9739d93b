"""The bad-input corpus: every mistake is one line naming the file, exit code 2,
nothing in the run folder that looks complete, and no JVM started."""

from __future__ import annotations

import errno
import gzip
import json
import os
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
    header = [*HEADER, '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">']
    return [write_vcf(tmp / "nogt.vcf", vcf_lines(header=header, fmt="DP"))]


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


def _repeated_record(tmp: Path) -> list[Path]:
    records = [*RECORDS, RECORDS[5], RECORDS[5]]  # lines 12 and 13 repeat line 11
    return [write_vcf(tmp / "repeated.vcf.gz", vcf_lines(records=records), "gzip")]


def _repeated_split_allele(tmp: Path) -> list[Path]:
    records = [*RECORDS[:2], ("21", 9411245, "C", "A"), *RECORDS[2:]]  # C>A is in C>A,T
    return [write_vcf(tmp / "repeatsplit.vcf", vcf_lines(records=records))]


def _same_contig_twice(tmp: Path) -> list[Path]:
    both = write_vcf(tmp / "chr21_22.vcf.gz", vcf_lines(), "gzip")
    chr22 = write_vcf(tmp / "chr22.vcf.gz", vcf_lines(records=RECORDS[3:]), "gzip")
    return [both, chr22]


def _with_calls(name: str, calls: list[str], fmt: str = "GT") -> Callable[[Path], list[Path]]:
    def build(tmp: Path) -> list[Path]:
        return [write_vcf(tmp / name, vcf_lines(calls={0: calls}, fmt=fmt))]

    return build


def _with_record(name: str, record: tuple[str, int, str, str]) -> Callable[[Path], list[Path]]:
    def build(tmp: Path) -> list[Path]:
        return [write_vcf(tmp / name, vcf_lines(records=[record, *RECORDS[1:]]))]

    return build


def _no_alt_with_alt_call(tmp: Path) -> list[Path]:
    records = [("21", 9411239, "G", "."), *RECORDS[1:]]
    lines = vcf_lines(records=records, calls={0: ["0/0", "0/0", "0/1", "./."]})
    return [write_vcf(tmp / "noalt.vcf", lines)]


def _double_gzip(tmp: Path) -> list[Path]:
    return [write_vcf(tmp / "twice.vcf.gz", vcf_lines(), "double-gzip")]


def _symlink_loop(tmp: Path) -> list[Path]:
    os.symlink(tmp / "loop-b.vcf.gz", tmp / "loop-a.vcf.gz")
    os.symlink(tmp / "loop-a.vcf.gz", tmp / "loop-b.vcf.gz")
    return [tmp / "loop-a.vcf.gz"]


def _dangling_symlink(tmp: Path) -> list[Path]:
    os.symlink(tmp / "gone.vcf.gz", tmp / "link.vcf.gz")
    return [tmp / "link.vcf.gz"]


def _utf16(tmp: Path) -> list[Path]:
    path = tmp / "utf16.vcf"
    path.write_bytes(("\n".join(vcf_lines()) + "\n").encode("utf-16"))
    return [path]


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
    ("no GT or dosage in FORMAT", _no_gt, 0, ":7: FORMAT 'DP' has neither GT"),
    ("empty file", _empty_file, 0, ": the file is empty"),
    ("directory", _directory, 0, ": is a directory, not a VCF file"),
    ("non-VCF text file", _text_file, 0, ":1: missing the '##fileformat=VCF' header line"),
    ("header but no records", _header_only, 0, ": the VCF has a header but no variant records"),
    ("missing file", _missing_file, 0, ": no such file"),
    ("no FORMAT/samples", _samples_without_format, 0, ":5: no FORMAT column and no samples"),
    (
        "repeated record",
        _repeated_record,
        0,
        ":12: duplicate record: 22:16050213 C>T is also on line 11 (2 duplicate record(s) in "
        "this file",
    ),
    (
        "record repeating an allele of a multi-allelic record",
        _repeated_split_allele,
        0,
        ":8: duplicate record: 21:9411245 C>A is also on line 7 (1 duplicate record(s)",
    ),
    (
        "ALT allele repeated in one record",
        _with_record("altrepeat.vcf", ("21", 9411239, "G", "A,T,A")),
        0,
        ":6: duplicate record: 21:9411239 G>A is twice in its ALT column (1 duplicate record(s)",
    ),
    (
        "same contig in two files",
        _same_contig_twice,
        1,
        ": contig 22 (positions 16,050,075-16,050,213) is also in ",
    ),
    (
        "GT index beyond ALT",
        _with_calls("gt02.vcf", ["0|0", "0/2", "0|1", "1|1"]),
        0,
        ":6: GT '0/2' of sample 'S2' refers to allele 2, but the site has 1 ALT allele(s)",
    ),
    (
        "GT index beyond ALT, FORMAT GT:DP",
        _with_calls("gtdp.vcf", ["0/0:9", "0/1:12", "1/1:3", "0/3:7"], fmt="GT:DP"),
        0,
        ":6: GT '0/3' of sample 'S4' refers to allele 3",
    ),
    (
        "haploid GT index beyond ALT",
        _with_calls("haploid.vcf", ["0", "1", "2", "."]),
        0,
        ":6: GT '2' of sample 'S3' refers to allele 2",
    ),
    (
        "GT with an ALT allele at a site without ALT",
        _no_alt_with_alt_call,
        0,
        ":6: GT '0/1' of sample 'S3' refers to allele 1, but the site has no ALT allele",
    ),
    (
        "triploid GT",
        _with_calls("triploid.vcf", ["0/1/1", "0|1", "1|1", "0|0"]),
        0,
        ":6: GT '0/1/1' of sample 'S1' has 3 alleles (ploidy 3); gwas-prs reads haploid and "
        "diploid calls only",
    ),
    (
        "non-numeric GT",
        _with_calls("letters.vcf", ["0|0", "A/B", "1|1", "0|0"]),
        0,
        ":6: GT 'A/B' of sample 'S2' is not a genotype",
    ),
    (
        "empty GT",
        _with_calls("emptygt.vcf", ["0|0", "0|1", "", "0|0"]),
        0,
        ":6: GT '' of sample 'S3' is empty",
    ),
    (
        "empty ALT",
        _with_record("emptyalt.vcf", ("21", 9411239, "G", "")),
        0,
        ":6: ALT is empty; write '.' for a record without ALT alleles",
    ),
    (
        "empty ALT allele",
        _with_record("emptyallele.vcf", ("21", 9411239, "G", "A,")),
        0,
        ":6: ALT 'A,' has an empty allele",
    ),
    (
        "invalid ALT allele",
        _with_record("badalt.vcf", ("21", 9411239, "G", "A,Z")),
        0,
        ":6: ALT allele 'Z' is not a DNA sequence (A, C, G, T, N), '*', a symbolic allele",
    ),
    (
        "REF X",
        _with_record("refx.vcf", ("21", 9411239, "X", "A")),
        0,
        ":6: REF 'X' is not a DNA sequence (only A, C, G, T and N are allowed)",
    ),
    (
        "double gzip",
        _double_gzip,
        0,
        ": the file is compressed twice (gzip inside gzip); decompress it once",
    ),
    ("symbolic-link loop", _symlink_loop, 0, ": is a symbolic-link loop"),
    ("dangling symbolic link", _dangling_symlink, 0, ": is a symbolic link to '"),
    ("UTF-16 text", _utf16, 0, ":1: the file is UTF-16 text"),
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
    assert not list(run.glob("tmp/bgzf-*")), "the BGZF copies must be removed"
    if (run / "manifest.json").exists():
        stages = json.loads((run / "manifest.json").read_text())["stages"]
        assert stages.get("ingest", {}).get("status") != "complete"


@pytest.mark.parametrize(
    "code", [errno.ENOSPC, errno.EROFS, errno.EACCES], ids=["ENOSPC", "EROFS", "EACCES"]
)
@pytest.mark.parametrize("compression", ["gzip", "plain"])
def test_failing_to_write_the_bgzf_copy_is_one_line(
    no_jvm: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, compression: str
) -> None:
    """A full disk (or a read-only one) while writing the copy Hail imports: one line naming
    the copy and what to do, exit 2, and RUN/tmp/bgzf-* removed."""
    from gwas_prs.formats.bgzf import BgzfWriter

    vcf = write_vcf(tmp_path / "a.vcf.gz", vcf_lines(records=RECORDS * 20), compression)
    written: list[int] = []

    def full_disk(self: BgzfWriter, data: bytes) -> None:
        written.append(len(data))
        if len(written) > 3:  # fail after a few lines, once the copy exists
            raise OSError(code, os.strerror(code))

    monkeypatch.setattr(BgzfWriter, "write", full_disk)
    run = tmp_path / "run"
    result = runner.invoke(app, ["ingest", str(vcf), "--run", str(run)])
    assert result.exit_code == 2, result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1, result.output
    message = error_lines[0]
    assert message.startswith(f"error: {run}/tmp/bgzf-"), message
    assert f".vcf.bgz.part: cannot write the BGZF copy of {vcf} ({os.strerror(code)}); " in message
    hint = "free disk space" if code == errno.ENOSPC else "choose a writable --run folder"
    assert hint in message, message
    assert "Traceback" not in result.output
    assert not list(run.glob("tmp/bgzf-*"))
    assert not (run / "bronze" / "genotypes.mt").exists()


@pytest.mark.parametrize("workers", [1, 2], ids=["sequential", "process pool"])
def test_scan_failure_in_a_later_file_removes_the_copies(
    no_jvm: None, tmp_path: Path, workers: int
) -> None:
    """The first file is copied whole, the second fails: no copy is left behind."""
    from gwas_prs.core.errors import InputError
    from gwas_prs.stages.ingest import IngestConfig, run_ingest

    good = write_vcf(tmp_path / "a.vcf.gz", vcf_lines(records=RECORDS[:3]), "gzip")
    bad = write_vcf(tmp_path / "b.vcf.gz", vcf_lines(records=[*RECORDS[3:], RECORDS[5]]), "gzip")
    run = tmp_path / "run"
    config = IngestConfig(vcfs=(str(good), str(bad)), run_dir=str(run), validation_workers=workers)
    with pytest.raises(InputError, match=f"^{bad}:9: duplicate record"):
        run_ingest(config)
    assert not list(run.glob("tmp/bgzf-*"))


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


def test_unusual_but_valid_records_pass_the_check(tmp_path: Path) -> None:
    """What the REF/ALT/GT/duplicate checks must not refuse (no JVM: the check only)."""
    from gwas_prs.core.reference import reference_contigs
    from gwas_prs.formats.vcf_validation import scan_vcf

    records = [
        ("21", 9411239, "G", "."),  # no ALT allele
        ("21", 9411240, "acgtn", "a"),  # lower case
        ("21", 9411241, "A", "<DEL>"),
        ("21", 9411242, "A", "<*>"),
        ("21", 9411243, "G", "G]17:198982]"),  # breakends
        ("21", 9411244, "T", "]13:123456]T"),
        ("21", 9411245, "C", ".C"),
        ("21", 9411245, "C", "A"),  # same position, other alleles: not a duplicate
        ("21", 9411245, "CT", "C"),
        ("21", 9411246, "A", "C,G,T,*"),
        ("21", 9411247, "A", "C,G,T,AA,AC,AG,AT,AN,CC,CG,CT,CN"),  # 12 ALT alleles
    ]
    calls = {
        0: ["0/0", "./.", "0", "."],
        1: ["0|1", ".|1", "1", "0/."],
        9: ["0/4", "3|2", "1/1", "4"],
        10: ["0/12", "11|10", "9/1", "./."],
    }
    vcf = write_vcf(tmp_path / "odd.vcf", vcf_lines(records=records, calls=calls))
    scan = scan_vcf(str(vcf), reference_contigs("GRCh37"), keep_symbolic=True)
    assert scan.records == len(records)
    assert scan.first_unsorted_line is None
    assert scan.contig_ranges == {"21": (9411239, 9411247)}
    unsorted = [RECORDS[1], RECORDS[0], *RECORDS[2:]]  # out of order: noted, not refused
    vcf = write_vcf(tmp_path / "unsorted.vcf", vcf_lines(records=unsorted))
    assert scan_vcf(str(vcf), reference_contigs("GRCh37")).first_unsorted_line == 7


@pytest.mark.parametrize("compression", ["plain", "gzip", "bgzf"])
def test_the_copy_hail_imports_is_the_checked_text_without_a_bom(
    tmp_path: Path, compression: str
) -> None:
    """Plain and plain-gzip input is always copied; BGZF only when it starts with a BOM,
    which the copy leaves out."""
    from gwas_prs.core.reference import reference_contigs
    from gwas_prs.formats.vcf_validation import scan_vcf, validate_vcfs

    text = ("\n".join(vcf_lines()) + "\n").encode()
    for bom in (b"", b"\xef\xbb\xbf"):
        vcf = write_vcf(tmp_path / f"a{len(bom)}.vcf.gz", vcf_lines(), compression, prefix=bom)
        target = tmp_path / "copies" / f"a{len(bom)}.vcf.bgz"
        scan = scan_vcf(str(vcf), reference_contigs("GRCh37"), convert_to=str(target))
        assert scan.bom == bool(bom)
        assert scan.size == vcf.stat().st_size
        if compression == "bgzf" and not bom:
            assert scan.converted_to is None and not target.exists()
        else:
            assert scan.converted_to == str(target)
            assert gzip.decompress(target.read_bytes()) == text
    # the BOM is accepted in the header check as well
    samples, scans = validate_vcfs([str(tmp_path / "a3.vcf.gz")], reference_contigs("GRCh37"))
    assert samples == SAMPLES and scans[0].bom


def test_chunks_of_one_contig_in_several_files_are_accepted(tmp_path: Path) -> None:
    """Disjoint regions of one contig (a biobank's pVCF chunks) are not an overlap."""
    from gwas_prs.core.reference import reference_contigs
    from gwas_prs.formats.vcf_validation import validate_vcfs

    first = write_vcf(tmp_path / "c1.vcf", vcf_lines(records=RECORDS[:2]))
    second = write_vcf(tmp_path / "c2.vcf", vcf_lines(records=RECORDS[2:]))
    _, scans = validate_vcfs([str(first), str(second)], reference_contigs("GRCh37"))
    assert [s.contig_ranges for s in scans] == [
        {"21": (9411239, 9411245)},
        {"21": (9411300, 9411300), "22": (16050075, 16050213)},
    ]


def test_haploid_and_missing_calls_with_short_subfields_are_valid(tmp_path: Path) -> None:
    """GT:DP:GQ with haploid or missing calls followed by one-character subfields
    (``0:5:30``, ``.:7:40``): valid records, once read as GT ``0:5`` (StopIteration)."""
    from gwas_prs.core.reference import reference_contigs
    from gwas_prs.formats.vcf_validation import scan_vcf

    path = tmp_path / "short.vcf"
    path.write_text(
        "##fileformat=VCFv4.2\n"
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\n"
        "22\t16050075\t.\tA\tG\t.\t.\t.\tGT:DP:GQ\t0:5:30\t1:7:40\n"
        "22\t16050076\t.\tA\tG\t.\t.\t.\tGT:DP:GQ\t0/1:5:30\t.:7:40\n"
    )
    scan = scan_vcf(str(path), reference_contigs("GRCh37"))
    assert scan.records == 2 and scan.expected_rows_per_contig == {"22": 2}
