"""Each stage option is declared once (:mod:`gwas_prs.core.stage_options`), no JVM.

For every stage (ingest, qc, simulate-phenotype, gwas, prs, train) three places
must agree on each option they share: the Typer command (its click parameters'
defaults and choices), the pipeline file (the defaults :func:`load_pipeline`
fills into a file that gives only the required keys) and the stage's config
dataclass (its field defaults). Every key of a stage's section in the pipeline
file is an option of the stage command and the other way round, except those
listed below with the reason.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
import typer.main

from gwas_prs.core.errors import InputError
from gwas_prs.core.stage_options import GWAS, INGEST, PRS, STAGE_OPTIONS, TRAIN, format_number
from gwas_prs.stages.pipeline_config import PIPELINE_STAGES, SCHEMA, Option, load_pipeline
from tests.cli_helpers import invoke

STAGES = ("ingest", "qc", "simulate-phenotype", "gwas", "prs", "train")
CONFIGS = {
    "ingest": "gwas_prs.stages.ingest:IngestConfig",
    "qc": "gwas_prs.stages.qc:QcConfig",
    "simulate-phenotype": "gwas_prs.methods.gwas.simulation:SimulationConfig",
    "gwas": "gwas_prs.stages.gwas:GwasConfig",
    "prs": "gwas_prs.stages.prs:PrsConfig",
    "train": "gwas_prs.stages.train:TrainConfig",
}

_HAIL = "Hail's option: the pipeline file's hail: section"
_OVERWRITE = "a pipeline run re-runs what changed and overwrites it itself"
#: Options of a stage command that its section of the pipeline file has not, and why.
CLI_ONLY: dict[str, dict[str, str]] = {
    "ingest": {
        "run": "the pipeline file's top-level run:",
        "samples": "the pipeline file's inputs.samples",
        "overwrite": _OVERWRITE,
        "cores": _HAIL,
        "driver-memory": _HAIL,
        "engine": _HAIL,
        "spark-master": _HAIL,
        "seed": _HAIL,
    },
    "qc": {
        "phenotypes": "the pipeline file's inputs.phenotypes",
        "overwrite": _OVERWRITE,
        "cores": _HAIL,
        "driver-memory": _HAIL,
        "engine": _HAIL,
        "spark-master": _HAIL,
        # --seed: Hail's seed, and qc's (a key of both), see DEFAULT_EXCEPTIONS
    },
    "simulate-phenotype": {
        "overwrite": _OVERWRITE,
        "cores": _HAIL,
        "driver-memory": _HAIL,
        "engine": _HAIL,
        "spark-master": _HAIL,
    },
    "gwas": {
        "phenotypes": "the pipeline file's inputs.phenotypes (or the simulated ones)",
        "overwrite": _OVERWRITE,
        "cores": _HAIL,
        "driver-memory": _HAIL,
        "engine": _HAIL,
        "spark-master": _HAIL,
        "seed": _HAIL,
    },
    "prs": {
        "trait": "a pipeline runs prs for every trait of stages.gwas",
        "phenotypes": "the pipeline file's inputs.phenotypes (or the simulated ones)",
        "overwrite": _OVERWRITE,
        "cores": _HAIL,
        "driver-memory": _HAIL,
        "engine": _HAIL,
        "spark-master": _HAIL,
        "seed": _HAIL,
    },
    "train": {
        "trait": "a pipeline trains a model for every trait of stages.gwas",
        "phenotypes": "the pipeline file's inputs.phenotypes (or the simulated ones)",
        "overwrite": _OVERWRITE,
        "cores": _HAIL,
        "driver-memory": _HAIL,
        "engine": _HAIL,
        "spark-master": _HAIL,
    },
}
#: Keys of a stage's section that its command has not (none: every key is an option).
YAML_ONLY: dict[str, dict[str, str]] = {stage: {} for stage in STAGES}
#: Options whose command-line default differs from the pipeline file's on purpose.
DEFAULT_EXCEPTIONS = {
    ("qc", "seed"): "qc's --seed is Hail's seed too: unset (None) leaves Hail unseeded and "
    "gives qc the declared seed, 0; a pipeline file seeds Hail in hail.seed",
}
#: Options required on the command line but not in the pipeline file.
REQUIRED_EXCEPTIONS = {
    ("gwas", "trait"): "a pipeline file may leave it out: gwas then tests the simulated trait",
}
_RUN = "the run folder (--run / RUN, the pipeline file's run:)"
#: Config dataclass fields that no option of the stage sets as it is, and why.
CONFIG_ONLY: dict[str, dict[str, str]] = {
    "ingest": {
        "vcfs": "the VCF arguments, inputs.vcfs",
        "run_dir": _RUN,
        "samples_file": "--samples, inputs.samples",
        "overwrite": "--overwrite",
        "validation_workers": "library only (tests)",
    },
    "qc": {
        "run_dir": _RUN,
        "phenotypes": "--phenotypes, inputs.phenotypes",
        "ancestry_pcs": "library only",
        "ancestry_min_probability": "library only",
        "overwrite": "--overwrite",
    },
    "simulate-phenotype": {"min_maf": "library only (the causal variants' MAF floor)"},
    "gwas": {
        "run_dir": _RUN,
        "phenotypes_file": "--phenotypes, inputs.phenotypes",
        "overwrite": "--overwrite",
    },
    "prs": {
        "run_dir": _RUN,
        "trait": "--trait, each trait of stages.gwas",
        "phenotypes_file": "--phenotypes, inputs.phenotypes",
        "overwrite": "--overwrite",
    },
    "train": {
        "run_dir": _RUN,
        "trait": "--trait, each trait of stages.gwas",
        "phenotypes_file": "--phenotypes, inputs.phenotypes",
        "overwrite": "--overwrite",
    },
}
_MISSING = dataclasses.MISSING


def stage_command(stage: str) -> click.Command:
    from gwas_prs.cli.app import app

    group = typer.main.get_command(app)
    assert isinstance(group, click.Group)
    return group.commands[stage]


def cli_options(command: click.Command) -> dict[str, click.Option]:
    """The command's options by long name (``--min-maf`` → ``min-maf``)."""
    options = {}
    for param in command.params:
        if isinstance(param, click.Option):
            name = next(o for o in param.opts if o.startswith("--"))
            options[name.removeprefix("--")] = param
    return options


