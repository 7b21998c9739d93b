"""Run-folder safety: one writer at a time, relocatable run folders, file-system faults
as one line, and the manifest/YAML mistakes that used to give tracebacks (issue 14).

No test here starts a JVM except ``test_run_folder_with_space_and_non_ascii`` (a
subprocess, marked slow). A whole pipeline run that is copied and used without its
original is ``test_copied_run_works_without_the_original`` in tests/test_pipeline.py.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gwas_prs.core.errors import InputError, RunFolderBusyError
from gwas_prs.core.run_folder import (
    RunFolder,
    load_manifest,
    require_complete,
    run_lock,
    stage_record,
    stage_run,
)
from tests.cli_helpers import invoke
from tests.conftest import REPO
from tests.vcf_factory import vcf_lines, write_vcf

HOLD_LOCK = """
import sys, time
from gwas_prs.core.run_folder import RunFolder, run_lock
with run_lock(RunFolder(sys.argv[1]), "ingest"):
    print("locked", flush=True)
    time.sleep(120)
"""


def hold_lock(run: Path) -> subprocess.Popen[str]:
    """Another process that holds ``run``'s lock (as a running ``gwas-prs ingest`` does)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        start_new_session=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "locked"
    return process


def complete_qc_run(root: Path) -> RunFolder:
    """A run folder whose manifest says ingest and qc are complete (outputs exist)."""
    run = RunFolder(str(root))
    for stage, output in (("ingest", "bronze/genotypes.mt"), ("qc", "silver/genotypes.mt")):
        final = run.path(output)
        with stage_run(run, stage, parameters={}, final_outputs=[final]) as current:
            tmp = current.temporary_path(final)
            os.makedirs(tmp)
            current.publish(tmp, final, output.split("/")[0])
    return run


# --------------------------------------------------------------------- one writer at a time


def test_second_writer_is_refused_while_the_first_runs(no_jvm: None, tmp_path: Path) -> None:
    run = tmp_path / "run"
    holder = hold_lock(run)
    try:
        # a stage command: refused at once, before any check or work, exit 2
        code, _, errors = invoke("simulate-phenotype", str(run), "--trait", "t")
        assert code == 2
        assert errors == (
            f"error: {run} is in use by another gwas-prs (pid {holder.pid}, ingest); "
            "wait for it to finish, or use another --run folder\n"
        )
        # the library refuses too, and leaves no record behind
        with (
            pytest.raises(RunFolderBusyError, match=f"pid {holder.pid}"),
            stage_run(RunFolder(str(run)), "qc", parameters={}),
        ):
            pass
        assert not (run / "manifest.json").exists()
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    # the killed holder left RUN/.lock behind: harmless, the kernel released the lock
    assert (run / ".lock").exists()
    code, _, errors = invoke("simulate-phenotype", str(run), "--trait", "t")
    assert code == 2 and "needs the 'qc' stage, which has not run" in errors


def test_lock_is_reentrant_and_released(tmp_path: Path) -> None:
    run = RunFolder(str(tmp_path / "run"))
    with run_lock(run, "run"):  # the pipeline holds it; each stage takes it again
        with stage_run(run, "ingest", parameters={}):
            pass
        assert stage_record(run, "ingest").status == "complete"  # type: ignore[union-attr]
    # released: another process can take it now
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from gwas_prs.core.run_folder import RunFolder, run_lock\n"
            "with run_lock(RunFolder(sys.argv[1])): print('ok')",
            run.root,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert probe.stdout.strip() == "ok", probe.stderr


# --------------------------------------------------------------------- relocatable run folders


def test_manifest_paths_are_relative_to_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run = complete_qc_run(Path("runs") / "a")  # given relative to the working directory
    raw = json.loads(Path("runs/a/manifest.json").read_text())
    assert raw["manifest_version"] == 2
    assert raw["stages"]["ingest"]["outputs"] == {"bronze": "bronze/genotypes.mt"}
    assert raw["stages"]["qc"]["outputs"] == {"silver": "silver/genotypes.mt"}
    # moved, and used from another working directory
    shutil.move("runs/a", "moved")
    monkeypatch.chdir(tmp_path / "moved")
    for folder in (".", str(tmp_path / "moved")):
        record = require_complete(RunFolder(folder), "qc", needed_by="gwas")
        assert os.path.realpath(record.outputs["silver"]) == str(
            tmp_path / "moved/silver/genotypes.mt"
        )
    del run


