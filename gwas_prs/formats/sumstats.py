"""GWAS summary statistics in GWAS-SSF v1.0 (the GWAS Catalog standard).

A GWAS-SSF data set is two files:

- ``NAME.tsv.gz`` – a tab-separated table whose first eight columns are, in this
  order, ``chromosome``, ``base_pair_location``, ``effect_allele``,
  ``other_allele``, the effect size (``beta``, or ``odds_ratio`` for a binary
  trait), ``standard_error``, ``effect_allele_frequency`` and ``p_value``;
  encouraged and extra columns follow;
- ``NAME.tsv.gz-meta.yaml`` – the metadata sidecar (genome assembly, samples,
  trait, the md5 of the data file…), here with a ``gwas_prs`` block recording
  the parameters that produced the file.

:func:`write_gwas_ssf` writes both, atomically; :func:`read_gwas_ssf` reads and
checks the table, :func:`read_gwas_ssf_metadata` the sidecar. Only pandas and
PyYAML are used: no JVM is started here.

Decisions (GWAS-SSF v1.0 leaves these to the writer):

- Chromosomes are written as the spec's integers: ``1``–``22``, X = ``23``,
  Y = ``24``, MT = ``25``; a ``chr`` prefix is dropped. The reader maps
  23/24/25 back to ``X``/``Y``/``MT``.
- Missing values are written ``NA``; the reader also accepts ``#NA``.
- Floats are written with the shortest text that reads back to the same double
  (Python's ``repr``), so a round trip is exact.
- The gzip stream carries no file name and a zero timestamp, so the same table
  always gives the same bytes and the same md5.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Literal

import numpy as np
import pandas as pd
import yaml

from gwas_prs.core import storage
from gwas_prs.core.errors import InputError

logger = logging.getLogger(__name__)

FILE_TYPE = "GWAS-SSF v1.0"
META_SUFFIX = "-meta.yaml"
MISSING = "NA"
READ_MISSING = ("NA", "#NA", "")

#: Chromosome codes of GWAS-SSF (X=23, Y=24, MT=25).
CHROMOSOME_CODES: dict[str, int] = {
    **{str(i): i for i in range(1, 26)},
    "X": 23,
    "Y": 24,
    "M": 25,
    "MT": 25,
}
CODE_NAMES = {23: "X", 24: "Y", 25: "MT"}

INPUT_COLUMNS = (
    "chromosome",
    "base_pair_location",
    "effect_allele",
    "other_allele",
    "beta",
    "standard_error",
    "effect_allele_frequency",
    "p_value",
)
#: Encouraged columns, written in this order after the eight mandatory ones.
OPTIONAL_COLUMNS = (
    "neg_log_10_p_value",
    "ci_lower",
    "ci_upper",
    "beta",
    "variant_id",
    "rsid",
    "n",
    "info",
)
_Z95 = 1.959963984540054  # the 97.5% quantile of the standard normal


@dataclass(frozen=True)
class SumstatsMetadata:
    """What the YAML sidecar says about a summary statistics file.

    The GWAS-SSF fields come first; ``test`` … ``parameters`` go into the
    sidecar's ``gwas_prs`` block. ``effect_size="odds_ratio"`` (binary traits)
    writes ``odds_ratio = exp(beta)`` as the effect column, 95% ``ci_lower`` and
    ``ci_upper`` from ``beta ± 1.96·standard_error``, and keeps ``beta`` (the
    log odds ratio) as an extra column; ``standard_error`` is always the
    standard error of ``beta``.
    """

    genome_assembly: str
    trait_description: str
    sample_size: int
    sample_ancestry: tuple[str, ...] = ()
    sample_ancestry_category: tuple[str, ...] = ()
    case_count: int | None = None
    control_count: int | None = None
    genotyping_technology: tuple[str, ...] = ("Whole genome sequencing",)
    analysis_software: str = ""
    effect_size: Literal["beta", "odds_ratio"] = "beta"
    test: str = ""
    covariates: tuple[str, ...] = ()
    n_pcs: int = 0
    lambda_gc: float | None = None
    versions: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    date_modified: dt.date | None = None  # default: today (UTC)


def chromosome_codes(chromosomes: pd.Series, source: str = "sumstats") -> pd.Series:
    """GWAS-SSF integer codes (int64) of chromosome names such as ``1``, ``chr1``, ``chrX``, ``MT``.

    Raises
    ------
    InputError
        A contig outside 1–22, X, Y, MT (e.g. ``GL000192.1``): filter those first.
    """
    names = chromosomes.astype(str).str.strip().str.upper()
    names = names.str.replace(r"^CHR", "", regex=True)
    codes = names.map(CHROMOSOME_CODES)
    if codes.isna().any():
        bad = sorted(set(chromosomes[codes.isna()].astype(str)))
        raise InputError(
            f"{source}: contig(s) {', '.join(bad[:5])} cannot be written in GWAS-SSF, which "
            "allows chromosomes 1-22, X, Y and MT; filter these variants first"
        )
    return codes.astype("int64")


def _p_value_column(frame: pd.DataFrame) -> pd.Series:
    """p-values; those that underflowed to 0 are rebuilt as text from -log10 p."""
    p = frame["p_value"].astype("float64")
    if "neg_log_10_p_value" not in frame.columns:
        return p
    neglog = frame["neg_log_10_p_value"].astype("float64")
    need = ((p == 0) | p.isna()) & neglog.notna() & np.isfinite(neglog) & (neglog > 300)
    if not need.any():
        return p
    out = p.astype(object)
    exponent = np.ceil(neglog[need]).astype("int64")
    mantissa = np.power(10.0, exponent - neglog[need])  # in [1, 10)
    texts = [
        f"{m:.6g}e-{e:d}" if round(m, 5) < 10 else f"1e-{e - 1:d}"
        for m, e in zip(mantissa, exponent, strict=True)
    ]
    out[need] = texts
    return out


class _HashingWriter(io.RawIOBase):
    """A writable binary stream that passes bytes on and keeps their MD5."""

    def __init__(self, sink: BinaryIO) -> None:
        super().__init__()
        self._sink = sink
        self.md5 = hashlib.md5()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.md5.update(view)
        self._sink.write(view)
        return len(view)


def gwas_ssf_table(frame: pd.DataFrame, metadata: SumstatsMetadata) -> pd.DataFrame:
    """The table exactly as :func:`write_gwas_ssf` writes it (sorted, columns ordered).

    Input columns: ``chromosome`` (str, ``1``/``chr1``/``X``…),
    ``base_pair_location`` (int, 1-based), ``effect_allele``, ``other_allele``
    (str), ``beta``, ``standard_error``, ``effect_allele_frequency``,
    ``p_value`` (float); optional ``neg_log_10_p_value`` (float, used where
    ``p_value`` underflowed to 0), ``variant_id``, ``rsid`` (str), ``n`` (int),
    ``info`` (float); other columns are kept, after these.

    Output: ``chromosome`` (int64 code), ``base_pair_location`` (int64), the
    alleles, ``beta`` or ``odds_ratio``, ``standard_error``,
    ``effect_allele_frequency``, ``p_value`` (float, or text for p below the
    smallest double), then the optional columns present, in
    :data:`OPTIONAL_COLUMNS` order. Rows are sorted by chromosome code and
    position (a stable sort: ties keep their input order).
    """
    missing = [c for c in INPUT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"summary statistics frame lacks column(s) {', '.join(missing)}")
    out = pd.DataFrame(index=frame.index)
    out["chromosome"] = chromosome_codes(frame["chromosome"])
    out["base_pair_location"] = frame["base_pair_location"].astype("int64")
    for column in ("effect_allele", "other_allele"):
        if frame[column].isna().any():
            raise ValueError(f"{column} is missing in {int(frame[column].isna().sum())} row(s)")
        out[column] = frame[column].astype(str)
    beta = frame["beta"].astype("float64")
    se = frame["standard_error"].astype("float64")
    optional: dict[str, pd.Series] = {}
    if metadata.effect_size == "odds_ratio":
        out["odds_ratio"] = np.exp(beta)
        optional["ci_lower"] = pd.Series(np.exp(beta - _Z95 * se), index=frame.index)
        optional["ci_upper"] = pd.Series(np.exp(beta + _Z95 * se), index=frame.index)
        optional["beta"] = beta
    elif metadata.effect_size == "beta":
        out["beta"] = beta
    else:
        raise ValueError(
            f"effect_size must be 'beta' or 'odds_ratio', not {metadata.effect_size!r}"
        )
    out["standard_error"] = se
    out["effect_allele_frequency"] = frame["effect_allele_frequency"].astype("float64")
    out["p_value"] = _p_value_column(frame)
    for column in OPTIONAL_COLUMNS:
        if column in frame.columns and column not in optional:
            optional[column] = frame[column]
    if "n" in optional:
        n = pd.to_numeric(optional["n"])
        if bool((n.dropna() % 1 == 0).all()):
            optional["n"] = n.astype("Int64")
    for column in OPTIONAL_COLUMNS:
        if column in optional:
            out[column] = optional[column]
    for column in frame.columns:
        if column not in out.columns and column not in INPUT_COLUMNS:
            out[column] = frame[column]
    order = np.lexsort((out["base_pair_location"].to_numpy(), out["chromosome"].to_numpy()))
    return out.iloc[order].reset_index(drop=True)


def _sidecar(metadata: SumstatsMetadata, data_file: str, md5: str) -> dict[str, Any]:
    date = metadata.date_modified or dt.datetime.now(dt.timezone.utc).date()
    sample: dict[str, Any] = {
        "sample_size": int(metadata.sample_size),
        "sample_ancestry": list(metadata.sample_ancestry),
        "sample_ancestry_category": list(metadata.sample_ancestry_category),
        "case_control_study": metadata.case_count is not None,
    }
    if metadata.case_count is not None:
        sample["case_count"] = int(metadata.case_count)
    if metadata.control_count is not None:
        sample["control_count"] = int(metadata.control_count)
    software = metadata.analysis_software or "; ".join(
        f"{name} {version}" for name, version in metadata.versions.items()
    )
    adjusted = [*metadata.covariates, *(f"PC{i}" for i in range(1, metadata.n_pcs + 1))]
    return {
        "date_metadata_last_modified": date,
        "trait_description": [metadata.trait_description],
        "genome_assembly": metadata.genome_assembly,
        "coordinate_system": "1-based",
        "genotyping_technology": list(metadata.genotyping_technology),
        "samples": [sample],
        "data_file_name": data_file,
        "file_type": FILE_TYPE,
        "data_file_md5sum": md5,
        "analysis_software": software or "gwas-prs",
        "adjusted_covariates": adjusted,
        "is_harmonised": False,
        "is_sorted": True,
        "gwas_prs": {
            "effect_size": metadata.effect_size,
            "test": metadata.test,
            "covariates": list(metadata.covariates),
            "n_pcs": int(metadata.n_pcs),
            "lambda_gc": None if metadata.lambda_gc is None else float(metadata.lambda_gc),
            "versions": dict(metadata.versions),
            **dict(metadata.parameters),
        },
    }


def write_gwas_ssf(frame: pd.DataFrame, path: str, metadata: SumstatsMetadata) -> str:
    """Write summary statistics as GWAS-SSF v1.0 with its YAML metadata sidecar.

    Writes the table of :func:`gwas_ssf_table` to ``path`` (gzip-compressed TSV;
    the name should end in ``.tsv.gz``), then ``path + "-meta.yaml"`` with the
    GWAS-SSF metadata fields (``date_metadata_last_modified``,
    ``genome_assembly``, ``coordinate_system: 1-based``, ``data_file_name``,
    ``file_type: GWAS-SSF v1.0``, ``data_file_md5sum``, ``is_harmonised: false``,
    ``is_sorted: true``, ``genotyping_technology``, ``samples``,
    ``trait_description``, ``analysis_software``, ``adjusted_covariates``) and a
    ``gwas_prs`` block (``effect_size``, ``test``, ``covariates``, ``n_pcs``,
    ``lambda_gc``, ``versions`` and ``metadata.parameters``).

    Each file is written with :func:`gwas_prs.core.storage.atomic_writer` (a temporary
    sibling moved into place), so a killed writer never leaves a complete-looking
    file; local paths and ``gs://``.

    Returns
    -------
    str
        ``path``.

    Warning
    -------
    ``beta``, ``effect_allele_frequency`` and ``standard_error`` must refer to
    ``effect_allele`` (in Hail's regressions that is the ALT allele, i.e.
    ``alleles[1]``); the writer cannot check this. Contigs other than 1–22, X, Y,
    MT raise :class:`~gwas_prs.core.errors.InputError`.
    """
    if not path.endswith(".gz"):
        logger.warning("%s: GWAS-SSF data is written gzip-compressed; name it .tsv.gz", path)
    table = gwas_ssf_table(frame, metadata)
    with storage.atomic_writer(path) as sink:
        raw = _HashingWriter(sink)
        with (
            gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6
            ) as compressed,
            io.TextIOWrapper(compressed, encoding="utf-8", newline="") as text,
        ):
            table.to_csv(text, sep="\t", index=False, na_rep=MISSING, lineterminator="\n")
        md5 = raw.md5.hexdigest()
    sidecar = _sidecar(metadata, path.rstrip("/").rpartition("/")[2], md5)
    storage.write_text_atomic(
        path + META_SUFFIX, yaml.safe_dump(sidecar, sort_keys=False, allow_unicode=True)
    )
    logger.info("wrote %s (%d variants, md5 %s)", path, len(table), md5)
    return path


def read_gwas_ssf_metadata(path: str) -> dict[str, Any]:
    """The YAML sidecar of the GWAS-SSF file ``path`` (``path + "-meta.yaml"``) as a dict."""
    meta_path = path if path.endswith(META_SUFFIX) else path + META_SUFFIX
    if not storage.exists(meta_path):
        raise InputError(f"{meta_path}: metadata sidecar not found; GWAS-SSF needs one")
    try:
        loaded = yaml.safe_load(storage.read_text(meta_path))
    except yaml.YAMLError as exc:
        raise InputError(f"{meta_path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(loaded, dict):
        raise InputError(f"{meta_path}: expected a YAML mapping of metadata fields")
    return loaded


_EFFECT_COLUMNS = ("beta", "odds_ratio", "hazard_ratio")
_P_COLUMNS = ("p_value", "neg_log_10_p_value")
_NUMERIC = (
    "base_pair_location",
    *_EFFECT_COLUMNS,
    "standard_error",
    "effect_allele_frequency",
    "neg_log_10_p_value",
    "ci_lower",
    "ci_upper",
    "n",
    "info",
)


def _check_numeric(path: str, frame: pd.DataFrame, column: str) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"{path}:{row + 2}: {column} is '{frame[column].iloc[row]}', not a number; "
            f"fix the value or write it as {MISSING}"
        )
    # pd.to_numeric can be off by an ulp; float() parsing is exact
    return frame[column].astype("float64")


def _parse_p_values(path: str, values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """p-values (float) and -log10 p, exact also for text below the smallest double."""
    p = _check_numeric(path, pd.DataFrame({"p_value": values}), "p_value")
    with np.errstate(divide="ignore"):
        neglog = -np.log10(p)
    underflow = p == 0
    if underflow.any():
        text = values if values.dtype == object else _read_table(path, typed=False)["p_value"]
        parts = text[underflow].str.extract(r"^\s*([0-9.]+)[eE]([-+]?[0-9]+)\s*$")
        mantissa = pd.to_numeric(parts[0], errors="coerce")
        exponent = pd.to_numeric(parts[1], errors="coerce")
        exact = -(np.log10(mantissa) + exponent)
        neglog[underflow] = exact.where(mantissa > 0, np.inf)
    return p, neglog


def _read_table(path: str, typed: bool = True) -> pd.DataFrame:
    """The table; numeric columns parsed exactly in C (typed), or all as text to find errors."""
    options: dict[str, Any] = {
        "sep": "\t",
        "na_values": list(READ_MISSING),
        "keep_default_na": False,
        "compression": "infer",
    }
    try:
        if typed:
            columns = storage.read_table(path, nrows=0, **options).columns
            dtypes = {c: "float64" if c in (*_NUMERIC, "p_value") else str for c in columns}
            try:
                return storage.read_table(
                    path, dtype=dtypes, float_precision="round_trip", **options
                )
            except ValueError:  # a non-numeric value: read as text to report its line
                pass
        return storage.read_table(path, dtype=str, **options)
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{path}:1: the file is empty; expected a GWAS-SSF header line") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise InputError(f"{path}: cannot be read as a GWAS-SSF table ({exc})") from exc


def read_gwas_ssf(path: str) -> pd.DataFrame:
    """Read and check a GWAS-SSF data file (plain or gzip TSV).

    Returns one row per variant, in file order, with the file's columns:
    ``chromosome`` (str: ``1``–``22``, ``X``, ``Y``, ``MT`` – codes 23/24/25 are
    mapped back to names), ``base_pair_location`` (int64), ``effect_allele`` and
    ``other_allele`` (str), the effect size (float), ``standard_error``,
    ``effect_allele_frequency``, ``p_value`` (float64); optional columns as
    written (``rsid``/``variant_id`` str, ``n`` Int64, others float64 or str).
    Always added when absent:

    - ``beta`` (float64): ``log(odds_ratio)`` / ``log(hazard_ratio)`` for files
      reporting a ratio;
    - ``p_value`` from ``neg_log_10_p_value``, and ``neg_log_10_p_value``
      (float64) from ``p_value`` – exact also where the text is below the
      smallest double (e.g. ``5.01e-351``, where ``p_value`` reads as 0).

    ``NA``, ``#NA`` and empty fields are missing.

    Raises
    ------
    InputError
        The file is missing or empty, lacks a mandatory column (named in the
        message), or has a non-numeric value in a numeric column (with its line).
    """
    if not storage.exists(path) or storage.is_dir(path):
        raise InputError(f"{path}: summary statistics file not found")
    frame = _read_table(path)
    columns = list(frame.columns)
    required: list[tuple[str, ...]] = [
        ("chromosome",),
        ("base_pair_location",),
        ("effect_allele",),
        ("other_allele",),
        _EFFECT_COLUMNS,
        ("standard_error",),
        ("effect_allele_frequency",),
        _P_COLUMNS,
    ]
    for position, names in enumerate(required):
        present = [n for n in names if n in columns]
        if not present:
            raise InputError(
                f"{path}:1: no column '{' or '.join(names)}' (GWAS-SSF column {position}); "
                f"found {', '.join(columns[:10])}; write the file with the GWAS-SSF column names"
            )
        if position < len(columns) and columns[position] not in names:
            logger.warning(
                "%s: column %d is '%s', GWAS-SSF puts '%s' there",
                path,
                position,
                columns[position],
                present[0],
            )
    for column in ("chromosome", "effect_allele", "other_allele"):
        if frame[column].isna().any():
            row = int(np.flatnonzero(frame[column].isna().to_numpy())[0])
            raise InputError(f"{path}:{row + 2}: {column} is missing; it is mandatory")
    frame["chromosome"] = (
        frame["chromosome"]
        .str.strip()
        .replace({str(code): name for code, name in CODE_NAMES.items()})
    )
    for column in _NUMERIC:
        if column in frame.columns:
            frame[column] = _check_numeric(path, frame, column)
    if frame["base_pair_location"].isna().any():
        row = int(np.flatnonzero(frame["base_pair_location"].isna().to_numpy())[0])
        raise InputError(f"{path}:{row + 2}: base_pair_location is missing; it is mandatory")
    frame["base_pair_location"] = frame["base_pair_location"].astype("int64")
    if "n" in frame.columns and bool((frame["n"].dropna() % 1 == 0).all()):
        frame["n"] = frame["n"].astype("Int64")
    if "p_value" in frame.columns:
        frame["p_value"], neglog = _parse_p_values(path, frame["p_value"])
        if "neg_log_10_p_value" not in frame.columns:
            frame["neg_log_10_p_value"] = neglog
    else:
        frame["p_value"] = np.power(10.0, -frame["neg_log_10_p_value"])
    if "beta" not in frame.columns:
        ratio = "odds_ratio" if "odds_ratio" in frame.columns else "hazard_ratio"
        frame["beta"] = np.log(frame[ratio])
    return frame
