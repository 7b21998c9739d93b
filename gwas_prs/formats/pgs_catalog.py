"""PGS Catalog scoring files (format 2.0) and allele harmonisation.

- :func:`read_scoring_file` reads a scoring file from the PGS Catalog or another
  tool (plain or gzip), with its ``#key=value`` header;
- :func:`write_scoring_file` writes the project's clumped weights in the same
  format (one file per p-value threshold);
- :func:`harmonise` lines the weights up with the cohort's variants (match,
  allele swap, strand flip, palindromic A/T C/G SNPs) and reports the match
  rate by category, failing below a minimum overlap.

Only pandas is used (vectorised merges, no loop over variants): no JVM here.
"""

from __future__ import annotations

import gzip
import io
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import pandas as pd

from gwas_prs.core import storage
from gwas_prs.core.errors import InputError

logger = logging.getLogger(__name__)

BANNER = (
    "###PGS CATALOG SCORING FILE - see https://www.pgscatalog.org/downloads/#dl_ftp_scoring "
    "for additional information"
)
FORMAT_VERSION = "2.0"
WRITE_COLUMNS = (
    "rsID",
    "chr_name",
    "chr_position",
    "effect_allele",
    "other_allele",
    "effect_weight",
)
#: Harmonisation categories, in the order they are reported.
CATEGORIES = (
    "match",
    "swap",
    "flip",
    "flip_swap",
    "palindromic_dropped",
    "allele_mismatch",
    "not_found",
)
KEPT_CATEGORIES = ("match", "swap", "flip", "flip_swap")
_TRUE = ("true", "1", "yes", "t")

_CHROM_ALIASES = {"23": "X", "24": "Y", "25": "MT", "M": "MT"}
_COMPLEMENT = str.maketrans("ACGTacgt", "TGCAtgca")


def _per_unique(values: Any, func: Callable[[str], str | None]) -> np.ndarray:
    """``func`` of every value, computed once per distinct value (missing stays None)."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    mapped = np.array([*(func(str(u)) for u in uniques), None], dtype=object)
    return mapped[codes]  # code -1 (missing) picks the trailing None


def _contig_key(name: str) -> str:
    key = name.strip().upper()
    key = key[3:] if key.startswith("CHR") else key
    return _CHROM_ALIASES.get(key, key)


def _allele_key(allele: str) -> str | None:
    return allele.strip().upper() or None


@dataclass(frozen=True)
class ScoringFile:
    """A checked scoring file.

    ``header`` holds the ``#key=value`` lines (keys without ``#``; the
    ``##SECTION`` and banner lines are dropped). ``frame`` has one row per
    variant, see :func:`read_scoring_file`.
    """

    path: str
    header: dict[str, str]
    frame: pd.DataFrame

    @property
    def genome_build(self) -> str | None:
        """The build of ``frame``'s positions: ``HmPOS_build`` when harmonised positions are used."""
        if "hm_pos" in self.frame.columns and self.header.get("HmPOS_build"):
            return self.header["HmPOS_build"]
        return self.header.get("genome_build")


@dataclass(frozen=True)
class ScoringMetadata:
    """The header of a scoring file written by :func:`write_scoring_file`.

    ``extra`` adds ``#key=value`` lines after the standard ones (e.g. the
    clumping parameters and p-value threshold that produced the weights).
    """

    pgs_name: str
    trait_reported: str
    genome_build: str  # GRCh37, GRCh38 or NR
    pgs_id: str = "NR"
    weight_type: str = "beta"
    trait_mapped: str = ""
    trait_efo: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Harmonised:
    """Weights aligned to the cohort, see :func:`harmonise`."""

    frame: pd.DataFrame
    counts: dict[str, int]
    match_rate: float
    n_total: int

    def summary(self) -> str:
        """One line: the match rate and the count of every category."""
        parts = ", ".join(f"{c.replace('_', ' ')} {self.counts[c]:,}" for c in CATEGORIES)
        return f"{self.match_rate:.1%} of {self.n_total:,} weights match the cohort ({parts})"


def _open_text(path: str) -> IO[str]:
    """``path`` (local or remote, plain or gzip: detected from its first bytes) as text."""
    with storage.open_binary(path, "rb") as raw:
        magic = raw.read(2)
    binary = storage.open_binary(path, "rb")
    if magic == b"\x1f\x8b":
        binary = gzip.GzipFile(filename="", mode="rb", fileobj=binary)
    return io.TextIOWrapper(binary, encoding="utf-8", newline="")