def test_version_1_manifests_are_migrated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo" / "bronze" / "genotypes.mt").mkdir(parents=True)
    manifest = {
        "manifest_version": 1,
        "run": "demo",
        "stages": {
            "ingest": {
                "status": "complete",
                "started": "x",
                "outputs": {"bronze_mt": "demo/bronze/genotypes.mt"},
            }
        },
    }
    manifest["stages"]["gwas:t"] = {
        "status": "complete",
        "started": "x",
        "parameters": {"phenotypes_file": str(tmp_path / "elsewhere/simulated/t/phenotypes.tsv")},
    }
    (tmp_path / "demo" / "manifest.json").write_text(json.dumps(manifest))
    shutil.move("demo", "elsewhere")
    run = RunFolder("elsewhere")
    assert load_manifest(run)["stages"]["ingest"]["outputs"] == {"bronze_mt": "bronze/genotypes.mt"}
    assert require_complete(run, "ingest", needed_by="qc").outputs["bronze_mt"] == (
        "elsewhere/bronze/genotypes.mt"
    )
    # an input inside the run (absolute in version 1, under where the run is now)
    assert stage_record(run, "gwas:t").parameters["phenotypes_file"] == (  # type: ignore[union-attr]
        "simulated/t/phenotypes.tsv"
    )


def test_stage_inputs_inside_the_run_are_stored_relative(tmp_path: Path) -> None:
    from gwas_prs.core.run_folder import InputFile

    run = RunFolder(str(tmp_path / "run"))
    inside = run.path("simulated", "t", "phenotypes.tsv")
    outside = str(tmp_path / "pheno.tsv")
    with stage_run(
        run,
        "gwas:t",
        parameters={},
        inputs=[InputFile(inside, 1, "sha256:a"), InputFile(outside, 1, "sha256:b")],
    ):
        pass
    raw = json.loads(Path(run.manifest).read_text())
    assert [i["path"] for i in raw["stages"]["gwas:t"]["inputs"]] == [
        "simulated/t/phenotypes.tsv",
        outside,
    ]


# --------------------------------------------------------------------- file-system faults


