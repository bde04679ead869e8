"""Native model -> ONNX conversion, metadata and inference helpers used by the export nodes.

- XGBoost classifier/regressor: ``onnxmltools.convert_xgboost`` (capped at opset 15). The booster
  must carry no feature names (the families train on float32 numpy arrays); the names travel in
  the ONNX metadata and the bundle manifest instead.
- scikit-learn anomaly detectors (e.g. StandardScaler + IsolationForest): ``skl2onnx`` with
  ``ai.onnx.ml`` >= 3 (IsolationForest needs it); the ``scores`` output equals
  ``decision_function``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import onnx
from onnxmltools.convert import convert_xgboost
from onnxmltools.convert.common.data_types import FloatTensorType as XgbFloatTensorType
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType

from pdm_kedro.edge.bundle import INPUT_NAME, make_session

# onnx output carrying the answer, per family (after conversion with the settings below)
CLASSIFIER_OUTPUT = "probabilities"
REGRESSOR_OUTPUT = "variable"
DETECTOR_OUTPUT = "scores"


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


def sklearn_to_onnx(estimator: Any, n_features: int, opsets: dict[str, int]) -> onnx.ModelProto:
    """ONNX graph of a scikit-learn estimator or Pipeline with one float input ``features``."""
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
