"""pdm_kedro: predictive maintenance for an industrial fleet, built as a Kedro project.

This package root imports nothing heavy, so `pdm_kedro.edge` (numpy + onnxruntime only) can be
imported on an edge device without pandas, scikit-learn, xgboost or Kedro. It turns the
libraries' usage telemetry off unless ``PDM_TELEMETRY=on`` (see :mod:`pdm_kedro.telemetry`).
"""

from pdm_kedro.telemetry import disable_library_telemetry

disable_library_telemetry()

__version__ = "0.1.0"
