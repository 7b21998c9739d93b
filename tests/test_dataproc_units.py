"""Profiles, argv builders, the init action and hailctl's pass-through (no cloud, no JVM)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gwas_prs.core.errors import EnvironmentSetupError, InputError
from gwas_prs.dataproc.cluster import (
    ClusterInfo,
    ClusterSpec,
    GcpLocation,
    StagedFiles,
    parse_cluster,
    start_argv,
)
from gwas_prs.dataproc.jobs import check_hail_version, run_folder_from_args
from gwas_prs.dataproc.profiles import ClusterProfile, load_profile, parse_profile
from gwas_prs.dataproc.wheel import init_action_path, plan_wheel_staging
from tests.fake_programs import install_fakes

STAGED = StagedFiles(
    wheel_uri="gs://lab/gwas-prs/wheels/gwas_prs-0.1.0-py3-none-any.whl",
    init_action_uri="gs://lab/gwas-prs/init-actions/install-gwas-prs.sh",
    gwas_prs_version="0.1.0",
    hail_version="0.2.139",
)


def test_builtin_profiles() -> None:
    cpu = load_profile("cpu")
    gpu = load_profile("gpu")
    assert (cpu.master_machine_type, cpu.worker_machine_type, cpu.workers, cpu.max_idle) == (
        "n1-highmem-8",
        "n1-standard-8",
        2,
        "30m",
    )
    assert not cpu.has_accelerators
    # only the master (where XGBoost trains in the driver) has a GPU; no RAPIDS for executors
    assert gpu.worker_accelerator is None
    assert gpu.master_accelerator == "type=nvidia-tesla-t4,count=1"
    assert gpu.init_actions == (
        "gs://goog-dataproc-initialization-actions-{region}/gpu/install_gpu_driver.sh",
    )
    assert gpu.pip_packages == ()  # xgboost is pinned in the staged requirements
    assert gpu.metadata == (("gpu-driver-provider", "NVIDIA"), ("rapids-runtime", "NONE"))


def test_profile_from_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(
        "workers: 8\nworker_machine_type: n1-highmem-16\ngcloud_args: ['--enable-component-gateway']\n"
    )
    profile = load_profile(str(path))
    assert (profile.name, profile.workers, profile.worker_machine_type, profile.gcloud_args) == (
        "big",
        8,
        "n1-highmem-16",
        ("--enable-component-gateway",),
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"wokers": 3}, "p.yaml: unknown key(s) wokers; allowed: "),
        ({"workers": -1}, "p.yaml: 'workers' must be a whole number ≥ 0, not -1"),
        (
            {"max_idle": "soon"},
            "p.yaml: 'max_idle' must be a duration such as 30m or 2h, not 'soon'",
        ),
        (
            {"worker_accelerator": "nvidia-tesla-t4"},
            "p.yaml: 'worker_accelerator' must look like type=nvidia-tesla-t4,count=1, not 'nvidia-tesla-t4'",
        ),
        (
            {"init_actions": "gs://x"},
            "p.yaml: 'init_actions' must be a list of strings, not 'gs://x'",
        ),
    ],
)
def test_profile_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(InputError) as info:
        parse_profile("p", data, Path("p.yaml"))
    assert str(info.value).startswith(message)


def test_metadata_values_with_separators_are_refused() -> None:
    profile = ClusterProfile(name="x", pip_packages=("xgboost>=2",))
    spec = ClusterSpec(name="c1", profile=profile, bucket="lab")
    with pytest.raises(InputError) as info:
        start_argv(spec, STAGED)
    assert str(info.value) == (
        "metadata gwas-prs-pip-packages='xgboost>=2': values passed through hailctl may not contain ',' or '='"
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["qc", "gs://b/runs/a"], "gs://b/runs/a"),
        (["ingest", "gs://b/in/x.vcf.gz", "-r", "gs://b/runs/a"], "gs://b/runs/a"),
        (["ingest", "gs://b/in/x.vcf.gz", "--run=gs://b/runs/a"], "gs://b/runs/a"),
        (["ingest", "gs://b/in/x.vcf.gz"], None),
        (["run", "config.yaml"], None),
        # predict: beside its --out file, never inside the model folder it reads
        (
            ["predict", "--model", "gs://b/runs/a/gold/models/t", "--out", "gs://b/p/x.tsv"],
            "gs://b/p",
        ),
        (["export", "gs://b/runs/a", "--layer", "gold", "--out", "gs://b/e"], "gs://b/runs/a"),
        (["simulate-phenotype", "gs://b/runs/a", "--trait", "t"], "gs://b/runs/a"),
    ],
)
def test_run_folder_from_args(args: list[str], expected: str | None) -> None:
    assert run_folder_from_args(args) == expected


def test_parse_cluster_and_version_check() -> None:
    info = parse_cluster(
        {
            "clusterName": "c1",
            "status": {"state": "RUNNING"},
            "config": {"gceClusterConfig": {"metadata": {"gwas-prs-hail-version": "0.2.139"}}},
        }
    )
    assert info == ClusterInfo("c1", "RUNNING", 0, 0, "0.2.139", None, None)
    with pytest.raises(EnvironmentSetupError, match="has no gwas-prs wheel in its metadata"):
        check_hail_version(info, "0.2.139", "0.1.0")
    wheel = "gs://b/gwas-prs/wheels/gwas_prs-0.1.0-py3-none-any.whl"
    check_hail_version(
        ClusterInfo("c1", "RUNNING", 0, 0, "0.2.139", "0.1.0", wheel), "0.2.139", "0.1.0"
    )
    with pytest.raises(EnvironmentSetupError) as err:
        check_hail_version(
            ClusterInfo("c2", "RUNNING", 2, 0, None, "0.1.0", wheel), "0.2.139", "0.1.0"
        )
    assert str(err.value) == (
        "cluster c2 records no Hail version (it was not started by 'gwas-prs dataproc start'); "
        "start one with 'gwas-prs dataproc start c2-gwas --bucket BUCKET'"
    )


def test_wheel_plan_rejects_other_files(tmp_path: Path) -> None:
    other = tmp_path / "hail-0.2.139-py3-none-any.whl"
    other.write_bytes(b"x")
    with pytest.raises(InputError) as info:
        plan_wheel_staging("lab", tmp_path, str(other))
    assert (
        str(info.value)
        == f"{other}: not a gwas-prs wheel (expected gwas_prs-VERSION-py3-none-any.whl)"
    )


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_init_action_passes_shellcheck() -> None:
    result = subprocess.run(
        ["shellcheck", "--severity=style", str(init_action_path())],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "")


def test_init_action_is_packaged_and_executable() -> None:
    path = init_action_path()
    assert path.read_text().startswith("#!/usr/bin/env bash\n")
    assert os.access(path, os.X_OK)


def test_real_hailctl_passes_gcloud_flags_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The installed hailctl (with --dry-run and a fake gcloud) puts our flags on the gcloud line."""
    hailctl = Path(sys.executable).with_name("hailctl")
    if not hailctl.exists():
        pytest.skip("hailctl is not installed next to this Python")
    fakes = install_fakes(tmp_path / "bin")
    fakes.respond("gcloud", ["config", "get-value", "account"], stdout="me@example.com\n")
    monkeypatch.setenv("PATH", f"{fakes.folder}{os.pathsep}{os.environ['PATH']}")
    spec = ClusterSpec(
        name="gwas-gpu",
        profile=load_profile("gpu"),
        bucket="lab",
        location=GcpLocation(region="us-central1"),
        secondary_workers=2,
        spot=True,
        kms_key="projects/p/locations/l/keyRings/r/cryptoKeys/k",
    )
    argv = start_argv(spec, STAGED)
    split = argv.index("--")
    command = [str(hailctl), *argv[1:split], "--dry-run", *argv[split:]]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    printed = result.stdout.replace(" \\\n    ", " ")
    gcloud_line = next(
        line for line in printed.splitlines() if line.startswith("gcloud dataproc clusters create")
    )
    assert gcloud_line.endswith(
        " --public-ip-address --master-accelerator=type=nvidia-tesla-t4,count=1 "
        "--secondary-worker-type=spot "
        "--gce-pd-kms-key=projects/p/locations/l/keyRings/r/cryptoKeys/k "
        "--kms-key=projects/p/locations/l/keyRings/r/cryptoKeys/k"
    )
    assert "--image-version=2.3.17-debian12" in gcloud_line
    assert (
        "--initialization-actions=gs://hail-common/hailctl/dataproc/0.2.139/init_notebook.py,"
        "gs://goog-dataproc-initialization-actions-us-central1/gpu/install_gpu_driver.sh,"
        "gs://lab/gwas-prs/init-actions/install-gwas-prs.sh"
    ) in gcloud_line
    assert "gwas-prs-hail-version=0.2.139|||" in gcloud_line
    assert "--initialization-action-timeout=45m" in gcloud_line


