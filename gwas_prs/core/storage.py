"""File-system operations on run folders, local or remote (``gs://``).

Local paths use the standard library. Remote paths go through ``hailtop.fs``
(shipped with Hail), so the same stage code works on a laptop and on Dataproc.
Only these functions touch the file system of a run folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

REMOTE_SCHEMES = ("gs://", "s3://", "hdfs://", "abfss://")


def is_remote(path: str) -> bool:
    """True for object-store/HDFS URLs such as ``gs://bucket/run``."""
    return path.startswith(REMOTE_SCHEMES)


def join(base: str, *parts: str) -> str:
    """Join path components with ``/`` (works for URLs and local paths)."""
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


def _hfs() -> Any:
    import hailtop.fs as hfs

    return hfs


def absolute(path: str) -> str:
    """``path`` made absolute when local (remote URLs are returned as they are)."""
    import os

    return path if is_remote(path) else os.path.abspath(path)


def exists(path: str) -> bool:
    if is_remote(path):
        return bool(_hfs().exists(path))
    return os.path.exists(path)


def open_binary(path: str, mode: str = "rb") -> Any:
    """A binary file object for reading (``rb``) or writing (``wb``)."""
    if is_remote(path):
        return _hfs().open(path, mode)
    if "w" in mode:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return open(path, mode)


def glob_files(pattern: str) -> list[str]:
    """Files matching a glob pattern (``*``, ``?``, ``[…]``), local or remote."""
    if is_remote(pattern):
        return sorted(str(e.path) for e in _hfs().ls(pattern) if not e.is_dir)
    import glob

    return [p for p in glob.glob(pattern) if os.path.isfile(p) or os.path.isdir(p)]


def is_dir(path: str) -> bool:
    if is_remote(path):
        return bool(_hfs().is_dir(path))
    return os.path.isdir(path)


def makedirs(path: str) -> None:
    if not is_remote(path):  # object stores have no directories
        Path(path).mkdir(parents=True, exist_ok=True)


def read_text(path: str) -> str:
    if is_remote(path):
        with _hfs().open(path, "r") as handle:
            return str(handle.read())
    return Path(path).read_text(encoding="utf-8")


@contextmanager
def atomic_writer(path: str) -> Iterator[BinaryIO]:
    """A binary file to write ``path`` with, so that readers see the old or the new
    content, never half: the one way gwas-prs writes a file.

    Locally the bytes go to a hidden temporary sibling (``.NAME.tmp-…``) that is
    renamed over ``path`` when the block ends without an exception, and removed when
    it raises; object stores (``gs://``) make single-object writes atomic themselves.
    """
    if is_remote(path):
        # an object-store upload commits when its stream closes, also on an exception:
        # spool the bytes locally and upload them only when the block succeeded
        with tempfile.TemporaryFile() as spool:
            yield spool
            if not spool.closed:
                spool.flush()
            spool.seek(0)
            with _hfs().open(path, "wb") as handle:
                shutil.copyfileobj(spool, handle)
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as handle:
            yield handle
            if not handle.closed:  # a wrapper (TextIOWrapper, GzipFile) may have closed it
                handle.flush()
        descriptor = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(tmp, target)
    except OSError as exc:
        if exc.filename is None:  # write() errors (a full disk) name no file: name it
            raise OSError(exc.errno, exc.strerror, path) from exc
        raise
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)


def write_text_atomic(path: str, text: str) -> None:
    """Write ``text`` (UTF-8) with :func:`atomic_writer`."""
    with atomic_writer(path) as handle:
        handle.write(text.encode("utf-8"))


def remove(path: str) -> None:
    """Remove a file or a directory tree if it exists."""
    if is_remote(path):
        hfs = _hfs()
        if hfs.exists(path):
            if hfs.is_dir(path):
                hfs.rmtree(path)
            else:
                hfs.remove(path)
        return
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def move(src: str, dst: str) -> None:
    """Move ``src`` to ``dst`` (a rename locally; copy then delete remotely)."""
    if is_remote(src) or is_remote(dst):
        hfs = _hfs()
        if hfs.is_dir(src):
            hfs.copy(src, dst)  # hailtop copies trees recursively
            hfs.rmtree(src)
        else:
            hfs.copy(src, dst)
            hfs.remove(src)
        return
    os.replace(src, dst)


def file_size(path: str) -> int:
    if is_remote(path):
        return int(_hfs().stat(path).size)
    return os.path.getsize(path)


def sha256_file(path: str, chunk_size: int = 1 << 20) -> str:
    """``sha256:<hex>`` of a whole file."""
    digest = hashlib.sha256()
    if is_remote(path):
        with _hfs().open(path, "rb") as handle:
            while chunk := handle.read(chunk_size):
                digest.update(chunk)
    else:
        with open(path, "rb") as handle:
            while chunk := handle.read(chunk_size):
                digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def copy_file(src: str, dst: str) -> None:
    """Copy one file; either side may be local or remote (``gs://``)."""
    if is_remote(src) or is_remote(dst):
        _hfs().copy(src, dst)
        return
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
