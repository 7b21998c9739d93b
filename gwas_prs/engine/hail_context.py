"""Start Hail for the whole project.

One function, :func:`start_hail`, starts Hail in local mode by default
(``local[N]``, N = usable cores) with the driver memory sized from the machine,
temporary files and the Hail log inside the run folder, a quiet console and an
optional fixed seed. Before the JVM starts, :func:`check_java` makes sure a
supported Java runtime is installed and otherwise raises a one-line
:class:`~gwas_prs.core.errors.EnvironmentSetupError` that says how to install one.
"""

from __future__ import annotations

import logging
import os
import re
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gwas_prs.core.errors import EnvironmentSetupError, ExternalCommandError
from gwas_prs.core.processes import find_program, run_command
from gwas_prs.engine.local_threads import set_local_cores, set_scratch_dir, usable_cores

logger = logging.getLogger(__name__)

JAVA_INSTALL_HINT = (
    "install a Java 11 or 17 runtime and try again: Debian/Ubuntu "
    "'sudo apt-get install openjdk-17-jre-headless', macOS 'brew install openjdk@17', "
    "conda 'conda install -c conda-forge openjdk=17'; or set JAVA_HOME to an existing one"
)
SUPPORTED_JAVA = (11, 17, 21)
#: Spark master to use when :attr:`HailConfig.master` is unset; the Dataproc job
#: entry point sets it to ``yarn`` so stage commands use the whole cluster.
SPARK_MASTER_ENV = "GWAS_PRS_SPARK_MASTER"


@dataclass(frozen=True)
class JavaRuntime:
    """The Java runtime Hail will use."""

    path: str
    version: str
    major: int


def _java_executable() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return find_program("java")


def parse_java_version(text: str) -> tuple[str, int]:
    """Return ``(version, major)`` from the output of ``java -version``.

    >>> parse_java_version('openjdk version "17.0.15" 2025-04-15')
    ('17.0.15', 17)
    >>> parse_java_version('java version "1.8.0_292"')
    ('1.8.0_292', 8)
    """
    match = re.search(r'version "([^"]+)"', text)
    if not match:
        raise ValueError(f"cannot read a Java version from {text[:200]!r}")
    version = match.group(1)
    parts = version.split(".")
    major = (
        int(parts[1]) if parts[0] == "1" and len(parts) > 1 else int(re.sub(r"\D.*", "", parts[0]))
    )
    return version, major


def check_java() -> JavaRuntime:
    """Check that a Java runtime Hail can use is installed.

    Raises
    ------
    EnvironmentSetupError
        No ``java`` on ``PATH``/``JAVA_HOME``, it does not run, or it is older
        than Java 11. The message says how to install a supported one.
    """
    java = _java_executable()
    if java is None:
        raise EnvironmentSetupError(
            f"Java was not found (Hail runs on the JVM): {JAVA_INSTALL_HINT}."
        )
    try:
        result = run_command([java, "-version"], check=True, what="read the Java version")
        version, major = parse_java_version(result.stderr + result.stdout)
    except (ExternalCommandError, ValueError) as exc:
        raise EnvironmentSetupError(
            f"'{java} -version' failed ({exc}); {JAVA_INSTALL_HINT}."
        ) from exc
    if major < 11:
        raise EnvironmentSetupError(
            f"Java {version} at {java} is too old for Hail 0.2 (needs 11 or 17): {JAVA_INSTALL_HINT}."
        )
    if major not in SUPPORTED_JAVA:
        logger.warning(
            "Java %s has not been tested with Hail; Java 11 or 17 is recommended", version
        )
    return JavaRuntime(path=java, version=version, major=major)


