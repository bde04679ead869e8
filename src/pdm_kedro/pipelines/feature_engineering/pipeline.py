"""Template pipeline: fit sensor baselines on train, then window features for every split."""

from kedro.pipeline import Node, Pipeline

from pdm_kedro.contract import SPLITS

from .nodes import (
    assess_label_difficulty,
    build_window_features,
    choose_sensor_baselines,
    fit_sensor_baselines,
)


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001
    """``validated_<split>`` -> ``sensor_baselines`` (train only; a retraining run keeps the
    served ones, :func:`.nodes.choose_sensor_baselines`) -> ``features_<split>``."""
    return Pipeline(
        [
            Node(
                fit_sensor_baselines,
                inputs=["validated_train", "params:machine", "params:features"],
                outputs="fitted_sensor_baselines",
                name="fit_sensor_baselines",
            ),
            Node(
                choose_sensor_baselines,
                inputs=[
                    "fitted_sensor_baselines",
                    "served_sensor_baselines",
                    "params:retraining_data",
                ],
                outputs="sensor_baselines",
                name="choose_sensor_baselines",
            ),
            *(
                Node(
                    build_window_features,
                    inputs=[f"validated_{split}", "sensor_baselines", "params:machine"],
                    outputs=f"features_{split}",
                    name=f"build_{split}_window_features",
                )
                for split in SPLITS
            ),
            Node(
                assess_label_difficulty,
                inputs=["features_train", "features_val", "params:machine"],
                outputs="label_difficulty",
                name="assess_label_difficulty",
            ),
        ]
    )


def create_scoring_pipeline() -> Pipeline:
    """The scoring stage's part: ``validated_incoming`` -> ``features_incoming``, with the
    baselines fitted on train (the same features as training and the edge)."""
    return Pipeline(
        [
            Node(
                build_window_features,
                inputs=["validated_incoming", "sensor_baselines", "params:machine"],
                outputs="features_incoming",
                name="build_incoming_window_features",
            )
        ]
    )
