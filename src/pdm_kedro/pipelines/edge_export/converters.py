"""Native model -> ONNX conversion, metadata and inference helpers used by the export nodes.

- XGBoost classifier/regressor: ``onnxmltools.convert_xgboost`` (capped at opset 15). The booster
  must carry no feature names (the families train on float32 numpy arrays); the names travel in
  the ONNX metadata and the bundle manifest instead.
- scikit-learn anomaly detectors (e.g. StandardScaler + IsolationForest): ``skl2onnx`` with
  ``ai.onnx.ml`` >= 3 (IsolationForest needs it); the ``scores`` output equals
  ``decision_function``. The family's PCA T²+Q detector (a custom estimator skl2onnx has no
  converter for) is converted by :func:`pca_t2q_converter`, registered for the estimator's own
  class when a Pipeline ending in one is exported: the preprocessing converts with stock skl2onnx,
  the T²+Q score is a few MatMul / Sub / Mul / ReduceSum nodes in float64.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto
from onnxmltools.convert import convert_xgboost
from onnxmltools.convert.common.data_types import FloatTensorType as XgbFloatTensorType
from skl2onnx import convert_sklearn, update_registered_converter
from skl2onnx.common.data_types import FloatTensorType, Int64TensorType

from pdm_kedro.edge.bundle import INPUT_NAME, make_session

# onnx output carrying the answer, per family (after conversion with the settings below)
CLASSIFIER_OUTPUT = "probabilities"
REGRESSOR_OUTPUT = "variable"
DETECTOR_OUTPUT = "scores"
# ``pdm_onnx_graph`` of the anomaly family's PCA T²+Q detector (pipelines/anomaly/pca_detector.py)
PCA_T2Q_CONVERTER = "pdm_kedro_pca_t2q"


def xgboost_to_onnx(estimator: Any, n_features: int, opset: int) -> onnx.ModelProto:
    """ONNX graph of an XGBClassifier/XGBRegressor with one float input ``features`` (n, k)."""
    if estimator.get_booster().feature_names is not None:
        estimator = copy.deepcopy(estimator)
        estimator.get_booster().feature_names = None
    return convert_xgboost(
        estimator,
        initial_types=[(INPUT_NAME, XgbFloatTensorType([None, n_features]))],
        target_opset=int(opset),
    )


def pca_t2q_shape(operator: Any) -> None:
    """skl2onnx shape calculator of the T²+Q detector: label (n,) int64, scores (n, 1) float."""
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = Int64TensorType([n])
    operator.outputs[1].type = FloatTensorType([n, 1])


def pca_t2q_converter(scope: Any, operator: Any, container: Any) -> None:
    """The T²+Q detector's ``decision_function`` (``scores``) and ``predict`` (``label``) as ONNX.

    ``c = x - mean``; ``t = c @ components.T``; ``T² = sum((t / sqrt(var))²)``;
    ``Q = sum((c - t @ components)²)``; ``a = T² / t2_scale``, ``b = Q / q_scale``; ``scores =
    -log(1 + a + b) - offset`` (or ``-log(1 + max(a, b)) - offset``); ``label = 1`` where ``scores >= 0``, else -1.
    Computed in float64 after the (float32) preprocessing, as the native estimator does.
    """
    det = operator.raw_operator
    if container.target_opset < 13:
        raise ValueError("PCA T²+Q export needs ONNX opset >= 13 (ReduceSum axes as input)")
    name = scope.get_unique_variable_name

    def const(tag: str, value: Any, dtype: Any = np.float64) -> str:
        array = np.asarray(value, dtype=dtype)
        out = name(f"t2q_{tag}")
        onnx_type = TensorProto.INT64 if array.dtype == np.int64 else TensorProto.DOUBLE
        container.add_initializer(out, onnx_type, list(array.shape), array.ravel().tolist())
        return out

    def node(op: str, inputs: list[str], tag: str, **attrs: Any) -> str:
        out = name(f"t2q_{tag}")
        container.add_node(op, inputs, [out], name=scope.get_unique_operator_name(op), **attrs)
        return out

    x = node("Cast", [operator.inputs[0].full_name], "x64", to=TensorProto.DOUBLE)
    centred = node("Sub", [x, const("mean", det.mean_.reshape(1, -1))], "centred")
    projected = node("MatMul", [centred, const("project", det.components_.T)], "projected")
    weight = const("inv_sd", 1.0 / np.sqrt(det.explained_variance_).reshape(1, -1))
    along = node("Mul", [projected, weight], "along")
    axes = const("axes", [1], np.int64)
    t2 = node("ReduceSum", [node("Mul", [along, along], "along2"), axes], "t2", keepdims=1)
    rebuilt = node("MatMul", [projected, const("rebuild", det.components_)], "rebuilt")
    off = node("Sub", [centred, rebuilt], "residual")
    q = node("ReduceSum", [node("Mul", [off, off], "residual2"), axes], "q", keepdims=1)
    a = node("Mul", [t2, const("t2_inv", [[1.0 / det.t2_scale_]])], "t2_scaled")
    b = node("Mul", [q, const("q_inv", [[1.0 / det.q_scale_]])], "q_scaled")
    combined = node("Add" if det.combine == "sum" else "Max", [a, b], "combined")
    log = node("Log", [node("Add", [combined, const("one_f", [[1.0]])], "plus_one")], "log")
    decision = node("Sub", [node("Neg", [log], "neg"), const("offset", [[det.offset_]])], "d")
    container.add_node(
        "Cast",
        [decision],
        [operator.outputs[1].full_name],
        name=name("t2q_out"),
        to=TensorProto.FLOAT,
    )
    inlier = node("GreaterOrEqual", [decision, const("zero", [[0.0]])], "inlier")
    flat = node("Reshape", [inlier, const("flat", [-1], np.int64)], "inlier_flat")
    container.add_node(
        "Where",
        [flat, const("one", [1], np.int64), const("minus_one", [-1], np.int64)],
        [operator.outputs[0].full_name],
        name=name("t2q_label"),
    )


def register_custom_detector(estimator: Any) -> None:
    """Register the converter of a custom final step skl2onnx does not know (by its
    ``pdm_onnx_graph`` tag) for that step's own class; a stock estimator needs nothing."""
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if getattr(final, "pdm_onnx_graph", None) == PCA_T2Q_CONVERTER:
        update_registered_converter(
            type(final), "PdmKedroPcaT2QDetector", pca_t2q_shape, pca_t2q_converter
        )


