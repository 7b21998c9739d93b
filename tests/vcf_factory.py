"""Tiny VCFs built in code for tests (no committed fixtures needed)."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
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
) -> list[str]:
    lines = list(header)
    lines.append("\t".join([*FIXED, *samples]))
    for index, (contig, pos, ref, alt) in enumerate(records):
        calls = [GENOTYPES[(index + j) % 3] for j in range(len(samples))]
        lines.append(
            "\t".join([contig, str(pos), f"rs{index}", ref, alt, "50", "PASS", ".", fmt, *calls])
        )
    return lines


def write_vcf(path: Path, lines: Sequence[str], compression: str = "plain") -> Path:
    text = ("\n".join(lines) + "\n").encode()
    if compression == "gzip":
        path.write_bytes(gzip.compress(text))
    elif compression == "bgzf":
        from gwas_prs.bgzf import BgzfWriter

        with BgzfWriter(open(path, "wb")) as writer:
            writer.write(text)
    else:
        path.write_bytes(text)
    return path
