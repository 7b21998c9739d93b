"""``gwas-prs dataproc …`` against fake hailctl/gcloud/uv executables (no cloud, no JVM).

The fakes record their argv; the tests assert the exact command lines for the
cpu and gpu profiles and flag combinations, that failures of the external
programs become one-line errors with exit status 4, and that ``--dry-run``
runs nothing. ``start`` uploads the wheel to a real storage emulator.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from gwas_prs.dataproc.jobs import job_entry_path
from gwas_prs.dataproc.wheel import (
    REQUIREMENTS_NAME,
    init_action_path,
    node_requirements,
    sha256_of_bytes,
    staged_uri,
)
from tests.cli_helpers import invoke
from tests.fake_programs import FakePrograms, install_fakes
from tests.gcs_emulator import EmulatorServer

HAIL_VERSION = "0.2.139"
WHEEL_NAME = "gwas_prs-0.1.0-py3-none-any.whl"
WHEEL_BYTES = b"not really a wheel"
#: What the fake 'uv build' writes (tests/fake_programs.py).
BUILT_WHEEL_BYTES = b"fake wheel"
GPU_DRIVER_BUCKET = "goog-dataproc-initialization-actions-us-central1"
GPU_DRIVER_BYTES = b"#!/bin/bash\n# a stand-in for Google's install_gpu_driver.sh\n"


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_jvm: None) -> FakePrograms:
    programs = install_fakes(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{programs.folder}{os.pathsep}{os.environ['PATH']}")
    return programs


@pytest.fixture
def bucket(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the emulator (and STORAGE_EMULATOR_HOST pointing at it)."""
    from gwas_prs.core.gcs_staging import storage_client

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.host)
    name = f"lab-{uuid.uuid4().hex[:10]}"
    storage_client().create_bucket(name)
    return name


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    path = tmp_path / WHEEL_NAME
    path.write_bytes(WHEEL_BYTES)
    return path


@pytest.fixture
def gpu_driver_upstream(bucket: str) -> str:
    """A stand-in for Google's regional bucket with the GPU driver init action."""
    from gwas_prs.core.gcs_staging import storage_client

    client = storage_client()
    upstream = client.lookup_bucket(GPU_DRIVER_BUCKET) or client.create_bucket(GPU_DRIVER_BUCKET)
    upstream.blob("gpu/install_gpu_driver.sh").upload_from_string(GPU_DRIVER_BYTES)
    return f"gs://{GPU_DRIVER_BUCKET}/gpu/install_gpu_driver.sh"


def staged(bucket: str, name: str, data: bytes | None) -> str:
    """Where ``start`` stages ``data`` (``SHA256`` when the dry run cannot know it)."""
    return staged_uri(bucket, sha256_of_bytes(data) if data is not None else "SHA256", name)


def init_action_uri(bucket: str) -> str:
    return staged(bucket, "install-gwas-prs.sh", init_action_path().read_bytes())


def metadata(bucket: str, wheel_bytes: bytes | None = WHEEL_BYTES) -> str:
    requirements = staged(bucket, REQUIREMENTS_NAME, node_requirements().encode())
    return (
        f"--metadata=gwas-prs-wheel={staged(bucket, WHEEL_NAME, wheel_bytes)},"
        f"gwas-prs-version=0.1.0,gwas-prs-hail-version={HAIL_VERSION},"
        f"gwas-prs-requirements={requirements}"
    )


def cpu_start_argv(
    bucket: str, name: str = "gwas-1", wheel_bytes: bytes | None = WHEEL_BYTES
) -> list[str]:
    return [
        "hailctl",
        "dataproc",
        "start",
        name,
        "--region=us-central1",
        "--master-machine-type=n1-highmem-8",
        "--worker-machine-type=n1-standard-8",
        "--num-workers=2",
        "--num-secondary-workers=0",
        f"--bucket={bucket}",
        "--max-idle=30m",
        f"--init={init_action_uri(bucket)}",
        "--init_timeout=20m",
        metadata(bucket, wheel_bytes),
    ]


