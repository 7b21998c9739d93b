"""Simulated phenotypes on real genotypes, with a known answer.

1000 Genomes has no disease phenotypes, so the demo and the tests simulate
them from the cohort's own genotypes:

1. ``n_causal`` variants are drawn at random (seeded) among those with a minor
   allele frequency of at least 1%;
2. each gets an effect ``β ~ N(0, h²/n_causal)`` on the standardised genotype
   ``(x - 2p) / sqrt(2p(1-p))``;
3. the genetic value ``g`` is the sum over causal variants, rescaled to
   variance ``h²`` exactly; environmental noise ``e ~ N(0, 1 - h²)``;
4. optional covariate effects: ``age ~ U(30, 75)`` and ``sex`` (from the
   sample metadata when present, else random) shift the liability by 0.2 SD per
   SD of age and 0.2 for males;
5. a quantitative trait is ``g + e (+ covariates)``; a binary trait is 1 for the
   ``prevalence`` fraction of samples with the highest liability (liability
   threshold model).

The truth (causal variants and effects, genetic values) is returned alongside,
so GWAS power, PRS accuracy and the model's oracle AUC can be checked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from gwas_prs.core.errors import InputError
from gwas_prs.core.stage_options import SIMULATION

if TYPE_CHECKING:
    import hail as hl

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimulationConfig:
    """Parameters of ``gwas-prs simulate-phenotype``."""

    trait: str
    h2: float = SIMULATION.default("h2")
    n_causal: int = SIMULATION.default("n-causal")
    prevalence: float | None = SIMULATION.default("prevalence")  # None: quantitative trait
    covariate_effects: bool = SIMULATION.default("covariate-effects")
    seed: int = SIMULATION.default("seed")
    min_maf: float = 0.01

    def validate(self) -> None:
        if not self.trait or not self.trait.replace("_", "").isalnum():
            raise InputError(f"--trait '{self.trait}': use letters, digits and underscores only")
        if not 0.0 < self.h2 < 1.0:
            raise InputError(f"--h2 {self.h2}: heritability must be between 0 and 1 (exclusive)")
        if self.n_causal < 1:
            raise InputError(f"--n-causal {self.n_causal}: needs at least one causal variant")
        if self.prevalence is not None and not 0.0 < self.prevalence < 1.0:
            raise InputError(f"--prevalence {self.prevalence}: must be between 0 and 1 (exclusive)")

    @property
    def binary(self) -> bool:
        return self.prevalence is not None


@dataclass(frozen=True)
class SimulatedTrait:
    """A simulated trait and its truth.

    ``phenotypes``: one row per sample — ``sample_id``, the trait column
    (0/1 or float), ``age``/``sex`` when ``covariate_effects``.
    ``genetic_values``: ``sample_id``, ``genetic_value`` (the true g),
    ``liability``. ``causal``: ``contig``, ``position``, ``ref``, ``alt``,
    ``alt_af``, ``beta_standardised``, ``beta_per_allele`` (effect of one ALT
    allele on the trait scale).
    """

    phenotypes: pd.DataFrame
    genetic_values: pd.DataFrame
    causal: pd.DataFrame


def choose_causal_variants(mt: hl.MatrixTable, config: SimulationConfig) -> hl.Table:
    """Rows of ``mt`` chosen as causal (a Table keyed like ``mt``'s rows, with ``alt_af``)."""
    import hail as hl

    rows = mt.annotate_rows(_af=hl.agg.mean(hl.float64(mt.GT.n_alt_alleles())) / 2).rows()
    rows = rows.filter((rows._af >= config.min_maf) & (rows._af <= 1 - config.min_maf))
    rows = rows.add_index("_i")
    n = rows.count()
    if n < config.n_causal:
        raise InputError(
            f"--n-causal {config.n_causal}: only {n} variants have MAF >= {config.min_maf}; lower --n-causal"
        )
    chosen = np.sort(
        np.random.default_rng(config.seed).choice(n, size=config.n_causal, replace=False)
    )
    picked = hl.literal(set(int(i) for i in chosen), dtype=hl.tset(hl.tint64))
    rows = rows.filter(picked.contains(rows._i))
    return rows.select(alt_af=rows._af)


def simulate_trait(
    mt: hl.MatrixTable, config: SimulationConfig, sex_field: str | None = None
) -> SimulatedTrait:
    """Simulate ``config.trait`` on the genotypes ``mt`` (``GT``, column key ``s``)."""
    import hail as hl

    config.validate()
    causal_ht = choose_causal_variants(mt, config).add_index("_k")
    causal = causal_ht.collect()
    rng = np.random.default_rng(config.seed + 1)
    betas = rng.normal(0.0, np.sqrt(config.h2 / config.n_causal), size=len(causal))
    keys = [(r.locus, r.alleles) for r in causal]
    af = np.array([r.alt_af for r in causal])
    sd = np.sqrt(2 * af * (1 - af))
    causal_ht = causal_ht.annotate(
        _beta=hl.literal(betas.tolist())[hl.int32(causal_ht._k)],
        _sd=hl.literal(sd.tolist())[hl.int32(causal_ht._k)],
    )
    sub = mt.annotate_rows(_e=causal_ht[mt.row_key])
    sub = sub.filter_rows(hl.is_defined(sub._e))
    e = sub._e
    dosage = hl.or_else(hl.float64(sub.GT.n_alt_alleles()), 2 * e.alt_af)
    sub = sub.annotate_cols(_g=hl.agg.sum(e._beta * (dosage - 2 * e.alt_af) / e._sd))
    cols = sub.cols()
    fields = {"g": cols._g}
    if sex_field is not None:
        fields["sex_meta"] = cols[sex_field]
    table = cols.select(**fields).to_pandas()
    samples = table["s"].astype(str).to_numpy()
    g = table["g"].to_numpy(dtype=float)
    g = (g - g.mean()) / g.std() * np.sqrt(config.h2) if g.std() > 0 else g
    noise = rng.normal(0.0, np.sqrt(1 - config.h2), size=len(g))
    liability = g + noise
    phenotypes = pd.DataFrame({"sample_id": samples})
    if config.covariate_effects:
        age = rng.uniform(30, 75, size=len(g)).round(1)
        if sex_field is not None:
            meta = table["sex_meta"].astype("string").str.lower()
            sex = np.where(
                meta.isin(["male", "m", "1"]), 1, np.where(meta.isin(["female", "f", "2"]), 0, -1)
            )
            sex = np.where(sex < 0, rng.integers(0, 2, size=len(g)), sex)
        else:
            sex = rng.integers(0, 2, size=len(g))
        liability = liability + 0.2 * (age - age.mean()) / age.std() + 0.2 * sex
        phenotypes["age"] = age
        phenotypes["sex"] = sex.astype(int)
    if config.binary:
        assert config.prevalence is not None
        cut = np.quantile(liability, 1 - config.prevalence)
        phenotypes[config.trait] = (liability >= cut).astype(int)
    else:
        phenotypes[config.trait] = liability.round(6)
    genetic = pd.DataFrame({"sample_id": samples, "genetic_value": g, "liability": liability})
    causal_frame = pd.DataFrame(
        {
            "contig": [k[0].contig for k in keys],
            "position": [k[0].position for k in keys],
            "ref": [k[1][0] for k in keys],
            "alt": [k[1][1] for k in keys],
            "alt_af": af,
            "beta_standardised": betas,
            "beta_per_allele": betas / sd,
        }
    )
    logger.info(
        "simulated %s: %d causal variants, h2 %.2f, %s",
        config.trait,
        len(keys),
        config.h2,
        f"prevalence {config.prevalence}" if config.binary else "quantitative",
    )
    return SimulatedTrait(phenotypes=phenotypes, genetic_values=genetic, causal=causal_frame)
