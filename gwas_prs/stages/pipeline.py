"""``gwas-prs run``: every stage from one pipeline file, skipping what is up to date.

The stage registry (:data:`STAGES`) holds one small :class:`StageSpec` per
pipeline stage: how to build its typed config from the pipeline file and how to
run it. :func:`plan` decides for every step whether it runs, and why;
:func:`execute` runs the steps that must run, in order, in one Hail session.

When a step is skipped
----------------------
A step is skipped when, for each of its manifest stages (``qc``,
``gwas:TRAIT``, …):

- the record is ``complete`` and every output it lists exists;
- the record carries the pipeline's stamp (``record["pipeline"]``, written
  after the stage completed) with the same *parameters hash* (SHA-256 of the
  stage's typed config minus run folder/overwrite, plus Hail's seed) and the
  same *input fingerprints* (size + SHA-256 of each input file; files over
  256 MiB are fingerprinted by size and their first and last 4 MiB);
- no earlier step re-runs in this invocation (a re-run of ``ingest``/``qc``
  re-runs everything after it; a re-run of ``gwas``/``prs`` re-runs the later
  steps of the same trait).

Anything else re-runs the step with ``overwrite`` — including a stage that was
run by its own command (no pipeline stamp: its parameters are unknown). A
process killed in the middle of a stage leaves the record ``running`` and only
``.NAME.partial-*`` temporaries (see :mod:`gwas_prs.core.run_folder`), so the next
``run`` redoes that stage from the last complete one; the stage runner removes
the temporaries.

Ranges
------
``--from STAGE`` starts at STAGE: earlier steps are not run and must be
complete (their parameter changes are ignored); ``--until STAGE`` stops after
STAGE; ``--force STAGE`` re-runs STAGE and everything after it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any

from gwas_prs.core import storage
from gwas_prs.core.errors import InputError, StageNotCompleteError
from gwas_prs.core.run_folder import (
    STATUS_COMPLETE,
    RunFolder,
    load_manifest,
    run_lock,
    save_manifest,
    split_stage_name,
)
from gwas_prs.engine.hail_context import HailConfig
from gwas_prs.stages.pipeline_config import PIPELINE_STAGES, Pipeline

logger = logging.getLogger(__name__)

#: Files above this size are fingerprinted by size + first/last 4 MiB.
FULL_HASH_LIMIT = 256 << 20
_SAMPLE = 4 << 20


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class StageSpec:
    """One pipeline stage.

    ``config(pipeline, trait, overwrite)`` builds (and validates) the stage's
    typed config; ``run(config, hail)`` runs it and returns its result object;
    ``inputs(pipeline, trait)`` lists the files whose fingerprints decide
    whether it re-runs; ``per_trait`` stages get one step per trait (``gwas``
    is one step for all traits: they are tested in one pass).
    """

    name: str
    config: Callable[[Pipeline, str | None, bool], Any]
    run: Callable[[Any, HailConfig], Any]
    inputs: Callable[[Pipeline, str | None], list[str]] = lambda p, t: []
    per_trait: bool = False
    module: str | None = None  # a module that must be importable (optional stages)


def _ingest_config(p: Pipeline, trait: str | None, overwrite: bool) -> Any:
    from gwas_prs.stages.ingest import IngestConfig

    s = p.stages["ingest"]
    return IngestConfig(
        vcfs=p.vcfs,
        run_dir=p.run_dir,
        samples_file=p.samples,
        sample_id_column=s["sample_id_column"],
        reference_genome=s["reference_genome"],
        keep_symbolic=s["keep_symbolic"],
        skip_unknown_contigs=s["skip_unknown_contigs"],
        hard_call_threshold=s["hard_call_threshold"],
        bgen_sample=s["bgen_sample"],
        overwrite=overwrite,
    )


def _ingest_run(config: Any, hail: HailConfig) -> Any:
    from gwas_prs.stages.ingest import run_ingest

    return run_ingest(config, hail)


def _ingest_inputs(p: Pipeline, trait: str | None) -> list[str]:
    from gwas_prs.stages.ingest import expand_vcf_paths
    from gwas_prs.stages.ingest_files import input_files

    files = input_files(expand_vcf_paths(p.vcfs), p.stages["ingest"]["bgen_sample"])
    return [*files, *([p.samples] if p.samples else [])]


def _qc_config(p: Pipeline, trait: str | None, overwrite: bool) -> Any:
    from gwas_prs.stages.qc import QcConfig

    s = dict(p.stages["qc"])
    # the phenotypes matter to qc only for HWE in controls (--hwe-controls-only)
    phenotypes = p.phenotypes if s.get("hwe_controls_only") else None
    return QcConfig(run_dir=p.run_dir, phenotypes=phenotypes, overwrite=overwrite, **s)


def _qc_run(config: Any, hail: HailConfig) -> Any:
    from gwas_prs.stages.qc import run_qc

    return run_qc(config, hail)


def _qc_inputs(p: Pipeline, trait: str | None) -> list[str]:
    return [p.phenotypes] if p.stages["qc"]["hwe_controls_only"] and p.phenotypes else []


@dataclass(frozen=True)
class _Simulation:
    run_dir: str
    simulation: Any
    overwrite: bool


def _simulate_config(p: Pipeline, trait: str | None, overwrite: bool) -> Any:
    from gwas_prs.methods.gwas.simulation import SimulationConfig

    s = p.stages["simulate-phenotype"]
    config = SimulationConfig(
        trait=s["trait"],
        h2=s["h2"],
        n_causal=s["n_causal"],
        prevalence=None if s["quantitative"] else s["prevalence"],
        covariate_effects=s["covariate_effects"],
        seed=s["seed"],
    )
    config.validate()
    return _Simulation(p.run_dir, config, overwrite)


def _simulate_run(config: Any, hail: HailConfig) -> Any:
    from gwas_prs.stages.simulate_phenotype import run_simulate_phenotype

    return run_simulate_phenotype(
        config.run_dir, config.simulation, overwrite=config.overwrite, hail=hail
    )


def _phenotype_inputs(p: Pipeline, trait: str | None) -> list[str]:
    return [p.phenotypes_file] if p.phenotypes_file else []


def _gwas_config(p: Pipeline, trait: str | None, overwrite: bool) -> Any:
    from gwas_prs.stages.gwas import GwasConfig

    s = p.stages["gwas"]
    config = GwasConfig(
        run_dir=p.run_dir,
        phenotypes_file=str(p.phenotypes_file),
        traits=p.traits,
        covariates=tuple(s["covariates"]),
        n_pcs=s["n_pcs"],
        test=s["test"],
        xchr_model=s["xchr_model"],
        split_seed=s["split_seed"],
        overwrite=overwrite,
    )
    config.validate()
    return config


def _gwas_run(config: Any, hail: HailConfig) -> Any:
    from gwas_prs.stages.gwas import run_gwas

    return run_gwas(config, hail)


def _prs_config(p: Pipeline, trait: str | None, overwrite: bool) -> Any:
    from gwas_prs.methods.prs.clumping import ClumpParameters
    from gwas_prs.stages.prs import PrsConfig

    s = p.stages["prs"]
    config = PrsConfig(
        run_dir=p.run_dir,
        trait=str(trait),
        phenotypes_file=p.phenotypes_file,
        clump=ClumpParameters(
            r2=s["clump_r2"], kb=s["clump_kb"], p1=s["clump_p1"], p2=s["clump_p2"]
        ),
        thresholds=tuple(s["thresholds"]),
        methods=tuple(s["methods"]),
        ld_window_kb=s["ld_window_kb"],
        ldpred2_chains=s["ldpred2_chains"],
        ldpred2_burn_in=s["ldpred2_burn_in"],
        ldpred2_iterations=s["ldpred2_iterations"],
        sampler_seed=s["sampler_seed"],
        weights_file=s["weights"],
        sumstats_file=s["sumstats"],
        sumstats_format=s["sumstats_format"],
        sumstats_columns=s["sumstats_columns"],
        sumstats_n=s["sumstats_n"],
        sumstats_cases=s["sumstats_cases"],
        sumstats_controls=s["sumstats_controls"],
        covariates=tuple(s["covariates"]),
        n_pcs=s["n_pcs"],
        split_seed=s["split_seed"],
        allow_palindromic=s["allow_palindromic"],
        min_overlap=s["min_overlap"],
        allow_build_mismatch=s["allow_build_mismatch"],
        overwrite=overwrite,
    )
    config.validate()
    if config.sumstats_file and "gwas" in p.stages:
        raise InputError(
            "sumstats: an external GWAS replaces this run's own one (every labelled sample is "
            "a target); remove stages.gwas, or stages.prs.sumstats"
        )
    return config


def _prs_run(config: Any, hail: HailConfig) -> Any:
    from gwas_prs.stages.prs import run_prs

    return run_prs(config, hail)


def _prs_inputs(p: Pipeline, trait: str | None) -> list[str]:
    extra = [p.stages["prs"][k] for k in ("weights", "sumstats") if p.stages["prs"][k]]
    return [*_phenotype_inputs(p, trait), *extra]


def _train_config(p: Pipeline, trait: str | None, overwrite: bool) -> Any:
    # The train stage lives in gwas_prs.stages.train (imported only when a
    # pipeline asks for it, so pipelines without it work where it is absent).
    from gwas_prs.stages.train import TrainConfig

    s = p.stages["train"]
    config = TrainConfig(
        run_dir=p.run_dir,
        trait=str(trait),
        phenotypes_file=p.phenotypes_file,
        device=s["device"],
        folds=s["folds"],
        n_trials=s["n_trials"],
        seed=s["seed"],
        features=tuple(s["features"]),
        overwrite=overwrite,
    )
    config.validate()
    return config


def _train_run(config: Any, hail: HailConfig) -> Any:
    from gwas_prs.stages.train import run_train

    return run_train(config, hail)


#: The pipeline's stages, in execution order (names as in :data:`PIPELINE_STAGES`).
STAGES: dict[str, StageSpec] = {
    spec.name: spec
    for spec in (
        StageSpec("ingest", _ingest_config, _ingest_run, _ingest_inputs),
        StageSpec("qc", _qc_config, _qc_run, _qc_inputs),
        StageSpec("simulate-phenotype", _simulate_config, _simulate_run),
        StageSpec("gwas", _gwas_config, _gwas_run, _phenotype_inputs),
        StageSpec("prs", _prs_config, _prs_run, _prs_inputs, per_trait=True),
        StageSpec(
            "train",
            _train_config,
            _train_run,
            _phenotype_inputs,
            per_trait=True,
            module="gwas_prs.stages.train",
        ),
    )
}
assert tuple(STAGES) == PIPELINE_STAGES


# --------------------------------------------------------------------------- planning


@dataclass
class Step:
    """One unit of work: a stage for one trait (or all traits, for gwas)."""

    stage: str  # base stage name
    trait: str | None
    records: tuple[str, ...]  # manifest stage names it writes
    config: Any
    parameters_hash: str
    inputs: dict[str, str]  # path -> fingerprint
    action: str = "skip"  # "run" | "skip" | "not run"
    reason: str = ""

    @property
    def name(self) -> str:
        return ",".join(self.records)

    @property
    def runs(self) -> bool:
        return self.action == "run"


@dataclass
class Plan:
    pipeline: Pipeline
    steps: list[Step] = field(default_factory=list)

    @property
    def to_run(self) -> list[Step]:
        return [s for s in self.steps if s.runs]


def fingerprint(path: str) -> str:
    """``size:sha256`` of a file (sampled above :data:`FULL_HASH_LIMIT`); ``missing``."""
    if not storage.exists(path):
        return "missing"
    size = storage.file_size(path)
    if size <= FULL_HASH_LIMIT or storage.is_remote(path):
        return f"{size}:{storage.sha256_file(path)}"
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(_SAMPLE))
        handle.seek(size - _SAMPLE)
        digest.update(handle.read(_SAMPLE))
    return f"{size}:sampled-sha256:{digest.hexdigest()}"


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _relative_to_run(value: Any, run_dir: str) -> Any:
    if isinstance(value, str) and run_dir and value.startswith(run_dir.rstrip("/") + "/"):
        return "$RUN/" + value[len(run_dir.rstrip("/")) + 1 :]
    if isinstance(value, dict):
        return {k: _relative_to_run(v, run_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [_relative_to_run(v, run_dir) for v in value]
    return value


def parameters_of(config: Any, seed: int | None, run_dir: str = "") -> dict[str, Any]:
    """The parameters that identify a stage's output: its config without run
    folder, overwrite flag and worker counts, plus Hail's seed. Paths inside the
    run folder are written ``$RUN/…`` so a moved run folder keeps its hashes."""
    params = _relative_to_run(_jsonable(config), run_dir)
    if isinstance(params, dict) and "simulation" in params:  # _Simulation wrapper
        params = params["simulation"]
    for key in ("run_dir", "overwrite", "validation_workers"):
        params.pop(key, None)
    params["hail_seed"] = seed
    return dict(params)


def parameters_hash(parameters: Mapping[str, Any]) -> str:
    text = json.dumps(parameters, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _steps(pipeline: Pipeline) -> list[Step]:
    steps: list[Step] = []
    for name in PIPELINE_STAGES:
        if name not in pipeline.stages:
            continue
        spec = STAGES[name]
        if spec.module and importlib.util.find_spec(spec.module) is None:
            raise InputError(
                f"{pipeline.path}: stage '{name}' is not available in this installation "
                f"({spec.module} is missing); remove stages.{name} or update gwas-prs"
            )
        if name == "simulate-phenotype":
            units: list[tuple[str | None, tuple[str, ...]]] = [
                (t := pipeline.stages[name]["trait"], (f"{name}:{t}",))
            ]
        elif name == "gwas":
            units = [(None, tuple(f"gwas:{t}" for t in pipeline.traits))]
        elif spec.per_trait:
            units = [(t, (f"{name}:{t}",)) for t in pipeline.traits]
        else:
            units = [(None, (name,))]
        for trait, records in units:
            try:
                config = spec.config(pipeline, trait, False)
            except InputError as exc:
                raise InputError(f"{pipeline.path}: stages.{name}: {exc}") from None
            params = parameters_of(config, pipeline.seed, pipeline.run_dir)
            steps.append(Step(name, trait, records, config, parameters_hash(params), {}))
    return steps


def _base_index(stage: str) -> int:
    return PIPELINE_STAGES.index(stage)


def _check_stage_name(option: str, stage: str | None, pipeline: Pipeline) -> None:
    if stage is None:
        return
    if stage not in PIPELINE_STAGES:
        raise InputError(
            f"{option} {stage}: unknown stage; choose one of {', '.join(PIPELINE_STAGES)}"
        )
    if stage not in pipeline.stages:
        raise InputError(
            f"{option} {stage}: {pipeline.path} has no stage '{stage}'; "
            f"its stages: {', '.join(pipeline.stages)}"
        )


def _record_problem(run: RunFolder, raw: Mapping[str, Any] | None) -> str | None:
    """Why a manifest record is not a usable complete stage (None if it is)."""
    if raw is None:
        return "never ran"
    status = raw.get("status")
    if status != STATUS_COMPLETE:
        return {
            "running": "interrupted (left 'running')",
            "failed": f"failed last time ({raw.get('error')})",
            "stale": "stale (an earlier stage was re-run)",
        }.get(str(status), f"status '{status}'")
    for name, path in (raw.get("outputs") or {}).items():
        if not storage.exists(run.resolve(path)):
            return f"output '{name}' is missing"
    return None


def _depends_on(later: Step, earlier: Step) -> bool:
    if _base_index(later.stage) <= _base_index(earlier.stage):
        return False
    if earlier.trait is None or later.trait is None:
        return True
    return earlier.trait == later.trait


def plan(
    pipeline: Pipeline,
    *,
    start: str | None = None,
    until: str | None = None,
    force: str | None = None,
) -> Plan:
    """Decide what runs (see the module docstring). Starts no JVM.

    Raises
    ------
    InputError
        An unknown stage in ``start``/``until``/``force``, or a stage config that
        does not validate.
    StageNotCompleteError
        ``start`` is given but an earlier step is not complete.
    """
    _check_stage_name("--from", start, pipeline)
    _check_stage_name("--until", until, pipeline)
    _check_stage_name("--force", force, pipeline)
    if start and until and _base_index(start) > _base_index(until):
        raise InputError(f"--from {start} comes after --until {until}")
    run = RunFolder(pipeline.run_dir)
    manifest = load_manifest(run)["stages"] if storage.exists(run.manifest) else {}
    result = Plan(pipeline)
    for step in _steps(pipeline):
        index = _base_index(step.stage)
        spec = STAGES[step.stage]
        records = [manifest.get(r) for r in step.records]
        problems = [_record_problem(run, raw) for raw in records]
        if start and index < _base_index(start):
            bad = next((p for p in problems if p), None)
            if bad:
                raise StageNotCompleteError(
                    f"{run.root}: --from {start}: the earlier stage '{step.name}' is not complete "
                    f"({bad}); run without --from"
                )
            step.action, step.reason = "skip", f"before --from {start}"
        elif until and index > _base_index(until):
            step.action, step.reason = "not run", f"after --until {until}"
        else:
            step.inputs = {path: fingerprint(path) for path in spec.inputs(pipeline, step.trait)}
            step.action, step.reason = "run", _why_run(step, records, problems, force, result.steps)
            if not step.reason:
                step.action, step.reason = "skip", "complete; parameters and inputs unchanged"
        result.steps.append(step)
    return result


def _why_run(
    step: Step,
    records: list[Mapping[str, Any] | None],
    problems: list[str | None],
    force: str | None,
    earlier: Iterable[Step],
) -> str:
    if force and _base_index(step.stage) >= _base_index(force):
        return f"--force {force}" if step.stage == force else f"downstream of --force {force}"
    for name, problem in zip(step.records, problems, strict=True):
        if problem:
            return f"{name}: {problem}" if len(step.records) > 1 else problem
    upstream = [e for e in earlier if e.runs and _depends_on(step, e)]
    if upstream:
        return f"upstream stage {upstream[-1].name} re-runs"
    for raw in records:
        stamp = (raw or {}).get("pipeline")
        if not stamp:
            return "ran outside this pipeline (parameters unknown)"
        if stamp.get("parameters_hash") != step.parameters_hash:
            return f"parameters changed ({stamp.get('parameters_hash')} → {step.parameters_hash})"
        old_inputs = stamp.get("inputs") or {}
        if set(old_inputs) != set(step.inputs):
            return "input files changed"
        for path, fp in step.inputs.items():
            if old_inputs.get(path) != fp:
                return f"input changed: {path}"
    return ""


# --------------------------------------------------------------------------- execution


def hail_config(pipeline: Pipeline) -> HailConfig:
    return HailConfig(
        run_dir=pipeline.run_dir,
        command="run",
        cores=pipeline.cores,
        driver_memory=pipeline.driver_memory,
        seed=pipeline.seed,
        reference_genome=pipeline.stages["ingest"]["reference_genome"],
        engine=pipeline.engine,
        master=pipeline.spark_master,
    )


def stamp(run: RunFolder, step: Step, pipeline_path: str) -> None:
    """Record in the manifest the parameters hash and input fingerprints that a
    completed step ran with (what later runs compare against)."""
    manifest = load_manifest(run)
    for record in step.records:
        raw = manifest["stages"].get(record)
        if raw is None or raw.get("status") != STATUS_COMPLETE:
            continue
        raw["pipeline"] = {
            "parameters_hash": step.parameters_hash,
            "inputs": step.inputs,
            "pipeline_file": pipeline_path,
        }
    save_manifest(run, manifest)


def execute(
    the_plan: Plan,
    *,
    on_start: Callable[[Step], None] = lambda s: None,
    on_result: Callable[[Step, Any], None] = lambda s, r: None,
) -> list[tuple[Step, Any]]:
    """Run the steps of ``the_plan`` that must run, in order; stamp each one.

    Hail starts once, at the first step that runs, with the pipeline's settings.
    The run folder's write lock is held from the first step to the last.
    """
    pipeline = the_plan.pipeline
    run = RunFolder(pipeline.run_dir)
    hail = hail_config(pipeline)
    done: list[tuple[Step, Any]] = []
    if not the_plan.to_run:
        return done
    with run_lock(run, "run"):
        for step in the_plan.to_run:
            spec = STAGES[step.stage]
            config = spec.config(pipeline, step.trait, True)
            on_start(step)
            logger.info("run: %s (%s)", step.name, step.reason)
            result = spec.run(config, hail)
            # inputs made by an earlier step of this run (simulated phenotypes) are
            # fingerprinted as they are now
            step.inputs = {path: fingerprint(path) for path in spec.inputs(pipeline, step.trait)}
            stamp(run, step, pipeline.path)
            on_result(step, result)
            done.append((step, result))
    return done


# --------------------------------------------------------------------------- status


#: The counts shown by ``gwas-prs status`` per stage (dotted paths into ``counts``).
KEY_COUNTS: dict[str, tuple[str, ...]] = {
    "ingest": ("samples", "variants"),
    "qc": ("samples_out", "variants_out"),
    "simulate-phenotype": ("samples", "cases"),
    "gwas": ("variants_tested", "genome_wide_significant", "lambda_gc"),
    "prs": ("best_threshold", "test.with_prs"),
    "train": ("test", "xgboost_roc_auc", "covariates_pcs_prs_roc_auc"),
}
_COUNT_LABELS = {
    "samples_out": "samples",
    "variants_out": "variants",
    "genome_wide_significant": "p<5e-8",
    "lambda_gc": "λGC",
    "variants_tested": "tested",
    "best_threshold": "best p≤",
    "test.with_prs": "test metric",
    "test": "test samples",
    "xgboost_roc_auc": "XGBoost AUC",
    "covariates_pcs_prs_roc_auc": "logistic+PRS AUC",
}


def key_counts(stage: str, counts: Mapping[str, Any]) -> str:
    """A short ``name=value`` summary of a stage's counts."""
    base, _ = split_stage_name(stage)
    paths = KEY_COUNTS.get(base)
    if paths is None:
        paths = tuple(k for k, v in counts.items() if isinstance(v, int | float))[:3]
    parts = []
    for path in paths:
        value: Any = counts
        for key in path.split("."):
            value = value.get(key) if isinstance(value, Mapping) else None
        if value is None:
            continue
        text = f"{value:,}" if isinstance(value, int) else f"{value:.4g}"
        parts.append(f"{_COUNT_LABELS.get(path, path)}={text}")
    return " ".join(parts)


