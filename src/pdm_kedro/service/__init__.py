"""The prediction and training service (``pdm-kedro serve``; see docs/serving.md)."""