def gpu_start_argv(
    bucket: str, wheel_bytes: bytes | None = WHEEL_BYTES, driver: bytes | None = GPU_DRIVER_BYTES
) -> list[str]:
    """No worker GPUs; the driver init action is the pinned copy staged by ``start``."""
    return [
        "hailctl",
        "dataproc",
        "start",
        "gwas-gpu",
        "--region=us-central1",
        "--project=my-project",
        "--master-machine-type=n1-highmem-8",
        "--worker-machine-type=n1-standard-8",
        "--num-workers=2",
        "--num-secondary-workers=0",
        f"--bucket={bucket}",
        "--max-idle=30m",
        f"--init={staged(bucket, 'install_gpu_driver.sh', driver)},{init_action_uri(bucket)}",
        "--init_timeout=45m",
        metadata(bucket, wheel_bytes) + ",gpu-driver-provider=NVIDIA,rapids-runtime=NONE",
        "--",
        "--master-accelerator=type=nvidia-tesla-t4,count=1",
    ]


# --------------------------------------------------------------------- start


def test_cpu_start_stages_wheel_and_runs_hailctl(
    fakes: FakePrograms, bucket: str, wheel: Path
) -> None:
    from gwas_prs.core.gcs_staging import crc32c_of_file, storage_client

    code, stdout, _ = invoke(
        "dataproc",
        "start",
        "gwas-1",
        "--bucket",
        bucket,
        "--region",
        "us-central1",
        "--wheel",
        str(wheel),
    )
    assert code == 0
    assert fakes.calls() == [cpu_start_argv(bucket)]
    assert "cluster gwas-1 is running" in stdout
    client = storage_client()
    prefix = f"gs://{bucket}/"
    wheel_name = staged(bucket, WHEEL_NAME, WHEEL_BYTES).removeprefix(prefix)
    staged_wheel = client.bucket(bucket).get_blob(wheel_name)
    assert staged_wheel.crc32c == crc32c_of_file(wheel)
    staged_init = client.bucket(bucket).get_blob(init_action_uri(bucket).removeprefix(prefix))
    assert staged_init.crc32c == crc32c_of_file(init_action_path())


def test_start_builds_the_wheel_with_uv_when_none_is_given(
    fakes: FakePrograms, bucket: str
) -> None:
    code, _, _ = invoke(
        "dataproc", "start", "gwas-1", "--bucket", bucket, "--region", "us-central1"
    )
    assert code == 0
    calls = fakes.calls()
    assert [c[:4] for c in calls] == [
        ["uv", "build", "--wheel", "--out-dir"],
        ["hailctl", "dataproc", "start", "gwas-1"],
    ]
    assert calls[0][5] == str(Path(__file__).resolve().parent.parent)
    assert calls[1] == cpu_start_argv(bucket, wheel_bytes=BUILT_WHEEL_BYTES)


def test_gpu_start_argv(
    fakes: FakePrograms, bucket: str, wheel: Path, gpu_driver_upstream: str
) -> None:
    code, _, _ = invoke(
        "dataproc", "start", "gwas-gpu", "--profile", "gpu", "--bucket", bucket,
        "--region", "us-central1", "--project", "my-project", "--wheel", str(wheel),
    )  # fmt: skip
    assert code == 0
    assert fakes.calls() == [gpu_start_argv(bucket)]


def test_start_with_every_flag(fakes: FakePrograms, bucket: str, wheel: Path) -> None:
    code, _, _ = invoke(
        "dataproc", "start", "big-1", "--bucket", bucket, "--region", "europe-west1", "--zone", "europe-west1-b",
        "--project", "p1", "--workers", "5", "--secondary-workers", "10", "--spot",
        "--worker-machine-type", "n1-highmem-16", "--master-machine-type", "n1-highmem-32",
        "--max-idle", "1h", "--max-age", "12h", "--autoscaling-policy", "gwas-policy",
        "--kms-key", "projects/p1/locations/europe-west1/keyRings/r/cryptoKeys/k",
        "--service-account", "gwas@p1.iam.gserviceaccount.com", "--subnet", "private-subnet",
        "--gcloud-arg", "--no-shielded-secure-boot", "--wheel", str(wheel),
    )  # fmt: skip
    assert code == 0
    assert fakes.calls() == [
        [
            "hailctl", "dataproc", "start", "big-1",
            "--region=europe-west1", "--zone=europe-west1-b", "--project=p1",
            "--master-machine-type=n1-highmem-32", "--worker-machine-type=n1-highmem-16",
            "--num-workers=5", "--num-secondary-workers=10", f"--bucket={bucket}",
            "--max-idle=1h", "--max-age=12h", "--subnet=private-subnet",
            "--service-account=gwas@p1.iam.gserviceaccount.com",
            f"--init={init_action_uri(bucket)}", "--init_timeout=20m",
            metadata(bucket),
            "--",
            "--secondary-worker-type=spot", "--autoscaling-policy=gwas-policy",
            "--gce-pd-kms-key=projects/p1/locations/europe-west1/keyRings/r/cryptoKeys/k",
            "--kms-key=projects/p1/locations/europe-west1/keyRings/r/cryptoKeys/k",
            "--no-shielded-secure-boot",
        ]
    ]  # fmt: skip


