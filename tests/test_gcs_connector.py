"""Local mode with ``gs://`` run folders: the GCS connector check (no JVM)."""

from __future__ import annotations

from pathlib import Path

import pytest

import gwas_prs.engine.gcs_connector as gcs_connector
from gwas_prs.core.errors import EnvironmentSetupError
from gwas_prs.engine.gcs_connector import check_gcs_connector, find_gcs_connector, pyspark_jars_dir
from gwas_prs.engine.hail_context import HailConfig, start_hail


def expected_message(jars: Path) -> str:
    return (
        "the run folder gs://lab/runs/a is on Google Cloud Storage but Spark has no GCS connector: "
        "install the Cloud Storage connector into pyspark with "
        "'curl -sSL https://broad.io/install-gcs-connector | python3' (see Hail's 'Using the Google "
        "Cloud Storage connector' docs), or download "
        f"https://storage.googleapis.com/hadoop-lib/gcs/gcs-connector-hadoop3-latest.jar into {jars}"
    )


def test_missing_connector_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentSetupError) as info:
        check_gcs_connector("gs://lab/runs/a", jars_dir=tmp_path)
    assert str(info.value) == expected_message(tmp_path)
    assert info.value.exit_code == 3


def test_connector_found_in_jars_or_spark_jars(tmp_path: Path) -> None:
    jar = tmp_path / "gcs-connector-hadoop3-2.2.25-shaded.jar"
    jar.write_bytes(b"")
    assert check_gcs_connector("gs://lab/runs/a", jars_dir=tmp_path) == str(jar)
    assert (
        find_gcs_connector(None, {"spark.jars": "/opt/x.jar, /opt/gcs-connector-3.0.jar"})
        == "/opt/gcs-connector-3.0.jar"
    )
    assert find_gcs_connector(tmp_path / "missing", {}) is None


def test_pyspark_jars_dir_is_inside_pyspark() -> None:
    jars = pyspark_jars_dir()
    assert jars is not None and jars.name == "jars" and jars.parent.name == "pyspark"


def test_start_hail_checks_the_connector_before_the_jvm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gwas_prs.engine.hail_context as hail_context

    monkeypatch.setattr(gcs_connector, "pyspark_jars_dir", lambda: tmp_path)
    monkeypatch.setattr(hail_context, "is_hail_running", lambda: False)

    def no_java() -> None:
        raise AssertionError("Java must not be checked before the connector")

    monkeypatch.setattr(hail_context, "check_java", no_java)
    monkeypatch.delenv("GWAS_PRS_SPARK_MASTER", raising=False)
    with pytest.raises(EnvironmentSetupError) as info:
        start_hail(HailConfig(run_dir="gs://lab/runs/a", command="qc"))
    assert str(info.value) == expected_message(tmp_path)


def test_no_connector_check_on_a_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With master=yarn (Dataproc ships the connector) the check is skipped."""
    import gwas_prs.engine.hail_context as hail_context

    monkeypatch.setattr(gcs_connector, "pyspark_jars_dir", lambda: tmp_path)
    monkeypatch.setattr(hail_context, "is_hail_running", lambda: False)

    class JavaChecked(Exception):
        pass

    def java_checked() -> None:
        raise JavaChecked

    monkeypatch.setattr(hail_context, "check_java", java_checked)
    monkeypatch.setenv("GWAS_PRS_SPARK_MASTER", "yarn")
    assert HailConfig(run_dir="gs://lab/runs/a").resolved_master() == "yarn"
    with pytest.raises(JavaChecked):
        start_hail(HailConfig(run_dir="gs://lab/runs/a", command="qc"))
