"""Template pipeline: every model family of a machine -> ONNX + parity check -> edge bundle.

For each family F present in the project (``pipelines/F`` exists), nodes in namespace ``F`` read
``F.model`` and ``F.metrics`` and write ``edge_F_onnx`` (the ONNX file), ``edge_F_parity``
(ONNX vs native on every test row) and ``edge_F_entry`` (its manifest entry); one machine-level node
writes ``edge_manifest``. The registry adds the machine namespace around all of it.
"""

from __future__ import annotations

import importlib.util

from kedro.pipeline import Node, Pipeline

from .forecasting import check_forecast_parity, describe_forecaster, export_forecaster
from .nodes import build_edge_manifest, check_onnx_parity, describe_for_edge, export_to_onnx

EXPORTED_FAMILIES = ("classification", "regression", "anomaly", "forecasting")
# the module each family's export needs (forecasting: the stage's own ONNX exporter)
FAMILY_MODULES = {
    "classification": "pdm_kedro.pipelines.classification",
    "regression": "pdm_kedro.pipelines.regression",
    "anomaly": "pdm_kedro.pipelines.anomaly",
    "forecasting": "pdm_kedro.pipelines.forecasting.onnx_export",
}


def available_families(families: tuple[str, ...] = EXPORTED_FAMILIES) -> list[str]:
    """The families whose training pipeline exists in this project (others are skipped)."""
    return [f for f in families if importlib.util.find_spec(FAMILY_MODULES[f]) is not None]


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
            Node(
                export_forecaster,
                inputs=["model", "params:machine", "params:edge_export"],
                outputs="onnx_model",
                name="export_to_onnx",
            ),
            Node(
                check_forecast_parity,
                inputs=[
                    "model",
                    "onnx_model",
                    "backtest_test",
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
                inputs=["model", "onnx_model", "metrics", "onnx_parity"],
                outputs="edge_entry",
                name="describe_for_edge",
            ),
        ],
        namespace=family,
        outputs=_outputs(family),
        parameters={"params:machine", "params:edge_export"},
    )


def family_export_pipeline(family: str) -> Pipeline:
    """Export, parity check and manifest entry of one family, inside namespace ``family``."""
    if family == "forecasting":
        return forecast_export_pipeline()
    return Pipeline(
        [
            Node(
                export_to_onnx,
                inputs=["model", "params:machine", "params:edge_export"],
                outputs="onnx_model",
                name="export_to_onnx",
            ),
            Node(
                check_onnx_parity,
                inputs=[
                    "model",
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
                inputs=["model", "onnx_model", "metrics", "onnx_parity"],
                outputs="edge_entry",
                name="describe_for_edge",
            ),
        ],
        namespace=family,
        inputs={"features_test"},
        outputs=_outputs(family),
        parameters={"params:machine", "params:edge_export"},
    )


def build_edge_export_pipeline(families: list[str] | tuple[str, ...]) -> Pipeline:
    """Per family: ``F.model`` -> ``edge_F_onnx`` (+ parity, entry); then ``edge_manifest``."""
    if not families:
        return Pipeline([])
    exports = sum((family_export_pipeline(f) for f in families), Pipeline([]))
    manifest = Pipeline(
        [
            Node(
                build_edge_manifest,
                inputs=[
                    "params:machine",
                    "sensor_baselines",
                    "features_test",
                    "params:validation",
                    *(f"edge_{f}_entry" for f in families),
                ],
                outputs="edge_manifest",
                name="build_edge_manifest",
            )
        ]
    )
    return exports + manifest


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001
    """The edge export of every family whose training pipeline exists in the project."""
    return build_edge_export_pipeline(available_families())


def create_pipeline_for_families(families: list[str]) -> Pipeline:
    """The edge export of only ``families`` (a file-source machine that trains fewer families).

    The registry calls this instead of dropping nodes, so the manifest node only waits for the
    entries of families that exist.
    """
    return build_edge_export_pipeline([f for f in available_families() if f in families])
