"""Check VCF files before Hail sees them.

:func:`validate_vcfs` reads every file once, in a process pool, and raises an
:class:`~gwas_prs.errors.InputError` naming the file, the line and the problem
for the first mistake it finds. The same pass

- checks the gzip stream decompresses to its end (a truncated download fails),
- computes the SHA-256 of the file (the manifest's fingerprint),
- counts records, multi-allelic sites and the ALT alleles ingest will drop, per
  contig (the expected counts that the Hail import is checked against),
- rewrites plain-gzip input as BGZF so that Hail can import it in parallel.

Only the standard library is used: no JVM is started here.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import zlib
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import (
    FIRST_EXCEPTION,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from gwas_prs import storage
from gwas_prs.bgzf import BgzfWriter, is_bgzf_header
from gwas_prs.errors import InputError
from gwas_prs.reference import ReferenceContigs

logger = logging.getLogger(__name__)

FIXED_COLUMNS = ("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")
_MAX_HEADER_LINE = 1 << 20


@dataclass(frozen=True)
class VcfHeader:
    """What the header of a VCF says."""

    path: str
    compression: str  # "plain", "gzip" or "bgzf"
    samples: tuple[str, ...]
    header_lines: int


@dataclass
class VcfScan:
    """The result of reading a whole VCF (see :func:`scan_vcf`)."""

    path: str
    compression: str
    size: int
    fingerprint: str
    n_samples: int
    records: int = 0
    multiallelic_records: int = 0
    #: records :func:`hail.split_multi_hts` would change: multi-allelic, or REF and ALT
    #: both longer than one base (``min_rep`` may trim them)
    records_needing_split: int = 0
    alt_alleles: int = 0
    #: ALT alleles that ingest drops, by reason (``symbolic``, ``star``, ``breakend``, ``no_alt``)
    dropped_alleles: dict[str, int] = field(default_factory=dict)
    #: rows expected after splitting and dropping, per reference contig
    expected_rows_per_contig: dict[str, int] = field(default_factory=dict)
    records_per_contig: dict[str, int] = field(default_factory=dict)
    skipped_unknown_contig: int = 0
    converted_to: str | None = None

    @property
    def expected_rows(self) -> int:
        return sum(self.expected_rows_per_contig.values())


class _HashingRaw(io.RawIOBase):
    """A raw reader that hashes every byte it reads (wrap it in a BufferedReader)."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._handle.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.digest.update(data)
        return n

    def close(self) -> None:
        self._handle.close()
        super().close()


def _fail(path: str, line: int | None, problem: str) -> InputError:
    where = f"{path}:{line}" if line is not None else path
    return InputError(f"{where}: {problem}")


def _check_is_file(path: str) -> int:
    if not os.path.exists(path):
        raise _fail(path, None, "no such file; check the path (globs must match at least one file)")
    if os.path.isdir(path):
        raise _fail(
            path, None, "is a directory, not a VCF file; give the .vcf/.vcf.gz files inside it"
        )
    if not os.access(path, os.R_OK):
        raise _fail(path, None, "cannot be read (permission denied)")
    size = os.path.getsize(path)
    if size == 0:
        raise _fail(path, None, "the file is empty; it is not a VCF")
    return size


def detect_compression(path: str) -> str:
    """``plain``, ``gzip`` or ``bgzf``, from the file's first bytes (not its name)."""
    with storage.open_binary(path) as handle:
        head = handle.read(18)
    if head[:2] == b"\x1f\x8b":
        return "bgzf" if is_bgzf_header(head) else "gzip"
    return "plain"


def _open_text(path: str, compression: str, raw: BinaryIO) -> BinaryIO:
    if compression == "plain":
        return raw
    return cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))


