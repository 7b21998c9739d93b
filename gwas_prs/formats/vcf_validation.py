"""Check VCF files before Hail sees them.

:func:`validate_vcfs` reads every file once, in a process pool, and raises an
:class:`~gwas_prs.core.errors.InputError` naming the file, the line and the problem
for the first mistake it finds. The same pass

- checks the gzip stream decompresses to its end (a truncated download fails),
- computes the SHA-256 and size of the bytes it read (the manifest's fingerprint),
- checks every record: contig, position, REF/ALT, and every genotype (allele
  indices within REF+ALT, at most two alleles per call, numeric alleles),
- finds duplicate records (same contig, position, REF and ALT) and two files that
  cover the same stretch of a contig,
- counts records, multi-allelic sites and the ALT alleles ingest will drop, per
  contig (the expected counts that the Hail import is checked against),
- writes the *snapshot* Hail imports (see below).

Only the standard library is used: no JVM is started here.

What Hail imports is what was checked
-------------------------------------
When ``convert_to`` is given, plain-gzip and uncompressed input is rewritten as
BGZF while it is scanned (the decompressed data is the same byte for byte, minus
a UTF-8 byte-order mark, see below). Hail then imports that copy, so a file that
is appended to or rewritten after the check cannot change what is imported, and
the import runs on all cores (plain gzip can only be read by one core).

BGZF input is **not** copied: it is imported from where it is, and the stage runner
fingerprints it again (size, then SHA-256) after the import with
:func:`check_unchanged`, failing when it changed. A copy of the compressed bytes and
a re-fingerprint both add little time to the scan; but the copy doubles the disk a
cohort needs (large cohorts ship as BGZF, hundreds of GB) and, for ``gs://``
inputs, would download every file into the run folder, so the re-fingerprint was
chosen: it costs one more sequential read of each BGZF file (SHA-256 runs at disk
speed) and refuses, rather than imports, a file that changed. A BGZF file that
starts with a byte-order mark is copied (re-encoded) like plain gzip.

A UTF-8 byte-order mark (``EF BB BF``, written by some Windows editors) before
``##fileformat`` is accepted and left out of the copy Hail imports.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import io
import logging
import os
import re
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
from operator import itemgetter
from typing import Any, BinaryIO, cast

from gwas_prs.core import storage
from gwas_prs.core.errors import InputError
from gwas_prs.core.reference import ReferenceContigs
from gwas_prs.formats.bgzf import BgzfWriter, is_bgzf_header

logger = logging.getLogger(__name__)

FIXED_COLUMNS = ("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")
_MAX_HEADER_LINE = 1 << 20
UTF8_BOM = b"\xef\xbb\xbf"
_GZIP_MAGIC = b"\x1f\x8b"

#: REF: bases only (VCF 4.3, section 1.6.1).
_REF_OK = re.compile(rb"[ACGTNacgtn]+").fullmatch
#: An ALT field of bases, ``*`` and symbolic alleles (the fast check of every record).
_ALT_FIELD_OK = re.compile(
    rb"(?:[ACGTNacgtn]+|\*|<[^<>,]+>)(?:,(?:[ACGTNacgtn]+|\*|<[^<>,]+>))*"
).fullmatch
#: One ALT allele that is a breakend: ``N[1:123[``, ``]1:123]N``, or single ``.A`` / ``A.``.
_BREAKEND_OK = re.compile(
    rb"[ACGTNacgtn]*[\[\]][^\[\],]+[\[\]][ACGTNacgtn]*|\.[ACGTNacgtn]+|[ACGTNacgtn]+\."
).fullmatch
_ALLELE_OK = re.compile(rb"[ACGTNacgtn]+|\*|<[^<>,]+>").fullmatch
_GT_ALLELE_SEPARATOR = re.compile(rb"[|/]")
_MISSING = object()
_FIRST_FOUR = itemgetter(slice(0, 4))


def _gt_tables() -> list[bytes]:
    """Per number of ALT alleles (0..9): a translation of the sample columns of a
    GT-only line into a, s, t, n (allele, separator, tab, newline; x for the rest)."""
    tables = []
    for n_alt in range(10):
        table = bytearray(b"x" * 256)
        for char in b"." + b"0123456789"[: n_alt + 1]:
            table[char] = ord("a")
        table[ord("|")] = table[ord("/")] = ord("s")
        table[ord("\t")] = ord("t")
        table[ord("\n")] = ord("n")
        tables.append(bytes(table))
    return tables


_GT_TABLES = _gt_tables()


@dataclass(frozen=True)
class VcfHeader:
    """What the header of a VCF says."""

    path: str
    compression: str  # "plain", "gzip" or "bgzf"
    samples: tuple[str, ...]
    header_lines: int
    #: the file starts with a UTF-8 byte-order mark (accepted, left out of the copy Hail reads)
    bom: bool = False


@dataclass
class VcfScan:
    """The result of reading a whole VCF (see :func:`scan_vcf`)."""

    path: str
    compression: str
    #: bytes read (and hashed), the file's size when it did not change while read
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
    #: lowest and highest position of the records on each reference contig
    contig_ranges: dict[str, tuple[int, int]] = field(default_factory=dict)
    skipped_unknown_contig: int = 0
    #: the first line whose position is lower than the line before it on the same
    #: contig, or whose contig came back after another one (None: sorted)
    first_unsorted_line: int | None = None
    #: the file started with a UTF-8 byte-order mark
    bom: bool = False
    #: the BGZF copy Hail imports (None: Hail imports ``path`` itself)
    converted_to: str | None = None

    @property
    def expected_rows(self) -> int:
        return sum(self.expected_rows_per_contig.values())


class _HashingRaw(io.RawIOBase):
    """A raw reader that hashes and counts every byte it reads (wrap it in a BufferedReader)."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.digest = hashlib.sha256()
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._handle.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.digest.update(data)
        self.bytes_read += n
        return n

    def close(self) -> None:
        self._handle.close()
        super().close()


