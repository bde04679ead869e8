"""Failure-mode diagnosis: which configured failure mode is developing, with a confidence and
the configured recommended action, evaluated against the simulator's true mode; and the local
accuracy check of the XGBoost contributions. See README.md."""

from pdm_kedro.pipelines.diagnosis.pipeline import (
    create_fleet_pipeline,
    create_pipeline,
    diagnosis_datasets,
)

# its deviations are window statistics (long-window mean and std of each sensor): the registry
# leaves the stage out for snapshot tables (``time_kind: none``), whose rows have no windows
NEEDS_TIME_ORDER = True

__all__ = ["create_fleet_pipeline", "create_pipeline", "diagnosis_datasets"]
