"""The one place where gwas-prs starts external programs.

Every subprocess (``java -version``, ``gcloud``, ``hailctl``, ``plink2`` in tests)
goes through :func:`run_command`, so dry runs, logging and error messages behave
the same everywhere, and tests can replace programs at the process boundary by
putting fakes first on ``PATH``.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gwas_prs.core.errors import EnvironmentSetupError, ExternalCommandError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommandResult:
    """Outcome of :func:`run_command`."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def format_argv(argv: Sequence[str]) -> str:
    """Return ``argv`` as one shell-quoted line (what ``--dry-run`` prints)."""
    return shlex.join(list(argv))


def find_program(name: str) -> str | None:
    """Return the absolute path of ``name`` on ``PATH``, or None."""
    return shutil.which(name)


def run_command(
    argv: Sequence[str],
    *,
    check: bool = True,
    capture: bool = True,
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float | None = None,
    what: str | None = None,
) -> CommandResult:
    """Run ``argv`` and return its result.

    Parameters
    ----------
    argv:
        Program and arguments; the program is looked up on ``PATH``.
    check:
        Raise :class:`ExternalCommandError` when the exit status is non-zero.
    capture:
        Capture stdout/stderr (default). With False they stream to the terminal
        (used for long cluster jobs whose logs should show as they come).
    dry_run:
        Do not run anything; log the command line and return exit status 0.
    what:
        Human description used in error messages ("start the cluster").

    Raises
    ------
    EnvironmentSetupError
        The program is not installed.
    ExternalCommandError
        ``check`` is true and the program exited non-zero; the message holds the
        last lines of its stderr.
    """
    argv_t = tuple(str(a) for a in argv)
    line = format_argv(argv_t)
    if dry_run:
        logger.info("dry run: %s", line)
        return CommandResult(argv_t, 0, "", "")
    if find_program(argv_t[0]) is None:
        raise EnvironmentSetupError(
            f"'{argv_t[0]}' is not installed or not on PATH; it is needed to "
            f"{what or 'run ' + line}."
        )
    logger.debug("running: %s", line)
    try:
        proc = subprocess.run(
            argv_t,
            capture_output=capture,
            text=True,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ExternalCommandError(f"'{line}' did not finish within {timeout} s") from exc
    result = CommandResult(argv_t, proc.returncode, proc.stdout or "", proc.stderr or "")
    if check and proc.returncode != 0:
        tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
        if not capture:
            tail = "its output is shown above"
        purpose = f" (trying to {what})" if what else ""
        raise ExternalCommandError(
            f"'{argv_t[0]}' exited with status {proc.returncode}{purpose}: {tail or 'no output'}",
            returncode=proc.returncode,
        )
    return result
