"""Template pipeline ``production_stream``: the simulator continued after the test period."""

from .pipeline import INFERENCE, STANDALONE, create_pipeline

__all__ = ["INFERENCE", "STANDALONE", "create_pipeline"]