def test_start_dry_run_prints_commands_and_runs_nothing(
    fakes: FakePrograms, wheel: Path, tmp_path: Path
) -> None:
    code, stdout, _ = invoke(
        "dataproc",
        "start",
        "gwas-1",
        "--bucket",
        "my-lab",
        "--region",
        "us-central1",
        "--wheel",
        str(wheel),
        "--dry-run",
    )
    assert code == 0
    assert fakes.calls() == []
    how = "(content-addressed, only if absent, CRC32C-verified)"
    requirements = staged("my-lab", REQUIREMENTS_NAME, node_requirements().encode())
    assert stdout.splitlines() == [
        f"# upload {wheel} -> {staged('my-lab', WHEEL_NAME, WHEEL_BYTES)} {how}",
        f"# upload {REQUIREMENTS_NAME} (pins of the local versions) -> {requirements} {how}",
        f"# upload {init_action_path()} -> {init_action_uri('my-lab')} {how}",
        " ".join(cpu_start_argv("my-lab")),
    ]


def test_gpu_start_dry_run_shell_quotes_and_builds(fakes: FakePrograms) -> None:
    code, stdout, _ = invoke(
        "dataproc", "start", "gwas-gpu", "--profile", "gpu", "--bucket", "my-lab",
        "--region", "us-central1", "--project", "my-project", "--dry-run",
    )  # fmt: skip
    assert code == 0
    assert fakes.calls() == []
    lines = stdout.splitlines()
    assert lines[0].startswith("uv build --wheel --out-dir /")
    assert lines[0].endswith(f" {Path(__file__).resolve().parent.parent}")
    assert lines[4] == (
        "# copy gs://goog-dataproc-initialization-actions-us-central1/gpu/install_gpu_driver.sh -> "
        f"{staged('my-lab', 'install_gpu_driver.sh', None)} (pinned copy) "
        "(content-addressed, only if absent, CRC32C-verified)"
    )
    assert lines[5] == " ".join(gpu_start_argv("my-lab", wheel_bytes=None, driver=None))


def test_start_failure_is_one_line_and_exit_4(
    fakes: FakePrograms, bucket: str, wheel: Path
) -> None:
    fakes.respond("hailctl", ["dataproc", "start"], stderr="ERROR: quota exceeded\n", exit=1)
    code, _, stderr = invoke(
        "dataproc",
        "start",
        "gwas-1",
        "--bucket",
        bucket,
        "--region",
        "us-central1",
        "--wheel",
        str(wheel),
    )
    assert code == 4
    assert stderr == (
        "error: 'hailctl' exited with status 1 (trying to start the cluster gwas-1): its output is shown above\n"
    )


