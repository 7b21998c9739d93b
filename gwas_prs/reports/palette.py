"""The colours of every report and notebook: one colour per population, per model, for
cases and controls.

A population's colour depends on its name only (never on the order in which groups
appear), so EUR is the same blue in the ancestry report, the PRS report and the
notebooks. The five 1000 Genomes super-populations follow gnomAD's colours (AFR
purple, AMR red, EAS green, EUR blue, SAS orange); each of the 26 populations is a
shade of its super-population's colour. Unknown names get a fixed colour from
:data:`OTHER_COLOURS` chosen by a checksum of the name (stable across runs and
processes); missing labels (``NA``, ``unknown``, ``unassigned``) are grey.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

#: gnomAD's colours for the continental groups (1000 Genomes super-populations)
SUPER_POPULATION_COLOURS: dict[str, str] = {
    "AFR": "#941494",
    "AMR": "#ED1E24",
    "EAS": "#108C44",
    "EUR": "#2B7BB9",
    "SAS": "#FF9912",
}

#: The 26 populations of 1000 Genomes phase 3, by super-population
POPULATIONS: dict[str, tuple[str, ...]] = {
    "AFR": ("YRI", "LWK", "GWD", "MSL", "ESN", "ASW", "ACB"),
    "AMR": ("MXL", "PUR", "CLM", "PEL"),
    "EAS": ("CHB", "JPT", "CHS", "CDX", "KHV"),
    "EUR": ("CEU", "TSI", "FIN", "GBR", "IBS"),
    "SAS": ("GIH", "PJL", "BEB", "STU", "ITU"),
}

#: Grey for samples without a label
MISSING_COLOUR = "#A0A0A0"
MISSING_LABELS = frozenset({"", "NA", "nan", "None", "unknown", "unassigned", "other"})

#: Colours for group names that are not 1000 Genomes labels (chosen by name checksum)
OTHER_COLOURS: tuple[str, ...] = (
    "#8C564B", "#17BECF", "#BCBD22", "#E377C2", "#393B79", "#637939", "#8C6D31",
    "#843C39", "#7B4173", "#3182BD", "#31A354", "#756BB1", "#E6550D", "#636363",
)  # fmt: skip

#: Cases and controls (PRS distributions)
CASE_COLOUR = "#D62728"
CONTROL_COLOUR = "#1F77B4"

#: The models of ``train`` (and the oracle) in the model report and notebook 03
MODEL_COLOURS: dict[str, str] = {
    "covariates": "#7F7F7F",
    "covariates_pcs": "#1F77B4",
    "covariates_pcs_prs": "#2CA02C",
    "penalised_logistic": "#FF7F0E",
    "xgboost": "#D62728",
    "oracle": "#9467BD",
}

#: Neutral colours of the other figures
PRIMARY = "#1F77B4"
HIGHLIGHT = "#FF7F0E"
SECONDARY = "#7F7F7F"
REFERENCE_LINE = "#BBBBBB"
TEXT = "#333333"
#: The HTML tables' borders and header background
TABLE_BORDER = "#C8C8C8"
TABLE_HEADER = "#F2F2F2"
SIGNIFICANT_LINE = "#D62728"
SUGGESTIVE_LINE = "#1F77B4"
#: Alternating chromosome colours of Manhattan plots
CHROMOSOME_COLOURS = ("#1F4E79", "#7FA7C9")


def _shade(colour: str, amount: float) -> str:
    """``colour`` mixed with black (``amount`` < 0) or white (> 0), ``|amount|`` ≤ 1."""
    rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    target = 255 if amount > 0 else 0
    mixed = [round(c + (target - c) * abs(amount)) for c in rgb]
    return "#" + "".join(f"{c:02X}" for c in mixed)


def _population_shades() -> dict[str, str]:
    shades: dict[str, str] = {}
    for group, names in POPULATIONS.items():
        base = SUPER_POPULATION_COLOURS[group]
        k = len(names)
        for i, name in enumerate(names):
            # from 35% darker to 45% lighter than the super-population's colour
            amount = -0.35 + 0.8 * i / (k - 1) if k > 1 else 0.0
            shades[name] = _shade(base, amount)
    return shades


POPULATION_COLOURS: dict[str, str] = {**SUPER_POPULATION_COLOURS, **_population_shades()}


def population_colour(name: object) -> str:
    """The colour of population or ancestry group ``name`` (any label; see the module)."""
    text = "" if name is None else str(name)
    if text in POPULATION_COLOURS:
        return POPULATION_COLOURS[text]
    if text in MISSING_LABELS:
        return MISSING_COLOUR
    return OTHER_COLOURS[zlib.crc32(text.encode()) % len(OTHER_COLOURS)]


def population_colours(names: Iterable[object]) -> dict[str, str]:
    """``{name: colour}`` for each distinct name (as text)."""
    return {str(n): population_colour(n) for n in names}


def model_colour(name: str) -> str:
    """The colour of model ``name`` (a key of ``metrics.json``'s ``models``, or ``oracle``)."""
    return MODEL_COLOURS.get(name, OTHER_COLOURS[zlib.crc32(name.encode()) % len(OTHER_COLOURS)])
