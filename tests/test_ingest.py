"""Ingest with real Hail local mode (one Hail context for the session)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from gwas_prs.core.errors import (
    ComputationError,
    InputError,
    OutputExistsError,
    StageNotCompleteError,
)
from gwas_prs.core.run_folder import RunFolder, require_complete
from gwas_prs.stages.ingest import IngestConfig, run_ingest
from tests.conftest import have_programs
from tests.vcf_factory import RECORDS, bgzf_bytes, record_lines, vcf_lines, write_vcf

pytestmark = pytest.mark.slow

UTF8_BOM = b"\xef\xbb\xbf"


def count_biallelic_rows(path: Path) -> Counter[str]:
    """Independent count of the rows ingest must produce, from the VCF text:
    one row per ALT allele that is not symbolic (<...>), '*' or a breakend."""
    rows: Counter[str] = Counter()
    with gzip.open(path, "rt") as handle:
        for line in handle:
            if line.startswith("#"):
                continue
            chrom, _pos, _id, _ref, alt = line.split("\t", 5)[:5]
            for allele in alt.split(","):
                if (
                    allele == "."
                    or allele == "*"
                    or allele.startswith("<")
                    or "[" in allele
                    or "]" in allele
                ):
                    continue
                rows[chrom] += 1
    return rows


def test_chr21_22_counts_match_the_vcf_text(chr21_22_run: Path, bundled_1kg: dict) -> None:
    import hail as hl

    mt = hl.read_matrix_table(str(chr21_22_run / "bronze" / "genotypes.mt"))
    assert mt.count_cols() == 1126
    per_contig = mt.aggregate_rows(hl.agg.counter(mt.locus.contig))
    expected = count_biallelic_rows(bundled_1kg["vcfs"][21]) + count_biallelic_rows(
        bundled_1kg["vcfs"][22]
    )
    assert dict(per_contig) == dict(expected) == {"21": 1140, "22": 1145}
    assert mt.aggregate_rows(hl.agg.all(hl.len(mt.alleles) == 2))
    manifest = json.loads((chr21_22_run / "manifest.json").read_text())
    stage = manifest["stages"]["ingest"]
    assert stage["status"] == "complete"
    assert stage["counts"]["variants"] == 2285
    assert stage["counts"]["records_read"] == 2240
    assert stage["counts"]["expected_variants"] == 2285
    assert stage["counts"]["variants_per_contig"] == {"21": 1140, "22": 1145}
    assert stage["counts"]["samples_without_metadata"] == 0
    assert stage["counts"]["metadata_rows_without_sample"] == 2535 - 1126
    digest = hashlib.sha256(bundled_1kg["vcfs"][21].read_bytes()).hexdigest()
    assert stage["inputs"][0]["fingerprint"] == f"sha256:{digest}"
    assert stage["inputs"][0]["size"] == bundled_1kg["vcfs"][21].stat().st_size
    assert stage["versions"]["hail"] == "0.2.139"


def test_sample_metadata_is_joined(chr21_22_run: Path) -> None:
    import hail as hl

    mt = hl.read_matrix_table(str(chr21_22_run / "bronze" / "genotypes.mt"))
    counts = mt.aggregate_cols(hl.agg.counter(mt.super_pop))
    # samples.panel restricted to the 1,126 VCF samples (shared/data/1kg/README.md)
    assert counts == {"AFR": 364, "AMR": 262, "EAS": 207, "EUR": 190, "SAS": 103}
    cols = mt.cols()
    row = cols.filter(cols.s == "HG00096").collect()[0]
    assert (row.pop, row.super_pop, row.gender) == ("GBR", "EUR", "male")


@pytest.mark.reference
@pytest.mark.skipif(
    not have_programs("bcftools"), reason="bcftools is not installed (CI installs it)"
)
def test_counts_match_bcftools(chr21_22_run: Path, bundled_1kg: dict) -> None:
    """bcftools norm -m-any FILE | bcftools view -H -e 'ALT~"^<" || ALT="*" || ALT~"\\[" || ALT~"\\]"' | wc -l"""
    from gwas_prs.core.processes import run_command

    manifest = json.loads((chr21_22_run / "manifest.json").read_text())
    for contig in (21, 22):
        normed = run_command(
            ["bcftools", "norm", "-m-any", "-O", "v", str(bundled_1kg["vcfs"][contig])]
        )
        tmp = chr21_22_run / f"normed{contig}.vcf"
        tmp.write_text(normed.stdout)
        kept = run_command(
            [
                "bcftools",
                "view",
                "-H",
                "-e",
                'ALT~"^<" || ALT="*" || ALT~"\\[" || ALT~"\\]"',
                str(tmp),
            ]
        )
        n = len(kept.stdout.splitlines())
        assert manifest["stages"]["ingest"]["counts"]["variants_per_contig"][str(contig)] == n


def test_split_recode_and_drop_on_tiny_vcf(hail_context: None, tmp_path: Path) -> None:
    import hail as hl

    records = [(f"chr{c}", p, r, a) for c, p, r, a in RECORDS]
    vcf = write_vcf(tmp_path / "tiny.vcf.gz", vcf_lines(records=records), "gzip")
    result = run_ingest(IngestConfig(vcfs=(str(vcf),), run_dir=str(tmp_path / "run")))
    mt = hl.read_matrix_table(result.output)
    rows = mt.rows().collect()
    got = [(r.locus.contig, r.locus.position, list(r.alleles), r.was_split) for r in rows]
    assert got == [
        ("21", 9411239, ["G", "A"], False),
        ("21", 9411245, ["C", "A"], True),
        ("21", 9411245, ["C", "T"], True),
        ("22", 16050075, ["A", "G"], False),
        ("22", 16050115, ["G", "A"], True),
        ("22", 16050213, ["C", "T"], False),
    ]
    assert result.counts["dropped_alleles"] == {"star": 1, "symbolic": 1}
    assert result.counts["multiallelic_records"] == 2
    # record 2 genotypes: 0|0, 0|1, 1|1, 0|0 for C>A,T; after splitting, T-row calls
    # a_index=2: '0|1' (A) becomes 0|0 in the T row (downcoded), '1|1' becomes 0/0.
    calls = mt.filter_rows(mt.locus.position == 9411245).GT.collect()
    assert [str(c) for c in calls[:4]] == ["0|1", "1|1", "0|0", "0|1"]


def test_keep_symbolic_and_grch38_recoding(hail_context: None, tmp_path: Path) -> None:
    import hail as hl

    records = [(c, p, r, a) for c, p, r, a in RECORDS]
    vcf = write_vcf(tmp_path / "tiny.vcf", vcf_lines(records=records))
    result = run_ingest(
        IngestConfig(
            vcfs=(str(vcf),),
            run_dir=str(tmp_path / "run"),
            reference_genome="GRCh38",
            keep_symbolic=True,
        )
    )
    mt = hl.read_matrix_table(result.output)
    assert mt.aggregate_rows(hl.agg.counter(mt.locus.contig)) == {"chr21": 4, "chr22": 4}
    assert result.counts["variants"] == 8 == result.counts["expected_variants"]


def test_rerun_refuses_without_overwrite(hail_context: None, tmp_path: Path) -> None:
    vcf = write_vcf(tmp_path / "tiny.vcf", vcf_lines())
    config = IngestConfig(vcfs=(str(vcf),), run_dir=str(tmp_path / "run"))
    run_ingest(config)
    with pytest.raises(
        OutputExistsError, match="the 'ingest' stage is already complete; pass --overwrite"
    ):
        run_ingest(config)
    manifest_path = tmp_path / "run" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["stages"]["qc"] = {"status": "complete", "started": "x", "outputs": {}}
    manifest_path.write_text(json.dumps(manifest))
    again = run_ingest(
        IngestConfig(vcfs=(str(vcf),), run_dir=str(tmp_path / "run"), overwrite=True)
    )
    assert again.counts["variants"] == 6
    stages = json.loads(manifest_path.read_text())["stages"]
    assert stages["ingest"]["status"] == "complete"
    assert stages["qc"]["status"] == "stale"


def test_killed_ingest_leaves_nothing_a_later_stage_accepts(
    hail_context: None, tmp_path: Path, bundled_1kg: dict
) -> None:
    run = tmp_path / "run"
    vcfs = [str(p) for p in bundled_1kg["vcfs"].values()]
    command = [sys.executable, "-m", "gwas_prs.cli.app", "ingest", *vcfs, "--run", str(run)]
    command += ["--cores", "1", "--driver-memory", "1g"]
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    partial: list[Path] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        partial = (
            list((run / "bronze").glob(".genotypes.mt.partial-*"))
            if (run / "bronze").exists()
            else []
        )
        if partial:
            time.sleep(1.0)  # let Hail write part of the MatrixTable
            break
        time.sleep(0.2)
    assert partial, "the ingest process never started writing"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (run / "bronze" / "genotypes.mt").exists()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["ingest"]["status"] == "running"
    with pytest.raises(StageNotCompleteError, match="the 'ingest' stage did not finish"):
        require_complete(RunFolder(str(run)), "ingest", needed_by="qc")
    # the next run (no --overwrite needed) cleans the partial output and completes
    result = run_ingest(IngestConfig(vcfs=tuple(vcfs[20:22]), run_dir=str(run)))
    assert result.counts["variants"] == 2285
    assert not list((run / "bronze").glob(".genotypes.mt.partial-*"))
    require_complete(RunFolder(str(run)), "ingest", needed_by="qc")


def _assert_nothing_published(run: Path, error_start: str) -> None:
    """The stage is recorded failed; no bronze MatrixTable, partial output or BGZF copy."""
    stage = json.loads((run / "manifest.json").read_text())["stages"]["ingest"]
    assert stage["status"] == "failed"
    assert stage["error"].startswith(error_start), stage["error"]
    assert not (run / "bronze" / "genotypes.mt").exists()
    assert not list((run / "bronze").glob(".genotypes.mt.partial-*"))
    assert not list(run.glob("tmp/bgzf-*"))


def _append_after_the_check(monkeypatch: pytest.MonkeyPatch, vcf: Path, compression: str) -> None:
    """Make ingest's check return, then append two records to ``vcf`` (a file still being
    written by another program), before Hail imports."""
    import gwas_prs.stages.ingest as ingest

    extra = (
        "\n".join(record_lines([("22", 16050300, "A", "G"), ("22", 16050400, "C", "T")])) + "\n"
    ).encode()
    appended = {"plain": extra, "gzip": gzip.compress(extra), "bgzf": bgzf_bytes(extra)}
    real = ingest.validate_vcfs

    def validate_then_append(*args: object, **kwargs: object) -> object:
        result = real(*args, **kwargs)  # type: ignore[arg-type]
        with open(vcf, "ab") as handle:
            handle.write(appended[compression])
        return result

    monkeypatch.setattr(ingest, "validate_vcfs", validate_then_append)


@pytest.mark.parametrize("compression", ["plain", "gzip"])
def test_file_appended_after_the_check_is_imported_as_checked(
    hail_context: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compression: str
) -> None:
    """Plain and plain-gzip input: Hail imports the BGZF copy written during the check, so
    the records appended later are not imported and the manifest's fingerprint is that
    of what was imported."""
    vcf = write_vcf(
        tmp_path / f"grow.vcf{'.gz' if compression == 'gzip' else ''}", vcf_lines(), compression
    )
    checked = vcf.read_bytes()
    _append_after_the_check(monkeypatch, vcf, compression)
    run = tmp_path / "run"
    result = run_ingest(IngestConfig(vcfs=(str(vcf),), run_dir=str(run)))
    assert vcf.stat().st_size > len(checked)  # the file did grow
    assert result.counts["variants"] == 6 == result.counts["expected_variants"]
    stage = json.loads((run / "manifest.json").read_text())["stages"]["ingest"]
    assert stage["inputs"][0]["size"] == len(checked)
    assert stage["inputs"][0]["fingerprint"] == f"sha256:{hashlib.sha256(checked).hexdigest()}"
    assert not list(run.glob("tmp/bgzf-*"))


def test_bgzf_file_appended_after_the_check_is_refused(
    hail_context: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BGZF input is read in place (no copy): re-fingerprinted after the import, it is
    refused when it changed, and nothing is published."""
    vcf = write_vcf(tmp_path / "grow.vcf.bgz", vcf_lines(), "bgzf")
    size = vcf.stat().st_size
    _append_after_the_check(monkeypatch, vcf, "bgzf")
    run = tmp_path / "run"
    with pytest.raises(
        InputError,
        match=rf"^{vcf}: the file changed while ingest was running \(its size went from "
        rf"{size:,} to [0-9,]+ bytes\), so Hail may not have imported what was checked",
    ):
        run_ingest(IngestConfig(vcfs=(str(vcf),), run_dir=str(run)))
    _assert_nothing_published(run, f"{vcf}: the file changed while ingest was running")


