"""Edge export: ONNX models, parity checks and a manifest per machine (the edge bundle)."""

from .pipeline import create_pipeline, create_pipeline_for_families

# the edge runtime computes window features from a history of readings: the registry leaves the
# stage out for snapshot tables (``time_kind: none``); their source report says so
NEEDS_TIME_ORDER = True

__all__ = ["create_pipeline", "create_pipeline_for_families"]
