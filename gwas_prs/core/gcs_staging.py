"""Copy files between the local disk and Google Cloud Storage, verified by CRC32C.

``gwas-prs stage`` uploads local inputs (VCFs, sample files, the project's
wheel) to ``gs://BUCKET/PREFIX`` and downloads reports back. Transfers use the
``google-cloud-storage`` client directly (no ``gsutil``):

- files run in parallel on a thread pool (:data:`DEFAULT_WORKERS` at a time);
- files larger than :data:`RESUMABLE_THRESHOLD` use chunked resumable uploads,
  so a network error repeats one chunk, not the whole file;
- a destination that already holds the same bytes (same size **and** same
  CRC32C) is skipped, so staging twice costs only the checksums;
- after every transfer the CRC32C of the remote object is compared with the
  local file; a difference raises :class:`ChecksumMismatchError`, which is how a
  corrupted object (or a corrupted local copy) shows up.

Progress is reported through a callback (``on_bytes``) so this library never
prints; the CLI draws a progress bar with it.

Credentials: the client uses Application Default Credentials
(``gcloud auth application-default login``). When ``STORAGE_EMULATOR_HOST`` is
set (tests, local development against an emulator) anonymous credentials are
used instead.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from gwas_prs.core.errors import ExternalCommandError, InputError

logger = logging.getLogger(__name__)

#: Files larger than this use resumable (chunked) uploads; smaller ones one request.
RESUMABLE_THRESHOLD = 8 * 1024 * 1024
#: Chunk size of resumable uploads (a multiple of 256 KiB, as GCS requires).
CHUNK_SIZE = 8 * 1024 * 1024
#: Files transferred at the same time.
DEFAULT_WORKERS = 4
#: Project used with the storage emulator when none is given.
EMULATOR_PROJECT = "gwas-prs-local"

STATUS_UPLOADED = "uploaded"
STATUS_REPLACED = "replaced"
STATUS_DOWNLOADED = "downloaded"
STATUS_SKIPPED = "skipped (same size and CRC32C)"

ByteCallback = Callable[[int], None]


class ChecksumMismatchError(ExternalCommandError):
    """The CRC32C of a transferred object differs from its source (corruption)."""


@dataclass(frozen=True)
class GcsUri:
    """A ``gs://bucket/name`` location; ``name`` may be a prefix ending in ``/``."""

    bucket: str
    name: str

    def __str__(self) -> str:
        return f"gs://{self.bucket}/{self.name}"

    def child(self, relative: str) -> GcsUri:
        """The object ``relative`` below this prefix."""
        prefix = self.name.rstrip("/")
        return GcsUri(self.bucket, f"{prefix}/{relative}" if prefix else relative)


@dataclass(frozen=True)
class Transfer:
    """One file to copy: a local path and an object."""

    local: Path
    remote: GcsUri
    size: int


@dataclass(frozen=True)
class TransferResult:
    """What happened to one file."""

    local: str
    remote: str
    size: int
    crc32c: str
    status: str


def parse_gcs_uri(uri: str) -> GcsUri:
    """Split ``gs://bucket/name`` into its parts.

    >>> parse_gcs_uri("gs://my-bucket/runs/cohort/")
    GcsUri(bucket='my-bucket', name='runs/cohort/')

    Raises
    ------
    InputError
        ``uri`` does not start with ``gs://`` or has no bucket.
    """
    if not uri.startswith("gs://"):
        raise InputError(
            f"{uri}: not a Google Cloud Storage location; write it as gs://BUCKET/PREFIX"
        )
    bucket, _, name = uri[len("gs://") :].partition("/")
    if not bucket:
        raise InputError(f"{uri}: the bucket name is missing; write it as gs://BUCKET/PREFIX")
    return GcsUri(bucket, name)


def crc32c_of_bytes(data: bytes) -> str:
    """The CRC32C of ``data``, base64-encoded big-endian as GCS reports it."""
    import google_crc32c

    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode("ascii")


def crc32c_of_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """The CRC32C of a file, base64-encoded big-endian as GCS reports it."""
    import google_crc32c

    checksum = google_crc32c.Checksum()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            checksum.update(chunk)
    return base64.b64encode(checksum.digest()).decode("ascii")


