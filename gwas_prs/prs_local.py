"""Clumping candidates and polygenic scores from the silver .bed kept by qc (local mode).

In Hail local mode the qc stage leaves the silver genotypes as a PLINK 1
fileset (``RUN/silver/genotypes.plink/genotypes.*``: rows in the silver
MatrixTable's order, samples in its column order). The prs stage then needs no
Hail pass over the genotypes: the clumping candidates × discovery samples are
cut out of it in memory for :func:`gwas_prs.ld_local.banded_edges`, and the
scores are matrix products of the index variants' ALT dosages of the target
samples with the per-threshold weights. On the 2,504 × 200k benchmark cohort
this replaces a .bed export of the discovery samples and a scoring pass (two
full reads of the silver MatrixTable, ~30 s on 2 cores).

Same rules as the Hail path: the candidates and their LD edges are those of
:func:`gwas_prs.clumping.clump_candidates` (identical index variants, tested),
and the scores those of :func:`gwas_prs.scoring.polygenic_scores` (missing
calls mean-imputed with the ALT frequency among the scored samples; equal to
floating-point summation order, tested).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from gwas_prs.clumping import ClumpedCandidates, ClumpParameters, greedy_clump
from gwas_prs.ld_local import (
    banded_edges,
    locus_windows_np,
    open_bed,
    read_bed_rows,
    subset_bed,
)
from gwas_prs.local_threads import map_blocks

logger = logging.getLogger(__name__)

#: Variants decoded at a time when scoring.
SCORE_CHUNK = 4096


@dataclass(frozen=True)
class SilverBed:
    """The silver genotypes as a memory-mapped .bed with its variants and samples.

    ``variants`` has ``chromosome`` (str), ``position`` (int64), ``ref``, ``alt``
    (str), one row per .bed row; ``samples`` the sample IDs in .bed column order.
    """

    bed: npt.NDArray[np.uint8]
    n_samples: int
    variants: pd.DataFrame
    samples: list[str]


def open_silver_bed(folder: str, n_samples: int, n_variants: int) -> SilverBed | None:
    """The fileset ``folder/genotypes.bed/.bim/.fam`` written by the qc stage, or
    None when it is missing or does not have the silver MatrixTable's shape
    (``n_samples`` × ``n_variants``, from the qc record)."""
    prefix = os.path.join(folder, "genotypes")
    if not all(os.path.isfile(prefix + ext) for ext in (".bed", ".bim", ".fam")):
        return None
    bim = pd.read_csv(
        prefix + ".bim",
        sep="\t",
        header=None,
        names=["chromosome", "varid", "cm", "position", "alt", "ref"],
        dtype={"chromosome": str, "varid": str, "cm": str, "alt": str, "ref": str},
        keep_default_na=False,
    )
    fam = pd.read_csv(prefix + ".fam", sep=r"\s+", header=None, dtype=str, keep_default_na=False)
    expected_bytes = 3 + n_variants * ((n_samples + 3) // 4)
    if (len(fam), len(bim)) != (n_samples, n_variants) or os.path.getsize(
        prefix + ".bed"
    ) != expected_bytes:
        logger.warning("%s does not match the silver MatrixTable; using Hail", prefix)
        return None
    bed, _ = open_bed(prefix, shape=(n_variants, n_samples))
    variants = bim[["chromosome", "position", "ref", "alt"]].copy()
    variants["position"] = variants["position"].astype(np.int64)
    return SilverBed(bed, n_samples, variants, fam[1].tolist())


def _column_indices(silver: SilverBed, sample_ids: list[str]) -> npt.NDArray[np.int64]:
    where = {s: k for k, s in enumerate(silver.samples)}
    return np.array([where[s] for s in sample_ids], dtype=np.int64)


def bed_clump_candidates(
    silver: SilverBed,
    sumstats: pd.DataFrame,
    discovery: list[str],
    params: ClumpParameters,
) -> tuple[ClumpedCandidates, npt.NDArray[np.int64]]:
    """:func:`gwas_prs.clumping.clump_candidates` on the silver .bed.

    ``sumstats``: ``chromosome``, ``position``, ``ref``, ``alt``, ``p_value``,
    ``beta`` (exact floats) of the tested variants; ``discovery``: the LD
    reference samples. Candidates are the silver variants with a p-value
    ``<= max(p1, p2)``, in silver (genome) order; ``beta`` is carried as the
    value ``"beta"``. Also returns each candidate's .bed row.
    """
    params.validate()
    keys = ["chromosome", "position", "ref", "alt"]
    joined = silver.variants.merge(
        sumstats[[*keys, "p_value", "beta"]], on=keys, how="left", validate="one_to_one"
    )
    keep = joined["p_value"].notna().to_numpy() & (
        joined["p_value"].to_numpy(dtype=np.float64) <= max(params.p1, params.p2)
    )
    rows = np.flatnonzero(keep).astype(np.int64)
    chosen = joined.iloc[rows]
    n = len(rows)
    logger.info("clumping %d candidate variants (r2 >= %s, %s kb)", n, params.r2, params.kb)
    contigs = chosen["chromosome"].to_numpy(dtype=object)
    positions = chosen["position"].to_numpy(dtype=np.int64)
    p_values = np.ascontiguousarray(chosen["p_value"].to_numpy(dtype=np.float64))
    beta = np.ascontiguousarray(chosen["beta"].to_numpy(dtype=np.float64))
    if n:
        columns = _column_indices(silver, discovery)
        bed = subset_bed(silver.bed, silver.n_samples, rows, columns)
        starts, stops = locus_windows_np(contigs, positions, params.kb * 1000)
        edges_i, edges_j = banded_edges(bed, len(columns), starts, stops, params.r2)
    else:
        edges_i = edges_j = np.zeros(0, dtype=np.int64)
    result = greedy_clump(p_values, edges_i, edges_j, params)
    candidates = ClumpedCandidates(
        contigs,
        positions,
        chosen["ref"].tolist(),
        chosen["alt"].tolist(),
        p_values,
        {"beta": beta},
        result,
    )
    return candidates, rows


def bed_polygenic_scores(
    silver: SilverBed,
    rows: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float64],
    targets: list[str],
) -> pd.DataFrame:
    """Scores of the ``targets`` (sorted by ID, as Hail's column table) from the
    ALT dosages of .bed ``rows`` and ``weights`` (one row per variant, one column
    per threshold, for the ALT allele): a frame indexed by ``s`` with ``scores``
    (one array per sample) and ``n_variants``, like
    :func:`gwas_prs.scoring.polygenic_scores` ``.to_pandas()``."""
    ordered = sorted(targets)
    columns = _column_indices(silver, ordered)
    n_thresholds = weights.shape[1]

    def block(a: int) -> npt.NDArray[np.float64]:
        b = min(a + SCORE_CHUNK, len(rows))
        picked = np.asarray(silver.bed[rows[a:b]])
        g = read_bed_rows(picked, 0, len(picked), silver.n_samples)[:, columns]
        called = g >= 0
        dosage = np.where(called, g, 0).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            alt_af = dosage.sum(axis=1) / called.sum(axis=1) / 2
        dosage = np.where(called, dosage, (2.0 * alt_af)[:, None])
        return np.asarray(dosage.T @ np.nan_to_num(weights[a:b], nan=0.0))

    parts = list(map_blocks(block, range(0, len(rows), SCORE_CHUNK)))
    total = np.sum(parts, axis=0) if parts else np.zeros((len(ordered), n_thresholds))
    frame = pd.DataFrame(
        {"scores": list(total), "n_variants": np.full(len(ordered), len(rows), dtype=np.int64)},
        index=pd.Index(ordered, name="s"),
    )
    return frame
