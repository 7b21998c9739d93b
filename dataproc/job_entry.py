"""Job entry point that ``hailctl dataproc submit`` runs on the cluster.

    hailctl dataproc submit NAME job_entry.py -- STAGE ARGS...

runs ``gwas-prs STAGE ARGS...`` through the very same Typer application as on a
laptop, with Spark's master set to ``yarn`` (unless ``GWAS_PRS_SPARK_MASTER`` is
already set, as the tests do to run it locally). Whatever happens, the Hail logs
written during the command are copied into ``RUN/logs/`` afterwards, so a failed
job leaves its log next to the run.

This is a script, not a library module: it is the one place in ``dataproc/``
that calls the CLI, and it imports it only when it runs.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger("gwas_prs.dataproc.job_entry")


def copy_new_logs(log_dir: str, run_dir: str, since: float) -> list[str]:
    """Copy the ``*.log`` files of ``log_dir`` modified after ``since`` to ``RUN/logs/``.

    Returns the destination paths. Failures are logged, never raised: the
    command's own outcome decides the exit status.
    """
    from gwas_prs.core import storage

    copied = []
    for log in sorted(Path(log_dir).glob("*.log")):
        if log.stat().st_mtime < since:
            continue
        target = storage.join(run_dir, "logs", log.name)
        try:
            storage.copy_file(str(log), target)
            copied.append(target)
        except Exception as exc:  # a log that cannot be copied must not hide the job's result
            logger.warning("could not copy the Hail log %s to %s: %s", log, target, exc)
    return copied


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gwas-prs ARGV`` and copy its Hail logs into the run folder; return the exit status."""
    from gwas_prs.cli.app import app
    from gwas_prs.dataproc.jobs import run_folder_from_args
    from gwas_prs.engine.hail_context import SPARK_MASTER_ENV, remote_run_log_dir

    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    os.environ.setdefault(SPARK_MASTER_ENV, "yarn")
    run_dir = run_folder_from_args(args)
    started = time.time() - 1
    status = 0
    try:
        app(args=args, prog_name="gwas-prs")
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        if run_dir is not None:
            for target in copy_new_logs(remote_run_log_dir(), run_dir, started):
                print(f"gwas-prs: Hail log copied to {target}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
