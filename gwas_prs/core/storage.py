"""File-system operations on run folders, local or remote (``gs://``).

Local paths use the standard library; ``gs://`` goes through google-cloud-storage
(:mod:`gwas_prs.core.gcs_client`: one client per process, which honours
``STORAGE_EMULATOR_HOST``), other remote schemes (``s3://``, ``hdfs://``,
``abfss://``) through ``hailtop.fs`` (shipped with Hail). The same stage code
therefore works on a laptop, on Dataproc and against a storage emulator. Only these
functions touch the file system of a run folder (Hail's own reads and writes of
``.ht``/``.mt`` folders go through Hail).
"""

from __future__ import annotations

import hashlib
import io
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


def _is_gcs(path: str) -> bool:
    return path.startswith("gs://")


def _gcs() -> Any:
    from gwas_prs.core import gcs_client

    return gcs_client


def absolute(path: str) -> str:
    """``path`` made absolute when local (remote URLs are returned as they are)."""
    import os

    return path if is_remote(path) else os.path.abspath(path)


def parent(path: str) -> str:
    """The folder that holds ``path``: ``gs://b/x`` for ``gs://b/x/out.tsv``; local
    paths are made absolute first (``os.path.abspath`` would turn ``gs://b`` into
    ``CWD/gs:/b``)."""
    import posixpath

    if is_remote(path):
        return posixpath.dirname(path.rstrip("/"))
    return os.path.dirname(os.path.abspath(path))


def files_under(path: str) -> list[str]:
    """Every file below the folder ``path`` (recursively), local or ``gs://``."""
    if _is_gcs(path):
        return list(_gcs().files_under(path))
    if is_remote(path):
        hfs = _hfs()
        found: list[str] = []
        for entry in hfs.ls(path):
            found.extend(files_under(str(entry.path)) if entry.is_dir else [str(entry.path)])
        return sorted(found)
    return sorted(
        os.path.join(folder, name) for folder, _, files in os.walk(path) for name in files
    )


def exists(path: str) -> bool:
    """True for a file or a directory (on an object store: a prefix with objects)."""
    if _is_gcs(path):
        return bool(_gcs().exists(path))
    if is_remote(path):
        return bool(_hfs().exists(path))
    return os.path.exists(path)


def open_binary(path: str, mode: str = "rb") -> Any:
    """A binary file object for reading (``rb``) or writing (``wb``).

    A ``gs://`` object opened for writing is uploaded when the file is closed (the
    ``with`` block ends), not when the block raises; prefer :func:`atomic_writer`.
    """
    if _is_gcs(path):
        return _gcs().open_binary(path, mode)
    if is_remote(path):
        return _hfs().open(path, mode)
    if "w" in mode:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return open(path, mode)


def glob_files(pattern: str) -> list[str]:
    """Files matching a glob pattern (``*``, ``?``, ``[…]``), local or remote."""
    if _is_gcs(pattern):
        return list(_gcs().glob(pattern))
    if is_remote(pattern):
        return sorted(str(e.path) for e in _hfs().ls(pattern) if not e.is_dir)
    import glob

    return [p for p in glob.glob(pattern) if os.path.isfile(p) or os.path.isdir(p)]


def is_dir(path: str) -> bool:
    if _is_gcs(path):
        return bool(_gcs().is_dir(path))
    if is_remote(path):
        return bool(_hfs().is_dir(path))
    return os.path.isdir(path)


def makedirs(path: str) -> None:
    if not is_remote(path):  # object stores have no directories
        Path(path).mkdir(parents=True, exist_ok=True)


def read_text(path: str) -> str:
    """The whole file decoded as UTF-8."""
    if _is_gcs(path):
        return bytes(_gcs().read_bytes(path)).decode("utf-8")
    if is_remote(path):
        with _hfs().open(path, "r") as handle:
            return str(handle.read())
    return Path(path).read_text(encoding="utf-8")


class _KeepOpen(io.BufferedIOBase):
    """A writable view of a file whose ``close()`` leaves the file open."""

    def __init__(self, target: BinaryIO) -> None:
        super().__init__()
        self._target = target

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to closed file")
        return self._target.write(data)

    def flush(self) -> None:
        if not self.closed:
            self._target.flush()


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
            # a wrapper (TextIOWrapper, GzipFile) may close what it was given: keep the
            # spool itself open for the upload
            yield _KeepOpen(spool)  # type: ignore[misc]
            spool.flush()
            if _is_gcs(path):
                _gcs().upload_file(spool, path)
            else:
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
    if _is_gcs(path):
        gcs = _gcs()
        gcs.remove_tree(path)
        if gcs.is_file(path):
            gcs.remove_file(path)
        return
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
    """Move ``src`` (a file or a directory tree) to ``dst`` (a rename locally; copy
    then delete when either side is remote)."""
    if _is_gcs(src) or _is_gcs(dst):
        if is_dir(src) and not (_is_gcs(src) and _gcs().is_file(src)):
            copy_tree(src, dst)
        else:
            copy_file(src, dst)
        remove(src)
        return
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
    if _is_gcs(path):
        return int(_gcs().size(path))
    if is_remote(path):
        return int(_hfs().stat(path).size)
    return os.path.getsize(path)


