"""The Dataproc job entry point, run here: the same CLI, logs copied into the run folder."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

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


def test_copy_job_logs_copies_the_jobs_logs_into_its_tag_folder(tmp_path: Path) -> None:
    logs = tmp_path / "local-logs"
    logs.mkdir()
    (logs / "qc-new.log").write_text("new")
    (logs / "notes.txt").write_text("not a log")
    run = tmp_path / "run"
    copied = job_entry.copy_job_logs(str(logs), str(run), "qc-20260101-000000-abcdef")
    assert copied == [f"{run}/logs/qc-20260101-000000-abcdef/qc-new.log"]
    assert [p.name for p in (run / "logs" / "qc-20260101-000000-abcdef").iterdir()] == [
        "qc-new.log"
    ]


def fake_stage(log_name: str, text: str, status: int, also: Any = None) -> Any:
    """A stand-in for the Typer app: writes a Hail log where a stage would (the real
    remote_run_log_dir()), optionally runs another job meanwhile, exits with status."""
    from gwas_prs.engine.hail_context import remote_run_log_dir

    def app(args: list[str], prog_name: str) -> None:
        (Path(remote_run_log_dir()) / log_name).write_text(text)
        if also is not None:
            also()
        raise SystemExit(status)

    return app


def test_entry_copies_logs_even_when_the_stage_fails(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_jvm: None,
) -> None:
    import gwas_prs.cli.app

    monkeypatch.setenv("GWAS_PRS_SPARK_MASTER", "local[1]")
    monkeypatch.setattr(
        gwas_prs.cli.app, "app", fake_stage("ingest-1.log", "Hail log of the failed command", 2)
    )
    run = tmp_path / "run"
    status = job_entry.main(
        ["--", "--job-tag", "ingest-t1", "ingest", str(tmp_path / "missing.vcf"), "--run", str(run)]
    )
    assert status == 2
    assert (run / "logs" / "ingest-t1" / "ingest-1.log").read_text() == (
        "Hail log of the failed command"
    )
    err = capsys.readouterr().err
    assert f"gwas-prs: Hail log copied to {run}/logs/ingest-t1/ingest-1.log" in err
    assert err.splitlines()[-1] == "gwas-prs: the stage exited with status 2"
    assert "GWAS_PRS_LOG_DIR" not in os.environ  # restored


def test_entry_reports_a_real_stage_failure(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_jvm: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GWAS_PRS_SPARK_MASTER", "local[1]")
    run = tmp_path / "run"
    status = job_entry.main(["--", "ingest", str(tmp_path / "missing.vcf"), "--run", str(run)])
    assert status == 2
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'missing.vcf'}" in err
    assert err.splitlines()[-1] == "gwas-prs: the stage exited with status 2"


def test_concurrent_jobs_copy_only_their_own_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_jvm: None
) -> None:
    """Job B runs while job A runs (on one master); before, both wrote into one shared
    temp folder and A copied B's log too."""
    import gwas_prs.cli.app

    monkeypatch.setenv("GWAS_PRS_SPARK_MASTER", "local[1]")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    run_a, run_b = tmp_path / "run-a", tmp_path / "run-b"

    def job_b() -> None:
        with monkeypatch.context() as inner:
            inner.setattr(gwas_prs.cli.app, "app", fake_stage("qc-b.log", "B", 0))
            assert job_entry.main(["--job-tag", "qc-b", "qc", str(run_b)]) == 0

    monkeypatch.setattr(gwas_prs.cli.app, "app", fake_stage("qc-a.log", "A", 0, also=job_b))
    assert job_entry.main(["--job-tag", "qc-a", "qc", str(run_a)]) == 0
    assert sorted(str(p.relative_to(run_a)) for p in run_a.rglob("*.log")) == ["logs/qc-a/qc-a.log"]
    assert sorted(str(p.relative_to(run_b)) for p in run_b.rglob("*.log")) == ["logs/qc-b/qc-b.log"]
    assert list((tmp_path / "tmp").iterdir()) == []  # the private folders are removed


def test_remote_run_log_dir_honours_the_job_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gwas_prs.engine.hail_context import LOG_DIR_ENV, remote_run_log_dir

    monkeypatch.setenv(LOG_DIR_ENV, str(tmp_path / "job-1"))
    assert remote_run_log_dir() == str(tmp_path / "job-1")
    assert (tmp_path / "job-1").is_dir()
    monkeypatch.delenv(LOG_DIR_ENV)
    assert remote_run_log_dir().endswith("gwas-prs-logs")


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
    assert [p.name.startswith("ingest-") for p in (run / "logs").glob("ingest-*/*.log")] == [True]
    assert result.stderr.splitlines()[-1] == "gwas-prs: the stage exited with status 0"
