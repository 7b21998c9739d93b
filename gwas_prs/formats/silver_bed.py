"""The silver genotypes kept by qc as a PLINK 1 .bed (Hail local mode).

In local mode the qc stage leaves the silver MatrixTable's genotypes as
``RUN/silver/genotypes.plink/genotypes.bed/.bim/.fam`` (rows in the silver
row order, samples in its column order), written by the .bed export its
frequency step does anyway. gwas (the logistic Wald fits) and prs (clumping LD,
scoring) then read genotypes from it in numpy instead of exporting them from
the MatrixTable again. :func:`kept_silver_bed` is how a stage asks for it: it
answers ``None`` (use Hail) for a ``gs://`` run folder, a cluster, or a file set
that does not have the silver MatrixTable's shape.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from gwas_prs.core.run_folder import RunFolder, stage_record
from gwas_prs.engine.hail_context import HailConfig
from gwas_prs.engine.switch import numpy_engine
from gwas_prs.formats.plink_bed import open_bed, read_bim

logger = logging.getLogger(__name__)


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
    bim = read_bim(prefix).rename(columns={"contig": "chromosome"})
    fam = pd.read_csv(prefix + ".fam", sep=r"\s+", header=None, dtype=str, keep_default_na=False)
    expected_bytes = 3 + n_variants * ((n_samples + 3) // 4)
    if (len(fam), len(bim)) != (n_samples, n_variants) or os.path.getsize(
        prefix + ".bed"
    ) != expected_bytes:
        logger.warning("%s does not match the silver MatrixTable; using Hail", prefix)
        return None
    bed, _ = open_bed(prefix, shape=(n_variants, n_samples))
    variants = bim[["chromosome", "position", "ref", "alt"]].copy()
    return SilverBed(bed, n_samples, variants, fam[1].tolist())


def write_silver_bed(mt: Any, prefix: str) -> None:
    """Write ``mt``'s genotypes as the silver PLINK 1 fileset ``prefix``.bed/.bim/.fam
    (variant IDs = rsid, ``.`` where missing), in ``mt``'s row and column order."""
    import hail as hl

    from gwas_prs.formats.plink_bed import export_bed

    export_bed(mt, prefix, varid=hl.or_else(mt.rsid, ".") if "rsid" in mt.row else hl.str("."))


def kept_silver_bed(run: RunFolder, hail: HailConfig) -> SilverBed | None:
    """The silver .bed of a local run folder when the stage runs the numpy engine
    (:mod:`gwas_prs.engine.switch`) and qc kept one matching silver; else None."""
    del hail  # the engine of the stage in progress decides
    if run.is_remote() or not numpy_engine():
        return None
    qc = stage_record(run, "qc")
    if qc is None or "silver_bed" not in qc.outputs:
        return None
    return open_silver_bed(
        run.silver_bed, int(qc.counts["samples_out"]), int(qc.counts["variants_out"])
    )


def column_indices(silver: SilverBed, sample_ids: list[str]) -> npt.NDArray[np.int64]:
    """The .bed columns of ``sample_ids``, in the order given.

    Raises
    ------
    KeyError
        A sample that is not in the .bed.
    """
    where = {s: k for k, s in enumerate(silver.samples)}
    return np.array([where[s] for s in sample_ids], dtype=np.int64)