def test_wheel_build_failure(fakes: FakePrograms, bucket: str) -> None:
    fakes.respond("uv", ["build"], stderr="error: invalid pyproject.toml\n", exit=2)
    code, _, stderr = invoke(
        "dataproc", "start", "gwas-1", "--bucket", bucket, "--region", "us-central1"
    )
    assert code == 4
    assert stderr == (
        "error: 'uv' exited with status 2 (trying to build the gwas-prs wheel): error: invalid pyproject.toml\n"
    )
    assert [c[0] for c in fakes.calls()] == ["uv"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["gwas-gpu", "--profile", "gpu", "--bucket", "b1"],
            "the 'gpu' profile reads init actions from a regional bucket; pass --region (e.g. us-central1)",
        ),
        (
            ["gwas-1", "--bucket", "b1", "--spot"],
            "--spot makes the secondary workers Spot VMs; add --secondary-workers N (N ≥ 1)",
        ),
        (
            ["Gwas_1", "--bucket", "b1"],
            "'Gwas_1' is not a valid cluster name; use 1-51 lowercase letters, digits and hyphens, "
            "starting with a letter and not ending with a hyphen",
        ),
        (
            ["gwas-1", "--bucket", "b1", "--max-idle", "30"],
            "--max-idle '30': write a duration such as 30m, 2h or 1d",
        ),
        (
            ["gwas-1", "--bucket", "gs://b1"],
            "--bucket 'gs://b1': give the bucket name only (no gs://), e.g. my-lab-gwas",
        ),
        (
            [
                "gwas-gpu",
                "--profile",
                "gpu",
                "--bucket",
                "b1",
                "--region",
                "r",
                "--master-machine-type",
                "n2-highmem-8",
            ],
            "the 'gpu' profile attaches GPUs (type=nvidia-tesla-t4,count=1) to the master, which needs an N1 "
            "machine type, not n2-highmem-8; choose e.g. --master-machine-type n1-standard-8",
        ),
        (
            ["gwas-1", "--bucket", "b1", "--profile", "tpu"],
            "unknown cluster profile 'tpu'; use one of cpu, gpu or a path to a profile YAML file",
        ),
    ],
)
def test_start_refuses_bad_options(fakes: FakePrograms, args: list[str], message: str) -> None:
    code, _, stderr = invoke("dataproc", "start", *args, "--dry-run")
    assert (code, stderr) == (2, f"error: {message}\n")
    assert fakes.calls() == []


# ---------------------------------------------------------------- stop, list


def test_stop(fakes: FakePrograms) -> None:
    code, _, _ = invoke(
        "dataproc", "stop", "gwas-1", "--region", "us-central1", "--project", "p1", "--async"
    )
    assert code == 0
    assert fakes.calls() == [
        ["hailctl", "dataproc", "stop", "gwas-1", "--async", "--region=us-central1", "--project=p1"]
    ]


def test_stop_dry_run(fakes: FakePrograms) -> None:
    code, stdout, _ = invoke("dataproc", "stop", "gwas-1", "--region", "us-central1", "--dry-run")
    assert (code, stdout, fakes.calls()) == (
        0,
        "hailctl dataproc stop gwas-1 --region=us-central1\n",
        [],
    )


def cluster_json(
    name: str, hail: str | None = HAIL_VERSION, state: str = "RUNNING", wheel: bool = True
) -> dict[str, object]:
    metadata = {
        "WHEEL": f"gs://hail-common/hailctl/dataproc/{HAIL_VERSION}/hail-{HAIL_VERSION}-py3-none-any.whl",
    }
    if wheel:  # what 'gwas-prs dataproc start' records
        metadata["gwas-prs-version"] = "0.1.0"
        metadata["gwas-prs-wheel"] = f"gs://lab/gwas-prs/wheels/{WHEEL_NAME}"
    if hail is not None:
        metadata["gwas-prs-hail-version"] = hail
    return {
        "clusterName": name,
        "status": {"state": state},
        "config": {
            "gceClusterConfig": {"metadata": metadata},
            "workerConfig": {"numInstances": 2},
            "secondaryWorkerConfig": {"numInstances": 3},
        },
    }


def test_list_shows_versions(fakes: FakePrograms) -> None:
    fakes.respond(
        "gcloud",
        ["dataproc", "clusters", "list"],
        stdout=json.dumps([cluster_json("gwas-1", "0.2.130")]),
    )
    code, stdout, _ = invoke("dataproc", "list", "--region", "us-central1")
    assert code == 0
    assert fakes.calls() == [
        ["gcloud", "dataproc", "clusters", "list", "--region=us-central1", "--format=json"]
    ]
    row = next(line for line in stdout.splitlines() if "gwas-1" in line)
    assert row.split("│")[1:-1] == [
        " gwas-1 ",
        " RUNNING ",
        "       2 ",
        "         3 ",
        " 0.2.130 ",
        "    0.1.0 ",
    ]