def storage_client(project: str | None = None) -> Any:
    """A ``google.cloud.storage.Client`` (anonymous when an emulator is configured).

    Raises
    ------
    EnvironmentSetupError
        No Google credentials are configured (outside the emulator).
    """
    from google.cloud import storage

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(
            credentials=AnonymousCredentials(), project=project or EMULATOR_PROJECT
        )
    import google.auth.exceptions

    from gwas_prs.core.errors import EnvironmentSetupError

    try:
        return storage.Client(project=project)
    except google.auth.exceptions.DefaultCredentialsError as exc:
        raise EnvironmentSetupError(
            "no Google Cloud credentials found; run 'gcloud auth application-default login' "
            "(or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key) and try again"
        ) from exc


def plan_uploads(sources: Sequence[str], destination: str) -> list[Transfer]:
    """The transfers that copy local ``sources`` below the ``destination`` prefix.

    A file lands at ``PREFIX/<file name>``; a directory is copied recursively
    as ``PREFIX/<directory name>/<relative path>``.

    Raises
    ------
    InputError
        A source does not exist, or two sources map to the same object.
    """
    prefix = parse_gcs_uri(destination)
    transfers: list[Transfer] = []
    for source in sources:
        path = Path(source)
        if path.is_file():
            transfers.append(Transfer(path, prefix.child(path.name), path.stat().st_size))
        elif path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                relative = f"{path.name}/{file.relative_to(path).as_posix()}"
                transfers.append(Transfer(file, prefix.child(relative), file.stat().st_size))
        else:
            raise InputError(f"{source}: no such file or directory; check the path")
    seen: dict[str, Path] = {}
    for transfer in transfers:
        key = str(transfer.remote)
        if key in seen:
            raise InputError(
                f"{seen[key]} and {transfer.local} would both be staged to {key}; rename one of them"
            )
        seen[key] = transfer.local
    return transfers


class _CountingReader:
    """A read-only file wrapper that reports newly read bytes to a callback."""

    def __init__(self, handle: BinaryIO, on_bytes: ByteCallback | None) -> None:
        self._handle = handle
        self._on_bytes = on_bytes
        self._high_water = 0

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        position = self._handle.tell()
        if position > self._high_water:
            if self._on_bytes is not None:
                self._on_bytes(position - self._high_water)
            self._high_water = position
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


def _check_crc(what: str, expected: str, actual: str | None, hint: str) -> None:
    if actual != expected:
        raise ChecksumMismatchError(
            f"{what}: CRC32C {actual} differs from the expected {expected}; the copy is corrupted — {hint}"
        )


def _upload_one(client: Any, transfer: Transfer, on_bytes: ByteCallback | None) -> TransferResult:
    from google.cloud.storage.exceptions import DataCorruption

    local_crc = crc32c_of_file(transfer.local)
    bucket = client.bucket(transfer.remote.bucket)
    existing = bucket.get_blob(transfer.remote.name)
    if existing is not None and existing.size == transfer.size and existing.crc32c == local_crc:
        logger.debug("%s already holds %s; skipped", transfer.remote, transfer.local)
        if on_bytes is not None:
            on_bytes(transfer.size)
        return TransferResult(
            str(transfer.local), str(transfer.remote), transfer.size, local_crc, STATUS_SKIPPED
        )
    from google.api_core.exceptions import PreconditionFailed
    from google.cloud.storage.retry import DEFAULT_RETRY

    chunk_size = CHUNK_SIZE if transfer.size > RESUMABLE_THRESHOLD else None
    blob = bucket.blob(transfer.remote.name, chunk_size=chunk_size)
    # The generation precondition makes every attempt idempotent (it replaces exactly
    # the object seen above, or creates it: 0 = "must not exist"), so the upload may
    # be retried. google-cloud-storage 2.x retries uploads only when a precondition
    # is given *and* retry is left to its conditional default, 3.x always: passing
    # DEFAULT_RETRY with the precondition retries on every supported version.
    generation = int(existing.generation) if existing is not None else 0
    try:
        with open(transfer.local, "rb") as handle:
            blob.upload_from_file(
                _CountingReader(handle, on_bytes),
                size=transfer.size,
                checksum="crc32c",
                rewind=False,
                if_generation_match=generation,
                retry=DEFAULT_RETRY,
            )
    except DataCorruption as exc:
        raise ChecksumMismatchError(
            f"{transfer.remote}: the upload of {transfer.local} was corrupted in transit ({exc}); run 'gwas-prs stage' again"
        ) from exc
    except PreconditionFailed as exc:
        raise ExternalCommandError(
            f"{transfer.remote}: the object was changed by someone else while {transfer.local} "
            "was being staged; nothing was overwritten — run 'gwas-prs stage' again"
        ) from exc
    verify_object(client, transfer.remote, local_crc, transfer.size)
    status = STATUS_REPLACED if existing is not None else STATUS_UPLOADED
    logger.info("%s %s → %s", status, transfer.local, transfer.remote)
    return TransferResult(
        str(transfer.local), str(transfer.remote), transfer.size, local_crc, status
    )


