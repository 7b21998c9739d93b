"""LD clumping with PLINK 1.9's rule (``plink --clump``), scalable on Hail.

The rule: candidate variants are taken in order of increasing p-value (ties in
genome order). A candidate with ``p <= p1`` that no earlier index variant has
absorbed becomes an *index variant*; it absorbs every not-yet-absorbed variant
with ``p <= p2`` within ``kb`` kilobases whose squared correlation with it is at
least ``r2``. Absorbed variants can no longer become index variants
(no ``--clump-allow-overlap``).

r² is PLINK 1.9's: from haplotype frequencies estimated by EM on unphased
genotypes (:func:`haplotype_r2_expr`), not the squared dosage correlation.

How it scales: LD is computed only among candidates (``p <= max(p1, p2)``) and
only within the window. This module is the Hail engine's clumping (banded
block-sparse BlockMatrix products); the numpy engine's twin runs the banded products
on the silver .bed (:mod:`gwas_prs.methods.prs.prs_local`,
:mod:`gwas_prs.methods.ld_local`). Only pairs with ``r² >= r2`` leave, as an edge list whose size grows with
variants × window, never variants². The greedy pass over that edge list is
linear in variants + edges (:func:`greedy_clump`). Windows never cross contigs, so
the Hail engine computes and clumps one contig at a time (its rows read by interval):
the driver holds the candidates' positions and p-values and one contig's edges (as
numpy arrays, read from a TSV in C), never every edge of the genome at once.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from gwas_prs.core.errors import InputError
from gwas_prs.core.stage_options import PRS
from gwas_prs.engine.table_io import table_to_frame

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClumpParameters:
    """PLINK-style clumping parameters (``--clump-r2/-kb/-p1/-p2``)."""

    r2: float = PRS.default("clump-r2")
    kb: int = PRS.default("clump-kb")
    p1: float = PRS.default("clump-p1")
    p2: float = PRS.default("clump-p2")

    def validate(self) -> None:
        """Raise :class:`InputError` for values PLINK would refuse."""
        if not 0.0 < self.r2 <= 1.0:
            raise InputError(f"--clump-r2 {self.r2}: must be in (0, 1]")
        if self.kb <= 0:
            raise InputError(f"--clump-kb {self.kb}: must be a positive number of kilobases")
        for name, value in (("--clump-p1", self.p1), ("--clump-p2", self.p2)):
            if not 0.0 < value <= 1.0:
                raise InputError(f"{name} {value}: must be in (0, 1]")


@dataclass(frozen=True)
class ClumpResult:
    """Output of :func:`greedy_clump` (arrays aligned with the input order).

    ``is_index``: bool, the variant is an index variant. ``clump``: int, the
    position (in the input arrays) of the index variant whose clump the variant
    belongs to, or -1 if it belongs to none.
    """

    is_index: npt.NDArray[np.bool_]
    clump: npt.NDArray[np.int64]


def greedy_clump(
    p_values: npt.NDArray[np.float64],
    edges_i: npt.NDArray[np.int64],
    edges_j: npt.NDArray[np.int64],
    params: ClumpParameters,
) -> ClumpResult:
    """PLINK's greedy clumping over an LD edge list (pure numpy, no Hail).

    Parameters
    ----------
    p_values:
        p-value of each variant, in genome order (the order breaks ties).
    edges_i, edges_j:
        Pairs of variant positions in high LD (``r² >= r2``) within the window;
        each pair once, in either orientation.
    params:
        Only ``p1`` and ``p2`` are used here; ``r2``/``kb`` shaped the edges.
    """
    n = len(p_values)
    # adjacency in CSR form (both directions)
    src = np.concatenate([edges_i, edges_j]).astype(np.int64)
    dst = np.concatenate([edges_j, edges_i]).astype(np.int64)
    order = np.argsort(src, kind="stable")
    src, dst = src[order], dst[order]
    starts = np.searchsorted(src, np.arange(n + 1))
    clump = np.full(n, -1, dtype=np.int64)
    is_index = np.zeros(n, dtype=bool)
    eligible_member = p_values <= params.p2
    by_p = np.lexsort((np.arange(n), p_values))
    for v in by_p:
        if p_values[v] > params.p1:
            break
        if clump[v] != -1:
            continue
        is_index[v] = True
        clump[v] = v
        neighbours = dst[starts[v] : starts[v + 1]]
        take = neighbours[(clump[neighbours] == -1) & eligible_member[neighbours]]
        clump[take] = v
    return ClumpResult(is_index=is_index, clump=clump)


#: Block size of the genotype block matrices: small blocks keep the banded
#: products close to the window.
CLUMP_BLOCK_SIZE = 512
#: EM iterations for haplotype frequencies (converges to < 1e-9 in r² well before).
EM_ITERATIONS = 60


def haplotype_r2_expr(table: Any) -> Any:
    """Squared correlation of two variants from their 3×3 genotype counts, as PLINK 1.9.

    PLINK 1.9's ``--clump`` (and ``--ld``) estimate haplotype frequencies from
    unphased genotypes by maximum likelihood (EM over the double heterozygotes)
    and report ``r² = D² / (pA qA pB qB)``. This differs from the squared
    genotype (dosage) correlation by up to ±0.05 at the usual 0.1 threshold,
    enough to change index variants, so it is reproduced exactly.

    Parameters
    ----------
    table : :class:`hail.ArrayExpression`
        ``table[3 * a + b]`` = number of samples with ``a`` ALT alleles at the
        first variant and ``b`` at the second (samples called at both).

    Returns
    -------
    :class:`hail.Float64Expression`
        r² (NaN when either variant is monomorphic among those samples).
    """
    import hail as hl

    t = table
    x11 = 2 * t[8] + t[7] + t[5]
    x10 = 2 * t[6] + t[7] + t[3]
    x01 = 2 * t[2] + t[5] + t[1]
    x00 = 2 * t[0] + t[1] + t[3]
    h = t[4]
    n = x11 + x10 + x01 + x00 + 2 * h

    def step(s: Any, _: Any) -> Any:
        coupled = s.p11 * s.p00
        total = coupled + s.p10 * s.p01
        f = hl.if_else(total > 0, coupled / total, 0.5)
        return hl.struct(
            p11=(x11 + f * h) / n,
            p10=(x10 + (1 - f) * h) / n,
            p01=(x01 + (1 - f) * h) / n,
            p00=(x00 + f * h) / n,
        )

    start = hl.struct(
        p11=(x11 + h / 2) / n, p10=(x10 + h / 2) / n, p01=(x01 + h / 2) / n, p00=(x00 + h / 2) / n
    )
    iterations = hl.if_else(h > 0, EM_ITERATIONS, 1)
    freqs = hl.fold(step, start, hl.range(iterations))
    p_a = freqs.p11 + freqs.p10
    p_b = freqs.p11 + freqs.p01
    d = freqs.p11 - p_a * p_b
    return d * d / (p_a * (1 - p_a) * p_b * (1 - p_b))


def _dosage_ld_edges(
    mt: Any, params: ClumpParameters, block_size: int | None = None
) -> tuple[Any, Any]:
    """:func:`ld_edges` of an imputed ``mt`` (``DS``): pairs whose dosage r² (squared
    Pearson correlation of the mean-imputed dosages,
    :func:`gwas_prs.methods.ld_local.banded_dosage_edges`) is ``>= params.r2``, from a
    BlockMatrix of standardised dosages multiplied inside the windows."""
    import hail as hl
    from hail.linalg import BlockMatrix
    from hail.linalg.utils import locus_windows

    from gwas_prs.methods.dosage import alt_dosage_expr

    starts, stops = locus_windows(mt.locus, params.kb * 1000)
    mt = mt.annotate_entries(_d=alt_dosage_expr(mt))
    mt = mt.annotate_rows(_mean=hl.agg.mean(mt._d))
    mt = mt.annotate_rows(_ss=hl.agg.sum(hl.or_else((mt._d - mt._mean) ** 2, 0.0)))
    z = hl.or_else((mt._d - mt._mean) / hl.sqrt(mt._ss), 0.0)
    matrix = BlockMatrix.from_entry_expr(
        hl.if_else(hl.is_finite(z), z, 0.0), block_size=block_size or CLUMP_BLOCK_SIZE
    )
    product = (matrix @ matrix.T).sparsify_row_intervals(starts, stops, blocks_only=True)
    entries = product.entries(keyed=False)
    stop_of = hl.literal([int(x) for x in stops], dtype=hl.tarray(hl.tint64))
    entries = entries.filter(
        (entries.j > entries.i)
        & (entries.j < stop_of[hl.int32(entries.i)])
        & (entries.entry * entries.entry >= params.r2)
    )
    found = table_to_frame(entries, {"i": entries.i, "j": entries.j})
    return found["i"].to_numpy(dtype=np.int64), found["j"].to_numpy(dtype=np.int64)


def ld_edges(mt: Any, params: ClumpParameters, block_size: int | None = None) -> tuple[Any, Any]:
    """Pairs of rows of ``mt`` (by row index) within ``kb`` with PLINK r² ``>= r2``.

    ``mt`` must be keyed by locus and carry ``GT``; its rows are the clumping
    candidates. The 3×3 genotype tables of all pairs inside the window come
    from banded block-matrix products of dosage (D) and heterozygote (H)
    indicators, ``D·Dᵀ, D·Hᵀ, H·Hᵀ``, plus the margins: each variant's own
    counts when no call is missing, else ``D·Cᵀ, H·Cᵀ, C·Cᵀ`` with the called
    indicator C (margins over the samples called at both variants). Only
    entries inside the window leave the block products. Returns two int64
    numpy arrays (i < j).
    """
    import hail as hl
    from hail.linalg import BlockMatrix
    from hail.linalg.utils import locus_windows

    from gwas_prs.methods.dosage import diploid_call_expr, has_dosages

    if has_dosages(mt):
        return _dosage_ld_edges(mt, params, block_size)
    mt = mt.annotate_entries(GT=diploid_call_expr(mt.GT))  # male X as the silver .bed has it
    starts, stops = locus_windows(mt.locus, params.kb * 1000)
    size = block_size or CLUMP_BLOCK_SIZE
    start_of = hl.literal([int(x) for x in starts], dtype=hl.tarray(hl.tint64))
    stop_of = hl.literal([int(x) for x in stops], dtype=hl.tarray(hl.tint64))
    called = hl.is_defined(mt.GT)
    complete = bool(mt.aggregate_entries(hl.agg.all(called)))

    def matrix(expr: Any) -> Any:
        return BlockMatrix.from_entry_expr(expr, block_size=size)

    dosage = matrix(hl.if_else(called, hl.float64(mt.GT.n_alt_alleles()), 0.0))
    het = matrix(hl.if_else(called & mt.GT.is_het(), 1.0, 0.0))

    def band(left: Any, right: Any, name: str) -> Any:
        """Entries of left·rightᵀ for pairs i != j inside the window (both orders)."""
        product = (left @ right.T).sparsify_row_intervals(starts, stops, blocks_only=True)
        entries = product.entries(keyed=False)
        entries = entries.filter(
            (entries.i != entries.j)
            & (entries.j >= start_of[hl.int32(entries.i)])
            & (entries.j < stop_of[hl.int32(entries.i)])
        )
        return entries.rename({"entry": name}).key_by("i", "j")

    dd = band(dosage, dosage, "dd")
    dh = band(dosage, het, "dh")
    hh = band(het, het, "hh")
    pairs = dd.filter(dd.i < dd.j)
    pairs = pairs.annotate(
        dh_ab=dh[pairs.i, pairs.j].dh, dh_ba=dh[pairs.j, pairs.i].dh, hh=hh[pairs.i, pairs.j].hh
    )
    if complete:
        # no missing call: the margins are each variant's own counts
        rows = mt.annotate_rows(
            _het=hl.agg.count_where(mt.GT.is_het()), _dos=hl.agg.sum(mt.GT.n_alt_alleles())
        ).rows()
        margins = rows.aggregate(
            hl.struct(het=hl.agg.collect(rows._het), dos=hl.agg.collect(rows._dos))
        )
        het_count = hl.literal([float(x) for x in margins.het], dtype=hl.tarray(hl.tfloat64))
        dos_count = hl.literal([float(x) for x in margins.dos], dtype=hl.tarray(hl.tfloat64))
        pairs = pairs.annotate(
            hc_ab=het_count[hl.int32(pairs.i)],
            dc_ab=dos_count[hl.int32(pairs.i)],
            hc_ba=het_count[hl.int32(pairs.j)],
            dc_ba=dos_count[hl.int32(pairs.j)],
            n=float(mt.count_cols()),
        )
    else:
        present = matrix(hl.if_else(called, 1.0, 0.0))
        dc = band(dosage, present, "dc")
        hc = band(het, present, "hc")
        cc = band(present, present, "cc")
        pairs = pairs.annotate(
            dc_ab=dc[pairs.i, pairs.j].dc,
            dc_ba=dc[pairs.j, pairs.i].dc,
            hc_ab=hc[pairs.i, pairs.j].hc,
            hc_ba=hc[pairs.j, pairs.i].hc,
            n=cc[pairs.i, pairs.j].cc,
        )
    # cells t[3a+b]; margins among samples called at both variants
    t11 = pairs.hh
    t21 = (pairs.dh_ab - t11) / 2
    t12 = (pairs.dh_ba - t11) / 2
    t22 = (pairs.dd - t11 - 2 * t12 - 2 * t21) / 4
    a1 = pairs.hc_ab
    a2 = (pairs.dc_ab - a1) / 2
    b1 = pairs.hc_ba
    b2 = (pairs.dc_ba - b1) / 2
    t10 = a1 - t11 - t12
    t20 = a2 - t21 - t22
    t01 = b1 - t11 - t21
    t02 = b2 - t12 - t22
    t00 = pairs.n - a1 - a2 - t01 - t02
    pairs = pairs.annotate(
        r2=haplotype_r2_expr(hl.array([t00, t01, t02, t10, t11, t12, t20, t21, t22]))
    )
    pairs = pairs.filter(pairs.r2 >= params.r2)
    # through a TSV read by pandas in C (numpy arrays, not one Python object per edge)
    found = table_to_frame(pairs, {"i": pairs.i, "j": pairs.j})
    return found["i"].to_numpy(dtype=np.int64), found["j"].to_numpy(dtype=np.int64)


@dataclass
class ClumpedCandidates:
    """The candidates of a clumping (``p <= max(p1, p2)``) in genome order, and its result.

    ``contigs``, ``positions``, ``ref``, ``alt``, ``p_values`` and each array of
    ``values`` (the extra row values asked for) have one entry per candidate;
    ``result`` is the :func:`greedy_clump` output over them.
    """

    contigs: npt.NDArray[Any]
    positions: npt.NDArray[np.int64]
    ref: list[str]
    alt: list[str]
    p_values: npt.NDArray[np.float64]
    values: dict[str, npt.NDArray[np.float64]]
    result: ClumpResult


def clump_candidates(
    mt: Any, p_expr: Any, params: ClumpParameters, values: dict[str, Any] | None = None
) -> ClumpedCandidates:
    """Select the candidates, compute their LD edges and clump them (see :func:`clump_variants`):
    the Hail engine's clumping (LD from BlockMatrix products inside the windows). The
    numpy engine's twin, on a PLINK .bed, is
    :func:`gwas_prs.methods.prs.prs_local.bed_clump_candidates` (identical index
    variants, tested).

    ``values`` maps names to float64 row expressions of ``mt`` to carry along
    (e.g. the GWAS beta), so callers need no second pass to join them.
    """
    import hail as hl

    params.validate()
    values = dict(values or {})
    mt = mt.annotate_rows(
        _clump_p=p_expr, **{f"_clump_v{k}": v for k, v in enumerate(values.values())}
    )
    mt = mt.filter_rows(hl.is_defined(mt._clump_p) & (mt._clump_p <= max(params.p1, params.p2)))
    mt = mt.select_rows("_clump_p", *[f"_clump_v{k}" for k in range(len(values))])
    mt = mt.select_cols().select_entries(*[f for f in ("GT", "DS") if f in mt.entry])
    rows = mt.rows()  # the candidates in genome order, as numpy arrays (not Python rows)
    frame = table_to_frame(
        rows,
        {
            "_contig": rows.locus.contig,
            "_position": rows.locus.position,
            "_ref": rows.alleles[0],
            "_alt": rows.alleles[1],
            "_p": rows._clump_p,
            **{f"_v{k}": rows[f"_clump_v{k}"] for k in range(len(values))},
        },
    )
    n = len(frame)
    logger.info("clumping %d candidate variants (r2 >= %s, %s kb)", n, params.r2, params.kb)
    p_values = frame["_p"].to_numpy(dtype=np.float64)
    extra = {name: frame[f"_v{k}"].to_numpy(dtype=np.float64) for k, name in enumerate(values)}
    contigs = frame["_contig"].to_numpy(dtype=object)
    positions = frame["_position"].to_numpy(dtype=np.int64)
    ref = [str(x) for x in frame["_ref"]]
    alt = [str(x) for x in frame["_alt"]]
    result = _clump_per_contig(mt, contigs, p_values, params)
    return ClumpedCandidates(contigs, positions, ref, alt, p_values, extra, result)


def _clump_per_contig(
    mt: Any, contigs: npt.NDArray[Any], p_values: npt.NDArray[np.float64], params: ClumpParameters
) -> ClumpResult:
    """:func:`greedy_clump` of the candidates (rows of ``mt``, genome order), one
    contig at a time: LD windows never cross contigs, so this gives the clumps of the
    whole genome while the driver holds one contig's LD edges at a time."""
    import hail as hl

    n = len(p_values)
    is_index = np.zeros(n, dtype=bool)
    clump = np.full(n, -1, dtype=np.int64)
    genome = mt.locus.dtype.reference_genome
    changes = [0, *(k for k in range(1, n) if contigs[k] != contigs[k - 1]), n] if n else []
    for lo, hi in itertools.pairwise(changes):
        contig = str(contigs[lo])
        if len(changes) > 2:  # rows of this contig only (read by interval, not filtered)
            whole = hl.locus_interval(
                contig, 1, genome.lengths[contig], includes_end=True, reference_genome=genome
            )
            rows = hl.filter_intervals(mt, [whole])
        else:
            rows = mt
        edges_i, edges_j = ld_edges(rows, params)
        logger.info("%s: %d candidates, %d LD edges", contig, hi - lo, len(edges_i))
        part = greedy_clump(p_values[lo:hi], edges_i, edges_j, params)
        is_index[lo:hi] = part.is_index
        clump[lo:hi] = np.where(part.clump >= 0, part.clump + lo, -1)
    return ClumpResult(is_index=is_index, clump=clump)


