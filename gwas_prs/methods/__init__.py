"""The algorithms: return tables and frames, never write. numpy kernels are leaf modules next to the Hail code they equal."""
