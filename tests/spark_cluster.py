"""A real Spark standalone cluster on 127.0.0.1 for the ``cluster`` tests.

The master and the workers are started from the pyspark that Hail installs
(``SPARK_HOME`` = the ``pyspark`` package folder, ``bin/spark-class``), each in a
process group of its own, and stopped by their process ids. Hail connected to it
(``--spark-master spark://127.0.0.1:PORT``) runs its driver and its executors in
separate JVMs, as on Dataproc.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.gcs_emulator import free_port


@dataclass
class SparkCluster:
    """A running standalone cluster: its master URL, processes and log files."""

    master_url: str
    folder: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """Environment for a driver process that uses this cluster."""
        return {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_HOME": spark_home()}

    def logs(self) -> str:
        """The last lines of every daemon log (for a failure message)."""
        parts = []
        for log in sorted(self.folder.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-15:]
            parts.append(f"== {log.name}\n" + "\n".join(lines))
        return "\n".join(parts)


def spark_home() -> str:
    import pyspark

    return str(Path(pyspark.__file__).parent)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Spark daemon exited with status {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


def _wait_for_workers(cluster: SparkCluster, count: int, timeout_s: float) -> None:
    log = cluster.folder / "master.log"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if log.read_text(errors="replace").count("Registering worker") >= count:
            return
        time.sleep(0.3)
    raise RuntimeError(f"{count} worker(s) did not register in {timeout_s} s:\n{cluster.logs()}")


def _daemon(
    folder: Path, name: str, arguments: list[str], env: dict[str, str]
) -> subprocess.Popen[bytes]:
    launcher = Path(spark_home()) / "bin" / "spark-class"
    with open(folder / f"{name}.log", "wb") as log:
        return subprocess.Popen(
            ["bash", str(launcher), *arguments],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole
        )


def start_cluster(
    folder: Path, *, workers: int = 1, cores: int = 2, memory: str = "3g", timeout_s: float = 90
) -> SparkCluster:
    """Start a master and ``workers`` workers bound to 127.0.0.1."""
    folder.mkdir(parents=True, exist_ok=True)
    port, ui_port = free_port(), free_port()
    env = {
        **os.environ,
        "SPARK_HOME": spark_home(),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(folder),
        "SPARK_WORKER_DIR": str(folder / "work"),
        "SPARK_NO_DAEMONIZE": "1",
    }
    cluster = SparkCluster(f"spark://127.0.0.1:{port}", folder)
    try:
        master = _daemon(
            folder,
            "master",
            [
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--webui-port",
                str(ui_port),
            ],
            env,
        )
        cluster.processes.append(master)
        _wait_for_port(port, master, timeout_s)
        for index in range(workers):
            cluster.processes.append(
                _daemon(
                    folder,
                    f"worker-{index}",
                    [
                        "org.apache.spark.deploy.worker.Worker",
                        cluster.master_url,
                        "--host",
                        "127.0.0.1",
                        "--cores",
                        str(cores),
                        "--memory",
                        memory,
                        "--webui-port",
                        str(free_port()),
                        "--work-dir",
                        str(folder / f"work-{index}"),
                    ],
                    env,
                )
            )
        _wait_for_workers(cluster, workers, timeout_s)
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def stop_cluster(cluster: SparkCluster) -> None:
    """Stop the daemons this module started, by their process ids (workers first)."""
    for process in reversed(cluster.processes):
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in reversed(cluster.processes):
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
