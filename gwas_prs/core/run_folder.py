"""The run folder: its layout, its manifest and the life cycle of a stage.

A run lives in one folder (local or ``gs://``)::

    RUN/manifest.json        one record per stage (see :class:`StageRecord`)
    RUN/logs/                Hail logs
    RUN/tmp/                 scratch space (safe to delete between commands)
    RUN/bronze/genotypes.mt  ingest
    RUN/silver/...           qc
    RUN/gold/...             gwas, prs, train

Paths in the manifest (stage outputs) are relative to the run folder's root,
so a run folder that is copied or moved works from its new place and from any
working directory (:meth:`RunFolder.stored_path`, :meth:`RunFolder.resolve`).

Every command that writes into a run folder holds its lock (``RUN/.lock``, an
exclusive ``flock`` released when the process ends, see :func:`run_lock`); a
second writer is refused at once.

A stage is *complete* only when ``manifest.json`` says so **and** its outputs
exist. Outputs are written to temporary siblings and moved into place at the
end (:meth:`StageRun.publish`); the manifest is updated last. A stage that is
killed therefore leaves its record in status ``running`` and no final output,
and :func:`require_complete` refuses to build on it.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import platform
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from gwas_prs.core import storage
from gwas_prs.core.errors import (
    InputError,
    OutputExistsError,
    RunFolderBusyError,
    StageNotCompleteError,
    os_error_message,
)

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".lock"
#: Names of files inside stage folders (written into a temporary folder, then published)
PRS_SCORES = "scores.tsv"
PRS_CLUMPS = "clumps.tsv"
#: the LD-based methods' weights in a prs folder (one ``weight_<method>`` column each)
PRS_LD_METHOD_WEIGHTS = "weights_ld_methods.tsv"
PCA_SCORES = "scores.tsv"
#: the GWAS summary page of a gwas folder (Manhattan, QQ, N, λGC, top hits)
GWAS_REPORT = "report.html"
#: 2: output paths relative to the run folder's root (1: as given on the command line)
MANIFEST_VERSION = 2
#: Stage order; re-running a stage marks every later stage ``stale``.
STAGE_ORDER: tuple[str, ...] = ("ingest", "qc", "simulate-phenotype", "gwas", "prs", "train")

STATUS_RUNNING = "running"
STATUS_COMPLETE = "complete"
STATUS_FAILED = "failed"
STATUS_STALE = "stale"


@dataclass(frozen=True)
class RunFolder:
    """Paths inside a run folder."""

    root: str

    def path(self, *parts: str) -> str:
        return storage.join(self.root, *parts)

    @property
    def manifest(self) -> str:
        return self.path(MANIFEST_NAME)

    @property
    def logs(self) -> str:
        return self.path("logs")

    @property
    def tmp(self) -> str:
        return self.path("tmp")

    @property
    def bronze_mt(self) -> str:
        return self.path("bronze", "genotypes.mt")

    @property
    def silver_mt(self) -> str:
        return self.path("silver", "genotypes.mt")

    @property
    def silver_bed(self) -> str:
        """Folder of the silver genotypes as a PLINK 1 fileset ``genotypes.bed/.bim/.fam``
        (local run folders in Hail local mode only; for numpy steps of later stages)."""
        return self.path("silver", "genotypes.plink")

    @property
    def silver_qc(self) -> str:
        return self.path("silver", "qc")

    @property
    def silver_ancestry(self) -> str:
        return self.path("silver", "ancestry")

    @property
    def gold_frequencies(self) -> str:
        return self.path("gold", "frequencies.parquet")

    @property
    def pca_scores(self) -> str:
        """``silver/ancestry/scores.tsv``: PCs of the QC-passed samples (qc)."""
        return self.path("silver", "ancestry", PCA_SCORES)

    @property
    def pca_loadings(self) -> str:
        return self.path("silver", "ancestry", "loadings.ht")

    @property
    def ancestry_assignments(self) -> str:
        return self.path("silver", "ancestry", "assignments.tsv")

    # per-trait outputs -------------------------------------------------------------

    def simulated_dir(self, trait: str) -> str:
        """``simulated/TRAIT/`` (simulate-phenotype)."""
        return self.path("simulated", trait)

    def simulated_phenotypes(self, trait: str) -> str:
        return self.path("simulated", trait, "phenotypes.tsv")

    def simulated_genetic_values(self, trait: str) -> str:
        return self.path("simulated", trait, "genetic_values.tsv")

    def split_file(self, trait: str) -> str:
        """``gold/splits/TRAIT.tsv``: the role of every sample (gwas)."""
        return self.path("gold", "splits", f"{trait}.tsv")

    def gwas_dir(self, trait: str) -> str:
        """``gold/gwas/TRAIT/`` (gwas)."""
        return self.path("gold", "gwas", trait)

    def gwas_report(self, trait: str) -> str:
        """``gold/gwas/TRAIT/report.html``: the GWAS summary page (gwas)."""
        return self.path("gold", "gwas", trait, GWAS_REPORT)

    def prs_dir(self, trait: str) -> str:
        """``gold/prs/TRAIT/`` (prs)."""
        return self.path("gold", "prs", trait)

    def prs_scores(self, trait: str) -> str:
        """``gold/prs/TRAIT/scores.tsv``: every target sample's PRS (prs)."""
        return self.path("gold", "prs", trait, PRS_SCORES)

    def features_file(self, trait: str) -> str:
        """``gold/features/TRAIT.parquet``: the feature table (prs, for train)."""
        return self.path("gold", "features", f"{trait}.parquet")

    def features_schema(self, trait: str) -> str:
        return self.path("gold", "features", f"{trait}.schema.json")

    def models_dir(self, trait: str) -> str:
        """``gold/models/TRAIT/`` (train)."""
        return self.path("gold", "models", trait)

    @property
    def lock(self) -> str:
        return self.path(LOCK_NAME)

    def is_remote(self) -> bool:
        return storage.is_remote(self.root)

    def stored_path(self, path: str) -> str:
        """``path`` as the manifest stores it: relative to the root when it lies inside
        the run folder (``bronze/genotypes.mt``), else absolute (or the URL)."""
        if storage.is_remote(self.root) or storage.is_remote(path):
            prefix = self.root.rstrip("/") + "/"
            if path.startswith(prefix):
                return path[len(prefix) :]
            return path if storage.is_remote(path) else os.path.abspath(path)
        root = os.path.realpath(self.root)
        full = os.path.realpath(path)
        if full == root:
            return "."
        if full.startswith(root + os.sep):
            return os.path.relpath(full, root)
        return os.path.abspath(path)

    def resolve(self, stored: str) -> str:
        """A path read from the manifest, made usable: relative paths are inside the run."""
        if storage.is_remote(stored) or os.path.isabs(stored):
            return stored
        return self.root if stored == "." else self.path(stored)


