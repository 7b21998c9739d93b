"""``gwas-prs dataproc start``: what the nodes install, the GPU profile, security options.

Against fake hailctl/gcloud (tests/fake_programs.py) and a real GCS emulator; no
cloud, no JVM. Covers issue 16 items 5 (GPU profile: master-only GPU, executors
without GPUs, a pinned copy of Google's driver init action), 7 (``--no-deps`` wheel
plus pinned requirements, content-addressed staging that never rewrites) and 8
(CMEK for disks and job arguments, private IP, no token-less Jupyter by default,
service account and scopes).
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from gwas_prs.dataproc.cluster import (
    ClusterSpec,
    GcpLocation,
    StagedFiles,
    hailctl_print_argv,
    private_create_argv,
    start_argv,
)
from gwas_prs.dataproc.profiles import load_profile
from gwas_prs.dataproc.wheel import REQUIREMENTS_NAME, node_requirements, put_content_addressed
from tests import test_dataproc_cli as _cli
from tests.cli_helpers import invoke
from tests.fake_programs import FakePrograms, install_fakes
from tests.test_dataproc_cli import (
    GPU_DRIVER_BUCKET,
    GPU_DRIVER_BYTES,
    WHEEL_BYTES,
    WHEEL_NAME,
    init_action_uri,
    metadata,
    staged,
)
from tests.test_dataproc_units import REQUIREMENTS_URI, WHEEL_URI, run_init_action

STAGED = StagedFiles(
    wheel_uri="gs://lab/gwas-prs/staged/aa/gwas_prs-0.1.0-py3-none-any.whl",
    init_action_uri="gs://lab/gwas-prs/staged/bb/install-gwas-prs.sh",
    gwas_prs_version="0.1.0",
    hail_version="0.2.139",
    requirements_uri="gs://lab/gwas-prs/staged/cc/gwas-prs-requirements.txt",
)
# the fixtures of the other start tests (fakes, a wheel; the emulator is conftest's)
bucket = _cli.bucket
fakes = _cli.fakes
wheel = _cli.wheel
gpu_driver_upstream = _cli.gpu_driver_upstream

KEY = "projects/p/locations/us-central1/keyRings/r/cryptoKeys/k"


def blob_of(bucket: str, uri: str):  # type: ignore[no-untyped-def]
    from gwas_prs.core.gcs_staging import storage_client

    return storage_client().bucket(bucket).get_blob(uri.removeprefix(f"gs://{bucket}/"))


def start(bucket: str, wheel: Path, *extra: str) -> tuple[int, str, str]:
    return invoke(
        "dataproc", "start", "gwas-1", "--bucket", bucket, "--region", "us-central1",
        "--wheel", str(wheel), *extra,
    )  # fmt: skip


# ------------------------------------------------------ 7. node software


def test_node_requirements_pin_the_local_versions_without_hail_and_pyspark() -> None:
    text = node_requirements()
    pins = dict(line.split("==") for line in text.splitlines() if not line.startswith("#"))
    assert pins["xgboost"] == version("xgboost")  # trains as it was tested here
    assert pins["pandas"] == version("pandas")
    assert {"hail", "pyspark", "py4j", "pytest", "msprime"}.isdisjoint(pins)
    assert set(pins) >= {"typer", "google-cloud-storage", "scikit-learn", "numpy", "duckdb"}


def test_start_stages_the_pinned_requirements_next_to_the_wheel(
    fakes: FakePrograms, bucket: str, wheel: Path
) -> None:
    code, _, stderr = start(bucket, wheel)
    assert code == 0, stderr
    requirements = staged(bucket, REQUIREMENTS_NAME, node_requirements().encode())
    assert blob_of(bucket, requirements).download_as_bytes() == node_requirements().encode()
    hailctl = fakes.calls()[-1]
    assert f"gwas-prs-requirements={requirements}" in next(
        a for a in hailctl if a.startswith("--metadata=")
    )
    wheel_uri = staged(bucket, WHEEL_NAME, WHEEL_BYTES)
    assert wheel_uri.startswith(f"gs://{bucket}/gwas-prs/staged/")
    assert blob_of(bucket, wheel_uri).download_as_bytes() == WHEEL_BYTES


def test_restaging_never_rewrites_what_a_running_cluster_installs(
    fakes: FakePrograms, bucket: str, wheel: Path, tmp_path: Path
) -> None:
    """Same content → same object, left as is; new content → a new name, the old one intact."""
    assert start(bucket, wheel)[0] == 0
    first = staged(bucket, WHEEL_NAME, WHEEL_BYTES)
    generation = blob_of(bucket, first).generation
    init_generation = blob_of(bucket, init_action_uri(bucket)).generation
    assert start(bucket, wheel)[0] == 0  # re-staging the same bytes is accepted
    assert blob_of(bucket, first).generation == generation
    assert blob_of(bucket, init_action_uri(bucket)).generation == init_generation

    other = tmp_path / "other" / WHEEL_NAME
    other.parent.mkdir()
    other.write_bytes(b"a rebuilt wheel")
    assert start(bucket, other)[0] == 0
    second = staged(bucket, WHEEL_NAME, b"a rebuilt wheel")
    assert second != first
    assert blob_of(bucket, first).download_as_bytes() == WHEEL_BYTES
    assert blob_of(bucket, first).generation == generation
    assert fakes.calls()[-1][-1] == metadata(bucket, b"a rebuilt wheel")


def test_a_content_addressed_name_holding_other_bytes_is_refused(bucket: str) -> None:
    from gwas_prs.core.gcs_staging import ChecksumMismatchError, storage_client

    client = storage_client()
    uri = f"gs://{bucket}/gwas-prs/staged/abc/x.txt"
    assert put_content_addressed(client, uri, b"one") == "uploaded"
    assert put_content_addressed(client, uri, b"one") == "already staged"
    with pytest.raises(ChecksumMismatchError, match="holds other bytes"):
        put_content_addressed(client, uri, b"two")
    assert blob_of(bucket, uri).download_as_bytes() == b"one"


# ------------------------------------------------------ 5. the gpu profile


def test_gpu_start_runs_a_pinned_copy_of_the_driver_init_action(
    fakes: FakePrograms, bucket: str, wheel: Path, gpu_driver_upstream: str
) -> None:
    from gwas_prs.core.gcs_staging import storage_client

    code, _, stderr = start(bucket, wheel, "--profile", "gpu")
    assert code == 0, stderr
    copy = staged(bucket, "install_gpu_driver.sh", GPU_DRIVER_BYTES)
    init = next(a for a in fakes.calls()[-1] if a.startswith("--init="))
    assert init == f"--init={copy},{init_action_uri(bucket)}"
    assert gpu_driver_upstream not in init
    assert blob_of(bucket, copy).download_as_bytes() == GPU_DRIVER_BYTES

    # upstream changes its script: the running cluster's copy stays, a new start pins the new one
    changed = GPU_DRIVER_BYTES + b"# changed upstream\n"
    storage_client().bucket(GPU_DRIVER_BUCKET).blob("gpu/install_gpu_driver.sh").upload_from_string(
        changed
    )
    assert start(bucket, wheel, "--profile", "gpu")[0] == 0
    assert blob_of(bucket, copy).download_as_bytes() == GPU_DRIVER_BYTES
    new_copy = staged(bucket, "install_gpu_driver.sh", changed)
    assert next(a for a in fakes.calls()[-1] if a.startswith("--init=")).startswith(
        f"--init={new_copy},"
    )


def test_gpu_start_fails_in_one_line_when_the_driver_action_cannot_be_read(
    fakes: FakePrograms, bucket: str, wheel: Path
) -> None:
    code, _, stderr = start(bucket, wheel, "--profile", "gpu", "--region", "xx-nowhere1")
    assert code == 4
    assert stderr.startswith(
        "error: could not read the init action "
        "gs://goog-dataproc-initialization-actions-xx-nowhere1/gpu/install_gpu_driver.sh"
    )
    assert stderr.count("\n") == 1
    assert fakes.calls() == []


def test_gpu_profile_puts_the_gpu_on_the_master_only() -> None:
    spec = ClusterSpec(
        name="g1", profile=load_profile("gpu"), bucket="lab", location=GcpLocation("us-central1")
    )
    argv = start_argv(spec, STAGED)
    passthrough = argv[argv.index("--") + 1 :]
    assert passthrough == ["--master-accelerator=type=nvidia-tesla-t4,count=1"]
    assert "rapids-runtime=NONE" in argv[argv.index("--") - 1]


SPARK_DEFAULTS = """spark.executor.cores=4
spark.executor.resource.gpu.amount=1
spark.executor.resource.gpu.discoveryScript=/usr/lib/spark/scripts/gpu/getGpusResources.sh
spark.task.resource.gpu.amount=0.25
spark.plugins=com.nvidia.spark.SQLPlugin
spark.driver.memory=40g
"""

YARN_SITE = """<?xml version="1.0" ?>
<configuration>
  <property>
    <name>yarn.nodemanager.resource-plugins</name>
    <value>yarn.io/gpu</value>
  </property>
  <property>
    <name>yarn.nodemanager.resource-plugins.gpu.allowed-gpu-devices</name>
    <value>auto</value>
  </property>
  <property>
    <name>yarn.nodemanager.resource.memory-mb</name>
    <value>28000</value>
  </property>