def _read_header(
    path: str, stream: BinaryIO, sink: list[bytes] | None = None
) -> tuple[tuple[str, ...], int]:
    """Read header lines up to ``#CHROM``; return (samples, lines read).

    The raw header lines are appended to ``sink`` when it is given.
    """
    first = stream.readline(_MAX_HEADER_LINE)
    if sink is not None:
        sink.append(first)
    if not first.startswith(b"##fileformat=VCF"):
        shown = first[:40].decode("utf-8", "replace").strip() or "(empty line)"
        raise _fail(
            path,
            1,
            f"missing the '##fileformat=VCF' header line (found {shown!r}); this is not a VCF file",
        )
    line_no = 1
    while True:
        line = stream.readline(_MAX_HEADER_LINE)
        line_no += 1
        if sink is not None:
            sink.append(line)
        if not line:
            raise _fail(
                path,
                line_no,
                "the file ends before the '#CHROM' header line; the header is incomplete",
            )
        if line.startswith(b"##"):
            continue
        if not line.startswith(b"#CHROM"):
            raise _fail(
                path,
                line_no,
                "data line before the '#CHROM' header line; every VCF needs the "
                "'#CHROM POS ID REF ALT QUAL FILTER INFO FORMAT samples…' line",
            )
        columns = line.rstrip(b"\r\n").decode("utf-8", "replace").split("\t")
        if tuple(columns[:8]) != FIXED_COLUMNS:
            raise _fail(
                path,
                line_no,
                f"the '#CHROM' line must start with {' '.join(FIXED_COLUMNS)} separated by tabs",
            )
        if len(columns) < 10 or columns[8] != "FORMAT":
            raise _fail(
                path,
                line_no,
                "no FORMAT column and no samples; gwas-prs needs per-sample genotypes",
            )
        samples = tuple(columns[9:])
        seen: dict[str, int] = {}
        for index, sample in enumerate(samples):
            if sample in seen:
                raise _fail(
                    path,
                    line_no,
                    f"duplicate sample ID '{sample}' (columns {seen[sample] + 10} and {index + 10}); "
                    "sample IDs must be unique",
                )
            seen[sample] = index
        return samples, line_no


def read_vcf_header(path: str) -> VcfHeader:
    """Read and check the header of one VCF (fast: stops at ``#CHROM``)."""
    _check_is_file(path)
    compression = detect_compression(path)
    with storage.open_binary(path) as raw:
        stream = _open_text(path, compression, raw)
        try:
            samples, lines = _read_header(path, stream)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise _fail(path, None, f"the gzip stream is damaged or truncated ({exc})") from exc
    return VcfHeader(path, compression, samples, lines)


def _allele_drop_reason(alt: bytes) -> str | None:
    if alt.startswith(b"<"):
        return "symbolic"
    if alt == b"*":
        return "star"
    if b"[" in alt or b"]" in alt:
        return "breakend"
    return None


