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
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

from gwas_prs.core.errors import EnvironmentSetupError, InputError
from gwas_prs.dataproc.cluster import ClusterInfo, GcpLocation, validate_cluster_name

logger = logging.getLogger(__name__)

#: Commands that may be submitted (the stage commands and the whole pipeline).
SUBMITTABLE_COMMANDS = (
    "ingest",
    "qc",
    "gwas",
    "prs",
    "train",
    "predict",
    "run",
    "simulate",
    "export",
)
_RUN_OPTIONS = ("--run", "-r")


def job_entry_path() -> Path:
    """The packaged job entry point script (what hailctl uploads and runs)."""
    return Path(str(files("gwas_prs.dataproc") / "job_entry.py"))


def run_folder_from_args(args: Sequence[str]) -> str | None:
    """The run folder of a stage command line.

    ``--run X``, ``-r X`` or ``--run=X`` wins; otherwise the first ``gs://``
    argument after the command name (stage commands take the run folder as
    their first argument).

    >>> run_folder_from_args(["ingest", "gs://b/in/chr1.vcf.gz", "--run", "gs://b/runs/a"])
    'gs://b/runs/a'
    >>> run_folder_from_args(["qc", "gs://b/runs/a", "--overwrite"])
    'gs://b/runs/a'
    """
    for index, arg in enumerate(args):
        if arg in _RUN_OPTIONS and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("--run="):
            return arg.split("=", 1)[1]
    if args and args[0] == "ingest":
        return None
    for arg in args[1:]:
        if arg.startswith("gs://"):
            return arg
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
    if command not in SUBMITTABLE_COMMANDS:
        raise InputError(
            f"'{command}' cannot be submitted; use one of {', '.join(SUBMITTABLE_COMMANDS)}"
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


def submit_argv(
    name: str, stage_args: Sequence[str], location: GcpLocation, *, properties: str | None = None
) -> list[str]:
    """``hailctl dataproc submit NAME job_entry.py [--region/--project] -- STAGE ARGS``."""
    argv = ["hailctl", "dataproc", "submit", validate_cluster_name(name), str(job_entry_path())]
    argv.extend(location.flags())
    if properties:
        argv.append(f"--properties={properties}")
    return [*argv, "--", *stage_args]


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
