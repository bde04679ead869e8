"""Diagnosis template (one instance per machine) and its fleet-level report node."""

from __future__ import annotations

import warnings
from collections.abc import Iterable

from kedro.pipeline import Node, Pipeline

from pdm_kedro.pipelines.diagnosis.nodes import (
    build_diagnosis_report,
    check_local_accuracy,
    compute_test_contributions,
    evaluate_diagnosis,
    fit_diagnosis_reference,
    write_explanation_section,
)

EVALUATION = "diagnosis.evaluation"
LOCAL_ACCURACY = "local_accuracy"
CONTRIBUTIONS = "test_contributions"  # in memory: TreeSHAP on every test row, computed once
EXPLAINED_FAMILIES = ("classification", "regression")


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001
    """Per-machine template: reference, evaluation, and one local-accuracy check per explained
    family (in that family's namespace, so a machine without the family drops it)."""
    with warnings.catch_warnings():
        # the family datasets are read under their family's names (``classification.model``)
        warnings.filterwarnings("ignore", message="One or more dataset names contain '.'")
        return Pipeline(_nodes())


def _nodes() -> list[Node]:
    nodes = [
        Node(
            fit_diagnosis_reference,
            inputs=["features_train", "params:machine", "sensor_baselines", "params:diagnosis"],
            outputs="diagnosis.reference",
            name="fit_diagnosis_reference",
            namespace="diagnosis",
        ),
        Node(
            evaluate_diagnosis,
            inputs=[
                "features_test",
                "hidden_state_train",
                "hidden_state_test",
                "params:machine",
                "sensor_baselines",
                "diagnosis.reference",
                "params:diagnosis",
            ],
            outputs=EVALUATION,
            name="evaluate_diagnosis",
            namespace="diagnosis",
        ),
    ]
    nodes.append(
        Node(
            write_explanation_section,
            inputs=[
                "features_test",
                "classification.model",
                "regression.model",
                f"classification.{CONTRIBUTIONS}",
                f"regression.{CONTRIBUTIONS}",
                "params:machine",
                "params:diagnosis",
            ],
            outputs="classification.explanation_card",
            name="write_explanation_section",
            namespace="classification",
        )
    )
    for family in EXPLAINED_FAMILIES:
        nodes += [
            Node(
                compute_test_contributions,
                inputs=["features_test", f"{family}.model"],
                outputs=f"{family}.{CONTRIBUTIONS}",
                name="compute_test_contributions",
                namespace=family,
            ),
            Node(
                check_local_accuracy,
                inputs=[
                    "features_test",
                    f"{family}.model",
                    f"{family}.{CONTRIBUTIONS}",
                    "params:diagnosis",
                ],
                outputs=f"{family}.{LOCAL_ACCURACY}",
                name="check_local_accuracy",
                namespace=family,
            ),
        ]
    return nodes


def diagnosis_datasets(pipelines: Iterable[Pipeline]) -> list[str]:
    """Every ``<machine>.diagnosis.evaluation`` and ``<machine>.<family>.local_accuracy``."""
    return sorted(
        {
            name
            for pipe in pipelines
            for name in pipe.all_outputs()
            if name.endswith(("." + EVALUATION, "." + LOCAL_ACCURACY))
        }
    )


def create_fleet_pipeline(documents: Iterable[str]) -> Pipeline:
    """Fleet level (not namespaced): ``diagnosis_report`` from the machines' documents."""
    names = sorted(documents)
    if not names:
        return Pipeline([])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="One or more dataset names contain '.'")
        node = Node(
            build_diagnosis_report,
            inputs=names,
            outputs="diagnosis_report",
            name="build_diagnosis_report",
        )
    return Pipeline([node])
