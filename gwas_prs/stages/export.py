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

Every export holds a marker, ``OUT/.gwas-prs-export.json`` (layer, format, run,
time, row counts; Parquet readers skip dot files). OUT never touches a run folder:
it may not be the run folder, lie inside one (a folder with gwas-prs's
``manifest.json`` at or above OUT, or the RUN argument) or contain one; and
``--overwrite`` replaces only a previous export (an OUT with the marker), never
another folder or file. Paths are compared after resolving symlinks.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gwas_prs.core.errors import InputError, OutputExistsError
from gwas_prs.core.run_folder import RunFolder, require_complete
from gwas_prs.engine.hail_context import HailConfig, start_hail
from gwas_prs.engine.hail_errors import hail_errors_as_computation_errors

if TYPE_CHECKING:
    import hail as hl
    import pandas as pd


logger = logging.getLogger(__name__)

LAYERS = ("bronze", "silver", "gold")
FORMATS = ("parquet", "vcf", "plink")
#: written into every export; ``--overwrite`` replaces only folders that have it
MARKER = ".gwas-prs-export.json"


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
        check_out(self.run_dir, self.out, overwrite=self.overwrite, layer=self.layer)


def _suggestion(run_root: str | None, layer: str) -> str:
    if run_root is None:
        return ""
    parent, name = os.path.split(run_root)
    return f", e.g. --out {os.path.join(parent, f'{name}-{layer}-export')}"


def check_out(run_dir: str, out: str, *, overwrite: bool, layer: str = "gold") -> None:
    """Refuse an ``--out`` that is, lies inside or contains a run folder, or that exists
    and is not a previous export (see the module docstring); cheap: it walks below OUT
    only when OUT is an export that ``--overwrite`` would replace.

    Raises
    ------
    InputError
        OUT is, lies inside or contains a run folder (RUN or any other).
    OutputExistsError
        OUT exists: without ``--overwrite``, or it is not a gwas-prs export.
    """
    from gwas_prs.stages.query import contained_run_folder, enclosing_run_folder, is_within

    target = os.path.realpath(out)
    run_root: str | None = None
    if "://" not in run_dir:
        run_real = os.path.realpath(run_dir)
        run_root = enclosing_run_folder(run_real) or run_real
    hint = _suggestion(run_root, layer)
    inside = run_root if run_root is not None and is_within(target, run_root) else None
    inside = inside or enclosing_run_folder(target)
    if inside is not None:
        what = "is the run folder" if target == inside else "lies inside the run folder"
        raise InputError(
            f"--out {out}: {what} {inside}; export writes a new folder outside every "
            f"run folder{hint}"
        )
    if run_root is not None and is_within(run_root, target):
        raise InputError(
            f"--out {out}: contains the run folder {run_root}; export to a folder that "
            f"holds no run folder{hint}"
        )
    if not os.path.lexists(out):
        return
    if os.path.islink(out):
        raise OutputExistsError(
            f"{out} is a symbolic link (to {target}); choose another --out, or name the "
            "folder itself"
        )
    if not os.path.isfile(os.path.join(out, MARKER)):
        raise OutputExistsError(
            f"{out} exists and is not a gwas-prs export (no {MARKER}); choose another --out "
            "or remove it yourself"
        )
    if not overwrite:
        raise OutputExistsError(f"{out} exists; pass --overwrite to replace it")
    contained = contained_run_folder(target)
    if contained is not None:
        raise InputError(
            f"--out {out}: contains the run folder {contained}; export to a folder that "
            f"holds no run folder{hint}"
        )


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
        _write_marker(run, config, tmp, result)
        previous = None
        if os.path.exists(config.out):
            check_out(config.run_dir, config.out, overwrite=config.overwrite, layer=config.layer)
            # a previous export (it has the marker): set aside, replaced, then removed,
            # so that a crash in between never leaves neither export
            previous = _partial(config.out)
            os.replace(config.out, previous)
        os.replace(tmp, config.out)
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result.tables = {
        name: (path.replace(tmp, result.out, 1), rows)
        for name, (path, rows) in result.tables.items()
    }
    return result


def _write_marker(run: RunFolder, config: ExportConfig, tmp: str, result: ExportResult) -> None:
    """``OUT/.gwas-prs-export.json``: what this folder is (see :data:`MARKER`)."""
    from gwas_prs import __version__

    marker = {
        "gwas_prs_export": 1,
        "layer": config.layer,
        "format": config.format,
        "run": run.root if "://" in run.root else os.path.realpath(run.root),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "gwas_prs_version": __version__,
        "tables": {
            name: {"path": os.path.relpath(path, tmp), "rows": rows}
            for name, (path, rows) in result.tables.items()
        },
    }
    with open(os.path.join(tmp, MARKER), "w", encoding="utf-8") as handle:
        json.dump(marker, handle, indent=2)
        handle.write("\n")


def _genotypes(run: RunFolder, config: ExportConfig, tmp: str, result: ExportResult) -> None:
    import hail as hl

    from gwas_prs.engine.parquet import entries_long, write_table_parquet, write_variant_parquet

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


def _samples_frame(run: RunFolder, mt: hl.MatrixTable, layer: str) -> pd.DataFrame:
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


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _gold(run: RunFolder, tmp: str, result: ExportResult) -> None:
    """Gold tables through DuckDB (the views of :mod:`gwas_prs.stages.query`)."""
    from gwas_prs.stages.query import connect

    # our own COPY statements into tmp: the unlocked connection (plain views, no lock)
    con, views = connect(run.root, read_only=False)
    names = {v.name for v in views}
    try:
        for name, partition in (("sumstats", "chromosome"), ("frequencies", "contig")):
            if name in names:
                path = os.path.join(tmp, name)
                con.execute(
                    f"COPY (SELECT * FROM {name}) TO {_sql_string(path)} "
                    f"(FORMAT PARQUET, PARTITION_BY ({partition}))"
                )
                rows = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
                result.tables[name] = (path, int(rows))
        for name in ("splits", "scores", "features", "predictions"):
            if name in names:
                path = os.path.join(tmp, f"{name}.parquet")
                con.execute(f"COPY (SELECT * FROM {name}) TO {_sql_string(path)} (FORMAT PARQUET)")
                rows = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
                result.tables[name] = (path, int(rows))
    finally:
        con.close()
