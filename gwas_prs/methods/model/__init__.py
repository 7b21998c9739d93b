"""The risk model: training, evaluation, artifacts for predict."""
