"""The silver genotypes kept by qc as a PLINK 1 .bed (Hail local mode).

In local mode the qc stage leaves the silver MatrixTable's genotypes as
``RUN/silver/genotypes.plink/genotypes.bed/.bim/.fam`` (rows in the silver
row order, samples in its column order), written by the .bed export its
frequency step does anyway. gwas (the logistic Wald fits) and prs (clumping LD,
scoring) then read genotypes from it in numpy instead of exporting them from
the MatrixTable again. :func:`kept_silver_bed` is how a stage asks for it: it
answers ``None`` (use Hail) for a ``gs://`` run folder, a cluster, or a file set
that does not have the silver MatrixTable's shape.

Imputed cohorts (a silver ``DS`` entry field) also get ``genotypes.pgen``: the ALT
dosages as a PLINK 2 .pgen (written and read with ``pgenlib``; dosage precision
1/16384 as in plink2), in the same row and column order as the .bed. The .bed keeps
the hard calls (pruning, KING, PCA, clumping's r²); :func:`silver_dosage_rows` gives
the numpy kernels that use dosages (association tests, scoring, the LD of
LDpred2/lassosum2) the dosages when there is a .pgen and the .bed's ALT counts when
there is none.
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
from gwas_prs.formats.plink_bed import decode_bed_rows, open_bed, read_bed_rows, read_bim

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
    #: the .pgen of ALT dosages (imputed input), else None
    pgen: str | None = None


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
    pgen = prefix + ".pgen"
    if os.path.isfile(pgen):
        import pgenlib

        reader = pgenlib.PgenReader(pgen.encode(), raw_sample_ct=n_samples)
        if reader.get_variant_ct() != n_variants:
            logger.warning("%s does not match the silver MatrixTable; using Hail", pgen)
            return None
        reader.close()
    return SilverBed(
        bed, n_samples, variants, fam[1].tolist(), pgen if os.path.isfile(pgen) else None
    )


def silver_dosage_rows(silver: SilverBed, first: int, stop: int) -> npt.NDArray[np.float64]:
    """ALT dosages (float64, NaN = missing) of rows ``first:stop``, every sample in .bed
    column order: from the .pgen when there is one, else the .bed's ALT counts."""
    if silver.pgen is None:
        g = read_bed_rows(silver.bed, first, stop, silver.n_samples)
        return np.where(g >= 0, g, np.nan).astype(np.float64)
    import pgenlib

    out = np.empty((stop - first, silver.n_samples), dtype=np.float64)
    reader = pgenlib.PgenReader(silver.pgen.encode(), raw_sample_ct=silver.n_samples)
    try:
        if stop > first:
            reader.read_dosages_range(first, stop, out)
    finally:
        reader.close()
    out[out == -9] = np.nan
    return out


def silver_dosage_list(silver: SilverBed, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """ALT dosages (float64, NaN = missing) of ``rows`` (any order), as
    :func:`silver_dosage_rows`."""
    if silver.pgen is None:
        g = decode_bed_rows(silver.bed, rows, silver.n_samples)
        return np.where(g >= 0, g, np.nan).astype(np.float64)
    import pgenlib

    out = np.empty((len(rows), silver.n_samples), dtype=np.float64)
    reader = pgenlib.PgenReader(silver.pgen.encode(), raw_sample_ct=silver.n_samples)
    try:
        if len(rows):
            reader.read_dosages_list(np.asarray(rows, dtype=np.uint32), out)
    finally:
        reader.close()
    out[out == -9] = np.nan
    return out


def write_silver_bed(mt: Any, prefix: str) -> None:
    """Write ``mt``'s genotypes as the silver PLINK 1 fileset ``prefix``.bed/.bim/.fam
    (variant IDs = rsid, ``.`` where missing), in ``mt``'s row and column order, and
    its ``DS`` (when present) as ``prefix.pgen``."""
    import hail as hl

    from gwas_prs.formats.plink_bed import export_bed

    export_bed(mt, prefix, varid=hl.or_else(mt.rsid, ".") if "rsid" in mt.row else hl.str("."))
    if "DS" in mt.entry:
        write_dosage_pgen(mt, prefix + ".pgen", prefix + ".dosages.bm")


#: Rows of the dosage BlockMatrix read into numpy at a time while the .pgen is written.
PGEN_WRITE_ROWS = 4096


def write_dosage_pgen(mt: Any, pgen: str, scratch: str) -> None:
    """Write ``mt.DS`` (rows × columns in ``mt``'s order; haploid calls' dosages
    doubled, as :func:`gwas_prs.methods.dosage.alt_dosage_expr`) as the .pgen ``pgen``: Hail
    writes the dosages once as a BlockMatrix at ``scratch`` (removed afterwards), then
    blocks of :data:`PGEN_WRITE_ROWS` rows go through ``pgenlib``."""
    import hail as hl
    import pgenlib
    from hail.linalg import BlockMatrix

    from gwas_prs.core import storage

    dosage = hl.float64(mt.DS)
    if "GT" in mt.entry:  # a haploid call's DS (0..1) on the diploid scale, as PLINK reads it
        dosage = hl.if_else(hl.coalesce(mt.GT.ploidy == 1, False), 2 * dosage, dosage)
    BlockMatrix.write_from_entry_expr(
        hl.or_else(dosage, -9.0), "file://" + os.path.abspath(scratch), overwrite=True
    )
    try:
        matrix = BlockMatrix.read("file://" + os.path.abspath(scratch))
        n_rows, n_cols = matrix.shape
        writer = pgenlib.PgenWriter(
            pgen.encode(),
            n_cols,
            variant_ct=n_rows,
            nonref_flags=False,
            hardcall_phase_present=False,
            dosage_present=True,
        )
        try:
            for a in range(0, n_rows, PGEN_WRITE_ROWS):
                block = matrix[a : min(a + PGEN_WRITE_ROWS, n_rows), :].to_numpy()
                for row in block.astype(np.float32):
                    writer.append_dosages(row)
        finally:
            writer.close()
        logger.info("wrote the silver dosages %s (%d × %d)", pgen, n_rows, n_cols)
    finally:
        storage.remove(scratch)


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
