"""Compare two finished run folders of the same pipeline, one per engine.

:func:`compare_runs` returns one row per (stage, quantity) with the largest
difference found and the tolerance it is held to; the engine-comparison test
asserts every row, and prints the table (it is the table of the issue note).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass
class Row:
    stage: str
    quantity: str
    difference: float  # the largest one found (0 = identical)
    tolerance: float
    note: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.difference <= self.tolerance)


def _tsv(run: Path, path: str) -> pd.DataFrame:
    return pd.read_csv(
        run / path,
        sep="\t",
        dtype={"s": str, "i": str, "j": str, "sample_id": str, "chromosome": str},
    )


def _set_difference(a: set[object], b: set[object]) -> float:
    return float(len(a ^ b))


def _max_rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    scale = np.maximum(np.abs(a), np.abs(b))
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(scale > 0, np.abs(a - b) / scale, 0.0)
    return float(np.nanmax(rel)) if rel.size else 0.0


def compare_runs(local: Path, hail: Path, trait: str = "disease") -> list[Row]:
    rows: list[Row] = []
    # qc: kept samples and variants, filter counts
    a, b = _tsv(local, "silver/qc/sample_qc.tsv"), _tsv(hail, "silver/qc/sample_qc.tsv")
    rows.append(
        Row(
            "qc",
            "kept samples (symmetric difference)",
            _set_difference(set(a.loc[a["pass"], "s"]), set(b.loc[b["pass"], "s"])),
            0,
        )
    )
    va = pd.read_parquet(local / "silver/qc/variant_qc.parquet")
    vb = pd.read_parquet(hail / "silver/qc/variant_qc.parquet")
    key = ["contig", "position", "ref", "alt"]

    def kept(frame: pd.DataFrame) -> set[object]:
        return set(map(tuple, frame.loc[frame["pass"].astype(bool), key].astype(str).values))

    rows.append(
        Row("qc", "kept variants (symmetric difference)", _set_difference(kept(va), kept(vb)), 0)
    )
    fa, fb = _tsv(local, "silver/qc/filter_counts.tsv"), _tsv(hail, "silver/qc/filter_counts.tsv")
    rows.append(
        Row(
            "qc",
            "filter counts (largest |Δ removed|)",
            float(np.abs(fa["removed"].to_numpy() - fb["removed"].to_numpy()).max()),
            0,
        )
    )
    pa_, pb = (
        _tsv(local, "silver/ancestry/pruned_variants.tsv"),
        _tsv(hail, "silver/ancestry/pruned_variants.tsv"),
    )
    rows.append(
        Row(
            "qc",
            "LD-pruned variants (symmetric difference)",
            _set_difference(
                set(map(tuple, pa_.astype(str).values)), set(map(tuple, pb.astype(str).values))
            ),
            0,
        )
    )
    # KING
    ka, kb = (
        _tsv(local, "silver/ancestry/related_pairs.tsv"),
        _tsv(hail, "silver/ancestry/related_pairs.tsv"),
    )
    ka = ka.set_index(["i", "j"])["kinship"]
    kb = kb.set_index(["i", "j"])["kinship"]
    rows.append(
        Row(
            "qc",
            "KING pairs (symmetric difference)",
            _set_difference(set(ka.index), set(kb.index)),
            0,
        )
    )
    common = ka.index.intersection(kb.index)
    rows.append(
        Row(
            "qc",
            "KING kinship (max |Δ|)",
            float(np.abs(ka.loc[common] - kb.loc[common]).max()) if len(common) else 0.0,
            1e-6,
        )
    )
    # PCA
    sa = _tsv(local, "silver/ancestry/scores.tsv").set_index("s")
    sb = _tsv(hail, "silver/ancestry/scores.tsv").set_index("s")
    shared = sa.index.intersection(sb.index)
    sa, sb = sa.loc[shared], sb.loc[shared]
    worst = min(abs(np.corrcoef(sa[c], sb[c])[0, 1]) for c in sa.columns)
    rows.append(Row("qc", "PC scores (1 - min |r| over PCs)", 1 - worst, 1e-4))
    rows.append(
        Row(
            "qc",
            "PC scores, same sign convention (max |Δ|)",
            float(np.abs(sa.to_numpy() - sb.to_numpy()).max()),
            1e-6,
        )
    )
    qa = pd.read_parquet(local / "gold/frequencies.parquet")
    qb = pd.read_parquet(hail / "gold/frequencies.parquet")
    qkey = ["contig", "position", "ref", "alt", "grouping", "group"]
    qm = qa.merge(qb, on=qkey, suffixes=("_l", "_h"))
    rows.append(
        Row(
            "qc",
            "frequency rows (Δ count)",
            float(abs(len(qa) - len(qb)) + abs(len(qa) - len(qm))),
            0,
        )
    )
    rows.append(
        Row(
            "qc",
            "allele counts AC, AN (max |Δ|)",
            float(
                max(np.abs(qm["AC_l"] - qm["AC_h"]).max(), np.abs(qm["AN_l"] - qm["AN_h"]).max())
            ),
            0,
        )
    )
    ea = _tsv(local, "silver/ancestry/eigenvalues.tsv")["eigenvalue"].to_numpy()
    eb = _tsv(hail, "silver/ancestry/eigenvalues.tsv")["eigenvalue"].to_numpy()
    rows.append(Row("qc", "eigenvalues (max relative Δ)", _max_rel(ea, eb), 1e-6))
    # GWAS
    ga = pd.read_csv(local / f"gold/gwas/{trait}/sumstats.tsv.gz", sep="\t")
    gb = pd.read_csv(hail / f"gold/gwas/{trait}/sumstats.tsv.gz", sep="\t")
    gkey = ["chromosome", "base_pair_location", "effect_allele", "other_allele"]
    merged = ga.merge(gb, on=gkey, suffixes=("_l", "_h"))
    rows.append(
        Row(
            "gwas",
            "variants tested (Δ count)",
            float(abs(len(ga) - len(gb)) + abs(len(ga) - len(merged))),
            0,
        )
    )
    effect = "beta" if "beta" in ga.columns else "odds_ratio"
    for column, tolerance in ((effect, 1e-6), ("standard_error", 1e-6)):
        rows.append(
            Row(
                "gwas",
                f"{column} (max relative Δ)",
                _max_rel(merged[f"{column}_l"].to_numpy(), merged[f"{column}_h"].to_numpy()),
                tolerance,
            )
        )
    la = -np.log10(merged["p_value_l"].to_numpy(float))
    lb = -np.log10(merged["p_value_h"].to_numpy(float))
    rows.append(Row("gwas", "-log10 p (max |Δ|)", float(np.nanmax(np.abs(la - lb))), 1e-4))
    # PRS
    ca, cb = _tsv(local, f"gold/prs/{trait}/clumps.tsv"), _tsv(hail, f"gold/prs/{trait}/clumps.tsv")

    def index_variants(frame: pd.DataFrame) -> set[object]:
        chosen = frame[frame["index_variant"].astype(bool)] if "index_variant" in frame else frame
        return set(map(tuple, chosen[["chromosome", "position", "ref", "alt"]].astype(str).values))

    rows.append(
        Row(
            "prs",
            "clump index variants (symmetric difference)",
            _set_difference(index_variants(ca), index_variants(cb)),
            0,
        )
    )
    ra = _tsv(local, f"gold/prs/{trait}/scores.tsv").set_index("sample_id")
    rb = _tsv(hail, f"gold/prs/{trait}/scores.tsv").set_index("sample_id")
    rows.append(
        Row(
            "prs",
            "scored samples (symmetric difference)",
            _set_difference(set(ra.index), set(rb.index)),
            0,
        )
    )

    def is_threshold(column: str) -> bool:
        try:
            float(column.removeprefix("prs_"))
        except ValueError:
            return False
        return True

    prs_columns = [c for c in ra.columns if c.startswith("prs") and is_threshold(c)]
    ld_columns = [c for c in ra.columns if c.startswith("prs") and not is_threshold(c)]
    shared = ra.index.intersection(rb.index)
    ra, rb = ra.loc[shared], rb.loc[shared]
    rows.append(
        Row(
            "prs",
            "C+T scores (max |Δ|)",
            float(
                np.nanmax(np.abs(ra[prs_columns].to_numpy(float) - rb[prs_columns].to_numpy(float)))
            ),
            1e-9,
        )
    )
    if ld_columns or [c for c in rb.columns if c.startswith("prs") and not is_threshold(c)]:
        missing = sorted(
            set(ld_columns)
            ^ {c for c in rb.columns if c.startswith("prs_") and not is_threshold(c)}
        )
        rows.append(Row("prs", "LD-method score columns (symmetric difference)", len(missing), 0))
        both = [c for c in ld_columns if c in rb.columns]
        scale = float(np.nanmax(np.abs(ra[both].to_numpy(float)))) or 1.0
        rows.append(
            Row(
                "prs",
                "LD-method scores (max |Δ| / max |score|)",
                float(np.nanmax(np.abs(ra[both].to_numpy(float) - rb[both].to_numpy(float))))
                / scale,
                # the same LD to 1e-10 (BlockMatrix vs numpy), the same seeded chains; the
                # samplers and lassosum2 (tol 1e-5 per sweep) amplify it at most ~1e4-fold
                1e-6,
            )
        )
    # feature table
    xa = pd.read_parquet(local / f"gold/features/{trait}.parquet")
    xb = pd.read_parquet(hail / f"gold/features/{trait}.parquet")
    key_column = xa.columns[0]
    shared = sorted(set(xa[key_column]) & set(xb[key_column]))
    xa = xa.set_index(key_column).loc[shared].reset_index()
    xb = xb.set_index(key_column).loc[shared].reset_index()
    numeric = [
        c
        for c in xa.columns
        if pd.api.types.is_numeric_dtype(xa[c]) and not pd.api.types.is_bool_dtype(xa[c])
    ]
    other = [c for c in xa.columns if c not in numeric]
    rows.append(
        Row(
            "features",
            "numeric columns (max |Δ|)",
            float(np.nanmax(np.abs(xa[numeric].to_numpy(float) - xb[numeric].to_numpy(float)))),
            1e-9,
        )
    )
    rows.append(
        Row(
            "features",
            "other columns (cells that differ)",
            float((xa[other].astype(str).to_numpy() != xb[other].astype(str).to_numpy()).sum()),
            0,
        )
    )
    # the model trained on the two feature tables
    import json

    ma = json.loads((local / f"gold/models/{trait}/metrics.json").read_text())
    mb = json.loads((hail / f"gold/models/{trait}/metrics.json").read_text())
    numbers_a, other_a = _leaves(ma)
    numbers_b, other_b = _leaves(mb)
    rows.append(
        Row(
            "train",
            "metrics.json numbers (max |Δ|)",
            max((abs(v - numbers_b.get(k, np.inf)) for k, v in numbers_a.items()), default=0.0)
            if numbers_a.keys() == numbers_b.keys()
            else np.inf,
            1e-6,
        )
    )
    rows.append(
        Row("train", "metrics.json other values (that differ)", float(other_a != other_b), 0)
    )
    return rows


def _leaves(value: object, path: str = "") -> tuple[dict[str, float], dict[str, object]]:
    """The numeric leaves of a JSON document by path, and the other leaves."""
    numbers: dict[str, float] = {}
    other: dict[str, object] = {}
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = [(str(i), v) for i, v in enumerate(value)]
    else:
        if isinstance(value, int | float) and not isinstance(value, bool):
            numbers[path] = float(value)
        else:
            other[path] = value
        return numbers, other
    for key, item in items:
        n, o = _leaves(item, f"{path}.{key}")
        numbers.update(n)
        other.update(o)
    return numbers, other


def table(rows: list[Row]) -> str:
    lines = ["| stage | quantity | max difference | tolerance | ok |", "|---|---|---|---|---|"]
    lines += [
        f"| {r.stage} | {r.quantity} | {r.difference:.3g} | {r.tolerance:g} | {'yes' if r.ok else 'NO'} |"
        for r in rows
    ]
    return "\n".join(lines)
