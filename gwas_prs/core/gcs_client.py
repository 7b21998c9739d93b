"""``gs://`` objects for :mod:`gwas_prs.core.storage`, through google-cloud-storage.

One client per process (per ``STORAGE_EMULATOR_HOST`` value, so a test that points
the process at an emulator gets a client for it), made by
:func:`gwas_prs.core.gcs_staging.storage_client` (anonymous against an emulator,
application-default credentials otherwise). Object stores have no directories:
a "directory" ``gs://b/p`` is every object whose name starts with ``p/``.
Missing objects raise :class:`FileNotFoundError`, as local files do.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import tempfile
import threading
from collections.abc import Iterator
from typing import IO, Any, BinaryIO

_CLIENTS: dict[str | None, Any] = {}
_LOCK = threading.Lock()
#: Bytes read per request when streaming an object.
READ_CHUNK = 8 * 1024 * 1024


def client() -> Any:
    """The process's ``google.cloud.storage.Client`` (made on first use)."""
    key = os.environ.get("STORAGE_EMULATOR_HOST")
    with _LOCK:
        if key not in _CLIENTS:
            from gwas_prs.core.gcs_staging import storage_client

            _CLIENTS[key] = storage_client()
        return _CLIENTS[key]


def split(url: str) -> tuple[str, str]:
    """``gs://bucket/name`` → ``(bucket, name)``."""
    from gwas_prs.core.gcs_staging import parse_gcs_uri

    uri = parse_gcs_uri(url)
    return uri.bucket, uri.name


def _blob(url: str) -> Any:
    bucket, name = split(url)
    return client().bucket(bucket).blob(name)


def _prefix(name: str) -> str:
    return f"{name.rstrip('/')}/" if name.strip("/") else ""


def _names_under(url: str, limit: int | None = None) -> Iterator[str]:
    bucket, name = split(url)
    for blob in client().list_blobs(bucket, prefix=_prefix(name), max_results=limit):
        yield str(blob.name)


def is_file(url: str) -> bool:
    _, name = split(url)
    return bool(name) and not name.endswith("/") and bool(_blob(url).exists())


def is_dir(url: str) -> bool:
    return any(True for _ in _names_under(url, limit=1))


def exists(url: str) -> bool:
    return is_file(url) or is_dir(url)


def _not_found(url: str) -> FileNotFoundError:
    return FileNotFoundError(2, "No such object", url)


def read_bytes(url: str) -> bytes:
    from google.api_core.exceptions import NotFound

    try:
        return bytes(_blob(url).download_as_bytes())
    except NotFound as exc:
        raise _not_found(url) from exc


def size(url: str) -> int:
    bucket, name = split(url)
    blob = client().bucket(bucket).get_blob(name) if name else None
    if blob is None:
        raise _not_found(url)
    return int(blob.size)


class _Reader:
    """A read-only binary stream over an object, fetched ``READ_CHUNK`` bytes at a time."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._blob = _blob(url)
        self._size = size(url)
        self._offset = 0
        self._buffer = b""
        self.closed = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def writable(self) -> bool:
        return False

    def _fill(self, want: int) -> None:
        while len(self._buffer) < want and self._offset < self._size:
            end = min(self._offset + max(READ_CHUNK, want), self._size) - 1
            self._buffer += self._blob.download_as_bytes(start=self._offset, end=end)
            self._offset = end + 1

    def read(self, n: int | None = -1) -> bytes:
        want = self._size if n is None or n < 0 else n
        self._fill(want)
        out, self._buffer = self._buffer[:want], self._buffer[want:]
        return out

    def read1(self, n: int = -1) -> bytes:
        return self.read(n if n >= 0 else READ_CHUNK)

    def readinto(self, target: Any) -> int:
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.closed = True
        self._buffer = b""

    def flush(self) -> None:
        pass

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def readline(self, limit: int = -1) -> bytes:
        while b"\n" not in self._buffer and self._offset < self._size:
            self._fill(len(self._buffer) + READ_CHUNK)
        cut = self._buffer.find(b"\n") + 1 or len(self._buffer)
        if limit >= 0:
            cut = min(cut, limit)
        out, self._buffer = self._buffer[:cut], self._buffer[cut:]
        return out


class _Writer:
    """A binary stream spooled to a local temporary file and uploaded when it closes
    (not uploaded when the ``with`` block raises)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._spool: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 closed by close()

    @property
    def closed(self) -> bool:
        return self._spool.closed

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def write(self, data: Any) -> int:
        return self._spool.write(data)

    def flush(self) -> None:
        self._spool.flush()

    def close(self) -> None:
        if not self._spool.closed:
            upload_file(self._spool, self.url)
            self._spool.close()

    def discard(self) -> None:
        self._spool.close()

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        if kind is None:
            self.close()
        else:
            self.discard()


def open_binary(url: str, mode: str) -> Any:
    if "w" in mode:
        return _Writer(url)
    if not is_file(url):
        raise _not_found(url)
    return _Reader(url)


def upload_file(handle: BinaryIO | IO[bytes], url: str) -> None:
    """Upload the whole of ``handle`` (from its start) as ``url``, in one commit."""
    handle.flush()
    handle.seek(0)
    _blob(url).upload_from_file(handle, rewind=True)


def upload(local: str, url: str) -> None:
    _blob(url).upload_from_filename(local)


def download(url: str, local: str) -> None:
    from google.api_core.exceptions import NotFound

    os.makedirs(os.path.dirname(os.path.abspath(local)), exist_ok=True)
    try:
        _blob(url).download_to_filename(local)
    except NotFound as exc:
        if os.path.exists(local):
            os.remove(local)
        raise _not_found(url) from exc


def copy(src: str, dst: str) -> None:
    """One object to another (a server-side rewrite)."""
    from google.api_core.exceptions import NotFound

    sb, sn = split(src)
    db, dn = split(dst)
    source = client().bucket(sb)
    try:
        source.copy_blob(source.blob(sn), client().bucket(db), dn)
    except NotFound as exc:
        raise _not_found(src) from exc


def remove_file(url: str) -> None:
    from google.api_core.exceptions import NotFound

    with contextlib.suppress(NotFound):
        _blob(url).delete()


def files_under(url: str) -> list[str]:
    """``gs://`` URLs of every object below the "directory" ``url``."""
    bucket, _ = split(url)
    return [f"gs://{bucket}/{name}" for name in _names_under(url)]


def remove_tree(url: str) -> None:
    for name in files_under(url):
        remove_file(name)


def glob(pattern: str) -> list[str]:
    """Objects whose names match ``pattern`` part by part (``*`` stays within a part)."""
    bucket, name = split(pattern)
    parts = name.split("/")
    literal = []
    for part in parts:
        if any(c in part for c in "*?["):
            break
        literal.append(part)
    if len(literal) == len(parts):
        return [pattern] if is_file(pattern) else []
    prefix = "/".join(literal) + "/" if literal else ""
    found = []
    for blob in client().list_blobs(bucket, prefix=prefix):
        candidate = str(blob.name).split("/")
        if len(candidate) == len(parts) and all(
            fnmatch.fnmatchcase(c, p) for c, p in zip(candidate, parts, strict=True)
        ):
            found.append(f"gs://{bucket}/{blob.name}")
    return sorted(found)
