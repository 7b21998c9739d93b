"""Invoke the ``gwas-prs`` app in-process (CLI tests; no JVM)."""

from __future__ import annotations

from typer.testing import CliRunner

from gwas_prs.cli.app import app


def invoke(*args: str) -> tuple[int, str, str]:
    """Run ``gwas-prs ARGS``: exit code, stdout and the ``error:`` lines of stderr."""
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    errors = "".join(
        f"{line}\n" for line in result.stderr.splitlines() if line.startswith("error:")
    )
    return result.exit_code, result.stdout, errors
