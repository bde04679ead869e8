"""The data contract: column names shared by the simulator, validation, features, models and the
edge, and which columns of a feature table are model inputs. Standard library only.

See docs/data_contract.md for the full contract a user's own data must meet.
"""

TIMESTAMP = "timestamp"
EPISODE = "episode_id"
REGIME = "regime"

RUL = "rul"
FAILURE_WITHIN_HORIZON = "failure_within_horizon"
ANOMALY = "anomaly"
LABEL_COLUMNS = (RUL, FAILURE_WITHIN_HORIZON, ANOMALY)

ID_COLUMNS = (TIMESTAMP, EPISODE, REGIME)
QUARANTINE_REASON = "quarantine_reason"
SPLITS = ("train", "val", "test")


def feature_columns(frame) -> list[str]:  # noqa: ANN001 (any table with .columns: pandas, polars)
    """The model-input columns of a feature table (everything but ids and labels), in order."""
    excluded = {*ID_COLUMNS, *LABEL_COLUMNS}
    return [col for col in frame.columns if col not in excluded]
