"""Regression family: remaining useful life (hours, capped)."""

from .pipeline import create_pipeline, create_pipeline_for_families

__all__ = ["create_pipeline", "create_pipeline_for_families"]
