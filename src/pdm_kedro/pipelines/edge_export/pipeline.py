"""Template pipeline: every model family of a machine -> ONNX + parity check -> edge bundle.

For each family F present in the project (``pipelines/F`` exists), nodes in namespace ``F`` read
``F.model`` and ``F.metrics`` and write ``edge_F_onnx`` (the ONNX file), ``edge_F_parity``
(ONNX vs native on every test row) and ``edge_F_entry`` (its manifest entry); one machine-level node
writes ``edge_manifest``. The registry adds the machine namespace around all of it.
"""

from __future__ import annotations

import importlib.util

from kedro.pipeline import Node, Pipeline

from .nodes import build_edge_manifest, check_onnx_parity, describe_for_edge, export_to_onnx

EXPORTED_FAMILIES = ("classification", "regression", "anomaly")


def available_families(families: tuple[str, ...] = EXPORTED_FAMILIES) -> list[str]:
    """The families whose training pipeline exists in this project (others are skipped)."""
    return [f for f in families if importlib.util.find_spec(f"pdm_kedro.pipelines.{f}")]


def family_export_pipeline(family: str) -> Pipeline:
    """Export, parity check and manifest entry of one family, inside namespace ``family``."""
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
        outputs={
            "onnx_model": f"edge_{family}_onnx",
            "onnx_parity": f"edge_{family}_parity",
            "edge_entry": f"edge_{family}_entry",
        },
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
