"""The Dataproc job entry point, run here: the same CLI, logs copied into the run folder."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gwas_prs.dataproc import job_entry
from gwas_prs.dataproc.jobs import job_entry_path

TINY_VCF = """##fileformat=VCFv4.2
##contig=<ID=22,length=51304566>
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\tS3
22\t16050075\trs1\tA\tG\t.\tPASS\t.\tGT\t0/0\t0/1\t1/1
22\t16050115\trs2\tG\tA\t.\tPASS\t.\tGT\t0/1\t0/0\t0/0
22\t16050213\trs3\tC\tT,G\t.\tPASS\t.\tGT\t0/1\t0/2\t1/1
"""


def test_copy_new_logs_copies_only_fresh_logs(tmp_path: Path) -> None:
    logs = tmp_path / "local-logs"
    logs.mkdir()
    old = logs / "qc-old.log"
    old.write_text("old")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    (logs / "qc-new.log").write_text("new")
    (logs / "notes.txt").write_text("not a log")
    run = tmp_path / "run"
    copied = job_entry.copy_new_logs(str(logs), str(run), since=time.time() - 60)
    assert copied == [f"{run}/logs/qc-new.log"]
    assert sorted(p.name for p in (run / "logs").iterdir()) == ["qc-new.log"]


def test_entry_copies_logs_even_when_the_stage_fails(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_jvm: None,
) -> None:
    import gwas_prs.engine.hail_context

    log_dir = tmp_path / "local-logs"
    log_dir.mkdir()
    monkeypatch.setenv("GWAS_PRS_SPARK_MASTER", "local[1]")

    def fake_log_dir() -> str:
        (log_dir / "ingest-20260101-000000.log").write_text("Hail log of the failed command")
        return str(log_dir)

    monkeypatch.setattr(gwas_prs.engine.hail_context, "remote_run_log_dir", fake_log_dir)
    run = tmp_path / "run"
    status = job_entry.main(["--", "ingest", str(tmp_path / "missing.vcf"), "--run", str(run)])
    assert status == 2
    assert (
        run / "logs" / "ingest-20260101-000000.log"
    ).read_text() == "Hail log of the failed command"
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'missing.vcf'}" in err
    assert f"gwas-prs: Hail log copied to {run}/logs/ingest-20260101-000000.log" in err


@pytest.mark.slow
def test_entry_runs_ingest_locally(tmp_path: Path) -> None:
    """The packaged entry script runs 'ingest' on a tiny VCF (one local JVM, in a subprocess)."""
    vcf = tmp_path / "tiny.vcf.gz"
    vcf.write_bytes(gzip.compress(TINY_VCF.encode()))
    run = tmp_path / "run"
    env = {**os.environ, "GWAS_PRS_SPARK_MASTER": "local[1]"}
    result = subprocess.run(
        [
            sys.executable,
            str(job_entry_path()),
            "--",
            "ingest",
            str(vcf),
            "--run",
            str(run),
            "--driver-memory",
            "1g",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["ingest"]["status"] == "complete"
    assert manifest["stages"]["ingest"]["counts"]["variants"] == 4
    assert [p.name.startswith("ingest-") for p in (run / "logs").glob("*.log")] == [True]
