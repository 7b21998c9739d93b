"""Terminal output: logging set-up, summary tables, error lines."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

#: Width when stdout is not a terminal (a log file, CI, a pipe): wide enough that the
#: status and summary tables do not wrap their cells (rich's default there is 80).
FILE_WIDTH = 160
console = Console(
    soft_wrap=True,
    highlight=False,
    width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else FILE_WIDTH,
)
err_console = Console(stderr=True)


def configure_logging(verbose: bool = False) -> None:
    """Progress messages on stderr: ``gwas-prs: message`` (debug with --verbose)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_gwas_prs", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._gwas_prs = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(asctime)s gwas-prs: %(message)s", "%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("py4j", "hail", "hailtop", "asyncio", "urllib3", "google"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def print_error(message: str) -> None:
    """One line on stderr, never a traceback."""
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    print(f"error: {first}", file=sys.stderr)


def summary_table(
    title: str, rows: Iterable[Sequence[Any]], columns: Sequence[str] = ("", "")
) -> Table:
    table = Table(title=title, title_justify="left", show_header=any(columns))
    for index, name in enumerate(columns):
        table.add_column(name, justify="right" if index else "left")
    for row in rows:
        table.add_row(*[_fmt(v) for v in row])
    return table


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return "" if value is None else str(value)


def print_outputs(paths: Iterable[tuple[str, str]]) -> None:
    for label, path in paths:
        console.print(f"  {label}: {path}", soft_wrap=True, highlight=False)