def scan_vcf(
    path: str,
    reference: ReferenceContigs,
    *,
    keep_symbolic: bool = False,
    skip_unknown_contigs: bool = False,
    convert_to: str | None = None,
) -> VcfScan:
    """Read a whole VCF, checking every data line (see the module docstring).

    Parameters
    ----------
    convert_to:
        For plain-gzip input, write a BGZF copy here (decompressed data is the
        same byte for byte). Ignored for other compressions.

    Raises
    ------
    InputError
        The first problem found, as ``FILE:LINE: problem; what to do``.
    """
    size = _check_is_file(path)
    compression = detect_compression(path)
    hashing = _HashingRaw(storage.open_binary(path))
    raw = io.BufferedReader(hashing, buffer_size=1 << 20)
    writer: BgzfWriter | None = None
    tmp_target: str | None = None
    if convert_to is not None and compression == "gzip":
        # object stores write whole objects atomically; locally write a .part and rename
        tmp_target = convert_to if storage.is_remote(convert_to) else convert_to + ".part"
        writer = BgzfWriter(storage.open_binary(tmp_target, "wb"))
    stream = _open_text(path, compression, raw)
    line_no = 0
    try:
        header_bytes: list[bytes] = []
        samples, header_end = _read_header(path, stream, header_bytes)
        if writer is not None:
            writer.write(b"".join(header_bytes))
        n_samples = len(samples)
        expected_tabs = 8 + n_samples
        line_no = header_end
        scan = VcfScan(path, compression, size, "", n_samples)
        records_per_contig: Counter[str] = Counter()
        rows_per_contig: Counter[str] = Counter()
        dropped: Counter[str] = Counter()
        contig_cache: dict[bytes, str | None] = {}
        last_format = b""
        for line in stream:
            line_no += 1
            if writer is not None:
                writer.write(line)
            tabs = line.count(b"\t")
            if tabs != expected_tabs:
                if not line.strip():
                    raise _fail(path, line_no, "empty line in the data section; remove it")
                raise _fail(
                    path,
                    line_no,
                    f"{tabs + 1} tab-separated columns, expected {expected_tabs + 1} "
                    f"(9 fixed + {n_samples} samples); the line is ragged or the file was cut",
                )
            chrom_b, pos_b, _id, ref_b, alt_b, _qual, _filter, _info, fmt_b, _rest = line.split(
                b"\t", 9
            )
            contig = contig_cache.get(chrom_b, "?")
            if contig == "?":
                contig = reference.resolve(chrom_b.decode("utf-8", "replace"))
                contig_cache[chrom_b] = contig
            if contig is None:
                if skip_unknown_contigs:
                    scan.skipped_unknown_contig += 1
                    continue
                shown = chrom_b.decode("utf-8", "replace")
                raise _fail(
                    path,
                    line_no,
                    f"contig '{shown}' is not in {reference.name} (primary contigs "
                    f"{reference.autosomes[0]}..{reference.autosomes[-1]}, {', '.join(reference.x_contigs + reference.y_contigs + reference.mt_contigs)}); "
                    "check --reference-genome or pass --skip-unknown-contigs to drop such records",
                )
            if not pos_b.isdigit():
                raise _fail(
                    path,
                    line_no,
                    f"POS '{pos_b.decode('utf-8', 'replace')}' is not a positive integer",
                )
            pos = int(pos_b)
            if pos < 1 or pos > reference.lengths[contig]:
                raise _fail(
                    path,
                    line_no,
                    f"POS {pos} is outside contig {contig} (length {reference.lengths[contig]:,} in "
                    f"{reference.name}); check --reference-genome",
                )
            if fmt_b != last_format:
                if fmt_b.split(b":", 1)[0] != b"GT":
                    shown = fmt_b.decode("utf-8", "replace")
                    raise _fail(
                        path,
                        line_no,
                        f"FORMAT '{shown}' does not start with GT; gwas-prs needs hard-called "
                        "genotypes (GT first, as the VCF specification requires)",
                    )
                last_format = fmt_b
            records_per_contig[contig] += 1
            alts = alt_b.split(b",")
            if alts == [b"."]:
                dropped["no_alt"] += 1
                continue
            scan.alt_alleles += len(alts)
            if len(alts) > 1:
                scan.multiallelic_records += 1
                scan.records_needing_split += 1
            elif len(ref_b) > 1 and len(alts[0]) > 1:
                scan.records_needing_split += 1  # min_rep may trim REF/ALT (an MNP or indel)
            kept = len(alts)
            if not keep_symbolic:
                for alt in alts:
                    reason = _allele_drop_reason(alt)
                    if reason is not None:
                        dropped[reason] += 1
                        kept -= 1
            rows_per_contig[contig] += kept
        if line_no == header_end:
            raise _fail(path, None, "the VCF has a header but no variant records")
        scan.records = sum(records_per_contig.values())
        scan.records_per_contig = dict(records_per_contig)
        scan.expected_rows_per_contig = dict(rows_per_contig)
        scan.dropped_alleles = dict(dropped)
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        if writer is not None:
            writer.close()
        if tmp_target:
            storage.remove(tmp_target)
        raise _fail(
            path,
            line_no or None,
            f"the gzip stream is truncated or corrupt after line {line_no} ({exc}); "
            "the file is incomplete — download or copy it again",
        ) from exc
    except InputError:
        if writer is not None:
            writer.close()
        if tmp_target:
            storage.remove(tmp_target)
        raise
    finally:
        raw.close()
    scan.fingerprint = f"sha256:{hashing.digest.hexdigest()}"
    if writer is not None and tmp_target is not None and convert_to is not None:
        writer.close()
        if tmp_target != convert_to:
            os.replace(tmp_target, convert_to)
        scan.converted_to = convert_to
    return scan