@dataclass
class InputFile:
    """An input of a stage, with what identifies its content."""

    path: str
    size: int
    fingerprint: str


@dataclass
class StageRecord:
    """What the manifest keeps about one stage.

    ``counts`` holds the numbers that flow through the stage (samples and
    variants before/after each filter, with reasons); ``outputs`` maps a name to
    a path inside the run folder.
    """

    status: str
    started: str
    finished: str | None = None
    wall_time_s: float | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    #: ``local`` (numpy kernels) or ``hail`` (Hail's methods), see :mod:`gwas_prs.engine.switch`
    engine: str | None = None


def split_stage_name(stage: str) -> tuple[str, str | None]:
    """``"gwas:T2D"`` → ``("gwas", "T2D")``; ``"qc"`` → ``("qc", None)``."""
    base, _, trait = stage.partition(":")
    return base, trait or None


def later_stages(stage: str, recorded: Mapping[str, Any]) -> list[str]:
    """Recorded stages that depend on ``stage``: later in :data:`STAGE_ORDER` and,
    for per-trait stages (``gwas:T``), about the same trait."""
    base, trait = split_stage_name(stage)
    if base not in STAGE_ORDER:
        return []
    rank = STAGE_ORDER.index(base)
    out = []
    for name in recorded:
        other_base, other_trait = split_stage_name(name)
        if (
            other_base in STAGE_ORDER
            and STAGE_ORDER.index(other_base) > rank
            and (trait is None or other_trait == trait)
        ):
            out.append(name)
    return out


