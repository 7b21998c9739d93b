"""Reference genomes without a JVM: contig names, lengths and ``chr`` recoding.

Hail keeps its built-in reference genomes as JSON inside its jar. Reading them
from there (a zip file) lets input validation check contigs and positions in
seconds, before Hail is started, with exactly the contigs Hail will accept.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from gwas_prs.core.errors import InputError
from gwas_prs.core.stage_options import INGEST

SUPPORTED_REFERENCES: tuple[str, ...] = INGEST.choices("reference-genome")
_RESOURCE = {"GRCh37": "reference/grch37.json", "GRCh38": "reference/grch38.json"}


@dataclass(frozen=True)
class ReferenceContigs:
    """Contigs of a reference genome and how other spellings map onto them.

    ``recoding`` maps alternative names seen in VCFs (``chr1`` for GRCh37,
    ``1`` for GRCh38, ``chrM``/``MT``) to the reference's own names.
    """

    name: str
    lengths: dict[str, int]
    recoding: dict[str, str]
    autosomes: tuple[str, ...]
    x_contigs: tuple[str, ...]
    y_contigs: tuple[str, ...]
    mt_contigs: tuple[str, ...]

    def resolve(self, contig: str) -> str | None:
        """The reference's name for ``contig``, or None if it is unknown."""
        if contig in self.lengths:
            return contig
        return self.recoding.get(contig)


def _hail_jar() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("hail")
    if spec is None or spec.origin is None:  # pragma: no cover - hail is a dependency
        raise InputError("Hail is not installed; install gwas-prs with its dependencies")
    return Path(spec.origin).parent / "backend" / "hail-all-spark.jar"


def _primary_recoding(names: list[str], mt_name: str) -> dict[str, str]:
    recoding: dict[str, str] = {}
    for name in names:
        if name.startswith("chr"):
            recoding[name[3:]] = name
        else:
            recoding[f"chr{name}"] = name
    for alias in ("M", "MT", "chrM", "chrMT"):
        if alias != mt_name:
            recoding[alias] = mt_name
    return recoding


@cache
def reference_contigs(name: str) -> ReferenceContigs:
    """Load ``GRCh37`` or ``GRCh38`` from Hail's jar.

    Raises
    ------
    InputError
        ``name`` is not a supported reference genome.
    """
    if name not in _RESOURCE:
        raise InputError(
            f"reference genome '{name}' is not supported; use one of {', '.join(SUPPORTED_REFERENCES)}"
        )
    with zipfile.ZipFile(_hail_jar()) as jar:
        data = json.loads(jar.read(_RESOURCE[name]))
    lengths = {c["name"]: int(c["length"]) for c in data["contigs"]}
    x = tuple(data["xContigs"])
    y = tuple(data["yContigs"])
    mt = tuple(data["mtContigs"])
    primary = [
        n
        for n in lengths
        if n.removeprefix("chr") in {str(i) for i in range(1, 23)} | {"X", "Y", "M", "MT"}
    ]
    autosomes = tuple(n for n in primary if n.removeprefix("chr").isdigit())
    recoding = _primary_recoding(primary, mt[0])
    recoding = {k: v for k, v in recoding.items() if k not in lengths}
    return ReferenceContigs(name, lengths, recoding, autosomes, x, y, mt)
