"""Sample metadata tables (the 1000 Genomes panel, or any TSV/CSV with IDs).

:func:`read_sample_metadata` reads and checks the file with pandas (no JVM);
:func:`match_samples` reports samples without metadata and metadata rows
without a sample; :func:`sample_metadata_table` turns it into a Hail Table
keyed by ``s`` for joining onto a MatrixTable's columns.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gwas_prs.core.errors import InputError

if TYPE_CHECKING:
    import hail as hl

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


#: Delimiter → how messages name it.
DELIMITER_NAMES = {"\t": "tab", ",": "comma", ";": "semicolon", r"\s+": "whitespace"}
_RAGGED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def detect_delimiter(path: str, header_line: str) -> str:
    """The delimiter of a sample/phenotype table, from its name and header line.

    ``.csv``: a comma, else a semicolon or a tab when the header has one but no comma
    (spreadsheets in many locales export "CSV" with semicolons). Other names: a tab,
    else a comma, else a semicolon, whichever the header has first in that order;
    else runs of whitespace (the regex ``\\s+``).
    """
    candidates = (",", ";", "\t") if path.lower().endswith(".csv") else ("\t", ",", ";")
    found = next((c for c in candidates if c in header_line), None)
    if found is not None:
        return found
    return "," if path.lower().endswith(".csv") else r"\s+"


@dataclass(frozen=True)
class TextTable:
    """A delimited text table read as strings (see :func:`read_text_table`)."""

    path: str
    frame: pd.DataFrame  # one str column per header name, "" where empty; RangeIndex
    lines: np.ndarray  # the file's line number (1-based, header = 1) of every row
    delimiter: str

    @property
    def delimiter_name(self) -> str:
        return DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))

    def found_columns(self) -> str:
        """For messages: the header's names and how the header was split."""
        names = ", ".join(f"'{c}'" for c in self.frame.columns)
        return f"found {names}; the header was read as {self.delimiter_name}-separated"


def _first_repeat(names: Sequence[str]) -> str | None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def _parse(source: Any, sep: str, **options: Any) -> pd.DataFrame:
    return pd.read_csv(
        source,
        sep=sep,
        header=None,
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        engine="python" if sep == r"\s+" else "c",
        quoting=csv.QUOTE_MINIMAL,
        index_col=False,
        **options,
    )


def read_text_table(path: str, what: str) -> TextTable:
    """Read a TSV/CSV/semicolon/whitespace table with a header line, every value a string.

    The delimiter comes from :func:`detect_delimiter`. The first line is the header
    (a UTF-8 byte-order mark is ignored); names are stripped, an empty name becomes
    ``Unnamed: I`` (I = its 0-based position). Rows with more fields than the header
    are accepted when the extra fields are empty (rows ending in a delimiter, as
    spreadsheets export them); rows with fewer fields get empty values; blank lines
    are skipped, but ``lines`` keeps every row's line number in the file.

    Raises
    ------
    InputError
        The file is missing or empty, not text, a header name repeats, or a row has
        a non-empty value beyond the header's columns (with its line).
    """
    from gwas_prs.core import storage

    if storage.is_remote(path):
        if not storage.exists(path) or storage.is_dir(path):
            raise InputError(f"{path}: {what} file not found")
        import tempfile

        with tempfile.TemporaryDirectory(prefix="gwas-prs-table-") as spool:
            local = os.path.join(spool, path.rstrip("/").rpartition("/")[2])
            storage.copy_file(path, local)
            try:
                table = read_text_table(local, what)
            except InputError as exc:  # name the user's file, not the local copy
                raise InputError(str(exc).replace(local, path)) from None
        return dataclasses.replace(table, path=path)
    if not os.path.isfile(path):
        raise InputError(f"{path}: {what} file not found")
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        first_line = handle.readline().rstrip("\r\n")
    if not first_line.strip():
        raise InputError(f"{path}:1: the {what} file is empty; it needs a header line")
    sep = detect_delimiter(path, first_line)
    try:
        header = _parse(io.StringIO(first_line), sep).iloc[0].tolist()
        names = [str(n).strip() or f"Unnamed: {i}" for i, n in enumerate(header)]
        repeated = _first_repeat(names)
        if repeated is not None:
            raise InputError(
                f"{path}:1: column '{repeated}' appears twice in the header; rename one"
            )
        width = len(names) + 1
        while True:
            try:
                frame = _parse(
                    path,
                    sep,
                    skiprows=1,
                    names=list(range(width)),
                    skip_blank_lines=False,
                    encoding="utf-8-sig",
                )
                break
            except pd.errors.ParserError as exc:
                ragged = _RAGGED.search(str(exc))
                if ragged is None or int(ragged.group(3)) <= width:
                    raise
                width = int(ragged.group(3))
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame(columns=list(range(len(names))), dtype=str)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as a table ({str(exc).splitlines()[0]})") from exc
    if sep == r"\s+":  # the python parser pads short rows with None (the C parser with "")
        frame = frame.fillna("")
    lines = np.arange(len(frame)) + 2
    blank = (frame[0].str.strip() == "").to_numpy()  # then check the other fields of those rows
    if blank.any():
        blank[blank] = frame[blank].apply(lambda column: column.str.strip() == "").all(axis=1)
    frame, lines = frame[~blank].reset_index(drop=True), lines[~blank]
    extra = frame.iloc[:, len(names) :]
    if extra.shape[1]:
        filled = extra.apply(lambda column: column.str.strip() != "")
        rows = filled.any(axis=1).to_numpy()
        if rows.any():
            row = int(np.flatnonzero(rows)[0])
            values = frame.iloc[row].tolist()
            n_fields = max(i for i, v in enumerate(values) if v.strip()) + 1
            value = extra.iloc[row][filled.iloc[row]].iloc[0]
            raise InputError(
                f"{path}:{lines[row]}: {n_fields} fields but the header names {len(names)} "
                f"columns (extra value '{value}'); name the column in the header or remove "
                "the value"
            )
    frame = frame.iloc[:, : len(names)]
    frame.columns = names
    return TextTable(path=path, frame=frame, lines=lines, delimiter=sep)


