"""Tiny VCFs built in code for tests (no committed fixtures needed)."""

from __future__ import annotations

import gzip
from collections.abc import Mapping, Sequence
from pathlib import Path

HEADER = [
    "##fileformat=VCFv4.2",
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    "##contig=<ID=21,length=48129895>",
    "##contig=<ID=22,length=51304566>",
]
FIXED = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT"]
SAMPLES = ("S1", "S2", "S3", "S4")
#: (contig, pos, ref, alt) records; one multi-allelic, one symbolic, one with a star allele.
RECORDS = [
    ("21", 9411239, "G", "A"),
    ("21", 9411245, "C", "A,T"),
    ("21", 9411300, "T", "<CN0>"),
    ("22", 16050075, "A", "G"),
    ("22", 16050115, "G", "A,*"),
    ("22", 16050213, "C", "T"),
]
GENOTYPES = ("0|0", "0|1", "1|1", "./.")


def vcf_lines(
    samples: Sequence[str] = SAMPLES,
    records: Sequence[tuple[str, int | str, str, str]] = RECORDS,
    header: Sequence[str] = HEADER,
    fmt: str = "GT",
    calls: Mapping[int, Sequence[str]] | None = None,
) -> list[str]:
    """Header, ``#CHROM`` line and one line per record; ``calls`` replaces the sample
    columns of the records it names (by index in ``records``)."""
    lines = list(header)
    lines.append("\t".join([*FIXED, *samples]))
    for index, (contig, pos, ref, alt) in enumerate(records):
        if calls is not None and index in calls:
            row = list(calls[index])
        else:
            row = [GENOTYPES[(index + j) % 3] for j in range(len(samples))]
        lines.append(
            "\t".join([contig, str(pos), f"rs{index}", ref, alt, "50", "PASS", ".", fmt, *row])
        )
    return lines


def record_lines(records: Sequence[tuple[str, int | str, str, str]]) -> list[str]:
    """Data lines only, as :func:`vcf_lines` writes them (e.g. to append to a file)."""
    return vcf_lines(records=records, header=[])[1:]


def bgzf_bytes(text: bytes) -> bytes:
    """``text`` as BGZF (with the EOF block)."""
    import io

    from gwas_prs.formats.bgzf import BgzfWriter

    class _Keep(io.BytesIO):
        def close(self) -> None:  # keep the buffer readable after BgzfWriter.close
            pass

    buffer = _Keep()
    with BgzfWriter(buffer) as writer:
        writer.write(text)
    return buffer.getvalue()


def write_vcf(
    path: Path, lines: Sequence[str], compression: str = "plain", *, prefix: bytes = b""
) -> Path:
    """Write ``lines``; ``compression`` is plain, gzip, bgzf or double-gzip (gzip inside
    gzip); ``prefix`` goes before the text (e.g. a byte-order mark)."""
    text = prefix + ("\n".join(lines) + "\n").encode()
    if compression == "gzip":
        path.write_bytes(gzip.compress(text))
    elif compression == "double-gzip":
        path.write_bytes(gzip.compress(gzip.compress(text)))
    elif compression == "bgzf":
        path.write_bytes(bgzf_bytes(text))
    else:
        path.write_bytes(text)
    return path
