"""Metrics and baselines shared by the feature report and the model families."""