def sha256_file(path: str, chunk_size: int = 1 << 20) -> str:
    """``sha256:<hex>`` of a whole file."""
    digest = hashlib.sha256()
    with open_binary(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def copy_file(src: str, dst: str) -> None:
    """Copy one file; either side may be local or remote (``gs://``)."""
    if _is_gcs(src) and _is_gcs(dst):
        _gcs().copy(src, dst)
        return
    if _is_gcs(dst) and not is_remote(src):
        _gcs().upload(src, dst)
        return
    if _is_gcs(src) and not is_remote(dst):
        _gcs().download(src, dst)
        return
    if _is_gcs(src) or _is_gcs(dst):  # gs:// and another remote scheme: stream
        with open_binary(src, "rb") as source, open_binary(dst, "wb") as target:
            shutil.copyfileobj(source, target)
        return
    if is_remote(src) or is_remote(dst):
        _hfs().copy(src, dst)
        return
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def copy_tree(src: str, dst: str, *, last: str | None = None) -> None:
    """Every file below ``src`` to the same relative place below ``dst``; either side
    local or ``gs://``. ``last``: a file name (relative to ``src``) copied after all
    the others, e.g. a marker that says the folder is complete."""
    base = src.rstrip("/") + "/"
    names = [name[len(base) :] for name in files_under(src)]
    for name in sorted(names, key=lambda n: n == last):
        copy_file(join(src, name), join(dst, name))


def write_table(path: str, frame: Any, **options: Any) -> None:
    """``frame.to_csv(**options)`` (a pandas frame) written with :func:`atomic_writer`:
    the text of ``frame.to_csv(path, **options)``, gzip-compressed when ``path`` ends
    with ``.gz`` (without a timestamp, so equal frames give equal bytes)."""
    import gzip

    data = frame.to_csv(**options).encode("utf-8")
    with atomic_writer(path) as handle:
        if path.endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0) as packed:
                packed.write(data)
        else:
            handle.write(data)


def read_table(path: str, **options: Any) -> Any:
    """``pandas.read_csv`` of ``path``, local or remote (gzip inferred from a ``.gz`` name)."""
    import pandas as pd

    if not is_remote(path):
        return pd.read_csv(path, **options)
    if options.get("compression", "infer") == "infer":
        options["compression"] = "gzip" if path.endswith(".gz") else None
    with open_binary(path, "rb") as handle:
        return pd.read_csv(handle, **options)


def write_parquet(path: str, frame: Any, *, partition_cols: list[str] | None = None) -> None:
    """``frame.to_parquet(path, index=False)`` (a pandas frame), local or remote.

    With ``partition_cols`` ``path`` is a folder of Hive-style partitions
    (``contig=21/…``). For a remote ``path`` the Parquet is written to a local
    temporary folder first and then copied file by file, so no fsspec/gcsfs file
    system is needed. The caller writes to a temporary path and moves it into place
    (as for every other stage output).
    """
    if not is_remote(path):
        if partition_cols is None:
            with atomic_writer(path) as handle:
                frame.to_parquet(handle, index=False)
        else:
            frame.to_parquet(path, partition_cols=partition_cols, index=False)
        return
    with tempfile.TemporaryDirectory(prefix="gwas-prs-parquet-") as spool:
        local = os.path.join(spool, "table.parquet")
        frame.to_parquet(local, partition_cols=partition_cols, index=False)
        if partition_cols is None:
            copy_file(local, path)
        else:
            copy_tree(local, path)


def read_parquet(path: str, **options: Any) -> Any:
    """``pandas.read_parquet`` of a file or partitioned folder, local or remote
    (remote ones are copied to a local temporary folder first)."""
    import pandas as pd

    if not is_remote(path):
        return pd.read_parquet(path, **options)
    with tempfile.TemporaryDirectory(prefix="gwas-prs-parquet-") as spool:
        local = os.path.join(spool, "table.parquet")
        if is_dir(path) and not (_is_gcs(path) and _gcs().is_file(path)):
            copy_tree(path, local)
        else:
            copy_file(path, local)
        return pd.read_parquet(local, **options)
