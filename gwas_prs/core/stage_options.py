"""The parameters of the stage commands, declared once.

Every stage (``ingest``, ``qc``, ``simulate-phenotype``, ``gwas``, ``prs``,
``train``) has one :class:`StageOptions`: its parameters, each with its name
(the same on the command line, ``gwas-prs qc --min-maf``, and in the pipeline
file, ``qc: {min-maf: …}``), the field of the stage's config dataclass it sets
(``QcConfig.min_maf``), its kind, default, choices and help text. Three places
read them, so they cannot drift apart:

- the config dataclasses take their field defaults from here
  (``min_maf: float = QC.default("min-maf")``), and their one ``validate()``
  checks choices with :meth:`StageOptions.check_choice`;
- :data:`gwas_prs.stages.pipeline_config.SCHEMA` builds the pipeline file's stage
  sections from here (the declaration order is the order of the "allowed keys"
  in its error messages);
- the Typer commands take their defaults and help from here
  (``= QC.cli_default("min-maf")``; list options are comma-separated text on the
  command line, read with :meth:`StageOptions.parse`).

What is not declared here: the options every stage command shares (``--run``,
``--overwrite``, and Hail's ``--cores``, ``--driver-memory``, ``--engine``,
``--seed``, which are the ``hail:`` section of a pipeline file) live in
:mod:`gwas_prs.cli.options`; the input files (``--samples``, ``--phenotypes``)
are ``inputs:`` of a pipeline file. ``tests/test_option_defaults.py`` checks
that the commands, the schema and the dataclasses agree, and lists every
option that one of them has and another has not, with the reason.

This module imports nothing heavy: the CLI imports it when it prints ``--help``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gwas_prs.core.errors import InputError

#: Kinds of value (as in the pipeline file): ``int``, ``float``, ``bool``, ``str``,
#: ``path``, and the lists ``str-list``/``float-list`` (comma-separated text on the
#: command line, a YAML list or comma-separated text in a pipeline file).
KINDS: tuple[str, ...] = ("int", "float", "bool", "str", "path", "str-list", "float-list")
LIST_KINDS: tuple[str, ...] = ("str-list", "float-list")


@dataclass(frozen=True)
class StageOption:
    """One parameter of a stage.

    ``field`` is the config dataclass field it sets: by default the name with
    underscores (``min-maf`` → ``min_maf``), a dotted path into a nested
    dataclass (``clump.r2``), or ``""`` when no field takes it as it is
    (``simulate-phenotype --quantitative`` sets ``prevalence`` to None).
    ``required``: a pipeline file must give it (it has no default).
    """

    name: str
    kind: str
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] = ()
    required: bool = False
    field: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: unknown kind {self.kind!r}")

    @property
    def flag(self) -> str:
        """The command-line option, ``--min-maf``."""
        return f"--{self.name}"

    @property
    def attribute(self) -> str:
        """The config dataclass field (``""``: none), see the class docstring."""
        return self.name.replace("-", "_") if self.field is None else self.field

    @property
    def cli_default(self) -> Any:
        """The default as the command line shows and reads it (lists as comma-separated text)."""
        if self.kind == "float-list":
            return ",".join(format_number(x) for x in self.default)
        if self.kind == "str-list":
            return ",".join(self.default or ())
        return self.default

    def parse(self, text: str) -> tuple[Any, ...]:
        """A list option's command-line text → the tuple its config field holds.

        Raises
        ------
        InputError
            A ``float-list`` item is not a number.
        """
        if self.kind not in LIST_KINDS:
            raise TypeError(f"{self.flag} is not a list option")
        items = [x.strip() for x in text.split(",") if x.strip()]
        if self.kind == "str-list":
            return tuple(items)
        try:
            return tuple(float(x) for x in items)
        except ValueError:
            raise InputError(
                f"{self.flag} '{text}': give comma-separated numbers, e.g. 5e-8,1e-4,0.01,1"
            ) from None


class StageOptions:
    """The declared parameters of one stage, in order; looked up by name."""

    def __init__(self, stage: str, *options: StageOption) -> None:
        self.stage = stage
        self.options: dict[str, StageOption] = {}
        for option in options:
            if option.name in self.options:
                raise ValueError(f"{stage}: {option.flag} declared twice")
            self.options[option.name] = option

    def __iter__(self) -> Iterator[StageOption]:
        return iter(self.options.values())

    def __contains__(self, name: object) -> bool:
        return name in self.options

    def __getitem__(self, name: str) -> StageOption:
        try:
            return self.options[name]
        except KeyError:
            raise KeyError(
                f"{self.stage} declares no option {name!r}; it has {', '.join(self.options)}"
            ) from None

    def default(self, name: str) -> Any:
        """The default, as the config dataclass field holds it (lists as tuples)."""
        return self[name].default

    def cli_default(self, name: str) -> Any:
        """The default as the Typer command declares it (see :attr:`StageOption.cli_default`)."""
        return self[name].cli_default

    def help(self, name: str) -> str:
        return self[name].help

    def choices(self, name: str) -> tuple[str, ...]:
        return self[name].choices

    def parse(self, name: str, text: str) -> tuple[Any, ...]:
        """A list option's command-line text as a tuple (see :meth:`StageOption.parse`)."""
        return self[name].parse(text)

    def check_choice(self, name: str, value: object) -> None:
        """Raise :class:`InputError` (``--test x: choose one of …``) unless ``value`` is a choice."""
        choices = self.choices(name)
        if value not in choices:
            raise InputError(f"--{name} {value}: choose one of {', '.join(choices)}")


