"""Ingest of PLINK 1 filesets, BGEN files and Hail MatrixTables (the bronze layer),
and the steps every input shares.

:func:`ingest_genotype_files` is called by :func:`gwas_prs.stages.ingest.run_ingest`
when the inputs are not VCFs: it checks them without a JVM
(:mod:`gwas_prs.formats.genotype_files`), imports them
(:mod:`gwas_prs.formats.genotype_import`), writes ``RUN/bronze/genotypes.mt`` through a
temporary sibling and publishes it only when Hail wrote the variants the check
counted. A BGEN's Hail index goes to ``RUN/bronze/bgen-index/`` (never next to the
input, which may be read-only).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gwas_prs import __version__
from gwas_prs.core import storage
from gwas_prs.core.errors import ComputationError, InputError
from gwas_prs.core.reference import ReferenceContigs
from gwas_prs.core.run_folder import InputFile, RunFolder, stage_run
from gwas_prs.engine.hail_context import HailConfig, start_hail
from gwas_prs.engine.hail_errors import hail_errors_as_computation_errors
from gwas_prs.engine.switch import current_engine
from gwas_prs.formats.genotype_files import (
    GenotypeFileScan,
    input_kind,
    plink_prefix,
    scan_bgen,
    scan_matrix_table,
    scan_plink,
)
from gwas_prs.formats.genotype_import import (
    import_bgen_files,
    import_plink_fileset,
    index_bgen_files,
    read_input_matrix_table,
    select_genotype_entries,
)
from gwas_prs.formats.sample_metadata import (
    SampleMatch,
    SampleMetadata,
    match_samples,
    sample_metadata_table,
)
from gwas_prs.stages.ingest_config import IngestConfig, IngestResult

if TYPE_CHECKING:
    import hail as hl

logger = logging.getLogger(__name__)

INPUT_KINDS = {"vcf": "VCF", "plink": "PLINK 1 fileset", "bgen": "BGEN", "mt": "MatrixTable"}


def is_dropped_allele_expr(allele: hl.expr.StringExpression) -> hl.expr.BooleanExpression:
    """True for alleles ingest drops by default: symbolic (``<CN0>``, ``<DEL>``),
    the spanning deletion ``*`` and breakends (``N[1:123[``).

    Parameters
    ----------
    allele : :class:`hail.StringExpression`
    """

    return allele.startswith("<") | (allele == "*") | allele.contains("[") | allele.contains("]")


#: Compressed bytes per partition below which ingest does not ask for more partitions.
MIN_PARTITION_BYTES = 8 << 20


def split_and_drop_alleles(
    mt: hl.MatrixTable, *, keep_symbolic: bool = False, needs_split: bool = True
) -> hl.MatrixTable:
    """Split multi-allelic sites, then drop symbolic/star/breakend and ALT-less rows.

    Returns a MatrixTable whose rows are all bi-allelic, with ``a_index`` and
    ``was_split`` from :func:`hail.split_multi_hts`.

    ``needs_split=False`` (the validation pass found every record bi-allelic
    with REF or ALT a single base, so the split would change nothing) skips
    :func:`hail.split_multi_hts` and sets ``a_index = 1``, ``was_split = False``
    directly: the split reads the data twice (variants whose position moves
    under ``min_rep`` are re-sorted) and rewrites every genotype.
    """
    import hail as hl

    mt = mt.filter_rows(hl.len(mt.alleles) >= 2)
    if needs_split:
        mt = hl.split_multi_hts(mt, keep_star=keep_symbolic)
    else:
        mt = mt.annotate_rows(a_index=1, was_split=False)
    if not keep_symbolic:
        mt = mt.filter_rows(~is_dropped_allele_expr(mt.alleles[1]))
    return mt


def classify_inputs(paths: Sequence[str]) -> str:
    """The one kind of all ``paths`` (``vcf``, ``plink``, ``bgen``, ``mt``).

    Raises
    ------
    InputError
        Inputs of several kinds, or more than one PLINK fileset or MatrixTable.
    """
    kinds = {p: input_kind(p) for p in paths}
    distinct = sorted(set(kinds.values()))
    if len(distinct) > 1:
        shown = ", ".join(f"{p} ({INPUT_KINDS[k]})" for p, k in list(kinds.items())[:3])
        raise InputError(
            f"ingest takes one kind of input at a time, got {shown}; convert them to one "
            "format first (e.g. plink2 --pmerge-list) or ingest them into separate runs"
        )
    kind = distinct[0]
    if kind in ("plink", "mt") and len(paths) > 1:
        raise InputError(
            f"ingest takes one {INPUT_KINDS[kind]}, got {len(paths)}; merge them first "
            "(plink1.9 --merge-list, or MatrixTable.union_rows)"
        )
    return kind


def input_files(paths: Sequence[str], bgen_sample: str | None = None) -> list[str]:
    """The files behind ingest inputs (for fingerprints): a PLINK fileset's three files,
    BGEN files and their ``.sample``, a MatrixTable's ``metadata.json.gz``, VCFs as given."""
    kind = classify_inputs(paths)
    if kind == "plink":
        prefix = plink_prefix(paths[0])
        return [prefix + ext for ext in (".bed", ".bim", ".fam")]
    if kind == "mt":
        return [paths[0].rstrip("/") + "/metadata.json.gz"]
    if kind == "bgen":
        sample = bgen_sample or paths[0][: -len(".bgen")] + ".sample"
        return [*paths, *([sample] if storage.exists(sample) else [])]
    return list(paths)


def scan_genotype_files(
    kind: str, paths: Sequence[str], reference: ReferenceContigs, config: IngestConfig
) -> GenotypeFileScan:
    """The up-front check of the non-VCF input (no JVM)."""
    if kind == "plink":
        return scan_plink(paths[0], reference, skip_unknown_contigs=config.skip_unknown_contigs)
    if kind == "bgen":
        return scan_bgen(
            paths,
            reference,
            sample_file=config.bgen_sample,
            skip_unknown_contigs=config.skip_unknown_contigs,
        )
    return scan_matrix_table(paths[0])


def import_genotype_files(
    scan: GenotypeFileScan,
    reference: ReferenceContigs,
    config: IngestConfig,
    index_paths: Sequence[str],
) -> hl.MatrixTable:
    """The bronze genotypes of a checked non-VCF input, before metadata and stamp."""
    if scan.kind == "plink":
        return import_plink_fileset(
            scan.paths[0],
            reference,
            scan.contig_recoding,
            skip_unknown_contigs=config.skip_unknown_contigs,
        )
    if scan.kind == "bgen":
        index_bgen_files(
            scan.paths,
            index_paths,
            reference,
            scan.contig_recoding,
            skip_unknown_contigs=config.skip_unknown_contigs,
        )
        return import_bgen_files(
            scan.paths, index_paths, scan.samples, hard_call_threshold=config.hard_call_threshold
        )
    mt = read_input_matrix_table(scan.paths[0], reference)
    mt = split_and_drop_alleles(mt, keep_symbolic=config.keep_symbolic)
    if "DS" in mt.entry:  # a dosage is per bi-allelic record: none for split ones
        ds = hl_or_missing_unsplit(mt)
        mt = (
            select_genotype_entries(mt, ds, config.hard_call_threshold)
            if "GT" not in mt.entry
            else mt.select_entries(GT=mt.GT, DS=ds)
        )
    return mt.drop("a_index", "was_split")


def hl_or_missing_unsplit(mt: hl.MatrixTable) -> hl.expr.Float64Expression:
    """``DS`` where the record was bi-allelic in the input, else missing."""
    import hail as hl

    return hl.or_missing(~mt.was_split, mt.DS)


def annotate_sample_metadata(mt: hl.MatrixTable, metadata: SampleMetadata) -> hl.MatrixTable:
    """Join metadata columns onto ``mt``'s columns (missing where a sample has none)."""
    table = sample_metadata_table(metadata)
    reserved = set(mt.col) | {"s"}
    clashes = [f for f in metadata.fields if f in reserved]
    if clashes:
        raise InputError(
            f"{metadata.path}: column(s) {', '.join(clashes)} clash with genotype fields; rename them"
        )
    return mt.annotate_cols(**table[mt.s])


def finish_bronze(
    mt: hl.MatrixTable, metadata: SampleMetadata | None, parameters: dict[str, Any]
) -> hl.MatrixTable:
    """Join the sample metadata and stamp the parameters (the last step of every input)."""
    import hail as hl

    if metadata is not None:
        mt = annotate_sample_metadata(mt, metadata)
    return mt.annotate_globals(
        gwas_prs=hl.struct(
            stage="ingest", version=__version__, parameters=json.dumps(parameters, sort_keys=True)
        )
    )


def write_bronze(mt: hl.MatrixTable, path: str) -> tuple[hl.MatrixTable, dict[str, int], int]:
    """Write ``mt`` to ``path`` and read it back: the written MatrixTable, its rows per
    contig and its number of partitions (what the manifest records and the count check
    compares)."""
    import hail as hl

    mt.write(path, overwrite=True)
    written = hl.read_matrix_table(path)
    per_contig = {
        str(k): int(v)
        for k, v in written.aggregate_rows(hl.agg.counter(written.locus.contig)).items()
    }
    return written, per_contig, written.n_partitions()


def metadata_match_counts(match: SampleMatch | None) -> dict[str, int | None]:
    """The manifest counts of the sample-metadata match (None without metadata)."""
    return {
        "samples_without_metadata": len(match.samples_without_metadata) if match else None,
        "metadata_rows_without_sample": len(match.metadata_without_sample) if match else None,
    }


def ingest_result(
    run: RunFolder, counts: dict[str, Any], samples: int, started: float, notes: list[str],
    log_path: str | None,
) -> IngestResult:  # fmt: skip
    """The :class:`IngestResult` of a finished ingest (``started``: its monotonic start)."""
    return IngestResult(
        run_dir=run.root,
        output=run.bronze_mt,
        samples=samples,
        counts=dict(counts),
        wall_time_s=round(time.monotonic() - started, 3),
        notes=notes,
        log_path=log_path,
    )


def check_written_counts(
    per_contig: dict[str, int], expected: dict[str, int], log_path: str | None
) -> None:
    """Hail must have written exactly the rows the check counted, per contig.

    Raises
    ------
    ComputationError
        Naming the totals and the first contigs that differ.
    """
    written = {k: v for k, v in per_contig.items() if v}
    wanted = {k: v for k, v in expected.items() if v}
    if written == wanted:
        return
    differing = [
        f"{contig}: {written.get(contig, 0)} vs {wanted.get(contig, 0)}"
        for contig in sorted(set(written) | set(wanted))
        if written.get(contig, 0) != wanted.get(contig, 0)
    ]
    shown = ", ".join(differing[:3]) + (", …" if len(differing) > 3 else "")
    log_hint = f" — see the Hail log {log_path}" if log_path else ""
    raise ComputationError(
        f"Hail wrote {sum(written.values())} variants but the checked input implies "
        f"{sum(wanted.values())} (written vs expected per contig: {shown}); nothing was "
        f"published{log_hint}"
    )


def ingest_genotype_files(
    config: IngestConfig,
    hail: HailConfig | None,
    run: RunFolder,
    reference: ReferenceContigs,
    paths: Sequence[str],
    kind: str,
    metadata: SampleMetadata | None,
    started: float,
) -> IngestResult:
    """Check, import and publish a PLINK fileset, BGEN files or a MatrixTable (the body
    of :func:`gwas_prs.stages.ingest.run_ingest` for these inputs)."""
    t0 = time.monotonic()
    scan = scan_genotype_files(kind, paths, reference, config)
    validation_s = time.monotonic() - t0
    notes: list[str] = []
    parameters: dict[str, Any] = {
        "inputs": list(paths),
        "input_format": kind,
        "bgen_sample": scan.sample_file,
        "samples_file": config.samples_file,
        "sample_id_column": metadata.id_column if metadata else None,
        "reference_genome": reference.name,
        "keep_symbolic": config.keep_symbolic,
        "skip_unknown_contigs": config.skip_unknown_contigs,
        "hard_call_threshold": config.hard_call_threshold,
    }
    inputs = [InputFile(f, storage.file_size(f), storage.sha256_file(f)) for f in scan.files]
    if config.samples_file:
        inputs.append(
            InputFile(
                config.samples_file,
                storage.file_size(config.samples_file),
                storage.sha256_file(config.samples_file),
            )
        )
    match = _match(config, metadata, list(scan.samples), notes) if scan.samples else None
    hail_config = hail or HailConfig(
        run_dir=run.root, command="ingest", reference_genome=reference.name
    )
    index_dir = storage.join(run.root, "bronze", "bgen-index")
    index_paths = [
        storage.join(index_dir, f"{i}-{p.rsplit('/', 1)[-1]}.idx2")
        for i, p in enumerate(scan.paths)
    ]
    with stage_run(
        run,
        "ingest",
        parameters=parameters,
        inputs=inputs,
        final_outputs=[run.bronze_mt],
        overwrite=config.overwrite,
        engine=current_engine(),
    ) as stage:
        log_path = start_hail(hail_config)

        tmp_mt = stage.temporary_path(run.bronze_mt)
        storage.makedirs(storage.join(run.root, "bronze"))
        logger.info("importing the %s and writing the bronze MatrixTable…", INPUT_KINDS[kind])
        t1 = time.monotonic()
        with hail_errors_as_computation_errors(f"importing the {INPUT_KINDS[kind]}", log_path):
            storage.remove(index_dir)
            mt = import_genotype_files(scan, reference, config, index_paths)
            samples = scan.samples or tuple(mt.s.collect())
            if not scan.samples:  # a MatrixTable: its samples are known once Hail reads it
                match = _match(config, metadata, list(samples), notes)
            written, per_contig, n_partitions = write_bronze(
                finish_bronze(mt, metadata, parameters), tmp_mt
            )
        stage.counts.update(
            {
                "input_format": kind,
                "samples": len(samples),
                "records_read": sum(scan.records_per_contig.values()) or None,
                "skipped_unknown_contig_records": scan.skipped_unknown_contig,
                "dropped_alleles": scan.dropped_alleles,
                "expected_variants": sum((scan.expected_rows_per_contig or {}).values()) or None,
                "variants": int(sum(per_contig.values())),
                "variants_per_contig": per_contig,
                "dosages": "DS" in written.entry,
                **metadata_match_counts(match),
                "partitions": n_partitions,
                "validation_s": round(validation_s, 3),
                "import_write_s": round(time.monotonic() - t1, 3),
            }
        )
        if scan.expected_rows_per_contig is not None:
            check_written_counts(per_contig, scan.expected_rows_per_contig, log_path)
        stage.publish(tmp_mt, run.bronze_mt, "bronze_mt")
        stage.record.parameters["notes"] = notes
    return ingest_result(run, stage.counts, len(samples), started, notes, log_path)


def _match(
    config: IngestConfig,
    metadata: SampleMetadata | None,
    samples: list[str],
    notes: list[str],
) -> SampleMatch | None:
    """Match the metadata to the samples, adding notes (raises when none match)."""
    if metadata is None:
        return None
    match = match_samples(metadata, samples)
    if match.matched == 0:
        raise InputError(
            f"{config.samples_file}: none of its {len(metadata.frame)} sample IDs are in the "
            f"genotypes (first sample: '{samples[0]}'); check the ID column"
        )
    if match.samples_without_metadata:
        notes.append(
            f"{len(match.samples_without_metadata)} sample(s) have no metadata "
            f"(e.g. {', '.join(match.samples_without_metadata[:3])})"
        )
    if match.metadata_without_sample:
        notes.append(f"{len(match.metadata_without_sample)} metadata row(s) match no sample")
    return match
