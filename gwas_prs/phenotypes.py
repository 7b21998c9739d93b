"""Phenotype files (minimal reader: one binary trait per call).

A phenotype file is a TSV/CSV (tab or comma, ``.csv`` means comma) with a
header line, one row per sample, a sample-ID column and one column per trait.
This module reads a *binary* trait, as ``gwas-prs qc --hwe-controls-only``
needs it; later stages extend it (quantitative traits, covariates).

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