def test_full_disk_is_one_line_and_leaves_nothing_complete(
    no_jvm: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = complete_qc_run(tmp_path / "run")
    import gwas_prs.core.run_folder as run_folder

    real_save = run_folder.save_manifest

    def full_disk(folder: RunFolder, manifest: dict) -> None:
        stages = manifest.get("stages", {})
        if any(name.startswith("simulate-phenotype") for name in stages):
            raise OSError(errno.ENOSPC, "No space left on device", folder.manifest)
        real_save(folder, manifest)

    monkeypatch.setattr(run_folder, "save_manifest", full_disk)
    code, _, errors = invoke("simulate-phenotype", run.root, "--trait", "t")
    assert code == 2
    assert errors == (
        f"error: {run.manifest}: no space left on the device; free some space (RUN/tmp can be "
        "deleted between commands) or use a run folder on a bigger disk\n"
    )
    assert stage_record(run, "simulate-phenotype:t") is None
    assert not (Path(run.root) / "simulated").exists()


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (errno.EROFS, "the file system is read-only; choose a writable run folder"),
        (errno.EACCES, "permission denied; check the permissions or choose another path"),
    ],
)
def test_unwritable_run_folder_is_refused_up_front(
    no_jvm: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: int, message: str
) -> None:
    import gwas_prs.core.run_folder as run_folder

    run = tmp_path / "run"
    real_open = os.open

    def refuse(path: str, *args: object, **kwargs: object) -> int:
        if str(path).endswith(".lock"):
            raise OSError(error, os.strerror(error), str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(run_folder.os, "open", refuse)
    code, _, errors = invoke("ingest", str(tmp_path / "a.vcf"), "--run", str(run))
    assert code == 2
    assert errors == f"error: cannot write into the run folder: {run}/.lock: {message}\n"
    with pytest.raises(InputError), run_lock(RunFolder(str(run))):
        pass


@pytest.mark.slow
def test_run_folder_with_space_and_non_ascii(tmp_path: Path) -> None:
    """The JVM starts in a run folder whose path has a space and a non-ASCII letter
    (Spark splits Java options at spaces). A real ingest, in a subprocess."""
    vcf = write_vcf(tmp_path / "a.vcf", vcf_lines())
    run = tmp_path / "runs" / "run with space ü"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gwas_prs.cli.app",
            "ingest",
            str(vcf),
            "--run",
            str(run),
            "--cores",
            "1",
            "--driver-memory",
            "1g",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    record = require_complete(RunFolder(str(run)), "ingest", needed_by="qc")
    assert record.counts["variants"] == 6
    assert list((run / "logs").glob("ingest-*.log"))


# --------------------------------------------------------------------- manifest and YAML mistakes


def test_status_on_a_damaged_manifest_exits_2(no_jvm: None, tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text('{"stages": {"ingest": ')
    code, _, errors = invoke("status", str(tmp_path))
    assert code == 2
    assert errors.startswith(f"error: {tmp_path}/manifest.json: not valid JSON (")
    assert errors.endswith(
        "the run folder is damaged — restore the file or start a new run folder\n"
    )
    (tmp_path / "manifest.json").write_text("[1, 2]")
    code, _, errors = invoke("status", str(tmp_path))
    assert code == 2 and "not a gwas-prs manifest (no 'stages' object)" in errors


def test_pipeline_with_an_empty_run_key(no_jvm: None, tmp_path: Path) -> None:
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("run:\ninputs:\n  vcfs: [a.vcf]\nstages:\n  ingest:\n")
    code, _, errors = invoke("run", str(pipeline), "--dry-run")
    assert code == 2
    assert (
        errors
        == f"error: {pipeline}:1: 'run' is empty; give it a value (see examples/pipeline.yaml)\n"
    )


def test_a_stage_on_a_missing_run_folder_creates_nothing(
    no_jvm: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, errors = invoke("qc", "no-such-run")
    assert code == 2 and "needs the 'ingest' stage, which has not run" in errors
    assert not (tmp_path / "no-such-run").exists()


@pytest.mark.parametrize(
    "manifest",
    [
        '{"manifest_version": "2a", "stages": {}}',
        '{"manifest_version": 2, "stages": {"qc": [1]}}',
        '{"manifest_version": 2, "stages": {"qc": {"outputs": {}}}}',
    ],
)
def test_malformed_manifest_records_exit_2(no_jvm: None, tmp_path: Path, manifest: str) -> None:
    (tmp_path / "manifest.json").write_text(manifest)
    code, _, errors = invoke("status", str(tmp_path))
    assert code == 2
    assert "not a gwas-prs manifest (a stage record or the version is malformed)" in errors


def test_a_file_as_run_folder_is_one_line(no_jvm: None, tmp_path: Path) -> None:
    (tmp_path / "a.vcf").write_text("x")
    code, _, errors = invoke("ingest", str(tmp_path / "a.vcf"), "--run", str(tmp_path / "a.vcf"))
    assert code == 2
    assert errors == (
        f"error: cannot create the run folder: {tmp_path}/a.vcf: exists and is not a folder; "
        "choose another path for the run folder\n"
    )


def test_full_disk_names_the_file_being_written(tmp_path: Path) -> None:
    from gwas_prs.core import storage

    class FullDisk:
        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    target = tmp_path / "x.tsv"
    with pytest.raises(OSError) as caught, storage.atomic_writer(str(target)) as handle:
        FullDisk().write(b"x")  # what a full disk does inside a writer
        handle.write(b"never")
    assert caught.value.filename == str(target) and caught.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []  # no temporary left
