"""Bad PLINK filesets, BGEN files and MatrixTables: one line naming the file and the fix,
before Hail starts (``no_jvm``), and no bronze written.

The BGEN files are written by ``plink2 --vcf t.vcf dosage=DS --export bgen-1.2
[bits=8] ref-first`` in the fixture; the PLINK filesets by hand (a 2-variant .bed).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gwas_prs.core.errors import InputError
from gwas_prs.core.processes import run_command
from gwas_prs.stages.ingest import IngestConfig, run_ingest
from tests.conftest import have_programs

needs_plink2 = pytest.mark.skipif(
    not have_programs("plink2"), reason="plink2 is not installed (CI installs it)"
)


def _plink_fileset(folder: Path, name: str = "p") -> Path:
    (folder / f"{name}.fam").write_text("".join(f"f{i} s{i} 0 0 1 -9\n" for i in range(5)))
    (folder / f"{name}.bim").write_text("22\trs1\t0\t16050075\tG\tA\n22\trs2\t0\t16050115\t0\tA\n")
    # SNP-major .bed: 5 samples -> 2 bytes per variant
    (folder / f"{name}.bed").write_bytes(bytes([0x6C, 0x1B, 0x01]) + bytes([0xFF, 0x03]) * 2)
    return folder / f"{name}.bed"


def _ingest(tmp_path: Path, *inputs: Path | str, **options: object) -> None:
    run_ingest(
        IngestConfig(vcfs=tuple(str(p) for p in inputs), run_dir=str(tmp_path / "run"), **options)  # type: ignore[arg-type]
    )


def _fails(tmp_path: Path, expected: str, *inputs: Path | str, **options: object) -> str:
    with pytest.raises(InputError) as info:
        _ingest(tmp_path, *inputs, **options)
    message = str(info.value)
    assert expected in message, message
    assert "\n" not in message
    assert not (tmp_path / "run" / "bronze" / "genotypes.mt").exists()
    return message


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("no_fam", "p.fam: the .fam is missing"),
        ("truncated_bed", "p.bed: 6 bytes, but 2 variants (.bim) × 5 samples (.fam) need 7"),
        ("bad_magic", "is not a PLINK 1 .bed (wrong magic bytes)"),
        ("individual_major", "is individual-major; rewrite it SNP-major"),
        ("unknown_contig", "p.bim:2: contig 'chrUn' is not in GRCh37"),
        ("five_columns", "p.bim:1: 5 columns, expected 6"),
        ("duplicate_iid", "p.fam:2: sample 's0' is also on line 1"),
        ("position_outside", "p.bim:1: position 99999999 is outside contig 22"),
    ],
)
def test_bad_plink_filesets(tmp_path: Path, no_jvm: None, damage: str, expected: str) -> None:
    bed = _plink_fileset(tmp_path)
    bim, fam = bed.with_suffix(".bim"), bed.with_suffix(".fam")
    if damage == "no_fam":
        fam.unlink()
    elif damage == "truncated_bed":
        bed.write_bytes(bed.read_bytes()[:-1])
    elif damage == "bad_magic":
        bed.write_bytes(b"\x00\x00" + bed.read_bytes()[2:])
    elif damage == "individual_major":
        bed.write_bytes(b"\x6c\x1b\x00" + bed.read_bytes()[3:])
    elif damage == "unknown_contig":
        bim.write_text(bim.read_text().replace("22\trs2", "chrUn\trs2"))
    elif damage == "five_columns":
        bim.write_text(bim.read_text().replace("22\trs1\t0\t", "22\trs1\t"))
    elif damage == "duplicate_iid":
        fam.write_text(fam.read_text().replace("s1 ", "s0 "))
    elif damage == "position_outside":
        bim.write_text(bim.read_text().replace("16050075", "99999999"))
    _fails(tmp_path, expected, bed)


def test_the_fileset_prefix_works_and_inputs_of_two_kinds_are_refused(
    tmp_path: Path, no_jvm: None
) -> None:
    bed = _plink_fileset(tmp_path)
    vcf = tmp_path / "x.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n")
    _fails(tmp_path, "ingest takes one kind of input at a time", bed, vcf)
    _fails(tmp_path, "ingest takes one PLINK 1 fileset, got 2", bed, _plink_fileset(tmp_path, "q"))
    bed.with_suffix(".fam").unlink()
    _fails(tmp_path, "p.fam: the .fam is missing", tmp_path / "p")  # the prefix alone


def test_a_matrix_table_that_was_not_written_to_the_end(tmp_path: Path, no_jvm: None) -> None:
    mt = tmp_path / "x.mt"
    mt.mkdir()
    _fails(tmp_path, "x.mt: not a Hail MatrixTable (no metadata.json.gz)", mt)
    (mt / "metadata.json.gz").write_bytes(b"")
    _fails(tmp_path, "x.mt: the MatrixTable was not written to the end (no _SUCCESS)", mt)


@pytest.fixture(scope="module")
def bgens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not have_programs("plink2"):
        pytest.skip("plink2 is not installed (CI installs it)")
    folder = tmp_path_factory.mktemp("bgen")
    samples = [f"S{i}" for i in range(6)]
    lines = [
        "##fileformat=VCFv4.2",
        '##FORMAT=<ID=DS,Number=1,Type=Float,Description="ALT dosage">',
        "##contig=<ID=22,length=51304566>",
        "\t".join(
            ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *samples]
        ),
    ]
    for j in range(4):
        row = [f"{(i * 0.37 + j * 0.21) % 2:.3f}" for i in range(len(samples))]
        lines.append(
            "\t".join(
                ["22", str(16050000 + 100 * j), f"rs{j}", "A", "G", ".", "PASS", ".", "DS", *row]
            )
        )
    (folder / "t.vcf").write_text("\n".join(lines) + "\n")
    for out, extra in (("b8", ["bits=8"]), ("b16", [])):
        run_command(
            ["plink2", "--vcf", "t.vcf", "dosage=DS", "--export", "bgen-1.2", *extra, "ref-first", "--out", out],
            cwd=folder,
        )  # fmt: skip
    # chrX, two males: plink2 writes their non-PAR genotypes with ploidy 1
    x_lines = [
        lines[0],
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "##contig=<ID=X,length=155270560>",
        lines[3],
        "\t".join(["X", "100000", "x0", "A", "G", ".", "PASS", ".", "GT", *["0/1"] * 6]),
        "\t".join(["X", "5000000", "x1", "A", "G", ".", "PASS", ".", "GT", "1", "0", *["0/1"] * 4]),
    ]
    (folder / "x.vcf").write_text("\n".join(x_lines) + "\n")
    (folder / "sex.txt").write_text(
        "#IID\tSEX\n" + "".join(f"S{i}\t{1 if i < 2 else 2}\n" for i in range(6))
    )
    run_command(
        ["plink2", "--vcf", "x.vcf", "--update-sex", "sex.txt", "--split-par", "b37", "--export",
         "bgen-1.2", "bits=8", "ref-first", "--out", "bx"],
        cwd=folder,
    )  # fmt: skip
    return folder


@needs_plink2
def test_bad_bgen_inputs(bgens: Path, tmp_path: Path, no_jvm: None) -> None:
    work = tmp_path / "in"
    work.mkdir()
    for name in ("b8.bgen", "b8.sample", "b16.bgen"):
        shutil.copy(bgens / name, work / name)
    _fails(
        tmp_path,
        "b16.bgen: stores 16-bit probabilities; Hail reads 8-bit BGEN only",
        work / "b16.bgen",
    )
    # a .sample with one sample too few
    short = work / "short.sample"
    short.write_text("".join((work / "b8.sample").read_text().splitlines(keepends=True)[:-1]))
    _fails(
        tmp_path,
        "short.sample: lists 5 samples but",
        work / "b8.bgen",
        bgen_sample=str(short),
    )
    # cut inside the last genotype block
    cut = work / "cut.bgen"
    cut.write_bytes((work / "b8.bgen").read_bytes()[:-5])
    _fails(tmp_path, "cut.bgen: the genotype block of its last variant ends at byte", cut)
    # cut inside a variant header
    data = (work / "b8.bgen").read_bytes()
    offset = int.from_bytes(data[:4], "little")
    (work / "head.bgen").write_bytes(data[: offset + 4 + 3])
    _fails(
        tmp_path, "head.bgen: ends inside variant 1 of 4; the file is truncated", work / "head.bgen"
    )
    # haploid males on chrX: Hail's import_bgen fails on them with a Java error
    for name in ("bx.bgen", "bx.sample"):
        shutil.copy(bgens / name, work / name)
    _fails(
        tmp_path,
        "bx.bgen: variant 2 has samples of ploidy 1 to 2 (e.g. males on chrX); Hail reads diploid "
        "BGEN only — export it as a VCF",
        work / "bx.bgen",
    )
    # a .sample whose ID_2 repeats
    dup = work / "dup.sample"
    dup.write_text((work / "b8.sample").read_text().replace("S1", "S0"))
    _fails(
        tmp_path,
        "dup.sample:4: sample 'S0' is also on line 3",
        work / "b8.bgen",
        bgen_sample=str(dup),
    )


def test_hard_call_threshold_outside_its_range(tmp_path: Path, no_jvm: None) -> None:
    _fails(
        tmp_path,
        "--hard-call-threshold 0.5: must be in [0, 0.5)",
        _plink_fileset(tmp_path),
        hard_call_threshold=0.5,
    )
