"""The model folder ``RUN/gold/models/TRAIT/``: what ``train`` saves so ``predict`` can score new people.

Files (all plain text/JSON except the XGBoost model):

``model.json``
    The XGBoost booster (native JSON format), cut at its best iteration.
``feature_schema.json``
    The model's inputs in order (``model_features``), every feature's role
    (``prs``/``pc``/``covariate``), the PRS standardisation (``mean``/``sd`` of
    the raw score on ``train``), the ``logit_offset`` of the imbalance
    correction, the threshold the prs stage chose (``best_threshold``), the
    reference genome, the ancestry settings; see :func:`gwas_prs.stages.train.run_train`.
``baselines.json``
    The logistic baselines as numbers (:class:`gwas_prs.methods.model.training.LogisticBaseline`).
``prs_weights.tsv``
    One row per scored variant: ``chromosome``, ``position``, ``ref``, ``alt``,
    ``effect_is_alt`` (the weights are for ALT when true, else for REF),
    ``effect_af`` (frequency of the effect allele in the scored target
    samples: a missing genotype counts ``2 × effect_af``, as in the prs stage)
    and ``weight_<threshold>`` for every threshold.
``pca_loadings.tsv.gz``
    The QC PCA: ``contig``, ``position``, ``ref``, ``alt``, ``pca_af`` and
    ``loading_1`` … ``loading_k`` (for :func:`hail.experimental.pc_project`).
``prs_distribution.tsv``
    The raw score at the best threshold of every ``train`` sample (sorted), for percentiles.
``ancestry_reference.tsv``
    The labelled samples' first PCs and group label, in the order QC fitted its
    random forest, so :func:`assign_groups` rebuilds the same forest.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gwas_prs.core import storage
from gwas_prs.core.errors import InputError
from gwas_prs.engine.table_io import variant_frame_to_table, variant_table_to_frame
from gwas_prs.methods.model.training import LogisticBaseline

logger = logging.getLogger(__name__)

MODEL_FILES = {
    "model": "model.json",
    "feature_schema": "feature_schema.json",
    "baselines": "baselines.json",
    "prs_weights": "prs_weights.tsv",
    "pca_loadings": "pca_loadings.tsv.gz",
    "prs_distribution": "prs_distribution.tsv",
}
ANCESTRY_REFERENCE = "ancestry_reference.tsv"
SCHEMA_FORMAT = "gwas-prs model feature schema"
#: The forest of :func:`gwas_prs.methods.ancestry.structure.assign_ancestry`.
FOREST_TREES = 200


# --- what train exports (Hail) -------------------------------------------------


def prs_weights_frame(prs_folder: str, thresholds: list[float]) -> pd.DataFrame:
    """The prs stage's weights as ``chromosome``, ``position``, ``ref``, ``alt``,
    ``effect_is_alt``, ``weight_<t>`` (from ``weights_by_threshold.tsv``, or
    ``harmonised_weights.tsv`` when the prs stage scored a ``--weights`` file)."""
    by_threshold = storage.join(prs_folder, "weights_by_threshold.tsv")
    if storage.exists(by_threshold):
        table = pd.read_csv(by_threshold, sep="\t", dtype={"chromosome": str})
        out = table[["chromosome", "position", "ref", "alt"]].copy()
        out["effect_is_alt"] = True
        for t in thresholds:
            out[f"weight_{t:g}"] = table[f"weight_{t:g}"].astype(float)
        return out
    harmonised = storage.join(prs_folder, "harmonised_weights.tsv")
    if not storage.exists(harmonised):
        raise InputError(f"{prs_folder}: no weights_by_threshold.tsv or harmonised_weights.tsv")
    table = pd.read_csv(harmonised, sep="\t", dtype={"contig": str})
    out = pd.DataFrame(
        {
            "chromosome": table["contig"],
            "position": table["position"],
            "ref": table["ref"],
            "alt": table["alt"],
            "effect_is_alt": table["effect_is_alt"].astype(bool),
        }
    )
    out[f"weight_{thresholds[0]:g}"] = table["effect_weight"].astype(float)
    return out


def add_effect_frequencies(
    weights: pd.DataFrame, silver_mt: str, samples: list[str]
) -> pd.DataFrame:
    """``effect_af`` of every weight variant among ``samples`` (mean of the called
    genotypes, as :func:`gwas_prs.methods.prs.scoring.polygenic_scores` imputes)."""
    import hail as hl

    mt = hl.read_matrix_table(silver_mt)
    mt = mt.filter_cols(hl.literal(set(samples), hl.tset(hl.tstr)).contains(mt.s))
    keys = variant_frame_to_table(
        weights,
        {},
        mt.locus.dtype.reference_genome,
        columns=("chromosome", "position", "ref", "alt"),
    )
    mt = mt.semi_join_rows(keys.select().distinct())
    rows = mt.annotate_rows(alt_af=hl.agg.mean(hl.float64(mt.GT.n_alt_alleles())) / 2).rows()
    frame = variant_table_to_frame(rows, {"alt_af": rows.alt_af})
    merged = weights.merge(
        frame[["chromosome", "position", "ref", "alt", "alt_af"]],
        on=["chromosome", "position", "ref", "alt"],
        how="left",
    )
    if merged["alt_af"].isna().any():
        raise InputError(
            f"{silver_mt}: {int(merged['alt_af'].isna().sum())} PRS variants are not in the "
            "QC-passed genotypes; re-run prs"
        )
    merged["effect_af"] = np.where(merged["effect_is_alt"], merged["alt_af"], 1 - merged["alt_af"])
    columns = ["chromosome", "position", "ref", "alt", "effect_is_alt", "effect_af"]
    return merged[columns + [c for c in weights.columns if c.startswith("weight_")]]


def pca_loadings_frame(loadings_ht: str) -> pd.DataFrame:
    """The QC loadings table as ``contig``, ``position``, ``ref``, ``alt``, ``pca_af``, ``loading_k``."""
    import hail as hl

    frame = hl.read_table(loadings_ht).to_pandas()
    matrix = np.vstack(frame["loadings"].to_numpy())
    out = pd.DataFrame(
        {
            "contig": frame["locus"].map(lambda locus: str(locus.contig)),
            "position": frame["locus"].map(lambda locus: int(locus.position)),
            "ref": frame["alleles"].map(lambda a: a[0]),
            "alt": frame["alleles"].map(lambda a: a[1]),
            "pca_af": frame["pca_af"].astype(float),
        }
    )
    for k in range(matrix.shape[1]):
        out[f"loading_{k + 1}"] = matrix[:, k]
    return out


def ancestry_reference(silver_ancestry: str) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """The labelled samples QC trained its ancestry forest on, and its settings.

    Rows are the QC PCA samples in ``scores.tsv`` order whose label belongs to
    a group with at least ``cv_folds`` labelled samples (as
    :func:`gwas_prs.methods.ancestry.structure.assign_ancestry` selects them); columns ``PC1`` …
    ``PCn`` (n = the forest's PCs) and ``label``. None when QC assigned no groups.
    """
    model_file = storage.join(silver_ancestry, "ancestry_model.json")
    assignments = storage.join(silver_ancestry, "assignments.tsv")
    if not (storage.exists(model_file) and storage.exists(assignments)):
        return None
    model = json.loads(storage.read_text(model_file))
    if "n_pcs" not in model:
        return None
    scores = pd.read_csv(storage.join(silver_ancestry, "scores.tsv"), sep="\t", dtype={"s": str})
    labels = pd.read_csv(assignments, sep="\t", dtype={"s": str, "label": str}).set_index("s")
    frame = scores.set_index("s").iloc[:, : int(model["n_pcs"])]
    frame["label"] = labels["label"].reindex(frame.index)
    frame = frame[frame["label"].notna()]
    counts = frame["label"].value_counts()
    usable = counts[counts >= int(model["cv_folds"])].index
    frame = frame[frame["label"].isin(usable)]
    settings = {
        "label_field": model["label_field"],
        "n_pcs": int(model["n_pcs"]),
        "min_probability": float(model["min_probability"]),
        "trees": FOREST_TREES,
    }
    return frame.reset_index(drop=True), settings


def assign_groups(
    reference: pd.DataFrame, pcs: pd.DataFrame, *, seed: int, min_probability: float
) -> pd.DataFrame:
    """Ancestry group of new samples with QC's forest, refitted on ``reference`` (same
    rows, order and seed give the same trees): ``ancestry`` (``other`` below
    ``min_probability``) and ``ancestry_probability``, indexed like ``pcs``."""
    from sklearn.ensemble import RandomForestClassifier

    columns = [c for c in reference.columns if c != "label"]
    forest = RandomForestClassifier(
        n_estimators=FOREST_TREES, random_state=seed, n_jobs=1, min_samples_leaf=1
    )
    forest.fit(reference[columns].to_numpy(dtype=float), reference["label"].astype(str).to_numpy())
    proba = forest.predict_proba(pcs[columns].to_numpy(dtype=float))
    best = proba.argmax(axis=1)
    probability = proba[np.arange(len(best)), best]
    assigned = np.where(probability >= min_probability, np.array(forest.classes_)[best], "other")
    return pd.DataFrame(
        {"ancestry": assigned, "ancestry_probability": probability}, index=pcs.index
    )


# --- what predict loads ------------------------------------------------------------


@dataclass
class ModelBundle:
    """A loaded, checked model folder."""

    folder: str
    schema: dict[str, Any]
    booster: Any
    baselines: list[LogisticBaseline]
    prs_weights: pd.DataFrame
    pca_loadings: pd.DataFrame
    prs_distribution: np.ndarray
    ancestry_reference: pd.DataFrame | None

    @property
    def features(self) -> list[str]:
        return list(self.schema["model_features"])

    @property
    def covariates(self) -> list[str]:
        """Covariates any of the models needs (the XGBoost model or a baseline)."""
        needed = set(self.features) | {f for b in self.baselines for f in b.features}
        return [c for c in self.schema["covariates"] if c in needed]


def load_model_bundle(folder: str) -> ModelBundle:
    """Read and cross-check a model folder.

    Raises
    ------
    InputError
        A file is missing or unreadable, or the files disagree (the feature
        schema lists other features than the model or the baselines use, a PRS
        threshold has no weights, fewer PCA loadings than PCs).
    """
    import xgboost as xgb

    folder = folder.rstrip("/")
    if not storage.is_dir(folder):
        raise InputError(f"{folder}: model folder not found; give RUN/gold/models/TRAIT (--model)")
    paths = {name: storage.join(folder, file) for name, file in MODEL_FILES.items()}
    missing = [MODEL_FILES[n] for n, p in paths.items() if not storage.exists(p)]
    if missing:
        raise InputError(
            f"{folder}: not a complete model folder (missing {', '.join(missing)}); "
            "re-run 'gwas-prs train' or copy the whole folder"
        )
    try:
        schema = json.loads(storage.read_text(paths["feature_schema"]))
        baselines_raw = json.loads(storage.read_text(paths["baselines"]))
    except json.JSONDecodeError as exc:
        raise InputError(f"{folder}: damaged JSON file ({exc}); re-run 'gwas-prs train'") from exc
    if schema.get("format") != SCHEMA_FORMAT:
        raise InputError(f"{paths['feature_schema']}: not a gwas-prs feature schema")
    booster = xgb.Booster()
    try:
        booster.load_model(paths["model"])
    except xgb.core.XGBoostError as exc:
        first = str(exc).strip().splitlines()[0]
        raise InputError(f"{paths['model']}: not an XGBoost model ({first})") from exc
    features = list(schema.get("model_features", []))
    if list(booster.feature_names or []) != features:
        raise InputError(
            f"{paths['feature_schema']}: feature schema mismatch — it lists "
            f"{', '.join(features) or 'no features'} but model.json was trained on "
            f"{', '.join(booster.feature_names or [])}; re-run 'gwas-prs train'"
        )
    roles = {c["name"]: c["role"] for c in schema["columns"]}
    baselines = [LogisticBaseline.from_dict(b) for b in baselines_raw["models"]]
    for name in features + [f for b in baselines for f in b.features]:
        if name not in roles:
            raise InputError(
                f"{paths['feature_schema']}: feature schema mismatch — '{name}' has no column entry; "
                "re-run 'gwas-prs train'"
            )
    weights = pd.read_csv(paths["prs_weights"], sep="\t", dtype={"chromosome": str})
    for name, role in roles.items():
        if role == "prs" and f"weight_{name.removeprefix('prs_')}" not in weights.columns:
            raise InputError(
                f"{paths['prs_weights']}: no weight_{name.removeprefix('prs_')} column for feature "
                f"{name}; re-run 'gwas-prs train'"
            )
    loadings = pd.read_csv(paths["pca_loadings"], sep="\t", dtype={"contig": str})
    n_pcs = sum(1 for r in roles.values() if r == "pc")
    if sum(c.startswith("loading_") for c in loadings.columns) < n_pcs:
        raise InputError(f"{paths['pca_loadings']}: fewer loadings than the model's {n_pcs} PCs")
    distribution = pd.read_csv(paths["prs_distribution"], sep="\t")["prs"].to_numpy(dtype=float)
    reference_path = storage.join(folder, ANCESTRY_REFERENCE)
    reference = (
        pd.read_csv(reference_path, sep="\t", dtype={"label": str})
        if storage.exists(reference_path)
        else None
    )
    return ModelBundle(
        folder=folder,
        schema=schema,
        booster=booster,
        baselines=baselines,
        prs_weights=weights,
        pca_loadings=loadings,
        prs_distribution=np.sort(distribution),
        ancestry_reference=reference,
    )
