"""Developer and CI sessions: ``nox -s demo``, ``nox -s tests``, ``nox -s lint typecheck``.

``nox`` alone runs lint, typecheck, tests, inputs, engines and cluster (what CI runs). Virtual
environments are made with uv when it is installed (much faster), otherwise
with virtualenv.
"""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests", "inputs", "engines", "cluster"]
nox.options.reuse_existing_virtualenvs = True

#: Interpreter for the sessions: the one running nox, unless GWAS_PRS_PYTHON names another.
PYTHON = os.environ.get("GWAS_PRS_PYTHON") or None
#: Sessions that run gwas-prs compile the installed packages to bytecode (pip does by
#: default, uv does not): `import hail` then takes ~6 s instead of ~16 s in every
#: process, which matters where PYTHONDONTWRITEBYTECODE is set (no .pyc written later).
COMPILE = {"UV_COMPILE_BYTECODE": "1"}
SOURCES = ["gwas_prs", "cli", "dataproc", "tests", "noxfile.py", "benchmarks"]
PGSCATALOG_CALC = "pgscatalog-calc==0.3.1"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite (Hail local mode; PLINK reference tests where installed)."""
    session.install("-e", ".[test]", env=COMPILE)
    # the reference of the ancestry adjustment (tests/test_ancestry_adjust.py): every
    # release pins numpy<2, but its ancestry module runs on numpy 2; without its pins
    session.install("--no-deps", PGSCATALOG_CALC, env=COMPILE)
    session.run("pytest", *session.posargs, env={"PYTHONUNBUFFERED": "1"})


@nox.session(python=PYTHON)
def inputs(session: nox.Session) -> None:
    """Imputed dosages, BGEN, PLINK and MatrixTable inputs against plink2 on the same files,
    both engines (pytest marker ``inputs``, about 2 minutes)."""
    session.install("-e", ".[test]", env=COMPILE)
    session.run("pytest", "-m", "inputs", *session.posargs, env={"PYTHONUNBUFFERED": "1"})


@nox.session(python=PYTHON)
def engines(session: nox.Session) -> None:
    """The engine comparison: the small pipeline on the Hail engine against the numpy
    engine, stage by stage (pytest marker ``engines``, about 4 minutes)."""
    session.install("-e", ".[test]", env=COMPILE)
    session.run("pytest", "-m", "engines", *session.posargs, env={"PYTHONUNBUFFERED": "1"})


@nox.session(python=PYTHON)
def cluster(session: nox.Session) -> None:
    """The cluster path: a Spark standalone cluster (master and worker on 127.0.0.1, from
    the pyspark that Hail installs) runs the small pipeline and a Dataproc job entry
    point (pytest marker ``cluster``)."""
    session.install("-e", ".[test]", env=COMPILE)
    session.run("pytest", "-m", "cluster", *session.posargs, env={"PYTHONUNBUFFERED": "1"})


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Install gwas-prs and run the demo pipeline into ./gwas-prs-demo."""
    session.install("-e", ".", env=COMPILE)
    session.run("gwas-prs", "demo", *(session.posargs or ["--run", "gwas-prs-demo"]))


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check + ruff format --check."""
    session.install("ruff>=0.6")
    existing = [s for s in SOURCES if os.path.exists(s)]
    session.run("ruff", "check", *existing)
    session.run("ruff", "format", "--check", *existing)


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy over the library, CLI and dataproc packages."""
    session.install("-e", ".[typecheck]")
    session.run("mypy", "-p", "gwas_prs")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Stages timed against PLINK: ``-- --size small|medium|large`` on a simulated cohort
    (benchmarks/scale.py), else gwas/clump/score on a finished demo run (benchmarks/run.py)."""
    session.install("-e", ".[test]", env=COMPILE)
    sized = any(a == "--size" or a.startswith("--size=") for a in session.posargs)
    session.run("python", "-m", "benchmarks.scale" if sized else "benchmarks.run", *session.posargs)
