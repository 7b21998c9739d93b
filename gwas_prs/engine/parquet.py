"""Hail Tables and MatrixTables → Parquet (through Spark), partitioned by contig.

Per-variant tables keep their variant as plain columns ``contig`` (the
partition column: ``contig=21/part-….parquet``), ``position``, ``ref`` and
``alt``, so DuckDB, pandas and Spark read them without Hail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import hail as hl


def variant_columns(ht: hl.Table) -> hl.Table:
    """``ht`` keyed by locus/alleles → unkeyed, with contig/position/ref/alt first."""
    import hail as hl

    fields = [f for f in ht.row if f not in ("locus", "alleles")]
    ht = ht.key_by()
    return ht.select(
        contig=ht.locus.contig,
        position=ht.locus.position,
        ref=ht.alleles[0],
        alt=hl.delimit(ht.alleles[1:], ","),
        **{f: ht[f] for f in fields},
    )


def write_table_parquet(ht: hl.Table, path: str, *, partition_by: str | None = "contig") -> int:
    """Write a Hail Table as Parquet (nested structs flattened to ``a.b`` columns).

    Returns the number of rows written. ``path`` must not exist.
    """
    frame = ht.to_spark(flatten=True)
    writer = frame.write.mode("error")
    if partition_by:
        writer = writer.partitionBy(partition_by)
    writer.parquet(path)
    return int(frame.sparkSession.read.parquet(path).count())


def write_variant_parquet(ht: hl.Table, path: str) -> int:
    """A per-variant Table of scalar fields as Parquet partitioned by contig
    (:func:`variant_columns`), returning the number of rows.

    In Hail local mode through pandas (:func:`gwas_prs.engine.table_io.table_to_frame`,
    faster than Spark on one machine), elsewhere through Spark
    (:func:`write_table_parquet`).
    """
    from gwas_prs.engine.switch import numpy_engine

    table = variant_columns(ht)
    if not numpy_engine():
        return write_table_parquet(table, path)
    from gwas_prs.engine.table_io import table_to_frame

    frame = table_to_frame(table, {name: table[name] for name in table.row})
    frame.to_parquet(path, partition_cols=["contig"], index=False)
    return len(frame)


def entries_long(mt: hl.MatrixTable) -> hl.Table:
    """One row per (variant, sample): contig, position, ref, alt, sample_id,
    ``gt`` (VCF-style text, ``0|1``), ``n_alt`` (ALT dosage 0/1/2, missing if uncalled)."""
    import hail as hl

    mt = mt.select_entries("GT")
    ht = mt.entries().key_by()
    return ht.select(
        contig=ht.locus.contig,
        position=ht.locus.position,
        ref=ht.alleles[0],
        alt=hl.delimit(ht.alleles[1:], ","),
        sample_id=ht.s,
        gt=hl.str(ht.GT),
        n_alt=ht.GT.n_alt_alleles(),
    )
