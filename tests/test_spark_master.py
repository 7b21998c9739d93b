"""``--spark-master`` on every stage, ``hail: {spark-master: …}`` in pipeline files, and
pipeline files on ``gs://`` (no JVM; the GCS side against the real emulator)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gwas_prs.engine.hail_context import HailConfig, hail_jar, standalone_spark_conf
from gwas_prs.engine.switch import choose_engine
from tests.cli_helpers import invoke
from tests.conftest import DATA_1KG
from tests.gcs_emulator import EmulatorServer


def _commands() -> dict[str, Any]:
    import typer

    from gwas_prs.cli.app import app

    def walk(group: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield from walk(command, f"{prefix}{name} ")
            else:
                yield f"{prefix}{name}", command

    return dict(walk(typer.main.get_command(app)))


def test_every_command_that_starts_hail_takes_spark_master() -> None:
    """A command that takes --engine (it may start Hail) also takes --spark-master, and
    so do export and run."""
    commands = _commands()
    options = {
        name: {opt for param in command.params for opt in getattr(param, "opts", [])}
        for name, command in commands.items()
    }
    starting = {name for name, opts in options.items() if "--engine" in opts} | {"export", "run"}
    assert {"ingest", "qc", "simulate-phenotype", "gwas", "prs", "train", "predict"} <= starting
    assert sorted(n for n in starting if "--spark-master" not in options[n]) == []


def test_a_non_local_master_runs_the_hail_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    import gwas_prs.engine.switch as switch

    # the choice before a stage starts Hail (the session's own local context is ignored)
    monkeypatch.setattr(switch, "is_hail_running", lambda: False)
    master = "spark://127.0.0.1:7077"
    assert choose_engine(HailConfig(master=master), "runs/a") == "hail"
    assert choose_engine(HailConfig(master="local[2]"), "runs/a") == "local"
    from gwas_prs.core.errors import InputError

    with pytest.raises(InputError, match=r"Spark.s master is spark://127\.0\.0\.1:7077"):
        choose_engine(HailConfig(master=master, engine="local"), "runs/a")


def test_standalone_masters_get_the_hail_jar_and_kryo() -> None:
    conf = standalone_spark_conf("spark://10.0.0.2:7077")
    assert Path(hail_jar()).is_file()
    assert conf["spark.jars"] == hail_jar() == conf["spark.driver.extraClassPath"]
    assert conf["spark.executor.extraClassPath"] == "./hail-all-spark.jar"
    assert conf["spark.kryo.registrator"] == "is.hail.kryo.HailKryoRegistrator"
    # local mode needs nothing, and on Dataproc hailctl's spark-defaults have it all
    assert standalone_spark_conf("local[2]") == standalone_spark_conf("yarn") == {}


def test_start_hail_passes_the_master_and_does_not_pin_the_driver_to_loopback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hail as hl

    import gwas_prs.engine.hail_context as hail_context

    seen: dict[str, Any] = {}
    monkeypatch.setattr(hail_context, "is_hail_running", lambda: False)
    monkeypatch.setattr(hl, "init", lambda **kwargs: seen.update(kwargs))
    monkeypatch.setattr(hl, "default_reference", lambda name: None)
    monkeypatch.delenv("SPARK_LOCAL_IP", raising=False)
    hail_context.start_hail(
        HailConfig(run_dir=str(tmp_path / "run"), master="spark://10.0.0.2:7077")
    )
    assert seen["master"] == "spark://10.0.0.2:7077"
    assert seen["spark_conf"]["spark.jars"] == hail_jar()
    # executors on other hosts connect back to the driver: it must not bind 127.0.0.1
    import os

    assert "SPARK_LOCAL_IP" not in os.environ


def write_yaml(path: Path, hail: str) -> Path:
    path.write_text(
        f"run: {path.parent / 'run'}\n"
        f"inputs: {{vcfs: {DATA_1KG}/1KG_phase3_subset_chr22.vcf.gz}}\n"
        f"hail: {hail}\n"
    )
    return path


def test_pipeline_file_takes_a_spark_master_outside_the_parameters_hash(tmp_path: Path) -> None:
    from gwas_prs.stages.pipeline import hail_config, plan
    from gwas_prs.stages.pipeline_config import load_pipeline

    on_cluster = load_pipeline(
        str(write_yaml(tmp_path / "a.yaml", "{spark-master: 'spark://127.0.0.1:7077'}"))
    )
    assert on_cluster.spark_master == "spark://127.0.0.1:7077"
    assert hail_config(on_cluster).master == "spark://127.0.0.1:7077"
    local = load_pipeline(str(write_yaml(tmp_path / "b.yaml", "{cores: 2}")))
    assert local.spark_master is None

    def hashes(pipeline: Any) -> dict[str, str]:
        return {s.name: s.parameters_hash for s in plan(pipeline).steps}

    # the same stage gives the same results on any master: no re-run when it changes
    assert hashes(on_cluster) == hashes(local)


def test_run_takes_spark_master_and_rejects_a_bad_yaml_value(no_jvm: None, tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", "{spark-master: [1, 2]}")
    code, _, errors = invoke("run", str(path), "--dry-run")
    assert code == 2
    assert "'hail.spark-master' must be a text value" in errors
    good = write_yaml(tmp_path / "d.yaml", "{cores: 1}")
    code, out, errors = invoke("run", str(good), "--dry-run", "--spark-master", "spark://h:1")
    assert code == 0, errors
    assert "dry run: nothing was run" in out


# ------------------------------------------------------------------ pipeline files on gs://


@pytest.fixture
def bucket(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> str:
    from gwas_prs.core.gcs_staging import storage_client

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.host)
    name = f"pipe-{uuid.uuid4().hex[:10]}"
    storage_client().create_bucket(name)
    return name


def test_pipeline_file_on_gcs_resolves_paths_against_its_folder(bucket: str) -> None:
    from gwas_prs.core import storage
    from gwas_prs.stages.pipeline_config import load_pipeline

    storage.write_text_atomic(f"gs://{bucket}/inputs/chr22.vcf.gz", "not read here")
    storage.write_text_atomic(
        f"gs://{bucket}/configs/cohort.yaml",
        "run: ../runs/cohort\n"
        "inputs: {vcfs: [../inputs/chr22.vcf.gz], samples: gs://other/s.tsv}\n"
        "hail: {spark-master: yarn}\n",
    )
    pipeline = load_pipeline(f"gs://{bucket}/configs/cohort.yaml")
    assert pipeline.path == f"gs://{bucket}/configs/cohort.yaml"
    assert pipeline.run_dir == f"gs://{bucket}/runs/cohort"
    assert pipeline.vcfs == (f"gs://{bucket}/inputs/chr22.vcf.gz",)
    assert pipeline.samples == "gs://other/s.tsv"
    assert pipeline.spark_master == "yarn"


def test_run_reads_a_gs_pipeline_file_without_mangling_its_url(no_jvm: None, bucket: str) -> None:
    """Typer's Path argument turned gs://b/c.yaml into gs:/b/c.yaml."""
    from gwas_prs.core import storage

    missing = f"gs://{bucket}/configs/none.yaml"
    code, _, errors = invoke("run", missing, "--dry-run")
    assert code == 2
    assert errors == f"error: {missing}: no such pipeline file\n"
    storage.write_text_atomic(f"gs://{bucket}/configs/bad.yaml", "run: [\n")
    code, _, errors = invoke("run", f"gs://{bucket}/configs/bad.yaml", "--dry-run")
    assert code == 2
    assert errors.startswith(f"error: gs://{bucket}/configs/bad.yaml:2: not valid YAML")
