"""pdm_kedro: predictive maintenance for an industrial fleet, built as a Kedro project.

This package root imports nothing heavy, so `pdm_kedro.edge` (numpy + onnxruntime only) can be
imported on an edge device without pandas, scikit-learn, xgboost or Kedro.
"""

__version__ = "0.1.0"
