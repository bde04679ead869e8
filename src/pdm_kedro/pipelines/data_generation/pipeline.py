"""Template pipeline: simulate one machine's sensor history and split it into raw splits."""

from kedro.pipeline import Node, Pipeline

from pdm_kedro.splits import (
    align_hidden_state,
    collect_matured_production,
    extend_splits_with_production,
)

from .nodes import simulate_machine_history_and_hidden_state, split_by_episode


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001
    """Simulated ``raw_train`` / ``raw_val`` / ``raw_test`` for the machine of the namespace, and
    the simulator's hidden state per split (``hidden_state_<split>``, read by ceiling nodes only).

    With ``retraining_data.use_production`` (``pdm-kedro cycle --retrain``) the matured production
    rows (prediction log joined with ``labels/``) join the training data and the newest of them
    become the test split (``retraining_data_report`` says which rows went where)."""
    return Pipeline(
        [
            Node(
                simulate_machine_history_and_hidden_state,
                inputs=["params:machine", "params:simulation", "params:labels"],
                outputs=["sensor_history", "hidden_state"],
                name="simulate_machine_history",
            ),
            Node(
                split_by_episode,
                inputs=["sensor_history", "params:splits"],
                outputs=["split_train", "split_val", "split_test"],
                name="split_by_episode",
            ),
            Node(
                split_by_episode,
                inputs=["hidden_state", "params:splits"],
                outputs=["hidden_split_train", "hidden_split_val", "hidden_split_test"],
                name="split_hidden_state_by_episode",
            ),
            Node(
                collect_matured_production,
                inputs=[
                    "prediction_log_seen",
                    "production_labels_seen",
                    "params:machine",
                    "params:retraining_data",
                ],
                outputs="matured_production",
                name="collect_matured_production",
            ),
            Node(
                extend_splits_with_production,
                inputs=[
                    "split_train",
                    "split_val",
                    "split_test",
                    "matured_production",
                    "params:splits",
                    "params:retraining_data",
                    "params:machine",
                ],
                outputs=["raw_train", "raw_val", "raw_test", "retraining_data_report"],
                name="extend_splits_with_production",
            ),
            Node(
                align_hidden_state,
                inputs=[
                    "raw_train",
                    "raw_val",
                    "raw_test",
                    "hidden_split_train",
                    "hidden_split_val",
                    "hidden_split_test",
                ],
                outputs=["hidden_state_train", "hidden_state_val", "hidden_state_test"],
                name="align_hidden_state",
            ),
        ]
    )