def check_same_samples(headers: Sequence[VcfHeader]) -> None:
    """All files must list the same samples in the same order.

    Raises
    ------
    InputError
        Naming the first file that differs and the first differing column.
    """
    first = headers[0]
    for other in headers[1:]:
        if other.samples == first.samples:
            continue
        if len(other.samples) != len(first.samples):
            detail = f"{len(other.samples)} samples vs {len(first.samples)}"
        else:
            index = next(
                i
                for i, (a, b) in enumerate(zip(first.samples, other.samples, strict=True))
                if a != b
            )
            detail = (
                f"column {index + 10} is '{other.samples[index]}' where {first.path} has "
                f"'{first.samples[index]}'"
            )
        raise _fail(
            other.path,
            other.header_lines,
            f"samples differ from {first.path} ({detail}); all VCFs must have the same samples "
            "in the same order (e.g. reorder with 'bcftools view -S')",
        )


def validate_vcfs(
    paths: Sequence[str],
    reference: ReferenceContigs,
    *,
    keep_symbolic: bool = False,
    skip_unknown_contigs: bool = False,
    convert_dir: str | None = None,
    workers: int = 1,
) -> tuple[tuple[str, ...], list[VcfScan]]:
    """Validate every VCF; return the samples and one :class:`VcfScan` per file.

    Headers are checked first (seconds), then every file is read in full by
    ``workers`` processes. Plain-gzip files are rewritten as BGZF into
    ``convert_dir`` when it is given.
    """
    headers = [read_vcf_header(p) for p in paths]
    check_same_samples(headers)
    scans: dict[str, VcfScan] = {}

    def target(path: str, index: int) -> str | None:
        if convert_dir is None:
            return None
        stem = path.rstrip("/").rpartition("/")[2].removesuffix(".gz").removesuffix(".vcf")
        return storage.join(convert_dir, f"{index:05d}-{stem}.vcf.bgz")

    kwargs = {"keep_symbolic": keep_symbolic, "skip_unknown_contigs": skip_unknown_contigs}
    if workers <= 1 or len(paths) == 1:
        for index, path in enumerate(paths):
            scans[path] = scan_vcf(path, reference, convert_to=target(path, index), **kwargs)
            logger.info("validated %d/%d files (%s)", len(scans), len(paths), path)
    else:
        # processes locally (zlib and the line checks use the cores); threads for
        # remote files, whose client must not be forked
        remote = any(storage.is_remote(p) for p in paths)
        executor = ThreadPoolExecutor if remote else ProcessPoolExecutor
        with executor(max_workers=min(workers, len(paths))) as pool:
            futures: dict[Future[VcfScan], str] = {
                pool.submit(
                    scan_vcf, path, reference, convert_to=target(path, index), **kwargs
                ): path
                for index, path in enumerate(paths)
            }
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in done:
                    error = future.exception()
                    if error is not None:
                        for other in pending:
                            other.cancel()
                        raise error
                    scans[futures[future]] = future.result()
                    logger.info(
                        "validated %d/%d files (%s)", len(scans), len(paths), futures[future]
                    )
    return headers[0].samples, [scans[p] for p in paths]
