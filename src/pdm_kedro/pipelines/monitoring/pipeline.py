"""Template pipeline: monitor one machine's production (``{machine}.monitoring``).

Reads what scoring wrote (the prediction log with the readings, the scored rows' features, each
incoming file's account) and the labels matured so far; computes only the windows of days not in
``monitoring_windows`` yet (incremental), against the training reference (``validated_train``,
``features_train``: saved at training time) and the champion's test figures (the family
metrics). Registered as its own pipeline over every machine (not in training):
``kedro run --pipelines monitoring --namespaces <machine>`` after ``scoring``.
"""

from kedro.pipeline import Node, Pipeline

from .nodes import decide_retraining, monitor_machine, plot_monitoring

INFERENCE = True  # the registry keeps this stage out of the training pipelines
STANDALONE = True  # its own registered pipeline, not a part of `scoring`


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001
    """Reference + production -> ``monitoring_windows`` (new days), ``monitoring_report``
    (monitoring.json), ``monitoring_plot`` and ``retraining_decision``."""
    return Pipeline(
        [
            Node(
                monitor_machine,
                inputs={
                    "validated_train": "validated_train",
                    "validated_test": "validated_test",
                    "features_train": "features_train",
                    "prediction_log": "prediction_log",
                    "scored_features": "scored_features",
                    "scoring_batches": "scoring_batches",
                    "production_labels": "production_labels",
                    "monitoring_windows_seen": "monitoring_windows_seen",
                    "drift_calibration_seen": "drift_calibration_seen",
                    "classification_metrics": "classification.metrics",
                    "regression_metrics": "regression.metrics",
                    "classification_test": "classification.test_predictions",
                    "regression_test": "regression.test_predictions",
                    "bundle": "edge_bundle",
                    "machine": "params:machine",
                    "monitoring": "params:monitoring",
                    "rul_cap_hours": "params:regression.rul_cap_hours",
                },
                outputs=["monitoring_windows", "drift_calibration", "monitoring_report"],
                name="monitor_production",
            ),
            Node(
                plot_monitoring,
                inputs=["monitoring_report", "params:retraining"],
                outputs="monitoring_plot",
                name="plot_monitoring",
            ),
            Node(
                decide_retraining,
                inputs=["monitoring_report", "params:retraining", "params:retraining_manual"],
                outputs="retraining_decision",
                name="decide_retraining",
            ),
        ]
    )