</configuration>
"""

RESOURCE_TYPES = """<?xml version="1.0" ?>
<configuration>
  <property>
    <name>yarn.resource-types</name>
    <value>yarn.io/gpu</value>
  </property>
</configuration>
"""


def write_gpu_configs(tmp_path: Path) -> None:
    (tmp_path / "spark").mkdir()
    (tmp_path / "spark" / "spark-defaults.conf").write_text(SPARK_DEFAULTS)
    (tmp_path / "hadoop").mkdir()
    (tmp_path / "hadoop" / "yarn-site.xml").write_text(YARN_SITE)
    (tmp_path / "hadoop" / "resource-types.xml").write_text(RESOURCE_TYPES)


NODE = {"gwas-prs-wheel": WHEEL_URI, "gwas-prs-requirements": REQUIREMENTS_URI}


def test_init_action_on_the_master_keeps_executors_gpu_free(tmp_path: Path) -> None:
    """What Google's driver action writes for RAPIDS (one GPU per executor) is undone."""
    write_gpu_configs(tmp_path)
    result, calls = run_init_action(tmp_path, {**NODE, "dataproc-role": "Master"}, gpu=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "spark" / "spark-defaults.conf").read_text() == (
        "spark.executor.cores=4\nspark.driver.memory=40g\n"
    )
    yarn = (tmp_path / "hadoop" / "yarn-site.xml").read_text()
    assert "yarn.io/gpu" not in yarn and "resource-plugins" not in yarn
    assert "yarn.nodemanager.resource.memory-mb" in yarn
    assert "yarn.io/gpu" not in (tmp_path / "hadoop" / "resource-types.xml").read_text()
    assert ["systemctl", "try-restart", "hadoop-yarn-resourcemanager.service"] in calls
    # the GPU master checks that XGBoost has CUDA
    assert calls[-1][:2] == ["python", "-c"] and "USE_CUDA" in calls[-1][2]


