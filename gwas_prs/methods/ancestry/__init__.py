"""Population structure: LD pruning, HWE-normalised PCA, ancestry assignment."""
