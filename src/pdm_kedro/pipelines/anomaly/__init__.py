"""Anomaly family: unsupervised detection of injected sensor faults."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
