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
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)

DEFAULT_GROUPINGS = ("super_pop", "pop")


def group_frequencies_expr(gt: Any, group: Any) -> Any:
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


def frequencies_table(mt: Any, groupings: Sequence[str]) -> Any:
    """Per-variant ALT counts overall and per group (:class:`hail.Table`, not written).

    Row fields: ``rsid`` (if present), ``all`` (struct ``AC``, ``AN``) and one
    ``dict<str, struct{AC, AN}>`` per grouping field.
    """
    import hail as hl

    aggs: dict[str, Any] = {
        "all": hl.struct(
            AC=hl.agg.sum(mt.GT.n_alt_alleles()), AN=2 * hl.agg.count_where(hl.is_defined(mt.GT))
        )
    }
    for name in groupings:
        aggs[f"by_{name}"] = group_frequencies_expr(mt.GT, mt[name])
    rsid = {"rsid": mt.rsid} if "rsid" in mt.row else {}
    return mt.select_rows(**rsid, **aggs).rows()


def group_sizes(mt: Any, groupings: Sequence[str]) -> dict[str, dict[str, int]]:
    """Number of samples per group of each grouping field (a column pass)."""
    import hail as hl

    sizes = (
        mt.aggregate_cols(hl.struct(**{g: hl.agg.counter(hl.str(mt[g])) for g in groupings}))
        if groupings
        else {}
    )
    return {g: {str(k): int(v) for k, v in sizes[g].items() if k is not None} for g in groupings}


def frequencies_frame(
    ht: Any, groupings: Sequence[str], sizes: dict[str, dict[str, int]], n_samples: int
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
    columns = [
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
    return frame[columns]
