"""Reporting: model cards per machine and the fleet metrics table."""

from .pipeline import (
    connect_family_metrics,
    create_fleet_pipeline,
    create_pipeline,
    metrics_datasets,
)

__all__ = ["connect_family_metrics", "create_fleet_pipeline", "create_pipeline", "metrics_datasets"]
