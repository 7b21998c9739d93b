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

RUN and OUT may be local folders or ``gs://`` prefixes, in any combination. The
gold layer of a ``gs://`` run folder is read from a local copy of its tables
(DuckDB reads local files); a ``gs://`` OUT is built in a local spool (gold) or
by Hail directly under the ``gs://`` partial prefix (genotype layers), then copied
into place with the marker copied last, so an OUT without the marker is never a
complete export. Object stores have no rename: replacing a previous ``gs://``
export first removes its marker, then its objects.

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
import tempfile
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gwas_prs.core import storage
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
        if "://" in self.out and not self.out.startswith("gs://"):
            raise InputError(f"--out {self.out}: export writes to a local folder or gs://")
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

    if storage.is_remote(out):
        _check_remote_out(run_dir, out, overwrite=overwrite)
        return
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


def _is_run_folder(prefix: str) -> bool:
    from gwas_prs.core.run_folder import MANIFEST_NAME

    return storage.exists(storage.join(prefix, MANIFEST_NAME))


def _check_remote_out(run_dir: str, out: str, *, overwrite: bool) -> None:
    """:func:`check_out` for a ``gs://`` OUT: the same rules, on object names."""
    from gwas_prs.core.run_folder import MANIFEST_NAME

    target = out.rstrip("/")
    run = run_dir.rstrip("/") if storage.is_remote(run_dir) else None
    hint = f", e.g. --out {run}-export" if run else ""
    bucket_root = "/".join(target.split("/")[:3])
    prefix = target
    while prefix != bucket_root:
        if prefix == run or _is_run_folder(prefix):
            what = "is the run folder" if prefix == target else "lies inside the run folder"
            raise InputError(
                f"--out {out}: {what} {prefix}; export writes a new folder outside every "
                f"run folder{hint}"
            )
        prefix = prefix.rpartition("/")[0]
    if run is not None and run.startswith(target + "/"):
        raise InputError(
            f"--out {out}: contains the run folder {run}; export to a folder that "
            f"holds no run folder{hint}"
        )
    if not storage.exists(target):
        return
    if not storage.exists(storage.join(target, MARKER)):
        raise OutputExistsError(
            f"{out} exists and is not a gwas-prs export (no {MARKER}); choose another --out "
            "or remove it yourself"
        )
    if not overwrite:
        raise OutputExistsError(f"{out} exists; pass --overwrite to replace it")
    manifests = [p for p in storage.files_under(target) if p.endswith("/" + MANIFEST_NAME)]
    if manifests:
        raise InputError(
            f"--out {out}: contains the run folder {storage.parent(manifests[0])}; export to a "
            f"folder that holds no run folder{hint}"
        )


@dataclass
class ExportResult:
    out: str
    #: name -> (path, rows)
    tables: dict[str, tuple[str, int]] = field(default_factory=dict)


def _partial(out: str) -> str:
    parent = storage.parent(out)
    name = (
        out.rstrip("/").rpartition("/")[2]
        if storage.is_remote(out)
        else os.path.basename(os.path.abspath(out))
    )
    return storage.join(parent, f".{name}.partial-{uuid.uuid4().hex[:8]}")


def _publish(tmp: str, config: ExportConfig) -> None:
    """Move the complete export ``tmp`` (marker included) to ``config.out``."""
    out = config.out
    if not storage.is_remote(out) and not storage.is_remote(tmp):
        previous = None
        if os.path.exists(out):
            check_out(config.run_dir, out, overwrite=config.overwrite, layer=config.layer)
            # a previous export (it has the marker): set aside, replaced, then removed,
            # so that a crash in between never leaves neither export
            previous = _partial(out)
            os.replace(out, previous)
        os.replace(tmp, out)
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
        return
    if storage.exists(out):
        check_out(config.run_dir, out, overwrite=config.overwrite, layer=config.layer)
        storage.remove(storage.join(out, MARKER))  # no longer a complete export
        storage.remove(out)
    storage.copy_tree(tmp, out, last=MARKER)
    storage.remove(tmp)


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
        storage.exists(run.path(*p)) for p in (("gold", "gwas"), ("gold", "frequencies.parquet"))
    ):
        raise InputError(f"{run.root}: the gold layer is empty; run qc/gwas/prs first")
    remote_out = storage.is_remote(config.out)
    spool: str | None = None
    if config.layer == "gold" and remote_out:
        spool = tempfile.mkdtemp(prefix="gwas-prs-export-")
        tmp = os.path.join(spool, "out")
    else:
        tmp = _partial(config.out)
    result = ExportResult(out=storage.absolute(config.out))
    try:
        storage.makedirs(tmp)
        if config.layer == "gold":
            _gold(run, tmp, result)
        else:
            log = start_hail(hail or HailConfig(run_dir=run.root, command="export"))
            with hail_errors_as_computation_errors(f"exporting the {config.layer} layer", log):
                _genotypes(run, config, tmp, result)
        _write_marker(run, config, tmp, result)
        _publish(tmp, config)
    except BaseException:
        storage.remove(tmp)
        raise
    finally:
        if spool is not None:
            shutil.rmtree(spool, ignore_errors=True)
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
            name: {"path": path[len(tmp.rstrip("/")) + 1 :], "rows": rows}
            for name, (path, rows) in result.tables.items()
        },
    }
    storage.write_text_atomic(storage.join(tmp, MARKER), json.dumps(marker, indent=2) + "\n")


