"""Template pipeline: every model family of a machine -> ONNX + parity check -> edge bundle.

For each family F of :data:`pdm_kedro.families.FAMILIES` whose training pipeline exists, nodes in
namespace ``F`` read ``F.production_model`` (the champion package: model, metrics, registry
version) and write ``edge_F_onnx`` (the ONNX file), ``edge_F_parity`` (ONNX vs native on every
test row), ``edge_F_entry`` (its manifest entry) and ``edge_F_explainer`` (its trees or anomaly
reference); ``diagnosis.describe_diagnosis_for_edge`` reads ``diagnosis.reference``; machine-level
nodes write ``edge_explanation`` (``explanation.json``) and ``edge_manifest`` (which lists the
explanation file with its sha256). The registry adds the machine namespace around all of it.

The bundle is therefore always built from the champion versions in the MLflow registry (or, with
tracking off, from the models of the run).
"""

from __future__ import annotations

import importlib.util

from kedro.pipeline import Node, Pipeline

from pdm_kedro.families import FAMILIES, get_family

from .explanation import (
    build_edge_explanation,
    describe_diagnosis_for_edge,
    describe_model_explanation,
)
from .forecasting import (
    check_forecast_parity,
    describe_forecaster,
    export_forecaster,
)
from .nodes import (
    build_edge_manifest_with_explanation,
    check_onnx_parity,
    describe_for_edge,
    export_to_onnx,
    production_parts,
)


def available_families(families: tuple[str, ...] | None = None) -> list[str]:
    """The families whose training pipeline exists in this project (others are skipped)."""
    names = tuple(FAMILIES) if families is None else families
    return [
        f
        for f in names
        if get_family(f).pipeline is not None
        or importlib.util.find_spec(f"pdm_kedro.pipelines.{f}") is not None
    ]


# kept for callers that listed the families here
EXPORTED_FAMILIES = tuple(FAMILIES)


def _outputs(family: str) -> dict[str, str]:
    return {
        "onnx_model": f"edge_{family}_onnx",
        "onnx_parity": f"edge_{family}_parity",
        "edge_entry": f"edge_{family}_entry",
    }


def forecast_export_pipeline() -> Pipeline:
    """Export (per-sensor graphs merged into one file), backtest parity and manifest entry of the
    forecasting family, inside namespace ``forecasting``."""
    family = "forecasting"
    return Pipeline(
        [
            _unpack_node(),
            Node(
                export_forecaster,
                inputs=["edge_model", "params:machine", "params:edge_export"],
                outputs="onnx_model",
                name="export_to_onnx",
            ),
            Node(
                check_forecast_parity,
                inputs=[
                    "edge_model",
                    "onnx_model",
                    "production_backtest_test",
                    "hourly_val",
                    "hourly_test",
                    "params:machine",
                    "params:edge_export",
                ],
                outputs="onnx_parity",
                name="check_onnx_parity",
            ),
            Node(
                describe_forecaster,
                inputs=["edge_model", "onnx_model", "edge_metrics", "onnx_parity", "edge_registry"],
                outputs="edge_entry",
                name="describe_for_edge",
            ),
        ],
        namespace=family,
        outputs=_outputs(family),
        parameters={"params:machine", "params:edge_export"},
    )


def _unpack_node() -> Node:
    return Node(
        production_parts,
        inputs="production_model",
        outputs=["edge_model", "edge_metrics", "edge_registry"],
        name="unpack_production_model",
    )


def family_export_pipeline(family: str) -> Pipeline:
    """Export, parity check and manifest entry of one family, inside namespace ``family``."""
    if get_family(family).export == "forecaster":
        return forecast_export_pipeline()
    return Pipeline(
        [
            _unpack_node(),
            Node(
                export_to_onnx,
                inputs=["edge_model", "params:machine", "params:edge_export"],
                outputs="onnx_model",
                name="export_to_onnx",
            ),
            Node(
                check_onnx_parity,
                inputs=[
                    "edge_model",
                    "onnx_model",
                    "features_test",
                    "params:machine",
                    "params:edge_export",
                ],
                outputs="onnx_parity",
                name="check_onnx_parity",
            ),
            Node(
                describe_for_edge,
                inputs=["edge_model", "onnx_model", "edge_metrics", "onnx_parity", "edge_registry"],
                outputs="edge_entry",
                name="describe_for_edge",
            ),
            Node(
                describe_model_explanation,
                inputs=["edge_model", "features_train"],
                outputs="edge_explainer",
                name="describe_model_explanation",
            ),
        ],
        namespace=family,
        inputs={"features_test", "features_train"},
        outputs=_outputs(family) | {"edge_explainer": f"edge_{family}_explainer"},
        parameters={"params:machine", "params:edge_export"},
    )


def diagnosis_export_pipeline() -> Pipeline:
    """The diagnosis the edge runs (signatures, healthy reference, actions), read from the
    diagnosis stage's ``diagnosis.reference``, inside namespace ``diagnosis``."""
    return Pipeline(
        [
            Node(
                describe_diagnosis_for_edge,
                inputs=["reference", "params:machine", "sensor_baselines", "params:diagnosis"],
                outputs="edge_diagnosis",
                name="describe_diagnosis_for_edge",
            )
        ],
        namespace="diagnosis",
        inputs={"sensor_baselines"},
        outputs={"edge_diagnosis": "edge_diagnosis"},
        parameters={"params:machine", "params:diagnosis"},
    )


def build_edge_export_pipeline(families: list[str] | tuple[str, ...]) -> Pipeline:
    """Per family: ``F.production_model`` -> ``edge_F_onnx`` (+ parity, entry); then
    ``edge_manifest``."""
    if not families:
        return Pipeline([])
    exports = sum((family_export_pipeline(f) for f in families), Pipeline([]))
    explained = [f for f in families if get_family(f).export == "feature_matrix"]
    manifest = Pipeline(
        [
            Node(
                build_edge_explanation,
                inputs=[
                    "params:machine",
                    "features_test",
                    "edge_diagnosis",
                    *(f"edge_{f}_explainer" for f in explained),
                ],
                outputs="edge_explanation",
                name="build_edge_explanation",
            ),
            Node(
                build_edge_manifest_with_explanation,
                inputs=[
                    "params:machine",
                    "sensor_baselines",
                    "features_test",
                    "params:validation",
                    "edge_explanation",
                    *(f"edge_{f}_entry" for f in families),
                ],
                outputs="edge_manifest",
                name="build_edge_manifest",
            ),
        ]
    )
    return exports + diagnosis_export_pipeline() + manifest


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001
    """The edge export of every family whose training pipeline exists in the project."""
    return build_edge_export_pipeline(available_families())


def create_pipeline_for_families(families: list[str]) -> Pipeline:
    """The edge export of only ``families`` (a file-source machine that trains fewer families).

    The registry calls this instead of dropping nodes, so the manifest node only waits for the
    entries of families that exist.
    """
    return build_edge_export_pipeline([f for f in available_families() if f in families])