def test_count_mismatch_is_an_error_and_publishes_nothing(
    hail_context: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When Hail writes another number of variants than the check counted, ingest fails
    (ComputationError, exit 5) and leaves nothing that looks complete."""
    import gwas_prs.stages.ingest as ingest

    real = ingest.validate_vcfs

    def overcount(*args: object, **kwargs: object) -> object:
        samples, scans = real(*args, **kwargs)  # type: ignore[arg-type]
        scans[0].expected_rows_per_contig["21"] += 1
        return samples, scans

    monkeypatch.setattr(ingest, "validate_vcfs", overcount)
    vcf = write_vcf(tmp_path / "tiny.vcf.gz", vcf_lines(), "gzip")
    run = tmp_path / "run"
    with pytest.raises(ComputationError) as caught:
        run_ingest(IngestConfig(vcfs=(str(vcf),), run_dir=str(run)))
    message = str(caught.value)
    assert message.startswith(
        "Hail wrote 6 variants but the checked input implies 7 (written vs expected per "
        "contig: 21: 3 vs 4); nothing was published"
    ), message
    assert "\n" not in message and caught.value.exit_code == 5
    _assert_nothing_published(run, "Hail wrote 6 variants")


def test_plain_text_named_vcf_gz_is_imported(hail_context: None, tmp_path: Path) -> None:
    """Uncompressed text named .vcf.gz: the check knows it is plain and Hail imports its
    BGZF copy (before, Hail's force_bgz import failed with an IOException)."""
    vcf = write_vcf(tmp_path / "plain.vcf.gz", vcf_lines(), "plain")
    run = tmp_path / "run"
    result = run_ingest(IngestConfig(vcfs=(str(vcf),), run_dir=str(run)))
    assert result.counts["variants"] == 6 == result.counts["expected_variants"]
    assert any("uncompressed file(s) were copied as BGZF" in note for note in result.notes)
    assert not list(run.glob("tmp/bgzf-*"))


@pytest.mark.parametrize("compression", ["plain", "gzip", "bgzf"])
def test_utf8_bom_is_accepted_and_left_out_of_the_import(
    hail_context: None, tmp_path: Path, compression: str
) -> None:
    """A UTF-8 byte-order mark before ##fileformat (a file saved by a Windows editor)."""
    import hail as hl

    vcf = write_vcf(tmp_path / "bom.vcf.gz", vcf_lines(), compression, prefix=UTF8_BOM)
    result = run_ingest(IngestConfig(vcfs=(str(vcf),), run_dir=str(tmp_path / "run")))
    assert result.counts["variants"] == 6 == result.counts["expected_variants"]
    assert (
        f"{vcf}: starts with a UTF-8 byte-order mark; it was left out of the copy Hail imported"
        in result.notes
    )
    mt = hl.read_matrix_table(result.output)
    assert mt.s.collect() == ["S1", "S2", "S3", "S4"]


def test_skip_unknown_contigs_imports_the_known_ones(hail_context: None, tmp_path: Path) -> None:
    """--skip-unknown-contigs: the check counts the skipped records and Hail drops them
    (before, Hail was asked to fail on them)."""
    records = [*RECORDS, ("chrUn_gl000220", 1000, "A", "G")]
    vcf = write_vcf(tmp_path / "unknown.vcf.bgz", vcf_lines(records=records), "bgzf")
    result = run_ingest(
        IngestConfig(vcfs=(str(vcf),), run_dir=str(tmp_path / "run"), skip_unknown_contigs=True)
    )
    assert result.counts["variants"] == 6 == result.counts["expected_variants"]
    assert result.counts["skipped_unknown_contig_records"] == 1