def run_init_action(
    tmp_path: Path, metadata: dict[str, str], *, gpu: bool = False
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    """Run install-gwas-prs.sh with fake metadata server, gcloud, python and systemctl
    (and nvidia-smi when ``gpu``); return what they were asked. Spark and Hadoop
    configuration files are read from ``tmp_path/spark`` and ``tmp_path/hadoop``."""
    fakes = install_fakes(tmp_path / "bin")
    for name in ("get_metadata_value", "python", "systemctl", *(("nvidia-smi",) if gpu else ())):
        shutil.copy(fakes.folder / "gcloud", fakes.folder / name)
    for key, value in metadata.items():
        fakes.respond("get_metadata_value", [f"attributes/{key}"], stdout=value)
    fakes.respond("systemctl", ["cat"], exit=1)  # no jupyter.service unless a test says so
    env = {
        "PATH": f"{fakes.folder}{os.pathsep}/usr/bin:/bin",
        "GWAS_PRS_INIT_PYTHON": str(fakes.folder / "python"),
        "GWAS_PRS_INIT_CONFIG_PYTHON": sys.executable,
        "GWAS_PRS_INIT_GET_METADATA": str(fakes.folder / "get_metadata_value"),
        "GWAS_PRS_INIT_WORK_DIR": str(tmp_path / "work"),
        "GWAS_PRS_INIT_SPARK_CONF_DIR": str(tmp_path / "spark"),
        "GWAS_PRS_INIT_HADOOP_CONF_DIR": str(tmp_path / "hadoop"),
        "GWAS_PRS_INIT_SYSTEMCTL": str(fakes.folder / "systemctl"),
    }
    result = subprocess.run(
        ["bash", str(init_action_path())],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    return result, [call for call in fakes.calls() if call[0] != "get_metadata_value"]


WHEEL_URI = "gs://lab/gwas-prs/staged/0a1b/gwas_prs-0.1.0-py3-none-any.whl"
REQUIREMENTS_URI = "gs://lab/gwas-prs/staged/2c3d/gwas-prs-requirements.txt"


@pytest.mark.parametrize("role", ["Master", "Worker"])
def test_init_action_installs_the_wheel_without_deps_then_the_pinned_requirements(
    tmp_path: Path, role: str
) -> None:
    """Every node, master or worker: ``pip install --no-deps WHEEL`` then ``pip install -r REQ``."""
    result, calls = run_init_action(
        tmp_path,
        {
            "gwas-prs-wheel": WHEEL_URI,
            "gwas-prs-requirements": REQUIREMENTS_URI,
            "dataproc-role": role,
            "gwas-prs-pip-packages": "scipy",
        },
    )
    assert result.returncode == 0, result.stderr
    wheel = f"{tmp_path}/work/gwas_prs-0.1.0-py3-none-any.whl"
    requirements = f"{tmp_path}/work/gwas-prs-requirements.txt"
    assert [c for c in calls if c[0] != "systemctl"] == [
        ["gcloud", "storage", "cp", WHEEL_URI, wheel],
        ["gcloud", "storage", "cp", REQUIREMENTS_URI, requirements],
        ["python", "-m", "pip", "install", "--no-deps", wheel],
        ["python", "-m", "pip", "install", "-r", requirements],
        ["python", "-m", "pip", "install", "scipy"],
    ]


@pytest.mark.parametrize(
    "metadata",
    [{"dataproc-role": "Worker"}, {"dataproc-role": "Worker", "gwas-prs-wheel": WHEEL_URI}],
)
def test_init_action_fails_without_wheel_or_requirements_metadata(
    tmp_path: Path, metadata: dict[str, str]
) -> None:
    result, calls = run_init_action(tmp_path, metadata)
    assert (result.returncode, calls) == (1, [])
    assert result.stderr == (
        "install-gwas-prs: instance metadata 'gwas-prs-wheel' or 'gwas-prs-requirements' is "
        "empty; start the cluster with 'gwas-prs dataproc start'\n"
    )