def sklearn_to_onnx(estimator: Any, n_features: int, opsets: dict[str, int]) -> onnx.ModelProto:
    """ONNX graph of a scikit-learn estimator or Pipeline with one float input ``features``."""
    register_custom_detector(estimator)
    return convert_sklearn(
        estimator,
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        target_opset={str(k): int(v) for k, v in opsets.items()},
    )


def with_metadata(model: onnx.ModelProto, props: dict[str, Any], doc: str) -> onnx.ModelProto:
    """A copy of ``model`` with string metadata props (non-strings as JSON) and a doc string.

    Read back on the device with ``InferenceSession.get_modelmeta().custom_metadata_map``.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    onnx.helper.set_model_props(
        out, {k: v if isinstance(v, str) else json.dumps(v) for k, v in props.items()}
    )
    out.doc_string = doc
    out.producer_name = "pdm_kedro.edge_export"
    # the converters name some graphs at random: a fixed name keeps identical exports
    # byte-identical, so a changed sha256 (and bundle version) means a changed model
    out.graph.name = "_".join(str(props.get(k, "model")) for k in ("machine_id", "family"))
    onnx.checker.check_model(out)
    return out


def run_onnx(model: onnx.ModelProto, x: np.ndarray, output: str) -> np.ndarray:
    """One output of ``model`` on the float32 matrix ``x`` (onnxruntime, CPU)."""
    session = make_session(model.SerializeToString())
    return session.run([output], {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})[0]
