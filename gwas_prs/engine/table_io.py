"""Moving tables between Hail and pandas without the slow paths.

:meth:`hail.Table.to_pandas` collects every row as Python objects, which is slow for
per-variant tables such as a GWAS's, and :meth:`hail.Table.from_pandas` type-checks
every value in Python before parallelising it, which is slow already for tables of
thousands of rows, ignores the column types a caller needs (an int64 ``position`` where
``hl.locus`` wants int32) and keeps NaN as a present value. Both directions
therefore go through a TSV file in Hail's temporary folder (``RUN/tmp/hail``:
local, or ``gs://`` for a run folder on Cloud Storage, where every executor can
read it), opened from Python through the Hail backend's file system (the JVM's own view of
that folder): Hail writes or reads it in the JVM, pandas in C, and floats are written
with 17 significant digits (``%.17g``), so every float64 survives the trip exactly
(Hail's own ``str()`` of a float keeps only 6 digits). It is one implementation for
both engines (:mod:`gwas_prs.engine.switch`), so the round trip cannot differ between them.

Missing values are ``NA`` in the files; a string column whose value is the text
``NA`` therefore comes back missing, and a float NaN goes in as missing.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    import hail as hl

logger = logging.getLogger(__name__)


def exact_str_expr(
    value: hl.expr.Float64Expression | hl.expr.Float32Expression,
) -> hl.expr.StringExpression:
    """A float64 expression as text that parses back to the same double (``%.17g``)."""
    import hail as hl

    return hl.format("%.17g", value)


def _pandas_dtype(dtype: hl.HailType) -> str:
    import hail as hl

    if dtype == hl.tstr:
        return "object"
    if dtype == hl.tbool:
        return "boolean"
    if dtype in (hl.tint32, hl.tint64):
        return "Int64"
    if dtype in (hl.tfloat32, hl.tfloat64):
        return "float64"
    raise TypeError(f"table_to_frame: unsupported column type {dtype}")


def table_to_frame(ht: hl.Table, columns: Mapping[str, hl.expr.Expression]) -> pd.DataFrame:
    """Columns (row expressions of ``ht`` of type str, bool, int or float) as a frame.

    Rows keep the table's order. Int columns come back as pandas ``Int64``,
    bool columns as ``boolean`` (both nullable), floats as float64 (missing =
    NaN), strings as object (missing = None).
    """
    import hail as hl

    staged = ht.select(**{f"__c{k}": e for k, e in enumerate(columns.values())})
    staged = staged.key_by().select_globals()
    flat = staged.select(**{name: staged[f"__c{k}"] for k, name in enumerate(columns)})
    types = {name: flat[name].dtype for name in columns}
    text = {
        n: hl.or_missing(hl.is_defined(flat[n]), exact_str_expr(flat[n]))
        if t in (hl.tfloat32, hl.tfloat64)
        else flat[n]
        for n, t in types.items()
    }
    path = hl.utils.new_temp_file("table", "tsv")
    flat.select(**text).export(path)
    try:
        # through Hail's own file system (the JVM's view of the temporary folder:
        # local, gs:// or hdfs://), never through a second client that may disagree
        with hl.current_backend().fs.open(path, "rb") as handle:
            frame = pd.read_csv(
                handle,
                sep="\t",
                dtype={n: _pandas_dtype(t) for n, t in types.items() if t != hl.tbool},
                keep_default_na=False,
                # Hail writes a float NaN (e.g. the mean of nothing) as "NaN": read it as NaN
                na_values={
                    n: ["NA", "NaN"] if t in (hl.tfloat32, hl.tfloat64) else ["NA"]
                    for n, t in types.items()
                },
                float_precision="round_trip",
                quoting=csv.QUOTE_NONE,  # Hail writes values as they are
            )
    finally:
        hl.current_backend().fs.remove(path)
    for name, dtype in types.items():
        if dtype == hl.tstr:
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
        elif dtype == hl.tbool:
            frame[name] = frame[name].map({"true": True, "false": False, True: True, False: False})
            frame[name] = frame[name].astype("boolean")
    return frame[list(columns)]


def cols_in_column_order(mt: hl.MatrixTable, *fields: str) -> pd.DataFrame:
    """Column fields of ``mt`` as a frame **in column order** (the order of
    :func:`hail.export_plink`'s .fam and of every entry array), with the column key.

    :meth:`hail.MatrixTable.cols` returns a table sorted by the column key, which
    is not the column order when the sample IDs of the VCF are not sorted.
    """
    cols = mt.add_col_index("_column_index").cols()
    frame = cols.select("_column_index", *fields).to_pandas()
    frame = frame.sort_values("_column_index").drop(columns="_column_index")
    return frame.reset_index(drop=True)


_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def _as_text(values: pd.Series, name: str, dtype: hl.HailType) -> pd.Series:
    """``values`` as the text Hail parses as ``dtype`` (``NA`` = missing), whatever
    their pandas dtype: an int column may arrive as int64, nullable Int64, float64
    (``100.0``, after a merge introduced NaN) or objects, and must become ``100``
    for ``hl.tint32`` (``hl.locus`` requires an int32 position).

    Raises
    ------
    InputError
        A value of an int column is not a whole number or does not fit its type.
    """
    import hail as hl

    from gwas_prs.core.errors import InputError

    missing = values.isna().to_numpy()
    if dtype == hl.tbool:
        mapped = values.map({True: "true", False: "false", "true": "true", "false": "false"})
        return mapped.where(~missing, "NA")
    if dtype in (hl.tfloat32, hl.tfloat64):
        return pd.Series(
            [repr(float(v)) if pd.notna(v) else "NA" for v in values], index=values.index
        )
    if dtype in (hl.tint32, hl.tint64):
        numbers = pd.to_numeric(values.where(~missing, None), errors="coerce")
        low, high = _INT_RANGES[str(dtype)]
        present = numbers[~missing]
        bad = present.isna() | (present % 1 != 0) | (present < low) | (present > high)
        if bad.any():
            first = values[~missing][bad.to_numpy()].iloc[0]
            raise InputError(f"column '{name}': {first!r} is not a whole number that fits {dtype}")
        return pd.Series(
            [str(int(v)) if not m else "NA" for v, m in zip(numbers, missing, strict=True)],
            index=values.index,
        )
    return values.map(lambda v: v if isinstance(v, str) else str(v)).where(~missing, "NA")


def frame_to_table(
    frame: pd.DataFrame, types: Mapping[str, hl.HailType], key: list[str] | None = None
) -> hl.Table:
    """A frame as a Hail Table with the given column types (str, bool, int32/64, float64).

    The declared types are honoured whatever the frame's dtypes: an int column
    given as int64, nullable Int64, whole-number floats or objects becomes the
    declared int type (so ``hl.locus`` gets the int32 position it requires).

    The frame is written to a file in Hail's temporary folder, which must stay
    until the table is used (Hail reads lazily); ``RUN/tmp`` is such a folder.
    Missing values (None/NaN/NA) become missing. Keyed by ``key`` when given.
    """
    import hail as hl

    frame = frame[list(types)]
    path = hl.utils.new_temp_file("frame", "tsv")
    text = pd.DataFrame(
        {name: _as_text(frame[name], name, dtype) for name, dtype in types.items()},
        index=frame.index,
    )
    # values as they are (Hail reads them unquoted); a tab or newline inside a value
    # cannot be written and raises here rather than shifting columns
    data = text.to_csv(sep="\t", index=False, na_rep="NA", quoting=csv.QUOTE_NONE, quotechar="\x00")
    with hl.current_backend().fs.open(path, "wb") as handle:
        handle.write(data.encode())
    table = hl.import_table(path, types=dict(types), missing="NA", quote=None)
    return table.key_by(*key) if key else table


def variant_frame_to_table(
    frame: pd.DataFrame,
    values: Mapping[str, hl.HailType],
    reference_genome: str | hl.ReferenceGenome,
    columns: tuple[str, str, str, str] = ("contig", "position", "ref", "alt"),
) -> hl.Table:
    """A frame of bi-allelic variants as a Table keyed by ``locus``, ``alleles``.

    ``columns`` names the frame's contig, position, REF and ALT columns;
    ``values`` maps the other columns to keep to their Hail types.
    """
    import hail as hl

    contig, position, ref, alt = columns
    types = {contig: hl.tstr, position: hl.tint32, ref: hl.tstr, alt: hl.tstr, **values}
    table = frame_to_table(frame, types)
    table = table.key_by(
        locus=hl.locus(table[contig], table[position], reference_genome=reference_genome),
        alleles=[table[ref], table[alt]],
    )
    return table.select(*values)


def variant_table_to_frame(
    ht: hl.Table,
    values: Mapping[str, hl.expr.Expression],
    names: tuple[str, str, str, str] = ("chromosome", "position", "ref", "alt"),
) -> pd.DataFrame:
    """A Table keyed by ``locus``, ``alleles`` (bi-allelic) as a frame: contig,
    position (int64), REF and ALT columns named by ``names``, then ``values``
    (name → row expression)."""
    contig, position, ref, alt = names
    frame = table_to_frame(
        ht,
        {
            contig: ht.locus.contig,
            position: ht.locus.position,
            ref: ht.alleles[0],
            alt: ht.alleles[1],
            **values,
        },
    )
    frame[position] = frame[position].astype("int64")
    return frame
