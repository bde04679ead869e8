"""Template pipeline: a machine's raw splits from the user's files (``source: {type: file}``)."""

from kedro.pipeline import Node, Pipeline

from pdm_kedro.contract import SPLITS

from .nodes import (
    derive_labels,
    fit_operating_conditions,
    label_operating_conditions,
    no_hidden_state,
    report_source,
    split_source_readings,
    standardise_source_files,
)


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001
    """``source_files`` -> ``raw_train`` / ``raw_val`` / ``raw_test`` and ``source_report``.

    Operating conditions (``source.operating_conditions``) are fitted on the train split and label
    every split's ``regime``; ``operating_conditions`` is saved beside the splits.
    """
    return Pipeline(
        [
            Node(
                standardise_source_files,
                inputs=["source_files", "params:machine", "params:validation"],
                outputs=["source_readings", "source_final_rul", "source_reading_notes"],
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
                outputs=["split_train", "split_val", "split_test"],
                name="split_source_readings",
            ),
            Node(
                fit_operating_conditions,
                inputs=["split_train", "params:machine"],
                outputs="operating_conditions",
                name="fit_operating_conditions",
            ),
            Node(
                no_hidden_state,
                inputs="raw_train",
                outputs=["hidden_state_train", "hidden_state_val", "hidden_state_test"],
                name="no_hidden_state",
            ),
            *(
                Node(
                    label_operating_conditions,
                    inputs=[f"split_{split}", "operating_conditions"],
                    outputs=f"raw_{split}",
                    name=f"label_{split}_operating_conditions",
                )
                for split in SPLITS
            ),
            Node(
                report_source,
                inputs=[
                    "labelled_readings",
                    "source_final_rul",
                    "params:machine",
                    "source_reading_notes",
                ],
                outputs="source_report",
                name="report_source",
            ),
        ]
    )
