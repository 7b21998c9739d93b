"""Cluster profiles: the YAML files in ``gwas_prs/dataproc/profiles/``.

A profile (``cpu``, ``gpu``) holds the defaults of a cluster: machine types,
worker counts, accelerators, extra init actions, metadata, pip packages and raw
``gcloud dataproc clusters create`` flags. It is data, not code: to add a
profile, drop ``NAME.yaml`` next to the others (or pass a path to a YAML file
as ``--profile``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from gwas_prs.core.errors import InputError

#: Profiles shipped with gwas-prs.
BUILTIN_PROFILES = ("cpu", "gpu")
_DURATION = re.compile(r"^\d+[smhd]$")
_ACCELERATOR = re.compile(r"^type=[a-z0-9-]+,count=[1-8]$")


@dataclass(frozen=True)
class ClusterProfile:
    """Defaults of a cluster (one YAML profile).

    Attributes
    ----------
    name:
        Profile name (the file name without ``.yaml``).
    description:
        One line shown by ``gwas-prs dataproc start --help``.
    master_machine_type, worker_machine_type:
        Compute Engine machine types.
    workers, secondary_workers:
        Primary and secondary (preemptible/Spot) worker counts.
    max_idle:
        Delete the cluster after this idle time (``30m``, ``2h``).
    init_timeout:
        Time limit of the initialization actions.
    master_accelerator, worker_accelerator:
        ``type=nvidia-tesla-t4,count=1`` or None.
    init_actions:
        Extra ``gs://`` init actions, run before the gwas-prs install;
        ``{region}`` is replaced by the cluster's region.
    metadata:
        Extra instance metadata.
    pip_packages:
        Extra pip packages installed on every node after the wheel and its pinned
        requirements (gwas-prs-requirements.txt).
    gcloud_args:
        Extra ``gcloud dataproc clusters create`` flags (``--flag=value``).
    """

    name: str
    description: str = ""
    master_machine_type: str = "n1-highmem-8"
    worker_machine_type: str = "n1-standard-8"
    workers: int = 2
    secondary_workers: int = 0
    max_idle: str | None = "30m"
    init_timeout: str = "20m"
    master_accelerator: str | None = None
    worker_accelerator: str | None = None
    init_actions: tuple[str, ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()
    pip_packages: tuple[str, ...] = ()
    gcloud_args: tuple[str, ...] = ()

    @property
    def has_accelerators(self) -> bool:
        return bool(self.master_accelerator or self.worker_accelerator)


def profile_path(profile: str) -> Path:
    """The YAML file of a built-in profile name, or ``profile`` itself if it is a file.

    Raises
    ------
    InputError
        Neither a built-in profile nor an existing YAML file.
    """
    candidate = Path(profile)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate
    if profile in BUILTIN_PROFILES:
        return Path(str(files("gwas_prs.dataproc") / "profiles" / f"{profile}.yaml"))
    raise InputError(
        f"unknown cluster profile '{profile}'; use one of {', '.join(BUILTIN_PROFILES)} or a path to a profile YAML file"
    )


def _check_str(source: Path, key: str, value: Any, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise InputError(f"{source}: '{key}' must be a non-empty string, not {value!r}")
    return value


def _check_list(source: Path, key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InputError(f"{source}: '{key}' must be a list of strings, not {value!r}")
    return tuple(value)


def parse_profile(name: str, data: Any, source: Path) -> ClusterProfile:
    """Validate the YAML content of a profile.

    Raises
    ------
    InputError
        Unknown keys or values of the wrong type/format; the message names the
        file and the key.
    """
    if not isinstance(data, dict):
        raise InputError(f"{source}: a cluster profile must be a YAML mapping")
    known = {f.name for f in fields(ClusterProfile)} - {"name"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(
            f"{source}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}"
        )
    for key in ("workers", "secondary_workers"):
        value = data.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InputError(f"{source}: '{key}' must be a whole number ≥ 0, not {value!r}")
    for key in ("max_idle", "init_timeout"):
        value = data.get(key)
        if value is not None and not (isinstance(value, str) and _DURATION.match(value)):
            raise InputError(
                f"{source}: '{key}' must be a duration such as 30m or 2h, not {value!r}"
            )
    for key in ("master_accelerator", "worker_accelerator"):
        value = data.get(key)
        if value is not None and not (isinstance(value, str) and _ACCELERATOR.match(value)):
            raise InputError(
                f"{source}: '{key}' must look like type=nvidia-tesla-t4,count=1, not {value!r}"
            )
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise InputError(f"{source}: 'metadata' must be a mapping of KEY: VALUE")
    pairs = tuple((str(k), str(v)) for k, v in metadata.items())
    defaults = ClusterProfile(name=name)
    return ClusterProfile(
        name=name,
        description=str(data.get("description", "")),
        master_machine_type=str(
            _check_str(
                source,
                "master_machine_type",
                data.get("master_machine_type", defaults.master_machine_type),
            )
        ),
        worker_machine_type=str(
            _check_str(
                source,
                "worker_machine_type",
                data.get("worker_machine_type", defaults.worker_machine_type),
            )
        ),
        workers=int(data.get("workers", defaults.workers)),
        secondary_workers=int(data.get("secondary_workers", defaults.secondary_workers)),
        max_idle=data.get("max_idle", defaults.max_idle),
        init_timeout=str(data.get("init_timeout", defaults.init_timeout)),
        master_accelerator=data.get("master_accelerator"),
        worker_accelerator=data.get("worker_accelerator"),
        init_actions=_check_list(source, "init_actions", data.get("init_actions")),
        metadata=pairs,
        pip_packages=_check_list(source, "pip_packages", data.get("pip_packages")),
        gcloud_args=_check_list(source, "gcloud_args", data.get("gcloud_args")),
    )


def load_profile(profile: str) -> ClusterProfile:
    """Load a built-in profile (``cpu``, ``gpu``) or a profile YAML file.

    Raises
    ------
    InputError
        The profile does not exist or is invalid.
    """
    path = profile_path(profile)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({exc}); fix the profile file") from exc
    name = profile if profile in BUILTIN_PROFILES else path.stem
    return parse_profile(name, data, path)
