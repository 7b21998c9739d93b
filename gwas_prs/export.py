"""``gwas-prs export``: a layer of a run folder as Parquet, VCF or PLINK files.

============  =======================================================================
layer         what is written under OUT
============  =======================================================================
bronze        parquet: ``genotypes/`` (one row per variant × sample, partitioned by
              contig), ``samples.parquet`` (sample metadata);
              vcf: ``genotypes.vcf.bgz`` (+ ``.tbi``); plink: ``genotypes.bed/.bim/.fam``
silver        as bronze for the QC-passed genotypes, plus with parquet
              ``samples.parquet`` (every input sample: QC metrics, PCs, ancestry)
              and ``variants/`` (variant QC of every input variant, by contig)
gold          parquet only: ``sumstats/`` (all traits, by chromosome), ``frequencies/``
              (by contig), ``splits.parquet``, ``scores.parquet``, and
              ``features.parquet``/``predictions.parquet`` when the train stage ran
============  =======================================================================

OUT is written to a temporary sibling (``.OUT.partial-…``) and renamed into
place when complete. The gold layer needs no JVM (DuckDB reads the stage
outputs); the genotype layers start Hail.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from typing import Any

from gwas_prs.errors import InputError, OutputExistsError
from gwas_prs.hail_context import HailConfig, start_hail
from gwas_prs.hail_errors import hail_errors_as_computation_errors
from gwas_prs.run_folder import RunFolder, require_complete

logger = logging.getLogger(__name__)

LAYERS = ("bronze", "silver", "gold")
FORMATS = ("parquet", "vcf", "plink")


@dataclass(frozen=True)
class ExportConfig:
    """Parameters of ``gwas-prs export``."""

    run_dir: str
    layer: str
    format: str
    out: str
    overwrite: bool = False

    def validate(self) -> None:
        if self.layer not in LAYERS:
            raise InputError(f"--layer {self.layer}: choose one of {', '.join(LAYERS)}")
        if self.format not in FORMATS:
            raise InputError(f"--format {self.format}: choose one of {', '.join(FORMATS)}")
        if self.layer == "gold" and self.format != "parquet":
            raise InputError(
                f"--layer gold --format {self.format}: the gold layer holds no genotypes; "
                "use --format parquet (or --layer silver for VCF/PLINK)"
            )
        if "://" in self.out:
            raise InputError(f"--out {self.out}: export writes to a local folder")
        if os.path.exists(self.out) and not self.overwrite:
            raise OutputExistsError(f"{self.out} exists; pass --overwrite to replace it")


@dataclass
class ExportResult:
    out: str
    #: name -> (path, rows)
    tables: dict[str, tuple[str, int]] = field(default_factory=dict)


def _partial(out: str) -> str:
    parent, name = os.path.split(os.path.abspath(out))
    return os.path.join(parent, f".{name}.partial-{uuid.uuid4().hex[:8]}")


def run_export(config: ExportConfig, hail: HailConfig | None = None) -> ExportResult:
    """Export one layer (see the module docstring); atomic: all of OUT or nothing.

    Raises
    ------
    InputError, OutputExistsError, StageNotCompleteError
        Before any work: bad layer/format, OUT exists, the layer's stage is not complete.
    """
    config.validate()
    run = RunFolder(config.run_dir)
    stage = {"bronze": "ingest", "silver": "qc"}.get(config.layer)
    if stage is not None:
        require_complete(run, stage, needed_by="export")
    elif not any(
        os.path.exists(run.path(*p)) for p in (("gold", "gwas"), ("gold", "frequencies.parquet"))
    ):
        raise InputError(f"{run.root}: the gold layer is empty; run qc/gwas/prs first")
    tmp = _partial(config.out)
    os.makedirs(os.path.dirname(tmp), exist_ok=True)
    result = ExportResult(out=os.path.abspath(config.out))
    try:
        os.makedirs(tmp)
        if config.layer == "gold":
            _gold(run, tmp, result)
        else:
            log = start_hail(hail or HailConfig(run_dir=run.root, command="export"))
            with hail_errors_as_computation_errors(f"exporting the {config.layer} layer", log):
                _genotypes(run, config, tmp, result)
        if os.path.exists(config.out):
            shutil.rmtree(config.out) if os.path.isdir(config.out) else os.remove(config.out)
        os.replace(tmp, config.out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result.tables = {
        name: (path.replace(tmp, result.out, 1), rows)
        for name, (path, rows) in result.tables.items()
    }
    return result


def _genotypes(run: RunFolder, config: ExportConfig, tmp: str, result: ExportResult) -> None:
    import hail as hl

    from gwas_prs.parquet import entries_long, write_table_parquet, write_variant_parquet

    mt_path = run.bronze_mt if config.layer == "bronze" else run.silver_mt
    mt = hl.read_matrix_table(mt_path)
    n_variants, n_samples = mt.count()
    if config.format == "parquet":
        path = os.path.join(tmp, "genotypes")
        rows = write_table_parquet(entries_long(mt), path)
        result.tables["genotypes"] = (path, rows)
        samples = _samples_frame(run, mt, config.layer)
        path = os.path.join(tmp, "samples.parquet")
        samples.to_parquet(path, index=False)
        result.tables["samples"] = (path, len(samples))
        if config.layer == "silver":
            vqc = hl.read_table(os.path.join(run.silver_qc, "variant_qc.ht"))
            path = os.path.join(tmp, "variants")
            result.tables["variants"] = (path, write_variant_parquet(vqc, path))
        return
    mt = mt.select_entries("GT").select_cols()
    row_fields = [f for f in ("rsid",) if f in mt.row]
    mt = mt.select_rows(*row_fields)
    if config.format == "vcf":
        path = os.path.join(tmp, "genotypes.vcf.bgz")
        hl.export_vcf(mt, path, tabix=True)
        result.tables["vcf"] = (path, n_variants)
    else:
        prefix = os.path.join(tmp, "genotypes")
        hl.export_plink(mt, prefix, ind_id=mt.s, varid=hl.variant_str(mt.locus, mt.alleles))
        result.tables["plink .bim (variants)"] = (f"{prefix}.bim", n_variants)
        result.tables["plink .fam (samples)"] = (f"{prefix}.fam", n_samples)


def _samples_frame(run: RunFolder, mt: Any, layer: str) -> Any:
    import pandas as pd

    if layer == "silver":
        table = os.path.join(run.silver_qc, "sample_qc.tsv")
        return pd.read_csv(table, sep="\t", na_values=["NA"], dtype={"s": str})
    cols = mt.cols()
    flat = cols.flatten() if hasattr(cols, "flatten") else cols
    frame = flat.to_pandas()
    return frame.drop(
        columns=[c for c in frame.columns if c.startswith("gwas_prs")], errors="ignore"
    )


def _gold(run: RunFolder, tmp: str, result: ExportResult) -> None:
    """Gold tables through DuckDB (the views of :mod:`gwas_prs.query`)."""
    from gwas_prs.query import connect

    con, views = connect(run.root)
    names = {v.name for v in views}
    try:
        for name, partition in (("sumstats", "chromosome"), ("frequencies", "contig")):
            if name in names:
                path = os.path.join(tmp, name)
                con.execute(
                    f"COPY (SELECT * FROM {name}) TO '{path}' "
                    f"(FORMAT PARQUET, PARTITION_BY ({partition}))"
                )
                rows = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
                result.tables[name] = (path, int(rows))
        for name in ("splits", "scores", "features", "predictions"):
            if name in names:
                path = os.path.join(tmp, f"{name}.parquet")
                con.execute(f"COPY (SELECT * FROM {name}) TO '{path}' (FORMAT PARQUET)")
                rows = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
                result.tables[name] = (path, int(rows))
    finally:
        con.close()
