"""Command lines that start, stop, list, describe and diagnose Dataproc clusters.

Clusters are started with ``hailctl dataproc start``, which pins the Dataproc
image that matches the installed Hail and configures Spark memory for Hail.
What hailctl has no flag for is passed through to ``gcloud dataproc clusters
create`` after ``--`` (hailctl forwards unknown arguments verbatim): GPU
accelerators, Spot secondary workers, autoscaling policies and CMEK keys.

hailctl always adds ``--public-ip-address``. For a cluster without external IP
addresses (``--private-ip``) the same ``hailctl dataproc start`` line runs with
``--dry-run``, which prints the ``gcloud dataproc clusters create`` command hailctl
would run (image, properties, memory settings, init actions, metadata, labels, our
pass-through flags); :func:`private_create_argv` takes that command, replaces
``--public-ip-address`` by ``--no-address`` and gwas-prs runs it with gcloud.

Every builder here returns an argv list; nothing runs. :mod:`gwas_prs.core.processes`
runs them (or prints them for ``--dry-run``).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Any

from gwas_prs.core.errors import ExternalCommandError, InputError
from gwas_prs.dataproc.profiles import ClusterProfile

#: Instance metadata written at start and read back before every submit.
METADATA_WHEEL = "gwas-prs-wheel"
METADATA_HAIL_VERSION = "gwas-prs-hail-version"
METADATA_GWAS_PRS_VERSION = "gwas-prs-version"
METADATA_PIP_PACKAGES = "gwas-prs-pip-packages"
METADATA_REQUIREMENTS = "gwas-prs-requirements"
#: "true" keeps the token-less Jupyter that hailctl's init action starts on the master.
METADATA_NOTEBOOK = "gwas-prs-notebook"

_CLUSTER_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,49}[a-z0-9])?$")
_DURATION = re.compile(r"^\d+[smhd]$")


@dataclass(frozen=True)
class GcpLocation:
    """Where a cluster lives; ``None`` lets gcloud use its configured default."""

    region: str | None = None
    project: str | None = None
    zone: str | None = None

    def flags(self, *, zone: bool = False) -> list[str]:
        """``--region=…``/``--project=…`` (and ``--zone=…`` when asked) for set values."""
        out = []
        if self.region:
            out.append(f"--region={self.region}")
        if zone and self.zone:
            out.append(f"--zone={self.zone}")
        if self.project:
            out.append(f"--project={self.project}")
        return out


@dataclass(frozen=True)
class ClusterSpec:
    """Everything ``gwas-prs dataproc start`` needs; options override the profile.

    ``None`` means "take the profile's value".
    """

    name: str
    profile: ClusterProfile
    bucket: str
    location: GcpLocation = GcpLocation()
    workers: int | None = None
    secondary_workers: int | None = None
    spot: bool = False
    worker_machine_type: str | None = None
    master_machine_type: str | None = None
    max_idle: str | None = None
    max_age: str | None = None
    autoscaling_policy: str | None = None
    kms_key: str | None = None
    service_account: str | None = None
    scopes: str | None = None
    subnet: str | None = None
    private_ip: bool = False
    notebook: bool = False
    extra_gcloud_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class StagedFiles:
    """Where the wheel, its pinned requirements and the init actions were staged on GCS.

    ``profile_init_actions``: the pinned copies of the profile's third-party init
    actions; ``None`` uses the profile's own URIs (region filled in).
    """

    wheel_uri: str
    init_action_uri: str
    gwas_prs_version: str
    hail_version: str
    requirements_uri: str | None = None
    profile_init_actions: tuple[str, ...] | None = None


def validate_cluster_name(name: str) -> str:
    """Return ``name`` if Dataproc accepts it.

    Raises
    ------
    InputError
        Not 1–51 lowercase letters, digits or hyphens starting with a letter.
    """
    if not _CLUSTER_NAME.match(name):
        raise InputError(
            f"'{name}' is not a valid cluster name; use 1-51 lowercase letters, digits and hyphens, "
            "starting with a letter and not ending with a hyphen"
        )
    return name


def _check_duration(option: str, value: str | None) -> None:
    if value is not None and not _DURATION.match(value):
        raise InputError(f"{option} {value!r}: write a duration such as 30m, 2h or 1d")


def _metadata_value(key: str, value: str) -> str:
    if "," in value or "=" in value:
        raise InputError(
            f"metadata {key}={value!r}: values passed through hailctl may not contain ',' or '='"
        )
    return f"{key}={value}"


def validate_spec(spec: ClusterSpec) -> None:
    """Check option combinations before anything runs.

    Raises
    ------
    InputError
        Invalid name/durations, ``--spot`` without secondary workers, GPUs on a
        machine type they cannot attach to, or a GPU profile without ``--region``.
    """
    validate_cluster_name(spec.name)
    _check_duration("--max-idle", spec.max_idle)
    _check_duration("--max-age", spec.max_age)
    secondary = (
        spec.secondary_workers
        if spec.secondary_workers is not None
        else spec.profile.secondary_workers
    )
    if spec.spot and secondary == 0 and not spec.autoscaling_policy:
        raise InputError(
            "--spot makes the secondary workers Spot VMs; add --secondary-workers N (N ≥ 1)"
        )
    profile = spec.profile
    for role, accelerator, machine in (
        (
            "master",
            profile.master_accelerator,
            spec.master_machine_type or profile.master_machine_type,
        ),
        (
            "worker",
            profile.worker_accelerator,
            spec.worker_machine_type or profile.worker_machine_type,
        ),
    ):
        if accelerator and not machine.startswith("n1-"):
            raise InputError(
                f"the '{profile.name}' profile attaches GPUs ({accelerator}) to the {role}, which needs an N1 "
                f"machine type, not {machine}; choose e.g. --{role}-machine-type n1-standard-8"
            )
    if any("{region}" in action for action in profile.init_actions) and not spec.location.region:
        raise InputError(
            f"the '{profile.name}' profile reads init actions from a regional bucket; pass --region (e.g. us-central1)"
        )
    if not re.match(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$", spec.bucket):
        raise InputError(
            f"--bucket {spec.bucket!r}: give the bucket name only (no gs://), e.g. my-lab-gwas"
        )


def profile_init_action_sources(spec: ClusterSpec) -> tuple[str, ...]:
    """The profile's init actions with ``{region}`` filled in (what ``start`` pins copies of)."""
    region = spec.location.region or ""
    return tuple(action.replace("{region}", region) for action in spec.profile.init_actions)


