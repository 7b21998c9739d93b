"""The model folder ``RUN/gold/models/TRAIT/``: what ``train`` saves so ``predict`` can score new people.

Files (all plain text/JSON; none is a pickle):

``model.json``
    The XGBoost booster (native JSON format), refitted on ``train + validation``
    with the number of trees early stopping chose.
``logistic_model.json``
    The penalised logistic regression (``format``: :data:`LOGISTIC_FORMAT`,
    ``model``: coefficients, intercept, ``C`` and the standardisation
    ``mean``/``sd`` of every input, :class:`gwas_prs.methods.model.training.LogisticBaseline`).
``feature_schema.json``
    The model's inputs in order (``model_features``), every feature's role
    (``prs``/``pc``/``covariate``), the PRS standardisation (``mean``/``sd`` of
    the raw score on ``train``), the ``logit_offset`` of XGBoost's imbalance
    correction, ``chosen_model`` (``xgboost`` or ``penalised_logistic``: what
    :meth:`ModelBundle.predict_probability` uses; absent in folders written before
    the choice existed, which means ``xgboost``), the threshold the prs stage
    chose (``best_threshold``), the reference genome, the ancestry settings; see
    :func:`gwas_prs.stages.train.run_train`.
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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gwas_prs.core import storage
from gwas_prs.core.errors import InputError
from gwas_prs.core.run_folder import PRS_LD_METHOD_WEIGHTS
from gwas_prs.engine.table_io import variant_frame_to_table, variant_table_to_frame
from gwas_prs.methods.dosage import alt_dosage_expr
from gwas_prs.methods.model.training import CHOSEN_MODELS, LogisticBaseline, xgb_probability

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
#: The prs stage's ancestry normalisation (pgsc_calc's Z_norm1/Z_norm2), copied by train.
ANCESTRY_ADJUSTMENT = "ancestry_adjustment.json"
#: The training samples' raw scores and ancestry groups: percentiles within a group.
ADJUSTMENT_REFERENCE = "ancestry_adjustment_reference.tsv"
#: The penalised logistic model (required when it is the chosen model).
LOGISTIC_MODEL = "logistic_model.json"
SCHEMA_FORMAT = "gwas-prs model feature schema"
LOGISTIC_FORMAT = "gwas-prs logistic model"
#: The forest of :func:`gwas_prs.methods.ancestry.structure.assign_ancestry`.
FOREST_TREES = 200


# --- what train exports (Hail) -------------------------------------------------


def prs_weights_frame(
    prs_folder: str, thresholds: list[float], methods: Sequence[str] = ()
) -> pd.DataFrame:
    """The prs stage's weights as ``chromosome``, ``position``, ``ref``, ``alt``,
    ``effect_is_alt``, ``weight_<t>`` (from ``weights_by_threshold.tsv``, or
    ``harmonised_weights.tsv`` when the prs stage scored a ``--weights`` file), and
    ``weight_<method>`` of the LD-based ``methods`` (``weights_ld_methods.tsv``;
    0 where a variant is not in one of the two)."""
    by_threshold = storage.join(prs_folder, "weights_by_threshold.tsv")
    keys = ["chromosome", "position", "ref", "alt"]
    if storage.exists(by_threshold):
        table = storage.read_table(by_threshold, sep="\t", dtype={"chromosome": str})
        out = table[keys].copy()
        for t in thresholds:
            out[f"weight_{t:g}"] = table[f"weight_{t:g}"].astype(float)
        if methods:
            ld = storage.read_table(
                storage.join(prs_folder, PRS_LD_METHOD_WEIGHTS), sep="\t", dtype={"chromosome": str}
            )
            wanted = [f"weight_{m}" for m in methods]
            out = out.merge(ld[[*keys, *wanted]], on=keys, how="outer", sort=False)
            out[[c for c in out.columns if c.startswith("weight_")]] = out[
                [c for c in out.columns if c.startswith("weight_")]
            ].fillna(0.0)
        out.insert(4, "effect_is_alt", True)
        return out
    harmonised = storage.join(prs_folder, "harmonised_weights.tsv")
    if not storage.exists(harmonised):
        raise InputError(f"{prs_folder}: no weights_by_threshold.tsv or harmonised_weights.tsv")
    table = storage.read_table(harmonised, sep="\t", dtype={"contig": str})
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
    genotypes, or of the dosages of imputed input, as :func:`gwas_prs.methods.prs.scoring.polygenic_scores` imputes)."""
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
    rows = mt.annotate_rows(alt_af=hl.agg.mean(alt_dosage_expr(mt)) / 2).rows()
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
    scores = storage.read_table(
        storage.join(silver_ancestry, "scores.tsv"), sep="\t", dtype={"s": str}
    )
    labels = storage.read_table(assignments, sep="\t", dtype={"s": str, "label": str}).set_index(
        "s"
    )
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


