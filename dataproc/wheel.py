"""Build the gwas-prs wheel and stage it, with what the nodes install, on GCS.

``hailctl dataproc start --packages`` installs packages on the master only, so
gwas-prs reaches every node another way. ``gwas-prs dataproc start`` stages

- the wheel,
- ``gwas-prs-requirements.txt``: pins (``NAME==VERSION``) of the versions of
  gwas-prs's runtime dependencies installed *here* (see :func:`node_requirements`),
- the init action ``install-gwas-prs.sh``, which runs on the master and on every
  worker exactly ``python -m pip install --no-deps WHEEL`` then
  ``python -m pip install -r REQUIREMENTS``,
- a pinned copy of every third-party init action of the profile (the GPU driver
  installer of the ``gpu`` profile),

each under a content-addressed name, ``gs://BUCKET/gwas-prs/staged/<sha256 of the
bytes>/NAME``, uploaded with ``if_generation_match=0`` ("only if absent"). An object
with such a name never changes, so a worker added later by autoscaling installs
exactly what the first nodes installed, however often ``start`` stages again or
upstream changes its scripts. The wheel's and the requirements' URIs and the versions
of gwas-prs and Hail are recorded in the cluster's metadata.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, requires, version
from importlib.resources import files
from pathlib import Path
from typing import Any

from gwas_prs import __version__
from gwas_prs.core.errors import EnvironmentSetupError, ExternalCommandError, InputError
from gwas_prs.core.processes import find_program
from gwas_prs.dataproc.cluster import StagedFiles

logger = logging.getLogger(__name__)

#: Below gs://BUCKET/: one folder per SHA-256 of the content, holding that content.
STAGED_PREFIX = "gwas-prs/staged"
INIT_ACTION_NAME = "install-gwas-prs.sh"
REQUIREMENTS_NAME = "gwas-prs-requirements.txt"
#: Not pinned for the nodes: hailctl installs Hail (and Dataproc its Spark) there.
NOT_PINNED = frozenset({"hail", "pyspark", "py4j"})
#: Shown instead of a SHA-256 that is known only once the content exists (dry runs).
UNKNOWN_DIGEST = "SHA256"
_WHEEL_NAME = re.compile(r"^gwas_prs-(?P<version>[^-]+)-py3-none-any\.whl$")
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def sha256_of_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data`` (the folder name of content-addressed objects)."""
    return hashlib.sha256(data).hexdigest()


def staged_uri(bucket: str, digest: str, name: str) -> str:
    """``gs://BUCKET/gwas-prs/staged/DIGEST/NAME``."""
    return f"gs://{bucket}/{STAGED_PREFIX}/{digest}/{name}"


