"""Template pipeline ``monitoring``: drift, data quality, realised performance, retraining decision."""

from .pipeline import INFERENCE, STANDALONE, create_pipeline

__all__ = ["INFERENCE", "STANDALONE", "create_pipeline"]
