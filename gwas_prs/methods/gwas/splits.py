"""Seeded, stratified, disjoint sample splits.

Every sample with a non-missing label gets exactly one role:

- ``discovery`` — the GWAS sees only these;
- ``train`` / ``validation`` / ``test`` — the *target* set: PRS thresholds are
  chosen on ``validation`` and reported on ``test``; the risk model is fitted on
  ``train`` (cross-validated), early-stopped on ``validation`` and evaluated once
  on ``test``.

Strata are ancestry group × label (label binned into quintiles for a
quantitative trait), so each part has the same ancestry mix and prevalence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gwas_prs.core.errors import InputError

ROLES = ("discovery", "train", "validation", "test")


@dataclass(frozen=True)
class SplitFractions:
    """Fractions of labelled samples per role (they must sum to 1; ``discovery`` may be
    0: every sample a target, as with external summary statistics)."""

    discovery: float = 0.5
    train: float = 0.2
    validation: float = 0.15
    test: float = 0.15

    def validate(self) -> None:
        values = (self.discovery, self.train, self.validation, self.test)
        if self.discovery < 0 or any(v <= 0 for v in values[1:]) or abs(sum(values) - 1.0) > 1e-9:
            raise InputError(
                f"split fractions {values} must be positive (discovery may be 0) and sum to 1"
            )


def assign_splits(
    samples: pd.DataFrame,
    *,
    label: str,
    group: str | None,
    seed: int,
    fractions: SplitFractions | None = None,
) -> pd.Series:
    """The role of each sample (index aligned with ``samples``; missing label → NA).

    Within each stratum samples are shuffled with ``seed`` and cut at the
    cumulative fractions (largest-remainder rounding), so the result depends
    only on the data and the seed.
    """
    fractions = fractions or SplitFractions()
    fractions.validate()
    rng = np.random.default_rng(seed)
    labelled = samples[label].notna()
    y = samples.loc[labelled, label]
    if y.nunique() > 2:
        strata_label = pd.qcut(y.rank(method="first"), 5, labels=False).astype(str)
    else:
        strata_label = y.astype(str)
    strata = strata_label
    if group is not None:
        strata = samples.loc[labelled, group].astype(str).fillna("NA") + "|" + strata_label
    roles = pd.Series(pd.NA, index=samples.index, dtype="string")
    cuts = np.cumsum([fractions.discovery, fractions.train, fractions.validation, fractions.test])
    for _, members in sorted(strata.groupby(strata).groups.items()):
        order = rng.permutation(np.asarray(members))
        bounds = np.round(cuts * len(order)).astype(int)
        start = 0
        for role, stop in zip(ROLES, bounds, strict=True):
            roles.loc[order[start:stop]] = role
            start = stop
    return roles
