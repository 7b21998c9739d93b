"""The pipeline file of ``gwas-prs run``: its format, and its validation.

A pipeline file is YAML::

    run: runs/demo                    # the run folder (relative to this file)
    inputs:
      vcfs: ../gwas_prs/data/1kg/1KG_phase3_subset_chr*.vcf.gz   # a glob or a list
      samples: ../gwas_prs/data/1kg/samples.panel
      phenotypes: pheno.tsv           # omit when simulate-phenotype makes them
    hail: {cores: 2, driver-memory: 8g, seed: 42}
    stages:
      ingest: {reference-genome: GRCh37}
      qc: {min-maf: 0.01, n-pcs: 10}
      simulate-phenotype: {trait: disease, h2: 0.8, n-causal: 100}
      gwas: {trait: disease, covariates: [age, sex]}
      prs: {clump-r2: 0.1}
      train: {folds: 5}

Keys are the command-line option names of the stage commands (``gwas-prs qc
--min-maf`` → ``qc: {min-maf: …}``). ``ingest`` and ``qc`` always run (their
sections may be empty or absent); ``simulate-phenotype``, ``gwas``, ``prs`` and
``train`` run when their section is present. Relative paths are resolved
against the folder of the pipeline file (which may be on ``gs://``: then they are
``gs://`` paths too).

:func:`load_pipeline` checks everything before any work: unknown keys, wrong
types, unknown stages, missing inputs; each problem is one line
``FILE:LINE: problem; what to do`` (an :class:`~gwas_prs.core.errors.InputError`).
"""

from __future__ import annotations

import glob
import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from gwas_prs.core import storage
from gwas_prs.core.errors import InputError
from gwas_prs.core.run_folder import RunFolder
from gwas_prs.core.stage_options import STAGE_OPTIONS, StageOptions

#: Pipeline stages in execution order (names of the ``stages:`` section).
PIPELINE_STAGES: tuple[str, ...] = (
    "ingest",
    "qc",
    "simulate-phenotype",
    "gwas",
    "prs",
    "train",
)
#: Stages that always run (their section may be omitted).
ALWAYS: tuple[str, ...] = ("ingest", "qc")


@dataclass(frozen=True)
class Option:
    """One key of a section: its type and default."""

    kind: str  # int | float | bool | str | path | str-list | float-list | paths
    default: Any = None
    required: bool = False
    choices: tuple[str, ...] = ()


def _stage_section(options: StageOptions) -> dict[str, Option]:
    """A stage's keys: its declared options (:mod:`gwas_prs.core.stage_options`), in order."""
    return {
        o.name: Option(o.kind, o.default, required=o.required, choices=o.choices) for o in options
    }


#: Every section's keys, named like the CLI options.
SCHEMA: dict[str, dict[str, Option]] = {
    "inputs": {
        "vcfs": Option("paths", required=True),
        "samples": Option("path"),
        "phenotypes": Option("path"),
    },
    "hail": {
        "cores": Option("int"),
        "driver-memory": Option("str"),
        "seed": Option("int"),
        "engine": Option("str", None, choices=("auto", "local", "hail")),
        "spark-master": Option("str"),
    },
    # the stages' sections: gwas_prs.core.stage_options, shared with the commands and configs
    **{stage: _stage_section(STAGE_OPTIONS[stage]) for stage in PIPELINE_STAGES},
}
TOP_LEVEL: tuple[str, ...] = ("run", "inputs", "hail", "stages")