def _fail(path: str, line: int | None, problem: str) -> InputError:
    where = f"{path}:{line}" if line is not None else path
    return InputError(f"{where}: {problem}")


def _snapshot_error(target: str, source: str, exc: OSError) -> InputError:
    """One line for a failure to write the BGZF copy of ``source`` (full disk…)."""
    code = exc.errno or 0
    reason = exc.strerror or str(exc)
    if code in (errno.ENOSPC, errno.EDQUOT):
        todo = "free disk space there or choose a --run folder on a disk with room"
    elif code in (errno.EROFS, errno.EACCES, errno.EPERM):
        todo = "choose a writable --run folder"
    else:
        todo = "check that disk or choose a --run folder on another one"
    return _fail(target, None, f"cannot write the BGZF copy of {source} ({reason}); {todo}")


class _Snapshot:
    """The BGZF copy of one input, written to ``target + '.part'`` and renamed when whole.

    Every :class:`OSError` of the writing side becomes an :class:`InputError`
    naming the copy (the reading side's errors stay the reader's).
    """

    def __init__(self, source: str, target: str) -> None:
        self.source = source
        self.target = target
        # object stores write whole objects atomically; locally write a .part and rename
        self.part = target if storage.is_remote(target) else target + ".part"
        self._handle: BinaryIO | None = None
        try:
            self._handle = storage.open_binary(self.part, "wb")
            self._writer = BgzfWriter(cast(BinaryIO, self._handle))
        except OSError as exc:
            self.abort()
            raise _snapshot_error(self.part, source, exc) from exc

    def write(self, data: bytes) -> None:
        try:
            self._writer.write(data)
        except OSError as exc:
            raise _snapshot_error(self.part, self.source, exc) from exc

    def finish(self) -> str:
        try:
            self._writer.close()
            self._handle = None
            if self.part != self.target:
                os.replace(self.part, self.target)
        except OSError as exc:
            self.abort()
            raise _snapshot_error(self.part, self.source, exc) from exc
        return self.target

    def abort(self) -> None:
        """Close and remove the partial copy (best effort: the disk may be full)."""
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
            self._handle = None
        try:
            storage.remove(self.part)
        except OSError:  # pragma: no cover - the run's tmp folder is removed anyway
            logger.warning("could not remove %s", self.part)