def verify_object(client: Any, remote: GcsUri, expected_crc32c: str, expected_size: int) -> None:
    """Check that the object ``remote`` has the given CRC32C and size.

    Raises
    ------
    ChecksumMismatchError
        The object is missing, or its size or CRC32C differs.
    """
    blob = client.bucket(remote.bucket).get_blob(remote.name)
    if blob is None:
        raise ChecksumMismatchError(
            f"{remote}: the object is missing right after its upload; run 'gwas-prs stage' again"
        )
    hint = "run 'gwas-prs stage' again (a file that changes while it is staged cannot be verified)"
    if blob.size != expected_size:
        raise ChecksumMismatchError(
            f"{remote}: {blob.size} bytes on GCS but {expected_size} expected; the copy is corrupted — {hint}"
        )
    _check_crc(str(remote), expected_crc32c, blob.crc32c, hint)


def _run_parallel(
    work: Callable[[Any], TransferResult], items: Sequence[Any], workers: int
) -> list[TransferResult]:
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        return list(pool.map(work, items))


def upload_files(
    sources: Sequence[str],
    destination: str,
    *,
    client: Any | None = None,
    workers: int = DEFAULT_WORKERS,
    on_bytes: ByteCallback | None = None,
) -> list[TransferResult]:
    """Upload local files/directories below ``destination`` (``gs://BUCKET/PREFIX``).

    Objects that already have the same size and CRC32C are skipped; others are
    uploaded (replaced when they differ) and verified afterwards.

    Raises
    ------
    InputError
        A source is missing or the destination is not a ``gs://`` URI.
    ChecksumMismatchError
        An object does not match its local file after the upload.
    """
    transfers = plan_uploads(sources, destination)
    client = client or storage_client()
    lock = threading.Lock()

    def counted(n: int) -> None:
        if on_bytes is not None:
            with lock:
                on_bytes(n)

    return _run_parallel(lambda t: _upload_one(client, t, counted), transfers, workers)


def total_bytes(transfers: Sequence[Transfer]) -> int:
    """Sum of the sizes of ``transfers`` (for a progress bar)."""
    return sum(t.size for t in transfers)


def check_relative_object_name(uri: str, relative: str, destination: str) -> None:
    """Refuse an object whose name below the downloaded prefix would not stay inside
    ``destination``: a ``..`` or ``.`` part, an absolute part (``//``, a leading
    ``/``, a drive or a backslash) or an empty component.

    Raises
    ------
    InputError
        One line naming the object.
    """
    parts = relative.split("/")
    bad = (
        not relative
        or "\\" in relative
        or any(part in ("", ".", "..") for part in parts)
        or (len(parts[0]) >= 2 and parts[0][1] == ":")
    )
    if bad:
        raise InputError(
            f"{uri}: the object name would land outside {destination} (a '..', '.', empty or "
            "absolute part); rename the object on GCS or download a narrower prefix"
        )


def read_object_tail(uri: str, max_bytes: int = 64 * 1024, *, client: Any | None = None) -> str:
    """The last ``max_bytes`` of the last object (by name) whose name starts with ``uri``'s
    (e.g. a Dataproc job's ``…/driveroutput`` → ``driveroutput.000000003``), as text.

    Raises
    ------
    InputError
        No object has that name prefix.
    """
    location = parse_gcs_uri(uri)
    client = client or storage_client()
    blobs = sorted(
        client.list_blobs(location.bucket, prefix=location.name), key=lambda b: str(b.name)
    )
    if not blobs:
        raise InputError(f"{uri}: no such object on Google Cloud Storage")
    last = blobs[-1]
    start = max(0, int(last.size or 0) - max_bytes)
    data = last.download_as_bytes(start=start) if start else last.download_as_bytes()
    return bytes(data).decode("utf-8", errors="replace")


