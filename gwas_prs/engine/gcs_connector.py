"""Is the Hadoop GCS connector installed for Hail local mode?

Spark reads and writes ``gs://`` paths through the Cloud Storage connector for
Hadoop, a jar that Dataproc ships but a ``pip install hail`` does not. Without
it a local run against a ``gs://`` run folder fails deep inside Spark with
``No FileSystem for scheme "gs"``; :func:`check_gcs_connector` finds this out
before the JVM starts and says how to install it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from gwas_prs.core.errors import EnvironmentSetupError

logger = logging.getLogger(__name__)

#: How to install the connector (the Hail documentation's installer script).
GCS_CONNECTOR_INSTALL_HINT = (
    "install the Cloud Storage connector into pyspark with "
    "'curl -sSL https://broad.io/install-gcs-connector | python3' (see Hail's 'Using the Google "
    "Cloud Storage connector' docs), or download "
    "https://storage.googleapis.com/hadoop-lib/gcs/gcs-connector-hadoop3-latest.jar into {jars}"
)


def pyspark_jars_dir() -> Path | None:
    """The ``jars`` folder of the installed pyspark, or None without pyspark."""
    from importlib.util import find_spec

    spec = find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "jars"


def find_gcs_connector(
    jars_dir: Path | None, spark_conf: Mapping[str, str] | None = None
) -> str | None:
    """Path of the GCS connector jar in ``jars_dir`` or in ``spark.jars``, or None."""
    configured = (spark_conf or {}).get("spark.jars", "")
    for jar in filter(None, (j.strip() for j in configured.split(","))):
        if "gcs-connector" in Path(jar).name:
            return jar
    if jars_dir is not None and jars_dir.is_dir():
        for found in sorted(jars_dir.glob("gcs-connector*.jar")):
            return str(found)
    return None


def check_gcs_connector(
    run_dir: str, spark_conf: Mapping[str, str] | None = None, jars_dir: Path | None = None
) -> str:
    """Make sure Spark in local mode can reach a ``gs://`` run folder.

    Returns the path of the connector jar.

    Raises
    ------
    EnvironmentSetupError
        The connector jar is neither in pyspark's ``jars`` folder nor in
        ``spark.jars``; the message says how to install it.
    """
    folder = jars_dir if jars_dir is not None else pyspark_jars_dir()
    jar = find_gcs_connector(folder, spark_conf)
    if jar is None:
        hint = GCS_CONNECTOR_INSTALL_HINT.format(jars=folder or "pyspark's jars folder")
        raise EnvironmentSetupError(
            f"the run folder {run_dir} is on Google Cloud Storage but Spark has no GCS connector: {hint}"
        )
    logger.debug("GCS connector: %s", jar)
    return jar
