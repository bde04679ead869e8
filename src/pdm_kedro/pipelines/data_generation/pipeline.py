"""Template pipeline: simulate one machine's sensor history and split it into raw splits."""

from kedro.pipeline import Node, Pipeline

from .nodes import simulate_machine_history_and_hidden_state, split_by_episode


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001
    """Simulated ``raw_train`` / ``raw_val`` / ``raw_test`` for the machine of the namespace, and
    the simulator's hidden state per split (``hidden_state_<split>``, read by ceiling nodes only)."""
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
                outputs=["raw_train", "raw_val", "raw_test"],
                name="split_by_episode",
            ),
            Node(
                split_by_episode,
                inputs=["hidden_state", "params:splits"],
                outputs=["hidden_state_train", "hidden_state_val", "hidden_state_test"],
                name="split_hidden_state_by_episode",
            ),
        ]
    )
