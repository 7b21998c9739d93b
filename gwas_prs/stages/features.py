"""The feature table of a trait: ``RUN/gold/features/TRAIT.parquet`` (+ ``TRAIT.schema.json``).

One row per *target* sample of the trait (roles ``train``/``validation``/``test``
of ``RUN/gold/splits/TRAIT.tsv``; ``discovery`` samples, which the GWAS saw,
are never in it), with the columns

``sample_id`` (str), ``split`` (str), ``ancestry`` (str, the QC-assigned group,
``NA`` without labels), ``label`` (int64, 0/1 for a binary trait; float64 for a
quantitative one), one ``prs_<threshold>`` column per p-value threshold of the
``prs`` stage (float64, **standardised** with the mean and SD of the ``train``
part only, so nothing leaks from validation/test), ``PC1`` … ``PCn`` (float64,
the QC ancestry PCA scores; ``n`` = the ``--n-pcs`` of the gwas stage) and the
gwas stage's covariates (float64, as in the phenotype file; NaN where missing).

The schema file records every column's name, dtype and role (``id``, ``split``,
``ancestry``, ``label``, ``prs``, ``pc``, ``covariate``), the standardisation
parameters (``mean``/``sd`` of the raw score on ``train``; ``sd`` is the
population SD, ``ddof=0``; a constant score gets ``sd = 1``), the thresholds,
the threshold the ``prs`` stage chose on validation, and the files it was built
from.

Everything is read from TSV files on disk (no Hail): the PRS from
``RUN/gold/prs/TRAIT/scores.tsv``, the PCs from ``RUN/silver/ancestry/scores.tsv``,
the groups from ``RUN/silver/ancestry/assignments.tsv``, label and covariates
from the phenotype file recorded by the gwas stage.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gwas_prs.core import storage
from gwas_prs.core.errors import InputError
from gwas_prs.core.run_folder import RunFolder, StageRecord, require_complete

logger = logging.getLogger(__name__)

TARGET_ROLES = ("train", "validation", "test")
#: ``--features`` names → column roles.
FEATURE_GROUPS = {"prs": "prs", "pcs": "pc", "covariates": "covariate"}
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class FeatureTable:
    """The frame (index: ``sample_id``) and its schema (a JSON-able dict)."""

    frame: pd.DataFrame
    schema: dict[str, Any]

    def columns_with_role(self, role: str) -> list[str]:
        return [c["name"] for c in self.schema["columns"] if c["role"] == role]

    def feature_columns(self, groups: tuple[str, ...]) -> list[str]:
        """Model inputs for ``--features`` groups (``prs``, ``pcs``, ``covariates``), in table order."""
        roles = {FEATURE_GROUPS[g] for g in groups}
        return [c["name"] for c in self.schema["columns"] if c["role"] in roles]


def standardise(raw: pd.DataFrame, train: pd.Series) -> tuple[pd.DataFrame, dict[str, dict]]:
    """Centre and scale each column with the mean and SD (ddof=0) of the ``train`` rows.

    Returns the standardised frame and ``{column: {"mean", "sd"}}``; a column
    that is constant on ``train`` keeps ``sd = 1`` (it only gets centred).
    """
    params: dict[str, dict[str, float]] = {}
    out = pd.DataFrame(index=raw.index)
    for column in raw.columns:
        values = raw.loc[train, column].to_numpy(dtype=float)
        mean = float(np.mean(values))
        sd = float(np.std(values))
        if not np.isfinite(sd) or sd < 1e-12:
            sd = 1.0
        params[column] = {"mean": mean, "sd": sd}
        out[column] = (raw[column].to_numpy(dtype=float) - mean) / sd
    return out, params


def build_feature_table(
    *,
    trait: str,
    scores: pd.DataFrame,
    roles: pd.Series,
    label: pd.Series,
    covariates: pd.DataFrame,
    pcs: pd.DataFrame,
    ancestry: pd.Series | None,
    binary: bool,
    best_threshold: float | None,
    sources: dict[str, str],
) -> FeatureTable:
    """Assemble the table from frames indexed by sample ID (see the module docstring).

    ``scores``: raw ``prs_<t>`` columns; ``roles``: the split; ``label``: the
    trait (NaN = missing, such samples are dropped with a warning); ``pcs``:
    ``PC1``… already cut to the PCs wanted.
    """
    target = roles[roles.isin(TARGET_ROLES)]
    index = pd.Index([s for s in scores.index if s in target.index], name="sample_id")
    y = label.reindex(index)
    if y.isna().any():
        logger.warning(
            "%d target samples of '%s' have no label in the phenotype file; they are left out",
            int(y.isna().sum()),
            trait,
        )
        index = index[y.notna().to_numpy()]
        y = y.reindex(index)
    missing_pcs = index.difference(pcs.index)
    if len(missing_pcs):
        raise InputError(
            f"{sources.get('pcs', 'PCs')}: no PCs for {len(missing_pcs)} target samples "
            f"(e.g. '{missing_pcs[0]}'); re-run qc and the later stages"
        )
    split = target.reindex(index).astype(str)
    prs_columns = [c for c in scores.columns if c.startswith("prs_")]
    raw = scores.loc[index, prs_columns].astype(float)
    standardised, params = standardise(raw, split == "train")
    frame = pd.DataFrame(index=index)
    frame["split"] = split
    groups = ancestry.reindex(index) if ancestry is not None else None
    frame["ancestry"] = groups.fillna("NA").astype(str) if groups is not None else "NA"
    frame["label"] = y.astype("int64") if binary else y.astype("float64")
    for column in prs_columns:
        frame[column] = standardised[column]
    for column in pcs.columns:
        frame[column] = pcs.loc[index, column].astype("float64")
    for column in covariates.columns:
        frame[column] = covariates[column].reindex(index).astype("float64")
    columns: list[dict[str, Any]] = [
        {"name": "sample_id", "dtype": "string", "role": "id"},
        {"name": "split", "dtype": "string", "role": "split"},
        {"name": "ancestry", "dtype": "string", "role": "ancestry"},
        {"name": "label", "dtype": str(frame["label"].dtype), "role": "label"},
    ]
    for column in prs_columns:
        threshold = prs_threshold(column)
        columns.append(
            {
                "name": column,
                "dtype": "float64",
                "role": "prs",
                **(
                    {"threshold": threshold}
                    if threshold is not None
                    else {"method": column.removeprefix("prs_")}
                ),
                "standardised": True,
            }
        )
    columns += [{"name": c, "dtype": "float64", "role": "pc"} for c in pcs.columns]
    columns += [{"name": c, "dtype": "float64", "role": "covariate"} for c in covariates.columns]
    counts = {role: int((split == role).sum()) for role in TARGET_ROLES}
    if binary:
        counts["cases"] = int(frame["label"].sum())
        counts["controls"] = len(frame) - counts["cases"]
    schema = {
        "format": "gwas-prs feature table",
        "version": SCHEMA_VERSION,
        "trait": trait,
        "binary": binary,
        "id_column": "sample_id",
        "columns": columns,
        "standardisation": {
            column: {**params[column], "fitted_on": "train", "ddof": 0} for column in prs_columns
        },
        "thresholds": [t for t in map(prs_threshold, prs_columns) if t is not None],
        "prs_methods": [c.removeprefix("prs_") for c in prs_columns if prs_threshold(c) is None],
        "best_threshold": best_threshold,
        "covariates": list(covariates.columns),
        "n_pcs": len(pcs.columns),
        "counts": counts,
        "sources": sources,
    }
    return FeatureTable(frame=frame, schema=schema)


def prs_threshold(column: str) -> float | None:
    """The p-value threshold of a C+T score column (``prs_0.01`` → 0.01), None for the
    score of another method (``prs_ldpred2_auto``)."""
    try:
        return float(column.removeprefix("prs_"))
    except ValueError:
        return None


def _read_tsv(path: str, what: str) -> pd.DataFrame:
    if not storage.exists(path):
        raise InputError(f"{path}: {what} not found; re-run the stage that writes it")
    return storage.read_table(path, sep="\t", dtype={"s": str, "sample_id": str})


def read_pcs(run: RunFolder, n_pcs: int) -> pd.DataFrame:
    """The first ``n_pcs`` PCs of the qc stage (``RUN/silver/ancestry/scores.tsv``),
    indexed by ``s``, columns ``PC1`` … read back bit-exactly (the silver ``pcs``
    field's values).

    Raises
    ------
    InputError
        The file is missing, or has fewer than ``n_pcs`` PCs.
    """
    path = run.pca_scores
    if not storage.exists(path):
        raise InputError(f"{path}: PCA scores not found; re-run the stage that writes it (qc)")
    pcs = pd.read_csv(
        io.StringIO(storage.read_text(path)),
        sep="\t",
        dtype={"s": str},
        float_precision="round_trip",
    ).set_index("s")
    if n_pcs > pcs.shape[1]:
        raise InputError(f"{path}: {pcs.shape[1]} PCs, but gwas used --n-pcs {n_pcs}")
    return pcs.iloc[:, :n_pcs]


def read_ancestry(run: RunFolder) -> pd.Series | None:
    """The assigned ancestry group of every QC-passed sample (qc), or None without labels."""
    path = run.ancestry_assignments
    if not storage.exists(path):
        return None
    return _read_tsv(path, "ancestry assignments").set_index("s")["assigned"]


def trait_source_record(run: RunFolder, trait: str, needed_by: str) -> StageRecord:
    """The stage record that says how ``trait``'s PRS base was made, with the
    ``phenotypes_file``, ``covariates``, ``n_pcs`` (and ``binary``) parameters: this
    run's ``gwas:TRAIT``, or ``prs:TRAIT`` when the PRS rests on external summary
    statistics (``prs --sumstats``, no GWAS in the run).

    Raises
    ------
    StageNotCompleteError
        Neither stage is complete (the message names the gwas stage).
    """
    from gwas_prs.core.run_folder import STATUS_COMPLETE, stage_record

    prs = stage_record(run, f"prs:{trait}")
    if prs is not None and prs.status == STATUS_COMPLETE and prs.parameters.get("sumstats_file"):
        return prs
    return require_complete(run, f"gwas:{trait}", needed_by=needed_by)


def feature_table_from_run(
    run: RunFolder, trait: str, phenotypes_file: str | None = None
) -> FeatureTable:
    """Build the table of ``trait`` from the run folder's files (no Hail, nothing written)."""
    from gwas_prs.formats.phenotypes import read_phenotypes
    from gwas_prs.stages.gwas import read_split

    gwas = trait_source_record(run, trait, needed_by="features")
    covariates = tuple(gwas.parameters.get("covariates", []))
    n_pcs = int(gwas.parameters.get("n_pcs", 10))
    phenotypes = phenotypes_file or run.resolve(gwas.parameters["phenotypes_file"])
    pheno = read_phenotypes(phenotypes, (trait,), covariates)
    scores_file = run.prs_scores(trait)
    scores = _read_tsv(scores_file, "PRS scores").set_index("sample_id")
    metrics_file = storage.join(run.prs_dir(trait), "metrics.json")
    best = (
        json.loads(storage.read_text(metrics_file)).get("best_threshold")
        if storage.exists(metrics_file)
        else None
    )
    pcs_file = run.pca_scores
    pcs = read_pcs(run, n_pcs)
    ancestry = read_ancestry(run)
    return build_feature_table(
        trait=trait,
        scores=scores,
        roles=read_split(run, trait),
        label=pheno.frame[trait],
        covariates=pheno.frame[list(covariates)],
        pcs=pcs,
        ancestry=ancestry,
        binary=pheno.binary[trait],
        best_threshold=best,
        sources={
            "scores": run.stored_path(scores_file),
            "phenotypes": run.stored_path(phenotypes),
            "pcs": run.stored_path(pcs_file),
            "splits": run.stored_path(run.split_file(trait)),
        },
    )


def write_feature_table(table: FeatureTable, run: RunFolder) -> str:
    """Write ``TRAIT.parquet`` and ``TRAIT.schema.json`` (each atomically); return the parquet path."""
    trait = table.schema["trait"]
    path = run.features_file(trait)
    storage.makedirs(run.path("gold", "features"))
    with storage.atomic_writer(path) as handle:
        table.frame.reset_index().to_parquet(handle, index=False)
    storage.write_text_atomic(run.features_schema(trait), json.dumps(table.schema, indent=2) + "\n")
    logger.info("wrote the feature table %s (%d samples)", path, len(table.frame))
    return path


def read_feature_table(run: RunFolder, trait: str) -> FeatureTable | None:
    """The table on disk, or None when it (or its schema) is missing."""
    path, schema_file = run.features_file(trait), run.features_schema(trait)
    if not (storage.exists(path) and storage.exists(schema_file)):
        return None
    schema = json.loads(storage.read_text(schema_file))
    frame = storage.read_parquet(path).set_index("sample_id")
    expected = [c["name"] for c in schema["columns"] if c["role"] != "id"]
    if list(frame.columns) != expected:
        raise InputError(
            f"{path}: columns {list(frame.columns)} differ from {schema_file}; "
            "delete both and re-run train (it rebuilds them)"
        )
    return FeatureTable(frame=frame, schema=schema)
