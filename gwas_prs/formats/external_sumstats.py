"""Summary statistics of an external GWAS as the base of a polygenic score.

:func:`read_external_sumstats` reads one of

==========  ===============================================================================
format      recognised by / columns used
==========  ===============================================================================
gwas-ssf    GWAS-SSF (``chromosome``, ``base_pair_location``, ``effect_allele``,
            ``other_allele``, ``beta`` or ``odds_ratio``, ``standard_error``, ``p_value``
            / ``neg_log_10_p_value``, ``n``); its YAML sidecar (``FILE-meta.yaml``), when
            present, gives the genome build and the sample size (``sample_size``,
            ``case_count``/``control_count``)
plink2      ``plink2 --glm`` output (``.glm.linear``, ``.glm.logistic``,
            ``.glm.logistic.hybrid``): ``#CHROM POS ID REF ALT … A1 … TEST OBS_CT BETA|OR
            SE|LOG(OR)_SE … P``; only ``TEST == ADD`` rows; the other allele is ``AX`` (or
            ``OMITTED``) when present, else the one of REF/ALT that is not ``A1``
regenie     REGENIE step 2 (``.regenie``): ``CHROM GENPOS ID ALLELE0 ALLELE1 … N TEST BETA
            SE … LOG10P``; effect allele ``ALLELE1``; only ``TEST == ADD`` rows
tsv         any delimited table, with ``--sumstats-columns`` naming its columns:
            ``chr=CHR,pos=BP,effect_allele=A1,other_allele=A2,beta=BETA,se=SE,p=P,n=N``
            (``or=OR`` instead of ``beta``, ``log10p=…`` instead of ``p``, ``id=SNP``
            optional)
==========  ===============================================================================

into one table, :class:`ExternalSumstats`, and :func:`harmonise_sumstats` aligns it
to the cohort's variants with the project's allele matching
(:func:`gwas_prs.formats.pgs_catalog.harmonise`: match, swap, strand flip,
palindromic policy, ``--min-overlap``), so that every format gives the same
harmonised table: per cohort variant the effect of one ALT allele.
"""

from __future__ import annotations

import gzip
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gwas_prs.core import storage
from gwas_prs.core.errors import InputError

logger = logging.getLogger(__name__)

FORMATS = ("auto", "gwas-ssf", "plink2", "regenie", "tsv")
#: The keys of ``--sumstats-columns``.
COLUMN_KEYS = (
    "chr",
    "pos",
    "effect_allele",
    "other_allele",
    "beta",
    "or",
    "se",
    "p",
    "log10p",
    "n",
    "id",
)
#: Categories of the match report, besides :data:`gwas_prs.formats.pgs_catalog.CATEGORIES`.
READ_CATEGORIES = ("missing_statistics", "duplicate")
_EXAMPLE_COLUMNS = "chr=CHR,pos=BP,effect_allele=A1,other_allele=A2,beta=BETA,se=SE,p=P,n=N"


@dataclass(frozen=True)
class SampleSize:
    """The GWAS sample size when the file has no per-variant N: ``n`` (total), or
    ``cases`` and ``controls`` (binary trait: N_eff = 4 / (1/cases + 1/controls))."""

    n: float | None = None
    cases: float | None = None
    controls: float | None = None

    def validate(self) -> None:
        if (self.cases is None) != (self.controls is None):
            raise InputError("--sumstats-cases and --sumstats-controls go together; give both")
        for name, value in (("n", self.n), ("cases", self.cases), ("controls", self.controls)):
            if value is not None and not value > 0:
                raise InputError(f"--sumstats-{name} {value:g}: must be a positive number")

    @property
    def effective(self) -> float | None:
        if self.cases is not None and self.controls is not None:
            return 4.0 / (1.0 / self.cases + 1.0 / self.controls)
        return self.n


@dataclass(frozen=True)
class ExternalSumstats:
    """One external GWAS, read (:func:`read_external_sumstats`).

    ``frame``: one row per usable variant, in file order: ``chr_name`` (str),
    ``chr_position`` (int64), ``effect_allele``, ``other_allele`` (str, upper case),
    ``beta`` (float64: per effect allele; log odds ratio for binary traits), ``se``
    (float64, of ``beta``), ``p_value`` (float64), ``n`` (float64: per-variant N,
    or the effective N of a binary trait), ``variant_id`` (str, may be empty).
    ``counts``: rows read, and rows dropped as ``missing_statistics`` (no beta, SE,
    p or N, or SE ≤ 0) and ``duplicate`` (the same position and alleles again).
    """

    path: str
    format: str
    frame: pd.DataFrame
    counts: dict[str, int]
    genome_build: str | None = None
    binary: bool | None = None
    notes: list[str] = field(default_factory=list)


