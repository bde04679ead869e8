"""feature_engineering template pipeline."""

from .pipeline import create_pipeline, create_scoring_pipeline

__all__ = ["create_pipeline", "create_scoring_pipeline"]