def test_list_failure(fakes: FakePrograms) -> None:
    fakes.respond(
        "gcloud",
        ["dataproc"],
        stderr="ERROR: (gcloud.dataproc.clusters.list) You do not currently have an active account selected.\n",
        exit=1,
    )
    code, _, stderr = invoke("dataproc", "list")
    assert code == 4
    assert stderr == (
        "error: 'gcloud' exited with status 1 (trying to list the Dataproc clusters): "
        "ERROR: (gcloud.dataproc.clusters.list) You do not currently have an active account selected.\n"
    )


# -------------------------------------------------------------------- submit

DESCRIBE = ["dataproc", "clusters", "describe", "gwas-1"]
TAG = "qc-20260101-120000-abcdef"


@pytest.fixture
def job_tag(monkeypatch: pytest.MonkeyPatch) -> str:
    """Each submitted job gets a fresh tag (its RUN/logs/TAG/ folder); fixed here."""
    import gwas_prs.dataproc.jobs

    monkeypatch.setattr(gwas_prs.dataproc.jobs, "new_job_tag", lambda command: TAG)
    return TAG


def test_submit_checks_hail_and_runs_the_job_entry(fakes: FakePrograms, job_tag: str) -> None:
    fakes.respond("gcloud", DESCRIBE, stdout=json.dumps(cluster_json("gwas-1")))
    code, _, _ = invoke(
        "dataproc",
        "submit",
        "gwas-1",
        "--region",
        "us-central1",
        "--",
        "qc",
        "gs://lab/runs/a",
        "--overwrite",
    )
    assert code == 0
    assert fakes.calls() == [
        ["gcloud", *DESCRIBE, "--region=us-central1", "--format=json"],
        ["hailctl", "dataproc", "submit", "gwas-1", str(job_entry_path()), "--region=us-central1",
         "--", "--job-tag", TAG, "qc", "gs://lab/runs/a", "--overwrite"],
    ]  # fmt: skip


def test_submit_ingest_with_run_option_and_properties(fakes: FakePrograms, job_tag: str) -> None:
    fakes.respond("gcloud", DESCRIBE, stdout=json.dumps(cluster_json("gwas-1")))
    stage = ["ingest", "gs://lab/in/chr*.vcf.gz", "--run", "gs://lab/runs/a"]
    code, _, _ = invoke(
        "dataproc", "submit", "gwas-1", "--properties", "spark.executor.cores=2", "--", *stage
    )
    assert code == 0
    assert fakes.calls()[1] == [
        "hailctl", "dataproc", "submit", "gwas-1", str(job_entry_path()),
        "--properties=spark.executor.cores=2", "--", "--job-tag", TAG, *stage,
    ]  # fmt: skip


def test_submit_refuses_other_hail_version(fakes: FakePrograms) -> None:
    fakes.respond("gcloud", DESCRIBE, stdout=json.dumps(cluster_json("gwas-1", "0.2.130")))
    code, _, stderr = invoke("dataproc", "submit", "gwas-1", "--", "qc", "gs://lab/runs/a")
    assert code == 3
    assert stderr == (
        f"error: cluster gwas-1 runs Hail 0.2.130 but this machine has Hail {HAIL_VERSION}; restart it with this "
        "gwas-prs ('gwas-prs dataproc stop gwas-1' then 'gwas-prs dataproc start') or install hail==0.2.130 here\n"
    )
    assert [c[0] for c in fakes.calls()] == ["gcloud"]


def test_submit_reads_hail_version_of_plain_hailctl_clusters(fakes: FakePrograms) -> None:
    fakes.respond("gcloud", DESCRIBE, stdout=json.dumps(cluster_json("gwas-1", hail=None)))
    code, _, _ = invoke("dataproc", "submit", "gwas-1", "--", "qc", "gs://lab/runs/a")
    assert code == 0
    assert [c[0] for c in fakes.calls()] == ["gcloud", "hailctl"]


def test_submit_refuses_cluster_that_is_not_running(fakes: FakePrograms) -> None:
    fakes.respond("gcloud", DESCRIBE, stdout=json.dumps(cluster_json("gwas-1", state="CREATING")))
    code, _, stderr = invoke("dataproc", "submit", "gwas-1", "--", "qc", "gs://lab/runs/a")
    assert (code, stderr) == (
        2,
        "error: cluster gwas-1 is CREATING, not RUNNING; wait for it or start it again\n",
    )