def init_actions(spec: ClusterSpec, staged: StagedFiles) -> list[str]:
    """The profile's init actions (their pinned copies once staged), then the gwas-prs install."""
    profile_actions = (
        staged.profile_init_actions
        if staged.profile_init_actions is not None
        else profile_init_action_sources(spec)
    )
    return [*profile_actions, staged.init_action_uri]


def cluster_metadata(spec: ClusterSpec, staged: StagedFiles) -> list[str]:
    """``KEY=VALUE`` metadata: the staged wheel, versions, pip packages, profile extras."""
    items = [
        _metadata_value(METADATA_WHEEL, staged.wheel_uri),
        _metadata_value(METADATA_GWAS_PRS_VERSION, staged.gwas_prs_version),
        _metadata_value(METADATA_HAIL_VERSION, staged.hail_version),
    ]
    if staged.requirements_uri:
        items.append(_metadata_value(METADATA_REQUIREMENTS, staged.requirements_uri))
    if spec.notebook:
        items.append(_metadata_value(METADATA_NOTEBOOK, "true"))
    if spec.profile.pip_packages:
        items.append(_metadata_value(METADATA_PIP_PACKAGES, " ".join(spec.profile.pip_packages)))
    items.extend(_metadata_value(k, v) for k, v in spec.profile.metadata)
    return items


def gcloud_passthrough_args(spec: ClusterSpec) -> list[str]:
    """``gcloud dataproc clusters create`` flags that hailctl has no option for."""
    profile = spec.profile
    args: list[str] = []
    if profile.master_accelerator:
        args.append(f"--master-accelerator={profile.master_accelerator}")
    if profile.worker_accelerator:
        args.append(f"--worker-accelerator={profile.worker_accelerator}")
    if spec.spot:
        args.append("--secondary-worker-type=spot")
    if spec.autoscaling_policy:
        args.append(f"--autoscaling-policy={spec.autoscaling_policy}")
    if spec.kms_key:
        # the disks (--gce-pd-kms-key) and the cluster's job arguments (--kms-key)
        args.append(f"--gce-pd-kms-key={spec.kms_key}")
        args.append(f"--kms-key={spec.kms_key}")
    args.extend(profile.gcloud_args)
    args.extend(spec.extra_gcloud_args)
    return args


def start_argv(spec: ClusterSpec, staged: StagedFiles) -> list[str]:
    """``hailctl dataproc start …`` for ``spec`` with the wheel ``staged`` on GCS."""
    validate_spec(spec)
    profile = spec.profile
    argv = [
        "hailctl",
        "dataproc",
        "start",
        spec.name,
        *spec.location.flags(zone=True),
        f"--master-machine-type={spec.master_machine_type or profile.master_machine_type}",
        f"--worker-machine-type={spec.worker_machine_type or profile.worker_machine_type}",
        f"--num-workers={spec.workers if spec.workers is not None else profile.workers}",
        f"--num-secondary-workers={spec.secondary_workers if spec.secondary_workers is not None else profile.secondary_workers}",
        f"--bucket={spec.bucket}",
    ]
    max_idle = spec.max_idle or profile.max_idle
    if max_idle:
        argv.append(f"--max-idle={max_idle}")
    if spec.max_age:
        argv.append(f"--max-age={spec.max_age}")
    if spec.subnet:
        argv.append(f"--subnet={spec.subnet}")
    if spec.service_account:
        argv.append(f"--service-account={spec.service_account}")
    if spec.scopes:
        argv.append(f"--scopes={spec.scopes}")
    argv.append(f"--init={','.join(init_actions(spec, staged))}")
    argv.append(f"--init_timeout={profile.init_timeout}")
    argv.append(f"--metadata={','.join(cluster_metadata(spec, staged))}")
    passthrough = gcloud_passthrough_args(spec)
    if passthrough:
        argv.extend(["--", *passthrough])
    return argv


