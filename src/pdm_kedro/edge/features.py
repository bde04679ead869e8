"""Model inputs from validated readings, with the training pipeline's own feature function.

:func:`pdm_kedro.core.window_features.episode_features` is what ``build_window_features`` calls per
episode during training; here it runs on the recent readings with the constants fitted on the
training split (stored in the manifest), so serving features equal training features.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pdm_kedro.core.degradation_features import degradation_block
from pdm_kedro.core.operating_conditions import apply_condition_scaling
from pdm_kedro.core.window_features import episode_features, last_row_features
from pdm_kedro.edge.readings import Readings

REGIME_CODE = "regime_code"


def regime_codes(regimes: np.ndarray, manifest: dict[str, Any]) -> np.ndarray:
    """Regime names -> the codes training used (sorted train regimes); unknown -> -1."""
    codes = manifest["regimes"]["codes"]
    unknown = int(manifest["regimes"]["unknown_code"])
    return np.array([codes.get(str(r), unknown) for r in regimes], dtype=np.float64)


def compute_features(
    readings: Readings, manifest: dict[str, Any], *, last_row: bool = False
) -> np.ndarray:
    """(n, features) float64 matrix in the order of ``manifest["feature_names"]``.

    The window features of the last row equal the training pipeline's as soon as the readings
    cover ``manifest["inputs"]["min_history_rows"]`` rows (or start at the episode's start).
    With ``last_row`` only that row is computed (a (1, features) matrix, by
    :func:`~pdm_kedro.core.window_features.last_row_features`): what a live answer needs.
    """
    sensors = manifest["sensors"]
    window = manifest["windows"]
    values = readings.values
    regimes = np.asarray(readings.regimes)
    scaling = manifest.get("preprocessing", {}).get("condition_scaling")
    if scaling:  # per-operating-condition z-scores, as the training pipeline's feature stage
        values = apply_condition_scaling(values, regimes, scaling)
    median = np.array([s["median"] for s in sensors], dtype=np.float64)
    scale = np.array([s["scale"] for s in sensors], dtype=np.float64)
    function = last_row_features if last_row else episode_features
    matrix = function(
        values, [s["kind"] for s in sensors], median, scale, window["rows"], window["statistics"]
    )
    if last_row:
        matrix = matrix[None, :]
        regimes = regimes[-1:]
    if window.get("degradation"):  # long-window degradation columns, after the window ones
        block = degradation_block(
            values, median, scale, window["degradation"], np.asarray(readings.regimes)
        )
        matrix = np.column_stack([matrix, block[-1:] if last_row else block])
    names = manifest["feature_names"]
    window_names = manifest["window_feature_names"]
    if matrix.shape[1] != len(window_names):
        raise ValueError(  # a bundle/runtime mismatch, not a user error
            f"episode_features returned {matrix.shape[1]} columns, the manifest lists "
            f"{len(window_names)}: the runtime and the bundle disagree on the feature definition."
        )
    position = {name: i for i, name in enumerate(window_names)}
    position[REGIME_CODE] = len(window_names)
    table = np.column_stack([matrix, regime_codes(regimes, manifest)])
    return table[:, [position[name] for name in names]]


def model_inputs(features: np.ndarray, manifest: dict[str, Any], family: str) -> np.ndarray:
    """The float32 columns one model was trained on, in its order."""
    index = {name: i for i, name in enumerate(manifest["feature_names"])}
    wanted = manifest["models"][family]["feature_names"]
    return np.ascontiguousarray(features[:, [index[n] for n in wanted]], dtype=np.float32)