def parse_column_mapping(text: str | None) -> dict[str, str]:
    """``chr=CHR,pos=BP,…`` → ``{"chr": "CHR", "pos": "BP", …}`` (keys checked).

    Raises
    ------
    InputError
        An item without ``=``, an unknown key or a repeated one.
    """
    if not text:
        return {}
    mapping: dict[str, str] = {}
    for item in text.split(","):
        key, equals, column = (part.strip() for part in item.partition("="))
        if not equals or not key or not column:
            raise InputError(
                f"--sumstats-columns {item}: write each column as KEY=COLUMN, e.g. {_EXAMPLE_COLUMNS}"
            )
        if key not in COLUMN_KEYS:
            raise InputError(
                f"--sumstats-columns {item}: unknown key '{key}'; use {', '.join(COLUMN_KEYS)}"
            )
        if key in mapping:
            raise InputError(f"--sumstats-columns: '{key}' is given twice; give it once")
        mapping[key] = column
    return mapping


def _read_text(path: str) -> str:
    if not storage.exists(path) or storage.is_dir(path):
        raise InputError(f"{path}: summary statistics file not found (--sumstats)")
    with storage.open_binary(path, "rb") as handle:
        data = bytes(handle.read())
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise InputError(f"{path}: a truncated or corrupt gzip file ({exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file (--sumstats)") from None


def _table(path: str, text: str) -> pd.DataFrame:
    first = text.split("\n", 1)[0]
    sep = "\t" if "\t" in first else ("," if "," in first and " " not in first else r"\s+")
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            dtype=str,
            na_values=["NA", "#NA", "", "nan", "NaN", "."],
            keep_default_na=False,
            engine="c" if sep != r"\s+" else "python",
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: cannot be read as a table ({str(exc).strip()})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def detect_format(path: str, columns: list[str]) -> str:
    """The format of a table with these header names (see the module docstring)."""
    names = set(columns)
    if {"ALLELE0", "ALLELE1", "LOG10P"} <= names or path.removesuffix(".gz").endswith(".regenie"):
        return "regenie"
    if columns and columns[0] == "#CHROM" and "A1" in names and names & {"BETA", "OR"}:
        return "plink2"
    if {"chromosome", "base_pair_location", "effect_allele"} <= names:
        return "gwas-ssf"
    return "tsv"


def _numbers(path: str, frame: pd.DataFrame, column: str) -> pd.Series:
    text = frame[column]
    values = pd.to_numeric(text, errors="coerce")
    bad = values.isna() & text.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"{path}:{row + 2}: {column} is '{text.iloc[row]}', not a number; fix the value or "
            "write it as NA"
        )
    return values.astype("float64")


def _require(path: str, frame: pd.DataFrame, names: list[str], what: str) -> None:
    missing = [n for n in names if n not in frame.columns]
    if missing:
        found = ", ".join(list(frame.columns)[:12])
        raise InputError(f"{path}:1: no column {', '.join(missing)} ({what}); found {found}")


def _only_additive(frame: pd.DataFrame) -> pd.DataFrame:
    if "TEST" in frame.columns:
        return frame[frame["TEST"].fillna("ADD") == "ADD"].reset_index(drop=True)
    return frame


def _standard_from_mapping(
    path: str, frame: pd.DataFrame, mapping: Mapping[str, str]
) -> pd.DataFrame:
    """The common columns from a generic table (``--sumstats-columns``)."""
    if not mapping:
        raise InputError(
            f"{path}: not GWAS-SSF, plink2 --glm or REGENIE output; name its columns with "
            f"--sumstats-columns, e.g. {_EXAMPLE_COLUMNS}"
        )
    needed = ["chr", "pos", "effect_allele", "other_allele", "se"]
    absent = [k for k in needed if k not in mapping]
    if "beta" not in mapping and "or" not in mapping:
        absent.append("beta (or or)")
    if "p" not in mapping and "log10p" not in mapping:
        absent.append("p (or log10p)")
    if absent:
        raise InputError(
            f"--sumstats-columns: also name {', '.join(absent)}, e.g. {_EXAMPLE_COLUMNS}"
        )
    _require(path, frame, list(mapping.values()), "named in --sumstats-columns")
    out = pd.DataFrame(
        {
            "chr_name": frame[mapping["chr"]],
            "chr_position": _numbers(path, frame, mapping["pos"]),
            "effect_allele": frame[mapping["effect_allele"]],
            "other_allele": frame[mapping["other_allele"]],
            "se": _numbers(path, frame, mapping["se"]),
        }
    )
    out["beta"] = (
        _numbers(path, frame, mapping["beta"])
        if "beta" in mapping
        else np.log(_numbers(path, frame, mapping["or"]))
    )
    out["p_value"] = (
        _numbers(path, frame, mapping["p"])
        if "p" in mapping
        else 10.0 ** -_numbers(path, frame, mapping["log10p"])
    )
    out["n"] = _numbers(path, frame, mapping["n"]) if "n" in mapping else np.nan
    out["variant_id"] = frame[mapping["id"]] if "id" in mapping else ""
    return out