def read_scoring_file(path: str) -> ScoringFile:
    """Read a PGS Catalog scoring file (format 2.0; format 1.0 column names accepted).

    The file is plain text or gzip (detected from its bytes). Header lines
    ``#key=value`` (``#pgs_id``, ``#pgs_name``, ``#trait_reported``,
    ``#genome_build``, ``#variants_number``, ``#weight_type``, ``#HmPOS_build``…)
    go into ``header``; then comes a tab-separated table. ``frame`` keeps every
    column of the file, as strings unless listed here:

    - ``chr_name`` (str) and ``chr_position`` (Int64, may be missing): taken from
      ``hm_chr``/``hm_pos`` when the file has them (a PGS Catalog harmonised
      file, whose positions are in ``HmPOS_build``; the author-reported columns
      are then kept as ``reported_chr_name``/``reported_chr_position``), else
      from ``chr_name``/``chr_position``;
    - ``effect_allele`` (str, upper case) and ``other_allele`` (str, upper case,
      missing when the file has none; a format 1.0 ``reference_allele`` column
      is used as ``other_allele``, and so is a single-allele
      ``hm_inferOtherAllele`` when there is no other allele column);
    - ``effect_weight`` (float64);
    - ``allelefrequency_effect`` (float64), ``is_interaction`` (bool), when present.

    A ``#variants_number`` that differs from the rows read is logged as a
    warning. Rows with ``is_interaction`` true are then dropped with a warning
    (interaction terms are not additive). The genome build is not checked here:
    :func:`harmonise` (or :func:`check_genome_build`) compares it with the cohort's.

    Raises
    ------
    InputError
        The file is missing or empty; lacks ``effect_allele``, ``effect_weight``
        or positions (``chr_name`` + ``chr_position`` or ``hm_chr`` + ``hm_pos``;
        an rsID-only file must be harmonised first, e.g. the PGS Catalog's
        ``_hmPOS_GRCh38`` download); has a non-numeric weight or position (with
        its line number); only has non-additive (dosage) weights; or lists a variant
        twice with the effect and other alleles swapped (directly or on the other
        strand: the score would add both weights; the message names both lines).
    """
    if not storage.exists(path) or storage.is_dir(path):
        raise InputError(f"{path}: scoring file not found")
    header: dict[str, str] = {}
    line_number = 0
    with _open_text(path) as handle:
        try:
            columns_line = ""
            for line in handle:
                line_number += 1
                if line.startswith("#"):
                    key, sep, value = line.lstrip("#").rstrip("\r\n").partition("=")
                    if sep and not line.startswith("##"):
                        header[key.strip()] = value.strip()
                    continue
                if line.strip():
                    columns_line = line
                    break
            if not columns_line:
                raise InputError(
                    f"{path}:{line_number or 1}: the scoring file is empty (no column header); "
                    "expected rsID, chr_name, chr_position, effect_allele, effect_weight…"
                )
            columns = [c.strip() for c in columns_line.rstrip("\r\n").split("\t")]
            try:
                frame = pd.read_csv(
                    handle,
                    sep="\t",
                    header=None,
                    names=columns,
                    dtype=str,
                    keep_default_na=False,
                    na_values=[""],
                    skip_blank_lines=False,
                )
            except pd.errors.EmptyDataError:
                frame = pd.DataFrame(columns=columns, dtype=str)
        except (UnicodeDecodeError, EOFError, OSError, ValueError) as exc:
            raise InputError(f"{path}: cannot be read as a scoring file ({exc})") from exc
    lines = pd.Series(np.arange(len(frame)) + line_number + 1, index=frame.index)
    blank = frame.isna().all(axis=1)
    frame, lines = frame[~blank].reset_index(drop=True), lines[~blank].reset_index(drop=True)
    if frame.empty:
        raise InputError(f"{path}:{line_number}: no variants after the column header")
    return ScoringFile(path=path, header=header, frame=_check_columns(path, frame, lines, header))


def _numeric(path: str, frame: pd.DataFrame, lines: pd.Series, column: str) -> pd.Series:
    values = pd.to_numeric(frame[column].str.strip(), errors="coerce")
    bad = values.isna() & frame[column].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"{path}:{lines.iloc[row]}: {column} '{frame[column].iloc[row]}' is not a number; "
            "fix or remove the line"
        )
    # pd.to_numeric can be off by an ulp; float() parsing is exact
    return frame[column].str.strip().astype("float64")


