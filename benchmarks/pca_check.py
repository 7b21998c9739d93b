"""HWE PCA before/after: Hail's hwe_normalized_pca vs the numpy path (gwas_prs.methods.ancestry.pca_local).

Usage: python -m benchmarks.pca_check RUN OUT.json   (RUN: a run folder with a complete qc)
Same LD-pruned SNPs (RUN/silver/ancestry/loadings.ht) and QC-passed samples for both.
"""

from __future__ import annotations

import json
import os
import sys
import time

import hail as hl
import numpy as np

from gwas_prs.engine.hail_context import HailConfig, start_hail
from gwas_prs.methods.ancestry.pca_local import local_hwe_pca

RUN, OUT = sys.argv[1], sys.argv[2]
start_hail(HailConfig(run_dir=RUN, command="pcacheck", seed=1))
mt = hl.read_matrix_table(RUN + "/silver/genotypes.mt")
lo = hl.read_table(RUN + "/silver/ancestry/loadings.ht")
mt = mt.semi_join_rows(lo).select_rows().select_cols().select_entries("GT")
mt = mt.checkpoint(RUN + "/tmp/bench/pca_in.mt", overwrite=True)
print(mt.count(), os.getloadavg())
out = {}
t = time.perf_counter()
ev, tot, sc, ld, n = local_hwe_pca(mt, 10)
scn = sc.to_pandas()
ldn = ld.to_pandas()
out["numpy_s"] = time.perf_counter() - t
out["load_numpy"] = os.getloadavg()
t = time.perf_counter()
ev2, sc2, ld2 = hl.hwe_normalized_pca(mt.GT, k=10, compute_loadings=True)
sch = sc2.to_pandas()
ldh = ld2.to_pandas()
out["hail_s"] = time.perf_counter() - t
out["load_hail"] = os.getloadavg()
A = np.vstack(scn.set_index("s").loc[sch.s, "scores"])
B = np.vstack(sch.scores)
out["eig_rel_diff_max"] = float(np.max(np.abs(np.array(ev) - np.array(ev2)) / np.array(ev2)))
out["score_abs_corr_min"] = float(min(abs(np.corrcoef(A[:, k], B[:, k])[0, 1]) for k in range(10)))
out["score_max_abs_diff_up_to_sign"] = float(
    max(min(np.abs(A[:, k] - B[:, k]).max(), np.abs(A[:, k] + B[:, k]).max()) for k in range(10))
)
L1 = np.vstack(ldn.loadings)
L2 = np.vstack(ldh.loadings)
out["loading_max_abs_diff_up_to_sign"] = float(
    max(
        min(np.abs(L1[:, k] - L2[:, k]).max(), np.abs(L1[:, k] + L2[:, k]).max()) for k in range(10)
    )
)
out["n_variants"] = n
out["eig"] = ev[:4]
out["eig_hail"] = list(ev2[:4])
print(json.dumps(out, indent=1))
with open(OUT, "w") as handle:
    json.dump(out, handle, indent=1)
