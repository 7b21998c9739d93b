"""Association tests, splits, simulated traits."""
