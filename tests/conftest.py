"""Shared fixtures.

- ``hail_context``: one Hail context per pytest session (``local[2]``, quiet,
  fixed seed), started only by the tests that ask for it.
- ``no_jvm``: fails a test that would start Hail (CLI tests must not).
- ``bundled_1kg``: paths of the bundled 1000 Genomes VCFs and panel.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gcs_emulator import EmulatorServer, start_emulator, stop_emulator

REPO = Path(__file__).resolve().parent.parent
DATA_1KG = REPO / "gwas_prs" / "data" / "1kg"
HAIL_SEED = 20261121


def have_programs(*names: str) -> bool:
    return all(shutil.which(n) for n in names)


def common_variants_with_ids(run: Path) -> Any:
    """The bronze genotypes of ``run`` restricted to ALT frequency in (0.01, 0.99), with
    ``varid`` = CHROM:POS:REF:ALT (the variant ID written for PLINK)."""
    import hail as hl

    mt = hl.read_matrix_table(str(run / "bronze" / "genotypes.mt"))
    mt = hl.variant_qc(mt)
    mt = mt.filter_rows((mt.variant_qc.AF[1] > 0.01) & (mt.variant_qc.AF[1] < 0.99))
    return mt.annotate_rows(varid=hl.variant_str(mt.locus, mt.alleles))


@pytest.fixture(scope="session")
def hail_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    from gwas_prs.engine.hail_context import HailConfig, start_hail, stop_hail

    run_dir = tmp_path_factory.mktemp("hail-session")
    start_hail(
        HailConfig(
            run_dir=str(run_dir),
            command="pytest",
            cores=2,
            driver_memory="4g",
            seed=HAIL_SEED,
            quiet=True,
        )
    )
    yield
    stop_hail()


@pytest.fixture
def no_jvm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to start Hail fail the test.

    Every stage module is imported first and its own ``start_hail`` name patched too: a
    module first imported while patched would otherwise keep the refusing function
    after the test (``from … import start_hail`` binds at import)."""
    import importlib
    import pkgutil
    import sys

    import gwas_prs.engine.hail_context as hail_context
    import gwas_prs.stages

    for info in pkgutil.iter_modules(gwas_prs.stages.__path__):
        importlib.import_module(f"gwas_prs.stages.{info.name}")
    real = hail_context.start_hail

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("this test must not start a JVM")

    monkeypatch.setattr(hail_context, "start_hail", refuse)
    for name, module in list(sys.modules.items()):
        if name.startswith("gwas_prs") and getattr(module, "start_hail", None) is real:
            monkeypatch.setattr(module, "start_hail", refuse)


@pytest.fixture(scope="session")
def bundled_1kg() -> dict[str, object]:
    vcfs = {c: DATA_1KG / f"1KG_phase3_subset_chr{c}.vcf.gz" for c in range(1, 23)}
    return {"vcfs": vcfs, "panel": DATA_1KG / "samples.panel"}


@pytest.fixture(scope="session")
def chr21_22_run(
    hail_context: None, tmp_path_factory: pytest.TempPathFactory, bundled_1kg: dict
) -> Path:
    """A run folder with chr21+chr22 of the bundled cohort ingested (with the panel)."""
    from gwas_prs.stages.ingest import IngestConfig, run_ingest

    run = tmp_path_factory.mktemp("ingest") / "run"
    run_ingest(
        IngestConfig(
            vcfs=(str(bundled_1kg["vcfs"][21]), str(bundled_1kg["vcfs"][22])),
            run_dir=str(run),
            samples_file=str(bundled_1kg["panel"]),
        )
    )
    return run


@pytest.fixture(scope="session")
def qc_full_run(
    hail_context: None, bundled_1kg: dict, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    """ingest + qc of all 22 bundled autosomes (1,126 samples), once per session."""
    from gwas_prs.engine.hail_context import HailConfig
    from gwas_prs.stages.ingest import IngestConfig, run_ingest
    from gwas_prs.stages.qc import QcConfig, run_qc

    run_dir = str(tmp_path_factory.mktemp("qc-run"))
    vcfs = tuple(str(p) for p in bundled_1kg["vcfs"].values())
    hail = HailConfig(run_dir=run_dir, command="pytest")
    run_ingest(
        IngestConfig(vcfs=vcfs, run_dir=run_dir, samples_file=str(bundled_1kg["panel"])), hail
    )
    result = run_qc(QcConfig(run_dir=run_dir), hail)
    return {"run_dir": run_dir, "result": result}


@pytest.fixture(scope="session")
def demo_run(qc_full_run: dict, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The demo run folder (ingest + qc copied from ``qc_full_run``, then
    ``gwas-prs demo`` for simulate-phenotype, gwas, prs, train and predict) and its output;
    shared by the demo, query and notebook tests. Do not modify it."""
    from typer.testing import CliRunner

    from gwas_prs.cli.app import app

    run = tmp_path_factory.mktemp("demo") / "run"
    shutil.copytree(qc_full_run["run_dir"], run, ignore=shutil.ignore_patterns("tmp", "logs"))
    result = CliRunner().invoke(app, ["demo", "--run", str(run)])
    assert result.exit_code == 0, result.output
    return run, result.output


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    """One Google Cloud Storage emulator server (``gcp-storage-emulator``) per session;
    each test makes its own bucket and points ``STORAGE_EMULATOR_HOST`` at it."""
    server = start_emulator(tmp_path_factory.mktemp("gcs-emulator"))
    yield server
    stop_emulator(server)