@dataclass(frozen=True)
class ThirdPartyAction:
    """A third-party init action and where its pinned copy goes (known after reading it)."""

    source_uri: str

    @property
    def name(self) -> str:
        return self.source_uri.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class WheelPlan:
    """What ``start`` stages: an optional wheel build, then content-addressed uploads."""

    bucket: str
    build_argv: tuple[str, ...] | None
    wheel_path: Path
    init_action_path: Path
    requirements_text: str
    third_party: tuple[ThirdPartyAction, ...]
    gwas_prs_version: str
    hail_version: str

    def _local_uri(self, data: bytes | None, name: str) -> str:
        digest = sha256_of_bytes(data) if data is not None else UNKNOWN_DIGEST
        return staged_uri(self.bucket, digest, name)

    @property
    def wheel_uri(self) -> str:
        data = self.wheel_path.read_bytes() if self.wheel_path.is_file() else None
        return self._local_uri(data, self.wheel_path.name)

    @property
    def init_action_uri(self) -> str:
        return self._local_uri(self.init_action_path.read_bytes(), INIT_ACTION_NAME)

    @property
    def requirements_uri(self) -> str:
        return self._local_uri(self.requirements_text.encode("utf-8"), REQUIREMENTS_NAME)

    def staged(self, pinned: tuple[str, ...] | None = None) -> StagedFiles:
        """The :class:`StagedFiles` this plan produces; ``pinned``: the copies of the
        third-party init actions (placeholders ``…/SHA256/NAME`` when not yet read)."""
        if pinned is None:
            pinned = tuple(
                staged_uri(self.bucket, UNKNOWN_DIGEST, action.name) for action in self.third_party
            )
        return StagedFiles(
            wheel_uri=self.wheel_uri,
            init_action_uri=self.init_action_uri,
            gwas_prs_version=self.gwas_prs_version,
            hail_version=self.hail_version,
            requirements_uri=self.requirements_uri,
            profile_init_actions=pinned,
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


def node_requirements() -> str:
    """``gwas-prs-requirements.txt``: ``NAME==VERSION`` of every runtime dependency of
    gwas-prs as installed here (XGBoost included, so the nodes train with the XGBoost
    tested here), sorted; Hail, pyspark and py4j are left out (hailctl installs Hail
    at the matching version, the Dataproc image has its Spark).

    Raises
    ------
    EnvironmentSetupError
        gwas-prs or one of its dependencies is not installed here.
    """
    try:
        declared = requires("gwas-prs") or []
    except PackageNotFoundError as exc:
        raise EnvironmentSetupError(
            "gwas-prs is not installed in this Python ('pip install -e .'), so the versions "
            "to pin on the cluster are unknown"
        ) from exc
    pins: dict[str, str] = {}
    for requirement in declared:
        if ";" in requirement and "extra" in requirement.split(";", 1)[1]:
            continue  # optional extras (test, lint, …) are not runtime dependencies
        match = _REQUIREMENT_NAME.match(requirement)
        if match is None:
            continue
        name = match.group(1).lower().replace("_", "-")
        if name in NOT_PINNED:
            continue
        try:
            pins[name] = version(name)
        except PackageNotFoundError as exc:
            raise EnvironmentSetupError(
                f"{name}, a dependency of gwas-prs, is not installed here; reinstall gwas-prs "
                "('pip install -e .') so its version can be pinned on the cluster"
            ) from exc
    lines = [f"{name}=={pins[name]}" for name in sorted(pins)]
    header = "# gwas-prs runtime dependencies, pinned to the versions installed where 'start' ran\n"
    return header + "".join(f"{line}\n" for line in lines)


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


def plan_wheel_staging(
    bucket: str,
    out_dir: Path,
    wheel: str | None = None,
    third_party_init_actions: tuple[str, ...] = (),
) -> WheelPlan:
    """Plan the build (unless ``wheel`` is given) and the uploads to ``gs://bucket``.

    ``third_party_init_actions`` are ``gs://`` init actions (region filled in) of
    which pinned copies are staged.

    Raises
    ------
    InputError
        ``wheel`` is not a gwas-prs wheel, or there is no source tree to build
        one from and no ``wheel`` was given, or an init action is not on gs://.
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
    for action in third_party_init_actions:
        if not action.startswith("gs://") or action.endswith("/"):
            raise InputError(
                f"init action {action!r}: give a gs://BUCKET/PATH/SCRIPT object to copy and pin"
            )
    return WheelPlan(
        bucket=bucket,
        build_argv=build,
        wheel_path=wheel_path,
        init_action_path=init_action_path(),
        requirements_text=node_requirements(),
        third_party=tuple(ThirdPartyAction(a) for a in third_party_init_actions),
        gwas_prs_version=package_version,
        hail_version=installed_hail_version(),
    )


def upload_descriptions(plan: WheelPlan) -> list[str]:
    """One line per upload, for ``--dry-run`` (``SHA256``: computed once the content exists)."""
    how = "(content-addressed, only if absent, CRC32C-verified)"
    return [
        f"# upload {plan.wheel_path} -> {plan.wheel_uri} {how}",
        f"# upload {REQUIREMENTS_NAME} (pins of the local versions) -> {plan.requirements_uri} {how}",
        f"# upload {plan.init_action_path} -> {plan.init_action_uri} {how}",
        *(
            f"# copy {action.source_uri} -> {staged_uri(plan.bucket, UNKNOWN_DIGEST, action.name)} "
            f"(pinned copy) {how}"
            for action in plan.third_party
        ),
    ]


def put_content_addressed(client: Any, uri: str, data: bytes) -> str:
    """Upload ``data`` to ``uri`` (a content-addressed name) only if no object is there.

    Returns ``"uploaded"`` or ``"already staged"`` (an object of that name already holds
    these bytes: accepted as is, never rewritten).

    Raises
    ------
    ChecksumMismatchError
        The object (new or existing) does not hold ``data``.
    """
    from google.api_core.exceptions import PreconditionFailed
    from google.cloud.storage.retry import DEFAULT_RETRY

    from gwas_prs.core.gcs_staging import (
        ChecksumMismatchError,
        crc32c_of_bytes,
        parse_gcs_uri,
        verify_object,
    )

    location = parse_gcs_uri(uri)
    bucket = client.bucket(location.bucket)
    crc = crc32c_of_bytes(data)

    def check_existing() -> bool:
        existing = bucket.get_blob(location.name)
        if existing is None:
            return False
        if existing.size != len(data) or existing.crc32c != crc:
            raise ChecksumMismatchError(
                f"{uri}: an object with this content-addressed name holds other bytes; "
                "delete it ('gcloud storage rm') and start again"
            )
        return True

    if check_existing():
        status = "already staged"
    else:
        try:
            # 0 = "must not exist": retrying is safe, and nothing staged is ever replaced
            # (also when another 'start' stages the same name at the same moment).
            bucket.blob(location.name).upload_from_string(
                data, checksum="crc32c", if_generation_match=0, retry=DEFAULT_RETRY
            )
            status = "uploaded"
        except PreconditionFailed:
            if not check_existing():
                raise
            status = "already staged"
        else:
            verify_object(client, location, crc, len(data))
    logger.info("%s %s", status, uri)
    return status


def read_object(client: Any, uri: str) -> bytes:
    """The bytes of the object ``uri``.

    Raises
    ------
    ExternalCommandError
        The object cannot be read (missing, no access).
    """
    from google.api_core.exceptions import GoogleAPIError

    from gwas_prs.core.gcs_staging import parse_gcs_uri

    location = parse_gcs_uri(uri)
    try:
        return bytes(client.bucket(location.bucket).blob(location.name).download_as_bytes())
    except GoogleAPIError as exc:
        raise ExternalCommandError(
            f"could not read the init action {uri} to pin a copy of it "
            f"({type(exc).__name__}); check the region and your access to it"
        ) from exc


def stage_wheel(plan: WheelPlan, *, client: Any | None = None) -> StagedFiles:
    """Build the wheel (if planned), then stage everything the nodes install.

    Raises
    ------
    ExternalCommandError
        The build failed, or a third-party init action cannot be read.
    InputError
        The build did not produce the expected wheel.
    ChecksumMismatchError
        An upload could not be verified.
    """
    from gwas_prs.core.gcs_staging import storage_client
    from gwas_prs.core.processes import run_command

    if plan.build_argv is not None:
        plan.wheel_path.parent.mkdir(parents=True, exist_ok=True)
        run_command(plan.build_argv, what="build the gwas-prs wheel")
        if not plan.wheel_path.is_file():
            raise InputError(
                f"the wheel build did not produce {plan.wheel_path}; build it by hand and pass --wheel PATH"
            )
    client = client or storage_client()
    put_content_addressed(client, plan.wheel_uri, plan.wheel_path.read_bytes())
    put_content_addressed(client, plan.requirements_uri, plan.requirements_text.encode("utf-8"))
    put_content_addressed(client, plan.init_action_uri, plan.init_action_path.read_bytes())
    pinned = []
    for action in plan.third_party:
        data = read_object(client, action.source_uri)
        uri = staged_uri(plan.bucket, sha256_of_bytes(data), action.name)
        put_content_addressed(client, uri, data)
        pinned.append(uri)
    staged = plan.staged(tuple(pinned))
    logger.info(
        "staged %s, %s and %s", staged.wheel_uri, staged.requirements_uri, staged.init_action_uri
    )
    return staged
