"""Edge export: ONNX models, parity checks and a manifest per machine (the edge bundle)."""

from .pipeline import create_pipeline, create_pipeline_for_families

__all__ = ["create_pipeline", "create_pipeline_for_families"]