# --- what train saves -------------------------------------------------------------


def model_files(
    *,
    schema: dict[str, Any],
    booster: Any,
    logistic: LogisticBaseline,
    baselines: list[LogisticBaseline],
) -> dict[str, bytes]:
    """The bytes of ``model.json``, ``logistic_model.json``, ``baselines.json`` and
    ``feature_schema.json`` by file name (the train stage writes them; ``schema``
    must name the ``chosen_model``)."""
    if schema.get("chosen_model") not in CHOSEN_MODELS:
        raise ValueError(f"feature schema: chosen_model must be one of {', '.join(CHOSEN_MODELS)}")

    def text(value: Any) -> bytes:
        return (json.dumps(value, indent=2) + "\n").encode("utf-8")

    return {
        MODEL_FILES["model"]: bytes(booster.save_raw("json")),
        LOGISTIC_MODEL: text({"format": LOGISTIC_FORMAT, "model": logistic.to_dict()}),
        MODEL_FILES["baselines"]: text({"models": [b.to_dict() for b in baselines]}),
        MODEL_FILES["feature_schema"]: text(schema),
    }


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
    logistic: LogisticBaseline | None = None
    #: ``AncestryAdjustment.to_dict()`` of the prs stage's ancestry normalisation, if any
    adjustment: dict[str, Any] | None = None
    #: ``sample_id``, ``group`` and the raw scores of the training samples
    adjustment_reference: pd.DataFrame | None = None

    @property
    def features(self) -> list[str]:
        return list(self.schema["model_features"])

    @property
    def chosen(self) -> str:
        """The model ``predict`` reports as ``probability`` (one of ``CHOSEN_MODELS``)."""
        return str(self.schema.get("chosen_model", "xgboost"))

    @property
    def covariates(self) -> list[str]:
        """Covariates any of the models needs (XGBoost, the penalised logistic or a baseline)."""
        logistic = self.logistic.features if self.logistic is not None else []
        needed = (
            set(self.features) | set(logistic) | {f for b in self.baselines for f in b.features}
        )
        return [c for c in self.schema["covariates"] if c in needed]

    def predict_probability(self, features: pd.DataFrame) -> np.ndarray:
        """P(case) of the chosen model for the rows of ``features`` (columns named as in
        the feature table: standardised ``prs_*``, ``PC1`` …, covariates; NaN allowed
        in covariates)."""
        return self.model_probabilities(features)[self.chosen]

    def model_probabilities(self, features: pd.DataFrame) -> dict[str, np.ndarray]:
        """P(case) of every saved model: ``xgboost``, ``penalised_logistic`` (when saved)
        and each baseline by name."""
        out = {
            "xgboost": xgb_probability(self.booster, features, float(self.schema["logit_offset"]))
        }
        if self.logistic is not None:
            out["penalised_logistic"] = self.logistic.probability(features)
        for baseline in self.baselines:
            out[baseline.name] = baseline.probability(features)
        return out


