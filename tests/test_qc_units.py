"""Pure-Python parts of QC: outliers, kinship degrees, ancestry forest, report figures (no JVM)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gwas_prs.methods.ancestry.structure import assign_ancestry
from gwas_prs.methods.qc.sample_qc import heterozygosity_outliers, kinship_degree
from gwas_prs.reports.qc import histogram_figure, pc_scatter, qc_report, scree_plot


def test_heterozygosity_outliers_use_the_kept_samples_only() -> None:
    f = pd.Series([0.0, 0.01, -0.01, 0.02, -0.02, 0.5, 9.0], index=list("abcdefg"))
    keep = pd.Series([True] * 6 + [False], index=f.index)  # g failed call rate: ignored
    outlier, mean, sd = heterozygosity_outliers(f, keep, n_sd=2.0)
    values = f.iloc[:6]
    assert abs(mean - values.mean()) < 1e-12  # tolerance: float rounding
    assert abs(sd - values.std(ddof=0)) < 1e-12
    assert outlier.to_dict() == {
        "a": False,
        "b": False,
        "c": False,
        "d": False,
        "e": False,
        "f": True,
        "g": False,
    }


def test_kinship_degrees() -> None:
    assert kinship_degree(0.45) == "duplicate/MZ twin"
    assert kinship_degree(0.25) == "1st degree"
    assert kinship_degree(0.1) == "2nd degree"
    assert kinship_degree(0.05) == "3rd degree"
    assert kinship_degree(0.03) == "unrelated"


def _clusters(n: int = 60, seed: int = 1) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    centres = {"AFR": (5, 0), "EUR": (-3, 4), "EAS": (-3, -4)}
    rows, labels = [], []
    for name, (x, y) in centres.items():
        rows.append(rng.normal([x, y, 0, 0], 0.5, size=(n, 4)))
        labels += [name] * n
    pcs = pd.DataFrame(np.vstack(rows), columns=["PC1", "PC2", "PC3", "PC4"])
    pcs.index = pd.Index([f"S{i}" for i in range(len(pcs))], name="s")
    return pcs, pd.Series(labels, index=pcs.index)


def test_ancestry_forest_on_separated_clusters() -> None:
    pcs, labels = _clusters()
    labels.iloc[:5] = None  # unlabelled samples still get an assignment
    result = assign_ancestry(pcs, labels, label_field="super_pop", n_pcs=4, seed=0)
    assert result is not None
    assert result.cv_accuracy == 1.0  # clusters 8 SD apart: no error expected
    assert result.classes == ["AFR", "EAS", "EUR"]
    assert (result.assignments["assigned"].iloc[:5] == "AFR").all()
    assert result.assignments["probability"].between(0, 1).all()


def test_ancestry_forest_needs_two_labelled_groups() -> None:
    pcs, labels = _clusters()
    assert assign_ancestry(pcs, pd.Series("EUR", index=pcs.index), label_field="pop") is None
    assert assign_ancestry(pcs, labels.where(labels == "EUR"), label_field="pop") is None


def test_report_figures() -> None:
    from bokeh.models import Span

    fig = histogram_figure(
        [0, 0.5, 1.0], [3, 4], title="t", x_label="x", thresholds=[(0.95, "min")]
    )
    assert len([r for r in fig.center if isinstance(r, Span)]) == 1
    pcs, labels = _clusters(n=10)
    scatter = pc_scatter(pcs, labels)
    assert len(scatter.renderers) == 3  # one glyph per population
    assert len(scree_plot([0.1, 0.05, 0.01]).renderers) == 1
    samples = pd.DataFrame({"call_rate": [0.99, 1.0, 0.96], "het_f": [0.0, 0.1, -0.1]})
    hist: dict[str, list[float]] = {"edges": [0.0, 0.5, 1.0], "counts": [1, 2]}
    layout = qc_report(
        samples=samples,
        variant_hists={"call_rate": hist, "maf": hist, "log10_p_hwe": hist},
        filter_counts=pd.DataFrame({"unit": ["samples"], "filter": ["call_rate"], "removed": [1]}),
        thresholds={
            "min_sample_call_rate": 0.97,
            "min_variant_call_rate": 0.95,
            "min_maf": 0.01,
            "hwe_p": 1e-6,
        },
        het_bounds=(-0.2, 0.2),
        notes=["a note"],
    )
    assert layout is not None
