"""The engine switch: numpy kernels on one machine, or Hail's distributed methods.

Most algorithms exist twice (LD pruning, PCA, KING, frequencies, logistic Wald,
clumping LD, scoring, table round trips): a numpy kernel over a PLINK .bed (fast
on one machine) and Hail's method (a cluster). Which one runs is decided here,
once per stage, and nowhere else:

- ``--engine auto`` (the default): ``local`` when Spark's master is local and the
  run folder is local, else ``hail``;
- ``--engine local``: the numpy kernels (refused on a cluster or a ``gs://`` run
  folder, whose executors do not share this machine's disk);
- ``--engine hail``: Hail's methods, also in local mode (what a cluster will do,
  on a laptop).

The engine comes from ``HailConfig.engine`` (``--engine``, ``hail: {engine: …}``
in the pipeline YAML), else ``$GWAS_PRS_ENGINE``, else ``auto``. Deciding it never
starts Hail. A stage runner decorated with :func:`stage_runner` holds it for its
whole run (and the run folder's lock), records it in its manifest record, and every
two-engine algorithm asks :func:`numpy_engine` which kernel to use.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from gwas_prs.core import storage
from gwas_prs.core.errors import InputError
from gwas_prs.core.run_folder import RunFolder, run_lock
from gwas_prs.engine.hail_context import HailConfig, is_hail_running

ENGINE_CHOICES: tuple[str, ...] = ("auto", "local", "hail")
#: Environment default of ``--engine``.
ENGINE_ENV = "GWAS_PRS_ENGINE"
LOCAL = "local"
HAIL = "hail"

_current: str | None = None


def requested_engine(config: HailConfig) -> str:
    """``config.engine``, else ``$GWAS_PRS_ENGINE``, else ``auto``; checked.

    Raises
    ------
    InputError
        Not one of :data:`ENGINE_CHOICES`.
    """
    value = config.engine or os.environ.get(ENGINE_ENV) or "auto"
    if value not in ENGINE_CHOICES:
        source = "--engine" if config.engine else f"${ENGINE_ENV}"
        raise InputError(f"{source} {value}: choose one of {', '.join(ENGINE_CHOICES)}")
    return value


def choose_engine(config: HailConfig, run_dir: str | None) -> str:
    """``local`` or ``hail`` for a stage on ``run_dir`` (see the module docstring).
    Starts nothing.

    Raises
    ------
    InputError
        ``--engine local`` with a non-local Spark master or a remote run folder.
    """
    requested = requested_engine(config)
    master = spark_master(config)
    remote = run_dir is not None and storage.is_remote(run_dir)
    local_possible = master.startswith("local") and not remote
    if requested == LOCAL and not local_possible:
        where = f"the run folder {run_dir} is remote" if remote else f"Spark's master is {master}"
        raise InputError(
            f"--engine local: {where}, and the numpy engine needs Spark local mode and a local "
            "run folder; use --engine hail (or auto)"
        )
    if requested == "auto":
        return LOCAL if local_possible else HAIL
    return requested


def runs_locally() -> bool:
    """True when the running Hail context is in Spark local mode (executors share this
    machine's disk); False when none runs or it runs elsewhere (a cluster, the service)."""
    if not is_hail_running():
        return False
    try:
        import hail as hl

        master = str(hl.spark_context().master)
    except Exception:  # any other backend: the distributed path
        return False
    return master.startswith("local")


def spark_master(config: HailConfig) -> str:
    """The master of the running Hail context, else the one ``config`` would start."""
    if is_hail_running():
        return "local" if runs_locally() else "cluster"
    return config.resolved_master()


def current_engine() -> str | None:
    """The engine of the stage in progress (None outside a stage)."""
    return _current


@contextmanager
def engine_in_use(engine: str) -> Iterator[None]:
    """Make ``engine`` the answer of :func:`numpy_engine` inside the block."""
    global _current
    previous, _current = _current, engine
    try:
        yield
    finally:
        _current = previous


def numpy_engine() -> bool:
    """True when the numpy kernels run: inside a stage, its engine; outside one (library
    use, notebooks), as ``auto`` would decide for the running Hail context."""
    if _current is not None:
        return _current == LOCAL
    return runs_locally()


_P = ParamSpec("_P")
_R = TypeVar("_R")


def stage_runner(command: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorate a stage runner ``run_x(config_or_run_dir, …, hail=None)``: it holds the
    run folder's lock (:func:`gwas_prs.core.run_folder.run_lock`) and its engine
    (:func:`choose_engine`, from the ``hail`` argument or the environment) from its
    first check to its last write."""

    def decorate(runner: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(runner)
        def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            first: Any = args[0]
            run_dir = first if isinstance(first, str) else first.run_dir
            hail = kwargs.get("hail", args[1] if len(args) > 1 else None)
            config = hail if isinstance(hail, HailConfig) else HailConfig(run_dir=run_dir)
            engine = choose_engine(config, run_dir)
            # only ingest starts a run folder; the other stages need an existing one
            lock = run_lock(RunFolder(run_dir), command, create=command == "ingest")
            with lock, engine_in_use(engine):
                return runner(*args, **kwargs)

        return run

    return decorate
