"""Allele frequencies per population (the gold ``frequencies.parquet``).

:func:`frequencies_table` aggregates, in one pass over the rows of a
MatrixTable, the ALT allele count/number/frequency of every variant in the
whole cohort and in each group of each grouping field (``super_pop``, ``pop``
for the 1000 Genomes panel). :func:`frequencies_frame` turns it into the long
frame written to ``RUN/gold/frequencies.parquet`` (partitioned by contig).

Columns of the frame: ``contig`` (str), ``position`` (int32), ``ref``,
``alt``, ``rsid`` (str), ``grouping`` (``all``, ``super_pop``, ``pop`` …),
``group`` (the group's name, ``all`` for the cohort), ``n_samples`` (samples
in the group), ``AC`` (int32, ALT alleles), ``AN`` (int32, called alleles),
``AF`` (float64, ``AC/AN``; missing when ``AN = 0``).

Warnings
--------
Samples whose grouping field is missing are counted only in ``all``. The
dataset is partitioned by ``contig`` (hive layout ``contig=1/…``), so pandas
reads ``contig`` back as a categorical: convert it (``astype(str)``) or pass
``observed=True`` before grouping on it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

if TYPE_CHECKING:
    import hail as hl

logger = logging.getLogger(__name__)

DEFAULT_GROUPINGS = ("super_pop", "pop")
#: Variants per chunk of the numpy path.
CHUNK_VARIANTS = 8192
FRAME_COLUMNS = [
    "contig",
    "position",
    "ref",
    "alt",
    "rsid",
    "grouping",
    "group",
    "n_samples",
    "AC",
    "AN",
    "AF",
]


def group_frequencies_expr(
    gt: hl.expr.CallExpression, group: hl.expr.Expression
) -> hl.expr.DictExpression:
    """Row aggregation: ``dict<str, struct{AC: int32, AN: int32}>`` by ``group``."""
    import hail as hl

    return hl.agg.filter(
        hl.is_defined(group),
        hl.agg.group_by(
            hl.str(group),
            hl.struct(
                AC=hl.agg.sum(gt.n_alt_alleles()), AN=2 * hl.agg.count_where(hl.is_defined(gt))
            ),
        ),
    )


def frequencies_table(mt: hl.MatrixTable, groupings: Sequence[str]) -> hl.Table:
    """Per-variant ALT counts overall and per group (:class:`hail.Table`, not written).

    Row fields: ``rsid`` (if present), ``all`` (struct ``AC``, ``AN``) and one
    ``dict<str, struct{AC, AN}>`` per grouping field. A haploid call (a male's
    non-PAR X) counts as homozygous, two alleles, as in the silver .bed.
    """
    import hail as hl

    from gwas_prs.methods.dosage import diploid_call_expr

    # a male's non-PAR X call homozygous, as the numpy twin reads it from the .bed
    mt = mt.annotate_entries(GT=diploid_call_expr(mt.GT))
    aggs: dict[str, hl.expr.Expression] = {
        "all": hl.struct(
            AC=hl.agg.sum(mt.GT.n_alt_alleles()), AN=2 * hl.agg.count_where(hl.is_defined(mt.GT))
        )
    }
    for name in groupings:
        aggs[f"by_{name}"] = group_frequencies_expr(mt.GT, mt[name])
    rsid = {"rsid": mt.rsid} if "rsid" in mt.row else {}
    return mt.select_rows(**rsid, **aggs).rows()


def group_sizes(mt: hl.MatrixTable, groupings: Sequence[str]) -> dict[str, dict[str, int]]:
    """Number of samples per group of each grouping field (a column pass)."""
    import hail as hl

    sizes = (
        mt.aggregate_cols(hl.struct(**{g: hl.agg.counter(hl.str(mt[g])) for g in groupings}))
        if groupings
        else {}
    )
    return {g: {str(k): int(v) for k, v in sizes[g].items() if k is not None} for g in groupings}


def frequencies_frame(
    ht: hl.Table, groupings: Sequence[str], sizes: dict[str, dict[str, int]], n_samples: int
) -> pd.DataFrame:
    """The long frame of the module docstring from :func:`frequencies_table`."""
    import hail as hl

    entries = [hl.struct(grouping="all", group="all", AC=ht["all"].AC, AN=ht["all"].AN)]
    parts = hl.array(entries)
    for name in groupings:
        parts = parts.extend(
            hl.sorted(ht[f"by_{name}"].items()).map(
                lambda kv, name=name: hl.struct(
                    grouping=name, group=kv[0], AC=kv[1].AC, AN=kv[1].AN
                )
            )
        )
    flat = ht.select(
        contig=ht.locus.contig,
        position=ht.locus.position,
        ref=ht.alleles[0],
        alt=ht.alleles[1],
        rsid=ht.rsid if "rsid" in ht.row else hl.missing(hl.tstr),
        parts=parts,
    )
    flat = flat.explode("parts")
    flat = flat.key_by()
    flat = flat.select("contig", "position", "ref", "alt", "rsid", **flat.parts)
    frame = flat.to_pandas()
    frame["AC"] = frame["AC"].astype("int64")
    frame["AN"] = frame["AN"].astype("int64")
    frame["AF"] = (frame["AC"] / frame["AN"].where(frame["AN"] > 0)).astype("float64")
    size_lookup = {("all", "all"): n_samples}
    for grouping, groups in sizes.items():
        for group, n in groups.items():
            size_lookup[(grouping, group)] = n
    frame["n_samples"] = [
        size_lookup.get((g, n), 0) for g, n in zip(frame["grouping"], frame["group"], strict=True)
    ]
    return frame[FRAME_COLUMNS]


def cohort_frequencies(
    mt: hl.MatrixTable, groupings: Sequence[str], n_samples: int, *, bed: str | None = None
) -> pd.DataFrame:
    """Allele counts of ``mt``'s variants overall and per group of each grouping field
    (the frame of :func:`frequencies_frame`), by the stage's engine
    (:mod:`gwas_prs.engine.switch`): numpy over a PLINK .bed of ``mt`` (``bed``: the prefix of
    one already written, such as the silver .bed; else a temporary export), or Hail.
    """
    from gwas_prs.engine.switch import numpy_engine

    if numpy_engine():
        return local_frequencies_frame(mt, groupings, bed_prefix=bed)
    return frequencies_frame(
        frequencies_table(mt, groupings), groupings, group_sizes(mt, groupings), n_samples
    )


def local_frequencies_frame(
    mt: hl.MatrixTable, groupings: Sequence[str], bed_prefix: str | None = None
) -> pd.DataFrame:
    """The frame of :func:`frequencies_frame`, computed in numpy (Hail local mode).

    One Hail pass exports ``mt``'s genotypes as a PLINK .bed; the counts per
    group are then matrix products of the ALT dosages and the called
    indicators with the samples' group membership. Same rows, order and
    values as the Hail path (tested), and much faster on one machine: the Hail path
    runs a ``group_by`` per genotype, then a ``to_pandas`` of one row per variant and
    group.

    ``bed_prefix``: the prefix of a PLINK fileset of exactly ``mt``'s genotypes (rows and
    columns in ``mt``'s order, variant IDs = rsid), such as the silver .bed qc
    writes; default a temporary export.
    """
    import contextlib

    import hail as hl

    from gwas_prs.engine.table_io import cols_in_column_order
    from gwas_prs.formats.plink_bed import exported_bed, open_bed, read_bed_rows, read_bim

    cols = cols_in_column_order(mt, *groupings) if groupings else None  # .fam order
    rsid = hl.or_else(mt.rsid, ".") if "rsid" in mt.row else hl.str(".")
    exported: contextlib.AbstractContextManager[tuple[npt.NDArray[np.uint8], int, str]]
    if bed_prefix is None:
        exported = exported_bed(mt, varid=rsid)
    else:
        exported = contextlib.nullcontext((*open_bed(bed_prefix), bed_prefix))
    with exported as (bed, n_samples, prefix):
        bim = read_bim(prefix).rename(columns={"varid": "rsid"})
        # (label of the grouping, group name, membership vector) per output row of a variant
        parts: list[tuple[str, str, np.ndarray]] = [("all", "all", np.ones(n_samples))]
        for name in groupings:
            values = cols[name] if cols is not None else pd.Series(dtype=object)
            for group in sorted({str(v) for v in values.dropna()}):
                member = (values.astype("string") == group).fillna(False).to_numpy(dtype=float)
                parts.append((name, group, member))
        membership = np.stack([p[2] for p in parts], axis=1)  # samples × parts
        n_variants = bed.shape[0]
        ac = np.zeros((n_variants, len(parts)), dtype=np.int64)
        an = np.zeros((n_variants, len(parts)), dtype=np.int64)
        for a in range(0, n_variants, CHUNK_VARIANTS):
            b = min(a + CHUNK_VARIANTS, n_variants)
            g = read_bed_rows(bed, a, b, n_samples)
            called = g >= 0
            dosage = np.where(called, g, 0).astype(np.float64)
            ac[a:b] = np.rint(dosage @ membership).astype(np.int64)
            an[a:b] = 2 * np.rint(called.astype(np.float64) @ membership).astype(np.int64)
    k = len(parts)
    sizes = membership.sum(axis=0).astype(np.int64)
    frame = pd.DataFrame(
        {
            "contig": np.repeat(bim["contig"].to_numpy(dtype=object), k),
            "position": np.repeat(bim["position"].to_numpy(dtype=np.int32), k),
            "ref": np.repeat(bim["ref"].to_numpy(dtype=object), k),
            "alt": np.repeat(bim["alt"].to_numpy(dtype=object), k),
            "rsid": np.repeat(
                bim["rsid"].where(bim["rsid"] != ".", None).to_numpy(dtype=object), k
            ),
            "grouping": np.tile(np.array([p[0] for p in parts], dtype=object), n_variants),
            "group": np.tile(np.array([p[1] for p in parts], dtype=object), n_variants),
            "n_samples": np.tile(sizes, n_variants),
            "AC": ac.reshape(-1),
            "AN": an.reshape(-1),
        }
    )
    frame["AF"] = (frame["AC"] / frame["AN"].where(frame["AN"] > 0)).astype("float64")
    return frame[FRAME_COLUMNS]
