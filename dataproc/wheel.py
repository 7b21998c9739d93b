"""Build the gwas-prs wheel and stage it, with its install init action, on GCS.

``hailctl dataproc start --packages`` installs packages on the master only, so
the wheel reaches every node another way: it is uploaded to
``gs://BUCKET/gwas-prs/wheels/`` and ``install-gwas-prs.sh`` (an init action,
uploaded to ``gs://BUCKET/gwas-prs/init-actions/``) pip-installs that exact
object on the master and on every worker. The wheel's URI and the versions of
gwas-prs and Hail are recorded in the cluster's metadata.
"""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from importlib.resources import files
from pathlib import Path
from typing import Any

from gwas_prs import __version__
from gwas_prs.core.errors import EnvironmentSetupError, InputError
from gwas_prs.core.processes import find_program
from gwas_prs.dataproc.cluster import StagedFiles

logger = logging.getLogger(__name__)

WHEELS_PREFIX = "gwas-prs/wheels"
INIT_ACTIONS_PREFIX = "gwas-prs/init-actions"
INIT_ACTION_NAME = "install-gwas-prs.sh"
_WHEEL_NAME = re.compile(r"^gwas_prs-(?P<version>[^-]+)-py3-none-any\.whl$")


@dataclass(frozen=True)
class WheelPlan:
    """How the wheel gets to GCS: an optional build command and two uploads."""

    build_argv: tuple[str, ...] | None
    wheel_path: Path
    wheel_uri: str
    init_action_path: Path
    init_action_uri: str
    gwas_prs_version: str
    hail_version: str

    def staged(self) -> StagedFiles:
        """The :class:`StagedFiles` this plan produces."""
        return StagedFiles(
            self.wheel_uri, self.init_action_uri, self.gwas_prs_version, self.hail_version
        )


def installed_hail_version() -> str:
    """The version of the Hail installed here (what the cluster must match).

    Raises
    ------
    EnvironmentSetupError
        Hail is not installed.
    """
    try:
        return version("hail")
    except PackageNotFoundError as exc:  # pragma: no cover - hail is a dependency
        raise EnvironmentSetupError(
            "Hail is not installed here; 'pip install hail==0.2.139' and try again"
        ) from exc


def project_root() -> Path | None:
    """The source tree of gwas-prs (where ``pyproject.toml`` is), if this is one."""
    root = Path(__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "gwas-prs"' in pyproject.read_text(encoding="utf-8"):
        return root
    return None


def init_action_path() -> Path:
    """The packaged ``install-gwas-prs.sh``."""
    return Path(str(files("gwas_prs.dataproc") / "init_actions" / INIT_ACTION_NAME))


def build_wheel_argv(root: Path, out_dir: Path) -> list[str]:
    """``uv build --wheel`` when uv is installed, else ``python -m build --wheel``."""
    if find_program("uv"):
        return ["uv", "build", "--wheel", "--out-dir", str(out_dir), str(root)]
    return [sys.executable, "-m", "build", "--wheel", "--outdir", str(out_dir), str(root)]


def plan_wheel_staging(bucket: str, out_dir: Path, wheel: str | None = None) -> WheelPlan:
    """Plan the build (unless ``wheel`` is given) and the uploads to ``gs://bucket``.

    Raises
    ------
    InputError
        ``wheel`` is not a gwas-prs wheel, or there is no source tree to build
        one from and no ``wheel`` was given.
    """
    if wheel is not None:
        wheel_path = Path(wheel)
        match = _WHEEL_NAME.match(wheel_path.name)
        if not match:
            raise InputError(
                f"{wheel}: not a gwas-prs wheel (expected gwas_prs-VERSION-py3-none-any.whl)"
            )
        if not wheel_path.is_file():
            raise InputError(
                f"{wheel}: no such file; build it with 'uv build --wheel' or leave out --wheel"
            )
        build: tuple[str, ...] | None = None
        package_version = match.group("version")
    else:
        root = project_root()
        if root is None:
            raise InputError(
                "gwas-prs is not installed from a source tree, so its wheel cannot be built here; "
                "pass --wheel PATH to a gwas_prs-*.whl"
            )
        package_version = __version__
        wheel_path = out_dir / f"gwas_prs-{package_version}-py3-none-any.whl"
        build = tuple(build_wheel_argv(root, out_dir))
    return WheelPlan(
        build_argv=build,
        wheel_path=wheel_path,
        wheel_uri=f"gs://{bucket}/{WHEELS_PREFIX}/{wheel_path.name}",
        init_action_path=init_action_path(),
        init_action_uri=f"gs://{bucket}/{INIT_ACTIONS_PREFIX}/{INIT_ACTION_NAME}",
        gwas_prs_version=package_version,
        hail_version=installed_hail_version(),
    )


def upload_descriptions(plan: WheelPlan) -> list[str]:
    """One line per upload, for ``--dry-run``."""
    return [
        f"# upload {plan.wheel_path} -> {plan.wheel_uri} (google-cloud-storage, CRC32C-verified)",
        f"# upload {plan.init_action_path} -> {plan.init_action_uri} (google-cloud-storage, CRC32C-verified)",
    ]


def stage_wheel(plan: WheelPlan, *, client: Any | None = None) -> StagedFiles:
    """Build the wheel (if planned) and upload it and the init action.

    Raises
    ------
    ExternalCommandError
        The build failed.
    InputError
        The build did not produce the expected wheel.
    ChecksumMismatchError
        An upload could not be verified.
    """
    from gwas_prs.core.gcs_staging import upload_files
    from gwas_prs.core.processes import run_command

    if plan.build_argv is not None:
        plan.wheel_path.parent.mkdir(parents=True, exist_ok=True)
        run_command(plan.build_argv, what="build the gwas-prs wheel")
        if not plan.wheel_path.is_file():
            raise InputError(
                f"the wheel build did not produce {plan.wheel_path}; build it by hand and pass --wheel PATH"
            )
    upload_files([str(plan.wheel_path)], plan.wheel_uri.rsplit("/", 1)[0], client=client)
    upload_files(
        [str(plan.init_action_path)], plan.init_action_uri.rsplit("/", 1)[0], client=client
    )
    logger.info("staged %s and %s", plan.wheel_uri, plan.init_action_uri)
    return plan.staged()
