"""Phenotype files: traits (binary or quantitative) and covariates.

A phenotype file is a TSV/CSV (tab or comma, ``.csv`` means comma) with a
header line, one row per sample, a sample-ID column and one column per trait.
:func:`read_binary_trait` reads one binary trait (``gwas-prs qc
--hwe-controls-only``); :func:`read_phenotypes` reads traits and covariates
for ``gwas``/``prs``/``train``.

Coding of a binary trait column (case-insensitive):

- ``0`` = control, ``1`` = case;
- ``1`` = control, ``2`` = case (PLINK coding), used when the values are
  exactly a subset of ``{1, 2}`` and at least one ``2`` is present;
- ``control``/``case`` (also ``ctrl``, ``unaffected``/``affected``).

Missing: empty, ``NA``, ``-9``, ``.``, ``nan``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from gwas_prs.errors import InputError
from gwas_prs.sample_metadata import SAMPLE_ID_COLUMNS

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
    if not os.path.isfile(path):
        raise InputError(f"{path}: phenotype file not found (--phenotypes)")
    sep = "," if path.lower().endswith(".csv") else None
    try:
        frame = pd.read_csv(path, sep=sep or "\t", dtype=str, keep_default_na=False)
        if sep is None and frame.shape[1] == 1 and "," in frame.columns[0]:
            frame = pd.read_csv(path, sep=",", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as a table ({str(exc).splitlines()[0]})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    if id_column is None:
        lowered = {c.lower(): c for c in frame.columns}
        id_column = next((lowered[n] for n in SAMPLE_ID_COLUMNS if n in lowered), None)
        if id_column is None:
            raise InputError(
                f"{path}:1: no sample-ID column (looked for {', '.join(SAMPLE_ID_COLUMNS)}); rename it"
            )
    elif id_column not in frame.columns:
        raise InputError(f"{path}: no sample-ID column '{id_column}'")
    if trait not in frame.columns:
        others = ", ".join(c for c in frame.columns if c != id_column)
        raise InputError(f"{path}: no trait column '{trait}' (--trait); columns: {others}")
    ids = frame[id_column].str.strip()
    duplicated = ids[ids.duplicated()]
    if not duplicated.empty:
        raise InputError(
            f"{path}: sample '{duplicated.iloc[0]}' appears more than once; keep one row per sample"
        )
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


def _read_table(path: str) -> pd.DataFrame:
    if not os.path.isfile(path):
        raise InputError(f"{path}: phenotype file not found (--phenotypes)")
    try:
        frame = pd.read_csv(
            path,
            sep="," if path.lower().endswith(".csv") else "\t",
            dtype=str,
            keep_default_na=False,
        )
        if not path.lower().endswith(".csv") and frame.shape[1] == 1 and "," in frame.columns[0]:
            frame = pd.read_csv(path, sep=",", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as a table ({str(exc).splitlines()[0]})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _numeric_column(path: str, frame: pd.DataFrame, column: str, option: str) -> pd.Series:
    text = frame[column].str.strip()
    missing = text.str.lower().isin(MISSING_PHENOTYPE)
    values = pd.to_numeric(text.where(~missing), errors="coerce")
    bad = values.isna() & ~missing
    if bad.any():
        first = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(
            f"{path}:{first + 2}: {option} '{column}' has a non-numeric value "
            f"'{frame[column].iloc[first]}' ({int(bad.sum())} such rows); use numbers, with NA, -9 or empty for missing"
        )
    return values.astype("float64")


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
    otherwise; every other trait must be numeric (quantitative). Missing:
    empty, ``NA``, ``-9``, ``.``. Covariates must be numeric (code sex as 0/1).

    Raises
    ------
    InputError
        Missing file or ID column, unknown trait/covariate (the message lists
        the columns), repeated sample, non-numeric value (with its line), a
        trait with no values, or a binary trait without cases or controls.
    """
    frame = _read_table(path)
    lowered = {c.lower(): c for c in frame.columns}
    chosen = id_column or next((lowered[n] for n in SAMPLE_ID_COLUMNS if n in lowered), None)
    if chosen is None or chosen not in frame.columns:
        raise InputError(
            f"{path}:1: no sample-ID column (looked for {', '.join(SAMPLE_ID_COLUMNS)}); rename it"
        )
    available = [c for c in frame.columns if c != chosen]
    for kind, names in (("trait", traits), ("covariate", covariates)):
        unknown = [n for n in names if n not in frame.columns]
        if unknown:
            raise InputError(
                f"{path}: no {kind} column {', '.join(repr(u) for u in unknown)} "
                f"(--{'trait' if kind == 'trait' else 'covariates'}); columns: {', '.join(available)}"
            )
    ids = frame[chosen].str.strip()
    duplicated = ids[ids.duplicated()]
    if not duplicated.empty:
        raise InputError(
            f"{path}: sample '{duplicated.iloc[0]}' appears more than once; keep one row per sample"
        )
    out = pd.DataFrame(index=pd.Index(ids.to_numpy(), name="s"))
    kinds: dict[str, bool] = {}
    codings: dict[str, str] = {}
    for trait in traits:
        raw = pd.Series(frame[trait].to_numpy(), index=out.index, dtype=str)
        present = raw.str.strip().str.lower()
        distinct = set(present[~present.isin(MISSING_PHENOTYPE)].unique())
        if not distinct:
            raise InputError(f"{path}: trait '{trait}' has no values (all missing)")
        looks_binary = (
            distinct <= {"0", "1"}
            or (distinct <= {"1", "2"} and "2" in distinct)
            or distinct <= CONTROL_WORDS | CASE_WORDS
        )
        is_binary = binary.get(trait, looks_binary) if binary else looks_binary
        if is_binary:
            is_case, coding = _decode(raw, path, trait)
            if int(is_case.sum(skipna=True)) == 0 or int((~is_case.dropna()).sum()) == 0:
                raise InputError(f"{path}: binary trait '{trait}' needs both cases and controls")
            out[trait] = is_case.astype("float64")
            codings[trait] = coding
        else:
            out[trait] = _numeric_column(path, frame, trait, "trait").to_numpy()
        kinds[trait] = is_binary
    for covariate in covariates:
        out[covariate] = _numeric_column(path, frame, covariate, "covariate").to_numpy()
    return PhenotypeTable(
        path=path,
        id_column=chosen,
        frame=out,
        traits=tuple(traits),
        covariates=tuple(covariates),
        binary=kinds,
        codings=codings,
    )
