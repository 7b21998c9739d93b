"""The exception hierarchy of gwas-prs.

Library code raises these; only the CLI maps them to exit codes
(:data:`EXIT_CODES`) and prints their message as one line.

- :class:`GwasPrsError` – base class of every expected failure.
  - :class:`InputError` – a file, column or value supplied by the user is wrong
    (exit code 2). The message names the file/line/field and what to do.
  - :class:`OutputExistsError` – a stage output already exists and ``--overwrite``
    was not given (exit code 2).
  - :class:`StageNotCompleteError` – a stage needs the output of an earlier stage
    that has not completed (exit code 2).
  - :class:`RunFolderBusyError` – another gwas-prs process is writing into the
    run folder (exit code 2).
  - :class:`EnvironmentSetupError` – the machine lacks something (Java, a
    connector, a GPU) (exit code 3).
  - :class:`ExternalCommandError` – an external program (gcloud, hailctl, plink)
    failed (exit code 4).
  - :class:`ComputationError` – Hail/Spark failed on data that passed the
    up-front checks (exit code 5).
"""

from __future__ import annotations

import errno


class GwasPrsError(Exception):
    """Base class of every error gwas-prs reports to the user."""

    exit_code: int = 1


class InputError(GwasPrsError):
    """A user-supplied input (file, column, option value) is invalid."""

    exit_code = 2


class OutputExistsError(GwasPrsError):
    """An output exists already and ``--overwrite`` was not given."""

    exit_code = 2


class StageNotCompleteError(GwasPrsError):
    """A required earlier stage has not completed in the run folder."""

    exit_code = 2


class RunFolderBusyError(GwasPrsError):
    """Another gwas-prs process holds the run folder's write lock (``RUN/.lock``)."""

    exit_code = 2


class EnvironmentSetupError(GwasPrsError):
    """The machine lacks a runtime dependency (Java, GCS connector, GPU…)."""

    exit_code = 3


class ExternalCommandError(GwasPrsError):
    """An external program exited with a non-zero status."""

    exit_code = 4

    def __init__(self, message: str, returncode: int | None = None) -> None:
        super().__init__(message)
        self.returncode = returncode


class ComputationError(GwasPrsError):
    """Hail/Spark failed on data that passed the up-front checks."""

    exit_code = 5


EXIT_CODES: dict[type[GwasPrsError], int] = {
    cls: cls.exit_code
    for cls in (
        GwasPrsError,
        InputError,
        OutputExistsError,
        StageNotCompleteError,
        RunFolderBusyError,
        EnvironmentSetupError,
        ExternalCommandError,
        ComputationError,
    )
}


#: What to do about the file-system errors a user can fix, by ``errno``.
_OS_ERROR_HINTS: dict[int, str] = {
    errno.ENOSPC: "no space left on the device; free some space (RUN/tmp can be deleted "
    "between commands) or use a run folder on a bigger disk",
    errno.EDQUOT: "disk quota exceeded; free some space or use a run folder elsewhere",
    errno.EROFS: "the file system is read-only; choose a writable run folder",
    errno.EACCES: "permission denied; check the permissions or choose another path",
    errno.EPERM: "operation not permitted; check the permissions or choose another path",
    errno.EEXIST: "exists and is not a folder; choose another path for the run folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.ENOLCK: "the file system does not support locks (flock); use a run folder on a local disk",
    errno.EOPNOTSUPP: "the file system does not support this operation (flock); use a run folder on a local disk",
}


def os_error_message(exc: OSError) -> str | None:
    """One line for a file-system error the user can fix (full disk, read-only file
    system, permissions), naming the path; None for other errors."""
    hint = _OS_ERROR_HINTS.get(exc.errno or 0)
    if hint is None:
        return None
    where = exc.filename if exc.filename is not None else "a file"
    return f"{where}: {hint}"