def plan_downloads(source: str, destination: str, *, client: Any | None = None) -> list[Transfer]:
    """The transfers that copy every object below ``source`` into ``destination``.

    ``gs://b/run/gold/prs/T2D`` (a prefix) lands as ``DEST/T2D/...``; a single
    object lands as ``DEST/<object name>``.

    Raises
    ------
    InputError
        Nothing exists at ``source``, or an object's name would land outside
        ``destination`` (``../``, an absolute or empty part).
    """
    uri = parse_gcs_uri(source)
    client = client or storage_client()
    dest = Path(destination)
    prefix = uri.name.rstrip("/")
    blob = client.bucket(uri.bucket).get_blob(prefix) if prefix else None
    base = prefix.rpartition("/")[2]
    if prefix:
        check_relative_object_name(source, base, destination)
    if blob is not None:
        return [Transfer(dest / base, GcsUri(uri.bucket, prefix), int(blob.size))]
    list_prefix = f"{prefix}/" if prefix else ""
    transfers = []
    for item in client.list_blobs(uri.bucket, prefix=list_prefix):
        if item.name.endswith("/"):
            continue  # "folder" placeholder objects
        relative = item.name[len(list_prefix) :]
        check_relative_object_name(f"gs://{uri.bucket}/{item.name}", relative, destination)
        transfers.append(
            Transfer(dest / base / relative, GcsUri(uri.bucket, item.name), int(item.size))
        )
    if not transfers:
        raise InputError(
            f"{source}: no such object or prefix on Google Cloud Storage; check the path"
        )
    return transfers


def _download_one(client: Any, transfer: Transfer, on_bytes: ByteCallback | None) -> TransferResult:
    from google.cloud.storage.exceptions import DataCorruption

    blob = client.bucket(transfer.remote.bucket).get_blob(transfer.remote.name)
    if blob is None:
        raise InputError(f"{transfer.remote}: the object disappeared while downloading; try again")
    remote_crc = str(blob.crc32c)
    if (
        transfer.local.is_file()
        and transfer.local.stat().st_size == blob.size
        and crc32c_of_file(transfer.local) == remote_crc
    ):
        if on_bytes is not None:
            on_bytes(int(blob.size))
        return TransferResult(
            str(transfer.local), str(transfer.remote), int(blob.size), remote_crc, STATUS_SKIPPED
        )
    transfer.local.parent.mkdir(parents=True, exist_ok=True)
    partial = transfer.local.with_name(f".{transfer.local.name}.partial")
    hint = f"the object on GCS does not match its recorded checksum; re-stage or re-create {transfer.remote}"
    try:
        blob.download_to_filename(str(partial), checksum="crc32c")
        _check_crc(str(transfer.remote), remote_crc, crc32c_of_file(partial), hint)
    except DataCorruption as exc:
        partial.unlink(missing_ok=True)
        raise ChecksumMismatchError(
            f"{transfer.remote}: CRC32C of the downloaded bytes differs from the object's {remote_crc}; {hint}"
        ) from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, transfer.local)
    if on_bytes is not None:
        on_bytes(int(blob.size))
    logger.info("downloaded %s → %s", transfer.remote, transfer.local)
    return TransferResult(
        str(transfer.local), str(transfer.remote), int(blob.size), remote_crc, STATUS_DOWNLOADED
    )


def download_files(
    transfers: Sequence[Transfer],
    *,
    client: Any | None = None,
    workers: int = DEFAULT_WORKERS,
    on_bytes: ByteCallback | None = None,
) -> list[TransferResult]:
    """Download planned ``transfers`` (see :func:`plan_downloads`), verified by CRC32C.

    Local files that already match are skipped; a download lands in a hidden
    ``.NAME.partial`` file that replaces the target only after verification.

    Raises
    ------
    ChecksumMismatchError
        An object's bytes do not match its CRC32C (a corrupted object).
    """
    client = client or storage_client()
    lock = threading.Lock()

    def counted(n: int) -> None:
        if on_bytes is not None:
            with lock:
                on_bytes(n)

    return _run_parallel(lambda t: _download_one(client, t, counted), list(transfers), workers)
