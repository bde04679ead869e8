"""Forecasting family: 24-hour ARIMA forecasts of each machine's key sensors."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
