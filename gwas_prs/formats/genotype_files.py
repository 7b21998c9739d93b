"""Check PLINK 1 filesets, BGEN files and Hail MatrixTables before Hail sees them.

``gwas-prs ingest`` takes, besides VCFs (:mod:`gwas_prs.formats.vcf_validation`):

- a PLINK 1 fileset, given as ``PREFIX.bed`` or ``PREFIX`` (with ``.bim``/``.fam``);
- BGEN 1.2/1.3 files (layout 2; ``.bgen``), one or several (e.g. one per chromosome),
  with the samples from ``--bgen-sample FILE`` or ``FILE.sample`` next to the first
  ``.bgen``, or else the sample identifiers stored in the BGEN;
- a Hail MatrixTable directory (``.mt``) with ``locus``/``alleles`` row keys and a
  ``GT`` (call) and/or ``DS`` (float64 ALT dosage) entry field.

Each check reads only headers and indexes (the .bim, the .fam, the BGEN variant
headers, seeking over the genotype blocks), without a JVM, and raises an
:class:`~gwas_prs.core.errors.InputError` naming the file, the line or record, and
what to do: a missing companion file, a sample count that disagrees, a truncated
file, an unknown contig or a position outside it. The counts it returns (variants
per contig) are what the import is checked against.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from gwas_prs.core import storage
from gwas_prs.core.errors import InputError
from gwas_prs.core.reference import ReferenceContigs

#: PLINK 1 numeric chromosome codes (23 X, 24 Y, 25 XY pseudo-autosomal, 26 MT) and
#: plink2's ``--split-par`` names of the pseudo-autosomal regions
PLINK_CONTIG_CODES = {
    "23": "X", "24": "Y", "25": "X", "26": "MT", "XY": "X", "M": "MT", "PAR1": "X", "PAR2": "X",
}  # fmt: skip
BED_MAGIC = b"\x6c\x1b\x01"
BGEN_MAGIC = b"bgen"
_ALLELE_CHARS = frozenset("ACGTNacgtn")


@dataclass
class GenotypeFileScan:
    """What the up-front check of a PLINK fileset, BGEN files or a MatrixTable found."""

    kind: str  # "plink", "bgen" or "mt"
    #: the files Hail reads (the .bed prefix; the .bgen files; the .mt directory)
    paths: tuple[str, ...]
    samples: tuple[str, ...]
    #: (path, size) of every file fingerprinted for the manifest
    files: list[str] = field(default_factory=list)
    sample_file: str | None = None
    records_per_contig: dict[str, int] = field(default_factory=dict)
    #: variants the bronze MatrixTable must have per contig (None for a MatrixTable)
    expected_rows_per_contig: dict[str, int] | None = None
    dropped_alleles: dict[str, int] = field(default_factory=dict)
    skipped_unknown_contig: int = 0
    #: entry fields the input provides: "GT" and/or "DS"
    entry_fields: tuple[str, ...] = ("GT",)
    #: per-contig codes in the file → the reference's name (contig recoding for Hail)
    contig_recoding: dict[str, str] = field(default_factory=dict)


def input_kind(path: str) -> str:
    """``vcf``, ``plink``, ``bgen`` or ``mt`` from a path as given to ``ingest``."""
    stripped = path.rstrip("/")
    if stripped.endswith(".bgen"):
        return "bgen"
    if stripped.endswith(".mt") or (
        not storage.is_remote(stripped)
        and os.path.isdir(stripped)
        and os.path.exists(os.path.join(stripped, "metadata.json.gz"))
    ):
        return "mt"
    if stripped.endswith((".bed", ".bim", ".fam")):
        return "plink"
    if (
        not storage.is_remote(stripped)
        and not os.path.exists(stripped)
        and os.path.exists(stripped + ".bed")
    ):
        return "plink"
    return "vcf"


def _open_text(path: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(storage.open_binary(path), encoding="utf-8", errors="replace")


def _fail(path: str, line: int | None, problem: str) -> InputError:
    where = f"{path}:{line}" if line is not None else path
    return InputError(f"{where}: {problem}")


def _need_file(path: str, what: str) -> None:
    if not storage.exists(path):
        raise InputError(f"{path}: {what} is missing; {what} must sit next to the others")


def _resolve_contig(code: str, reference: ReferenceContigs, recoding: dict[str, str]) -> str | None:
    if code in recoding:
        return recoding[code]
    name = reference.resolve(code)
    if name is None and code in PLINK_CONTIG_CODES:
        name = reference.resolve(PLINK_CONTIG_CODES[code])
    if name is None and code.isdigit() and code.lstrip("0"):  # BGEN "01"
        name = reference.resolve(code.lstrip("0"))
    if name is not None and name != code:
        recoding[code] = name
    return name


def _unknown_contig(
    path: str, line: int | None, code: str, reference: ReferenceContigs
) -> InputError:
    return _fail(
        path,
        line,
        f"contig '{code}' is not in {reference.name} (primary contigs "
        f"{reference.autosomes[0]}..{reference.autosomes[-1]}, X, Y, MT); check "
        "--reference-genome or pass --skip-unknown-contigs to drop such variants",
    )


def _check_position(
    path: str, line: int, pos: int, contig: str, reference: ReferenceContigs
) -> None:
    if pos < 1 or pos > reference.lengths[contig]:
        raise _fail(
            path,
            line,
            f"position {pos} is outside contig {contig} (length "
            f"{reference.lengths[contig]:,} in {reference.name}); check --reference-genome",
        )


def _allele_ok(allele: str) -> bool:
    return bool(allele) and set(allele) <= _ALLELE_CHARS


def plink_prefix(path: str) -> str:
    """The fileset prefix of ``PREFIX``, ``PREFIX.bed``, ``PREFIX.bim`` or ``PREFIX.fam``."""
    for ext in (".bed", ".bim", ".fam"):
        if path.endswith(ext):
            return path[: -len(ext)]
    return path


def scan_plink(
    path: str, reference: ReferenceContigs, *, skip_unknown_contigs: bool = False
) -> GenotypeFileScan:
    """Check a PLINK 1 fileset: the three files exist, the .fam has 6 columns and
    unique IIDs, every .bim line has 6 columns, a known contig, a position inside it
    and A/C/G/T/N alleles (``0``: a monomorphic variant, dropped like an ALT-less VCF
    record), and the .bed is SNP-major with exactly the size the .bim and .fam imply.

    Bronze alleles are ``[A2, A1]`` (A2 = REF, as plink writes VCF-derived filesets).
    """
    prefix = plink_prefix(path)
    bed, bim, fam = (prefix + ext for ext in (".bed", ".bim", ".fam"))
    for file, what in ((bed, "the .bed"), (bim, "the .bim"), (fam, "the .fam")):
        _need_file(file, what)
    samples: list[str] = []
    seen: dict[str, int] = {}
    with _open_text(fam) as handle:
        for line_no, line in enumerate(handle, 1):
            parts = line.split()
            if not parts:
                raise _fail(fam, line_no, "empty line; remove it")
            if len(parts) != 6:
                raise _fail(
                    fam,
                    line_no,
                    f"{len(parts)} columns, expected 6 (FID IID father mother sex phenotype)",
                )
            iid = parts[1]
            if iid in seen:
                raise _fail(
                    fam, line_no, f"sample '{iid}' is also on line {seen[iid]}; IIDs must be unique"
                )
            seen[iid] = line_no
            samples.append(iid)
    if not samples:
        raise _fail(fam, None, "has no samples")
    records: Counter[str] = Counter()
    rows: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    recoding: dict[str, str] = {}
    skipped = 0
    n_variants = 0
    with _open_text(bim) as handle:
        for line_no, line in enumerate(handle, 1):
            parts = line.split()
            if len(parts) != 6:
                raise _fail(
                    bim,
                    line_no,
                    f"{len(parts)} columns, expected 6 (chromosome ID cM position A1 A2)"
                    if parts
                    else "empty line; remove it",
                )
            n_variants += 1
            code, _varid, _cm, pos_s, a1, a2 = parts
            contig = _resolve_contig(code, reference, recoding)
            if contig is None:
                if skip_unknown_contigs:
                    skipped += 1
                    continue
                raise _unknown_contig(bim, line_no, code, reference)
            if not pos_s.isdigit():
                raise _fail(bim, line_no, f"position '{pos_s}' is not a positive integer")
            _check_position(bim, line_no, int(pos_s), contig, reference)
            if not _allele_ok(a2):
                raise _fail(bim, line_no, f"allele A2 '{a2}' is not a DNA sequence")
            records[contig] += 1
            if a1 == "0":
                dropped["no_alt"] += 1
                continue
            if not _allele_ok(a1):
                raise _fail(bim, line_no, f"allele A1 '{a1}' is not a DNA sequence")
            rows[contig] += 1
    if n_variants == 0:
        raise _fail(bim, None, "has no variants")
    with storage.open_binary(bed) as handle:
        magic = handle.read(3)
    if magic[:2] != BED_MAGIC[:2]:
        raise _fail(bed, None, "is not a PLINK 1 .bed (wrong magic bytes); write it with plink")
    if magic[2:3] != BED_MAGIC[2:3]:
        raise _fail(
            bed,
            None,
            "is individual-major; rewrite it SNP-major, e.g. 'plink1.9 --bfile X --make-bed'",
        )
    expected = 3 + n_variants * ((len(samples) + 3) // 4)
    size = storage.file_size(bed)
    if size != expected:
        raise _fail(
            bed,
            None,
            f"{size:,} bytes, but {n_variants:,} variants (.bim) × {len(samples):,} samples "
            f"(.fam) need {expected:,}; the file is truncated or does not belong to this "
            ".bim/.fam — copy it again",
        )
    return GenotypeFileScan(
        "plink",
        (prefix,),
        tuple(samples),
        files=[bed, bim, fam],
        records_per_contig=dict(records),
        expected_rows_per_contig=dict(rows),
        dropped_alleles=dict(dropped),
        skipped_unknown_contig=skipped,
        contig_recoding=recoding,
    )


def read_bgen_sample_file(path: str) -> list[str]:
    """Sample IDs of an Oxford ``.sample`` file: its ``ID_2`` column (plink2's IID;
    plink2 writes ``ID_1`` as the FID, ``0`` when there is none), or ``ID_1`` when
    it has no ``ID_2``.

    Raises
    ------
    InputError
        No header, a missing type line, or a duplicate ID.
    """
    with _open_text(path) as handle:
        lines = [line.split() for line in handle if line.strip()]
    if len(lines) < 2 or not lines[0] or lines[0][0] not in ("ID_1", "ID"):
        raise _fail(
            path,
            1,
            "not an Oxford .sample file (expected a header 'ID_1 ID_2 missing …' and a "
            "type line '0 0 0 …')",
        )
    if not all(v in ("0", "D", "C", "P", "B") for v in lines[1]):
        raise _fail(path, 2, "the second line must give the column types ('0 0 0 …')")
    column = 1 if len(lines[0]) > 1 and lines[0][1] == "ID_2" else 0
    ids: list[str] = []
    seen: dict[str, int] = {}
    for line_no, parts in enumerate(lines[2:], 3):
        if len(parts) != len(lines[0]):
            raise _fail(path, line_no, f"{len(parts)} columns, the header has {len(lines[0])}")
        sample = parts[column]
        if sample in seen:
            raise _fail(
                path,
                line_no,
                f"sample '{sample}' is also on line {seen[sample]}; {lines[0][column]} must "
                "be unique",
            )
        seen[sample] = line_no
        ids.append(sample)
    return ids


def _read_exact(handle: object, n: int, path: str, what: str) -> bytes:
    data = handle.read(n)  # type: ignore[attr-defined]
    if len(data) != n:
        raise _fail(
            path,
            None,
            f"ends inside {what}; the file is truncated — download or copy it again",
        )
    return bytes(data)


def _block_head(block: bytes, compression: int, n_samples: int) -> bytes | None:
    """The decompressed start of a layout-2 genotype block (sample count, allele count,
    ploidy range, per-sample ploidy, phasing and bit depth); None for zstd blocks (left
    to Hail)."""
    if compression == 1:
        return zlib.decompressobj().decompress(block[4:], 10 + n_samples)
    if compression == 0:
        return block
    return None


def _check_genotype_block(
    path: str, index: int, block: bytes, compression: int, n_samples: int, *, bits: bool
) -> None:
    """Hail reads diploid, 8-bit BGEN probabilities only: check a variant's ploidy range
    and, with ``bits``, its bit depth (``block``: the start of its genotype block)."""
    try:
        data = _block_head(block, compression, n_samples)
    except zlib.error as exc:
        raise _fail(path, index, f"the genotype block is not valid zlib data ({exc})") from exc
    if data is None or len(data) < 8:
        return
    low, high = data[6], data[7]
    if (low, high) != (2, 2):
        raise _fail(
            path,
            None,
            f"variant {index} has samples of ploidy {low}"
            + (f" to {high}" if high != low else "")
            + " (e.g. males on chrX); Hail reads diploid BGEN only — export it as a VCF, "
            "which keeps haploid calls, e.g. 'plink2 --bgen FILE ref-first --sample "
            "FILE.sample --export vcf vcf-dosage=DS', and ingest that",
        )
    if not bits or len(data) < 10 + n_samples:
        return
    depth = data[8 + n_samples + 1]
    if depth != 8:
        raise _fail(
            path,
            None,
            f"stores {depth}-bit probabilities; Hail reads 8-bit BGEN only (as UK Biobank ships) — "
            "convert it, e.g. 'plink2 --bgen FILE ref-first --sample FILE.sample --export "
            "bgen-1.2 bits=8 ref-first'",
        )


#: Bytes of a genotype block read to check its ploidy (the compressed head of a block
#: holds the sample count, the ploidy range and, for small cohorts, more).
BLOCK_HEAD_BYTES = 4096


def scan_bgen_file(
    path: str, reference: ReferenceContigs, *, skip_unknown_contigs: bool = False
) -> tuple[int, list[str] | None, GenotypeFileScan]:
    """Check one BGEN file: header, layout 2 (BGEN 1.2/1.3), and every variant
    header (contig, position, two alleles), seeking over the genotype blocks to the
    exact end of the file. Returns (samples in the header, the embedded sample IDs or
    None, the counts)."""
    records: Counter[str] = Counter()
    recoding: dict[str, str] = {}
    skipped = 0
    with storage.open_binary(path) as handle:
        offset = struct.unpack("<I", _read_exact(handle, 4, path, "the header"))[0]
        header_len = struct.unpack("<I", _read_exact(handle, 4, path, "the header"))[0]
        header = _read_exact(handle, header_len - 4, path, "the header")
        if header_len < 20 or header[8:12] != BGEN_MAGIC:
            raise _fail(path, None, "is not a BGEN file (no 'bgen' magic number in its header)")
        n_variants, n_samples = struct.unpack("<II", header[:8])
        flags = struct.unpack("<I", header[header_len - 8 : header_len - 4])[0]
        layout = (flags >> 2) & 0xF
        if layout != 2:
            raise _fail(
                path,
                None,
                f"is BGEN layout {layout} (BGEN 1.1 or older); convert it to BGEN 1.2, e.g. "
                "'plink2 --bgen FILE ref-first --export bgen-1.2'",
            )
        embedded: list[str] | None = None
        if flags >> 31:
            _block_len, count = struct.unpack("<II", _read_exact(handle, 8, path, "the sample IDs"))
            if count != n_samples:
                raise _fail(
                    path, None, f"its sample block lists {count} IDs but the header {n_samples}"
                )
            embedded = []
            for _ in range(count):
                (length,) = struct.unpack("<H", _read_exact(handle, 2, path, "the sample IDs"))
                embedded.append(_read_exact(handle, length, path, "the sample IDs").decode())
        handle.seek(offset + 4)
        for index in range(1, n_variants + 1):
            what = f"variant {index} of {n_variants}"
            fields = []
            for _ in range(3):
                (length,) = struct.unpack("<H", _read_exact(handle, 2, path, what))
                fields.append(_read_exact(handle, length, path, what).decode("utf-8", "replace"))
            pos, n_alleles = struct.unpack("<IH", _read_exact(handle, 6, path, what))
            alleles = []
            for _ in range(n_alleles):
                (length,) = struct.unpack("<I", _read_exact(handle, 4, path, what))
                alleles.append(_read_exact(handle, length, path, what).decode("utf-8", "replace"))
            (block,) = struct.unpack("<I", _read_exact(handle, 4, path, what))
            here = handle.tell()
            code = fields[2]
            contig = _resolve_contig(code, reference, recoding)
            # males' X and Y, and MT, are often haploid; an autosome is checked once
            if index == 1 or (contig is not None and contig not in reference.autosomes):
                head = handle.read(min(block, BLOCK_HEAD_BYTES))
                _check_genotype_block(path, index, head, flags & 3, n_samples, bits=index == 1)
            handle.seek(here + block)
            if contig is None:
                if skip_unknown_contigs:
                    skipped += 1
                    continue
                raise _unknown_contig(path, None, code, reference)
            _check_position(path, index, pos, contig, reference)
            if n_alleles != 2:
                raise _fail(
                    path,
                    index,
                    f"variant {fields[1] or fields[0]} has {n_alleles} alleles; gwas-prs reads "
                    "bi-allelic BGEN only — split it first, e.g. 'plink2 --bgen FILE ref-first "
                    "--max-alleles 2 --export bgen-1.2'",
                )
            if not all(_allele_ok(a) for a in alleles):
                raise _fail(path, index, f"alleles {alleles} are not DNA sequences")
            records[contig] += 1
        end = handle.tell()
    size = storage.file_size(path)
    if end > size:
        raise _fail(
            path,
            None,
            f"the genotype block of its last variant ends at byte {end:,}, past the end of the "
            f"file ({size:,} bytes); the file is truncated — download or copy it again",
        )
    scan = GenotypeFileScan(
        "bgen",
        (path,),
        (),
        files=[path],
        records_per_contig=dict(records),
        expected_rows_per_contig=dict(records),
        skipped_unknown_contig=skipped,
        entry_fields=("GT", "DS"),
        contig_recoding=recoding,
    )
    return n_samples, embedded, scan


def scan_bgen(
    paths: Sequence[str],
    reference: ReferenceContigs,
    *,
    sample_file: str | None = None,
    skip_unknown_contigs: bool = False,
) -> GenotypeFileScan:
    """Check BGEN files and their samples (see :func:`scan_bgen_file`).

    Raises
    ------
    InputError
        No sample IDs anywhere, a ``.sample`` whose count differs from the BGEN's, or
        files with different samples.
    """
    merged = GenotypeFileScan("bgen", tuple(paths), (), entry_fields=("GT", "DS"))
    counts: Counter[str] = Counter()
    first_samples: list[str] | None = None
    first_n = 0
    for path in paths:
        if not storage.exists(path):
            raise InputError(f"{path}: no such file")
        n, embedded, scan = scan_bgen_file(
            path, reference, skip_unknown_contigs=skip_unknown_contigs
        )
        if first_samples is None and not merged.files:
            first_n, first_samples = n, embedded
        elif n != first_n:
            raise _fail(
                path,
                None,
                f"has {n} samples but {paths[0]} has {first_n}; give files of one cohort",
            )
        merged.files.append(path)
        counts.update(scan.records_per_contig)
        merged.skipped_unknown_contig += scan.skipped_unknown_contig
        merged.contig_recoding.update(scan.contig_recoding)
    if sample_file is None:
        candidate = paths[0][: -len(".bgen")] + ".sample"
        if storage.exists(candidate):
            sample_file = candidate
    if sample_file is not None:
        samples = read_bgen_sample_file(sample_file)
        if len(samples) != first_n:
            raise InputError(
                f"{sample_file}: lists {len(samples)} samples but {paths[0]} has {first_n}; "
                "give the .sample file written with this BGEN (--bgen-sample)"
            )
        merged.files.append(sample_file)
        merged.sample_file = sample_file
    elif first_samples is not None:
        samples = first_samples
    else:
        raise InputError(
            f"{paths[0]}: stores no sample IDs and there is no "
            f"{os.path.basename(paths[0][: -len('.bgen')])}.sample next to it; give the "
            "samples with --bgen-sample FILE.sample"
        )
    if len(set(samples)) != len(samples):
        raise InputError(f"{sample_file or paths[0]}: sample IDs are not unique")
    merged.samples = tuple(samples)
    merged.records_per_contig = dict(counts)
    merged.expected_rows_per_contig = dict(counts)
    return merged


def scan_matrix_table(path: str) -> GenotypeFileScan:
    """Check a Hail MatrixTable directory from its metadata (no JVM): a complete
    write (``_SUCCESS``), row key ``locus, alleles``, one string column key, and a
    ``GT`` call and/or ``DS`` float64 entry field. Samples and the reference genome
    are checked once Hail reads it."""
    root = path.rstrip("/")
    metadata = root + "/metadata.json.gz"
    if not storage.exists(metadata):
        raise InputError(
            f"{path}: not a Hail MatrixTable (no metadata.json.gz); give a .mt directory"
        )
    if not storage.exists(root + "/_SUCCESS"):
        raise InputError(
            f"{path}: the MatrixTable was not written to the end (no _SUCCESS); write it again"
        )
    with storage.open_binary(metadata) as handle:
        meta = json.loads(gzip.decompress(handle.read()))
    type_text = str(meta.get("matrix_type", meta.get("_matrix_type", "")))
    if "row_key:[[locus,alleles]]" not in type_text.replace(" ", ""):
        raise InputError(
            f"{path}: the rows must be keyed by locus and alleles (as hl.import_vcf writes); "
            "key them with mt.key_rows_by('locus', 'alleles')"
        )
    entry = type_text.split("entry:", 1)[1] if "entry:" in type_text else ""
    fields = tuple(f for f, t in (("GT", "GT:Call"), ("DS", "DS:Float64")) if t in entry)
    if not fields:
        raise InputError(
            f"{path}: needs an entry field GT (call) or DS (float64 ALT dosage); it has "
            f"{entry[:120] or 'none'}"
        )
    return GenotypeFileScan("mt", (root,), (), files=[], entry_fields=fields)
