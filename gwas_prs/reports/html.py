"""HTML of the reports: standalone pages (BokehJS inlined, so they open offline) and
plain HTML tables (columns as wide as their text, numbers right-aligned with thousands
separators, missing values as "—").

The report modules build bokeh layouts and call :func:`standalone_html`; the stage
runners write the text (:func:`write_html`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

import numpy as np
import pandas as pd

from gwas_prs.core import storage
from gwas_prs.reports import palette

#: Shown for a missing or not-applicable value
MISSING = "—"
#: Page width the layouts are built for (px)
PAGE_WIDTH = 1360

#: The tables' style; bokeh renders each ``Div`` in its own shadow root, so every
#: :func:`html_block` carries it
STYLE = (
    "<style>"
    "table.report{border-collapse:collapse;font:13px/1.35 system-ui,sans-serif;margin:4px 0 10px}"
    f"table.report th,table.report td{{border:1px solid {palette.TABLE_BORDER};padding:3px 8px;"
    "vertical-align:top}"
    f"table.report th{{background:{palette.TABLE_HEADER};text-align:left}}"
    "table.report td.num,table.report th.num{text-align:right;font-variant-numeric:tabular-nums;"
    "white-space:nowrap}"
    "p,li{font:14px/1.4 system-ui,sans-serif}"
    "</style>"
)


def format_number(value: Any, digits: int = 4) -> str:
    """Integers with thousands separators, floats with ``digits`` significant digits
    (scientific below 1e-3), missing as "—"."""
    if value is None or isinstance(value, str):
        return MISSING if value in (None, "", "NA", "nan") else escape(str(value))
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    number = float(value)
    if not math.isfinite(number):
        return MISSING
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number):,}"
    if number != 0 and abs(number) < 1e-3:
        return f"{number:.{max(digits - 2, 1)}e}"
    return f"{number:,.{digits}g}"


def format_p(value: Any) -> str:
    """A p-value: ``3.2e-09``, ``0.012``."""
    if value is None or not math.isfinite(float(value)):
        return MISSING
    number = float(value)
    return f"{number:.2e}" if number < 1e-3 else f"{number:.3g}"


def html_table(
    frame: pd.DataFrame,
    *,
    numeric: Sequence[str] | None = None,
    formats: Mapping[str, Callable[[Any], str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> str:
    """``frame`` as a plain HTML table (class ``report``).

    ``numeric`` columns (default: the numeric dtypes) are right-aligned and formatted
    by :func:`format_number`; ``formats`` maps a column to its own formatter; text is
    escaped; missing values read "—"; ``headers`` renames columns for display."""
    formats = dict(formats or {})
    headers = dict(headers or {})
    if numeric is None:
        numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    right = set(numeric) | set(formats)

    def cell(column: str, value: Any) -> str:
        missing = value is None or (not isinstance(value, str) and pd.isna(value))
        if missing:
            text = MISSING
        elif column in formats:
            text = formats[column](value)
        elif column in numeric:
            text = format_number(value)
        else:
            text = escape(str(value))
        klass = " class='num'" if column in right else ""
        return f"<td{klass}>{text}</td>"

    head = "".join(
        f"<th{' class=num' if c in right else ''}>{escape(headers.get(c, str(c)))}</th>"
        for c in frame.columns
    )
    body = "".join(
        "<tr>" + "".join(cell(c, v) for c, v in zip(frame.columns, row, strict=True)) + "</tr>"
        for row in frame.itertuples(index=False, name=None)
    )
    return f"<table class='report'><tr>{head}</tr>{body}</table>"


def html_block(text: str, width: int | None = None) -> Any:
    """A bokeh ``Div`` of ``text`` with the tables' style."""
    from bokeh.models import Div

    return Div(text=STYLE + text, width=width or PAGE_WIDTH)


def standalone_html(layout: Any, title: str) -> str:
    """A whole HTML page of ``layout`` with BokehJS inlined (no CDN: opens offline)."""
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    return str(file_html(layout, INLINE, title))


def write_html(layout: Any, path: str, title: str) -> str:
    """Write :func:`standalone_html` to ``path`` (atomically, local or ``gs://``)."""
    storage.write_text_atomic(path, standalone_html(layout, title))
    return path