def minimal_pipeline(folder: Path, **sections: str) -> Path:
    """A pipeline file with only the required keys and every stage; ``sections`` (stage →
    an inline YAML mapping, e.g. ``train="{device: auto}"``) replace a stage's section."""
    vcf = folder / "a.vcf"
    vcf.write_text("")
    given = {"simulate-phenotype": "{trait: t}", "gwas": "", "prs": "", "train": ""}
    given.update({stage.replace("_", "-"): text for stage, text in sections.items()})
    lines = "".join(f"  {stage}: {text}\n" for stage, text in given.items())
    path = folder / "minimal.yaml"
    path.write_text(f"run: run\ninputs: {{vcfs: {vcf}}}\nstages:\n{lines}")
    return path


def yaml_stages(folder: Path) -> dict[str, dict[str, Any]]:
    """Every stage's parameters from a pipeline file with only the required keys."""
    stages = load_pipeline(str(minimal_pipeline(folder))).stages
    assert tuple(stages) == STAGES
    return {
        stage: {key.replace("_", "-"): value for key, value in values.items()}
        for stage, values in stages.items()
    }


def config_class(stage: str) -> type:
    module, name = CONFIGS[stage].split(":")
    cls = getattr(importlib.import_module(module), name)
    assert isinstance(cls, type)
    return cls


def config_defaults(cls: type, prefix: str = "") -> dict[str, Any]:
    """Field defaults (``_MISSING`` for a field without one), nested dataclasses as ``clump.r2``."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        default = f.default
        if default is _MISSING and f.default_factory is not _MISSING:
            default = f.default_factory()
        if dataclasses.is_dataclass(default) and not isinstance(default, type):
            out.update(config_defaults(type(default), f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = default
    return out


def cli_value(stage: str, name: str, param: click.Option) -> Any:
    """A parameter's default as the command hands it to the config (lists parsed)."""
    declared = STAGE_OPTIONS[stage].options.get(name)
    if declared is not None and declared.kind in ("str-list", "float-list"):
        return declared.parse(str(param.default))
    return param.default