def _genotypes(run: RunFolder, config: ExportConfig, tmp: str, result: ExportResult) -> None:
    import hail as hl

    from gwas_prs.engine.parquet import entries_long, write_table_parquet, write_variant_parquet

    mt_path = run.bronze_mt if config.layer == "bronze" else run.silver_mt
    mt = hl.read_matrix_table(mt_path)
    n_variants, n_samples = mt.count()
    if config.format == "parquet":
        path = storage.join(tmp, "genotypes")
        rows = write_table_parquet(entries_long(mt), path)
        result.tables["genotypes"] = (path, rows)
        samples = _samples_frame(run, mt, config.layer)
        path = storage.join(tmp, "samples.parquet")
        storage.write_parquet(path, samples)
        result.tables["samples"] = (path, len(samples))
        if config.layer == "silver":
            vqc = hl.read_table(storage.join(run.silver_qc, "variant_qc.ht"))
            path = storage.join(tmp, "variants")
            result.tables["variants"] = (path, write_variant_parquet(vqc, path))
        return
    mt = mt.select_entries("GT").select_cols()
    row_fields = [f for f in ("rsid",) if f in mt.row]
    mt = mt.select_rows(*row_fields)
    if config.format == "vcf":
        path = storage.join(tmp, "genotypes.vcf.bgz")
        hl.export_vcf(mt, path, tabix=True)
        result.tables["vcf"] = (path, n_variants)
    else:
        prefix = storage.join(tmp, "genotypes")
        hl.export_plink(mt, prefix, ind_id=mt.s, varid=hl.variant_str(mt.locus, mt.alleles))
        result.tables["plink .bim (variants)"] = (f"{prefix}.bim", n_variants)
        result.tables["plink .fam (samples)"] = (f"{prefix}.fam", n_samples)


def _samples_frame(run: RunFolder, mt: hl.MatrixTable, layer: str) -> pd.DataFrame:

    if layer == "silver":
        table = storage.join(run.silver_qc, "sample_qc.tsv")
        return storage.read_table(table, sep="\t", na_values=["NA"], dtype={"s": str})
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

    if storage.is_remote(run.root):
        with tempfile.TemporaryDirectory(prefix="gwas-prs-gold-") as mirror:
            _mirror_gold_tables(run, mirror)
            _gold(RunFolder(mirror), tmp, result)
        return
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


#: The files of a run folder that the gold views read (:mod:`gwas_prs.stages.query`).
_GOLD_TABLES = (
    "gold/gwas/*/sumstats.tsv.gz",
    "gold/splits/*.tsv",
    "gold/prs/*/scores.tsv",
    "gold/features/*.parquet",
    "gold/models/*/test_predictions.tsv",
)


def _mirror_gold_tables(run: RunFolder, mirror: str) -> None:
    """Copy the gold tables of a remote run folder into the local folder ``mirror``."""
    from gwas_prs.core.run_folder import MANIFEST_NAME

    root = run.root.rstrip("/")
    names = [MANIFEST_NAME]
    for pattern in _GOLD_TABLES:
        names.extend(p[len(root) + 1 :] for p in storage.glob_files(f"{root}/{pattern}"))
    frequencies = storage.join(root, "gold", "frequencies.parquet")
    if storage.exists(frequencies):
        names.extend(p[len(root) + 1 :] for p in storage.files_under(frequencies))
    logger.info("copying %d gold table(s) of %s to a local folder", len(names), root)
    for name in names:
        storage.copy_file(storage.join(root, name), os.path.join(mirror, name))
