"""data_ingestion template pipeline: a machine's raw splits from the user's own files."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
