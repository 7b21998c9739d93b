"""Submit stage commands to a cluster: ``hailctl dataproc submit`` + the job entry point.

``gwas-prs dataproc submit NAME -- qc gs://bucket/runs/cohort`` becomes::

    hailctl dataproc submit NAME …/gwas_prs/dataproc/job_entry.py -- qc gs://bucket/runs/cohort

and :mod:`gwas_prs.dataproc.job_entry` runs the very same Typer command on the
cluster's master. Before submitting, the cluster's Hail version (recorded in its
metadata at start) must equal the local one.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from gwas_prs.core.errors import EnvironmentSetupError, ExternalCommandError, InputError
from gwas_prs.dataproc.cluster import ClusterInfo, GcpLocation, validate_cluster_name

logger = logging.getLogger(__name__)

#: Commands of the Typer app that run on this machine only: they read this machine's
#: files, talk to gcloud/hailctl, or start a cohort generator. Every other command of
#: the app may be submitted (:func:`submittable_commands`).
LOCAL_ONLY_COMMANDS = ("demo", "stage", "status", "query", "dataproc", "simulate-cohort")
_RUN_OPTIONS = ("--run", "-r")
#: Options whose value is written by the command: on a cluster they must be gs://
#: (the master's disk is deleted with the cluster).
OUTPUT_OPTIONS = ("--out", "-o")
#: The job entry point's own option, before the stage command: the job's tag.
JOB_TAG_OPTION = "--job-tag"
#: The last line the job entry point prints (driver output), with the stage's status.
STAGE_EXIT_MARKER = "gwas-prs: the stage exited with status "


def submittable_commands() -> tuple[str, ...]:
    """The commands that may run on a cluster, from the Typer app itself (so the list
    never names a command that does not exist, or misses a new one)."""
    from gwas_prs.cli.app import app

    names = [c.name for c in app.registered_commands if c.name]
    return tuple(n for n in names if n not in LOCAL_ONLY_COMMANDS)


def _option_value(args: Sequence[str], options: Sequence[str]) -> str | None:
    for index, arg in enumerate(args):
        if arg in options and index + 1 < len(args):
            return args[index + 1]
        for option in options:
            if option.startswith("--") and arg.startswith(option + "="):
                return arg.split("=", 1)[1]
    return None


def job_entry_path() -> Path:
    """The packaged job entry point script (what hailctl uploads and runs)."""
    return Path(str(files("gwas_prs.dataproc") / "job_entry.py"))


def run_folder_from_args(args: Sequence[str]) -> str | None:
    """The run folder of a stage command line (where its logs go), by the command's own
    rule: ``ingest`` and the like take ``--run``/``-r``; ``predict`` writes beside its
    ``--out`` file; ``run`` names it in its pipeline file (None); the other stage
    commands take it as their first argument (``qc RUN``), never "the first gs://
    argument" (``predict --model gs://…`` is an input).

    >>> run_folder_from_args(["ingest", "gs://b/in/chr1.vcf.gz", "--run", "gs://b/runs/a"])
    'gs://b/runs/a'
    >>> run_folder_from_args(["qc", "gs://b/runs/a", "--overwrite"])
    'gs://b/runs/a'
    >>> run_folder_from_args(["predict", "--model", "gs://b/runs/a/gold/models/t", "--out", "gs://b/p/x.tsv"])
    'gs://b/p'
    """
    if not args:
        return None
    command = args[0]
    run = _option_value(args, _RUN_OPTIONS)
    if run is not None:
        return run
    if command in ("ingest", "run"):
        return None
    if command == "predict":
        out = _option_value(args, OUTPUT_OPTIONS)
        return out.rstrip("/").rpartition("/")[0] if out and "/" in out else None
    if len(args) > 1 and not args[1].startswith("-"):
        return args[1]
    return None


def check_stage_args(args: Sequence[str]) -> str | None:
    """Check a command line for the cluster and return its run folder.

    ``run CONFIG`` may leave the run folder to its config file (None is returned).

    Raises
    ------
    InputError
        No command, a command that cannot run on the cluster, an argument that
        is an existing local file, or a run folder that is not on ``gs://``
        (cluster nodes cannot see this machine's disk).
    """
    if not args:
        raise InputError(
            "say which command to run after '--', e.g. gwas-prs dataproc submit NAME -- qc gs://BUCKET/runs/cohort"
        )
    command = args[0]
    allowed = submittable_commands()
    if command not in allowed:
        raise InputError(f"'{command}' cannot be submitted; use one of {', '.join(allowed)}")
    out = _option_value(args, OUTPUT_OPTIONS)
    if out is not None and not out.startswith("gs://"):
        raise InputError(
            f"--out {out}: on a cluster the output must be on gs:// (the master's disk is "
            "deleted with the cluster); give gs://BUCKET/PREFIX/…"
        )
    for arg in args[1:]:
        if not arg.startswith("-") and "://" not in arg and os.path.exists(arg):
            raise InputError(
                f"{arg} is a local path, which the cluster cannot read; stage it first with "
                f"'gwas-prs stage {arg} gs://BUCKET/PREFIX' and pass the gs:// path"
            )
    run = run_folder_from_args(args)
    if run is None and command == "run":
        return None  # the run folder is inside the pipeline config
    if run is None:
        raise InputError(
            f"'{command}' needs a gs:// run folder on the cluster; give it with --run gs://BUCKET/PREFIX"
        )
    if not run.startswith("gs://"):
        raise InputError(
            f"run folder {run} is not on Google Cloud Storage; on Dataproc use gs://BUCKET/PREFIX "
            "(stage local inputs first with 'gwas-prs stage')"
        )
    return run


def new_job_tag(command: str) -> str:
    """A name unique to one submitted job, e.g. ``qc-20260101-120000-1a2b3c``: its Hail
    logs land in ``RUN/logs/TAG/`` and it finds the Dataproc job after a failure."""
    return f"{command}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def _split_properties(properties: str) -> list[str]:
    """gcloud's list syntax: ``a=1,b=2``, or ``^#^a=1,2#b=3`` with another delimiter."""
    delimiter = ","
    if properties.startswith("^") and properties.find("^", 1) > 1:
        end = properties.find("^", 1)
        delimiter, properties = properties[1:end], properties[end + 1 :]
    return [item for item in properties.split(delimiter) if item]


def check_job_properties(properties: str) -> None:
    """Check ``--properties`` of a job: plain Spark keys, ``KEY=VALUE,…``.

    ``gcloud dataproc jobs submit pyspark --properties`` (which hailctl calls) takes
    Spark's own keys (``spark.executor.memory=8g``); the ``spark:`` prefix belongs
    to *cluster* properties (``gcloud dataproc clusters create --properties``) and
    would set a property literally named ``spark:spark.executor.memory``, which Spark
    ignores.

    Raises
    ------
    InputError
        An item has no ``=`` or a ``PREFIX:`` key.
    """
    for item in _split_properties(properties):
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise InputError(
                f"--properties {item}: write each job property as KEY=VALUE, e.g. spark.executor.memory=8g"
            )
        prefix, colon, plain = key.partition(":")
        if colon:
            raise InputError(
                f"--properties {item}: job properties take plain Spark keys; drop the '{prefix}:' "
                f"prefix ({plain}={value}), which is the syntax of cluster properties"
            )


def submit_argv(
    name: str,
    stage_args: Sequence[str],
    location: GcpLocation,
    *,
    properties: str | None = None,
    job_tag: str | None = None,
) -> list[str]:
    """``hailctl dataproc submit NAME job_entry.py [--region/--project] [--properties=…]
    -- [--job-tag TAG] STAGE ARGS`` (the tag is read by the job entry point)."""
    argv = ["hailctl", "dataproc", "submit", validate_cluster_name(name), str(job_entry_path())]
    argv.extend(location.flags())
    if properties:
        check_job_properties(properties)
        argv.append(f"--properties={properties}")
    tag = [JOB_TAG_OPTION, job_tag] if job_tag else []
    return [*argv, "--", *tag, *stage_args]


def jobs_list_argv(name: str, location: GcpLocation) -> list[str]:
    """``gcloud dataproc jobs list --cluster=NAME --state-filter=inactive --format=json``."""
    return [
        "gcloud",
        "dataproc",
        "jobs",
        "list",
        f"--cluster={validate_cluster_name(name)}",
        *location.flags(),
        "--state-filter=inactive",
        "--format=json",
    ]


def find_tagged_job(jobs: Any, job_tag: str) -> dict[str, Any] | None:
    """The job (from ``jobs list --format=json``) whose arguments carry ``job_tag``."""
    for job in jobs if isinstance(jobs, list) else []:
        args = (job.get("pysparkJob") or {}).get("args") or []
        for index, arg in enumerate(args[:-1]):
            if arg == JOB_TAG_OPTION and args[index + 1] == job_tag:
                return dict(job)
    return None


def stage_exit_status(driver_output: str) -> int | None:
    """The exit status that the job entry point printed last in its driver output.

    >>> stage_exit_status("...\\ngwas-prs: the stage exited with status 2\\n")
    2
    """
    found = None
    for line in driver_output.splitlines():
        if line.startswith(STAGE_EXIT_MARKER):
            number = line[len(STAGE_EXIT_MARKER) :].strip()
            if number.isdigit():
                found = int(number)
    return found


def failed_job_exit_status(
    name: str, job_tag: str, location: GcpLocation
) -> tuple[str, int] | None:
    """After a failed submit: the Dataproc job ID and the stage's own exit status.

    Dataproc reports only "Google Cloud Dataproc Agent reports job failure" for a
    driver that exits non-zero, never the status itself; so the job is found by its
    tag (``jobs list``) and the status read from the end of its driver output on
    GCS, where the job entry point printed it. None when any of it is missing (the
    job never started, the driver was killed, no access to the staging bucket).
    """
    from gwas_prs.core.gcs_staging import read_object_tail
    from gwas_prs.core.processes import run_command
    from gwas_prs.dataproc.cluster import parse_json_output

    try:
        result = run_command(jobs_list_argv(name, location), what=f"find the job {job_tag}")
        job = find_tagged_job(parse_json_output(result.stdout, "jobs list"), job_tag)
        if job is None or not job.get("driverOutputResourceUri"):
            return None
        job_id = str((job.get("reference") or {}).get("jobId") or job_tag)
        status = stage_exit_status(read_object_tail(str(job["driverOutputResourceUri"])))
    except Exception as exc:  # the lookup only refines the error; it never replaces it
        logger.debug("could not read the exit status of job %s: %s", job_tag, exc)
        return None
    if status is None or status == 0:
        return None
    return job_id, status


class StageFailedError(ExternalCommandError):
    """A submitted stage failed on the cluster; exits with the stage's own status."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message, returncode=exit_code)
        self.exit_code = exit_code


def check_hail_version(
    cluster: ClusterInfo, local_hail_version: str, local_gwas_prs_version: str
) -> None:
    """Refuse a cluster whose Hail differs from the local Hail.

    A different gwas-prs version only logs a warning (the cluster runs the
    wheel it was started with).

    Raises
    ------
    EnvironmentSetupError
        The cluster records no Hail version or a different one.
    """
    if cluster.gwas_prs_version is None or cluster.wheel is None:
        raise EnvironmentSetupError(
            f"cluster {cluster.name} has no gwas-prs wheel in its metadata (it was not started by "
            "'gwas-prs dataproc start', so its nodes lack gwas-prs); start one with "
            f"'gwas-prs dataproc start {cluster.name}-gwas --bucket BUCKET'"
        )
    if cluster.hail_version is None:
        raise EnvironmentSetupError(
            f"cluster {cluster.name} records no Hail version (it was not started by 'gwas-prs dataproc start'); "
            f"start one with 'gwas-prs dataproc start {cluster.name}-gwas --bucket BUCKET'"
        )
    if cluster.hail_version != local_hail_version:
        raise EnvironmentSetupError(
            f"cluster {cluster.name} runs Hail {cluster.hail_version} but this machine has Hail {local_hail_version}; "
            f"restart it with this gwas-prs ('gwas-prs dataproc stop {cluster.name}' then 'gwas-prs dataproc start') "
            f"or install hail=={cluster.hail_version} here"
        )
    if cluster.gwas_prs_version and cluster.gwas_prs_version != local_gwas_prs_version:
        logger.warning(
            "cluster %s runs gwas-prs %s, this machine has %s; the cluster's version runs the job",
            cluster.name,
            cluster.gwas_prs_version,
            local_gwas_prs_version,
        )
