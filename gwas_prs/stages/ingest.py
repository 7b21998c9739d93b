"""VCF import: the bronze layer.

Library functions build Hail expressions and MatrixTables; :func:`run_ingest`
is the stage runner, the only function here that writes.

The bronze MatrixTable (``RUN/bronze/genotypes.mt``) has

- row key ``locus`` (reference genome of the run), ``alleles`` (bi-allelic after
  :func:`hail.split_multi_hts`), plus ``rsid``, ``qual``, ``filters``, ``info``,
  ``a_index``/``was_split`` from the split;
- column key ``s`` and one field per column of the sample metadata file;
- entry fields from the VCF (``GT`` at least);
- global ``gwas_prs`` (struct: ``stage``, ``version``, ``parameters`` as JSON).
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gwas_prs.core import storage
from gwas_prs.core.errors import InputError
from gwas_prs.core.reference import ReferenceContigs, reference_contigs
from gwas_prs.core.run_folder import InputFile, RunFolder, check_can_write, stage_run
from gwas_prs.core.stage_options import INGEST
from gwas_prs.engine.hail_context import HailConfig, start_hail, usable_cores
from gwas_prs.engine.hail_errors import hail_errors_as_computation_errors
from gwas_prs.engine.switch import current_engine, stage_runner
from gwas_prs.formats.genotype_import import alt_dosages_expr, select_genotype_entries
from gwas_prs.formats.sample_metadata import (
    SampleMatch,
    SampleMetadata,
    match_samples,
    read_sample_metadata,
)
from gwas_prs.formats.vcf_validation import VcfScan, check_unchanged, validate_vcfs
from gwas_prs.stages.ingest_config import IngestConfig, IngestResult
from gwas_prs.stages.ingest_files import (
    check_written_counts,
    classify_inputs,
    finish_bronze,
    ingest_genotype_files,
    ingest_result,
    metadata_match_counts,
    split_and_drop_alleles,
    write_bronze,
)

if TYPE_CHECKING:
    import hail as hl


logger = logging.getLogger(__name__)

VCF_SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz")


def expand_vcf_paths(patterns: Sequence[str]) -> list[str]:
    """Expand globs; keep the given order, sorting each glob's matches naturally.

    Raises
    ------
    InputError
        A pattern matches nothing, or the same file is given twice.
    """
    import re

    def natural(path: str) -> list[Any]:
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]

    paths: list[str] = []
    for pattern in patterns:
        if any(ch in pattern for ch in "*?["):
            matches = sorted(storage.glob_files(pattern), key=natural)
            if not matches:
                raise InputError(f"{pattern}: the pattern matches no file")
            paths.extend(matches)
        else:
            paths.append(pattern)
    seen: set[str] = set()
    for path in paths:
        real = path if storage.is_remote(path) else os.path.realpath(path)
        if real in seen:
            raise InputError(f"{path}: given twice; list each VCF once")
        seen.add(real)
    if not paths:
        raise InputError("no VCF given; pass one or more .vcf/.vcf.gz/.vcf.bgz files or globs")
    return paths


#: Compressed bytes per partition below which ingest does not ask for more partitions.
MIN_PARTITION_BYTES = 8 << 20


def import_partitions(total_bytes: int, n_files: int, cores: int) -> int | None:
    """``min_partitions`` for :func:`hail.import_vcf` in local mode, or None.

    Hail splits BGZF files at block boundaries. Left alone, a 40 MB file is one
    partition, and four of them on two cores leave one core idle for the last
    quarter of every later pass over the data. Ask for 4 partitions per core
    (so the tail of a pass is short), but never below ~8 MB of compressed VCF
    each (tiny partitions cost more in task overhead than they gain).
    """
    wanted = min(4 * cores, total_bytes // MIN_PARTITION_BYTES)
    return int(wanted) if wanted > n_files else None


def import_vcfs(
    paths: Sequence[str],
    reference: ReferenceContigs,
    *,
    min_partitions: int | None = None,
    skip_unknown_contigs: bool = False,
) -> hl.MatrixTable:
    """Import VCFs (BGZF; the checked copies of other input) as one MatrixTable with
    contigs recoded.

    ``skip_unknown_contigs`` drops records on contigs the reference lacks (the check
    has counted them, and refused positions outside known contigs).
    """
    import hail as hl

    return hl.import_vcf(
        list(paths),
        reference_genome=reference.name,
        contig_recoding=dict(reference.recoding),
        force_bgz=True,
        array_elements_required=False,
        skip_invalid_loci=skip_unknown_contigs,
        min_partitions=min_partitions,
    )


def build_bronze(
    vcf_paths: Sequence[str],
    reference: ReferenceContigs,
    *,
    metadata: SampleMetadata | None,
    keep_symbolic: bool,
    parameters: dict[str, Any],
    needs_split: bool = True,
    min_partitions: int | None = None,
    skip_unknown_contigs: bool = False,
    hard_call_threshold: float = INGEST.default("hard-call-threshold"),
) -> hl.MatrixTable:
    """The bronze MatrixTable (not written): import, split, drop, join metadata, stamp.

    A VCF with ``DS`` or ``GP`` gets the entries ``DS`` (ALT dosage of each split
    ALT) and ``GT`` derived from it (:mod:`gwas_prs.formats.genotype_import`); a VCF
    with GT only keeps its entry fields."""

    mt = import_vcfs(
        vcf_paths,
        reference,
        min_partitions=min_partitions,
        skip_unknown_contigs=skip_unknown_contigs,
    )
    mt = vcf_genotypes(
        mt,
        keep_symbolic=keep_symbolic,
        needs_split=needs_split,
        hard_call_threshold=hard_call_threshold,
    )
    return finish_bronze(mt, metadata, parameters)


def vcf_genotypes(
    mt: hl.MatrixTable,
    *,
    keep_symbolic: bool = False,
    needs_split: bool = True,
    hard_call_threshold: float = INGEST.default("hard-call-threshold"),
) -> hl.MatrixTable:
    """An imported VCF split and cleaned (:func:`split_and_drop_alleles`); with ``DS``
    or ``GP``, its entries become ``GT`` (derived) and ``DS`` (each split ALT's dosage,
    doubled for a haploid call: the diploid 0..2 scale everywhere)."""
    import hail as hl

    dosages = alt_dosages_expr(mt)
    if dosages is not None and "GT" in mt.entry:
        # a haploid call's dosage (a male's non-PAR X: 0..1) on the diploid scale, as
        # plink2 imports it, so the derived hard call of a hemizygous ALT is 1/1
        haploid = hl.coalesce(mt.GT.ploidy == 1, False)
        dosages = hl.if_else(haploid, dosages.map(lambda d: 2 * d), dosages)
    if dosages is not None:  # per-ALT dosages, picked for each ALT after the split
        mt = mt.select_entries(*(["GT"] if "GT" in mt.entry else []), _alt_ds=dosages)
    mt = split_and_drop_alleles(mt, keep_symbolic=keep_symbolic, needs_split=needs_split)
    if dosages is not None:
        mt = select_genotype_entries(mt, mt._alt_ds[mt.a_index - 1], hard_call_threshold)
    return mt


def _summarise_scans(scans: Sequence[VcfScan]) -> dict[str, Any]:
    records = Counter[str]()
    expected = Counter[str]()
    dropped = Counter[str]()
    for scan in scans:
        records.update(scan.records_per_contig)
        expected.update(scan.expected_rows_per_contig)
        dropped.update(scan.dropped_alleles)
    return {
        "records_read": sum(s.records for s in scans),
        "multiallelic_records": sum(s.multiallelic_records for s in scans),
        "alt_alleles": sum(s.alt_alleles for s in scans),
        "skipped_unknown_contig_records": sum(s.skipped_unknown_contig for s in scans),
        "dropped_alleles": dict(sorted(dropped.items())),
        "expected_variants": sum(expected.values()),
        "records_per_contig": dict(records),
        "expected_variants_per_contig": dict(expected),
    }


@stage_runner("ingest")
def run_ingest(config: IngestConfig, hail: HailConfig | None = None) -> IngestResult:
    """Validate the VCFs, then import them into ``RUN/bronze/genotypes.mt``.

    All inputs are checked before Hail starts. Plain-gzip and uncompressed VCFs
    are rewritten as BGZF under ``RUN/tmp/bgzf-PID`` while they are validated, and
    Hail imports those copies: exactly the bytes that were checked and
    fingerprinted, on all cores. BGZF input is read in place and fingerprinted
    again after the import (:func:`gwas_prs.formats.vcf_validation.check_unchanged`).
    ``RUN/tmp/bgzf-PID`` is removed on every exit. The MatrixTable is written to a
    temporary sibling and renamed into place only when Hail wrote exactly the
    variants the check counted, per contig; the manifest records the stage last.

    Raises
    ------
    InputError, OutputExistsError
        Before any heavy work; also a BGZF input that changed during the import
        (nothing is published).
    ComputationError
        Hail failed on data that passed validation, or wrote another number of
        variants than the check counted (nothing is published).
    """
    started = time.monotonic()
    run = RunFolder(config.run_dir)
    if run.is_remote():
        raise InputError(
            f"{run.root}: ingest into gs:// run folders runs on Dataproc ('gwas-prs dataproc submit')"
        )
    reference = reference_contigs(config.reference_genome)
    config.validate()
    paths = expand_vcf_paths(config.vcfs)
    kind = classify_inputs(paths)
    remote_inputs = [p for p in paths if storage.is_remote(p)]
    if remote_inputs and (hail or HailConfig()).resolved_master().startswith("local"):
        from gwas_prs.engine.gcs_connector import check_gcs_connector

        check_gcs_connector(remote_inputs[0], hail.spark_conf if hail else {})
    for path in paths if kind == "vcf" else ():
        if not path.endswith(VCF_SUFFIXES) and not storage.is_remote(path) and os.path.isfile(path):
            logger.warning("%s: unexpected file name (expected %s)", path, ", ".join(VCF_SUFFIXES))
    metadata = (
        read_sample_metadata(config.samples_file, config.sample_id_column)
        if config.samples_file
        else None
    )
    check_can_write(run, "ingest", [run.bronze_mt], overwrite=config.overwrite)
    if kind != "vcf":
        return ingest_genotype_files(config, hail, run, reference, paths, kind, metadata, started)

    # the BGZF copies Hail imports (see gwas_prs.formats.vcf_validation); removed on every exit
    convert_dir = storage.join(run.tmp, f"bgzf-{os.getpid()}")
    try:
        return _validate_and_import(
            config, hail, run, reference, paths, metadata, convert_dir, started
        )
    finally:
        storage.remove(convert_dir)


def _scan_notes(scans: Sequence[VcfScan]) -> list[str]:
    """What the summary says about the copies Hail imports and about unsorted files."""
    notes: list[str] = []
    gzip_copies = sum(1 for s in scans if s.converted_to and s.compression == "gzip")
    plain_copies = sum(1 for s in scans if s.converted_to and s.compression == "plain")
    if gzip_copies:
        notes.append(
            f"{gzip_copies} plain-gzip file(s) were rewritten as BGZF while validating, so the "
            "import is split across cores (plain gzip can only be read by one core)"
        )
    if plain_copies:
        notes.append(
            f"{plain_copies} uncompressed file(s) were copied as BGZF while validating; Hail "
            "imported the copy, exactly the text that was checked"
        )
    for scan in scans:
        if scan.bom:
            notes.append(
                f"{scan.path}: starts with a UTF-8 byte-order mark; it was left out of the copy "
                "Hail imported"
            )
        if scan.first_unsorted_line is not None:
            notes.append(
                f"{scan.path}:{scan.first_unsorted_line}: the records are not sorted by position; "
                "Hail sorts them, but duplicate records were only looked for on neighbouring lines"
            )
    return notes


def _validate_and_import(
    config: IngestConfig,
    hail: HailConfig | None,
    run: RunFolder,
    reference: ReferenceContigs,
    paths: list[str],
    metadata: SampleMetadata | None,
    convert_dir: str,
    started: float,
) -> IngestResult:
    """The body of :func:`run_ingest` once the inputs are known (the caller removes
    ``convert_dir``)."""
    workers = config.validation_workers or usable_cores()
    logger.info("validating %d VCF file(s) with %d worker(s)…", len(paths), workers)
    t0 = time.monotonic()
    samples, scans = validate_vcfs(
        paths,
        reference,
        keep_symbolic=config.keep_symbolic,
        skip_unknown_contigs=config.skip_unknown_contigs,
        convert_dir=convert_dir,
        workers=workers,
    )
    validation_s = time.monotonic() - t0
    notes = _scan_notes(scans)
    match: SampleMatch | None = match_samples(metadata, samples) if metadata is not None else None
    if match is not None:
        if match.matched == 0:
            raise InputError(
                f"{config.samples_file}: none of its {len(metadata.frame)} sample IDs are in the VCFs "  # type: ignore[union-attr]
                f"(first VCF sample: '{samples[0]}'); check the ID column"
            )
        if match.samples_without_metadata:
            notes.append(
                f"{len(match.samples_without_metadata)} sample(s) have no metadata "
                f"(e.g. {', '.join(match.samples_without_metadata[:3])})"
            )
        if match.metadata_without_sample:
            notes.append(
                f"{len(match.metadata_without_sample)} metadata row(s) match no VCF sample"
            )

    parameters = {
        "vcfs": paths,
        "samples_file": config.samples_file,
        "sample_id_column": metadata.id_column if metadata else None,
        "reference_genome": reference.name,
        "keep_symbolic": config.keep_symbolic,
        "skip_unknown_contigs": config.skip_unknown_contigs,
        "hard_call_threshold": config.hard_call_threshold,
    }
    # size and SHA-256 of the bytes the check read: those of the copy Hail imports, or
    # (BGZF read in place) fingerprinted again after the import
    inputs = [InputFile(s.path, s.size, s.fingerprint) for s in scans]
    if config.samples_file:
        inputs.append(
            InputFile(
                config.samples_file,
                storage.file_size(config.samples_file),
                storage.sha256_file(config.samples_file),
            )
        )
    scan_counts = _summarise_scans(scans)
    import_paths = [s.converted_to or s.path for s in scans]

    hail_config = hail or HailConfig(
        run_dir=run.root, command="ingest", reference_genome=reference.name
    )
    needs_split = any(s.records_needing_split for s in scans)
    min_partitions = (
        import_partitions(
            sum(s.size for s in scans), len(scans), hail_config.cores or usable_cores()
        )
        if hail_config.resolved_master().startswith("local")
        else None
    )
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
        logger.info("importing %d file(s) and writing the bronze MatrixTable…", len(import_paths))
        t1 = time.monotonic()
        with hail_errors_as_computation_errors("importing the VCFs", log_path):
            mt = build_bronze(
                import_paths,
                reference,
                metadata=metadata,
                keep_symbolic=config.keep_symbolic,
                parameters=parameters,
                needs_split=needs_split,
                min_partitions=min_partitions,
                skip_unknown_contigs=config.skip_unknown_contigs,
                hard_call_threshold=config.hard_call_threshold,
            )
            written, per_contig, n_partitions = write_bronze(mt, tmp_mt)
        import_s = time.monotonic() - t1
        n_variants = int(sum(per_contig.values()))
        stage.counts.update(
            {
                "samples": len(samples),
                **{
                    k: v
                    for k, v in scan_counts.items()
                    if k not in ("records_per_contig", "expected_variants_per_contig")
                },
                "variants": n_variants,
                "variants_per_contig": per_contig,
                "records_per_contig": scan_counts["records_per_contig"],
                **metadata_match_counts(match),
                "partitions": n_partitions,
                "multiallelic_split": needs_split,
                "dosages": "DS" in written.entry,
                "validation_s": round(validation_s, 3),
                "import_write_s": round(import_s, 3),
            }
        )
        # nothing is published unless Hail read what was checked and wrote what was counted
        check_unchanged(scans)
        check_written_counts(per_contig, scan_counts["expected_variants_per_contig"], log_path)
        stage.publish(tmp_mt, run.bronze_mt, "bronze_mt")
        stage.record.parameters["notes"] = notes
    return ingest_result(run, stage.counts, len(samples), started, notes, log_path)
