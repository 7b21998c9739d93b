"""Clumping candidates and polygenic scores from the silver .bed kept by qc (local mode).

In Hail local mode the qc stage leaves the silver genotypes as a PLINK 1
fileset (:mod:`gwas_prs.formats.silver_bed`). The prs stage with GWAS weights then
starts no Hail at all: the summary statistics come from ``sumstats.tsv.gz``
(:func:`sumstats_for_clumping`, bit-exact), the clumping candidates ×
discovery samples are cut out of the .bed in memory for
:func:`gwas_prs.methods.ld_local.banded_edges`, and the scores are matrix products of
the index variants' ALT dosages of the target samples with the per-threshold
weights (no .bed export of the discovery samples, no scoring pass, no Hail start).

Same rules as the Hail path: the candidates and their LD edges are those of
:func:`gwas_prs.methods.prs.clumping.clump_candidates` (identical index variants, tested),
and the scores those of :func:`gwas_prs.methods.prs.scoring.polygenic_scores` (missing
calls mean-imputed with the ALT frequency among the scored samples; equal to
floating-point summation order, tested).
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt
import pandas as pd

from gwas_prs.engine.local_threads import map_blocks
from gwas_prs.formats.plink_bed import subset_bed
from gwas_prs.formats.silver_bed import SilverBed, column_indices, silver_dosage_list
from gwas_prs.methods.ld_local import banded_dosage_edges, banded_edges, locus_windows_np
from gwas_prs.methods.prs.clumping import ClumpedCandidates, ClumpParameters, greedy_clump

logger = logging.getLogger(__name__)

#: Variants decoded at a time when scoring.
SCORE_CHUNK = 4096


def sumstats_for_clumping(path: str, contigs: list[str]) -> pd.DataFrame:
    """The GWAS stage's ``sumstats.tsv.gz`` as the frame :func:`bed_clump_candidates`
    takes: ``chromosome`` (the cohort's contig names, from ``contigs``),
    ``position`` (int64), ``ref``, ``alt``, ``p_value`` and ``beta`` (float64).

    The file is written with shortest round-trip float text and read back with
    round-trip parsing, so ``p_value`` and ``beta`` are bit-identical to
    ``sumstats.ht`` (tested); no Hail is needed. GWAS-SSF integer chromosome
    codes are mapped back to the names in ``contigs`` (``1``/``chr1``, ``X``…).

    Raises
    ------
    InputError
        The file is missing or malformed, or names a chromosome absent from ``contigs``.
    """
    from gwas_prs.core.errors import InputError
    from gwas_prs.formats.sumstats import CODE_NAMES, chromosome_codes, read_gwas_ssf

    frame = read_gwas_ssf(path)
    names = pd.Series(sorted(set(contigs)), dtype=str)
    by_name = dict(
        zip(
            [CODE_NAMES.get(int(c), str(int(c))) for c in chromosome_codes(names, path)],
            names,
            strict=True,
        )
    )
    chromosome = frame["chromosome"].map(by_name)
    if chromosome.isna().any():
        row = int(np.flatnonzero(chromosome.isna().to_numpy())[0])
        raise InputError(
            f"{path}:{row + 2}: chromosome {frame['chromosome'].iloc[row]} is not in the "
            "cohort; the file does not belong to this run, re-run gwas"
        )
    return pd.DataFrame(
        {
            "chromosome": chromosome.astype(str),
            "position": frame["base_pair_location"].astype(np.int64),
            "ref": frame["other_allele"].astype(str),
            "alt": frame["effect_allele"].astype(str),
            "p_value": frame["p_value"].astype(np.float64),
            "beta": frame["beta"].astype(np.float64),
        }
    )


def bed_clump_candidates(
    silver: SilverBed,
    sumstats: pd.DataFrame,
    discovery: list[str],
    params: ClumpParameters,
) -> tuple[ClumpedCandidates, npt.NDArray[np.int64]]:
    """:func:`gwas_prs.methods.prs.clumping.clump_candidates` on the silver .bed.

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
        columns = column_indices(silver, discovery)
        starts, stops = locus_windows_np(contigs, positions, params.kb * 1000)
        if silver.pgen is not None:  # imputed: r² of the dosages, as plink2 on dosage data

            def dosages(a: int, b: int) -> npt.NDArray[np.float64]:
                return silver_dosage_list(silver, rows[a:b])[:, columns]

            edges_i, edges_j = banded_dosage_edges(dosages, stops, params.r2)
        else:
            bed = subset_bed(silver.bed, silver.n_samples, rows, columns)
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
    :func:`gwas_prs.methods.prs.scoring.polygenic_scores` ``.to_pandas()``."""
    ordered = sorted(targets)
    columns = column_indices(silver, ordered)
    n_thresholds = weights.shape[1]

    def block(a: int) -> npt.NDArray[np.float64]:
        b = min(a + SCORE_CHUNK, len(rows))
        g = silver_dosage_list(silver, rows[a:b])[:, columns]  # NaN = missing
        called = ~np.isnan(g)
        dosage = np.where(called, g, 0.0)
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
