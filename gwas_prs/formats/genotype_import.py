"""Hail imports of the non-VCF inputs, and dosage entry fields, for the bronze layer.

Every function returns a MatrixTable with row key ``locus``/``alleles`` (bi-allelic,
``[REF, ALT]``), a ``rsid`` row field, column key ``s`` and the entry field ``GT``,
plus ``DS`` (float64, the expected number of ALT alleles) where the input carries
dosages. Nothing is written here except the BGEN index (:func:`index_bgen_files`),
which the stage runner places in the run folder.

Hard calls from dosages
-----------------------
Where the input has dosages, ``GT`` is derived from ``DS`` as plink2 does on import
(``--hard-call-threshold``, default 0.1): the call is the nearest integer dosage when
``DS`` lies within the threshold of it, else missing. KING, LD pruning, the
heterozygosity check and HWE use these calls; association, scoring, allele
frequencies and LD for clumping and LDpred2 use ``DS``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from gwas_prs.core.errors import InputError
from gwas_prs.core.reference import ReferenceContigs

if TYPE_CHECKING:
    import hail as hl


def hard_call_from_dosage_expr(
    dosage: hl.expr.Float64Expression, threshold: float
) -> hl.expr.CallExpression:
    """The unphased diploid call nearest to ``dosage`` when ``|dosage − round(dosage)| ≤
    threshold``, else missing (plink2's ``--hard-call-threshold``).

    Warning: a threshold of 0.5 or more calls every dosage; 0 keeps only exact ones.
    """
    import hail as hl

    nearest = hl.int32(hl.floor(dosage + 0.5))
    return hl.or_missing(
        hl.abs(dosage - nearest) <= threshold, hl.unphased_diploid_gt_index_call(nearest)
    )


def alt_dosages_expr(mt: hl.MatrixTable) -> hl.expr.ArrayExpression | None:
    """Per-ALT expected allele counts of a VCF record, before the multi-allelic split:
    from ``DS`` (Number=A or 1) when present, else from ``GP`` (Number=G:
    ``Σ_g P(g) · copies of ALT j in g``); None when the VCF has neither."""
    import hail as hl

    if "DS" in mt.entry:
        ds = mt.DS
        return ds if isinstance(ds.dtype, hl.tarray) else hl.array([hl.float64(ds)])
    if "GP" in mt.entry:
        n_alleles = hl.len(mt.alleles)
        gp = mt.GP
        return hl.range(1, n_alleles).map(
            lambda j: hl.sum(
                hl.range(hl.len(gp)).map(
                    lambda g: (
                        gp[g] * hl.unphased_diploid_gt_index_call(g).one_hot_alleles(n_alleles)[j]
                    )
                )
            )
        )
    return None


def select_genotype_entries(
    mt: hl.MatrixTable, dosage: hl.expr.Float64Expression | None, hard_call_threshold: float
) -> hl.MatrixTable:
    """``mt`` with entries ``GT`` (from ``dosage`` when given, else the input's GT) and
    ``DS`` (when ``dosage`` is given)."""
    if dosage is None:
        return mt.select_entries("GT")
    return mt.select_entries(GT=hard_call_from_dosage_expr(dosage, hard_call_threshold), DS=dosage)


def import_plink_fileset(
    prefix: str,
    reference: ReferenceContigs,
    contig_recoding: Mapping[str, str],
    *,
    skip_unknown_contigs: bool = False,
    min_partitions: int | None = None,
) -> hl.MatrixTable:
    """A PLINK 1 fileset as a MatrixTable: alleles ``[A2, A1]`` (A2 = REF), variants
    with A1 ``0`` (monomorphic) dropped, column fields ``fam_id``, ``pat_id``,
    ``mat_id``, ``is_female`` from the .fam."""
    import hail as hl

    mt = hl.import_plink(
        prefix + ".bed",
        prefix + ".bim",
        prefix + ".fam",
        reference_genome=reference.name,
        contig_recoding=dict(contig_recoding),
        skip_invalid_loci=skip_unknown_contigs,
        a2_reference=True,
        min_partitions=min_partitions,
    )
    mt = mt.filter_rows(mt.alleles[1] != "0")
    mt = mt.select_rows("rsid").select_cols("fam_id", "pat_id", "mat_id", "is_female")
    return mt.select_entries("GT")


def index_bgen_files(
    paths: Sequence[str],
    index_paths: Sequence[str],
    reference: ReferenceContigs,
    contig_recoding: Mapping[str, str],
    *,
    skip_unknown_contigs: bool = False,
) -> None:
    """Write Hail's ``.idx2`` index of each BGEN at ``index_paths`` (in the run folder,
    never next to the input)."""
    import hail as hl

    hl.index_bgen(
        list(paths),
        index_file_map=dict(zip(paths, index_paths, strict=True)),
        reference_genome=reference.name,
        contig_recoding=dict(contig_recoding),
        skip_invalid_loci=skip_unknown_contigs,
    )


def import_bgen_files(
    paths: Sequence[str],
    index_paths: Sequence[str],
    samples: Sequence[str],
    *,
    hard_call_threshold: float,
) -> hl.MatrixTable:
    """BGEN files (indexed by :func:`index_bgen_files`) as a MatrixTable with ``GT``
    (from the dosage, see the module docstring) and ``DS``; alleles in file order
    (the first is REF, as UK Biobank and ``plink2 --export bgen-1.2 ref-first`` write).

    ``samples`` are the IDs in file order (the ``.sample`` file's ``ID_2``, plink2's
    IID, or the IDs stored in the BGEN): Hail itself would take ``ID_1``, which
    plink2 writes as ``0`` for every sample.
    """
    import hail as hl

    mt = hl.import_bgen(
        list(paths),
        entry_fields=["dosage"],
        index_file_map=dict(zip(paths, index_paths, strict=True)),
    )
    mt = mt.add_col_index("_sample_index")
    mt = mt.key_cols_by(s=hl.literal(list(samples))[hl.int32(mt._sample_index)])
    mt = mt.drop("_sample_index")
    mt = mt.select_rows("rsid")
    return select_genotype_entries(mt, mt.dosage, hard_call_threshold)


def read_input_matrix_table(path: str, reference: ReferenceContigs) -> hl.MatrixTable:
    """A MatrixTable given to ingest: one string column key (renamed ``s``), the loci on
    the run's reference genome, entries ``GT`` and ``DS`` where present.

    Raises
    ------
    InputError
        Another reference genome, a column key that is not one string, or no GT/DS.
    """
    import hail as hl

    mt = hl.read_matrix_table(path)
    locus_type = mt.locus.dtype
    if not isinstance(locus_type, hl.tlocus) or locus_type.reference_genome.name != reference.name:
        raise InputError(
            f"{path}: the loci are on {getattr(locus_type, 'reference_genome', locus_type)}, "
            f"not {reference.name}; pass --reference-genome to match"
        )
    if len(mt.col_key) != 1 or mt.col_key[0].dtype != hl.tstr:
        raise InputError(f"{path}: the columns must be keyed by one string field (the sample ID)")
    key = next(iter(mt.col_key))
    if key != "s":
        mt = mt.key_cols_by(s=mt[key]).drop(key)
    if "rsid" not in mt.row:
        mt = mt.annotate_rows(rsid=hl.missing(hl.tstr))
    mt = mt.select_rows("rsid")
    fields = [f for f in ("GT", "DS") if f in mt.entry]
    return mt.select_entries(*fields)
