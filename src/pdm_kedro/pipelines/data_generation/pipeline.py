"""Template pipeline: simulate one machine's sensor history and split it into raw splits."""

from kedro.pipeline import Node, Pipeline

from .nodes import simulate_machine_history, split_by_episode


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001
    """Simulated ``raw_train`` / ``raw_val`` / ``raw_test`` for the machine of the namespace."""
    return Pipeline(
        [
            Node(
                simulate_machine_history,
                inputs=["params:machine", "params:simulation", "params:labels"],
                outputs="sensor_history",
                name="simulate_machine_history",
            ),
            Node(
                split_by_episode,
                inputs=["sensor_history", "params:splits"],
                outputs=["raw_train", "raw_val", "raw_test"],
                name="split_by_episode",
            ),
        ]
    )