def tool_versions() -> dict[str, str]:
    """Versions stamped into every stage record."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for package in ("gwas-prs", "hail"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def load_manifest(run: RunFolder) -> dict[str, Any]:
    """The manifest as a dict (an empty one when the run folder is new)."""
    if not storage.exists(run.manifest):
        return {"manifest_version": MANIFEST_VERSION, "run": run.root, "stages": {}}
    try:
        data = json.loads(storage.read_text(run.manifest))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{run.manifest}: not valid JSON ({exc}); the run folder is damaged — "
            "restore the file or start a new run folder"
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("stages", {}), dict):
        raise InputError(
            f"{run.manifest}: not a gwas-prs manifest (no 'stages' object); the run folder is "
            "damaged — restore the file or start a new run folder"
        )
    data.setdefault("stages", {})
    version = data.get("manifest_version", 1)
    records = data["stages"]
    if not isinstance(version, int) or not all(
        isinstance(r, dict) and isinstance(r.get("status"), str) for r in records.values()
    ):
        raise InputError(
            f"{run.manifest}: not a gwas-prs manifest (a stage record or the version is "
            "malformed); the run folder is damaged — restore the file or start a new run folder"
        )
    if version < 2:
        _migrate_v1_paths(data, run)
    return dict(data)


def _migrate_v1_paths(data: dict[str, Any], run: RunFolder) -> None:
    """Version 1 stored outputs as given on the command line (``runs/a/bronze/…``,
    relative to the working directory of the command) and inputs inside the run as
    absolute paths: make both run-relative (the absolute ones when they lie under the
    run folder where it is now)."""
    recorded = str(data.get("run", "")).rstrip("/")
    here = "" if run.is_remote() else os.path.abspath(run.root)
    for raw in data["stages"].values():
        outputs = raw.get("outputs")
        if isinstance(outputs, dict):
            for name, path in list(outputs.items()):
                if recorded and isinstance(path, str) and path.startswith(recorded + "/"):
                    outputs[name] = path[len(recorded) + 1 :]
        parameters = raw.get("parameters")
        if here and isinstance(parameters, dict):
            value = parameters.get("phenotypes_file")
            if isinstance(value, str) and value.startswith(here + "/"):
                parameters["phenotypes_file"] = value[len(here) + 1 :]
    data["manifest_version"] = MANIFEST_VERSION


def save_manifest(run: RunFolder, manifest: Mapping[str, Any]) -> None:
    storage.write_text_atomic(run.manifest, json.dumps(manifest, indent=2, sort_keys=False) + "\n")


def stage_record(run: RunFolder, stage: str) -> StageRecord | None:
    """The manifest record of ``stage`` (outputs resolved to usable paths), or None if
    it never ran."""
    raw = load_manifest(run)["stages"].get(stage)
    if raw is None:
        return None
    known = {f for f in StageRecord.__dataclass_fields__}
    record = StageRecord(**{"started": "", **{k: v for k, v in raw.items() if k in known}})
    record.outputs = {name: run.resolve(path) for name, path in record.outputs.items()}
    return record


def require_complete(run: RunFolder, stage: str, *, needed_by: str) -> StageRecord:
    """Return the record of a completed ``stage`` or raise.

    Raises
    ------
    StageNotCompleteError
        The stage never ran, is still running/was interrupted, failed, is stale,
        or one of its outputs is missing.
    """
    record = stage_record(run, stage)
    hint = f"run 'gwas-prs {stage}' on {run.root} first"
    if record is None:
        raise StageNotCompleteError(
            f"{run.root}: '{needed_by}' needs the '{stage}' stage, which has not run; {hint}"
        )
    if record.status != STATUS_COMPLETE:
        what = {
            STATUS_RUNNING: "did not finish (interrupted or still running)",
            STATUS_FAILED: f"failed ({record.error})",
            STATUS_STALE: "is stale (an earlier stage was re-run)",
        }.get(record.status, f"has status '{record.status}'")
        raise StageNotCompleteError(f"{run.root}: the '{stage}' stage {what}; {hint}")
    for name, path in record.outputs.items():
        if not storage.exists(path):
            raise StageNotCompleteError(
                f"{run.root}: output '{name}' of the '{stage}' stage is missing ({path}); {hint}"
            )
    return record


#: Run folders whose lock this process holds: real path -> (file descriptor, depth).
_held_locks: dict[str, tuple[int, int]] = {}


def _lock_holder(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(200).strip()
    except OSError:
        return ""
    return text


@contextmanager
def run_lock(run: RunFolder, command: str = "gwas-prs", *, create: bool = True) -> Iterator[None]:
    """Hold the run folder's exclusive write lock (``RUN/.lock``) for the block.

    A second process that asks for it is refused at once with a
    :class:`~gwas_prs.core.errors.RunFolderBusyError` naming the holder's pid. The
    lock is an ``flock`` on the file, so the kernel releases it when the holder
    exits, however it exits: a ``.lock`` file left by a killed process does not
    block anyone. Re-entrant within one process (the pipeline holds it across
    its stages, each stage takes it again). Object-store run folders
    (``gs://``) have no such lock: one writer at a time is the user's job there.
    ``create=False``: a missing run folder is not created (nor locked).

    Raises
    ------
    RunFolderBusyError
        Another process holds the lock.
    """
    if run.is_remote() or (not create and not os.path.isdir(run.root)):
        # nothing to lock: gs:// (see above), or a run folder that does not exist and
        # is not to be created here (the stage then stops at its first check)
        yield
        return
    import fcntl

    try:
        storage.makedirs(run.root)
    except OSError as exc:
        message = os_error_message(exc)
        if message is None:
            raise
        raise InputError(f"cannot create the run folder: {message}") from None
    key = os.path.realpath(run.root)
    if key in _held_locks:
        fd, depth = _held_locks[key]
        _held_locks[key] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _held_locks[key]
            _held_locks[key] = (fd, depth - 1)
        return
    try:
        fd = os.open(run.lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # checked before any work: the run folder must be writable
        message = os_error_message(exc)
        if message is None:
            raise
        raise InputError(f"cannot write into the run folder: {message}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            message = os_error_message(OSError(exc.errno, exc.strerror, run.lock))
            if message is None:
                raise
            raise InputError(f"cannot lock the run folder: {message}") from None
        holder = _lock_holder(run.lock) or "pid unknown"
        raise RunFolderBusyError(
            f"{run.root} is in use by another gwas-prs ({holder}); wait for it to finish, "
            "or use another --run folder"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}, {command}\n".encode())
    except OSError:  # pragma: no cover - the lock holds without the note
        pass
    _held_locks[key] = (fd, 1)
    try:
        yield
    finally:
        fd, depth = _held_locks[key]
        if depth <= 1:
            del _held_locks[key]
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        else:  # pragma: no cover - unbalanced exit
            _held_locks[key] = (fd, depth - 1)


class StageRun:
    """A stage in progress; see :func:`stage_run`."""

    def __init__(self, run: RunFolder, stage: str, record: StageRecord) -> None:
        self.run = run
        self.stage = stage
        self.record = record
        self._temporaries: list[str] = []
        self._published: list[str] = []

    @property
    def counts(self) -> dict[str, Any]:
        return self.record.counts

    def temporary_path(self, final_path: str) -> str:
        """A sibling of ``final_path`` to write to before :meth:`publish`."""
        parent, _, name = final_path.rstrip("/").rpartition("/")
        tmp = f"{parent}/.{name}.partial-{uuid.uuid4().hex[:8]}"
        self._temporaries.append(tmp)
        return tmp

    def publish(self, tmp_path: str, final_path: str, name: str) -> None:
        """Move a finished temporary output into place and record it."""
        if storage.exists(final_path):
            storage.remove(final_path)
        storage.move(tmp_path, final_path)
        if tmp_path in self._temporaries:
            self._temporaries.remove(tmp_path)
        self._published.append(final_path)
        self.record.outputs[name] = self.run.stored_path(final_path)

    def cleanup(self) -> None:
        for tmp in self._temporaries:
            try:
                storage.remove(tmp)
            except OSError:  # pragma: no cover - best effort
                logger.warning("could not remove temporary output %s", tmp)


def _remove_stale_partials(final_paths: Sequence[str]) -> None:
    for final in final_paths:
        parent, _, name = final.rstrip("/").rpartition("/")
        if storage.is_remote(parent) or not storage.is_dir(parent):
            continue
        import os

        for entry in os.listdir(parent):
            if entry.startswith(f".{name}.partial-"):
                logger.info(
                    "removing the partial output of an interrupted run: %s/%s", parent, entry
                )
                storage.remove(f"{parent}/{entry}")


def check_can_write(run: RunFolder, stage: str, outputs: Sequence[str], *, overwrite: bool) -> None:
    """Refuse to replace a completed stage unless ``overwrite`` (checked up front).

    Raises
    ------
    OutputExistsError
        The stage is complete (or its outputs exist) and ``overwrite`` is false.
    """
    if overwrite:
        return
    record = stage_record(run, stage)
    if record is not None and record.status == STATUS_COMPLETE:
        raise OutputExistsError(
            f"{run.root}: the '{stage}' stage is already complete; pass --overwrite to redo it "
            "(later stages will be marked stale) or choose another --run folder"
        )
    existing = [p for p in outputs if storage.exists(p)]
    if existing and (record is None or record.status == STATUS_COMPLETE):
        raise OutputExistsError(f"{existing[0]} exists; pass --overwrite to replace it")


@contextmanager
def stage_run(
    run: RunFolder,
    stage: str,
    *,
    parameters: Mapping[str, Any],
    inputs: Sequence[InputFile] = (),
    final_outputs: Sequence[str] = (),
    overwrite: bool = False,
    engine: str | None = None,
) -> Iterator[StageRun]:
    """Run a stage: record it as running, yield, then record it complete.

    On an exception the stage is recorded as ``failed`` with the message and
    its temporary outputs are removed; a killed process leaves ``running``.
    Re-running a stage marks every later stage of :data:`STAGE_ORDER` stale. The
    run folder's write lock (:func:`run_lock`) is held throughout; ``engine`` (the
    stage's :func:`gwas_prs.engine.switch.current_engine`) is recorded.
    """
    with (
        run_lock(run, stage),
        _stage_run(
            run,
            stage,
            parameters=parameters,
            inputs=inputs,
            final_outputs=final_outputs,
            overwrite=overwrite,
            engine=engine,
        ) as current,
    ):
        yield current


@contextmanager
def _stage_run(
    run: RunFolder,
    stage: str,
    *,
    parameters: Mapping[str, Any],
    inputs: Sequence[InputFile],
    final_outputs: Sequence[str],
    overwrite: bool,
    engine: str | None,
) -> Iterator[StageRun]:
    check_can_write(run, stage, final_outputs, overwrite=overwrite)
    storage.makedirs(run.root)
    _remove_stale_partials(final_outputs)
    started = time.monotonic()
    record = StageRecord(
        status=STATUS_RUNNING,
        started=_now(),
        parameters=dict(parameters),
        inputs=[{**asdict(i), "path": run.stored_path(i.path)} for i in inputs],
        versions=tool_versions(),
        engine=engine,
    )
    manifest = load_manifest(run)
    manifest["stages"][stage] = asdict(record)
    for later in later_stages(stage, manifest["stages"]):
        if manifest["stages"][later]["status"] == STATUS_COMPLETE:
            manifest["stages"][later]["status"] = STATUS_STALE
    save_manifest(run, manifest)
    current = StageRun(run, stage, record)
    try:
        yield current
    except BaseException as exc:
        current.cleanup()
        record.status = STATUS_FAILED
        record.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        record.finished = _now()
        record.wall_time_s = round(time.monotonic() - started, 3)
        manifest = load_manifest(run)
        manifest["stages"][stage] = asdict(record)
        save_manifest(run, manifest)
        raise
    record.status = STATUS_COMPLETE
    record.finished = _now()
    record.wall_time_s = round(time.monotonic() - started, 3)
    manifest = load_manifest(run)
    manifest["stages"][stage] = asdict(record)
    save_manifest(run, manifest)