def test_submit_missing_cluster(fakes: FakePrograms) -> None:
    fakes.respond(
        "gcloud",
        DESCRIBE,
        stderr="ERROR: (gcloud.dataproc.clusters.describe) NOT_FOUND: Not found: Cluster projects/p/regions/r/clusters/gwas-1\n",
        exit=1,
    )
    code, _, stderr = invoke("dataproc", "submit", "gwas-1", "--", "qc", "gs://lab/runs/a")
    assert code == 4
    assert stderr == (
        "error: 'gcloud' exited with status 1 (trying to read the configuration of cluster gwas-1): "
        "ERROR: (gcloud.dataproc.clusters.describe) NOT_FOUND: Not found: Cluster projects/p/regions/r/clusters/gwas-1\n"
    )


def test_submit_job_failure_propagates(fakes: FakePrograms) -> None:
    fakes.respond("gcloud", DESCRIBE, stdout=json.dumps(cluster_json("gwas-1")))
    fakes.respond("hailctl", ["dataproc", "submit"], exit=1)
    code, _, stderr = invoke("dataproc", "submit", "gwas-1", "--", "qc", "gs://lab/runs/a")
    assert code == 4
    assert stderr == (
        "error: 'hailctl' exited with status 1 (trying to run 'qc' on cluster gwas-1): its output is shown above\n"
    )


def test_submit_dry_run(fakes: FakePrograms, job_tag: str) -> None:
    code, stdout, _ = invoke(
        "dataproc", "submit", "gwas-1", "--region", "r1", "--dry-run", "--", "qc", "gs://lab/runs/a"
    )
    assert code == 0
    assert fakes.calls() == []
    assert stdout.splitlines() == [
        "gcloud dataproc clusters describe gwas-1 --region=r1 --format=json",
        f"hailctl dataproc submit gwas-1 {job_entry_path()} --region=r1 -- --job-tag {TAG} qc gs://lab/runs/a",
    ]


def test_submit_refuses_local_input_files(fakes: FakePrograms, tmp_path: Path) -> None:
    vcf = tmp_path / "chr1.vcf.gz"
    vcf.write_bytes(b"")
    code, _, stderr = invoke(
        "dataproc", "submit", "gwas-1", "--", "ingest", str(vcf), "--run", "gs://lab/runs/a"
    )
    assert code == 2
    assert stderr == (
        f"error: {vcf} is a local path, which the cluster cannot read; stage it first with "
        f"'gwas-prs stage {vcf} gs://BUCKET/PREFIX' and pass the gs:// path\n"
    )
    assert fakes.calls() == []


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        (
            ["qc", "runs/a"],
            "run folder runs/a is not on Google Cloud Storage; on Dataproc use gs://BUCKET/PREFIX "
            "(stage local inputs first with 'gwas-prs stage')",
        ),
        (
            ["qc", "--overwrite"],
            "'qc' needs a gs:// run folder on the cluster; give it with --run gs://BUCKET/PREFIX",
        ),
        (
            ["ingest", "gs://lab/chr1.vcf.gz", "--run", "runs/a"],
            "run folder runs/a is not on Google Cloud Storage; on Dataproc use gs://BUCKET/PREFIX "
            "(stage local inputs first with 'gwas-prs stage')",
        ),
        (
            ["demo"],
            "'demo' cannot be submitted; use one of ingest, qc, simulate-phenotype, gwas, prs, "
            "train, predict, run, export",
        ),
    ],
)
def test_submit_refuses_bad_stage_commands(
    fakes: FakePrograms, stage: list[str], message: str
) -> None:
    code, _, stderr = invoke("dataproc", "submit", "gwas-1", "--", *stage)
    assert (code, stderr) == (2, f"error: {message}\n")
    assert fakes.calls() == []


# ------------------------------------------------------------ diagnose, logs


