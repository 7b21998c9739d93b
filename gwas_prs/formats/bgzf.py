"""A small BGZF writer.

BGZF is gzip made of independent blocks of at most 64 KiB, each carrying its
compressed size in a ``BC`` extra field. Hail (like htslib) can split such a
file across cores; it cannot split plain gzip. Ingest rewrites plain-gzip and
uncompressed VCFs as BGZF while it validates them, so a single large ``.vcf.gz``
is imported in parallel and Hail imports exactly the checked bytes (see
:mod:`gwas_prs.formats.vcf_validation`).
"""

from __future__ import annotations

import struct
import zlib
from types import TracebackType
from typing import BinaryIO

#: The 28-byte empty block that ends every BGZF file (SAM/BAM spec, section 4.1.2).
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
_MAX_BLOCK_INPUT = 0xFF00  # as htslib: leaves room for incompressible data


def is_bgzf_header(head: bytes) -> bool:
    """True when ``head`` (the first 18 bytes of a file) starts a BGZF block."""
    return (
        len(head) >= 18
        and head[:4] == b"\x1f\x8b\x08\x04"
        and head[12:14] == b"BC"
        and struct.unpack("<H", head[14:16])[0] == 2
    )


class BgzfWriter:
    """Write bytes to ``handle`` as BGZF blocks (``close`` adds the EOF block)."""

    def __init__(self, handle: BinaryIO, level: int = 1) -> None:
        self._handle = handle
        self._level = level
        self._buffer = bytearray()

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= _MAX_BLOCK_INPUT:
            self._write_block(bytes(self._buffer[:_MAX_BLOCK_INPUT]))
            del self._buffer[:_MAX_BLOCK_INPUT]

    def _write_block(self, data: bytes) -> None:
        compressor = zlib.compressobj(self._level, zlib.DEFLATED, -15)
        payload = compressor.compress(data) + compressor.flush()
        block_size = len(payload) + 25  # header (18) + trailer (8) - 1
        header = struct.pack(
            "<BBBBIBBHBBHH", 0x1F, 0x8B, 8, 4, 0, 0, 0xFF, 6, 66, 67, 2, block_size
        )
        trailer = struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)
        self._handle.write(header + payload + trailer)

    def close(self) -> None:
        if self._buffer:
            self._write_block(bytes(self._buffer))
            self._buffer.clear()
        self._handle.write(BGZF_EOF)
        self._handle.close()

    def __enter__(self) -> BgzfWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._handle.close()