def _check_columns(
    path: str, frame: pd.DataFrame, lines: pd.Series, header: dict[str, str]
) -> pd.DataFrame:
    columns = set(frame.columns)
    if "other_allele" not in columns and "reference_allele" in columns:
        frame = frame.rename(columns={"reference_allele": "other_allele"})
    if "effect_weight" not in columns:
        if columns & {"dosage_0_weight", "dosage_1_weight", "dosage_2_weight"}:
            raise InputError(
                f"{path}: has dosage-specific weights (dosage_0/1/2_weight) and no effect_weight; "
                "only additive scores are supported"
            )
        raise InputError(f"{path}: no effect_weight column; a scoring file needs one")
    if "effect_allele" not in columns:
        raise InputError(f"{path}: no effect_allele column; a scoring file needs one")
    if {"hm_chr", "hm_pos"} <= columns:
        chrom, pos = "hm_chr", "hm_pos"
    elif {"chr_name", "chr_position"} <= columns:
        chrom, pos = "chr_name", "chr_position"
    else:
        what = "only rsIDs" if "rsID" in columns else "no chr_name/chr_position columns"
        raise InputError(
            f"{path}: has {what}; positions are required (chr_name and chr_position, or hm_chr "
            "and hm_pos): download the harmonised file (…_hmPOS_GRCh37/38.txt.gz) instead"
        )
    declared = header.get("variants_number")
    if declared is not None and declared.strip().isdigit() and int(declared) != len(frame):
        logger.warning(
            "%s: header says variants_number=%s but %d variant rows were read",
            path,
            declared,
            len(frame),
        )
    weights = _numeric(path, frame, lines, "effect_weight")
    if weights.isna().any():
        row = int(np.flatnonzero(weights.isna().to_numpy())[0])
        raise InputError(
            f"{path}:{lines.iloc[row]}: effect_weight is empty; fix or remove the line"
        )
    frame["effect_weight"] = weights.astype("float64")
    positions = _numeric(path, frame, lines, pos)
    if chrom == "hm_chr":  # keep the author-reported coordinates under other names
        frame = frame.rename(
            columns={"chr_name": "reported_chr_name", "chr_position": "reported_chr_position"}
        )
    frame["chr_position"] = positions.astype("Int64")
    frame["chr_name"] = _per_unique(frame[chrom], lambda name: name.strip() or None)
    frame["effect_allele"] = _per_unique(frame["effect_allele"], _allele_key)
    if "other_allele" not in frame.columns and "hm_inferOtherAllele" in frame.columns:
        # PGS Catalog's inferred other allele, used when it is a single allele ("A", not "A/G")
        inferred = frame["hm_inferOtherAllele"]
        frame["other_allele"] = inferred.where(~inferred.fillna("/").str.contains("/"), None)
    if "other_allele" in frame.columns:
        frame["other_allele"] = _per_unique(frame["other_allele"], _allele_key)
    else:
        frame["other_allele"] = pd.Series(pd.NA, index=frame.index, dtype=object)
    if "allelefrequency_effect" in frame.columns:
        frame["allelefrequency_effect"] = _numeric(path, frame, lines, "allelefrequency_effect")
    if "is_interaction" in frame.columns:
        interaction = frame["is_interaction"].fillna("").str.strip().str.lower().isin(_TRUE)
        if interaction.any():
            logger.warning(
                "%s: dropping %d interaction term(s) (is_interaction=True); they are not additive",
                path,
                int(interaction.sum()),
            )
        frame = frame[~interaction].reset_index(drop=True)
        lines = lines[~interaction.to_numpy()].reset_index(drop=True)
        frame["is_interaction"] = False
    _check_swapped_duplicates(path, frame, lines)
    return frame