def storage_bytes(path: str) -> bytes:
    """The bytes of a local or remote (``gs://``) file."""
    with storage.open_binary(path, "rb") as handle:
        return bytes(handle.read())


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
        # from bytes: XGBoost reads local files only, the folder may be on gs://
        booster.load_model(bytearray(storage_bytes(paths["model"])))
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
    logistic = _load_logistic(folder, schema)
    extra = logistic.features if logistic is not None else []
    for name in features + extra + [f for b in baselines for f in b.features]:
        if name not in roles:
            raise InputError(
                f"{paths['feature_schema']}: feature schema mismatch — '{name}' has no column entry; "
                "re-run 'gwas-prs train'"
            )
    weights = storage.read_table(paths["prs_weights"], sep="\t", dtype={"chromosome": str})
    for name, role in roles.items():
        if role == "prs" and f"weight_{name.removeprefix('prs_')}" not in weights.columns:
            raise InputError(
                f"{paths['prs_weights']}: no weight_{name.removeprefix('prs_')} column for feature "
                f"{name}; re-run 'gwas-prs train'"
            )
    loadings = storage.read_table(paths["pca_loadings"], sep="\t", dtype={"contig": str})
    n_pcs = sum(1 for r in roles.values() if r == "pc")
    if sum(c.startswith("loading_") for c in loadings.columns) < n_pcs:
        raise InputError(f"{paths['pca_loadings']}: fewer loadings than the model's {n_pcs} PCs")
    distribution = storage.read_table(paths["prs_distribution"], sep="\t")["prs"].to_numpy(
        dtype=float
    )
    reference_path = storage.join(folder, ANCESTRY_REFERENCE)
    reference = (
        storage.read_table(reference_path, sep="\t", dtype={"label": str})
        if storage.exists(reference_path)
        else None
    )
    adjustment = None
    adjustment_reference = None
    if storage.exists(storage.join(folder, ANCESTRY_ADJUSTMENT)):
        adjustment = json.loads(storage.read_text(storage.join(folder, ANCESTRY_ADJUSTMENT)))
        if storage.exists(storage.join(folder, ADJUSTMENT_REFERENCE)):
            adjustment_reference = storage.read_table(
                storage.join(folder, ADJUSTMENT_REFERENCE),
                sep="\t",
                dtype={"sample_id": str, "group": str},
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
        logistic=logistic,
        adjustment=adjustment,
        adjustment_reference=adjustment_reference,
    )


def _load_logistic(folder: str, schema: dict[str, Any]) -> LogisticBaseline | None:
    """``logistic_model.json`` (None when absent and not the chosen model)."""
    path = storage.join(folder, LOGISTIC_MODEL)
    chosen = schema.get("chosen_model", "xgboost")
    if chosen not in CHOSEN_MODELS:
        raise InputError(
            f"{storage.join(folder, MODEL_FILES['feature_schema'])}: chosen_model '{chosen}' "
            f"is none of {', '.join(CHOSEN_MODELS)}; re-run 'gwas-prs train'"
        )
    if not storage.exists(path):
        if chosen == "penalised_logistic":
            raise InputError(
                f"{folder}: not a complete model folder (missing {LOGISTIC_MODEL}, the chosen "
                "model); re-run 'gwas-prs train' or copy the whole folder"
            )
        return None
    try:
        raw = json.loads(storage.read_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: damaged JSON file ({exc}); re-run 'gwas-prs train'") from exc
    if not isinstance(raw, dict) or raw.get("format") != LOGISTIC_FORMAT:
        raise InputError(f"{path}: not a gwas-prs logistic model")
    model = LogisticBaseline.from_dict(raw["model"])
    if model.features != list(schema.get("model_features", [])):
        raise InputError(
            f"{path}: feature schema mismatch — the logistic model uses "
            f"{', '.join(model.features) or 'no features'}; re-run 'gwas-prs train'"
        )
    return model