def clump_frame(
    mt: Any, p_expr: Any, params: ClumpParameters, values: dict[str, Any] | None = None
) -> pd.DataFrame:
    """:func:`clump_variants` as a pandas frame, without a Hail table in between.

    One row per candidate in genome order: ``chromosome`` (str), ``position``
    (int64), ``ref``, ``alt`` (str), ``p`` (float64), one float64 column per
    entry of ``values``, ``index_variant`` (bool), ``clump_index`` (str,
    ``CONTIG:POS`` of the variant's index variant, empty for variants in no
    clump) and ``clump_size`` (Int64, index variants only: members including
    itself). It saves building and collecting a Hail table of the candidates.
    """
    return candidates_frame(clump_candidates(mt, p_expr, params, values))


def candidates_frame(c: ClumpedCandidates) -> pd.DataFrame:
    """The frame of :func:`clump_frame` from a clumping result."""
    import pandas as pd

    n = len(c.p_values)
    owner = c.result.clump
    sizes = np.bincount(owner[owner >= 0], minlength=n)
    labels = np.array(
        [f"{contig}:{pos}" for contig, pos in zip(c.contigs, c.positions, strict=True)],
        dtype=object,
    )
    frame = pd.DataFrame(
        {
            "chromosome": pd.Series(c.contigs, dtype=object).astype(str),
            "position": c.positions.astype(np.int64),
            "ref": c.ref,
            "alt": c.alt,
            "p": c.p_values,
            **c.values,
            "index_variant": c.result.is_index,
            "clump_index": np.where(owner >= 0, labels[np.maximum(owner, 0)], ""),
            "clump_size": pd.Series(np.where(c.result.is_index, sizes, 0), dtype="Int64").where(
                c.result.is_index, pd.NA
            ),
        }
    )
    return frame


