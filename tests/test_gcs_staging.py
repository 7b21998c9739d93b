"""``gwas-prs stage`` and :mod:`gwas_prs.core.gcs_staging` against a real storage emulator.

The emulator (``gcp-storage-emulator``) implements JSON-API uploads (multipart
and resumable), stores and serves CRC32C (``x-goog-hash``) and validates a
CRC32C sent with an upload, so every code path runs as it would against GCS.
It keeps objects as plain files, which lets a test corrupt an object's bytes
behind the server's back while the object's recorded CRC32C stays unchanged —
the situation a corrupted object on GCS would produce.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from gwas_prs.core import gcs_staging
from gwas_prs.core.errors import InputError
from gwas_prs.core.gcs_staging import (
    STATUS_DOWNLOADED,
    STATUS_REPLACED,
    STATUS_SKIPPED,
    STATUS_UPLOADED,
    ChecksumMismatchError,
    GcsUri,
    crc32c_of_file,
    download_files,
    parse_gcs_uri,
    plan_downloads,
    storage_client,
    upload_files,
    verify_object,
)
from tests.cli_helpers import invoke
from tests.gcs_emulator import EmulatorServer


@pytest.fixture
def client(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.host)
    return storage_client()


@pytest.fixture
def bucket(client: Any) -> str:
    name = f"stage-{uuid.uuid4().hex[:10]}"
    client.create_bucket(name)
    return name


@pytest.fixture
def inputs(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "inputs"
    folder.mkdir()
    vcf = folder / "chr22.vcf.gz"
    vcf.write_bytes(os.urandom(70_000))
    samples = folder / "samples.tsv"
    samples.write_text("s\tsex\nHG00096\tmale\n")
    return [vcf, samples]


def test_parse_gcs_uri() -> None:
    assert parse_gcs_uri("gs://b/x/y") == GcsUri("b", "x/y")
    with pytest.raises(InputError) as info:
        parse_gcs_uri("/data/x")
    assert (
        str(info.value)
        == "/data/x: not a Google Cloud Storage location; write it as gs://BUCKET/PREFIX"
    )


def test_crc32c_matches_the_known_value(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"123456789")  # CRC-32C check value 0xE3069283
    assert crc32c_of_file(path) == "4waSgw=="


def test_upload_then_skip_then_replace(client: Any, bucket: str, inputs: list[Path]) -> None:
    dest = f"gs://{bucket}/inputs/cohort"
    first = upload_files([str(p) for p in inputs], dest, client=client)
    assert [(r.remote, r.size, r.status) for r in first] == [
        (f"{dest}/chr22.vcf.gz", 70_000, STATUS_UPLOADED),
        (f"{dest}/samples.tsv", 19, STATUS_UPLOADED),
    ]
    blob = client.bucket(bucket).get_blob("inputs/cohort/chr22.vcf.gz")
    assert blob.download_as_bytes() == inputs[0].read_bytes()
    assert blob.crc32c == crc32c_of_file(inputs[0])

    second = upload_files([str(p) for p in inputs], dest, client=client)
    assert [r.status for r in second] == [STATUS_SKIPPED, STATUS_SKIPPED]

    inputs[1].write_text("s\tsex\nHG00096\tfemale\n")
    third = upload_files([str(p) for p in inputs], dest, client=client)
    assert [r.status for r in third] == [STATUS_SKIPPED, STATUS_REPLACED]
    assert (
        client.bucket(bucket).get_blob("inputs/cohort/samples.tsv").download_as_bytes()
        == inputs[1].read_bytes()
    )


def use_small_resumable_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take the resumable path from 256 KiB on, so a test needs no 8 MiB files.

    google-cloud-storage itself switches from one multipart request to a
    resumable upload above ``_MAX_MULTIPART_SIZE`` (8 MiB); both limits move.
    """
    import google.cloud.storage.blob

    monkeypatch.setattr(gcs_staging, "RESUMABLE_THRESHOLD", 256 * 1024)
    monkeypatch.setattr(gcs_staging, "CHUNK_SIZE", 256 * 1024)
    monkeypatch.setattr(google.cloud.storage.blob, "_MAX_MULTIPART_SIZE", 256 * 1024)


