"""Template pipeline of the classification family (nested as ``<machine>.classification``)."""

from kedro.pipeline import Node, Pipeline

from pdm_kedro.evaluation.ceiling import ceiling_classifier_metrics
from pdm_kedro.evaluation.tracking import registration_entry, tracking_metrics
from pdm_kedro.promotion import REBUILT_FROM, ROW_EVALUATION, promotion_nodes

from .nodes import (
    FAMILY,
    assess_alarm_events,
    choose_threshold_by_grouped_cv,
    evaluate_failure_model,
    fit_failure_rule,
    package_failure_model,
    plot_confusion_matrix,
    plot_precision_recall,
    predict_failures,
    rank_feature_importance,
    refit_failure_classifier,
    score_for_promotion,
    train_failure_classifier,
)


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001
    """Train on train, early-stop and pick the threshold on val, score on test only."""
    nodes = [
        Node(  # the only reader of the hidden state: its figures go into the metrics only
            ceiling_classifier_metrics,
            inputs=[
                "features_train",
                "features_val",
                "features_test",
                "hidden_state_train",
                "hidden_state_val",
                "hidden_state_test",
                "params:classification",
            ],
            outputs="ceiling",
            name="measure_ceiling",
        ),
        Node(
            fit_failure_rule,
            inputs=["features_train", "params:machine", "params:classification"],
            outputs="baseline_rule",
            name="fit_failure_rule",
        ),
        Node(
            train_failure_classifier,
            inputs=["features_train", "features_val", "params:classification"],
            outputs="classifier",
            name="train_failure_classifier",
        ),
        Node(
            choose_threshold_by_grouped_cv,
            inputs=["classifier", "features_train", "features_val", "params:classification"],
            outputs="decision_threshold",
            name="choose_decision_threshold",
        ),
        Node(
            refit_failure_classifier,
            inputs=["classifier", "features_train", "features_val", "params:classification"],
            outputs="final_classifier",
            name="refit_failure_classifier",
        ),
        Node(
            package_failure_model,
            inputs=["final_classifier", "decision_threshold", "params:labels"],
            outputs="model",
            name="package_failure_model",
        ),
        Node(
            predict_failures,
            inputs=["model", "features_test"],
            outputs="test_predictions",
            name="predict_test_failures",
        ),
        Node(
            assess_alarm_events,
            inputs=[
                "test_predictions",
                "features_test",
                "baseline_rule",
                "params:machine",
                "params:labels",
                "params:classification",
            ],
            outputs="alarm_events",
            name="assess_alarm_events",
        ),
        Node(
            evaluate_failure_model,
            inputs=[
                "model",
                "classifier",
                "baseline_rule",
                "features_val",
                "test_predictions",
                "features_test",
                "params:machine",
                "params:classification",
                "ceiling",
                "alarm_events",
            ],
            outputs="metrics",
            name="evaluate_failure_model",
        ),
        Node(
            plot_precision_recall,
            inputs=["test_predictions", "metrics"],
            outputs="pr_curve_plot",
            name="plot_precision_recall",
        ),
        Node(
            plot_confusion_matrix,
            inputs="metrics",
            outputs="confusion_matrix_plot",
            name="plot_confusion_matrix",
        ),
        Node(
            rank_feature_importance,
            inputs="model",
            outputs="feature_importance",
            name="rank_feature_importance",
        ),
        Node(
            tracking_metrics,
            inputs="metrics",
            outputs="mlflow_metrics",
            name="track_metrics",
        ),
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
        },
        parameters={
            "params:machine",
            "params:classification",
            "params:labels",
            "params:promotion",
        },
    )
