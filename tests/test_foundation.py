"""Unit tests of the foundation modules (no JVM)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gwas_prs.core.errors import EnvironmentSetupError, ExternalCommandError, StageNotCompleteError
from gwas_prs.core.processes import run_command
from gwas_prs.core.reference import reference_contigs
from gwas_prs.core.run_folder import RunFolder, require_complete, stage_run
from gwas_prs.engine.hail_context import check_java, default_driver_memory, parse_java_version
from gwas_prs.formats.bgzf import BGZF_EOF, BgzfWriter, is_bgzf_header
from gwas_prs.formats.vcf_validation import detect_compression, scan_vcf
from tests.vcf_factory import vcf_lines, write_vcf


def test_bgzf_roundtrip_is_byte_identical(tmp_path: Path) -> None:
    data = b"".join(f"line {i}\t{'x' * (i % 97)}\n".encode() for i in range(50_000))
    path = tmp_path / "a.bgz"
    with BgzfWriter(open(path, "wb")) as writer:
        writer.write(data)
    raw = path.read_bytes()
    assert is_bgzf_header(raw[:18])
    assert raw.endswith(BGZF_EOF)
    assert gzip.decompress(raw) == data
    assert detect_compression(str(path)) == "bgzf"
    # every block is at most 64 KiB compressed, as BGZF requires
    offset, blocks = 0, 0
    while offset < len(raw):
        block_size = int.from_bytes(raw[offset + 16 : offset + 18], "little") + 1
        assert block_size <= 65536
        zlib.decompress(raw[offset + 18 : offset + block_size - 8], -15)
        offset += block_size
        blocks += 1
    assert offset == len(raw) and blocks > 10


def test_plain_gzip_is_converted_while_scanning(tmp_path: Path) -> None:
    source = write_vcf(tmp_path / "a.vcf.gz", vcf_lines(), "gzip")
    assert detect_compression(str(source)) == "gzip"
    target = tmp_path / "conv" / "a.vcf.bgz"
    scan = scan_vcf(str(source), reference_contigs("GRCh37"), convert_to=str(target))
    assert scan.converted_to == str(target)
    assert gzip.decompress(target.read_bytes()) == gzip.decompress(source.read_bytes())
    assert (scan.records, scan.multiallelic_records, scan.alt_alleles) == (6, 2, 8)
    assert scan.expected_rows_per_contig == {"21": 3, "22": 3}
    assert scan.dropped_alleles == {"symbolic": 1, "star": 1}


def test_reference_contigs_come_from_hails_jar() -> None:
    grch37 = reference_contigs("GRCh37")
    assert grch37.lengths["1"] == 249_250_621 and grch37.lengths["MT"] == 16_569
    assert grch37.resolve("chr22") == "22" and grch37.resolve("chrM") == "MT"
    assert grch37.resolve("chrUn_gl000220") is None
    grch38 = reference_contigs("GRCh38")
    assert grch38.lengths["chr1"] == 248_956_422
    assert grch38.resolve("22") == "chr22" and grch38.resolve("MT") == "chrM"
    assert grch38.autosomes[0] == "chr1" and len(grch38.autosomes) == 22


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('openjdk version "17.0.15" 2025-04-15', ("17.0.15", 17)),
        ('openjdk version "11.0.22" 2024-01-16', ("11.0.22", 11)),
        ('java version "1.8.0_292"', ("1.8.0_292", 8)),
        ('openjdk version "21" 2023-09-19', ("21", 21)),
    ],
)
def test_parse_java_version(text: str, expected: tuple[str, int]) -> None:
    assert parse_java_version(text) == expected


def _fake_java(directory: Path, version_line: str) -> None:
    java = directory / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)


def test_missing_java_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(
        EnvironmentSetupError, match=r"Java was not found .*apt-get install openjdk-17-jre-headless"
    ):
        check_java()


def test_old_java_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_java(tmp_path, 'java version "1.8.0_292"')
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(EnvironmentSetupError, match=r"Java 1\.8\.0_292 .* is too old"):
        check_java()


def test_java_from_java_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    _fake_java(tmp_path / "bin", 'openjdk version "11.0.22" 2024-01-16')
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    runtime = check_java()
    assert (runtime.major, runtime.path) == (11, str(tmp_path / "bin" / "java"))


def test_driver_memory_is_sized_from_the_machine() -> None:
    gib = 2**30
    assert default_driver_memory(24 * gib) == "6g"  # capped
    assert default_driver_memory(8 * gib) == "5g"
    assert default_driver_memory(4 * gib) == "2g"
    assert default_driver_memory(2 * gib) == "1g"


def test_run_command_reports_failures(tmp_path: Path) -> None:
    assert run_command(["sh", "-c", "echo hi"]).stdout == "hi\n"
    with pytest.raises(
        ExternalCommandError, match="'sh' exited with status 3 \\(trying to fail\\): boom"
    ):
        run_command(["sh", "-c", "echo boom >&2; exit 3"], what="fail")
    with pytest.raises(EnvironmentSetupError, match="'no-such-program-xyz' is not installed"):
        run_command(["no-such-program-xyz"])
    assert run_command(["no-such-program-xyz", "--flag"], dry_run=True).returncode == 0


def test_stage_lifecycle(tmp_path: Path) -> None:
    run = RunFolder(str(tmp_path / "run"))
    with pytest.raises(StageNotCompleteError, match="needs the 'ingest' stage, which has not run"):
        require_complete(run, "ingest", needed_by="qc")
    final = run.path("bronze", "thing.txt")
    with (
        pytest.raises(RuntimeError),
        stage_run(run, "ingest", parameters={"a": 1}, final_outputs=[final]) as stage,
    ):
        tmp = stage.temporary_path(final)
        Path(tmp).parent.mkdir(parents=True, exist_ok=True)
        Path(tmp).write_text("half")
        raise RuntimeError("disk full")
    assert not list(Path(run.path("bronze")).iterdir())  # temporary removed
    with pytest.raises(StageNotCompleteError, match=r"failed \(disk full\)"):
        require_complete(run, "ingest", needed_by="qc")
    with stage_run(run, "ingest", parameters={"a": 1}, final_outputs=[final]) as stage:
        tmp = stage.temporary_path(final)
        Path(tmp).write_text("whole")
        stage.publish(tmp, final, "thing")
        stage.counts["n"] = 3
    record = require_complete(run, "ingest", needed_by="qc")
    assert record.counts == {"n": 3} and record.parameters == {"a": 1}
    assert record.wall_time_s is not None and record.wall_time_s >= 0
    os.remove(final)
    with pytest.raises(
        StageNotCompleteError, match="output 'thing' of the 'ingest' stage is missing"
    ):
        require_complete(run, "ingest", needed_by="qc")


def test_damaged_manifest_is_reported(tmp_path: Path) -> None:
    run = RunFolder(str(tmp_path))
    Path(run.manifest).write_text("{not json")
    with pytest.raises(Exception, match=r"manifest\.json: not valid JSON"):
        require_complete(run, "ingest", needed_by="qc")


def test_help_is_fast_and_starts_no_jvm() -> None:
    code = (
        "import sys, time; t = time.perf_counter();"
        "from gwas_prs.cli.app import app;"
        "import json; print(json.dumps({'hail': 'hail' in sys.modules, 'pandas': 'pandas' in sys.modules,"
        " 'pyspark': 'pyspark' in sys.modules, 's': time.perf_counter() - t}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert loaded["hail"] is False and loaded["pyspark"] is False and loaded["pandas"] is False
    started = time.perf_counter()
    help_run = subprocess.run(
        [sys.executable, "-m", "gwas_prs.cli.app", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "ingest" in help_run.stdout and "demo" in help_run.stdout
    # not a timing assertion on the suite: a JVM start alone takes > 3 s here
    assert time.perf_counter() - started < 10


def test_every_command_has_help() -> None:
    from gwas_prs.cli.app import app

    runner = CliRunner()
    for command in ("ingest", "demo"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0
        assert "Usage:" in result.output and len(result.output.splitlines()) > 8