def clump_variants(mt: Any, p_expr: Any, params: ClumpParameters) -> Any:
    """Clump the rows of ``mt`` by the p-values in ``p_expr``.

    Parameters
    ----------
    mt : :class:`hail.MatrixTable`
        LD reference genotypes (``GT``), keyed by ``locus``/``alleles``; usually
        the discovery samples of the GWAS.
    p_expr : :class:`hail.Float64Expression`
        Row-indexed p-value; rows where it is missing are ignored.

    Returns
    -------
    :class:`hail.Table`
        Keyed by ``locus``, ``alleles``, one row per candidate
        (``p <= max(p1, p2)``), with fields

        - ``p`` (float64) — the p-value used,
        - ``index_variant`` (bool) — True for index variants,
        - ``clump_locus`` (locus), ``clump_alleles`` (array<str>) — the index
          variant of the variant's clump (missing for variants in no clump),
        - ``clump_size`` (int64, index variants only) — members including itself.

    Warning
    -------
    Variants whose genotypes do not vary have undefined correlation and are
    never absorbed; remove monomorphic variants (variant QC does) first.
    """
    import hail as hl

    c = clump_candidates(mt, p_expr, params)
    result, n = c.result, len(c.p_values)
    sizes = np.bincount(result.clump[result.clump >= 0], minlength=n)
    # the result as a Hail pipeline over the candidates' rows, the clumping
    # indexed by row number from literals (hl.Table.parallelize of one Python
    # struct per variant type-checks every value in Python, which is slow)
    mt = mt.annotate_rows(_clump_p=p_expr)
    mt = mt.filter_rows(hl.is_defined(mt._clump_p) & (mt._clump_p <= max(params.p1, params.p2)))
    table = mt.rows().select("_clump_p").add_index("_clump_idx")
    k = hl.int32(table._clump_idx)
    owner_of = hl.literal(result.clump.tolist(), dtype=hl.tarray(hl.tint32))
    is_index_of = hl.literal(result.is_index.tolist(), dtype=hl.tarray(hl.tbool))
    size_of = hl.literal(sizes.tolist(), dtype=hl.tarray(hl.tint64))
    contig_of = hl.literal([str(x) for x in c.contigs], dtype=hl.tarray(hl.tstr))
    position_of = hl.literal(c.positions.tolist(), dtype=hl.tarray(hl.tint32))
    alleles_of = hl.literal(
        [[r, a] for r, a in zip(c.ref, c.alt, strict=True)], dtype=hl.tarray(hl.tarray(hl.tstr))
    )
    owner = hl.max(owner_of[k], 0)
    has_owner = owner_of[k] >= 0
    table = table.select(
        p=table._clump_p,
        index_variant=is_index_of[k],
        clump_locus=hl.or_missing(
            has_owner,
            hl.locus(
                contig_of[owner],
                position_of[owner],
                reference_genome=mt.locus.dtype.reference_genome,
            ),
        ),
        clump_alleles=hl.or_missing(has_owner, alleles_of[owner]),
        clump_size=hl.or_missing(is_index_of[k], size_of[k]),
    )
    return table