def _check_swapped_duplicates(path: str, frame: pd.DataFrame, lines: pd.Series) -> None:
    """Refuse a variant listed twice with the effect and other alleles swapped.

    Two rows at one contig:position whose alleles are the same pair, the effect
    allele of one being the other allele of the other (directly or on the other
    strand: ``A/G`` and ``G/A`` or ``C/T``), weight opposite alleles of one variant;
    the score would add both. Rows without an other allele cannot be told apart from
    the alleles of a multi-allelic site and are left alone, as are exact repeats.
    """
    position = frame["chr_position"]
    has_alleles = (
        position.notna().to_numpy()
        & frame["effect_allele"].notna().to_numpy()
        & frame["other_allele"].notna().to_numpy()
        & frame["chr_name"].notna().to_numpy()
    )
    if not has_alleles.any():
        return
    rows = np.flatnonzero(has_alleles)
    contigs = _per_unique(frame["chr_name"].to_numpy()[rows], _contig_key)
    positions = position.to_numpy()
    sites = pd.DataFrame({"contig": contigs, "position": positions[rows]})
    repeated = sites.duplicated(keep=False).to_numpy()
    if not repeated.any():
        return
    line_of = lines.to_numpy()
    first_seen: dict[tuple[object, ...], tuple[int, bool]] = {}
    for row, contig in zip(rows[repeated], contigs[repeated], strict=True):  # in file order
        effect = str(frame["effect_allele"].iat[row])
        other = str(frame["other_allele"].iat[row])
        forward = (effect, other)
        reverse = (effect.translate(_COMPLEMENT)[::-1], other.translate(_COMPLEMENT)[::-1])
        site = int(positions[row])
        # a palindromic pair (A/T) is its own reverse complement: compare it forward only
        pairs = [forward] if sorted(reverse) == sorted(forward) else [forward, reverse]
        # one key per variant and strand; the value says which allele of the pair is the effect
        keys = [((str(contig), site, *sorted(pair)), pair[0] <= pair[1]) for pair in pairs]
        for key, effect_first in keys:
            if key in first_seen and first_seen[key][1] != effect_first:
                earlier = first_seen[key][0]
                raise InputError(
                    f"{path}:{int(line_of[row])}: variant {frame['chr_name'].iat[earlier]}:{site} "
                    f"appears twice with swapped effect alleles "
                    f"({_describe(frame, int(line_of[earlier]), earlier)}; "
                    f"{_describe(frame, int(line_of[row]), row)}); the score would add both weights "
                    "— keep one line"
                )
        for key, effect_first in keys:
            first_seen.setdefault(key, (int(row), effect_first))


def _describe(frame: pd.DataFrame, line: int, row: int) -> str:
    weight = float(frame["effect_weight"].to_numpy(dtype="float64")[row])
    return (
        f"line {line}: effect {frame['effect_allele'].iat[row]}, "
        f"other {frame['other_allele'].iat[row]}, weight {weight:g}"
    )


def write_scoring_file(frame: pd.DataFrame, path: str, metadata: ScoringMetadata) -> str:
    """Write weights as a PGS Catalog scoring file, format 2.0.

    ``frame`` columns: ``chr_name`` (str), ``chr_position`` (int),
    ``effect_allele``, ``effect_weight`` (float; one weight column – write one
    file per p-value threshold), optional ``rsID``, ``other_allele`` (str) and
    ``allelefrequency_effect`` (float). The file gets the banner,
    ``#format_version=2.0``, ``#pgs_id``, ``#pgs_name``, ``#trait_reported``,
    ``#trait_mapped``, ``#trait_efo``, ``#genome_build``, ``#weight_type``,
    ``#variants_number`` (the row count) and ``metadata.extra``, then the columns
    ``rsID chr_name chr_position effect_allele other_allele effect_weight``
    (+ ``allelefrequency_effect``) in the frame's row order. Missing values are
    empty fields; floats are written exactly (shortest round-trip text). The
    file is gzip-compressed when ``path`` ends in ``.gz`` and written to a
    temporary sibling, then moved into place. Returns ``path``.
    """
    for column in ("chr_name", "chr_position", "effect_allele", "effect_weight"):
        if column not in frame.columns:
            raise ValueError(f"weights frame lacks column {column}")
    table = pd.DataFrame(index=frame.index)
    for column in WRITE_COLUMNS:
        table[column] = frame[column] if column in frame.columns else pd.NA
    table["chr_position"] = table["chr_position"].astype("Int64")
    table["effect_weight"] = table["effect_weight"].astype("float64")
    if "allelefrequency_effect" in frame.columns:
        table["allelefrequency_effect"] = frame["allelefrequency_effect"].astype("float64")
    lines = [
        BANNER,
        f"#format_version={FORMAT_VERSION}",
        "##POLYGENIC SCORE (PGS) INFORMATION",
        f"#pgs_id={metadata.pgs_id}",
        f"#pgs_name={metadata.pgs_name}",
        f"#trait_reported={metadata.trait_reported}",
        f"#trait_mapped={metadata.trait_mapped}",
        f"#trait_efo={metadata.trait_efo}",
        f"#genome_build={metadata.genome_build}",
        f"#variants_number={len(table)}",
        f"#weight_type={metadata.weight_type}",
    ]
    if metadata.extra:
        lines.append("##SOURCE INFORMATION")
        lines.extend(f"#{key}={value}" for key, value in metadata.extra.items())
    with storage.atomic_writer(path) as raw:
        binary = (
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)
            if path.endswith(".gz")
            else raw
        )
        with io.TextIOWrapper(binary, encoding="utf-8", newline="") as text:
            text.write("\n".join(lines) + "\n")
            table.to_csv(text, sep="\t", index=False, na_rep="", lineterminator="\n")
    logger.info("wrote %s (%d weights)", path, len(table))
    return path


