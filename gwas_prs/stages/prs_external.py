"""The prs stage on external summary statistics: the up-front checks, the target-only
split, the match to the cohort and its report (see :mod:`gwas_prs.stages.prs`)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

from gwas_prs.core import storage
from gwas_prs.core.errors import InputError
from gwas_prs.core.run_folder import STATUS_COMPLETE, RunFolder, require_complete, stage_record
from gwas_prs.formats.external_sumstats import (
    ExternalSumstats,
    HarmonisedSumstats,
    harmonise_sumstats,
)

logger = logging.getLogger(__name__)


def check_external_base(run: RunFolder, trait: str, phenotypes_file: str | None) -> str:
    """Checked up front for a PRS on external summary statistics: qc is complete, the run
    holds no in-sample GWAS of ``trait`` (its split keeps the discovery half out of every
    target set) and a phenotype file is given; returns it.

    Raises
    ------
    StageNotCompleteError, InputError
        One line naming what to do.
    """
    require_complete(run, "qc", needed_by="prs")
    gwas = stage_record(run, f"gwas:{trait}")
    if gwas is not None and gwas.status == STATUS_COMPLETE:
        raise InputError(
            f"--sumstats: {run.root} holds this run's own GWAS of '{trait}' "
            f"({run.gwas_dir(trait)}), whose split keeps the discovery samples out of "
            "the targets; score the external summary statistics in a run folder without "
            f"'gwas --trait {trait}', or drop --sumstats"
        )
    if not phenotypes_file:
        raise InputError(
            f"--sumstats: give the phenotypes of '{trait}' with --phenotypes FILE "
            "(and its covariates with --covariates)"
        )
    return phenotypes_file


def target_split(
    phenotypes: pd.DataFrame,
    trait: str,
    cohort: pd.Index,
    ancestry: pd.Series | None,
    seed: int,
    source: str = "phenotypes",
) -> pd.Series:
    """Every labelled sample of the QC-passed ``cohort`` a target (no discovery):
    train/validation/test 40/30/30, stratified by ancestry group × label
    (:func:`gwas_prs.methods.gwas.splits.assign_splits`); index ``sample_id``.

    Raises
    ------
    InputError
        No phenotyped sample is in the cohort.
    """
    from gwas_prs.methods.gwas.splits import SplitFractions, assign_splits

    cohort = pd.Index(cohort.astype(str))
    in_both = cohort.intersection(phenotypes.index.astype(str))
    if len(in_both) == 0:
        raise InputError(
            f"{source}: none of its {len(phenotypes)} samples are in the QC-passed cohort "
            f"(e.g. '{cohort[0] if len(cohort) else ''}'); check the sample-ID column"
        )
    samples = phenotypes.reindex(cohort)[[trait]].copy()
    group = None
    if ancestry is not None:
        samples["_group"] = ancestry.reindex(samples.index).astype("string").fillna("NA")
        group = "_group"
    roles = assign_splits(
        samples,
        label=trait,
        group=group,
        seed=seed,
        fractions=SplitFractions(discovery=0.0, train=0.4, validation=0.3, test=0.3),
    )
    roles = roles.dropna().astype(str)  # unlabelled samples have no role
    roles.index.name = "sample_id"
    return roles


@dataclass(frozen=True)
class ExternalBase:
    """External summary statistics, and their match to the silver .bed when it was
    made before the stage started (the numpy engine)."""

    sumstats: ExternalSumstats
    harmonised: HarmonisedSumstats | None = None


def harmonise_base(
    base: ExternalSumstats,
    variants: pd.DataFrame,
    cohort_build: str,
    *,
    allow_palindromic: bool,
    min_overlap: float,
    allow_build_mismatch: bool,
) -> HarmonisedSumstats:
    """External summary statistics on the cohort's variants (the match report is logged)."""
    harmonised = harmonise_sumstats(
        base,
        variants,
        allow_palindromic=allow_palindromic,
        min_overlap=min_overlap,
        cohort_build=cohort_build,
        allow_build_mismatch=allow_build_mismatch,
    )
    logger.info("%s: %s", base.path, harmonised.summary)
    return harmonised


def write_match_report(tmp: str, base: ExternalSumstats, harmonised: HarmonisedSumstats) -> None:
    """``sumstats_match.json``: the file, its format, the match rate and every category."""
    storage.write_text_atomic(
        storage.join(tmp, "sumstats_match.json"),
        json.dumps(
            {"file": base.path, "format": base.format, "match_rate": harmonised.match_rate,
             "categories": harmonised.counts},
            indent=2,
        ) + "\n",
    )  # fmt: skip


def sumstats_counts(base: ExternalSumstats, harmonised: HarmonisedSumstats) -> dict[str, Any]:
    return {
        "file": base.path,
        "format": base.format,
        "rows": base.counts["rows_read"],
        "match_rate": round(harmonised.match_rate, 4),
        "categories": harmonised.counts,
    }