def disagreements(
    stage: str,
    command: click.Command,
    yaml_values: dict[str, Any],
    defaults: dict[str, Any],
    schema: dict[str, Option],
) -> list[str]:
    """Where the command, the pipeline file and the config dataclass of ``stage`` disagree."""
    problems: list[str] = []
    cli = cli_options(command)
    if set(yaml_values) != set(schema):
        problems.append(f"{stage}: load_pipeline filled {sorted(yaml_values)}, not {list(schema)}")
    for name in sorted(set(cli) - set(yaml_values) - set(CLI_ONLY[stage])):
        problems.append(f"{stage}: --{name} is an option but not a key of stages.{stage}")
    for name in sorted(set(CLI_ONLY[stage]) - set(cli)):
        problems.append(f"{stage}: CLI_ONLY lists --{name}, which the command has not")
    for name in sorted(set(yaml_values) - set(cli) - set(YAML_ONLY[stage])):
        problems.append(f"{stage}: stages.{stage}.{name} is a key but not an option of the command")
    for name in sorted(set(cli) & set(yaml_values)):
        param = cli[name]
        if param.required != schema[name].required and (stage, name) not in REQUIRED_EXCEPTIONS:
            problems.append(
                f"{stage}: --{name} required={param.required} on the command line, "
                f"{schema[name].required} in the pipeline file"
            )
        if param.required or (stage, name) in DEFAULT_EXCEPTIONS:
            continue
        value = cli_value(stage, name, param)
        if value != yaml_values[name]:
            problems.append(
                f"{stage}: --{name} defaults to {value!r} on the command line, "
                f"{yaml_values[name]!r} in the pipeline file"
            )
    declared = STAGE_OPTIONS[stage]
    if list(declared.options) != list(schema):
        problems.append(f"{stage}: the schema's keys {list(schema)} are not the declared ones")
    covered = set(CONFIG_ONLY[stage])
    for option in declared:
        if not option.attribute:
            continue
        covered.add(option.attribute)
        if option.attribute not in defaults:
            problems.append(f"{stage}: --{option.name} sets {option.attribute}, not a field")
            continue
        default = defaults[option.attribute]
        if default is _MISSING:  # a required field (the trait)
            continue
        if option.name in yaml_values and default != yaml_values[option.name]:
            problems.append(
                f"{stage}: field {option.attribute} defaults to {default!r}, "
                f"stages.{stage}.{option.name} to {yaml_values[option.name]!r}"
            )
    for attribute in sorted(set(defaults) - covered):
        problems.append(f"{stage}: field {attribute} is set by no option and not in CONFIG_ONLY")
    for option in declared:
        if not option.choices:
            continue
        if option.name in schema and schema[option.name].choices != option.choices:
            problems.append(
                f"{stage}: stages.{stage}.{option.name} accepts {schema[option.name].choices}, "
                f"the declaration {option.choices}"
            )
        cli_param = cli.get(option.name)
        if cli_param is None:
            continue
        if isinstance(cli_param.type, click.Choice):
            if tuple(cli_param.type.choices) != option.choices:
                problems.append(f"{stage}: --{option.name} accepts {cli_param.type.choices}")
        else:  # a text option whose config checks the value: its help names every choice
            for choice in option.choices:
                if choice not in (cli_param.help or ""):
                    problems.append(f"{stage}: --{option.name}'s help does not name {choice!r}")
    return problems