def read_sample_metadata(path: str, id_column: str | None = None) -> SampleMetadata:
    """Read a sample metadata file.

    The delimiter is a tab, a comma or a semicolon (:func:`detect_delimiter`); rows
    ending in an extra empty field are read as if it were not there (see
    :func:`read_text_table`). The sample-ID column is ``id_column`` or the first of
    :data:`SAMPLE_ID_COLUMNS` present. Columns whose values are all numeric become
    numbers, others stay strings; the values in :data:`MISSING_VALUES` are missing.
    Unnamed, entirely empty columns (the trailing tabs of the 1000 Genomes panel's
    header) are dropped.

    Raises
    ------
    InputError
        The file is missing/empty, has no ID column (the message names the columns
        found and the delimiter used), repeats a sample ID, or has an empty one.
    """
    table = read_text_table(path, "sample metadata")
    frame, lines = table.frame, table.lines
    empty_unnamed = [
        c for c in frame.columns if c.startswith("Unnamed:") and frame[c].str.strip().eq("").all()
    ]
    frame = frame.drop(columns=empty_unnamed)
    table = TextTable(path=path, frame=frame, lines=lines, delimiter=table.delimiter)
    lowered = {c.lower(): c for c in frame.columns}
    if id_column is not None:
        if id_column not in frame.columns:
            raise InputError(
                f"{path}:1: no column '{id_column}' ({table.found_columns()}); "
                "check --sample-id-column"
            )
        chosen = id_column
    else:
        found = next((lowered[n] for n in SAMPLE_ID_COLUMNS if n in lowered), None)
        if found is None:
            raise InputError(
                f"{path}:1: no sample-ID column (looked for {', '.join(SAMPLE_ID_COLUMNS)}; "
                f"{table.found_columns()}); rename it or pass --sample-id-column"
            )
        chosen = found
    ids = frame[chosen].str.strip()
    if (ids == "").any():
        row = int(np.flatnonzero((ids == "").to_numpy())[0])
        raise InputError(f"{path}:{lines[row]}: empty sample ID in column '{chosen}'")
    repeats = ids.duplicated(keep=False).to_numpy()
    if repeats.any():
        first = ids.iloc[int(np.flatnonzero(repeats)[0])]
        rows = [int(line) for line in lines[(ids == first).to_numpy()]]
        raise InputError(
            f"{path}:{rows[1]}: sample '{first}' appears again (lines {', '.join(map(str, rows))}); "
            "each sample needs one row"
        )
    frame = frame.drop(columns=[chosen])
    frame.index = pd.Index(ids.to_numpy(), name="s")
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


def _hail_type(dtype: Any) -> hl.HailType:
    import hail as hl

    if str(dtype) == "Int64":
        return hl.tint64
    if str(dtype) == "float64":
        return hl.tfloat64
    return hl.tstr


def sample_metadata_table(metadata: SampleMetadata) -> hl.Table:
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