#: Genome build names and their aliases (upper case, without a ``.pN`` patch suffix).
_BUILD_ALIASES = {
    "GRCH37": "GRCh37",
    "HG19": "GRCh37",
    "B37": "GRCh37",
    "NCBI37": "GRCh37",
    "37": "GRCh37",
    "GRCH38": "GRCh38",
    "HG38": "GRCh38",
    "B38": "GRCh38",
    "38": "GRCh38",
    "NCBI36": "NCBI36",
    "HG18": "NCBI36",
    "B36": "NCBI36",
    "36": "NCBI36",
}
#: Values of ``#genome_build`` that mean "not reported".
_UNREPORTED_BUILDS = {"", "NR", "NA", "N/A", "NONE", "UNKNOWN", "NOT REPORTED"}


def canonical_build(build: str | None) -> str | None:
    """``GRCh37``, ``GRCh38`` or ``NCBI36`` for a build name or alias (``hg19``, ``b37``,
    ``GRCh37/hg19``, ``GRCh37.p13``…); None when not reported (``NR``, empty, None);
    otherwise the text as given."""
    if build is None or build.strip().upper() in _UNREPORTED_BUILDS:
        return None
    parts = [re.sub(r"\.P\d+$", "", p.strip().upper()) for p in build.split("/") if p.strip()]
    names = {_BUILD_ALIASES.get(p) for p in parts}
    if len(names) == 1 and None not in names:
        return names.pop()
    return build.strip()


def check_genome_build(
    weights_build: str | None,
    cohort_build: str | None,
    *,
    source: str = "weights",
    allow_build_mismatch: bool = False,
) -> None:
    """Refuse weights whose positions are on another genome build than the cohort's.

    Builds are compared after :func:`canonical_build` (``hg19`` = ``GRCh37``). Nothing
    is checked without ``cohort_build``; a build that is not reported is logged as a
    warning, and so is a mismatch with ``allow_build_mismatch=True``.

    Raises
    ------
    InputError
        The builds differ and ``allow_build_mismatch`` is False.
    """
    if cohort_build is None:
        return
    weights, cohort = canonical_build(weights_build), canonical_build(cohort_build)
    if weights is None:
        logger.warning(
            "%s: the genome build is not reported (#genome_build=%s); its positions are "
            "assumed to be on %s",
            source,
            weights_build or "",
            cohort,
        )
        return
    if weights == cohort:
        return
    if allow_build_mismatch:
        logger.warning(
            "%s: positions on %s scored against a cohort on %s (build mismatch allowed)",
            source,
            weights,
            cohort,
        )
        return
    raise InputError(
        f"{source}: the scoring file's positions are on {weights} (#genome_build / "
        f"#HmPOS_build) but the cohort is on {cohort}; use the file harmonised to {cohort} "
        f"(PGS Catalog …_hmPOS_{cohort}.txt.gz) or pass --allow-build-mismatch"
    )


def normalise_contig(names: pd.Series) -> pd.Series:
    """Contig names without ``chr``, upper case, 23/24/25/M as X/Y/MT (for matching only)."""
    return pd.Series(_per_unique(names, _contig_key), index=names.index, dtype=object)


