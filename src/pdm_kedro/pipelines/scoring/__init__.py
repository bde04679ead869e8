"""Scoring: a batch of new readings answered by the machine's production (champion) models."""

from .pipeline import INFERENCE, create_pipeline

__all__ = ["INFERENCE", "create_pipeline"]
