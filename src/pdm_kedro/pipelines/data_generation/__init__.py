"""data_generation template pipeline."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
