"""The prs stage's LD-based methods (LDpred2-auto/-inf/-grid, lassosum2): inputs,
scoring on either engine, the choice of grid points on validation, the weight files.

The variants are every QC-passed variant with summary statistics (this run's GWAS,
or the harmonised external file); the LD is that of the samples the method may see
(``discovery`` for this run's GWAS, ``train`` with external summary statistics). One
LD matrix serves every method; every target sample gets every score in one pass.
The grid methods' points are scored too, and the point with the best incremental
metric over covariates + PCs on ``validation`` (models fitted on ``train``; the first
in grid order among points within :data:`GRID_TIE` of the best) becomes the method's
score (``prs_ldpred2_grid``, ``prs_lassosum2``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from gwas_prs.core import storage
from gwas_prs.core.run_folder import PRS_LD_METHOD_WEIGHTS
from gwas_prs.formats.external_sumstats import (
    HarmonisedSumstats,
    harmonise_sumstats,
    read_external_sumstats,
)
from gwas_prs.formats.silver_bed import SilverBed
from gwas_prs.methods.prs.evaluation import evaluate_thresholds
from gwas_prs.methods.prs.ld_methods import (
    LD_METHODS,
    LdMethodFit,
    LdMethodSettings,
    bed_ld_matrix,
    fit_ld_methods,
)

logger = logging.getLogger(__name__)

KEYS = ["chromosome", "position", "ref", "alt"]
KEY_COLUMNS = ("chromosome", "position", "ref", "alt")
#: Grid points whose validation metric is this close to the best count as tied.
GRID_TIE = 1e-3


def column_name(method: str) -> str:
    """``ldpred2-auto`` → ``ldpred2_auto`` (the suffix of ``prs_``/``weight_`` columns)."""
    return method.replace("-", "_")


def own_gwas_inputs(sumstats_path: str, variants: pd.DataFrame) -> HarmonisedSumstats:
    """This run's GWAS (``sumstats.tsv.gz``, its sidecar's case/control counts giving the
    effective N of a binary trait) on the cohort ``variants``: every tested variant,
    palindromic ones included (same strand by construction)."""
    read = read_external_sumstats(sumstats_path, format="gwas-ssf")
    return harmonise_sumstats(read, variants, allow_palindromic=True, min_overlap=0.0)


def ld_variant_frame(harmonised: HarmonisedSumstats, order: pd.DataFrame) -> pd.DataFrame:
    """The variants of ``harmonised`` in the cohort's (genome) order: ``order`` has
    ``chromosome``, ``position``, ``ref``, ``alt`` (the silver .bed's or the
    MatrixTable's rows); returns those columns, ``row`` (index into ``order``),
    ``beta``, ``se``, ``n``."""
    frame = harmonised.frame.rename(columns={"contig": "chromosome"})
    usable = np.isfinite(frame["beta"]) & (frame["se"] > 0) & (frame["n"] > 0)
    cohort = order[KEYS].reset_index(drop=True).assign(row=np.arange(len(order)))
    joined = cohort.merge(frame[usable][[*KEYS, "beta", "se", "n"]], on=KEYS, how="inner")
    return joined.sort_values("row").reset_index(drop=True)


def fit_on_ld(
    corr: Any,
    variants: pd.DataFrame,
    methods: tuple[str, ...],
    settings: LdMethodSettings,
    ld_sample_size: int | None = None,
) -> tuple[LdMethodFit, npt.NDArray[np.float64], list[str]]:
    """The methods fitted on ``corr``; their weights as one ``(m, K)`` matrix and the
    names of its columns (``ldpred2-auto``, ``ldpred2-grid#3``, ``lassosum2#17``, …;
    diverged grid points left out)."""
    fit = fit_ld_methods(
        corr,
        variants["beta"].to_numpy(dtype=np.float64),
        variants["se"].to_numpy(dtype=np.float64),
        variants["n"].to_numpy(dtype=np.float64),
        tuple(m for m in methods if m in LD_METHODS),
        settings,
        ld_sample_size,
    )
    columns: list[npt.NDArray[np.float64]] = []
    names: list[str] = []
    for method, weights in fit.weights.items():
        matrix = weights[:, None] if weights.ndim == 1 else weights
        for k in range(matrix.shape[1]):
            if np.all(np.isfinite(matrix[:, k])):
                columns.append(matrix[:, k])
                names.append(method if weights.ndim == 1 else f"{method}#{k}")
    stacked = np.column_stack(columns) if columns else np.zeros((len(variants), 0))
    return fit, stacked, names


def bed_ld_method_scores(
    silver: SilverBed,
    variants: pd.DataFrame,
    ld_samples: list[str],
    targets: list[str],
    methods: tuple[str, ...],
    settings: LdMethodSettings,
) -> tuple[pd.DataFrame, LdMethodFit, npt.NDArray[np.float64], list[str], dict[str, float]]:
    """The numpy engine: LD from the silver .bed, the samplers, every target scored."""
    from gwas_prs.methods.prs.prs_local import bed_polygenic_scores

    rows = variants["row"].to_numpy(dtype=np.int64)
    t = time.monotonic()
    corr = bed_ld_matrix(silver, rows, ld_samples, settings.window_kb)
    timings = {"ld_matrix_s": round(time.monotonic() - t, 3), "ld_nonzero": float(corr.nnz)}
    fit, weights, names = fit_on_ld(corr, variants, methods, settings, len(ld_samples))
    scored = bed_polygenic_scores(silver, rows, weights, targets)
    scores = pd.DataFrame(np.vstack(list(scored["scores"])), index=scored.index, columns=names)
    return scores, fit, weights, names, timings


def hail_ld_method_scores(
    mt: Any,
    variants: pd.DataFrame,
    ld_role: str,
    methods: tuple[str, ...],
    settings: LdMethodSettings,
) -> tuple[pd.DataFrame, LdMethodFit, npt.NDArray[np.float64], list[str], dict[str, float]]:
    """The Hail engine: LD with BlockMatrix (:func:`gwas_prs.methods.prs.ld_hail.hail_ld_matrix`),
    the samplers on the driver, every target scored with
    :func:`gwas_prs.methods.prs.scoring.polygenic_scores`. ``mt`` has the column field
    ``_role``; ``variants`` its rows' keys in key order."""
    import hail as hl

    from gwas_prs.engine.table_io import variant_frame_to_table
    from gwas_prs.methods.prs.ld_hail import hail_ld_matrix
    from gwas_prs.methods.prs.scoring import polygenic_scores

    keyed = variant_frame_to_table(
        variants[KEYS].assign(index=np.arange(len(variants))),
        {"index": hl.tint64},
        mt.locus.dtype.reference_genome,
        columns=KEY_COLUMNS,
    )
    chosen = mt.filter_rows(hl.is_defined(keyed[mt.row_key]))
    t = time.monotonic()
    ld_mt = chosen.filter_cols(chosen._role == ld_role)
    corr = hail_ld_matrix(ld_mt, settings.window_kb)
    timings = {"ld_matrix_s": round(time.monotonic() - t, 3), "ld_nonzero": float(corr.nnz)}
    fit, weights, names = fit_on_ld(corr, variants, methods, settings, ld_mt.count_cols())
    table = variant_frame_to_table(
        variants[KEYS].assign(**{f"w{k}": weights[:, k] for k in range(len(names))}),
        {f"w{k}": hl.tfloat64 for k in range(len(names))},
        mt.locus.dtype.reference_genome,
        columns=KEY_COLUMNS,
    )
    target = chosen.filter_cols(hl.literal({"train", "validation", "test"}).contains(chosen._role))
    row = table[target.row_key]
    scored = polygenic_scores(
        target, hl.array([row[f"w{k}"] for k in range(len(names))]), hl.bool(True)
    )
    frame = scored.to_pandas().set_index("s")
    scores = pd.DataFrame(np.vstack(list(frame["scores"])), index=frame.index, columns=names)
    return scores, fit, weights, names, timings


def choose_grid_points(
    scores: pd.DataFrame,
    fit: LdMethodFit,
    roles: pd.Series,
    y: pd.Series,
    covariates: pd.DataFrame,
    *,
    binary: bool,
) -> tuple[dict[str, str], dict[str, list[dict[str, Any]]]]:
    """For each grid method, the column (``method#k``) with the best incremental metric
    on validation (models fitted on train); also the validation table of every point."""
    chosen: dict[str, str] = {}
    tables: dict[str, list[dict[str, Any]]] = {}
    aligned = roles.reindex(scores.index)
    for method in ("ldpred2-grid", "lassosum2"):
        points = [c for c in scores.columns if c.startswith(f"{method}#")]
        if not points:
            continue
        table = evaluate_thresholds(
            y.reindex(scores.index),
            covariates.reindex(scores.index),
            scores[points],
            list(range(len(points))),
            binary=binary,
            fit_on=aligned == "train",
            evaluate_on=aligned == "validation",
        )
        grid = fit.grids[method].iloc[[int(c.split("#")[1]) for c in points]].reset_index(drop=True)
        table = pd.concat([grid, table.drop(columns=["threshold"])], axis=1)
        values = table["incremental"].to_numpy(dtype=float)
        best = 0
        if np.isfinite(values).any():
            # the first point in grid order within GRID_TIE of the best: ties (an AUC on
            # a few hundred samples moves in steps of 1/(cases × controls)) and float
            # noise never decide which point is chosen
            near = np.flatnonzero(values >= np.nanmax(values) - GRID_TIE)
            best = int(near[0])
        chosen[method] = points[best]
        table["chosen"] = np.arange(len(points)) == best
        tables[method] = [
            {str(k): v for k, v in record.items()}
            for record in table.replace({np.nan: None}).to_dict(orient="records")
        ]
    return chosen, tables


def final_method_columns(
    scores: pd.DataFrame, weights: npt.NDArray[np.float64], names: list[str], chosen: dict[str, str]
) -> tuple[pd.DataFrame, dict[str, npt.NDArray[np.float64]]]:
    """One score and weight vector per method: ``prs_<method>`` columns and weights."""
    out = pd.DataFrame(index=scores.index)
    method_weights: dict[str, npt.NDArray[np.float64]] = {}
    for method in LD_METHODS:
        column = chosen.get(method, method)
        if column not in names:
            continue
        out[f"prs_{column_name(method)}"] = scores[column]
        method_weights[method] = weights[:, names.index(column)]
    return out, method_weights


def write_ld_method_weights(
    tmp: str,
    variants: pd.DataFrame,
    method_weights: dict[str, npt.NDArray[np.float64]],
    *,
    trait: str,
    genome_build: str,
    settings: LdMethodSettings,
) -> list[str]:
    """``weights_ld_methods.tsv`` (every method's weight per variant) and one PGS
    Catalog scoring file per method (``weights_<method>.txt.gz``, non-zero weights)."""
    from gwas_prs.formats.pgs_catalog import ScoringMetadata, write_scoring_file

    table = variants[KEYS].copy()
    for method, weights in method_weights.items():
        table[f"weight_{column_name(method)}"] = weights
    storage.write_table(storage.join(tmp, PRS_LD_METHOD_WEIGHTS), table, sep="\t", index=False)
    written = [PRS_LD_METHOD_WEIGHTS]
    for method, weights in method_weights.items():
        nonzero = weights != 0
        frame = pd.DataFrame(
            {
                "chr_name": variants.loc[nonzero, "chromosome"].to_numpy(),
                "chr_position": variants.loc[nonzero, "position"].to_numpy(),
                "effect_allele": variants.loc[nonzero, "alt"].to_numpy(),
                "other_allele": variants.loc[nonzero, "ref"].to_numpy(),
                "effect_weight": weights[nonzero],
            }
        )
        name = f"weights_{column_name(method)}.txt.gz"
        write_scoring_file(
            frame,
            storage.join(tmp, name),
            ScoringMetadata(
                pgs_name=f"gwas-prs_{trait}_{column_name(method)}",
                trait_reported=trait,
                genome_build=genome_build,
                extra={"method": method, "ld_window_kb": f"{settings.window_kb:g}"},
            ),
        )
        written.append(name)
    return written
