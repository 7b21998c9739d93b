"""Job entry point that ``hailctl dataproc submit`` runs on the cluster.

    hailctl dataproc submit NAME job_entry.py -- [--job-tag TAG] STAGE ARGS...

runs ``gwas-prs STAGE ARGS...`` through the very same Typer application as on a
laptop, with Spark's master set to ``yarn`` (unless ``GWAS_PRS_SPARK_MASTER`` is
already set, as the tests do to run it locally). Each job writes its Hail logs
into a local folder of its own (``GWAS_PRS_LOG_DIR``), so concurrent jobs on one
master never mix their logs; whatever happens, they are copied into
``RUN/logs/TAG/`` afterwards, so a failed job leaves its log next to the run.
The last line it prints is ``gwas-prs: the stage exited with status N``, which
``gwas-prs dataproc submit`` reads back from the driver output to exit with the
stage's own status (Dataproc itself reports only "job failure").

This is a script, not a library module: it is the one place in ``dataproc/``
that calls the CLI, and it imports it only when it runs.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger("gwas_prs.dataproc.job_entry")


def copy_job_logs(log_dir: str, run_dir: str, job_tag: str) -> list[str]:
    """Copy the ``*.log`` files of this job's own ``log_dir`` to ``RUN/logs/JOB_TAG/``.

    Returns the destination paths. Failures are logged, never raised: the
    command's own outcome decides the exit status.
    """
    from gwas_prs.core import storage

    copied = []
    for log in sorted(Path(log_dir).glob("*.log")):
        target = storage.join(run_dir, "logs", job_tag, log.name)
        try:
            storage.copy_file(str(log), target)
            copied.append(target)
        except Exception as exc:  # a log that cannot be copied must not hide the job's result
            logger.warning("could not copy the Hail log %s to %s: %s", log, target, exc)
    return copied


def split_job_tag(args: Sequence[str]) -> tuple[str | None, list[str]]:
    """``[--job-tag TAG] STAGE ARGS`` → ``(TAG, [STAGE, ARGS…])``.

    >>> split_job_tag(["--job-tag", "qc-1", "qc", "gs://b/r"])
    ('qc-1', ['qc', 'gs://b/r'])
    """
    from gwas_prs.dataproc.jobs import JOB_TAG_OPTION

    rest = list(args)
    if rest[:1] == ["--"]:
        rest = rest[1:]
    if rest[:1] == [JOB_TAG_OPTION] and len(rest) > 1:
        return rest[1], rest[2:]
    return None, rest


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gwas-prs ARGV`` and copy its Hail logs into the run folder; return the exit status."""
    from gwas_prs.cli.app import app
    from gwas_prs.dataproc.jobs import STAGE_EXIT_MARKER, new_job_tag, run_folder_from_args
    from gwas_prs.engine.hail_context import LOG_DIR_ENV, SPARK_MASTER_ENV

    job_tag, args = split_job_tag(sys.argv[1:] if argv is None else argv)
    job_tag = job_tag or new_job_tag(args[0] if args else "job")
    os.environ.setdefault(SPARK_MASTER_ENV, "yarn")
    run_dir = run_folder_from_args(args)
    log_dir = tempfile.mkdtemp(prefix=f"gwas-prs-logs-{job_tag}-")
    previous_log_dir = os.environ.get(LOG_DIR_ENV)
    os.environ[LOG_DIR_ENV] = log_dir
    status = 0
    try:
        app(args=args, prog_name="gwas-prs")
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        if previous_log_dir is None:
            os.environ.pop(LOG_DIR_ENV, None)
        else:
            os.environ[LOG_DIR_ENV] = previous_log_dir
        copied = copy_job_logs(log_dir, run_dir, job_tag) if run_dir is not None else []
        for target in copied:
            print(f"gwas-prs: Hail log copied to {target}", file=sys.stderr)
        if len(copied) == len(list(Path(log_dir).glob("*.log"))):
            shutil.rmtree(log_dir, ignore_errors=True)
        else:  # `run` (its run folder is in its pipeline file) or a failed copy
            print(
                f"gwas-prs: the Hail logs of this job stay in {log_dir} on the master",
                file=sys.stderr,
            )
        print(f"{STAGE_EXIT_MARKER}{status}", file=sys.stderr, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