@pytest.fixture(scope="module")
def minimal_yaml(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return yaml_stages(tmp_path_factory.mktemp("minimal"))


def test_every_pipeline_stage_is_declared() -> None:
    assert tuple(STAGE_OPTIONS) == PIPELINE_STAGES == STAGES


@pytest.mark.parametrize("stage", STAGES)
def test_command_pipeline_file_and_config_agree(
    stage: str, minimal_yaml: dict[str, dict[str, Any]]
) -> None:
    problems = disagreements(
        stage,
        stage_command(stage),
        minimal_yaml[stage],
        config_defaults(config_class(stage)),
        SCHEMA[stage],
    )
    assert problems == []


def _change_cli_default(monkeypatch: pytest.MonkeyPatch, command: click.Command) -> None:
    monkeypatch.setattr(cli_options(command)["min-maf"], "default", 0.05)


def _change_yaml_default(monkeypatch: pytest.MonkeyPatch, command: click.Command) -> None:
    monkeypatch.setitem(SCHEMA["qc"], "min-maf", Option("float", 0.05))


def _change_config_default(monkeypatch: pytest.MonkeyPatch, command: click.Command) -> None:
    fields = config_class("qc").__dataclass_fields__  # type: ignore[attr-defined]
    monkeypatch.setattr(fields["min_maf"], "default", 0.05)


def _drop_yaml_key(monkeypatch: pytest.MonkeyPatch, command: click.Command) -> None:
    monkeypatch.delitem(SCHEMA["qc"], "min-maf")


def _drop_cli_option(monkeypatch: pytest.MonkeyPatch, command: click.Command) -> None:
    monkeypatch.setattr(command, "params", [p for p in command.params if p.name != "min_maf"])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_change_cli_default, "qc: --min-maf defaults to 0.05 on the command line, 0.01"),
        (_change_yaml_default, "qc: --min-maf defaults to 0.01 on the command line, 0.05"),
        (_change_config_default, "qc: field min_maf defaults to 0.05, stages.qc.min-maf to 0.01"),
        (_drop_yaml_key, "qc: --min-maf is an option but not a key of stages.qc"),
        (_drop_cli_option, "qc: stages.qc.min-maf is a key but not an option of the command"),
    ],
)
def test_a_changed_default_in_one_place_is_caught(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    change: Callable[[pytest.MonkeyPatch, click.Command], None],
    expected: str,
) -> None:
    command = stage_command("qc")
    change(monkeypatch, command)
    problems = disagreements(
        "qc",
        command,
        yaml_stages(tmp_path)["qc"],
        config_defaults(config_class("qc")),
        SCHEMA["qc"],
    )
    assert any(p.startswith(expected) for p in problems), problems


