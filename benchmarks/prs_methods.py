"""PRS methods on a simulated cohort: test discrimination of each score, the chosen
model and the oracle, with bootstrap CIs and paired differences against C+T.

Reads a run folder where ``simulate-phenotype``, ``prs`` (every method) and ``train``
ran for each ``--trait`` (an in-sample GWAS trait, and optionally a trait whose
``prs`` used ``--sumstats`` from a disjoint half: see ``--help``), and writes
``benchmarks/results/DATE-NAME.json`` and ``.md``. It times nothing itself: the
stage times and memory come from the manifest and from ``--times`` (a file of
``name seconds_s_KB`` lines, as ``/usr/bin/time -f %e_s_%M_KB`` prints).

Example (the issue-17 cohort)::

    gwas-prs simulate-cohort --out cohort --samples 8000 --variants 30000 \\
        --chromosomes 15 --seed 7
    ... ingest, qc, simulate-phenotype --h2 0.5 --n-causal 300 --prevalence 0.2,
    gwas, prs --methods ct,ldpred2-auto,ldpred2-inf,ldpred2-grid,lassosum2, train
    python -m benchmarks.prs_methods --run run --trait disease --trait disease_ext
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gwas_prs.methods.model import evaluation as ev

METHOD_COLUMNS = {
    "ldpred2-auto": "prs_ldpred2_auto",
    "ldpred2-inf": "prs_ldpred2_inf",
    "ldpred2-grid": "prs_ldpred2_grid",
    "lassosum2": "prs_lassosum2",
}
RESAMPLES = 1000


def trait_results(run: Path, trait: str, seed: int) -> dict[str, Any]:
    prs_dir = run / "gold" / "prs" / trait
    metrics = json.loads((prs_dir / "metrics.json").read_text())
    scores = pd.read_csv(prs_dir / "scores.tsv", sep="\t").set_index("sample_id")
    features = pd.read_parquet(run / "gold" / "features" / f"{trait}.parquet").set_index(
        "sample_id"
    )
    test = features[features["split"] == "test"]
    y = test["label"].to_numpy(dtype=int)
    oracle_file = run / "simulated" / trait / "genetic_values.tsv"
    genetic = pd.read_csv(oracle_file, sep="\t").set_index("sample_id").iloc[:, 0]
    ct_column = metrics["methods"]["prs_ct"]["score_column"]
    columns = {"C+T (" + ct_column.removeprefix("prs_") + ")": ct_column}
    columns |= {m: c for m, c in METHOD_COLUMNS.items() if c in scores.columns}
    values = {
        name: scores.loc[test.index, col].to_numpy(dtype=float) for name, col in columns.items()
    }
    values["oracle (true genetic value)"] = genetic.reindex(test.index).to_numpy(dtype=float)
    idx = ev.bootstrap_indices(y, RESAMPLES, seed)
    alone = ev.discrimination(y, values, idx)
    ct_name = next(iter(columns))
    versus_ct = {
        name: {
            metric: ev.paired_difference(f, y, values[name], values[ct_name], idx)
            for metric, f in ev.METRICS.items()
        }
        for name in columns
        if name != ct_name
    }
    train = json.loads((run / "gold" / "models" / trait / "metrics.json").read_text())
    models = {
        name: {"label": m["label"], "roc_auc": m["roc_auc"], "pr_auc": m["pr_auc"]}
        for name, m in train["models"].items()
    }
    method_info = {
        name: {
            k: v
            for k, v in metrics["methods"][f"prs_{name.replace('-', '_')}"].items()
            if k in ("time_s", "estimates", "ld_samples", "variants")
        }
        for name in columns
        if name != ct_name
    }
    return {
        "trait": trait,
        "test_n": len(y),
        "test_cases": int(y.sum()),
        "score_alone_test": alone,
        "versus_ct_test": versus_ct,
        "prs_stage_incremental_test": {
            key: metrics["methods"][key]["test"] for key in metrics["methods"]
        },
        "methods": method_info,
        "ld_nonzero": metrics["counts"].get("ld_nonzero"),
        "models_test": models,
        "chosen": train["chosen"],
        "selection_reason": train["selection"]["reason"],
        "chosen_vs_baselines": train["selection"]["test_vs_baselines"],
        "warnings": train["warnings"],
    }


def _ci(m: dict[str, float]) -> str:
    return f"{m['estimate']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"


def _delta(m: dict[str, float]) -> str:
    return f"{m['estimate']:+.3f} [{m['ci_low']:+.3f}, {m['ci_high']:+.3f}]"


def markdown(result: dict[str, Any]) -> str:
    lines = [f"# {result['title']}", "", result["machine"], ""]
    if result.get("times"):
        lines += ["| step | wall s | peak RSS MiB |", "|:--|--:|--:|"]
        for name, (seconds, kib) in result["times"].items():
            lines.append(f"| {name} | {seconds:.1f} | {kib / 1024:.0f} |")
        lines.append("")
    for trait in result["traits"]:
        lines += [
            f"## {trait['trait']}: {trait['test_n']} test samples, {trait['test_cases']} cases",
            "",
            "Each score alone on test (bootstrap 95% CI), and its paired difference to C+T:",
            "",
            "| score | ROC-AUC | PR-AUC | Δ ROC-AUC vs C+T | Δ PR-AUC vs C+T | time s |",
            "|:--|:--|:--|:--|:--|--:|",
        ]
        for name, m in trait["score_alone_test"].items():
            versus = trait["versus_ct_test"].get(name)
            info = trait["methods"].get(name, {})
            lines.append(
                f"| {name} | {_ci(m['roc_auc'])} | {_ci(m['pr_auc'])} | "
                + (f"{_delta(versus['roc_auc'])} | {_delta(versus['pr_auc'])}" if versus else "| ")
                + f" | {info.get('time_s', '')} |"
            )
        auto = trait["methods"].get("ldpred2-auto", {}).get("estimates")
        if auto:
            lines += [
                "",
                f"LDpred2-auto: {auto['chains_kept']} of {auto['chains']} chains kept, h² "
                f"{auto['h2']:.3f} [{auto['h2_interval'][0]:.3f}, {auto['h2_interval'][1]:.3f}], "
                f"p {auto['p']:.4f}; started from the LD score regression h² "
                f"{auto['h2_init']:.3f}. LD: {trait['ld_nonzero']:,.0f} stored correlations.",
            ]
        lines += [
            "",
            "Models on test (train stage; fitted on train + validation):",
            "",
            "| model | ROC-AUC | PR-AUC |",
            "|:--|:--|:--|",
        ]
        for name, m in trait["models_test"].items():
            chosen = " **(chosen)**" if name == trait["chosen"] else ""
            lines.append(f"| {m['label']}{chosen} | {_ci(m['roc_auc'])} | {_ci(m['pr_auc'])} |")
        lines += ["", f"Choice: {trait['selection_reason']}", ""]
        for baseline, delta in trait["chosen_vs_baselines"].items():
            if "delta_pr_auc" in delta:
                lines.append(
                    f"- chosen − {baseline} on test (paired bootstrap): Δ ROC-AUC "
                    f"{_delta(delta['delta_roc_auc'])}, Δ PR-AUC {_delta(delta['delta_pr_auc'])}"
                )
        for warning in trait["warnings"]:
            lines.append(f"- warning: {warning}")
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", required=True, type=Path)
    parser.add_argument("--trait", action="append", required=True)
    parser.add_argument("--times", type=Path, help="lines 'name 12.3_s_4567_KB'")
    parser.add_argument("--title", default="PRS methods on a simulated cohort")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--name", default="prs-methods")
    args = parser.parse_args(argv)
    times: dict[str, tuple[float, float]] = {}
    if args.times:
        for line in args.times.read_text().splitlines():
            name, value = line.split()
            seconds, _, kib, _ = value.split("_")
            times[name] = (float(seconds), float(kib))
    result = {
        "title": args.title,
        "machine": f"{platform.platform()}, numpy {np.__version__}",
        "times": times,
        "traits": [trait_results(args.run, t, args.seed) for t in args.trait],
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{dt.date.today():%Y-%m-%d}-{args.name}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
