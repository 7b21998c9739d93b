"""``gwas-prs dataproc submit`` and ``diagnose`` (issue 16, item 6): job properties,
the stage's own exit status after a failed job, and collecting the project's logs.

hailctl/gcloud are fakes at the process boundary (:mod:`tests.fake_programs`); the
driver output and the run folders' logs live on the real storage emulator. No JVM.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gwas_prs.dataproc.jobs import job_entry_path
from tests.cli_helpers import invoke
from tests.fake_programs import FakePrograms, install_fakes
from tests.gcs_emulator import EmulatorServer
from tests.test_dataproc_cli import cluster_json

DESCRIBE = ["dataproc", "clusters", "describe", "gwas-1"]
JOBS_LIST = ["dataproc", "jobs", "list"]
TAG = "qc-20260101-120000-abcdef"


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_jvm: None) -> Iterator[FakePrograms]:
    import gwas_prs.dataproc.jobs

    programs = install_fakes(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{programs.folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(gwas_prs.dataproc.jobs, "new_job_tag", lambda command: TAG)
    programs.respond("gcloud", DESCRIBE, stdout=json.dumps(cluster_json("gwas-1")))
    yield programs


@pytest.fixture
def bucket(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> str:
    from gwas_prs.core.gcs_staging import storage_client

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.host)
    name = f"lab-{uuid.uuid4().hex[:10]}"
    storage_client().create_bucket(name)
    return name


def put(bucket: str, name: str, data: bytes) -> None:
    from gwas_prs.core.gcs_staging import storage_client

    storage_client().bucket(bucket).blob(name).upload_from_string(data)


# ---------------------------------------------------------------- --properties


def test_properties_help_shows_plain_spark_keys() -> None:
    code, stdout, _ = invoke("dataproc", "submit", "--help")
    assert code == 0
    text = " ".join(stdout.split())
    assert "plain Spark keys: spark.executor.memory=8g,spark.executor.cores=4" in text
    assert "spark:spark." not in text


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        (
            "spark:spark.executor.memory=8g",
            "--properties spark:spark.executor.memory=8g: job properties take plain Spark keys; "
            "drop the 'spark:' prefix (spark.executor.memory=8g), which is the syntax of cluster properties",
        ),
        (
            "spark.executor.cores=2,spark:spark.driver.memory=4g",
            "--properties spark:spark.driver.memory=4g: job properties take plain Spark keys; "
            "drop the 'spark:' prefix (spark.driver.memory=4g), which is the syntax of cluster properties",
        ),
        (
            "spark.executor.cores",
            "--properties spark.executor.cores: write each job property as KEY=VALUE, "
            "e.g. spark.executor.memory=8g",
        ),
    ],
)
def test_submit_refuses_cluster_style_or_malformed_properties(
    fakes: FakePrograms, properties: str, message: str
) -> None:
    for dry in ([], ["--dry-run"]):
        code, _, stderr = invoke(
            "dataproc", "submit", "gwas-1", "--properties", properties, *dry,
            "--", "qc", "gs://lab/runs/a",
        )  # fmt: skip
        assert (code, stderr) == (2, f"error: {message}\n")
    assert fakes.calls() == []


def test_submit_passes_plain_properties_through(fakes: FakePrograms) -> None:
    props = "^#^spark.executor.memory=8g#spark.driver.extraJavaOptions=-Da=1,2"
    code, _, _ = invoke(
        "dataproc", "submit", "gwas-1", "--properties", props, "--", "qc", "gs://lab/runs/a"
    )
    assert code == 0
    assert fakes.calls()[1] == [
        "hailctl", "dataproc", "submit", "gwas-1", str(job_entry_path()),
        f"--properties={props}", "--", "--job-tag", TAG, "qc", "gs://lab/runs/a",
    ]  # fmt: skip


# ------------------------------------------------------- the stage's exit status

AGENT_FAILURE = (
    "ERROR: (gcloud.dataproc.jobs.submit.pyspark) Job [{job}] failed with error:\n"
    "Google Cloud Dataproc Agent reports job failure. If logs are available, they can be found at:\n"
    "https://console.cloud.google.com/dataproc/jobs/{job}?project=p&region=r\n"
)


def failed_job(fakes: FakePrograms, bucket: str, driver_output: bytes | None) -> str:
    """hailctl fails as it does when the driver exits non-zero; the job, found by its
    tag, has its driver output on GCS."""
    job = "5b1f0c9e2d"
    fakes.respond("hailctl", ["dataproc", "submit"], stderr=AGENT_FAILURE.format(job=job), exit=1)
    prefix = f"google-cloud-dataproc-metainfo/cluster-uuid/jobs/{job}/driveroutput"
    jobs = [
        {"reference": {"jobId": "other"}, "pysparkJob": {"args": ["--job-tag", "qc-other", "qc"]}},
        {
            "reference": {"jobId": job},
            "status": {"state": "ERROR"},
            "pysparkJob": {"args": ["--job-tag", TAG, "qc", "gs://lab/runs/a"]},
            "driverOutputResourceUri": f"gs://{bucket}/{prefix}",
        },
    ]
    fakes.respond("gcloud", JOBS_LIST, stdout=json.dumps(jobs))
    if driver_output is not None:
        put(bucket, f"{prefix}.000000000", b"Submitting to cluster...\n" * 50)
        put(bucket, f"{prefix}.000000001", driver_output)
    return job


def test_a_failed_job_exits_with_the_stages_own_status(fakes: FakePrograms, bucket: str) -> None:
    job = failed_job(
        fakes,
        bucket,
        b"error: gs://lab/runs/a: no ingest stage; run 'gwas-prs ingest' first\n"
        b"gwas-prs: Hail log copied to gs://lab/runs/a/logs/qc-20260101-120000-abcdef/qc.log\n"
        b"gwas-prs: the stage exited with status 2\n",
    )
    code, _, stderr = invoke(
        "dataproc", "submit", "gwas-1", "--region", "r1", "--", "qc", "gs://lab/runs/a"
    )
    assert code == 2
    assert stderr == (
        f"error: 'qc' failed on cluster gwas-1 with exit status 2 (Dataproc job {job}); its output "
        f"is shown above; its Hail logs are in gs://lab/runs/a/logs/{TAG}/\n"
    )
    assert fakes.calls()[-1] == [
        "gcloud", "dataproc", "jobs", "list", "--cluster=gwas-1", "--region=r1",
        "--state-filter=inactive", "--format=json",
    ]  # fmt: skip


def test_a_computation_error_keeps_exit_5(fakes: FakePrograms, bucket: str) -> None:
    failed_job(fakes, bucket, b"gwas-prs: the stage exited with status 5\n")
    code, _, stderr = invoke("dataproc", "submit", "gwas-1", "--", "qc", "gs://lab/runs/a")
    assert code == 5
    assert "with exit status 5" in stderr


@pytest.mark.parametrize(
    "driver_output",
    [None, b"Killed\n", b"gwas-prs: the stage exited with status 0\n"],
    ids=["no-driver-output", "no-status-line", "status-0"],
)
def test_without_the_stages_status_the_failure_is_a_generic_exit_4(
    fakes: FakePrograms, bucket: str, driver_output: bytes | None
) -> None:
    failed_job(fakes, bucket, driver_output)
    code, _, stderr = invoke("dataproc", "submit", "gwas-1", "--", "qc", "gs://lab/runs/a")
    assert code == 4
    assert stderr == (
        "error: 'hailctl' exited with status 1 (trying to run 'qc' on cluster gwas-1): "
        "its output is shown above\n"
    )


def test_a_job_that_is_not_listed_is_a_generic_exit_4(fakes: FakePrograms) -> None:
    fakes.respond("hailctl", ["dataproc", "submit"], exit=1)
    fakes.respond("gcloud", JOBS_LIST, stdout="[]")
    code, _, _ = invoke("dataproc", "submit", "gwas-1", "--", "qc", "gs://lab/runs/a")
    assert code == 4


# -------------------------------------------------------------------- diagnose


def record_env_of_hailctl(fakes: FakePrograms) -> Path:
    """Wrap the fake hailctl so that it also records the gcloud settings it got."""
    record = fakes.folder / "hailctl-env.json"
    real = fakes.folder / "hailctl-real"
    (fakes.folder / "hailctl").rename(real)
    wrapper = fakes.folder / "hailctl"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'printf \'{{"region": "%s", "project": "%s"}}\' "$CLOUDSDK_DATAPROC_REGION" '
        f'"$CLOUDSDK_CORE_PROJECT" > {record}\n'
        f'exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    return record


def test_diagnose_takes_region_and_project(fakes: FakePrograms, tmp_path: Path) -> None:
    record = record_env_of_hailctl(fakes)
    dest = tmp_path / "diag"
    code, _, _ = invoke(
        "dataproc", "diagnose", "gwas-1", "--dest", str(dest), "--region", "r1", "--project", "p1"
    )
    assert code == 0
    assert json.loads(record.read_text()) == {"region": "r1", "project": "p1"}
    assert fakes.calls()[-1] == ["hailctl-real", "dataproc", "diagnose", "gwas-1", f"--dest={dest}"]


def test_diagnose_collects_the_runs_hail_logs(
    fakes: FakePrograms, bucket: str, tmp_path: Path
) -> None:
    put(bucket, "runs/a/logs/qc-1/qc-20260101-000000.log", b"qc log")
    put(bucket, "runs/a/logs/gwas-2/gwas-20260101-000100.log", b"gwas log")
    put(bucket, "runs/a/gold/report.html", b"not a log")
    dest = tmp_path / "diag"
    code, stdout, _ = invoke(
        "dataproc", "diagnose", "gwas-1", "--dest", str(dest), "--run", f"gs://{bucket}/runs/a"
    )
    assert code == 0
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == [
        "logs/gwas-2/gwas-20260101-000100.log",
        "logs/qc-1/qc-20260101-000000.log",
    ]
    assert (dest / "logs/qc-1/qc-20260101-000000.log").read_bytes() == b"qc log"
    assert f"2 gwas-prs log file(s) of gs://{bucket}/runs/a copied to {dest / 'logs'}" in stdout
    assert fakes.calls() == [["hailctl", "dataproc", "diagnose", "gwas-1", f"--dest={dest}"]]


def test_diagnose_collects_one_jobs_logs(fakes: FakePrograms, bucket: str, tmp_path: Path) -> None:
    put(bucket, "runs/a/logs/qc-1/qc.log", b"qc log")
    put(bucket, "runs/a/logs/gwas-2/gwas.log", b"gwas log")
    dest = tmp_path / "diag"
    code, _, _ = invoke(
        "dataproc", "diagnose", "gwas-1", "--dest", str(dest),
        "--run", f"gs://{bucket}/runs/a", "--job", "qc-1",
    )  # fmt: skip
    assert code == 0
    assert [str(p.relative_to(dest)) for p in dest.rglob("*.log")] == ["logs/qc-1/qc.log"]


def test_diagnose_dry_run(fakes: FakePrograms, tmp_path: Path) -> None:
    dest = tmp_path / "diag"
    code, stdout, _ = invoke(
        "dataproc", "diagnose", "gwas-1", "--dest", str(dest), "--region", "r1",
        "--run", "gs://lab/runs/a", "--dry-run",
    )  # fmt: skip
    assert code == 0
    assert stdout.splitlines() == [
        f"# download gs://lab/runs/a/logs/ -> {dest}/ (google-cloud-storage, CRC32C-verified)",
        f"CLOUDSDK_DATAPROC_REGION=r1 hailctl dataproc diagnose gwas-1 --dest={dest}",
    ]
    assert fakes.calls() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--job", "qc-1"], "--job needs --run gs://BUCKET/PREFIX (the run folder of the job)"),
        (
            ["--run", "runs/a"],
            "--run runs/a: give the gs:// run folder the jobs ran on, e.g. gs://BUCKET/runs/cohort",
        ),
    ],
)
def test_diagnose_refuses_bad_run_options(
    fakes: FakePrograms, tmp_path: Path, args: list[str], message: str
) -> None:
    code, _, stderr = invoke("dataproc", "diagnose", "gwas-1", "--dest", str(tmp_path), *args)
    assert (code, stderr) == (2, f"error: {message}\n")
    assert fakes.calls() == []


def test_job_entry_prints_the_status_line_submit_reads() -> None:
    from gwas_prs.dataproc.jobs import STAGE_EXIT_MARKER, stage_exit_status

    assert stage_exit_status(f"x\n{STAGE_EXIT_MARKER}3\n") == 3
    assert stage_exit_status("gwas-prs: the stage exited with status \n") is None
