"""Sample metadata tables (the 1000 Genomes panel, or any TSV/CSV with IDs).

:func:`read_sample_metadata` reads and checks the file with pandas (no JVM);
:func:`match_samples` reports samples without metadata and metadata rows
without a sample; :func:`sample_metadata_table` turns it into a Hail Table
keyed by ``s`` for joining onto a MatrixTable's columns.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from gwas_prs.errors import InputError

#: Column names recognised as the sample ID, in order of preference (case-insensitive).
SAMPLE_ID_COLUMNS = (
    "sample",
    "sample_id",
    "sampleid",
    "s",
    "iid",
    "id",
    "individual_id",
    "subject_id",
)
MISSING_VALUES = ("", "NA", "N/A", "NaN", "nan", ".", "null", "NULL")


@dataclass(frozen=True)
class SampleMetadata:
    """A checked metadata table: one row per sample, IDs in ``id_column``."""

    path: str
    id_column: str
    frame: pd.DataFrame  # index: sample ID (str); columns: metadata fields

    @property
    def fields(self) -> list[str]:
        return [str(c) for c in self.frame.columns]


@dataclass(frozen=True)
class SampleMatch:
    """How metadata rows and VCF samples correspond."""

    samples_without_metadata: list[str]
    metadata_without_sample: list[str]
    matched: int


def _delimiter(path: str, first_line: str) -> str:
    if path.lower().endswith(".csv"):
        return ","
    if "\t" in first_line:
        return "\t"
    if "," in first_line:
        return ","
    return r"\s+"


def read_sample_metadata(path: str, id_column: str | None = None) -> SampleMetadata:
    """Read a sample metadata file.

    The delimiter is a tab or a comma (``.csv``); the sample-ID column is
    ``id_column`` or the first of :data:`SAMPLE_ID_COLUMNS` present. Columns
    whose values are all numeric become numbers, others stay strings; the values
    in :data:`MISSING_VALUES` are missing. Unnamed, entirely empty columns (the
    trailing tabs of the 1000 Genomes panel) are dropped.

    Raises
    ------
    InputError
        The file is missing/empty, has no ID column, or repeats a sample ID.
    """
    if not os.path.isfile(path):
        raise InputError(f"{path}: sample metadata file not found")
    with open(path, encoding="utf-8", errors="replace") as handle:
        first_line = handle.readline()
    if not first_line.strip():
        raise InputError(f"{path}:1: the sample metadata file is empty; it needs a header line")
    sep = _delimiter(path, first_line)
    try:
        frame = pd.read_csv(
            path,
            sep=sep,
            dtype=str,
            keep_default_na=False,
            engine="python" if sep == r"\s+" else "c",
            quoting=csv.QUOTE_MINIMAL,
        )
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as a table ({str(exc).splitlines()[0]})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    empty_unnamed = [
        c for c in frame.columns if c.startswith("Unnamed:") and frame[c].str.strip().eq("").all()
    ]
    frame = frame.drop(columns=empty_unnamed)
    lowered = {c.lower(): c for c in frame.columns}
    if id_column is not None:
        if id_column not in frame.columns:
            raise InputError(
                f"{path}: no column '{id_column}' (columns: {', '.join(frame.columns)})"
            )
        chosen = id_column
    else:
        found = next((lowered[n] for n in SAMPLE_ID_COLUMNS if n in lowered), None)
        if found is None:
            raise InputError(
                f"{path}:1: no sample-ID column (looked for {', '.join(SAMPLE_ID_COLUMNS)}; "
                f"found {', '.join(frame.columns)}); rename it or pass --sample-id-column"
            )
        chosen = found
    ids = frame[chosen].str.strip()
    if (ids == "").any():
        row = int((ids == "").to_numpy().nonzero()[0][0]) + 2
        raise InputError(f"{path}:{row}: empty sample ID in column '{chosen}'")
    duplicated = ids[ids.duplicated(keep=False)]
    if not duplicated.empty:
        first = duplicated.iloc[0]
        rows = [int(i) + 2 for i in duplicated.index[duplicated == first]]
        raise InputError(
            f"{path}:{rows[1]}: sample '{first}' appears again (lines {', '.join(map(str, rows))}); "
            "each sample needs one row"
        )
    frame = frame.drop(columns=[chosen])
    frame.index = pd.Index(ids, name="s")
    converted: dict[str, Any] = {}
    for column in frame.columns:
        stripped = frame[column].str.strip()
        values = stripped.where(~stripped.isin(MISSING_VALUES), None)
        numeric = pd.to_numeric(values, errors="coerce")
        if values.notna().any() and numeric.notna().sum() == values.notna().sum():
            is_int = bool((numeric.dropna() % 1 == 0).all())
            converted[column] = numeric.astype("Int64") if is_int else numeric.astype("float64")
        else:
            converted[column] = values.astype("string")
    frame = pd.DataFrame(converted, index=frame.index)
    return SampleMetadata(path=path, id_column=chosen, frame=frame)


def match_samples(metadata: SampleMetadata, samples: Sequence[str]) -> SampleMatch:
    """Compare metadata IDs with the VCF's samples."""
    known = set(metadata.frame.index)
    in_vcf = set(samples)
    return SampleMatch(
        samples_without_metadata=[s for s in samples if s not in known],
        metadata_without_sample=[s for s in metadata.frame.index if s not in in_vcf],
        matched=len(known & in_vcf),
    )


def _hail_type(dtype: Any) -> Any:
    import hail as hl

    if str(dtype) == "Int64":
        return hl.tint64
    if str(dtype) == "float64":
        return hl.tfloat64
    return hl.tstr


def sample_metadata_table(metadata: SampleMetadata) -> Any:
    """The metadata as a Hail Table keyed by ``s`` (one field per column)."""
    import hail as hl

    schema = hl.tstruct(
        s=hl.tstr, **{c: _hail_type(metadata.frame[c].dtype) for c in metadata.fields}
    )
    rows = []
    for sample_id, values in zip(
        metadata.frame.index, metadata.frame.itertuples(index=False), strict=True
    ):
        row: dict[str, Any] = {"s": str(sample_id)}
        for column, value in zip(metadata.fields, values, strict=True):
            if value is pd.NA or (isinstance(value, float) and value != value):
                row[column] = None
            elif str(metadata.frame[column].dtype) == "Int64":
                row[column] = int(value)
            elif str(metadata.frame[column].dtype) == "float64":
                row[column] = float(value)
            else:
                row[column] = str(value)
        rows.append(row)
    return hl.Table.parallelize(rows, schema=schema, key="s")