def status_rows(run_dir: str) -> list[dict[str, Any]]:
    """One row per manifest stage, in pipeline order (no JVM).

    Raises
    ------
    InputError
        ``run_dir`` has no manifest.
    """
    run = RunFolder(run_dir)
    if not storage.exists(run.manifest):
        raise InputError(
            f"{run_dir}: no manifest.json; not a run folder (create one with 'gwas-prs run' or 'gwas-prs ingest')"
        )
    stages = load_manifest(run)["stages"]

    def order(name: str) -> tuple[int, str]:
        base, trait = split_stage_name(name)
        rank = PIPELINE_STAGES.index(base) if base in PIPELINE_STAGES else len(PIPELINE_STAGES)
        return rank, trait or ""

    rows = []
    for name in sorted(stages, key=order):
        raw = stages[name]
        status = raw.get("status", "?")
        if status == STATUS_COMPLETE and _record_problem(run, raw):
            status = "complete (output missing)"
        rows.append(
            {
                "stage": name,
                "status": status,
                "parameters_hash": (raw.get("pipeline") or {}).get("parameters_hash"),
                "counts": key_counts(name, raw.get("counts") or {}),
                "wall_time_s": raw.get("wall_time_s"),
                "engine": raw.get("engine"),
                "finished": raw.get("finished"),
                "error": raw.get("error"),
            }
        )
    return rows
