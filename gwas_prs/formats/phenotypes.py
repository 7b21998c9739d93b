"""Phenotype files: traits (binary or quantitative) and covariates.

A phenotype file is a TSV/CSV with a header line, one row per sample, a
sample-ID column and one column per trait; the delimiter (tab, comma or
semicolon) is detected from the header, and rows ending in an extra empty field
(spreadsheet exports) are read as if it were not there
(:func:`gwas_prs.formats.sample_metadata.read_text_table`).
:func:`read_binary_trait` reads one binary trait (``gwas-prs qc
--hwe-controls-only``); :func:`read_phenotypes` reads traits and covariates
for ``gwas``/``prs``/``train``.

Coding of a binary trait column (case-insensitive):

- ``0`` = control, ``1`` = case;
- ``1`` = control, ``2`` = case (PLINK coding), used when the values are
  exactly a subset of ``{1, 2}`` and at least one ``2`` is present;
- ``control``/``case`` (also ``ctrl``, ``unaffected``/``affected``).

Values that are exactly 0, 1 and 2 (or 0 and 2) mix the two numeric codings and are
refused, not read as a quantitative trait: recode them, or write a quantitative
trait's values with a decimal point (``0.0``, ``1.0``, ``2.0``).

Missing: empty, ``NA``, ``-9``, ``.``, ``nan``. Non-finite numbers (``Inf``,
``-inf``, ``infinity``, overflowing ones such as ``1e999``) are refused.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gwas_prs.core.errors import InputError
from gwas_prs.formats.sample_metadata import SAMPLE_ID_COLUMNS, TextTable, read_text_table

logger = logging.getLogger(__name__)

MISSING_PHENOTYPE = {"", "na", "n/a", "nan", "-9", ".", "null", "none"}
CONTROL_WORDS = {"control", "ctrl", "unaffected"}
CASE_WORDS = {"case", "affected"}


@dataclass(frozen=True)
class BinaryTrait:
    """A binary trait read from a phenotype file.

    Attributes
    ----------
    path, trait, id_column:
        Where it was read from.
    is_case:
        Index: sample ID; values: ``True`` (case), ``False`` (control) or
        ``pd.NA`` (missing), dtype ``boolean``.
    coding:
        ``"0/1"``, ``"1/2"`` or ``"case/control"``.
    """

    path: str
    trait: str
    id_column: str
    is_case: pd.Series
    coding: str

    @property
    def n_cases(self) -> int:
        return int(self.is_case.sum(skipna=True))

    @property
    def n_controls(self) -> int:
        return int((~self.is_case.dropna()).sum())


def _decode(values: pd.Series, path: str, trait: str) -> tuple[pd.Series, str]:
    lowered = values.str.strip().str.lower()
    present = lowered[~lowered.isin(MISSING_PHENOTYPE)]
    distinct = set(present.unique())
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    if distinct <= {"0", "1"}:
        coding, mapping = "0/1", {"0": False, "1": True}
    elif distinct <= {"1", "2"}:
        coding, mapping = "1/2", {"1": False, "2": True}
    elif distinct <= CONTROL_WORDS | CASE_WORDS:
        coding = "case/control"
        mapping = {**dict.fromkeys(CONTROL_WORDS, False), **dict.fromkeys(CASE_WORDS, True)}
    else:
        shown = ", ".join(sorted(distinct)[:5])
        raise InputError(
            f"{path}: trait '{trait}' is not binary (values: {shown}); code it 0/1, 1/2 or "
            "control/case, with NA, -9 or empty for missing"
        )
    out[present.index] = present.map(mapping).astype("boolean")
    return out, coding


def read_binary_trait(path: str, trait: str, id_column: str | None = None) -> BinaryTrait:
    """Read the binary ``trait`` of a phenotype file (pandas only; no JVM).

    Raises
    ------
    InputError
        The file is missing or unreadable, has no sample-ID column, lacks the
        trait column, repeats a sample, the trait is not binary, or it has no
        controls.
    """
    table = _read_table(path)
    frame = table.frame
    if id_column is None:
        id_column = _id_column(table)
    elif id_column not in frame.columns:
        raise InputError(f"{path}:1: no sample-ID column '{id_column}' ({table.found_columns()})")
    if trait not in frame.columns:
        others = ", ".join(c for c in frame.columns if c != id_column)
        raise InputError(f"{path}:1: no trait column '{trait}' (--trait); columns: {others}")
    ids = _unique_ids(table, id_column)
    values = pd.Series(frame[trait].to_numpy(), index=pd.Index(ids, name="s"), dtype=str)
    is_case, coding = _decode(values, path, trait)
    result = BinaryTrait(
        path=path, trait=trait, id_column=id_column, is_case=is_case, coding=coding
    )
    if result.n_controls == 0:
        raise InputError(f"{path}: trait '{trait}' has no controls; HWE in controls needs some")
    logger.info(
        "%s: trait %s (%s coding): %d cases, %d controls, %d missing",
        path,
        trait,
        coding,
        result.n_cases,
        result.n_controls,
        int(is_case.isna().sum()),
    )
    return result


@dataclass(frozen=True)
class PhenotypeTable:
    """Traits and covariates read from a phenotype file, ready for Hail.

    ``frame``: index = sample ID (str); one float64 column per trait (binary
    traits coded 0.0/1.0) and per covariate, NaN where missing. ``binary``:
    trait name → True when binary. ``codings``: how each binary trait was coded
    in the file (``0/1``, ``1/2``, ``case/control``).
    """

    path: str
    id_column: str
    frame: pd.DataFrame
    traits: tuple[str, ...]
    covariates: tuple[str, ...]
    binary: dict[str, bool]
    codings: dict[str, str]

    def missing_counts(self) -> dict[str, int]:
        return {c: int(self.frame[c].isna().sum()) for c in self.frame.columns}


def _read_table(path: str) -> TextTable:
    from gwas_prs.core import storage

    if not (storage.exists(path) if storage.is_remote(path) else os.path.isfile(path)):
        raise InputError(f"{path}: phenotype file not found (--phenotypes)")
    return read_text_table(path, "phenotype")


def _id_column(table: TextTable) -> str:
    lowered = {c.lower(): c for c in table.frame.columns}
    found = next((lowered[n] for n in SAMPLE_ID_COLUMNS if n in lowered), None)
    if found is None:
        raise InputError(
            f"{table.path}:1: no sample-ID column (looked for {', '.join(SAMPLE_ID_COLUMNS)}; "
            f"{table.found_columns()}); rename it"
        )
    return found


def _unique_ids(table: TextTable, column: str) -> pd.Series:
    ids = table.frame[column].str.strip()
    repeats = ids.duplicated().to_numpy()
    if repeats.any():
        row = int(np.flatnonzero(repeats)[0])
        lines = ", ".join(str(n) for n in table.lines[(ids == ids.iloc[row]).to_numpy()])
        raise InputError(
            f"{table.path}:{table.lines[row]}: sample '{ids.iloc[row]}' appears more than once "
            f"(lines {lines}); keep one row per sample"
        )
    return ids


def _is_infinite(text: str) -> bool:
    try:
        return math.isinf(float(text))
    except ValueError:
        return False


def _numeric_column(table: TextTable, column: str, option: str) -> pd.Series:
    path, raw = table.path, table.frame[column]
    text = raw.str.strip()
    missing = text.str.lower().isin(MISSING_PHENOTYPE)
    values = pd.to_numeric(text.where(~missing), errors="coerce")
    bad = (values.isna() & ~missing).to_numpy()
    infinite = np.isinf(values.to_numpy(dtype="float64"))
    # pandas reads overflowing numbers (1e999) as not numbers; Python reads them as inf
    infinite[bad] = [_is_infinite(t) for t in text[bad]]
    if infinite.any():
        first = int(np.flatnonzero(infinite)[0])
        raise InputError(
            f"{path}:{table.lines[first]}: {option} '{column}' has the non-finite value "
            f"'{text.iloc[first]}'; use NA for missing values"
        )
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        value = raw.iloc[first]
        hint = (
            f"; write decimals with a point ('{value.strip().replace(',', '.')}')"
            if re.fullmatch(r"[-+]?\d*,\d+", value.strip())
            else ""
        )
        raise InputError(
            f"{path}:{table.lines[first]}: {option} '{column}' has a non-numeric value "
            f"'{value}' ({int(bad.sum())} such rows); use numbers, with NA, -9 or empty for "
            f"missing{hint}"
        )
    return values.astype("float64")


#: The numeric codes whose mix is neither 0/1 nor 1/2 and is refused (see :func:`_mixed_coding`).
_CODES = {"0", "1", "2"}


def _mixed_coding(table: TextTable, trait: str, present: pd.Series) -> None:
    """Refuse a column of only the codes 0, 1 and 2 that is neither 0/1 nor 1/2.

    ``present``: the stripped, lower-cased values, missing ones removed (index: row).
    """
    distinct = set(present.unique())
    if not (distinct <= _CODES and {"0", "2"} <= distinct):
        return
    positions = present.index.to_numpy()
    first_0 = int(positions[(present == "0").to_numpy()][0])
    first_2 = int(positions[(present == "2").to_numpy()][0])
    values = sorted(distinct)
    raise InputError(
        f"{table.path}:{table.lines[max(first_0, first_2)]}: trait '{trait}' has the values "
        f"{', '.join(values)}: a binary trait must be 0/1, 1/2 (PLINK) or control/case; "
        "recode it, or for a quantitative trait write the values with a decimal point "
        f"({', '.join(f'{v}.0' for v in values)})"
    )


def read_phenotypes(
    path: str,
    traits: Sequence[str],
    covariates: Sequence[str] = (),
    *,
    id_column: str | None = None,
    binary: Mapping[str, bool] | None = None,
) -> PhenotypeTable:
    """Read traits and covariates from a phenotype file (pandas only; no JVM).

    A trait is binary when its values (missing ones aside) are 0/1, 1/2 with at
    least one 2 (PLINK), or control/case words — unless ``binary`` says
    otherwise; every other trait must be numeric (quantitative). A trait whose
    values are the codes 0, 1 and 2 (or 0 and 2) is refused unless ``binary``
    names it (the CLI has no such option: the message says to recode, or to
    write a quantitative trait with decimal points). Missing: empty, ``NA``,
    ``-9``, ``.``, ``nan``. Covariates must be numeric (code sex as 0/1). Line
    numbers in messages are the file's (header = line 1, blank lines counted).

    Raises
    ------
    InputError
        Missing file or ID column, unknown trait/covariate (the message lists
        the columns), repeated sample, non-numeric or non-finite (``Inf``) value
        (with its line), mixed 0/1 and 1/2 codes (with the line where they
        meet), a trait with no values, or a binary trait without cases or
        controls.
    """
    table = _read_table(path)
    frame = table.frame
    if id_column is not None and id_column not in frame.columns:
        raise InputError(f"{path}:1: no sample-ID column '{id_column}' ({table.found_columns()})")
    chosen = id_column or _id_column(table)
    available = [c for c in frame.columns if c != chosen]
    for kind, names in (("trait", traits), ("covariate", covariates)):
        unknown = [n for n in names if n not in frame.columns]
        if unknown:
            raise InputError(
                f"{path}:1: no {kind} column {', '.join(repr(u) for u in unknown)} "
                f"(--{'trait' if kind == 'trait' else 'covariates'}); columns: {', '.join(available)}"
            )
    ids = _unique_ids(table, chosen)
    out = pd.DataFrame(index=pd.Index(ids.to_numpy(), name="s"))
    kinds: dict[str, bool] = {}
    codings: dict[str, str] = {}
    for trait in traits:
        raw = pd.Series(frame[trait].to_numpy(), index=out.index, dtype=str)
        lowered = frame[trait].str.strip().str.lower()
        present = lowered[~lowered.isin(MISSING_PHENOTYPE)]
        distinct = set(present.unique())
        if not distinct:
            raise InputError(f"{path}: trait '{trait}' has no values (all missing)")
        looks_binary = (
            distinct <= {"0", "1"}
            or (distinct <= {"1", "2"} and "2" in distinct)
            or distinct <= CONTROL_WORDS | CASE_WORDS
        )
        if binary is None or trait not in binary:
            _mixed_coding(table, trait, present)
        is_binary = binary.get(trait, looks_binary) if binary else looks_binary
        if is_binary:
            is_case, coding = _decode(raw, path, trait)
            if int(is_case.sum(skipna=True)) == 0 or int((~is_case.dropna()).sum()) == 0:
                raise InputError(f"{path}: binary trait '{trait}' needs both cases and controls")
            out[trait] = is_case.astype("float64")
            codings[trait] = coding
        else:
            out[trait] = _numeric_column(table, trait, "trait").to_numpy()
        kinds[trait] = is_binary
    for covariate in covariates:
        out[covariate] = _numeric_column(table, covariate, "covariate").to_numpy()
    return PhenotypeTable(
        path=path,
        id_column=chosen,
        frame=out,
        traits=tuple(traits),
        covariates=tuple(covariates),
        binary=kinds,
        codings=codings,
    )
