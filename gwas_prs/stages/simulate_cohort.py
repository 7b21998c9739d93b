"""Simulated cohorts for benchmarks: coalescent genotypes, 1000 Genomes-like files.

``gwas-prs simulate-cohort`` writes what ``gwas-prs ingest`` and the PLINK
references read, at any size:

- genotypes: an msprime coalescent simulation (seeded) of ``samples`` diploid
  individuals from up to three populations under the Gutenkunst et al. (2009)
  out-of-Africa model (YRI/AFR, CEU/EUR, CHB/EAS: split times, bottleneck,
  exponential growth, migration), so there is realistic LD and population
  structure; mutation rate 1.25e-8, recombination 1e-8 per bp per generation;
- ``chromosomes`` independent chromosomes (``1``, ``2``, …), each simulated long
  enough and then *trimmed* to the first ``variants / chromosomes`` bi-allelic
  sites with minor allele frequency >= ``min_maf`` (common-ish sites, as after
  QC; sites hit by more than one mutation are dropped), so the cohort has
  exactly ``variants`` SNPs; REF is the ancestral allele; phased ``0|1`` calls;
- ``chrK.vcf.bgz`` per chromosome (BGZF, :mod:`gwas_prs.formats.bgzf`), ``samples.panel``
  (``sample pop super_pop gender`` like the 1000 Genomes panel), and
  ``phenotypes.tsv`` (``sample_id``, ``disease`` 0/1, ``age``, ``sex`` 0/1,
  ``genetic_value``): a liability-threshold trait, ``n_causal`` causal
  variants with effects ``N(0, h²/n_causal)`` on standardised genotypes,
  environmental noise ``N(0, 1 - h²)``, +0.2 SD per SD of age, +0.2 for males,
  +0.3 SD in the first population (stratification the PCs must absorb); the
  ``prevalence`` fraction with the highest liability are cases.

Same seed → byte-identical files.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from gwas_prs.core.errors import EnvironmentSetupError, InputError
from gwas_prs.formats.bgzf import BgzfWriter

logger = logging.getLogger(__name__)

#: (population, super population) in the order samples are allotted.
POPULATIONS = (("YRI", "AFR"), ("CEU", "EUR"), ("CHB", "EAS"))
MUTATION_RATE = 1.25e-8
RECOMBINATION_RATE = 1e-8
#: Named sizes of ``--size`` in the benchmarks (samples, variants).
SIZES = {
    "tiny": (200, 2_000),  # a smoke test of the benchmark
    "small": (1_000, 20_000),
    "medium": (2_504, 200_000),
    "large": (10_000, 1_000_000),
}


@dataclass(frozen=True)
class CohortConfig:
    """Parameters of ``gwas-prs simulate-cohort``."""

    out: str
    samples: int
    variants: int
    populations: int = 3
    chromosomes: int = 2
    seed: int = 42
    min_maf: float = 0.01
    h2: float = 0.5
    n_causal: int = 200
    prevalence: float = 0.2

    def validate(self) -> None:
        if self.samples < 10:
            raise InputError(f"--samples {self.samples}: simulate at least 10 samples")
        if not 1 <= self.populations <= len(POPULATIONS):
            raise InputError(f"--populations {self.populations}: choose 1, 2 or 3")
        if self.chromosomes < 1 or self.chromosomes > 22:
            raise InputError(f"--chromosomes {self.chromosomes}: choose 1 to 22")
        if self.variants < 10 * self.chromosomes:
            raise InputError(
                f"--variants {self.variants}: at least 10 per chromosome ({self.chromosomes})"
            )
        if self.n_causal > self.variants:
            raise InputError(f"--n-causal {self.n_causal}: more than --variants {self.variants}")


@dataclass(frozen=True)
class CohortResult:
    vcfs: list[str]
    panel: str
    phenotypes: str
    samples: int
    variants: int
    cases: int


def require_msprime() -> Any:
    try:
        import msprime
    except ImportError:
        raise EnvironmentSetupError(
            "simulate-cohort needs msprime; install it: pip install 'gwas-prs[simulate]'"
        ) from None
    return msprime


def out_of_africa(populations: int) -> Any:
    """Gutenkunst et al. (2009) three-population out-of-Africa demography (msprime docs)."""
    msprime = require_msprime()
    generation_time = 25
    t_af, t_b, t_eu_as = 220e3 / generation_time, 140e3 / generation_time, 21.2e3 / generation_time
    r_eu, r_as = 0.004, 0.0055
    n_eu = 1000 / math.exp(-r_eu * t_eu_as)
    n_as = 510 / math.exp(-r_as * t_eu_as)
    demography = msprime.Demography()
    demography.add_population(name="YRI", initial_size=12300)
    demography.add_population(name="CEU", initial_size=n_eu, growth_rate=r_eu)
    demography.add_population(name="CHB", initial_size=n_as, growth_rate=r_as)
    demography.add_population(name="OOA", initial_size=2100)
    demography.add_population(name="AMH", initial_size=12300)
    demography.add_population(name="ANC", initial_size=7300)
    demography.set_symmetric_migration_rate(["YRI", "CEU"], 3e-5)
    demography.set_symmetric_migration_rate(["YRI", "CHB"], 1.9e-5)
    demography.set_symmetric_migration_rate(["CEU", "CHB"], 9.6e-5)
    demography.add_population_split(time=t_eu_as, derived=["CEU", "CHB"], ancestral="OOA")
    demography.add_symmetric_migration_rate_change(
        time=t_eu_as, populations=["YRI", "OOA"], rate=25e-5
    )
    demography.add_population_split(time=t_b, derived=["YRI", "OOA"], ancestral="AMH")
    demography.add_population_split(time=t_af, derived=["AMH"], ancestral="ANC")
    demography.sort_events()
    del populations
    return demography


def allot_samples(samples: int, populations: int) -> list[int]:
    """Samples per population, as even as possible (earlier populations get the remainder)."""
    base, extra = divmod(samples, populations)
    return [base + (1 if k < extra else 0) for k in range(populations)]


def _common_sites(ts: Any, min_maf: float) -> tuple[npt.NDArray[np.int64], list[tuple[str, str]]]:
    """Site ids (bi-allelic, MAF >= min_maf) and their (ref, alt), in genome order."""
    keep: list[int] = []
    alleles: list[tuple[str, str]] = []
    n = ts.num_samples
    for variant in ts.variants():
        if len(variant.site.mutations) != 1 or len(variant.alleles) != 2:
            continue
        alt_count = int(variant.genotypes.sum())
        maf = min(alt_count, n - alt_count) / n
        if maf >= min_maf:
            keep.append(variant.site.id)
            alleles.append((str(variant.alleles[0]), str(variant.alleles[1])))
    return np.asarray(keep, dtype=np.int64), alleles


def simulate_chromosome(
    config: CohortConfig, counts: list[int], chromosome: int, n_sites: int
) -> tuple[Any, npt.NDArray[np.int64], list[tuple[str, str]]]:
    """A tree sequence with at least ``n_sites`` common bi-allelic sites (lengthened until so)."""
    msprime = require_msprime()
    demography = out_of_africa(config.populations)
    names = [p for p, _ in POPULATIONS[: config.populations]]
    # ~1.7e-3 common SNPs per bp for 2,000 haplotypes; start with 1.5x margin
    length = max(50_000.0, 1.5 * n_sites / 1.5e-3)
    for attempt in range(6):
        seed = config.seed * 1000 + chromosome * 10 + attempt + 1
        ts = msprime.sim_ancestry(
            samples={name: count for name, count in zip(names, counts, strict=True) if count},
            demography=demography,
            sequence_length=length,
            recombination_rate=RECOMBINATION_RATE,
            random_seed=seed,
        )
        ts = msprime.sim_mutations(ts, rate=MUTATION_RATE, random_seed=seed)
        sites, alleles = _common_sites(ts, config.min_maf)
        logger.info(
            "chromosome %d: %.1f Mb, %d common sites (need %d)",
            chromosome,
            length / 1e6,
            len(sites),
            n_sites,
        )
        if len(sites) >= n_sites:
            return ts, sites[:n_sites], alleles[:n_sites]
        length *= 1.6 * n_sites / max(len(sites), 1)
    raise InputError(f"could not simulate {n_sites} common sites on chromosome {chromosome}")


def _vcf_header(chromosome: int, length: int, sample_ids: list[str]) -> bytes:
    lines = [
        "##fileformat=VCFv4.2",
        "##source=gwas-prs simulate-cohort (msprime out-of-Africa)",
        f"##contig=<ID={chromosome},length={length}>",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "\t".join(
            ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *sample_ids]
        ),
    ]
    return ("\n".join(lines) + "\n").encode()


#: "a|b\t" for haplotype pair code 2a+b
_GT_TOKENS = np.frombuffer(b"0|0\t0|1\t1|0\t1|1\t", dtype=np.uint8).reshape(4, 4)


def write_chromosome_vcf(
    path: str,
    ts: Any,
    sites: npt.NDArray[np.int64],
    alleles: list[tuple[str, str]],
    chromosome: int,
    sample_ids: list[str],
    on_genotypes: Callable[[int, npt.NDArray[np.int8]], None],
) -> None:
    """Write the chosen sites as a BGZF VCF; ``on_genotypes(k, dosage)`` sees each site's dosages."""
    wanted = np.zeros(ts.num_sites, dtype=bool)
    wanted[sites] = True
    positions = ts.tables.sites.position
    last_position = 0
    k = 0
    with open(path, "wb") as handle, BgzfWriter(handle, level=1) as out:
        out.write(_vcf_header(chromosome, int(ts.sequence_length) + 1, sample_ids))
        for variant in ts.variants():
            site = variant.site.id
            if not wanted[site]:
                continue
            hap = variant.genotypes.astype(np.int8).reshape(-1, 2)
            position = max(int(positions[site]) + 1, last_position + 1)
            last_position = position
            ref, alt = alleles[k]
            tokens = _GT_TOKENS[2 * hap[:, 0] + hap[:, 1]].reshape(-1)
            tokens[-1] = ord("\n")
            line = f"{chromosome}\t{position}\tsnp{chromosome}_{position}\t{ref}\t{alt}\t.\tPASS\t.\tGT\t"
            out.write(line.encode() + tokens.tobytes())
            on_genotypes(k, hap.sum(axis=1).astype(np.int8))
            k += 1


