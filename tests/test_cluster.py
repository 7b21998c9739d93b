"""The cluster path on a real Spark standalone cluster (marker ``cluster``, ``nox -s cluster``).

A master and a worker run on 127.0.0.1 from the pyspark that Hail installs
(tests/spark_cluster.py); Hail's driver (the ``gwas-prs`` process) and its
executors are separate JVMs, as on Dataproc. The run folders are local: driver
and executors share this machine's disk, as they share ``gs://`` on Dataproc.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.spark_cluster import SparkCluster, start_cluster, stop_cluster

pytestmark = [pytest.mark.cluster]

GWAS_PRS = str(Path(sys.executable).with_name("gwas-prs"))


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkCluster]:
    cluster = start_cluster(tmp_path_factory.mktemp("spark"), workers=1, cores=2, memory="3g")
    try:
        yield cluster
    finally:
        stop_cluster(cluster)
    assert all(p.poll() is not None for p in cluster.processes)


def small_pipeline(folder: Path, run: Path) -> Path:
    """examples/pipeline-small.yaml with absolute input paths and ``run`` as its run folder
    (every stage parameter as in the example)."""
    example = REPO / "examples" / "pipeline-small.yaml"
    config = yaml.safe_load(example.read_text())
    base = example.parent
    config["run"] = str(run)
    config["inputs"]["vcfs"] = [str((base / v).resolve()) for v in config["inputs"]["vcfs"]]
    config["inputs"]["samples"] = str((base / config["inputs"]["samples"]).resolve())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run.name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_cli(args: list[str], env: dict[str, str], timeout: float = 900) -> None:
    result = subprocess.run(
        [GWAS_PRS, *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stderr[-4000:]


def engines_of(run: Path) -> set[str]:
    stages = json.loads((run / "manifest.json").read_text())["stages"]
    return {raw["engine"] for raw in stages.values()}


def executors_launched(cluster: SparkCluster) -> int:
    """Executors the worker started (one folder per application and executor)."""
    return len(list(cluster.folder.glob("work-*/app-*/*/stderr")))


def test_pipeline_on_a_standalone_cluster_matches_the_local_engine(
    spark_cluster: SparkCluster, tmp_path: Path
) -> None:
    """`gwas-prs run examples/pipeline-small.yaml --spark-master spark://…` on chr21+22,
    stage by stage against the same pipeline on the numpy engine, to the tolerances of
    the engine-comparison test (tests/engine_comparison.py)."""
    from tests.engine_comparison import compare_runs, table

    local_run, cluster_run = tmp_path / "local-engine", tmp_path / "cluster"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GWAS_PRS_")}
    before = executors_launched(spark_cluster)
    run_cli(["run", str(small_pipeline(tmp_path, local_run)), "--engine", "local"], env)
    run_cli(
        [
            "run",
            str(small_pipeline(tmp_path, cluster_run)),
            "--spark-master",
            spark_cluster.master_url,
        ],
        spark_cluster.env(),
    )
    assert engines_of(local_run) == {"local"}
    # a non-local master runs the Hail engine, in executors the worker started
    assert engines_of(cluster_run) == {"hail"}
    assert executors_launched(spark_cluster) > before, spark_cluster.logs()
    rows = compare_runs(local_run, cluster_run)
    print(table(rows))
    assert [r for r in rows if not r.ok] == []


def node_environment(tmp_path: Path) -> Path:
    """A fresh virtual environment set up the way the init action sets up a node:
    the image's packages (Hail, pyspark and the rest, which hailctl's image provides)
    are this test environment's site-packages, added by a .pth file; then
    ``pip install --no-deps WHEEL`` and ``pip install -r gwas-prs-requirements.txt``
    (offline: every pin must already be satisfied by the image's packages)."""
    import site

    from gwas_prs.dataproc.wheel import build_wheel_argv, node_requirements, project_root

    root = project_root()
    assert root is not None
    dist = tmp_path / "dist"
    subprocess.run(build_wheel_argv(root, dist), check=True, capture_output=True, timeout=300)
    (wheel,) = dist.glob("gwas_prs-*-py3-none-any.whl")
    requirements = tmp_path / "gwas-prs-requirements.txt"
    requirements.write_text(node_requirements())
    venv = tmp_path / "node"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    image = [p for p in site.getsitepackages() if Path(p, "hail").is_dir()]
    Path(purelib, "dataproc-image.pth").write_text("\n".join(image) + "\n")
    for install in (
        ["--no-deps", str(wheel)],
        ["--no-index", "-r", str(requirements)],
    ):
        result = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *install],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
    return python


def test_a_stage_submitted_through_the_job_entry_point_runs_on_the_cluster(
    spark_cluster: SparkCluster, tmp_path: Path
) -> None:
    """What `hailctl dataproc submit CLUSTER job_entry.py -- ingest …` runs on the master,
    with the staged wheel installed as the init action installs it, against the cluster."""
    from tests.conftest import DATA_1KG

    python = node_environment(tmp_path)
    where = subprocess.run(
        [str(python), "-c", "import gwas_prs.dataproc.job_entry as j; print(j.__file__)"],
        check=True, capture_output=True, text=True, cwd=tmp_path,
    ).stdout.strip()  # fmt: skip
    # the job runs the wheel's code, not this checkout's
    assert where.startswith(str(tmp_path / "node")), where
    env = {
        **{k: v for k, v in spark_cluster.env().items() if not k.startswith("GWAS_PRS_")},
        "GWAS_PRS_SPARK_MASTER": spark_cluster.master_url,
    }
    run = tmp_path / "run"
    before = executors_launched(spark_cluster)
    job = subprocess.run(
        [str(python), where, "--", "ingest", str(DATA_1KG / "1KG_phase3_subset_chr22.vcf.gz"),
         "--run", str(run), "--samples", str(DATA_1KG / "samples.panel")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=900,
    )  # fmt: skip
    assert job.returncode == 0, job.stderr[-4000:]
    manifest = json.loads((run / "manifest.json").read_text())
    ingest = manifest["stages"]["ingest"]
    assert ingest["status"] == "complete" and ingest["engine"] == "hail"
    assert ingest["counts"]["samples"] == 1126
    assert executors_launched(spark_cluster) > before, spark_cluster.logs()
    assert list((run / "logs").rglob("ingest-*.log"))
    # a failing stage keeps its own exit code through the entry point (2: bad input)
    failed = subprocess.run(
        [str(python), where, "--", "qc", str(tmp_path / "no-such-run")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    assert failed.returncode == 2, failed.stderr[-2000:]
    assert "no-such-run" in failed.stderr