def harmonise(
    weights: pd.DataFrame,
    variants: pd.DataFrame,
    *,
    allow_palindromic: bool = False,
    min_overlap: float = 0.5,
    source: str = "weights",
    weights_build: str | None = None,
    cohort_build: str | None = None,
    allow_build_mismatch: bool = False,
) -> Harmonised:
    """Align score weights to the cohort's variants and classify every weight.

    Each weight row (``chr_name`` str with or without ``chr``, ``chr_position``
    int, ``effect_allele``, ``other_allele`` – may be missing – and
    ``effect_weight``) is looked up by contig and position among ``variants``
    (the cohort, bi-allelic after splitting: ``contig`` str as in the cohort,
    ``position`` int, ``ref``, ``alt``). Contigs match with or without ``chr``;
    alleles are compared in upper case. Each weight gets one category:

    - ``match``: effect = alt and other = ref;
    - ``swap``: effect = ref and other = alt (the weight is for the REF allele);
    - ``flip``: on the other strand, reverse-complement(effect) = alt and
      reverse-complement(other) = ref;
    - ``flip_swap``: reverse-complement(effect) = ref, reverse-complement(other) = alt;
    - ``palindromic_dropped``: an A/T or C/G SNP, whose strand cannot be told
      from the alleles; with ``allow_palindromic=True`` these are kept as
      ``match``/``swap`` on the forward strand (never flipped);
    - ``allele_mismatch``: the position is in the cohort but no row's alleles fit;
    - ``not_found``: no cohort variant at that contig and position (or no position).

    When ``other_allele`` is missing, only the effect allele is compared
    (effect = alt → ``match``, = ref → ``swap``, else its reverse complement →
    ``flip``/``flip_swap``) and the site counts as palindromic when the
    cohort's ref/alt pair is A/T or C/G. At a multi-allelic position (several
    cohort rows at one contig:position) the row whose alleles fit is chosen,
    preferring match > swap > flip > flip_swap > palindromic.

    Returns
    -------
    Harmonised
        ``frame``: one row per kept weight, in the weights' order, with
        ``contig`` (str, the cohort's name), ``position`` (int64), ``ref``,
        ``alt`` (str, the cohort's alleles), ``effect_allele`` (str: the cohort
        allele that carries the weight, after any strand flip – ``alt`` or
        ``ref``), ``effect_weight`` (float64, as in the file, never negated),
        ``effect_is_alt`` (bool: True for match/flip; False for swap/flip_swap,
        where the weight applies to REF, i.e. to 2 − ALT dosage: the scorer adds
        ``weight × (2 − dosage)``) and ``category`` (str). ``counts``: every
        category of :data:`CATEGORIES` (zeros included); ``match_rate``: kept /
        ``n_total`` (all weight rows).

    ``weights_build`` (the file's ``#genome_build``, or ``#HmPOS_build`` for
    harmonised positions: :attr:`ScoringFile.genome_build`) and ``cohort_build``
    are first compared by :func:`check_genome_build`: a different build is refused
    unless ``allow_build_mismatch=True``, even when the positions happen to overlap
    well; a build that is not reported (``NR``) is only a warning.

    Raises
    ------
    InputError
        The genome builds differ (see above); ``match_rate < min_overlap``, the
        message gives the counts and points at the genome build.

    Warning
    -------
    A low ``flip`` count with many ``allele_mismatch`` or ``not_found`` usually
    means a different genome build, not strand problems. Duplicate weight rows
    for one variant are all kept (their weights add up in the score);
    :func:`read_scoring_file` refuses those with swapped effect alleles.
    """
    check_genome_build(
        weights_build, cohort_build, source=source, allow_build_mismatch=allow_build_mismatch
    )
    n_total = len(weights)
    other = weights["other_allele"] if "other_allele" in weights.columns else [None] * n_total
    w_alleles = (
        _per_unique(weights["effect_allele"], _allele_key),
        _per_unique(other, _allele_key),
    )
    v_alleles = (
        _per_unique(variants["ref"], _allele_key),
        _per_unique(variants["alt"], _allele_key),
    )
    # one integer code per allele string (and its reverse complement): compare ints, not strings
    distinct = {a for column in (*w_alleles, *v_alleles) for a in pd.unique(column) if a}
    vocabulary = pd.Index(sorted(distinct | {a.translate(_COMPLEMENT)[::-1] for a in distinct}))
    complement = vocabulary.get_indexer([a.translate(_COMPLEMENT)[::-1] for a in vocabulary])
    single_base = np.array([len(a) == 1 for a in vocabulary])
    ea, oa = (vocabulary.get_indexer(column) for column in w_alleles)
    ref, alt = (vocabulary.get_indexer(column) for column in v_alleles)
    # one int64 key per contig:position on both sides
    contig_codes, _ = pd.factorize(
        np.concatenate(
            [
                _per_unique(weights["chr_name"], _contig_key),
                _per_unique(variants["contig"], _contig_key),
            ]
        )
    )
    position = pd.to_numeric(weights["chr_position"]).astype("Int64")
    w_key = contig_codes[:n_total].astype("int64") << 40
    w_key = w_key + position.fillna(0).to_numpy(dtype="int64")
    has_position = position.notna().to_numpy()
    v_key = (contig_codes[n_total:].astype("int64") << 40) + variants["position"].to_numpy(
        dtype="int64"
    )
    pairs = pd.DataFrame({"_row": np.flatnonzero(has_position), "_key": w_key[has_position]}).merge(
        pd.DataFrame({"_v": np.arange(len(variants)), "_key": v_key}), on="_key", how="inner"
    )
    row, vrow = pairs["_row"].to_numpy(), pairs["_v"].to_numpy()
    # a missing allele gets its own negative code, so that it never equals another one
    e, o = np.where(ea >= 0, ea, -2)[row], oa[row]
    r, a = np.where(ref >= 0, ref, -3)[vrow], np.where(alt >= 0, alt, -4)[vrow]
    has_oa = o >= 0
    rc_e = np.where(e >= 0, complement[np.maximum(e, 0)], -5)
    rc_o = np.where(has_oa, complement[np.maximum(o, 0)], -6)
    rc_a = np.where(a >= 0, complement[np.maximum(a, 0)], -7)
    is_match = (e == a) & (~has_oa | (o == r))
    is_swap = (e == r) & (~has_oa | (o == a))
    is_flip = (rc_e == a) & (~has_oa | (rc_o == r))
    is_flip_swap = (rc_e == r) & (~has_oa | (rc_o == a))
    fits = is_match | is_swap | is_flip | is_flip_swap
    palindromic = fits & np.where(
        has_oa,
        (o == rc_e) & single_base[np.maximum(e, 0)],
        (r == rc_a) & single_base[np.maximum(a, 0)],
    )
    rank = np.select(
        [palindromic, is_match, is_swap, is_flip, is_flip_swap], [4, 0, 1, 2, 3], default=5
    )
    order = np.lexsort((rank, row))
    first = order[np.r_[True, row[order][1:] != row[order][:-1]]] if len(order) else order
    best_row, best_v, best_rank = row[first], vrow[first], rank[first]
    effect_is_alt = np.isin(best_rank, (0, 2))
    if allow_palindromic:
        pal = best_rank == 4
        forward_alt = e[first] == a[first]
        effect_is_alt[pal] = forward_alt[pal]
        best_rank = np.where(pal, np.where(forward_alt, 0, 1), best_rank)
        if pal.any():
            logger.info("%s: kept %d palindromic weight(s) unflipped", source, int(pal.sum()))
    names = np.array(CATEGORIES)
    tally = np.bincount(best_rank, minlength=7)
    counts = {c: int(tally[i]) for i, c in enumerate(CATEGORIES)}
    counts["not_found"] = n_total - len(best_row)
    keep = best_rank < 4  # rows are already in the weights' order
    cohort = variants.iloc[best_v[keep]]
    ref_text = cohort["ref"].astype(str).to_numpy()
    alt_text = cohort["alt"].astype(str).to_numpy()
    frame = pd.DataFrame(
        {
            "contig": cohort["contig"].astype(str).to_numpy(),
            "position": cohort["position"].to_numpy(dtype="int64"),
            "ref": ref_text,
            "alt": alt_text,
            "effect_allele": np.where(effect_is_alt[keep], alt_text, ref_text),
            "effect_weight": weights["effect_weight"].to_numpy(dtype="float64")[best_row[keep]],
            "effect_is_alt": effect_is_alt[keep].astype(bool),
            "category": names[best_rank[keep]],
        }
    )
    match_rate = len(frame) / n_total if n_total else 0.0
    result = Harmonised(frame=frame, counts=counts, match_rate=match_rate, n_total=n_total)
    logger.info("%s: %s", source, result.summary())
    if n_total == 0 or match_rate < min_overlap:
        stated, cohort_name = canonical_build(weights_build), canonical_build(cohort_build)
        if stated and cohort_name and stated != cohort_name:
            build = f"check the genome build (file says {weights_build}, cohort is {cohort_build})"
        else:
            build = "check the genome build and chromosome names"
        raise InputError(f"{source}: only {result.summary()}; {build} or lower --min-overlap")
    return result