def hailctl_print_argv(spec: ClusterSpec, staged: StagedFiles) -> list[str]:
    """``hailctl dataproc start … --dry-run …``: prints the gcloud command, creates nothing."""
    argv = start_argv(spec, staged)
    split = argv.index("--") if "--" in argv else len(argv)
    return [*argv[:split], "--dry-run", *argv[split:]]


def private_create_argv(hailctl_output: str) -> list[str]:
    """The ``gcloud dataproc clusters create`` command that ``hailctl … --dry-run``
    printed, with ``--public-ip-address`` replaced by ``--no-address``.

    Raises
    ------
    ExternalCommandError
        hailctl printed no such command (another hailctl version).
    """
    start = hailctl_output.find("gcloud dataproc clusters create ")
    if start < 0:
        raise ExternalCommandError(
            "'hailctl dataproc start --dry-run' printed no 'gcloud dataproc clusters create' "
            "command; start without --private-ip or update hail"
        )
    line = hailctl_output[start:].replace(" \\\n", " ").splitlines()[0]
    argv = shlex.split(line)
    if "--public-ip-address" not in argv:
        raise ExternalCommandError(
            "the gcloud command printed by hailctl has no --public-ip-address to replace; "
            "start without --private-ip or update hail"
        )
    return ["--no-address" if arg == "--public-ip-address" else arg for arg in argv]


def stop_argv(name: str, location: GcpLocation, *, asynchronous: bool = False) -> list[str]:
    """``hailctl dataproc stop NAME`` (region/project forwarded to gcloud)."""
    argv = ["hailctl", "dataproc", "stop", validate_cluster_name(name)]
    if asynchronous:
        argv.append("--async")
    return [*argv, *location.flags()]


def list_argv(location: GcpLocation) -> list[str]:
    """``gcloud dataproc clusters list --format=json`` (parsed into a table)."""
    return ["gcloud", "dataproc", "clusters", "list", *location.flags(), "--format=json"]


def describe_argv(name: str, location: GcpLocation) -> list[str]:
    """``gcloud dataproc clusters describe NAME --format=json``."""
    return [
        "gcloud",
        "dataproc",
        "clusters",
        "describe",
        validate_cluster_name(name),
        *location.flags(),
        "--format=json",
    ]


def diagnose_argv(name: str, dest: str) -> list[str]:
    """``hailctl dataproc diagnose NAME --dest DEST`` (Hail log, Spark and YARN logs)."""
    return ["hailctl", "dataproc", "diagnose", validate_cluster_name(name), f"--dest={dest}"]


def job_logs_argv(job_id: str, location: GcpLocation) -> list[str]:
    """``gcloud dataproc jobs wait JOB`` – streams a job's driver output until it ends."""
    return ["gcloud", "dataproc", "jobs", "wait", job_id, *location.flags()]


@dataclass(frozen=True)
class ClusterInfo:
    """What ``clusters describe``/``list`` say about a cluster."""

    name: str
    status: str
    workers: int
    secondary_workers: int
    hail_version: str | None
    gwas_prs_version: str | None
    wheel: str | None


def parse_cluster(data: dict[str, Any]) -> ClusterInfo:
    """Read a cluster resource (JSON from gcloud) into :class:`ClusterInfo`.

    The Hail version is the one recorded at start in metadata
    ``gwas-prs-hail-version``; for clusters started by plain ``hailctl`` it is
    read from hailctl's ``WHEEL`` metadata (``hail-0.2.139-py3-none-any.whl``).
    """
    config = data.get("config", {})
    metadata = config.get("gceClusterConfig", {}).get("metadata", {}) or {}
    hail_version = metadata.get(METADATA_HAIL_VERSION)
    if hail_version is None and "WHEEL" in metadata:
        match = re.search(r"hail-(\d+\.\d+\.\d+)-", str(metadata["WHEEL"]))
        hail_version = match.group(1) if match else None
    return ClusterInfo(
        name=str(data.get("clusterName", "?")),
        status=str(data.get("status", {}).get("state", "UNKNOWN")),
        workers=int(config.get("workerConfig", {}).get("numInstances", 0)),
        secondary_workers=int(config.get("secondaryWorkerConfig", {}).get("numInstances", 0)),
        hail_version=hail_version,
        gwas_prs_version=metadata.get(METADATA_GWAS_PRS_VERSION),
        wheel=metadata.get(METADATA_WHEEL),
    )


def parse_json_output(text: str, what: str) -> Any:
    """Parse gcloud's ``--format=json`` output.

    Raises
    ------
    ExternalCommandError
        The output is not JSON (an old gcloud or a wrapper printing extra lines).
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExternalCommandError(
            f"could not read the JSON that gcloud printed for {what} ({exc}); run it by hand to see why"
        ) from exc