def test_diagnose_and_logs(fakes: FakePrograms, tmp_path: Path) -> None:
    assert invoke("dataproc", "diagnose", "gwas-1", "--dest", str(tmp_path / "diag"))[0] == 0
    assert invoke("dataproc", "logs", "job-123", "--region", "r1")[0] == 0
    assert fakes.calls() == [
        ["hailctl", "dataproc", "diagnose", "gwas-1", f"--dest={tmp_path / 'diag'}"],
        ["gcloud", "dataproc", "jobs", "wait", "job-123", "--region=r1"],
    ]


def test_missing_hailctl_is_a_setup_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_jvm: None
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    code, _, stderr = invoke("dataproc", "stop", "gwas-1")
    assert (code, stderr) == (
        3,
        "error: 'hailctl' is not installed or not on PATH; it is needed to stop the cluster gwas-1.\n",
    )


def test_help_imports_no_heavy_modules() -> None:
    """``gwas-prs --help`` with the dataproc and stage commands registered stays light."""
    import subprocess
    import sys

    code = (
        "import sys; from gwas_prs.cli.app import app\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('hail', 'hailtop', 'pyspark', 'pandas', 'google', 'yaml'))\n"
        "print(heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout == "[]\n"


def test_submit_refuses_a_cluster_without_the_gwas_prs_wheel(fakes: FakePrograms) -> None:
    """A cluster started by plain hailctl has Hail but no gwas-prs on its nodes: refused
    before the job runs (it used to fail on the cluster with ModuleNotFoundError)."""
    fakes.respond("gcloud", DESCRIBE, stdout=json.dumps(cluster_json("gwas-1", wheel=False)))
    code, _, stderr = invoke("dataproc", "submit", "gwas-1", "--", "qc", "gs://lab/runs/a")
    assert code == 3
    assert stderr == (
        "error: cluster gwas-1 has no gwas-prs wheel in its metadata (it was not started by "
        "'gwas-prs dataproc start', so its nodes lack gwas-prs); start one with "
        "'gwas-prs dataproc start gwas-1-gwas --bucket BUCKET'\n"
    )
    assert [c[0] for c in fakes.calls()] == ["gcloud"]  # nothing submitted


def test_submit_accepts_an_updating_cluster(fakes: FakePrograms) -> None:
    """UPDATING is an autoscaling cluster at work: it runs jobs."""
    fakes.respond("gcloud", DESCRIBE, stdout=json.dumps(cluster_json("gwas-1", state="UPDATING")))
    code, _, stderr = invoke("dataproc", "submit", "gwas-1", "--", "qc", "gs://lab/runs/a")
    assert code == 0, stderr
    assert fakes.calls()[-1][:3] == ["hailctl", "dataproc", "submit"]


@pytest.mark.parametrize(
    ("stage_args", "message"),
    [
        (
            ["simulate", "gs://lab/runs/a"],
            "error: 'simulate' cannot be submitted; use one of ingest, qc, simulate-phenotype, "
            "gwas, prs, train, predict, run, export\n",
        ),
        (
            [
                "predict",
                "--model",
                "gs://lab/runs/a/gold/models/t",
                "--vcf",
                "gs://lab/x.vcf.gz",
                "--out",
                "pred.tsv",
            ],
            "error: --out pred.tsv: on a cluster the output must be on gs:// (the master's disk "
            "is deleted with the cluster); give gs://BUCKET/PREFIX/…\n",
        ),
        (
            ["export", "gs://lab/runs/a", "--layer", "gold", "--out=exports/gold"],
            "error: --out exports/gold: on a cluster the output must be on gs:// (the master's "
            "disk is deleted with the cluster); give gs://BUCKET/PREFIX/…\n",
        ),
    ],
)
def test_submit_refuses_what_cannot_run_on_a_cluster(
    fakes: FakePrograms, stage_args: list[str], message: str
) -> None:
    code, _, stderr = invoke("dataproc", "submit", "gwas-1", "--dry-run", "--", *stage_args)
    assert code == 2
    assert stderr == message
    assert fakes.calls() == []


def test_every_submittable_command_exists() -> None:
    """The allow-list comes from the Typer app: every name is a real command."""
    from gwas_prs.cli.app import app
    from gwas_prs.dataproc.jobs import submittable_commands

    names = {c.name for c in app.registered_commands}
    assert set(submittable_commands()) <= names
    assert "simulate-phenotype" in submittable_commands()
    assert "demo" not in submittable_commands()
