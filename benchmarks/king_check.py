"""KING before/after: hail.king vs the numpy path (gwas_prs.methods.qc.sample_qc.local_king_pairs).

Usage: python -m benchmarks.king_check RUN PRUNED_MT OUT.json
(PRUNED_MT: LD-pruned genotypes, e.g. the one benchmarks.pca_check checkpoints
in RUN/tmp/bench/pca_in.mt). Pairs with phi > 0.02, as qc reports them.
"""

from __future__ import annotations

import json
import os
import sys
import time

import hail as hl

from gwas_prs.engine.hail_context import HailConfig, start_hail
from gwas_prs.methods.qc.sample_qc import local_king_pairs

RUN, MT, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
start_hail(HailConfig(run_dir=RUN, command="kingcheck", seed=1))
mt = hl.read_matrix_table(MT)
out = {"load": os.getloadavg()}
t = time.perf_counter()
mine = local_king_pairs(mt, 0.02)
out["numpy_s"] = time.perf_counter() - t
t = time.perf_counter()
king = hl.king(mt.GT)
pairs = king.filter_entries((king.s_1 < king.s) & (king.phi > 0.02)).entries()
theirs = (
    pairs.select(i=pairs.s_1, j=pairs.s, kinship=pairs.phi)
    .key_by()
    .select("i", "j", "kinship")
    .to_pandas()
)
out["hail_s"] = time.perf_counter() - t
out["load_end"] = os.getloadavg()
m = mine.set_index(["i", "j"]).kinship
h = theirs.set_index(["i", "j"]).kinship
out["n_numpy"], out["n_hail"] = len(m), len(h)
common = m.index.intersection(h.index)
out["same_pairs"] = set(m.index) == set(h.index)
out["max_abs_diff"] = float((m.loc[common] - h.loc[common]).abs().max())
out["only_numpy"] = [[*list(x), float(m[x])] for x in list(set(m.index) - set(h.index))[:5]]
out["only_hail"] = [[*list(x), float(h[x])] for x in list(set(h.index) - set(m.index))[:5]]
print(json.dumps(out, indent=1))
with open(OUT, "w") as handle:
    json.dump(out, handle, indent=1)
