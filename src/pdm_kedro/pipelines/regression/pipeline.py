"""Template pipeline of the regression family (nested as ``<machine>.regression``)."""

import warnings

from kedro.pipeline import Node, Pipeline

from pdm_kedro.evaluation.ceiling import ceiling_regressor_metrics
from pdm_kedro.evaluation.tracking import registration_entry, tracking_metrics
from pdm_kedro.promotion import REBUILT_FROM, ROW_EVALUATION, promotion_nodes

from .nodes import (
    FAMILY,
    evaluate_rul_model,
    fit_rul_baseline,
    plot_rul_predictions,
    predict_test_rul,
    rank_feature_importance,
    score_for_promotion,
    train_rul_regressor,
)

# the failure classifier (its chosen threshold): the RUL answer respects its alarms. Its model,
# not its test predictions: a model-output input would make the regression group a layer cycle
# (models -> model_output -> models) and kedro-viz would draw no layers
FAILURE_MODEL = "classification.model"


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001
    """Train on train, early-stop on val, score model and baseline on test only; the RUL answer
    respects the failure classifier's test alarms (``classification.model``)."""
    return create_pipeline_for_families(["classification", FAMILY])


def create_pipeline_for_families(families: list[str]) -> Pipeline:
    """The template for a machine that trains ``families``: without the classification family
    the RUL answer is the model's value (no alarm to respect)."""
    with warnings.catch_warnings():
        # the failure classifier is read under its family's name (classification.model)
        warnings.filterwarnings("ignore", message="One or more dataset names contain '.'")
        return _pipeline("classification" in families)


def _pipeline(with_alarms: bool) -> Pipeline:
    nodes = [
        Node(  # the only reader of the hidden state: its figures go into the metrics only
            ceiling_regressor_metrics,
            inputs=[
                "features_train",
                "features_val",
                "features_test",
                "hidden_state_train",
                "hidden_state_val",
                "hidden_state_test",
                "params:regression",
            ],
            outputs="ceiling",
            name="measure_ceiling",
        ),
        Node(
            fit_rul_baseline,
            inputs=["features_train", "features_val", "params:regression"],
            outputs="baseline",
            name="fit_rul_baseline",
        ),
        Node(
            train_rul_regressor,
            inputs=["features_train", "features_val", "params:regression"],
            outputs="model",
            name="train_rul_regressor",
        ),
        Node(
            predict_test_rul,
            inputs=["model", "baseline", "features_test"]
            + ([FAILURE_MODEL] if with_alarms else []),
            outputs="test_predictions",
            name="predict_test_rul",
        ),
        Node(
            evaluate_rul_model,
            inputs=[
                "model",
                "baseline",
                "features_val",
                "test_predictions",
                "features_test",
                "params:machine",
                "params:regression",
                "ceiling",
            ],
            outputs="metrics",
            name="evaluate_rul_model",
        ),
        Node(
            plot_rul_predictions,
            inputs=["test_predictions", "metrics"],
            outputs="rul_predicted_vs_true_plot",
            name="plot_rul_predictions",
        ),
        Node(
            rank_feature_importance,
            inputs="model",
            outputs="feature_importance",
            name="rank_feature_importance",
        ),
        Node(tracking_metrics, inputs="metrics", outputs="mlflow_metrics", name="track_metrics"),
        Node(
            registration_entry,
            inputs=["model", "metrics", "features_test", "features_val", "sensor_baselines"],
            outputs="registered_model",
            name="register_model",
        ),
        *promotion_nodes(
            FAMILY,
            score_for_promotion,
            list(ROW_EVALUATION),
        ),
    ]
    return Pipeline(
        nodes,
        namespace=FAMILY,
        inputs={
            "features_train",
            "features_val",
            "features_test",
            *REBUILT_FROM,
            "hidden_state_train",
            "hidden_state_val",
            "hidden_state_test",
            *([FAILURE_MODEL] if with_alarms else []),
        },
        parameters={"params:machine", "params:regression", "params:promotion"},
    )