def test_init_action_on_a_worker_drops_yarn_gpu_isolation_only(tmp_path: Path) -> None:
    write_gpu_configs(tmp_path)
    result, calls = run_init_action(tmp_path, {**NODE, "dataproc-role": "Worker"})
    assert result.returncode == 0, result.stderr
    assert (
        tmp_path / "spark" / "spark-defaults.conf"
    ).read_text() == SPARK_DEFAULTS  # master's job
    assert "yarn.io/gpu" not in (tmp_path / "hadoop" / "yarn-site.xml").read_text()
    assert ["systemctl", "try-restart", "hadoop-yarn-nodemanager.service"] in calls
    assert not any(c[:2] == ["python", "-c"] for c in calls)  # no GPU, no CUDA check


def test_init_action_leaves_clean_configs_alone(tmp_path: Path) -> None:
    (tmp_path / "spark").mkdir()
    (tmp_path / "spark" / "spark-defaults.conf").write_text("spark.executor.cores=4\n")
    result, calls = run_init_action(tmp_path, {**NODE, "dataproc-role": "Master"})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "spark" / "spark-defaults.conf").read_text() == "spark.executor.cores=4\n"
    assert not any(c[:2] == ["systemctl", "try-restart"] for c in calls)


# ------------------------------------------------------ 8. security


@pytest.mark.parametrize(
    ("notebook", "stopped"), [({}, True), ({"gwas-prs-notebook": "true"}, False)]
)
def test_init_action_stops_the_token_less_jupyter_unless_asked(
    tmp_path: Path, notebook: dict[str, str], stopped: bool
) -> None:
    fakes = install_fakes(tmp_path / "bin")  # rules first: cat jupyter.service succeeds
    fakes.respond("systemctl", ["cat", "jupyter.service"])
    result, calls = run_init_action(tmp_path, {**NODE, "dataproc-role": "Master", **notebook})
    assert result.returncode == 0, result.stderr
    disable = ["systemctl", "disable", "--now", "jupyter.service"]
    assert (disable in calls) is stopped


def test_notebook_flag_is_recorded_for_the_init_action(
    fakes: FakePrograms, bucket: str, wheel: Path
) -> None:
    assert start(bucket, wheel)[0] == 0
    assert "gwas-prs-notebook" not in fakes.calls()[-1][-1]
    assert start(bucket, wheel, "--notebook")[0] == 0
    assert fakes.calls()[-1][-1] == metadata(bucket) + ",gwas-prs-notebook=true"


