"""``gwas-prs dataproc …``: start, stop, list and use Google Cloud Dataproc clusters.

The commands wrap ``hailctl dataproc`` (and ``gcloud`` where hailctl has no
flag). Every command that launches something has ``--dry-run``, which prints the
exact commands, one per line, and runs nothing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from gwas_prs.cli.console import console, summary_table
from gwas_prs.cli.options import ClusterNameArgument, DryRunOption, ProjectOption, RegionOption

app = typer.Typer(
    name="dataproc",
    help=(
        "Run gwas-prs on Google Cloud Dataproc: start a cluster with the gwas-prs wheel on every node, "
        "submit stage commands against gs:// run folders, stop it. Needs gcloud and hailctl "
        "(installed with hail), and 'gcloud auth login'. See the README's 'Running on Dataproc' section."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _echo_commands(lines: list[str]) -> None:
    for line in lines:
        typer.echo(line)


@app.command("start", no_args_is_help=True)
def start(
    name: ClusterNameArgument,
    bucket: Annotated[
        str,
        typer.Option(
            "--bucket",
            help="GCS bucket (name only, no gs://) for the staged wheel and the cluster's staging files.",
            show_default=False,
        ),
    ],
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            help="Cluster profile: 'cpu', 'gpu' (NVIDIA T4s, driver, CUDA XGBoost) or a path to a profile YAML file.",
        ),
    ] = "cpu",
    region: RegionOption = None,
    project: ProjectOption = None,
    zone: Annotated[
        str | None,
        typer.Option(
            "--zone",
            help="Compute zone, e.g. us-central1-b [default: chosen by Dataproc].",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=0,
            help="Primary workers [default: from the profile, 2].",
            show_default=False,
        ),
    ] = None,
    secondary_workers: Annotated[
        int | None,
        typer.Option(
            "--secondary-workers",
            min=0,
            help="Secondary (preemptible) workers [default: from the profile, 0].",
            show_default=False,
        ),
    ] = None,
    spot: Annotated[
        bool,
        typer.Option(
            "--spot",
            help="Make the secondary workers Spot VMs (cheapest; may be reclaimed at any time).",
        ),
    ] = False,
    worker_machine_type: Annotated[
        str | None,
        typer.Option(
            "--worker-machine-type",
            help="Worker machine type [default: from the profile].",
            show_default=False,
        ),
    ] = None,
    master_machine_type: Annotated[
        str | None,
        typer.Option(
            "--master-machine-type",
            help="Master machine type [default: from the profile].",
            show_default=False,
        ),
    ] = None,
    max_idle: Annotated[
        str | None,
        typer.Option(
            "--max-idle",
            help="Delete the cluster after this idle time, e.g. 30m, 2h [default: from the profile, 30m].",
            show_default=False,
        ),
    ] = None,
    max_age: Annotated[
        str | None,
        typer.Option(
            "--max-age",
            help="Delete the cluster this long after it starts, e.g. 8h.",
            show_default=False,
        ),
    ] = None,
    autoscaling_policy: Annotated[
        str | None,
        typer.Option(
            "--autoscaling-policy",
            help="Dataproc autoscaling policy ID or URI (gcloud flag).",
            show_default=False,
        ),
    ] = None,
    kms_key: Annotated[
        str | None,
        typer.Option(
            "--kms-key",
            help=(
                "Cloud KMS key (CMEK) for the cluster's disks and its job arguments, "
                "projects/P/locations/L/keyRings/R/cryptoKeys/K."
            ),
            show_default=False,
        ),
    ] = None,
    service_account: Annotated[
        str | None,
        typer.Option(
            "--service-account",
            help="Service account the cluster's VMs run as [default: the Compute Engine default one].",
            show_default=False,
        ),
    ] = None,
    scopes: Annotated[
        str | None,
        typer.Option(
            "--scopes",
            help="OAuth scopes of the VMs, comma-separated, e.g. cloud-platform [default: Dataproc's].",
            show_default=False,
        ),
    ] = None,
    subnet: Annotated[
        str | None,
        typer.Option("--subnet", help="VPC subnetwork for the cluster's VMs.", show_default=False),
    ] = None,
    private_ip: Annotated[
        bool,
        typer.Option(
            "--private-ip",
            "--no-address",
            help=(
                "No external IP addresses (gcloud --no-address): runs the 'gcloud dataproc clusters "
                "create' that hailctl prints, with --no-address. The subnet needs Private Google "
                "Access and Cloud NAT (the init actions install from PyPI)."
            ),
        ),
    ] = False,
    notebook: Annotated[
        bool,
        typer.Option(
            "--notebook",
            help=(
                "Keep the Jupyter server that hailctl starts on the master (no token: reach it "
                "only through 'hailctl dataproc connect'); without it, it is stopped."
            ),
        ),
    ] = False,
    wheel: Annotated[
        Path | None,
        typer.Option(
            "--wheel",
            help="Use this gwas_prs-*.whl instead of building one from the source tree.",
            show_default=False,
        ),
    ] = None,
    gcloud_arg: Annotated[
        list[str] | None,
        typer.Option(
            "--gcloud-arg",
            help="Extra 'gcloud dataproc clusters create' flag, as one --flag=value word (repeatable).",
            show_default=False,
        ),
    ] = None,
    dry_run: DryRunOption = False,
) -> None:
    """Start a Dataproc cluster with gwas-prs installed on every node.

    NAME is the new cluster's name (lowercase letters, digits, hyphens).
    Builds the gwas-prs wheel and stages it, a requirements file pinning its
    dependencies to the versions installed here, its install init action and pinned
    copies of the profile's init actions under gs://BUCKET/gwas-prs/staged/SHA256/
    (content-addressed: never overwritten), then runs 'hailctl dataproc start'
    (which picks the Dataproc image that matches the installed Hail). GPUs, Spot
    VMs, autoscaling and CMEK are passed through to gcloud. The cluster deletes
    itself after --max-idle.

    Example: gwas-prs dataproc start gwas-1 --bucket my-lab-gwas --region us-central1 --workers 4
    """
    from gwas_prs.core.processes import format_argv, run_command
    from gwas_prs.dataproc.cluster import (
        ClusterSpec,
        GcpLocation,
        hailctl_print_argv,
        private_create_argv,
        profile_init_action_sources,
        start_argv,
        validate_spec,
    )
    from gwas_prs.dataproc.profiles import load_profile
    from gwas_prs.dataproc.wheel import plan_wheel_staging, stage_wheel, upload_descriptions

    spec = ClusterSpec(
        name=name,
        profile=load_profile(profile),
        bucket=bucket,
        location=GcpLocation(region=region, project=project, zone=zone),
        workers=workers,
        secondary_workers=secondary_workers,
        spot=spot,
        worker_machine_type=worker_machine_type,
        master_machine_type=master_machine_type,
        max_idle=max_idle,
        max_age=max_age,
        autoscaling_policy=autoscaling_policy,
        kms_key=kms_key,
        service_account=service_account,
        scopes=scopes,
        subnet=subnet,
        private_ip=private_ip,
        notebook=notebook,
        extra_gcloud_args=tuple(gcloud_arg or ()),
    )
    validate_spec(spec)
    with tempfile.TemporaryDirectory(prefix="gwas-prs-wheel-") as out_dir:
        plan = plan_wheel_staging(
            bucket,
            Path(out_dir),
            str(wheel) if wheel else None,
            profile_init_action_sources(spec),
        )
        if dry_run:
            # SHA256 in a staged URI: the digest of content that exists only once staged
            staged = plan.staged()
            lines = [format_argv(plan.build_argv)] if plan.build_argv else []
            if private_ip:
                launch = [
                    format_argv(hailctl_print_argv(spec, staged)),
                    "# then: the 'gcloud dataproc clusters create' command it prints, with "
                    "--public-ip-address replaced by --no-address",
                ]
            else:
                launch = [format_argv(start_argv(spec, staged))]
            _echo_commands([*lines, *upload_descriptions(plan), *launch])
            return
        staged = stage_wheel(plan)
    if private_ip:
        printed = run_command(
            hailctl_print_argv(spec, staged),
            what=f"prepare the gcloud command of the private cluster {name}",
        )
        run_command(
            private_create_argv(printed.stdout),
            capture=False,
            what=f"start the cluster {name}",
        )
    else:
        run_command(start_argv(spec, staged), capture=False, what=f"start the cluster {name}")
    console.print(
        f"cluster {name} is running; submit stages with: gwas-prs dataproc submit {name} -- STAGE ARGS",
        highlight=False,
    )


@app.command("stop", no_args_is_help=True)
def stop(
    name: ClusterNameArgument,
    region: RegionOption = None,
    project: ProjectOption = None,
    asynchronous: Annotated[
        bool, typer.Option("--async", help="Return at once instead of waiting for the deletion.")
    ] = False,
    dry_run: DryRunOption = False,
) -> None:
    """Delete the cluster NAME (its gs:// run folders stay).

    Example: gwas-prs dataproc stop gwas-1 --region us-central1
    """
    from gwas_prs.core.processes import format_argv, run_command
    from gwas_prs.dataproc.cluster import GcpLocation, stop_argv

    argv = stop_argv(name, GcpLocation(region=region, project=project), asynchronous=asynchronous)
    if dry_run:
        _echo_commands([format_argv(argv)])
        return
    run_command(argv, capture=False, what=f"stop the cluster {name}")


@app.command("list")
def list_clusters(
    region: RegionOption = None,
    project: ProjectOption = None,
    dry_run: DryRunOption = False,
) -> None:
    """List clusters with their state, workers and the Hail/gwas-prs versions they run."""
    from gwas_prs.core.processes import format_argv, run_command
    from gwas_prs.dataproc.cluster import GcpLocation, list_argv, parse_cluster, parse_json_output

    argv = list_argv(GcpLocation(region=region, project=project))
    if dry_run:
        _echo_commands([format_argv(argv)])
        return
    result = run_command(argv, what="list the Dataproc clusters")
    clusters = [
        parse_cluster(item) for item in parse_json_output(result.stdout, "clusters list") or []
    ]
    if not clusters:
        console.print("no clusters")
        return
    rows = [
        (
            c.name,
            c.status,
            c.workers,
            c.secondary_workers,
            c.hail_version or "?",
            c.gwas_prs_version or "?",
        )
        for c in clusters
    ]
    console.print(
        summary_table(
            "Dataproc clusters", rows, ("name", "state", "workers", "secondary", "hail", "gwas-prs")
        )
    )


@app.command("submit", no_args_is_help=True)
def submit(
    name: ClusterNameArgument,
    stage_args: Annotated[
        list[str],
        typer.Argument(
            help="The gwas-prs command to run and its arguments, after '--' (e.g. -- qc gs://BUCKET/runs/cohort).",
            show_default=False,
        ),
    ],
    region: RegionOption = None,
    project: ProjectOption = None,
    properties: Annotated[
        str | None,
        typer.Option(
            "--properties",
            help=(
                "Extra Spark properties for this job, plain Spark keys: "
                "spark.executor.memory=8g,spark.executor.cores=4 (no 'spark:' prefix, which is "
                "for cluster properties)."
            ),
            show_default=False,
        ),
    ] = None,
    dry_run: DryRunOption = False,
) -> None:
    """Run a stage command on a cluster, exactly as it would run here.

    NAME is the cluster; STAGE_ARGS, after '--', is the gwas-prs command and its
    arguments (ingest, qc, gwas, prs, train, predict, run, …).
    The run folder must be on gs://. The cluster's Hail version must equal the
    local one (checked first). The job's output streams here; its Hail logs are
    copied to RUN/logs/JOB_TAG/ even when the stage fails, and a failed stage
    exits here with its own exit status.

    Example: gwas-prs dataproc submit gwas-1 --region us-central1 -- qc gs://my-lab-gwas/runs/cohort
    """
    from gwas_prs import __version__
    from gwas_prs.core.errors import ExternalCommandError, InputError
    from gwas_prs.core.processes import format_argv, run_command
    from gwas_prs.dataproc import jobs
    from gwas_prs.dataproc.cluster import (
        GcpLocation,
        describe_argv,
        parse_cluster,
        parse_json_output,
    )
    from gwas_prs.dataproc.wheel import installed_hail_version

    run_dir = jobs.check_stage_args(stage_args)
    location = GcpLocation(region=region, project=project)
    describe = describe_argv(name, location)
    job_tag = jobs.new_job_tag(stage_args[0])
    argv = jobs.submit_argv(name, stage_args, location, properties=properties, job_tag=job_tag)
    if dry_run:
        _echo_commands([format_argv(describe), format_argv(argv)])
        return
    result = run_command(describe, what=f"read the configuration of cluster {name}")
    cluster = parse_cluster(parse_json_output(result.stdout, f"cluster {name}"))
    if cluster.status not in ("RUNNING", "UPDATING"):  # UPDATING: autoscaling, still usable
        raise InputError(
            f"cluster {name} is {cluster.status}, not RUNNING; wait for it or start it again"
        )
    jobs.check_hail_version(cluster, installed_hail_version(), __version__)
    try:
        run_command(argv, capture=False, what=f"run '{stage_args[0]}' on cluster {name}")
    except ExternalCommandError as exc:
        found = jobs.failed_job_exit_status(name, job_tag, location)
        if found is None:
            raise
        job_id, status = found
        logs = f"; its Hail logs are in {run_dir.rstrip('/')}/logs/{job_tag}/" if run_dir else ""
        raise jobs.StageFailedError(
            f"'{stage_args[0]}' failed on cluster {name} with exit status {status} "
            f"(Dataproc job {job_id}); its output is shown above{logs}",
            status,
        ) from exc


@app.command("diagnose", no_args_is_help=True)
def diagnose(
    name: ClusterNameArgument,
    dest: Annotated[
        Path,
        typer.Option(
            "--dest",
            help="Local folder for the collected logs (Hail log, Spark and YARN logs).",
            show_default=False,
        ),
    ],
    run: Annotated[
        str | None,
        typer.Option(
            "--run",
            "-r",
            help="gs:// run folder whose gwas-prs Hail logs (RUN/logs/) to collect into DEST/logs/.",
            show_default=False,
        ),
    ] = None,
    job_tag: Annotated[
        str | None,
        typer.Option(
            "--job",
            help="Only this job's logs (RUN/logs/JOB_TAG/, named by 'submit'); needs --run.",
            show_default=False,
        ),
    ] = None,
    region: RegionOption = None,
    project: ProjectOption = None,
    dry_run: DryRunOption = False,
) -> None:
    """Collect the logs of cluster NAME into a local folder.

    With --run, first the gwas-prs Hail logs of that run folder (every job's, or one
    job's with --job) go to DEST/logs/JOB_TAG/, even when the cluster is gone; then
    'hailctl dataproc diagnose' collects the master's Hail log and the Spark and YARN
    logs of every node (with --region/--project given to gcloud through its
    CLOUDSDK_DATAPROC_REGION/CLOUDSDK_CORE_PROJECT settings: hailctl has no such flags).

    Example: gwas-prs dataproc diagnose gwas-1 --dest diag --run gs://my-lab-gwas/runs/cohort --region us-central1
    """
    import os

    from gwas_prs.core.errors import InputError
    from gwas_prs.core.processes import format_argv, run_command
    from gwas_prs.dataproc.cluster import diagnose_argv

    argv = diagnose_argv(name, str(dest))
    settings = {
        key: value
        for key, value in (("CLOUDSDK_DATAPROC_REGION", region), ("CLOUDSDK_CORE_PROJECT", project))
        if value
    }
    if job_tag is not None and run is None:
        raise InputError("--job needs --run gs://BUCKET/PREFIX (the run folder of the job)")
    if run is not None and not run.startswith("gs://"):
        raise InputError(
            f"--run {run}: give the gs:// run folder the jobs ran on, e.g. gs://BUCKET/runs/cohort"
        )
    logs = f"{run.rstrip('/')}/logs" + (f"/{job_tag}" if job_tag else "") if run else None
    into = dest / "logs" if job_tag else dest  # either way DEST/logs/JOB_TAG/…
    line = format_argv(argv)
    if settings:
        line = " ".join([*(f"{k}={v}" for k, v in settings.items()), line])
    if dry_run:
        copy = [f"# download {logs}/ -> {into}/ (google-cloud-storage, CRC32C-verified)"]
        _echo_commands([*(copy if logs else []), line])
        return
    if logs is not None:
        from gwas_prs.core.gcs_staging import download_files, plan_downloads

        results = download_files(plan_downloads(logs, str(into)))
        console.print(
            f"{len(results)} gwas-prs log file(s) of {run} copied to {dest / 'logs'}",
            highlight=False,
        )
    run_command(
        argv,
        capture=False,
        env={**os.environ, **settings} if settings else None,
        what=f"collect the logs of cluster {name}",
    )


@app.command("logs", no_args_is_help=True)
def logs(
    job_id: Annotated[
        str, typer.Argument(help="Dataproc job ID (printed by 'submit').", show_default=False)
    ],
    region: RegionOption = None,
    project: ProjectOption = None,
    dry_run: DryRunOption = False,
) -> None:
    """Stream the driver output of job JOB_ID until it ends (gcloud dataproc jobs wait)."""
    from gwas_prs.core.processes import format_argv, run_command
    from gwas_prs.dataproc.cluster import GcpLocation, job_logs_argv

    argv = job_logs_argv(job_id, GcpLocation(region=region, project=project))
    if dry_run:
        _echo_commands([format_argv(argv)])
        return
    run_command(argv, capture=False, what=f"follow job {job_id}")
