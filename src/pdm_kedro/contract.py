"""The raw data contract: column names shared by the simulator, validation, features and models.

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