def total_memory_bytes() -> int:
    """Physical memory of the machine in bytes (cgroup limit when lower)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for cgroup_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(cgroup_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


#: Largest default JVM heap: Hail streams partitions, and in local mode the large
#: in-memory steps (LD, PCA, KING, logistic fits) run in numpy beside the JVM, so
#: a bigger heap only lets the JVM hold on to more memory.
MAX_DEFAULT_DRIVER_GIB = 6


def default_driver_memory(total_bytes: int | None = None) -> str:
    """Driver heap for local mode: 70% of memory, leaving at least 2 GiB to Python,
    and at most :data:`MAX_DEFAULT_DRIVER_GIB`.

    24 GiB → ``6g``, 8 GiB → ``5g``, 4 GiB → ``2g`` (never below 1 GiB).
    ``--driver-memory`` overrides it.
    """
    total_gib = (total_bytes if total_bytes is not None else total_memory_bytes()) / 2**30
    gib = int(min(total_gib * 0.7, total_gib - 2, MAX_DEFAULT_DRIVER_GIB))
    return f"{max(1, gib)}g"


@dataclass(frozen=True)
class HailConfig:
    """How to start Hail.

    Attributes
    ----------
    run_dir:
        Run folder; ``RUN/tmp`` holds Hail's temporary files and ``RUN/logs``
        the Hail log. ``None`` uses the system temporary directory.
    command:
        Name of the command, used in the log file name (``logs/ingest-….log``).
    master:
        Spark master; ``None`` means ``local[N]`` with N = :attr:`cores`.
    cores:
        Cores for local mode; ``None`` means all usable cores.
    driver_memory:
        JVM heap such as ``"8g"``; ``None`` sizes it from the machine.
    seed:
        Hail's global seed, for reproducible random functions.
    quiet:
        Keep the console free of Spark/Hail chatter (progress bars included).
    reference_genome:
        Hail's default reference genome.
    spark_conf:
        Extra Spark properties.
    engine:
        ``auto``, ``local`` (numpy kernels) or ``hail`` (Hail's methods);
        ``None`` means ``$GWAS_PRS_ENGINE`` or ``auto`` (see :mod:`gwas_prs.engine.switch`).
    """

    run_dir: str | None = None
    command: str = "gwas-prs"
    master: str | None = None
    cores: int | None = None
    driver_memory: str | None = None
    seed: int | None = None
    quiet: bool = True
    reference_genome: str = "GRCh37"
    spark_conf: Mapping[str, str] = field(default_factory=dict)
    engine: str | None = None

    def resolved_master(self) -> str:
        """:attr:`master`, else ``$GWAS_PRS_SPARK_MASTER`` (set on Dataproc), else ``local[N]``."""
        if self.master:
            return self.master
        if os.environ.get(SPARK_MASTER_ENV):
            return os.environ[SPARK_MASTER_ENV]
        return f"local[{self.cores or usable_cores()}]"


#: log4j2 settings for the few seconds before Hail points logging at its log
#: file: only errors reach the console (no hostname/native-library warnings).
_QUIET_LOG4J2 = """status = error
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
rootLogger.level = error
rootLogger.appenderRef.console.ref = console
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = error
logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer
logger.gateway.level = error
logger.context.name = org.apache.spark.SparkContext
logger.context.level = error
logger.submit.name = org.apache.spark.deploy.SparkSubmit
logger.submit.level = error
"""


def _quiet_log4j_file(directory: str) -> str:
    path = Path(directory) / "log4j2-quiet.properties"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_QUIET_LOG4J2)
    return str(path)


#: A local folder of this process's own for the Hail logs of remote runs; the Dataproc
#: job entry point sets it to a fresh folder per job, so that concurrent jobs on one
#: master never see (or copy) each other's logs.
LOG_DIR_ENV = "GWAS_PRS_LOG_DIR"


def remote_run_log_dir() -> str:
    """Local folder for the Hail logs of runs whose folder is remote (``gs://``):
    ``$GWAS_PRS_LOG_DIR`` when set (one per Dataproc job), else a shared temp folder."""
    import tempfile

    chosen = os.environ.get(LOG_DIR_ENV)
    path = Path(chosen) if chosen else Path(tempfile.gettempdir()) / "gwas-prs-logs"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def hail_jar() -> str:
    """The path of the Hail JAR that the installed ``hail`` package ships."""
    import hail

    return str(Path(hail.__file__).parent / "backend" / "hail-all-spark.jar")


def standalone_spark_conf(master: str) -> dict[str, str]:
    """The Spark properties Hail needs on a Spark standalone cluster (``spark://…``).

    Local mode needs none, and on Dataproc (``yarn``) ``hailctl`` writes them into
    spark-defaults. A standalone cluster's executors are separate JVMs that get the
    Hail JAR from the driver (``spark.jars``, fetched into each executor's working
    folder) and must serialise Hail's classes with Kryo.
    """
    if not master.startswith("spark://"):
        return {}
    jar = hail_jar()
    return {
        "spark.jars": jar,
        "spark.driver.extraClassPath": jar,
        "spark.executor.extraClassPath": "./hail-all-spark.jar",
        "spark.serializer": "org.apache.spark.serializer.KryoSerializer",
        "spark.kryo.registrator": "is.hail.kryo.HailKryoRegistrator",
    }


def is_hail_running() -> bool:
    """True when a Hail context exists in this process."""
    try:
        from hail.utils.java import Env
    except ImportError:  # pragma: no cover - hail is a hard dependency
        return False
    return Env._hc is not None


def _local_scratch(run_dir: str | None) -> str | None:
    """``RUN/tmp/local`` of a local run folder (created), for the numpy steps'
    temporary files; None for a remote or no run folder."""
    if run_dir is None or "://" in run_dir:
        return None
    folder = Path(run_dir) / "tmp" / "local"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return str(folder)


def start_hail(config: HailConfig) -> str | None:
    """Start Hail as described by ``config`` and return the path of its log.

    When Hail is already running in this process (a test session, a notebook),
    nothing is started and ``None`` is returned.

    Raises
    ------
    EnvironmentSetupError
        Java is missing or too old, or the run folder is on ``gs://`` and the
        GCS connector is missing in local mode (checked before the JVM starts).
    """
    set_scratch_dir(_local_scratch(config.run_dir))
    if is_hail_running():
        logger.debug("Hail is already running; reusing it")
        return None
    master = config.resolved_master()
    if (
        config.run_dir is not None
        and config.run_dir.startswith("gs://")
        and master.startswith("local")
    ):
        from gwas_prs.engine.gcs_connector import check_gcs_connector

        check_gcs_connector(config.run_dir, config.spark_conf)
    check_java()
    import hail as hl

    stamp = time.strftime("%Y%m%d-%H%M%S")
    spark_conf: dict[str, str] = {
        "spark.driver.memory": config.driver_memory or default_driver_memory(),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }
    local_run = config.run_dir is not None and "://" not in config.run_dir
    log_path: str | None = None
    tmp_dir: str | None = None
    local_tmp: str | None = None
    if config.run_dir is not None:
        # The JVM writes its log to a local file: the job's own folder when the
        # Dataproc job entry point set one (it copies them into RUN/logs/JOB_TAG/
        # when the command ends), else RUN/logs for a local run folder and the
        # temporary directory for a remote one.
        if os.environ.get(LOG_DIR_ENV) or not local_run:
            log_dir = remote_run_log_dir()
        else:
            log_dir = f"{config.run_dir.rstrip('/')}/logs"
        log_path = f"{log_dir}/{config.command}-{stamp}.log"
        tmp_dir = f"{config.run_dir.rstrip('/')}/tmp/hail"
        if local_run:
            Path(log_path).parent.mkdir(parents=True, exist_ok=True)
            local_tmp = str(Path(config.run_dir) / "tmp" / "local")
            Path(local_tmp).mkdir(parents=True, exist_ok=True)
            spark_conf["spark.local.dir"] = local_tmp
    if config.quiet:
        import tempfile

        log4j = _quiet_log4j_file(local_tmp or tempfile.mkdtemp(prefix="gwas-prs-"))
        # a file: URI (percent-encoded): Spark splits Java options at spaces, so a run
        # folder path with a space would otherwise break the JVM start
        log4j_uri = Path(log4j).resolve().as_uri()
        spark_conf["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile={log4j_uri}"
        if master.startswith("local"):  # a cluster's executors must reach the driver
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    spark_conf.update(standalone_spark_conf(master))
    spark_conf.update(config.spark_conf)
    logger.info("starting Hail (%s, driver memory %s)", master, spark_conf["spark.driver.memory"])
    if master.startswith("local[") and master[6:-1].isdigit():
        limit_native_threads(int(master[6:-1]))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Hail was built and tested with Java 11")
        try:
            hl.init(
                master=master,
                app_name=f"gwas-prs {config.command}",
                log=log_path or f"/tmp/gwas-prs-{config.command}-{stamp}.log",
                quiet=config.quiet,
                show_progress=not config.quiet,
                tmp_dir=tmp_dir,
                local_tmpdir=local_tmp,
                global_seed=config.seed,
                spark_conf=spark_conf,
                idempotent=True,
            )
        except Exception as exc:
            if "JAVA_GATEWAY_EXITED" not in str(exc):
                raise
            raise EnvironmentSetupError(
                f"the Java VM for Hail exited at start-up ({master}, driver memory "
                f"{spark_conf['spark.driver.memory']}); its own message is on stderr above. "
                f"Check the Java runtime ({JAVA_INSTALL_HINT}) and lower --driver-memory if the "
                "machine has less free memory"
            ) from None
        hl.default_reference(config.reference_genome)
    return log_path


def limit_native_threads(cores: int) -> None:
    """Let numpy's BLAS use ``cores`` threads, like Spark's ``local[cores]``.

    In local mode the heaviest steps (LD, PCA, KING, logistic fits) run in numpy,
    so ``--cores 1`` must hold them to one core too.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=cores, user_api="blas")
    set_local_cores(cores)


def use_local_cores(config: HailConfig) -> None:
    """For a step that runs in numpy without starting Hail: hold it to the cores
    Hail would get from ``config`` (``--cores``). Nothing to do when Hail runs."""
    if is_hail_running():
        return
    master = config.resolved_master()
    if master.startswith("local[") and master[6:-1].isdigit():
        limit_native_threads(int(master[6:-1]))


def stop_hail() -> None:
    """Stop Hail if it is running."""
    if is_hail_running():
        import hail as hl

        hl.stop()