def format_number(value: float) -> str:
    """The shorter of the ``0.01`` and ``1e-2`` forms, exact (``5e-8``, ``1e-4``, ``0.05``, ``1``)."""
    plain = repr(float(value)).removesuffix(".0")
    mantissa, _, exponent = f"{value:e}".partition("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    scientific = f"{mantissa}e{int(exponent)}"
    if float(scientific) == value and len(scientific) < len(plain):
        return scientific
    return plain


INGEST = StageOptions(
    "ingest",
    StageOption(
        "sample-id-column",
        "str",
        help="Column of --samples holding the sample IDs [default: detected].",
    ),
    StageOption(
        "reference-genome",
        "str",
        "GRCh37",
        help="Reference genome of the input coordinates: GRCh37 or GRCh38. 'chr1' and '1' are both accepted.",
        choices=("GRCh37", "GRCh38"),
    ),
    StageOption(
        "keep-symbolic",
        "bool",
        False,
        help="Keep symbolic/structural alleles (<CN0>, <DEL>, *, breakends).",
    ),
    StageOption(
        "skip-unknown-contigs",
        "bool",
        False,
        help="Drop records on contigs the reference lacks instead of failing.",
    ),
    StageOption(
        "hard-call-threshold",
        "float",
        0.1,
        help="For dosage input (VCF DS/GP, BGEN, a MatrixTable with DS): a dosage within this distance of 0, 1 or 2 becomes that hard call (GT), others a missing call, as plink2's --hard-call-threshold. Hard calls feed KING, LD pruning, heterozygosity and HWE; association, scoring and LD use the dosages.",
    ),
    StageOption(
        "bgen-sample",
        "path",
        help="Oxford .sample file of BGEN input (IDs from its ID_2 column, plink2's IID) [default: FILE.sample next to the first .bgen, else the IDs stored in the BGEN].",
    ),
)

QC = StageOptions(
    "qc",
    StageOption(
        "min-sample-call-rate",
        "float",
        0.97,
        help="Drop samples with a lower call rate (0–1).",
    ),
    StageOption(
        "het-sd",
        "float",
        3.0,
        help="Drop heterozygosity (F) outliers beyond this many SDs of the mean.",
    ),
    StageOption(
        "max-female-xf",
        "float",
        0.2,
        help="Sex check (chrX present): a chrX inbreeding F below this is imputed female (plink2 --check-sex max-female-xf).",
    ),
    StageOption(
        "min-male-xf",
        "float",
        0.8,
        help="Sex check (chrX present): a chrX inbreeding F above this is imputed male (plink2 --check-sex min-male-xf); between the two thresholds the sex is left undetermined.",
    ),
    StageOption(
        "min-variant-call-rate",
        "float",
        0.95,
        help="Drop variants with a lower call rate (0–1).",
    ),
    StageOption(
        "min-maf",
        "float",
        0.01,
        help="Drop variants with a lower minor allele frequency (0–0.5).",
    ),
    StageOption(
        "hwe-p",
        "float",
        1e-6,
        help="Drop variants with an HWE exact mid-p value below this (like plink2 --hwe P midp).",
    ),
    StageOption(
        "min-info",
        "float",
        0.0,
        help="Drop imputed variants with a lower imputation quality: the VCF's INFO/R2 (minimac, TOPMed, Michigan) or INFO/INFO (IMPUTE), else the MaCH r² of the dosages (BGEN; as plink2 --mach-r2-filter). 0 keeps all; 0.3 or 0.8 are common choices.",
    ),
    StageOption(
        "hwe-controls-only",
        "bool",
        False,
        help="Test HWE in the controls of --trait only (needs --phenotypes).",
    ),
    StageOption(
        "trait",
        "str",
        help="Binary trait column (0/1, 1/2 or control/case) of --phenotypes.",
    ),
    StageOption(
        "kinship",
        "float",
        0.0884,
        help="KING kinship above which pairs are related (0.0884 = 2nd degree).",
    ),
    StageOption(
        "max-removed-fraction",
        "float",
        0.10,
        help=(
            "Stop before writing silver when one sample filter (call rate, heterozygosity, "
            "sex check, relatedness) would remove more than this fraction of the samples "
            "entering it (0–1; 1 accepts any)."
        ),
    ),
    StageOption(
        "prune-r2",
        "float",
        0.2,
        help="LD-pruning r² for the SNPs of heterozygosity/KING/PCA.",
    ),
    StageOption("prune-window-kb", "int", 500, help="LD-pruning window in kb."),
    StageOption("n-pcs", "int", 10, help="Principal components to compute."),
    # On the command line qc's seed is Hail's --seed (cli/options.py), 0 when not given.
    StageOption("seed", "int", 0, help="Seed of qc's random steps (the ancestry random forest)."),
)

SIMULATION = StageOptions(
    "simulate-phenotype",
    StageOption(
        "trait",
        "str",
        help="Trait (a column of the phenotype file).",
        required=True,
    ),
    StageOption("h2", "float", 0.5, help="Heritability on the liability scale (0–1)."),
    StageOption("n-causal", "int", 300, help="Number of causal variants (MAF ≥ 1%)."),
    StageOption("prevalence", "float", 0.15, help="Fraction of cases (binary trait)."),
    StageOption(
        "quantitative",
        "bool",
        False,
        help="Simulate a quantitative trait instead.",
        field="",  # SimulationConfig.prevalence = None
    ),
    StageOption(
        "covariate-effects",
        "bool",
        False,
        help="Add age and sex columns that shift the liability.",
    ),
    StageOption("seed", "int", 42, help="Seed for causal variants, effects and noise."),
)

GWAS = StageOptions(
    "gwas",
    StageOption(
        "trait",
        "str-list",
        help="Trait column to test; repeat for several traits (one pass).",
        field="traits",  # a pipeline file may leave it out: the simulated trait
    ),
    StageOption(
        "covariates",
        "str-list",
        (),
        help="Comma-separated covariate columns, e.g. age,sex.",
    ),
    StageOption("n-pcs", "int", 10, help="Principal components from qc used as covariates."),
    StageOption(
        "test",
        "str",
        "firth",
        help=(
            "Binary traits: firth (Wald with Firth fallback, as plink2 --glm firth-fallback: "
            "the Firth rows report plink2's Wald Z from the penalised fit), firth-lrt (the "
            "same fallback with Hail's penalised likelihood-ratio test), wald, lrt or score."
        ),
        choices=("firth", "firth-lrt", "wald", "lrt", "score"),
    ),
    StageOption(
        "xchr-model",
        "int",
        2,
        help=(
            "Non-PAR chrX: a male's genotype coded 0/2 (2, plink2's default) or 0/1 (1, as "
            "plink 1.9); chrX is tested on the samples with a reported sex, with sex as a "
            "covariate. prs scores chrX as plink2 --score does by default (males 0/2)."
        ),
    ),
    StageOption("split-seed", "int", 42, help="Seed of the discovery/target split."),
)

PRS = StageOptions(
    "prs",
    StageOption(
        "clump-r2",
        "float",
        0.1,
        help="LD r² above which variants join an index variant's clump.",
        field="clump.r2",
    ),
    StageOption("clump-kb", "int", 250, help="Clumping window (kb each side).", field="clump.kb"),
    StageOption(
        "clump-p1",
        "float",
        1.0,
        help="p-value threshold for index variants.",
        field="clump.p1",
    ),
    StageOption(
        "clump-p2",
        "float",
        1.0,
        help="p-value threshold for clumped variants.",
        field="clump.p2",
    ),
    StageOption(
        "thresholds",
        "float-list",
        (5e-8, 1e-5, 1e-4, 1e-3, 0.01, 0.05, 0.1, 0.5, 1.0),
        help="p-value thresholds scored in one pass (comma-separated).",
    ),
    StageOption(
        "weights",
        "path",
        help="Score a PGS Catalog scoring file instead of this run's GWAS.",
        field="weights_file",
    ),
    StageOption(
        "methods",
        "str-list",
        ("ct", "ldpred2-auto", "ldpred2-inf", "ldpred2-grid", "lassosum2"),
        help="PRS methods, comma-separated: ct (clumping + thresholding), ldpred2-auto, "
        "ldpred2-inf, ldpred2-grid, lassosum2 (all from one in-sample LD); ct alone with "
        "--weights.",
    ),
    StageOption(
        "ld-window-kb",
        "float",
        3000.0,
        help="LD window of the LDpred2/lassosum2 correlations (kb each side; ≈ bigsnpr's 3 cM).",
    ),
    StageOption("ldpred2-chains", "int", 8, help="LDpred2-auto chains (the filter needs several)."),
    StageOption("ldpred2-burn-in", "int", 500, help="LDpred2-auto burn-in sweeps per chain."),
    StageOption(
        "ldpred2-iterations", "int", 500, help="LDpred2-auto sweeps per chain after burn-in."
    ),
    StageOption("sampler-seed", "int", 42, help="Seed of the LDpred2 samplers."),
    StageOption(
        "sumstats",
        "path",
        help="Summary statistics of an external GWAS as the base instead of this run's GWAS: "
        "GWAS-SSF, plink2 --glm, REGENIE, or a table named with --sumstats-columns; every "
        "labelled sample is then a target (train/validation/test).",
        field="sumstats_file",
    ),
    StageOption(
        "sumstats-format",
        "str",
        "auto",
        help="Format of --sumstats: auto (from its header), gwas-ssf, plink2, regenie or tsv.",
        choices=("auto", "gwas-ssf", "plink2", "regenie", "tsv"),
    ),
    StageOption(
        "sumstats-columns",
        "str",
        help="Columns of a --sumstats table: chr=CHR,pos=BP,effect_allele=A1,other_allele=A2,"
        "beta=BETA (or or=OR),se=SE,p=P (or log10p=…)[,n=N][,id=SNP].",
    ),
    StageOption(
        "sumstats-n",
        "float",
        help="GWAS sample size of --sumstats when the file has no N column.",
    ),
    StageOption(
        "sumstats-cases",
        "float",
        help="Cases of a binary-trait --sumstats (with --sumstats-controls: effective N "
        "= 4/(1/cases + 1/controls), used instead of the file's N).",
    ),
    StageOption("sumstats-controls", "float", help="Controls of a binary-trait --sumstats."),
    StageOption(
        "covariates",
        "str-list",
        (),
        help="With --sumstats: covariates of the evaluation models (this run's GWAS gives "
        "them otherwise).",
    ),
    StageOption(
        "n-pcs",
        "int",
        10,
        help="With --sumstats: PCs from qc in the evaluation models (this run's GWAS gives "
        "them otherwise).",
    ),
    StageOption(
        "split-seed",
        "int",
        42,
        help="With --sumstats: seed of the train/validation/test split (40/30/30, stratified "
        "by ancestry and label).",
    ),
    StageOption(
        "allow-palindromic",
        "bool",
        False,
        help="Keep A/T and C/G SNPs of --weights/--sumstats (strand ambiguous).",
    ),
    StageOption(
        "min-overlap",
        "float",
        0.5,
        help="Stop when fewer --weights/--sumstats variants than this fraction match the cohort.",
    ),
    StageOption(
        "allow-build-mismatch",
        "bool",
        False,
        help="Score --weights whose #genome_build differs from the cohort's (positions "
        "must then match by chance only: use a file harmonised to the cohort's build).",
    ),
)

TRAIN = StageOptions(
    "train",
    StageOption(
        "device",
        "str",
        "cpu",
        help="XGBoost device: cpu, cuda (an NVIDIA GPU; stops if there is none) or auto "
        "(cuda when present, else cpu).",
        choices=("cpu", "cuda", "auto"),
    ),
    StageOption("folds", "int", 5, help="Cross-validation folds of the hyper-parameter search."),
    StageOption("n-trials", "int", 30, help="Parameter sets tried by the randomised search."),
    StageOption("seed", "int", 42, help="Seed of the search, the folds and the bootstrap."),
    StageOption(
        "features",
        "str-list",
        ("prs", "pcs", "covariates"),
        help="XGBoost inputs, comma-separated from prs, pcs, covariates.",
    ),
)

#: Every stage's declarations, by the stage's name (the pipeline file's ``stages:`` keys).
STAGE_OPTIONS: dict[str, StageOptions] = {
    options.stage: options for options in (INGEST, QC, SIMULATION, GWAS, PRS, TRAIN)
}
