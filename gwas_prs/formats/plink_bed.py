"""The PLINK 1 .bed codec of the numpy engine: Hail writes a MatrixTable's calls as a
.bed/.bim/.fam fileset (:func:`export_bed`), numpy reads it memory-mapped, two bits
per genotype (:func:`open_bed`, :func:`read_bed_rows`), and subsets of it are written
back in the same format (:func:`subset_bed`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

from gwas_prs.engine.local_threads import map_blocks

if TYPE_CHECKING:
    import hail as hl

# PLINK 1 .bed 2-bit codes as written by hl.export_plink (A1 = ALT):
# 00 hom A1 (2 ALT), 01 missing, 10 het, 11 hom A2 (0 ALT)
_CODE_TO_ALT = np.array([2, -1, 1, 0], dtype=np.int8)
_BYTE_TO_ALT = _CODE_TO_ALT[(np.arange(256)[:, None] >> (2 * np.arange(4))[None, :]) & 3]
# the inverse, indexed by ALT count + 1 (missing, 0, 1, 2)
_ALT_TO_CODE = np.array([1, 3, 2, 0], dtype=np.uint8)


def read_bed_rows(
    bed: npt.NDArray[np.uint8], first: int, stop: int, n_samples: int
) -> npt.NDArray[np.int8]:
    """ALT-allele counts (int8, -1 = missing) of variants ``first:stop`` of a memory-mapped .bed."""
    raw = np.asarray(bed[first:stop])
    return _BYTE_TO_ALT[raw].reshape(stop - first, -1)[:, :n_samples]


def decode_bed_rows(
    bed: npt.NDArray[np.uint8], rows: npt.NDArray[np.int64], n_samples: int
) -> npt.NDArray[np.int8]:
    """ALT-allele counts (int8, -1 = missing) of the variants ``rows`` (any order)."""
    raw = np.asarray(bed[rows])
    return _BYTE_TO_ALT[raw].reshape(len(rows), -1)[:, :n_samples]


def export_bed(
    mt: hl.MatrixTable, prefix: str, varid: hl.expr.StringExpression | None = None
) -> None:
    """Write ``mt``'s ``GT`` as the PLINK 1 fileset ``prefix``.bed/.bim/.fam (local path).

    Rows in ``mt``'s order, samples in column order (.fam IID = the column key);
    .bim columns: contig, ``varid`` (a row expression of ``mt``, default the
    variant string), cM, position, ALT (A1), REF (A2). A haploid call (a male's
    non-PAR X) is written homozygous, as PLINK reads it. One Hail pass.
    """
    import hail as hl

    slim = mt.select_rows(_varid=hl.variant_str(mt.locus, mt.alleles) if varid is None else varid)
    gt = slim.GT
    slim = slim.select_entries(GT=hl.if_else(gt.ploidy == 1, hl.call(gt[0], gt[0]), gt))
    slim = slim.select_cols()
    hl.export_plink(
        slim,
        "file://" + os.path.abspath(prefix),  # "file://" + a relative path is no URI
        ind_id=hl.str(slim.col_key[0]),
        varid=slim._varid,
    )


def read_bim(prefix: str) -> pd.DataFrame:
    """The .bim of the fileset ``prefix`` (:func:`export_bed`): ``contig``, ``varid``,
    ``cm`` (str), ``position`` (int64), ``alt`` (A1), ``ref`` (A2) (str), one row per
    .bed row."""
    return pd.read_csv(
        prefix + ".bim",
        sep="\t",
        header=None,
        names=["contig", "varid", "cm", "position", "alt", "ref"],
        dtype={
            "contig": str,
            "varid": str,
            "cm": str,
            "position": np.int64,
            "alt": str,
            "ref": str,
        },
        keep_default_na=False,
    )


def open_bed(
    prefix: str, shape: tuple[int, int] | None = None
) -> tuple[npt.NDArray[np.uint8], int]:
    """The fileset ``prefix`` of :func:`export_bed` memory-mapped: the
    ``(n_variants, ceil(n_samples / 4))`` byte array and the number of samples.
    ``shape`` (n_variants, n_samples), when the caller knows it, saves counting
    the .bim and .fam lines."""
    if shape is None:
        with open(prefix + ".fam") as fam:
            n_samples = sum(1 for _ in fam)
        with open(prefix + ".bim") as bim:
            n_variants = sum(1 for _ in bim)
    else:
        n_variants, n_samples = shape
    per_variant = (n_samples + 3) // 4
    if n_variants == 0:
        return np.zeros((0, per_variant), dtype=np.uint8), n_samples
    bed = np.memmap(
        prefix + ".bed", dtype=np.uint8, mode="r", offset=3, shape=(n_variants, per_variant)
    )
    return bed, n_samples


@contextlib.contextmanager
def exported_bed(
    mt: hl.MatrixTable, varid: hl.expr.StringExpression | None = None
) -> Iterator[tuple[npt.NDArray[np.uint8], int, str]]:
    """``mt``'s ``GT`` as a memory-mapped PLINK 1 .bed (:func:`export_bed` into a
    temporary folder removed on exit: inside ``RUN/tmp/local`` when a stage runs on a
    local run folder, see :func:`gwas_prs.engine.local_threads.scratch_dir`). Yields the byte array of
    :func:`open_bed`, the number of samples and the fileset prefix; decode with
    :func:`read_bed_rows`. Local mode only."""
    from gwas_prs.engine.local_threads import scratch_dir

    with tempfile.TemporaryDirectory(prefix="gwas-prs-bed-", dir=scratch_dir()) as tmp:
        prefix = os.path.join(tmp, "g")
        export_bed(mt, prefix, varid)
        bed, n_samples = open_bed(prefix)
        yield bed, n_samples, prefix
        del bed


def subset_bed(
    bed: npt.NDArray[np.uint8],
    n_samples: int,
    rows: npt.NDArray[np.int64],
    columns: npt.NDArray[np.int64],
    chunk: int = 2048,
) -> npt.NDArray[np.uint8]:
    """A new in-memory .bed byte array of ``rows`` × ``columns`` (indices into
    ``bed``'s variants and samples, in the order given), same 2-bit coding.
    Blocks of ``chunk`` rows are recoded on the local cores."""
    m = len(columns)
    per_variant = (m + 3) // 4
    out = np.zeros((len(rows), per_variant), dtype=np.uint8)

    def recode(a: int) -> None:
        picked = np.asarray(bed[rows[a : a + chunk]])
        g = _BYTE_TO_ALT[picked].reshape(len(picked), -1)[:, :n_samples][:, columns]
        flat = np.zeros((len(g), per_variant * 4), dtype=np.uint8)
        flat[:, :m] = _ALT_TO_CODE[g + 1]
        c = flat.reshape(len(g), per_variant, 4)
        out[a : a + chunk] = c[:, :, 0] | (c[:, :, 1] << 2) | (c[:, :, 2] << 4) | (c[:, :, 3] << 6)

    for _ in map_blocks(recode, range(0, len(rows), chunk)):
        pass
    return out
