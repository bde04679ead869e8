"""Regression family: remaining useful life (hours, capped)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