def test_the_old_device_drift_is_caught(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Before the options were declared once, YAML refused --device auto, which train accepts."""
    monkeypatch.setitem(SCHEMA["train"], "device", Option("str", "cpu", choices=("cpu", "cuda")))
    problems = disagreements(
        "train",
        stage_command("train"),
        yaml_stages(tmp_path)["train"],
        config_defaults(config_class("train")),
        SCHEMA["train"],
    )
    assert problems == [
        "train: stages.train.device accepts ('cpu', 'cuda'), the declaration ('cpu', 'cuda', 'auto')"
    ]


def test_a_choice_the_help_does_not_name_is_caught(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    command = stage_command("train")
    monkeypatch.setattr(cli_options(command)["device"], "help", "XGBoost device: cpu or cuda.")
    problems = disagreements(
        "train",
        command,
        yaml_stages(tmp_path)["train"],
        config_defaults(config_class("train")),
        SCHEMA["train"],
    )
    assert problems == ["train: --device's help does not name 'auto'"]


def test_a_changed_nested_default_is_caught(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from gwas_prs.methods.prs.clumping import ClumpParameters

    monkeypatch.setattr(ClumpParameters.__dataclass_fields__["r2"], "default", 0.2)
    problems = disagreements(
        "prs",
        stage_command("prs"),
        yaml_stages(tmp_path)["prs"],
        config_defaults(config_class("prs")),
        SCHEMA["prs"],
    )
    assert problems == ["prs: field clump.r2 defaults to 0.2, stages.prs.clump-r2 to 0.1"]


def _check_gwas_test(value: str) -> None:
    from gwas_prs.stages.gwas import GwasConfig

    GwasConfig(run_dir="r", phenotypes_file="p.tsv", traits=("t",), test=value).validate()


def _check_train_device(value: str) -> None:
    from gwas_prs.stages.train import TrainConfig

    TrainConfig(run_dir="r", trait="t", device=value).validate()


def _check_sumstats_format(value: str) -> None:
    from gwas_prs.stages.prs import PrsConfig

    PrsConfig(run_dir="r", trait="t", sumstats_file="s.tsv", sumstats_format=value).validate()


def _check_reference_genome(value: str) -> None:
    from gwas_prs.core.reference import reference_contigs

    reference_contigs(value)


#: How the library checks each option with choices (ingest has no config check: the
#: reference genome is read before any work).
CHOICE_CHECKS: dict[tuple[str, str], Callable[[str], None]] = {
    ("gwas", "test"): _check_gwas_test,
    ("train", "device"): _check_train_device,
    ("ingest", "reference-genome"): _check_reference_genome,
    ("prs", "sumstats-format"): _check_sumstats_format,
}
CHOICE_OPTIONS = [
    (stage, option.name, choice)
    for stage, options in STAGE_OPTIONS.items()
    for option in options
    for choice in option.choices
]


def test_every_option_with_choices_has_a_check() -> None:
    assert {(s, n) for s, n, _ in CHOICE_OPTIONS} == set(CHOICE_CHECKS)


@pytest.mark.parametrize(("stage", "name", "choice"), CHOICE_OPTIONS)
def test_every_choice_is_accepted_by_the_pipeline_file_and_the_library(
    tmp_path: Path, stage: str, name: str, choice: str
) -> None:
    path = minimal_pipeline(tmp_path, **{stage: f"{{{name}: {choice}}}"})
    assert load_pipeline(str(path)).stages[stage][name.replace("-", "_")] == choice
    CHOICE_CHECKS[stage, name](choice)


@pytest.mark.parametrize(("stage", "name"), sorted(CHOICE_CHECKS))
def test_a_value_outside_the_choices_is_refused_everywhere(
    tmp_path: Path, stage: str, name: str
) -> None:
    path = minimal_pipeline(tmp_path, **{stage: f"{{{name}: bogus}}"})
    choices = ", ".join(STAGE_OPTIONS[stage].choices(name))
    expected = f"'stages.{stage}.{name}' is 'bogus'; choose one of {choices}"
    with pytest.raises(InputError, match=re.escape(expected) + "$"):
        load_pipeline(str(path))
    with pytest.raises(InputError, match="bogus"):
        CHOICE_CHECKS[stage, name]("bogus")


def test_train_device_auto_on_the_command_line(no_jvm: None, tmp_path: Path) -> None:
    # accepted: train stops only later, at the missing gwas stage
    code, _, errors = invoke("train", str(tmp_path / "run"), "--trait", "t", "--device", "auto")
    assert code == 2 and "--device" not in errors and "gwas" in errors, errors
    code, _, errors = invoke("train", str(tmp_path / "run"), "--trait", "t", "--device", "gpu")
    assert (code, errors) == (2, "error: --device gpu: choose one of cpu, cuda, auto\n")


def test_list_options_read_back_their_command_line_default() -> None:
    assert PRS.cli_default("thresholds") == "5e-8,1e-5,1e-4,1e-3,0.01,0.05,0.1,0.5,1"
    for options in STAGE_OPTIONS.values():
        for option in options:
            if option.kind in ("str-list", "float-list") and option.default is not None:
                assert option.parse(option.cli_default) == option.default
    assert [format_number(x) for x in (2.5e-7, 0.0884, 123456789.0, 0.1 + 0.2)] == [
        "2.5e-7",
        "0.0884",
        "123456789",
        "0.30000000000000004",
    ]
    with pytest.raises(InputError, match=r"^--thresholds '1e-4,x': give comma-separated numbers"):
        PRS.parse("thresholds", "1e-4,x")


def test_the_library_constants_are_the_declarations() -> None:
    from gwas_prs.core.reference import SUPPORTED_REFERENCES
    from gwas_prs.methods.gwas.association import TESTS
    from gwas_prs.methods.model.training import DEVICES
    from gwas_prs.methods.prs.scoring import DEFAULT_THRESHOLDS

    assert TESTS is GWAS.choices("test")
    assert DEVICES is TRAIN.choices("device")
    assert SUPPORTED_REFERENCES is INGEST.choices("reference-genome")
    assert DEFAULT_THRESHOLDS is PRS.default("thresholds")
