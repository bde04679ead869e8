"""Edge export: ONNX models, parity checks and a manifest per machine (the edge bundle)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