def simulate_cohort(
    config: CohortConfig, progress: Callable[[str], None] | None = None
) -> CohortResult:
    """Simulate and write the cohort into ``config.out`` (see the module docstring)."""
    config.validate()
    os.makedirs(config.out, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    counts = allot_samples(config.samples, config.populations)
    panel_rows = []
    for (pop, super_pop), count in zip(POPULATIONS, counts, strict=False):
        for i in range(count):
            panel_rows.append((f"{pop}{i + 1:05d}", pop, super_pop))
    panel = pd.DataFrame(panel_rows, columns=["sample", "pop", "super_pop"])
    panel["gender"] = np.where(rng.random(len(panel)) < 0.5, "male", "female")
    sample_ids = panel["sample"].tolist()

    per_chromosome = allot_samples(config.variants, config.chromosomes)
    causal = set(rng.choice(config.variants, size=config.n_causal, replace=False).tolist())
    effects = rng.normal(0.0, math.sqrt(config.h2 / config.n_causal), size=config.variants)
    genetic = np.zeros(config.samples)
    offset = 0
    vcfs = []
    for c, n_sites in enumerate(per_chromosome, start=1):
        if progress:
            progress(f"chromosome {c}/{config.chromosomes}: simulating {n_sites} sites")
        ts, sites, alleles = simulate_chromosome(config, counts, c, n_sites)
        path = os.path.join(config.out, f"chr{c}.vcf.bgz")

        def add_effect(k: int, dosage: npt.NDArray[np.int8], base: int = offset) -> None:
            if base + k in causal:
                p = dosage.mean() / 2
                if 0 < p < 1:
                    genetic[:] += effects[base + k] * (dosage - 2 * p) / math.sqrt(2 * p * (1 - p))

        write_chromosome_vcf(path, ts, sites, alleles, c, sample_ids, add_effect)
        vcfs.append(path)
        offset += n_sites

    g = (genetic - genetic.mean()) / (genetic.std() or 1.0) * math.sqrt(config.h2)
    age = rng.uniform(30, 75, size=config.samples)
    sex = (panel["gender"] == "male").to_numpy().astype(int)
    first_population = (panel["pop"] == POPULATIONS[0][0]).to_numpy().astype(float)
    liability = (
        g
        + rng.normal(0.0, math.sqrt(1 - config.h2), size=config.samples)
        + 0.2 * (age - age.mean()) / age.std()
        + 0.2 * sex
        + 0.3 * first_population
    )
    cases = liability >= np.quantile(liability, 1 - config.prevalence)
    phenotypes = pd.DataFrame(
        {
            "sample_id": sample_ids,
            "disease": cases.astype(int),
            "age": np.round(age, 1),
            "sex": sex,
            "genetic_value": np.round(g, 6),
        }
    )
    panel_path = os.path.join(config.out, "samples.panel")
    panel.to_csv(panel_path, sep="\t", index=False)
    pheno_path = os.path.join(config.out, "phenotypes.tsv")
    phenotypes.to_csv(pheno_path, sep="\t", index=False)
    return CohortResult(
        vcfs=vcfs,
        panel=panel_path,
        phenotypes=pheno_path,
        samples=config.samples,
        variants=config.variants,
        cases=int(cases.sum()),
    )