def _standard_plink2(path: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    frame = _only_additive(frame)
    binary = "OR" in frame.columns
    se_column = "LOG(OR)_SE" if binary else "SE"
    _require(path, frame, ["#CHROM", "POS", "REF", "ALT", "A1", se_column, "P"], "plink2 --glm")
    other_column = next((c for c in ("AX", "OMITTED") if c in frame.columns), None)
    if other_column is not None:
        other = frame[other_column]
    else:
        other = frame["REF"].where(frame["A1"] == frame["ALT"], frame["ALT"])
    out = pd.DataFrame(
        {
            "chr_name": frame["#CHROM"],
            "chr_position": _numbers(path, frame, "POS"),
            "effect_allele": frame["A1"],
            "other_allele": other,
            "beta": np.log(_numbers(path, frame, "OR"))
            if binary
            else _numbers(path, frame, "BETA"),
            "se": _numbers(path, frame, se_column),
            "p_value": _numbers(path, frame, "P"),
            "n": _numbers(path, frame, "OBS_CT") if "OBS_CT" in frame.columns else np.nan,
            "variant_id": frame["ID"] if "ID" in frame.columns else "",
        }
    )
    return out, binary


def _standard_regenie(path: str, frame: pd.DataFrame) -> pd.DataFrame:
    frame = _only_additive(frame)
    _require(
        path, frame, ["CHROM", "GENPOS", "ALLELE0", "ALLELE1", "BETA", "SE", "LOG10P"], "REGENIE"
    )
    return pd.DataFrame(
        {
            "chr_name": frame["CHROM"],
            "chr_position": _numbers(path, frame, "GENPOS"),
            "effect_allele": frame["ALLELE1"],
            "other_allele": frame["ALLELE0"],
            "beta": _numbers(path, frame, "BETA"),
            "se": _numbers(path, frame, "SE"),
            "p_value": 10.0 ** -_numbers(path, frame, "LOG10P"),
            "n": _numbers(path, frame, "N") if "N" in frame.columns else np.nan,
            "variant_id": frame["ID"] if "ID" in frame.columns else "",
        }
    )


def _standard_gwas_ssf(path: str) -> tuple[pd.DataFrame, str | None, SampleSize, bool | None]:
    from gwas_prs.formats.sumstats import read_gwas_ssf, read_gwas_ssf_metadata

    frame = read_gwas_ssf(path)
    build = None
    size = SampleSize()
    binary = "odds_ratio" in frame.columns or None
    if storage.exists(path + "-meta.yaml"):
        meta = read_gwas_ssf_metadata(path)
        build = str(meta.get("genome_assembly") or "") or None
        # GWAS-SSF puts the counts in a list of sample groups (``samples:``)
        listed = meta.get("samples")
        groups: list[dict[str, Any]] = [
            g for g in (listed if isinstance(listed, list) else [meta]) if isinstance(g, dict)
        ]

        def total(key: str) -> float | None:
            values = [g.get(key) for g in groups]
            if not values or not all(isinstance(v, int | float) and v > 0 for v in values):
                return None
            return float(sum(float(v) for v in values if v is not None))

        cases, controls = total("case_count"), total("control_count")
        if cases and controls:
            size = SampleSize(cases=cases, controls=controls)
            binary = True
        elif total("sample_size"):
            size = SampleSize(n=total("sample_size"))
    out = pd.DataFrame(
        {
            "chr_name": frame["chromosome"].astype(str),
            "chr_position": frame["base_pair_location"].astype("float64"),
            "effect_allele": frame["effect_allele"],
            "other_allele": frame["other_allele"],
            "beta": frame["beta"].astype("float64"),
            "se": frame["standard_error"].astype("float64"),
            "p_value": frame["p_value"].astype("float64"),
            "n": frame["n"].astype("float64") if "n" in frame.columns else np.nan,
            "variant_id": frame["rsid"] if "rsid" in frame.columns else "",
        }
    )
    return out, build, size, binary


def read_external_sumstats(
    path: str,
    *,
    format: str = "auto",
    columns: Mapping[str, str] | None = None,
    sample_size: SampleSize | None = None,
) -> ExternalSumstats:
    """Read summary statistics of an external GWAS (see the module docstring).

    The sample size of each variant is, in this order: ``sample_size`` given by the
    user (``--sumstats-n``, or ``--sumstats-cases``/``--sumstats-controls`` for the
    effective N of a binary trait, 4 / (1/cases + 1/controls)), the effective N from
    the GWAS-SSF sidecar's ``case_count``/``control_count``, the file's per-variant N
    column (``n``, ``OBS_CT``, ``N``), the sidecar's ``sample_size``.

    Warnings
    --------
    plink2's ``OBS_CT`` and REGENIE's ``N`` of a binary trait are the total counts,
    not the effective N that LDpred2 and lassosum2 expect: give
    ``--sumstats-cases``/``--sumstats-controls`` for binary traits.

    Raises
    ------
    InputError
        The file is missing, not a table, lacks a column (named), has a non-number
        in a numeric column (with its line), has no sample size, or no usable row.
    """
    if format not in FORMATS:
        raise InputError(f"--sumstats-format {format}: choose one of {', '.join(FORMATS)}")
    size = sample_size or SampleSize()
    size.validate()
    build: str | None = None
    binary: bool | None = None
    file_size = SampleSize()
    if format == "auto" and columns:
        format = "tsv"
    if format in ("auto", "gwas-ssf"):
        text = _read_text(path)
        header = _table(path, text.split("\n", 1)[0] + "\n").columns.tolist()
        chosen = detect_format(path, header) if format == "auto" else format
    else:
        chosen = format
    if chosen == "gwas-ssf":
        frame, build, file_size, binary = _standard_gwas_ssf(path)
    else:
        table = _table(path, _read_text(path))
        if chosen == "plink2":
            frame, binary = _standard_plink2(path, table)
        elif chosen == "regenie":
            frame = _standard_regenie(path, table)
        else:
            frame = _standard_from_mapping(path, table, columns or {})
    n_read = len(frame)
    frame["chr_name"] = frame["chr_name"].astype(str).str.strip()
    frame["variant_id"] = frame["variant_id"].fillna("").astype(str)
    for column in ("effect_allele", "other_allele"):
        frame[column] = frame[column].astype("string").str.strip().str.upper()
    if size.effective is not None:
        frame["n"] = float(size.effective)
    elif file_size.cases is not None and file_size.effective is not None:
        frame["n"] = float(file_size.effective)  # a binary trait: the effective N
    elif frame["n"].isna().all() and file_size.effective is not None:
        frame["n"] = float(file_size.effective)
    if binary and size.cases is None and file_size.cases is None:
        logger.warning(
            "%s: a binary trait with total sample sizes only; LDpred2 and lassosum2 expect "
            "the effective N: give --sumstats-cases and --sumstats-controls",
            path,
        )
    if frame["n"].isna().all():
        raise InputError(
            f"{path}: no sample size: the file has no N column; give --sumstats-n N (or "
            "--sumstats-cases and --sumstats-controls for a binary trait)"
        )
    usable = (
        frame[["chr_position", "beta", "se", "p_value", "n"]].notna().all(axis=1)
        & frame["effect_allele"].notna()
        & frame["other_allele"].notna()
        & (frame["se"] > 0)
        & (frame["n"] > 0)
    )
    frame = frame[usable]
    first = frame["effect_allele"].to_numpy(dtype=object)
    second = frame["other_allele"].to_numpy(dtype=object)
    lower = first < second
    key = pd.DataFrame(
        {
            "c": frame["chr_name"].str.removeprefix("chr").to_numpy(),
            "p": frame["chr_position"].to_numpy(),
            "a": np.where(lower, first, second),
            "b": np.where(lower, second, first),
        }
    )
    repeated = key.duplicated().to_numpy()
    frame = frame[~repeated].reset_index(drop=True)
    frame["chr_position"] = frame["chr_position"].astype("int64")
    frame["effect_allele"] = frame["effect_allele"].astype(str)
    frame["other_allele"] = frame["other_allele"].astype(str)
    counts = {
        "rows_read": n_read,
        "missing_statistics": int((~usable).sum()),
        "duplicate": int(repeated.sum()),
    }
    if frame.empty:
        raise InputError(f"{path}: no variant with effect, SE, p-value and N ({counts})")
    logger.info("%s: %s summary statistics, %d usable of %d rows", path, chosen, len(frame), n_read)
    columns_out = [
        "chr_name",
        "chr_position",
        "effect_allele",
        "other_allele",
        "beta",
        "se",
        "p_value",
        "n",
        "variant_id",
    ]
    return ExternalSumstats(
        path=path,
        format=chosen,
        frame=frame[columns_out],
        counts=counts,
        genome_build=build,
        binary=binary,
    )


@dataclass(frozen=True)
class HarmonisedSumstats:
    """External summary statistics on the cohort's variants (:func:`harmonise_sumstats`).

    ``frame``: one row per matched cohort variant, in the file's order: ``contig``
    (str, the cohort's name), ``position`` (int64), ``ref``, ``alt`` (str), ``beta``
    (float64: the effect of one ALT allele — the file's beta negated for a swap),
    ``se``, ``p_value``, ``n`` (float64), ``category`` (str: match, swap, flip,
    flip_swap). ``counts``: every category of the match report (the file's
    ``missing_statistics`` and ``duplicate`` rows, then
    :data:`gwas_prs.formats.pgs_catalog.CATEGORIES`); ``match_rate``: kept /
    usable rows.
    """

    frame: pd.DataFrame
    counts: dict[str, int]
    match_rate: float
    summary: str


def harmonise_sumstats(
    sumstats: ExternalSumstats,
    variants: pd.DataFrame,
    *,
    allow_palindromic: bool = False,
    min_overlap: float = 0.5,
    cohort_build: str | None = None,
    allow_build_mismatch: bool = False,
) -> HarmonisedSumstats:
    """Align ``sumstats`` to the cohort ``variants`` (``contig``, ``position``, ``ref``,
    ``alt``) with :func:`gwas_prs.formats.pgs_catalog.harmonise` (its categories, build
    check and ``min_overlap`` stop). Several file rows that land on one cohort variant
    keep the first (counted as ``duplicate``).

    Raises
    ------
    InputError
        Fewer than ``min_overlap`` of the usable rows match (one line with every
        category's count), or the genome builds differ.
    """
    from gwas_prs.formats.pgs_catalog import harmonise

    frame = sumstats.frame
    weights = pd.DataFrame(
        {
            "chr_name": frame["chr_name"],
            "chr_position": frame["chr_position"],
            "effect_allele": frame["effect_allele"],
            "other_allele": frame["other_allele"],
            "effect_weight": np.arange(len(frame), dtype="float64"),  # row number
        }
    )
    result = harmonise(
        weights,
        variants,
        allow_palindromic=allow_palindromic,
        min_overlap=min_overlap,
        source=sumstats.path,
        weights_build=sumstats.genome_build,
        cohort_build=cohort_build,
        allow_build_mismatch=allow_build_mismatch,
    )
    kept = result.frame
    rows = kept["effect_weight"].to_numpy(dtype=np.int64)
    sign = np.where(kept["effect_is_alt"].to_numpy(dtype=bool), 1.0, -1.0)
    out = pd.DataFrame(
        {
            "contig": kept["contig"].astype(str).to_numpy(),
            "position": kept["position"].astype("int64").to_numpy(),
            "ref": kept["ref"].to_numpy(),
            "alt": kept["alt"].to_numpy(),
            "beta": frame["beta"].to_numpy()[rows] * sign,
            "se": frame["se"].to_numpy()[rows],
            "p_value": frame["p_value"].to_numpy()[rows],
            "n": frame["n"].to_numpy()[rows],
            "category": kept["category"].to_numpy(),
        }
    )
    again = out.duplicated(["contig", "position", "ref", "alt"]).to_numpy()
    out = out[~again].reset_index(drop=True)
    counts: dict[str, Any] = dict(sumstats.counts)
    counts["duplicate"] = int(counts.get("duplicate", 0)) + int(again.sum())
    counts.update(result.counts)
    summary = f"{result.summary()}; dropped before matching: {counts['missing_statistics']:,} without statistics, {counts['duplicate']:,} duplicates"
    return HarmonisedSumstats(out, counts, result.match_rate, summary)
