"""The engine switch (gwas_prs.engine.switch): one decision per stage, never starting Hail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gwas_prs.core.errors import InputError
from gwas_prs.core.run_folder import RunFolder, stage_run
from gwas_prs.engine.hail_context import HailConfig
from gwas_prs.engine.switch import (
    ENGINE_ENV,
    choose_engine,
    current_engine,
    engine_in_use,
    numpy_engine,
    stage_runner,
)
from tests.cli_helpers import invoke


@pytest.mark.parametrize(
    ("engine", "master", "run_dir", "expected"),
    [
        (None, None, "runs/a", "local"),
        ("auto", "local[2]", "runs/a", "local"),
        ("auto", "spark://127.0.0.1:7077", "runs/a", "hail"),
        ("auto", None, "gs://bucket/run", "hail"),
        ("hail", None, "runs/a", "hail"),
        ("local", "local[1]", "runs/a", "local"),
    ],
)
def test_engine_choice(
    no_jvm: None,
    monkeypatch: pytest.MonkeyPatch,
    engine: str | None,
    master: str | None,
    run_dir: str,
    expected: str,
) -> None:
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    monkeypatch.delenv("GWAS_PRS_SPARK_MASTER", raising=False)
    # as a fresh process: the master the config would start (a running Hail context,
    # such as this test session's, would be asked instead)
    monkeypatch.setattr("gwas_prs.engine.switch.is_hail_running", lambda: False)
    assert choose_engine(HailConfig(master=master, engine=engine), run_dir) == expected


def test_engine_from_the_environment_and_bad_values(
    no_jvm: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gwas_prs.engine.switch.is_hail_running", lambda: False)
    monkeypatch.delenv("GWAS_PRS_SPARK_MASTER", raising=False)
    monkeypatch.setenv(ENGINE_ENV, "hail")
    assert choose_engine(HailConfig(), "runs/a") == "hail"
    assert choose_engine(HailConfig(engine="local"), "runs/a") == "local"  # the option wins
    monkeypatch.setenv(ENGINE_ENV, "numpy")
    with pytest.raises(
        InputError, match=r"^\$GWAS_PRS_ENGINE numpy: choose one of auto, local, hail$"
    ):
        choose_engine(HailConfig(), "runs/a")
    with pytest.raises(InputError, match="the run folder gs://b/r is remote"):
        choose_engine(HailConfig(engine="local"), "gs://b/r")
    with pytest.raises(InputError, match="Spark's master is yarn"):
        choose_engine(HailConfig(engine="local", master="yarn"), "runs/a")


def test_stage_runner_holds_the_engine_and_records_it(tmp_path: Path) -> None:
    seen: list[tuple[str | None, bool]] = []

    @stage_runner("qc")
    def runner(run_dir: str, hail: HailConfig | None = None) -> None:
        seen.append((current_engine(), numpy_engine()))
        with stage_run(RunFolder(run_dir), "qc", parameters={}, engine=current_engine()):
            pass

    runner(str(tmp_path), HailConfig(engine="hail"))
    runner(str(tmp_path / "b"), hail=HailConfig(engine="local", master="local[1]"))
    assert seen == [("hail", False), ("local", True)]
    assert current_engine() is None  # restored after the stage
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["stages"]["qc"]["engine"] == "hail"
    with engine_in_use("local"):
        assert numpy_engine()
    code, out, _ = invoke("status", str(tmp_path))
    assert code == 0 and "hail" in out.split("qc", 1)[1].splitlines()[0]


def test_bad_engine_option_is_one_line(no_jvm: None, tmp_path: Path) -> None:
    code, _, errors = invoke("qc", str(tmp_path), "--engine", "gpu")
    assert code == 2
    assert errors == "error: --engine gpu: choose one of auto, local, hail\n"


def test_pipeline_file_engine(no_jvm: None, tmp_path: Path) -> None:
    from gwas_prs.stages.pipeline import hail_config
    from gwas_prs.stages.pipeline_config import load_pipeline

    (tmp_path / "a.vcf").write_text("")
    text = f"run: {tmp_path}/run\ninputs:\n  vcfs: [a.vcf]\nhail:\n  engine: hail\n"
    (tmp_path / "p.yaml").write_text(text)
    assert hail_config(load_pipeline(str(tmp_path / "p.yaml"))).engine == "hail"
    (tmp_path / "p.yaml").write_text(text.replace("engine: hail", "engine: spark"))
    code, _, errors = invoke("run", str(tmp_path / "p.yaml"), "--dry-run")
    assert code == 2 and "'hail.engine' is 'spark'; choose one of auto, local, hail" in errors
