"""``gwas-prs stage``: copy inputs to Google Cloud Storage, or reports back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from gwas_prs.cli.console import console, err_console, summary_table
from gwas_prs.cli.options import DryRunOption, ProjectOption

if TYPE_CHECKING:
    from gwas_prs.core.gcs_staging import TransferResult


def stage(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Sources then the destination: LOCAL... gs://BUCKET/PREFIX, or with --download gs://BUCKET/PREFIX LOCAL_DIR.",
            show_default=False,
        ),
    ],
    download: Annotated[
        bool,
        typer.Option(
            "--download",
            help="Copy gs://… objects (e.g. a run's reports) into a local folder instead.",
        ),
    ] = False,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=64, help="Files copied at the same time.")
    ] = 4,
    project: ProjectOption = None,
    dry_run: DryRunOption = False,
) -> None:
    """Upload VCFs and other inputs to gs:// (or download reports), verified by CRC32C.

    PATHS are the sources followed by the destination: local files or folders
    then gs://BUCKET/PREFIX, or with --download one gs:// prefix then a local folder.
    Files already present with the same size and CRC32C are skipped, so
    staging again is cheap. Large files use resumable uploads. Every copy is
    verified afterwards; a corrupted object is reported and the command fails.
    Uses your Application Default Credentials ('gcloud auth application-default login').

    Examples:

      gwas-prs stage data/chr*.vcf.gz data/samples.tsv gs://my-lab-gwas/inputs/cohort

      gwas-prs stage --download gs://my-lab-gwas/runs/cohort/gold/prs reports/
    """
    from gwas_prs.core.errors import InputError
    from gwas_prs.core.gcs_staging import (
        download_files,
        plan_downloads,
        plan_uploads,
        storage_client,
        total_bytes,
        upload_files,
    )

    if len(paths) < 2:
        raise InputError(
            "give at least one source and a destination, e.g. gwas-prs stage data/chr1.vcf.gz gs://BUCKET/inputs"
        )
    sources, destination = paths[:-1], paths[-1]
    if download:
        if len(sources) != 1:
            raise InputError(
                "--download copies one gs:// prefix at a time: gwas-prs stage --download gs://BUCKET/PREFIX LOCAL_DIR"
            )
        if destination.startswith("gs://"):
            raise InputError(f"{destination}: with --download the destination is a local folder")
        client = storage_client(project)
        transfers = plan_downloads(sources[0], destination, client=client)
    else:
        transfers = plan_uploads(sources, destination)
        client = None
    if dry_run:
        verb = "download" if download else "upload"
        for transfer in transfers:
            source, target = (
                (transfer.remote, transfer.local) if download else (transfer.local, transfer.remote)
            )
            typer.echo(f"# {verb} {source} -> {target} ({transfer.size} bytes)")
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(
            "downloading" if download else "uploading", total=total_bytes(transfers)
        )

        def advance(n: int) -> None:
            progress.advance(task, n)

        if download:
            results = download_files(transfers, client=client, workers=workers, on_bytes=advance)
        else:
            results = upload_files(
                sources,
                destination,
                client=storage_client(project),
                workers=workers,
                on_bytes=advance,
            )
    print_transfer_summary(results, destination, download=download)


def print_transfer_summary(
    results: list[TransferResult], destination: str, *, download: bool
) -> None:
    """One row per file (named relative to ``destination``): size and what happened."""
    prefix = destination.rstrip("/") + "/"

    def short(path: str) -> str:
        return path[len(prefix) :] if path.startswith(prefix) else path

    rows = [(short(r.local if download else r.remote), r.size, r.status) for r in results]
    console.print(
        summary_table(f"stage → {destination}", rows, ("file", "bytes", "status")), soft_wrap=True
    )
