"""Template pipeline: a machine's raw splits from the user's files (``source: {type: file}``)."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    derive_labels,
    no_hidden_state,
    report_source,
    split_source_readings,
    standardise_source_files,
)


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001
    """``source_files`` -> ``raw_train`` / ``raw_val`` / ``raw_test`` and ``source_report``."""
    return Pipeline(
        [
            Node(
                standardise_source_files,
                inputs=["source_files", "params:machine"],
                outputs=["source_readings", "source_final_rul"],
                name="standardise_source_files",
            ),
            Node(
                derive_labels,
                inputs=["source_readings", "source_final_rul", "params:machine", "params:labels"],
                outputs="labelled_readings",
                name="derive_labels",
            ),
            Node(
                split_source_readings,
                inputs=["labelled_readings", "params:machine", "params:splits"],
                outputs=["raw_train", "raw_val", "raw_test"],
                name="split_source_readings",
            ),
            Node(
                report_source,
                inputs=["labelled_readings", "source_final_rul", "params:machine"],
                outputs="source_report",
                name="report_source",
            ),
            Node(
                no_hidden_state,
                inputs="raw_train",
                outputs=["hidden_state_train", "hidden_state_val", "hidden_state_test"],
                name="no_hidden_state",
            ),
        ]
    )
