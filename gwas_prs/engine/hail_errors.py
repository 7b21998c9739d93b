"""Turn Hail/Spark failures into one-line :class:`ComputationError` messages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from gwas_prs.core.errors import ComputationError, GwasPrsError


def summarise_hail_error(exc: BaseException) -> str:
    """The most useful single line of a Hail/Java error message."""
    text = str(exc)
    match = re.search(r"Error summary: (.+)", text)
    if match:
        return match.group(1).strip()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("at ", "Java stack trace", "Traceback", "Hail version")):
            return line
    return type(exc).__name__


@contextmanager
def hail_errors_as_computation_errors(what: str, log_path: str | None) -> Iterator[None]:
    """Re-raise Hail/Spark/py4j failures inside the block as ComputationError."""
    try:
        yield
    except GwasPrsError:
        raise
    except Exception as exc:
        module = type(exc).__module__
        if not module.startswith(("hail", "py4j", "pyspark")) and type(exc).__name__ not in {
            "FatalError",
            "HailUserError",
        }:
            raise
        log_hint = f"; details in the Hail log {log_path}" if log_path else ""
        raise ComputationError(f"{what} failed: {summarise_hail_error(exc)}{log_hint}") from exc
