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

# The simulator's hidden state (``<machine>.hidden_state_<split>``), read by the measured-ceiling
# nodes only (tests/pipelines/test_hidden_state_isolation.py); file sources have an empty frame.
LATENT_WEAR = "latent_wear"  # 0..1, failure when it reaches 1 (the episode's last reading)
FAILURE_MODE = "failure_mode"  # the failure mode the episode ends in (a key of failure_modes)
HOURS_SINCE_REPAIR = "hours_since_repair"  # hours since the episode's first reading
HIDDEN_COLUMNS = [TIMESTAMP, EPISODE, LATENT_WEAR, FAILURE_MODE, HOURS_SINCE_REPAIR]


def feature_columns(frame) -> list[str]:  # noqa: ANN001 (any table with .columns: pandas, polars)
    """The model-input columns of a feature table (everything but ids and labels), in order."""
    excluded = {*ID_COLUMNS, *LABEL_COLUMNS}
    return [col for col in frame.columns if col not in excluded]