def test_large_files_use_resumable_uploads(
    client: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_small_resumable_chunks(monkeypatch)
    big = tmp_path / "big.bgen"
    big.write_bytes(os.urandom(700_000))
    seen: list[int] = []
    original_blob = client.bucket(bucket).__class__.blob
    chunk_sizes: list[int | None] = []

    def spy(self: Any, name: str, chunk_size: int | None = None, **kwargs: Any) -> Any:
        chunk_sizes.append(chunk_size)
        return original_blob(self, name, chunk_size=chunk_size, **kwargs)

    monkeypatch.setattr(client.bucket(bucket).__class__, "blob", spy)
    [result] = upload_files([str(big)], f"gs://{bucket}/big", client=client, on_bytes=seen.append)
    assert result.status == STATUS_UPLOADED
    assert chunk_sizes == [256 * 1024]
    assert sum(seen) == 700_000
    assert len(seen) == 3  # three 256 KiB chunks read → three progress updates
    assert client.bucket(bucket).get_blob("big/big.bgen").crc32c == crc32c_of_file(big)


def test_a_file_changing_during_upload_fails_verification(
    client: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_small_resumable_chunks(monkeypatch)
    path = tmp_path / "growing.vcf"
    path.write_bytes(b"A" * 600_000)

    def rewrite_tail(_: int) -> None:  # another process rewrites the file mid-upload
        with open(path, "r+b") as handle:
            handle.seek(500_000)
            handle.write(b"B" * 100_000)

    with pytest.raises(ChecksumMismatchError) as info:
        upload_files([str(path)], f"gs://{bucket}/x", client=client, on_bytes=rewrite_tail)
    remote_crc = client.bucket(bucket).get_blob("x/growing.vcf").crc32c
    assert str(info.value) == (
        f"gs://{bucket}/x/growing.vcf: CRC32C {remote_crc} differs from the expected "
        f"{gcs_staging.crc32c_of_bytes(b'A' * 600_000)}; the copy is corrupted — run 'gwas-prs stage' again "
        "(a file that changes while it is staged cannot be verified)"
    )
    assert info.value.exit_code == 4


def test_verify_object_reports_size_and_missing(client: Any, bucket: str, tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("hello")
    upload_files([str(path)], f"gs://{bucket}/v", client=client)
    with pytest.raises(ChecksumMismatchError) as info:
        verify_object(client, GcsUri(bucket, "v/a.txt"), crc32c_of_file(path), 6)
    assert str(info.value).startswith(
        f"gs://{bucket}/v/a.txt: 5 bytes on GCS but 6 expected; the copy is corrupted"
    )
    with pytest.raises(ChecksumMismatchError) as missing:
        verify_object(client, GcsUri(bucket, "v/b.txt"), "x", 1)
    assert str(missing.value) == (
        f"gs://{bucket}/v/b.txt: the object is missing right after its upload; run 'gwas-prs stage' again"
    )


def make_reports(root: Path) -> Path:
    reports = root / "prs"
    (reports / "T2D").mkdir(parents=True)
    (reports / "T2D" / "report.html").write_text("<html>T2D</html>")
    (reports / "T2D" / "scores.tsv").write_text("s\tprs\nHG00096\t0.1\n")
    (reports / "clumps.tsv").write_text("rsid\nrs1\n")
    return reports


def test_download_reports_then_skip(client: Any, bucket: str, tmp_path: Path) -> None:
    upload_files([str(make_reports(tmp_path / "src"))], f"gs://{bucket}/runs/a/gold", client=client)
    dest = tmp_path / "out"
    transfers = plan_downloads(f"gs://{bucket}/runs/a/gold/prs", str(dest), client=client)
    results = download_files(transfers, client=client)
    assert sorted((Path(r.local).relative_to(dest).as_posix(), r.status) for r in results) == [
        ("prs/T2D/report.html", STATUS_DOWNLOADED),
        ("prs/T2D/scores.tsv", STATUS_DOWNLOADED),
        ("prs/clumps.tsv", STATUS_DOWNLOADED),
    ]
    assert (dest / "prs" / "T2D" / "report.html").read_text() == "<html>T2D</html>"
    again = download_files(
        plan_downloads(f"gs://{bucket}/runs/a/gold/prs", str(dest), client=client), client=client
    )
    assert {r.status for r in again} == {STATUS_SKIPPED}
    [single] = plan_downloads(
        f"gs://{bucket}/runs/a/gold/prs/clumps.tsv", str(dest / "one"), client=client
    )
    assert single.local == dest / "one" / "clumps.tsv"


def test_corrupted_object_is_detected_on_download(
    client: Any, bucket: str, tmp_path: Path, emulator: EmulatorServer
) -> None:
    path = tmp_path / "report.html"
    path.write_text("<html>fine</html>")
    [uploaded] = upload_files([str(path)], f"gs://{bucket}/r", client=client)
    emulator.object_path(bucket, "r/report.html").write_text(
        "<html>rot!</html>"
    )  # same size, other bytes
    dest = tmp_path / "dl"
    transfers = plan_downloads(f"gs://{bucket}/r/report.html", str(dest), client=client)
    with pytest.raises(ChecksumMismatchError) as info:
        download_files(transfers, client=client)
    assert str(info.value) == (
        f"gs://{bucket}/r/report.html: CRC32C of the downloaded bytes differs from the object's {uploaded.crc32c}; "
        f"the object on GCS does not match its recorded checksum; re-stage or re-create gs://{bucket}/r/report.html"
    )
    assert list(dest.iterdir()) == []  # no partial file is left behind


def test_plan_errors(client: Any, bucket: str, tmp_path: Path) -> None:
    with pytest.raises(InputError) as missing_local:
        upload_files([str(tmp_path / "nope.vcf")], f"gs://{bucket}/x", client=client)
    assert (
        str(missing_local.value)
        == f"{tmp_path / 'nope.vcf'}: no such file or directory; check the path"
    )
    with pytest.raises(InputError) as missing_remote:
        plan_downloads(f"gs://{bucket}/nothing/here", str(tmp_path), client=client)
    assert str(missing_remote.value) == (
        f"gs://{bucket}/nothing/here: no such object or prefix on Google Cloud Storage; check the path"
    )
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.vcf").write_text("1")
    (tmp_path / "b" / "x.vcf").write_text("2")
    with pytest.raises(InputError) as clash:
        upload_files(
            [str(tmp_path / "a" / "x.vcf"), str(tmp_path / "b" / "x.vcf")], f"gs://{bucket}/x"
        )
    assert str(clash.value) == (
        f"{tmp_path / 'a' / 'x.vcf'} and {tmp_path / 'b' / 'x.vcf'} would both be staged to gs://{bucket}/x/x.vcf; "
        "rename one of them"
    )


# ----------------------------------------------------------------------- CLI


def test_cli_stage_upload_and_download(
    client: Any, bucket: str, inputs: list[Path], tmp_path: Path
) -> None:
    code, stdout, _ = invoke("stage", *map(str, inputs), f"gs://{bucket}/in")
    assert code == 0
    assert "uploaded" in stdout and "chr22.vcf.gz" in stdout
    code, stdout, _ = invoke("stage", *map(str, inputs), f"gs://{bucket}/in")
    assert code == 0
    assert stdout.count("skipped (same size and CRC32C)") == 2
    code, _, _ = invoke("stage", "--download", f"gs://{bucket}/in", str(tmp_path / "back"))
    assert code == 0
    assert (tmp_path / "back" / "in" / "samples.tsv").read_text() == inputs[1].read_text()


def test_cli_stage_dry_run_copies_nothing(client: Any, bucket: str, inputs: list[Path]) -> None:
    code, stdout, _ = invoke("stage", *map(str, inputs), f"gs://{bucket}/in", "--dry-run")
    assert code == 0
    assert stdout.splitlines() == [
        f"# upload {inputs[0]} -> gs://{bucket}/in/chr22.vcf.gz (70000 bytes)",
        f"# upload {inputs[1]} -> gs://{bucket}/in/samples.tsv (19 bytes)",
    ]
    assert list(client.list_blobs(bucket)) == []


def test_cli_stage_errors(client: Any, bucket: str, tmp_path: Path) -> None:
    assert invoke("stage", str(tmp_path / "x.vcf")) == (
        2,
        "",
        "error: give at least one source and a destination, e.g. gwas-prs stage data/chr1.vcf.gz gs://BUCKET/inputs\n",
    )
    assert invoke("stage", str(tmp_path), "/local/dest") == (
        2,
        "",
        "error: /local/dest: not a Google Cloud Storage location; write it as gs://BUCKET/PREFIX\n",
    )
    assert invoke("stage", "--download", f"gs://{bucket}/a", f"gs://{bucket}/b") == (
        2,
        "",
        f"error: gs://{bucket}/b: with --download the destination is a local folder\n",
    )


# ------------------------------------------------- retries with preconditions (issue 16, 9)


def test_uploads_are_retried_with_a_generation_precondition(
    client: Any, bucket: str, inputs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every upload passes the generation it replaces (0: must not exist) *and* an
    explicit retry, so it is retried safely on google-cloud-storage 2.x and 3.x."""
    from google.cloud.storage.blob import Blob
    from google.cloud.storage.retry import DEFAULT_RETRY

    seen: list[dict[str, Any]] = []
    original = Blob.upload_from_file

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Blob, "upload_from_file", spy)
    upload_files([str(inputs[1])], f"gs://{bucket}/p", client=client)
    first_generation = client.bucket(bucket).get_blob("p/samples.tsv").generation
    inputs[1].write_text("s\tsex\nHG00097\tfemale\n")
    [result] = upload_files([str(inputs[1])], f"gs://{bucket}/p", client=client)
    assert result.status == STATUS_REPLACED
    assert [(k["if_generation_match"], k["retry"]) for k in seen] == [
        (0, DEFAULT_RETRY),
        (first_generation, DEFAULT_RETRY),
    ]


def test_an_object_replaced_meanwhile_is_not_overwritten(
    client: Any, bucket: str, inputs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone writes the object between the check and the upload: the precondition
    fails and the other writer's object stays (one line, exit 4). The emulator ignores
    preconditions, so the spy checks ``if_generation_match`` as GCS does (412)."""
    from google.api_core.exceptions import PreconditionFailed
    from google.cloud.storage.blob import Blob

    original = Blob.upload_from_file
    raced: list[bool] = []

    def race(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not raced:  # the other writer's own upload goes straight through
            raced.append(True)
            client.bucket(bucket).blob("p/samples.tsv").upload_from_string(b"theirs")
            current = client.bucket(bucket).get_blob(self.name)
            if kwargs.get("if_generation_match") != (current.generation if current else 0):
                raise PreconditionFailed("conditionNotMet")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Blob, "upload_from_file", race)
    with pytest.raises(gcs_staging.ExternalCommandError) as info:
        upload_files([str(inputs[1])], f"gs://{bucket}/p", client=client)
    assert str(info.value) == (
        f"gs://{bucket}/p/samples.tsv: the object was changed by someone else while "
        f"{inputs[1]} was being staged; nothing was overwritten — run 'gwas-prs stage' again"
    )
    assert info.value.exit_code == 4
    assert client.bucket(bucket).blob("p/samples.tsv").download_as_bytes() == b"theirs"


class _Listing:
    """A client whose bucket lists the given object names (the emulator keeps objects
    as files and cannot hold names with '..' parts, which GCS accepts)."""

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def bucket(self, name: str) -> Any:
        return self

    def get_blob(self, name: str) -> Any:
        return None

    def list_blobs(self, bucket: str, prefix: str = "") -> list[Any]:
        from types import SimpleNamespace

        return [SimpleNamespace(name=n, size=4) for n in self.names if n.startswith(prefix)]


@pytest.mark.parametrize(
    "name",
    ["run/../../outside.txt", "run/a/../../../x", "run//etc/passwd", "run/./x", "run/a\\..\\x"],
)
def test_downloads_refuse_names_that_escape_the_destination(tmp_path: Path, name: str) -> None:
    dest = tmp_path / "dest"
    with pytest.raises(InputError) as info:
        plan_downloads("gs://b/run", str(dest), client=_Listing(["run/ok.txt", name]))
    assert str(info.value) == (
        f"gs://b/{name}: the object name would land outside {dest} (a '..', '.', empty "
        "or absolute part); rename the object on GCS or download a narrower prefix"
    )
    assert not dest.exists()


def test_downloading_a_dot_dot_object_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"gs://b/a/\.\.: the object name would land outside"):
        plan_downloads("gs://b/a/..", str(tmp_path / "dest"), client=_Listing(["a/../x"]))


def test_plain_nested_names_still_download(client: Any, bucket: str, tmp_path: Path) -> None:
    client.bucket(bucket).blob("run/logs/qc-1/qc.log").upload_from_string(b"log")
    [transfer] = plan_downloads(f"gs://{bucket}/run/logs", str(tmp_path), client=client)
    assert transfer.local == tmp_path / "logs" / "qc-1" / "qc.log"


def test_read_object_tail_reads_the_end_of_the_last_chunk(client: Any, bucket: str) -> None:
    client.bucket(bucket).blob("jobs/j/driveroutput.000000000").upload_from_string(b"first\n")
    client.bucket(bucket).blob("jobs/j/driveroutput.000000001").upload_from_string(
        b"x" * 100 + b"\nlast line\n"
    )
    uri = f"gs://{bucket}/jobs/j/driveroutput"
    assert gcs_staging.read_object_tail(uri, max_bytes=11, client=client) == "\nlast line\n"
    assert gcs_staging.read_object_tail(uri, client=client).endswith("x\nlast line\n")
    with pytest.raises(InputError, match="no such object"):
        gcs_staging.read_object_tail(f"gs://{bucket}/nothing", client=client)