def test_kms_key_encrypts_disks_and_job_arguments_and_scopes_reach_hailctl(
    fakes: FakePrograms, bucket: str, wheel: Path
) -> None:
    code, _, _ = start(
        bucket, wheel, "--kms-key", KEY, "--service-account", "gwas@p.iam.gserviceaccount.com",
        "--scopes", "cloud-platform",
    )  # fmt: skip
    assert code == 0
    argv = fakes.calls()[-1]
    assert "--service-account=gwas@p.iam.gserviceaccount.com" in argv
    assert "--scopes=cloud-platform" in argv[: argv.index("--")]
    assert argv[argv.index("--") + 1 :] == [f"--gce-pd-kms-key={KEY}", f"--kms-key={KEY}"]


HAILCTL_PRINTED = (
    "hailctl dataproc: Creating a cluster with workers of machine type n1-standard-8.\n"
    "gcloud dataproc clusters create gwas-1 \\\n"
    "    --image-version=2.3.17-debian12 \\\n"
    "    '--metadata=^|||^WHEEL=gs://hail/hail.whl|||PKGS=a|b' \\\n"
    "    --public-ip-address \\\n"
    f"    --gce-pd-kms-key={KEY}\n"
)


def test_private_ip_runs_the_gcloud_command_of_hailctl_with_no_address(
    fakes: FakePrograms, bucket: str, wheel: Path
) -> None:
    fakes.respond("hailctl", ["dataproc", "start"], stdout=HAILCTL_PRINTED)
    code, _, stderr = start(bucket, wheel, "--private-ip", "--kms-key", KEY)
    assert code == 0, stderr
    hailctl, gcloud = fakes.calls()
    assert hailctl[:4] == ["hailctl", "dataproc", "start", "gwas-1"]
    assert hailctl[hailctl.index("--") - 1] == "--dry-run"  # hailctl only prints
    assert gcloud == [
        "gcloud", "dataproc", "clusters", "create", "gwas-1", "--image-version=2.3.17-debian12",
        "--metadata=^|||^WHEEL=gs://hail/hail.whl|||PKGS=a|b", "--no-address",
        f"--gce-pd-kms-key={KEY}",
    ]  # fmt: skip


def test_private_ip_dry_run_runs_nothing(fakes: FakePrograms, wheel: Path) -> None:
    code, stdout, _ = invoke(
        "dataproc", "start", "gwas-1", "--bucket", "my-lab", "--region", "us-central1",
        "--wheel", str(wheel), "--no-address", "--dry-run",
    )  # fmt: skip
    assert code == 0
    assert fakes.calls() == []
    lines = stdout.splitlines()
    assert lines[-2].startswith("hailctl dataproc start gwas-1 ")
    assert " --dry-run" in lines[-2]
    assert "--no-address" in lines[-1]


def test_private_create_argv_refuses_unknown_output() -> None:
    from gwas_prs.core.errors import ExternalCommandError

    with pytest.raises(ExternalCommandError, match="printed no 'gcloud dataproc clusters create'"):
        private_create_argv("something else\n")


def test_private_ip_with_the_real_hailctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The installed hailctl's printed command parses into an argv with every setting kept."""
    hailctl = Path(sys.executable).with_name("hailctl")
    if not hailctl.exists():
        pytest.skip("hailctl is not installed next to this Python")
    fakes = install_fakes(tmp_path / "bin")
    fakes.respond("gcloud", ["config", "get-value", "account"], stdout="me@example.com\n")
    monkeypatch.setenv("PATH", f"{fakes.folder}{os.pathsep}{os.environ['PATH']}")
    spec = ClusterSpec(
        name="gwas-p",
        profile=load_profile("gpu"),
        bucket="lab",
        location=GcpLocation(region="us-central1"),
        kms_key=KEY,
        private_ip=True,
    )
    command = [str(hailctl), *hailctl_print_argv(spec, STAGED)[1:]]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    argv = private_create_argv(result.stdout)
    assert argv[:5] == ["gcloud", "dataproc", "clusters", "create", "gwas-p"]
    assert "--no-address" in argv and "--public-ip-address" not in argv
    assert "--image-version=2.3.17-debian12" in argv
    assert f"--kms-key={KEY}" in argv and f"--gce-pd-kms-key={KEY}" in argv
    assert "--master-accelerator=type=nvidia-tesla-t4,count=1" in argv
    assert any(a.startswith("--properties=^|||^") and "spark.driver.memory" in a for a in argv)
    meta = next(a for a in argv if a.startswith("--metadata="))
    assert f"gwas-prs-requirements={STAGED.requirements_uri}" in meta
    assert "--initialization-action-timeout=45m" in argv