def _check_is_file(path: str) -> int:
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _fail(
                path,
                None,
                "is a symbolic-link loop (following its links leads back to a link already "
                "followed); point the link at the real VCF file",
            ) from None
        if os.path.islink(path):
            raise _fail(
                path,
                None,
                f"is a symbolic link to '{os.readlink(path)}', which does not exist; fix the "
                "link or give the real file",
            ) from None
        if exc.errno != errno.ENOENT and os.path.lexists(path):
            raise _fail(path, None, f"cannot be read ({exc.strerror})") from None
        raise _fail(
            path, None, "no such file; check the path (globs must match at least one file)"
        ) from None
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
    if head[:2] == _GZIP_MAGIC:
        return "bgzf" if is_bgzf_header(head) else "gzip"
    return "plain"


def _open_text(path: str, compression: str, raw: BinaryIO) -> BinaryIO:
    if compression == "plain":
        return raw
    return cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))


def _read_header(
    path: str, stream: BinaryIO, sink: list[bytes] | None = None
) -> tuple[tuple[str, ...], int, bool]:
    """Read header lines up to ``#CHROM``; return (samples, lines read, had a BOM).

    The raw header lines (without a leading UTF-8 byte-order mark) are appended to
    ``sink`` when it is given.
    """
    first = stream.readline(_MAX_HEADER_LINE)
    bom = first.startswith(UTF8_BOM)
    if bom:
        first = first[len(UTF8_BOM) :]
    if sink is not None:
        sink.append(first)
    if not first.startswith(b"##fileformat=VCF"):
        if first.startswith(_GZIP_MAGIC):
            raise _fail(
                path,
                None,
                "the file is compressed twice (gzip inside gzip); decompress it once "
                f"('gzip -dc {path} > fixed.vcf.gz') and give the result",
            )
        if first.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise _fail(
                path,
                1,
                "the file is UTF-16 text (it starts with a UTF-16 byte-order mark); a VCF is "
                "ASCII/UTF-8: convert it (e.g. 'iconv -f UTF-16 -t UTF-8')",
            )
        shown = first[:40].decode("utf-8", "replace").strip() or "(empty line)"
        after_bom = " after a UTF-8 byte-order mark" if bom else ""
        raise _fail(
            path,
            1,
            f"missing the '##fileformat=VCF' header line (found {shown!r}{after_bom}); "
            "this is not a VCF file",
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
        return samples, line_no, bom


def read_vcf_header(path: str) -> VcfHeader:
    """Read and check the header of one VCF (fast: stops at ``#CHROM``)."""
    _check_is_file(path)
    compression = detect_compression(path)
    with storage.open_binary(path) as raw:
        stream = _open_text(path, compression, raw)
        try:
            samples, lines, bom = _read_header(path, stream)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise _fail(path, None, f"the gzip stream is damaged or truncated ({exc})") from exc
    return VcfHeader(path, compression, samples, lines, bom)


def _allele_drop_reason(alt: bytes) -> str | None:
    if alt.startswith(b"<"):
        return "symbolic"
    if alt == b"*":
        return "star"
    if b"[" in alt or b"]" in alt:
        return "breakend"
    return None


def _shown(value: bytes, limit: int = 40) -> str:
    text = value.decode("utf-8", "replace")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _alt_problem(alt_b: bytes) -> str | None:
    """Why an ALT field is invalid (None: valid). ``.`` (no ALT allele) is valid."""
    if alt_b == b"." or _ALT_FIELD_OK(alt_b):
        return None
    if not alt_b:
        return "ALT is empty; write '.' for a record without ALT alleles"
    for allele in alt_b.split(b","):
        if not allele:
            return f"ALT '{_shown(alt_b)}' has an empty allele; remove the extra comma"
        if not (_ALLELE_OK(allele) or _BREAKEND_OK(allele)):
            return (
                f"ALT allele '{_shown(allele)}' is not a DNA sequence (A, C, G, T, N), '*', a "
                "symbolic allele '<…>' or a breakend; fix the record"
            )
    return None


def _gt_problem(gt: bytes, n_alt: int) -> str | None:
    """What is wrong with one GT value at a site with ``n_alt`` ALT alleles (None: valid).

    The text follows "GT '...' of sample 'S' ".
    """
    if not gt:
        return "is empty; write '.' or './.' for a missing call"
    alleles = _GT_ALLELE_SEPARATOR.split(gt)
    if len(alleles) > 2:
        return (
            f"has {len(alleles)} alleles (ploidy {len(alleles)}); gwas-prs reads haploid and "
            "diploid calls only: set such calls to missing or remove the record"
        )
    for allele in alleles:
        if allele == b".":
            continue
        if not allele.isdigit():
            return (
                "is not a genotype: alleles must be indices into REF,ALT (0, 1, …) or '.' "
                "joined by '/' or '|', e.g. '0/1'; fix the genotypes"
            )
        index = int(allele)
        if index > n_alt:
            alts = "no ALT allele" if n_alt == 0 else f"{n_alt} ALT allele(s)"
            return (
                f"refers to allele {index}, but the site has {alts}; fix the genotype or "
                "the ALT column"
            )
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
        For plain-gzip and uncompressed input (and BGZF input that starts with a
        byte-order mark), write the BGZF copy Hail imports here (the decompressed
        data is the same byte for byte, less the byte-order mark). Ignored for
        other BGZF input: Hail reads it in place (see :func:`check_unchanged`).

    Raises
    ------
    InputError
        The first problem found, as ``FILE:LINE: problem; what to do``; for
        duplicate records, their number and the first one.
    """
    _check_is_file(path)
    compression = detect_compression(path)
    hashing = _HashingRaw(storage.open_binary(path))
    raw = io.BufferedReader(hashing, buffer_size=1 << 20)
    snapshot: _Snapshot | None = None
    stream = _open_text(path, compression, raw)
    line_no = 0
    try:
        header_bytes: list[bytes] = []
        samples, header_end, bom = _read_header(path, stream, header_bytes)
        if convert_to is not None and (compression != "bgzf" or bom):
            snapshot = _Snapshot(path, convert_to)
            snapshot.write(b"".join(header_bytes))
        n_samples = len(samples)
        expected_tabs = 8 + n_samples
        gt_only_line = (b"asat" * n_samples)[:-1] + b"n"
        line_no = header_end
        scan = VcfScan(path, compression, 0, "", n_samples, bom=bom)
        records_per_contig: Counter[str] = Counter()
        rows_per_contig: Counter[str] = Counter()
        dropped: Counter[str] = Counter()
        contig_cache: dict[bytes, str | None] = {}
        ranges: dict[str, tuple[int, int]] = {}
        gt_cache: dict[tuple[bytes, int], str | None] = {}
        last_format = b""
        has_gt = True
        # duplicate records: the (REF, ALT) seen at the current position, with their line
        current_contig: str | None = None
        current_pos = 0
        range_low = range_high = 0
        at_position: dict[tuple[bytes, bytes], int] = {}
        duplicates = 0
        first_duplicate = ""
        for line in stream:
            line_no += 1
            if snapshot is not None:
                snapshot.write(line)
            parts = line.split(b"\t", 9)
            if len(parts) == 10:
                chrom_b, pos_b, _id, ref_b, alt_b, _qual, _filter, _info, fmt_b, rest = parts
                n_alt = 0 if alt_b == b"." else alt_b.count(b",") + 1
                # the fast path: GT only, diploid, one-digit alleles (checks the tabs too)
                gt_checked = (
                    n_alt < 10
                    and fmt_b == b"GT"
                    and rest.translate(_GT_TABLES[n_alt]) == gt_only_line
                )
                tabs = 8 + n_samples if gt_checked else 9 + rest.count(b"\t")
            else:
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
                keys = fmt_b.split(b":")
                has_gt = keys[0] == b"GT"
                if not has_gt and b"DS" not in keys and b"GP" not in keys:
                    shown = fmt_b.decode("utf-8", "replace")
                    raise _fail(
                        path,
                        line_no,
                        f"FORMAT '{shown}' has neither GT (first, as the VCF specification "
                        "requires) nor a dosage field DS or GP; gwas-prs needs hard calls "
                        "or imputed dosages",
                    )
                last_format = fmt_b
            if not _REF_OK(ref_b):
                raise _fail(
                    path,
                    line_no,
                    f"REF '{_shown(ref_b)}' is not a DNA sequence (only A, C, G, T and N are "
                    "allowed); fix the record"
                    if ref_b
                    else "REF is empty; every record needs its reference base(s)",
                )
            if not _ALT_FIELD_OK(alt_b) and alt_b != b".":
                problem = _alt_problem(alt_b)
                if problem is not None:
                    raise _fail(path, line_no, problem)
            if not gt_checked and has_gt:
                # the distinct GT values of the line, each checked once (cached)
                fields = rest.rstrip(b"\r\n").split(b"\t")
                if fmt_b == b"GT":
                    gts = set(fields)
                else:
                    prefixes = set(map(_FIRST_FOUR, fields))  # 'a/b:' when GT has 3 chars
                    if all(p[3:4] == b":" and p[1:2] in (b"/", b"|") for p in prefixes):
                        gts = {p[:3] for p in prefixes}
                    else:
                        gts = {f.split(b":", 1)[0] for f in fields}
                for gt in gts:
                    problem = gt_cache.get((gt, n_alt), _MISSING)  # type: ignore[arg-type]
                    if problem is _MISSING:
                        problem = _gt_problem(gt, n_alt)
                        if len(gt_cache) > 100_000:
                            gt_cache.clear()
                        gt_cache[(gt, n_alt)] = problem
                    if problem is not None:
                        index = next(
                            (i for i, f in enumerate(fields) if f.split(b":", 1)[0] == gt), 0
                        )
                        raise _fail(
                            path,
                            line_no,
                            f"GT '{_shown(gt)}' of sample '{samples[index]}' {problem}",
                        )
            # sortedness, position ranges and duplicates
            if contig != current_contig:
                if current_contig is not None:
                    low, high = ranges.get(current_contig, (range_low, range_high))
                    ranges[current_contig] = (min(low, range_low), max(high, range_high))
                if contig in ranges and scan.first_unsorted_line is None:
                    scan.first_unsorted_line = line_no
                current_contig, current_pos = contig, pos
                range_low = range_high = pos
                at_position = {}
            elif pos != current_pos:
                if pos < current_pos:
                    if scan.first_unsorted_line is None:
                        scan.first_unsorted_line = line_no
                    range_low = min(range_low, pos)
                range_high = max(range_high, pos)
                current_pos = pos
                at_position = {}
            records_per_contig[contig] += 1
            if n_alt == 0:
                dropped["no_alt"] += 1
                continue
            alts = alt_b.split(b",") if n_alt > 1 else [alt_b]
            scan.alt_alleles += n_alt
            if n_alt > 1:
                scan.multiallelic_records += 1
                scan.records_needing_split += 1
            elif len(ref_b) > 1 and len(alt_b) > 1:
                scan.records_needing_split += 1  # min_rep may trim REF/ALT (an MNP or indel)
            kept = n_alt
            repeated: int | None = None
            for alt in alts:
                if not keep_symbolic:
                    reason = _allele_drop_reason(alt)
                    if reason is not None:
                        dropped[reason] += 1
                        kept -= 1
                        continue
                key = (ref_b, alt)
                if key in at_position:
                    if repeated is None:
                        repeated = at_position[key]
                        if not first_duplicate:
                            variant = (
                                f"{chrom_b.decode('utf-8', 'replace')}:{pos} "
                                f"{_shown(ref_b)}>{_shown(alt)}"
                            )
                            where = (
                                "is twice in its ALT column"
                                if repeated == line_no
                                else f"is also on line {repeated}"
                            )
                            first_duplicate = (
                                f"{path}:{line_no}: duplicate record: {variant} {where}"
                            )
                else:
                    at_position[key] = line_no
            if repeated is not None:
                duplicates += 1
            rows_per_contig[contig] += kept
        if line_no == header_end:
            raise _fail(path, None, "the VCF has a header but no variant records")
        if duplicates:
            raise InputError(
                f"{first_duplicate} ({duplicates} duplicate record(s) in this file, each would be "
                "imported twice); remove them, e.g. 'bcftools norm -d exact'"
            )
        if current_contig is not None:
            low, high = ranges.get(current_contig, (range_low, range_high))
            ranges[current_contig] = (min(low, range_low), max(high, range_high))
        scan.records = sum(records_per_contig.values())
        scan.records_per_contig = dict(records_per_contig)
        scan.expected_rows_per_contig = dict(rows_per_contig)
        scan.contig_ranges = ranges
        scan.dropped_alleles = dict(dropped)
    except InputError:
        if snapshot is not None:
            snapshot.abort()
        raise
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        if snapshot is not None:
            snapshot.abort()
        if compression == "plain":  # an I/O error: no gzip stream to blame
            raise _fail(
                path, line_no or None, f"cannot be read after line {line_no} ({exc})"
            ) from exc
        raise _fail(
            path,
            line_no or None,
            f"the gzip stream is truncated or corrupt after line {line_no} ({exc}); "
            "the file is incomplete — download or copy it again",
        ) from exc
    except BaseException:
        if snapshot is not None:
            snapshot.abort()
        raise
    finally:
        raw.close()
    scan.size = hashing.bytes_read
    scan.fingerprint = f"sha256:{hashing.digest.hexdigest()}"
    if snapshot is not None:
        scan.converted_to = snapshot.finish()
    return scan


def check_unchanged(scans: Sequence[VcfScan]) -> None:
    """Fingerprint again the inputs Hail read in place (BGZF, no copy); fail if one changed.

    Call it after Hail has read the files (the import written) and before the output
    is published. Costs one more read of each such file (SHA-256 of the compressed
    bytes; the size is compared first).

    Raises
    ------
    InputError
        A file's size or SHA-256 differs from what the check read.
    """
    for scan in scans:
        if scan.converted_to is not None:
            continue
        size = storage.file_size(scan.path)
        if size != scan.size:
            change = f"its size went from {scan.size:,} to {size:,} bytes"
        elif storage.sha256_file(scan.path) != scan.fingerprint:
            change = "its SHA-256 differs"
        else:
            continue
        raise _fail(
            scan.path,
            None,
            f"the file changed while ingest was running ({change}), so Hail may not have "
            "imported what was checked; nothing was published — run ingest again once the "
            "file is no longer being written",
        )


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


def check_contigs_disjoint(scans: Sequence[VcfScan]) -> None:
    """No two files may cover the same stretch of a contig.

    Files that split one contig into disjoint regions (the chunks of a biobank's
    pVCF, a scatter-gather by interval) are accepted; files whose position ranges
    on a contig overlap (the same chromosome given twice, two versions of one
    file) are refused, since their variants would be imported twice.

    Raises
    ------
    InputError
        Naming the later file, the contig and the earlier file.
    """
    seen: dict[str, list[tuple[int, int, str]]] = {}
    for scan in scans:
        for contig, (low, high) in scan.contig_ranges.items():
            for other_low, other_high, other in seen.get(contig, []):
                if low <= other_high and other_low <= high:
                    raise _fail(
                        scan.path,
                        None,
                        f"contig {contig} (positions {low:,}-{high:,}) is also in {other} "
                        f"(positions {other_low:,}-{other_high:,}); the files overlap and their "
                        "variants would be imported twice — merge them into one file "
                        "(e.g. 'bcftools concat -a -D') or pass each contig once",
                    )
            seen.setdefault(contig, []).append((low, high, scan.path))


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
    ``workers`` processes, then the files are checked not to overlap
    (:func:`check_contigs_disjoint`). Plain-gzip and uncompressed files are
    rewritten as BGZF into ``convert_dir`` when it is given (the copies Hail
    imports); the caller removes ``convert_dir``, also when this raises.
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
    ordered = [scans[p] for p in paths]
    check_contigs_disjoint(ordered)
    return headers[0].samples, ordered
