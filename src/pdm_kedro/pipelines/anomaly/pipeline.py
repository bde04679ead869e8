"""Template pipeline of the anomaly family (nested as ``<machine>.anomaly``)."""

from kedro.pipeline import Node, Pipeline

from pdm_kedro.evaluation.tracking import registration_entry, tracking_metrics
from pdm_kedro.promotion import REBUILT_FROM, ROW_EVALUATION, promotion_nodes

from .nodes import (
    FAMILY,
    choose_detector,
    episode_thresholds,
    evaluate_anomaly_model,
    fit_anomaly_rule,
    fit_isolation_forest,
    fit_one_class_svm,
    fit_pca_t2q,
    package_anomaly_model,
    plot_score_distribution,
    sample_healthy_rows,
    score_for_promotion,
    score_test_rows,
    select_detector_inputs,
)


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001
    """Fit on healthy train rows, choose detector and threshold on val, score on test only."""
    nodes = [
        Node(
            select_detector_inputs,
            inputs=["params:machine", "params:anomaly", "params:features"],
            outputs="detector_inputs",
            name="select_detector_inputs",
        ),
        Node(
            sample_healthy_rows,
            inputs=["features_train", "params:anomaly"],
            outputs="healthy_train_rows",
            name="sample_healthy_rows",
        ),
        Node(
            fit_isolation_forest,
            inputs=["healthy_train_rows", "detector_inputs", "params:anomaly"],
            outputs="isolation_forest",
            name="fit_isolation_forest",
        ),
        Node(
            fit_one_class_svm,
            inputs=["healthy_train_rows", "detector_inputs", "params:anomaly"],
            outputs="one_class_svm",
            name="fit_one_class_svm",
        ),
        Node(
            fit_pca_t2q,
            inputs=["healthy_train_rows", "detector_inputs", "params:anomaly"],
            outputs="pca_t2q",
            name="fit_pca_t2q",
        ),
        Node(
            choose_detector,
            inputs=[
                "isolation_forest",
                "one_class_svm",
                "pca_t2q",
                "features_val",
                "detector_inputs",
                "params:anomaly",
            ],
            outputs="detector_selection",
            name="choose_detector",
        ),
        Node(
            package_anomaly_model,
            inputs=[
                "isolation_forest",
                "one_class_svm",
                "pca_t2q",
                "detector_selection",
                "detector_inputs",
            ],
            outputs="model",
            name="package_anomaly_model",
        ),
        Node(
            fit_anomaly_rule,
            inputs=["features_train", "features_val", "params:machine", "params:anomaly"],
            outputs="baseline_rule",
            name="fit_anomaly_rule",
        ),
        Node(
            episode_thresholds,
            inputs=["model", "features_train", "params:anomaly"],
            outputs="calibrated_model",
            name="calibrate_episode_thresholds",
        ),
        Node(
            score_test_rows,
            inputs=["calibrated_model", "features_test"],
            outputs="test_scores",
            name="score_test_rows",
        ),
        Node(
            evaluate_anomaly_model,
            inputs=[
                "test_scores",
                "baseline_rule",
                "features_test",
                "detector_selection",
                "params:machine",
                "params:anomaly",
            ],
            outputs="metrics",
            name="evaluate_anomaly_model",
        ),
        Node(
            plot_score_distribution,
            inputs=["test_scores", "metrics"],
            outputs="score_distribution_plot",
            name="plot_score_distribution",
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
        },
        parameters={"params:machine", "params:anomaly", "params:features", "params:promotion"},
    )
