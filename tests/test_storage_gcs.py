""":mod:`gwas_prs.core.storage` and every run-folder writer on ``gs://``, against a real
storage emulator (``gcp-storage-emulator``, see :mod:`tests.gcs_emulator`).

Each writer writes the same content once to a local folder and once to a bucket; the
bytes read back from the bucket must equal the local file's bytes.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gwas_prs.core import gcs_client, storage
from tests.gcs_emulator import EmulatorServer


@pytest.fixture
def bucket(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new bucket; storage's gs:// side talks to the emulator (and never to hailtop)."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.host)

    def no_hailtop() -> Any:
        raise AssertionError("gs:// must not go through hailtop.fs")

    monkeypatch.setattr(storage, "_hfs", no_hailtop)
    name = f"runs-{uuid.uuid4().hex[:10]}"
    gcs_client.client().create_bucket(name)
    return name


def _read(path: str) -> bytes:
    with storage.open_binary(path, "rb") as handle:
        return bytes(handle.read())


def test_one_client_per_emulator(bucket: str) -> None:
    assert gcs_client.client() is gcs_client.client()


def test_files_round_trip(bucket: str, tmp_path: Path) -> None:
    root = f"gs://{bucket}/run"
    data = bytes(range(256)) * 1000
    assert not storage.exists(storage.join(root, "a.bin"))
    with storage.atomic_writer(storage.join(root, "a.bin")) as handle:
        handle.write(data)
    assert storage.exists(storage.join(root, "a.bin"))
    assert _read(storage.join(root, "a.bin")) == data
    assert storage.file_size(storage.join(root, "a.bin")) == len(data)
    assert storage.sha256_file(storage.join(root, "a.bin")) == (
        "sha256:" + hashlib.sha256(data).hexdigest()
    )
    local = tmp_path / "a.bin"
    local.write_bytes(data)
    assert storage.sha256_file(str(local)) == storage.sha256_file(storage.join(root, "a.bin"))

    storage.write_text_atomic(storage.join(root, "sub/t.txt"), "héllo\n")
    assert storage.read_text(storage.join(root, "sub/t.txt")) == "héllo\n"
    assert storage.is_dir(storage.join(root, "sub")) and storage.exists(root)
    assert not storage.is_dir(storage.join(root, "a.bin"))
    with storage.open_binary(storage.join(root, "sub/w.bin"), "wb") as handle:
        handle.write(b"written")
    assert _read(storage.join(root, "sub/w.bin")) == b"written"

    # chunked reads and lines, as pandas/gzip/TextIOWrapper use them
    original = gcs_client.READ_CHUNK
    try:
        gcs_client.READ_CHUNK = 1000
        with storage.open_binary(storage.join(root, "a.bin"), "rb") as handle:
            assert handle.read(10) == data[:10] and handle.read() == data[10:]
        with storage.open_binary(storage.join(root, "sub/t.txt"), "rb") as handle:
            assert list(handle) == ["héllo\n".encode()]
    finally:
        gcs_client.READ_CHUNK = original

    assert storage.glob_files(storage.join(root, "sub/*.txt")) == [storage.join(root, "sub/t.txt")]
    assert storage.glob_files(storage.join(root, "*.bin")) == [storage.join(root, "a.bin")]
    assert storage.glob_files(storage.join(root, "*/w.*")) == [storage.join(root, "sub/w.bin")]

    storage.copy_file(storage.join(root, "a.bin"), storage.join(root, "b.bin"))
    assert _read(storage.join(root, "b.bin")) == data
    storage.copy_file(storage.join(root, "b.bin"), str(tmp_path / "down/b.bin"))
    assert (tmp_path / "down/b.bin").read_bytes() == data
    storage.copy_file(str(local), storage.join(root, "up.bin"))
    assert _read(storage.join(root, "up.bin")) == data

    storage.move(storage.join(root, "b.bin"), storage.join(root, "c.bin"))
    assert not storage.exists(storage.join(root, "b.bin"))
    assert _read(storage.join(root, "c.bin")) == data
    storage.move(storage.join(root, "sub"), storage.join(root, "moved"))  # a "directory"
    assert not storage.exists(storage.join(root, "sub"))
    assert storage.read_text(storage.join(root, "moved/t.txt")) == "héllo\n"

    storage.remove(storage.join(root, "c.bin"))
    assert not storage.exists(storage.join(root, "c.bin"))
    storage.remove(storage.join(root, "moved"))
    assert not storage.exists(storage.join(root, "moved"))
    storage.remove(storage.join(root, "never-there"))  # no error

    with pytest.raises(FileNotFoundError):
        storage.read_text(storage.join(root, "missing.txt"))
    with pytest.raises(FileNotFoundError):
        storage.open_binary(storage.join(root, "missing.txt"))
    with pytest.raises(FileNotFoundError):
        storage.file_size(storage.join(root, "missing.txt"))


def test_atomic_writer_uploads_nothing_when_the_block_raises(bucket: str) -> None:
    path = f"gs://{bucket}/run/x.txt"
    storage.write_text_atomic(path, "old\n")
    with pytest.raises(RuntimeError), storage.atomic_writer(path) as handle:
        handle.write(b"half")
        raise RuntimeError("killed")
    assert storage.read_text(path) == "old\n"
    with pytest.raises(RuntimeError), storage.open_binary(f"gs://{bucket}/run/y", "wb") as out:
        out.write(b"half")
        raise RuntimeError("killed")
    assert not storage.exists(f"gs://{bucket}/run/y")


def _both(bucket: str, tmp_path: Path, name: str) -> tuple[str, str]:
    return str(tmp_path / name), f"gs://{bucket}/run/{name}"


def _same_bytes(local: str, remote: str) -> None:
    assert Path(local).read_bytes() == _read(remote)


def test_write_table_and_read_table(bucket: str, tmp_path: Path) -> None:
    frame = pd.DataFrame({"s": ["a", "b"], "x": [0.1, np.nan], "n": [1, 2]})
    for name in ("t.tsv", "t.tsv.gz"):
        local, remote = _both(bucket, tmp_path, name)
        storage.write_table(local, frame, sep="\t", index=False, na_rep="NA")
        storage.write_table(remote, frame, sep="\t", index=False, na_rep="NA")
        _same_bytes(local, remote)
        back = storage.read_table(remote, sep="\t", dtype={"s": str})
        pd.testing.assert_frame_equal(back, storage.read_table(local, sep="\t", dtype={"s": str}))
        pd.testing.assert_frame_equal(back, frame)
    text = frame.to_csv(sep="\t", index=False, na_rep="NA")
    assert Path(local).read_bytes() == gzip.compress(text.encode(), mtime=0) or (
        gzip.decompress(Path(local).read_bytes()) == text.encode()
    )
    plain, _ = _both(bucket, tmp_path, "plain.tsv")
    frame.to_csv(plain, sep="\t", index=False, na_rep="NA")  # pandas writing the path itself
    assert Path(plain).read_bytes() == Path(str(tmp_path / "t.tsv")).read_bytes()


def test_gwas_ssf_and_sidecar(bucket: str, tmp_path: Path) -> None:
    from gwas_prs.formats.sumstats import (
        SumstatsMetadata,
        read_gwas_ssf,
        read_gwas_ssf_metadata,
        write_gwas_ssf,
    )

    frame = pd.DataFrame(
        {
            "chromosome": ["1", "2", "X"],
            "base_pair_location": [100, 200, 300],
            "effect_allele": ["A", "C", "G"],
            "other_allele": ["G", "T", "A"],
            "beta": [0.1, -0.25, 1.2345678901234567e-5],
            "standard_error": [0.01, 0.02, 0.5],
            "effect_allele_frequency": [0.1, np.nan, 0.4],
            "p_value": [1e-300, 0.5, 3.2e-8],
        }
    )
    meta = SumstatsMetadata(
        genome_assembly="GRCh38",
        trait_description="height",
        sample_size=100,
        date_modified=dt.date(2026, 11, 22),
    )
    local, remote = _both(bucket, tmp_path, "sumstats.tsv.gz")
    assert write_gwas_ssf(frame, local, meta) == local
    assert write_gwas_ssf(frame, remote, meta) == remote
    _same_bytes(local, remote)
    _same_bytes(local + "-meta.yaml", remote + "-meta.yaml")
    assert read_gwas_ssf_metadata(remote) == read_gwas_ssf_metadata(local)
    pd.testing.assert_frame_equal(read_gwas_ssf(remote), read_gwas_ssf(local))


def test_pgs_catalog_scoring_file(bucket: str, tmp_path: Path) -> None:
    from gwas_prs.formats.pgs_catalog import ScoringMetadata, read_scoring_file, write_scoring_file

    frame = pd.DataFrame(
        {
            "rsID": ["rs1", None],
            "chr_name": ["1", "X"],
            "chr_position": [100, 300],
            "effect_allele": ["A", "TTG"],
            "other_allele": ["G", "T"],
            "effect_weight": [0.1, 1.0000000000000002],
        }
    )
    meta = ScoringMetadata(pgs_name="p", trait_reported="height", genome_build="GRCh38")
    for name in ("weights.txt", "weights.txt.gz"):
        local, remote = _both(bucket, tmp_path, name)
        write_scoring_file(frame, local, meta)
        write_scoring_file(frame, remote, meta)
        _same_bytes(local, remote)
        ours, theirs = read_scoring_file(remote), read_scoring_file(local)
        pd.testing.assert_frame_equal(ours.frame, theirs.frame)
        assert ours.header == theirs.header


def test_html_reports(bucket: str, tmp_path: Path) -> None:
    from bokeh.plotting import figure

    from gwas_prs.reports.gwas import save_html
    from gwas_prs.reports.qc import save_report

    def fig() -> Any:
        f = figure(title="t")
        f.scatter([1, 2], [3, 4])
        return f

    for name, write in (
        ("gwas.html", lambda p: save_html([fig()], p, "GWAS", "<p>x</p>")),
        ("qc.html", lambda p: save_report(fig(), p, "QC")),
    ):
        local, remote = _both(bucket, tmp_path, name)
        write(local)
        write(remote)
        html = storage.read_text(remote)
        assert html.startswith("<!DOCTYPE html>") and len(html) > 1000
        # bokeh gives each document random element ids: equal after removing them
        assert _without_ids(Path(local).read_text()) == _without_ids(html)


def _without_ids(html: str) -> str:
    import re

    return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|p\d{4,}", "", html)


def test_manifest_of_a_gs_run_folder(bucket: str, tmp_path: Path) -> None:
    from gwas_prs.core.run_folder import RunFolder, load_manifest, save_manifest

    manifest = {"manifest_version": 2, "run": "x", "stages": {"qc": {"status": "complete"}}}
    local, remote = RunFolder(str(tmp_path / "run")), RunFolder(f"gs://{bucket}/run")
    storage.makedirs(local.root)
    assert load_manifest(remote)["stages"] == {}
    save_manifest(local, manifest)
    save_manifest(remote, manifest)
    assert remote.manifest.startswith("gs://")
    _same_bytes(local.manifest, remote.manifest)
    assert load_manifest(remote) == load_manifest(local) == manifest


def test_parquet_files_and_partitioned_folders(bucket: str, tmp_path: Path) -> None:
    """write_parquet/read_parquet on gs:// (no fsspec/gcsfs): the same table back, the
    same partition files as a local write (qc's gold/frequencies.parquet, features)."""
    import pandas as pd

    frame = pd.DataFrame(
        {"contig": ["21", "21", "22"], "position": [10, 20, 30], "AF": [0.1, 0.2, 0.3]}
    )
    storage.write_parquet(f"gs://{bucket}/run/features.parquet", frame)
    back = storage.read_parquet(f"gs://{bucket}/run/features.parquet")
    pd.testing.assert_frame_equal(back, frame)
    remote, local = f"gs://{bucket}/run/gold/frequencies.parquet", str(tmp_path / "f.parquet")
    storage.write_parquet(remote, frame, partition_cols=["contig"])
    storage.write_parquet(local, frame, partition_cols=["contig"])
    names = sorted(p[len(remote) + 1 :].split("/")[0] for p in storage.glob_files(f"{remote}/*/*"))
    assert names == ["contig=21", "contig=22"] == sorted(os.listdir(local))
    for got in (storage.read_parquet(remote), storage.read_parquet(local)):
        got = got.assign(contig=got["contig"].astype(str)).sort_values("position")
        pd.testing.assert_frame_equal(got.reset_index(drop=True)[frame.columns], frame)


def _tiny_gold_run(root: Path) -> Path:
    """A run folder holding only a gold layer (no JVM needed): sumstats of one trait on
    two chromosomes, its split and per-population frequencies."""
    run = root / "run"
    (run / "gold" / "gwas" / "disease").mkdir(parents=True)
    (run / "gold" / "splits").mkdir(parents=True)
    (run / "manifest.json").write_text('{"stages": {}}\n')
    sumstats = pd.DataFrame(
        {
            "chromosome": ["21", "21", "22"],
            "base_pair_location": [100, 200, 300],
            "effect_allele": ["A", "C", "G"],
            "other_allele": ["G", "T", "A"],
            "beta": [0.1, -0.2, 0.3],
            "p_value": [0.5, 0.01, 1e-9],
        }
    )
    sumstats.to_csv(run / "gold" / "gwas" / "disease" / "sumstats.tsv.gz", sep="\t", index=False)
    pd.DataFrame({"s": ["a", "b", "c"], "role": ["discovery", "train", "test"]}).to_csv(
        run / "gold" / "splits" / "disease.tsv", sep="\t", index=False
    )
    frequencies = pd.DataFrame(
        {
            "contig": ["21", "22"],
            "position": [100, 300],
            "population": ["EUR", "AFR"],
            "af": [0.1, 0.4],
        }
    )
    frequencies.to_parquet(run / "gold" / "frequencies.parquet", partition_cols=["contig"])
    return run


def _exported(out: str) -> dict[str, pd.DataFrame]:
    tables = {
        name: storage.read_parquet(storage.join(out, name))
        for name in ("sumstats", "frequencies", "splits.parquet")
    }
    return {k: v.sort_values(list(v.columns)[:2]).reset_index(drop=True) for k, v in tables.items()}


def test_export_of_the_gold_layer_between_local_and_gs_run_folders(
    bucket: str, tmp_path: Path
) -> None:
    """export RUN --layer gold --out gs://…, and from a gs:// run folder (issue 16):
    the same tables as a local export, the marker written last, the run-folder rules."""
    import json

    from tests.cli_helpers import invoke

    run = _tiny_gold_run(tmp_path)
    local_out = tmp_path / "local-export"
    code, _, errors = invoke("export", str(run), "--layer", "gold", "--out", str(local_out))
    assert code == 0, errors
    expected = _exported(str(local_out))
    assert [len(expected[k]) for k in ("sumstats", "frequencies", "splits.parquet")] == [3, 2, 3]

    # local run → gs:// OUT
    out = f"gs://{bucket}/exports/gold"
    code, _, errors = invoke("export", str(run), "--layer", "gold", "--out", out)
    assert code == 0, errors
    for name, frame in _exported(out).items():
        pd.testing.assert_frame_equal(
            frame, expected[name], check_dtype=False, check_categorical=False
        )
    marker = json.loads(storage.read_text(f"{out}/.gwas-prs-export.json"))
    assert marker["tables"]["sumstats"] == {"path": "sumstats", "rows": 3}
    assert not [p for p in storage.files_under(f"gs://{bucket}/exports") if ".partial-" in p]

    # gs:// run → local OUT and → gs:// OUT (replacing the previous export)
    remote_run = f"gs://{bucket}/runs/cohort"
    storage.copy_tree(str(run), remote_run)
    from_remote = tmp_path / "from-remote"
    code, _, errors = invoke("export", remote_run, "--layer", "gold", "--out", str(from_remote))
    assert code == 0, errors
    for name, frame in _exported(str(from_remote)).items():
        pd.testing.assert_frame_equal(
            frame, expected[name], check_dtype=False, check_categorical=False
        )
    code, _, errors = invoke("export", remote_run, "--layer", "gold", "--out", out)
    assert code == 2 and f"{out} exists; pass --overwrite" in errors
    storage.write_text_atomic(f"{out}/sumstats/stale.parquet", "left from before")
    code, _, errors = invoke("export", remote_run, "--layer", "gold", "--out", out, "--overwrite")
    assert code == 0, errors
    assert not storage.exists(f"{out}/sumstats/stale.parquet")
    assert storage.exists(f"{out}/.gwas-prs-export.json")

    # the run-folder rules on gs://
    code, _, errors = invoke("export", remote_run, "--layer", "gold", "--out", f"{remote_run}/x")
    assert code == 2 and f"lies inside the run folder {remote_run}" in errors
    code, _, errors = invoke(
        "export", remote_run, "--layer", "gold", "--out", f"gs://{bucket}/runs"
    )
    assert code == 2 and f"contains the run folder {remote_run}" in errors
    storage.write_text_atomic(f"gs://{bucket}/notes/readme.txt", "mine")
    code, _, errors = invoke(
        "export", remote_run, "--layer", "gold", "--out", f"gs://{bucket}/notes", "--overwrite"
    )
    assert code == 2 and "is not a gwas-prs export" in errors
    assert storage.read_text(f"gs://{bucket}/notes/readme.txt") == "mine"


def test_predict_checks_a_gs_out_up_front(bucket: str, tmp_path: Path) -> None:
    from gwas_prs.core.errors import InputError, OutputExistsError
    from gwas_prs.stages.predict import PredictConfig

    out = f"gs://{bucket}/risk/new.tsv"
    PredictConfig(model_dir="m", vcfs=("a.vcf",), out=out).validate()  # nothing there: fine
    storage.write_text_atomic(out, "old\n")
    with pytest.raises(OutputExistsError, match="pass --overwrite"):
        PredictConfig(model_dir="m", vcfs=("a.vcf",), out=out).validate()
    PredictConfig(model_dir="m", vcfs=("a.vcf",), out=out, overwrite=True).validate()
    with pytest.raises(InputError, match="not a folder"):
        PredictConfig(model_dir="m", vcfs=("a.vcf",), out=f"gs://{bucket}/risk").validate()
    assert storage.parent(out) == f"gs://{bucket}/risk"