@dataclass(frozen=True)
class Pipeline:
    """A validated pipeline file.

    ``stages`` maps each stage that will run (in :data:`PIPELINE_STAGES` order)
    to its parameters with defaults filled in and paths resolved; keys use
    underscores (``min_maf``). ``traits`` are the traits of gwas/prs/train.
    """

    path: str
    run_dir: str
    vcfs: tuple[str, ...]
    samples: str | None
    phenotypes: str | None
    cores: int | None
    driver_memory: str | None
    seed: int | None
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ``auto``/``local``/``hail`` (None: ``$GWAS_PRS_ENGINE`` or auto), see :mod:`gwas_prs.engine.switch`
    engine: str | None = None
    traits: tuple[str, ...] = ()
    #: Spark master URL (None: ``$GWAS_PRS_SPARK_MASTER`` or local mode); not part of any
    #: stage's parameters hash: the same stage gives the same results on any master
    spark_master: str | None = None

    @property
    def phenotypes_file(self) -> str | None:
        """The phenotype file of gwas/prs/train: the simulated one when simulating."""
        if "simulate-phenotype" in self.stages:
            trait = self.stages["simulate-phenotype"]["trait"]
            return RunFolder(self.run_dir).simulated_phenotypes(trait)
        return self.phenotypes


class _Checker:
    """Walks the YAML node tree, reporting ``FILE:LINE`` of the first problem."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.remote = storage.is_remote(path)
        self.base = (
            path.rsplit("/", 1)[0] if self.remote else os.path.dirname(os.path.abspath(path))
        )

    def fail(self, node: yaml.Node | None, message: str) -> InputError:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        return InputError(f"{self.path}{line}: {message}")

    def mapping(self, node: yaml.Node, where: str) -> list[tuple[yaml.ScalarNode, yaml.Node]]:
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return []
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"'{where}' must be a mapping of keys to values")
        pairs: list[tuple[yaml.ScalarNode, yaml.Node]] = []
        seen: set[str] = set()
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                raise self.fail(key, f"'{where}': keys must be plain names")
            if key.value in seen:
                raise self.fail(key, f"'{where}': key '{key.value}' given twice")
            seen.add(key.value)
            pairs.append((key, value))
        return pairs

    def unknown(
        self, key: yaml.ScalarNode, where: str, allowed: tuple[str, ...] | list[str]
    ) -> InputError:
        hint = ""
        if "_" in key.value and key.value.replace("_", "-") in allowed:
            hint = f" (did you mean '{key.value.replace('_', '-')}'?)"
        return self.fail(
            key,
            f"unknown key '{key.value}' in '{where}'{hint}; allowed keys: {', '.join(allowed)}",
        )

    def value(self, node: yaml.Node, option: Option, where: str) -> Any:
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            data = None  # `key:` with nothing after it (serialising it gives no document)
        else:
            data = yaml.safe_load(yaml.serialize(node))
        kind = option.kind
        if data is None and not option.required:
            return option.default
        if data is None:
            raise self.fail(
                node, f"'{where}' is empty; give it a value (see examples/pipeline.yaml)"
            )
        if kind == "int":
            if isinstance(data, bool) or not isinstance(data, int):
                raise self.fail(node, f"'{where}' must be an integer, not {data!r}")
            return data
        if kind == "float":
            if isinstance(data, bool) or not isinstance(data, int | float):
                raise self.fail(node, f"'{where}' must be a number, not {data!r}")
            return float(data)
        if kind == "bool":
            if not isinstance(data, bool):
                raise self.fail(node, f"'{where}' must be true or false, not {data!r}")
            return data
        if kind in ("str", "path"):
            if not isinstance(data, str | int | float) or isinstance(data, bool) or data == "":
                raise self.fail(node, f"'{where}' must be a text value, not {data!r}")
            text = str(data)
            if option.choices and text not in option.choices:
                raise self.fail(
                    node, f"'{where}' is '{text}'; choose one of {', '.join(option.choices)}"
                )
            return self.resolve(text) if kind == "path" else text
        if kind in ("str-list", "float-list", "paths"):
            items = data if isinstance(data, list) else [data]
            if kind == "str-list" and isinstance(data, str):
                items = [x.strip() for x in data.split(",") if x.strip()]
            if kind == "float-list":
                if isinstance(data, str):
                    items = [x.strip() for x in data.split(",") if x.strip()]
                try:
                    return tuple(float(x) for x in items if not isinstance(x, bool))
                except (TypeError, ValueError):
                    raise self.fail(
                        node, f"'{where}' must be a list of numbers, e.g. [5e-8, 1e-4, 1]"
                    ) from None
            if not all(isinstance(x, str) and x for x in items):
                raise self.fail(node, f"'{where}' must be a text value or a list of them")
            if kind == "paths":
                return tuple(self.resolve(x) for x in items)
            return tuple(items)
        raise AssertionError(kind)  # pragma: no cover

    def resolve(self, path: str) -> str:
        if "://" in path or os.path.isabs(path):
            return path
        if self.remote:  # gs://bucket/dir/p.yaml: relative to gs://bucket/dir
            scheme, _, rest = self.base.partition("://")
            bucket, _, folder = rest.partition("/")
            joined = posixpath.normpath(posixpath.join("/", folder, path)).lstrip("/")
            return f"{scheme}://{bucket}/{joined}"
        return os.path.normpath(os.path.join(self.base, os.path.expanduser(path)))

    def section(self, node: yaml.Node, name: str, where: str) -> dict[str, Any]:
        schema = SCHEMA[name]
        values: dict[str, Any] = {}
        given: set[str] = set()
        for key, value in self.mapping(node, where):
            if key.value not in schema:
                raise self.unknown(key, where, list(schema))
            values[key.value.replace("-", "_")] = self.value(
                value, schema[key.value], f"{where}.{key.value}"
            )
            given.add(key.value)
        for name, option in schema.items():
            if name not in given:
                if option.required:
                    raise self.fail(node, f"'{where}' needs the key '{name}'")
                values[name.replace("-", "_")] = option.default
        return values


def load_pipeline(path: str) -> Pipeline:
    """Read and validate a pipeline file (see the module docstring).

    Raises
    ------
    InputError
        The file is missing, not YAML, or a key, value, stage or input is wrong;
        the message names the file, the line and the allowed keys.
    """
    if not storage.exists(path) or storage.is_dir(path):
        raise InputError(f"{path}: no such pipeline file")
    checker = _Checker(path)
    try:
        text = storage.read_text(path)
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file; a pipeline file is YAML") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{path}{line}: not valid YAML ({problem})") from None
    if root is None:
        raise InputError(f"{path}: the pipeline file is empty; see examples/pipeline.yaml")
    top = dict((k.value, (k, v)) for k, v in checker.mapping(root, "pipeline file"))
    for name, (key, _) in top.items():
        if name not in TOP_LEVEL:
            raise checker.unknown(key, "pipeline file", TOP_LEVEL)
    if "run" not in top:
        raise checker.fail(root, "the key 'run' (the run folder) is missing")
    if "inputs" not in top:
        raise checker.fail(root, "the section 'inputs' (with 'vcfs') is missing")
    run_dir = checker.value(top["run"][1], Option("path", required=True), "run")
    inputs = checker.section(top["inputs"][1], "inputs", "inputs")
    hail = checker.section(top["hail"][1], "hail", "hail") if "hail" in top else {}
    stage_nodes: dict[str, tuple[yaml.ScalarNode, yaml.Node]] = {}
    if "stages" in top:
        for key, value in checker.mapping(top["stages"][1], "stages"):
            if key.value not in PIPELINE_STAGES:
                raise checker.fail(
                    key,
                    f"unknown stage '{key.value}' in 'stages'; allowed stages: "
                    f"{', '.join(PIPELINE_STAGES)}",
                )
            stage_nodes[key.value] = (key, value)
    stages: dict[str, dict[str, Any]] = {}
    for name in PIPELINE_STAGES:
        if name in stage_nodes:
            stages[name] = checker.section(stage_nodes[name][1], name, f"stages.{name}")
        elif name in ALWAYS:
            stages[name] = checker.section(
                yaml.ScalarNode("tag:yaml.org,2002:null", ""), name, name
            )
    _check_inputs(checker, top, inputs, stages, stage_nodes)
    traits = _traits(checker, stages, stage_nodes, inputs)
    if stages["qc"]["hwe_controls_only"] and not (inputs["phenotypes"] and stages["qc"]["trait"]):
        node = stage_nodes["qc"][0] if "qc" in stage_nodes else None
        raise checker.fail(node, "qc: hwe-controls-only needs inputs.phenotypes and qc.trait")
    return Pipeline(
        path=storage.absolute(path),
        run_dir=run_dir,
        vcfs=inputs["vcfs"],
        samples=inputs["samples"],
        phenotypes=inputs["phenotypes"],
        cores=hail.get("cores"),
        driver_memory=hail.get("driver_memory"),
        seed=hail.get("seed"),
        engine=hail.get("engine"),
        spark_master=hail.get("spark_master"),
        stages=stages,
        traits=traits,
    )


def _check_inputs(
    checker: _Checker,
    top: Mapping[str, tuple[yaml.ScalarNode, yaml.Node]],
    inputs: dict[str, Any],
    stages: dict[str, dict[str, Any]],
    stage_nodes: Mapping[str, tuple[yaml.ScalarNode, yaml.Node]],
) -> None:
    node = top["inputs"][1]
    vcfs: list[str] = []
    for pattern in inputs["vcfs"]:
        if "://" in pattern:
            vcfs.append(pattern)
            continue
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        matches = [m for m in matches if os.path.isfile(m)]
        if not matches:
            raise checker.fail(
                node,
                f"inputs.vcfs: {pattern} matches no file; check the path (relative to this file)",
            )
        vcfs.append(pattern)
    for key in ("samples", "phenotypes"):
        value = inputs[key]
        if value and "://" not in value and not os.path.isfile(value):
            raise checker.fail(node, f"inputs.{key}: {value} does not exist")
    prs = stages.get("prs")
    if (
        prs
        and prs["weights"]
        and "://" not in prs["weights"]
        and not os.path.isfile(prs["weights"])
    ):
        raise checker.fail(
            stage_nodes["prs"][1], f"stages.prs.weights: {prs['weights']} does not exist"
        )
    if "simulate-phenotype" in stages and inputs["phenotypes"]:
        raise checker.fail(
            node,
            "inputs.phenotypes and stages.simulate-phenotype both give phenotypes; keep one",
        )
    for later, needs in (("prs", "gwas"), ("train", "prs")):
        if later in stages and needs not in stages:
            raise checker.fail(
                stage_nodes[later][0], f"stage '{later}' needs the stage '{needs}'; add it"
            )
    if "gwas" in stages and not inputs["phenotypes"] and "simulate-phenotype" not in stages:
        raise checker.fail(
            stage_nodes["gwas"][0],
            "stage 'gwas' needs phenotypes: set inputs.phenotypes or add stages.simulate-phenotype",
        )


def _traits(
    checker: _Checker,
    stages: dict[str, dict[str, Any]],
    stage_nodes: Mapping[str, tuple[yaml.ScalarNode, yaml.Node]],
    inputs: dict[str, Any],
) -> tuple[str, ...]:
    if "gwas" not in stages:
        return ()
    simulated = stages.get("simulate-phenotype", {}).get("trait")
    traits = tuple(stages["gwas"]["trait"] or ((simulated,) if simulated else ()))
    if not traits:
        raise checker.fail(stage_nodes["gwas"][1], "stages.gwas needs 'trait' (one or a list)")
    if simulated and traits != (simulated,):
        raise checker.fail(
            stage_nodes["gwas"][1],
            f"stages.gwas.trait: with simulate-phenotype the only trait is '{simulated}'",
        )
    if len(set(traits)) != len(traits):
        raise checker.fail(stage_nodes["gwas"][1], "stages.gwas.trait: a trait is given twice")
    return traits
